//! An identity token kept fresh for a job (`run --identity-token`): held
//! by a [`Keeper`] that replaces it ahead on the refresher, two thirds
//! through its TTL, and tells each new token (or why a replacement failed:
//! tried again after a pause that shrinks as the token nears its end) to
//! the owner, who writes it where the job reads it.

use super::{IdentityToken, VaultJob};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::lifetime::Lifetime;
use crate::secrets::remote::credential::{Issued, Issuer, Keeper};
use crate::secrets::remote::FetchError;
use std::sync::Arc;

/// An identity token kept fresh: [`VaultJob::keep_identity_token`]. Dropped,
/// no replacement starts after that (one under way may still be told).
pub struct KeptIdentityToken {
    keeper: Arc<Keeper<SecretString>>,
}

impl std::fmt::Debug for KeptIdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptIdentityToken")
            .field("issuer", &self.keeper.describe("token"))
            .finish()
    }
}

/// The tokens of one role, for one audience.
struct Minted {
    job: Arc<VaultJob>,
    role: String,
    audience: Option<String>,
}

impl Issuer<SecretString> for Minted {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let t = self
            .job
            .identity_token(&self.role, self.audience.as_deref())
            .map_err(FetchError::transient)?;
        Ok(Issued {
            value: t.token,
            lifetime: t.lifetime,
        })
    }

    fn describe(&self) -> String {
        format!("Vault identity tokens of role '{}'", self.role)
    }
}

impl VaultJob {
    /// Keeps `first` (a token of `role` for `audience`, as
    /// [`identity_token`](Self::identity_token) gave it) fresh: each
    /// replacement (with its lifetime), or each failure to replace it
    /// (the token held stays until it ends), is told to `on_change`
    /// on the library's refresher thread, until the returned handle is
    /// dropped.
    pub fn keep_identity_token(
        self: &Arc<Self>,
        role: &str,
        audience: Option<&str>,
        first: IdentityToken,
        on_change: impl Fn(Result<(&SecretString, Lifetime), &Error>) + Send + Sync + 'static,
    ) -> KeptIdentityToken {
        let minted = Minted {
            job: Arc::clone(self),
            role: role.to_owned(),
            audience: audience.map(str::to_owned),
        };
        let tell = move |change: Result<&Issued<SecretString>, &Error>| {
            on_change(change.map(|issued| (&issued.value, issued.lifetime)));
        };
        let first = Issued {
            value: first.token,
            lifetime: first.lifetime,
        };
        KeptIdentityToken {
            keeper: Keeper::kept_fresh("vault", Box::new(minted), Box::new(tell), first),
        }
    }
}
