//! The AWS credential chain, in the order the AWS SDKs use: environment,
//! shared profile files, web identity (EKS IRSA), container credentials (ECS,
//! EKS Pod Identity), EC2 instance metadata (IMDSv2). The first source that is
//! configured answers; temporary credentials are fetched again five minutes
//! before they expire. A profile gives static keys, a role assumed with STS
//! `AssumeRole` (from another profile, a `credential_source` or a web
//! identity token), IAM Identity Center credentials ([`super::sso`]) or a
//! `credential_process` ([`super::process`]).

use super::identity::{Credentials, Source};
use super::metadata;
use super::profile::{self, FileKind};
use super::sts::Sts;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::read_token;
use crate::secrets::credential::{Issued, Issuer, Keeper};
use crate::secrets::node::Slot;
use crate::secrets::transport::http::{Http, Trust};
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The chain, with the credentials it found last, held by a [`Keeper`]:
/// used until five minutes before they expire, then resolved again (the
/// ones held answer meanwhile when that fails, until they expire); replaced
/// once when a service refuses them; one resolution per node with the node
/// cache on.
pub struct CredentialChain {
    chain: Arc<Chain>,
    keeper: Arc<Keeper<Arc<Credentials>>>,
}

/// The chain's sources and what it asks them with.
struct Chain {
    vars: Arc<Vars>,
    http: Arc<Http>,
    imds: Http,
    settings: RemoteSettings,
    region: Option<String>,
}

/// The chain as its keeper's issuer.
struct Resolves(Arc<Chain>);

impl Issuer<Arc<Credentials>> for Resolves {
    fn issue(&self) -> Result<Issued<Arc<Credentials>>, FetchError> {
        let c = self.0.resolve()?;
        let lifetime = c.lifetime(SystemTime::now());
        Ok(Issued {
            value: Arc::new(c),
            lifetime,
        })
    }

    fn describe(&self) -> String {
        "the AWS credential chain".into()
    }
}

/// The HTTPS client of AWS requests: trusting `AWS_CA_BUNDLE` when set,
/// else Mozilla's roots.
///
/// # Errors
/// [`Error::Io`]: an unreadable CA bundle.
pub fn https(remote: &RemoteSettings, vars: &Vars) -> Result<Arc<Http>, Error> {
    let trust = vars.get(var::AWS_CA_BUNDLE).map_or(Trust::Default, |p| {
        Trust::Bundle(crate::paths::expand_home(p.into()))
    });
    Ok(Arc::new(Http::new(remote, &trust, var::AWS_CA_BUNDLE)?))
}

impl CredentialChain {
    /// A chain reading `vars`, sending requests through `http` (STS,
    /// container endpoint) and a 1-second client for instance metadata.
    pub fn new(
        vars: Arc<Vars>,
        http: Arc<Http>,
        settings: RemoteSettings,
        region: Option<String>,
    ) -> Result<CredentialChain, Error> {
        CredentialChain::shared(vars, http, settings, region, None)
    }

    /// Whether the node's processes gain by sharing what the chain of
    /// `vars` finds: not the environment's keys (nothing to resolve,
    /// nothing worth writing down).
    pub fn worth_sharing(vars: &Vars) -> bool {
        vars.get(var::AWS_ACCESS_KEY_ID).is_none() || vars.get(var::AWS_PROFILE).is_some()
    }

    /// [`new`](Self::new), its credentials shared by the node's processes
    /// through `slot` when given (with `settings`, as a credential's slot
    /// uses them).
    pub fn shared(
        vars: Arc<Vars>,
        http: Arc<Http>,
        settings: RemoteSettings,
        region: Option<String>,
        slot: Option<Slot>,
    ) -> Result<CredentialChain, Error> {
        let imds_settings = RemoteSettings {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            ..settings.clone()
        };
        let slot = slot.map(|s| (s, settings.clone()));
        let chain = Arc::new(Chain {
            imds: Http::new(&imds_settings, &Trust::Default, "")?,
            vars,
            http,
            settings,
            region,
        });
        let keeper = Keeper::new("aws", Box::new(Resolves(Arc::clone(&chain))), slot);
        Ok(CredentialChain { chain, keeper })
    }

