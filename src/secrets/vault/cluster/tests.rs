//! A cluster's nodes against loopback fake servers, for the faults no real
//! cluster produces on demand: a node that refuses connections, 503s and
//! "not active" 500s, redirects to unconfigured or downgraded addresses, a
//! storm of 412s, standbys that answer 404 for a secret just written. The
//! real 3-node OpenBao cluster is in `tests/vault_ha.rs`.

use super::*;
use crate::secret::SecretString;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use crate::secrets::transport::Vars;
use crate::secrets::vault::{VaultProvider, VaultSettings};
use std::path::PathBuf;
use std::sync::Arc;

const FIELDS: &str =
    r#"{"data": {"data": {"HF_TOKEN": "hf_from_node"}, "metadata": {"version": 3}}}"#;

fn settings() -> RemoteSettings {
    RemoteSettings {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(800),
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    }
}

/// A provider over the nodes `urls` with a token (KV v2 configured).
fn provider(urls: &[String], vault: VaultSettings, vars: Vars) -> VaultProvider {
    let vault = VaultSettings {
        urls: Some(urls.to_vec()),
        token: vault
            .token
            .clone()
            .or_else(|| Some(SecretString::from("hvs.cluster-test-token"))),
        kv_version: Some(2),
        ..vault
    };
    VaultProvider::new(&vault, &settings(), vars)
}

fn cluster(p: &VaultProvider) -> &Cluster {
    &p.fetcher()
        .expect("a working provider")
        .session
        .client()
        .cluster
}

fn get(p: &VaultProvider) -> Result<Option<String>, Error> {
    p.lookup("HF_TOKEN")
        .map(|v| v.map(|v| v.expose().to_owned()))
}

/// An address nothing listens on.
fn dead() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn node(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(answer)
}

fn reads(server: &FakeServer) -> usize {
    server
        .received()
        .iter()
        .filter(|r| r.path.contains("/data/"))
        .count()
}

