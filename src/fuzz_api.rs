//! Entry points for the fuzz targets (`fuzz/`), compiled only when `cargo
//! fuzz` builds the crate (`--cfg fuzzing`). Each takes arbitrary bytes and
//! feeds them to a parser of outside data; it must return, whatever the
//! bytes, without panicking (a panic is a finding), hanging, or growing
//! memory without bound. Where a parser has an invariant (what is written
//! reads back), it is asserted.

use crate::crypto::{cipher_for_secret, decrypt_token, TimePolicy};
use crate::secrets::aws_identity::identity::Source;
use crate::secrets::aws_identity::metadata::credentials_from_json;
use crate::secrets::aws_identity::profile;
use crate::secrets::aws_identity::wire::{self, ServiceError};
use crate::secrets::config::ManagerConfig;
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::transport::http::Response;
use crate::store::hardware;
use std::path::Path;

/// The secrets file: the first byte picks JSON or YAML.
pub fn secrets_file(data: &[u8]) {
    if let Some((first, rest)) = data.split_first() {
        crate::secrets::file::document::fuzz_document(rest, first & 1 == 1);
    }
}

/// The manager configuration JSON (`st_secrets_new`, `--config`).
pub fn manager_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ManagerConfig::from_json(text);
    }
}

/// SimpleTuner's stored tokens and bare Fernet tokens.
pub fn fernet_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One derivation for the whole run (cached by secret).
    let cipher = cipher_for_secret("fuzz-master-secret");
    let _ = cipher.decrypt(text);
    let _ = cipher.reencrypt(text);
    let key = fernet::Fernet::new(&fernet::Fernet::generate_key()).expect("a generated key");
    let _ = decrypt_token(&key, text, TimePolicy::Stored);
    let _ = decrypt_token(
        &key,
        text,
        TimePolicy::Spec {
            ttl: 60,
            now: 1_700_000_000,
        },
    );
}

/// Secrets Manager answers (GetSecretValue bodies, service errors), STS
/// answers (XML), the credential endpoints' JSON, credential_process output
/// and IAM Identity Center documents.
pub fn aws_response(data: &[u8]) {
    let Some((&status_byte, body)) = data.split_first() else {
        return;
    };
    let status = [200, 400, 403, 404, 500, 503][status_byte as usize % 6];
    let error_type = (status_byte & 0x80 != 0).then_some("ResourceNotFoundException");
    let headers = error_type
        .map(|t| vec![("x-amzn-errortype".to_owned(), t.to_owned())])
        .unwrap_or_default();
    let _ = crate::secrets::aws::answer::secret_from(
        "fuzz",
        Response::made_up(status, headers.clone(), body),
    );
    let e = ServiceError::parse(body, error_type);
    let _ = (e.is_auth(), e.is_expired_token(), e.is_throttling());
    let _ = wire::require_success("fuzz", Response::made_up(status, headers.clone(), body));
    let _ = credentials_from_json(
        "fuzz",
        &Response::made_up(200, headers.clone(), body),
        Source::Container,
    );
    // The same body as a credential_process document, an SSO token cache
    // file and a GetRoleCredentials answer.
    let _ = crate::secrets::aws_identity::process::parse(body, "fuzz", Source::Process("p".into()));
    let _ =
        crate::secrets::aws_identity::sso::read_cached_token(body, std::time::SystemTime::now());
    let _ = crate::secrets::aws_identity::sso::role_credentials(
        &Response::made_up(200, headers, body),
        "p",
    );
    if let Ok(text) = std::str::from_utf8(body) {
        for tag in [
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
            "Arn",
        ] {
            if let Some(v) = wire::xml_text(text, tag) {
                let _ = parse_timestamp(&v);
            }
        }
        let _ = parse_timestamp(text);
    }
}

