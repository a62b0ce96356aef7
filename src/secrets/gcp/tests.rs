//! The GCP provider against the loopback fake server: names, the access
//! call's wire format, payloads, CRC32C, disabled versions, refused tokens,
//! and a service account's assertion checked with its public key. The same
//! provider runs against drongo's server in `tests/interop/test_gcp.py`.

use super::*;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use std::sync::atomic::{AtomicUsize, Ordering};

fn settings() -> RemoteSettings {
    RemoteSettings {
        cache_ttl: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(800),
        retries: 2,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    }
}

/// The credentials `vars` give, with the test settings, waiting up to
/// `wait` for a metadata server.
fn find(vars: &Vars, wait: Duration) -> Result<credentials::Found, Error> {
    let http = Arc::new(Http::new(&settings(), &Trust::Default, "").unwrap());
    credentials::find(vars, &http, &settings(), wait, &http, &settings())
}

/// A PKCS #8 RSA key made by openssl, as a service account key file holds.
pub(crate) fn rsa_pem() -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A service account key file naming `token_uri`, in `dir` (0600).
pub(crate) fn key_file(dir: &std::path::Path, pem: &str, token_uri: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("key.json");
    let doc = json!({
        "type": "service_account",
        "project_id": "keyproject",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "trainer@keyproject.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    std::fs::write(&path, doc.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn b64(data: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn access(name: &str, data: &str, crc: Option<u32>) -> Reply {
    let mut payload = json!({ "data": b64(data) });
    if let Some(c) = crc {
        payload["dataCrc32c"] = json!(c.to_string());
    }
    Reply::json(200, json!({ "name": name, "payload": payload }).to_string())
}

/// A server answering tokens at `/token` and `access` with `secrets`.
struct Google {
    server: FakeServer,
    tokens: Arc<AtomicUsize>,
}

fn google(secret: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Google {
    let tokens = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tokens);
    let server = FakeServer::start(move |r: &Request| {
        if r.path == "/token" {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(
                200,
                json!({"access_token": format!("ya29.token-{n}"), "expires_in": 3599,
                       "token_type": "Bearer"})
                .to_string(),
            );
        }
        secret(r)
    });
    Google { server, tokens }
}

fn provider(g: &Google, dir: &std::path::Path, secrets: &[&str]) -> GcpProvider {
    let key = key_file(dir, &rsa_pem(), &format!("{}/token", g.server.url()));
    let vars = Vars::empty()
        .set("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())
        .set("SIMPLETUNER_GCP_ENDPOINT", &g.server.url());
    let gcp = GcpSettings {
        secrets: Some(secrets.iter().map(|s| (*s).to_owned()).collect()),
        ..GcpSettings::default()
    };
    GcpProvider::new(&gcp, &settings(), vars)
}

fn get(p: &GcpProvider, key: &str) -> Result<Option<String>, Error> {
    p.lookup(key).map(|v| v.map(|v| v.expose().to_owned()))
}

#[test]
fn names_are_read_as_google_writes_them_and_anything_else_is_refused() {
    let s = SecretRef::parse("projects/p-1/secrets/hf/versions/3").unwrap();
    assert_eq!(
        (s.project.as_deref(), s.secret.as_str(), s.version.as_str()),
        (Some("p-1"), "hf", "3")
    );
    let s = SecretRef::parse("projects/p-1/locations/europe-west4/secrets/hf").unwrap();
    assert_eq!(
        (s.location.as_deref(), s.version.as_str()),
        (Some("europe-west4"), "latest")
    );
    let s = SecretRef::parse("hf/versions/prod").unwrap();
    assert_eq!(
        (s.project, s.secret.as_str(), s.version.as_str()),
        (None, "hf", "prod")
    );
    for bad in [
        "",
        "projects/p/secrets",
        "projects/p/topics/t",
        "hf/versions",
        "hf/versions/3/extra",
        "h f",
        "projects/p q/secrets/s",
        "projects/p/locations/EU/secrets/s",
        "../etc/passwd",
        "hf/versions/la%74est",
    ] {
        let e = SecretRef::parse(bad).unwrap_err();
        assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{bad}: {e}");
        assert!(e.message().contains("GCP secret"), "{e}");
    }
}

#[test]
fn a_json_object_gives_its_keys_and_any_other_payload_one_key_named_after_the_secret() {
    let g = google(|r| match r.path.as_str() {
        "/v1/projects/keyproject/secrets/keys/versions/latest:access" => {
            let body = r#"{"HF_TOKEN": "hf_from_gcp", "PORT": 8080}"#;
            access(
                "projects/1234/secrets/keys/versions/7",
                body,
                Some(crc32c(body.as_bytes())),
            )
        }
        "/v1/projects/keyproject/secrets/wandb-api-key/versions/2:access" => access(
            "projects/1234/secrets/wandb-api-key/versions/2",
            "wandb_plain\n",
            None,
        ),
        _ => Reply::json(404, r#"{"error": {"code": 404, "status": "NOT_FOUND"}}"#),
    });
    let dir = tempfile::tempdir().unwrap();
    let p = provider(
        &g,
        dir.path(),
        &["keys", "wandb-api-key/versions/2", "missing"],
    );
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_from_gcp"));
    assert_eq!(get(&p, "PORT").unwrap().as_deref(), Some("8080"));
    // A plain payload: its secret's id is the key, normalized as keys are.
    assert_eq!(
        get(&p, "WANDB_API_KEY").unwrap().as_deref(),
        Some("wandb_plain\n")
    );
    assert_eq!(get(&p, "NOT_SET").unwrap(), None);
    // The request carried the token as a bearer.
    let access = g
        .server
        .received()
        .into_iter()
        .find(|r| r.path.ends_with(":access"))
        .unwrap();
    assert_eq!(access.header("authorization"), Some("Bearer ya29.token-1"));
    assert_eq!(
        g.tokens.load(Ordering::SeqCst),
        1,
        "one token for every secret"
    );
    // The version the service resolved, with the alias asked.
    let (_, version) = p
        .read("HF_TOKEN", crate::secrets::provider::Read::Held)
        .unwrap()
        .unwrap();
    let version = version.unwrap();
    assert_eq!(
        (version.id.as_str(), version.stages.clone()),
        ("7", vec!["latest".to_owned()])
    );
}

#[test]
fn a_payload_that_fails_its_crc32c_is_asked_again_and_never_served() {
    let g = google(|_| {
        access(
            "projects/1/secrets/keys/versions/1",
            r#"{"A": "b"}"#,
            Some(12345),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&g, dir.path(), &["keys"]);
    let e = get(&p, "A").unwrap_err();
    assert_eq!(e.code_name(), "ST_REMOTE");
    assert!(e.message().contains("CRC32C"), "{e}");
    let accesses = g
        .server
        .received()
        .iter()
        .filter(|r| r.path.ends_with(":access"))
        .count();
    assert_eq!(accesses, 3, "retried as a transient failure");
}

#[test]
fn a_disabled_latest_version_is_an_error_naming_it_never_the_version_before() {
    let g = google(|_| {
        Reply::json(
            400,
            json!({"error": {"code": 400, "status": "FAILED_PRECONDITION",
                   "message": "Secret Version [projects/1/secrets/keys/versions/4] is in DISABLED state."}})
            .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&g, dir.path(), &["keys"]);
    let e = get(&p, "A").unwrap_err();
    assert_eq!(e.code_name(), "ST_REMOTE");
    assert!(e.message().contains("version 'latest' is disabled"), "{e}");
    let accesses = g
        .server
        .received()
        .iter()
        .filter(|r| r.path.ends_with(":access"))
        .count();
    assert_eq!(accesses, 1, "permanent: not retried, no other version read");
}

#[test]
fn a_refused_token_is_replaced_once_and_the_read_sent_again() {
    let g = google(|r| match r.header("authorization") {
        Some("Bearer ya29.token-1") => Reply::json(
            401,
            r#"{"error": {"code": 401, "status": "UNAUTHENTICATED"}}"#,
        ),
        _ => access("projects/1/secrets/keys/versions/1", r#"{"A": "b"}"#, None),
    });
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&g, dir.path(), &["keys"]);
    assert_eq!(get(&p, "A").unwrap().as_deref(), Some("b"));
    assert_eq!(g.tokens.load(Ordering::SeqCst), 2);
}

#[test]
fn the_assertion_is_a_jwt_signed_with_the_service_accounts_key() {
    let pem = rsa_pem();
    let seen = Arc::new(crate::sys::Mutex::new(None::<String>));
    let kept = Arc::clone(&seen);
    let server = FakeServer::start(move |r: &Request| {
        *kept.lock() = Some(r.text());
        Reply::json(200, r#"{"access_token": "ya29.x", "expires_in": 60}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let token_uri = format!("{}/token", server.url());
    let path = key_file(dir.path(), &pem, &token_uri);
    let vars = Vars::empty().set("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap());
    let found = find(&vars, Duration::ZERO).unwrap();
    assert_eq!(found.project.as_deref(), Some("keyproject"));
    let issued = found.issuer.issue().unwrap();
    assert_eq!(issued.value.expose(), "ya29.x");
    assert_eq!(issued.lifetime.ttl(), Duration::from_secs(60));
    let form = seen.lock().clone().unwrap();
    assert!(form.starts_with(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
    ));
    let jwt = form.rsplit_once("assertion=").unwrap().1;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
    );
    assert_eq!(claims["iss"], "trainer@keyproject.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], google::TOKEN_URI);
    assert_eq!(claims["scope"], google::SCOPE);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    // The signature verifies with the key's public half.
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &b64.decode(parts[2]).unwrap())
        .expect("the signature verifies");
}

#[test]
fn malformed_credentials_files_are_refused_by_name_without_their_values() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.json");
    for (doc, expect) in [
        (
            r#"{"type": "service_account", "client_email": "a@b", "private_key": "sk-not-a-key"}"#,
            "not a PEM private key",
        ),
        (
            r#"{"type": "service_account", "private_key": "x"}"#,
            "no 'client_email'",
        ),
        (
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s3cret-value"}"#,
            "no 'refresh_token'",
        ),
        (
            r#"{"type": "impersonated_service_account"}"#,
            "are not read",
        ),
        (
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r", "token_uri": "http://evil.example/token"}"#,
            "not an https:// URL",
        ),
        (
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r", "token_uri": "http://127.0.0.1:1@evil.test/token"}"#,
            "user information",
        ),
        (
            r#"{"type": "external_account", "audience": "a", "subject_token_type": "t", "token_url": "http://127.0.0.1:1@evil.test/token", "credential_source": {"file": "/nonexistent"}}"#,
            "user information",
        ),
        (r#"["sk-secret"]"#, "not an object"),
        ("{sk-secret", "is not JSON"),
        (r#"{"private_key": "sk-x"}"#, "no 'type'"),
    ] {
        std::fs::write(&path, doc).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let vars = Vars::empty().set("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap());
        let e = find(&vars, Duration::ZERO).err().unwrap();
        assert!(e.message().contains(expect), "{doc}: {e}");
        assert!(e.message().contains("creds.json"), "{e}");
        assert!(
            !e.message().contains("sk-") && !e.message().contains("s3cret"),
            "{e}"
        );
    }
    // Writable by others: anyone could choose the identity.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let vars = Vars::empty().set("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap());
    let e = find(&vars, Duration::ZERO).err().unwrap();
    assert_eq!(e.code_name(), "ST_PERMISSION", "{e}");
}

#[test]
fn the_metadata_server_is_waited_for_at_start_and_must_say_it_is_one() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let server = FakeServer::start(move |r: &Request| {
        assert_eq!(r.header("metadata-flavor"), Some("Google"));
        match counted.fetch_add(1, Ordering::SeqCst) {
            0..=2 => Reply::text(503, "not ready"),
            _ => Reply::Status(
                200,
                vec![("metadata-flavor".into(), "Google".into())],
                br#"{"access_token": "ya29.md", "expires_in": 3599}"#.to_vec(),
            ),
        }
    });
    let host = server.url().trim_start_matches("http://").to_owned();
    let vars = Vars::empty().set("GCE_METADATA_HOST", &host);
    let found = find(&vars, Duration::from_secs(20)).unwrap();
    assert_eq!(found.origin, credentials::Origin::Metadata);
    assert_eq!(found.issuer.issue().unwrap().value.expose(), "ya29.md");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "three 503s waited out");

    // Without the header it is not a metadata server.
    let impostor =
        FakeServer::start(|_| Reply::json(200, r#"{"access_token": "x", "expires_in": 1}"#));
    let host = impostor.url().trim_start_matches("http://").to_owned();
    let vars = Vars::empty().set("GCE_METADATA_HOST", &host);
    let found = find(&vars, Duration::ZERO).unwrap();
    let e = found.issuer.issue().unwrap_err();
    assert!(
        e.error.message().contains("not a metadata server"),
        "{}",
        e.error
    );

    // A host that does not resolve: not on GCP, said at once.
    let vars = Vars::empty().set("GCE_METADATA_HOST", "metadata.invalid");
    let found = find(&vars, Duration::from_secs(30)).unwrap();
    let started = std::time::Instant::now();
    let e = found.issuer.issue().unwrap_err();
    assert_eq!(
        e.error.code_name(),
        "ST_PROVIDER_UNAVAILABLE",
        "{}",
        e.error
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_metadata_answer_of_100_mb_is_refused_by_its_size() {
    // 100 MB that look like a token answer: never read whole, never a token.
    let mut body = br#"{"access_token": ""#.to_vec();
    body.resize(100 << 20, b'a');
    let body = Arc::new(body);
    let server = FakeServer::start(move |_| {
        Reply::Status(
            200,
            vec![("metadata-flavor".into(), "Google".into())],
            body.as_ref().clone(),
        )
    });
    let host = server.url().trim_start_matches("http://").to_owned();
    let vars = Vars::empty().set("GCE_METADATA_HOST", &host);
    let found = find(&vars, Duration::ZERO).unwrap();
    let e = found.issuer.issue().unwrap_err();
    assert!(e.error.message().contains("is larger than"), "{}", e.error);
}

#[test]
fn an_executable_answer_of_version_1_gives_its_token_and_nothing_else_does() {
    let ok = br#"{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "eyJ.subject", "expiration_time": 9999999999}"#;
    assert_eq!(
        external::executable_answer_of(ok).unwrap().expose(),
        "eyJ.subject"
    );
    for bad in [
        &br#"{"version": 2, "success": true}"#[..],
        br#"{"version": 1, "success": false, "code": "401", "message": "sk-secret"}"#,
        br#"{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "x", "expiration_time": 1}"#,
        br#"{"version": 1, "success": true, "token_type": "other", "id_token": "x"}"#,
        b"sk-secret",
    ] {
        let e = external::executable_answer_of(bad).unwrap_err();
        assert_eq!(e.error.code_name(), "ST_AUTH");
        assert!(!e.error.message().contains("sk-secret"), "{}", e.error);
    }
}

#[test]
fn crc32c_is_castagnolis() {
    // RFC 3720's check value.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn an_endpoint_with_user_information_gets_no_token() {
    // `http://127.0.0.1:1@evil.test` starts like loopback; its host is
    // evil.test, where the bearer would go in clear.
    let g = google(|_| Reply::Status(500, vec![], vec![]));
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), &rsa_pem(), &format!("{}/token", g.server.url()));
    let port = g.server.url().rsplit(':').next().unwrap().to_owned();
    let vars = Vars::empty().set("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap());
    let gcp = GcpSettings {
        secrets: Some(vec!["hf".into()]),
        endpoint: Some(format!("http://127.0.0.1:{port}@evil.test")),
        ..GcpSettings::default()
    };
    let e = get(&GcpProvider::new(&gcp, &settings(), vars), "HF").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{e}");
    assert!(e.message().contains("user information"), "{e}");
    assert!(g.server.received().is_empty());
}

#[test]
fn an_output_file_others_could_write_is_no_answer_and_the_program_runs() {
    use std::os::unix::fs::PermissionsExt;
    let sent = Arc::new(crate::sys::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&sent);
    let sts = FakeServer::start(move |r: &Request| {
        let text = r.text();
        let subject = text
            .split('&')
            .find_map(|kv| kv.strip_prefix("subject_token="))
            .unwrap_or_default()
            .to_owned();
        seen.lock().push(subject);
        Reply::json(
            200,
            json!({"access_token": "ya29.federated", "expires_in": 3600, "token_type": "Bearer"})
                .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let answer = |token: &str| {
        json!({"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt",
               "id_token": token, "expiration_time": exp})
        .to_string()
    };
    let script = dir.path().join("mint");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho '{}'\n", answer("from-the-program")),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Another hand's answer, planted where the output file is named.
    let output = dir.path().join("out.json");
    std::fs::write(&output, answer("planted-identity")).unwrap();
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o666)).unwrap();
    let creds = dir.path().join("external.json");
    let doc = json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{}/v1/token", sts.url()),
        "credential_source": {"executable": {"command": script.to_str().unwrap(),
                                             "timeout_millis": 5000,
                                             "output_file": output.to_str().unwrap()}},
    });
    std::fs::write(&creds, doc.to_string()).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let vars = Vars::empty()
        .set("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
        .set("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1");
    let found = find(&vars, Duration::ZERO).unwrap();
    found.issuer.issue().unwrap();
    // Made private, the same file is a kept answer.
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o600)).unwrap();
    found.issuer.issue().unwrap();
    assert_eq!(
        *sent.lock(),
        ["from-the-program", "planted-identity"],
        "the first exchange sent the program's token"
    );
}

#[test]
fn a_credentials_file_another_user_owns_is_refused() {
    // Whoever owns it chooses the identity the process takes (and, for an
    // external account, the program it runs).
    use std::os::unix::fs::PermissionsExt;
    if crate::sys::effective_uid() != 0 {
        return; // only root can give a file away; the rule's own test judges any owner
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.json");
    std::fs::write(&path, r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}"#).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let vars = Vars::empty().set("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap());
    assert!(find(&vars, Duration::ZERO).is_ok());
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let e = find(&vars, Duration::ZERO).err().unwrap();
    assert_eq!(e.code_name(), "ST_PERMISSION", "{e}");
    assert!(e.message().contains("owned by another user"), "{e}");
}
