//! The job token: a short-lived JWT a site signs for one job, whose claims
//! are the scheduler's record of the job (never the job's environment), so
//! that a store (OpenBao's `jwt` auth method, its policies templated on the
//! claims) or any other service can tell which job, user and account is
//! asking. RS256 with the site's RSA key (a root-only PEM file, 2048 bits or
//! more): what every JWT verifier takes, and signed by the `ring` the
//! library already builds. The public keys are published as a JWKS document
//! (RFC 7517), each named by its RFC 7638 thumbprint, beside an OpenID
//! discovery document naming it: during a key change both keys are listed,
//! the new one signing.
//!
//! The claims: `iss` (the site's issuer), `sub` (`job/CLUSTER/ID/RUN`, or
//! `job/CLUSTER/ID_TASK/RUN` for an array task: the job's run is the
//! principal, and a requeued run another), `aud`, `iat`, `nbf`, `exp` (at
//! most the lifetime asked for, never past the job's time limit), `jti`
//! (random), and `cluster`, `job_id`, `array_task_id`, `run`, `user`, `uid`,
//! `account`, `partition`, `qos`.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::{self, Readers};
use crate::secrets::credential::oauth;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest and the longest lifetime a token is minted for (a job
/// longer than the longest is given fresh ones).
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);
/// See [`MIN_LIFETIME`].
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The longest issuer, audience or claim text taken.
const MAX_TEXT: usize = 512;

/// The site's signing key; its [`kid`](Self::kid) is the thumbprint of its
/// public key. `Debug` shows the key ID only.
pub struct SigningKey {
    key: ring::signature::RsaKeyPair,
    kid: String,
    /// The public key's `n` and `e`, base64url.
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// The RSA private key in the PEM file `path` (PKCS #8 or PKCS #1),
    /// which must be this user's or root's and readable by nobody else.
    ///
    /// # Errors
    /// [`Error::Permission`]: a file group or others may read or write, or
    /// another user's; [`Error::Parse`]: no RSA key of 2048 bits or more;
    /// [`Error::ProviderUnavailable`] / [`Error::Io`]: missing, empty,
    /// unreadable. Never the key.
    pub fn load(path: &Path) -> Result<SigningKey, Error> {
        let what = "job token signing key";
        // Checked on the opened file: the identity-file rule (this user's
        // or root's, nobody else writes it), and nobody else reads it.
        let read = crate::fsutil::read_checked(path, what, identity_file::MAX_PEM, |meta| {
            identity_file::check_owner_and_mode(path, what, meta, Readers::Owner)?;
            if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o044 != 0 {
                return Err(Error::Permission(format!(
                    "{what} {} is readable by group or others: whoever reads it can mint any \
                     job's token (chmod 600)",
                    path.display()
                )));
            }
            Ok(())
        })?;
        let pem = crate::secret::SecretBytes::from(read.ok_or_else(|| {
            Error::ProviderUnavailable(format!("{what} {} does not exist", path.display()))
        })?);
        let bad = |why: &str| Error::Parse(format!("{what} {}: {why}", path.display()));
        let key = oauth::rsa_key_from_pem(pem.expose()).map_err(bad)?;
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
        let (n, e) = (b64(&public.n), b64(&public.e));
        // RFC 7638: the required members in lexicographic order, no spaces.
        let kid = b64(Sha256::digest(format!(
            r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#
        )));
        Ok(SigningKey { key, kid, n, e })
    }

    /// The key's ID: its RFC 7638 thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub fn public_jwk(&self) -> Value {
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e})
    }
}

/// The JWKS document of `keys` (RFC 7517), each once, in the order given.
pub fn jwks(keys: &[SigningKey]) -> Value {
    let mut listed: Vec<Value> = Vec::new();
    for k in keys {
        if !listed.iter().any(|j| j["kid"] == k.kid.as_str()) {
            listed.push(k.public_jwk());
        }
    }
    json!({ "keys": listed })
}

/// The OpenID discovery document of `issuer`
/// (`ISSUER/.well-known/openid-configuration`), naming its JWKS at
/// `ISSUER/.well-known/jwks.json`.
///
/// # Errors
/// [`Error::InvalidArgument`] for an issuer that is not an https URL (or
/// http on a loopback address) without query or fragment.
pub fn discovery(issuer: &str) -> Result<Value, Error> {
    checked_issuer_url(issuer)?;
    let base = issuer.trim_end_matches('/');
    Ok(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "cluster", "job_id",
                             "run", "array_task_id", "user", "uid", "account", "partition", "qos"],
    }))
}

fn checked_issuer_url(issuer: &str) -> Result<(), Error> {
    let uri: http::Uri = issuer
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("issuer '{}' is not a URL", shown(issuer))))?;
    let host = uri.host().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    let ok = match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => loopback,
        _ => false,
    };
    if !ok || uri.query().is_some() || issuer.contains('#') || issuer.contains('@') {
        return Err(Error::InvalidArgument(format!(
            "issuer '{}' must be an https URL (http only on a loopback address) with no user, \
             query or fragment: services fetch its keys there",
            shown(issuer)
        )));
    }
    Ok(())
}

