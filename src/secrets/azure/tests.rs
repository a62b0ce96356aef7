//! The Azure provider against the loopback fake server: names, the vault's
//! challenge (its tenant and scope, another host refused), each credential's
//! request (client secret, certificate, workload identity, IMDS, App
//! Service), a secret's attributes, and a refused token replaced. The tool
//! runs against a faithful fake proven with Microsoft's SDKs in
//! `tests/interop/test_azure.py`.

use super::*;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use std::sync::atomic::{AtomicUsize, Ordering};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn settings() -> RemoteSettings {
    RemoteSettings {
        cache_ttl: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(1),
        // Above Retry-After's margin: a 429 is waited out.
        request_timeout: Duration::from_secs(3),
        retries: 2,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    }
}

/// A form field, percent-decoded.
fn field(form: &str, name: &str) -> Option<String> {
    let raw = form
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))?;
    let mut out = Vec::new();
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    Some(String::from_utf8(out).unwrap())
}

/// A vault, Entra's token endpoint and the managed identity endpoints on
/// one loopback server. `secret` answers an authorized GET of a secret.
struct Azure {
    server: FakeServer,
    tokens: Arc<AtomicUsize>,
}

fn azure(
    challenge: &'static str,
    secret: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Azure {
    let tokens = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tokens);
    let server = FakeServer::start(move |r: &Request| {
        let token = |n: usize, expires: Value| {
            let mut doc = json!({"access_token": format!("kv-token-{n}"), "token_type": "Bearer"});
            doc.as_object_mut()
                .unwrap()
                .extend(expires.as_object().unwrap().clone());
            Reply::json(200, doc.to_string())
        };
        if r.path.contains("/oauth2/v2.0/token") {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            return token(n, json!({"expires_in": 3599}));
        }
        if r.path.starts_with("/metadata/identity/oauth2/token") {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            return token(n, json!({"expires_in": "86399", "expires_on": "1"}));
        }
        if r.path.starts_with("/msi/token") {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let on = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            return token(n, json!({"expires_on": on.to_string()}));
        }
        match r.header("authorization") {
            None => Reply::Status(
                401,
                vec![(
                    "www-authenticate".into(),
                    challenge.replace("TENANT", TENANT),
                )],
                b"{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10000\"}}".to_vec(),
            ),
            Some(_) => secret(r),
        }
    });
    Azure { server, tokens }
}

const CHALLENGE: &str =
    "Bearer authorization=\"https://login.microsoftonline.com/TENANT\", resource=\"https://127.0.0.1\"";

fn kv_secret(name: &str, version: &str, value: &str, attributes: Value) -> Reply {
    Reply::json(
        200,
        json!({
            "value": value,
            "id": format!("https://v.vault.azure.net/secrets/{name}/{version}"),
            "attributes": attributes,
        })
        .to_string(),
    )
}

fn provider(a: &Azure, vars: Vars, secrets: &[&str]) -> AzureProvider {
    let azure_settings = AzureSettings {
        vault: Some(a.server.url()),
        secrets: Some(secrets.iter().map(|s| (*s).to_owned()).collect()),
    };
    AzureProvider::new(&azure_settings, &settings(), vars)
}

fn client_secret_vars(a: &Azure) -> Vars {
    Vars::empty()
        .set("AZURE_TENANT_ID", TENANT)
        .set("AZURE_CLIENT_ID", "app-1")
        .set("AZURE_CLIENT_SECRET", "s3cret-value")
        .set("AZURE_AUTHORITY_HOST", &a.server.url())
}

fn get(p: &AzureProvider, key: &str) -> Result<Option<String>, Error> {
    p.lookup(key).map(|v| v.map(|v| v.expose().to_owned()))
}

fn secret_requests(a: &Azure) -> Vec<Request> {
    a.server
        .received()
        .into_iter()
        .filter(|r| r.path.starts_with("/secrets/"))
        .collect()
}

