//! The node cache's entry files: what one fetch of one secret answered, and
//! until when it answers for every process of the node.
//!
//! One line of header, then the body:
//!
//! ```text
//! st-secrets-node 1 <boot id> <written ns> <until ns> <found|absent|failure> <body bytes> <sha256>\n<body>
//! ```
//!
//! Times are `CLOCK_MONOTONIC` nanoseconds of the boot named (the wall clock
//! is never read, so stepping it changes nothing); the SHA-256 covers the
//! header before it and the body, so a torn or altered file is refused, not
//! misread. The body of a found secret is a JSON object of its values,
//! skipped keys and version; of a failure, its error and whether it is
//! transient (messages never hold a secret); of an absent secret, nothing.

use crate::error::Error;
use crate::secret::SecretBytes;
use crate::secret::SecretString;
use crate::secrets::lifetime::Lifetime;
use crate::secrets::provider::{Lease, SecretMap, Version};
use crate::secrets::transport::{FetchError, Fetched};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The first word of every entry, and the format's version.
const MAGIC: &str = "st-secrets-node 1";

/// What an entry holds.
pub(crate) enum Held<T> {
    /// What a successful fetch answered (the secret, or that it is absent).
    Fetched(Fetched<T>),
    /// A failed fetch.
    Failure(FetchError),
}

/// An entry read back: what it holds and its times.
pub(crate) struct Entry<T> {
    pub(crate) held: Held<T>,
    /// When it was written (monotonic ns).
    pub(crate) written: u64,
    /// Until when it answers (monotonic ns).
    pub(crate) until: u64,
}

/// How a cached value is written into an entry and read back from it.
pub trait Shareable: Sized {
    /// The body of the entry of this value (zeroed when dropped).
    fn encode(&self) -> Option<SecretBytes>;
    /// The value of a body [`encode`](Self::encode) wrote.
    fn decode(body: &[u8]) -> Option<Self>;
    /// How long the value itself may be shared, when it says (a login's
    /// token, until it is due for renewal); `None`: the settings' TTL.
    fn ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// When the value itself asks to be fetched again, before its `ttl`
    /// ends (a lease due for renewal), in monotonic nanoseconds; `None`:
    /// as the settings' refresh ahead says.
    fn refresh_at(&self) -> Option<u64> {
        None
    }
}

#[derive(Serialize)]
struct BodyOut<'a> {
    values: BTreeMap<&'a str, &'a str>,
    skipped: &'a [String],
    version: Option<VersionOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseOut<'a>>,
}

#[derive(Serialize)]
struct LeaseOut<'a> {
    id: &'a str,
    ttl_ms: u64,
    start: u64,
    renewable: bool,
    /// The credential is the node's, not a process's (a token exchange's).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
}

#[derive(Deserialize)]
struct LeaseIn {
    id: String,
    ttl_ms: u64,
    start: u64,
    renewable: bool,
    #[serde(default)]
    shared: bool,
}

#[derive(Serialize)]
struct VersionOut<'a> {
    id: &'a str,
    stages: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    instead_of: Option<&'a str>,
}

#[derive(Deserialize)]
struct BodyIn {
    values: BTreeMap<String, String>,
    skipped: Vec<String>,
    version: Option<VersionIn>,
    #[serde(default)]
    lease: Option<LeaseIn>,
}

#[derive(Deserialize)]
struct VersionIn {
    id: String,
    stages: Vec<String>,
    #[serde(default)]
    instead_of: Option<String>,
}

impl Shareable for SecretMap {
    fn encode(&self) -> Option<SecretBytes> {
        let body = BodyOut {
            values: self.entries().map(|(k, v)| (k, v.expose())).collect(),
            skipped: self.skipped(),
            version: self.version().map(|v| VersionOut {
                id: &v.id,
                stages: &v.stages,
                instead_of: v.instead_of.as_deref(),
            }),
            lease: self.lease().map(|l| LeaseOut {
                id: l.id.expose(),
                ttl_ms: u64::try_from(l.lifetime.ttl().as_millis()).unwrap_or(u64::MAX),
                start: l.lifetime.start(),
                renewable: l.lifetime.renewable(),
                shared: self.version().is_some_and(|v| !v.leased),
            }),
        };
        let mut out = SecretBytes::with_capacity(256);
        serde_json::to_writer(&mut out, &body).ok()?;
        Some(out)
    }

