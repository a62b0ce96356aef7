//! The files a vendor's SDK reads an exchanged credential from, when it
//! reads one of its own rather than a variable: what a job's delivery asks
//! of the exchange's profile ([`Profile::vendor_file`]), so that the
//! delivery knows the file formats and the profile the vendors.

use super::profile::{ExchangeSettings, Profile};
use crate::secrets::transport::Vars;
use std::path::PathBuf;

/// A vendor's own file for an exchanged credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VendorFile {
    /// W&B's credentials file (wandb-core), which wandb reads only beside
    /// an identity token file: the subject token's file, `None` when the
    /// subject is minted for each exchange and has none.
    Wandb {
        /// The API's base URL (the endpoint without `/oidc/token`).
        base_url: String,
        /// The subject token's file.
        subject_file: Option<PathBuf>,
    },
    /// Anthropic's SDK profile directory.
    Anthropic {
        /// The API's base URL (the endpoint without `/v1/oauth/token`).
        base_url: String,
        /// The organization the profile names.
        organization_id: String,
    },
}

impl Profile {
    /// The vendor's own file for a credential `fields` exchange (the
    /// subject's file named in `vars`), if its SDK reads one; `None` for a
    /// vendor whose SDK takes a variable.
    pub fn vendor_file(self, fields: &ExchangeSettings, vars: &Vars) -> Option<VendorFile> {
        let endpoint = self.endpoint(fields);
        match self {
            Profile::Wandb => Some(VendorFile::Wandb {
                base_url: base(&endpoint, "/oidc/token"),
                subject_file: fields.subject_file(vars),
            }),
            Profile::Anthropic => Some(VendorFile::Anthropic {
                base_url: base(&endpoint, "/v1/oauth/token"),
                organization_id: fields.organization_id.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// `endpoint` without its token path `path`.
fn base(endpoint: &str, path: &str) -> String {
    endpoint.strip_suffix(path).unwrap_or(endpoint).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(profile: &str, url: Option<&str>) -> ExchangeSettings {
        ExchangeSettings {
            profile: profile.into(),
            url: url.map(str::to_owned),
            subject_token_file: Some("/run/job/sub.jwt".into()),
            organization_id: Some("org-1".into()),
            ..ExchangeSettings::default()
        }
    }

    #[test]
    fn the_profile_names_the_vendors_own_file() {
        let vars = Vars::empty();
        let wandb = fields("wandb", Some("https://wandb.example.org/oidc/token"));
        assert_eq!(
            Profile::Wandb.vendor_file(&wandb, &vars),
            Some(VendorFile::Wandb {
                base_url: "https://wandb.example.org".into(),
                subject_file: Some("/run/job/sub.jwt".into()),
            })
        );
        let anthropic = fields("anthropic", None);
        assert_eq!(
            Profile::Anthropic.vendor_file(&anthropic, &vars),
            Some(VendorFile::Anthropic {
                base_url: "https://api.anthropic.com".into(),
                organization_id: "org-1".into(),
            })
        );
        let hf = fields("huggingface", None);
        assert_eq!(Profile::HuggingFace.vendor_file(&hf, &vars), None);
        assert_eq!(Profile::OpenAi.vendor_file(&hf, &vars), None);
    }
}
