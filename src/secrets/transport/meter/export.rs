//! The counters out of the process: a job's processes' files added up
//! (`run --metrics`), and OpenMetrics text for Prometheus (`st-secrets
//! metrics`, a node exporter's textfile).

use super::counts::{flush, from_json, merge, scalars, Counts, BUCKETS};
use std::collections::BTreeMap;

/// Escapes a label value of the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `counts` in the Prometheus / OpenMetrics text format, as a node
/// exporter's textfile collector reads it: `http_client_request_duration_seconds`
/// (OpenTelemetry's name and attributes `http_request_method`,
/// `http_response_status_code`, `error_type`, with `provider` and
/// `operation`) and one `st_secrets_<name>_total` counter per scalar.
pub fn openmetrics(counts: &BTreeMap<String, Counts>) -> String {
    let mut out = String::new();
    out.push_str("# HELP http_client_request_duration_seconds Duration of the remote providers' HTTP requests.\n");
    out.push_str("# TYPE http_client_request_duration_seconds histogram\n");
    for (provider, c) in counts {
        for ((op, method, outcome), t) in &c.requests {
            let status = if outcome.bytes().all(|b| b.is_ascii_digit()) {
                format!("http_response_status_code=\"{}\"", label(outcome))
            } else {
                format!("error_type=\"{}\"", label(outcome))
            };
            let labels = format!(
                "provider=\"{}\",operation=\"{}\",http_request_method=\"{}\",{status}",
                label(provider),
                label(op),
                label(method)
            );
            for (bound, n) in BUCKETS.iter().zip(t.buckets) {
                out.push_str(&format!(
                    "http_client_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}\n"
                ));
            }
            out.push_str(&format!(
                "http_client_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                t.count
            ));
            out.push_str(&format!(
                "http_client_request_duration_seconds_sum{{{labels}}} {}\n",
                t.seconds
            ));
            out.push_str(&format!(
                "http_client_request_duration_seconds_count{{{labels}}} {}\n",
                t.count
            ));
        }
    }
    let names = scalars(&Counts::default()).map(|(n, _)| n);
    for (i, name) in names.iter().enumerate() {
        // The Prometheus text format names a counter's family with its
        // `_total`, as node exporters read it.
        out.push_str(&format!(
            "# HELP st_secrets_{name}_total The remote providers' {}.\n",
            name.replace('_', " ")
        ));
        out.push_str(&format!("# TYPE st_secrets_{name}_total counter\n"));
        for (provider, c) in counts {
            let n = scalars(c)[i].1;
            out.push_str(&format!(
                "st_secrets_{name}_total{{provider=\"{}\"}} {n}\n",
                label(provider)
            ));
        }
    }
    out
}

/// The largest counters file [`gather`] reads: far above what a process
/// writes (a few KiB), far below what could starve `run` of memory.
const MAX_COUNTS_FILE: u64 = 1 << 20;

/// Adds up the counters of a job's processes: the `*.json` files in `dir`
/// (a job's `SIMPLETUNER_METRICS_DIR`, this process's written first). Each is
/// read as a secret file is: opened without blocking, a regular file only,
/// at most 1 MiB. A file that is refused or unreadable is skipped and its
/// name and reason returned (never its content), so a process of the job
/// cannot hang or starve the one summing them.
///
/// # Errors
/// [`crate::error::Error::Io`] when `dir` cannot be listed.
pub fn gather(
    dir: &std::path::Path,
) -> Result<(BTreeMap<String, Counts>, Vec<String>), crate::error::Error> {
    flush();
    let mut sum = BTreeMap::new();
    let mut skipped = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| crate::error::Error::io("cannot read", dir, &e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| crate::error::Error::io("cannot read", dir, &e))?
            .path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match crate::fsutil::read_regular(&path, "counters file", MAX_COUNTS_FILE) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(doc) => merge(&mut sum, from_json(&doc)),
                Err(_) => skipped.push(format!(
                    "counters file {} is not JSON; skipped",
                    crate::error::printable(&path.display().to_string())
                )),
            },
            Ok(None) => {} // gone meanwhile
            Err(e) => skipped.push(format!("{e}; skipped")),
        }
    }
    Ok((sum, skipped))
}

/// Replaces `file` with `text` for a node exporter's textfile collector:
/// a new temporary file of an unpredictable name beside it (`O_EXCL`,
/// never through a link another user planted), mode 0644 (the collector
/// runs as another user; the text holds no key and no value), renamed into
/// place. The directory must be one whose entries only their owners can
/// replace: a directory anyone may write to without the sticky bit is
/// refused, naming it.
///
/// # Errors
/// [`crate::error::Error::InvalidArgument`] for such a directory, [`crate::error::Error::Io`]
/// when writing or renaming fails (the temporary file is removed).
pub fn write_textfile(file: &std::path::Path, text: &str) -> Result<(), crate::error::Error> {
    use std::os::unix::fs::MetadataExt;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let meta =
        std::fs::metadata(dir).map_err(|e| crate::error::Error::io("cannot inspect", dir, &e))?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(crate::error::Error::InvalidArgument(format!(
            "directory {} may be written by anyone and has no sticky bit, so another user could \
             replace the metrics file; use a collector directory only its owner writes (or set \
             its sticky bit: chmod +t)",
            crate::error::printable(&dir.display().to_string())
        )));
    }
    let name = file
        .file_name()
        .map_or("metrics".into(), |n| n.to_string_lossy().into_owned());
    let temp = crate::fsutil::write_temp(
        dir,
        &crate::fsutil::temp_prefix(&name),
        text.as_bytes(),
        0o644,
    )?;
    std::fs::rename(&temp, file).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        crate::error::Error::io("cannot replace", file, &e)
    })
}
