use super::value::UNSAID_TTL;
use super::*;
use crate::secret::SecretString;
use crate::secrets::node::entry::Shareable;
use crate::secrets::node::{NodeDir, Scope};
use crate::secrets::transport::Vars;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Tokens `tok-1`, `tok-2`, ... of `ttl`, renewable when `renews` (each
/// renewal granting `ttl` again, or refused when `refuse_renewals`).
struct Counter {
    n: Arc<AtomicU64>,
    ttl: Duration,
    renews: bool,
    refuse_renewals: Arc<AtomicBool>,
    renewed: Arc<AtomicU64>,
    fail: Arc<AtomicBool>,
    /// Issues asked, answered or not.
    asked: Arc<AtomicU64>,
}

impl Counter {
    fn new(ttl: Duration) -> Counter {
        Counter {
            n: Arc::new(AtomicU64::new(0)),
            ttl,
            renews: false,
            refuse_renewals: Arc::new(AtomicBool::new(false)),
            renewed: Arc::new(AtomicU64::new(0)),
            fail: Arc::new(AtomicBool::new(false)),
            asked: Arc::new(AtomicU64::new(0)),
        }
    }

    fn sharing(&self) -> Counter {
        Counter {
            n: Arc::clone(&self.n),
            ttl: self.ttl,
            renews: self.renews,
            refuse_renewals: Arc::clone(&self.refuse_renewals),
            renewed: Arc::clone(&self.renewed),
            fail: Arc::clone(&self.fail),
            asked: Arc::clone(&self.asked),
        }
    }
}

impl Issuer<SecretString> for Counter {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        self.asked.fetch_add(1, Relaxed);
        if self.fail.load(Relaxed) {
            return Err(FetchError::transient(Error::Remote("down".into())));
        }
        let n = self.n.fetch_add(1, Relaxed) + 1;
        Ok(Issued {
            value: SecretString::from(format!("tok-{n}")),
            lifetime: Lifetime::new(self.ttl, self.renews),
        })
    }

    fn renew(&self, _: &Issued<SecretString>) -> Option<Lifetime> {
        if self.refuse_renewals.load(Relaxed) {
            return None;
        }
        self.renewed.fetch_add(1, Relaxed);
        Some(Lifetime::new(self.ttl, true))
    }

    fn describe(&self) -> String {
        "a counter".into()
    }
}

