//! The AWS provider against the loopback fake server: wire format, signing
//! headers, error classes, faults, stale serving, single-flight, and the
//! credential sources of cloud hosts. The same provider runs against moto's
//! real server in `tests/aws_moto.rs`.

use super::*;
use crate::secrets::config::ManagerConfig;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use crate::secrets::SecretsManager;
use crate::secrets::{AwsSettings, RemoteSettings};
use base64::Engine as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SECRET: &str =
    r#"{"HF_TOKEN": "hf_from_aws", "REPLICATE_API_TOKEN": "r8_from_aws", "PORT": 8080}"#;

fn config(endpoint: &str) -> ManagerConfig {
    ManagerConfig {
        remote: RemoteSettings {
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(500),
            retries: 2,
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(4),
            max_stale: Duration::from_secs(60),
            failure_ttl: Duration::ZERO,
            ..RemoteSettings::default()
        },
        aws: AwsSettings {
            secret_names: Some(vec!["training/keys".into()]),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint.into()),
            agent_url: None,
        },
        ..ManagerConfig::default()
    }
}

/// The provider built from `c`'s AWS and remote settings.
fn provider(c: &ManagerConfig, vars: Vars) -> AwsProvider {
    AwsProvider::new(&c.aws, &c.remote, vars)
}

fn static_vars() -> Vars {
    Vars::empty()
        .set("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .set("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .set("AWS_EC2_METADATA_DISABLED", "true")
}

fn no_credentials() -> Vars {
    Vars::empty().set("AWS_EC2_METADATA_DISABLED", "true")
}

fn secret_reply(secret_string: &str) -> Reply {
    Reply::json(
        200,
        json!({"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:training/keys",
               "Name": "training/keys", "SecretString": secret_string})
        .to_string(),
    )
}

fn aws_error(status: u16, code: &str) -> Reply {
    Reply::json(
        status,
        json!({"__type": code, "message": "refused"}).to_string(),
    )
}

fn get(p: &AwsProvider, key: &str) -> Result<Option<String>, Error> {
    p.lookup(key).map(|v| v.map(|v| v.expose().to_owned()))
}

/// The authorization header of the last request `server` received: the
/// key id it was signed with and its credential scope (date, region,
/// service).
fn last_authorization(server: &FakeServer) -> String {
    let r = server.last().expect("a request was sent");
    r.header("authorization").unwrap_or_default().to_owned()
}

fn is_get_secret(r: &Request) -> bool {
    r.header("x-amz-target") == Some("secretsmanager.GetSecretValue")
}

#[test]
fn a_signed_get_secret_value_supplies_the_keys() {
    let server = FakeServer::start(|_| secret_reply(SECRET));
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(get(&p, "hf-token").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(get(&p, "PORT").unwrap().as_deref(), Some("8080"));
    assert_eq!(get(&p, "MISSING").unwrap(), None);
    assert_eq!(server.requests(), 1, "one request per TTL");

    let r = server.last().unwrap();
    assert_eq!(r.method, "POST");
    assert!(is_get_secret(&r));
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(
        r.text(),
        r#"{"SecretId":"training/keys","VersionStage":"AWSCURRENT"}"#
    );
    let auth = r.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/us-east-1/secretsmanager/aws4_request")
            && auth.contains("SignedHeaders=")
            && auth.contains("x-amz-target"),
        "{auth}"
    );
    assert!(r.header("x-amz-date").is_some());
    assert!(r.header("x-amz-security-token").is_none());
    assert!(
        !format!("{r:?}").contains(SECRET_KEY),
        "the secret key is never sent"
    );

    let status = p.status();
    assert!(status.available);
    assert!(
        status
            .detail
            .contains("credentials: environment variables (1 resolution by this process"),
        "{}",
        status.detail
    );
    assert!(status.detail.contains("1 request"), "{}", status.detail);
}

#[test]
fn session_tokens_are_sent() {
    let server = FakeServer::start(|_| secret_reply(SECRET));
    let vars = static_vars().set("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN");
    let p = provider(&config(&server.url()), vars);
    get(&p, "HF_TOKEN").unwrap();
    let r = server.last().unwrap();
    assert_eq!(
        r.header("x-amz-security-token"),
        Some("FwoGZXIvYXdzEXAMPLETOKEN")
    );
}

#[test]
fn secret_binary_works_and_other_shapes_are_parse_errors() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let server = FakeServer::start(move |_| {
        Reply::json(200, json!({"Name": "n", "SecretBinary": b64}).to_string())
    });
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));

    for (answer, expect) in [
        (json!({"SecretString": "hunter2-plain-text"}), "is not JSON"),
        (json!({"SecretString": "[\"hunter2\"]"}), "not an object"),
        (json!({"SecretBinary": "!!!"}), "not base64"),
        (
            json!({"SecretBinary": base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])}),
            "not UTF-8",
        ),
        (
            json!({"Name": "n"}),
            "neither SecretString nor SecretBinary",
        ),
    ] {
        let body = answer.to_string();
        let server = FakeServer::start(move |_| Reply::json(200, body.clone()));
        let p = provider(&config(&server.url()), static_vars());
        let e = get(&p, "HF_TOKEN").unwrap_err();
        assert_eq!(e.code_name(), "ST_PARSE", "{e}");
        assert!(e.message().contains(expect), "{e}");
        assert!(!e.message().contains("hunter2"), "{e}");
        assert_eq!(server.requests(), 1, "parse errors are not retried");
    }
}

