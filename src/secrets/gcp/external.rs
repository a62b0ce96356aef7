//! Workload identity federation (`external_account` credentials files), as
//! Google's client libraries read them: a subject token from the workload's
//! own identity is exchanged at Google's STS (RFC 8693) for an access
//! token, then, with `service_account_impersonation_url`, for a service
//! account's token through IAM's `generateAccessToken`.
//!
//! The subject token comes from `credential_source`:
//! - `file`: read at each exchange (a Kubernetes projected token the
//!   kubelet swaps), refused when group or others may write it;
//! - `url`: a GET with the source's `headers`;
//! - `executable`: a program run as google-auth runs it, only with
//!   `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`, its command an absolute
//!   path that neither group nor others may write, its answer (version 1)
//!   kept in `output_file` when the source names one;
//!
//! each read as `format` says (`text`, or `json` with its
//! `subject_token_field_name`); or, from an AWS source (`environment_id`
//! `aws1`), a signed `GetCallerIdentity` request ([`super::aws_subject`]).

use super::aws_subject::AwsSubject;
use super::google::SCOPE;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::{self, Readers, MAX_TOKEN};
use crate::secrets::credential::oauth::{field, oauth_failure, optional, post_form, secure_url};
use crate::secrets::credential::program;
use crate::secrets::credential::{Issued, Issuer};
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::Http;
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::clock;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Google's STS token endpoint.
pub const STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// The executable's time limit when the source says none, and its bounds
/// (google-auth's).
const EXECUTABLE_TIMEOUT: Duration = Duration::from_secs(30);
const EXECUTABLE_TIMEOUT_RANGE: (u64, u64) = (5_000, 120_000);

/// Where the subject token comes from.
enum Subject {
    File(PathBuf),
    Url {
        url: String,
        headers: Vec<(String, String)>,
    },
    Executable {
        words: Vec<String>,
        timeout: Duration,
        output_file: Option<PathBuf>,
    },
    Aws(Box<AwsSubject>),
}

/// How the subject token is read from its source's text.
enum Format {
    Text,
    Json(String),
}

/// An `external_account` file's federation.
pub struct External {
    audience: String,
    subject_token_type: String,
    token_url: String,
    impersonation_url: Option<String>,
    lifetime_seconds: u64,
    workforce_project: Option<String>,
    subject: Subject,
    format: Format,
    file: PathBuf,
    http: Arc<Http>,
    settings: RemoteSettings,
}

