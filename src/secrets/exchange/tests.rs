use super::*;
use crate::secrets::remote::fake::{FakeServer, Reply};
use crate::secrets::transport::RemoteSettings;
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

/// [`Exchange::new`] with Vault unconfigured and no variables.
fn new_exchange(
    key: &str,
    s: &ExchangeSettings,
    remote: &RemoteSettings,
) -> Result<Exchange, crate::error::Error> {
    Exchange::new(
        key,
        s,
        remote,
        &crate::secrets::subjects::ChainMints::new(&Default::default()),
        &crate::secrets::transport::Vars::empty(),
    )
}

fn settings(profile: &str, file: PathBuf, url: &str) -> ExchangeSettings {
    let mut s = ExchangeSettings {
        profile: profile.into(),
        subject_token_file: Some(file),
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
        let e = new_exchange("API_KEY", &settings(profile, file, &url), &remote()).unwrap();
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
fn a_generic_client_authenticates_with_http_basic_and_names_its_subjects_type() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(|_| granted("at_1", 600));
    let url = format!("{}/token", server.url());
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "s3cr:t/+\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    for profile in ["rfc8693", "rfc7523"] {
        let mut s = settings(profile, subject(&dir, &claims("keycloak", 900)), &url);
        s.client_id = Some("st job".into());
        s.client_secret_file = Some(secret.clone());
        let e = new_exchange("API_KEY", &s, &remote()).unwrap();
        assert_eq!(e.exchange().unwrap().token.expose(), "at_1");
        let r = server.last().unwrap();
        // Each part form-encoded, then Base64 (RFC 6749 section 2.3.1); the
        // client not named again in the body.
        let basic = r
            .header("authorization")
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        let pair = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap();
        assert_eq!(pair, b"st%20job:s3cr%3At%2F%2B", "{profile}");
        assert!(form(&r.text()).get("client_id").is_none(), "{profile}");
    }
    // Keycloak's standard exchange takes an access token's type alone, the
    // subject for the requesting client and the credential for the API.
    let mut s = settings("rfc8693", subject(&dir, &claims("keycloak", 900)), &url);
    s.subject_token_type = Some("access_token".into());
    s.requested_audience = Some("vendor-api".into());
    new_exchange("API_KEY", &s, &remote())
        .unwrap()
        .exchange()
        .unwrap();
    let sent = form(&server.last().unwrap().text());
    assert_eq!(sent["subject_token_type"], profile::ACCESS_TOKEN_TYPE);
    assert_eq!(sent["audience"], "vendor-api");
    s.subject_token_type = Some("saml2".into());
    let e = new_exchange("API_KEY", &s, &remote())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("subject_token_type 'saml2' is not one of"),
        "{e}"
    );
    // A secret others may read is refused by name, nothing sent.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = server.requests();
    let mut s = settings("rfc8693", subject(&dir, &claims("keycloak", 900)), &url);
    s.client_id = Some("st".into());
    s.client_secret_file = Some(secret.clone());
    let e = new_exchange("API_KEY", &s, &remote())
        .unwrap()
        .exchange()
        .unwrap_err();
    assert!(e.to_string().contains("client secret file"), "{e}");
    assert!(!e.to_string().contains("s3cr"), "{e}");
    assert_eq!(server.requests(), before);
    // Without a client_id, or for a vendor's profile: refused at configuration.
    s.client_id = None;
    let e = new_exchange("API_KEY", &s, &remote())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("client_secret_file needs client_id"), "{e}");
    let mut hf = settings(
        "huggingface",
        subject(&dir, &claims("https://huggingface.co", 900)),
        &url,
    );
    hf.client_secret_file = Some(secret);
    let e = new_exchange("API_KEY", &hf, &remote())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("'client_secret_file' is not a field of the huggingface profile"),
        "{e}"
    );
}

