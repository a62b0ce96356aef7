//! A loopback HTTP/1.1 server for tests of what no real server here can do:
//! fault injection (hangs, dropped connections, garbage, 5xx, throttling) and
//! endpoints of cloud hosts (container credentials, instance metadata, STS
//! web identity). Each request goes to a handler; the server keeps them all,
//! for tests to look at what was sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server does with a request.
pub enum Reply {
    /// An answer with this status, extra headers and body.
    Status(u16, Vec<(String, String)>, Vec<u8>),
    /// Closes the connection without answering.
    Drop,
    /// Writes these bytes and closes the connection.
    Raw(Vec<u8>),
    /// Waits, then replies.
    After(Duration, Box<Reply>),
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Status(
            status,
            vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            body.into().into_bytes(),
        )
    }

    /// A text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::Status(status, vec![], body.into().into_bytes())
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The requests a server received, in order.
type Log = crate::sys::Mutex<Vec<Request>>;

/// The server; it runs until the test process ends.
pub struct FakeServer {
    port: u16,
    log: Arc<Log>,
}

impl FakeServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port. A Vault
    /// client's `auth/token/lookup-self` is answered by the server itself
    /// and not logged ([`start_seeing_all`](Self::start_seeing_all) hands
    /// it to `handler` too).
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
        Self::serving(handler, true)
    }

    /// [`start`](Self::start), with every request, lookups included, logged
    /// and handed to `handler`.
    pub fn start_seeing_all(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        Self::serving(handler, false)
    }

    fn serving(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
        answer_lookups: bool,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Log::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let l = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, l) = (Arc::clone(&handler), Arc::clone(&l));
                std::thread::spawn(move || serve(stream, &*h, &l, answer_lookups));
            }
        });
        FakeServer { port, log }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.log.lock().len()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Request> {
        self.log.lock().clone()
    }

    /// The request received last.
    pub fn last(&self) -> Option<Request> {
        self.log.lock().last().cloned()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Log, answer_lookups: bool) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        // A Vault client asks its token's TTL once per token: answered here,
        // not logged, so the tests see the requests they are about (a token
        // that never expires: nothing to renew). The renewal itself is
        // tested against OpenBao.
        if answer_lookups && request.path == "/v1/auth/token/lookup-self" {
            let body = br#"{"data": {"ttl": 0, "renewable": false}}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body).is_err() {
                return;
            }
            continue;
        }
        log.lock().push(request.clone());
        let mut reply = handler(&request);
        loop {
            match reply {
                Reply::After(d, next) => {
                    std::thread::sleep(d);
                    reply = *next;
                }
                Reply::Drop => return,
                Reply::Raw(bytes) => {
                    let _ = writer.write_all(&bytes);
                    return;
                }
                Reply::Status(status, headers, body) => {
                    let mut head =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if writer.write_all(head.as_bytes()).is_err()
                        || writer.write_all(&body).is_err()
                    {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}
