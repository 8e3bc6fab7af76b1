//! What a client authenticates with, and the token it is given: shared by the connection
//! (which holds them) and the authentication call (which fills the token in).

use tonic::metadata::{Ascii, MetadataValue};

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
