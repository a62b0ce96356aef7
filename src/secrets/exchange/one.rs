//! One secret's exchange: the subject token read and checked, the request
//! sent to the one configured host, the answer's lifetime checked.

use super::profile::{ExchangeSettings, Profile};
use super::subject::{Mints, Subject};
use crate::error::shorten;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::{identity_file, oauth};
use crate::secrets::credential::{Credential, Issued, Issuer};
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::lifetime::Lifetime;
use crate::secrets::transport::http::{Http, Trust};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::{clock, Mutex};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far ahead of this host's clock a subject token's `nbf` or `iat` may
/// be (its issuer's clock and ours differ a little).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How much life a subject token must have left to be sent.
pub const MIN_SUBJECT_LEFT: Duration = Duration::from_secs(10);

/// One secret's exchange; see the module documentation.
pub struct Exchange {
    key: String,
    profile: Profile,
    settings: ExchangeSettings,
    subject: Subject,
    http: Http,
    remote: RemoteSettings,
    /// For an endpoint that takes each JWT once: the `jti`s sent (the
    /// last 64).
    sent: Mutex<Vec<String>>,
}

/// A credential an exchange gave, with when it ends.
pub struct Exchanged {
    /// The access token.
    pub token: SecretString,
    /// Its lifetime as the endpoint said it (`expires_in`).
    pub lifetime: Duration,
    /// When the subject token it was exchanged for ends.
    pub subject_expires: SystemTime,
}

