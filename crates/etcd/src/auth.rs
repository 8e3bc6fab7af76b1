//! Authentication with user and password: `Auth/Authenticate` gives a token that goes as
//! the `token` metadata with every later request. A token the server no longer accepts
//! (simple tokens expire after 5 idle minutes; a restarted member forgets them) is replaced
//! once, and the refused request is sent again.

use crate::client::Client;
use crate::credentials::Token;
use crate::error::Error;
use crate::messages::{AuthenticateRequest, AuthenticateResponse};

const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";

impl Client {
    /// Gets a new token if the current one is still `stale` (another call may have
    /// refreshed it meanwhile).
    pub(crate) async fn refresh_token(&self, stale: Option<Token>) -> Result<(), Error> {
        let Some(creds) = &self.inner.credentials else {
            return Ok(());
        };
        if self.token() != stale {
            return Ok(());
        }
        let request = AuthenticateRequest {
            name: creds.user.clone(),
            password: creds.password.clone(),
        };
        let answer: AuthenticateResponse = self.unary_once(AUTHENTICATE, request, None).await?;
        let token: Token = answer.token.parse().map_err(|_| Error::InvalidToken)?;
        *self.inner.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(())
    }

    pub(crate) fn token(&self) -> Option<Token> {
        self.inner
            .token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
