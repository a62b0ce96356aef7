//! The monotonic clocks the cache reads, in nanoseconds of `CLOCK_MONOTONIC` (the clock of
//! `std::time::Instant` on Linux).
//!
//! A hot get reads the coarse clock (`CLOCK_MONOTONIC_COARSE`: the time of
//! the last kernel tick, 1 to 10 ms behind, a few nanoseconds to read, no
//! `rdtsc`). It is never ahead of the precise clock, so an entry whose expiry
//! the coarse clock has passed is expired. An entry with more than [`SLACK`]
//! left by the coarse clock is live unless the coarse clock stalled for a
//! whole second: one second is 100 to 1,000 ticks. In an entry's last
//! second, and for TTLs shorter than that, the precise clock decides, so an
//! expired entry is never returned.

/// How far the coarse clock may be trusted to lag behind the precise one.
pub(crate) const SLACK: u64 = 1_000_000_000;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; both clocks exist on every Linux
    // the library supports (2.6.32 and later), so the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    // Monotonic time since boot: non-negative, and centuries from overflow.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The precise monotonic clock.
#[inline]
pub(crate) fn precise() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// The coarse monotonic clock (the precise one where there is none).
#[inline]
pub(crate) fn coarse() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return read(libc::CLOCK_MONOTONIC_COARSE);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return precise();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_is_never_ahead_and_lags_less_than_the_slack() {
        for _ in 0..1000 {
            let c = coarse();
            let p = precise();
            assert!(c <= p, "coarse {c} ahead of precise {p}");
            assert!(p - c < SLACK, "coarse {c} lags precise {p} by a second");
        }
    }
}
