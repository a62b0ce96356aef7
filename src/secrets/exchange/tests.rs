use super::*;
use crate::secrets::remote::fake::{FakeServer, Reply};
use crate::secrets::remote::RemoteSettings;
use base64::Engine as _;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn remote() -> RemoteSettings {
    RemoteSettings {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        retries: 2,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        ..RemoteSettings::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An unsigned JWT of `claims` (the endpoint verifies; the exchange only
/// reads).
fn jwt(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2ln",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// A subject token file of `claims` in `dir`.
fn subject(dir: &tempfile::TempDir, claims: &Value) -> PathBuf {
    let path = dir.path().join("subject.jwt");
    std::fs::write(&path, jwt(claims)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn claims(aud: &str, life: u64) -> Value {
    json!({"iss": "https://issuer.test", "sub": "job/st/1/0", "aud": aud, "iat": now(),
           "nbf": now(), "exp": now() + life, "jti": format!("j{}", rand_u64())})
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn settings(profile: &str, file: PathBuf, url: &str) -> ExchangeSettings {
    let mut s = ExchangeSettings {
        profile: profile.into(),
        subject_token_file: file,
        url: Some(url.into()),
        ..ExchangeSettings::default()
    };
    match profile {
        "huggingface" => {
            s.resource = Some("org/model".into());
            s.audience = Some("https://huggingface.co".into());
        }
        "openai" => {
            s.identity_provider_id = Some("idp_1".into());
            s.service_account_id = Some("sa_1".into());
        }
        "anthropic" => {
            s.federation_rule_id = Some("fdrl_1".into());
            s.organization_id = Some("00000000-0000-0000-0000-000000000001".into());
            s.service_account_id = Some("svac_1".into());
        }
        "openrouter" => s.federation_policy_id = Some("fp_1".into()),
        _ => {}
    }
    s
}

fn granted(token: &str, expires_in: u64) -> Reply {
    Reply::json(
        200,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})
            .to_string(),
    )
}

fn form(body: &str) -> Value {
    Value::Object(
        body.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                let v = v.replace('+', " ");
                let decoded = percent(&v);
                (k.to_owned(), Value::String(decoded))
            })
            .collect(),
    )
}

fn percent(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn each_profile_sends_its_vendors_wire() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(|_| granted("at_1", 600));
    let url = format!("{}/token", server.url());
    let cases = [
        ("huggingface", "https://huggingface.co", true),
        ("openai", "openai", true),
        ("anthropic", "anthropic", true),
        ("wandb", "wandb", false),
        ("openrouter", "openrouter", false),
        ("rfc8693", "keycloak", false),
        ("rfc7523", "keycloak", false),
    ];
    for (profile, aud, is_json) in cases {
        let file = subject(&dir, &claims(aud, 900));
        let token = std::fs::read_to_string(&file).unwrap();
        let e = Exchange::new("API_KEY", &settings(profile, file, &url), &remote()).unwrap();
        let got = e.exchange().unwrap();
        assert_eq!(got.token.expose(), "at_1");
        assert_eq!(got.lifetime, Duration::from_secs(600));
        let r = server.last().unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/token"));
        let body = if is_json {
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{profile}"
            );
            serde_json::from_slice::<Value>(&r.body).unwrap()
        } else {
            assert_eq!(
                r.header("content-type"),
                Some("application/x-www-form-urlencoded"),
                "{profile}"
            );
            form(&r.text())
        };
        let bearer = profile == "anthropic" || profile.ends_with("7523") || profile == "wandb";
        let (grant, field) = if bearer {
            (profile::JWT_BEARER, "assertion")
        } else {
            (profile::TOKEN_EXCHANGE, "subject_token")
        };
        assert_eq!(body["grant_type"], grant, "{profile}");
        assert_eq!(body[field], token.as_str(), "{profile}");
        match profile {
            "huggingface" => {
                assert_eq!(body["resource"], "org/model");
                assert_eq!(body["subject_token_type"], profile::ID_TOKEN_TYPE);
            }
            "openai" => {
                assert_eq!(body["identity_provider_id"], "idp_1");
                assert_eq!(body["service_account_id"], "sa_1");
            }
            "anthropic" => {
                assert_eq!(body["federation_rule_id"], "fdrl_1");
                assert_eq!(body["service_account_id"], "svac_1");
                assert_eq!(r.header("anthropic-beta"), Some(profile::ANTHROPIC_BETA));
            }
            "openrouter" => assert_eq!(body["federation_policy_id"], "fp_1"),
            _ => {}
        }
    }
}

#[test]
fn a_profiles_fields_are_checked_by_name() {
    let file = PathBuf::from("/nonexistent");
    let e = |s: ExchangeSettings| {
        Exchange::new("HF_TOKEN", &s, &remote())
            .err()
            .unwrap()
            .to_string()
    };
    let mut s = settings("huggingface", file.clone(), "https://hf.test/oauth/token");
    s.resource = None;
    assert!(e(s).contains("needs 'resource'"));
    let mut s = settings("huggingface", file.clone(), "https://hf.test/oauth/token");
    s.federation_rule_id = Some("x".into());
    assert!(e(s).contains("'federation_rule_id' is not a field of the huggingface profile"));
    let s = settings(
        "huggingface",
        file.clone(),
        "http://hf.example.org/oauth/token",
    );
    assert!(e(s).contains("credentials are sent there"));
    let mut s = settings("rfc8693", file.clone(), "https://kc.test/token");
    s.url = None;
    assert!(e(s).contains("needs 'url'"));
    let s = settings("nope", file.clone(), "https://x.test");
    assert!(e(s).contains("is not one of huggingface, openai"));
    // Hugging Face's audience is its Hub's URL, a private Hub's too.
    let mut s = settings("huggingface", file, "https://hub.example.org/oauth/token");
    s.audience = None;
    let hub = Profile::HuggingFace.default_audience(&s);
    assert_eq!(hub.as_deref(), Some("https://hub.example.org"));
    s.url = None;
    let hub = Profile::HuggingFace.default_audience(&s);
    assert_eq!(hub.as_deref(), Some("https://huggingface.co"));
}

#[test]
fn a_subject_token_that_would_be_refused_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(|_| granted("at_1", 60));
    let url = format!("{}/oauth/token", server.url());
    let try_with = |c: &Value| {
        let file = subject(&dir, c);
        let e = Exchange::new("HF_TOKEN", &settings("huggingface", file, &url), &remote()).unwrap();
        e.exchange().unwrap_err().to_string()
    };
    let hf = "https://huggingface.co";
    let mut expired = claims(hf, 900);
    expired["exp"] = json!(now() - 30);
    assert!(
        try_with(&expired).contains("expired"),
        "{}",
        try_with(&expired)
    );
    // A clock 10 minutes off: the token starts ahead of this host's clock.
    let mut ahead = claims(hf, 900);
    ahead["nbf"] = json!(now() + 600);
    ahead["iat"] = json!(now() + 600);
    ahead["exp"] = json!(now() + 1500);
    let why = try_with(&ahead);
    assert!(
        why.contains("not valid yet") && why.contains("clock"),
        "{why}"
    );
    // Minted for another audience.
    let why = try_with(&claims("openbao", 900));
    assert!(
        why.contains("for audience") && why.contains("never sent"),
        "{why}"
    );
    // Not a JWT.
    let file = dir.path().join("subject.jwt");
    std::fs::write(&file, "not a jwt").unwrap();
    let e = Exchange::new("HF_TOKEN", &settings("huggingface", file, &url), &remote()).unwrap();
    assert!(e
        .exchange()
        .unwrap_err()
        .to_string()
        .contains("is not a JWT"));
    assert_eq!(server.requests(), 0, "nothing was sent");
}

#[test]
fn an_answer_that_cannot_be_held_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = subject(&dir, &claims("https://huggingface.co", 300));
    let run = |reply: fn() -> Reply| {
        let server = FakeServer::start(move |_| reply());
        let url = format!("{}/oauth/token", server.url());
        let e = Exchange::new(
            "HF_TOKEN",
            &settings("huggingface", file.clone(), &url),
            &remote(),
        )
        .unwrap();
        let why = e.exchange().unwrap_err().to_string();
        (why, server.requests())
    };
    let (why, n) = run(|| {
        Reply::json(
            200,
            r#"{"access_token": "hf_jwt_x", "token_type": "Bearer"}"#,
        )
    });
    assert!(
        why.contains("says no lifetime") && !why.contains("hf_jwt_x"),
        "{why}"
    );
    assert_eq!(n, 1, "a refusal is not retried");
    let (why, _) = run(|| granted("hf_jwt_x", 3600));
    assert!(
        why.contains("ends past the subject token's exp") && !why.contains("hf_jwt_x"),
        "{why}"
    );
    let (why, n) = run(|| {
        Reply::Status(
            302,
            vec![("location".into(), "https://elsewhere.test/steal".into())],
            Vec::new(),
        )
    });
    assert!(
        why.contains("redirects (HTTP 302)") && why.contains("not followed"),
        "{why}"
    );
    assert_eq!(n, 1);
    let (why, _) = run(|| Reply::json(200, format!("{{\"pad\": \"{}\"}}", "x".repeat(5 << 20))));
    assert!(why.contains("larger than"), "{why}");
    let (why, n) = run(|| {
        Reply::json(
            401,
            r#"{"error": "invalid_grant", "error_description": "no rule matched"}"#,
        )
    });
    assert!(
        why.contains("HTTP 401 invalid_grant: no rule matched"),
        "{why}"
    );
    assert_eq!(n, 1);
    let (_, n) = run(|| Reply::json(503, "{}"));
    assert_eq!(n, 3, "a server error is retried, within the bound");
}

