use super::pace::Pace;
use super::*;
use crate::secrets::transport::gate::{FleetSettings, Pacing, Place, Signal};
use crate::secrets::transport::http::Response;
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::FetchError;
use std::sync::atomic::{AtomicU32, Ordering};

/// The process's start is one for the whole test binary: the tests that
/// use it take turns.
static START_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .fold(Vars::empty(), |v, (name, value)| v.set(name, value))
}

fn place(pairs: &[(&str, &str)]) -> Option<Place> {
    place::read(&vars(pairs)).unwrap()
}

fn refused(pairs: &[(&str, &str)]) -> String {
    place::read(&vars(pairs)).unwrap_err().to_string()
}

#[test]
fn each_scheduler_says_the_nodes_rank_and_count() {
    let said = |pairs: &[(&str, &str)]| place(pairs).map(|p| (p.rank, p.nodes));
    assert_eq!(said(&[]), None);
    assert_eq!(
        said(&[("SLURM_NODEID", "3"), ("SLURM_NNODES", "8")]),
        Some((Some(3), Some(8)))
    );
    assert_eq!(
        said(&[("GROUP_RANK", "1"), ("GROUP_WORLD_SIZE", "2")]),
        Some((Some(1), Some(2)))
    );
    assert_eq!(
        said(&[("NODE_RANK", "0"), ("NNODES", "4")]),
        Some((Some(0), Some(4)))
    );
    assert_eq!(
        said(&[("PET_NODE_RANK", "2"), ("PET_NNODES", "3")]),
        Some((Some(2), Some(3)))
    );
    assert_eq!(
        said(&[("SKYPILOT_NODE_RANK", "5"), ("SKYPILOT_NUM_NODES", "6")]),
        Some((Some(5), Some(6)))
    );
    assert_eq!(
        said(&[("JOB_COMPLETION_INDEX", "7")]),
        Some((Some(7), None))
    );
    // Open MPI: rank 13 of 32, 8 per node: node 1 of 4.
    assert_eq!(
        said(&[
            ("OMPI_COMM_WORLD_RANK", "13"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "8"),
            ("OMPI_COMM_WORLD_SIZE", "32"),
        ]),
        Some((Some(1), Some(4)))
    );
    // An MPI rank without the processes per node says nothing of the node.
    assert_eq!(said(&[("PMI_RANK", "13"), ("PMI_SIZE", "32")]), None);
    assert_eq!(
        said(&[
            ("PMI_RANK", "13"),
            ("MPI_LOCALNRANKS", "4"),
            ("PMI_SIZE", "16")
        ]),
        Some((Some(3), Some(4)))
    );
    // A count alone: the node takes a random slot among them.
    assert_eq!(said(&[("SLURM_NNODES", "8")]), Some((None, Some(8))));
    let p = place(&[("SLURM_NODEID", "3"), ("SLURM_NNODES", "8")]).unwrap();
    assert_eq!(p.from, "SLURM_NODEID, SLURM_NNODES");
}

#[test]
fn schedulers_that_agree_are_one_and_the_own_variables_override_them() {
    // torchrun under Slurm, the same node.
    let p = place(&[
        ("SLURM_NODEID", "2"),
        ("SLURM_NNODES", "4"),
        ("GROUP_RANK", "2"),
        ("GROUP_WORLD_SIZE", "4"),
    ])
    .unwrap();
    assert_eq!((p.rank, p.nodes), (Some(2), Some(4)));
    assert_eq!(p.from, "SLURM_NODEID, SLURM_NNODES");
    // Disagreeing schedulers are settled by the node's own variables.
    let p = place(&[
        ("SLURM_NODEID", "2"),
        ("GROUP_RANK", "0"),
        ("SIMPLETUNER_FLEET_RANK", "1"),
        ("SIMPLETUNER_FLEET_NODES", "4"),
    ])
    .unwrap();
    assert_eq!((p.rank, p.nodes), (Some(1), Some(4)));
    assert_eq!(p.from, "SIMPLETUNER_FLEET_RANK, SIMPLETUNER_FLEET_NODES");
    // An indexed Job says the index; the count is the node's own.
    let p = place(&[
        ("JOB_COMPLETION_INDEX", "3"),
        ("SIMPLETUNER_FLEET_NODES", "16"),
    ])
    .unwrap();
    assert_eq!((p.rank, p.nodes), (Some(3), Some(16)));
    assert_eq!(p.from, "JOB_COMPLETION_INDEX, SIMPLETUNER_FLEET_NODES");
    let e = refused(&[
        ("JOB_COMPLETION_INDEX", "16"),
        ("SIMPLETUNER_FLEET_NODES", "16"),
    ]);
    assert!(e.contains("JOB_COMPLETION_INDEX says node 16"), "{e}");
}

