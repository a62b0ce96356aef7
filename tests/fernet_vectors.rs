//! The Fernet specification's test vectors (tests/data/fernet/).
//!
//! - `generate`: a test-only hook builds tokens from their parts (key, time,
//!   IV, plaintext) as the specification composes them, and must reproduce
//!   every vector exactly. The library encrypts with the fernet crate, which
//!   takes its IV from the OS; `production_tokens_are_the_spec_composition`
//!   takes tokens the library made, reads back their time and IV, and requires
//!   the hook to rebuild them byte for byte. Together: the library's tokens are
//!   the specification's.
//! - `verify`: every token opens to its plaintext, under the vector's TTL and
//!   time, and under the stored-credential policy (no TTL, no skew limit).
//! - `invalid`: every token is rejected under the vector's TTL and time.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use st_secrets::crypto::{decrypt_token, derive_key, Cipher, TimePolicy};

fn vectors(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/data/fernet/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Seconds since the epoch of an RFC 3339 time like `1985-10-26T01:20:00-07:00`.
fn unix_time(rfc3339: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| rfc3339[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let sign = if &rfc3339[19..20] == "-" { -1 } else { 1 };
    let offset = sign * (n(20..22) * 3600 + n(23..25) * 60);
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's method.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86400 + hh * 3600 + mm * 60 + ss - offset) as u64
}

/// The specification's token composition (the test-only hook).
fn token_from_parts(key_b64: &str, time: u64, iv: &[u8; 16], plaintext: &[u8]) -> String {
    let key = URL_SAFE.decode(key_b64).unwrap();
    let (signing, encryption) = key.split_at(16);
    let ciphertext = cbc::Encryptor::<aes::Aes128>::new_from_slices(encryption, iv)
        .unwrap()
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut token = vec![0x80];
    token.extend_from_slice(&time.to_be_bytes());
    token.extend_from_slice(iv);
    token.extend_from_slice(&ciphertext);
    let mut mac = Hmac::<Sha256>::new_from_slice(signing).unwrap();
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(token)
}

fn fernet(secret: &str) -> fernet::Fernet {
    fernet::Fernet::new(secret).unwrap()
}

#[test]
fn the_time_parser_is_right() {
    assert_eq!(unix_time("1970-01-01T00:00:00+00:00"), 0);
    assert_eq!(unix_time("1985-10-26T01:20:00-07:00"), 499_162_800);
    assert_eq!(unix_time("2000-03-01T00:00:00+00:00"), 951_868_800);
}

#[test]
fn generate_vectors_are_reproduced_exactly() {
    let cases = vectors("generate");
    assert!(!cases.is_empty());
    for case in cases {
        let iv: Vec<u8> = case["iv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let token = token_from_parts(
            case["secret"].as_str().unwrap(),
            unix_time(case["now"].as_str().unwrap()),
            &iv.try_into().unwrap(),
            case["src"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(token, case["token"].as_str().unwrap());
    }
}

#[test]
fn production_tokens_are_the_spec_composition() {
    let key = derive_key("testsecret");
    let cipher = Cipher::from_secrets("testsecret", &[]);
    for plaintext in [
        "",
        "hello",
        "r8_0123456789abcdef0123456789abcdef",
        &"é".repeat(100),
    ] {
        let stored = cipher.encrypt(plaintext);
        let token = String::from_utf8(URL_SAFE.decode(&stored).unwrap()).unwrap();
        let raw = URL_SAFE.decode(&token).unwrap();
        let time = u64::from_be_bytes(raw[1..9].try_into().unwrap());
        let iv: [u8; 16] = raw[9..25].try_into().unwrap();
        assert_eq!(
            token_from_parts(key.expose(), time, &iv, plaintext.as_bytes()),
            token
        );
    }
}

#[test]
fn verify_vectors_open() {
    for case in vectors("verify") {
        let key = fernet(case["secret"].as_str().unwrap());
        let token = case["token"].as_str().unwrap();
        let spec = TimePolicy::Spec {
            ttl: case["ttl_sec"].as_u64().unwrap(),
            now: unix_time(case["now"].as_str().unwrap()),
        };
        let src = case["src"].as_str().unwrap().as_bytes();
        assert_eq!(decrypt_token(&key, token, spec).unwrap().expose(), src);
        assert_eq!(
            decrypt_token(&key, token, TimePolicy::Stored)
                .unwrap()
                .expose(),
            src
        );
    }
}

#[test]
fn invalid_vectors_are_rejected() {
    let cases = vectors("invalid");
    assert_eq!(cases.len(), 8);
    for case in cases {
        let desc = case["desc"].as_str().unwrap();
        let key = fernet(case["secret"].as_str().unwrap());
        let token = case["token"].as_str().unwrap();
        let spec = TimePolicy::Spec {
            ttl: case["ttl_sec"].as_u64().unwrap(),
            now: unix_time(case["now"].as_str().unwrap()),
        };
        assert!(decrypt_token(&key, token, spec).is_err(), "{desc}");
        // Stored credentials have no TTL and no clock-skew limit (a token
        // SimpleTuner wrote must open whatever the clocks say): only the two
        // time-based cases open under that policy, every other one is rejected.
        let time_only = desc == "expired TTL" || desc == "far-future TS (unacceptable clock skew)";
        assert_eq!(
            decrypt_token(&key, token, TimePolicy::Stored).is_ok(),
            time_only,
            "{desc}"
        );
    }
}
