//! `st_secrets`: the secrets manager through the C ABI.

use super::boundary::{call, call_or, out_arg, str_arg, BoxedHandle, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::secrets::{self, ManagerConfig, SecretsManager};
use std::ffi::c_char;
use std::sync::Arc;

/// A secrets manager: a chain of providers (environment > secrets file >
/// AWS Secrets Manager > Vault by default) checked in priority order. Thread-safe: one manager may be used
/// from any number of threads at once. Every function taking an `st_secrets *`
/// accepts NULL for the process-wide default manager, which is configured from
/// the environment on first use.
pub struct st_secrets {
    manager: Arc<SecretsManager>,
}

/// The manager `m` points to, or the default manager for NULL.
///
/// # Safety
/// `m` is NULL or a live `st_secrets`.
unsafe fn manager(m: *mut st_secrets) -> Result<Arc<SecretsManager>, FfiError> {
    if m.is_null() {
        return Ok(secrets::default_manager()?);
    }
    // SAFETY: a live handle (caller's contract).
    let handle = unsafe { st_secrets::arg(m, "m") }?;
    Ok(Arc::clone(&handle.manager))
}

/// Creates a secrets manager. Free it with `st_secrets_free`.
///
/// `config_json` may be NULL or `"{}"`: the manager is then configured from
/// the environment alone (the default chain env, file, aws, vault). Otherwise
/// a JSON object whose keys override it, each key alone; `null` means the
/// default. Every key, its values and its default (and the environment
/// variables each falls back to) are in the table of configuration keys
/// (docs/configuration.md, section "Configuration keys"), generated from the
/// library's one list of keys. A remote provider that is not configured stays in the chain,
/// unavailable, and answers "absent" without network traffic.
///
/// Returns `ST_OK`; `ST_INVALID_ARGUMENT` for an empty string, malformed
/// JSON, a key given twice, an unknown key or a bad value, out-of-range
/// numbers included (the message names the key, never the value);
/// `ST_INVALID_UTF8`; `ST_NULL_ARGUMENT` (`out`).
///
/// The default secrets file is in the home directory: `$HOME`, else (unset
/// or empty) the account's home in the password database, as Python's
/// `Path.home()` finds it for SimpleTuner. With neither (and no secrets
/// file configured), the manager is still created: its file provider is
/// unavailable and says why, gets are answered by the other providers, and
/// `st_secrets_set` / `st_secrets_delete` fail with `ST_PROVIDER_UNAVAILABLE`.
#[no_mangle]
pub extern "C" fn st_secrets_new(
    config_json: *const c_char,
    out: *mut *mut st_secrets,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out, "out") }?;
        let config = if config_json.is_null() {
            ManagerConfig::from_environment()
        } else {
            ManagerConfig::from_json(unsafe { str_arg(config_json, "config_json") }?)?
        };
        let manager = Arc::new(SecretsManager::new(config)?);
        out.write(st_secrets { manager }.into_raw());
        Ok(())
    })
}

/// Frees a manager. NULL is a no-op (it does not touch the default manager:
/// see `st_secrets_reset_default`). No other thread may use it during or after.
#[no_mangle]
pub extern "C" fn st_secrets_free(m: *mut st_secrets) {
    // SAFETY: NULL or a live st_secrets from st_secrets_new (caller's contract).
    call_or((), || unsafe { st_secrets::free(m) })
}

/// Gets the value of `key` from the first provider that has it, into a new
/// buffer at `*out_value` (free with `st_buf_free`, which zeroes it).
///
/// Keys: the environment provider reads `key` upper-cased with `-` and `.` as
/// `_` (`replicate-api-token` reads `REPLICATE_API_TOKEN`), an empty variable
/// counting as unset; the file provider reads `key` as given, else that
/// normalized form.
///
/// Returns `ST_OK`; `ST_NOT_FOUND` when every provider answered "absent"; else,
/// when a provider failed and none had the key, the first failure's code
/// (`ST_PARSE` for a malformed secrets file, `ST_PERMISSION`, ...) with a
/// message naming the provider; `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`,
/// `ST_INVALID_ARGUMENT` (empty key).
#[no_mangle]
pub extern "C" fn st_secrets_get(
    m: *mut st_secrets,
    key: *const c_char,
    out_value: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let out = unsafe { out_arg(out_value, "out_value") }?;
        let manager = unsafe { manager(m) }?;
        match manager.get(key)? {
            Some(value) => {
                out.write(st_buf::new_raw(value.expose().as_bytes()));
                Ok(())
            }
            None => Err(not_found(key)),
        }
    })
}

