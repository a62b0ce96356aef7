//! What a request carried that a refusal must not repeat: a server that
//! answers `Bad token: TOKEN` or Entra's `AADSTS7000215 ... 'SECRET'`
//! puts the credential in text that reaches messages, `doctor`,
//! `providers` and a job's output. Every credential the request carried is
//! replaced by `[redacted]` in the answer before anything reads it: the
//! values of its credential headers, the string values of a JSON body, and
//! the values of a form body (OAuth 2.0 token requests: a client secret, a
//! refresh token, an assertion, a subject token), each as sent and decoded.

use crate::secret::SecretString;

/// The headers whose value is a credential.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "x-vault-token",
    "x-aws-parameters-secrets-token",
    "x-amz-security-token",
];

/// The fields of an OAuth 2.0 form that name, never prove: kept in an
/// answer (a refusal naming the client ID or the grant helps).
const FORM_NAMES: [&str; 10] = [
    "grant_type",
    "scope",
    "client_id",
    "audience",
    "resource",
    "subject_token_type",
    "requested_token_type",
    "actor_token_type",
    "client_assertion_type",
    "requested_token_use",
];

/// The shortest value scrubbed: shorter ones would redact ordinary words.
const SHORTEST: usize = 8;

/// `answer` with every credential of the request (its `headers` and
/// `body`) replaced by `[redacted]`; the bytes replaced are zeroed.
pub(crate) fn scrub_answer(answer: &mut Vec<u8>, headers: &[(&str, &str)], body: &[u8]) {
    for sent in credentials_sent(headers, body) {
        scrub(answer, sent.expose().as_bytes());
    }
}

/// The credentials a request carries, as sent and decoded, 8 characters
/// or more; held in zeroizing strings, the parsed body zeroed.
fn credentials_sent(headers: &[(&str, &str)], body: &[u8]) -> Vec<SecretString> {
    let mut sent: Vec<SecretString> = headers
        .iter()
        .filter(|(name, _)| CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(_, value)| SecretString::from(value.trim()))
        .collect();
    if let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(fields) = doc.as_object() {
            sent.extend(
                fields
                    .values()
                    .filter_map(|v| v.as_str().map(SecretString::from)),
            );
        }
        crate::secrets::provider::zeroize_json(&mut doc);
    } else if is_form(body) {
        for field in body.split(|b| *b == b'&') {
            let Some(at) = field.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (name, raw) = (&field[..at], &field[at + 1..]);
            let name: String = form_urlencoded::parse(name)
                .map(|(k, _)| k.into_owned())
                .collect();
            if FORM_NAMES.contains(&name.as_str()) {
                continue;
            }
            // As sent (a server may echo the encoded text) and decoded.
            sent.push(SecretString::from(
                String::from_utf8_lossy(raw).into_owned(),
            ));
            let mut pair = b"v=".to_vec();
            pair.extend_from_slice(raw);
            for (_, value) in form_urlencoded::parse(&pair) {
                sent.push(SecretString::from(value.into_owned()));
            }
            zeroize::Zeroize::zeroize(&mut pair);
        }
    }
    sent.retain(|v| v.expose().len() >= SHORTEST);
    sent
}

/// Whether `body` reads as `application/x-www-form-urlencoded` fields.
fn is_form(body: &[u8]) -> bool {
    !body.is_empty()
        && body.contains(&b'=')
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}' | b'"' | b'<' | b'>'))
}

/// Replaces every occurrence of `needle` in `text` with `[redacted]`; the
/// bytes replaced are zeroed.
fn scrub(text: &mut Vec<u8>, needle: &[u8]) {
    if needle.is_empty() || !text.windows(needle.len()).any(|w| w == needle) {
        return;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(needle) {
            out.extend_from_slice(b"[redacted]");
            i += needle.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    zeroize::Zeroize::zeroize(text);
    *text = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(answer: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut bytes = answer.as_bytes().to_vec();
        scrub_answer(&mut bytes, headers, body.as_bytes());
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_form_fields_credentials_are_scrubbed_raw_and_decoded() {
        let body = "grant_type=client_credentials&client_id=11111111-2222-3333-4444-555555555555\
                    &client_secret=Abc~def%2Bghi%2Fjkl%3D&scope=https%3A%2F%2Fvault.azure.net%2F.default";
        // Entra repeats the secret decoded; another server, as sent.
        let answer = "AADSTS7000215: Invalid client secret provided. Ensure the secret being \
                      sent is the client secret value, not the client secret ID, for a secret \
                      added to app '11111111-2222-3333-4444-555555555555'. \
                      Secret: 'Abc~def+ghi/jkl=' raw Abc~def%2Bghi%2Fjkl%3D";
        let out = scrubbed(answer, &[], body);
        assert!(!out.contains("Abc~def"), "{out}");
        assert_eq!(out.matches("[redacted]").count(), 2, "{out}");
        // The client ID names, it does not prove: kept.
        assert!(
            out.contains("11111111-2222-3333-4444-555555555555"),
            "{out}"
        );
        // A refresh token, an assertion and a subject token too.
        for (field, value) in [
            ("refresh_token", "1//0gRefreshTokenValue"),
            ("assertion", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"),
            ("subject_token", "eyJ.subject.token"),
            ("client_assertion", "eyJ.client.assertion"),
        ] {
            let body = format!("grant_type=x&{field}={value}");
            let out = scrubbed(&format!("bad {field}: {value}"), &[], &body);
            assert_eq!(out, format!("bad {field}: [redacted]"));
        }
    }

    #[test]
    fn headers_and_json_bodies_are_scrubbed_and_short_values_kept() {
        let out = scrubbed(
            "Bad Token: hvs.token-value and s3cret-id",
            &[("X-Vault-Token", "hvs.token-value")],
            r#"{"role_id": "r", "secret_id": "s3cret-id"}"#,
        );
        assert_eq!(out, "Bad Token: [redacted] and [redacted]");
        let out = scrubbed("scope abc", &[], "grant_type=x&code=abc");
        assert_eq!(out, "scope abc");
    }
}
