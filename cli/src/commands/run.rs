//! `st-secrets run -- CMD ARGS...`: starts a command with the secrets added
//! to its environment (never its command line), forwards signals to it,
//! conceals the values in its output, and exits with its status.
//!
//! Signals: before the command starts, the forwarded signals and SIGCHLD are
//! blocked in this thread (the command gets the mask from before), and this
//! thread then takes them one by one with `sigtimedwait`, looking each second
//! whether the command ended too (in case a thread of other code took the
//! SIGCHLD): SIGCHLD means the command may have ended; any other is
//! passed on with `kill`, unless the terminal sent it (`SI_KERNEL`: Ctrl-C,
//! Ctrl-\, a resize or a hangup go to the whole foreground process group, the
//! command included, and must not arrive twice). The command is reaped only
//! after the last forward, so a signal can never reach a recycled pid.
//!
//! `--file`'s private directory is removed once the command is reaped,
//! whichever way it ended; the signals are blocked before it is written,
//! so one that arrives in between waits and is forwarded. As PID 1 (a
//! container's entrypoint) `run` also reaps the orphans it inherits.

use super::export::{resolve, Resolved, Var};
use super::watch::{masking_patterns, Masking, PatternSlot, Watch, Watched};
use crate::args::RunArgs;
use crate::context::Globals;
use crate::delivery::{self, Delivery, Render};
use crate::outcome::{usage, CliError, Outcome};
use crate::secretfiles::SecretDir;
use st_secrets::redact::Masker;
use st_secrets::{Error, SecretString};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;

/// The signals passed on to the command.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// How often `run` looks whether its command has ended without a
/// `SIGCHLD` to say so: another thread of this process that does not block
/// it may have taken it (the library's threads block it; a thread of some
/// other code might not).
const CHILD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// `si_code` of a signal the kernel sent (the terminal's, among others).
#[cfg(target_os = "linux")]
const SI_KERNEL: libc::c_int = 0x80;

/// Signals blocked in this thread until it is dropped (then the previous
/// mask is restored: matters when the tool runs inside Python).
struct Blocked {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl Blocked {
    fn block(signals: &[libc::c_int]) -> Result<Blocked, Error> {
        // SAFETY: sigset_t is plain data, initialized by sigemptyset before
        // use; pthread_sigmask gets valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
            if rc != 0 {
                return Err(Error::Internal(format!(
                    "cannot block signals: {}",
                    std::io::Error::from_raw_os_error(rc)
                )));
            }
            Ok(Blocked { set, previous })
        }
    }

    /// The next blocked signal, with whether the kernel sent it; `None`
    /// after [`CHILD_CHECK`] with none.
    #[cfg(target_os = "linux")]
    fn wait(&self) -> Result<Option<(libc::c_int, bool)>, Error> {
        let period = libc::timespec {
            tv_sec: CHILD_CHECK.as_secs().try_into().unwrap_or(1),
            tv_nsec: 0,
        };
        loop {
            // SAFETY: info is written by sigtimedwait; set and period are
            // initialized.
            let (signal, info) = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                (libc::sigtimedwait(&self.set, &mut info, &period), info)
            };
            if signal >= 0 {
                return Ok(Some((signal, info.si_code == SI_KERNEL)));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => {}
                _ => return Err(Error::Internal(format!("cannot wait for signals: {e}"))),
            }
        }
    }

    /// The next blocked signal, `None` after [`CHILD_CHECK`] with none.
    /// macOS has no `sigtimedwait`: the pending set is looked at every 10
    /// ms and a pending signal taken with `sigwait`. Who sent it cannot be
    /// told, so it counts as sent by a process and is passed on (a
    /// terminal's Ctrl-C then reaches the command twice: from the terminal
    /// and from here).
    #[cfg(not(target_os = "linux"))]
    fn wait(&self) -> Result<Option<(libc::c_int, bool)>, Error> {
        let deadline = std::time::Instant::now() + CHILD_CHECK;
        loop {
            // SAFETY: sigset_t is plain data filled by sigpending and
            // sigemptyset; sigwait gets initialized pointers.
            unsafe {
                let mut pending: libc::sigset_t = std::mem::zeroed();
                if libc::sigpending(&mut pending) != 0 {
                    let e = std::io::Error::last_os_error();
                    return Err(Error::Internal(format!("cannot wait for signals: {e}")));
                }
                for signal in 1..32 {
                    if libc::sigismember(&self.set, signal) == 1
                        && libc::sigismember(&pending, signal) == 1
                    {
                        let mut one: libc::sigset_t = std::mem::zeroed();
                        libc::sigemptyset(&mut one);
                        libc::sigaddset(&mut one, signal);
                        let mut got = 0;
                        if libc::sigwait(&one, &mut got) == 0 {
                            return Ok(Some((got, false)));
                        }
                    }
                }
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
        }
    }
}

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
    widen_pipe(from.as_fd());
    let to = to
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| Error::Io(format!("cannot duplicate an output stream: {e}")))?;
    widen_pipe(to.as_fd()); // when the output is a pipe too (`| tee log`)
    let patterns = Arc::clone(patterns);
    std::thread::Builder::new()
        .name("st-secrets-mask".into())
        .spawn(move || pump(from, to, patterns))
        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))
}