/// Like `st_secrets_get`, also naming the provider that answered: `*out_provider`
/// receives a new buffer holding its name (`"env"`, `"file"`, ...), to free
/// with `st_buf_free`. Both out-parameters are written only on success.
#[no_mangle]
pub extern "C" fn st_secrets_get_with_source(
    m: *mut st_secrets,
    key: *const c_char,
    out_value: *mut *mut st_buf,
    out_provider: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_provider = unsafe { out_arg(out_provider, "out_provider") }?;
        let manager = unsafe { manager(m) }?;
        match manager.get_with_source(key)? {
            Some((value, provider)) => {
                out_value.write(st_buf::new_raw(value.expose().as_bytes()));
                out_provider.write(st_buf::new_raw(provider.as_bytes()));
                Ok(())
            }
            None => Err(not_found(key)),
        }
    })
}

/// Like `st_secrets_get_with_source`, also saying which version of the
/// remote secret the value comes from, so a run can record it (never the
/// value): `*out_info` receives a new buffer holding a JSON object,
/// `{"provider": "aws", "version": "<VersionId>", "stages": ["AWSCURRENT"]}`;
/// `version` is the AWS `VersionId` or the Vault KV v2 version number, and
/// `null` for the environment, the secrets file and a KV v1 secret;
/// `stages` is AWS's (empty for the others). Free both buffers with
/// `st_buf_free`; both out-parameters are written only on success.
#[no_mangle]
pub extern "C" fn st_secrets_get_with_version(
    m: *mut st_secrets,
    key: *const c_char,
    out_value: *mut *mut st_buf,
    out_info: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_info = unsafe { out_arg(out_info, "out_info") }?;
        let manager = unsafe { manager(m) }?;
        match manager.get_with_version(key)? {
            Some(found) => {
                let info = serde_json::json!({
                    "provider": found.provider,
                    "version": found.version.as_ref().map(|v| v.id.as_str()),
                    "stages": found.version.as_ref().map_or(&[][..], |v| &v.stages[..]),
                })
                .to_string();
                out_value.write(st_buf::new_raw(found.value.expose().as_bytes()));
                out_info.write(st_buf::new_raw(info.as_bytes()));
                Ok(())
            }
            None => Err(not_found(key)),
        }
    })
}

/// "This value failed me": reads `key` again now, whatever the caches say
/// (through the chain in order: the environment is looked at, the secrets
/// file re-read, a remote secret fetched), for a caller whose credential was
/// just refused. A remote secret is fetched at most once per
/// `refresh_min_interval` (10 s by default), single-flight with its gets: a
/// storm of failing ranks sends one request, and the calls it spares are
/// answered with the value held. `*out_value` receives the value (free with
/// `st_buf_free`), `*out_changed` whether it differs from what this process
/// would have served before (true when it held nothing). `ST_NOT_FOUND` when
/// no provider has the key. On AWS the value is the `AWSCURRENT` version's:
/// while a rotation is under way (an `AWSPENDING` version exists) that is
/// still the old value, until the rotation's last step moves the stage.
#[no_mangle]
pub extern "C" fn st_secrets_refresh(
    m: *mut st_secrets,
    key: *const c_char,
    out_value: *mut *mut st_buf,
    out_changed: *mut bool,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_changed = unsafe { out_arg(out_changed, "out_changed") }?;
        let manager = unsafe { manager(m) }?;
        match manager.refresh(key)? {
            Some(r) => {
                out_value.write(st_buf::new_raw(r.found.value.expose().as_bytes()));
                out_changed.write(r.changed);
                Ok(())
            }
            None => Err(not_found(key)),
        }
    })
}

fn not_found(key: &str) -> FfiError {
    FfiError::new(
        st_result::ST_NOT_FOUND,
        // Control characters escaped: a message may reach a terminal.
        format!(
            "secret '{}' was not found by any provider",
            key.escape_debug()
        ),
    )
}