fn keeper(issuer: Counter) -> Arc<Keeper<SecretString>> {
    Keeper::new("", Box::new(issuer), None)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_token_is_used_until_80_percent_of_its_lifetime_then_replaced() {
    let issuer = Counter::new(Duration::from_millis(500));
    let n = Arc::clone(&issuer.n);
    let k = keeper(issuer);
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    assert_eq!(n.load(Relaxed), 1);
    // 80% of 500 ms: replaced after 400 ms, never sent at 500.
    std::thread::sleep(Duration::from_millis(420));
    assert_eq!(k.get().unwrap().expose(), "tok-2");
    assert_eq!(n.load(Relaxed), 2);
    assert!(k
        .describe("token")
        .contains("2 tokens issued by this process"));
}

#[test]
fn a_refused_token_is_replaced_once_whatever_the_threads_that_saw_it() {
    let issuer = Counter::new(Duration::from_secs(3600));
    let n = Arc::clone(&issuer.n);
    let k = keeper(issuer);
    let first = k.get().unwrap();
    let second = k.instead_of(&first).unwrap();
    assert_eq!(second.expose(), "tok-2");
    // Another thread reporting the same refused token gets the new one.
    assert_eq!(k.instead_of(&first).unwrap().expose(), "tok-2");
    assert_eq!(n.load(Relaxed), 2);
}

#[test]
fn a_renewable_token_is_renewed_on_the_refresher_never_on_a_callers_path() {
    // Renewals are asked of grants of 2 s and more.
    let mut issuer = Counter::new(Duration::from_secs(3));
    issuer.renews = true;
    let (n, renewed) = (Arc::clone(&issuer.n), Arc::clone(&issuer.renewed));
    let k = keeper(issuer);
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    // Two thirds through (jittered), the refresher renews it: the same
    // token, past its first lifetime, with no caller asking meanwhile.
    wait_for("a renewal", || renewed.load(Relaxed) >= 2);
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    assert_eq!(n.load(Relaxed), 1);
}

#[test]
fn a_refused_renewal_lets_the_token_live_out_its_time_then_the_caller_replaces_it() {
    let mut issuer = Counter::new(Duration::from_secs(3));
    issuer.renews = true;
    issuer.refuse_renewals.store(true, Relaxed);
    let n = Arc::clone(&issuer.n);
    let k = keeper(issuer);
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    assert_eq!(n.load(Relaxed), 1);
    std::thread::sleep(Duration::from_millis(300));
    // Past 80%: replaced by the caller (the renewal it tries is refused).
    assert_eq!(k.get().unwrap().expose(), "tok-2");
}

/// AWS credentials' rule in a value: replaced at half its lifetime,
/// usable to its end.
#[derive(Clone)]
struct Lenient(SecretString);

impl Credential for Lenient {
    fn to_json(&self) -> Value {
        self.0.to_json()
    }
    fn from_json(doc: &Value) -> Option<Self> {
        SecretString::from_json(doc).map(Lenient)
    }
    fn id(&self) -> &str {
        self.0.expose()
    }
    fn replace_at(l: &Lifetime) -> Option<u64> {
        Some(l.start() + u64::try_from(l.ttl().as_nanos() / 2).unwrap())
    }
    fn usable_until(l: &Lifetime) -> Option<u64> {
        Some(l.end())
    }
}

struct LenientIssuer(Counter);

impl Issuer<Lenient> for LenientIssuer {
    fn issue(&self) -> Result<Issued<Lenient>, FetchError> {
        let i = self.0.issue()?;
        Ok(Issued {
            value: Lenient(i.value),
            lifetime: i.lifetime,
        })
    }
    fn describe(&self) -> String {
        "lenient".into()
    }
}

#[test]
fn a_value_usable_to_its_end_is_answered_while_its_replacement_fails() {
    let issuer = Counter::new(Duration::from_millis(600));
    let fail = Arc::clone(&issuer.fail);
    let k = Keeper::new("", Box::new(LenientIssuer(issuer)), None);
    assert_eq!(k.get().unwrap().0.expose(), "tok-1");
    fail.store(true, Relaxed);
    std::thread::sleep(Duration::from_millis(350));
    // Due (half through) and its replacement fails: still usable.
    assert_eq!(k.get().unwrap().0.expose(), "tok-1");
    // Never one a service refused, never past its end.
    assert!(k.instead_of(&Lenient(SecretString::from("tok-1"))).is_err());
    std::thread::sleep(Duration::from_millis(300));
    assert!(k.get().is_err());
    fail.store(false, Relaxed);
    assert_eq!(k.get().unwrap().0.expose(), "tok-2");
}

#[test]
fn kept_fresh_a_token_is_replaced_ahead_and_each_change_told() {
    let issuer = Counter::new(Duration::from_millis(600));
    let fail = Arc::clone(&issuer.fail);
    let told: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&told);
    let first = issuer.issue().unwrap();
    let k = Keeper::kept_fresh(
        "",
        Box::new(issuer),
        Box::new(move |change| {
            log.lock().push(match change {
                Ok(i) => i.value.expose().to_owned(),
                Err(e) => format!("error: {e}"),
            })
        }),
        first,
    );
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    // Two thirds through (400 ms), replaced with nobody asking.
    wait_for("a replacement ahead", || !told.lock().is_empty());
    assert_eq!(told.lock()[0], "tok-2");
    // A failed replacement is told, and tried again after a second.
    fail.store(true, Relaxed);
    wait_for("a failure told", || {
        told.lock().iter().any(|t| t.starts_with("error"))
    });
    let failures = told.lock().len();
    fail.store(false, Relaxed);
    wait_for("the retry", || told.lock().len() > failures);
    assert!(told.lock().last().unwrap().starts_with("tok-"));
    // Dropped, it stops.
    drop(k);
    let count = told.lock().len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(told.lock().len(), count);
}

/// A node cache directory on /dev/shm of this test, removed at its end;
/// its processes' token slot.
struct Node(std::path::PathBuf, Arc<NodeDir>);

