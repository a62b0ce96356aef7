//! Change events: the manager tells its listeners which keys changed value
//! (the key, the provider, the version; never the value).
//!
//! Providers notice changes when they read their source again (a remote
//! secret refreshed ahead, fetched after its TTL or by a `refresh`; the file
//! re-read after it changed) and push them, with no lock of theirs held, to
//! the sink the manager handed each of them once ([`Provider::connect`]);
//! the listeners are called on that thread. A change a provider earlier in
//! the chain hides (the environment holds the key) is not told: what the
//! manager serves did not change. A [reference](super::reference) does not
//! hide what it refers to: `HF_TOKEN=st://HF_TOKEN` in the environment and
//! a rotation of Vault's `HF_TOKEN` is a change of `HF_TOKEN`, and a key
//! the manager answered through a reference to another key (`W=st://wandb`)
//! changes with it.
//!
//! While anyone listens, the refresher also watches without gets: every
//! [`WATCH_INTERVAL`] it runs the checks the providers registered (a remote
//! secret past its soft deadline is fetched; the file's metadata is
//! checked), so a process that read its secrets once still hears of a
//! rotation.

use super::provider::{
    normalize_key, reference, ChangeSink, Check, KeyChange, Provider, Read, Version,
};
use crate::sys::refresher;
use crate::sys::{ForkFlag, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the refresher looks at the sources while someone listens.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// A key whose value, as the manager serves it, changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The key, as the source spells it.
    pub key: String,
    /// The provider that holds it: `file`, `aws`, `vault` (or a custom one's).
    pub provider: &'static str,
    /// The version of the remote secret now held (`None`: the file, a KV v1
    /// secret).
    pub version: Option<Version>,
    /// The key is gone from that provider.
    pub removed: bool,
}

/// A listener: called with each change, on the thread that noticed it.
pub type Listener = dyn Fn(&ChangeEvent) + Send + Sync;

/// The listeners of a manager and what it needs to tell them.
pub(crate) struct Notifier {
    /// The manager's chain, in order (for what hides a change, and to watch).
    chain: Vec<Arc<dyn Provider>>,
    /// The configuration's `references`.
    references: bool,
    /// The references the manager followed: by the normalized key referred
    /// to, each key holding such a reference and its provider's place.
    followed: Mutex<hashbrown::HashMap<String, Vec<(usize, String)>>>,
    listeners: Mutex<Listeners>,
    /// Some listener is registered (lock-free check).
    listening: AtomicBool,
    /// Set in the fork generation whose refresher runs the watch.
    watching: ForkFlag,
    /// What the watch checks, registered by the providers.
    checks: Mutex<Vec<Arc<Check>>>,
}

#[derive(Default)]
struct Listeners {
    next_id: u64,
    /// Each registered listener with its id, in registration order. A call
    /// in progress holds a clone of the `Arc`: a listener's closure (and
    /// what it owns) is dropped when it is removed and no call is running.
    list: Vec<(u64, Arc<Listener>)>,
}

impl Notifier {
    /// The notifier of `chain`, connected to each of its providers;
    /// `references`: whether the manager resolves references.
    pub(crate) fn new(chain: Vec<Arc<dyn Provider>>, references: bool) -> Arc<Notifier> {
        let notifier = Arc::new(Notifier {
            chain,
            references,
            followed: Mutex::new(hashbrown::HashMap::new()),
            listeners: Mutex::new(Listeners::default()),
            listening: AtomicBool::new(false),
            watching: ForkFlag::new(),
            checks: Mutex::new(Vec::new()),
        });
        for (index, provider) in notifier.chain.iter().enumerate() {
            provider.connect(Arc::new(Link {
                notifier: Arc::downgrade(&notifier),
                index,
            }));
        }
        notifier
    }

    /// Registers `listener`; its id, for [`remove`](Self::remove).
    pub(crate) fn add(self: &Arc<Self>, listener: Arc<Listener>) -> u64 {
        let id = {
            let mut l = self.listeners.lock();
            l.next_id += 1;
            let id = l.next_id;
            l.list.push((id, listener));
            self.listening.store(true, Ordering::Release);
            id
        };
        self.ensure_watch();
        id
    }

