//! `encrypt`, `decrypt` and `rotate`: credentials under the credential key.

use crate::context::Globals;
use crate::io::{print_json, print_raw, read_stdin, read_value};
use crate::outcome::{CliError, Outcome};
use st_secrets::Error;

pub fn encrypt(g: &Globals, value: Option<String>) -> Outcome {
    let input = zeroize::Zeroizing::new(read_value(value, "credential")?);
    let cipher = st_secrets::crypto::cipher()?;
    if let st_secrets::crypto::KeyOrigin::Generated(path) = cipher.origin() {
        eprintln!(
            "st-secrets: created a new credential key in {} (mode 0600); keep it: \
             what is encrypted with it cannot be decrypted without it",
            path.display()
        );
    }
    let ciphertext = cipher.encrypt(&input);
    if g.json {
        print_json(serde_json::json!({"ciphertext": ciphertext}))?;
        return Ok(0);
    }
    print_raw(&ciphertext, true)?;
    Ok(0)
}

pub fn decrypt(g: &Globals, value: Option<String>) -> Outcome {
    let input = read_value(value, "ciphertext")?;
    let plain = st_secrets::crypto::decrypt(input.trim())?;
    if g.json {
        print_json(serde_json::json!({"plaintext": plain.expose()}))?;
        return Ok(0);
    }
    print_raw(plain.expose(), false)?;
    Ok(0)
}

pub fn rotate_store(g: &Globals) -> Outcome {
    let r = g.store()?.rotate_credentials()?;
    print_json(
        serde_json::json!({"rotated": r.rotated, "current": r.current, "failed": r.failed}),
    )?;
    if r.failed > 0 {
        return Err(CliError::Error(Error::InvalidToken(format!(
            "{} stored credential(s) could not be decrypted with the current or previous keys",
            r.failed
        ))));
    }
    Ok(0)
}

/// Re-encrypts stdin's ciphertexts (one per line) under the current key.
pub fn rotate(g: &Globals) -> Outcome {
    let cipher = st_secrets::crypto::cipher()?;
    let input = read_stdin()?;
    let (mut changed, mut current, mut failed) = (0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let text = if line.trim().is_empty() {
            line.to_owned()
        } else {
            match cipher.reencrypt(line) {
                Ok(r) => {
                    if r.changed {
                        changed += 1;
                    } else {
                        current += 1;
                    }
                    r.ciphertext
                }
                Err(e) => {
                    failed += 1;
                    eprintln!(
                        "st-secrets: line {}: {}: {e} (kept unchanged)",
                        number + 1,
                        e.code_name()
                    );
                    line.to_owned()
                }
            }
        };
        lines.push(text);
    }
    if g.json {
        print_json(serde_json::json!({
            "ciphertexts": lines, "reencrypted": changed, "current": current, "failed": failed
        }))?;
    } else {
        for line in &lines {
            crate::io::outln!("{line}");
        }
        eprintln!(
            "rotate: {changed} re-encrypted, {current} already under the current key, {failed} failed"
        );
    }
    if failed > 0 {
        return Err(CliError::Error(Error::InvalidToken(format!(
            "{failed} ciphertext(s) could not be decrypted with the current or previous keys"
        ))));
    }
    Ok(0)
}