    /// Current credentials: those held unless they expire within
    /// [`AWS_REFRESH_BEFORE`](crate::secrets::lifetime::AWS_REFRESH_BEFORE),
    /// else the chain's answer (the node's, with the node cache on). When
    /// refreshing fails, credentials that have not yet expired are used
    /// meanwhile.
    pub fn get(&self) -> Result<Arc<Credentials>, FetchError> {
        self.keeper.get()
    }

    /// Credentials in place of `refused`, which a service called expired:
    /// the ones held when another thread (or process of the node) replaced
    /// them already, else the chain's new answer.
    pub fn instead_of(&self, refused: &Arc<Credentials>) -> Result<Arc<Credentials>, FetchError> {
        self.keeper.instead_of(refused)
    }

    /// The instance metadata client (short timeouts), for what else a
    /// workload asks the instance (its region).
    pub(crate) fn instance_metadata(&self) -> &Http {
        &self.chain.imds
    }

    /// Where the credentials held came from, if any are held.
    pub fn source(&self) -> Option<Source> {
        self.keeper.held().map(|(c, _)| c.source.clone())
    }

    /// The STS endpoint: [`Chain::sts_endpoint`].
    pub fn sts_endpoint(&self) -> String {
        self.chain.sts_endpoint()
    }

    /// How many times this process resolved the chain, and whether the
    /// node's processes share what it finds: "2 resolutions by this
    /// process, shared with the node's processes".
    pub fn resolutions(&self) -> String {
        self.keeper.tally("resolution", "resolutions")
    }
}

impl Chain {
    /// The STS endpoint: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the
    /// regional endpoint, else the global one.
    pub fn sts_endpoint(&self) -> String {
        self.vars
            .get(var::AWS_ENDPOINT_URL_STS)
            .or_else(|| self.vars.get(var::AWS_ENDPOINT_URL))
            .map(str::to_owned)
            .or_else(|| {
                self.region
                    .as_ref()
                    .map(|r| format!("https://sts.{r}.amazonaws.com"))
            })
            .unwrap_or_else(|| "https://sts.amazonaws.com".into())
    }

    fn resolve(&self) -> Result<Credentials, FetchError> {
        let v = &self.vars;
        // A profile named by AWS_PROFILE is used even when the environment
        // holds keys, as boto3 (SimpleTuner's AWS client) and the AWS CLI
        // do: that is how `credential_source = Environment` assumes a role
        // with them.
        if v.get(var::AWS_PROFILE).is_some() {
            if let Some(c) = self.shared_profile()? {
                return Ok(c);
            }
        } else {
            if let Some(c) = self.environment()? {
                return Ok(c);
            }
            if let Some(c) = self.shared_profile()? {
                return Ok(c);
            }
        }
        if let (Some(file), Some(role)) = (
            v.get(var::AWS_WEB_IDENTITY_TOKEN_FILE),
            v.get(var::AWS_ROLE_ARN),
        ) {
            return self.web_identity(file, role);
        }
        if v.get(var::AWS_CONTAINER_CREDENTIALS_RELATIVE_URI).is_some()
            || v.get(var::AWS_CONTAINER_CREDENTIALS_FULL_URI).is_some()
        {
            return metadata::container(&self.http, &self.settings, &self.vars);
        }
        let imds = if v
            .get(var::AWS_EC2_METADATA_DISABLED)
            .is_some_and(|d| d.eq_ignore_ascii_case("true"))
        {
            "instance metadata disabled by AWS_EC2_METADATA_DISABLED".to_owned()
        } else {
            match metadata::instance_metadata(&self.imds, &self.vars) {
                Ok(c) => return Ok(c),
                // The error names the instance metadata service already.
                Err(f) => f.error.to_string(),
            }
        };
        Err(FetchError::permanent(Error::Auth(format!(
            "no AWS credentials found (tried: environment, shared profile '{}', web identity, \
             container; {imds})",
            self.profile_name()
        ))))
    }

