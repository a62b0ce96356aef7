//! Each token endpoint's wire: where the exchange goes, what it sends and
//! how (RFC 8693 token exchange or RFC 7523 JWT bearer; JSON or a form),
//! which fields a profile needs and which audience its subject token must
//! be for. The answers are all RFC 6749 section 5.1 (`access_token`,
//! `expires_in`), read in [`super`].

use crate::error::Error;
use crate::secret::SecretString;
use serde_json::{Map, Value};

/// RFC 8693's grant.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523's grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693's type of a subject token that is a JWT.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693's type of an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693's type of the access token asked for.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The beta flags Anthropic's federation takes on its token endpoint: the
/// OAuth API's and the federation's, as its SDK sends them.
pub const ANTHROPIC_BETA: &str = "oauth-2025-04-20,oidc-federation-2026-04-01";

/// A token endpoint's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Hugging Face: RFC 8693 as JSON to `/oauth/token`, `resource` a repo
    /// or a user; the subject an ID token for `https://huggingface.co`.
    HuggingFace,
    /// OpenAI: RFC 8693 as JSON to `auth.openai.com/oauth/token` with the
    /// identity provider and the project service account.
    OpenAi,
    /// Anthropic: RFC 7523 as JSON to `/v1/oauth/token` with the federation
    /// rule, organization and service account; each JWT once (`checkJTI`).
    Anthropic,
    /// Weights & Biases: RFC 7523 as a form to `{base}/oidc/token`.
    Wandb,
    /// OpenRouter: RFC 8693 as a form with the federation policy.
    OpenRouter,
    /// CoreWeave AI Object Storage: the OIDC token as JSON to
    /// `temporary-credentials/oidc`, answered with an S3 access key pair
    /// and its expiry: two secrets, the access key ID and the secret key.
    CoreWeave,
    /// Any RFC 8693 token endpoint (a site's Keycloak, a gateway), as a form.
    Rfc8693,
    /// Any RFC 7523 token endpoint, as a form.
    Rfc7523,
}

/// One exchange's configuration (an entry of `exchanges`, by the name of
/// the secret it gives), checked against its profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSettings {
    /// The profile's name ([`Profile::ALL`]).
    pub profile: String,
    /// The file holding the subject token (a JWT: a projected Kubernetes
    /// service-account token, a JWT-SVID), read again for each exchange.
    /// One of the four `subject_` fields names where the token comes from.
    #[serde(default)]
    pub subject_token_file: Option<std::path::PathBuf>,
    /// The Slurm job's token minted for this audience: the plugin's
    /// `job_token_audience.NAME=` names it, and writes it beside the job's
    /// token as `token.NAME`.
    #[serde(default)]
    pub subject_job_token: Option<String>,
    /// An OpenBao or Vault identity token of this OIDC role
    /// (`identity/oidc/token/ROLE`, its `client_id` the vendor's audience),
    /// minted for each exchange with the job's login (`vault_*` settings).
    #[serde(default)]
    pub subject_vault_role: Option<String>,
    /// The GCP metadata server's identity token for the audience, minted
    /// for each exchange.
    #[serde(default)]
    pub subject_gcp_metadata: Option<bool>,
    /// The token endpoint (each vendor's by default; required for the
    /// generic profiles).
    #[serde(default)]
    pub url: Option<String>,
    /// The audience the subject token must be for (the vendor's by
    /// default, where it has one); the generic RFC 8693 profile also sends
    /// it.
    #[serde(default)]
    pub audience: Option<String>,
    /// Hugging Face's and RFC 8693's `resource`.
    #[serde(default)]
    pub resource: Option<String>,
    /// OAuth's `scope` (OpenRouter, the generic profiles).
    #[serde(default)]
    pub scope: Option<String>,
    /// The generic profiles' `client_id`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The generic RFC 8693 profile's `audience` parameter when the
    /// credential asked for is for another audience than the subject token
    /// (`audience`): Keycloak's subject is for the requesting client, the
    /// credential for the API.
    #[serde(default)]
    pub requested_audience: Option<String>,
    /// The generic RFC 8693 profile's `subject_token_type`: `jwt` (the
    /// default), `access_token` (Keycloak's standard token exchange takes
    /// only that) or `id_token`, or the type's full URN.
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// The generic profiles' client secret, in a file (the client's own,
    /// read again for each exchange): the client authenticates with HTTP
    /// Basic (RFC 6749 section 2.3.1, `client_secret_basic`), as a site's
    /// Keycloak requires of a confidential client. Needs `client_id`.
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// OpenAI's `identity_provider_id`.
    #[serde(default)]
    pub identity_provider_id: Option<String>,
    /// OpenAI's and Anthropic's `service_account_id`.
    #[serde(default)]
    pub service_account_id: Option<String>,
    /// Anthropic's `federation_rule_id`.
    #[serde(default)]
    pub federation_rule_id: Option<String>,
    /// Anthropic's `organization_id`.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Anthropic's `workspace_id` (optional).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// OpenRouter's `federation_policy_id`.
    #[serde(default)]
    pub federation_policy_id: Option<String>,
    /// CoreWeave's: the name of the secret holding the access key ID
    /// (`AWS_ACCESS_KEY_ID` by default); the entry's own name holds the
    /// secret key.
    #[serde(default)]
    pub access_key_id_name: Option<String>,
    /// CoreWeave's `durationSeconds`: 1 to 43200 (3600 by default).
    #[serde(default)]
    pub duration_seconds: Option<u64>,
}

