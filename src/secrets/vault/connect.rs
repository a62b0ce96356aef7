//! How the provider is put together from its configuration (the kit's
//! [`Backend`]): the addresses, the way to log in and the secrets named, then
//! the client, the session, the KV mount and the leased secrets.

use super::auth::{self, Auth};
use super::client::Client;
use super::kv::Kv;
use super::leases::{self, Leases};
use super::ledger::{self, Ledger};
use super::login;
use super::session::Session;
use super::{addresses, Vault, VaultSecret, VaultSettings};
use crate::error::Error;
use crate::secrets::node::Scope;
use crate::secrets::remote::kit::{Backend, Configured, Kit};
use crate::secrets::transport::http::Address;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{RemoteSettings, Vars};
use std::sync::Arc;

/// What Vault's configuration gives beyond its secrets: the addresses and
/// the way to log in.
pub struct Found {
    urls: Vec<Address>,
    auth: Auth,
}

impl Backend for Vault {
    type Settings = VaultSettings;
    type Found = Found;

    fn configured(
        vault: &VaultSettings,
        remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<VaultSecret, Found>, Error> {
        let mut urls = addresses(vault, vars);
        let listed = match &vault.paths {
            Some(_) => None,
            None => vars
                .list(var::SIMPLETUNER_VAULT_PATH)
                .inspect_err(|e| urls = Err(e.clone()))
                .ok()
                .flatten(),
        };
        let paths = vault
            .paths
            .clone()
            .or_else(|| listed.map(|l| l.iter().map(|p| p.trim_matches('/').to_owned()).collect()))
            // Only leased secrets configured: no KV path unless one is named.
            .unwrap_or_else(|| match vault.leases {
                Some(_) => Vec::new(),
                None => vec!["simpletuner".to_owned()],
            });
        let names = paths
            .into_iter()
            .map(VaultSecret::Kv)
            .chain(
                vault
                    .leases
                    .iter()
                    .flat_map(|l| l.keys().cloned().map(VaultSecret::Leased)),
            )
            .collect();
        // An address without a way in (or the reverse) is a Vault meant
        // but not usable: not configured, and a "not found" names it.
        let no = |why| Ok(Configured::No { why, in_part: true });
        let unset = || {
            Error::ProviderUnavailable(
                "HashiCorp Vault is not configured: set vault_url (or vault_urls) or BAO_ADDR \
                 (or VAULT_ADDR)"
                    .into(),
            )
        };
        match (urls, Auth::resolve(vault, remote, vars)) {
            (Ok(None), Ok(None)) => Ok(Configured::No {
                why: unset(),
                in_part: false,
            }),
            (Ok(None), _) => no(unset()),
            (Err(e), Ok(None)) => no(e),
            (Ok(Some(_)), Ok(None)) => no(auth::no_way_to_authenticate(vault, vars)),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(Some(urls)), Ok(Some(auth))) => Ok(Configured::Yes {
                names,
                found: Found { urls, auth },
            }),
        }
    }

    fn scope(vault: &VaultSettings, _: &Found, scope: Scope) -> Scope {
        scope.with("token", vault.token.as_ref().map_or("", |t| t.expose()))
    }

    /// The parts of a working provider: the client for the addresses, the
    /// session of the way in (a login's token shared by the node's
    /// processes with the node cache on: its slot is named by the whole
    /// configuration, as a secret's is), the KV mount and the leased
    /// secrets.
    fn connect(vault: &VaultSettings, found: Found, kit: &Kit<'_>) -> Result<Vault, Error> {
        let (remote, vars) = (kit.remote, &kit.vars);
        let (dir, slot) = (
            kit.node_dir().map(|d| d.path()),
            kit.slot("vault login", &[]),
        );
        let cert = login::client_cert_files(vault, vars)?;
        let shown: Vec<String> = found.urls.iter().map(|a| a.shown.clone()).collect();
        let client = Arc::new(Client::new(
            vault,
            remote,
            vars,
            found.urls,
            dir,
            cert.as_ref(),
        )?);
        let at = ledger::at(&shown, client.namespace.as_deref());
        let ledger = Arc::new(Ledger::new(vars, slot.is_some(), at.clone()));
        let elsewhere = elsewhere(vault, remote, vars);
        let session = Session::new(client, found.auth, cert, slot, remote, Arc::clone(&ledger));
        let mount = vault
            .mount
            .clone()
            .or_else(|| {
                vars.get(var::SIMPLETUNER_VAULT_MOUNT)
                    .map(|v| v.trim_matches('/').to_owned())
            })
            .unwrap_or_else(|| "secret".to_owned());
        Ok(Vault {
            kv: Kv::new(Arc::clone(&session), mount, vault.kv_version),
            leases: Leases::new(
                Arc::clone(&session),
                vault.leases.clone().unwrap_or_default(),
                ledger,
                remote.clone(),
                (at, elsewhere),
            ),
            session,
            settings: remote.clone(),
        })
    }
}

/// Makes a client for another Vault (the addresses and namespace a job's
/// ledger line names) with this configuration's TLS settings and timeouts.
pub(super) fn elsewhere(
    vault: &VaultSettings,
    remote: &RemoteSettings,
    vars: &Vars,
) -> leases::Elsewhere {
    let (vault, remote, vars) = (vault.clone(), remote.clone(), vars.clone());
    Box::new(move |addresses, namespace| {
        let settings = VaultSettings {
            namespace,
            ..vault.clone()
        };
        let urls = addresses.iter().map(|a| Address::parse(a)).collect();
        Client::new(&settings, &remote, &vars, urls, None, None)
    })
}