    /// STS at [`sts_endpoint`](Self::sts_endpoint), signing in the region.
    fn sts(&self) -> Sts<'_> {
        Sts {
            http: &self.http,
            settings: &self.settings,
            endpoint: self.sts_endpoint(),
            region: self.region.as_deref().unwrap_or("us-east-1"),
        }
    }

    /// A web identity token file exchanged for `role_arn`'s credentials.
    fn web_identity(&self, token_file: &str, role_arn: &str) -> Result<Credentials, FetchError> {
        let token = read_token(&PathBuf::from(token_file), var::AWS_WEB_IDENTITY_TOKEN_FILE)?;
        let session = self.vars.get(var::AWS_ROLE_SESSION_NAME);
        self.sts()
            .assume_role_with_web_identity(&token, role_arn, session)
    }

    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
    /// `None` when neither is set, an error when only one is.
    fn environment(&self) -> Result<Option<Credentials>, FetchError> {
        let v = &self.vars;
        match (
            v.get(var::AWS_ACCESS_KEY_ID),
            v.get(var::AWS_SECRET_ACCESS_KEY),
        ) {
            (Some(id), Some(secret)) => Ok(Some(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: SecretString::from(secret),
                session_token: v.get(var::AWS_SESSION_TOKEN).map(SecretString::from),
                expires: None,
                source: Source::Environment,
            })),
            (Some(_), None) | (None, Some(_)) => Err(FetchError::permanent(Error::Auth(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
            ))),
            (None, None) => Ok(None),
        }
    }

    fn profile_name(&self) -> &str {
        self.vars.get(var::AWS_PROFILE).unwrap_or("default")
    }

    fn shared_profile(&self) -> Result<Option<Credentials>, FetchError> {
        let name = self.profile_name().to_owned();
        let Some(p) = self.load_profile(&name)? else {
            if self.vars.get(var::AWS_PROFILE).is_some() {
                return Err(FetchError::permanent(Error::Auth(format!(
                    "AWS_PROFILE names profile '{name}', which is in neither the shared \
                     credentials nor the config file"
                ))));
            }
            return Ok(None);
        };
        self.profile_credentials(&name, &p, &mut vec![name.clone()])
    }

    /// Profile `name` of the credentials file and of the config file
    /// (the credentials file's settings win); `None` when in neither.
    fn load_profile(&self, name: &str) -> Result<Option<Profiles>, FetchError> {
        let mut found = Profiles::default();
        for (path, kind) in [
            (
                self.vars
                    .aws_file(var::AWS_SHARED_CREDENTIALS_FILE, "credentials"),
                FileKind::Credentials,
            ),
            (
                self.vars.aws_file(var::AWS_CONFIG_FILE, "config"),
                FileKind::Config,
            ),
        ] {
            let Some(path) = path else { continue };
            if let Some(p) = profile::load(&path, kind, name)? {
                found.files.push(path.display().to_string());
                found.profiles.push(p);
            }
        }
        Ok((!found.profiles.is_empty()).then_some(found))
    }

    /// The credentials of `source`, the `source_profile` of the last profile
    /// of `chain` (the profiles on the way here, for the cycle check).
    fn source_profile_credentials(
        &self,
        source: &str,
        chain: &mut Vec<String>,
    ) -> Result<Option<Credentials>, FetchError> {
        let bad = |text: String| FetchError::permanent(Error::InvalidArgument(text));
        let from = chain.last().cloned().unwrap_or_default();
        if chain.iter().any(|n| n == source) {
            chain.push(source.to_owned());
            return Err(bad(format!(
                "AWS profiles form a cycle through source_profile: {}",
                chain.join(" -> ")
            )));
        }
        if chain.len() >= MAX_ROLE_CHAIN {
            return Err(bad(format!(
                "AWS profile '{}' starts a chain of more than {MAX_ROLE_CHAIN} source_profile links",
                chain[0]
            )));
        }
        let Some(p) = self.load_profile(source)? else {
            return Err(bad(format!(
                "AWS profile '{from}' names source_profile '{source}', which is in neither the \
                 shared credentials nor the config file"
            )));
        };
        chain.push(source.to_owned());
        self.profile_credentials(source, &p, chain)
    }

    /// The credentials of profile `name` (settings `p`), as the AWS SDKs
    /// resolve them: a `role_arn` (assumed with the credentials of its
    /// `source_profile`, `credential_source` or `web_identity_token_file`),
    /// else IAM Identity Center (`sso_session` / `sso_start_url`), else static
    /// keys, else `credential_process`; `None` when the profile holds none of
    /// them. `chain` holds the profiles on the way here, `name` last.
    fn profile_credentials(
        &self,
        name: &str,
        p: &Profiles,
        chain: &mut Vec<String>,
    ) -> Result<Option<Credentials>, FetchError> {
        let bad = |text: String| FetchError::permanent(Error::InvalidArgument(text));
        if let Some(role) = p.get("role_arn") {
            if let Some(file) = p.get("web_identity_token_file") {
                return self.web_identity(file, role).map(Some);
            }
            let base = match (p.get("source_profile"), p.get("credential_source")) {
                (Some(_), Some(_)) => {
                    return Err(bad(format!(
                        "AWS profile '{name}' ({}) sets both source_profile and \
                         credential_source; keep one",
                        p.files()
                    )))
                }
                (Some(source), None) if source == name => p.static_keys(name).ok_or_else(|| {
                    bad(format!(
                        "AWS profile '{name}' names itself as source_profile but holds no \
                             aws_access_key_id and aws_secret_access_key"
                    ))
                })?,
                (Some(source), None) => self
                    .source_profile_credentials(source, chain)?
                    .ok_or_else(|| {
                        FetchError::permanent(Error::Auth(format!(
                            "source_profile '{source}' of AWS profile '{name}' holds no \
                             credentials"
                        )))
                    })?,
                (None, Some(source)) => self.credential_source(source, name)?,
                (None, None) => {
                    return Err(bad(format!(
                        "AWS profile '{name}' ({}) sets role_arn without source_profile, \
                         credential_source or web_identity_token_file",
                        p.files()
                    )))
                }
            };
            return self
                .sts()
                .assume_role(&base, role, |k| p.get(k), name)
                .map(Some);
        }
        if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() {
            return self.sso(p, name).map(Some);
        }
        if let Some(c) = p.static_keys(name) {
            return Ok(Some(c));
        }
        if let Some(command) = p.get("credential_process") {
            return super::process::run(command, name, super::process::PROCESS_TIMEOUT).map(Some);
        }
        Ok(None)
    }

    /// IAM Identity Center: the profile's `sso_session` section (or its own
    /// legacy `sso_start_url` / `sso_region`), account and role.
    fn sso(&self, p: &Profiles, name: &str) -> Result<Credentials, FetchError> {
        let missing = |what: &str| {
            FetchError::permanent(Error::InvalidArgument(format!(
                "AWS profile '{name}' ({}) uses IAM Identity Center but sets no {what}",
                p.files()
            )))
        };
        let session = p.get("sso_session");
        let section = match session {
            Some(s) => {
                let config = self.vars.aws_file(var::AWS_CONFIG_FILE, "config");
                let found = match &config {
                    Some(path) => profile::load(path, FileKind::SsoSession, s)?,
                    None => None,
                };
                Some(found.ok_or_else(|| {
                    FetchError::permanent(Error::InvalidArgument(format!(
                        "AWS profile '{name}' names sso_session '{s}', which has no \
                         [sso-session {s}] section in the config file"
                    )))
                })?)
            }
            None => None,
        };
        let from_session = |key: &str| section.as_ref().and_then(|s| s.get(key));
        let start_url = from_session("sso_start_url")
            .or_else(|| p.get("sso_start_url"))
            .ok_or_else(|| missing("sso_start_url"))?;
        let region = from_session("sso_region")
            .or_else(|| p.get("sso_region"))
            .ok_or_else(|| missing("sso_region"))?;
        let sso = super::sso::SsoProfile {
            profile: name,
            session,
            start_url,
            region,
            account_id: p
                .get("sso_account_id")
                .ok_or_else(|| missing("sso_account_id"))?,
            role_name: p
                .get("sso_role_name")
                .ok_or_else(|| missing("sso_role_name"))?,
        };
        super::sso::credentials(&self.http, &self.settings, &self.vars, &sso)
    }

    /// The credentials a profile's `credential_source` names.
    fn credential_source(&self, source: &str, profile: &str) -> Result<Credentials, FetchError> {
        match source {
            "Environment" => self.environment()?.ok_or_else(|| {
                FetchError::permanent(Error::Auth(format!(
                    "AWS profile '{profile}' takes its credential_source from the environment, \
                     but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
                )))
            }),
            "Ec2InstanceMetadata" => metadata::instance_metadata(&self.imds, &self.vars),
            "EcsContainer" => metadata::container(&self.http, &self.settings, &self.vars),
            other => Err(FetchError::permanent(Error::InvalidArgument(format!(
                "AWS profile '{profile}' has credential_source '{}'; it must be Environment, \
                 Ec2InstanceMetadata or EcsContainer",
                crate::error::shorten(other)
            )))),
        }
    }
}