#[test]
fn names_and_vault_urls_are_checked() {
    let s = SecretName::parse("hf-token/0123456789abcdef0123456789ABCDEF").unwrap();
    assert_eq!(s.to_string(), "hf-token/0123456789abcdef0123456789abcdef");
    assert_eq!(SecretName::parse("hf-token").unwrap().version, None);
    for bad in ["", "hf_token", "a/b", "a/0123", &"x".repeat(128), "a b"] {
        let e = SecretName::parse(bad).unwrap_err();
        assert!(e.message().contains("NAME or NAME/VERSION"), "{bad}: {e}");
    }
    let (url, host) = vault_url("https://MyVault.vault.azure.net/").unwrap();
    assert_eq!(
        (url.as_str(), host.as_str()),
        ("https://MyVault.vault.azure.net", "myvault.vault.azure.net")
    );
    for bad in [
        "http://v.vault.azure.net",
        "https://v.vault.azure.net/secrets",
        "https://user@v.vault.azure.net",
        "https://",
    ] {
        assert!(vault_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_challenge_gives_the_tenant_and_scope_and_another_host_is_refused() {
    let host = "myvault.vault.azure.net";
    let c = challenge_of(
        "Bearer authorization=\"https://login.microsoftonline.com/t-1\", resource=\"https://vault.azure.net\"",
        host,
    )
    .unwrap();
    assert_eq!(c.tenant.as_deref(), Some("t-1"));
    assert_eq!(c.scope, "https://vault.azure.net/.default");
    let c = challenge_of(
        "Bearer authorization_uri=\"https://login.windows.net/t-2/\", scope=\"https://vault.azure.net/.default\"",
        host,
    )
    .unwrap();
    assert_eq!(
        (c.tenant.as_deref(), c.scope.as_str()),
        (Some("t-2"), "https://vault.azure.net/.default")
    );
    // AD FS names no tenant.
    let c = challenge_of(
        "Bearer authorization=\"https://adfs.example/adfs\", resource=\"https://vault.azure.net\"",
        host,
    );
    assert_eq!(c.unwrap().tenant, None);
    for (bad, says) in [
        ("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://evil.example\"", "not the vault's host"),
        ("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://notvault.azure.net\"", "not the vault's host"),
        ("Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"http://vault.azure.net\"", "not the vault's host"),
        ("Basic realm=\"x\"", "not a Bearer challenge"),
        ("Bearer resource=\"https://vault.azure.net\"", "names no authority"),
        ("Bearer authorization=\"https://login.microsoftonline.com/t\"", "names no resource"),
    ] {
        let e = challenge_of(bad, host).unwrap_err();
        assert!(e.message().contains(says), "{bad}: {e}");
    }
}

#[test]
fn a_client_secret_gets_the_vaults_token_once_and_values_are_read_into_keys() {
    let a = azure(CHALLENGE, |r| match r.path.split('?').next().unwrap() {
        "/secrets/training/" => kv_secret(
            "training",
            "a1",
            r#"{"HF_TOKEN": "hf_json", "wandb-key": "wb"}"#,
            json!({"enabled": true}),
        ),
        "/secrets/hf-token/" => kv_secret("hf-token", "b2", "hf_plain", json!({"enabled": true})),
        _ => Reply::json(
            404,
            r#"{"error":{"code":"SecretNotFound","message":"nope"}}"#,
        ),
    });
    let p = provider(
        &a,
        client_secret_vars(&a),
        &["missing", "training", "hf-token"],
    );
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_json"));
    assert_eq!(get(&p, "WANDB_KEY").unwrap().as_deref(), Some("wb"));
    // The same key in a later secret (`hf-token` is HF_TOKEN): the earlier wins.
    assert_eq!(get(&p, "hf-token").unwrap().as_deref(), Some("hf_json"));
    assert_eq!(
        a.tokens.load(Ordering::SeqCst),
        1,
        "one token for every secret"
    );
    let all = a.server.received();
    let token = all.iter().find(|r| r.path.contains("oauth2")).unwrap();
    assert_eq!(token.path, format!("/{TENANT}/oauth2/v2.0/token"));
    let form = token.text();
    assert_eq!(
        field(&form, "grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(field(&form, "client_id").as_deref(), Some("app-1"));
    assert_eq!(
        field(&form, "client_secret").as_deref(),
        Some("s3cret-value")
    );
    assert_eq!(
        field(&form, "scope").as_deref(),
        Some("https://127.0.0.1/.default")
    );
    // One request without a token (the challenge), then the token on each GET.
    let unauth = all
        .iter()
        .filter(|r| r.header("authorization").is_none() && !r.path.contains("oauth2"));
    assert_eq!(unauth.count(), 1);
    for r in secret_requests(&a)
        .iter()
        .filter(|r| r.header("authorization").is_some())
    {
        assert_eq!(r.header("authorization"), Some("Bearer kv-token-1"));
        assert!(r.path.ends_with("?api-version=7.5"), "{}", r.path);
    }
    let (_, version) = p
        .read("HF_TOKEN", crate::secrets::provider::Read::Held)
        .unwrap()
        .unwrap();
    assert_eq!(version.map(|v| v.id).as_deref(), Some("a1"));
}

#[test]
fn disabled_not_yet_valid_and_expired_secrets_are_errors_never_served() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let a = azure(CHALLENGE, move |r| {
        match r.path.split('?').next().unwrap() {
            "/secrets/off/" => kv_secret("off", "v", "x", json!({"enabled": false})),
            "/secrets/off403/" => Reply::json(
                403,
                r#"{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}"#,
            ),
            "/secrets/later/" => kv_secret(
                "later",
                "v",
                "x",
                json!({"enabled": true, "nbf": now + 3600}),
            ),
            "/secrets/gone/" => {
                kv_secret("gone", "v", "x", json!({"enabled": true, "exp": now - 60}))
            }
            _ => Reply::json(404, "{}"),
        }
    });
    for (name, says) in [
        ("off", "is disabled"),
        ("off403", "is disabled"),
        ("later", "not valid before"),
        ("gone", "expired at"),
    ] {
        let p = provider(&a, client_secret_vars(&a), &[name]);
        let e = get(&p, name).unwrap_err();
        assert!(
            e.message().contains(says) && e.message().contains(name),
            "{name}: {e}"
        );
        assert!(!e.message().contains("x\""));
    }
}

#[test]
fn a_challenge_naming_another_host_or_tenant_gets_no_token() {
    let a = azure(
        "Bearer authorization=\"https://login.microsoftonline.com/TENANT\", resource=\"https://vault.azure.net\"",
        |_| Reply::json(500, "{}"),
    );
    let e = get(&provider(&a, client_secret_vars(&a), &["s"]), "S").unwrap_err();
    assert!(
        e.message().contains("not the vault's host 127.0.0.1"),
        "{e}"
    );
    let b = azure(CHALLENGE, |_| Reply::json(500, "{}"));
    let vars = client_secret_vars(&b).set("AZURE_TENANT_ID", "other-tenant");
    let e = get(&provider(&b, vars, &["s"]), "S").unwrap_err();
    assert!(
        e.message().contains(&format!("in tenant '{TENANT}'")),
        "{e}"
    );
    assert_eq!(
        a.tokens.load(Ordering::SeqCst) + b.tokens.load(Ordering::SeqCst),
        0
    );
}

#[test]
fn a_refused_token_is_replaced_once_and_the_federated_file_is_read_at_each_exchange() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "eyJ.first").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&refused);
    let swapped = file.clone();
    let a = azure(CHALLENGE, move |r| {
        // The first token is refused (revoked), as a vault answers; the
        // kubelet has replaced the file meanwhile.
        if r.header("authorization") == Some("Bearer kv-token-1") {
            seen.fetch_add(1, Ordering::SeqCst);
            std::fs::write(&swapped, "eyJ.second").unwrap();
            let challenge = CHALLENGE.replace("TENANT", TENANT);
            return Reply::Status(401, vec![("www-authenticate".into(), challenge)], vec![]);
        }
        kv_secret("s", "v", "value-1", json!({"enabled": true}))
    });
    let vars = Vars::empty()
        .set("AZURE_TENANT_ID", TENANT)
        .set("AZURE_CLIENT_ID", "app-wi")
        .set("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())
        .set("AZURE_AUTHORITY_HOST", &a.server.url());
    let p = provider(&a, vars.clone(), &["s"]);
    assert_eq!(get(&p, "S").unwrap().as_deref(), Some("value-1"));
    assert_eq!(refused.load(Ordering::SeqCst), 1);
    let exchanges: Vec<String> = a
        .server
        .received()
        .iter()
        .filter(|r| r.path.contains("oauth2"))
        .map(|r| field(&r.text(), "client_assertion").unwrap())
        .collect();
    assert_eq!(exchanges, ["eyJ.first", "eyJ.second"]);
    let form = a
        .server
        .received()
        .iter()
        .find(|r| r.path.contains("oauth2"))
        .unwrap()
        .text();
    assert_eq!(
        field(&form, "client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    // A token file others may write is refused by name.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = get(&provider(&a, vars, &["s"]), "S").unwrap_err();
    assert!(e.message().contains("writable by group or others"), "{e}");
    assert!(e.message().contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
}

#[test]
fn a_certificate_signs_a_ps256_assertion_with_its_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("cert.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=app",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("crt.pem"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let both = std::fs::read_to_string(dir.path().join("crt.pem")).unwrap()
        + &std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    std::fs::write(&pem, &both).unwrap();
    // It holds the private key: private, as the identity-file rule asks.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let a = azure(CHALLENGE, |_| kv_secret("s", "v", "from-cert", json!({})));
    let vars = Vars::empty()
        .set("AZURE_TENANT_ID", TENANT)
        .set("AZURE_CLIENT_ID", "app-cert")
        .set("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap())
        .set("AZURE_AUTHORITY_HOST", &a.server.url());
    assert_eq!(
        get(&provider(&a, vars.clone(), &["s"]), "S")
            .unwrap()
            .as_deref(),
        Some("from-cert")
    );
    let form = a
        .server
        .received()
        .iter()
        .find(|r| r.path.contains("oauth2"))
        .unwrap()
        .text();
    let jwt = field(&form, "client_assertion").unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "PS256");
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some("app-cert"), Some("app-cert"))
    );
    assert_eq!(
        claims["aud"],
        format!("{}/{TENANT}/oauth2/v2.0/token", a.server.url())
    );
    // The thumbprint is the certificate's SHA-256, the signature its key's.
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(both.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    assert_eq!(header["x5t#S256"], b64.encode(digest.as_ref()));
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(both.as_bytes()).unwrap();
    let rustls::pki_types::PrivateKeyDer::Pkcs8(k) = key else {
        panic!("openssl writes PKCS #8")
    };
    let pair = ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PSS_2048_8192_SHA256,
        pair.public().as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &b64.decode(parts[2]).unwrap(),
    )
    .expect("the assertion verifies with the certificate's key");
    // A password, or a file with no key, is refused by name.
    let e = get(
        &provider(
            &a,
            vars.clone().set("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pw"),
            &["s"],
        ),
        "S",
    );
    assert!(e
        .unwrap_err()
        .message()
        .contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"));
    std::fs::write(&pem, std::fs::read(dir.path().join("crt.pem")).unwrap()).unwrap();
    let e = get(&provider(&a, vars, &["s"]), "S").unwrap_err();
    assert!(
        e.message().contains("no unencrypted PEM private key") && e.message().contains("cert.pem"),
        "{e}"
    );
}

#[test]
fn managed_identities_ask_imds_and_app_service_as_azure_identity_does() {
    let a = azure(CHALLENGE, |_| {
        kv_secret("s", "v", "from-msi", json!({"enabled": true}))
    });
    let imds = Vars::empty()
        .set("AZURE_POD_IDENTITY_AUTHORITY_HOST", &a.server.url())
        .set("AZURE_CLIENT_ID", "user-assigned-1");
    assert_eq!(
        get(&provider(&a, imds, &["s"]), "S").unwrap().as_deref(),
        Some("from-msi")
    );
    let r = a
        .server
        .received()
        .into_iter()
        .find(|r| r.path.starts_with("/metadata"))
        .unwrap();
    assert_eq!(r.header("metadata"), Some("true"));
    assert_eq!(
        r.path,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F127.0.0.1&client_id=user-assigned-1"
    );
    let app = Vars::empty()
        .set(
            "IDENTITY_ENDPOINT",
            &format!("{}/msi/token", a.server.url()),
        )
        .set("IDENTITY_HEADER", "header-secret");
    let p = provider(&a, app, &["s"]);
    assert_eq!(get(&p, "S").unwrap().as_deref(), Some("from-msi"));
    let r = a
        .server
        .received()
        .into_iter()
        .find(|r| r.path.starts_with("/msi"))
        .unwrap();
    assert_eq!(r.header("x-identity-header"), Some("header-secret"));
    assert!(
        r.path
            .starts_with("/msi/token?api-version=2019-08-01&resource="),
        "{}",
        r.path
    );
    assert!(!format!("{:?}", p.status()).contains("header-secret"));
}

#[test]
fn throttling_is_waited_out_and_an_oversized_answer_refused() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let a = azure(CHALLENGE, move |r| {
        if r.path.starts_with("/secrets/big/") {
            return Reply::text(200, "x".repeat(5 << 20));
        }
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Status(
                429,
                vec![("retry-after".into(), "0".into())],
                b"{\"error\":{\"code\":\"Throttled\",\"message\":\"m\"}}".to_vec(),
            ),
            _ => kv_secret("s", "v", "after-429", json!({})),
        }
    });
    assert_eq!(
        get(&provider(&a, client_secret_vars(&a), &["s"]), "S")
            .unwrap()
            .as_deref(),
        Some("after-429")
    );
    let e = get(&provider(&a, client_secret_vars(&a), &["big"]), "BIG").unwrap_err();
    assert!(e.message().contains("larger than"), "{e}");
}

#[test]
fn an_authority_with_user_information_gets_no_client_secret() {
    let a = azure(CHALLENGE, |_| Reply::Status(500, vec![], vec![]));
    let port = a.server.url().rsplit(':').next().unwrap().to_owned();
    let vars = client_secret_vars(&a).set(
        "AZURE_AUTHORITY_HOST",
        &format!("http://127.0.0.1:{port}@evil.test"),
    );
    let e = get(&provider(&a, vars, &["s"]), "S").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{e}");
    assert!(e.message().contains("user information"), "{e}");
    assert!(!e.message().contains("s3cret-value"), "{e}");
    assert!(a
        .server
        .received()
        .iter()
        .all(|r| !r.path.contains("oauth2")));
}

#[test]
fn entras_refusal_repeating_the_client_secret_never_shows_it() {
    // Entra's AADSTS7000215 quotes the secret it was sent: the message, the
    // status and the doctor must not.
    let secret = "Xy7~Q2w.e3R-t4Y_u5I+o6P/a7S=";
    let server = FakeServer::start(move |r: &Request| {
        if r.path.contains("/oauth2/v2.0/token") {
            let body = json!({
                "error": "invalid_client",
                "error_description": format!(
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being \
                     sent in the request is the client secret value, not the client secret ID. \
                     Secret: '{secret}'"),
            });
            return Reply::json(401, body.to_string());
        }
        let challenge = CHALLENGE.replace("TENANT", TENANT);
        Reply::Status(401, vec![("www-authenticate".into(), challenge)], vec![])
    });
    let a = Azure {
        server,
        tokens: Arc::new(AtomicUsize::new(0)),
    };
    let vars = client_secret_vars(&a).set("AZURE_CLIENT_SECRET", secret);
    let p = provider(&a, vars, &["s"]);
    let e = get(&p, "S").unwrap_err();
    assert!(e.message().contains("AADSTS7000215"), "{e}");
    let shown = format!(
        "{e} {:?} {}",
        p.status(),
        p.diagnose().map(|d| d.to_string()).unwrap_or_default()
    );
    for part in [secret, "Xy7~Q2w", "Xy7%7EQ2w"] {
        assert!(!shown.contains(part), "{part} in {shown}");
    }
}
