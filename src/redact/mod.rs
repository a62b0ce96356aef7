//! The leak guard's core: concealing the values this process has served,
//! and their encoded forms, in what the process writes.
//!
//! Every value a [`SecretsManager`](crate::secrets::SecretsManager) hands out
//! (`get`, `get_with_source`, `get_with_version`, `refresh`, in any
//! language) is remembered here, once, in a zeroizing buffer: the last
//! [`MAX_SERVED`] distinct values of at least [`MIN_LEN`] bytes. [`redact`]
//! and [`Redactor`] look for them (and for values a caller adds, such as
//! what a manager's providers hold) with the one [`Patterns`] matcher,
//! which `st-secrets run` and `st-secrets scan` use too.
//!
//! Remembering costs a get one hash of the value and one atomic load when
//! the value is already known (the common case: a lock only for a new
//! value).

mod forms;
mod masker;
mod matcher;
#[cfg(test)]
mod tests;

pub use forms::Encoding;
pub use masker::{Masker, CHUNK};
pub use matcher::{Finding, Patterns, MAX_NEEDLE_BYTES, MIN_LEN, PLACEHOLDER};

use crate::secret::SecretBytes;
use crate::sys::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many distinct served values are remembered; past that the oldest is
/// forgotten (zeroed; the matcher's tables, never zeroed, keep concealing it
/// until their next whole build, at most 512 needles later). A job that
/// rotates a secret every hour for a year stays below it.
pub const MAX_SERVED: usize = 4096;

/// Hashes of values known to be remembered, one per slot: a get of a known
/// value ends on one load. A slot holds the last value hashed to it.
static QUICK: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

/// Bumped whenever the remembered set changes.
static GENERATION: AtomicU64 = AtomicU64::new(0);

static SERVED: Mutex<Served> = Mutex::lazy(Served::default);

/// Tests that forget the remembered values, or expect them kept, take this.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Default)]
struct Served {
    /// Oldest first: key, value, hash.
    values: VecDeque<(String, SecretBytes, u64)>,
    /// Values remembered so far, ever (the newest is number `pushed`).
    pushed: u64,
    /// The matcher for `values`, made on first use after a change.
    patterns: Option<Matcher>,
}

/// The served values' matcher and what it covers.
struct Matcher {
    /// The generation it was made for.
    generation: u64,
    patterns: Option<Arc<Patterns>>,
    /// `pushed` when it was made: the values after are new to it.
    covered: u64,
    /// Needles added by extending it since its last full build.
    extended: usize,
}

/// Needles added to a matcher by extension before it is built anew whole
/// (each extension searches with its own small tables, so a few hundred
/// new needles cost little; more would slow every search): a new value
/// costs building tables for its own forms, not for every value again.
const EXTEND_UP_TO: usize = 512;

/// A word-at-a-time hash of the whole value (a value taken for another by
/// the quick table would not be remembered: 64 bits make that as likely as
/// a random 64-bit match); a collision of slots only costs a lock.
#[inline]
fn hash(value: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (value.len() as u64).wrapping_mul(K);
    let words = value.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        h = (h ^ w).rotate_left(23).wrapping_mul(K);
    }
    // The last 1 to 7 bytes, a byte at a time (no copy call on the hot path).
    let last = tail.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    h = (h ^ last).rotate_left(23).wrapping_mul(K);
    h | 1 // never 0, the empty slot
}

/// Remembers that `value` was served for `key` (the managers call this for
/// every value they hand out; a host adds values it got another way).
/// Values shorter than [`MIN_LEN`] are not kept.
#[inline]
pub fn remember(key: &str, value: &[u8]) {
    if value.len() < MIN_LEN {
        return;
    }
    let h = hash(value);
    let slot = &QUICK[(h as usize >> 1) % QUICK.len()];
    if slot.load(Ordering::Relaxed) != h {
        remember_new(key, value, h, slot);
    }
}

/// [`remember`] of a value the quick table does not know (new, or its slot
/// taken by another).
#[cold]
#[inline(never)]
fn remember_new(key: &str, value: &[u8], h: u64, slot: &AtomicU64) {
    let mut served = SERVED.lock();
    let known = served
        .values
        .iter()
        .any(|(_, v, vh)| *vh == h && v.expose() == value);
    if !known {
        if served.values.len() == MAX_SERVED {
            served.values.pop_front();
        }
        served
            .values
            .push_back((key.to_owned(), SecretBytes::from(value), h));
        served.pushed += 1;
        GENERATION.fetch_add(1, Ordering::Release);
    }
    slot.store(h, Ordering::Relaxed);
}

/// Changes whenever a value is remembered or [`forget_served`] runs: a
/// stream compares it to know its matcher is out of date.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// How many values are remembered.
pub fn served_count() -> usize {
    SERVED.lock().values.len()
}

