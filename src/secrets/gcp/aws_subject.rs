//! The subject token of a workload on AWS for Google's STS (an
//! `external_account` file whose `credential_source` has `environment_id`
//! `aws1`), made as Google's libraries make it: a `GetCallerIdentity`
//! request to AWS STS, signed with SigV4 ([`CallerIdentity`]) by
//! the AWS credential chain's credentials ([`CredentialChain`]: the
//! environment first, as Google's libraries read it, then profiles, web
//! identity, containers and instance metadata), never sent from here but
//! serialized (its URL, method and headers, with
//! `x-goog-cloud-target-resource` naming the audience) for Google's STS,
//! which sends it to AWS to learn who the workload is.
//!
//! The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, else the source's
//! `region_url` (instance metadata's availability zone without its last
//! letter, read with an IMDSv2 session token from the source's
//! `imdsv2_session_token_url` when it names one). The request goes to the
//! source's `regional_cred_verification_url` with `{region}` filled in:
//! https, or http to a loopback address.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::aws_identity::credentials::{https, CredentialChain};
use crate::secrets::aws_identity::wire::{self, CallerIdentity};
use crate::secrets::credential::oauth::secure_url;
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::escape_into;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The one version of AWS sources Google's libraries read.
const ENVIRONMENT_ID: &str = "aws1";

/// A workload's AWS identity, as a source of subject tokens.
pub(super) struct AwsSubject {
    /// `regional_cred_verification_url`, `{region}` unfilled.
    verification_url: String,
    region_url: Option<String>,
    imdsv2_url: Option<String>,
    /// The region, once known (from the environment at once).
    region: Mutex<Option<String>>,
    /// The credentials; its instance metadata client asks for the region.
    chain: CredentialChain,
    settings: RemoteSettings,
}

impl AwsSubject {
    /// The AWS source `source` of the file `at` names.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field: another version, no
    /// or an insecure verification URL, a metadata URL that is not http.
    pub(super) fn from_source(
        source: &Map<String, Value>,
        at: &dyn Fn(&str) -> String,
        vars: &Vars,
        settings: &RemoteSettings,
    ) -> Result<AwsSubject, Error> {
        let bad = |f: &str, why: &str| Error::InvalidArgument(format!("{} {why}", at(f)));
        let id = source
            .get("environment_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if id != ENVIRONMENT_ID {
            return Err(bad(
                "credential_source.environment_id",
                &format!("is not '{ENVIRONMENT_ID}', the one AWS source version there is"),
            ));
        }
        let text = |f: &str| source.get(f).and_then(Value::as_str).map(str::to_owned);
        let verification_url = text("regional_cred_verification_url").ok_or_else(|| {
            bad(
                "credential_source.regional_cred_verification_url",
                "is missing",
            )
        })?;
        secure_url(
            &verification_url.replace("{region}", "region"),
            &at("credential_source.regional_cred_verification_url"),
        )?;
        let metadata_url = |f: &str| -> Result<Option<String>, Error> {
            match text(f) {
                Some(u) if !u.starts_with("http://") => Err(bad(
                    &format!("credential_source.{f}"),
                    "is not an http:// URL",
                )),
                other => Ok(other),
            }
        };
        let region_url = metadata_url("region_url")?;
        let imdsv2_url = metadata_url("imdsv2_session_token_url")?;
        let region = vars
            .get(var::AWS_REGION)
            .or_else(|| vars.get(var::AWS_DEFAULT_REGION))
            .map(str::to_owned);
        let vars = Arc::new(vars.clone());
        let chain = CredentialChain::new(
            Arc::clone(&vars),
            https(settings, &vars)?,
            settings.clone(),
            region.clone(),
        )?;
        Ok(AwsSubject {
            verification_url,
            region_url,
            imdsv2_url,
            region: Mutex::new(region),
            chain,
            settings: settings.clone(),
        })
    }

