//! A credential helper program run as the SDKs run theirs (AWS's
//! `credential_process`, Google's executable-sourced subject tokens): no
//! shell, no standard input, its standard output read up to a bound, its
//! standard error read and dropped (tools print tokens there when they
//! fail), stopped once its time is up with every process it started (its
//! own process group).

use crate::error::Error;
use crate::secret::SecretBytes;
use crate::secrets::transport::FetchError;
use crate::sys;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most output read: 64 KiB (the documents are a few hundred bytes, a
/// SAML assertion a few kilobytes).
pub const MAX_OUTPUT: u64 = 64 << 10;

/// Runs `words` (the program and its arguments) with `envs` added to the
/// environment, and returns what it wrote to standard output. `fail`
/// makes every failure's error from its reason (the caller names the
/// program's role: "credential_process of AWS profile 'p'").
///
/// # Errors
/// `fail`'s when the program cannot be started, exits with another status
/// than 0, is killed, runs past `timeout` (it is then stopped), or writes
/// more than [`MAX_OUTPUT`] bytes.
pub fn run(
    words: &[String],
    envs: &[(&str, &str)],
    timeout: Duration,
    fail: &dyn Fn(String) -> FetchError,
) -> Result<SecretBytes, FetchError> {
    let Some((program, args)) = words.split_first() else {
        return Err(FetchError::permanent(Error::InvalidArgument(
            "no program to run".into(),
        )));
    };
    // Its own process group: at the deadline the program and whatever it
    // started are stopped together, and none of them can hold the output
    // open past it.
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("cannot start '{program}': {e}")))?;
    let pid = child.id();
    let stop = |child: &mut std::process::Child| {
        sys::kill_group(pid);
        let _ = child.kill();
        let _ = child.wait();
    };
    // Both pipes are drained by threads so the program never blocks on a
    // full pipe; what it writes to stderr is read and dropped.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (sender, output) = mpsc::channel();
    let out = sys::spawn_thread("st-secrets-process", move || {
        let mut buf = Vec::new();
        let read = (&mut stdout).take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        // Anything beyond the bound is drained, so the program can finish.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        let _ = sender.send(read.map(|_| SecretBytes::from(buf)));
    });
    let err = sys::spawn_thread("st-secrets-process", move || {
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    });
    if out.is_err() || err.is_err() {
        stop(&mut child);
        return Err(fail("no thread could be started to read its output".into()));
    }
    let deadline = Instant::now() + timeout;
    let late = || {
        format!(
            "'{program}' did not finish within {} s and was stopped, with what it started",
            timeout.as_secs_f64()
        )
    };
    // The program's end, left unreaped (its group cannot be reused).
    loop {
        match sys::ended_unreaped(pid) {
            Ok(true) => break,
            Ok(false) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(false) => {
                stop(&mut child);
                return Err(fail(late()));
            }
            Err(e) => {
                stop(&mut child);
                return Err(fail(format!("waiting for '{program}' failed: {e}")));
            }
        }
    }
    // Its output ends when every process holding it has closed it: a
    // process it left behind is stopped at the deadline, and what was
    // written by then is its answer.
    let left = deadline.saturating_duration_since(Instant::now());
    let read = match output.recv_timeout(left) {
        Ok(read) => Some(read),
        Err(_) => {
            sys::kill_group(pid);
            output.recv_timeout(Duration::from_secs(1)).ok()
        }
    };
    sys::kill_group(pid);
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for '{program}' failed: {e}")))?;
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".into(),
        };
        return Err(fail(format!(
            "'{program}' {how} (its error output is not shown: it may hold secrets; run the \
             command yourself to see it)"
        )));
    }
    let Some(output) = read else {
        return Err(fail(format!(
            "'{program}' ended, but a process it left behind kept its output open past {} s \
             (stopped)",
            timeout.as_secs_f64()
        )));
    };
    let output = output.map_err(|e| fail(format!("reading its output failed: {e}")))?;
    if output.len() as u64 > MAX_OUTPUT {
        return Err(fail(format!(
            "its output is larger than {MAX_OUTPUT} bytes"
        )));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn fail(why: String) -> FetchError {
        FetchError::permanent(Error::Auth(why))
    }

    /// Whether `pid` (read from `file`) still runs, a SIGKILL sent to it
    /// given up to 10 s to take effect (it is delivered when the process
    /// is next scheduled).
    fn alive(file: &std::path::Path) -> bool {
        // Not written: the shell never got as far as starting it.
        let pid = std::fs::read_to_string(file).unwrap_or_default();
        if pid.trim().is_empty() {
            return false;
        }
        let running = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
            // Gone, or a zombie waiting for its reaper: not running.
            stat.is_ok_and(|s| !s.contains(") Z ") && !s.contains(") X "))
        };
        let until = Instant::now() + Duration::from_secs(10);
        while running() {
            if Instant::now() > until {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn an_answer_printed_by_a_program_whose_child_holds_the_output_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let script = format!(
            "echo '{{\"ok\": 1}}'; sleep 300 & echo $! > {}",
            pid.display()
        );
        let started = Instant::now();
        let out = run(&sh(&script), &[], Duration::from_secs(1), &fail).unwrap();
        assert_eq!(out.expose(), b"{\"ok\": 1}\n");
        // A hang guard, not a measure: the left-behind child holds the
        // pipe for 300 s unless it is stopped.
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(!alive(&pid), "the process it left behind still runs");
    }

    #[test]
    fn a_program_past_its_time_is_stopped_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; sleep 300", pid.display());
        let started = Instant::now();
        let e = run(&sh(&script), &[], Duration::from_secs(1), &fail).unwrap_err();
        assert!(
            e.error.message().contains("did not finish within 1 s"),
            "{}",
            e.error
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(!alive(&pid), "what it started still runs");
    }

    #[test]
    fn a_failing_program_is_an_error_that_shows_none_of_its_output() {
        let script = "echo token-on-stdout; echo token-on-stderr >&2; exit 3";
        let e = run(&sh(script), &[], Duration::from_secs(10), &fail).unwrap_err();
        let m = e.error.message();
        assert!(
            m.contains("exited with status 3") && !m.contains("token-on"),
            "{m}"
        );
    }
}
