//! One rule for everything that expires: a Vault token (fixed, from a file,
//! or a login's), a leased secret, an identity token, AWS credentials, an
//! OAuth access token (Google's, Microsoft's: held by `credential::keeper`).
//!
//! A [`Lifetime`] is what a server granted (a TTL, whether it may be
//! renewed) and when, in the node's monotonic clock (`CLOCK_MONOTONIC`
//! nanoseconds, the clock of `Instant` and of the node cache's entries, so
//! an entry shared by the node's processes keeps it). It answers every
//! question of timing, and no fraction is spelled anywhere else:
//!
//! - **renewed** two thirds through its TTL, while it is renewable and
//!   each renewal still grants at least [`MIN_RENEWED_TTL`] (near its max
//!   TTL the renewals come closer together until the grant falls under
//!   that); as Vault's Go client's `LifetimeWatcher` sleeps two thirds of
//!   the lease before renewing;
//! - **replaced** (a new login, a new credential) 80% through, when it can
//!   no longer be renewed;
//! - a leased credential is **taken to end** a third of its TTL early, at
//!   most a minute (the server counts whole seconds, and a credential
//!   fetched just before its end is used a moment later: a connection set
//!   up on a loaded machine takes over a second); a held one is kept while
//!   more than 40% of its TTL is left before that end, renewed after that,
//!   and replaced when its renewal is refused or granted less; the caches
//!   keep it until that end and fetch it again (renewing it) from the
//!   point its renewal is due ([`Lifetime::renew_from`]), whatever their
//!   own refresh-ahead fraction;
//! - AWS credentials with an absolute expiry are refreshed
//!   [`AWS_REFRESH_BEFORE`] (five minutes) before it, as the AWS SDKs do.
//!
//! Grants are taken as at most [`LONGEST`] (ten years), so no deadline
//! overflows however large a server's number.

use crate::sys::clock;
use std::time::{Duration, Instant};

/// The longest TTL taken from a server: ten years.
pub const LONGEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Renewals stop when a grant falls under this (the max TTL is near): the
/// thing then lives out its time and is replaced.
pub const MIN_RENEWED_TTL: Duration = Duration::from_secs(2);

/// AWS credentials with an expiry are refreshed this long before it.
pub const AWS_REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The part of a TTL after which a renewable thing is renewed.
const RENEW: (u32, u32) = (2, 3);
/// The part after which a thing that cannot be renewed is replaced.
const REPLACE: (u32, u32) = (4, 5);
/// A leased credential is taken to end this part of its TTL early...
const TAKEN_EARLY: (u32, u32) = (1, 3);
/// ... at most this much.
const TAKEN_EARLY_AT_MOST: Duration = Duration::from_secs(60);
/// A held leased credential is renewed once less than this part of its TTL
/// is left before its taken end.
const RENEW_WHEN_LEFT: (u32, u32) = (2, 5);
/// A copy of a credential held elsewhere (a job's file a program reads) is
/// looked at again when this part of its time left has passed.
const LOOK_AGAIN: (u32, u32) = (1, 4);
/// ... and never sooner than this.
pub const LOOK_AGAIN_AT_LEAST: Duration = Duration::from_secs(1);

/// `part` of `d` (`d * num / den`, exact in nanoseconds, saturating).
fn part(d: Duration, (num, den): (u32, u32)) -> Duration {
    d.min(LONGEST) * num / den
}

/// When to look again at a copy of a credential held elsewhere (a job's
/// file) that ends `left` from now: a quarter of it (`LOOK_AGAIN`), at
/// least [`LOOK_AGAIN_AT_LEAST`].
pub fn look_again_in(left: Duration) -> Duration {
    part(left, LOOK_AGAIN).max(LOOK_AGAIN_AT_LEAST)
}

/// What a server granted, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// The TTL granted (at most [`LONGEST`]); zero: it never expires.
    ttl: Duration,
    /// Whether the server allows its renewal.
    renewable: bool,
    /// When it was granted, in monotonic nanoseconds.
    start: u64,
}

/// What to do with a held leased credential now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Keep it as it is: no request.
    Keep,
    /// Renew it (for its whole TTL again).
    Renew,
    /// Get a new one (it cannot be renewed, or has ended).
    Replace,
}

impl Lifetime {
    /// `ttl` granted now (zero: never expires).
    pub fn new(ttl: Duration, renewable: bool) -> Lifetime {
        Lifetime::since(clock::precise(), ttl, renewable)
    }

    /// `ttl` granted at `start` (monotonic nanoseconds).
    pub fn since(start: u64, ttl: Duration, renewable: bool) -> Lifetime {
        Lifetime {
            ttl: ttl.min(LONGEST),
            renewable,
            start,
        }
    }

    /// The TTL granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the server allows its renewal.
    pub fn renewable(&self) -> bool {
        self.renewable
    }

    /// When it was granted (monotonic nanoseconds).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Whether it never expires (a TTL of zero).
    pub fn endless(&self) -> bool {
        self.ttl.is_zero()
    }

