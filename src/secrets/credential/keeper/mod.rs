//! One keeper for every credential the library holds: a Vault login's
//! token, an OAuth 2.0 access token (Google's token endpoint, its STS and
//! metadata server, Microsoft Entra, a managed identity), AWS credentials,
//! an identity token kept fresh in a file. Many sources, one cache, as
//! aws-sdk-go-v2's `CredentialsCache` keeps every AWS credential provider.
//!
//! An [`Issuer`] issues a credential (a login, a token request, the AWS
//! chain's resolution) and may renew it (Vault's `renew-self`); it knows
//! nothing of holding it. A [`Keeper`] holds what its issuer issued, by
//! the one rule of [`Lifetime`]:
//!
//! - the value held is answered until it is due for replacement (80%
//!   through a token's lifetime; five minutes before AWS credentials
//!   expire: [`Credential::replace_at`]), then the next caller issues a new
//!   one; a value whose replacement failed is still answered while it is
//!   usable ([`Credential::usable_until`]: AWS credentials until they
//!   expire; a token never past its replacement point);
//! - a renewable value is renewed on the refresher two thirds through
//!   (jittered), each renewal scheduling the next, never on a caller's
//!   path; a caller renews only a value it finds due with no renewal done
//!   (no process of the node was alive to do it);
//! - a value a service refused is replaced once: the threads (and, with
//!   the node cache, the node's processes) that report the same refused
//!   value share one replacement ([`Keeper::instead_of`]);
//! - kept fresh ([`Keeper::kept_fresh`]), a value that cannot be renewed
//!   is replaced ahead on the refresher two thirds through, and each new
//!   value handed to a callback (`run --identity-token` writes its file);
//!   a failed replacement is tried again after a pause that shrinks as the
//!   value nears its end, never more often than once a second.
//!
//! With the node cache on, the value is one per node: it is written to the
//! node cache's directory (an entry like a secret's, 0600 on tmpfs) until
//! it is due for replacement, with its renewal as the entry's soft
//! deadline; the process that finds it due issues (or renews) the next
//! under the entry's lock while the others wait and read what it wrote. A
//! failed issue is shared for `failure_ttl`, so a refused identity or an
//! unready metadata server costs one request per node per failure TTL, not
//! one per rank.
//!
//! A forked child keeps what its parent held unless the parent was inside
//! the keeper, and schedules its own renewals (the parent's refresher is
//! not the child's).

mod value;

pub use value::{Credential, Issued};

use crate::error::Error;
use crate::secrets::lifetime::{self, Lifetime};
use crate::secrets::node::{Against, Mode, Slot};
use crate::secrets::transport::meter;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings};
use crate::sys::{clock, refresher, ForkFlag, Mutex};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What issues a credential.
pub trait Issuer<T>: Send + Sync + 'static {
    /// A new credential, its requests' retries included.
    ///
    /// # Errors
    /// The issuer's: transient when it did not answer or answered with a
    /// server error, permanent when it refused the identity.
    fn issue(&self) -> Result<Issued<T>, FetchError>;

    /// `held` renewed: the lifetime granted, `None` when refused or not
    /// answered (it then lives out its time). Only asked of a value whose
    /// lifetime [`renews`](Lifetime::renews).
    fn renew(&self, held: &Issued<T>) -> Option<Lifetime> {
        let _ = held;
        None
    }

    /// What issues it, for the status and the doctor ("service account
    /// a@p.iam.gserviceaccount.com (key file /k.json)"), never a secret.
    fn describe(&self) -> String;

    /// How much longer than one fetch's bound an issue may take (a
    /// metadata server waited for at a node's start): the node's other
    /// processes wait that much longer for the one issuing.
    fn longest_wait(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether an issue is a login, counted in the provider's meter (a
    /// fixed token's lookup is not).
    fn logs_in(&self) -> bool {
        true
    }
}

