//! A process-wide value built on first use that can be dropped and rebuilt
//! (the default secrets manager, the credential cipher).

use crate::error::Error;
use crate::sys::Mutex;
use std::sync::Arc;

/// Holds an `Arc<T>` built by the first successful `get_or_try_init`;
/// `reset` drops it (holders of earlier `Arc`s keep theirs). A child forked
/// while its parent was building the value builds its own.
pub(crate) struct ResettableLazy<T>(Mutex<Option<Arc<T>>>);

impl<T> ResettableLazy<T> {
    pub(crate) const fn new() -> Self {
        ResettableLazy(Mutex::lazy(|| None))
    }

    /// The value, building it with `init` when there is none (under the
    /// lock: concurrent first callers wait for one build). A failed `init`
    /// leaves nothing behind, so the next call tries again.
    pub(crate) fn get_or_try_init(
        &self,
        init: impl FnOnce() -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        let mut slot = self.0.lock();
        if let Some(v) = slot.as_ref() {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new(init()?);
        *slot = Some(Arc::clone(&v));
        Ok(v)
    }

    pub(crate) fn reset(&self) {
        *self.0.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_retries_after_failure_and_resets() {
        let lazy = ResettableLazy::<u32>::new();
        assert!(lazy
            .get_or_try_init(|| Err(Error::Key("no".into())))
            .is_err());
        let a = lazy.get_or_try_init(|| Ok(1)).unwrap();
        let b = lazy.get_or_try_init(|| Ok(2)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        lazy.reset();
        assert_eq!(*lazy.get_or_try_init(|| Ok(3)).unwrap(), 3);
        assert_eq!(*a, 1, "earlier holders keep their value");
    }
}
