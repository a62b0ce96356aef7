//! The environment variables of the remote providers, captured once.

use crate::paths::{expand_home, home_dir};
use crate::secret::SecretString;
use std::collections::HashMap;
use std::path::PathBuf;

/// Declares one constant per variable name (its value is its name),
/// [`VARIABLES`], the allow-list built from them, and [`FLEET_VARIABLES`],
/// those after `fleet:`: a name the providers read is a constant of this
/// list or does not compile, and [`Vars::get`] checks in debug builds that
/// a name is on the list.
macro_rules! variables {
    ($($name:ident),* $(,)?; fleet: $($fleet:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($name), "`")]
            pub const $name: &str = stringify!($name);
        )*
        $(
            #[doc = concat!("`", stringify!($fleet), "`")]
            pub const $fleet: &str = stringify!($fleet);
        )*
        /// The environment variables the remote providers read; nothing
        /// else of the environment is captured.
        pub const VARIABLES: &[&str] = &[$($name,)* $($fleet),*];
        /// The variables that say a node's place in its job (read by the
        /// fleet's start): a node's processes differ in some (an MPI
        /// rank), so they name no configuration (the node cache's key).
        pub const FLEET_VARIABLES: &[&str] = &[$($fleet),*];
    };
}

variables! {
    SIMPLETUNER_AWS_SECRET_NAME,
    SIMPLETUNER_AWS_AGENT_URL,
    AWS_TOKEN,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    AWS_PROFILE,
    AWS_SHARED_CREDENTIALS_FILE,
    AWS_CONFIG_FILE,
    AWS_REGION,
    AWS_DEFAULT_REGION,
    AWS_ENDPOINT_URL,
    AWS_ENDPOINT_URL_SECRETS_MANAGER,
    AWS_ENDPOINT_URL_STS,
    AWS_ENDPOINT_URL_SSO,
    AWS_CA_BUNDLE,
    AWS_WEB_IDENTITY_TOKEN_FILE,
    AWS_ROLE_ARN,
    AWS_ROLE_SESSION_NAME,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
    AWS_CONTAINER_CREDENTIALS_FULL_URI,
    AWS_CONTAINER_AUTHORIZATION_TOKEN,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
    AWS_EC2_METADATA_DISABLED,
    AWS_EC2_METADATA_SERVICE_ENDPOINT,
    SIMPLETUNER_GCP_SECRET,
    SIMPLETUNER_GCP_LOCATION,
    SIMPLETUNER_GCP_ENDPOINT,
    GOOGLE_CLOUD_PROJECT,
    GOOGLE_APPLICATION_CREDENTIALS,
    CLOUDSDK_CONFIG,
    GCE_METADATA_HOST,
    GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES,
    SIMPLETUNER_AZURE_VAULT_URL,
    SIMPLETUNER_AZURE_SECRET,
    AZURE_TENANT_ID,
    AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET,
    AZURE_CLIENT_CERTIFICATE_PATH,
    AZURE_CLIENT_CERTIFICATE_PASSWORD,
    AZURE_FEDERATED_TOKEN_FILE,
    AZURE_AUTHORITY_HOST,
    AZURE_POD_IDENTITY_AUTHORITY_HOST,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    VAULT_ADDR,
    VAULT_TOKEN,
    VAULT_NAMESPACE,
    VAULT_CACERT,
    VAULT_SKIP_VERIFY,
    BAO_ADDR,
    BAO_TOKEN,
    BAO_NAMESPACE,
    BAO_CACERT,
    BAO_SKIP_VERIFY,
    VAULT_ROLE_ID,
    VAULT_SECRET_ID,
    SIMPLETUNER_VAULT_PATH,
    SIMPLETUNER_VAULT_MOUNT,
    SIMPLETUNER_VAULT_AGENT,
    SIMPLETUNER_VAULT_TOKEN_FILE,
    SIMPLETUNER_VAULT_AUTH,
    SIMPLETUNER_VAULT_ROLE,
    SIMPLETUNER_VAULT_AUTH_MOUNT,
    SIMPLETUNER_VAULT_JWT_FILE,
    SIMPLETUNER_JOB_TOKEN_FILE,
    SIMPLETUNER_EXCHANGES,
    SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY,
    SIMPLETUNER_VAULT_AWS_SERVER_ID,
    VAULT_CLIENT_CERT,
    VAULT_CLIENT_KEY,
    BAO_CLIENT_CERT,
    BAO_CLIENT_KEY,
    SIMPLETUNER_NODE_CACHE,
    SIMPLETUNER_JOB_LEDGER,
    SIMPLETUNER_PROVENANCE_FILE,
    SIMPLETUNER_PROVENANCE_SALT_FILE,
    SIMPLETUNER_NODE_CACHE_DIR,
    XDG_RUNTIME_DIR;
    fleet:
    SIMPLETUNER_FLEET_RANK,
    SIMPLETUNER_FLEET_NODES,
    SLURM_NODEID,
    SLURM_NNODES,
    GROUP_RANK,
    GROUP_WORLD_SIZE,
    NODE_RANK,
    NNODES,
    PET_NODE_RANK,
    PET_NNODES,
    SKYPILOT_NODE_RANK,
    SKYPILOT_NUM_NODES,
    JOB_COMPLETION_INDEX,
    OMPI_COMM_WORLD_RANK,
    OMPI_COMM_WORLD_LOCAL_SIZE,
    OMPI_COMM_WORLD_SIZE,
    PMI_RANK,
    MPI_LOCALNRANKS,
    PMI_SIZE,
}

