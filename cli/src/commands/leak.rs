//! `scan` and `redact`: the leak guard from the shell. Both look for the
//! values the chain holds (and `--key`'s), raw and encoded, with the
//! library's matcher; neither prints a value.

use crate::args::{RedactArgs, ScanArgs};
use crate::context::Globals;
use crate::io::{outln, print_json, printable, printable_path};
use crate::outcome::{CliError, Outcome};
use crate::scan::{Hit, Scanner};
use st_secrets::redact::{Masker, Patterns, MIN_LEN};
use st_secrets::secrets::SecretsManager;
use st_secrets::{Error, SecretString};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The values to look for: every value the providers hold, and `keys`'.
fn patterns(m: &SecretsManager, keys: &[String]) -> Result<Patterns, CliError> {
    let mut values: Vec<(String, SecretString)> = m.held_values()?;
    for key in keys {
        match m.get(key)? {
            Some(value) => values.push((key.clone(), value)),
            None => return Err(CliError::NotFound(format!("secret '{key}' not found"))),
        }
    }
    Patterns::checked(
        values
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose().as_bytes())),
        MIN_LEN,
    )
    .map_err(|e| e.with_note("name the keys to look for with --key"))?
    .ok_or_else(|| {
        CliError::Usage(format!(
            "no secret value of {MIN_LEN} bytes or more to look for (see st-secrets providers)"
        ))
    })
}

/// Any failure of scan's is exit status 2 (1 means "found").
fn failed(e: CliError) -> Outcome {
    match e {
        CliError::ClosedPipe => Err(CliError::ClosedPipe),
        e => {
            e.report();
            Ok(2)
        }
    }
}

pub fn scan(g: &Globals, args: ScanArgs) -> Outcome {
    let patterns = match g.manager().and_then(|m| patterns(&m, &args.keys)) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let started = Instant::now();
    let mut scanner = Scanner::new(&patterns);
    for path in &args.paths {
        scanner.scan_path(path);
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = scanner.report;
    if g.json {
        let hits: Vec<serde_json::Value> =
            report.hits.iter().map(|h| hit_json(&patterns, h)).collect();
        let errors: Vec<serde_json::Value> = report
            .errors
            .iter()
            .map(|(p, e)| {
                serde_json::json!({"path": concealed(&patterns, &p.to_string_lossy()), "error": e})
            })
            .collect();
        print_json(serde_json::json!({
            "found": hits,
            "errors": errors,
            "files": report.files,
            "bytes_read": report.bytes,
            "bytes_scanned": report.scanned,
            "values": patterns.needles(),
            "seconds": seconds,
        }))?;
    } else {
        for hit in &report.hits {
            outln!("{}", hit_line(&patterns, hit));
        }
        for (path, e) in &report.errors {
            eprintln!(
                "st-secrets: scan: {}: {}",
                shown(&patterns, &path.to_string_lossy()),
                printable(e)
            );
        }
        eprintln!(
            "st-secrets: scan: {} found in {} files ({} bytes read, {} scanned, {:.3} s)",
            report.hits.len(),
            report.files,
            report.bytes,
            report.scanned,
            seconds
        );
    }
    Ok(if !report.errors.is_empty() {
        2
    } else if report.hits.is_empty() {
        0
    } else {
        1
    })
}

/// `name` (a file's or an archive member's) with every value `patterns`
/// finds in it concealed: a value may be part of a name, and nothing scan
/// prints may hold one.
fn concealed(patterns: &Patterns, name: &str) -> String {
    match patterns.redact(name.as_bytes()) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => name.to_owned(),
    }
}

/// [`concealed`], then escaped for a terminal ([`printable`]).
fn shown(patterns: &Patterns, name: &str) -> String {
    printable(&concealed(patterns, name))
}

fn hit_line(patterns: &Patterns, h: &Hit) -> String {
    let member = h
        .member
        .as_deref()
        .map(|m| format!("!{}", shown(patterns, m)))
        .unwrap_or_default();
    format!(
        "{}{member}: offset {}: {} ({})",
        shown(patterns, &h.path.to_string_lossy()),
        h.offset,
        printable(&h.key),
        h.encoding
    )
}

fn hit_json(patterns: &Patterns, h: &Hit) -> serde_json::Value {
    serde_json::json!({
        "path": concealed(patterns, &h.path.to_string_lossy()),
        "member": h.member.as_deref().map(|m| concealed(patterns, m)),
        "offset": h.offset,
        "key": h.key,
        "encoding": h.encoding.name(),
    })
}

pub fn redact(g: &Globals, args: RedactArgs) -> Outcome {
    let m = g.manager()?;
    let patterns = Arc::new(patterns(&m, &args.keys)?);
    if args.files.is_empty() {
        return filter(patterns);
    }
    for path in &args.files {
        let n = rewrite(path, &patterns)?;
        if n > 0 {
            eprintln!(
                "st-secrets: redact: {}: {n} concealed",
                printable_path(path)
            );
        }
    }
    Ok(0)
}

/// Which side of a masked copy failed.
enum Failed {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `from` to `to` through `masker` to the end, each read passed on
/// (and `to` flushed) at once but for a possible start of a value.
fn copy_masked(
    masker: &mut Masker,
    from: &mut impl Read,
    to: &mut impl Write,
) -> Result<(), Failed> {
    loop {
        match masker.read_from(from) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failed::Read(e)),
        }
        masker
            .pass_on(to, false)
            .and_then(|()| to.flush())
            .map_err(Failed::Write)?;
    }
    masker
        .pass_on(to, true)
        .and_then(|()| to.flush())
        .map_err(Failed::Write)
}

/// stdin to stdout.
fn filter(patterns: Arc<Patterns>) -> Outcome {
    let mut masker = Masker::new(patterns);
    match copy_masked(
        &mut masker,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    ) {
        Ok(()) => Ok(0),
        Err(Failed::Read(e)) => Err(Error::Io(format!("cannot read stdin: {e}")).into()),
        Err(Failed::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(CliError::ClosedPipe)
        }
        Err(Failed::Write(e)) => Err(Error::Io(format!("cannot write to stdout: {e}")).into()),
    }
}

/// Rewrites `path` with the values concealed, through a temporary file in
/// its directory renamed over it (same mode); left alone when nothing was
/// concealed. How many occurrences were.
fn rewrite(path: &Path, patterns: &Arc<Patterns>) -> Result<u64, CliError> {
    let io = |e: std::io::Error| -> CliError {
        Error::Io(format!("redact {}: {e}", printable_path(path))).into()
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(CliError::Usage(format!(
            "redact {}: not a regular file (symbolic links are not followed)",
            printable_path(path)
        )));
    }
    // The rewrite replaces this name's file: another name of the same file
    // (a hard link) would keep the values.
    if meta.nlink() > 1 {
        return Err(CliError::Usage(format!(
            "redact {}: the file has {} names (hard links); concealing the values under this \
             one would leave them under the others: nothing was changed (remove the other \
             links, or redact a copy)",
            printable_path(path),
            meta.nlink()
        )));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut from = std::fs::File::open(path).map_err(io)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let mut masker = Masker::new(Arc::clone(patterns));
    copy_masked(&mut masker, &mut from, temp.as_file_mut()).map_err(|f| match f {
        Failed::Read(e) | Failed::Write(e) => io(e),
    })?;
    if masker.concealed() == 0 {
        return Ok(0);
    }
    let file = temp.as_file();
    file.set_permissions(std::fs::Permissions::from_mode(
        meta.permissions().mode() & 0o7777,
    ))
    .map_err(io)?;
    file.sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(masker.concealed())
}