/// Saves `key` = `value` to the secrets file: the configured or found file, else
/// `~/.simpletuner/secrets.json`, created with mode 0600 (directories 0700).
/// The file keeps its format (JSON or YAML), its other keys and their order; it
/// is written atomically under a lock, so concurrent savers in several
/// processes lose no update. A get right after sees the new value, unless the
/// environment holds that key.
///
/// Returns `ST_OK`; `ST_PARSE` when the existing file is malformed (it is not
/// overwritten); `ST_IO` / `ST_PERMISSION` when it cannot be written;
/// `ST_PROVIDER_UNAVAILABLE` when the chain has no file provider;
/// `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`, `ST_INVALID_ARGUMENT` (empty key).
#[no_mangle]
pub extern "C" fn st_secrets_set(
    m: *mut st_secrets,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let value = unsafe { str_arg(value, "value") }?;
        unsafe { manager(m) }?.set(key, value)?;
        Ok(())
    })
}

/// Deletes `key` from the secrets file (the key as given, else its normalized
/// form, as a get reads it). Returns `ST_OK` when it was deleted, `ST_NOT_FOUND`
/// when the file did not have it, and the errors of `st_secrets_set`.
#[no_mangle]
pub extern "C" fn st_secrets_delete(
    m: *mut st_secrets,
    key: *const c_char,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        if unsafe { manager(m) }?.delete(key)? {
            Ok(())
        } else {
            Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                format!("secret '{key}' is not in the secrets file"),
            ))
        }
    })
}

/// Drops everything the manager has cached: the secrets file is read again and
/// remote providers are asked again at the next get. NULL means the default
/// manager.
#[no_mangle]
pub extern "C" fn st_secrets_clear_cache(m: *mut st_secrets) {
    call_or((), || {
        // SAFETY: NULL or a live st_secrets (caller's contract).
        if let Ok(manager) = unsafe { manager(m) } {
            manager.clear_cache();
        }
    })
}

/// Drops the process-wide default manager; the next use of NULL builds it
/// again from the environment (for launchers that change the environment, and
/// for tests). Returns `ST_OK`.
#[no_mangle]
pub extern "C" fn st_secrets_reset_default(err: *mut *mut st_error) -> st_result {
    call(err, || {
        secrets::reset_default();
        Ok(())
    })
}

/// The chain as a JSON array, in priority order, into a new buffer at
/// `*out_json` (free with `st_buf_free`):
/// `[{"name": "env", "available": true, "detail": "...", "warnings": [...],
/// "last_error": null}, ...]`. `warnings` lists problems to fix (e.g. a secrets
/// file readable by others); `last_error` is null or
/// `{"code": "ST_PARSE", "message": "..."}`: the last failure of that provider.
/// Never contains a secret value.
#[no_mangle]
pub extern "C" fn st_secrets_providers_json(
    m: *mut st_secrets,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let json = unsafe { manager(m) }?.providers_json();
        out.write(st_buf::new_raw(json.as_bytes()));
        Ok(())
    })
}

/// The doctor's view as a JSON array into a new buffer at `*out_json` (free
/// with `st_buf_free`): `st_secrets_providers_json`'s objects, each with a
/// `"checks"` member: `null` for the local providers, and for a configured
/// remote provider its live checks, e.g. for `aws`:
/// `{"secret", "region", "endpoint", "credentials": "<source>",
/// "caller": {"arn", "account", "user_id"} | {"error": {...}},
/// "secret_readable": {"readable": true, "keys": N} | {"readable": false, ...}}`.
/// Sends requests (bounded by the remote timeouts). Never contains a secret
/// value or credential.
#[no_mangle]
pub extern "C" fn st_secrets_diagnose_json(
    m: *mut st_secrets,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let json = unsafe { manager(m) }?.diagnose_json();
        out.write(st_buf::new_raw(json.as_bytes()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_defines_the_well_known_keys() {
        let header = include_str!("../../include/st_secrets.h");
        for (name, key) in [
            ("ST_KEY_REPLICATE_API_TOKEN", secrets::REPLICATE_API_TOKEN),
            ("ST_KEY_HF_TOKEN", secrets::HF_TOKEN),
            ("ST_KEY_WEBHOOK_SECRET", secrets::WEBHOOK_SECRET),
        ] {
            let line = format!("#define {name} \"{key}\"");
            assert!(header.contains(&line), "the header lacks {line}");
        }
    }
}