#[test]
fn a_refused_connection_passes_to_the_next_node_which_is_then_preferred() {
    let live = node(|_| Reply::json(200, FIELDS));
    let p = provider(
        &[dead(), live.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    let report = cluster(&p).report();
    assert_eq!(report["nodes"][0]["role"], "down");
    assert_eq!(report["nodes"][1]["answered_last"], true);
    assert_eq!(report["failovers"], 1);
    // Sticky: the next read goes to the node that answered, first.
    p.invalidate();
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    assert_eq!(cluster(&p).report()["nodes"][0]["requests"], 1);
    assert_eq!(reads(&live), 2);
    let status = p.status();
    assert!(
        status.detail.contains("the cluster of 2 nodes"),
        "{}",
        status.detail
    );
    assert!(
        status.detail.contains("(down, 1 requests)"),
        "{}",
        status.detail
    );
}

#[test]
fn sealed_and_not_active_nodes_pass_the_request_on() {
    let sealed = node(|_| Reply::json(503, r#"{"errors": ["Vault is sealed"]}"#));
    let electing = node(|_| {
        Reply::json(
            500,
            r#"{"errors": ["local node not active but active cluster node not found"]}"#,
        )
    });
    let live = node(|_| Reply::json(200, FIELDS));
    let p = provider(
        &[sealed.url(), electing.url(), live.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    let report = cluster(&p).report();
    assert_eq!(report["nodes"][0]["role"], "unavailable");
    assert_eq!(report["nodes"][1]["role"], "standby");

    // No node answers: one error naming each node's reason, transient.
    let p = provider(
        &[sealed.url(), electing.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("no node of the cluster answered"), "{e}");
    assert!(e.contains("sealed or not ready"), "{e}");
    assert!(e.contains("no active node known"), "{e}");
}

#[test]
fn a_redirect_is_followed_once_and_only_to_a_configured_node() {
    let active = node(|_| Reply::json(200, FIELDS));
    let to = active.url();
    let standby = node(move |r| {
        Reply::Status(
            307,
            vec![("location".into(), format!("{to}{}", r.path))],
            Vec::new(),
        )
    });
    // The active node is configured: followed.
    let p = provider(
        &[standby.url(), active.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    assert_eq!(
        reads(&active),
        1,
        "followed once, not tried again as the next node"
    );
    // The node that answered is preferred, not the one that redirected.
    assert_eq!(cluster(&p).report()["nodes"][1]["answered_last"], true);

    // Only the standby is configured: the address it names is not.
    let p = provider(&[standby.url()], VaultSettings::default(), Vars::empty());
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("not configured"), "{e}");
    assert_eq!(reads(&active), 1, "never sent to an unconfigured address");

    // A loop of redirects is not followed twice.
    let a_url = Arc::new(crate::sys::Mutex::new(String::new()));
    let target = Arc::clone(&a_url);
    let looping = node(move |r| {
        let to = target.lock().clone();
        Reply::Status(
            307,
            vec![("location".into(), format!("{to}{}", r.path))],
            Vec::new(),
        )
    });
    let to = looping.url();
    let back = node(move |r| {
        Reply::Status(
            308,
            vec![("location".into(), format!("{to}{}", r.path))],
            Vec::new(),
        )
    });
    *a_url.lock() = back.url();
    let p = provider(
        &[looping.url(), back.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("redirect"), "{e}");
    // Each attempt: at most the two nodes and one redirect; 3 attempts.
    assert!(
        looping.requests() + back.requests() <= 3 * 3,
        "{}",
        looping.requests()
    );
}

#[test]
fn redirects_never_go_from_https_to_http_or_to_other_hosts() {
    let c = Cluster::new(
        vec![
            Address::parse("https://a.example:8200"),
            Address::parse("http://a.example:8200"),
            Address::parse("https://b.example"),
        ],
        |a| {
            Http::to(
                &settings(),
                &crate::secrets::transport::http::Trust::Default,
                "",
                a.socket.clone(),
            )
        },
        &settings(),
        DEFAULT_ELECTION_TIMEOUT,
        None,
    )
    .unwrap();
    let to =
        |location: &str| Response::made_up(307, vec![("Location".into(), location.into())], b"");
    assert_eq!(
        c.redirect_target(0, &to("https://B.example:443/v1/x")),
        Ok(2)
    );
    assert_eq!(
        c.redirect_target(0, &to("http://a.example:8200/v1/x")),
        Err("it goes from https to http")
    );
    assert!(c
        .redirect_target(0, &to("https://evil.example/v1/x"))
        .unwrap_err()
        .contains("not configured"));
    assert!(c.redirect_target(0, &to("/v1/x")).is_err());
    // A 64 KiB Location with escapes is named bounded and escaped.
    let long = format!("https://evil.example/\u{1b}[2J\n{}", "x".repeat(64 << 10));
    let said = c
        .redirect_error(0, &to(&long), "not configured")
        .error
        .to_string();
    assert!(
        said.len() < 2048 && !said.contains('\u{1b}') && !said.contains('\n'),
        "{said}"
    );
    assert!(said.contains("more characters"), "{said}");
    assert!(c
        .redirect_target(0, &Response::made_up(307, vec![], b""))
        .is_err());
    assert_eq!(
        origin("https://user:pw@h:1/p?q"),
        Some("https://h:1".into())
    );
    assert_eq!(origin("http://[::1]/v1"), Some("http://[::1]:80".into()));
    assert_eq!(origin("ftp://h"), None);
}

#[test]
fn a_kv_mount_being_upgraded_is_a_moment_not_a_refusal() {
    let upgrading = node(|_| {
        Reply::json(
            400,
            r#"{"errors": ["Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished."]}"#,
        )
    });
    let live = node(|_| Reply::json(200, FIELDS));
    let p = provider(
        &[upgrading.url(), live.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    // Alone, it is transient: retried, and the error says what is going on.
    let p = provider(&[upgrading.url()], VaultSettings::default(), Vars::empty());
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("being upgraded to v2"), "{e}");
    let reads = upgrading
        .received()
        .iter()
        .filter(|r| r.path.contains("/data/"))
        .count();
    assert_eq!(
        reads,
        1 + 3,
        "one for the first provider, three attempts for the second"
    );
}

#[test]
fn a_storm_of_412s_is_bounded() {
    let behind =
        || node(|_| Reply::json(412, r#"{"errors": ["required index state not present"]}"#));
    let (a, b) = (behind(), behind());
    let p = provider(&[a.url(), b.url()], VaultSettings::default(), Vars::empty());
    let started = Instant::now();
    let e = get(&p).unwrap_err();
    assert!(e.to_string().contains("not yet applied"), "{e}");
    // Retries as any transient failure: 3 attempts of one round each.
    assert_eq!(a.requests() + b.requests(), 6);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A node answering a token login (with an index) and reads; the reads it
/// got.
fn indexed_node(index: &'static str) -> FakeServer {
    FakeServer::start(move |r| {
        let with_index = |status: u16, body: &str| {
            Reply::Status(
                status,
                vec![("X-Vault-Index".into(), index.into())],
                body.as_bytes().to_vec(),
            )
        };
        match r.path.as_str() {
            "/v1/auth/approle/login" => with_index(
                200,
                r#"{"auth": {"client_token": "hvs.from-login", "lease_duration": 60, "renewable": false}}"#,
            ),
            _ => with_index(200, FIELDS),
        }
    })
}

#[test]
fn the_index_of_a_write_is_carried_by_the_reads_that_follow() {
    use base64::Engine as _;
    let index =
        base64::engine::general_purpose::STANDARD.encode(r#"{"cluster":"c1","value":"41"}"#);
    let index: &'static str = Box::leak(index.into_boxed_str());
    let server = indexed_node(index);
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", "role")
        .set("VAULT_SECRET_ID", "secret-id-for-tests");
    let vault = VaultSettings {
        urls: Some(vec![server.url()]),
        kv_version: Some(2),
        ..VaultSettings::default()
    };
    let p = VaultProvider::new(&vault, &settings(), vars);
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    let got = server.received();
    let login = got.iter().find(|r| r.path.contains("login")).unwrap();
    assert_eq!(login.header("x-vault-index"), None, "writes carry no index");
    let read = got.iter().find(|r| r.path.contains("/data/")).unwrap();
    assert_eq!(read.header("x-vault-index"), Some(index));
    assert_eq!(
        read.header("x-vault-inconsistent"),
        Some("forward-active-node")
    );
    // A lower index seen later does not replace it.
    let lower = Index::parse(
        &base64::engine::general_purpose::STANDARD.encode(r#"{"cluster":"c1","value":"7"}"#),
    );
    assert!(!lower.newer_than(&Index::parse(index)));
    assert!(Index::parse(index).newer_than(&lower));
    assert!(Index::parse("v1:opaque-2").newer_than(&Index::parse("v1:opaque-1")));
}

#[test]
fn after_a_refresh_a_standbys_404_is_confirmed_with_the_other_nodes() {
    // The first node has not applied the write yet; the second has.
    let behind = node(|_| Reply::json(404, r#"{"errors": []}"#));
    let current = node(|_| Reply::json(200, FIELDS));
    let p = provider(
        &[behind.url(), current.url()],
        VaultSettings::default(),
        Vars::empty(),
    );
    // Outside the window a 404 is absence (the node is preferred).
    assert_eq!(get(&p).unwrap(), None);
    assert_eq!(reads(&current), 0);
    // A refresh expects a change: the 404 is asked again of the others.
    let fresh = p
        .read(
            "HF_TOKEN",
            crate::secrets::provider::Read::Fresh {
                min_interval: Duration::ZERO,
                failed: None,
            },
        )
        .unwrap()
        .map(|(v, _)| v.expose().to_owned());
    assert_eq!(fresh.as_deref(), Some("hf_from_node"));
    assert_eq!(reads(&current), 1);
}

#[test]
fn a_write_waits_out_an_election_within_its_deadline() {
    // Both nodes know no active node for a while; then the second is it.
    let started = Instant::now();
    let electing = move |r: &Request| {
        if started.elapsed() < Duration::from_millis(600) {
            return Reply::json(
                500,
                r#"{"errors": ["local node not active but active cluster node not found"]}"#,
            );
        }
        if r.path.contains("login") {
            Reply::json(
                200,
                r#"{"auth": {"client_token": "hvs.after-election", "lease_duration": 60}}"#,
            )
        } else {
            Reply::json(200, FIELDS)
        }
    };
    let (a, b) = (node(electing), node(electing));
    let approle = || {
        Vars::empty()
            .set("VAULT_ROLE_ID", "role")
            .set("VAULT_SECRET_ID", "secret-id-for-tests")
    };
    let vault = |timeout: f64| VaultSettings {
        urls: Some(vec![a.url(), b.url()]),
        kv_version: Some(2),
        election_timeout: Some(Duration::from_secs_f64(timeout)),
        ..VaultSettings::default()
    };
    let p = VaultProvider::new(&vault(10.0), &settings(), approle());
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));
    assert!(started.elapsed() >= Duration::from_millis(600));

    // A deadline shorter than the election: the login fails once, not
    // again for each retry of the read.
    let started = Instant::now();
    let always = node(|_| {
        Reply::json(
            500,
            r#"{"errors": ["local node not active but active cluster node not found"]}"#,
        )
    });
    let vault = VaultSettings {
        urls: Some(vec![always.url()]),
        kv_version: Some(2),
        election_timeout: Some(Duration::from_millis(300)),
        ..VaultSettings::default()
    };
    let p = VaultProvider::new(&vault, &settings(), approle());
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("election deadline"), "{e}");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn addresses_from_the_environment_and_the_configuration() {
    let (a, b) = (
        node(|_| Reply::json(200, FIELDS)),
        node(|_| Reply::json(200, FIELDS)),
    );
    let vars = Vars::empty()
        .set("VAULT_ADDR", &format!(" {} , {} ,", a.url(), b.url()))
        .set("VAULT_TOKEN", "hvs.env-token-for-tests");
    let p = VaultProvider::new(&VaultSettings::default(), &settings(), vars);
    assert_eq!(cluster(&p).nodes.len(), 2);
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_node"));

    let both = VaultSettings {
        url: Some(a.url()),
        urls: Some(vec![b.url()]),
        token: Some(SecretString::from("hvs.t")),
        ..VaultSettings::default()
    };
    let p = VaultProvider::new(&both, &settings(), Vars::empty());
    let e = get(&p).unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(e.to_string().contains("vault_urls"), "{e}");

    let c = crate::secrets::config::ManagerConfig::from_json(
        r#"{"vault_urls": ["http://a:8200/", "unix:///run/bao.sock"], "vault_election_timeout": 2.5}"#,
    )
    .unwrap();
    assert_eq!(
        c.vault.urls,
        Some(vec!["http://a:8200".into(), "unix:///run/bao.sock".into()])
    );
    assert_eq!(c.vault.election_timeout, Some(Duration::from_millis(2500)));
    for bad in [
        r#"{"vault_urls": []}"#,
        r#"{"vault_urls": ["ftp://a"]}"#,
        r#"{"vault_election_timeout": 0}"#,
        r#"{"vault_url": "http://a:8200,http://b:8200"}"#,
    ] {
        let e = crate::secrets::config::ManagerConfig::from_json(bad);
        assert!(e.is_err(), "{bad}");
    }
}

#[test]
fn the_processes_of_a_node_share_a_failover_through_the_node_cache() {
    let dir = PathBuf::from(format!(
        "/dev/shm/st-secrets-cluster-test-{}",
        std::process::id()
    ));
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(dir.clone());
    let live = node(|_| Reply::json(200, FIELDS));
    let addresses = [dead(), live.url()];
    let with_path = |path: &str| {
        let vault = VaultSettings {
            urls: Some(addresses.to_vec()),
            token: Some(SecretString::from("hvs.cluster-test-token")),
            kv_version: Some(2),
            paths: Some(vec![path.into()]),
            ..VaultSettings::default()
        };
        let remote = RemoteSettings {
            node_cache: Some(true),
            node_cache_dir: Some(dir.clone()),
            ..settings()
        };
        VaultProvider::new(&vault, &remote, Vars::empty())
    };
    // The first process finds the dead node and publishes it.
    let first = with_path("a");
    assert_eq!(get(&first).unwrap().as_deref(), Some("hf_from_node"));
    assert_eq!(cluster(&first).report()["nodes"][0]["requests"], 1);
    let published: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("vault-cluster-")
        })
        .collect();
    assert_eq!(published.len(), 1);
    let meta = published[0].metadata().unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    // Another process of the node (another secret: it fetches) starts with
    // the node that answers, never trying the dead one.
    let second = with_path("b");
    assert_eq!(get(&second).unwrap().as_deref(), Some("hf_from_node"));
    assert_eq!(cluster(&second).report()["nodes"][0]["requests"], 0);
    assert_eq!(cluster(&second).report()["nodes"][1]["answered_last"], true);
    // A garbled file is ignored, never a failure.
    std::fs::write(published[0].path(), b"{not json").unwrap();
    let third = with_path("c");
    assert_eq!(get(&third).unwrap().as_deref(), Some("hf_from_node"));
}

/// A node that accepts connections and never answers: the connections it
/// took, counted.
fn silent() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&taken);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    (url, taken)
}

#[test]
fn nodes_that_never_answer_share_one_fetch_bound_and_env_lists_are_capped() {
    // 3 nodes x 3 attempts x 800 ms was 7.2 s and 9 connections; one fetch
    // is bounded by 3 x 800 ms (and the backoffs) whatever the nodes.
    let nodes: Vec<_> = (0..3).map(|_| silent()).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.0.clone()).collect();
    let p = provider(&urls, VaultSettings::default(), Vars::empty());
    let e = get(&p).unwrap_err();
    let tried: usize = nodes
        .iter()
        .map(|n| n.1.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    assert!(tried <= 4, "{tried} connections: {e}");
    assert!(e.to_string().contains("bound"), "{e}");
    // BAO_ADDR / VAULT_ADDR are capped as vault_urls is.
    let many: Vec<String> = (0..5000)
        .map(|i| format!("http://127.0.0.{}:1", i % 250 + 1))
        .collect();
    let vars = Vars::empty().set("BAO_ADDR", &many.join(","));
    let e = VaultProvider::new(
        &VaultSettings {
            token: Some(SecretString::from("t")),
            ..VaultSettings::default()
        },
        &settings(),
        vars,
    )
    .status();
    let said = format!("{e:?}");
    assert!(
        said.contains("BAO_ADDR lists 5000 items; at most 64"),
        "{said}"
    );
}
