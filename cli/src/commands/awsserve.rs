//! `run --aws-credentials`: the chain's AWS credentials served to the
//! command through the container-credentials protocol the AWS SDKs and CLI
//! speak (`AWS_CONTAINER_CREDENTIALS_FULL_URI` on 127.0.0.1, a per-job
//! token in `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), so the command's
//! SDK asks again before its credentials expire and gets the chain's
//! current ones: an assumed role, IAM Identity Center, a web identity, a
//! `credential_process`. A request without the token (or with another) is
//! refused with 403 before anything else of it is looked at; the listener
//! closes when `run` ends.
//!
//! The endpoint answers the job's SDKs whatever another local user does
//! to it: a request head is at most 16 KiB and must arrive within 5 s, no
//! body is ever read (GET only), each connection has its own thread (128 at
//! once; when all are busy, the connection that has waited longest for its
//! request head is closed to make room, so connections held open by others
//! never keep the job's own out), and an accept that fails for want of file
//! descriptors is tried again. It is std's listener with `httparse` parsing the head: tiny_http,
//! used before, read a declared body into memory whole (a Content-Length of
//! 10^15 aborted `run`), buffered a request line without bound, answered
//! every connection from one thread and ended its accept loop on EMFILE.
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                Error::Io(format!(
                    "--aws-credentials: cannot listen on 127.0.0.1: {e}"
                ))
            })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::Internal(format!("the credentials endpoint has no port: {e}")))?;
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
            let served = Arc::new(Served { chain, token });
            std::thread::Builder::new()
                .name("st-aws-credentials".into())
                .spawn(move || serve(&listener, &stop, &served))
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

/// What every connection answers from.
struct Served {
    chain: AwsCredentialChain,
    token: SecretString,
}

/// Connections answered at once; past it, the one waiting longest for its
/// request head is closed for each new one.
const AT_ONCE: usize = 128;
/// Threads at most, counting those whose connection was closed to make
/// room and have not yet ended.
const MOST_THREADS: usize = 2 * AT_ONCE;
/// The largest request head read (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// How long a connection has to send its whole request head.
const HEAD_TIME: Duration = Duration::from_secs(5);

/// Accepts connections until `stop`, each answered on a thread of its own
/// (at most [`AT_ONCE`]): one connection that never finishes its request
/// holds only its own thread. An accept that fails (no file descriptor
/// left: `EMFILE`) is tried again a moment later, never fatal.
fn serve(listener: &std::net::TcpListener, stop: &AtomicBool, served: &Arc<Served>) {
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let waiting = Arc::new(Waiting::default());
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) if busy.load(Ordering::Relaxed) < MOST_THREADS => {
                if busy.load(Ordering::Relaxed) >= AT_ONCE {
                    waiting.close_oldest();
                }
                next += 1;
                let id = next;
                if let Ok(copy) = stream.try_clone() {
                    waiting.add(id, copy);
                }
                busy.fetch_add(1, Ordering::Relaxed);
                let (mine, served, waits) =
                    (Arc::clone(&busy), Arc::clone(served), Arc::clone(&waiting));
                let spawned = std::thread::Builder::new()
                    .name("st-aws-credentials-conn".into())
                    .spawn(move || {
                        answer(stream, &served, || waits.remove(id));
                        mine.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    waiting.remove(id);
                    busy.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Ok((stream, _)) => drop(stream), // closed, the SDK retries
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    // The listener is dropped with the thread: nothing listens after.
}

/// The connections still waiting for their request head, oldest first:
/// what is closed to make room for a new one.
#[derive(Default)]
struct Waiting(std::sync::Mutex<std::collections::VecDeque<(u64, std::net::TcpStream)>>);

impl Waiting {
    fn add(&self, id: u64, stream: std::net::TcpStream) {
        if let Ok(mut w) = self.0.lock() {
            w.push_back((id, stream));
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut w) = self.0.lock() {
            w.retain(|(i, _)| *i != id);
        }
    }

    /// Closes the connection that has waited longest (its thread's read
    /// ends at once, unanswered).
    fn close_oldest(&self) {
        let oldest = self.0.lock().ok().and_then(|mut w| w.pop_front());
        if let Some((_, s)) = oldest {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Reads the request head of `stream`: at most [`MAX_HEAD`] bytes within
/// [`HEAD_TIME`]; no body is ever read. Else the status to answer: 431
/// for a head too large, 408 for one not whole in time (closed unanswered).
fn read_head(stream: &mut std::net::TcpStream) -> Result<Vec<u8>, u16> {
    use std::io::Read as _;
    let deadline = std::time::Instant::now() + HEAD_TIME;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(408);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(408),
            Ok(n) => n,
        };
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(431);
        }
    }
}

/// Answers one connection: the credentials for a GET of the path with the
/// token, else 403 (no token, another token: checked before anything
/// else), 404, 405, 400 or 431; then closes it. `headed` is told once the
/// head is read (the connection no longer one to close for room).
fn answer(mut stream: std::net::TcpStream, served: &Served, headed: impl FnOnce()) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(HEAD_TIME));
    let head = read_head(&mut stream);
    headed();
    let head = match head {
        Ok(head) => head,
        Err(431) => {
            return respond(
                &mut stream,
                431,
                br#"{"Code":"RequestHeaderFieldsTooLarge"}"#,
            )
        }
        Err(_) => return, // not whole in time: closed
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(&head), Ok(httparse::Status::Complete(_))) {
        return respond(&mut stream, 400, br#"{"Code":"BadRequest"}"#);
    }
    let authorized = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Authorization"))
        .is_some_and(|h| same(h.value, served.token.expose().as_bytes()));
    if !authorized {
        return respond(
            &mut stream,
            403,
            br#"{"Code":"AccessDenied","Message":"the token is missing or wrong"}"#,
        );
    }
    if request.path != Some(PATH) {
        return respond(
            &mut stream,
            404,
            br#"{"Code":"NotFound","Message":"no such path"}"#,
        );
    }
    if request.method != Some("GET") {
        return respond(
            &mut stream,
            405,
            br#"{"Code":"MethodNotAllowed","Message":"GET only"}"#,
        );
    }
    match served.chain.get() {
        Ok(c) => respond(&mut stream, 200, document(&c).expose().as_bytes()),
        Err(e) => {
            let body =
                serde_json::json!({"Code": "CredentialsUnavailable", "Message": e.to_string()});
            respond(&mut stream, 500, body.to_string().as_bytes());
        }
    }
}

/// Writes one answer (`Connection: close`); the body from where it is (no
/// copy of the credentials).
fn respond(stream: &mut std::net::TcpStream, status: u16, body: &[u8]) {
    use std::io::Write as _;
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
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
