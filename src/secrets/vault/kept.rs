//! An identity token OpenBao or Vault signed, and one kept fresh for a job
//! (`run --identity-token`): held
//! by a [`Keeper`] that replaces it ahead on the refresher, two thirds
//! through its TTL, and tells each new token (or why a replacement failed:
//! tried again after a pause that shrinks as the token nears its end) to
//! the owner, who writes it where the job reads it.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::{Issued, Issuer, Keeper};
use crate::secrets::lifetime::Lifetime;
use crate::secrets::transport::FetchError;
use std::sync::Arc;

/// An OIDC identity token OpenBao or Vault signed for this workload's
/// entity (`identity/oidc/token/<role>`): for SDKs that federate (AWS web
/// identity, W&B, Hugging Face). `Debug` never shows the token.
pub struct IdentityToken {
    /// The signed JWT.
    pub token: SecretString,
    /// How long it is valid, from when it was issued: when it is replaced
    /// ([`Lifetime::refetch_at`](crate::secrets::lifetime::Lifetime::refetch_at)).
    pub lifetime: crate::secrets::lifetime::Lifetime,
    /// Its `aud` claim: the role's `client_id`.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityToken")
            .field("ttl", &self.lifetime.ttl())
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// An identity token kept fresh: `VaultJob::keep_identity_token`. Dropped,
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

/// The tokens a closure mints (one role's, for one audience).
struct Minted<F>(F);

impl<F> Issuer<SecretString> for Minted<F>
where
    F: Fn() -> Result<IdentityToken, Error> + Send + Sync + 'static,
{
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let t = (self.0)().map_err(FetchError::transient)?;
        Ok(Issued {
            value: t.token,
            lifetime: t.lifetime,
        })
    }

    fn describe(&self) -> String {
        "Vault identity tokens".into()
    }
}

impl KeptIdentityToken {
    /// `first` kept fresh with the tokens `mint` gives: see
    /// `VaultJob::keep_identity_token`.
    pub(super) fn keep(
        mint: impl Fn() -> Result<IdentityToken, Error> + Send + Sync + 'static,
        first: IdentityToken,
        on_change: impl Fn(Result<(&SecretString, Lifetime), &Error>) + Send + Sync + 'static,
    ) -> KeptIdentityToken {
        let tell = move |change: Result<&Issued<SecretString>, &Error>| {
            on_change(change.map(|issued| (&issued.value, issued.lifetime)));
        };
        let first = Issued {
            value: first.token,
            lifetime: first.lifetime,
        };
        KeptIdentityToken {
            keeper: Keeper::kept_fresh("vault", Box::new(Minted(mint)), Box::new(tell), first),
        }
    }
}
