//! Authentication with user and password: `Auth/Authenticate` gives a token that goes as
//! the `token` metadata with every later request. A token the server no longer accepts
//! (simple tokens expire after 5 idle minutes; a restarted member forgets them) is replaced
//! once, and the refused request is sent again.

use tonic::metadata::{Ascii, MetadataValue};

use crate::client::Client;
use crate::error::Error;
use crate::messages::{AuthenticateRequest, AuthenticateResponse};

const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";

/// The user and password a client authenticates with.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

pub(crate) type Token = MetadataValue<Ascii>;

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