impl std::fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanged")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// The exchange giving secret `key`, by `settings`, with `remote`'s
    /// timeouts and retries; `mints` makes the minters of subject tokens a
    /// service mints (Vault, GCP), `vars` the variables read. Nothing is
    /// sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]: an unknown profile, a field it needs
    /// missing or one it does not take, an endpoint that is not https (or
    /// http to this host), no subject token source or several.
    pub fn new(
        key: &str,
        settings: &ExchangeSettings,
        remote: &RemoteSettings,
        mints: &dyn Mints,
        vars: &Vars,
    ) -> Result<Exchange, Error> {
        let profile = Profile::parse(&settings.profile)?;
        profile.check(settings, key)?;
        let audience = settings
            .audience
            .clone()
            .or_else(|| profile.default_audience(settings));
        let subject = Subject::new(key, settings, audience.as_deref(), mints, remote, vars)?;
        Ok(Exchange {
            key: key.to_owned(),
            profile,
            settings: settings.clone(),
            subject,
            http: Http::new(remote, &Trust::Default, "SSL_CERT_FILE")?,
            remote: remote.clone(),
            sent: Mutex::new(Vec::new()),
        })
    }

    /// One exchange now, its retries included.
    ///
    /// # Errors
    /// The subject token's problem ([`Error::Io`], [`Error::Auth`]: missing,
    /// expired, not yet valid, for another audience, sent already); the
    /// endpoint's refusal ([`Error::Auth`]) or failure ([`Error::Remote`],
    /// [`Error::Network`], [`Error::Timeout`]); an answer without a
    /// lifetime or outliving the subject token ([`Error::Remote`]).
    pub fn exchange(&self) -> Result<Exchanged, Error> {
        self.once().map(|(e, _)| e).map_err(|f| f.error)
    }

    fn what(&self) -> String {
        format!("{} token exchange for '{}'", self.profile.name(), self.key)
    }

    /// The `Authorization` of a client authenticating with its secret
    /// (`client_secret_file`, read again for each exchange): HTTP Basic of
    /// the client's ID and secret, each form-encoded first (RFC 6749
    /// section 2.3.1).
    fn client_authorization(&self) -> Result<Option<SecretString>, FetchError> {
        use base64::Engine as _;
        let (Some(id), Some(file)) = (
            self.settings.client_id.as_deref(),
            self.settings.client_secret_file.as_deref(),
        ) else {
            return Ok(None);
        };
        let what = format!("{}: client secret file", self.what());
        let secret = crate::secrets::credential::identity_file::read_token(file, &what)
            .map_err(FetchError::permanent)?;
        // Reserved whole first: no growth leaves a copy of the secret behind.
        let mut pair = zeroize::Zeroizing::new(String::with_capacity(
            3 * (id.len() + secret.expose().len()) + 1,
        ));
        crate::secrets::transport::url::escape_into(&mut pair, id);
        pair.push(':');
        crate::secrets::transport::url::escape_into(&mut pair, secret.expose());
        let mut header = zeroize::Zeroizing::new(String::with_capacity(pair.len() * 4 / 3 + 16));
        header.push_str("Basic ");
        base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut header);
        Ok(Some(SecretString::from(header.as_str())))
    }

    /// One exchange, and when its request was sent (monotonic ns).
    fn once(&self) -> Result<(Exchanged, u64), FetchError> {
        let what = self.what();
        let (subject, claims) = self.subject()?;
        let subject_expires = UNIX_EPOCH + Duration::from_secs(claims.exp);
        let request = self.profile.request(&self.settings, &subject);
        let client = self.client_authorization()?;
        let headers: Vec<(&str, &str)> = std::iter::once(("content-type", request.content_type))
            .chain(request.headers.iter().copied())
            .chain(std::iter::once(("accept", "application/json")))
            .chain(client.as_ref().map(|c| ("authorization", c.expose())))
            .collect();
        let single = self.profile.single_use();
        let mut tried = false;
        let answer = with_retries(&self.remote, || {
            if single && tried {
                // Each JWT once: a retry would be refused; the next
                // exchange reads a fresh one.
                return Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: not sent again with the same subject token (the endpoint takes each \
                     once)"
                ))));
            }
            tried = true;
            let sent = clock::precise();
            let r = self.http.send(
                &what,
                "POST",
                &request.url,
                &headers,
                request.body.expose().as_bytes(),
            )?;
            if (300..400).contains(&r.status) {
                let to = r.header("location").map_or_else(String::new, redact_url);
                return Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: the endpoint redirects (HTTP {}) to '{}': not followed (the subject \
                     token goes to the configured host only)",
                    r.status,
                    shorten(&to)
                ))));
            }
            let (issued, said) = if self.profile.pair() {
                key_pair_answer(&what, r, sent)?
            } else {
                oauth::token_answer_saying(&what, r, sent)?
            };
            if said.filter(|s| *s > 0).is_none() {
                return Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: the answer says no lifetime (expires_in): a credential of unknown \
                     lifetime is not held"
                ))));
            }
            Ok((issued, sent))
        });
        if single {
            self.remember(&claims.jti);
        }
        let (issued, sent) = answer?;
        let lifetime = issued.lifetime.ttl();
        let left = subject_expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if lifetime > left + CLOCK_SKEW {
            return Err(FetchError::permanent(Error::Remote(format!(
                "{what}: the credential's lifetime ({} s) ends past the subject token's exp (in {} \
                 s): refused; give the subject token a lifetime of at least {} s",
                lifetime.as_secs(),
                left.as_secs(),
                lifetime.as_secs() + MIN_SUBJECT_LEFT.as_secs()
            ))));
        }
        Ok((
            Exchanged {
                token: issued.value,
                lifetime,
                subject_expires,
            },
            sent,
        ))
    }

    /// The audience a subject token must be for: the configuration's, else
    /// the profile's (`None`: not checked).
    fn audience(&self) -> Option<String> {
        self.settings
            .audience
            .clone()
            .or_else(|| self.profile.default_audience(&self.settings))
    }

    /// Remembers `jti` as sent (an endpoint that takes each JWT once).
    fn remember(&self, jti: &Option<String>) {
        if let Some(jti) = jti {
            let mut sent = self.sent.lock();
            if sent.len() >= 64 {
                sent.remove(0);
            }
            sent.push(jti.clone());
        }
    }

    /// A subject token now (read, or minted for this exchange), and its
    /// claims, checked.
    fn subject(&self) -> Result<(SecretString, Claims), FetchError> {
        let what = format!("the subject token of the exchange for '{}'", self.key);
        let wanted = self.audience();
        let text = self.subject.token(&what, wanted.as_deref())?;
        let claims = Claims::of(text.expose()).ok_or_else(|| {
            FetchError::permanent(Error::Parse(format!(
                "{what} ({}) is not a JWT with an exp",
                self.subject.describe()
            )))
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if claims.exp < now + MIN_SUBJECT_LEFT.as_secs() {
            // A file not yet rewritten by its issuer: the next try may find
            // a fresh one.
            return Err(FetchError::transient(Error::Auth(if claims.exp <= now {
                format!("{what} expired {} s ago", now - claims.exp)
            } else {
                format!("{what} ends in {} s: too soon to send", claims.exp - now)
            })));
        }
        if let Some(ahead) = claims.starts.filter(|s| *s > now + CLOCK_SKEW.as_secs()) {
            return Err(FetchError::permanent(Error::Auth(format!(
                "{what} is not valid yet: it starts {} s ahead of this host's clock (is the clock \
                 off?)",
                ahead - now
            ))));
        }
        if let Some(wanted) = wanted.as_deref() {
            if !claims.audiences.iter().any(|a| a == wanted) {
                return Err(FetchError::permanent(Error::Auth(format!(
                    "{what} is for audience {:?}, not '{}': its issuer must mint one for '{}' (a \
                     token minted for another service is never sent)",
                    claims
                        .audiences
                        .iter()
                        .map(|a| shorten(a))
                        .collect::<Vec<_>>(),
                    shorten(wanted),
                    shorten(wanted)
                ))));
            }
        }
        if self.profile.single_use() {
            let Some(jti) = &claims.jti else {
                return Err(FetchError::permanent(Error::Auth(format!(
                    "{what} has no jti, which the {} endpoint needs (it takes each token once)",
                    self.profile.name()
                ))));
            };
            if self.sent.lock().contains(jti) {
                return Err(FetchError::transient(Error::Auth(format!(
                    "{what} was sent already, and the {} endpoint takes each token once: its \
                     issuer has not written a fresh one yet",
                    self.profile.name()
                ))));
            }
        }
        Ok((text, claims))
    }
}

/// A key pair answer (CoreWeave's: `accessKeyId`, `secretKey`, `expiry`
/// in RFC 3339) as one credential, `{"id", "secret"}`, with the lifetime
/// its expiry leaves (`None` said when it gives none, or one already past).
fn key_pair_answer(
    what: &str,
    r: crate::secrets::transport::http::Response,
    sent: u64,
) -> Result<
    (
        crate::secrets::credential::Issued<SecretString>,
        Option<u64>,
    ),
    FetchError,
> {
    if r.status != 200 {
        return Err(oauth::oauth_failure(what, &r));
    }
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(format!(
            "{what}: the answer is not JSON"
        ))));
    };
    let text = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    let id = text(&doc["accessKeyId"]).or_else(|| text(&doc["accessKeyID"]));
    let secret = text(&doc["secretKey"]);
    let said = doc["expiry"]
        .as_str()
        .and_then(parse_timestamp)
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .map(|left| left.as_secs())
        .filter(|s| *s > 0);
    let out = match (id, secret) {
        (Some(mut id), Some(mut secret)) => {
            let mut pair = serde_json::json!({"id": id, "secret": secret});
            let value = SecretString::from(pair.to_string());
            crate::secrets::provider::zeroize_json(&mut pair);
            zeroize::Zeroize::zeroize(&mut id);
            zeroize::Zeroize::zeroize(&mut secret);
            Ok((
                crate::secrets::credential::Issued::token(
                    value,
                    said.map(Duration::from_secs),
                    sent,
                ),
                said,
            ))
        }
        _ => Err(FetchError::permanent(Error::Auth(format!(
            "{what}: the answer holds no accessKeyId and secretKey"
        )))),
    };
    crate::secrets::provider::zeroize_json(&mut doc);
    out
}

