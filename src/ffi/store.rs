//! `st_store`: the provider-configuration store and hardware pricing through
//! the C ABI.

use super::boundary::{call, call_or, opt_str_arg, out_arg, str_arg, BoxedHandle, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::store::{hardware, Store};
use std::ffi::c_char;
use std::path::Path;

/// An open provider-configuration store (a SQLite database). Thread-safe;
/// several processes may open the same database.
pub struct st_store {
    store: Store,
}

fn json_buf(text: &str) -> *mut st_buf {
    st_buf::new_raw(text.as_bytes())
}

/// Opens the store's database, creating it (mode 0600, directory 0700) when
/// needed. `db_path` NULL means the default, `<state dir>/cloud/jobs.db`, the
/// state dir being `SIMPLETUNER_STATE_DIR`, else `SIMPLETUNER_CONFIG_DIR`,
/// else `~/.simpletuner`. An existing SimpleTuner database opens as it is
/// (its `provider_config` table is read and written unchanged). The audit key
/// is `SIMPLETUNER_AUDIT_KEY`, else `audit.key` beside the database (made
/// once). Free with `st_store_free`.
///
/// A new database appears whole or not at all (built aside, then linked into
/// place), so processes opening one that does not exist yet together all
/// succeed. On a full disk an existing database opens read-only: reads work,
/// writes fail with `ST_IO` ("the disk is full"). After `fork()` the child
/// opens a connection of its own on first use; a store that another thread
/// of the parent was using at the instant of the fork answers `ST_STORE` in
/// the child, saying so (SQLite's locks do not survive that).
///
/// If the database file is removed while the store is open, every later
/// call that reaches the database fails with `ST_STORE` naming the file and
/// saying it was removed (never "malformed", never a new empty database made
/// silently); open the store again to start a new one. If the file is
/// replaced (a backup restored, a file moved in), the next such call follows
/// the path: the old file's write-ahead log is emptied into it first and the
/// store's cached configurations are dropped. Reads answered from the
/// 5-minute cache do not look at the file.
///
/// Returns `ST_OK`; `ST_STORE` when the file is not a SQLite database or
/// cannot be opened; `ST_KEY` when the audit key cannot be sourced;
/// `ST_IO`/`ST_PERMISSION`; `ST_NULL_ARGUMENT` (`out`), `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_open(
    db_path: *const c_char,
    out: *mut *mut st_store,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let path = unsafe { opt_str_arg(db_path, "db_path") }?;
        let out = unsafe { out_arg(out, "out") }?;
        let store = Store::open(path.map(Path::new))?;
        out.write(st_store { store }.into_raw());
        Ok(())
    })
}

/// Closes the store. NULL is a no-op. No other thread may use it during or
/// after the call.
#[no_mangle]
pub extern "C" fn st_store_free(s: *mut st_store) {
    // SAFETY: NULL or a live st_store from st_store_open (caller's contract).
    call_or((), || unsafe { st_store::free(s) })
}

/// The provider's configuration, a JSON object (`{}` when it has none), into a
/// new buffer at `*out_json`. Read through the process-wide provider-config
/// cache (`provider:<name>:config`, 5 minutes), which is served only while
/// the database has not changed: a change made by another process or
/// connection is seen at once (SQLite's `PRAGMA data_version`). Returns
/// `ST_OK`, `ST_STORE` (database failure, or a stored row that is not a JSON
/// object), `ST_INVALID_ARGUMENT` (empty name), `ST_NULL_ARGUMENT`,
/// `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_get_provider_config(
    s: *mut st_store,
    provider: *const c_char,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let buf = s.store.with_provider_config(provider, st_buf::new_raw)?;
        out.write(buf);
        Ok(())
    })
}

/// Replaces the provider's configuration with `config_json` (a JSON object;
/// a `hardware_info` in it must be valid, see `st_hardware_info_set`). One
/// transaction writes the row and its audit entry (which keys changed, never
/// values); then the provider's cached entries are dropped. Returns `ST_OK`,
/// `ST_INVALID_ARGUMENT` (malformed JSON, not an object, bad hardware_info),
/// `ST_STORE` (database failure or locked past the busy timeout; nothing is
/// written), `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_save_provider_config(
    s: *mut st_store,
    provider: *const c_char,
    config_json: *const c_char,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let config = unsafe { str_arg(config_json, "config_json") }?;
        s.store.save_provider_config(provider, config)?;
        Ok(())
    })
}

/// Applies `patch_json` to the provider's configuration as a JSON merge patch
/// (RFC 7396: `null` removes a key, objects merge, other values replace),
/// atomically (read and write in one transaction: concurrent merges from
/// several processes lose nothing), and writes the new configuration to
/// `*out_json`. Returns the results of `st_store_save_provider_config`.
#[no_mangle]
pub extern "C" fn st_store_merge_provider_config(
    s: *mut st_store,
    provider: *const c_char,
    patch_json: *const c_char,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let patch = unsafe { str_arg(patch_json, "patch_json") }?;
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let json = s.store.merge_provider_config(provider, patch)?;
        out.write(json_buf(&json));
        Ok(())
    })
}

/// Stores a provider credential (e.g. provider `"replicate"`, name
/// `"api_token"`), encrypted at rest with the credential key (see
/// `st_encrypt`), and records it in the audit trail (names only). Returns
/// `ST_OK`, `ST_KEY`, `ST_STORE`, `ST_INVALID_ARGUMENT` (empty names),
/// `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_set_credential(
    s: *mut st_store,
    provider: *const c_char,
    name: *const c_char,
    value: *const c_char,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let value = unsafe { str_arg(value, "value") }?;
        s.store.set_credential(provider, name, value)?;
        Ok(())
    })
}