impl Node {
    fn new(test: &str) -> Node {
        let path = std::path::PathBuf::from(format!(
            "/dev/shm/st-secrets-keeper-{test}-{}",
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
    let issuer = Counter::new(Duration::from_secs(10));
    let n = Arc::clone(&issuer.n);
    let process = || {
        Keeper::new(
            "",
            Box::new(issuer.sharing()),
            Some((node.slot(), settings.clone())),
        )
    };
    let (first, second) = (process(), process());
    assert_eq!(first.get().unwrap().expose(), "tok-1");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(second.get().unwrap().expose(), "tok-1");
    assert_eq!(process().get().unwrap().expose(), "tok-1");
    assert_eq!(n.load(Relaxed), 1);
    // A refusal seen by two processes: one replacement for the node.
    let refused = SecretString::from("tok-1");
    assert_eq!(first.instead_of(&refused).unwrap().expose(), "tok-2");
    assert_eq!(second.instead_of(&refused).unwrap().expose(), "tok-2");
    assert_eq!(n.load(Relaxed), 2);
}

#[test]
fn a_nodes_renewable_token_is_renewed_once_for_the_node_by_a_refresher() {
    let node = Node::new("renew");
    let mut issuer = Counter::new(Duration::from_secs(3));
    issuer.renews = true;
    let (n, renewed) = (Arc::clone(&issuer.n), Arc::clone(&issuer.renewed));
    let process = || {
        Keeper::new(
            "",
            Box::new(issuer.sharing()),
            Some((node.slot(), RemoteSettings::default())),
        )
    };
    let (first, second, third) = (process(), process(), process());
    for p in [&first, &second, &third] {
        assert_eq!(p.get().unwrap().expose(), "tok-1");
    }
    // Three processes' refreshers at two thirds: one renewal for the node.
    wait_for("the node's renewal", || renewed.load(Relaxed) >= 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(renewed.load(Relaxed), 1);
    for p in [&first, &second, &third] {
        assert_eq!(p.get().unwrap().expose(), "tok-1");
    }
    assert_eq!(n.load(Relaxed), 1);
}

/// An issuer that takes `takes` to answer, and says so.
struct Slow {
    n: Arc<AtomicU64>,
    takes: Duration,
}

impl Issuer<SecretString> for Slow {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        std::thread::sleep(self.takes);
        let n = self.n.fetch_add(1, Relaxed) + 1;
        let token = SecretString::from(format!("tok-{n}"));
        Ok(Issued::token(
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
        Keeper::new("", Box::new(issuer), Some((node.slot(), settings.clone())))
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
fn the_shared_entry_keeps_the_value_and_its_lifetime_but_no_more() {
    let issued = Issued::token(SecretString::from("t"), Some(Duration::from_secs(60)), 7);
    let body = issued.encode().unwrap();
    let back = Issued::<SecretString>::decode(body.expose()).unwrap();
    assert_eq!(back.value.expose(), "t");
    assert_eq!(back.lifetime, issued.lifetime);
    assert!(Issued::<SecretString>::decode(br#"{"value": "t"}"#).is_none());
    let unsaid = Issued::token(SecretString::from("t"), None, 0);
    assert_eq!(unsaid.lifetime.ttl(), UNSAID_TTL);
    let secret = Issued::token(SecretString::from("s3cr3t-value"), None, 0);
    assert!(!format!("{secret:?}").contains("s3cr3t"));
}

#[test]
fn a_nodes_failed_renewal_ahead_is_tried_again_after_a_pause_not_at_once() {
    let node = Node::new("failing");
    let mut issuer = Counter::new(Duration::from_secs(3));
    issuer.renews = true;
    issuer.refuse_renewals.store(true, Relaxed);
    let (asked, fail) = (Arc::clone(&issuer.asked), Arc::clone(&issuer.fail));
    let settings = RemoteSettings {
        failure_ttl: Duration::from_millis(200),
        ..RemoteSettings::default()
    };
    let k = Keeper::new("", Box::new(issuer), Some((node.slot(), settings)));
    assert_eq!(k.get().unwrap().expose(), "tok-1");
    fail.store(true, Relaxed);
    // At two thirds (2 s) the renewal is refused and the login fails: the
    // refresher tries again a second later, not in a loop.
    std::thread::sleep(Duration::from_millis(3000));
    let tries = asked.load(Relaxed) - 1;
    assert!((1..=3).contains(&tries), "{tries} issues asked in a second");
    // The token held is answered until its replacement point (2.4 s).
    assert!(k.get().is_err());
}

#[test]
fn a_preloaded_value_is_answered_as_given_and_asked_about_once_started() {
    let c = Counter::new(Duration::from_secs(600));
    let asked = Arc::clone(&c.asked);
    let k = Keeper::preloaded("", Box::new(c), SecretString::from("given"));
    for _ in 0..3 {
        assert_eq!(k.get().unwrap().expose(), "given");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(asked.load(Relaxed), 0, "asked before it was started");
    k.start();
    // On the refresher, never on a caller's path: the value given is
    // answered until the issuer's is held.
    wait_for("the issuer's value", || {
        k.get().unwrap().expose() == "tok-1"
    });
    k.start();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(asked.load(Relaxed), 1, "started once only");
}
