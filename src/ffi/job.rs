//! What a program acting for a whole job needs (the Slurm plugin, a
//! launcher's own prolog and epilog): a job's secrets written as files for
//! its processes, the job's ledger revoked at its end, and the job's own
//! token (minted by the site, its keys published as a JWKS).

use super::boundary::{call, out_arg, str_arg, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use super::secrets::{manager, st_secrets};
use crate::job::delivery::{self, Layout};
use crate::job::token;
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
/// `WANDB_API_KEY` as a netrc named by `NETRC`, or, when a W&B token
/// exchange gives it, as W&B's credentials file named by
/// `WANDB_CREDENTIALS_FILE` beside `WANDB_IDENTITY_TOKEN_FILE` and
/// `WANDB_BASE_URL`; an Anthropic exchange's credential as the SDK's
/// profile, a directory named by `ANTHROPIC_CONFIG_DIR` with
/// `ANTHROPIC_PROFILE`; the AWS keys as a credentials file named by
/// `AWS_SHARED_CREDENTIALS_FILE`, any other `NAME` as a file named by
/// `NAME_FILE`) or `"refs"` (one file per key,
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
/// credentials file cannot hold (naming the variable), a W&B exchange whose
/// subject token has no file; `ST_IO` or
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
        let values = delivery::ManagerValues::new(&manager);
        let vars = delivery::write_files(&wanted, Path::new(dir), layout, owner, &values)?;
        let map: serde_json::Map<String, serde_json::Value> =
            vars.into_iter().map(|(k, v)| (k, v.into())).collect();
        out.write(st_buf::new_raw(
            serde_json::Value::Object(map).to_string().as_bytes(),
        ));
        Ok(())
    })
}

/// Rewrites the files of short-lived credentials among those
/// `st_secrets_write_files` wrote into `dir` for the same `names` and
/// `layout` (a token exchange's, renewed by the library ahead of its end):
/// each whose contents changed is replaced atomically (a new 0600 file
/// renamed over it: a reader sees the old file or the new one, never part
/// of one), given the owner, group and ACL of the file it replaces. The
/// files of other secrets are left as they are and their keys not read
/// (a leased secret would be issued again). Puts into a new buffer at
/// `*out_report_json` (free with `st_buf_free`)
/// `{"rewritten": ["FILE", ...], "next_in": SECONDS}`: the files
/// rewritten (names in `dir`), and how long to wait before calling again
/// (a quarter of the time left to the soonest end, at least 1), or `null`
/// when no file holds a short-lived credential (no call is needed again).
///
/// Returns `ST_OK`; the errors of `st_secrets_write_files` (a file whose
/// value cannot be had keeps its contents: the others are rewritten
/// first, and the error is the first met).
#[no_mangle]
pub extern "C" fn st_secrets_refresh_files(
    m: *mut st_secrets,
    names: *const c_char,
    dir: *const c_char,
    layout: *const c_char,
    out_report_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_report_json, "out_report_json") }?;
        let names = unsafe { str_arg(names, "names") }?;
        let dir = unsafe { str_arg(dir, "dir") }?;
        let layout = Layout::from_name(unsafe { str_arg(layout, "layout") }?)?;
        let wanted = delivery::parse_wanted(names)?;
        let manager = unsafe { manager(m) }?;
        let values = delivery::ManagerValues::new(&manager);
        let done = delivery::refresh_files(&wanted, Path::new(dir), layout, &values)?;
        let next_in = done.next.map(|at| {
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .as_secs()
                .max(crate::secrets::lifetime::LOOK_AGAIN_AT_LEAST.as_secs())
        });
        let report = serde_json::json!({"rewritten": done.rewritten, "next_in": next_in});
        out.write(st_buf::new_raw(report.to_string().as_bytes()));
        Ok(())
    })
}

/// Revokes what a job's ledger lists (the file `st-secrets run` names by
/// `SIMPLETUNER_JOB_LEDGER`, one line per Vault lease issued and per login
/// token of the job's processes), with `m`'s Vault settings (a line naming
/// another Vault is revoked there, whether or not `m` names one), and
/// puts the outcome into a new buffer at `*out_report_json` (free with
/// `st_buf_free`):
/// `{"leases": N, "tokens": N, "failed": ["...", ...], "entity": ...}`,
/// the leases and tokens revoked (or found already gone) and what could
/// not be, with why (never a value, a token or a lease ID). The ledger is
/// left in place: remove it once the report says nothing failed, or call
/// again.
///
/// The revocations go out at once (16 in flight at most), each waiting out
/// an election at most (`vault_election_timeout`, then `request_timeout`).
/// An empty ledger, or one whose file is gone, revokes nothing.
///
/// With `SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY=1` in the environment (the
/// Slurm plugin sets it at a job's end when the job read with its own
/// token), the OpenBao entity of the job's token (the JWT `m`'s `jwt` login
/// sends) is then disabled, ledger or not, so that a copy of the token is
/// refused at once: `"entity"` in the report is `"disabled"`, `"disabled
/// already"` (another node did it) or `null` (not asked, or failed: the
/// reason is in `"failed"`). It is disabled only when one of its aliases is
/// the token's `sub` (the role's `user_claim`): the job's run's own.
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
        let vars = Vars::from_process();
        let entity = VaultJob::asked_to_disable_entity(&vars);
        let c = manager.config();
        let job = (listed || entity).then(|| VaultJob::new(&c.vault, &c.remote, vars));
        let mut report = match &job {
            Some(job) if listed => job.revoke_ledger(path)?,
            _ => crate::secrets::Revoked::default(),
        };
        let ended = job.filter(|_| entity).and_then(|job| {
            job.disable_job_entity()
                .map_err(|e| report.failed.push(format!("the job's entity: {e}")))
                .ok()
        });
        let json = serde_json::json!({
            "leases": report.leases,
            "tokens": report.tokens,
            "failed": report.failed,
            "entity": ended.map(crate::secrets::EntityEnd::name),
        });
        out.write(st_buf::new_raw(json.to_string().as_bytes()));
        Ok(())
    })
}