impl External {
    /// The federation an `external_account` document at `file` describes.
    ///
    /// # Errors
    /// [`Error::Parse`] or [`Error::InvalidArgument`] naming the file and
    /// field; [`Error::Permission`] for an executable others may replace.
    pub fn from_doc(
        doc: &Map<String, Value>,
        file: &Path,
        vars: &Vars,
        http: &Arc<Http>,
        settings: &RemoteSettings,
    ) -> Result<External, Error> {
        let at = |f: &str| format!("credentials file {}: '{f}'", file.display());
        let bad = |f: &str, why: &str| Error::Parse(format!("{} {why}", at(f)));
        let token_url = optional(doc, "token_url").unwrap_or_else(|| STS_URL.to_owned());
        secure_url(&token_url, &at("token_url"))?;
        let impersonation_url = optional(doc, "service_account_impersonation_url");
        if let Some(url) = &impersonation_url {
            secure_url(url, &at("service_account_impersonation_url"))?;
        }
        let lifetime_seconds = match doc
            .get("service_account_impersonation")
            .and_then(|v| v.get("token_lifetime_seconds"))
        {
            None => 3600,
            Some(v) => v
                .as_u64()
                .filter(|s| (600..=43_200).contains(s))
                .ok_or_else(|| {
                    bad(
                        "service_account_impersonation.token_lifetime_seconds",
                        "is not a number of seconds from 600 to 43200",
                    )
                })?,
        };
        let Some(Value::Object(source)) = doc.get("credential_source") else {
            return Err(bad("credential_source", "is missing or not an object"));
        };
        let format = match source.get("format") {
            None => Format::Text,
            Some(f) => match f.get("type").and_then(Value::as_str) {
                None | Some("text") => Format::Text,
                Some("json") => Format::Json(
                    f.get("subject_token_field_name")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            bad(
                                "credential_source.format",
                                "of type json names no subject_token_field_name",
                            )
                        })?
                        .to_owned(),
                ),
                Some(_) => {
                    return Err(bad(
                        "credential_source.format.type",
                        "is neither text nor json",
                    ))
                }
            },
        };
        let subject = if source.contains_key("environment_id") {
            Subject::Aws(Box::new(AwsSubject::from_source(
                source, &at, vars, settings,
            )?))
        } else if let Some(path) = source.get("file") {
            let path = path
                .as_str()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad("credential_source.file", "is not a path"))?;
            Subject::File(crate::paths::expand_home(PathBuf::from(path)))
        } else if let Some(url) = source.get("url") {
            let url = url
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| bad("credential_source.url", "is not an http(s) URL"))?;
            let headers = match source.get("headers") {
                None => Vec::new(),
                Some(Value::Object(h)) => h
                    .iter()
                    .map(|(k, v)| match v.as_str() {
                        Some(v) => Ok((k.to_ascii_lowercase(), v.to_owned())),
                        None => Err(bad("credential_source.headers", "holds a non-string value")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("credential_source.headers", "is not an object")),
            };
            Subject::Url {
                url: url.to_owned(),
                headers,
            }
        } else if let Some(exe) = source.get("executable") {
            executable(exe, &at("credential_source.executable"), vars)?
        } else {
            return Err(bad("credential_source", "names no file, url or executable"));
        };
        let audience = field(doc, "audience", file)?;
        let workforce_project = optional(doc, "workforce_pool_user_project");
        Ok(External {
            subject_token_type: field(doc, "subject_token_type", file)?,
            audience,
            token_url,
            impersonation_url,
            lifetime_seconds,
            workforce_project,
            subject,
            format,
            file: file.to_owned(),
            http: Arc::clone(http),
            settings: settings.clone(),
        })
    }

    /// The subject token, read from its source now.
    fn subject_token(&self) -> Result<SecretString, FetchError> {
        let text = match &self.subject {
            Subject::File(path) => {
                crate::secrets::credential::identity_file::read_token(path, "subject token file")?
            }
            Subject::Url { url, headers } => {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let what = "subject token URL";
                let r = with_retries(&self.settings, || {
                    let r = self.http.send(what, "GET", url, &headers, b"")?;
                    match r.status {
                        200 => Ok(r),
                        429 | 500..=599 => Err(FetchError::transient(Error::Remote(format!(
                            "{what} {}: HTTP {}",
                            redact_url(url),
                            r.status
                        )))),
                        s => Err(FetchError::permanent(Error::Auth(format!(
                            "{what} {}: HTTP {s}",
                            redact_url(url)
                        )))),
                    }
                })?;
                SecretString::from(String::from_utf8_lossy(r.body.expose()).into_owned())
            }
            Subject::Executable { .. } => return self.run_executable(),
            Subject::Aws(aws) => return aws.token(&self.audience),
        };
        self.formatted(text)
    }

    /// The subject token in `text`, as `format` says.
    fn formatted(&self, text: SecretString) -> Result<SecretString, FetchError> {
        let fail = |why: &str| {
            FetchError::permanent(Error::Auth(format!(
                "subject token of {}: {why}",
                self.file.display()
            )))
        };
        let token = match &self.format {
            Format::Text => SecretString::from(text.expose().trim()),
            Format::Json(name) => {
                let mut doc: Value = serde_json::from_str(text.expose())
                    .map_err(|_| fail("its source's answer is not JSON"))?;
                let token = doc[name.as_str()].as_str().map(SecretString::from);
                zeroize_json(&mut doc);
                token.ok_or_else(|| fail(&format!("its source's answer has no string '{name}'")))?
            }
        };
        if token.expose().is_empty() {
            return Err(fail("its source gave an empty token"));
        }
        Ok(token)
    }

    fn run_executable(&self) -> Result<SecretString, FetchError> {
        let Subject::Executable {
            words,
            timeout,
            output_file,
        } = &self.subject
        else {
            unreachable!("an executable source");
        };
        let what = format!("subject token executable of {}", self.file.display());
        let fail = |why: String| FetchError::permanent(Error::Auth(format!("{what}: {why}")));
        // A previous answer still valid, kept where the source said, read
        // under the identity-file rule: a file another user could write
        // (or made first) is not an answer, and the program runs.
        if let Some(path) = output_file {
            if let Ok(bytes) =
                identity_file::read(path, "output file", MAX_TOKEN, Readers::KubeletVolume)
            {
                if let Ok(token) = executable_answer(bytes.expose(), true, &fail) {
                    return Ok(token);
                }
            }
        }
        let email = self
            .impersonation_url
            .as_deref()
            .and_then(impersonated_email)
            .unwrap_or_default();
        let output = output_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut envs = vec![
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", self.audience.as_str()),
            (
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                self.subject_token_type.as_str(),
            ),
            ("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0"),
        ];
        if !email.is_empty() {
            envs.push(("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email.as_str()));
        }
        if !output.is_empty() {
            envs.push(("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", output.as_str()));
        }
        let out = program::run(words, &envs, *timeout, &fail)?;
        executable_answer(out.expose(), output_file.is_some(), &fail)
    }

    /// The STS exchange of the subject token for a federated access token.
    fn exchange(&self) -> Result<Issued<SecretString>, FetchError> {
        let subject = self.subject_token()?;
        let options = self
            .workforce_project
            .as_ref()
            .map(|p| serde_json::json!({ "userProject": p }).to_string());
        let mut pairs = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", self.audience.as_str()),
            ("scope", SCOPE),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_token", subject.expose()),
            ("subject_token_type", self.subject_token_type.as_str()),
        ];
        if let Some(o) = &options {
            pairs.push(("options", o.as_str()));
        }
        post_form(
            &self.http,
            &self.settings,
            "STS token exchange",
            &self.token_url,
            &pairs,
        )
    }

    /// The service account's token for the federated one.
    fn impersonate(
        &self,
        url: &str,
        federated: &Issued<SecretString>,
    ) -> Result<Issued<SecretString>, FetchError> {
        let what = "service account impersonation";
        let body = serde_json::json!({
            "scope": [SCOPE],
            "lifetime": format!("{}s", self.lifetime_seconds),
        })
        .to_string();
        let bearer = SecretString::from(format!("Bearer {}", federated.value.expose()));
        with_retries(&self.settings, || {
            let sent = clock::precise();
            let r = self.http.send(
                what,
                "POST",
                url,
                &[
                    ("authorization", bearer.expose()),
                    ("content-type", "application/json"),
                ],
                body.as_bytes(),
            )?;
            if r.status != 200 {
                return Err(oauth_failure(what, &r));
            }
            let mut doc = r.json().unwrap_or(Value::Null);
            let token = doc["accessToken"].as_str().map(SecretString::from);
            let expires = doc["expireTime"].as_str().and_then(parse_timestamp);
            zeroize_json(&mut doc);
            let (Some(token), Some(expires)) = (token, expires) else {
                return Err(FetchError::permanent(Error::Auth(format!(
                    "{what}: the answer lacks accessToken or an RFC 3339 expireTime"
                ))));
            };
            // The lifetime left by the wall clock, counted from the request.
            let left = expires
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Ok(Issued::token(token, Some(left), sent))
        })
    }
}

