//! `st_secrets`: the secrets manager through the C ABI.

use super::boundary::{call, call_or, opt_str_arg, out_arg, str_arg, BoxedHandle, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::secrets::{self, ManagerConfig, SecretsManager};
use std::ffi::{c_char, c_void, CString};
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
pub(super) unsafe fn manager(m: *mut st_secrets) -> Result<Arc<SecretsManager>, FfiError> {
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
/// the environment alone (the default chain env, mounted, file, aws, gcp, azure, vault). Otherwise
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
/// Its change listeners are removed (as by `st_secrets_remove_listener`):
/// none is called after this returns, except a call already running on the
/// library's refresher thread, which ends on its own before its `release`.
/// A manager that shares nothing (no node cache, not under `st-secrets
/// run`) revokes the Vault leases it issued and the tokens it logged in
/// with here, each request bounded by `request_timeout`; under `run` (whose
/// ledger revokes them when its command ends) and with the node cache (other
/// processes use them) they are left. A process killed without this leaves
/// them to their TTLs.
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
/// Returns `ST_OK`; `ST_NOT_FOUND` when every provider answered "absent" (its
/// message also names a provider set up in part and not used, with why: a
/// Vault address with no way to log in); else,
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
                out.write(st_buf::new_raw(value.expose_bytes()));
                Ok(())
            }
            None => Err(not_found(&manager, key)),
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
                out_value.write(st_buf::new_raw(value.expose_bytes()));
                out_provider.write(st_buf::new_raw(provider.as_bytes()));
                Ok(())
            }
            None => Err(not_found(&manager, key)),
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
                let info = version_info(found.provider, found.version.as_ref()).to_string();
                out_value.write(st_buf::new_raw(found.value.expose_bytes()));
                out_info.write(st_buf::new_raw(info.as_bytes()));
                Ok(())
            }
            None => Err(not_found(&manager, key)),
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
                out_value.write(st_buf::new_raw(r.found.value.expose_bytes()));
                out_changed.write(r.changed);
                Ok(())
            }
            None => Err(not_found(&manager, key)),
        }
    })
}

/// "This value failed me", for a caller whose login with `key`'s value was
/// just refused: `version` is the version that failed, as
/// `st_secrets_get_with_version` gave it (NULL: the version this process
/// holds). The key is read again as `st_secrets_refresh` reads it, except
/// that a remote secret whose version in force is the one that failed is
/// answered with the version beside it: on AWS `AWSPENDING`, else
/// `AWSPREVIOUS` (a rotation changed the credential before moving
/// `AWSCURRENT`); on Vault KV v2 the version before; a leased credential
/// (`vault_leases`) is issued anew. That version is held
/// (and shared through the node cache) until the service's version in
/// force is another. When the value held is already of another version (a
/// rank of the node, or a thread, reported first) it answers without a
/// request; otherwise at most one version check and one fetch per
/// `refresh_min_interval`. `*out_value` receives the value,
/// `*out_info` a JSON object `{"provider", "version", "stages",
/// "instead_of", "changed"}`: the version now held, the version it stands
/// in for (absent when it is the version in force) and whether the value
/// differs from what this process would have served before. Free both with
/// `st_buf_free`; both are written only on success. `ST_NOT_FOUND` when no
/// provider has the key; `ST_INVALID_ARGUMENT` for an empty `version`.
#[no_mangle]
pub extern "C" fn st_secrets_report_failure(
    m: *mut st_secrets,
    key: *const c_char,
    version: *const c_char,
    out_value: *mut *mut st_buf,
    out_info: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all five): NULL or valid for the call (caller's contract).
        let key = unsafe { str_arg(key, "key") }?;
        let version = unsafe { opt_str_arg(version, "version") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_info = unsafe { out_arg(out_info, "out_info") }?;
        let manager = unsafe { manager(m) }?;
        match manager.report_failure(key, version)? {
            Some(r) => {
                let mut info = version_info(r.found.provider, r.found.version.as_ref());
                info["changed"] = r.changed.into();
                out_value.write(st_buf::new_raw(r.found.value.expose_bytes()));
                out_info.write(st_buf::new_raw(info.to_string().as_bytes()));
                Ok(())
            }
            None => Err(not_found(&manager, key)),
        }
    })
}

/// Called with a key whose value changed (`st_secrets_on_change`): the
/// key as its source spells it, and `info_json`, a JSON object
/// `{"provider", "version", "stages", "removed"}` (`version` null for the
/// file and a KV v1 secret; `removed` true when the key is gone; with
/// `"instead_of"` when the version stands in for one reported failed, as
/// `st_secrets_report_failure` says). Never the
/// value: read it with `st_secrets_get`. Both strings are valid only during
/// the call. It must not unwind (C++ exceptions, `longjmp`) through the
/// library.
pub type st_change_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, key: *const c_char, info_json: *const c_char),
>;