#[test]
fn a_profiles_fields_are_checked_by_name() {
    let file = PathBuf::from("/nonexistent");
    let e = |s: ExchangeSettings| {
        new_exchange("HF_TOKEN", &s, &remote())
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
        let e = new_exchange("HF_TOKEN", &settings("huggingface", file, &url), &remote()).unwrap();
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
    let e = new_exchange("HF_TOKEN", &settings("huggingface", file, &url), &remote()).unwrap();
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
        let e = new_exchange(
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
    let e = new_exchange(
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
    let e = new_exchange(
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
    crate::secrets::SecretsManager::with_environment(
        config,
        crate::secrets::transport::Vars::empty(),
    )
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
    let why = bad(json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface", "resource": "r"}}}));
    assert!(
        why.contains("'HF_TOKEN'") && why.contains("exactly one of subject_token_file"),
        "{why}"
    );
    let why = bad(
        json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface", "resource": "r",
        "subject_token_file": "/t", "subject_vault_role": "hf"}}}),
    );
    assert!(why.contains("exactly one of"), "{why}");
    let why = bad(
        json!({"exchanges": {"HF_TOKEN": {"profile": "huggingface", "resource": "r",
        "subject_job_token": "../hf"}}}),
    );
    assert!(why.contains("subject_job_token"), "{why}");
    let why = bad(
        json!({"exchanges": {"HF_TOKEN": {"profile": "hugface", "resource": "r",
        "subject_job_token": "hf"}}}),
    );
    assert!(why.contains("is not one of"), "{why}");
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

#[test]
fn a_slurm_jobs_token_for_the_audience_is_read_beside_the_jobs_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(|_| granted("wb_at_1", 600));
    let url = format!("{}/oidc/token", server.url());
    let hf = dir.path().join("token.wandb");
    std::fs::write(&hf, jwt(&claims("wandb", 900))).unwrap();
    std::fs::set_permissions(&hf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = ExchangeSettings {
        profile: "wandb".into(),
        subject_job_token: Some("wandb".into()),
        url: Some(url),
        ..ExchangeSettings::default()
    };
    let job = |vars: crate::secrets::transport::Vars| {
        Exchange::new(
            "WANDB_API_KEY",
            &s,
            &remote(),
            &crate::secrets::subjects::ChainMints::new(&Default::default()),
            &vars,
        )
        .unwrap()
    };
    let vars = crate::secrets::transport::Vars::empty().set(
        "SIMPLETUNER_JOB_TOKEN_FILE",
        dir.path().join("token").to_str().unwrap(),
    );
    assert_eq!(job(vars).exchange().unwrap().token.expose(), "wb_at_1");
    assert_eq!(
        form(&server.last().unwrap().text())["assertion"],
        std::fs::read_to_string(&hf).unwrap().as_str()
    );
    // Outside a job: said by name, nothing sent.
    let why = job(crate::secrets::transport::Vars::empty())
        .exchange()
        .unwrap_err();
    assert!(
        why.to_string().contains("SIMPLETUNER_JOB_TOKEN_FILE"),
        "{why}"
    );
    assert_eq!(server.requests(), 1);
}

#[test]
fn gcps_metadata_server_mints_a_subject_token_for_each_exchange() {
    let minted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&minted);
    let metadata = FakeServer::start(move |r| {
        let google = vec![("metadata-flavor".to_owned(), "Google".to_owned())];
        if r.header("metadata-flavor") != Some("Google") {
            return Reply::Status(403, google, Vec::new());
        }
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        if path != "/computeMetadata/v1/instance/service-accounts/default/identity" {
            return Reply::Status(404, google, Vec::new());
        }
        let q = form(query);
        if q["format"] != "full" {
            return Reply::Status(400, google, Vec::new());
        }
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let aud = q["audience"].as_str().unwrap();
        Reply::Status(200, google, jwt(&claims(aud, 3600)).into_bytes())
    });
    let vendor = FakeServer::start(|_| granted("oai_1", 600));
    let s = ExchangeSettings {
        profile: "openai".into(),
        subject_gcp_metadata: Some(true),
        url: Some(format!("{}/oauth/token", vendor.url())),
        audience: Some("openai-aud".into()),
        identity_provider_id: Some("idp_1".into()),
        service_account_id: Some("sa_1".into()),
        ..ExchangeSettings::default()
    };
    let host = metadata.url().trim_start_matches("http://").to_owned();
    let vars = crate::secrets::transport::Vars::empty().set("GCE_METADATA_HOST", &host);
    let vault = crate::secrets::subjects::ChainMints::new(&Default::default());
    let e = Exchange::new("OPENAI_API_KEY", &s, &remote(), &vault, &vars).unwrap();
    e.exchange().unwrap();
    e.exchange().unwrap();
    assert_eq!(minted.load(std::sync::atomic::Ordering::SeqCst), 2);
    let sent: Value = serde_json::from_slice(&vendor.last().unwrap().body).unwrap();
    let claims = crate::secrets::credential::identity_file::jwt_claims(
        sent["subject_token"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "openai-aud");
    // Without an audience to ask for: refused when configured.
    let mut none = s.clone();
    none.audience = None;
    let why = Exchange::new("OPENAI_API_KEY", &none, &remote(), &vault, &vars)
        .err()
        .unwrap();
    assert!(why.to_string().contains("needs the audience"), "{why}");
}

#[test]
fn the_environment_can_name_the_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let file = subject(&dir, &claims("https://huggingface.co", 3600));
    let server = counting(600);
    let url = format!("{}/oauth/token", server.url());
    let exchanges = json!({"HF_TOKEN": {"profile": "huggingface", "subject_token_file": file,
                                        "url": url, "resource": "org/model",
                                        "audience": "https://huggingface.co"}});
    let with = |text: &str| {
        let config = crate::secrets::ManagerConfig::from_json(
            &json!({"providers": ["exchange"], "retries": 0}).to_string(),
        )
        .unwrap();
        let vars = crate::secrets::transport::Vars::empty().set("SIMPLETUNER_EXCHANGES", text);
        crate::secrets::SecretsManager::with_environment(config, vars).unwrap()
    };
    let m = with(&exchanges.to_string());
    assert_eq!(m.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_jwt_1");
    // Checked as the configuration key is, and said naming the variable.
    let bad = json!({"HF_TOKEN": {"profile": "huggingface", "subject_token_file": "/t"}});
    let why = with(&bad.to_string()).get("HF_TOKEN").unwrap_err();
    assert!(
        why.to_string().contains("SIMPLETUNER_EXCHANGES") && why.to_string().contains("resource"),
        "{why}"
    );
    let why = with("{not json").get("HF_TOKEN").unwrap_err();
    assert!(why.to_string().contains("is not JSON"), "{why}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn coreweaves_key_pair_is_two_secrets_of_one_exchange() {
    use aws_smithy_types::date_time::{DateTime, Format};
    let dir = tempfile::tempdir().unwrap();
    let file = subject(&dir, &claims("coreweave", 3600));
    let expiry = |secs: u64| {
        DateTime::from_secs(i64::try_from(now() + secs).unwrap())
            .fmt(Format::DateTime)
            .unwrap()
    };
    let answer = format!(
        r#"{{"accessKeyId": "CWAK1", "secretKey": "cwo-secret-1", "principalName": "role/x",
            "expiry": "{}"}}"#,
        expiry(600)
    );
    let server = FakeServer::start(move |_| Reply::json(200, answer.clone()));
    let url = format!("{}/v1/cwobject/temporary-credentials/oidc", server.url());
    let config = |extra: Value| {
        let mut one = json!({"profile": "coreweave-object-storage", "subject_token_file": file,
                             "url": url, "organization_id": "org1", "duration_seconds": 600});
        one.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        crate::secrets::ManagerConfig::from_json(
            &json!({"providers": ["exchange"], "retries": 0,
                    "exchanges": {"AWS_SECRET_ACCESS_KEY": one}})
            .to_string(),
        )
    };
    let m = crate::secrets::SecretsManager::with_environment(
        config(json!({})).unwrap(),
        crate::secrets::transport::Vars::empty(),
    )
    .unwrap();
    assert_eq!(
        m.get("AWS_ACCESS_KEY_ID").unwrap().unwrap().expose(),
        "CWAK1"
    );
    assert_eq!(
        m.get("AWS_SECRET_ACCESS_KEY").unwrap().unwrap().expose(),
        "cwo-secret-1"
    );
    assert_eq!(server.requests(), 1, "one exchange gives both");
    let sent: Value = serde_json::from_slice(&server.last().unwrap().body).unwrap();
    assert_eq!(
        (&sent["orgId"], &sent["durationSeconds"]),
        (&json!("org1"), &json!(600))
    );
    assert_eq!(
        sent["oidcToken"],
        std::fs::read_to_string(&file).unwrap().as_str()
    );
    // Refused by name when configured: a credential that never ends, and
    // an access key ID's name that is the entry's own.
    let why = config(json!({"duration_seconds": 0})).err().unwrap();
    assert!(
        why.to_string()
            .contains("duration_seconds must be 1 to 43200"),
        "{why}"
    );
    let why = config(json!({"access_key_id_name": "AWS_SECRET_ACCESS_KEY"}))
        .err()
        .unwrap();
    assert!(why.to_string().contains("access_key_id_name"), "{why}");
    // An answer without an expiry is a credential of unknown lifetime.
    let server = FakeServer::start(|_| {
        Reply::json(
            200,
            r#"{"accessKeyId": "CWAK2", "secretKey": "cwo-secret-2"}"#,
        )
    });
    let mut s = settings("rfc8693", file.clone(), "https://unused.test/");
    s.profile = "coreweave-object-storage".into();
    s.url = Some(format!("{}/oidc", server.url()));
    s.organization_id = Some("org1".into());
    let why = new_exchange("AWS_SECRET_ACCESS_KEY", &s, &remote())
        .unwrap()
        .exchange()
        .unwrap_err();
    assert!(
        why.to_string().contains("no lifetime") && !why.to_string().contains("cwo-secret"),
        "{why}"
    );
}