/// What a kept-fresh keeper tells its owner: the new value, or why the
/// replacement failed (the value held stays until it ends).
pub type OnChange<T> = Box<dyn Fn(Result<&Issued<T>, &Error>) + Send + Sync>;

/// The value in use.
struct Held<T> {
    issued: Issued<T>,
    /// Until when it is answered (monotonic ns).
    until: u64,
    /// Whether it is still renewed (a renewal refused: it lives out its
    /// time).
    renewing: bool,
    /// The refresher's work failed or found nothing due: tried again then
    /// (monotonic ns).
    retry_at: Option<u64>,
    /// Its next job is scheduled on this process's refresher.
    scheduled: ForkFlag,
}

impl<T: Credential> Held<T> {
    /// How long before a failed job is tried again: when a copy of the
    /// value would be looked at again ([`lifetime::look_again_in`]: a
    /// quarter of what it has left, at least a second), at most 30 seconds.
    fn pause(&self) -> Duration {
        let l = &self.issued.lifetime;
        let left = match l.endless() {
            true => lifetime::LONGEST,
            false => Duration::from_nanos(l.end().saturating_sub(clock::precise())),
        };
        lifetime::look_again_in(left).min(Duration::from_secs(30))
    }
}

/// The owner of one identity's credential; see the module documentation.
pub struct Keeper<T: Credential> {
    /// This keeper, for the jobs it hands the refresher.
    me: Weak<Keeper<T>>,
    issuer: Box<dyn Issuer<T>>,
    held: Mutex<Option<Held<T>>>,
    /// With the node cache on, the value is shared by the node's processes
    /// through this slot, used with a credential's settings.
    slot: Option<(Slot, RemoteSettings)>,
    /// Kept fresh: replaced ahead on the refresher, each change told here.
    on_change: Option<OnChange<T>>,
    /// Issues and their waits, counted for the provider in the meter.
    counted: meter::Local,
    /// The provider the renewals are counted for.
    provider: &'static str,
    /// Holds a preloaded value not [`start`](Self::start)ed yet.
    preloaded: std::sync::atomic::AtomicBool,
}

impl<T: Credential> Keeper<T> {
    /// The keeper of `issuer`'s credentials for `provider` (its counters),
    /// shared through `slot` when given (with the provider's settings, as
    /// a credential's slot uses them: [`RemoteSettings::for_credential`],
    /// its waits lengthened by the issuer's
    /// [`longest_wait`](Issuer::longest_wait)).
    pub fn new(
        provider: &'static str,
        issuer: Box<dyn Issuer<T>>,
        slot: Option<(Slot, RemoteSettings)>,
    ) -> Arc<Keeper<T>> {
        Keeper::build(provider, issuer, slot, None)
    }

    /// A keeper of this process's own that holds `first`, replaces it
    /// ahead on the refresher and tells `on_change` each new value and
    /// each failed replacement.
    pub fn kept_fresh(
        provider: &'static str,
        issuer: Box<dyn Issuer<T>>,
        on_change: OnChange<T>,
        first: Issued<T>,
    ) -> Arc<Keeper<T>> {
        let keeper = Keeper::build(provider, issuer, None, Some(on_change));
        keeper.hold(&mut keeper.held.lock(), first, None, false);
        keeper
    }

    /// A keeper of this process's own preloaded with `first`, a value
    /// given whose lifetime is not known yet (a fixed token): answered as
    /// it is, and once [`start`](Self::start)ed its issuer asked on the
    /// refresher (the lifetime it finds, its renewals after it), never on
    /// a caller's path; a failed ask is tried again after a pause. As
    /// Vault Agent hands a preloaded token to its one auth loop.
    pub fn preloaded(
        provider: &'static str,
        issuer: Box<dyn Issuer<T>>,
        first: T,
    ) -> Arc<Keeper<T>> {
        let keeper = Keeper::build(provider, issuer, None, None);
        // Held as endless (never due on a caller's path) until started.
        *keeper.held.lock() = Some(Held {
            issued: Issued {
                value: first,
                lifetime: Lifetime::new(Duration::ZERO, false),
            },
            until: u64::MAX,
            renewing: false,
            retry_at: None,
            scheduled: ForkFlag::new(),
        });
        keeper
            .preloaded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        keeper
    }