#[test]
fn bad_places_are_refused_naming_the_variables() {
    let e = refused(&[("SLURM_NODEID", "2"), ("GROUP_RANK", "1")]);
    assert!(
        e.contains("SLURM_NODEID says 2")
            && e.contains("GROUP_RANK says 1")
            && e.contains("SIMPLETUNER_FLEET_RANK"),
        "{e}"
    );
    let e = refused(&[("SLURM_NNODES", "4"), ("NNODES", "2")]);
    assert!(
        e.contains("node count") && e.contains("NNODES says 2"),
        "{e}"
    );
    let e = refused(&[("SLURM_NODEID", "4"), ("SLURM_NNODES", "4")]);
    assert!(
        e.contains("SLURM_NODEID says node 4 but SLURM_NNODES says 4 nodes"),
        "{e}"
    );
    for (name, value) in [
        ("SLURM_NODEID", "-1"),
        ("SLURM_NODEID", "two"),
        ("SLURM_NODEID", "1.5"),
        ("SLURM_NNODES", "0"),
        ("SIMPLETUNER_FLEET_NODES", "99999999999"),
        ("OMPI_COMM_WORLD_LOCAL_SIZE", "0"),
    ] {
        let mut pairs = vec![(name, value)];
        if name.starts_with("OMPI") {
            pairs.push(("OMPI_COMM_WORLD_RANK", "1"));
        }
        let e = refused(&pairs);
        assert!(e.starts_with(name) && e.contains("whole number"), "{e}");
    }
    // The value is shown shortened and on one line.
    let e = refused(&[("NODE_RANK", &"x".repeat(300))]);
    assert!(e.len() < 400, "{e}");
    // A provider configured in such an environment says so on every get.
    let vault = crate::secrets::vault::VaultProvider::new(
        &crate::secrets::vault::VaultSettings::default(),
        &RemoteSettings::default(),
        vars(&[
            ("VAULT_ADDR", "http://127.0.0.1:9"),
            ("VAULT_TOKEN", "t"),
            ("SLURM_NODEID", "9"),
            ("SLURM_NNODES", "2"),
        ]),
    );
    use crate::secrets::provider::Provider as _;
    let e = vault.lookup("HF_TOKEN").unwrap_err().to_string();
    assert!(e.contains("SLURM_NODEID says node 9"), "{e}");
}

fn in_fleet(rank: Option<u32>, nodes: Option<u32>, capacity: u32) -> RemoteSettings {
    RemoteSettings {
        request_timeout: Duration::from_millis(100),
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        fleet: FleetSettings {
            capacity,
            deadline: Duration::from_secs(30),
            place: Some(Place {
                rank,
                nodes,
                from: "test".into(),
            }),
            gate: gate(),
        },
        ..RemoteSettings::default()
    }
}

#[test]
fn the_status_says_the_nodes_place() {
    let s = in_fleet(Some(3), Some(8), 100).fleet;
    assert_eq!(
        s.describe().unwrap(),
        "node 3 of 8 of its job (test): its first request in its slot at 100 nodes/s, its \
         first fetch tried for up to 30 s"
    );
    assert!(in_fleet(None, Some(8), 100)
        .fleet
        .describe()
        .unwrap()
        .starts_with("one of 8 nodes, its slot drawn at random"));
    assert_eq!(FleetSettings::default().describe(), None);
    // Through a provider's status.
    let vault = crate::secrets::vault::VaultProvider::new(
        &crate::secrets::vault::VaultSettings::default(),
        &RemoteSettings::default(),
        vars(&[
            ("VAULT_ADDR", "http://127.0.0.1:9"),
            ("VAULT_TOKEN", "t"),
            ("SLURM_NODEID", "1"),
            ("SLURM_NNODES", "2"),
        ]),
    );
    use crate::secrets::provider::Provider as _;
    let detail = vault.status().detail;
    assert!(
        detail.contains("node 1 of 2 of its job (SLURM_NODEID, SLURM_NNODES)"),
        "{detail}"
    );
}