/// At most 64 characters of `text` for a message (a claim is no secret,
/// but may be long).
fn shown(text: &str) -> String {
    crate::error::shorten(text)
}

/// What the scheduler records of a job: the token's claims. Never read
/// from the job's environment (its user may set any variable there).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// The cluster's name (Slurm's `ClusterName`).
    pub cluster: String,
    /// The job's ID (an array's own ID for an array task).
    pub job_id: u64,
    /// The array task's index, for a task of a job array.
    #[serde(default)]
    pub array_task_id: Option<u64>,
    /// The job's run: Slurm's restart count (0 for the first; a requeued
    /// job's next run is another principal, in `sub` too).
    #[serde(default)]
    pub run: u32,
    /// The job's user, by name and by uid.
    pub user: String,
    /// See [`user`](Self::user).
    pub uid: u32,
    /// The account the job is charged to.
    pub account: String,
    /// The partition it runs in.
    pub partition: String,
    /// Its quality of service (empty when the site has none).
    #[serde(default)]
    pub qos: String,
    /// When its time limit ends, Unix seconds (none: no limit).
    #[serde(default)]
    pub end: Option<u64>,
}

impl JobRecord {
    fn check(&self) -> Result<(), Error> {
        let named = [
            ("cluster", &self.cluster, true),
            ("user", &self.user, true),
            ("account", &self.account, true),
            ("partition", &self.partition, true),
            ("qos", &self.qos, false),
        ];
        for (name, value, required) in named {
            if (required && value.is_empty())
                || value.len() > MAX_TEXT
                || value
                    .chars()
                    .any(|c| c.is_control() || c == '/' || c.is_whitespace())
            {
                return Err(Error::InvalidArgument(format!(
                    "the job's {name} '{}' is {}: a name without spaces, '/' or control characters",
                    shown(value),
                    if value.is_empty() {
                        "missing"
                    } else {
                        "not a name"
                    }
                )));
            }
        }
        Ok(())
    }
}

/// A token minted for a job.
#[derive(Debug)]
pub struct Minted {
    /// The JWT (compact serialization).
    pub token: SecretString,
    /// When it ends (its `exp`).
    pub expires: SystemTime,
    /// Its `jti`, for the site's logs.
    pub jti: String,
}

/// A token for `job`, by `issuer` for `audience`, signed with `key`, issued
/// `now` and ending `lifetime` later (between [`MIN_LIFETIME`] and
/// [`MAX_LIFETIME`]) or at the job's time limit if that comes first.
///
/// # Errors
/// [`Error::InvalidArgument`]: an issuer that is not an https URL, an
/// empty or odd audience, a claim that is not a plain name, a lifetime out
/// of range, a job whose time limit has passed; [`Error::Internal`]: the
/// signature failed.
pub fn mint(
    key: &SigningKey,
    issuer: &str,
    audience: &str,
    job: &JobRecord,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Minted, Error> {
    checked_issuer_url(issuer)?;
    if audience.is_empty() || audience.len() > MAX_TEXT || audience.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "audience '{}' must be 1 to {MAX_TEXT} printable characters",
            shown(audience)
        )));
    }
    if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
        return Err(Error::InvalidArgument(format!(
            "a job token's lifetime must be {} to {} seconds (got {})",
            MIN_LIFETIME.as_secs(),
            MAX_LIFETIME.as_secs(),
            lifetime.as_secs()
        )));
    }
    job.check()?;
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Internal("the clock is before 1970".into()))?
        .as_secs();
    let exp = match job.end {
        Some(end) if end <= iat => {
            return Err(Error::InvalidArgument(format!(
                "job {}'s time limit ended {} s ago: no token",
                job.job_id,
                iat - end
            )))
        }
        Some(end) => end.min(iat + lifetime.as_secs()),
        None => iat + lifetime.as_secs(),
    };
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| Error::Internal("no random bytes for the token's jti".into()))?;
    let jti = b64(nonce);
    let sub = match job.array_task_id {
        Some(task) => format!("job/{}/{}_{task}/{}", job.cluster, job.job_id, job.run),
        None => format!("job/{}/{}/{}", job.cluster, job.job_id, job.run),
    };
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
    let claims = json!({
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": jti,
        "cluster": job.cluster,
        "job_id": job.job_id,
        "array_task_id": job.array_task_id,
        "run": job.run,
        "user": job.user,
        "uid": job.uid,
        "account": job.account,
        "partition": job.partition,
        "qos": job.qos,
    });
    let token = oauth::signed_jwt(
        &key.key,
        &ring::signature::RSA_PKCS1_SHA256,
        &header,
        &claims,
    )
    .ok_or_else(|| Error::Internal("the job token could not be signed".into()))?;
    Ok(Minted {
        token,
        expires: UNIX_EPOCH + Duration::from_secs(exp),
        jti,
    })
}

#[cfg(test)]
mod tests;
