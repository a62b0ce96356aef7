//! Bounds that must hold whatever a server answers: the `run` paths fed,
//! by a small loopback fake, answers no real server gives on demand (a TTL
//! of 2^64-1 seconds). The library's own bounds are tested beside its code.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::FakeHttp;
use std::process::{Command, Stdio};

const TOOL: &str = env!("CARGO_BIN_EXE_st-secrets");

/// A compact JWT (unsigned) with `claims`.
fn jwt(claims: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(claims))
}

#[test]
fn an_identity_token_ttl_of_2_64_is_clamped_not_a_panic() {
    for ttl in [u64::MAX.to_string(), (1u64 << 63).to_string()] {
        let token = jwt(r#"{"sub":"job","aud":"wandb","exp":4102444800}"#);
        let vault = FakeHttp::start(move |_, path, _| match path {
            "/v1/identity/oidc/token/wandb" => (
                200,
                format!(
                    r#"{{"data": {{"token": "{token}", "ttl": {ttl}, "client_id": "wandb"}}}}"#
                ),
            ),
            "/v1/auth/token/lookup-self" => {
                (200, r#"{"data": {"ttl": 0, "renewable": false}}"#.into())
            }
            _ => (404, r#"{"errors": []}"#.into()),
        });
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(TOOL)
            .args(["run", "--identity-token", "WANDB_FILE=wandb", "--"])
            .args(["sh", "-c", "test -s \"$WANDB_FILE\" && sleep 1"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("BAO_ADDR", &vault.url)
            .env("BAO_TOKEN", "fake-root-token")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("overflow"),
            "{err}"
        );
    }
}

#[test]
fn a_run_signalled_while_it_fetches_ends_with_a_status_and_leaves_nothing() {
    // A SIGTERM while `run` still fetches (before its command starts): it
    // killed `run` with no exit status and left its private directory.
    use std::os::unix::fs::PermissionsExt;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::Builder::new()
        .prefix("st-fetching.")
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = home.path().join("c.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"providers": ["vault"], "vault_url": "{url}", "vault_token": "t",
                 "request_timeout": 3, "retries": 0}}"#
        ),
    )
    .unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut run = Command::new(TOOL);
        run.arg("--config")
            .arg(&config)
            .args(["run", "--", "true"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: signal(2) between fork and exec (a test under nohup).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut run, move || {
                libc::signal(signal, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = run.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + signal), "{status:?}");
        let left: Vec<_> = std::fs::read_dir(runtime.path())
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
