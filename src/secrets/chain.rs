//! The chain walk: each provider of the manager's chain in order, with
//! what the manager remembers of its last answer ([`ChainLink`]), until one
//! has the key. A reference one holds is followed down the chain
//! (`references`), a feature of the walk.

use super::events::Notifier;
use super::provider::{Provider, Read, Version};
use crate::error::Error;
use crate::redact;
use crate::secret::SecretString;
use crate::sys::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A manager's chain: its providers in order, whether references are
/// resolved, and its listeners (a forked child's watch restarts on a get).
pub(super) struct Chain {
    pub(super) links: Vec<ChainLink>,
    /// The configuration's `references`.
    pub(super) references: bool,
    pub(super) notifier: Arc<Notifier>,
}

/// A provider in the chain, with what the manager remembers of its last
/// lookup (shown by `SecretsManager::providers`).
pub(super) struct ChainLink {
    pub(super) provider: Arc<dyn Provider>,
    /// Its place in the chain.
    pub(super) index: usize,
    /// Whether the last lookup failed (a lock-free check on the hot path).
    failing: AtomicBool,
    /// The last lookup's failure; cleared by the next successful lookup.
    pub(super) last_error: Mutex<Option<Error>>,
}

impl ChainLink {
    pub(super) fn new(provider: Arc<dyn Provider>, index: usize) -> ChainLink {
        ChainLink {
            provider,
            index,
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// Asks the provider for `key`, remembering a failure (or its end).
    pub(super) fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let outcome = self.provider.lookup(key);
        self.record(&outcome);
        outcome
    }

    /// [`Provider::read`], remembered as a lookup.
    pub(super) fn read(
        &self,
        key: &str,
        how: Read,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        let outcome = self.provider.read(key, how);
        self.record(&outcome);
        outcome
    }

    fn record<T>(&self, outcome: &Result<T, Error>) {
        match outcome {
            Err(e) => {
                *self.last_error.lock() = Some(e.clone());
                self.failing.store(true, Ordering::Relaxed);
            }
            Ok(_) if self.failing.load(Ordering::Relaxed) => {
                *self.last_error.lock() = None;
                self.failing.store(false, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
    }
}

/// How the chain is asked: a link and the key to ask it.
pub(super) type Ask<'a, T> = dyn Fn(&ChainLink, &str) -> Result<Option<T>, Error> + 'a;

/// What a lookup answers, with the value in it (for the reference check).
pub(super) trait Valued {
    fn value(&self) -> &SecretString;
}

impl Valued for SecretString {
    fn value(&self) -> &SecretString {
        self
    }
}

impl Valued for (SecretString, Option<Version>) {
    fn value(&self) -> &SecretString {
        &self.0
    }
}

impl Chain {
    /// The first answer of the chain from link `from` on, in order, with
    /// the provider that gave it: `ask` of each link until one has the key,
    /// a reference resolved further down the chain (see the module
    /// documentation); `Ok(None)` when none has it and none failed, else the
    /// first failure, naming its provider. The value found is remembered for
    /// redaction under `key` (every answer the manager gives passes here).
    pub(super) fn first_in_chain<T: Valued>(
        &self,
        from: usize,
        key: &str,
        ask: impl Fn(&ChainLink, &str) -> Result<Option<T>, Error>,
    ) -> Result<Option<(T, &'static str)>, Error> {
        self.notifier.keep_watching();
        let found = self.chain_from(from, key, &ask)?;
        if let Some((found, _)) = &found {
            redact::remember(key, found.value().expose_bytes());
        }
        Ok(found)
    }

    pub(super) fn chain_from<T: Valued>(
        &self,
        from: usize,
        key: &str,
        ask: &Ask<'_, T>,
    ) -> Result<Option<(T, &'static str)>, Error> {
        let mut first_failure = None;
        for link in &self.links[from..] {
            match ask(link, key) {
                Ok(Some(found)) => {
                    let target = match self.reference_of(link, key, found.value())? {
                        None => return Ok(Some((found, link.provider.name()))),
                        Some(target) => target.to_owned(),
                    };
                    drop(found);
                    return self.follow(link, key, &target, ask);
                }
                Ok(None) => {}
                Err(e) => {
                    first_failure.get_or_insert_with(|| {
                        e.context(format!("provider '{}'", link.provider.name()))
                    });
                }
            }
        }
        first_failure.map_or(Ok(None), Err)
    }
}