#[test]
fn a_missing_secret_is_absent_and_cached_for_the_negative_ttl() {
    let server = FakeServer::start(|_| aws_error(400, "ResourceNotFoundException"));
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);
    assert_eq!(get(&p, "OTHER").unwrap(), None);
    assert_eq!(server.requests(), 1);
}

#[test]
fn auth_errors_are_st_auth_and_not_retried() {
    for code in [
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    ] {
        let server = FakeServer::start(move |_| aws_error(400, code));
        let p = provider(&config(&server.url()), static_vars());
        let e = get(&p, "HF_TOKEN").unwrap_err();
        assert_eq!(e.code_name(), "ST_AUTH", "{code}: {e}");
        assert!(e.message().contains(code), "{e}");
        assert!(!e.message().contains(SECRET_KEY));
        assert_eq!(server.requests(), 1, "{code}");
    }
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let server = FakeServer::start(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => aws_error(500, "InternalServiceError"),
        1 => aws_error(400, "ThrottlingException"),
        _ => secret_reply(SECRET),
    });
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(server.requests(), 3);

    let server = FakeServer::start(|_| Reply::text(503, "<html>Service Unavailable</html>"));
    let p = provider(&config(&server.url()), static_vars());
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_REMOTE", "{e}");
    assert!(e.message().contains("HTTP 503"), "{e}");
    assert_eq!(server.requests(), 3, "1 attempt + 2 retries");
}