#[test]
fn slots_spread_ranks_over_a_period_of_the_wall_clock() {
    let ms = |d: Duration| d.as_millis();
    // 1,000 nodes at 100 a second: a period of 10 s; rank 250 at 2.5 s
    // into each.
    let s = in_fleet(Some(250), Some(1000), 100).fleet;
    assert_eq!(ms(slot_wait(&s, 0.0, 1_000_000.0)), 2500);
    assert_eq!(ms(slot_wait(&s, 0.4, 1_000_000.0)), 2501);
    assert_eq!(ms(slot_wait(&s, 0.0, 1_000_001.0)), 1500);
    // Past its phase: the next period's.
    assert_eq!(ms(slot_wait(&s, 0.0, 1_000_003.0)), 9500);
    // Ranks started seconds apart still go out in order, one per slot.
    let mut at: Vec<f64> = (0..1000)
        .map(|r| {
            let started = 1_000_000.0 + f64::from((r * 7919) % 3000) / 1000.0;
            let s = in_fleet(Some(r), Some(1000), 100).fleet;
            started + slot_wait(&s, 0.0, started).as_secs_f64()
        })
        .collect();
    at.sort_by(f64::total_cmp);
    assert!(
        at.windows(2).all(|w| w[1] - w[0] > 0.0099),
        "one rank per slot"
    );
    assert!(
        at[999] - at[0] < 13.0,
        "within a period and the starts' spread"
    );
    // A refused rank goes again after the schedule: a period long.
    let s = in_fleet(Some(250), Some(1000), 100);
    assert_eq!(period(&s.fleet).map(ms), Some(10_000));
    assert_eq!(period(&in_fleet(Some(250), None, 100).fleet), None);
    let end = Instant::now() + Duration::from_secs(3);
    let later = Some((end, Duration::from_secs(1)));
    let w = first_fetch_wait(&s, 0, Some(Duration::ZERO), later);
    assert!(
        w > Duration::from_millis(2900) && w <= Duration::from_secs(4),
        "{w:?}"
    );
    let w = first_fetch_wait(&s, 1, None, later);
    assert!(
        w < Duration::from_millis(100),
        "the first retry only: {w:?}"
    );
    // Without a rank: a random slot of the period.
    let s = in_fleet(None, Some(1000), 100).fleet;
    assert!(slot_wait(&s, 0.5, 1_000_000.0) <= Duration::from_secs(10));
    // A rank without a count: rank / capacity after the first need.
    let s = in_fleet(Some(250), None, 100).fleet;
    assert_eq!(ms(slot_wait(&s, 0.0, 1_000_003.0)), 2500);
    let s = in_fleet(None, None, 100).fleet;
    assert_eq!(slot_wait(&s, 0.9, 1.0), Duration::ZERO);
    assert_eq!(
        slot_wait(&FleetSettings::default(), 0.9, 1.0),
        Duration::ZERO
    );
}

