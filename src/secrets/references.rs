//! References: a value `st://KEY` held by the environment or the secrets
//! file names the secret KEY instead of being one, so a job can carry
//! `HF_TOKEN=st://hf-token` and every process that asks the library gets
//! the value.
//!
//! Rules: a reference found by a provider that
//! [resolves references](super::Provider::resolves_references) is looked up in the
//! providers *after* that one, in order, as a get would (a reference there
//! is resolved the same way, further down). So a reference never reaches
//! its own provider and cannot loop; the chain's length bounds the hops.
//! A reference no later provider holds is an [`Error::InvalidArgument`]
//! (a configuration value pointing nowhere; not "absent", which a caller
//! may take as optional and go on without the secret) naming the
//! key, the provider and the reference; a value that starts with `st://`
//! but is not a reference (an empty key, or one with spaces or braces) is
//! an [`Error::Parse`] naming the key, never the value. The config key
//! `references` (`false`) turns resolution off: `st://...` is then a value.
//! The answer's provider and version are those of the provider that held
//! the value.

use super::chain::{Ask, Chain, ChainLink, Valued};
use super::provider::{self, normalize_key, Read, REFERENCE_SCHEME};
use crate::error::{printable, Error};
use crate::secret::SecretString;

impl Chain {
    /// The answer for `target`, the reference `link` holds for `key`, from
    /// the providers after it.
    pub(super) fn follow<T: Valued>(
        &self,
        link: &ChainLink,
        key: &str,
        target: &str,
        ask: &Ask<'_, T>,
    ) -> Result<Option<(T, &'static str)>, Error> {
        let name = link.provider.name();
        let what = format!(
            "'{}' in provider '{name}' is the reference {REFERENCE_SCHEME}{}",
            printable(key),
            printable(target)
        );
        match self.chain_from(link.index + 1, target, ask) {
            Ok(Some(found)) => {
                if normalize_key(target) != normalize_key(key) {
                    self.notifier.followed(link.index, key, target);
                }
                Ok(Some(found))
            }
            Ok(None) => {
                let after: Vec<&str> = self.links[link.index + 1..]
                    .iter()
                    .map(|l| l.provider.name())
                    .collect();
                let after = match after.is_empty() {
                    true => format!("and no provider comes after '{name}'"),
                    false => format!(
                        "which no provider after '{name}' holds ({}; a reference is looked up \
                         only in the providers after the one holding it)",
                        after.join(", ")
                    ),
                };
                Err(Error::InvalidArgument(format!("{what}, {after}")))
            }
            Err(e) => Err(e.context(what)),
        }
    }

    /// The key `value` (held by `link` for `key`) refers to, when it is a
    /// reference this manager resolves.
    pub(super) fn reference_of<'v>(
        &self,
        link: &ChainLink,
        key: &str,
        value: &'v SecretString,
    ) -> Result<Option<&'v str>, Error> {
        // The hot path: one flag and a five-byte prefix.
        if !value
            .expose_bytes()
            .starts_with(REFERENCE_SCHEME.as_bytes())
            || !self.references
            || !link.provider.resolves_references()
        {
            return Ok(None);
        }
        match provider::reference(value.expose()) {
            Some(target) => Ok(Some(target)),
            None => Err(Error::Parse(format!(
                "'{}' in provider '{}' starts with {REFERENCE_SCHEME} but is not a reference \
                 ({REFERENCE_SCHEME}KEY, the key without spaces or braces); a value that must \
                 start so needs the config key \"references\": false",
                printable(key),
                link.provider.name()
            ))),
        }
    }

    /// What the chain would answer for `key` from what its providers hold
    /// (no remote request), references followed.
    pub(super) fn peek_resolved(&self, from: usize, key: &str) -> Option<SecretString> {
        for link in &self.links[from..] {
            if let Ok(Some((value, _))) = link.provider.read(key, Read::Held) {
                return match self.reference_of(link, key, &value) {
                    Ok(None) => Some(value),
                    Ok(Some(target)) => {
                        let target = target.to_owned();
                        self.peek_resolved(link.index + 1, &target)
                    }
                    Err(_) => None,
                };
            }
        }
        None
    }
}

impl Chain {
    /// `target` as the reference `st://target` held by the provider named
    /// `held_by` resolves: looked up in the providers after that one, by
    /// the rules above; in the whole chain when none has that name.
    ///
    /// # Errors
    /// As a lookup of `target`.
    pub(super) fn resolve_from(
        &self,
        held_by: &str,
        target: &str,
    ) -> Result<Option<SecretString>, Error> {
        let from = self
            .links
            .iter()
            .position(|l| l.provider.name() == held_by)
            .map_or(0, |i| i + 1);
        let found = self.first_in_chain(from, target, |link, key| link.lookup(key))?;
        Ok(found.map(|(value, _)| value))
    }
}