#[test]
fn faults_give_network_timeout_and_remote_errors() {
    // A server that never answers in time: ST_TIMEOUT, bounded by the timeouts.
    let server =
        FakeServer::start(|_| Reply::After(Duration::from_secs(3), Box::new(secret_reply(SECRET))));
    let mut c = config(&server.url());
    c.remote.retries = 1;
    let p = provider(&c, static_vars());
    let t = Instant::now();
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_TIMEOUT", "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(server.requests(), 2);

    // Connections closed without an answer: ST_NETWORK.
    let server = FakeServer::start(|_| Reply::Drop);
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_NETWORK");
    assert_eq!(server.requests(), 3);

    // Garbage instead of HTTP: ST_NETWORK.
    let server = FakeServer::start(|_| Reply::Raw(b"\x00\x01garbage\r\n\r\n".to_vec()));
    let p = provider(&config(&server.url()), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_NETWORK");

    // A 200 whose body is not JSON: ST_REMOTE (retried: proxies misbehave).
    let server = FakeServer::start(|_| Reply::text(200, "<html>captive portal</html>"));
    let p = provider(&config(&server.url()), static_vars());
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_REMOTE", "{e}");
    assert_eq!(server.requests(), 3);

    // Nobody listening: ST_NETWORK, quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = provider(&config(&format!("http://127.0.0.1:{port}")), static_vars());
    let t = Instant::now();
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_NETWORK");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn the_last_good_value_is_served_while_the_service_fails() {
    let down = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&down);
    let server = FakeServer::start(move |_| match d.load(Ordering::SeqCst) {
        0 => secret_reply(SECRET),
        1 => aws_error(503, "ServiceUnavailable"),
        _ => aws_error(400, "AccessDeniedException"),
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::ZERO;
    c.remote.max_stale = Duration::from_millis(400);
    let vars = static_vars();
    let m = SecretsManager::with_providers(c.clone(), vec![Arc::new(provider(&c, vars))]);
    assert_eq!(m.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_from_aws");
    down.store(1, Ordering::SeqCst);
    assert_eq!(m.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_from_aws");
    let json: Value = serde_json::from_str(&m.providers_json()).unwrap();
    assert_eq!(json[0]["last_error"]["code"], "ST_REMOTE", "{json}");
    assert!(json[0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("last fetch failed"));
    // Past the bound the failure comes through.
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(m.get("HF_TOKEN").unwrap_err().code_name(), "ST_REMOTE");
    // Recovered: fresh again, the failure cleared.
    down.store(0, Ordering::SeqCst);
    assert_eq!(m.get("HF_TOKEN").unwrap().unwrap().expose(), "hf_from_aws");
    let json: Value = serde_json::from_str(&m.providers_json()).unwrap();
    assert!(json[0]["last_error"].is_null(), "{json}");
    // An auth failure is never hidden by the stale value.
    down.store(2, Ordering::SeqCst);
    assert_eq!(m.get("HF_TOKEN").unwrap_err().code_name(), "ST_AUTH");
}

#[test]
fn two_threads_times_ten_thousand_gets_send_one_request() {
    let server = FakeServer::start(|_| {
        Reply::After(Duration::from_millis(100), Box::new(secret_reply(SECRET)))
    });
    let p = Arc::new(provider(&config(&server.url()), static_vars()));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(server.requests(), 1);
}

fn iso(t: SystemTime) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from(t).fmt(Format::DateTime).unwrap()
}

/// A fake host: container credentials at /creds (token checked), STS at /sts,
/// IMDSv2 under /latest, Secrets Manager at / (key id and token checked).
/// Credentials are numbered: each hand-out is a new key `ASIAFAKE<n>`.
fn cloud_host(expires_in: Duration) -> (FakeServer, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&issued);
    let server = FakeServer::start(move |r| {
        let creds = |n: &AtomicUsize| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            (format!("ASIAFAKE{i}"), iso(SystemTime::now() + expires_in))
        };
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/creds") => {
                if r.header("authorization") != Some("pod-token-123") {
                    return Reply::text(401, "unauthorized");
                }
                let (id, exp) = creds(&n);
                Reply::json(
                    200,
                    json!({"AccessKeyId": id, "SecretAccessKey": "cs3cr3t",
                    "Token": "ctoken", "Expiration": exp})
                    .to_string(),
                )
            }
            ("POST", "/sts") if r.text().contains("Action=AssumeRole&") => {
                // Signed for STS with the environment's key, with the
                // profile's options.
                let auth = r.header("authorization").unwrap_or_default();
                let body = r.text();
                if !auth.contains("Credential=AKIDTEST/")
                    || !auth.contains("/sts/aws4_request")
                    || !body.contains("RoleSessionName=nightly")
                    || !body.contains("ExternalId=ext%2F42")
                    || !body.contains("DurationSeconds=3600")
                {
                    return Reply::text(
                        403,
                        "<ErrorResponse><Error><Code>AccessDenied</Code>\
                        <Message>bad request</Message></Error></ErrorResponse>",
                    );
                }
                let (id, exp) = creds(&n);
                Reply::text(200, format!(
                    "<AssumeRoleResponse><AssumeRoleResult>\
                     <Credentials><AccessKeyId>{id}</AccessKeyId><SecretAccessKey>as3cr3t</SecretAccessKey>\
                     <SessionToken>atoken</SessionToken><Expiration>{exp}</Expiration></Credentials>\
                     </AssumeRoleResult></AssumeRoleResponse>"))
            }
            ("POST", "/sts") => {
                let body = r.text();
                if !body.contains("Action=AssumeRoleWithWebIdentity")
                    || !body.contains("WebIdentityToken=eyJ.jwt.sig")
                    || !body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftrainer")
                {
                    return Reply::text(
                        400,
                        "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>\
                        <Message>bad</Message></Error></ErrorResponse>",
                    );
                }
                let (id, exp) = creds(&n);
                Reply::text(200, format!(
                    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>\
                     <Credentials><AccessKeyId>{id}</AccessKeyId><SecretAccessKey>ws3cr3t</SecretAccessKey>\
                     <SessionToken>wtoken</SessionToken><Expiration>{exp}</Expiration></Credentials>\
                     </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"))
            }
            ("PUT", "/latest/api/token") => {
                if r.header("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                    return Reply::text(400, "");
                }
                Reply::text(200, "imds-session")
            }
            ("GET", p) if p.starts_with("/latest/meta-data/iam/security-credentials/") => {
                if r.header("x-aws-ec2-metadata-token") != Some("imds-session") {
                    return Reply::text(401, "");
                }
                if p.ends_with('/') {
                    return Reply::text(200, "trainer-role\n");
                }
                assert!(p.ends_with("/trainer-role"));
                let (id, exp) = creds(&n);
                Reply::json(
                    200,
                    json!({"Code": "Success", "AccessKeyId": id,
                    "SecretAccessKey": "is3cr3t", "Token": "itoken", "Expiration": exp})
                    .to_string(),
                )
            }
            ("POST", "/") if is_get_secret(r) => {
                let auth = r.header("authorization").unwrap_or_default();
                let current = format!("Credential=ASIAFAKE{}/", n.load(Ordering::SeqCst));
                if !auth.contains(&current) || r.header("x-amz-security-token").is_none() {
                    return aws_error(400, "ExpiredTokenException");
                }
                secret_reply(SECRET)
            }
            _ => Reply::text(404, "no route"),
        }
    });
    (server, issued)
}

#[test]
fn a_profile_role_sends_its_options_and_is_assumed_again_before_expiry() {
    let (server, issued) = cloud_host(Duration::from_secs(120));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/trainer\n\
         credential_source = Environment\nrole_session_name = nightly\n\
         external_id = ext/42\nduration_seconds = 3600\n",
    )
    .unwrap();
    let vars = static_vars()
        .home(home.path())
        .set("AWS_PROFILE", "ci")
        .set("AWS_ENDPOINT_URL_STS", &format!("{}/sts", server.url()));
    let p = provider(&config(&server.url()), vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert!(p.status().detail.contains("role of shared profile 'ci'"));
    // 120 s left is inside the 5-minute refresh window: the next fetch
    // assumes the role again (and signs with the new key).
    p.invalidate();
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

/// Writes `text` to `path`, 0600 (an identity file under the one rule).
fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The variables of container credentials from `server`, with a token file
/// in `dir`.
fn container(server: &FakeServer, dir: &std::path::Path) -> Vars {
    let token = dir.join("token");
    write_private(&token, "pod-token-123\n");
    no_credentials()
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/creds", server.url()),
        )
        .set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.to_str().unwrap(),
        )
}

#[test]
fn container_credentials_with_a_token_file_and_refresh_before_expiry() {
    let (server, issued) = cloud_host(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let vars = container(&server, dir.path());
    let token = dir.path().join("token");
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::ZERO;
    let p = provider(&c, vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert!(
        p.status().detail.contains("container credentials"),
        "{}",
        p.status().detail
    );
    // They expire within the refresh window: the next fetch gets new ones.
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 2);

    // A wrong token: ST_AUTH.
    write_private(&token, "wrong");
    let vars = no_credentials()
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/creds", server.url()),
        )
        .set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.to_str().unwrap(),
        );
    let e = get(&provider(&config(&server.url()), vars), "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.message().contains("wrong"));

    // Plain HTTP to a non-loopback host is refused.
    let vars = no_credentials().set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://10.1.2.3/creds",
    );
    let e = get(&provider(&config(&server.url()), vars), "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{e}");
}

