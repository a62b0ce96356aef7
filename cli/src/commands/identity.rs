//! `run --identity-token VAR=ROLE[:AUDIENCE]`: an OpenBao/Vault identity
//! token (`identity/oidc/token/ROLE`, signed for the entity the tool logged
//! in as) in a 0600 file of the run's private directory, `VAR` naming it
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`, `WANDB_IDENTITY_TOKEN_FILE`, any
//! `NAME_FILE`), kept fresh while the command runs: replaced (a new file
//! renamed over it, as `--watch` does) at two thirds of its TTL, and
//! concealed in the command's output like every secret.
//!
//! The library's keeper replaces each token ahead
//! ([`VaultJob::keep_identity_token`]); a replacement that fails is tried
//! again after a pause that shrinks as the token nears its expiry (never
//! more often than once a second), with a warning; the file keeps the last
//! token meanwhile.

use super::watch::PatternSlot;
use crate::secretfiles::{self, SecretDir};
use st_secrets::secrets::lifetime::{instant, Lifetime};
use st_secrets::secrets::{IdentityToken, KeptIdentityToken, VaultJob};
use st_secrets::{Error, SecretString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One `--identity-token VAR=ROLE[:AUDIENCE]`.
#[derive(Clone, Debug)]
pub struct Spec {
    pub var: String,
    pub role: String,
    pub audience: Option<String>,
}

impl Spec {
    /// Parses `VAR=ROLE[:AUDIENCE]`.
    ///
    /// # Errors
    /// A message naming what is wrong with the argument.
    pub fn parse(arg: &str) -> Result<Spec, String> {
        let (var, rest) = arg
            .split_once('=')
            .ok_or_else(|| format!("--identity-token '{arg}': expected VAR=ROLE[:AUDIENCE]"))?;
        if !secretfiles::plain_name(var)
            || var.chars().next().is_some_and(|c| c.is_ascii_digit())
            || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "--identity-token: '{var}' is not a variable name (letters, digits, _)"
            ));
        }
        let (role, audience) = match rest.split_once(':') {
            Some((r, a)) => (r, Some(a.to_owned()).filter(|a| !a.is_empty())),
            None => (rest, None),
        };
        if role.is_empty() || role.contains(['/', '?', '#', ' ']) {
            return Err(format!(
                "--identity-token {var}: '{role}' is not a role name of identity/oidc/role"
            ));
        }
        Ok(Spec {
            var: var.to_owned(),
            role: role.to_owned(),
            audience,
        })
    }

    /// The file's name in the run's directory.
    pub fn file(&self) -> String {
        format!("identity-{}", self.var)
    }

    /// A token for it, now.
    ///
    /// # Errors
    /// The provider's, with the variable named.
    pub fn fetch(&self, vault: &VaultJob) -> Result<IdentityToken, Error> {
        vault
            .identity_token(&self.role, self.audience.as_deref())
            .map_err(|e| e.context(format!("--identity-token {}", self.var)))
    }
}

/// The files kept fresh; [`stop`](Self::stop) it before the files go.
pub struct Keeper {
    kept: Vec<KeptIdentityToken>,
    /// Set by `stop`; a replacement writes only while it is clear, under
    /// this lock.
    stopped: Arc<Mutex<bool>>,
}

impl Keeper {
    /// Keeps each of `tokens` (its spec, and the token written) fresh in
    /// `dir`, each replacement concealed in the output and renamed over
    /// its file; a failure is a warning, the file keeping its token.
    pub fn start(
        vault: VaultJob,
        dir: PathBuf,
        tokens: Vec<(Spec, IdentityToken)>,
        masking: Option<Arc<PatternSlot>>,
    ) -> Keeper {
        let vault = Arc::new(vault);
        let stopped = Arc::new(Mutex::new(false));
        let kept = tokens
            .into_iter()
            .map(|(spec, first)| {
                let (role, audience) = (spec.role.clone(), spec.audience.clone());
                let (dir, masking, stopped) = (dir.clone(), masking.clone(), Arc::clone(&stopped));
                // The lifetime of the token in the file.
                let written = Mutex::new(first.lifetime);
                let replaced = move |change: Result<(&SecretString, Lifetime), &Error>| {
                    let stopped = stopped.lock().unwrap_or_else(|e| e.into_inner());
                    let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        return;
                    }
                    let outcome = change.map_err(Clone::clone).and_then(|(token, lifetime)| {
                        write(&dir, &spec, token, masking.as_deref()).map(|()| lifetime)
                    });
                    match outcome {
                        Ok(lifetime) => *written = lifetime,
                        Err(e) => {
                            let expires = instant(written.end());
                            eprintln!(
                                "st-secrets: warning: --identity-token {}: {e}; the file keeps \
                                 its token (expiring in {} s)",
                                spec.var,
                                expires.saturating_duration_since(Instant::now()).as_secs()
                            );
                        }
                    }
                };
                vault.keep_identity_token(&role, audience.as_deref(), first, replaced)
            })
            .collect();
        Keeper { kept, stopped }
    }

    /// Stops keeping the files: none is written after this returns.
    pub fn stop(self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        drop(self.kept);
    }
}

/// A new token for `spec`, concealed, then renamed over its file.
fn write(
    dir: &std::path::Path,
    spec: &Spec,
    token: &SecretString,
    masking: Option<&PatternSlot>,
) -> Result<(), Error> {
    if let Some(slot) = masking {
        slot.conceal([token.clone()]);
    }
    SecretDir::replace(dir, &spec.file(), token.expose().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let s = Spec::parse("AWS_WEB_IDENTITY_TOKEN_FILE=trainer:sts.amazonaws.com").unwrap();
        assert_eq!(s.var, "AWS_WEB_IDENTITY_TOKEN_FILE");
        assert_eq!(s.role, "trainer");
        assert_eq!(s.audience.as_deref(), Some("sts.amazonaws.com"));
        let s = Spec::parse("WANDB_IDENTITY_TOKEN_FILE=wandb").unwrap();
        assert_eq!((s.role.as_str(), s.audience), ("wandb", None));
        for bad in ["NOEQUALS", "1X=role", "A-B=role", "X=", "X=a/b", "=role"] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }
}