/// The most `source_profile` links followed from one profile.
const MAX_ROLE_CHAIN: usize = 8;

/// One profile as found in the credentials and config files (in that order:
/// the first file's settings win).
#[derive(Default)]
struct Profiles {
    profiles: Vec<profile::Profile>,
    files: Vec<String>,
}

impl Profiles {
    fn get(&self, key: &str) -> Option<&str> {
        self.profiles.iter().find_map(|p| p.get(key))
    }

    /// The files the profile is in, for messages.
    fn files(&self) -> String {
        self.files.join(", ")
    }

    /// The profile's static keys, if it has both.
    fn static_keys(&self, name: &str) -> Option<Credentials> {
        // Both from the same file, as the SDKs read them.
        self.profiles.iter().find_map(|p| {
            let (id, secret) = (p.get("aws_access_key_id")?, p.get("aws_secret_access_key")?);
            Some(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: SecretString::from(secret),
                session_token: p.get("aws_session_token").map(SecretString::from),
                expires: None,
                source: Source::Profile(name.to_owned()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::credential::Credential;
    use crate::secrets::lifetime::AWS_REFRESH_BEFORE;
    use std::time::UNIX_EPOCH;

    #[test]
    fn credentials_are_replaced_five_minutes_before_they_expire_and_used_until_then() {
        let now = SystemTime::now();
        let mut c = Credentials {
            access_key_id: "AKIA".into(),
            secret_access_key: SecretString::from("s"),
            session_token: None,
            expires: None,
            source: Source::Environment,
        };
        let endless = c.lifetime(now);
        assert_eq!(<Arc<Credentials> as Credential>::replace_at(&endless), None);
        c.expires = Some(now + Duration::from_secs(3600));
        let hour = c.lifetime(now);
        let replaced = <Arc<Credentials> as Credential>::replace_at(&hour).unwrap();
        let ends = <Arc<Credentials> as Credential>::usable_until(&hour).unwrap();
        assert_eq!(Duration::from_nanos(ends - replaced), AWS_REFRESH_BEFORE);
        // Under five minutes left: due at once, usable to the end.
        c.expires = Some(now + Duration::from_secs(200));
        let short = c.lifetime(now);
        assert_eq!(
            <Arc<Credentials> as Credential>::replace_at(&short),
            Some(short.start())
        );
        assert!(format!("{c:?}").contains("Environment") && !format!("{c:?}").contains("AKIA"));
    }

    #[test]
    fn the_nodes_entry_keeps_keys_expiry_and_source() {
        let c = Arc::new(Credentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: SecretString::from("secret"),
            session_token: Some(SecretString::from("session")),
            expires: Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            source: Source::AssumedRole("dev".into()),
        });
        let back = <Arc<Credentials> as Credential>::from_json(&c.to_json()).unwrap();
        assert_eq!(back.access_key_id, "ASIA1");
        assert_eq!(back.secret_access_key.expose(), "secret");
        assert_eq!(back.session_token.as_ref().unwrap().expose(), "session");
        assert_eq!(back.expires, c.expires);
        assert_eq!(back.source, Source::AssumedRole("dev".into()));
        assert!(<Arc<Credentials> as Credential>::from_json(&serde_json::json!({})).is_none());
    }
}
