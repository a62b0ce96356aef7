//! What a program acting for a whole job needs (the Slurm plugin, a
//! launcher's own prolog and epilog): a job's secrets written as files for
//! its processes, and the job's ledger revoked at its end.

use super::boundary::{call, out_arg, str_arg, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use super::secrets::{manager, st_secrets};
use crate::secrets::delivery::{self, Layout};
use crate::secrets::{Vars, VaultJob};
use std::ffi::c_char;
use std::path::Path;

/// Writes the secrets a job asks for into the existing directory `dir`, for
/// processes that will run as `uid`:`gid`, and puts into a new buffer at
/// `*out_vars_json` (free with `st_buf_free`) the variables those processes
/// get, as a JSON object in order: paths, the directory, `st://KEY`
/// references; never a value.
///
/// `names` is `NAME[=KEY],...`: the variable each process knows a secret by
/// and the key it is read under with `m` (the variable's own name when no
/// key is given). `layout` is `"files"` (the `st-secrets run --as-files`
/// conventions: `HF_TOKEN` as a token file named by `HF_TOKEN_PATH`,
/// `WANDB_API_KEY` as a netrc named by `NETRC`, the AWS keys as a
/// credentials file named by `AWS_SHARED_CREDENTIALS_FILE`, any other
/// `NAME` as a file named by `NAME_FILE`) or `"refs"` (one file per key,
/// `SIMPLETUNER_SECRETS_DIRS` naming the directory, and `NAME=st://KEY`:
/// the process's own library resolves it from the directory, with no
/// credential). Each file is created new (never through an existing name
/// or a link) with mode 0600, and handed to `uid`:`gid` before anything is
/// written to it; -1 for both leaves the files the caller's.
///
/// Every value is fetched first: nothing is written unless all are found,
/// and a failure after the first file removes the files written.
///
/// Returns `ST_OK`; `ST_NOT_FOUND` for a key no provider holds (the message
/// names the variable and the key); `ST_INVALID_ARGUMENT` for a malformed
/// list (naming the item), an unknown layout, a uid or gid out of range or
/// only one of them -1, a `dir` that is not a directory or not on a
/// memory-backed filesystem (tmpfs or ramfs), a value a netrc or
/// credentials file cannot hold (naming the variable); `ST_IO` or
/// `ST_PERMISSION` for a file that cannot be created (one already there
/// included); a provider's error as `st_secrets_get` returns it;
/// `ST_NULL_ARGUMENT`; `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_secrets_write_files(
    m: *mut st_secrets,
    names: *const c_char,
    dir: *const c_char,
    layout: *const c_char,
    uid: i64,
    gid: i64,
    out_vars_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_vars_json, "out_vars_json") }?;
        let names = unsafe { str_arg(names, "names") }?;
        let dir = unsafe { str_arg(dir, "dir") }?;
        let layout = Layout::from_name(unsafe { str_arg(layout, "layout") }?)?;
        let id = |v: i64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v != u32::MAX)
                .ok_or_else(|| {
                    FfiError::new(
                        st_result::ST_INVALID_ARGUMENT,
                        format!("{what} {v} is not a user or group id (-1 for both: the caller's)"),
                    )
                })
        };
        let owner = match (uid, gid) {
            (-1, -1) => None,
            (u, g) => Some((id(u, "uid")?, id(g, "gid")?)),
        };
        let wanted = delivery::parse_wanted(names)?;
        let manager = unsafe { manager(m) }?;
        let vars = delivery::write_files(
            &wanted,
            Path::new(dir),
            layout,
            owner,
            |n| std::env::var(n).ok(),
            |key| manager.get(key),
        )?;
        let map: serde_json::Map<String, serde_json::Value> =
            vars.into_iter().map(|(k, v)| (k, v.into())).collect();
        out.write(st_buf::new_raw(
            serde_json::Value::Object(map).to_string().as_bytes(),
        ));
        Ok(())
    })
}

/// Revokes what a job's ledger lists (the file `st-secrets run` names by
/// `SIMPLETUNER_JOB_LEDGER`, one line per Vault lease issued and per login
/// token of the job's processes), with `m`'s Vault settings (a line naming
/// another Vault is revoked there, whether or not `m` names one), and
/// puts the outcome into a new buffer at `*out_report_json` (free with
/// `st_buf_free`):
/// `{"leases": N, "tokens": N, "failed": ["...", ...]}`, the leases and
/// tokens revoked (or found already gone) and what could not be, with why
/// (never a value, a token or a lease ID). The ledger is left in place:
/// remove it once the report says nothing failed, or call again.
///
/// The revocations go out at once (16 in flight at most), each waiting out
/// an election at most (`vault_election_timeout`, then `request_timeout`).
/// An empty ledger, or one whose file is gone, revokes nothing.
///
/// Returns `ST_OK` (failures are in the report); `ST_PROVIDER_UNAVAILABLE`
/// when a line names no Vault and `m` has no Vault address (nothing
/// revoked);
/// `ST_IO`, `ST_PERMISSION` or `ST_PARSE` for a ledger that cannot be read
/// (not a regular file, readable or writable by others, malformed);
/// `ST_NULL_ARGUMENT`; `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_secrets_revoke_ledger(
    m: *mut st_secrets,
    ledger_path: *const c_char,
    out_report_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_report_json, "out_report_json") }?;
        let path = Path::new(unsafe { str_arg(ledger_path, "ledger_path") }?);
        let manager = unsafe { manager(m) }?;
        let listed = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta.len() > 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(crate::error::Error::io("cannot read", path, &e).into()),
        };
        let report = if listed {
            let c = manager.config();
            VaultJob::new(&c.vault, &c.remote, Vars::from_process()).revoke_ledger(path)?
        } else {
            crate::secrets::Revoked::default()
        };
        let json = serde_json::json!({
            "leases": report.leases,
            "tokens": report.tokens,
            "failed": report.failed,
        });
        out.write(st_buf::new_raw(json.to_string().as_bytes()));
        Ok(())
    })
}