    fn decode(body: &[u8]) -> Option<SecretMap> {
        let mut body: BodyIn = serde_json::from_slice(body).ok()?;
        let shared = body.lease.as_ref().is_some_and(|l| l.shared);
        let lease = body.lease.take().map(|l| Lease {
            id: SecretString::from(l.id),
            lifetime: Lifetime::since(
                l.start,
                std::time::Duration::from_millis(l.ttl_ms),
                l.renewable,
            ),
        });
        let mut map = SecretMap::with_capacity(body.values.len());
        for (key, value) in body.values {
            map.insert(key, value);
        }
        for key in body.skipped {
            map.skip(key);
        }
        let map = map.with_version(body.version.map(|v| Version {
            id: v.id,
            stages: v.stages,
            instead_of: v.instead_of,
            leased: false, // with_lease says
            ends: None,
        }));
        Some(if shared {
            map.with_shared_lease(lease)
        } else {
            map.with_lease(lease)
        })
    }

    /// A leased secret is shared until its lease ends...
    fn ttl(&self) -> Option<std::time::Duration> {
        self.lease().map(crate::secrets::provider::Lease::left)
    }

    /// ... and fetched again (renewed) from when its lifetime says.
    fn refresh_at(&self) -> Option<u64> {
        self.lease().map(|l| l.lifetime.renew_from())
    }
}

#[derive(Serialize, Deserialize)]
struct FailureBody {
    code: String,
    message: String,
    transient: bool,
}

/// The bytes of an entry holding `held`, written at `written` by boot
/// `boot`, answering until `until`; `None` when the value cannot be shared.
pub(crate) fn encode<T: Shareable>(
    boot: &str,
    written: u64,
    until: u64,
    held: &Held<T>,
) -> Option<SecretBytes> {
    let (kind, body) = match held {
        Held::Fetched(Fetched::Found(value)) => ("found", value.encode()?),
        Held::Fetched(Fetched::Absent) => ("absent", SecretBytes::with_capacity(0)),
        Held::Failure(f) => {
            let body = FailureBody {
                code: f.error.code_name().to_owned(),
                message: f.error.message().to_owned(),
                transient: f.transient,
            };
            (
                "failure",
                SecretBytes::from(serde_json::to_vec(&body).ok()?),
            )
        }
    };
    let head = format!("{MAGIC} {boot} {written} {until} {kind} {}", body.len());
    let sum = checksum(&head, body.expose());
    let mut out = SecretBytes::with_capacity(head.len() + 66 + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(format!(" {sum}\n").as_bytes());
    out.extend_from_slice(body.expose());
    Some(out)
}

/// The entry in `bytes`, when it is whole, of this format and of boot
/// `boot`; `None` for anything else (the caller then fetches).
pub(crate) fn decode<T: Shareable>(boot: &str, bytes: &[u8]) -> Option<Entry<T>> {
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..newline]).ok()?;
    let body = &bytes[newline + 1..];
    let rest = line.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [entry_boot, written, until, kind, len, sum] = fields[..] else {
        return None;
    };
    let head = &line[..line.len() - sum.len() - 1];
    if entry_boot != boot || len.parse::<usize>().ok()? != body.len() || checksum(head, body) != sum
    {
        return None;
    }
    let held = match kind {
        "found" => Held::Fetched(Fetched::Found(T::decode(body)?)),
        "absent" => Held::Fetched(Fetched::Absent),
        "failure" => {
            let f: FailureBody = serde_json::from_slice(body).ok()?;
            let error = Error::with_code_name(&f.code, f.message)?;
            Held::Failure(FetchError {
                error,
                transient: f.transient,
                retry_after: None,
                spent: false,
            })
        }
        _ => return None,
    };
    Some(Entry {
        held,
        written: written.parse().ok()?,
        until: until.parse().ok()?,
    })
}

fn checksum(head: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(head.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex(&h.finalize())
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
