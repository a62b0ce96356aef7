//! Requests that make the server issue something: a login's token, a
//! leased credential. Such a request is sent once and read to the end.
//!
//! It is sent on a thread of its own that waits for the answer up to a
//! minute (connecting is still bounded by the connect timeout), while the
//! caller waits at most what its fetch has left. A caller that cannot wait
//! longer leaves the request in flight: the next attempt with the same
//! request joins it instead of sending another (a login sent again while
//! the first may still answer makes a second token) and takes its answer.
//! An answer nobody takes within a minute, and one still unanswered when
//! the provider is dropped (waited for up to the request timeout), has
//! what it issued revoked: the token with `auth/token/revoke-self`, the
//! lease with `sys/leases/revoke` and the token that asked for it. No
//! token or lease is left to its TTL because its caller gave up; one whose
//! request got no answer at all within the minute is the server's to end.

use super::client::Client;
use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::{patiently, Response};
use crate::secrets::transport::retry::time_left;
use crate::secrets::transport::{meter, FetchError};
use crate::sys::{Flight, Mutex};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request that issues something waits for its answer (at
/// least the request timeout).
const PATIENCE: Duration = Duration::from_secs(60);
/// How long an answer waits to be taken before what it issued is revoked.
const CLAIM: Duration = Duration::from_secs(60);

/// What a request issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Issues {
    /// A login's token (`auth.client_token`).
    Token,
    /// A leased credential (`lease_id`).
    Lease,
}

/// Where a request in flight is.
#[derive(Default)]
enum State {
    #[default]
    /// Sent, not answered.
    Waiting,
    /// Answered, the answer not taken.
    Answered(Result<Response, FetchError>),
    /// Taken by a caller, or what it issued revoked.
    Done,
}

/// One request in flight.
struct InFlight {
    /// The SHA-256 of the request: method, path, token and body.
    key: [u8; 32],
    issues: Issues,
    state: Mutex<State>,
    /// Completed when the answer came.
    answered: Flight<()>,
    /// Completed when the answer was taken, or is to be revoked now.
    wake: Flight<()>,
    /// Completed when its thread is done (what it issued revoked).
    finished: Flight<()>,
}

impl InFlight {
    /// The answer, if it came and nobody took it; it is then taken.
    fn take(&self) -> Option<Result<Response, FetchError>> {
        let mut state = self.state.lock();
        if !matches!(*state, State::Answered(_)) {
            return None;
        }
        let State::Answered(answer) = std::mem::replace(&mut *state, State::Done) else {
            return None;
        };
        self.wake.complete(());
        Some(answer)
    }

    fn done(&self) -> bool {
        matches!(*self.state.lock(), State::Done)
    }
}

/// The requests in flight of one provider (a forked child has none: their
/// threads are the parent's).
pub(super) struct Issuing {
    in_flight: Mutex<Vec<Arc<InFlight>>>,
    patience: Duration,
    request_timeout: Duration,
}

