//! The tool's input and output: the `--json` document form, values printed
//! raw, values read from stdin or a hidden prompt, and private files written
//! atomically.

use crate::outcome::{usage, CliError};
use crate::prompt;
use st_secrets::Error;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Version of the `--json` documents: bumped when a field changes meaning or
/// goes away (new fields do not bump it).
pub const SCHEMA: u64 = 1;

/// Prints a line on stdout (`format_args!` syntax), returning from the
/// calling function with [`CliError::ClosedPipe`] when the reader went away.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::io::write_out(format!("{}\n", format_args!($($arg)*)).as_bytes())?
    };
}
pub(crate) use outln;

/// Writes `bytes` to stdout and flushes. A reader that went away (`| head`)
/// is [`CliError::ClosedPipe`]: the tool stops quietly, as Unix tools do;
/// any other failure is `ST_IO`.
pub fn write_out(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::ClosedPipe),
        Err(e) => Err(Error::Io(format!("cannot write to stdout: {e}")).into()),
    }
}

/// Prints `doc` with `"schema"` first.
pub fn print_json(mut doc: serde_json::Value) -> Result<(), CliError> {
    let mut out = serde_json::Map::new();
    out.insert("schema".into(), SCHEMA.into());
    if let Some(fields) = doc.as_object_mut() {
        out.append(fields);
    }
    write_out(format!("{}\n", serde_json::Value::Object(out)).as_bytes())
}

/// Parses JSON the library produced.
pub fn parse_own_json(text: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_str(text)
        .map_err(|e| CliError::Error(Error::Internal(format!("unexpected JSON: {e}"))))
}

/// The value for `set`, `encrypt`, `decrypt` and `credential set`: `value`,
/// else a hidden prompt at a terminal, else stdin (one trailing newline
/// removed).
pub fn read_value(value: Option<String>, what: &str) -> Result<String, CliError> {
    if let Some(v) = value {
        return Ok(v);
    }
    let mut value = if std::io::stdin().is_terminal() {
        prompt::hidden(&format!("{what} (input hidden):"))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| Error::Io(format!("cannot read the {what} from stdin: {e}")))?;
        text
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        // Almost always a mistake (an empty pipe); --value "" says it on purpose.
        return Err(usage(format!(
            "no {what} given (use --value \"\" for an empty one)"
        )));
    }
    Ok(value)
}

pub fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
    Ok(text)
}

/// Prints `text` as it is, followed by a newline when `newline` is set or
/// stdout is a terminal (so `$(st-secrets get KEY)` gets the value alone).
pub fn print_raw(text: &str, newline: bool) -> Result<(), CliError> {
    // Written as it is (no copy: the text may be a secret), then the newline.
    write_out(text.as_bytes())?;
    if newline || std::io::stdout().is_terminal() {
        write_out(b"\n")?;
    }
    Ok(())
}

/// Whether `path` names the standard stream (`-`).
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Replaces (or creates) `path` with `bytes` atomically: readers see the old
/// file or the whole new one, and the new file has mode 0600 from its first
/// byte (tempfile creates its files 0600 and `persist` renames over the
/// target). `path` must be a regular file or absent: a symlink, FIFO or
/// directory there is refused, not followed.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => {
            let kind = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "a special file"
            };
            return Err(Error::InvalidArgument(format!(
                "{} is {kind}, not a regular file; not replacing it",
                path.display()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot inspect", path, &e)),
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".st-secrets.tmp.")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, &e))?;
    temp.write_all(bytes)
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", temp.path(), &e))?;
    temp.persist(path)
        .map_err(|e| Error::io("cannot replace", path, &e.error))?;
    // The rename is durable once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync", dir, &e))
}

/// [`printable`] for a path (file names hold escapes and line breaks too).
pub fn printable_path(path: &std::path::Path) -> String {
    printable(&path.to_string_lossy())
}

pub use st_secrets::error::printable;

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        assert_eq!(
            super::printable("A\u{1b}[2J\u{202e}b\\"),
            "A\\u{1b}[2J\\u{202e}b\\\\"
        );
        assert_eq!(super::printable("HF_TOKEN ü"), "HF_TOKEN ü");
    }

    use super::*;
    use std::fs::Permissions;

    #[test]
    fn a_private_file_is_replaced_whole_and_never_through_a_link() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("out.yaml");
        write_private_file(&path, b"first").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a replaced file is the new 0600 one");

        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_private_file(&link, b"x").unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains("a symbolic link")),
            "{e}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(matches!(
            write_private_file(dir.path(), b"x"),
            Err(Error::InvalidArgument(_))
        ));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
    }
}