#[test]
fn a_process_that_wakes_late_for_its_slot_goes_once_more_later() {
    let s = in_fleet(Some(250), Some(1000), 100).fleet;
    let slot = Instant::now();
    let ms = Duration::from_millis;
    // On time, or late by less than 25 ms: it goes.
    assert_eq!(woke_late(&s, slot, slot, false, None, 0.5), None);
    assert_eq!(woke_late(&s, slot, slot + ms(20), false, None, 0.5), None);
    // Later: its slot of the next period, 10 s on, once.
    assert_eq!(
        woke_late(&s, slot, slot + ms(200), false, None, 0.5),
        Some(slot + ms(10_000))
    );
    assert_eq!(woke_late(&s, slot, slot + ms(200), true, None, 0.5), None);
    // With the schedule's end known (4 s on, a spread of 1 s): a point of
    // that spread, when it comes before the next period's slot.
    let requeue = Some((slot + ms(4_000), ms(1_000)));
    assert_eq!(
        woke_late(&s, slot, slot + ms(200), false, requeue, 0.5),
        Some(slot + ms(4_500))
    );
    // A rank late in the period keeps its next slot, which is earlier.
    let requeue = Some((slot + ms(9_000), ms(2_000)));
    assert_eq!(
        woke_late(&s, slot, slot + ms(200), false, requeue, 0.75),
        Some(slot + ms(10_000))
    );
    // Woken after the schedule's end: now.
    let requeue = Some((slot - ms(1_000), ms(500)));
    assert_eq!(
        woke_late(&s, slot, slot + ms(200), false, requeue, 0.5),
        Some(slot + ms(200))
    );
    // Without the count there is no period: it goes.
    let s = in_fleet(Some(250), None, 100).fleet;
    assert_eq!(
        woke_late(&s, slot, slot + ms(200), false, requeue, 0.5),
        None
    );
}

#[test]
fn a_fetch_inside_the_one_that_went_in_the_slot_does_not_wait() {
    let _turn = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    forget();
    // Rank 0 of 100 at 100 a second: a period of 1 s.
    let s = in_fleet(Some(0), Some(100), 100);
    assert!(admit(&s).is_some());
    // Long past the slot (a login inside the first fetch, another
    // thread's fetch): it goes at once, neither late nor deferred.
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    assert!(admit(&s).is_some());
    assert!(began.elapsed() < Duration::from_millis(500));
    held();
    assert!(admit(&s).is_none(), "a secret held: no fleet rules");
    forget();
}

#[test]
fn a_rank_waits_for_its_slot_then_tries_its_first_fetch_past_the_retries() {
    let _turn = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    forget();
    // Rank 5 at 100 a second, its count unsaid: 50 to 60 ms after its
    // first need.
    let s = in_fleet(Some(5), None, 100);
    let began = Instant::now();
    let attempts = AtomicU32::new(0);
    let answer = with_retries(&s, || {
        if attempts.fetch_add(1, Ordering::Relaxed) < 5 {
            Err(FetchError::transient(Error::Remote("429".into())))
        } else {
            Ok(7)
        }
    });
    assert_eq!(answer.unwrap(), 7);
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        6,
        "past the 3 of `retries`"
    );
    // Held: the next fetch waits for nothing and retries as usual.
    let began = Instant::now();
    attempts.store(0, Ordering::Relaxed);
    let answer: Result<(), _> = with_retries(&s, || {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err(FetchError::transient(Error::Remote("429".into())))
    });
    assert!(answer.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert!(began.elapsed() < Duration::from_secs(5));
    forget();
}

#[test]
fn a_first_fetch_that_never_succeeds_ends_at_the_fleet_deadline_naming_it() {
    let _turn = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    forget();
    let mut s = in_fleet(Some(0), None, 100);
    s.fleet.deadline = Duration::from_millis(300);
    let began = Instant::now();
    let answer: Result<(), _> = with_retries(&s, || {
        Err(FetchError::transient(Error::Timeout("no answer".into())))
    });
    let e = answer.unwrap_err();
    assert!(e.spent);
    assert!(
        e.error.to_string().contains("fleet deadline of 300ms"),
        "{}",
        e.error
    );
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A slot past the deadline still gets one fetch's time.
    forget();
    let mut late = in_fleet(Some(30), None, 100);
    late.fleet.deadline = Duration::from_millis(100);
    let began = Instant::now();
    assert_eq!(with_retries(&late, || Ok::<_, FetchError>(1)).unwrap(), 1);
    assert!(began.elapsed() >= Duration::from_millis(300));
    // A permanent failure is not tried again, in a fleet or not.
    forget();
    let attempts = AtomicU32::new(0);
    let answer: Result<(), _> = with_retries(&s, || {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err(FetchError::permanent(Error::Auth("refused".into())))
    });
    assert!(answer.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 1);
    forget();
}