/// Called once with `user_data` when a listener is gone for good (removed,
/// or its manager freed, and no call of it running): free what `user_data`
/// points to here.
pub type st_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A C listener: its functions and its `user_data`, released when dropped.
struct CListener {
    on_change: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char),
    release: st_release_fn,
    user_data: *mut c_void,
}

// SAFETY: the caller's contract for `st_secrets_on_change`: the functions
// may be called from any thread, `user_data` used from any of them.
unsafe impl Send for CListener {}
// SAFETY: as above.
unsafe impl Sync for CListener {}

impl CListener {
    fn tell(&self, event: &secrets::ChangeEvent) {
        // A key holding a NUL byte cannot be passed (nor looked up): skipped.
        let Ok(key) = CString::new(event.key.as_str()) else {
            return;
        };
        let mut info = version_info(event.provider, event.version.as_ref());
        info["removed"] = event.removed.into();
        let info = info.to_string();
        let info = CString::new(info).expect("JSON text holds no NUL byte");
        // SAFETY: the caller's function, with its user_data and two strings
        // valid for the call.
        unsafe { (self.on_change)(self.user_data, key.as_ptr(), info.as_ptr()) };
    }
}

impl Drop for CListener {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the caller's function, called once, with its user_data.
            unsafe { release(self.user_data) };
        }
    }
}

/// Registers `on_change`, called with each key whose value, as this manager
/// serves it, changes: with the key and its new version, never the value
/// (see `st_change_fn`). `*out_id` receives the listener's id for
/// `st_secrets_remove_listener`.
///
/// Changes are noticed when a provider reads its source again: a remote
/// secret refreshed ahead, fetched after its TTL or by `st_secrets_refresh`;
/// the secrets file re-read or saved. While a listener is registered, the
/// library's refresher thread also watches without gets (every 0.5 s it
/// checks the file and fetches each remote secret already read once it is
/// past its soft deadline), so a process that read its secrets once still
/// hears of a rotation. The first read of a source is no change; a change a
/// provider earlier in the chain hides (the environment holds the key) is
/// not told; the environment itself is not watched.
///
/// `on_change` runs on the thread that noticed the change (a caller of
/// `st_secrets_get` or `st_secrets_refresh`, or the library's refresher
/// thread), with no lock of the library held: it may call any function of
/// the library, this manager's too. It should return soon: the refresher
/// runs the background refreshes of the process one after the other.
/// `release` (may be NULL) is called once with `user_data` when the
/// listener is gone for good (see `st_secrets_remove_listener`,
/// `st_secrets_free`); not when this call fails.
///
/// Returns `ST_OK`; `ST_NULL_ARGUMENT` (`on_change`, `out_id`).
#[no_mangle]
pub extern "C" fn st_secrets_on_change(
    m: *mut st_secrets,
    on_change: st_change_fn,
    release: st_release_fn,
    user_data: *mut c_void,
    out_id: *mut u64,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        let on_change = on_change.ok_or_else(|| FfiError::null("on_change"))?;
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out_id = unsafe { out_arg(out_id, "out_id") }?;
        let manager = unsafe { manager(m) }?;
        let listener = CListener {
            on_change,
            release,
            user_data,
        };
        out_id.write(manager.on_change(move |event| listener.tell(event)));
        Ok(())
    })
}

/// Unregisters listener `id`: no call of it starts after this returns. A
/// call already running on another thread ends on its own; `release` is
/// called when it has (at once when none runs), on the thread that ends
/// last. Called from the listener itself, it returns at once too.
///
/// Returns `ST_OK`; `ST_NOT_FOUND` when the manager has no listener `id`.
#[no_mangle]
pub extern "C" fn st_secrets_remove_listener(
    m: *mut st_secrets,
    id: u64,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY: NULL or a live handle (caller's contract).
        let manager = unsafe { manager(m) }?;
        if manager.remove_listener(id) {
            Ok(())
        } else {
            Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                format!("this manager has no listener {id}"),
            ))
        }
    })
}

/// `{"provider", "version", "stages", "instead_of"}`: where a value comes
/// from, as `st_secrets_get_with_version`, `st_secrets_report_failure` and
/// `st_change_fn` give it (`instead_of` only when the version stands in
/// for one reported failed).
fn version_info(provider: &str, version: Option<&secrets::Version>) -> serde_json::Value {
    let mut info = serde_json::json!({
        "provider": provider,
        "version": version.map(|v| v.id.as_str()),
        "stages": version.map_or(&[][..], |v| &v.stages[..]),
    });
    if let Some(failed) = version.and_then(|v| v.instead_of.as_deref()) {
        info["instead_of"] = failed.into();
    }
    info
}

