//! An OAuth 2.0 access token, whatever issues it (Google's token endpoint,
//! Google's STS, the metadata server, IAM's impersonation), held by the one
//! rule of [`Lifetime`] for what cannot be renewed: replaced 80% through
//! its lifetime, counted from when its request was sent, and never sent to
//! a service after that.
//!
//! With the node cache on, a token is one per node: it is written to the
//! node cache's directory (an entry like a secret's, 0600 on tmpfs) until
//! it is due for replacement; the process that finds it due issues the
//! next under the entry's lock while the others wait and read what it
//! wrote. A failed issue is shared for `failure_ttl`, so a refused identity
//! or an unready metadata server costs one request per node per failure
//! TTL, not one per rank. A token a service refused is replaced by a forced
//! issue that the node's simultaneous refusals share.

use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::lifetime::{self, Lifetime};
use crate::secrets::provider::zeroize_json;
use crate::secrets::remote::meter;
use crate::secrets::remote::node::entry::Shareable;
use crate::secrets::remote::node::{Against, Mode, Slot};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::{FetchError, RemoteSettings};
use crate::sys::Mutex;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The lifetime taken for a token whose issuer did not say one: five
/// minutes (it is replaced after four).
pub const UNSAID_TTL: Duration = Duration::from_secs(300);

/// A token as it was issued: what the node's processes share.
pub struct Issued {
    /// The access token.
    pub token: SecretString,
    /// Its lifetime, from when its request was sent.
    pub lifetime: Lifetime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("ttl", &self.lifetime.ttl())
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// `token` granted for `expires_in` seconds (the OAuth answer's field;
    /// [`UNSAID_TTL`] when absent) from `sent` (monotonic nanoseconds).
    pub fn new(token: SecretString, expires_in: Option<Duration>, sent: u64) -> Issued {
        Issued {
            token,
            lifetime: Lifetime::since(sent, expires_in.unwrap_or(UNSAID_TTL), false),
        }
    }

    /// When it stops being used (monotonic nanoseconds): 80% through.
    fn until(&self) -> u64 {
        self.lifetime.replace_at().unwrap_or(u64::MAX)
    }
}

impl Shareable for Issued {
    fn encode(&self) -> Option<SecretBytes> {
        let mut out = SecretBytes::with_capacity(256);
        let mut doc = serde_json::json!({
            "token": self.token.expose(),
            "ttl": self.lifetime.ttl().as_secs_f64(),
            "start": self.lifetime.start(),
        });
        serde_json::to_writer(&mut out, &doc).ok()?;
        zeroize_json(&mut doc);
        Some(out)
    }

    fn decode(body: &[u8]) -> Option<Issued> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let issued = (|| {
            Some(Issued {
                token: SecretString::from(doc["token"].as_str()?),
                lifetime: Lifetime::since(
                    doc["start"].as_u64()?,
                    Duration::try_from_secs_f64(doc["ttl"].as_f64()?).ok()?,
                    false,
                ),
            })
        })();
        zeroize_json(&mut doc);
        issued
    }

    /// Shared until it is due for replacement.
    fn ttl(&self) -> Option<Duration> {
        Some(Duration::from_nanos(
            self.until().saturating_sub(crate::sys::clock::precise()),
        ))
    }
}

/// What issues a token.
pub trait Issuer: Send + Sync + 'static {
    /// A new token, its requests' retries included.
    ///
    /// # Errors
    /// The issuer's: transient when the issuer did not answer or answered
    /// with a server error, permanent when it refused the identity.
    fn issue(&self) -> Result<Issued, FetchError>;

    /// What issues it, for the status and the doctor ("service account
    /// a@p.iam.gserviceaccount.com (key file /k.json)"), never a secret.
    fn describe(&self) -> String;

    /// How much longer than one fetch's bound an issue may take (a
    /// metadata server waited for at a node's start): the node's other
    /// processes wait that much longer for the one issuing.
    fn longest_wait(&self) -> Duration {
        Duration::ZERO
    }
}

/// The token in use and until when.
struct Held {
    token: SecretString,
    until: u64,
}

/// The owner of one identity's token; see the module documentation.
pub struct Bearer {
    issuer: Box<dyn Issuer>,
    held: Mutex<Option<Held>>,
    /// With the node cache on, the token is shared by the node's processes
    /// through this slot, used with a credential's settings.
    slot: Option<(Slot, RemoteSettings)>,
    /// Tokens this process issued itself.
    issued: AtomicU64,
}