/// The SHA-256 of a request.
fn digest(method: &str, path: &str, token: Option<&SecretString>, body: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [
        method.as_bytes(),
        path.as_bytes(),
        token.map_or(&b""[..], |t| t.expose().as_bytes()),
        body,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

impl Issuing {
    /// With `request_timeout` as the least patience, and the wait for an
    /// unanswered request when the provider is dropped.
    pub(super) fn new(request_timeout: Duration) -> Issuing {
        Issuing {
            // A child has no request in flight, whether or not a thread
            // held the list at the fork: their threads are the parent's.
            in_flight: Mutex::with_fresh(Vec::new(), Vec::new).after_fork(Vec::clear),
            patience: PATIENCE.max(request_timeout),
            request_timeout,
        }
    }

    /// Sends `method path` with `token` and `body` through `client`, or
    /// joins the same request in flight, and waits for its answer at most
    /// what the caller's fetch has left.
    ///
    /// # Errors
    /// The request's own; [`Error::Timeout`] (transient) when no answer
    /// came in time: the request stays in flight.
    pub(super) fn send(
        &self,
        client: &Arc<Client>,
        (method, path): (&str, &str),
        token: Option<&SecretString>,
        body: &[u8],
        issues: Issues,
    ) -> Result<Response, FetchError> {
        let key = digest(method, path, token, body);
        let flight = {
            let mut all = self.in_flight.lock();
            all.retain(|f| !f.done());
            match all.iter().find(|f| f.key == key) {
                Some(f) => Arc::clone(f),
                None => {
                    let f = Arc::new(InFlight {
                        key,
                        issues,
                        state: Mutex::new(State::Waiting),
                        answered: Flight::new(),
                        wake: Flight::new(),
                        finished: Flight::new(),
                    });
                    let request = Request {
                        client: Arc::clone(client),
                        method: method.to_owned(),
                        path: path.to_owned(),
                        token: token.cloned(),
                        body: SecretBytes::from(body.to_vec()),
                    };
                    self.start(Arc::clone(&f), request);
                    all.push(Arc::clone(&f));
                    f
                }
            }
        };
        let began = Instant::now();
        let deadline = began + time_left().unwrap_or(self.patience);
        if flight.answered.wait_until(deadline).is_some() {
            if let Some(answer) = flight.take() {
                return answer;
            }
        }
        Err(FetchError::transient(Error::Timeout(format!(
            "Vault: {path} did not answer within the {:.1} s the fetch had left; the request \
             stays open, and its answer goes to the next attempt (or what it issued is revoked)",
            began.elapsed().as_secs_f64()
        ))))
    }

    /// Sends `request` on a thread of its own, which keeps its answer for a
    /// caller and revokes what it issued when none takes it.
    fn start(&self, flight: Arc<InFlight>, request: Request) {
        let patience = self.patience;
        let own = Arc::clone(&flight);
        let run = move || {
            let _counted = meter::scope("vault");
            let answer = patiently(patience, || request.send());
            *own.state.lock() = State::Answered(answer);
            own.answered.complete(());
            let _ = own.wake.wait_until(Instant::now() + CLAIM);
            if let Some(Ok(r)) = own.take() {
                request.revoke(own.issues, &r);
            }
            own.finished.complete(());
        };
        let spawned = std::thread::Builder::new()
            .name("st-secrets-issue".into())
            .spawn(run);
        if spawned.is_err() {
            // No thread to be had: nothing was sent; the caller may try again.
            *flight.state.lock() = State::Answered(Err(FetchError::transient(Error::Internal(
                "Vault: no thread could be started for a request that issues a token or a lease"
                    .into(),
            ))));
            flight.answered.complete(());
            flight.finished.complete(());
        }
    }

    /// The provider is dropped: each request still in flight is waited for
    /// up to the request timeout, and what an answer nobody took issued is
    /// revoked.
    pub(super) fn settle(&self) {
        let all: Vec<Arc<InFlight>> = self.in_flight.lock().drain(..).collect();
        let deadline = Instant::now() + self.request_timeout;
        for f in all {
            if f.answered.wait_until(deadline).is_some() {
                f.wake.complete(());
                let _ = f.finished.wait_until(deadline + self.request_timeout);
            }
        }
    }
}

/// A request in flight, as its thread sends it.
struct Request {
    client: Arc<Client>,
    method: String,
    path: String,
    token: Option<SecretString>,
    body: SecretBytes,
}

impl Request {
    fn send(&self) -> Result<Response, FetchError> {
        self.client.send(
            &self.method,
            &self.path,
            self.token.as_ref(),
            self.body.expose(),
        )
    }

    /// Revokes what answer `r` issued.
    fn revoke(&self, issues: Issues, r: &Response) {
        if !(200..300).contains(&r.status) {
            return;
        }
        let mut doc = r.json().unwrap_or_default();
        match issues {
            Issues::Token => {
                if let Some(t) = doc["auth"]["client_token"].as_str().map(SecretString::from) {
                    let done = self
                        .client
                        .send("POST", "auth/token/revoke-self", Some(&t), b"");
                    if done.is_ok_and(|r| r.status < 300) {
                        meter::add("vault", |c| c.tokens_revoked += 1);
                    }
                }
            }
            Issues::Lease => {
                if let Some(id) = doc["lease_id"].as_str().filter(|i| !i.is_empty()) {
                    let body = SecretString::from(json!({ "lease_id": id }).to_string());
                    let done = self.client.send(
                        "PUT",
                        "sys/leases/revoke",
                        self.token.as_ref(),
                        body.expose().as_bytes(),
                    );
                    if done.is_ok_and(|r| r.status < 300) {
                        meter::add("vault", |c| c.leases_revoked += 1);
                    }
                }
            }
        }
        zeroize_json(&mut doc);
    }
}

#[cfg(test)]
mod tests;
