use super::*;
use std::os::unix::fs::PermissionsExt;

/// An RSA key made by openssl (`genpkey`: PKCS #8, or `-traditional`:
/// PKCS #1), written 0600 into `dir` as `name`.
fn key_file(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = std::process::Command::new("openssl")
        .arg(args[0])
        .arg("-out")
        .arg(&path)
        .args(&args[1..])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn rsa(dir: &Path, name: &str) -> std::path::PathBuf {
    key_file(
        dir,
        name,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    )
}

fn job() -> JobRecord {
    JobRecord {
        cluster: "gpu1".into(),
        job_id: 4242,
        array_task_id: None,
        run: 0,
        user: "alice".into(),
        uid: 1001,
        account: "vision".into(),
        partition: "a100".into(),
        qos: "normal".into(),
        end: None,
    }
}

fn unb64(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap()
}

/// The header and claims of `token`, its signature checked with `jwk`'s
/// public key.
fn verified(token: &str, jwk: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let public = ring::signature::RsaPublicKeyComponents {
        n: unb64(jwk["n"].as_str().unwrap()),
        e: unb64(jwk["e"].as_str().unwrap()),
    };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &unb64(parts[2]),
        )
        .expect("the signature verifies with the published key");
    (
        serde_json::from_slice(&unb64(parts[0])).unwrap(),
        serde_json::from_slice(&unb64(parts[1])).unwrap(),
    )
}

#[test]
fn a_token_carries_the_jobs_record_and_verifies_with_the_published_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::load(&rsa(dir.path(), "site.pem")).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let issuer = "https://slurm.example.org/st-secrets";
    let minted = mint(
        &key,
        issuer,
        "openbao",
        &job(),
        Duration::from_secs(3600),
        now,
    )
    .unwrap();
    let jwks = jwks(std::slice::from_ref(&key));
    let (header, claims) = verified(minted.token.expose(), &jwks["keys"][0]);
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()})
    );
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], "job/gpu1/4242/0");
    assert_eq!(claims["run"], 0);
    assert_eq!(claims["aud"], "openbao");
    assert_eq!(claims["iat"], 1_800_000_000u64);
    assert_eq!(claims["nbf"], 1_800_000_000u64);
    assert_eq!(claims["exp"], 1_800_003_600u64);
    assert_eq!(
        (&claims["user"], &claims["uid"], &claims["account"]),
        (&json!("alice"), &json!(1001), &json!("vision"))
    );
    assert_eq!(
        (&claims["partition"], &claims["qos"]),
        (&json!("a100"), &json!("normal"))
    );
    assert_eq!(claims["array_task_id"], Value::Null);
    assert_eq!(claims["jti"], minted.jti.as_str());
    assert_eq!(
        minted.expires,
        UNIX_EPOCH + Duration::from_secs(1_800_003_600)
    );
    // Each token its own jti; an array task and a requeued run their own
    // subject; a job's time limit ends its token first.
    let task = JobRecord {
        array_task_id: Some(7),
        run: 2,
        end: Some(1_800_000_600),
        ..job()
    };
    let second = mint(
        &key,
        issuer,
        "openbao",
        &task,
        Duration::from_secs(3600),
        now,
    )
    .unwrap();
    let (_, claims) = verified(second.token.expose(), &jwks["keys"][0]);
    assert_eq!(claims["sub"], "job/gpu1/4242_7/2");
    assert_eq!(claims["exp"], 1_800_000_600u64);
    assert_ne!(second.jti, minted.jti);
    assert!(!format!("{key:?}{minted:?}").contains(minted.token.expose()));
}

