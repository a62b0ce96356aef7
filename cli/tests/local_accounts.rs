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