/// Forgets every remembered value (zeroed). For tests and for a host that
/// knows its values are gone everywhere.
pub fn forget_served() {
    let mut served = SERVED.lock();
    served.values.clear();
    served.patterns = None;
    QUICK
        .iter()
        .for_each(|slot| slot.store(0, Ordering::Relaxed));
    GENERATION.fetch_add(1, Ordering::Release);
}

/// The matcher for the served values and the generation it was made for;
/// `None` when no value is remembered. Made once per change and shared: the
/// previous matcher extended by the new values' forms (its tables reused),
/// built anew whole once 512 needles were added so (or after
/// [`forget_served`]).
pub fn served_patterns() -> (u64, Option<Arc<Patterns>>) {
    let mut served = SERVED.lock();
    let generation = generation();
    if let Some(m) = &served.patterns {
        if m.generation == generation {
            return (generation, m.patterns.clone());
        }
    }
    let made = served.next_matcher(generation);
    let patterns = made.patterns.clone();
    served.patterns = Some(made);
    (generation, patterns)
}

/// The matcher for the served values and `extra` ones (a manager's held
/// values), the served generation it was built for.
fn patterns_with(extra: &[(String, SecretBytes)]) -> (u64, Option<Arc<Patterns>>) {
    if extra.is_empty() {
        return served_patterns();
    }
    let served = SERVED.lock();
    (generation(), served.patterns_with(extra))
}

impl Served {
    /// The matcher of `generation`: the last one extended by the values
    /// remembered since, or one built whole.
    fn next_matcher(&self, generation: u64) -> Matcher {
        if let Some(Matcher {
            patterns: Some(last),
            covered,
            extended,
            ..
        }) = &self.patterns
        {
            let new = usize::try_from(self.pushed - covered).unwrap_or(usize::MAX);
            if new <= self.values.len() {
                let since = self.values.iter().skip(self.values.len() - new);
                let patterns = match last.extended(since.map(|(k, v, _)| (k.as_str(), v.expose())))
                {
                    Some(p) => Arc::new(p),
                    None => Arc::clone(last),
                };
                let extended = extended + (patterns.needles() - last.needles());
                if extended <= EXTEND_UP_TO {
                    return Matcher {
                        generation,
                        patterns: Some(patterns),
                        covered: self.pushed,
                        extended,
                    };
                }
            }
        }
        Matcher {
            generation,
            patterns: self.patterns_with(&[]),
            covered: self.pushed,
            extended: 0,
        }
    }

    /// A matcher for these values and `extra` ones.
    fn patterns_with(&self, extra: &[(String, SecretBytes)]) -> Option<Arc<Patterns>> {
        let served = self.values.iter().map(|(k, v, _)| (k.as_str(), v.expose()));
        let extra = extra.iter().map(|(k, v)| (k.as_str(), v.expose()));
        Patterns::new(served.chain(extra)).map(Arc::new)
    }
}

/// `data` with every served value (and `extra` values) concealed, in every
/// encoded form; `None` when nothing in it is a value.
pub fn redact(data: &[u8], extra: &[(String, SecretBytes)]) -> Option<Vec<u8>> {
    patterns_with(extra).1?.redact(data)
}

/// A stream being redacted: bytes written in any pieces come out with
/// every value concealed, also a value split across writes. Only the
/// tail that could start a value is held back until the next write or
/// [`finish`](Self::finish). Values served after the stream started are
/// concealed from the next write on.
pub struct Redactor {
    extra: Vec<(String, SecretBytes)>,
    generation: u64,
    masker: Option<Masker>,
}

impl Default for Redactor {
    /// A stream concealing the served values.
    fn default() -> Redactor {
        Redactor::new(Vec::new())
    }
}

impl Redactor {
    /// A stream concealing the served values and `extra` ones.
    pub fn new(extra: Vec<(String, SecretBytes)>) -> Redactor {
        let (generation, patterns) = patterns_with(&extra);
        Redactor {
            extra,
            generation,
            masker: patterns.map(Masker::new),
        }
    }

    /// Takes `data`; appends to `out` what can be passed on now.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if generation() != self.generation {
            let (generation, patterns) = patterns_with(&self.extra);
            self.generation = generation;
            let pending = self.masker.as_ref().map(|m| m.pending().to_vec());
            self.masker = patterns.map(|p| {
                let mut m = Masker::new(p);
                m.resume(pending.as_deref().unwrap_or_default());
                m
            });
            if self.masker.is_none() {
                out.extend_from_slice(pending.as_deref().unwrap_or_default());
            }
        }
        match &mut self.masker {
            Some(m) => {
                m.push(data);
                // Writing to a Vec cannot fail.
                let _ = m.pass_on(out, false);
            }
            None => out.extend_from_slice(data),
        }
    }

    /// The end of the stream: appends to `out` what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(m) = &mut self.masker {
            let _ = m.pass_on(out, true);
        }
    }
}
