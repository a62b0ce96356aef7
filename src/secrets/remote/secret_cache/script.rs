//! Test caches whose every fetch is the one step the calling thread hands
//! it, as a closure per call: `cache.get_with(|| found("v1"))` fetches "v1"
//! if the cache fetches at all, and a step that panics says the test did not
//! expect a fetch. Their refreshes wait for the test ([`Runner::ByHand`]).

use super::{Answer, Fetched, Runner, SecretCache, Versioned};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::node::entry::Shareable;
use crate::secrets::node::Slot;
use crate::secrets::provider::{KeyChange, SecretMap, Version};
use crate::secrets::transport::{FetchError, RemoteSettings};
use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// A step: what one fetch answers.
pub(crate) type Step<T> = Box<dyn FnOnce() -> Result<Fetched<T>, FetchError>>;

thread_local! {
    /// The step of the call in progress on this thread (a `Step<T>`).
    static STEP: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `call` with `step` as the answer of any fetch it makes.
fn with_step<T: 'static, R>(
    step: impl FnOnce() -> Result<Fetched<T>, FetchError> + 'static,
    call: impl FnOnce() -> R,
) -> R {
    let step: Step<T> = Box::new(step);
    let outer = STEP.with(|s| s.borrow_mut().replace(Box::new(step)));
    let result = call();
    STEP.with(|s| *s.borrow_mut() = outer);
    result
}

/// The loader of a scripted cache: the calling thread's step.
fn scripted_load<T: 'static>(
    _held: Option<&T>,
    _why: super::Reason<'_>,
) -> Result<Fetched<T>, FetchError> {
    let step = STEP
        .with(|s| s.borrow_mut().take())
        .expect("a fetch with no step: the test did not expect one");
    let step = step
        .downcast::<Step<T>>()
        .expect("a step of the cache's type");
    step()
}

impl<T: Versioned + Shareable + Send + Sync + 'static> SecretCache<T> {
    /// A cache over `settings` whose fetches are the calling thread's steps.
    pub(crate) fn scripted(settings: RemoteSettings) -> Arc<Self> {
        Self::scripted_through(settings, None)
    }

    /// [`scripted`](Self::scripted), sharing through the node cache's `node`.
    pub(crate) fn scripted_through(settings: RemoteSettings, node: Option<Slot>) -> Arc<Self> {
        Self::scripted_telling(settings, node, Box::new(|_: Vec<KeyChange>| {}))
    }

    /// [`scripted_through`](Self::scripted_through), telling `changed`.
    pub(crate) fn scripted_telling(
        settings: RemoteSettings,
        node: Option<Slot>,
        changed: super::Changed,
    ) -> Arc<Self> {
        SecretCache::new(
            settings,
            node,
            Box::new(scripted_load::<T>),
            changed,
            Runner::ByHand,
        )
    }

    /// [`get`](Self::get), fetching with `step` if it fetches.
    pub(crate) fn get_with(
        &self,
        step: impl FnOnce() -> Result<Fetched<T>, FetchError> + 'static,
    ) -> Answer<T> {
        with_step(step, || self.get())
    }

    /// [`force`](Self::force), fetching with `step` if it fetches.
    pub(crate) fn force_with(
        &self,
        min_interval: Duration,
        step: impl FnOnce() -> Result<Fetched<T>, FetchError> + 'static,
    ) -> Answer<T> {
        with_step(step, || self.force(min_interval, None))
    }

    /// [`force`](Self::force) reporting that version `failed` failed,
    /// fetching with `step` if it fetches.
    pub(crate) fn report_with(
        &self,
        min_interval: Duration,
        failed: &str,
        step: impl FnOnce() -> Result<Fetched<T>, FetchError> + 'static,
    ) -> Answer<T> {
        with_step(step, || self.force(min_interval, Some(failed)))
    }

    /// [`refresh_now`](Self::refresh_now), fetching with `step` if it fetches.
    pub(crate) fn refresh_with(
        &self,
        step: impl FnOnce() -> Result<Fetched<T>, FetchError> + 'static,
    ) {
        with_step(step, || self.refresh_now())
    }
}

impl SecretCache<SecretMap> {
    /// [`lookup`](Self::lookup), fetching with `step` if it fetches.
    pub(crate) fn lookup_with(
        &self,
        key: &str,
        step: impl FnOnce() -> Result<Fetched<SecretMap>, FetchError> + 'static,
    ) -> Result<Option<SecretString>, Error> {
        with_step(step, || self.lookup(key))
    }

    /// [`lookup_versioned`](Self::lookup_versioned), fetching with `step`.
    pub(crate) fn lookup_versioned_with(
        &self,
        key: &str,
        step: impl FnOnce() -> Result<Fetched<SecretMap>, FetchError> + 'static,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        with_step(step, || self.lookup_versioned(key))
    }
}
