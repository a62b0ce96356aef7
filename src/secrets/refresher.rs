//! The refresher: one thread per process that runs the background refreshes
//! of the remote providers (refresh ahead: a value past its soft deadline is
//! served while it is fetched again here, so no caller of a key that has a
//! value waits for the network).
//!
//! Started on first need. A forked child does not have its parent's thread:
//! the first request in a child starts the child's own (the fork generation
//! tells). The thread waits on a channel and runs each provider handed to it,
//! one at a time; a refresh that panics is caught and the thread goes on.

use super::provider::Provider;
use crate::sys::{self, Mutex};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

/// A refresher: the fork generation that started it and the channel to it.
type Refresher = (u64, Sender<Arc<dyn Provider>>);

/// This process's refresher.
static REFRESHER: Mutex<Option<Refresher>> = Mutex::lazy(|| None);

/// Hands `provider` to the refresher, starting it when this process has
/// none. Costs a lock and a channel send (once per refresh asked, not per
/// get). When no thread can be started the refresh is dropped: the value is
/// served until its TTL, and the get after that fetches, as without refresh
/// ahead.
pub(crate) fn submit(provider: Arc<dyn Provider>) {
    let generation = sys::generation();
    let mut refresher = REFRESHER.lock();
    if let Some((started, sender)) = refresher.as_ref() {
        if *started == generation {
            match sender.send(provider) {
                Ok(()) => return,
                Err(returned) => return start(&mut refresher, generation, returned.0),
            }
        }
    }
    start(&mut refresher, generation, provider);
}

fn start(slot: &mut Option<Refresher>, generation: u64, first: Arc<dyn Provider>) {
    let (sender, receiver) = channel::<Arc<dyn Provider>>();
    let spawned = std::thread::Builder::new()
        .name("st-secrets-refresh".into())
        .spawn(move || {
            for provider in receiver {
                let refresh = std::panic::AssertUnwindSafe(|| provider.refresh_in_background());
                let _ = std::panic::catch_unwind(refresh);
            }
        });
    if spawned.is_ok() && sender.send(first).is_ok() {
        *slot = Some((generation, sender));
    } else {
        *slot = None;
    }
}