#[test]
fn a_single_use_endpoint_never_gets_a_jwt_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(|_| granted("sk-ant-oat01-x", 120));
    let url = format!("{}/v1/oauth/token", server.url());
    let file = subject(&dir, &claims("anthropic", 900));
    let e = Exchange::new(
        "ANTHROPIC_API_KEY",
        &settings("anthropic", file, &url),
        &remote(),
    )
    .unwrap();
    e.exchange().unwrap();
    let why = e.exchange().unwrap_err().to_string();
    assert!(
        why.contains("sent already") && why.contains("once"),
        "{why}"
    );
    assert_eq!(server.requests(), 1);
    // A fresh token from its issuer is sent.
    subject(&dir, &claims("anthropic", 900));
    e.exchange().unwrap();
    assert_eq!(server.requests(), 2);
    // A failed exchange is not retried with the same token.
    let failing = FakeServer::start(|_| Reply::json(503, "{}"));
    let file = subject(&dir, &claims("anthropic", 900));
    let url = format!("{}/v1/oauth/token", failing.url());
    let e = Exchange::new(
        "ANTHROPIC_API_KEY",
        &settings("anthropic", file, &url),
        &remote(),
    )
    .unwrap();
    assert!(e.exchange().is_err());
    assert_eq!(failing.requests(), 1);
}