impl Issuer<SecretString> for External {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let federated = self.exchange()?;
        match &self.impersonation_url {
            None => Ok(federated),
            Some(url) => self.impersonate(url, &federated),
        }
    }

    fn describe(&self) -> String {
        let source = match &self.subject {
            Subject::File(p) => format!("token file {}", p.display()),
            Subject::Url { url, .. } => format!("token URL {}", redact_url(url)),
            Subject::Executable { words, .. } => format!("executable {}", words[0]),
            Subject::Aws(aws) => aws.describe(),
        };
        let through = match self
            .impersonation_url
            .as_deref()
            .and_then(impersonated_email)
        {
            Some(email) => format!(", impersonating {email}"),
            None => String::new(),
        };
        format!(
            "workload identity federation ({source}{through}; file {})",
            self.file.display()
        )
    }
}

/// The service account's email in an impersonation URL
/// (`.../serviceAccounts/EMAIL:generateAccessToken`).
fn impersonated_email(url: &str) -> Option<String> {
    let tail = url.rsplit_once("/serviceAccounts/")?.1;
    let email = tail.split_once(':').map_or(tail, |(e, _)| e);
    (!email.is_empty()).then(|| email.to_owned())
}

/// The executable source: allowed by the environment, an absolute program
/// neither group nor others may write, a time limit in google-auth's range.
fn executable(exe: &Value, at: &str, vars: &Vars) -> Result<Subject, Error> {
    if vars.get(var::GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES) != Some("1") {
        return Err(Error::Permission(format!(
            "{at}: executables run only with {}=1",
            var::GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES
        )));
    }
    let command = exe
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let Some(program) = words.first() else {
        return Err(Error::Parse(format!("{at}: 'command' is empty or missing")));
    };
    let path = Path::new(program);
    if !path.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "{at}: the command's program must be an absolute path"
        )));
    }
    check_program(path, at)?;
    let timeout = match exe.get("timeout_millis") {
        None => EXECUTABLE_TIMEOUT,
        Some(v) => v
            .as_u64()
            .filter(|ms| (EXECUTABLE_TIMEOUT_RANGE.0..=EXECUTABLE_TIMEOUT_RANGE.1).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                Error::Parse(format!(
                    "{at}: 'timeout_millis' is not a number from {} to {}",
                    EXECUTABLE_TIMEOUT_RANGE.0, EXECUTABLE_TIMEOUT_RANGE.1
                ))
            })?,
    };
    let output_file = exe
        .get("output_file")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| crate::paths::expand_home(PathBuf::from(s)));
    Ok(Subject::Executable {
        words,
        timeout,
        output_file,
    })
}