    /// The serialized, signed `GetCallerIdentity` request for `audience`.
    pub(super) fn token(&self, audience: &str) -> Result<SecretString, FetchError> {
        let region = self.region()?;
        let url = self.verification_url.replace("{region}", &region);
        let credentials = self.chain.get()?;
        let signed = CallerIdentity::signed(&credentials, &region, &url, &[], true)?;
        let (Some(authorization), Some(date)) =
            (signed.header("authorization"), signed.header("x-amz-date"))
        else {
            return Err(FetchError::permanent(Error::Internal(
                "the signed GetCallerIdentity request lacks its signature".into(),
            )));
        };
        let host = url.split_once("://").map_or("", |(_, rest)| {
            rest.split(['/', '?', '#']).next().unwrap_or_default()
        });
        let mut headers = vec![
            json!({"key": "Authorization", "value": authorization}),
            json!({"key": "host", "value": host}),
            json!({"key": "x-amz-date", "value": date}),
        ];
        if let Some(token) = signed.header("x-amz-security-token") {
            headers.push(json!({"key": "x-amz-security-token", "value": token}));
        }
        headers.push(json!({"key": "x-goog-cloud-target-resource", "value": audience}));
        let mut request = json!({"headers": headers, "method": "POST", "url": url});
        let text = SecretString::from(request.to_string());
        crate::secrets::provider::zeroize_json(&mut request);
        let mut out = String::with_capacity(text.expose().len() * 2);
        escape_into(&mut out, text.expose());
        Ok(SecretString::from(out))
    }