/// The request [`st_job_token_mint`] reads.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    issuer: String,
    audience: String,
    lifetime: u64,
    job: token::JobRecord,
}

/// Mints a job's own token: a JWT (RS256) signed with the site's RSA key in
/// the PEM file `key_file` (this user's or root's, readable by nobody else)
/// for the job that `request_json` describes from the scheduler's record of
/// it (never from the job's environment), and puts it into a new buffer at
/// `*out_token` (free with `st_buf_free`, which zeroes it).
///
/// `request_json` is `{"issuer": URL, "audience": TEXT, "lifetime":
/// SECONDS, "job": {"cluster", "job_id", "array_task_id" (optional),
/// "user", "uid", "account", "partition", "qos" (optional), "end"
/// (optional: the job's time limit, Unix seconds)}}`. The token's claims
/// are those, `sub` (`job/CLUSTER/ID`, `job/CLUSTER/ID_TASK` for an array
/// task), `iss`, `aud`, `iat`, `nbf`, `exp` (the lifetime, 60 to 86,400
/// seconds, or the job's end if sooner) and a random `jti`; its header
/// names the key by its RFC 7638 thumbprint (`kid`), as
/// [`st_job_token_jwks`] publishes it.
///
/// Returns `ST_OK`; `ST_PERMISSION` for a key file group or others may read
/// or write, or another user's; `ST_PARSE` for a file that holds no RSA
/// key of 2048 bits or more, or a request that is not that JSON (an
/// unknown field included); `ST_INVALID_ARGUMENT` for an issuer that is not
/// an https URL (http only on a loopback address), an empty audience, a
/// claim that is not a plain name, a lifetime out of range, a job whose
/// time limit has passed; `ST_IO` or `ST_PROVIDER_UNAVAILABLE` for a key
/// file that cannot be read or is missing; `ST_NULL_ARGUMENT`;
/// `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_job_token_mint(
    key_file: *const c_char,
    request_json: *const c_char,
    out_token: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_token, "out_token") }?;
        let key_file = Path::new(unsafe { str_arg(key_file, "key_file") }?);
        let request = unsafe { str_arg(request_json, "request_json") }?;
        let request: MintRequest = serde_json::from_str(request).map_err(|e| {
            crate::error::Error::Parse(format!("request_json is not a job token request: {e}"))
        })?;
        let key = token::SigningKey::load(key_file)?;
        let minted = token::mint(
            &key,
            &request.issuer,
            &request.audience,
            &request.job,
            std::time::Duration::from_secs(request.lifetime),
            std::time::SystemTime::now(),
        )?;
        out.write(st_buf::new_raw(minted.token.expose().as_bytes()));
        Ok(())
    })
}

/// The JWKS document (RFC 7517) publishing the public keys of the RSA keys
/// in the PEM files `key_files_json` lists (a JSON array of paths: during a
/// key change, the new key and the one before it), each once, named by its
/// RFC 7638 thumbprint, into a new buffer at `*out_jwks_json` (free with
/// `st_buf_free`); never a private part.
///
/// Returns `ST_OK`; as [`st_job_token_mint`] for each file; `ST_PARSE` for
/// a list that is not a JSON array of strings; `ST_INVALID_ARGUMENT` for an
/// empty list; `ST_NULL_ARGUMENT`; `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_job_token_jwks(
    key_files_json: *const c_char,
    out_jwks_json: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out_jwks_json, "out_jwks_json") }?;
        let list = unsafe { str_arg(key_files_json, "key_files_json") }?;
        let paths: Vec<String> = serde_json::from_str(list).map_err(|_| {
            crate::error::Error::Parse("key_files_json is not a JSON array of paths".into())
        })?;
        if paths.is_empty() {
            return Err(crate::error::Error::InvalidArgument(
                "key_files_json lists no key file".into(),
            )
            .into());
        }
        let keys = paths
            .iter()
            .map(|p| token::SigningKey::load(Path::new(p)))
            .collect::<Result<Vec<_>, _>>()?;
        out.write(st_buf::new_raw(token::jwks(&keys).to_string().as_bytes()));
        Ok(())
    })
}