impl ExchangeSettings {
    /// The file the subject token is read from, where it is one: the
    /// `subject_token_file` (`~/` expanded), or the Slurm job's token of
    /// `subject_job_token`, beside the job's token that `vars`'
    /// `SIMPLETUNER_JOB_TOKEN_FILE` names; `None` for a token minted for
    /// each exchange, or outside a job.
    pub fn subject_file(
        &self,
        vars: &crate::secrets::transport::Vars,
    ) -> Option<std::path::PathBuf> {
        if let Some(path) = &self.subject_token_file {
            return Some(crate::paths::expand_home(path.clone()));
        }
        let name = self.subject_job_token.as_deref()?;
        let job = vars.get(crate::secrets::transport::vars::SIMPLETUNER_JOB_TOKEN_FILE)?;
        Some(
            std::path::Path::new(job)
                .parent()?
                .join(format!("token.{name}")),
        )
    }
}

/// A request to a token endpoint.
pub struct Request {
    /// The endpoint.
    pub url: String,
    /// Its headers besides the content type.
    pub headers: Vec<(&'static str, &'static str)>,
    /// `application/json` or `application/x-www-form-urlencoded`.
    pub content_type: &'static str,
    /// The body, holding the subject token.
    pub body: SecretString,
}

impl Profile {
    /// Every profile, by its configuration name.
    pub const ALL: [(&'static str, Profile); 8] = [
        ("huggingface", Profile::HuggingFace),
        ("openai", Profile::OpenAi),
        ("anthropic", Profile::Anthropic),
        ("wandb", Profile::Wandb),
        ("openrouter", Profile::OpenRouter),
        ("coreweave-object-storage", Profile::CoreWeave),
        ("rfc8693", Profile::Rfc8693),
        ("rfc7523", Profile::Rfc7523),
    ];

    /// The profile named `name`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the profiles there are.
    pub fn parse(name: &str) -> Result<Profile, Error> {
        Profile::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|(n, _)| *n).collect();
                Error::InvalidArgument(format!(
                    "exchange profile '{}' is not one of {}",
                    crate::error::shorten(name),
                    names.join(", ")
                ))
            })
    }

    /// Its configuration name.
    pub fn name(self) -> &'static str {
        Profile::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("", |(n, _)| *n)
    }

    /// Whether the endpoint takes each subject token once (Anthropic's
    /// `checkJTI`): an exchange then needs a token it has not sent before.
    pub fn single_use(self) -> bool {
        self == Profile::Anthropic
    }

    /// Whether the endpoint answers with a key pair (two secrets: the
    /// access key ID and the secret key) rather than an OAuth token.
    pub fn pair(self) -> bool {
        self == Profile::CoreWeave
    }

    /// The longest `duration_seconds` CoreWeave takes (12 hours).
    pub const MAX_DURATION: u64 = 43_200;

    /// The token endpoint when the configuration names none.
    fn default_url(self) -> Option<&'static str> {
        match self {
            Profile::HuggingFace => Some("https://huggingface.co/oauth/token"),
            Profile::OpenAi => Some("https://auth.openai.com/oauth/token"),
            Profile::Anthropic => Some("https://api.anthropic.com/v1/oauth/token"),
            Profile::Wandb => Some("https://api.wandb.ai/oidc/token"),
            Profile::OpenRouter => Some("https://openrouter.ai/api/v1/oauth/token"),
            Profile::CoreWeave => {
                Some("https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc")
            }
            Profile::Rfc8693 | Profile::Rfc7523 => None,
        }
    }

    /// The audience a subject token must be for when the configuration
    /// names none (`None`: not checked): Hugging Face's is the Hub's URL,
    /// the endpoint without `/oauth/token` (as its SDK asks for it, so a
    /// private Hub's too).
    pub fn default_audience(self, fields: &ExchangeSettings) -> Option<String> {
        match self {
            Profile::HuggingFace => {
                let url = self.endpoint(fields);
                Some(url.strip_suffix("/oauth/token").unwrap_or(&url).to_owned())
            }
            _ => None,
        }
    }

    /// The fields the profile requires and those it may take.
    fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Profile::HuggingFace => (&["resource"], &["url", "audience"]),
            Profile::OpenAi => (
                &["identity_provider_id", "service_account_id"],
                &["url", "audience"],
            ),
            Profile::Anthropic => (
                &[
                    "federation_rule_id",
                    "organization_id",
                    "service_account_id",
                ],
                &["url", "audience", "workspace_id"],
            ),
            Profile::Wandb => (&[], &["url", "audience"]),
            Profile::OpenRouter => (&["federation_policy_id"], &["url", "audience", "scope"]),
            Profile::CoreWeave => (
                &["organization_id"],
                &["url", "audience", "access_key_id_name", "duration_seconds"],
            ),
            Profile::Rfc8693 => (
                &["url"],
                &[
                    "audience",
                    "resource",
                    "scope",
                    "client_id",
                    "subject_token_type",
                    "requested_audience",
                ],
            ),
            Profile::Rfc7523 => (&["url"], &["audience", "scope", "client_id"]),
        }
    }

    /// Checks `fields` against the profile: each required one set, none
    /// the profile does not take.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field, for `key` (the secret's
    /// name, in messages).
    pub fn check(self, fields: &ExchangeSettings, key: &str) -> Result<(), Error> {
        let set = set_fields(fields);
        let (required, optional) = self.fields();
        for name in required {
            if !set.iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': the {} profile needs '{name}'",
                    self.name()
                )));
            }
        }
        for (name, value) in &set {
            if !required.contains(name) && !optional.contains(name) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': '{name}' is not a field of the {} profile",
                    self.name()
                )));
            }
            if value.is_empty() || value.len() > 2048 || value.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': '{name}' must be 1 to 2048 printable characters"
                )));
            }
        }
        if let Some(t) = fields.subject_token_type.as_deref() {
            if subject_type(t).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': subject_token_type '{}' is not one of jwt, \
                     access_token, id_token (or its urn:ietf:params:oauth:token-type: URN)",
                    crate::error::shorten(t)
                )));
            }
        }
        if fields.client_secret_file.is_some() {
            if !matches!(self, Profile::Rfc8693 | Profile::Rfc7523) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': 'client_secret_file' is not a field of the {} profile",
                    self.name()
                )));
            }
            if fields.client_id.is_none() {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': client_secret_file needs client_id (the client it \
                     authenticates)"
                )));
            }
        }
        if let Some(d) = fields.duration_seconds {
            if !optional.contains(&"duration_seconds") {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': 'duration_seconds' is not a field of the {} profile",
                    self.name()
                )));
            }
            if d == 0 || d > Profile::MAX_DURATION {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': duration_seconds must be 1 to {} (a credential that \
                     never ends is not asked for)",
                    Profile::MAX_DURATION
                )));
            }
        }
        let url = fields.url.as_deref().or(self.default_url()).unwrap_or("");
        crate::secrets::credential::oauth::secure_url(url, &format!("exchange for '{key}': url"))
    }

    /// Checks that `fields` name exactly one source of subject tokens, and
    /// a job token's name the plugin takes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the fields, for `key`.
    pub fn check_subject(fields: &ExchangeSettings, key: &str) -> Result<(), Error> {
        let set = [
            fields.subject_token_file.is_some(),
            fields.subject_job_token.is_some(),
            fields.subject_vault_role.is_some(),
            fields.subject_gcp_metadata == Some(true),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(Error::InvalidArgument(format!(
                "exchange for '{key}': set exactly one of subject_token_file, subject_job_token, \
                 subject_vault_role and subject_gcp_metadata (where its subject token comes from)"
            )));
        }
        if let Some(name) = fields.subject_job_token.as_deref() {
            let plain = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !plain {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': subject_job_token '{}' must be a name of 1 to 32 \
                     letters, digits, '-' or '_' (the plugin's job_token_audience.NAME)",
                    crate::error::shorten(name)
                )));
            }
        }
        if let Some(role) = fields.subject_vault_role.as_deref() {
            if role.is_empty() || role.len() > 128 || !role.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{key}': subject_vault_role must be an OIDC role's name"
                )));
            }
        }
        Ok(())
    }

    /// The token endpoint `fields` name, else the profile's.
    pub fn endpoint(self, fields: &ExchangeSettings) -> String {
        fields
            .url
            .clone()
            .or_else(|| self.default_url().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The request exchanging `subject` (a JWT) with `fields`, checked.
    pub fn request(self, fields: &ExchangeSettings, subject: &SecretString) -> Request {
        let url = self.endpoint(fields);
        let token = subject.expose();
        // A client with a secret names itself in the Basic header instead.
        let public_client = fields
            .client_id
            .as_deref()
            .filter(|_| fields.client_secret_file.is_none());
        let mut body = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                body.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        };
        let mut headers = Vec::new();
        let json = match self {
            Profile::HuggingFace => {
                put("grant_type", Some(TOKEN_EXCHANGE));
                put("subject_token", Some(token));
                put("subject_token_type", Some(ID_TOKEN_TYPE));
                put("resource", fields.resource.as_deref());
                true
            }
            Profile::OpenAi => {
                put("grant_type", Some(TOKEN_EXCHANGE));
                put("subject_token", Some(token));
                put("subject_token_type", Some(JWT_TYPE));
                put(
                    "identity_provider_id",
                    fields.identity_provider_id.as_deref(),
                );
                put("service_account_id", fields.service_account_id.as_deref());
                true
            }
            Profile::Anthropic => {
                put("grant_type", Some(JWT_BEARER));
                put("assertion", Some(token));
                put("federation_rule_id", fields.federation_rule_id.as_deref());
                put("organization_id", fields.organization_id.as_deref());
                put("service_account_id", fields.service_account_id.as_deref());
                put("workspace_id", fields.workspace_id.as_deref());
                headers.push(("anthropic-beta", ANTHROPIC_BETA));
                true
            }
            Profile::Wandb => {
                put("grant_type", Some(JWT_BEARER));
                put("assertion", Some(token));
                false
            }
            Profile::OpenRouter => {
                put("grant_type", Some(TOKEN_EXCHANGE));
                put("subject_token", Some(token));
                put("subject_token_type", Some(JWT_TYPE));
                put("requested_token_type", Some(ACCESS_TOKEN_TYPE));
                put(
                    "federation_policy_id",
                    fields.federation_policy_id.as_deref(),
                );
                put("scope", fields.scope.as_deref());
                false
            }
            Profile::CoreWeave => {
                put("orgId", fields.organization_id.as_deref());
                put("oidcToken", Some(token));
                let seconds = fields.duration_seconds.unwrap_or(3600);
                body.insert("durationSeconds".into(), Value::from(seconds));
                true
            }
            Profile::Rfc8693 => {
                let kind = fields.subject_token_type.as_deref().and_then(subject_type);
                put("grant_type", Some(TOKEN_EXCHANGE));
                put("subject_token", Some(token));
                put("subject_token_type", Some(kind.unwrap_or(JWT_TYPE)));
                put("requested_token_type", Some(ACCESS_TOKEN_TYPE));
                let asked = fields.requested_audience.as_deref();
                put("audience", asked.or(fields.audience.as_deref()));
                put("resource", fields.resource.as_deref());
                put("scope", fields.scope.as_deref());
                put("client_id", public_client);
                false
            }
            Profile::Rfc7523 => {
                put("grant_type", Some(JWT_BEARER));
                put("assertion", Some(token));
                put("scope", fields.scope.as_deref());
                put("client_id", public_client);
                false
            }
        };
        let body = if json {
            let mut doc = Value::Object(body);
            let text = SecretString::from(doc.to_string());
            crate::secrets::provider::zeroize_json(&mut doc);
            text
        } else {
            let pairs: Vec<(String, String)> = body
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let text = SecretString::from(crate::secrets::transport::url::form(&refs));
            drop(refs);
            for (_, mut v) in pairs {
                zeroize::Zeroize::zeroize(&mut v);
            }
            text
        };
        Request {
            url,
            headers,
            content_type: if json {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            },
            body,
        }
    }
}

/// The URN of a subject token type, by its short name or its URN.
fn subject_type(name: &str) -> Option<&'static str> {
    [JWT_TYPE, ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE]
        .into_iter()
        .find(|urn| *urn == name || urn.rsplit(':').next() == Some(name))
}

/// The fields `fields` sets, by name.
fn set_fields(fields: &ExchangeSettings) -> Vec<(&'static str, &str)> {
    let all = [
        ("url", &fields.url),
        ("audience", &fields.audience),
        ("resource", &fields.resource),
        ("scope", &fields.scope),
        ("client_id", &fields.client_id),
        ("identity_provider_id", &fields.identity_provider_id),
        ("service_account_id", &fields.service_account_id),
        ("federation_rule_id", &fields.federation_rule_id),
        ("organization_id", &fields.organization_id),
        ("workspace_id", &fields.workspace_id),
        ("federation_policy_id", &fields.federation_policy_id),
        ("access_key_id_name", &fields.access_key_id_name),
        ("subject_token_type", &fields.subject_token_type),
        ("requested_audience", &fields.requested_audience),
    ];
    all.into_iter()
        .filter_map(|(n, v)| v.as_deref().map(|v| (n, v)))
        .collect()
}