/// The JSON text `json` makes of the manager `m`, into a new buffer at
/// `*out_json`.
fn manager_json(
    m: *mut st_secrets,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
    json: impl FnOnce(&SecretsManager) -> Result<String, FfiError>,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let manager = unsafe { manager(m) }?;
        let text = json(&manager)?;
        out.write(st_buf::new_raw(text.as_bytes()));
        Ok(())
    })
}

/// `key` found by no provider; names the providers set up in part and not
/// used, with why (a Vault address with no way to log in).
fn not_found(manager: &SecretsManager, key: &str) -> FfiError {
    // Control characters escaped: a message may reach a terminal.
    let message = format!(
        "secret '{}' was not found by any provider{}",
        key.escape_debug(),
        manager.not_used_note()
    );
    FfiError::new(st_result::ST_NOT_FOUND, message)
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
    manager_json(m, out_json, err, |manager| Ok(manager.providers_json()))
}

/// The remote providers' counters as a JSON object into a new buffer at
/// `*out_json` (free with `st_buf_free`): `{"aws": {...}, "vault": {...}}`,
/// each `{"requests": [{"operation", "method", "outcome", "count",
/// "seconds", "buckets"}], "retries", "failovers", "stale_served",
/// "refreshes_ahead", "logins", "renewals", "leases_issued",
/// "leases_renewed", "leases_revoked", "tokens_revoked"}`. `operation` is
/// a fixed name (`GetSecretValue`, `DescribeSecret`, `kv read`, `kv
/// metadata`, `login`, ...), `outcome` the HTTP status or the error type
/// (`timeout`, `network`, `tls`), `buckets` the cumulative counts at
/// OpenTelemetry's bounds for `http.client.request.duration` (0.005 to 10
/// s). The counts are the process's, from zero in a forked child; never a
/// key name, a path or a value.
#[no_mangle]
pub extern "C" fn st_secrets_metrics_json(
    m: *mut st_secrets,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    manager_json(m, out_json, err, |manager| Ok(manager.metrics_json()))
}

/// Which version of each secret this manager used, as a JSON array into a
/// new buffer at `*out_json` (free with `st_buf_free`), one object per key
/// (its current version): `{"key", "provider", "version", "stages",
/// "fingerprint", "first_used", "last_used"}` (`"instead_of"` for a version
/// standing in for one reported failed). `fingerprint` is
/// `hmac-sha256:<hex>`, the HMAC-SHA256 of the value under the job's salt
/// (`SIMPLETUNER_PROVENANCE_SALT_FILE`, made by `st-secrets run
/// --provenance`) or the process's own: it identifies a value without
/// revealing it. Never contains a value. `ST_INVALID_ARGUMENT` when the
/// manager does not record it: turn it on with the config key `provenance`
/// (`true`, or a file that also gets one JSON line per key and version) or
/// `SIMPLETUNER_PROVENANCE_FILE`.
#[no_mangle]
pub extern "C" fn st_secrets_provenance_json(
    m: *mut st_secrets,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    manager_json(m, out_json, err, |manager| {
        manager.provenance_json().ok_or_else(|| {
            FfiError::new(
                st_result::ST_INVALID_ARGUMENT,
                "this manager does not record provenance: set the config key 'provenance' \
                 (true, or a file) or SIMPLETUNER_PROVENANCE_FILE"
                    .to_owned(),
            )
        })
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
    manager_json(m, out_json, err, |manager| Ok(manager.diagnose_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_found_names_a_vault_set_up_in_part() {
        use crate::secrets::{ManagerConfig, Vars};
        let home = tempfile::tempdir().unwrap();
        let vars = || Vars::empty().home(home.path());
        let plain = SecretsManager::with_environment(ManagerConfig::default(), vars()).unwrap();
        let e = not_found(&plain, "HF_TOKEN");
        assert_eq!(e.code, st_result::ST_NOT_FOUND);
        assert!(!e.message.contains("vault"), "{}", e.message);
        let vars = vars().set("BAO_ADDR", "http://127.0.0.1:9");
        let in_part = SecretsManager::with_environment(ManagerConfig::default(), vars).unwrap();
        let e = not_found(&in_part, "HF_TOKEN");
        assert!(
            e.message.contains("vault is set up in part and not used"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("SIMPLETUNER_VAULT_AUTH"),
            "{}",
            e.message
        );
    }

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