#[test]
fn a_first_fetch_waits_at_least_what_the_server_asked_and_at_most_half_a_minute() {
    let s = in_fleet(Some(0), None, 100);
    for retry in 0..40 {
        let w = first_fetch_wait(&s, retry, None, None);
        assert!(w <= LONGEST_WAIT, "{w:?}");
        let w = first_fetch_wait(&s, retry, Some(Duration::ZERO), None);
        assert!(w <= LONGEST_WAIT.max(Duration::from_secs(1)), "{w:?}");
        let w = first_fetch_wait(&s, retry, Some(Duration::from_secs(2)), None);
        assert!(w >= Duration::from_secs(2), "{w:?}");
    }
    // A Retry-After of 0 still spreads the fleet over a second.
    let waits: Vec<Duration> = (0..50)
        .map(|_| first_fetch_wait(&s, 0, Some(Duration::ZERO), None))
        .collect();
    assert!(waits.iter().any(|w| *w > Duration::from_millis(100)));
    assert!(waits.iter().any(|w| *w != waits[0]));
}

fn answer(status: u16, headers: &[(&str, &str)]) -> Response {
    let headers = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Response::made_up(status, headers, b"")
}

impl Signal {
    /// What `r` says, answered after `took` with a request timeout of `timeout`.
    fn of_answer(r: &Response, took: Duration, timeout: Duration) -> Signal {
        Signal::of(r.status, |n| r.header(n), r.retry_after(), took, timeout)
    }
}

#[test]
fn what_an_answer_says_of_the_servers_load() {
    let fast = Duration::from_millis(10);
    let timeout = Duration::from_secs(5);
    assert_eq!(
        Signal::of_answer(&answer(200, &[]), fast, timeout),
        Signal::Fine
    );
    assert_eq!(
        Signal::of_answer(&answer(429, &[("Retry-After", "2")]), fast, timeout),
        Signal::Pushed(Some(Duration::from_secs(2)))
    );
    assert_eq!(
        Signal::of_answer(&answer(503, &[]), fast, timeout),
        Signal::Pushed(None)
    );
    let throttled = answer(
        400,
        &[(
            "x-amzn-ErrorType",
            "ThrottlingException:http://internal.amazon.com/",
        )],
    );
    assert_eq!(
        Signal::of_answer(&throttled, fast, timeout),
        Signal::Pushed(None)
    );
    let refused = answer(400, &[("x-amzn-ErrorType", "AccessDeniedException")]);
    assert_eq!(Signal::of_answer(&refused, fast, timeout), Signal::Fine);
    assert_eq!(
        Signal::of_answer(&answer(200, &[]), Duration::from_secs(3), timeout),
        Signal::Pushed(None),
        "an answer slower than half the request timeout"
    );
    let spent = answer(
        200,
        &[
            ("X-Ratelimit-Limit", "50"),
            ("X-Ratelimit-Remaining", "0"),
            ("X-Ratelimit-Reset", "1"),
        ],
    );
    assert_eq!(
        Signal::of_answer(&spent, fast, timeout),
        Signal::Spent(Duration::from_secs(1))
    );
    let left = answer(200, &[("X-Ratelimit-Remaining", "3")]);
    assert_eq!(Signal::of_answer(&left, fast, timeout), Signal::Fine);
}

#[test]
fn a_push_back_doubles_the_gap_and_each_fine_answer_takes_a_step_off() {
    let pace = Pace::default();
    assert_eq!(pace.wait(), Duration::ZERO);
    pace.note(Signal::Pushed(None));
    assert_eq!(pace.gap(), Duration::from_millis(100));
    let w = pace.wait();
    assert!(
        w > Duration::from_millis(40) && w <= Duration::from_millis(100),
        "{w:?}"
    );
    pace.note(Signal::Pushed(None));
    pace.note(Signal::Pushed(None));
    assert_eq!(pace.gap(), Duration::from_millis(400));
    for _ in 0..20 {
        pace.note(Signal::Pushed(None));
    }
    assert_eq!(pace.gap(), Duration::from_secs(30));
    for _ in 0..299 {
        pace.note(Signal::Fine);
    }
    assert_eq!(pace.gap(), Duration::from_millis(100));
    pace.note(Signal::Fine);
    assert_eq!(pace.gap(), Duration::ZERO);
    // The server's own wait is kept, with a random part of a second.
    let pace = Pace::default();
    pace.note(Signal::Pushed(Some(Duration::from_secs(2))));
    let w = pace.wait();
    assert!(
        w > Duration::from_millis(1900) && w <= Duration::from_secs(3),
        "{w:?}"
    );
    let pace = Pace::default();
    pace.note(Signal::Spent(Duration::from_secs(1)));
    assert!(pace.wait() > Duration::from_millis(900));
    assert_eq!(
        pace.gap(),
        Duration::ZERO,
        "a spent limit is not a push back"
    );
}

