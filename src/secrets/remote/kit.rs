//! The provider kit: what every remote provider does the same way to put
//! itself together. A backend says what it is configured with
//! ([`Backend::configured`]: its secrets, or why it is not configured) and
//! how to connect ([`Backend::connect`]); the kit places the process in its
//! job, decides the node cache's use, names the node's entries after the
//! configuration (the [`Scope`]), builds the provider that is not
//! configured or cannot work, and hands a working fetcher to
//! [`RemoteSource`]. A new backend is its folder, these two functions and
//! its line in the manager's list of remote providers
//! (`secrets::remote_provider`).

use super::source::{Fetch, RemoteSource};
use crate::error::Error;
use crate::secrets::node::{NodeDir, NodeUse, Scope, Slot};
use crate::secrets::transport::http::Http;
use crate::secrets::transport::{RemoteSettings, Vars};
use std::sync::Arc;

/// What a backend's configuration names.
pub enum Configured<S, F> {
    /// The provider is not configured: every key is absent, quietly. `why`
    /// says what to set; `in_part` when something of it is set though it
    /// cannot work (an address without a way to log in), so that a "not
    /// found" names it.
    No {
        /// What to set.
        why: Error,
        /// Something of it is set.
        in_part: bool,
    },
    /// The provider is configured with these secrets, in order, and what
    /// else `connect` needs that reading the configuration found.
    Yes {
        /// The secrets, in order.
        names: Vec<S>,
        /// What else the configuration gave.
        found: F,
    },
}

/// A remote service as the kit builds its provider.
pub trait Backend: Fetch + Sized {
    /// The provider's own settings (the configuration keys it reads).
    type Settings: std::fmt::Debug;

    /// What reading the configuration found beyond the secrets' names
    /// (an agent's address, the addresses and a way to log in).
    type Found;

    /// What `settings` and `vars` configure, `remote` being the process's
    /// placed settings.
    ///
    /// # Errors
    /// A configuration that names the provider but is malformed (a bad
    /// secret name, an unreadable list): reported on every lookup.
    fn configured(
        settings: &Self::Settings,
        remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<Self::Secret, Self::Found>, Error>;

    /// `scope` with what else names the node's entries beyond the
    /// provider's settings and variables.
    fn scope(_settings: &Self::Settings, _found: &Self::Found, scope: Scope) -> Scope {
        scope
    }

    /// The working service.
    ///
    /// # Errors
    /// What keeps it from working (no region, an unreadable CA file, no
    /// credentials): reported on every lookup and in the status.
    fn connect(settings: &Self::Settings, found: Self::Found, kit: &Kit<'_>)
        -> Result<Self, Error>;
}

/// What a backend connects with: the process's settings placed in its job,
/// its variables, and the node cache's use under the configuration's scope.
pub struct Kit<'a> {
    /// The remote settings, placed in the job.
    pub(crate) remote: &'a RemoteSettings,
    /// The variables read.
    pub(crate) vars: Vars,
    /// Whether the node's processes share through the node cache.
    pub(crate) node: &'a NodeUse,
    /// The configuration's scope of the node's entries.
    pub(crate) scope: &'a Scope,
}

impl Kit<'_> {
    /// The node cache's directory, when it is on.
    pub(crate) fn node_dir(&self) -> Option<&Arc<NodeDir>> {
        match self.node {
            NodeUse::On(dir) => Some(dir),
            _ => None,
        }
    }

    /// The node's entry `name`, named also by the settings `extra` (label,
    /// value), when the node cache is on.
    pub(crate) fn slot(&self, name: &str, extra: &[(&str, &str)]) -> Option<Slot> {
        let dir = self.node_dir()?;
        let scope = extra
            .iter()
            .fold(self.scope.clone(), |s, (label, value)| s.with(label, value));
        Some(scope.slot(dir, name))
    }

    /// The node's processes slow down together when `server` pushes back
    /// on `http`, when the node cache is on.
    pub(crate) fn share_pace(&self, http: &Http, server: &str) {
        if let Some(dir) = self.node_dir() {
            http.share_pace(dir.path(), server);
        }
    }
}

/// A provider's list of secrets: the configuration's (`configured`), else
/// the comma-separated variable `var`'s, each name read by `parse`; `None`
/// when neither names one.
///
/// # Errors
/// A list the variable cannot hold, or a name `parse` refuses.
pub(crate) fn listed<S>(
    configured: Option<&[String]>,
    vars: &Vars,
    var: &str,
    parse: impl Fn(&str) -> Result<S, Error>,
) -> Result<Option<Vec<S>>, Error> {
    let names = match configured {
        Some(names) => Some(names.to_vec()),
        None => vars.list(var)?,
    };
    names
        .map(|n| n.iter().map(|s| parse(s)).collect())
        .transpose()
}

impl<F: Backend> RemoteSource<F> {
    /// The provider for `settings`, reading `vars` (see each backend's
    /// module documentation). Configuration problems do not fail here: the
    /// provider reports them on every lookup and in its status, and the
    /// rest of the chain keeps working.
    pub fn new(settings: &F::Settings, remote: &RemoteSettings, vars: Vars) -> Self {
        // The node's place in its job: a scheduler's variables refused are
        // the configured provider's problem.
        let placed = remote.placed(&vars);
        let (remote, misplaced) = match &placed {
            Ok(placed) => (placed, None),
            Err(e) => (remote, Some(e.clone())),
        };
        let unused = || Scope::new(F::NAME, &vars);
        let (names, found) = match F::configured(settings, remote, &vars) {
            Ok(Configured::No { why, in_part }) => {
                return RemoteSource::build(
                    Vec::new(),
                    false,
                    Err(why),
                    remote,
                    NodeUse::Off,
                    &unused(),
                )
                .marked_in_part(in_part)
            }
            Err(e) => {
                return RemoteSource::build(
                    Vec::new(),
                    true,
                    Err(e),
                    remote,
                    NodeUse::Off,
                    &unused(),
                )
            }
            Ok(Configured::Yes { names, found }) => (names, found),
        };
        if let Some(e) = misplaced {
            return RemoteSource::build(names, true, Err(e), remote, NodeUse::Off, &unused());
        }
        let node = NodeUse::resolve(remote, &vars);
        let scope = F::scope(
            settings,
            &found,
            Scope::new(F::NAME, &vars).with("settings", &format!("{settings:?}")),
        );
        let fetcher = {
            let kit = Kit {
                remote,
                vars,
                node: &node,
                scope: &scope,
            };
            F::connect(settings, found, &kit)
        };
        RemoteSource::build(names, true, fetcher, remote, node, &scope)
    }
}

/// The service of `settings` alone, beside any chain (a tool's own use):
/// not placed in a job, sharing nothing with the node.
///
/// # Errors
/// What the provider would report: not configured, or why it cannot work.
pub fn alone<F: Backend>(
    settings: &F::Settings,
    remote: &RemoteSettings,
    vars: Vars,
) -> Result<F, Error> {
    match F::configured(settings, remote, &vars)? {
        Configured::No { why, .. } => Err(why),
        Configured::Yes { found, .. } => {
            let scope = Scope::new(F::NAME, &vars);
            let kit = Kit {
                remote,
                vars,
                node: &NodeUse::Off,
                scope: &scope,
            };
            F::connect(settings, found, &kit)
        }
    }
}
