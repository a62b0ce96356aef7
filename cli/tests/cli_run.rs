//! The tool's commands for shell launchers (`run`, `env`, `inject`), its
//! command line (help, version, misplaced options, completions) and its
//! prompt at a real pseudo-terminal, run as a launcher would run them.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const TOOL: &str = env!("CARGO_BIN_EXE_st-secrets");

/// Values with everything a quoting layer can get wrong.
const TRICKY: &str = "it's \"$HOME\" `id` \\n \\ back\\slash\nsecond line\ttab ü €";

/// A home holding a secrets file with `HF_TOKEN`, a tricky value, a nested
/// value and a one-byte value.
fn home() -> TempDir {
    let home = TempDir::new().unwrap();
    let dir = home.path().join(".simpletuner");
    fs::create_dir_all(&dir).unwrap();
    let doc = serde_json::json!({
        "HF_TOKEN": "hf_run_SECRET_0123456789",
        "tricky-value": TRICKY,
        "NESTED": {"a": "b"},
        "DEBUG": "1",
    });
    let path = dir.join("secrets.json");
    fs::write(&path, doc.to_string()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    home
}

/// The tool with `args`, HOME set to `home` and nothing else of ours in its
/// environment.
fn tool(home: &TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(TOOL);
    c.args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(home.path());
    c
}

fn output(home: &TempDir, args: &[&str]) -> Output {
    tool(home, args).stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_injects_the_secrets_and_masks_them_in_the_output() {
    let home = home();
    let script = r#"
        printf 'token=%s\n' "$HF_TOKEN"
        printf '%s' "$HF_TOKEN" | head -c 7; sleep 0.2; printf '%s\n' "$HF_TOKEN" | tail -c +8
        printf 'err:%s\n' "$HF_TOKEN" >&2
        printf 'debug=%s tricky=%s\n' "$DEBUG" "$TRICKY_VALUE"
        printf 'nested=[%s]\n' "${NESTED-unset}"
        exit 7
    "#;
    let o = output(&home, &["run", "--", "sh", "-c", script]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("token=<concealed by st-secrets>"));
    assert_eq!(
        lines.next(),
        Some("<concealed by st-secrets>"),
        "split across two writes 200 ms apart: {out}"
    );
    assert_eq!(
        lines.next(),
        Some("debug=1 tricky=<concealed by st-secrets>")
    );
    assert_eq!(
        lines.next(),
        Some("nested=[unset]"),
        "not a secret: not injected"
    );
    assert!(!out.contains("SECRET_0123"));
    assert_eq!(text(&o.stderr), "err:<concealed by st-secrets>\n");

    // --no-mask: the command's output is its own.
    let o = output(
        &home,
        &[
            "run",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "printf %s \"$HF_TOKEN\"",
        ],
    );
    assert_eq!(
        (o.status.code(), text(&o.stdout).as_str()),
        (Some(0), "hf_run_SECRET_0123456789")
    );

    // --only: the listed keys and nothing else (the environment stays).
    let o = tool(
        &home,
        &[
            "run",
            "--only",
            "hf-token",
            "--",
            "sh",
            "-c",
            "echo \"${TRICKY_VALUE-none} $KEEP\"",
        ],
    )
    .env("KEEP", "kept")
    .output()
    .unwrap();
    assert_eq!(text(&o.stdout), "none kept\n");
}

#[test]
fn run_passes_binary_output_through_untouched() {
    let home = home();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = home.path().join("blob.bin");
    fs::write(&file, &data).unwrap();
    let o = output(&home, &["run", "--", "cat", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout == data,
        "3 MB of binary output come through byte for byte"
    );
}

#[test]
fn run_exit_statuses_follow_the_command() {
    let home = home();
    let status = |args: &[&str]| output(&home, args).status.code();
    assert_eq!(status(&["run", "--", "true"]), Some(0));
    assert_eq!(status(&["run", "--", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(
        status(&["run", "--", "sh", "-c", "kill -TERM $$"]),
        Some(128 + 15)
    );
    assert_eq!(
        status(&["run", "--no-mask", "--", "sh", "-c", "kill -KILL $$"]),
        Some(128 + 9)
    );
    assert_eq!(status(&["run", "--", "/nonexistent/command"]), Some(127));
    assert_eq!(
        status(&["run", "--", home.path().to_str().unwrap()]),
        Some(126)
    );

    // A key that cannot be resolved fails before the command starts, naming
    // the key and where it looked.
    let marker = home.path().join("started");
    let o = output(
        &home,
        &[
            "run",
            "--only",
            "HF_TOKEN,MISSING_KEY",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("'MISSING_KEY' was not found (looked in: env, file)"),
        "{}",
        text(&o.stderr)
    );
    assert!(!marker.exists(), "the command never started");
    let o = output(&home, &["run", "--only", "NESTED", "--", "true"]);
    assert!(
        text(&o.stderr).contains("not a secret"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(output(&home, &["run"]).status.code(), Some(2), "no command");
    assert_eq!(
        output(&home, &["run", "--only", "A", "--all", "--", "true"])
            .status
            .code(),
        Some(2)
    );
}

/// `command` with SIGINT, SIGQUIT and SIGHUP at their defaults, as a
/// launcher in the foreground has them: a test runner started in the
/// background of a script (CI) ignores the first two, one started under
/// `nohup` the third; the tool and its command would inherit that, and a
/// shell cannot trap a signal ignored on entry.
fn in_foreground(command: &mut Command) -> &mut Command {
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        })
    }
}

/// Starts `command` [`in_foreground`] with its stdout piped, and waits for
/// the first line it prints: the child, the rest of its stdout, the line.
fn start_in_foreground(
    command: &mut Command,
) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = in_foreground(command)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, out, line)
}

/// Starts `run` on a shell script that traps INT and TERM, and waits for it
/// to say it is ready.
fn trapping_child(home: &TempDir) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = r#"
        trap 'echo "got INT"; exit 3' INT
        trap 'echo "got TERM"; exit 4' TERM
        echo ready
        while :; do sleep 0.05; done
    "#;
    let (child, out, line) =
        start_in_foreground(&mut tool(home, &["run", "--", "sh", "-c", script]));
    assert_eq!(line, "ready\n");
    (child, out)
}

#[test]
fn run_forwards_sigterm_and_sigint_to_the_command() {
    let home = home();
    for (signal, name, code) in [(libc::SIGTERM, "TERM", 4), (libc::SIGINT, "INT", 3)] {
        let (mut child, mut out) = trapping_child(&home);
        // SAFETY: a signal to the tool we started.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let status = exit_code(&mut child); // 10 s at most, then it fails
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, format!("got {name}\n"));
        assert_eq!(status, Some(code), "the command's status");
    }
}

#[test]
fn env_output_round_trips_through_sh() {
    let home = home();
    let o = output(&home, &["env"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let exported = text(&o.stdout);
    assert!(
        exported.contains("export HF_TOKEN='hf_run_SECRET_0123456789'\n"),
        "{exported}"
    );
    assert!(!exported.contains("NESTED"), "not a secret, not exported");
    let check = Command::new("sh")
        .args([
            "-c",
            "eval \"$1\"; printf '%s|%s|%s' \"$HF_TOKEN\" \"$TRICKY_VALUE\" \"$DEBUG\"",
            "sh",
            &exported,
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        text(&check.stdout),
        format!("hf_run_SECRET_0123456789|{TRICKY}|1")
    );

    let o = output(
        &home,
        &["env", "--format", "json", "--only", "tricky-value"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"schema": 1, "env": {"TRICKY_VALUE": TRICKY}})
    );
    let dotenv = text(&output(&home, &["env", "--format", "dotenv", "--only", "DEBUG"]).stdout);
    assert_eq!(dotenv, "DEBUG='1'\n");
    assert_eq!(
        output(&home, &["env", "--only", "MISSING"]).status.code(),
        Some(1)
    );
    assert_eq!(
        output(&home, &["env", "--format", "xml"]).status.code(),
        Some(2)
    );
}

#[test]
fn inject_fills_templates_and_writes_nothing_when_a_key_is_missing() {
    let home = home();
    let template = home.path().join("accelerate.tmpl.yaml");
    fs::write(
        &template,
        "hub_token: {{ st://HF_TOKEN }}\njinja: {{ not_ours }}\ndebug: {{st://debug}}\n",
    )
    .unwrap();
    let out = home.path().join("accelerate.yaml");
    let (t, o) = (template.to_str().unwrap(), out.to_str().unwrap());
    let r = output(&home, &["inject", "-i", t, "-o", o]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "hub_token: hf_run_SECRET_0123456789\njinja: {{ not_ours }}\ndebug: 1\n"
    );
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!text(&r.stderr).contains("SECRET"));

    // To stdout.
    let r = output(&home, &["inject", "--in", t]);
    assert!(text(&r.stdout).starts_with("hub_token: hf_run_SECRET"));

    // A missing key: exit 1, the existing output untouched, no temporary left.
    fs::write(
        &template,
        "a: {{ st://HF_TOKEN }}\nb: {{ st://NOPE_ONE }} {{ st://NOPE_TWO }}\n",
    )
    .unwrap();
    let before = fs::read(&out).unwrap();
    let r = output(&home, &["inject", "-i", t, "-o", o]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("NOPE_ONE") && err.contains("NOPE_TWO") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), before);
    let fresh = home.path().join("never.yaml");
    assert_eq!(
        output(&home, &["inject", "-i", t, "-o", fresh.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert!(!fresh.exists());
    let names: Vec<_> = fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.to_string_lossy().contains(".tmp.")),
        "{names:?}"
    );

    // An output that is a symlink is refused, not followed.
    fs::write(&template, "{{ st://HF_TOKEN }}").unwrap();
    let link = home.path().join("link.yaml");
    std::os::unix::fs::symlink("/tmp/st-secrets-inject-target", &link).unwrap();
    let r = output(&home, &["inject", "-i", t, "-o", link.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(3), "{}", text(&r.stderr));
    assert!(!std::path::Path::new("/tmp/st-secrets-inject-target").exists());
}

#[test]
fn every_command_has_its_own_help_and_misplaced_options_are_refused() {
    let home = home();
    let commands = [
        "run",
        "env",
        "inject",
        "get",
        "set",
        "delete",
        "providers",
        "doctor",
        "encrypt",
        "decrypt",
        "rotate",
        "config",
        "hardware",
        "credential",
        "audit",
        "completions",
        "version",
    ];
    for command in commands {
        for args in [vec![command, "--help"], vec!["help", command]] {
            let o = output(&home, &args);
            assert_eq!(o.status.code(), Some(0), "{args:?}");
            let help = text(&o.stdout);
            assert!(
                help.contains(&format!("Usage: st-secrets {command}")),
                "{args:?}: {help}"
            );
            assert!(
                !help.contains("Commands:\n  run"),
                "{args:?} prints only its own help"
            );
        }
    }
    for sub in [
        ["config", "merge"],
        ["credential", "set"],
        ["audit", "verify"],
    ] {
        let o = output(&home, &[sub[0], sub[1], "--help"]);
        assert!(text(&o.stdout).contains(&format!("Usage: st-secrets {} {}", sub[0], sub[1])));
    }
    let o = output(&home, &["--version"]);
    assert_eq!(
        (o.status.code(), text(&o.stdout)),
        (Some(0), format!("st-secrets {}\n", st_secrets::VERSION))
    );
    let o = output(&home, &[]);
    assert_eq!(o.status.code(), Some(2), "no arguments is a usage error");
    assert!(text(&o.stderr).contains("Usage: st-secrets"));
    for args in [
        &["get", "K", "--limit", "5", "--store"][..],
        &["get", "K", "--value", "v"],
        &["providers", "extra"],
        &["audit", "list", "--limit", "lots"],
        &["doctor", "--store"],
    ] {
        let o = output(&home, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn completions_load_in_bash() {
    let home = home();
    for shell in ["bash", "zsh", "fish"] {
        let o = output(&home, &["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(text(&o.stdout).contains("inject"), "{shell}");
    }
    let script = text(&output(&home, &["completions", "bash"]).stdout);
    let o = Command::new("bash")
        .args([
            "-c",
            "eval \"$1\" && complete -p st-secrets",
            "bash",
            &script,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("st-secrets"));
}

/// A pseudo-terminal: the tool gets the slave side as its controlling
/// terminal and stdin/stdout/stderr; the test reads and types on the master.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptors from openpty.
        unsafe {
            libc::fcntl(master, libc::F_SETFL, libc::O_NONBLOCK);
            Pty {
                master: OwnedFd::from_raw_fd(master),
                slave: OwnedFd::from_raw_fd(slave),
            }
        }
    }

    fn spawn(&self, mut command: Command) -> Child {
        let fd = |f: &OwnedFd| Stdio::from(f.try_clone().unwrap());
        command
            .stdin(fd(&self.slave))
            .stdout(fd(&self.slave))
            .stderr(fd(&self.slave));
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        command.spawn().unwrap()
    }

    /// Reads until the screen so far contains `what` (10 s at most),
    /// answering cursor-position queries as a terminal would.
    fn wait_for(&self, screen: &mut String, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut file = fs::File::from(self.master.try_clone().unwrap());
        while !screen.contains(what) {
            assert!(
                Instant::now() < deadline,
                "waited for {what:?}; screen: {screen:?}"
            );
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if chunk.contains("\x1b[6n") {
                        file.write_all(b"\x1b[1;1R").unwrap();
                    }
                    screen.push_str(&chunk);
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn typed(&self, bytes: &[u8]) {
        fs::File::from(self.master.try_clone().unwrap())
            .write_all(bytes)
            .unwrap();
    }

    /// (echo, canonical mode) of the terminal now.
    fn modes(&self) -> (bool, bool) {
        // SAFETY: tcgetattr fills the termios.
        let t = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.slave.as_raw_fd(), &mut t), 0);
            t
        };
        (t.c_lflag & libc::ECHO != 0, t.c_lflag & libc::ICANON != 0)
    }
}

/// Waits for `child` (10 s at most) and returns its exit code.
fn exit_code(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "the tool did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_prompt_hides_input_and_restores_the_terminal_after_ctrl_c() {
    let home = home();
    let secrets = home.path().join(".simpletuner/secrets.json");

    // Ctrl-C at the prompt: exit 130, nothing saved, echo back on.
    let pty = Pty::open();
    assert_eq!(pty.modes(), (true, true), "a new terminal echoes");
    let mut child = pty.spawn(tool(&home, &["set", "TYPED_KEY"]));
    let mut screen = String::new();
    pty.wait_for(&mut screen, "value (input hidden)");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        pty.modes(),
        (false, false),
        "while the prompt waits: no echo"
    );
    pty.typed(b"half-typ");
    pty.typed(b"\x03");
    assert_eq!(exit_code(&mut child), Some(130));
    assert_eq!(pty.modes(), (true, true), "Ctrl-C restored the terminal");
    assert!(!fs::read_to_string(&secrets).unwrap().contains("TYPED_KEY"));
    assert!(!screen.contains("half-typ"));

    // Enter: saved, the typed value never shown, echo back on.
    let pty = Pty::open();
    let mut child = pty.spawn(tool(&home, &["set", "TYPED_KEY"]));
    let mut screen = String::new();
    pty.wait_for(&mut screen, "value (input hidden)");
    pty.typed(b"typed-value-42\r");
    pty.wait_for(&mut screen, "saved 'TYPED_KEY'");
    assert_eq!(exit_code(&mut child), Some(0));
    assert_eq!(pty.modes(), (true, true));
    assert!(!screen.contains("typed-value-42"), "{screen:?}");
    assert_eq!(
        text(&output(&home, &["get", "TYPED_KEY"]).stdout),
        "typed-value-42"
    );
}

/// A home whose secrets file holds `doc`.
fn home_with(doc: serde_json::Value) -> TempDir {
    let home = TempDir::new().unwrap();
    let dir = home.path().join(".simpletuner");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secrets.json");
    fs::write(&path, doc.to_string()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    home
}

#[test]
fn a_provider_never_sets_loader_or_shell_variables_unless_named() {
    // Issue 24, finding 7: a secret named LD_PRELOAD or BASH_ENV in a store
    // was exported by `run` and `env`: `run -- bash -c true` sourced the
    // store owner's file.
    let home = home_with(serde_json::json!({
        "LD_PRELOAD": "/tmp/evil.so",
        "BASH_ENV": "/tmp/evil.sh",
        "IFS": "x",
        "PYTHONPATH": "/tmp/evil",
        "node-options": "--require /tmp/evil.js",
        "HF_TOKEN": "hf_ok",
    }));
    let o = output(
        &home,
        &["run", "--", "sh", "-c", "echo ${LD_PRELOAD-unset} ${BASH_ENV-unset} ${PYTHONPATH-unset} ${NODE_OPTIONS-unset} ${HF_TOKEN-unset}"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.starts_with("unset unset unset unset "), "{stdout}");
    let stderr = text(&o.stderr);
    for name in [
        "LD_PRELOAD",
        "BASH_ENV",
        "IFS",
        "PYTHONPATH",
        "NODE_OPTIONS",
    ] {
        assert!(
            stderr.contains(&format!("not setting {name}")),
            "{name}: {stderr}"
        );
    }
    assert!(!stderr.contains("evil"), "values never appear: {stderr}");
    let o = output(&home, &["env"]);
    let env = text(&o.stdout);
    assert!(
        env.contains("export HF_TOKEN=") && !env.contains("LD_PRELOAD"),
        "{env}"
    );
    // Named by the user, it is set.
    let o = output(&home, &["env", "--only", "LD_PRELOAD"]);
    assert_eq!(text(&o.stdout), "export LD_PRELOAD='/tmp/evil.so'\n");
}

#[test]
fn a_provider_never_sets_program_steering_variables_unless_named() {
    // A secret named GIT_EXTERNAL_DIFF made `run -- git diff` run it; the
    // same families: git's programs and paths, proxies, CA bundles,
    // package indexes, configuration locations.
    let names = [
        "GIT_EXTERNAL_DIFF",
        "GIT_PAGER",
        "GIT_DIR",
        "HTTPS_PROXY",
        "PIP_INDEX_URL",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "DOCKER_HOST",
        "KUBECONFIG",
        "AWS_CONFIG_FILE",
        "XDG_CONFIG_HOME",
        "ZDOTDIR",
    ];
    let mut doc = serde_json::json!({"HF_TOKEN": "hf_ok"});
    for n in names {
        doc[n] = serde_json::json!("/tmp/evil-value");
    }
    let home = home_with(doc);
    let echo: Vec<String> = names.iter().map(|n| format!("${{{n}-unset}}")).collect();
    let o = output(
        &home,
        &[
            "run",
            "--",
            "sh",
            "-c",
            &format!("echo {} ${{HF_TOKEN-unset}}", echo.join(" ")),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.starts_with(&"unset ".repeat(names.len())),
        "{stdout}"
    );
    let stderr = text(&o.stderr);
    for n in names {
        assert!(
            stderr.contains(&format!("not setting {n}")),
            "{n}: {stderr}"
        );
    }
    assert!(!stderr.contains("evil"), "values never appear: {stderr}");
    let o = output(&home, &["env", "--only", "GIT_EXTERNAL_DIFF"]);
    assert_eq!(
        text(&o.stdout),
        "export GIT_EXTERNAL_DIFF='/tmp/evil-value'\n"
    );
}

#[test]
fn colliding_keys_follow_one_rule_everywhere_and_are_named() {
    // Issue 24, finding 8: `get A_B` answered one key's value, `env` and
    // `run` exported another's, silently.
    let home = home_with(
        serde_json::json!({"A-B": "dash", "a.b": "dot", "A_B": "exact", "c-d": "x", "C.D": "y"}),
    );
    let get = |key: &str| text(&output(&home, &["get", key]).stdout);
    assert_eq!(get("A_B"), "exact");
    assert_eq!(get("A-B"), "dash", "a key as given wins");
    assert_eq!(get("a-b"), "exact", "else the name's own spelling");
    assert_eq!(
        get("C_D"),
        "y",
        "no exact spelling: the first in byte order ('C.D' < 'c-d')"
    );
    let o = output(&home, &["env"]);
    let env = text(&o.stdout);
    assert!(
        env.contains("export A_B='exact'\n") && env.contains("export C_D='y'\n"),
        "{env}"
    );
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("'A-B', 'A_B', 'a.b'") && stderr.contains("value of 'A_B'"),
        "{stderr}"
    );
    assert!(stderr.contains("value of 'C.D'"), "{stderr}");
    let o = output(
        &home,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "test \"$A_B $C_D\" = 'exact y' && echo same",
        ],
    );
    assert_eq!(text(&o.stdout), "same\n");
}

#[test]
fn key_names_with_terminal_escapes_are_printed_escaped() {
    let home = home_with(serde_json::json!({"\u{1b}]0;pwned\u{7}\u{1b}[2J": "v", "OK": "1"}));
    let o = output(&home, &["env"]);
    let stderr = text(&o.stderr);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
    assert!(stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{stderr}");
    assert_eq!(text(&o.stdout), "export OK='1'\n");
}

#[test]
fn env_and_inject_are_linear() {
    // Issue 24, finding 9: `inject` rescanned the template to its end for
    // each unterminated reference (1 MB: 13 s) and `env` compared every key
    // with every other (40,000 keys: 9 s). Sizes where quadratic work takes
    // minutes; linear work takes well under a second.
    let keys: serde_json::Map<String, serde_json::Value> = (0..40_000)
        .map(|i| (format!("KEY_{i}"), serde_json::Value::from(format!("v{i}"))))
        .collect();
    let home = home_with(serde_json::Value::Object(keys));
    let o = output(&home, &["env"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 40_000);
    let template = home.path().join("t.txt");
    fs::write(&template, "{{ st://".repeat(200_000)).unwrap();
    let o = output(&home, &["inject", "-i", template.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        o.stdout.len(),
        8 * 200_000,
        "unterminated references are text"
    );
    // A YAML template with 20,000 references: each place found and each
    // value checked in one pass over the document's strings.
    let yaml: String = (0..20_000)
        .map(|i| format!("k{i}: \"<{{{{ st://KEY_{i} }}}}>\"\n"))
        .collect();
    fs::write(home.path().join("t.yaml"), yaml).unwrap();
    let o = output(&home, &["inject", "-i", "t.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).ends_with("k19999: \"<v19999>\"\n"));
}

/// Values for the readers of `env`'s output: quotes, `$`, backslashes, line
/// breaks, `#`, leading and trailing spaces, non-ASCII, `=` and the empty
/// value. The first six have no line break (docker can carry them).
const READER_VALUES: [&str; 12] = [
    "plain_value_123",
    "  leading and trailing spaces  ",
    "hash # not a comment #x",
    "equals=in=value",
    "single ' double \" back ` dollar $HOME and ${HOME} \\ \\\\ \\n",
    "ünïcödé € 漢字 😂 \t tab",
    "",
    "two\nlines",
    "ends with newline\n",
    "crlf\r\nline",
    "'quoted at both ends'",
    "\"double at both ends\"",
];

/// A home whose secrets file holds `READER_VALUES` as `V00`..`V11`.
fn readers_home(values: &[&str]) -> TempDir {
    let home = TempDir::new().unwrap();
    let dir = home.path().join(".simpletuner");
    fs::create_dir_all(&dir).unwrap();
    let doc: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i:02}"), (*v).into()))
        .collect();
    let path = dir.join("secrets.json");
    fs::write(&path, serde_json::Value::Object(doc).to_string()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    home
}

/// A shell on PATH, if this machine has it.
fn shell(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn env_sh_output_round_trips_through_every_shell_here() {
    let home = readers_home(&READER_VALUES);
    let o = output(&home, &["env", "--format", "sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let exported = text(&o.stdout);
    let mut print = String::from("eval \"$1\"; ");
    for i in 0..READER_VALUES.len() {
        print.push_str(&format!("printf '%s\\0' \"$V{i:02}\"; "));
    }
    let mut shells = 0;
    for name in ["sh", "dash", "bash", "zsh", "ksh", "mksh", "busybox"] {
        let Some(path) = shell(name) else { continue };
        let mut c = Command::new(&path);
        if name == "busybox" {
            c.arg("sh");
        }
        if name == "zsh" {
            // zsh's own mode differs only in word splitting; eval the
            // output as a zsh user would, in zsh's defaults.
            c.args(["-f"]);
        }
        let got = c
            .args(["-c", &print, name, &exported])
            .env_clear()
            .output()
            .unwrap();
        assert!(got.status.success(), "{name}: {}", text(&got.stderr));
        let values: Vec<String> = text(&got.stdout).split('\0').map(str::to_owned).collect();
        assert_eq!(
            &values[..READER_VALUES.len()],
            &READER_VALUES.map(str::to_owned)[..],
            "{name}"
        );
        shells += 1;
    }
    assert!(shells >= 2, "sh and bash at least");
}

/// `docker run --env-file`'s reader (docker/cli `opts/envfile.go`, its
/// rules as documented and as its code reads lines): one line at a time
/// (a final `\r` dropped), leading whitespace trimmed, blank lines and `#`
/// lines skipped, split at the first `=`, the value taken literally; a
/// name with whitespace is an error; a line over 64 KiB fails the read.
fn docker_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.len() > 64 * 1024 {
            return Err("bufio.Scanner: token too long".into());
        }
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or("no value")?;
        if name.contains(char::is_whitespace) {
            return Err(format!("variable '{name}' contains whitespaces"));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

#[test]
fn env_docker_output_is_what_dockers_reader_reads_or_refused() {
    let one_line = &READER_VALUES[..7];
    let home = readers_home(one_line);
    let o = output(&home, &["env", "--format", "docker"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let read = docker_env_file(&text(&o.stdout)).unwrap();
    let want: Vec<(String, String)> = one_line
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i:02}"), (*v).to_owned()))
        .collect();
    assert_eq!(read, want);

    // A value docker would cut: refused, nothing written, the keys named
    // and never a value.
    let home = readers_home(&READER_VALUES);
    let o = output(&home, &["env", "--format", "docker"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    for key in ["V07 holds a line break", "V08", "V09"] {
        assert!(err.contains(key), "{err}");
    }
    assert!(!err.contains("two") && !err.contains("crlf"), "{err}");
    let long = "x".repeat(70_000);
    let home = readers_home(&[&long]);
    let o = output(&home, &["env", "--format", "docker"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("longer than docker reads"));
}

/// Values with every byte 0x01-0x7f (alone, inside, last) and a few
/// multi-byte characters, but no carriage return: what `env --format
/// dotenv` must write in a form its readers read back byte for byte.
fn dotenv_sweep() -> Vec<String> {
    let mut values = Vec::new();
    for c in (1u8..0x80).map(char::from).filter(|&c| c != '\r') {
        values.extend([c.to_string(), format!("a{c}b"), format!("x{c}")]);
    }
    values.extend(["ü", "€ 漢字", "😂\n😂", "", " ", "#", "a\\", "'", "\""].map(String::from));
    values
}

#[test]
fn env_dotenv_output_reads_back_the_same_in_dotenvy_or_is_refused() {
    // Issue 43, item 2 (python-dotenv's half is in the Python suite).
    let values = dotenv_sweep();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let home = readers_home(&refs);
    let o = output(&home, &["env", "--format", "dotenv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let read: Vec<(String, String)> = dotenvy::from_read_iter(&o.stdout[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let mut want: Vec<(String, String)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i:02}"), v.clone()))
        .collect();
    let mut read_sorted = read.clone();
    read_sorted.sort();
    want.sort();
    assert_eq!(read_sorted, want);

    // What neither form carries: refused by key, nothing written, no value.
    for (value, why) in [
        ("crlf\r\nline", "carriage return"),
        ("a${HOME}b", "expands"),
        ("it's $5", "'$' with a quote"),
        ("c:\\$x", "'$' with a quote or a backslash"),
    ] {
        let home = readers_home(&["fine", value]);
        let o = output(&home, &["env", "--format", "dotenv"]);
        assert_eq!(o.status.code(), Some(3), "{value:?}");
        assert!(o.stdout.is_empty());
        let err = text(&o.stderr);
        assert!(
            err.contains("V01") && err.contains(why) && !err.contains("V00"),
            "{err}"
        );
        assert!(!err.contains(value) && !err.contains("fine"), "{err}");
    }
}

#[test]
fn reference_keys_with_terminal_escapes_are_printed_escaped() {
    // Issue 43, item 13: `NAME=st://KEY` with escapes in KEY reached the
    // terminal raw through "not found" messages.
    let home = readers_home(&["x"]);
    let env_file = home.path().join("e.env");
    fs::write(&env_file, "A=st://K\x1b[31mRED\nB=st://\x1b]0;title\x07X\n").unwrap();
    let template = home.path().join("t.txt");
    fs::write(&template, "x {{ st://K\x1b[31mX }}\n").unwrap();
    let env_path = env_file.to_str().unwrap();
    let template_path = template.to_str().unwrap();
    for args in [
        &["run", "--env-file", env_path, "--", "true"][..],
        &["env", "--env-file", env_path][..],
        &["inject", "-i", template_path][..],
    ] {
        let o = output(&home, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains("\\u{1b}") && !err.contains('\x1b') && !err.contains('\x07'),
            "{err:?}"
        );
    }
}

#[test]
fn inject_bounds_yaml_aliases_and_refuses_repeated_json_keys() {
    // Issue 43, item 14: a 115 KB YAML template expanding through aliases
    // took 1.9 GB; a JSON key filled from a reference could repeat another.
    let home = readers_home(&["admin"]);
    let mut bomb = format!("big: &b \"{}\"\n", "x".repeat(64 << 10));
    for i in 0..10_000 {
        bomb.push_str(&format!("k{i}: *b\n"));
    }
    bomb.push_str("token: \"{{ st://V00 }}\"\n");
    let template = home.path().join("t.yaml");
    fs::write(&template, &bomb).unwrap();
    let o = output(&home, &["inject", "-i", template.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("aliases"), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());

    let template = home.path().join("t.json");
    fs::write(&template, "{\"admin\": 1, \"{{ st://V00 }}\": 2}\n").unwrap();
    let o = output(&home, &["inject", "-i", template.to_str().unwrap()]);
    assert!(o.stdout.is_empty() && o.status.code() != Some(0));
    let err = text(&o.stderr);
    assert!(
        err.contains("a key twice in one object") && err.contains("line 1"),
        "{err}"
    );
    // Distinct keys are fine.
    fs::write(&template, "{\"role\": 1, \"{{ st://V00 }}\": 2}\n").unwrap();
    let o = output(&home, &["inject", "-i", template.to_str().unwrap()]);
    assert_eq!(
        text(&o.stdout),
        "{\"role\": 1, \"admin\": 2}\n",
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn inject_into_yaml_and_json_keeps_the_documents_shape() {
    let home = readers_home(&READER_VALUES);
    let n = READER_VALUES.len();
    let mut yaml = String::from("# accelerate-style config\nplain:\n");
    for i in 0..n {
        yaml.push_str(&format!("  v{i:02}: {{{{ st://V{i:02} }}}}\n"));
    }
    yaml.push_str("double:\n");
    for i in 0..n {
        yaml.push_str(&format!("  v{i:02}: \"<{{{{ st://V{i:02} }}}}>\"\n"));
    }
    yaml.push_str("single:\n");
    for i in 0..7 {
        yaml.push_str(&format!("  v{i:02}: '<{{{{ st://V{i:02} }}}}>'\n"));
    }
    yaml.push_str("flow: [{{ st://V02 }}, {{ st://V03 }}]\n");
    fs::write(home.path().join("t.yaml"), &yaml).unwrap();
    let o = output(&home, &["inject", "-i", "t.yaml", "-o", "out.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: yaml_serde::Value =
        yaml_serde::from_str(&fs::read_to_string(home.path().join("out.yaml")).unwrap()).unwrap();
    for (i, v) in READER_VALUES.iter().enumerate() {
        let k = format!("v{i:02}");
        assert_eq!(doc["plain"][&k], *v, "plain {k}");
        assert_eq!(doc["double"][&k], format!("<{v}>").as_str(), "double {k}");
        if i < 7 {
            assert_eq!(doc["single"][&k], format!("<{v}>").as_str(), "single {k}");
        }
    }
    assert_eq!(doc["flow"][0], READER_VALUES[2]);
    assert_eq!(doc["flow"][1], READER_VALUES[3]);

    // A line break in single quotes, or structure inside an unquoted value:
    // refused, nothing written, the key named and never the value.
    for (template, key) in [
        ("k: 'x{{ st://V07 }}'\n", "V07"),
        ("url: https://{{ st://V02 }}/x\n", "V02"),
    ] {
        fs::write(home.path().join("bad.yaml"), template).unwrap();
        let o = output(&home, &["inject", "-i", "bad.yaml", "-o", "bad.out.yaml"]);
        assert_eq!(o.status.code(), Some(3), "{template}");
        let err = text(&o.stderr);
        assert!(
            err.contains(key) && !err.contains("lines") && !err.contains("comment #"),
            "{err}"
        );
        assert!(!home.path().join("bad.out.yaml").exists());
    }

    // JSON: every value inside strings; a number outside quotes.
    let mut json = String::from("{");
    for i in 0..n {
        json.push_str(&format!("\"v{i:02}\": \"{{{{ st://V{i:02} }}}}\", "));
    }
    json.push_str("\"port\": {{ st://PORT }}}");
    fs::write(home.path().join("t.json"), &json).unwrap();
    let o = tool(&home, &["inject", "-i", "t.json"])
        .env("PORT", "8080")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (i, v) in READER_VALUES.iter().enumerate() {
        assert_eq!(doc[format!("v{i:02}")], *v);
    }
    assert_eq!(doc["port"], 8080);
    // --format text keeps the old behaviour: values as they are.
    let o = output(&home, &["inject", "-i", "t.json", "--format", "text"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_err());
}

/// Writes `text` to `name` in `home`; its path as a string.
fn write_in(home: &TempDir, name: &str, text: &str) -> String {
    let path = home.path().join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn env_files_map_names_to_secrets_and_only_they_are_set() {
    let home = home();
    let envfile = write_in(
        &home,
        "train.env",
        "# the trainer reads WANDB_API_KEY\nexport WANDB_API_KEY=st://hf-token\n\n\
         PROJECT=sdxl-run # not a secret\nQUOTED=\"st://tricky-value\"\n",
    );
    let script = r#"printf '%s|%s|%s|%s\n' "$WANDB_API_KEY" "$PROJECT" "${HF_TOKEN-unset}" "${DEBUG-unset}"
        printf '%s' "$QUOTED" > quoted.out"#;
    let o = output(
        &home,
        &["run", "--env-file", &envfile, "--", "sh", "-c", script],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The reference's value is masked; the literal is not a secret; the
    // chain's other keys are not set without --all.
    assert_eq!(
        text(&o.stdout),
        "<concealed by st-secrets>|sdxl-run|unset|unset\n"
    );
    assert_eq!(
        fs::read_to_string(home.path().join("quoted.out")).unwrap(),
        TRICKY
    );

    // --all adds the chain; a later file wins over an earlier one and over
    // the chain.
    let later = write_in(&home, "later.env", "PROJECT=override\nDEBUG=from-file\n");
    let o = output(
        &home,
        &[
            "run",
            "--all",
            "--env-file",
            &envfile,
            "--env-file",
            &later,
            "--no-mask",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s' "$PROJECT" "$HF_TOKEN" "$DEBUG""#,
        ],
    );
    assert_eq!(
        (o.status.code(), text(&o.stdout).as_str()),
        (Some(0), "override|hf_run_SECRET_0123456789|from-file")
    );

    // env prints the same variables.
    let o = output(&home, &["env", "--env-file", &envfile, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["env"],
        serde_json::json!({"WANDB_API_KEY": "hf_run_SECRET_0123456789",
                           "PROJECT": "sdxl-run", "QUOTED": TRICKY})
    );
}

#[test]
fn an_unresolved_reference_fails_before_the_command_naming_its_line() {
    let home = home();
    let envfile = write_in(
        &home,
        "bad.env",
        "HF_TOKEN=st://HF_TOKEN\nLITERAL=s3cr3t-literal\n\nMISSING=st://no-such-key\nALSO=st://nor-this\n",
    );
    for args in [
        vec![
            "run",
            "--env-file",
            &envfile,
            "--",
            "sh",
            "-c",
            "touch started",
        ],
        vec!["env", "--env-file", &envfile],
    ] {
        let o = output(&home, &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "{envfile}:4: MISSING=st://no-such-key: secret 'no-such-key' was not found"
            )) && err.contains(&format!("{envfile}:5: ALSO=st://nor-this")),
            "{err}"
        );
        assert!(
            !err.contains("s3cr3t") && !err.contains("SECRET_0123") && o.stdout.is_empty(),
            "{err}"
        );
    }
    assert!(
        !home.path().join("started").exists(),
        "the command never started"
    );

    // A line that is not NAME=value, named by number and never quoted.
    let broken = write_in(&home, "broken.env", "A=1\nnot a line with s3cr3t\n");
    let o = output(&home, &["env", "--env-file", &broken]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("ST_PARSE: {broken}:2: not a NAME=value line")),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "{err}");
    // Not a file at all.
    let o = output(&home, &["env", "--env-file", home.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

/// `run --file NETRC=st://HF_TOKEN` on `script` (which gets the path in
/// $NETRC and prints it first); the child, and the reader of its stdout.
fn run_with_file(
    home: &TempDir,
    script: &str,
    extra_env: &[(&str, &str)],
) -> (
    Child,
    BufReader<std::process::ChildStdout>,
    std::path::PathBuf,
) {
    let mut command = tool(
        home,
        &[
            "run",
            "--file",
            "NETRC=st://HF_TOKEN",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    command.envs(extra_env.iter().copied());
    let (child, out, line) = start_in_foreground(&mut command);
    let path = std::path::PathBuf::from(line.trim_end());
    assert!(path.is_absolute(), "{line:?}");
    (child, out, path)
}

#[test]
fn secret_files_are_private_and_gone_whichever_way_the_command_ends() {
    let home = home();
    // The file: the value, 0600, in a 0700 directory on tmpfs (/dev/shm
    // here: the test's environment has no XDG_RUNTIME_DIR); masked when
    // the command prints it.
    let script = r#"echo "$NETRC"; cat "$NETRC"; echo; stat -c %a "$NETRC" "$(dirname "$NETRC")"; stat -f -c %T "$NETRC""#;
    let (mut child, mut out, path) = run_with_file(&home, script, &[]);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(exit_code(&mut child), Some(0));
    assert_eq!(rest, "<concealed by st-secrets>\n600\n700\ntmpfs\n");
    assert!(path.starts_with("/dev/shm"), "{}", path.display());
    assert!(path.file_name().unwrap() == "NETRC");
    assert!(
        !path.parent().unwrap().exists(),
        "removed with its directory"
    );

    // $XDG_RUNTIME_DIR comes first when it is private and memory-backed;
    // one writable by others is passed over.
    let runtime = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    let (mut child, _, path) = run_with_file(
        &home,
        "echo \"$NETRC\"",
        &[("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap())],
    );
    assert_eq!(exit_code(&mut child), Some(0));
    assert!(path.starts_with(runtime.path()), "{}", path.display());
    fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let (mut child, _, path) = run_with_file(
        &home,
        "echo \"$NETRC\"",
        &[("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap())],
    );
    assert_eq!(exit_code(&mut child), Some(0));
    assert!(!path.starts_with(runtime.path()), "{}", path.display());
    assert_eq!(
        fs::read_dir(runtime.path()).unwrap().count(),
        0,
        "nothing left in it"
    );

    // The command fails, dies of a signal itself, or the tool is sent
    // SIGTERM, SIGINT or SIGHUP (forwarded, the command dies of it): the
    // file and its directory are gone every time.
    for (how, script, signal, code) in [
        ("exit 9", "echo \"$NETRC\"; exit 9", None, 9),
        (
            "killed",
            "echo \"$NETRC\"; kill -KILL $$",
            None,
            128 + libc::SIGKILL,
        ),
        (
            "SIGTERM",
            "echo \"$NETRC\"; exec sleep 30",
            Some(libc::SIGTERM),
            128 + libc::SIGTERM,
        ),
        (
            "SIGINT",
            "echo \"$NETRC\"; exec sleep 30",
            Some(libc::SIGINT),
            128 + libc::SIGINT,
        ),
        (
            "SIGHUP",
            "echo \"$NETRC\"; exec sleep 30",
            Some(libc::SIGHUP),
            128 + libc::SIGHUP,
        ),
    ] {
        let (mut child, _, path) = run_with_file(&home, script, &[]);
        if let Some(signal) = signal {
            assert!(
                path.exists(),
                "{how}: the file is there while the command runs"
            );
            // SAFETY: a signal to the tool we started.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
        assert_eq!(exit_code(&mut child), Some(code), "{how}");
        assert!(
            !path.exists() && !path.parent().unwrap().exists(),
            "{how}: left {}",
            path.display()
        );
    }

    // Round 4, item 3: every other signal that would end the tool left
    // the directory (and the secret file) behind and the command running.
    // Each is passed on: the command dies of it, the files go.
    for signal in [
        libc::SIGALRM,
        libc::SIGABRT,
        libc::SIGXCPU,
        libc::SIGPWR,
        libc::SIGTRAP,
        libc::SIGSYS,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
    ] {
        let how = format!("signal {signal}");
        let (mut child, _, path) = run_with_file(&home, "echo \"$NETRC\"; exec sleep 30", &[]);
        assert!(
            path.exists(),
            "{how}: the file is there while the command runs"
        );
        // SAFETY: a signal to the tool we started.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(exit_code(&mut child), Some(128 + signal), "{how}");
        assert!(
            !path.exists() && !path.parent().unwrap().exists(),
            "{how}: left {}",
            path.display()
        );
    }

    // A --file that is not NAME=st://KEY, or a missing key: nothing starts.
    for (spec, code) in [
        ("NETRC=HF_TOKEN", 2),
        ("1X=st://HF_TOKEN", 2),
        ("NETRC=st://absent", 1),
    ] {
        let o = output(
            &home,
            &["run", "--file", spec, "--", "sh", "-c", "touch started"],
        );
        assert_eq!(o.status.code(), Some(code), "{spec}: {}", text(&o.stderr));
    }
    assert!(!home.path().join("started").exists());
}

/// Runs `init` as PID 1 of a new PID namespace (with its own /proc), where
/// it starts a script that leaves an orphan which ends 0.2 s later; the
/// script then counts the zombies of the namespace and exits 7. Returns
/// (exit code, what the script printed), or None where PID namespaces are
/// not available to a non-root user.
fn as_pid1(home: &TempDir, init: &[&str]) -> Option<(Option<i32>, String)> {
    as_pid1_on(home, init, "")
}

/// [`as_pid1`], with `more` added to the end of the script, before `exit`.
fn as_pid1_on(home: &TempDir, init: &[&str], more: &str) -> Option<(Option<i32>, String)> {
    let script = format!(
        r#"( sleep 0.2 & ); sleep 1.5
        echo "zombies=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z ')"; {more} exit 7"#
    );
    let mut args = vec!["--pid", "--fork", "--mount-proc"];
    args.extend_from_slice(init);
    args.extend_from_slice(&["sh", "-c", &script]);
    let o = Command::new("unshare")
        .args(&args)
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // SAFETY: geteuid cannot fail.
    if !o.status.success() && o.status.code() != Some(7) && unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: no PID namespace for this user: {}",
            text(&o.stderr)
        );
        return None;
    }
    Some((o.status.code(), text(&o.stdout)))
}

#[test]
fn as_pid1_the_tool_reaps_orphans_and_exits_with_its_command() {
    let home = home();
    let Some(tool_run) = as_pid1(&home, &[TOOL, "run", "--only", "HF_TOKEN", "--"]) else {
        return;
    };
    assert_eq!(tool_run, (Some(7), "zombies=0\n".to_string()));
    // The control: an init that waits for its own child only (Python's
    // subprocess.call) leaves the orphan a zombie, so the count above is
    // a real one.
    let control = as_pid1(
        &home,
        &[
            "python3",
            "-c",
            "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
        ],
    );
    assert_eq!(control, Some((Some(7), "zombies=1\n".to_string())));
    // An orphan that keeps the output pipe open for a minute does not keep
    // the container up: the tool exits once its command has (after a 2 s
    // drain), and the orphan ends with the namespace.
    let started = Instant::now();
    let o = as_pid1_on(
        &home,
        &[TOOL, "run", "--only", "HF_TOKEN", "--"],
        "( exec sleep 60 & ); echo last line;",
    );
    assert_eq!(o, Some((Some(7), "zombies=0\nlast line\n".to_string())));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the orphan"
    );
}

#[test]
fn a_value_with_a_nul_byte_is_skipped_by_name_not_fatal() {
    // One such value stopped every `run` (exit 126, "nul byte found in
    // provided data", no key named) and `env` wrote the NUL raw.
    let home = home_with(serde_json::json!({"BAD": "a\u{0}b", "HF_TOKEN": "hf_ok"}));
    let o = output(
        &home,
        &[
            "run",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "echo ${HF_TOKEN-unset} ${BAD-unset}",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "hf_ok unset\n");
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("not setting BAD") && stderr.contains("NUL byte"),
        "{stderr}"
    );
    let o = output(&home, &["env"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!o.stdout.contains(&0) && !text(&o.stdout).contains("BAD"));
    // Named, it is refused by name; as a file it is delivered whole.
    let o = output(&home, &["env", "--only", "BAD"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("BAD") && text(&o.stderr).contains("NUL byte"));
    assert!(o.stdout.is_empty());
    let o = output(
        &home,
        &[
            "run",
            "--file",
            "BADF=st://BAD",
            "--",
            "sh",
            "-c",
            "wc -c < \"$BADF\"",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "3");
}

#[test]
fn run_file_watch_rewrites_the_file_on_a_rotation_never_half_written() {
    let home = home();
    // The child reads its file in a loop: every read is the old value or the
    // new one, whole; it says when it sees the new one, then prints it (the
    // output must conceal it: a rotated value joins the masked ones).
    let script = r#"
        echo "path $TOKEN_FILE"
        echo ready
        i=0
        while [ $i -lt 3000 ]; do
            v=$(cat "$TOKEN_FILE")
            case "$v" in
                hf_run_SECRET_0123456789) ;;
                hf_rotated_SECRET_9876543210) echo "saw the new value"; cat "$TOKEN_FILE"; echo; exit 0 ;;
                *) echo "torn read"; exit 3 ;;
            esac
            i=$((i + 1))
            sleep 0.02
        done
        exit 4
    "#;
    let mut child = tool(
        &home,
        &[
            "run",
            "--file",
            "TOKEN_FILE=st://HF_TOKEN",
            "--watch",
            "--",
            "sh",
            "-c",
            script,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let path = line.trim().strip_prefix("path ").unwrap().to_owned();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // Rotated by another process, written as this library writes (rename).
    let secrets = home.path().join(".simpletuner/secrets.json");
    let rotated = serde_json::json!({"HF_TOKEN": "hf_rotated_SECRET_9876543210"});
    let tmp = home.path().join(".simpletuner/.secrets.json.new");
    fs::write(&tmp, rotated.to_string()).unwrap();
    fs::rename(&tmp, &secrets).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{rest}\n{err}");
    assert!(rest.starts_with("saw the new value\n"), "{rest}");
    assert!(!rest.contains("hf_rotated_SECRET"), "masked: {rest}");
    assert!(
        err.contains("--file TOKEN_FILE: rewritten, secret 'HF_TOKEN' changed"),
        "{err}"
    );
    assert!(!err.contains("SECRET"), "{err}");
    assert!(
        !std::path::Path::new(&path).exists(),
        "the file goes at the end"
    );
    // --watch without --file is a usage error.
    let o = output(&home, &["run", "--watch", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn run_resolves_inherited_references_and_as_files_leaves_no_value_in_the_environment() {
    let home = home_with(serde_json::json!({
        "hf-token": "hf_ref_SECRET_0123456789",
        "WANDB_API_KEY": "wandb0123456789abcdef",
        "AWS_ACCESS_KEY_ID": "AKIAREFERENCETEST01",
        "AWS_SECRET_ACCESS_KEY": "aws/secret+REFERENCE0123",
        "DB_PASSWORD": "db_pass_0123456789",
    }));
    // Environment mode: the inherited reference becomes the value.
    let o = tool(
        &home,
        &[
            "run",
            "--no-mask",
            "--only",
            "DB_PASSWORD",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$HF_TOKEN\" \"$TOKEN2\"",
        ],
    )
    .env("HF_TOKEN", "st://hf-token")
    .env("TOKEN2", "st://DB_PASSWORD")
    .output()
    .unwrap();
    assert_eq!(
        (o.status.code(), text(&o.stdout).as_str()),
        (Some(0), "hf_ref_SECRET_0123456789|db_pass_0123456789"),
        "{}",
        text(&o.stderr)
    );
    // A reference nothing holds: refused before the command starts, named.
    let o = tool(
        &home,
        &[
            "run",
            "--only",
            "DB_PASSWORD",
            "--",
            "sh",
            "-c",
            "echo started",
        ],
    )
    .env("OTHER", "st://nowhere")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).is_empty());
    assert!(
        text(&o.stderr).contains("OTHER=st://nowhere"),
        "{}",
        text(&o.stderr)
    );

    // As files: paths only; each file holds what its reader expects.
    let script = r#"
        env > "$OUT/env"
        cat "$HF_TOKEN_PATH" > "$OUT/hf"; cat "$NETRC" > "$OUT/netrc"
        cat "$AWS_SHARED_CREDENTIALS_FILE" > "$OUT/aws"; cat "$DB_PASSWORD_FILE" > "$OUT/db"
        stat -c %a "$HF_TOKEN_PATH" > "$OUT/mode"; dirname "$NETRC" > "$OUT/dir"
    "#;
    let out = home.path().join("out");
    fs::create_dir(&out).unwrap();
    let o = tool(&home, &["run", "--as-files", "--", "sh", "-c", script])
        .env("HF_TOKEN", "st://hf-token")
        .env("OUT", &out)
        .env("AWS_PROFILE", "training")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let env = fs::read_to_string(out.join("env")).unwrap();
    for value in [
        "SECRET_0123",
        "wandb0123",
        "AKIAREF",
        "REFERENCE0123",
        "db_pass",
        "st://",
    ] {
        assert!(!env.contains(value), "{value} in the environment");
    }
    for var in [
        "HF_TOKEN_PATH=",
        "NETRC=",
        "AWS_SHARED_CREDENTIALS_FILE=",
        "DB_PASSWORD_FILE=",
    ] {
        assert!(env.lines().any(|l| l.starts_with(var)), "{var} missing");
    }
    let read = |name: &str| fs::read_to_string(out.join(name)).unwrap();
    assert_eq!(read("hf"), "hf_ref_SECRET_0123456789");
    assert_eq!(
        read("netrc"),
        "machine api.wandb.ai login user password wandb0123456789abcdef\n"
    );
    assert_eq!(
        read("aws"),
        "[training]\naws_access_key_id = AKIAREFERENCETEST01\naws_secret_access_key = aws/secret+REFERENCE0123\n"
    );
    assert_eq!(read("db"), "db_pass_0123456789");
    assert_eq!(read("mode").trim(), "600");
    assert!(
        !std::path::Path::new(read("dir").trim()).exists(),
        "removed when the command ended"
    );

    // A value a netrc cannot hold: refused before the command, named.
    let bad = home_with(serde_json::json!({"WANDB_API_KEY": "has a space"}));
    let o = tool(
        &bad,
        &["run", "--as-files", "--", "sh", "-c", "echo started"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("WANDB_API_KEY"));
    assert!(!text(&o.stderr).contains("has a space"));
}

#[test]
fn as_files_refuses_names_that_are_no_file_names_and_delivers_nul_values() {
    // Round 4, item 15: an inherited `../../x=st://KEY` wrote the value
    // outside the run's private directory, and left it there.
    let home = home_with(serde_json::json!({
        "DB_PASSWORD": "db_pass_0123456789",
        "BLOB": "bin\u{0}ary_0123456789",
    }));
    let escaped = std::path::Path::new("/dev/shm/st-secrets-test-escaped");
    let _ = fs::remove_file(escaped);
    let o = tool(
        &home,
        &[
            "run",
            "--as-files",
            "--only",
            "DB_PASSWORD",
            "--",
            "sh",
            "-c",
            "echo started",
        ],
    )
    .env("../st-secrets-test-escaped", "st://DB_PASSWORD")
    .output()
    .unwrap();
    let written = escaped.exists();
    let _ = fs::remove_file(escaped);
    assert!(
        !written,
        "the value was written outside the private directory"
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("started"));
    let err = text(&o.stderr);
    assert!(err.contains("../st-secrets-test-escaped"), "{err}");
    assert!(err.contains("plain file name"), "{err}");
    assert!(!err.contains("db_pass"), "{err}");

    // Item 16: a value holding a NUL byte goes to its file whole with
    // --as-files (--only, or every key); the environment still refuses it,
    // saying how to deliver it.
    let out = home.path().join("out");
    fs::create_dir(&out).unwrap();
    for selection in [&["--only", "BLOB"][..], &[]] {
        let mut args = vec!["run", "--as-files"];
        args.extend_from_slice(selection);
        args.extend_from_slice(&["--", "sh", "-c", "cat \"$BLOB_FILE\" > \"$OUT/blob\""]);
        let o = tool(&home, &args).env("OUT", &out).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert_eq!(fs::read(out.join("blob")).unwrap(), b"bin\0ary_0123456789");
        fs::remove_file(out.join("blob")).unwrap();
    }
    let o = output(&home, &["run", "--only", "BLOB", "--", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--as-files"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("ary_0123"));
}

#[test]
fn the_tool_writes_no_core_dump() {
    // Round 4, item 4: `st-secrets run` killed with a dumping signal wrote
    // a 5 MB core with HF_TOKEN's value in 3 places.
    use std::os::unix::process::CommandExt;
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim() != "core" {
        eprintln!("SKIPPED: core_pattern is {pattern:?}, not a file in the working directory");
        return;
    }
    let dumps = |dir: &std::path::Path| {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("core")
            })
            .count()
    };
    let start = |c: &mut Command, dir: &std::path::Path| {
        // SAFETY: setrlimit between fork and exec (async-signal-safe).
        unsafe {
            c.pre_exec(|| {
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
                Ok(())
            });
        }
        c.current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The control: a plain program dumps core here.
    let control = TempDir::new().unwrap();
    let mut sleeper = start(Command::new("sleep").arg("30"), control.path());
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: a signal to the child we started.
    unsafe { libc::kill(sleeper.id() as libc::pid_t, libc::SIGSEGV) };
    sleeper.wait().unwrap();
    if dumps(control.path()) == 0 {
        eprintln!("SKIPPED: this machine writes no core dump even for a plain program");
        return;
    }
    // The tool, holding the values (`redact` reads stdin until it ends),
    // killed by a dumping signal it does not catch.
    let home = home();
    let mut c = tool(&home, &["redact"]);
    c.stdin(Stdio::piped());
    let mut child = start(&mut c, home.path());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: a signal to the tool we started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGFPE) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGFPE)
    );
    assert_eq!(dumps(home.path()), 0, "the tool wrote a core dump");
}

#[test]
fn run_provenance_records_what_run_and_its_command_used_never_a_value() {
    let home = home();
    let record = home.path().join("provenance.jsonl");
    // The command is a process of the job: the tool's get in it appends to
    // the same record, under the job's salt.
    let script = format!(
        "test -s \"$SIMPLETUNER_PROVENANCE_SALT_FILE\" && echo \"$SIMPLETUNER_PROVENANCE_SALT_FILE\" && '{TOOL}' get HF_TOKEN >/dev/null"
    );
    let o = output(
        &home,
        &[
            "run",
            "--provenance",
            "provenance.jsonl",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let salt = text(&o.stdout).trim().to_owned();
    assert!(!Path::new(&salt).exists(), "the run's salt goes with it");
    let written = fs::read_to_string(&record).unwrap();
    assert_eq!(
        fs::metadata(&record).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!written.contains("hf_run_SECRET_0123456789"));
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hf: Vec<_> = lines.iter().filter(|l| l["key"] == "HF_TOKEN").collect();
    assert_eq!(
        hf.len(),
        2,
        "run's injection and the command's get: {written}"
    );
    assert_eq!(
        hf[0]["fingerprint"], hf[1]["fingerprint"],
        "one salt for the job"
    );
    assert_ne!(hf[0]["pid"], hf[1]["pid"]);
    assert_eq!(hf[0]["provider"], "file");
    assert!(hf[0]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    // The scan finds no value in the record.
    let o = output(&home, &["scan", record.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn runs_signalled_at_random_moments_end_with_a_status_and_leave_nothing() {
    // Round 5: of 150 runs signalled at a random moment, one left its
    // private directory and two ended with no exit status: threads started
    // before the signals were blocked took them, and died of them.
    let home = home();
    let runtime = tempfile::Builder::new()
        .prefix("st-signals.")
        .tempdir_in("/dev/shm")
        .unwrap();
    fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let metrics = home.path().join("st.prom");
    let signals = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
    let mut seed = std::process::id() as u64;
    let mut ended = Vec::new();
    for batch in 0..10 {
        let children: Vec<(Child, i32)> = (0..4)
            .map(|i| {
                let mut c = tool(
                    &home,
                    &["run", "--metrics", metrics.to_str().unwrap(), "--file"],
                );
                c.args(["TOK=st://HF_TOKEN", "--", "sleep", "5"])
                    .env("XDG_RUNTIME_DIR", runtime.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                // SAFETY: signal(2) between fork and exec: the dispositions
                // the test was started with (nohup) are not the run's.
                unsafe {
                    c.pre_exec(|| {
                        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                            libc::signal(sig, libc::SIG_DFL);
                        }
                        Ok(())
                    });
                }
                (c.spawn().unwrap(), signals[(batch + i) % 3])
            })
            .collect();
        for (mut child, sig) in children {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            std::thread::sleep(Duration::from_millis(50 + (seed >> 33) % 200));
            // SAFETY: kill(2) on a child this test started and has not reaped.
            unsafe { libc::kill(child.id() as i32, sig) };
            ended.push((sig, child.wait().unwrap()));
        }
    }
    let silent: Vec<_> = ended.iter().filter(|(_, s)| s.code().is_none()).collect();
    assert!(silent.is_empty(), "ended with no exit status: {silent:?}");
    let left: Vec<_> = fs::read_dir(runtime.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A Vault given an address but no way to log in (the identity login's
/// `SIMPLETUNER_VAULT_AUTH` forgotten) is named in a "not found", with why
/// and the setting to add; a chain with nothing of Vault set says nothing of it.
#[test]
fn a_not_found_names_a_vault_set_up_in_part_and_why() {
    let home = home();
    let o = tool(&home, &["get", "HF_TOKEN_ELSEWHERE"])
        .env("BAO_ADDR", "http://127.0.0.1:9")
        .env("SIMPLETUNER_VAULT_ROLE", "train")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("was not found (looked in: env, file)"),
        "{err}"
    );
    assert!(
        err.contains("vault is set up in part and not used"),
        "{err}"
    );
    assert!(err.contains("no way to authenticate"), "{err}");
    assert!(
        err.contains("SIMPLETUNER_VAULT_AUTH: kubernetes, jwt, cert, aws"),
        "{err}"
    );
    assert!(err.contains("a role is set"), "{err}");
    let o = output(&home, &["get", "HF_TOKEN_ELSEWHERE"]);
    let err = text(&o.stderr);
    assert!(!err.contains("vault"), "nothing of Vault is set: {err}");
}

#[test]
fn a_run_waiting_for_its_fleet_slot_ends_at_a_signal() {
    // Rank 90 of 100 nodes at one node a second: the first request waits
    // for its slot, then a store that does not answer is tried until the
    // fleet's deadline. A signal ends the wait, not the slot.
    let home = home();
    let config = home.path().join("config.json");
    let doc = serde_json::json!({
        "providers": ["file", "vault"],
        "vault_url": "http://127.0.0.1:1",
        "fleet_capacity": 1,
    });
    fs::write(&config, doc.to_string()).unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let runtime = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
        fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let mut child = tool(
            &home,
            &["--config", config.to_str().unwrap(), "run", "--", "true"],
        )
        .env("VAULT_TOKEN", "hvs.not-used")
        .env("SIMPLETUNER_FLEET_RANK", "90")
        .env("SIMPLETUNER_FLEET_NODES", "100")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(child.try_wait().unwrap().is_none(), "it waits for its slot");
        // SAFETY: a signal to the tool we started.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(exit_code(&mut child), Some(128 + signal), "signal {signal}");
        assert_eq!(
            fs::read_dir(runtime.path()).unwrap().count(),
            0,
            "signal {signal}: its ledger's directory is gone"
        );
    }
}