/// Makes a pipe's buffer 1 MiB (fewer wake-ups for bulk output); best
/// effort, and nothing for what is not a pipe, nor on macOS (no
/// `F_SETPIPE_SZ`; its pipes grow to 64 KiB by themselves).
#[cfg(not(target_os = "linux"))]
fn widen_pipe(_fd: std::os::fd::BorrowedFd<'_>) {}

/// Makes a pipe's buffer 1 MiB (fewer wake-ups for bulk output); best
/// effort, and nothing for what is not a pipe.
#[cfg(target_os = "linux")]
fn widen_pipe(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a pipe we own; failure is harmless.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// The exit status for the command's: its code, or 128+N for signal N.
fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

/// A file of the run with what goes into it: a `--file`'s, or one of
/// `--as-files`'s plan.
struct Planned {
    label: String,
    delivery: Delivery,
    keys: Vec<String>,
    values: Vec<SecretString>,
}

/// The files of the run: `--file`'s, then (with `--as-files`) one per
/// delivery of the secret variables, which then leave the environment.
fn plan_files(resolved: &Resolved, as_files: bool) -> Result<Vec<Planned>, CliError> {
    let mut out: Vec<Planned> = resolved
        .files
        .iter()
        .map(|f| Planned {
            label: format!("--file {}", f.name),
            delivery: Delivery {
                file: f.name.clone(),
                path_var: f.name.clone(),
                from: vec![f.name.clone()],
                render: Render::Plain,
            },
            keys: vec![f.key.clone()],
            values: vec![f.value.clone()],
        })
        .collect();
    if as_files {
        let secrets: std::collections::HashMap<&str, &Var> = resolved
            .vars
            .iter()
            .filter(|v| v.secret)
            .map(|v| (v.name.as_str(), v))
            .collect();
        // The plan keeps the variables' order (`vars` is in first-set order).
        let names: Vec<&str> = resolved
            .vars
            .iter()
            .filter(|v| v.secret)
            .map(|v| v.name.as_str())
            .collect();
        for d in delivery::plan(&names, |n| std::env::var(n).ok()) {
            let from: Vec<&Var> = d
                .from
                .iter()
                .filter_map(|n| secrets.get(n.as_str()).copied())
                .collect();
            if let Some((v, why)) = from
                .iter()
                .find_map(|v| delivery::refusal(&d.render, v.value.expose_bytes()).map(|w| (v, w)))
            {
                return Err(usage(format!(
                    "--as-files: {} (secret '{}') cannot go to {}: {why}",
                    v.name,
                    crate::io::printable(&v.key),
                    d.path_var
                )));
            }
            out.push(Planned {
                label: d.path_var.clone(),
                keys: from.iter().map(|v| v.key.clone()).collect(),
                values: from.iter().map(|v| v.value.clone()).collect(),
                delivery: d,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(p) = out.iter().find(|p| !seen.insert(p.delivery.file.as_str())) {
        return Err(usage(format!(
            "{}: two files of the run would be named {}; give --file another name",
            p.label, p.delivery.file
        )));
    }
    Ok(out)
}

pub fn run(g: &Globals, args: RunArgs) -> Outcome {
    if args.watch && args.files.is_empty() && !args.as_files {
        return Err(usage(
            "--watch keeps the run's files current: give --file NAME=st://KEY or --as-files",
        ));
    }
    let resolved = resolve(g, &args.selection, &args.files, true)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| usage("run needs a command after --"))?;
    let patterns = if args.no_mask {
        None
    } else {
        let secrets = resolved.vars.iter().chain(&resolved.files);
        masking_patterns(secrets.filter(|v| v.secret).map(|v| v.value.expose_bytes()))
            .map(|p| Arc::new(PatternSlot::new(p)))
    };
    let planned = plan_files(&resolved, args.as_files)?;
    let mut command = Command::new(program);
    command.args(rest);
    for var in &resolved.vars {
        if args.as_files && var.secret {
            command.env_remove(&var.name); // an inherited reference too
        } else {
            command.env(&var.name, var.value.expose());
        }
    }
    if patterns.is_some() {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }

    // Blocked before the files are written: a SIGTERM from here on waits
    // for the command (or for this function's return, which removes them
    // first: `secret_dir` is dropped before `blocked`).
    let mut signals = FORWARDED.to_vec();
    signals.push(libc::SIGCHLD);
    let blocked = Blocked::block(&signals)?;
    let previous = blocked.previous;
    let secret_dir = if planned.is_empty() {
        None
    } else {
        let dir = SecretDir::create()?;
        for p in &planned {
            let values: Vec<&[u8]> = p.values.iter().map(|v| v.expose_bytes()).collect();
            let bytes = delivery::render(&p.delivery.render, &values);
            command.env(&p.delivery.path_var, dir.write(&p.delivery.file, &bytes)?);
        }
        Some(dir)
    };
    let watch = match (&secret_dir, args.watch) {
        (Some(dir), true) => {
            // What it goes on with: each file's keys and values, and the
            // values concealed (a rotated one joins them).
            let watched = planned
                .into_iter()
                .map(|p| Watched {
                    label: p.label,
                    file: p.delivery.file,
                    keys: p.keys,
                    values: p.values,
                    render: p.delivery.render,
                })
                .collect();
            let masking = patterns.as_ref().map(|slot| Masking {
                slot: Arc::clone(slot),
                values: resolved
                    .vars
                    .iter()
                    .chain(&resolved.files)
                    .filter(|v| v.secret)
                    .map(|v| v.value.clone())
                    .collect(),
            });
            let dir = dir.path().to_owned();
            Some(Watch::start(resolved.manager, dir, watched, masking)?)
        }
        _ => {
            drop((resolved.manager, planned));
            None
        }
    };
    drop((resolved.vars, resolved.files));
    // SAFETY: between fork and exec only async-signal-safe calls
    // (pthread_sigmask, signal): the command starts with the signal mask
    // this process had before blocking (the standard library would start
    // it with none) and SIGPIPE at its default (the Rust runtime and Python
    // ignore it).
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) {
                0 => Ok(()),
                rc => Err(std::io::Error::from_raw_os_error(rc)),
            }
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            eprintln!("st-secrets: cannot run {}: {e}", program.to_string_lossy());
            return Ok(status);
        }
    };
    drop(command); // the values it held

    let mut pumps = Vec::new();
    if let Some(patterns) = &patterns {
        if let Some(out) = child.stdout.take() {
            pumps.push(start_pump(out, std::io::stdout().as_fd(), patterns)?);
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(start_pump(err, std::io::stderr().as_fd(), patterns)?);
        }
    }

    // As a container's PID 1, every orphan of the namespace is this
    // process's child: reaped as it ends, or it stays a zombie.
    let init = std::process::id() == 1;
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    let status = loop {
        let (signal, from_kernel) = blocked.wait()?.unwrap_or((libc::SIGCHLD, true));
        if signal == libc::SIGCHLD {
            // Not reaped yet: a forward below still reaches this process.
            if exited(pid)? {
                break child
                    .wait()
                    .map_err(|e| Error::Internal(format!("cannot wait for the command: {e}")))?;
            }
            if init {
                reap_orphans(Some(pid));
            }
        } else if !from_kernel {
            // SAFETY: kill on the command's pid, which is not reaped yet.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    };
    if let Some(watch) = watch {
        watch.stop(); // no file is rewritten after this
    }
    if let Some(dir) = secret_dir {
        dir.remove();
    }
    drop(blocked);
    if init {
        // Orphans may hold the output pipes open for as long as they run;
        // tini's rule: exit once the command has, and the namespace's other
        // processes end with it. What the command wrote is drained first.
        let until = std::time::Instant::now() + INIT_DRAIN;
        while pumps.iter().any(|p| !p.is_finished()) && std::time::Instant::now() < until {
            reap_orphans(None);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        reap_orphans(None);
        pumps.retain(|p| p.is_finished());
    }
    for p in pumps {
        let _ = p.join();
    }
    Ok(status_code(status))
}

/// How long `run` as PID 1 waits, once its command has ended, for the
/// output pipes to drain (orphans may keep them open indefinitely).
const INIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Reaps every ended child except `keep` (the command, which `run` reaps
/// itself after its last signal forward): `waitid` peeks at an ended child
/// without reaping it, and only another's is reaped.
fn reap_orphans(keep: Option<libc::pid_t>) {
    loop {
        // SAFETY: info is written by waitid; waitpid reaps the pid it named.
        let ended = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            if rc != 0 {
                return; // ECHILD: no children left
            }
            info.si_pid()
        };
        if ended == 0 || Some(ended) == keep {
            return;
        }
        // SAFETY: reaps the one child waitid reported as ended.
        unsafe {
            libc::waitpid(ended, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
}

/// Whether the command has ended, leaving it to be reaped (`WNOWAIT`).
fn exited(pid: libc::pid_t) -> Result<bool, Error> {
    loop {
        // SAFETY: info is written by waitid.
        let (rc, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                libc::id_t::try_from(pid).unwrap_or(0),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            (rc, info)
        };
        if rc == 0 {
            // SAFETY: si_pid is valid for a waitid result; 0 means no change.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::Internal(format!("cannot wait for the command: {e}")));
        }
    }
}