#[test]
fn a_push_back_one_process_met_holds_the_nodes_others() {
    let dir = tempfile::tempdir().unwrap();
    let (one, other) = (Pace::default(), Pace::default());
    one.share(dir.path(), "http://127.0.0.1:8200");
    other.share(dir.path(), "http://127.0.0.1:8200");
    let elsewhere = Pace::default();
    elsewhere.share(dir.path(), "http://127.0.0.1:8201");
    assert_eq!(other.wait(), Duration::ZERO);
    one.note(Signal::Pushed(Some(Duration::from_secs(2))));
    let w = other.wait();
    assert!(w > Duration::from_millis(1800), "{w:?}");
    assert_eq!(other.gap(), Duration::from_millis(100));
    assert_eq!(elsewhere.wait(), Duration::ZERO, "another server's pace");
    // A file from long ago is not read as a push back.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("pace-"))
        .unwrap()
        .path();
    std::fs::write(&file, r#"{"until_ms": 1000, "gap_ms": 30000}"#).unwrap();
    let late = Pace::default();
    late.share(dir.path(), "http://127.0.0.1:8200");
    assert_eq!(late.wait(), Duration::ZERO);
    assert_eq!(late.gap(), Duration::ZERO);
}

#[test]
fn a_placed_fleets_first_exchange_waits_for_the_nodes_slot_and_is_tried_past_the_retries() {
    use crate::secrets::remote::fake::{FakeServer, Reply};
    use base64::Engine as _;
    let _turn = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    forget();
    // A token exchange in the chain of node 20 of its job (its count
    // unsaid) at 100 nodes a second: its first exchange goes 200 to 203 ms
    // after its first need, and the endpoint's 429s are tried past
    // `retries` (0) until it answers.
    let arrived = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = arrived.clone();
    let server = FakeServer::start(move |_| {
        let mut at = seen.lock().unwrap();
        at.push(Instant::now());
        if at.len() < 4 {
            return Reply::json(429, r#"{"error": "slow_down"}"#);
        }
        let body = r#"{"access_token": "hf_jwt_1", "token_type": "Bearer", "expires_in": 600}"#;
        Reply::json(200, body)
    });
    let dir = tempfile::tempdir().unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"iss": "https://issuer.test", "sub": "job/st/1/0",
        "aud": "https://huggingface.co", "iat": now, "exp": now + 3600});
    let subject = dir.path().join("subject.jwt");
    let token = format!(
        "{}.{}.c2ln",
        b64.encode(r#"{"alg":"RS256"}"#),
        b64.encode(claims.to_string())
    );
    std::fs::write(&subject, token).unwrap();
    let config = crate::secrets::ManagerConfig::from_json(
        &serde_json::json!({
            "providers": ["exchange"], "retries": 0, "fleet_capacity": 100, "fleet_deadline": 30,
            "exchanges": {"HF_TOKEN": {"profile": "huggingface", "subject_token_file": subject,
                "url": format!("{}/oauth/token", server.url()), "resource": "org/model",
                "audience": "https://huggingface.co"}},
        })
        .to_string(),
    )
    .unwrap();
    let manager =
        crate::secrets::SecretsManager::with_environment(config, vars(&[("SLURM_NODEID", "20")]))
            .unwrap();
    let began = Instant::now();
    assert_eq!(
        manager.get("HF_TOKEN").unwrap().unwrap().expose(),
        "hf_jwt_1"
    );
    let at = arrived.lock().unwrap().clone();
    assert_eq!(at.len(), 4, "three answers of 429, then the credential");
    let first = at[0].duration_since(began);
    assert!(first >= Duration::from_millis(200), "{first:?}");
    forget();
}
