//! A credential helper program run as the SDKs run theirs (AWS's
//! `credential_process`, Google's executable-sourced subject tokens): no
//! shell, no standard input, its standard output read up to a bound, its
//! standard error read and dropped (tools print tokens there when they
//! fail), stopped once its time is up.

use crate::error::Error;
use crate::secret::SecretBytes;
use crate::secrets::remote::FetchError;
use crate::sys;
use std::io::Read;
use std::process::{Command, Stdio};
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
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start '{program}': {e}")))?;
    // Both pipes are drained by threads so the program never blocks on a
    // full pipe; what it writes to stderr is read and dropped.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = sys::spawn_thread("st-secrets-process", move || {
        let mut buf = Vec::new();
        let read = (&mut stdout).take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        // Anything beyond the bound is drained, so the program can finish.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        read.map(|_| SecretBytes::from(buf))
    });
    let err = sys::spawn_thread("st-secrets-process", move || {
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    });
    let (Ok(out), Ok(err)) = (out, err) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail("no thread could be started to read its output".into()));
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = (out.join(), err.join());
                return Err(fail(format!(
                    "'{program}' did not finish within {} s and was stopped",
                    timeout.as_secs_f64()
                )));
            }
            Err(e) => return Err(fail(format!("waiting for '{program}' failed: {e}"))),
        }
    };
    let output = out
        .join()
        .map_err(|_| fail("reading its output failed".into()))?;
    let _ = err.join();
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
    let output = output.map_err(|e| fail(format!("reading its output failed: {e}")))?;
    if output.len() as u64 > MAX_OUTPUT {
        return Err(fail(format!(
            "its output is larger than {MAX_OUTPUT} bytes"
        )));
    }
    Ok(output)
}