    /// Starts a preloaded value's clock, once (a service took it: a value
    /// it refused is not worth asking about): its issuer asked on the
    /// refresher now.
    pub fn start(&self) {
        if !self
            .preloaded
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if let Some(h) = self.held.lock().as_mut() {
            h.retry_at = Some(clock::precise());
            self.schedule(h);
        }
    }

    fn build(
        provider: &'static str,
        issuer: Box<dyn Issuer<T>>,
        slot: Option<(Slot, RemoteSettings)>,
        on_change: Option<OnChange<T>>,
    ) -> Arc<Keeper<T>> {
        let longer = issuer.longest_wait();
        let slot = slot.map(|(s, settings)| (s, settings.for_credential(longer)));
        Arc::new_cyclic(|me| Keeper {
            me: me.clone(),
            issuer,
            held: Mutex::with_fresh(None, || None),
            slot,
            on_change,
            counted: meter::Local::new(provider),
            provider,
            preloaded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The value to use now: the one held until it is due, else the
    /// node's (with the node cache on), else a new one.
    ///
    /// # Errors
    /// The issuer's, when no usable value is held.
    pub fn get(&self) -> Result<T, FetchError> {
        self.value(None)
    }

    /// A value in place of `refused`, which a service refused: the one
    /// held when another thread (or process of the node) replaced it
    /// already, else a new one.
    ///
    /// # Errors
    /// The issuer's.
    pub fn instead_of(&self, refused: &T) -> Result<T, FetchError> {
        self.value(Some(refused))
    }

    /// The value held and its lifetime, without a request (`None`: none
    /// yet, or no longer usable).
    pub fn held(&self) -> Option<(T, Lifetime)> {
        let held = self.held.lock();
        let h = held
            .as_ref()
            .filter(|h| !lifetime::passed(h.issued.usable_until()))?;
        Some((h.issued.value.clone(), h.issued.lifetime))
    }

    /// Issues answered, those that failed to reach the issuer, and the
    /// slowest one's wait.
    pub fn issues(&self) -> (u64, u64, Duration) {
        self.counted.logins()
    }

    /// What issues the values and how many of them (`noun`, plural with
    /// an s) this process issued: "a counter (2 tokens issued by this
    /// process, shared with the node's processes)".
    pub fn describe(&self, noun: &str) -> String {
        let issued = (format!("{noun} issued"), format!("{noun}s issued"));
        format!(
            "{} ({})",
            self.issuer.describe(),
            self.tally(&issued.0, &issued.1)
        )
    }

    /// How many values this process issued, named `one` or `many`, and
    /// whether the node's processes share them: "2 resolutions by this
    /// process, shared with the node's processes".
    pub fn tally(&self, one: &str, many: &str) -> String {
        let (n, _, _) = self.issues();
        let shared = match self.slot {
            Some(_) => ", shared with the node's processes",
            None => "",
        };
        format!(
            "{n} {} by this process{shared}",
            if n == 1 { one } else { many }
        )
    }

    /// Whether the value is shared with the node's processes.
    pub fn shared(&self) -> bool {
        self.slot.is_some()
    }

    fn value(&self, refused: Option<&T>) -> Result<T, FetchError> {
        let mut held = self.held.lock();
        if let Some(h) = held.as_mut() {
            let is_refused = refused.is_some_and(|r| r.id() == h.issued.value.id());
            if !is_refused && !lifetime::passed(h.until) {
                // Its renewal is on the refresher (a forked child's own).
                self.schedule(h);
                return Ok(h.issued.value.clone());
            }
        }
        let before = held.take();
        let found = match &self.slot {
            None => self.renew_or_issue(before.as_ref()).map(|i| (i, None)),
            Some((slot, settings)) => {
                let mode = if refused.is_some() {
                    Mode::Force
                } else {
                    Mode::Get
                };
                let judge = |entry: &Fetched<Issued<T>>| {
                    let id = match entry {
                        Fetched::Found(i) => Some(i.value.id()),
                        Fetched::Absent => None,
                    };
                    Against::of(refused.map(Credential::id), id)
                };
                let answer = slot.fetch(settings, mode, &judge, || {
                    self.renew_or_issue(before.as_ref()).map(Fetched::Found)
                });
                shared_answer(answer.outcome, answer.remaining)
            }
        };
        match found {
            Ok((issued, remaining)) => Ok(self.hold(&mut held, issued, remaining, false)),
            // A value still usable is answered while its replacement fails
            // (AWS credentials until they expire), never one refused.
            Err(e) => match before
                .filter(|b| refused.is_none() && !lifetime::passed(b.issued.usable_until()))
            {
                Some(b) => {
                    let value = b.issued.value.clone();
                    *held = Some(b);
                    Ok(value)
                }
                None => Err(e),
            },
        }
    }

    /// Holds `issued` (read from the node's entry with `remaining` left, or
    /// issued here) and schedules what is due next; its value. On the
    /// refresher (`ahead`), a value whose next job is due already (the
    /// node's entry was not renewed: a recent failure kept it) is looked
    /// at again after a pause.
    fn hold(
        &self,
        held: &mut Option<Held<T>>,
        issued: Issued<T>,
        remaining: Option<Duration>,
        ahead: bool,
    ) -> T {
        let until = match remaining {
            Some(left) => lifetime::from_now(left).min(issued.replace_at()),
            None => issued.replace_at(),
        };
        let value = issued.value.clone();
        if lifetime::passed(issued.usable_until()) {
            // Issued ended already (a lifetime shorter than the request
            // took): used for this request only, never held.
            *held = None;
            return value;
        }
        // Issued due already (AWS credentials of under five minutes):
        // held, for their source and while the next issue fails.
        let mut h = Held {
            issued,
            until,
            renewing: true,
            retry_at: None,
            scheduled: ForkFlag::new(),
        };
        if ahead && self.next_at(&h).is_some_and(lifetime::passed) {
            h.retry_at = Some(lifetime::from_now(h.pause()));
        }
        self.schedule(&mut h);
        *held = Some(h);
        value
    }

    /// For a caller that found the value due: `before` renewed when it
    /// still may be (no process renewed it ahead), else a new issue.
    fn renew_or_issue(&self, before: Option<&Held<T>>) -> Result<Issued<T>, FetchError> {
        let renewable = before.filter(|b| {
            b.renewing && b.issued.lifetime.renews() && !lifetime::passed(b.issued.usable_until())
        });
        if let Some(b) = renewable {
            if let Some(l) = self.renew(&b.issued).filter(Lifetime::renews) {
                return Ok(Issued {
                    value: b.issued.value.clone(),
                    lifetime: l,
                });
            }
        }
        self.issue()
    }

    fn issue(&self) -> Result<Issued<T>, FetchError> {
        let began = Instant::now();
        let issued = self.issuer.issue();
        // A refusal is an answer; a transient failure may have reached no
        // issuer.
        let answered = issued.as_ref().map_or_else(|f| !f.transient, |_| true);
        if self.issuer.logs_in() {
            self.counted.login(began.elapsed(), answered);
        }
        issued
    }

    fn renew(&self, issued: &Issued<T>) -> Option<Lifetime> {
        let l = self.issuer.renew(issued)?;
        meter::add(self.provider, |c| c.renewals += 1);
        Some(l)
    }

    /// When the refresher next works on `h`: a job's retry, else its
    /// renewal (the node's at the entry's soft deadline, this process's
    /// jittered), else (kept fresh) its replacement ahead.
    fn next_at(&self, h: &Held<T>) -> Option<u64> {
        let l = &h.issued.lifetime;
        let renew = || match self.slot {
            Some(_) => l.renew_at(),
            None => l.renew_at_jittered(),
        };
        h.retry_at
            .or_else(|| h.renewing.then(renew).flatten())
            .or_else(|| (self.on_change.is_some() && !l.endless()).then(|| l.refetch_at()))
    }

    /// Schedules `h`'s next job on the refresher, unless one is already.
    fn schedule(&self, h: &mut Held<T>) {
        let Some(at) = self.next_at(h) else {
            return;
        };
        if !h.scheduled.set() {
            return;
        }
        let delay = Duration::from_nanos(at.saturating_sub(clock::precise()));
        let me = self.me.clone();
        refresher::submit_after(
            delay,
            Box::new(move || {
                if let Some(keeper) = me.upgrade() {
                    keeper.ahead();
                }
            }),
        );
    }

    /// The refresher's work: the value held renewed (or, kept fresh,
    /// replaced) ahead of its end, and the next job scheduled.
    fn ahead(&self) {
        let mut held = self.held.lock();
        let Some(mut before) = held.take() else {
            return;
        };
        before.scheduled.take();
        before.retry_at = None;
        if self.on_change.is_none() && lifetime::passed(before.until) {
            // Not used since it ended: the next caller replaces it.
            *held = Some(before);
            return;
        }
        match self.next_ahead(&mut before) {
            Some(Ok((issued, remaining))) => {
                if let Some(tell) = &self.on_change {
                    tell(Ok(&issued));
                }
                self.hold(&mut held, issued, remaining, true);
            }
            Some(Err(f)) => {
                if let Some(tell) = &self.on_change {
                    tell(Err(&f.error));
                }
                before.retry_at = Some(lifetime::from_now(before.pause()));
                self.schedule(&mut before);
                *held = Some(before);
            }
            // A renewal refused: it lives out its time, and the caller
            // after that replaces it.
            None => *held = Some(before),
        }
    }

    /// What replaces `before` ahead: the node's (the first refresher to
    /// find it due renews or replaces it under the entry's lock, the others
    /// read it), this process's own renewed, or (kept fresh) a new one;
    /// `None`: its renewal was refused.
    fn next_ahead(&self, before: &mut Held<T>) -> Option<Found<T>> {
        let renews = before.renewing && before.issued.lifetime.renews();
        Some(match &self.slot {
            Some((slot, settings)) => {
                let answer = slot.fetch(settings, Mode::Ahead, &|_| Against::Nothing, || {
                    self.renew_or_issue(Some(before)).map(Fetched::Found)
                });
                shared_answer(answer.outcome, answer.remaining)
            }
            None if renews => match self.renew(&before.issued) {
                Some(lifetime) => {
                    let value = before.issued.value.clone();
                    Ok((Issued { value, lifetime }, None))
                }
                None => {
                    before.renewing = false;
                    return None;
                }
            },
            None => self.issue().map(|i| (i, None)),
        })
    }
}

/// A value found (with its time left when read from the node's entry), or
/// why none was.
type Found<T> = Result<(Issued<T>, Option<Duration>), FetchError>;

/// A value read through the node's slot, or why none was.
fn shared_answer<T>(
    outcome: Result<Fetched<Issued<T>>, FetchError>,
    remaining: Option<Duration>,
) -> Found<T> {
    match outcome? {
        Fetched::Found(issued) => Ok((issued, remaining)),
        Fetched::Absent => Err(FetchError::transient(Error::Internal(
            "the node's shared credential entry is empty".into(),
        ))),
    }
}

#[cfg(test)]
mod tests;
