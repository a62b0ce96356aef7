//! What another local account, or a process of the job, can do to `run`'s
//! files: the metrics file in a shared collector directory, the counters
//! a job's processes leave, the provenance salt. Each case as an attacker
//! would try it, against the built tool.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const TOOL: &str = env!("CARGO_BIN_EXE_st-secrets");

/// The tool with `args`, HOME a scratch directory with an empty secrets
/// file, nothing else of ours in the environment.
fn tool(home: &Path, args: &[&str]) -> Command {
    let dir = home.join(".simpletuner");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets.json");
    if !file.exists() {
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut c = Command::new(TOOL);
    c.args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(home)
        .stdin(Stdio::null());
    c
}

/// Waits for `command` at most `limit` (a hang is killed and reported).
fn finish(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let guard = std::thread::spawn(move || {
        while started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().unwrap();
    let killed = guard.join().unwrap();
    assert!(!killed, "the command hung and was killed after {limit:?}");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_link_planted_at_the_metrics_temporary_name_is_never_followed() {
    let home = TempDir::new().unwrap();
    // The victim's own private file, and a shared collector directory
    // (sticky, as /tmp) where another user plants links.
    let private = home.path().join("private.key");
    fs::write(&private, "victim's key").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let shared = TempDir::new().unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let metrics = shared.path().join("st.prom");
    let mut run = tool(
        home.path(),
        &[
            "run",
            "--metrics",
            metrics.to_str().unwrap(),
            "--",
            "sleep",
            "1",
        ],
    );
    let child = run
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The name the old writer used: `.NAME.tmp.<pid>`.
    let planted = shared.path().join(format!(".st.prom.tmp.{}", child.id()));
    symlink(&private, &planted).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(fs::read_to_string(&private).unwrap(), "victim's key");
    let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(fs::read_to_string(&metrics)
        .unwrap()
        .contains("# TYPE st_secrets_"));
    assert_eq!(
        fs::metadata(&metrics).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // A directory anyone may write to without the sticky bit: refused
    // before the command runs, naming it.
    let open = TempDir::new().unwrap();
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let file = open.path().join("st.prom");
    let out = tool(
        home.path(),
        &[
            "run",
            "--metrics",
            file.to_str().unwrap(),
            "--",
            "touch",
            "ran",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no sticky bit") && err.contains(&open.path().display().to_string()),
        "{err}"
    );
    assert!(!home.path().join("ran").exists(), "the command did not run");
}

#[test]
fn what_the_jobs_processes_leave_in_the_metrics_dir_cannot_hang_or_starve_run() {
    let home = TempDir::new().unwrap();
    let metrics = home.path().join("st.prom");
    // A FIFO and a 1 GiB sparse file among the counters files.
    let script = r#"mkfifo "$SIMPLETUNER_METRICS_DIR/fifo.json" &&
        truncate -s 1G "$SIMPLETUNER_METRICS_DIR/huge.json""#;
    let out = finish(
        tool(
            home.path(),
            &[
                "run",
                "--metrics",
                metrics.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                script,
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("fifo.json is not a regular file (it is a FIFO)"),
        "{err}"
    );
    assert!(
        err.contains("huge.json is 1073741824 bytes, above the limit"),
        "{err}"
    );
    assert!(fs::read_to_string(&metrics)
        .unwrap()
        .contains("# TYPE st_secrets_"));
}

#[test]
fn the_warning_that_files_go_to_disk_is_said_once_a_run() {
    // No memory-backed directory: /dev/shm replaced, in a private mount
    // namespace, by a directory anyone may write to (refused as a base).
    let home = TempDir::new().unwrap();
    let open = TempDir::new().unwrap();
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let tmp = TempDir::new().unwrap();
    let script = format!(
        "mount --bind '{}' /dev/shm && exec \"$@\"",
        open.path().display()
    );
    let metrics = home.path().join("st.prom");
    let run = tool(home.path(), &[]);
    let mut unshare = Command::new("unshare");
    unshare
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
            TOOL,
        ])
        .args(["run", "--file", "TOK=st://HF_TOKEN", "--metrics"])
        .arg(&metrics)
        .args(["--", "sh", "-c", "test -s \"$TOK\""])
        .env_clear()
        .envs(run.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TMPDIR", tmp.path())
        .env("HF_TOKEN", "hf_disk_warning_value")
        .current_dir(home.path())
        .stdin(Stdio::null());
    let out = unshare.output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("no memory-backed directory").count(),
        1,
        "{err}"
    );
}

/// One request to the endpoint at `addr`: `raw` sent, then the answer's
/// status line (empty when it was closed unanswered).
fn ask(addr: &str, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    text(&answer).lines().next().unwrap_or("").to_owned()
}

/// `run --aws-credentials` of a command that sleeps, with `ulimit -n`
/// `files`: the running `run`, the endpoint's address and a request with
/// the job's token (one that answers 200 already).
fn endpoint(home: &Path, files: u32) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let script = format!(
        "ulimit -n {files} && exec '{TOOL}' run --aws-credentials -- sh -c \
         'echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"; \
          sleep 60'"
    );
    let mut run = Command::new("sh");
    run.args(["-c", &script])
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "AKIAENDPOINTTEST0001")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "endpoint-test-secret-key-value-0001",
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = run.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (uri, token_file) = line.trim().split_once(' ').unwrap();
    let addr = uri
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let token = fs::read_to_string(token_file).unwrap();
    let good = format!(
        "GET /st-secrets/aws-credentials HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n"
    );
    assert!(ask(&addr, good.as_bytes()).contains(" 200 "));
    (child, addr, good)
}

#[test]
fn the_aws_credentials_endpoint_answers_the_job_whatever_other_users_send() {
    use std::io::Write;
    let home = TempDir::new().unwrap();
    // A low descriptor limit, so that held connections exhaust it.
    let (mut child, addr, good) = endpoint(home.path(), 64);
    // (0) a body of 10^15 bytes declared, without the token: refused, and
    // `run` lives on.
    let huge =
        b"POST /st-secrets/aws-credentials HTTP/1.1\r\nContent-Length: 1000000000000000\r\n\r\n";
    assert!(ask(&addr, huge).contains(" 403 "));
    // (b) a header line without a line break: refused past 16 KiB.
    let mut long = b"GET /st-secrets/aws-credentials HTTP/1.1\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 400 << 10));
    assert!(ask(&addr, &long).contains(" 431 "));
    // (c) idle connections, one declaring a 1 GB body, others sending half
    // a request, and (a) enough of them to use every descriptor `run` has:
    // the job's own request still answers once they are gone, and while
    // some are held.
    let mut held = Vec::new();
    for i in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = match i % 2 {
                0 => s.write_all(
                    b"PUT /st-secrets/aws-credentials HTTP/1.1\r\nContent-Length: 1000000000\r\n",
                ),
                _ => s.write_all(b"GET /st-secrets/aws-cre"),
            };
            held.push(s);
        }
    }
    held.truncate(20);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        ask(&addr, good.as_bytes()).contains(" 200 "),
        "while 20 are held"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(ask(&addr, good.as_bytes()).contains(" 200 "), "after them");
    assert!(child.try_wait().unwrap().is_none(), "run is still running");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

#[test]
fn the_aws_credentials_endpoint_answers_the_job_under_300_trickling_connections() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let home = TempDir::new().unwrap();
    let (mut child, addr, good) = endpoint(home.path(), 1024);
    // Another user's 300 connections, each sending a byte of a request
    // head now and then and opening again once closed: every thread the
    // endpoint has is held by one.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let trickler = {
        let (addr, stop) = (addr.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let open = || std::net::TcpStream::connect(&addr).ok();
            let mut conns: Vec<_> = (0..300).filter_map(|_| open()).collect();
            while !stop.load(Ordering::Relaxed) {
                for c in conns.iter_mut() {
                    if c.write_all(b"G").is_err() {
                        if let Some(again) = open() {
                            *c = again;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let answered = (0..10)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(100));
            ask(&addr, good.as_bytes()).contains(" 200 ")
        })
        .count();
    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    assert_eq!(answered, 10, "the job's own requests answered");
    assert!(child.try_wait().unwrap().is_none(), "run is still running");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}