/// Refuses a program (or its directory) that group or others may write, or
/// that another user than this one or root owns: whoever could replace it
/// would choose the identity.
fn check_program(path: &Path, at: &str) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let me = crate::sys::effective_uid();
    for (p, what) in [
        (Some(path), "program"),
        (path.parent(), "program's directory"),
    ] {
        let Some(p) = p else { continue };
        let meta = std::fs::metadata(p)
            .map_err(|e| Error::io(&format!("{at}: cannot inspect the {what}"), p, &e))?;
        let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky_dir {
            return Err(Error::Permission(format!(
                "{at}: the {what} {} is writable by group or others (mode {:o}); refusing to \
                 run it",
                p.display(),
                meta.mode() & 0o7777
            )));
        }
        if meta.uid() != me && meta.uid() != 0 {
            return Err(Error::Permission(format!(
                "{at}: the {what} {} belongs to another user (uid {}); refusing to run it",
                p.display(),
                meta.uid()
            )));
        }
    }
    Ok(())
}

/// The subject token of an executable's version 1 answer; `need_expiry`:
/// it must say when it expires (it is kept in an output file), and is
/// refused once it has.
fn executable_answer(
    out: &[u8],
    need_expiry: bool,
    fail: &dyn Fn(String) -> FetchError,
) -> Result<SecretString, FetchError> {
    let mut doc: Value = serde_json::from_slice(out)
        .map_err(|_| fail("its answer is not a JSON document".into()))?;
    let result = (|| {
        match doc["version"].as_u64() {
            Some(1) => {}
            Some(v) => return Err(fail(format!("its answer is of version {v}; 1 is read"))),
            None => return Err(fail("its answer has no version".into())),
        }
        match doc["success"].as_bool() {
            Some(true) => {}
            Some(false) => {
                let code = doc["code"].as_str().unwrap_or("none");
                return Err(fail(format!(
                    "it reported a failure (code {}; its message is not shown)",
                    crate::error::shorten(code)
                )));
            }
            None => return Err(fail("its answer has no success field".into())),
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match doc["expiration_time"].as_u64() {
            Some(at) if at <= now => return Err(fail("its answer has expired".into())),
            None if need_expiry => {
                return Err(fail(
                    "its answer has no expiration_time (required with an output_file)".into(),
                ))
            }
            _ => {}
        }
        let field = match doc["token_type"].as_str() {
            Some("urn:ietf:params:oauth:token-type:jwt")
            | Some("urn:ietf:params:oauth:token-type:id_token") => "id_token",
            Some("urn:ietf:params:oauth:token-type:saml2") => "saml_response",
            _ => return Err(fail("its answer has no known token_type".into())),
        };
        doc[field]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| fail(format!("its answer has no {field}")))
    })();
    zeroize_json(&mut doc);
    result
}

/// An executable's answer read as when it has no output file.
#[cfg(any(test, fuzzing))]
pub(crate) fn executable_answer_of(out: &[u8]) -> Result<SecretString, FetchError> {
    let fail = |why: String| FetchError::permanent(Error::Auth(why));
    executable_answer(out, false, &fail)
}