    /// Unregisters listener `id`: no call starts after this returns (one
    /// already running on another thread ends on its own). `false` when no
    /// such listener is registered.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let removed = {
            let mut l = self.listeners.lock();
            let at = l.list.iter().position(|(i, _)| *i == id);
            let removed = at.map(|at| l.list.remove(at));
            self.listening.store(!l.list.is_empty(), Ordering::Release);
            removed
        };
        // Dropped with no lock held: a C caller's release function may call
        // the library.
        removed.is_some()
    }

    /// Unregisters every listener (the manager is going away).
    pub(crate) fn close(&self) {
        let dropped = {
            let mut l = self.listeners.lock();
            self.listening.store(false, Ordering::Release);
            std::mem::take(&mut l.list)
        };
        // The closures (and a C caller's release function) run here, with
        // no lock held.
        drop(dropped);
    }

    /// Hands what provider `index` of the chain noticed to the listeners,
    /// on this thread, with no lock held; restarts the watch in a forked
    /// child.
    fn deliver(self: &Arc<Self>, index: usize, changes: Vec<KeyChange>) {
        if changes.is_empty() || !self.listening.load(Ordering::Acquire) {
            return;
        }
        self.ensure_watch();
        let provider = self.chain[index].name();
        let mut told: Vec<KeyChange> = self.referring(index, &changes);
        told.extend(
            changes
                .into_iter()
                .filter(|c| self.serves(0, index, &c.key)),
        );
        let events: Vec<ChangeEvent> = told
            .into_iter()
            .map(|c| ChangeEvent {
                key: c.key,
                provider,
                version: c.version,
                removed: c.removed,
            })
            .collect();
        if events.is_empty() {
            return;
        }
        let ids: Vec<u64> = self.listeners.lock().list.iter().map(|(i, _)| *i).collect();
        for id in ids {
            // Looked up again before each call: one removed meanwhile is
            // not called.
            let Some(listener) = self
                .listeners
                .lock()
                .list
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, l)| Arc::clone(l))
            else {
                continue;
            };
            for event in &events {
                let call = std::panic::AssertUnwindSafe(|| listener(event));
                let _ = std::panic::catch_unwind(call);
            }
        }
    }

    /// Remembers that the key `key` of provider `holder` is a reference the
    /// manager followed to `target`, so that a change of `target` is told as
    /// one of `key` too. Costs a lock and a look-up per get through a
    /// reference; nothing otherwise.
    pub(crate) fn followed(&self, holder: usize, key: &str, target: &str) {
        let mut followed = self.followed.lock();
        let keys = followed.entry(normalize_key(target)).or_default();
        if !keys.iter().any(|(h, k)| *h == holder && k == key) {
            keys.push((holder, key.to_owned()));
        }
    }

    /// Whether provider `index` answers `key` for a get that asks the
    /// providers from `from` on: no provider before it holds the key, or
    /// the one that does holds a reference to the same key (normalized),
    /// followed further down.
    fn serves(&self, from: usize, index: usize, key: &str) -> bool {
        self.chain[from..index].iter().all(|p| match held(p, key) {
            None => true,
            Some(value) => {
                self.references
                    && p.resolves_references()
                    && reference(value.expose())
                        .is_some_and(|t| normalize_key(t) == normalize_key(key))
            }
        })
    }

    /// The changes of keys the manager answered through a reference to a
    /// key in `changes` of provider `index` (and to those, down the chain),
    /// when that provider is the one the reference reaches.
    fn referring(&self, index: usize, changes: &[KeyChange]) -> Vec<KeyChange> {
        let followed = {
            let followed = self.followed.lock();
            if followed.is_empty() {
                return Vec::new();
            }
            followed.clone()
        };
        let mut out: Vec<KeyChange> = Vec::new();
        let mut todo: Vec<(String, &KeyChange)> =
            changes.iter().map(|c| (c.key.clone(), c)).collect();
        while let Some((target, change)) = todo.pop() {
            for (holder, key) in followed.get(&normalize_key(&target)).into_iter().flatten() {
                let fresh = !out.iter().any(|c| &c.key == key);
                if *holder < index
                    && fresh
                    && self.serves(holder + 1, index, &target)
                    && self.serves(0, *holder, key)
                {
                    out.push(KeyChange {
                        key: key.clone(),
                        version: change.version.clone(),
                        removed: change.removed,
                    });
                    todo.push((key.clone(), change));
                }
            }
        }
        out
    }

    /// On every get: restarts the watch in a forked child while anyone
    /// listens (one atomic load when nobody does).
    #[inline]
    pub(crate) fn keep_watching(self: &Arc<Self>) {
        if self.listening.load(Ordering::Acquire) {
            self.ensure_watch();
        }
    }

    /// Starts the watch on this process's refresher, unless it runs.
    fn ensure_watch(self: &Arc<Self>) {
        if !self.listening.load(Ordering::Acquire) || self.watching.is_set() {
            return;
        }
        if self.watching.set() {
            schedule_watch(Arc::downgrade(self));
        }
    }
}

/// What `provider` holds for `key` now (no remote request), if anything.
fn held(provider: &Arc<dyn Provider>, key: &str) -> Option<crate::secret::SecretString> {
    match provider.read(key, Read::Held) {
        Ok(Some((value, _))) => Some(value),
        _ => None,
    }
}

/// A provider's sink: its place in the chain of a manager's notifier (which
/// it does not keep alive).
struct Link {
    notifier: Weak<Notifier>,
    index: usize,
}

impl ChangeSink for Link {
    fn changed(&self, changes: Vec<KeyChange>) {
        if let Some(notifier) = self.notifier.upgrade() {
            notifier.deliver(self.index, changes);
        }
    }

    fn watch(&self, check: Check) {
        if let Some(notifier) = self.notifier.upgrade() {
            notifier.checks.lock().push(Arc::new(check));
        }
    }
}

fn schedule_watch(notifier: Weak<Notifier>) {
    refresher::submit_after(WATCH_INTERVAL, Box::new(move || watch(notifier)));
}

/// One round of the watch (on the refresher's thread): every registered
/// check runs (each tells what it changed; one whose subject is gone is
/// dropped); then the next round is scheduled, while the manager lives and
/// someone listens.
fn watch(weak: Weak<Notifier>) {
    let Some(notifier) = weak.upgrade() else {
        return;
    };
    if !notifier.watching.is_set() {
        return;
    }
    if !notifier.listening.load(Ordering::Acquire) {
        notifier.watching.take();
        // A listener added meanwhile found the watch running: start it again.
        notifier.ensure_watch();
        return;
    }
    // Run with no lock held: a check's changes reach the listeners.
    let checks: Vec<Arc<Check>> = notifier.checks.lock().clone();
    let gone: Vec<Arc<Check>> = checks.into_iter().filter(|check| !check()).collect();
    if !gone.is_empty() {
        notifier
            .checks
            .lock()
            .retain(|c| !gone.iter().any(|g| Arc::ptr_eq(c, g)));
    }
    drop(notifier);
    schedule_watch(weak);
}
