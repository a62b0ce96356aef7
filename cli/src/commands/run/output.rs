//! The command's output with the values concealed: a thread for each of
//! its pipes copies it to this process's stdout or stderr through the leak
//! guard's masker, taking a new set of values as the watch rotates one.

use crate::commands::watch::PatternSlot;
use crate::sys;
use st_secrets::redact::Masker;
use st_secrets::Error;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::Child;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Copies `from` to `to`, concealing the values of `slot` (taking a new
/// set at the next read after it changes); stops when either end closes
/// (dropping `from` then gives the command SIGPIPE, as a pipeline would).
fn pump(mut from: impl Read, mut to: std::fs::File, slot: Arc<PatternSlot>) {
    let mut pending = Vec::new();
    loop {
        let (generation, patterns) = slot.current();
        let mut masker = Masker::new(patterns);
        masker.resume(&pending);
        // What was carried over goes out now, under the new set.
        if masker.pass_on(&mut to, false).is_err() {
            return;
        }
        let ended = loop {
            match masker.read_from(&mut from) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
            // Looked at after the read, before passing it on: the set may
            // have been replaced while the read waited, and these bytes may
            // hold the new value (the watcher replaces the set before it
            // rewrites the file the command reads).
            if slot.generation() != generation {
                break false;
            }
            if masker.pass_on(&mut to, false).is_err() {
                return;
            }
        };
        if ended {
            let _ = masker.pass_on(&mut to, true);
            return;
        }
        pending = masker.pending().to_vec();
    }
}

/// Starts a thread pumping the command's pipe `from` to `to` (this
/// process's stdout or stderr, duplicated and written unbuffered).
fn start_pump(
    from: impl Read + AsFd + Send + 'static,
    to: std::os::fd::BorrowedFd<'_>,
    patterns: &Arc<PatternSlot>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    sys::widen_pipe(from.as_fd());
    let to = to
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| Error::Io(format!("cannot duplicate an output stream: {e}")))?;
    sys::widen_pipe(to.as_fd()); // when the output is a pipe too (`| tee log`)
    let patterns = Arc::clone(patterns);
    std::thread::Builder::new()
        .name("st-secrets-mask".into())
        .spawn(move || pump(from, to, patterns))
        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))
}

/// The threads concealing the values in the command's stdout and stderr.
pub(super) fn start_pumps(
    child: &mut Child,
    patterns: &Arc<PatternSlot>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(start_pump(out, std::io::stdout().as_fd(), patterns)?);
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(start_pump(err, std::io::stderr().as_fd(), patterns)?);
    }
    Ok(pumps)
}

/// Waits for the pumps to pass on what the command wrote. As PID 1 (`init`)
/// orphans may hold the output pipes open for as long as they run; tini's
/// rule: exit once the command has, and the namespace's other processes end
/// with it, after at most [`INIT_DRAIN`].
pub(super) fn drain(mut pumps: Vec<JoinHandle<()>>, init: bool) {
    if init {
        let until = std::time::Instant::now() + INIT_DRAIN;
        while pumps.iter().any(|p| !p.is_finished()) && std::time::Instant::now() < until {
            sys::reap_orphans(None);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        sys::reap_orphans(None);
        pumps.retain(|p| p.is_finished());
    }
    for p in pumps {
        let _ = p.join();
    }
}

/// How long `run` as PID 1 waits, once its command has ended, for the
/// output pipes to drain (orphans may keep them open indefinitely).
const INIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);