    /// The region: the environment's, else instance metadata's (asked once).
    fn region(&self) -> Result<String, FetchError> {
        let mut region = self.region.lock();
        if let Some(r) = region.as_ref() {
            return Ok(r.clone());
        }
        let Some(url) = &self.region_url else {
            return Err(FetchError::permanent(Error::InvalidArgument(format!(
                "no AWS region for the GCP credentials' AWS source: set {} (the source names \
                 no region_url)",
                var::AWS_REGION
            ))));
        };
        let what = "AWS region from instance metadata";
        let imds = self.chain.instance_metadata();
        let found = with_retries(&self.settings, || {
            let session = match &self.imdsv2_url {
                None => None,
                Some(u) => {
                    let r = imds.send(
                        what,
                        "PUT",
                        u,
                        &[("x-aws-ec2-metadata-token-ttl-seconds", "300")],
                        b"",
                    )?;
                    let r = wire::require_success(what, r)?;
                    Some(SecretString::from(
                        String::from_utf8_lossy(r.body.expose()).trim(),
                    ))
                }
            };
            let headers: Vec<(&str, &str)> = session
                .as_ref()
                .map(|t| ("x-aws-ec2-metadata-token", t.expose()))
                .into_iter()
                .collect();
            let r = wire::require_success(what, imds.send(what, "GET", url, &headers, b"")?)?;
            Ok(String::from_utf8_lossy(r.body.expose()).trim().to_owned())
        })?;
        // An availability zone ("us-east-1b"): the region without its letter.
        let zone_letter = found.ends_with(|c: char| c.is_ascii_lowercase());
        let valid = found.len() > 1
            && zone_letter
            && found
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(FetchError::permanent(Error::Remote(format!(
                "{what}: the answer is not an availability zone"
            ))));
        }
        let r = found[..found.len() - 1].to_owned();
        *region = Some(r.clone());
        Ok(r)
    }

    /// For statuses: where the credentials came from, when known.
    pub(super) fn describe(&self) -> String {
        let region = self
            .region
            .lock()
            .clone()
            .unwrap_or_else(|| "from instance metadata".into());
        match self.chain.source() {
            Some(s) => format!("AWS credentials ({}, region {region})", s.describe()),
            None => format!("AWS credentials (region {region})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::remote::fake::{FakeServer, Reply};

    const VERIFY: &str =
        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

    fn source(extra: &Value) -> Map<String, Value> {
        let mut m = json!({"environment_id": "aws1", "regional_cred_verification_url": VERIFY});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m.as_object().unwrap().clone()
    }

    fn keys() -> Vars {
        Vars::empty()
            .set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .set("AWS_SECRET_ACCESS_KEY", "secret-key-value")
            .set("AWS_SESSION_TOKEN", "session-value")
    }

    fn subject(extra: &Value, vars: &Vars) -> Result<AwsSubject, Error> {
        let at = |f: &str| format!("credentials file /c.json: '{f}'");
        AwsSubject::from_source(&source(extra), &at, vars, &RemoteSettings::default())
    }

    /// The request in a subject token (percent-decoded JSON).
    fn request(token: &SecretString) -> Value {
        let bytes = token.expose().as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        serde_json::from_slice(&out).unwrap()
    }

    fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
        request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == name)
            .and_then(|h| h["value"].as_str())
    }

    #[test]
    fn the_subject_token_is_the_signed_request_googles_sts_sends_to_aws() {
        let s = subject(&json!({}), &keys().set("AWS_REGION", "eu-west-2")).unwrap();
        let token = s.token("//iam.googleapis.com/aud").unwrap();
        assert!(
            token.expose().starts_with("%7B%22headers%22%3A%5B"),
            "headers first"
        );
        let r = request(&token);
        assert_eq!(
            r["url"],
            "https://sts.eu-west-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(r["method"], "POST");
        let auth = header(&r, "Authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-2/sts/aws4_request, SignedHeaders=host;x-amz-date"));
        assert_eq!(header(&r, "host"), Some("sts.eu-west-2.amazonaws.com"));
        assert!(header(&r, "x-amz-date").is_some_and(|d| d.len() == 16));
        assert_eq!(header(&r, "x-amz-security-token"), Some("session-value"));
        assert_eq!(
            header(&r, "x-goog-cloud-target-resource"),
            Some("//iam.googleapis.com/aud")
        );
        assert!(!token.expose().contains("secret-key-value"));
        assert!(s.describe().contains("region eu-west-2"));
    }

    #[test]
    fn the_region_comes_from_instance_metadata_once_with_an_imdsv2_session() {
        let imds = FakeServer::start(|r| match (r.method.as_str(), r.path.as_str()) {
            ("PUT", "/latest/api/token") => Reply::text(200, "imds-session"),
            ("GET", "/zone") if r.header("x-aws-ec2-metadata-token") == Some("imds-session") => {
                Reply::text(200, "ap-south-1a\n")
            }
            _ => Reply::text(401, ""),
        });
        let extra = json!({
            "region_url": format!("{}/zone", imds.url()),
            "imdsv2_session_token_url": format!("{}/latest/api/token", imds.url()),
        });
        let s = subject(&extra, &keys()).unwrap();
        for _ in 0..2 {
            let r = request(&s.token("aud").unwrap());
            assert!(
                r["url"].as_str().unwrap().contains("sts.ap-south-1."),
                "{r}"
            );
        }
        assert_eq!(imds.requests(), 2, "asked once: a session, then the zone");
        // An answer that is not an availability zone is refused.
        let bad = FakeServer::start(|_| Reply::text(200, "<html>"));
        let s = subject(
            &json!({"region_url": format!("{}/zone", bad.url())}),
            &keys(),
        )
        .unwrap();
        let e = s.token("aud").err().unwrap().error.to_string();
        assert!(e.contains("not an availability zone"), "{e}");
    }

    #[test]
    fn bad_sources_are_refused_by_name() {
        let vars = keys().set("AWS_REGION", "us-east-1");
        let refused = |extra: Value| subject(&extra, &vars).err().unwrap().to_string();
        let e = refused(json!({"environment_id": "aws2"}));
        assert!(
            e.contains("/c.json") && e.contains("environment_id") && e.contains("aws1"),
            "{e}"
        );
        let mut none = source(&json!({}));
        none.remove("regional_cred_verification_url");
        let at = |f: &str| format!("credentials file /c.json: '{f}'");
        let e = AwsSubject::from_source(&none, &at, &vars, &RemoteSettings::default());
        assert!(e
            .err()
            .unwrap()
            .to_string()
            .contains("regional_cred_verification_url' is missing"));
        let e = refused(json!({"regional_cred_verification_url": "http://sts.example.com/"}));
        assert!(e.contains(": not an https:// URL"), "{e}");
        let e = refused(json!({"region_url": "https://169.254.169.254/zone"}));
        assert!(
            e.contains("region_url") && e.contains("not an http:// URL"),
            "{e}"
        );
        // No region anywhere: the variable to set is named.
        let s = subject(&json!({}), &keys()).unwrap();
        let e = s.token("aud").err().unwrap().error.to_string();
        assert!(e.contains("AWS_REGION"), "{e}");
        // No AWS credentials: the chain says so, never a value.
        let bare = Vars::empty()
            .set("AWS_REGION", "us-east-1")
            .set("AWS_EC2_METADATA_DISABLED", "true");
        let e = subject(&json!({}), &bare)
            .unwrap()
            .token("aud")
            .err()
            .unwrap()
            .error
            .to_string();
        assert!(!e.is_empty());
    }
}