/// A manager whose chain reads `HF_TOKEN` from a Hugging Face exchange at
/// `url`, sharing through the node cache in `node` when given.
fn manager(
    file: &std::path::Path,
    url: &str,
    node: Option<&std::path::Path>,
) -> crate::secrets::SecretsManager {
    let mut config = crate::secrets::ManagerConfig::from_json(
        &json!({
            "providers": ["env", "exchange"],
            "exchanges": {"HF_TOKEN": {"profile": "huggingface", "subject_token_file": file,
                                       "url": url, "resource": "org/model",
                                       "audience": "https://huggingface.co"}},
            "retries": 0,
        })
        .to_string(),
    )
    .unwrap();
    config.remote.node_cache = Some(node.is_some());
    config.remote.node_cache_dir = node.map(std::path::Path::to_path_buf);
    crate::secrets::SecretsManager::with_environment(config, crate::secrets::remote::Vars::empty())
        .unwrap()
}

/// A token endpoint granting `hf_jwt_N` (N counting up) for `life` seconds.
fn counting(life: u64) -> FakeServer {
    let n = std::sync::atomic::AtomicU64::new(0);
    FakeServer::start(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        granted(&format!("hf_jwt_{i}"), life)
    })
}

#[test]
fn the_chain_serves_the_exchanged_credential_once_per_node_and_replaces_a_refused_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = subject(&dir, &claims("https://huggingface.co", 3600));
    let server = counting(600);
    let url = format!("{}/oauth/token", server.url());
    let node = PathBuf::from(format!(
        "/dev/shm/st-secrets-exchange-test-{}",
        std::process::id()
    ));
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(node.clone());
    // Two processes of a node: one exchange.
    let (a, b) = (
        manager(&file, &url, Some(&node)),
        manager(&file, &url, Some(&node)),
    );
    assert_eq!(a.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_jwt_1");
    assert_eq!(b.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_jwt_1");
    assert_eq!(server.requests(), 1);
    // The API refused it: both report it, one exchange for the node.
    a.report_failure("HF_TOKEN", None).unwrap();
    b.report_failure("HF_TOKEN", None).unwrap();
    assert_eq!(a.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_jwt_2");
    assert_eq!(b.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_jwt_2");
    assert_eq!(server.requests(), 2);
    // The status names the exchange and its endpoint, never the credential.
    let status = a.providers_json();
    assert!(
        status.contains("huggingface token exchange for 'HF_TOKEN'"),
        "{status}"
    );
    assert!(!status.contains("hf_jwt_"), "{status}");
}

#[test]
fn the_exchanges_configuration_is_checked_by_name() {
    let bad = |v: Value| {
        crate::secrets::ManagerConfig::from_json(&v.to_string())
            .err()
            .unwrap()
            .to_string()
    };
    let why = bad(json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface"}}}));
    assert!(
        why.contains("'HF_TOKEN'") && why.contains("subject_token_file"),
        "{why}"
    );
    let why = bad(json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface",
        "subject_token_file": "/t", "resource": "r", "colour": "blue"}}}));
    assert!(why.contains("unknown field"), "{why}");
    let why = bad(json!({"exchanges": {"a b": {}}}));
    assert!(why.contains("is not a secret's name"), "{why}");
    let why = bad(
        json!({"providers": ["env"], "exchanges": {"HF_TOKEN": {"profile": "huggingface",
        "subject_token_file": "/t", "resource": "r"}}}),
    );
    assert!(why.contains("does not list 'exchange'"), "{why}");
    let ok = crate::secrets::ManagerConfig::from_json(
        &json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface", "subject_token_file": "/t",
                                           "resource": "r"}}})
        .to_string(),
    )
    .unwrap();
    assert_eq!(ok.providers[1], crate::secrets::ProviderKind::Exchange);
}
