//! `run --aws-credentials`: the chain's AWS credentials served to the
//! command through the container-credentials protocol the AWS SDKs and CLI
//! speak (`AWS_CONTAINER_CREDENTIALS_FULL_URI` on 127.0.0.1, a per-job
//! token in `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), so the command's
//! SDK asks again before its credentials expire and gets the chain's
//! current ones: an assumed role, IAM Identity Center, a web identity, a
//! `credential_process`. A request without the token (or with another) is
//! refused with 403; the listener closes when `run` ends.
//!
//! The command's other credential sources are taken away so that every
//! SDK reaches the served ones: the key variables, `AWS_PROFILE`, web
//! identity and relative container URIs are removed, and its credentials
//! and config files are empty ones (the region is passed as `AWS_REGION`).

use crate::secretfiles::SecretDir;
use st_secrets::secrets::{AwsCredentialChain, AwsCredentials};
use st_secrets::{Error, SecretString};
use std::io::Read;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// The variables the command loses: every other way its SDK would find
/// credentials before the container endpoint.
const REMOVED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// The path the credentials are served at.
const PATH: &str = "/st-secrets/aws-credentials";

/// How long credentials without an expiry are announced for (the SDKs
/// require an `Expiration`): they ask again within it.
const STATIC_FOR: Duration = Duration::from_secs(900);

/// The running endpoint.
pub struct CredentialServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CredentialServer {
    /// Checks that the chain answers, listens on 127.0.0.1, writes the
    /// token to `dir`, and sets the command's environment.
    pub fn start(
        chain: AwsCredentialChain,
        dir: &SecretDir,
        command: &mut Command,
    ) -> Result<CredentialServer, Error> {
        chain
            .get()
            .map_err(|e| e.context("--aws-credentials: the AWS credential chain"))?;
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| {
            Error::Io(format!(
                "--aws-credentials: cannot listen on 127.0.0.1: {e}"
            ))
        })?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::Internal("the credentials endpoint has no port".into()))?;
        let token = new_token()?;
        let token_file = dir.write("aws-container-token", token.expose().as_bytes())?;
        let empty = dir.write("aws-empty", b"")?;
        for name in REMOVED {
            command.env_remove(name);
        }
        command
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://127.0.0.1:{port}{PATH}"),
            )
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .env("AWS_CONFIG_FILE", &empty);
        if let Some(region) = chain.region() {
            if std::env::var_os("AWS_REGION").is_none() {
                command.env("AWS_REGION", region);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("st-aws-credentials".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100))
                        else {
                            continue;
                        };
                        answer(request, &chain, &token);
                    }
                    // The server is dropped here: the listener closes.
                })
                .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?
        };
        Ok(CredentialServer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving: nothing listens after this returns.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CredentialServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A new token: 32 random bytes from the kernel, as hex.
fn new_token() -> Result<SecretString, Error> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::Io(format!("cannot read /dev/urandom: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    bytes.fill(0);
    Ok(SecretString::from(hex))
}

/// Whether `a` and `b` are equal, in time that does not depend on where
/// they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers one request: the credentials for a GET of the path with the
/// token, else 403 (no token, another token) or 404/405.
fn answer(request: tiny_http::Request, chain: &AwsCredentialChain, token: &SecretString) {
    let authorized = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .is_some_and(|h| same(h.value.as_bytes(), token.expose().as_bytes()));
    // The body is read from where it is (no copy of the credentials).
    let respond = |request: tiny_http::Request, status: u16, body: &[u8]| {
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
            .expect("a valid header");
        let _ = request.respond(tiny_http::Response::new(
            tiny_http::StatusCode(status),
            vec![header],
            std::io::Cursor::new(body),
            Some(body.len()),
            None,
        ));
    };
    if !authorized {
        respond(
            request,
            403,
            br#"{"Code":"AccessDenied","Message":"the token is missing or wrong"}"#,
        );
        return;
    }
    if request.url() != PATH {
        respond(
            request,
            404,
            br#"{"Code":"NotFound","Message":"no such path"}"#,
        );
        return;
    }
    if *request.method() != tiny_http::Method::Get {
        respond(
            request,
            405,
            br#"{"Code":"MethodNotAllowed","Message":"GET only"}"#,
        );
        return;
    }
    match chain.get() {
        Ok(c) => respond(request, 200, document(&c).expose().as_bytes()),
        Err(e) => {
            let body =
                serde_json::json!({"Code": "CredentialsUnavailable", "Message": e.to_string()});
            respond(request, 500, body.to_string().as_bytes());
        }
    }
}

/// The container-credentials document of `c` (no copy of a secret is
/// left outside the answer, which is zeroed when dropped).
fn document(c: &AwsCredentials) -> SecretString {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Doc<'a> {
        access_key_id: &'a str,
        secret_access_key: &'a str,
        /// Empty for keys without a session (botocore requires the field).
        token: &'a str,
        expiration: String,
    }
    let expires = c.expires.unwrap_or_else(|| SystemTime::now() + STATIC_FOR);
    let expiration = time::OffsetDateTime::from(expires)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let doc = Doc {
        access_key_id: &c.access_key_id,
        secret_access_key: c.secret_access_key.expose(),
        token: c.session_token.as_ref().map_or("", SecretString::expose),
        expiration,
    };
    SecretString::from(serde_json::to_string(&doc).unwrap_or_default())
}