impl Bearer {
    /// The owner of `issuer`'s tokens, shared through `slot` when given
    /// (with the provider's settings, as a credential's slot uses them:
    /// [`RemoteSettings::for_credential`], its waits lengthened by the
    /// issuer's [`longest_wait`](Issuer::longest_wait)).
    pub fn new(issuer: Box<dyn Issuer>, slot: Option<(Slot, RemoteSettings)>) -> Bearer {
        let longer = issuer.longest_wait();
        let slot = slot.map(|(s, settings)| (s, settings.for_credential(longer)));
        Bearer {
            issuer,
            held: Mutex::new(None),
            slot,
            issued: AtomicU64::new(0),
        }
    }

    /// The token to send now: the one held until it is due, else the
    /// node's (with the node cache on), else a new one.
    ///
    /// # Errors
    /// The issuer's.
    pub fn get(&self) -> Result<SecretString, FetchError> {
        self.token(None)
    }

    /// A token in place of `refused`, which a service refused (HTTP 401):
    /// the one held when another thread replaced it already, else a new
    /// one (the node's processes share one replacement).
    ///
    /// # Errors
    /// The issuer's.
    pub fn instead_of(&self, refused: &SecretString) -> Result<SecretString, FetchError> {
        self.token(Some(refused))
    }

    /// What issues the tokens, and how many this process issued.
    pub fn describe(&self) -> String {
        let n = self.issued.load(Relaxed);
        let shared = match self.slot {
            Some(_) => ", shared with the node's processes",
            None => "",
        };
        format!(
            "{} ({n} token{} issued by this process{shared})",
            self.issuer.describe(),
            if n == 1 { "" } else { "s" }
        )
    }

    fn token(&self, refused: Option<&SecretString>) -> Result<SecretString, FetchError> {
        let mut held = self.held.lock();
        if let Some(h) = held.as_ref() {
            let is_refused = refused.is_some_and(|r| r.expose() == h.token.expose());
            if !is_refused && !lifetime::passed(h.until) {
                return Ok(h.token.clone());
            }
        }
        *held = None;
        let (issued, until) = match &self.slot {
            None => {
                let issued = self.issue()?;
                let until = issued.until();
                (issued, until)
            }
            Some((slot, settings)) => {
                let mode = if refused.is_some() {
                    Mode::Force
                } else {
                    Mode::Get
                };
                let judge = |entry: &Fetched<Issued>| {
                    let token = match entry {
                        Fetched::Found(i) => Some(i.token.expose()),
                        Fetched::Absent => None,
                    };
                    Against::of(refused.map(SecretString::expose), token)
                };
                let answer =
                    slot.fetch(settings, mode, &judge, || self.issue().map(Fetched::Found));
                let issued = match answer.outcome? {
                    Fetched::Found(issued) => issued,
                    Fetched::Absent => {
                        return Err(FetchError::transient(Error::Internal(
                            "the node's shared token entry is empty".into(),
                        )))
                    }
                };
                let until = match answer.remaining {
                    Some(left) => lifetime::from_now(left).min(issued.until()),
                    None => issued.until(),
                };
                (issued, until)
            }
        };
        if lifetime::passed(until) {
            // Issued due already (a lifetime shorter than the request took):
            // used for this request only, never held.
            return Ok(issued.token);
        }
        *held = Some(Held {
            token: issued.token.clone(),
            until,
        });
        Ok(issued.token)
    }