#[test]
fn the_jwks_names_each_key_by_its_thumbprint_and_lists_both_during_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let old = SigningKey::load(&rsa(dir.path(), "old.pem")).unwrap();
    let pkcs1 = key_file(dir.path(), "new.pem", &["genrsa", "-traditional", "3072"]);
    let new = SigningKey::load(&pkcs1).unwrap();
    let doc = jwks(&[
        new,
        old,
        SigningKey::load(&dir.path().join("new.pem")).unwrap(),
    ]);
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "each key once");
    for k in keys {
        // RFC 7638: SHA-256 of the required members, sorted, no spaces.
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            k["e"].as_str().unwrap(),
            k["n"].as_str().unwrap()
        );
        assert_eq!(k["kid"], b64(Sha256::digest(canonical)));
        assert_eq!(
            (&k["kty"], &k["alg"], &k["use"]),
            (&json!("RSA"), &json!("RS256"), &json!("sig"))
        );
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "no private part"
        );
    }
    // n is the modulus openssl reads from the file.
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&pkcs1)
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.trim().trim_start_matches("Modulus=");
    let n: String = unb64(keys[0]["n"].as_str().unwrap())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(n, hex);
    let d = discovery("https://slurm.example.org/st-secrets/").unwrap();
    assert_eq!(
        d["jwks_uri"],
        "https://slurm.example.org/st-secrets/.well-known/jwks.json"
    );
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
}

#[test]
fn a_key_others_may_read_or_no_rsa_key_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = rsa(dir.path(), "site.pem");
    let pem = std::fs::read_to_string(&path).unwrap();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = SigningKey::load(&path).unwrap_err();
        assert_eq!(e.code_name(), "ST_PERMISSION", "mode {mode:o}: {e}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ec = key_file(
        dir.path(),
        "ec.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let e = SigningKey::load(&ec).unwrap_err();
    assert!(e.to_string().contains("not an RSA key"), "{e}");
    let small = key_file(dir.path(), "small.pem", &["genrsa", "1024"]);
    assert!(SigningKey::load(&small).is_err());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = SigningKey::load(&garbage).unwrap_err();
    assert!(!e.to_string().contains("not a key"), "{e}");
    assert!(SigningKey::load(&dir.path().join("missing.pem")).is_err());
    let key = SigningKey::load(&path).unwrap();
    assert!(!format!("{key:?}").contains(&body[..20]));
}

#[test]
fn bad_input_is_refused_naming_what() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::load(&rsa(dir.path(), "site.pem")).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let hour = Duration::from_secs(3600);
    let ok = "https://slurm.example.org";
    let refused = |issuer: &str, audience: &str, job: JobRecord, lifetime: Duration| {
        let e = mint(&key, issuer, audience, &job, lifetime, now).unwrap_err();
        assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{e}");
        e.to_string()
    };
    for issuer in [
        "http://slurm.example.org",
        "https://slurm.example.org?x=1",
        "https://u@slurm.example.org",
        "https://slurm.example.org#k",
        "slurm",
        "",
    ] {
        assert!(
            refused(issuer, "openbao", job(), hour).contains("issuer"),
            "{issuer}"
        );
    }
    assert!(mint(&key, "http://127.0.0.1:8200", "openbao", &job(), hour, now).is_ok());
    assert!(refused(ok, "", job(), hour).contains("audience"));
    assert!(refused(ok, "a\nb", job(), hour).contains("audience"));
    assert!(refused(ok, "openbao", job(), Duration::from_secs(10)).contains("lifetime"));
    assert!(refused(ok, "openbao", job(), Duration::from_secs(7 * 86400)).contains("lifetime"));
    for (field, value) in [
        ("user", ""),
        ("user", "bob smith"),
        ("account", "a/b"),
        ("cluster", "x\u{7}"),
    ] {
        let mut j = job();
        match field {
            "user" => j.user = value.into(),
            "account" => j.account = value.into(),
            _ => j.cluster = value.into(),
        }
        assert!(
            refused(ok, "openbao", j, hour).contains(field),
            "{field} {value:?}"
        );
    }
    let ended = JobRecord {
        end: Some(1_799_999_000),
        ..job()
    };
    assert!(refused(ok, "openbao", ended, hour).contains("time limit"));
    // The record itself is JSON with no field of its own making.
    assert!(serde_json::from_str::<JobRecord>(r#"{"cluster":"c","job_id":1,"user":"u","uid":1,"account":"a","partition":"p","admin":true}"#).is_err());
}