/// The environment as the remote providers see it, captured when the provider is
/// built (tests give their own). Values are zeroed when dropped; empty values
/// count as unset.
#[derive(Clone, Default)]
pub struct Vars {
    values: HashMap<String, SecretString>,
    home: Option<PathBuf>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.values.keys().collect();
        names.sort();
        f.debug_struct("Vars").field("set", &names).finish()
    }
}

impl Vars {
    /// The process environment's `VARIABLES` and home directory.
    pub fn from_process() -> Vars {
        let mut vars = Vars {
            values: HashMap::new(),
            home: home_dir(),
        };
        for name in VARIABLES {
            if let Ok(v) = std::env::var(name) {
                vars = vars.set(name, &v);
            }
        }
        vars
    }

    /// Feeds every variable (names sorted, with their values) but the
    /// fleet's (a node's processes differ in some) and the home directory
    /// to `hasher`: the node cache's key of a configuration.
    pub fn fingerprint(&self, hasher: &mut sha2::Sha256) {
        use sha2::Digest;
        let mut names: Vec<&String> = self
            .values
            .keys()
            .filter(|n| !FLEET_VARIABLES.contains(&n.as_str()))
            .collect();
        names.sort();
        for name in names {
            hasher.update(name.as_bytes());
            hasher.update(b"=");
            hasher.update(self.values[name].expose().as_bytes());
            hasher.update(b"\0");
        }
        if let Some(home) = &self.home {
            hasher.update(home.as_os_str().as_encoded_bytes());
        }
    }

    /// No variables and no home directory.
    pub fn empty() -> Vars {
        Vars::default()
    }

    /// With `name` set to `value` (empty: unset).
    pub fn set(mut self, name: &str, value: &str) -> Vars {
        if value.is_empty() {
            self.values.remove(name);
        } else {
            self.values
                .insert(name.to_owned(), SecretString::from(value));
        }
        self
    }

    /// With `home` as the home directory (for `~/.aws`).
    pub fn home(mut self, home: impl Into<PathBuf>) -> Vars {
        self.home = Some(home.into());
        self
    }

    /// A variable's value. `name` must be one of `VARIABLES` (checked in
    /// debug builds: a variable missing from the allow-list would never be
    /// captured from the process environment).
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            VARIABLES.contains(&name),
            "{name} is read but not on the allow-list VARIABLES"
        );
        self.values.get(name).map(|v| v.expose())
    }

    /// `$<var>` (with `~` expanded), else `~/.aws/<name>`.
    pub(crate) fn aws_file(&self, var: &str, name: &str) -> Option<PathBuf> {
        match self.get(var) {
            Some(p) => Some(expand_home(PathBuf::from(p))),
            None => self.home.as_ref().map(|h| h.join(".aws").join(name)),
        }
    }
}

/// The most items a list takes (a config key's, or a variable's
/// comma-separated one): past it the list is refused, not cut.
pub(crate) const MAX_LISTED: usize = 64;

impl Vars {
    /// The comma-separated list in `name` (items trimmed, empty ones
    /// dropped); `None` when unset or only separators.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument)
    /// naming the variable when it lists more than [`MAX_LISTED`] items.
    pub(crate) fn list(&self, name: &str) -> Result<Option<Vec<String>>, crate::error::Error> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let items: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.len() > MAX_LISTED {
            return Err(crate::error::Error::InvalidArgument(format!(
                "{name} lists {} items; at most {MAX_LISTED} are taken",
                items.len()
            )));
        }
        Ok((!items.is_empty()).then_some(items))
    }

    /// The yes/no value of `name`: `None` when unset.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument) naming the
    /// variable when the value is not one of `1`, `true`, `yes`, `on`, `0`,
    /// `false`, `no`, `off` (any case).
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, crate::error::Error> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(crate::error::Error::InvalidArgument(format!(
                "{name} must be 1, true, yes or on (or 0, false, no, off)"
            ))),
        }
    }

    /// `~/<name>`, when the home directory is known.
    pub(crate) fn home_file(&self, name: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_read_is_in_the_docs_environment_table() {
        let page = include_str!("../../../docs/configuration.md");
        let start = page
            .find("\n## Environment variables and files\n")
            .expect("the section");
        let end = page[start + 1..]
            .find("\n## ")
            .map_or(page.len(), |e| start + 1 + e);
        let section = &page[start..end];
        for name in VARIABLES {
            assert!(
                section.contains(&format!("`{name}`")),
                "{name} is read by the remote providers but not in docs/configuration.md's table"
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not on the allow-list")]
    fn reading_a_variable_off_the_allow_list_is_caught_in_debug_builds() {
        let _ = Vars::empty().get("AWS_NOT_A_VARIABLE");
    }
}