/// Vault answers: KV v1 and v2 reads, `errors` bodies.
pub fn vault_response(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = [200, 204, 400, 403, 404, 429, 500, 503][first as usize % 8];
    let version = 1 + (first >> 7);
    let _ =
        crate::secrets::vault::wire::secret_from(Response::made_up(status, vec![], body), version);
    let _ = crate::secrets::vault::wire::errors_summary(&Response::made_up(status, vec![], body));
    let _ = crate::secrets::vault::wire::expect(Response::made_up(status, vec![], body), "fuzz");
    let _ = crate::secrets::vault::wire::not_found_kind(&Response::made_up(status, vec![], body));
    // The same bytes as a Retry-After header (seconds or an HTTP date).
    if let Ok(text) = std::str::from_utf8(body) {
        let headers = vec![("retry-after".to_owned(), text.to_owned())];
        let _ = Response::made_up(status, headers, b"").retry_after();
    }
}

/// The AWS shared config and credentials files (profiles and sso-session
/// sections).
pub fn aws_profile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for source in [profile::Source::Config, profile::Source::Credentials] {
        if let Ok(file) = profile::parse_file(&text, source) {
            for (name, p) in file.profiles.iter().chain(&file.sso_sessions) {
                let _ = (name, p.get("region"), p.get("credential_process"));
            }
        }
    }
}

/// Provider-config rows as stored (SimpleTuner's table), merge patches on
/// them, and hardware pricing JSON.
pub fn store_rows(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (row, patch) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    if let Ok(mut map) = crate::store::parse_stored(Path::new("fuzz.db"), "fuzz", row) {
        if let Ok(patch) = serde_json::from_str(patch) {
            crate::store::merge_patch(&mut map, patch);
            if let Some(info) = map.get("hardware_info") {
                let _ = hardware::validate(info);
            }
        }
    }
    if let Ok(info) = serde_json::from_str::<serde_json::Value>(row) {
        if hardware::validate(&info).is_ok() {
            // Every validated price gives a finite hourly cost.
            for entry in info.as_object().into_iter().flat_map(|m| m.values()) {
                let c = entry["cost_per_second"].as_f64().expect("validated");
                assert!((c * 3600.0).is_finite());
            }
        }
    }
}

/// Azure Key Vault: a secret's GET answer, with the first byte picking the
/// status; a challenge (against a vault's host); a secret's name. (Token
/// answers, App Service's too, are `gcp_response`'s `token_answer`.)
pub fn azure_response(data: &[u8]) {
    use crate::secrets::azure::{challenge_of, secret_from, SecretName};
    let Some((&status_byte, body)) = data.split_first() else {
        return;
    };
    let status = [200, 400, 401, 403, 404, 429, 500, 503][status_byte as usize % 8];
    let name = SecretName::parse("hf-token").expect("a valid name");
    let _ = secret_from(&name, Response::made_up(status, vec![], body));
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(c) = challenge_of(text, "v.vault.azure.net") {
            // What is accepted is for the vault's own domain.
            assert!(c.scope.starts_with("https://"));
        }
        if let Ok(parsed) = SecretName::parse(text) {
            // What parses names itself back.
            assert_eq!(SecretName::parse(&parsed.to_string()).ok(), Some(parsed));
        }
    }
}

/// GCP Secret Manager and Google's credentials: an `access` answer, a
/// token endpoint's answer and an error answer, with the first byte
/// picking the status; a secret's name; an executable's answer.
pub fn gcp_response(data: &[u8]) {
    use crate::secrets::credential::oauth;
    use crate::secrets::gcp::{external, SecretRef};
    let Some((&status_byte, body)) = data.split_first() else {
        return;
    };
    let status = [200, 400, 401, 403, 404, 429, 500, 503][status_byte as usize % 8];
    let name = SecretRef::parse("projects/p/secrets/s").expect("a valid name");
    let _ = crate::secrets::gcp::secret_from(&name, Response::made_up(status, vec![], body));
    let _ = oauth::token_answer("fuzz", Response::made_up(status, vec![], body), 0);
    let _ = oauth::oauth_failure("fuzz", &Response::made_up(status, vec![], body));
    let _ = external::executable_answer_of(body);
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(parsed) = SecretRef::parse(text) {
            // What parses names itself back.
            assert_eq!(parsed.to_string(), text.trim());
        }
    }
}