    /// Whether a renewal is worth asking: renewable, and the last grant at
    /// least [`MIN_RENEWED_TTL`].
    pub fn renews(&self) -> bool {
        self.renewable && self.ttl >= MIN_RENEWED_TTL
    }

    /// `d` after its start, in monotonic nanoseconds.
    fn after(&self, d: Duration) -> u64 {
        self.start.saturating_add(nanos(d))
    }

    /// When to renew it (two thirds through); `None` when it [`renews`]
    /// not, or never expires.
    ///
    /// [`renews`]: Self::renews
    pub fn renew_at(&self) -> Option<u64> {
        (self.renews() && !self.endless()).then(|| self.after(part(self.ttl, RENEW)))
    }

    /// [`renew_at`](Self::renew_at) brought forward by up to a tenth of
    /// the time to it, at random (Vault's Go client does the same), so that
    /// the processes that got their tokens together do not renew together.
    pub fn renew_at_jittered(&self) -> Option<u64> {
        let at = self.renew_at()?;
        let span = at.saturating_sub(self.start) as f64;
        Some(at.saturating_sub((span * crate::sys::random_unit() / 10.0) as u64))
    }

    /// When to replace it with a new one (80% through); `None`: never
    /// expires.
    pub fn replace_at(&self) -> Option<u64> {
        (!self.endless()).then(|| self.after(part(self.ttl, REPLACE)))
    }

    /// [`replace_at`](Self::replace_at) brought forward by up to a tenth
    /// of the time to it, by a fraction fixed by when it was issued: the
    /// same for every process holding it (a node's shared entry keeps its
    /// start), another for another node's, so that nodes that got theirs
    /// together do not replace them together.
    pub fn replace_at_spread(&self) -> Option<u64> {
        let at = self.replace_at()?;
        let span = u128::from(at.saturating_sub(self.start));
        // splitmix64's finalizer: the start's bits spread over 0..1000.
        let mut x = self.start.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let early = span * u128::from(x % 1000) / 10_000;
        Some(at.saturating_sub(u64::try_from(early).unwrap_or(0)))
    }

    /// When it ends (monotonic ns; saturating, for one that never does).
    pub fn end(&self) -> u64 {
        self.after(self.ttl)
    }

    /// When it is next due: renewed when it [`renews`](Self::renews), else
    /// replaced; `None`: never.
    pub fn next_at(&self) -> Option<u64> {
        self.renew_at().or_else(|| self.replace_at())
    }

    /// When a thing that is replaced rather than renewed (an identity token
    /// of a fixed TTL) is replaced: two thirds through, at least a second
    /// after its start.
    pub fn refetch_at(&self) -> u64 {
        self.after(part(self.ttl, RENEW).max(Duration::from_secs(1)))
    }

    /// When a leased credential is taken to end: a third of its TTL early,
    /// at most a minute.
    pub fn taken_end(&self) -> u64 {
        let early = part(self.ttl, TAKEN_EARLY).min(TAKEN_EARLY_AT_MOST);
        self.after(self.ttl.min(LONGEST).saturating_sub(early))
    }

    /// When a held leased credential is due for renewal (monotonic ns):
    /// once less than 40% of its TTL is left before its taken end.
    pub fn renew_from(&self) -> u64 {
        self.taken_end()
            .saturating_sub(nanos(part(self.ttl, RENEW_WHEN_LEFT)))
    }

    /// How long a leased credential has left now before its taken end
    /// (zero once past it).
    pub fn left(&self) -> Duration {
        Duration::from_nanos(self.taken_end().saturating_sub(clock::precise()))
    }

    /// What to do now with a held leased credential of `id` (empty: an end
    /// without a lease, as a certificate's).
    pub fn due(&self, has_id: bool) -> Due {
        if !passed(self.renew_from()) {
            Due::Keep
        } else if self.renewable && has_id && !self.left().is_zero() {
            Due::Renew
        } else {
            Due::Replace
        }
    }

    /// The same thing renewed now, when `granted` is all it asked (its TTL
    /// again); `None`: granted less (its max TTL is near), replace it.
    pub fn renewed(&self, granted: Duration) -> Option<Lifetime> {
        (granted.as_secs() >= self.ttl.as_secs()).then(|| Lifetime::new(self.ttl, self.renewable))
    }
}

/// `d` in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `d` from now, in monotonic nanoseconds (saturating).
pub fn from_now(d: Duration) -> u64 {
    clock::precise().saturating_add(nanos(d))
}

/// `at` (monotonic nanoseconds) as an `Instant` (the same clock on Linux).
pub fn instant(at: u64) -> Instant {
    let (now_ns, now) = (clock::precise(), Instant::now());
    match at.checked_sub(now_ns) {
        Some(ahead) => now.checked_add(Duration::from_nanos(ahead)).unwrap_or(now),
        None => now
            .checked_sub(Duration::from_nanos(now_ns - at))
            .unwrap_or(now),
    }
}

/// Whether `at` (monotonic nanoseconds) has come.
pub fn passed(at: u64) -> bool {
    clock::precise() >= at
}