#[test]
fn long_lived_temporary_credentials_are_reused() {
    let (server, issued) = cloud_host(Duration::from_secs(3600));
    let vars = no_credentials()
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/creds", server.url()),
        )
        .set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-token-123");
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::ZERO;
    let p = provider(&c, vars);
    for _ in 0..3 {
        assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    }
    assert_eq!(issued.load(Ordering::SeqCst), 1);
}

#[test]
fn credentials_the_service_calls_expired_are_replaced_once() {
    let (server, issued) = cloud_host(Duration::from_secs(3600));
    let vars = no_credentials()
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/creds", server.url()),
        )
        .set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-token-123");
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::ZERO;
    let p = provider(&c, vars);
    get(&p, "HF_TOKEN").unwrap();
    // Someone else takes a credential: the one cached here is now stale
    // for the fake service, which answers ExpiredTokenException.
    issued.fetch_add(1, Ordering::SeqCst);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 3);
}

#[test]
fn web_identity_credentials_come_from_sts() {
    let (server, issued) = cloud_host(Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("jwt");
    write_private(&token, "eyJ.jwt.sig\n");
    let vars = no_credentials()
        .set("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
        .set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/trainer")
        .set("AWS_ENDPOINT_URL_STS", &format!("{}/sts", server.url()));
    let p = provider(&config(&server.url()), vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert!(p.status().detail.contains("web identity"));

    // A rejected token: ST_AUTH naming STS's code, never the token.
    write_private(&token, "eyJ.other.sig");
    let vars = no_credentials()
        .set("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
        .set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/trainer")
        .set("AWS_ENDPOINT_URL_STS", &format!("{}/sts", server.url()));
    let e = get(&provider(&config(&server.url()), vars), "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(
        e.message().contains("InvalidIdentityToken") && !e.message().contains("eyJ"),
        "{e}"
    );
}

#[test]
fn instance_metadata_v2_credentials() {
    let (server, issued) = cloud_host(Duration::from_secs(3600));
    let vars = Vars::empty().set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url());
    let p = provider(&config(&server.url()), vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert!(p.status().detail.contains("IMDSv2"));
}

#[test]
fn profiles_env_precedence_and_missing_credentials() {
    let server = FakeServer::start(|_| secret_reply(SECRET));
    let seen = || last_authorization(&server);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\
         [ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = c\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile ci]\nregion = eu-central-1\n[profile sso]\nsso_session = corp\n",
    )
    .unwrap();
    let mut c = config(&server.url());
    c.aws.region = None;
    let base = || no_credentials().home(home.path());

    let p = provider(&c, base().set("AWS_PROFILE", "ci"));
    get(&p, "HF_TOKEN").unwrap();
    assert!(seen().contains("Credential=AKIDCI/"), "{}", seen());
    assert!(
        seen().contains("/eu-central-1/secretsmanager/"),
        "the profile's region"
    );

    let p = provider(&c, base().set("AWS_REGION", "us-west-2"));
    get(&p, "HF_TOKEN").unwrap();
    assert!(seen().contains("Credential=AKIDDEFAULT/") && seen().contains("/us-west-2/"));

    // The environment wins over profiles.
    let p = provider(
        &c,
        base()
            .set("AWS_REGION", "us-west-2")
            .set("AWS_ACCESS_KEY_ID", "AKIDENV")
            .set("AWS_SECRET_ACCESS_KEY", "e"),
    );
    get(&p, "HF_TOKEN").unwrap();
    assert!(seen().contains("Credential=AKIDENV/"));

    let e = get(
        &provider(&c, base().set("AWS_PROFILE", "nope").set("AWS_REGION", "x")),
        "K",
    )
    .unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(e.message().contains("'nope'"), "{e}");
    let e = get(
        &provider(&c, base().set("AWS_PROFILE", "sso").set("AWS_REGION", "x")),
        "K",
    )
    .unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(e.message().contains("[sso-session corp]"), "{e}");

    // A profile named by AWS_PROFILE wins over the environment's keys (as
    // in boto3 and the AWS CLI).
    let p = provider(
        &c,
        base()
            .set("AWS_PROFILE", "ci")
            .set("AWS_ACCESS_KEY_ID", "AKIDENV")
            .set("AWS_SECRET_ACCESS_KEY", "e"),
    );
    get(&p, "HF_TOKEN").unwrap();
    assert!(seen().contains("Credential=AKIDCI/"));

    let e = get(&provider(&c, no_credentials().set("AWS_REGION", "x")), "K").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(e.message().contains("no AWS credentials found"), "{e}");
    let e = get(
        &provider(
            &c,
            no_credentials()
                .set("AWS_REGION", "x")
                .set("AWS_ACCESS_KEY_ID", "A"),
        ),
        "K",
    )
    .unwrap_err();
    assert!(e.message().contains("set together"), "{e}");
}

#[test]
fn configuration_rules() {
    // Not configured: absent, unavailable, no request anywhere.
    let p = provider(&ManagerConfig::default(), static_vars());
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);
    assert!(!p.status().available);
    assert!(p.status().detail.contains("SIMPLETUNER_AWS_SECRET_NAME"));
    assert!(p.diagnose().is_none());

    // The secret name from SimpleTuner's variable; no region: a clear error.
    let vars = static_vars().set(
        crate::secrets::transport::vars::SIMPLETUNER_AWS_SECRET_NAME,
        "from-env",
    );
    let p = provider(&ManagerConfig::default(), vars.clone());
    assert!(p.status().available);
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE");
    assert!(e.message().contains("no AWS region"));

    // The endpoint: variables in order, else the regional one.
    let endpoint = |v: Vars| {
        let p = provider(&ManagerConfig::default(), v.set("AWS_REGION", "eu-west-1"));
        match &p.fetcher().unwrap().transport {
            Transport::Direct(c) => c.endpoint.clone(),
            Transport::Agent(_) => unreachable!("no agent is configured"),
        }
    };
    assert_eq!(
        endpoint(vars.clone()),
        "https://secretsmanager.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        endpoint(vars.clone().set("AWS_ENDPOINT_URL", "http://a")),
        "http://a"
    );
    assert_eq!(
        endpoint(
            vars.clone()
                .set("AWS_ENDPOINT_URL", "http://a")
                .set("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://b")
        ),
        "http://b"
    );

    // A bad CA bundle: reported on lookup, not a crash, the chain goes on.
    let p = provider(
        &ManagerConfig::default(),
        vars.set("AWS_REGION", "x")
            .set("AWS_CA_BUNDLE", "/nonexistent/ca.pem"),
    );
    assert_eq!(get(&p, "K").unwrap_err().code_name(), "ST_IO");
}

#[test]
fn the_doctor_reports_source_identity_and_readability() {
    let server = FakeServer::start(|r| {
        if r.text().contains("Action=GetCallerIdentity") {
            assert!(r
                .header("authorization")
                .unwrap()
                .contains("/sts/aws4_request"));
            return Reply::text(200, "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                <Arn>arn:aws:iam::123456789012:user/trainer</Arn><UserId>AIDA1</UserId>\
                <Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>");
        }
        secret_reply(SECRET)
    });
    let vars = static_vars().set("AWS_ENDPOINT_URL_STS", &server.url());
    let p = provider(&config(&server.url()), vars);
    let d = p.diagnose().unwrap();
    assert_eq!(d["credentials"], "environment variables");
    assert_eq!(d["caller"]["arn"], "arn:aws:iam::123456789012:user/trainer");
    assert_eq!(d["caller"]["account"], "123456789012");
    assert_eq!(d["secret_readable"]["readable"], true);
    assert_eq!(d["secret_readable"]["keys"], 3);
    assert!(!d.to_string().contains("hf_from_aws") && !d.to_string().contains(SECRET_KEY));
}

#[test]
fn debug_output_never_shows_credentials() {
    let vars = static_vars().set("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN");
    let text = format!("{vars:?}");
    assert!(text.contains("AWS_SECRET_ACCESS_KEY") && !text.contains(SECRET_KEY));
    assert!(!text.contains("FwoGZXIvYXdz"));
    let p = provider(&config("http://127.0.0.1:9"), vars);
    assert!(!format!("{p:?}").contains(SECRET_KEY));
}

/// A home with `config` as `~/.aws/config` (and no credentials file).
fn aws_home(config: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws/sso/cache")).unwrap();
    std::fs::write(home.path().join(".aws/config"), config).unwrap();
    home
}

#[test]
fn role_profiles_that_cannot_work_are_refused_before_any_request() {
    let server = FakeServer::start(|_| Reply::json(500, "{}"));
    let home = aws_home(
        "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n\
         [profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = a\n\
         [profile lonely]\nrole_arn = arn:aws:iam::123456789012:role/c\n\
         [profile both]\nrole_arn = arn:aws:iam::123456789012:role/c\nsource_profile = a\n\
         credential_source = Environment\n\
         [profile ghost]\nrole_arn = arn:aws:iam::123456789012:role/c\nsource_profile = nowhere\n\
         [profile odd]\nrole_arn = arn:aws:iam::123456789012:role/c\ncredential_source = Moon\n\
         [profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/c\n\
         credential_source = Environment\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n\
         [profile long]\nrole_arn = arn:aws:iam::123456789012:role/c\n\
         credential_source = Environment\nduration_seconds = 99999\n",
    );
    let error = |profile: &str| {
        let vars = static_vars()
            .home(home.path())
            .set("AWS_PROFILE", profile)
            .set("AWS_ENDPOINT_URL_STS", &server.url());
        get(&provider(&config(&server.url()), vars), "K").unwrap_err()
    };
    let e = error("a");
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(
        e.message()
            .contains("cycle through source_profile: a -> b -> a"),
        "{e}"
    );
    assert!(error("lonely").message().contains("without source_profile"));
    assert!(error("both")
        .message()
        .contains("both source_profile and credential_source"));
    assert!(error("ghost")
        .message()
        .contains("source_profile 'nowhere'"));
    assert!(error("odd")
        .message()
        .contains("Environment, Ec2InstanceMetadata or EcsContainer"));
    let e = error("mfa");
    assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE");
    assert!(e.message().contains("MFA"), "{e}");
    assert!(error("long").message().contains("900 to 43200"));
    assert_eq!(server.requests(), 0);
}

/// An SSO portal answering GetRoleCredentials for one token, account and
/// role, besides Secrets Manager.
fn sso_portal() -> FakeServer {
    FakeServer::start(move |r| {
        if r.path.starts_with("/federation/credentials") {
            if r.header("x-amz-sso_bearer_token") != Some("aoa-cached-token") {
                return Reply::json(401, r#"{"message": "Session token not found or invalid"}"#);
            }
            if r.path != "/federation/credentials?account_id=123456789012&role_name=Trainer" {
                return Reply::json(403, r#"{"message": "No access"}"#);
            }
            let expires = (SystemTime::now() + Duration::from_secs(3600))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            return Reply::json(
                200,
                json!({"roleCredentials": {"accessKeyId": "ASIASSO", "secretAccessKey": "sso-secret",
                    "sessionToken": "sso-session-token", "expiration": expires as u64}})
                .to_string(),
            );
        }
        secret_reply(SECRET)
    })
}

#[test]
fn sso_profiles_use_the_cached_token_and_get_role_credentials() {
    let server = sso_portal();
    // The last request is the secret's, after the portal's.
    let signed_with = || last_authorization(&server);
    let home = aws_home(
        "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Trainer\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n\
         sso_region = eu-west-1\n\
         [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Trainer\n",
    );
    let cache = |key: &str, token: &str, expires: &str| {
        use sha1::Digest;
        let name: String = sha1::Sha1::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            home.path().join(format!(".aws/sso/cache/{name}.json")),
            json!({"accessToken": token, "expiresAt": expires, "region": "eu-west-1",
                   "startUrl": "https://corp.awsapps.com/start"})
            .to_string(),
        )
        .unwrap();
    };
    let provider = |profile: &str| {
        let vars = no_credentials()
            .home(home.path())
            .set("AWS_PROFILE", profile)
            .set("AWS_ENDPOINT_URL_SSO", &server.url());
        provider(&config(&server.url()), vars)
    };

    // No token cached yet: the message says how to get one.
    let e = get(&provider("dev"), "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(
        e.message().contains("aws sso login --sso-session corp"),
        "{e}"
    );

    cache("corp", "aoa-cached-token", "2099-01-01T00:00:00Z");
    let p = provider("dev");
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert!(
        signed_with().contains("Credential=ASIASSO/"),
        "{}",
        signed_with()
    );
    assert!(
        p.status().detail.contains("IAM Identity Center (SSO)"),
        "{}",
        p.status().detail
    );

    // Expired: the same advice, the token never quoted.
    cache("corp", "aoa-cached-token", "2020-01-01T00:00:00Z");
    let e = get(&provider("dev"), "HF_TOKEN").unwrap_err();
    assert!(e.message().contains("expired at 2020-01-01"), "{e}");
    assert!(
        e.message().contains("aws sso login --sso-session corp"),
        "{e}"
    );
    assert!(!e.message().contains("aoa-"), "{e}");

    // Refused by the portal: ST_AUTH, with the advice.
    cache("corp", "aoa-revoked-token", "2099-01-01T00:00:00Z");
    let e = get(&provider("dev"), "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(e.message().contains("refused (HTTP 401)"), "{e}");

    // A legacy profile: the cache file is named after the start URL.
    cache(
        "https://old.awsapps.com/start",
        "aoa-cached-token",
        "2099-01-01T00:00:00UTC",
    );
    let p = provider("legacy");
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
}

#[test]
fn profile_default_wins_over_default_and_a_continued_credential_process_runs_whole() {
    // AWS's shared profile rules, end to end: `[profile default]` overrides
    // `[default]`, and an indented line continues `credential_process`.
    let server = FakeServer::start(|_| secret_reply(SECRET));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let tool = home.path().join("creds.sh");
    std::fs::write(
        &tool,
        "#!/bin/sh\n[ \"$1 $2\" = '--key-id AKIDSPLIT' ] || exit 3\n\
         printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"x\"}' \"$2\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile default]\ncredential_process = {}\n    --key-id AKIDSPLIT\n\
             [default]\ncredential_process = /bin/false\nregion = eu-west-1\n",
            tool.display()
        ),
    )
    .unwrap();
    let vars = no_credentials().home(home.path());
    let p = provider(&config(&server.url()), vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    let auth = last_authorization(&server);
    assert!(auth.contains("Credential=AKIDSPLIT/"), "{auth}");
}

#[test]
fn a_profile_file_that_breaks_the_rules_is_a_parse_error_naming_the_line() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKID\naws_secret_access_key s3cr3t-no-equals\n",
    )
    .unwrap();
    let server = FakeServer::start(|_| secret_reply(SECRET));
    let p = provider(&config(&server.url()), no_credentials().home(home.path()));
    let e = get(&p, "HF_TOKEN").unwrap_err();
    let text = e.to_string();
    assert_eq!(e.code_name(), "ST_PARSE", "{text}");
    assert!(
        text.contains("credentials: line 3: Expected an '=' sign defining a property"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    assert_eq!(server.requests(), 0);
}

/// An AWS Secrets Manager Agent's answer to `GET /secretsmanager/get`.
fn agent_reply(r: &Request, token: &str, secrets: &[(&str, &str)]) -> Reply {
    if r.path == "/ping" {
        return Reply::text(200, "healthy");
    }
    if r.header("x-aws-parameters-secrets-token") != Some(token) {
        return Reply::text(403, "Bad Token");
    }
    let id = r
        .path
        .split_once("secretId=")
        .map(|(_, id)| id.replace("%2F", "/"))
        .unwrap_or_default();
    match secrets.iter().find(|(name, _)| *name == id) {
        Some((name, value)) => Reply::json(
            200,
            json!({"Name": name, "SecretString": value}).to_string(),
        ),
        None => Reply::json(
            404,
            r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        ),
    }
}

fn agent_config(url: &str, names: &[&str]) -> ManagerConfig {
    let mut c = config("http://127.0.0.1:9");
    c.aws.agent_url = Some(url.into());
    c.aws.region = None;
    c.aws.secret_names = Some(names.iter().map(|n| (*n).to_owned()).collect());
    c
}

#[test]
fn the_agent_is_asked_with_its_token_and_no_signature_or_credentials() {
    let server = FakeServer::start(|r| {
        agent_reply(
            r,
            "ssrf-literal",
            &[
                (
                    "team/shared",
                    r#"{"HF_TOKEN": "hf_team", "WANDB_API_KEY": "wb_team"}"#,
                ),
                (
                    "project/keys",
                    r#"{"HF_TOKEN": "hf_project", "ONLY_PROJECT": "p"}"#,
                ),
            ],
        )
    });
    // No region, no credentials: neither is needed on this path.
    let c = agent_config(
        &server.url(),
        &["team/shared", "missing/one", "project/keys"],
    );
    let p = provider(&c, no_credentials().set("AWS_TOKEN", "ssrf-literal"));
    // In order: the team's value wins, a key only in the last is found, the
    // missing secret in between is skipped.
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_team"));
    assert_eq!(get(&p, "ONLY_PROJECT").unwrap().as_deref(), Some("p"));
    assert_eq!(get(&p, "NOWHERE").unwrap(), None);
    let mut keys = p.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["HF_TOKEN", "ONLY_PROJECT", "WANDB_API_KEY"]);
    let seen = server.received();
    assert_eq!(seen.len(), 3, "each secret fetched once, then cached");
    for r in &seen {
        assert_eq!(r.method, "GET");
        assert!(
            r.path.starts_with("/secretsmanager/get?secretId="),
            "{}",
            r.path
        );
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("x-amz-date"), None);
        assert_eq!(r.header("x-forwarded-for"), None);
    }
    assert_eq!(seen[0].path, "/secretsmanager/get?secretId=team%2Fshared");
    let status = p.status();
    assert!(
        status
            .detail
            .contains("through the AWS Secrets Manager Agent"),
        "{}",
        status.detail
    );
    assert!(status
        .detail
        .contains("'team/shared', then 'missing/one', then 'project/keys'"));
    assert!(status.detail.contains("SSRF token from AWS_TOKEN"));
    assert!(!status.detail.contains("ssrf-literal"));
    assert!(!format!("{p:?}").contains("ssrf-literal"));
}

#[test]
fn a_token_file_rewritten_by_the_agent_is_read_again_on_a_refusal() {
    let current = Arc::new(std::sync::Mutex::new("first-token".to_owned()));
    let t = Arc::clone(&current);
    let server = FakeServer::start(move |r| {
        let token = t.lock().unwrap().clone();
        agent_reply(r, &token, &[("training/keys", SECRET)])
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("awssmatoken");
    std::fs::write(&file, "first-token\n").unwrap();
    let mut c = agent_config(&server.url(), &["training/keys"]);
    c.remote.cache_ttl = Duration::ZERO;
    let vars = no_credentials().set("AWS_TOKEN", &format!("file://{}", file.display()));
    let p = provider(&c, vars);
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    // The agent restarts with a new token and its installer rewrites the file.
    *current.lock().unwrap() = "second-token".into();
    std::fs::write(dir.path().join("new"), "second-token").unwrap();
    std::fs::rename(dir.path().join("new"), &file).unwrap();
    let before = server.requests();
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    assert_eq!(
        server.requests(),
        before + 1,
        "the changed file is read before asking"
    );
    // The agent changes its token, the file not yet: one refusal, the file read
    // again, unchanged: ST_AUTH naming the file, never a token.
    *current.lock().unwrap() = "third-token".into();
    let before = server.requests();
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(e.message().contains("refused the SSRF token"), "{e}");
    assert!(e.message().contains("awssmatoken"), "{e}");
    assert!(!e.message().contains("-token"), "{e}");
    assert_eq!(server.requests(), before + 1, "a refusal is not retried");
    // The file catches up between the refusal and the re-read.
    std::fs::write(&file, "third-token").unwrap();
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
}

#[test]
fn agent_faults_are_transient_and_the_stale_value_is_served() {
    let mode = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&mode);
    let server = FakeServer::start(move |r| match m.load(Ordering::SeqCst) {
        0 => agent_reply(r, "tok", &[("training/keys", SECRET)]),
        1 => Reply::text(429, "Connection limit exceeded"),
        2 => Reply::json(500, r#"{"__type":"InternalFailure","message":""}"#),
        _ => Reply::json(400, r#"{"__type":"AccessDeniedException","message":"no"}"#),
    });
    let mut c = agent_config(&server.url(), &["training/keys"]);
    c.remote.cache_ttl = Duration::ZERO;
    let p = provider(&c, no_credentials().set("AWS_TOKEN", "tok"));
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    for fault in [1, 2] {
        mode.store(fault, Ordering::SeqCst);
        let before = server.requests();
        assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
        assert_eq!(server.requests(), before + 3, "retried: fault {fault}");
        assert!(
            p.status().warnings[0].contains("HTTP"),
            "{:?}",
            p.status().warnings
        );
    }
    // An AWS error the agent passes on keeps its class: never hidden.
    mode.store(3, Ordering::SeqCst);
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_AUTH");
    // No token anywhere: the default file is named.
    let p = provider(&c, no_credentials());
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert!(e.message().contains("/var/run/awssmatoken"), "{e}");
    // Nobody listening: a network error, transient.
    let p = provider(
        &agent_config("http://127.0.0.1:9", &["x"]),
        no_credentials().set("AWS_TOKEN", "t"),
    );
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_NETWORK");
    // Set through the environment.
    let mut env_only = config("http://127.0.0.1:9");
    env_only.aws = AwsSettings::default();
    let vars = no_credentials()
        .set("SIMPLETUNER_AWS_AGENT_URL", &server.url())
        .set("SIMPLETUNER_AWS_SECRET_NAME", " missing , training/keys ")
        .set("AWS_TOKEN", "tok");
    mode.store(0, Ordering::SeqCst);
    let p = provider(&env_only, vars);
    assert_eq!(
        get(&p, "REPLICATE_API_TOKEN").unwrap().as_deref(),
        Some("r8_from_aws")
    );
    assert!(server
        .last()
        .unwrap()
        .path
        .ends_with("secretId=training%2Fkeys"));
    let doctor = p.diagnose().unwrap();
    assert_eq!(doctor["ping"]["healthy"], true, "{doctor}");
    assert_eq!(
        doctor["secret_readable"]["training/keys"]["readable"], true,
        "{doctor}"
    );
    assert_eq!(
        doctor["secret_readable"]["missing"]["readable"], false,
        "{doctor}"
    );
}

#[test]
fn an_agent_url_in_plain_http_off_the_machine_is_refused() {
    // The requests carry the SSRF token: plain HTTP only to loopback (and
    // the container hosts), as the SDKs rule for container credentials.
    for bad in [
        "http://10.1.2.3:2773",
        "http://agent.internal:2773",
        "http://localhost.example.com:2773",
        "http://[fd00::1]:2773",
    ] {
        // The transport alone: built, it is refused before any request (so
        // this test never sends anything off the machine).
        let c = agent_config(bad, &["team/shared"]);
        let vars = no_credentials().set("AWS_TOKEN", "ssrf-literal");
        let e = match super::agent_transport(bad, &c.remote, &vars) {
            Ok(_) => panic!("{bad}: accepted"),
            Err(e) => e,
        };
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains("aws_agent_url")
                && m.contains("plain HTTP is allowed to loopback")),
            "{bad}: {e:?}"
        );
        assert!(!e.to_string().contains("ssrf-literal"), "{bad}");
    }
    // Loopback in plain HTTP, and anything over https, are accepted.
    for ok in [
        "http://127.0.0.1:2773",
        "http://127.3.4.5:2773",
        "http://localhost:2773",
        "http://[::1]:2773",
        "https://agent.internal:2773",
    ] {
        assert_eq!(
            crate::secrets::aws_identity::metadata::check_plain_http(ok),
            Ok(()),
            "{ok}"
        );
    }
}

#[test]
fn an_agent_that_repeats_the_ssrf_token_never_puts_it_in_a_message() {
    let server = FakeServer::start(|_| Reply::text(403, "Bad Token: ssrf-literal-0123456789"));
    let c = agent_config(&server.url(), &["team/shared"]);
    let p = provider(
        &c,
        no_credentials().set("AWS_TOKEN", "ssrf-literal-0123456789"),
    );
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.to_string().contains("ssrf-literal"), "{e}");
    assert!(e.to_string().contains("Bad Token: [redacted]"), "{e}");
}

#[test]
fn a_nodes_processes_share_one_resolution_and_replace_refused_credentials_once() {
    // Credentials of an hour from the container endpoint; two providers
    // stand for two processes of a node with the node cache on.
    let (server, issued) = cloud_host(Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let node = std::path::PathBuf::from(format!(
        "/dev/shm/st-secrets-aws-node-test-{}",
        std::process::id()
    ));
    struct Removed(std::path::PathBuf);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _removed = Removed(node.clone());
    let vars = || container(&server, dir.path());
    let mut c = config(&server.url());
    c.remote.node_cache = Some(true);
    c.remote.node_cache_dir = Some(node.clone());
    c.remote.cache_ttl = Duration::ZERO;
    let (first, second) = (provider(&c, vars()), provider(&c, vars()));
    for p in [&first, &second] {
        assert_eq!(get(p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    }
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert!(
        second
            .status()
            .detail
            .contains("shared with the node's processes"),
        "{}",
        second.status().detail
    );
    // The service calls them expired (the fake takes only the newest key):
    // the first process replaces them; the second, refused too, reads the
    // replacement from the node.
    issued.fetch_add(1, Ordering::SeqCst);
    let behind = issued.load(Ordering::SeqCst);
    first.invalidate();
    second.invalidate();
    for p in [&first, &second] {
        assert_eq!(get(p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_aws"));
    }
    assert_eq!(issued.load(Ordering::SeqCst), behind + 1);
}