/// The access key ID and the secret key of a key pair credential
/// (an exchange answered with one), else `None`.
pub fn key_pair(token: &SecretString) -> Option<(SecretString, SecretString)> {
    let mut doc: Value = serde_json::from_str(token.expose()).ok()?;
    let pair = match (doc["id"].as_str(), doc["secret"].as_str()) {
        (Some(id), Some(secret)) => Some((SecretString::from(id), SecretString::from(secret))),
        _ => None,
    };
    crate::secrets::provider::zeroize_json(&mut doc);
    pair
}

/// An exchanged credential as its keeper holds it: replaced 72% to 80%
/// through its lifetime, at a point fixed per credential
/// ([`Lifetime::replace_at_spread`]), so that the nodes of a job that
/// exchanged together exchange again apart.
#[derive(Clone)]
pub struct Token(pub SecretString);

impl Credential for Token {
    fn to_json(&self) -> Value {
        self.0.to_json()
    }

    fn from_json(doc: &Value) -> Option<Self> {
        SecretString::from_json(doc).map(Token)
    }

    fn id(&self) -> &str {
        self.0.expose()
    }

    fn replace_at(lifetime: &Lifetime) -> Option<u64> {
        lifetime.replace_at_spread()
    }
}

impl Issuer<Token> for Exchange {
    fn issue(&self) -> Result<Issued<Token>, FetchError> {
        let (e, sent) = self.once()?;
        let issued = Issued::token(e.token, Some(e.lifetime), sent);
        Ok(Issued {
            value: Token(issued.value),
            lifetime: issued.lifetime,
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}, {})",
            self.what(),
            redact_url(&self.profile.endpoint(&self.settings)),
            self.subject.describe()
        )
    }
}

/// What an exchange reads of its subject token (unverified: the endpoint
/// verifies it; these only keep a token that would be refused from being
/// sent).
struct Claims {
    exp: u64,
    /// `nbf`, else `iat`.
    starts: Option<u64>,
    audiences: Vec<String>,
    jti: Option<String>,
}

impl Claims {
    fn of(token: &str) -> Option<Claims> {
        let doc = identity_file::jwt_claims(token)?;
        let audiences = identity_file::audiences(&doc);
        Some(Claims {
            exp: doc["exp"].as_u64()?,
            starts: doc["nbf"].as_u64().or_else(|| doc["iat"].as_u64()),
            audiences,
            jti: doc["jti"].as_str().map(str::to_owned),
        })
    }
}