/// An end said as an RFC 3339 timestamp (`2026-11-21T10:00:00Z`, with
/// optional fractional seconds and an offset: AWS's, Google's, a token
/// exchange's), read by `aws-smithy-types`, which the signing crates
/// already bring. `None` for anything else,
/// including dates a `SystemTime` cannot hold.
pub fn parse_timestamp(s: &str) -> Option<std::time::SystemTime> {
    let at = aws_smithy_types::date_time::DateTime::from_str(
        s.trim(),
        aws_smithy_types::date_time::Format::DateTimeWithOffset,
    )
    .ok()?;
    std::time::SystemTime::try_from(at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn renewed_two_thirds_through_replaced_at_80_percent() {
        let l = Lifetime::since(0, Duration::from_secs(30), true);
        assert_eq!(l.renew_at(), Some(20 * S));
        let jittered = l.renew_at_jittered().unwrap();
        assert!((18 * S..=20 * S).contains(&jittered), "{jittered}");
        assert_eq!(l.replace_at(), Some(24 * S));
        assert_eq!(l.next_at(), Some(20 * S));
        // Not renewable, or a grant under two seconds: replaced at 80%.
        let once = Lifetime::since(0, Duration::from_secs(30), false);
        assert_eq!((once.renew_at(), once.next_at()), (None, Some(24 * S)));
        let short = Lifetime::since(0, Duration::from_secs(1), true);
        assert!(!short.renews() && short.next_at() == Some(800_000_000));
        // Never expires.
        let endless = Lifetime::since(0, Duration::ZERO, true);
        assert_eq!((endless.next_at(), endless.replace_at()), (None, None));
    }

    #[test]
    fn huge_grants_never_overflow() {
        for ttl in [u64::MAX, 1 << 63, u64::MAX / 2] {
            let l = Lifetime::new(Duration::from_secs(ttl), true);
            assert_eq!(l.ttl(), LONGEST);
            assert!(l.renew_at().unwrap() > clock::precise());
            assert!(instant(l.taken_end()) > Instant::now());
        }
    }

    #[test]
    fn a_lease_ends_a_third_early_at_most_a_minute() {
        let l = Lifetime::new(Duration::from_secs(4), true);
        assert!(l.left() <= Duration::from_millis(2667) && l.left() > Duration::from_secs(2));
        let long = Lifetime::since(0, Duration::from_secs(3600), true);
        assert_eq!(long.taken_end(), 3540 * S);
        assert_eq!(long.renew_from(), 2100 * S);
        // Kept with more than 40% left, renewed after, replaced when it
        // cannot be renewed or has ended.
        assert_eq!(l.due(true), Due::Keep);
        let old = Lifetime::since(clock::precise() - 2 * S, Duration::from_secs(4), true);
        assert_eq!(old.due(true), Due::Renew);
        assert_eq!(old.due(false), Due::Replace);
        let ended = Lifetime::since(0, Duration::from_secs(4), true);
        assert_eq!(ended.due(true), Due::Replace);
        assert!(l.renewed(Duration::from_secs(4)).is_some());
        assert!(l.renewed(Duration::from_secs(3)).is_none());
    }

    #[test]
    fn an_identity_token_is_replaced_two_thirds_through_and_never_faster_than_a_second() {
        assert_eq!(
            Lifetime::since(0, Duration::from_secs(3), false).refetch_at(),
            2 * S
        );
        assert_eq!(Lifetime::since(0, Duration::ZERO, false).refetch_at(), S);
    }

    #[test]
    fn a_replacement_is_spread_per_credential_and_fixed_for_each() {
        let ttl = Duration::from_secs(3600);
        let part_of = |l: &Lifetime| {
            (l.replace_at_spread().unwrap() - l.start()) as f64 / ttl.as_nanos() as f64
        };
        // Nodes that exchanged within the same 100 ms.
        let parts: Vec<f64> = (0..100u64)
            .map(|i| part_of(&Lifetime::since(5_000_000_000 + i * 1_000_000, ttl, false)))
            .collect();
        assert!(parts.iter().all(|p| (0.72..=0.8).contains(p)), "{parts:?}");
        let (lo, hi) = parts
            .iter()
            .fold((1.0f64, 0.0f64), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
        assert!(
            lo < 0.74 && hi > 0.78,
            "spread over 72% to 80%: {lo} .. {hi}"
        );
        // The same credential: the same point, whoever asks and when.
        let l = Lifetime::since(7_000_000_000, ttl, false);
        assert_eq!(l.replace_at_spread(), l.replace_at_spread());
        assert_eq!(
            Lifetime::since(1, Duration::ZERO, false).replace_at_spread(),
            None
        );
    }

    #[test]
    fn a_copy_held_elsewhere_is_looked_at_again_a_quarter_of_its_time_left_on() {
        assert_eq!(
            look_again_in(Duration::from_secs(400)),
            Duration::from_secs(100)
        );
        assert_eq!(look_again_in(Duration::from_secs(2)), LOOK_AGAIN_AT_LEAST);
        assert_eq!(look_again_in(Duration::ZERO), LOOK_AGAIN_AT_LEAST);
        assert_eq!(look_again_in(Duration::MAX), LONGEST / 4);
    }
}