    fn issue(&self) -> Result<Issued, FetchError> {
        let issued = self.issuer.issue()?;
        self.issued.fetch_add(1, Relaxed);
        meter::add_current(|c| c.logins += 1);
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::remote::node::{NodeDir, Scope};
    use crate::secrets::remote::Vars;
    use crate::sys::clock;
    use std::sync::Arc;

    struct Counter {
        n: Arc<AtomicU64>,
        ttl: Duration,
    }

    impl Issuer for Counter {
        fn issue(&self) -> Result<Issued, FetchError> {
            let n = self.n.fetch_add(1, Relaxed) + 1;
            Ok(Issued::new(
                SecretString::from(format!("tok-{n}")),
                Some(self.ttl),
                clock::precise(),
            ))
        }

        fn describe(&self) -> String {
            "a counter".into()
        }
    }

    fn bearer(ttl: Duration) -> (Bearer, Arc<AtomicU64>) {
        let n = Arc::new(AtomicU64::new(0));
        let issuer = Counter {
            n: Arc::clone(&n),
            ttl,
        };
        (Bearer::new(Box::new(issuer), None), n)
    }

    #[test]
    fn a_token_is_used_until_80_percent_of_its_lifetime_then_replaced() {
        let (b, n) = bearer(Duration::from_millis(500));
        assert_eq!(b.get().unwrap().expose(), "tok-1");
        assert_eq!(b.get().unwrap().expose(), "tok-1");
        assert_eq!(n.load(Relaxed), 1);
        // 80% of 500 ms: replaced after 400 ms, never sent at 500.
        std::thread::sleep(Duration::from_millis(420));
        assert_eq!(b.get().unwrap().expose(), "tok-2");
        assert_eq!(n.load(Relaxed), 2);
        assert!(b.describe().contains("2 tokens issued by this process"));
    }

    #[test]
    fn a_refused_token_is_replaced_once_whatever_the_threads_that_saw_it() {
        let (b, n) = bearer(Duration::from_secs(3600));
        let first = b.get().unwrap();
        let second = b.instead_of(&first).unwrap();
        assert_eq!(second.expose(), "tok-2");
        // Another thread reporting the same refused token gets the new one.
        assert_eq!(b.instead_of(&first).unwrap().expose(), "tok-2");
        assert_eq!(n.load(Relaxed), 2);
    }

    /// A node cache directory on /dev/shm of this test, removed at its end;
    /// its processes' token slot.
    struct Node(std::path::PathBuf, Arc<NodeDir>);

    impl Node {
        fn new(test: &str) -> Node {
            let path = std::path::PathBuf::from(format!(
                "/dev/shm/st-secrets-bearer-{test}-{}",
                std::process::id()
            ));
            let dir = Arc::new(NodeDir::open(&path).unwrap());
            Node(path, dir)
        }

        fn slot(&self) -> Slot {
            Scope::new("test", &Vars::empty()).slot(&self.1, "token")
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_nodes_processes_share_one_token_for_its_lifetime_whatever_the_cache_ttl() {
        let node = Node::new("share");
        // Secrets are kept 50 ms; a token of 10 s is the node's for 8 s.
        let settings = RemoteSettings {
            cache_ttl: Duration::from_millis(50),
            refresh_ahead_permille: 500,
            ..RemoteSettings::default()
        };
        let n = Arc::new(AtomicU64::new(0));
        let process = || {
            let issuer = Counter {
                n: Arc::clone(&n),
                ttl: Duration::from_secs(10),
            };
            Bearer::new(Box::new(issuer), Some((node.slot(), settings.clone())))
        };
        let (first, second) = (process(), process());
        assert_eq!(first.get().unwrap().expose(), "tok-1");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(second.get().unwrap().expose(), "tok-1");
        assert_eq!(process().get().unwrap().expose(), "tok-1");
        assert_eq!(n.load(Relaxed), 1);
    }

    /// An issuer that takes `takes` to answer, and says so.
    struct Slow {
        n: Arc<AtomicU64>,
        takes: Duration,
    }

    impl Issuer for Slow {
        fn issue(&self) -> Result<Issued, FetchError> {
            std::thread::sleep(self.takes);
            let n = self.n.fetch_add(1, Relaxed) + 1;
            let token = SecretString::from(format!("tok-{n}"));
            Ok(Issued::new(
                token,
                Some(Duration::from_secs(60)),
                clock::precise(),
            ))
        }

        fn describe(&self) -> String {
            "a slow issuer".into()
        }

        fn longest_wait(&self) -> Duration {
            self.takes
        }
    }

    #[test]
    fn a_nodes_processes_wait_for_an_issue_longer_than_a_fetch_when_the_issuer_says_so() {
        let node = Node::new("slow");
        // One fetch's bound is 100 ms; the issue (a metadata server
        // starting) takes 1.5 s: the second process waits for it.
        let settings = RemoteSettings {
            request_timeout: Duration::from_millis(100),
            retries: 0,
            ..RemoteSettings::default()
        };
        let n = Arc::new(AtomicU64::new(0));
        let process = || {
            let issuer = Slow {
                n: Arc::clone(&n),
                takes: Duration::from_millis(1500),
            };
            Bearer::new(Box::new(issuer), Some((node.slot(), settings.clone())))
        };
        let (first, second) = (process(), process());
        let tokens = std::thread::scope(|s| {
            let a = s.spawn(|| first.get().unwrap().expose().to_owned());
            std::thread::sleep(Duration::from_millis(100));
            let b = s.spawn(|| second.get().unwrap().expose().to_owned());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(tokens, ("tok-1".to_owned(), "tok-1".to_owned()));
        assert_eq!(n.load(Relaxed), 1);
    }

    #[test]
    fn the_shared_entry_keeps_the_token_and_its_lifetime_but_no_more() {
        let issued = Issued::new(SecretString::from("t"), Some(Duration::from_secs(60)), 7);
        let body = issued.encode().unwrap();
        let back = Issued::decode(body.expose()).unwrap();
        assert_eq!(back.token.expose(), "t");
        assert_eq!(back.lifetime, issued.lifetime);
        assert!(Issued::decode(br#"{"token": "t"}"#).is_none());
        let unsaid = Issued::new(SecretString::from("t"), None, 0);
        assert_eq!(unsaid.lifetime.ttl(), UNSAID_TTL);
    }
}