/// A provider credential, decrypted, into a new buffer at `*out_value` (free
/// with `st_buf_free`, which zeroes it). The read is recorded in the audit
/// trail. Returns `ST_OK`, `ST_NOT_FOUND`, `ST_INVALID_TOKEN` (no known key
/// opens it), `ST_KEY`, `ST_STORE`, `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_get_credential(
    s: *mut st_store,
    provider: *const c_char,
    name: *const c_char,
    out_value: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let out = unsafe { out_arg(out_value, "out_value") }?;
        match s.store.get_credential(provider, name)? {
            Some(v) => {
                out.write(st_buf::new_raw(v.expose_bytes()));
                Ok(())
            }
            None => Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                format!("no credential '{name}' for provider '{provider}'"),
            )),
        }
    })
}

/// Deletes a provider credential. Returns `ST_OK`, `ST_NOT_FOUND`,
/// `ST_STORE`, `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_store_delete_credential(
    s: *mut st_store,
    provider: *const c_char,
    name: *const c_char,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let name = unsafe { str_arg(name, "name") }?;
        if s.store.delete_credential(provider, name)? {
            Ok(())
        } else {
            Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                format!("no credential '{name}' for provider '{provider}'"),
            ))
        }
    })
}

/// Re-encrypts every stored credential under the current credential key, in
/// one transaction, and writes a JSON report to `*out_json`:
/// `{"rotated": n, "current": n, "failed": n}` (failed: no known key opens
/// them; they are left as they are). Returns `ST_OK`, `ST_KEY`, `ST_STORE`,
/// `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_store_rotate_credentials(
    s: *mut st_store,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let r = s.store.rotate_credentials()?;
        let json =
            serde_json::json!({"rotated": r.rotated, "current": r.current, "failed": r.failed});
        out.write(json_buf(&json.to_string()));
        Ok(())
    })
}

/// The newest `limit` audit entries, newest first, as a JSON array of
/// `{"id", "at", "action", "provider", "subject", "detail"}` into `*out_json`.
/// Returns `ST_OK`, `ST_STORE`, `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_store_audit_json(
    s: *mut st_store,
    limit: usize,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let entries = s.store.audit_entries(limit)?;
        let json = serde_json::to_string(&entries)
            .map_err(|e| FfiError::new(st_result::ST_INTERNAL, format!("audit JSON: {e}")))?;
        out.write(json_buf(&json));
        Ok(())
    })
}

/// Verifies the whole audit chain (HMAC-SHA256 under the audit key). Returns
/// `ST_OK` and writes `{"entries": n}` to `*out_json` when every entry
/// verifies; `ST_STORE` with a message naming the first broken entry and why
/// (edited; removed, added or reordered; another key) otherwise.
#[no_mangle]
pub extern "C" fn st_store_audit_verify(
    s: *mut st_store,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let s = unsafe { st_store::arg(s, "s") }?;
        let out = unsafe { out_arg(out_json, "out_json") }?;
        let report = s.store.verify_audit()?;
        if let Some((id, why)) = report.first_broken {
            return Err(FfiError::new(
                st_result::ST_STORE,
                format!("audit trail broken at entry {id}: {why}"),
            ));
        }
        out.write(json_buf(
            &serde_json::json!({"entries": report.entries}).to_string(),
        ));
        Ok(())
    })
}

/// The hardware pricing as JSON (`{"gpu-l40s": {"name": "L40S (48GB)",
/// "cost_per_second": 0.000975}, ...}`) into `*out_json`: cached for 5
/// minutes (process-wide); else the `hardware_info` of store `s`'s `replicate`
/// configuration when valid and non-empty; else SimpleTuner's defaults (also
/// when `s` is NULL). Returns `ST_OK`, `ST_STORE`, `ST_NULL_ARGUMENT` (`out_json`).
#[no_mangle]
pub extern "C" fn st_hardware_info_json(
    s: *mut st_store,
    out_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let store = unsafe { s.as_ref() }.map(|s| &s.store);
        let out = unsafe { out_arg(out_json, "out_json") }?;
        out.write(json_buf(&hardware::info(store)?));
        Ok(())
    })
}

/// Sets the hardware pricing for the next 5 minutes (process-wide): a
/// non-empty JSON object whose entries are objects with a non-negative number
/// `cost_per_second` (and optionally a string `name`). Returns `ST_OK`,
/// `ST_INVALID_ARGUMENT`, `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_hardware_info_set(json: *const c_char, err: *mut *mut st_error) -> st_result {
    call(err, || {
        // SAFETY: NULL or valid for the call (caller's contract).
        let json = unsafe { str_arg(json, "json") }?;
        hardware::set(json)?;
        Ok(())
    })
}

/// Drops the cached hardware pricing: the next read consults the store again.
#[no_mangle]
pub extern "C" fn st_hardware_info_clear_cache() {
    call_or((), hardware::clear_cache)
}

/// The hourly cost (`cost_per_second` x 3,600) of `hardware` (NULL: the
/// default, `gpu-l40s`) from the current hardware pricing (as
/// `st_hardware_info_json`, `s` nullable) into `*out_cost`. Returns `ST_OK`,
/// `ST_NOT_FOUND` (no price for it), `ST_STORE`, `ST_NULL_ARGUMENT`
/// (`out_cost`), `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_hardware_hourly_cost(
    s: *mut st_store,
    hardware: *const c_char,
    out_cost: *mut f64,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let store = unsafe { s.as_ref() }.map(|s| &s.store);
        let id = unsafe { opt_str_arg(hardware, "hardware") }?;
        let out = unsafe { out_arg(out_cost, "out_cost") }?;
        out.write(hardware::hourly_cost(store, id)?);
        Ok(())
    })
}
