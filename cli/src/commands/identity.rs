//! `run --identity-token VAR=ROLE[:AUDIENCE]`: an OpenBao/Vault identity
//! token (`identity/oidc/token/ROLE`, signed for the entity the tool logged
//! in as) in a 0600 file of the run's private directory, `VAR` naming it
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`, `WANDB_IDENTITY_TOKEN_FILE`, any
//! `NAME_FILE`), kept fresh while the command runs: replaced (a new file
//! renamed over it, as `--watch` does) at two thirds of its TTL, and
//! concealed in the command's output like every secret.
//!
//! A refresh that fails is tried again after a pause that shrinks as the
//! token nears its expiry (never more often than once a second), with a
//! warning; the file keeps the last token meanwhile.

use super::watch::PatternSlot;
use crate::secretfiles::{self, SecretDir};
use st_secrets::secrets::lifetime::{instant, Lifetime};
use st_secrets::secrets::{IdentityToken, VaultJob};
use st_secrets::Error;
use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// When to replace a token of `lifetime`, and when it expires.
fn plan(lifetime: &Lifetime) -> (Instant, Instant) {
    let expires = instant(lifetime.start()) + lifetime.ttl();
    (instant(lifetime.refetch_at()), expires)
}

/// The thread keeping the files fresh; [`stop`](Self::stop) it before the
/// files go.
pub struct Keeper {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Keeps each of `tokens` (its spec, and the token written) fresh in
    /// `dir`.
    pub fn start(
        vault: VaultJob,
        dir: PathBuf,
        tokens: Vec<(Spec, IdentityToken)>,
        masking: Option<Arc<PatternSlot>>,
    ) -> Result<Keeper, Error> {
        let (stop, stopped) = channel();
        let thread = std::thread::Builder::new()
            .name("st-secrets-identity".into())
            .spawn(move || {
                // Each token: its spec, when to replace it, and when it expires.
                let mut schedule: Vec<(Spec, Instant, Instant)> = tokens
                    .into_iter()
                    .map(|(s, t)| {
                        let (at, expires) = plan(&t.lifetime);
                        (s, at, expires)
                    })
                    .collect();
                loop {
                    let next = schedule.iter().map(|p| p.1).min();
                    let wait = next.map_or(Duration::from_secs(3600), |n| {
                        n.saturating_duration_since(Instant::now())
                    });
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let now = Instant::now();
                    for (spec, at, expires) in schedule.iter_mut().filter(|p| p.1 <= now) {
                        match renew(&vault, &dir, spec, masking.as_deref()) {
                            Ok(t) => (*at, *expires) = plan(&t.lifetime),
                            Err(e) => {
                                let left = expires.saturating_duration_since(now);
                                let pause = (left / 4)
                                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                                eprintln!(
                                    "st-secrets: warning: {e}; the file keeps its token \
                                     (expiring in {} s), tried again in {} s",
                                    left.as_secs(),
                                    pause.as_secs()
                                );
                                *at = now + pause;
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
        Ok(Keeper {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops keeping the files: none is written after this returns.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A new token for `spec`, concealed, then renamed over its file.
fn renew(
    vault: &VaultJob,
    dir: &std::path::Path,
    spec: &Spec,
    masking: Option<&PatternSlot>,
) -> Result<IdentityToken, Error> {
    let t = spec.fetch(vault)?;
    if let Some(slot) = masking {
        slot.conceal([t.token.clone()]);
    }
    SecretDir::replace(dir, &spec.file(), t.token.expose().as_bytes())?;
    Ok(t)
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
