//! Where st-secrets keeps and looks for files: the home directory, `~`
//! expansion, and SimpleTuner's state directory. A leaf: the secrets file
//! provider, the remote providers, the credential key and the store all ask
//! here, and it imports nothing of the crate.

use std::path::PathBuf;

/// The user's home directory: `$HOME` when set and not empty, else the
/// account's home in the password database, as Python's `Path.home()`
/// (which SimpleTuner uses) finds it; `None` with neither.
pub(crate) fn home_dir() -> Option<PathBuf> {
    home_from(std::env::var_os("HOME"), std::env::home_dir)
}

/// [`home_dir`] from the value of `HOME` and a look-up of the account's
/// home (`std::env::home_dir` reads the password database when `HOME` is
/// unset).
fn home_from(
    home: Option<std::ffi::OsString>,
    account: impl FnOnce() -> Option<PathBuf>,
) -> Option<PathBuf> {
    match home.filter(|h| !h.is_empty()) {
        Some(h) => Some(PathBuf::from(h)),
        None => account().filter(|h| !h.as_os_str().is_empty()),
    }
}

/// `~/x` as `<home>/x`; any other path unchanged.
pub(crate) fn expand_home(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// SimpleTuner's directory, `~/.simpletuner` (secrets file, credential key,
/// default state); `None` without a home directory.
pub(crate) fn simpletuner_dir() -> Option<PathBuf> {
    home_dir().map(|h| h.join(".simpletuner"))
}

/// The path named by the environment variable `name`, `~` expanded; `None`
/// when it is unset or empty.
pub(crate) fn path_from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(|v| expand_home(PathBuf::from(v)))
}

/// The state directory, in SimpleTuner's order (`get_default_config_dir`):
/// `SIMPLETUNER_STATE_DIR`, else `SIMPLETUNER_CONFIG_DIR`, else the platform
/// default ([`default_state_dir`]); `None` when none applies.
pub(crate) fn state_dir() -> Option<PathBuf> {
    path_from_env("SIMPLETUNER_STATE_DIR")
        .or_else(|| path_from_env("SIMPLETUNER_CONFIG_DIR"))
        .or_else(default_state_dir)
}

/// The platform's default state directory. Linux: the first of
/// `/workspace/simpletuner`, `/notebooks/simpletuner` (the volumes of cloud
/// GPU and notebook machines) and `~/.simpletuner` that already has a
/// `cloud/` directory, else the first whose parent exists. macOS:
/// `~/Library/Application Support/SimpleTuner`.
fn default_state_dir() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        return home_dir().map(|h| h.join("Library/Application Support/SimpleTuner"));
    }
    let mut candidates = vec![
        PathBuf::from("/workspace/simpletuner"),
        PathBuf::from("/notebooks/simpletuner"),
    ];
    candidates.extend(simpletuner_dir());
    first_state_dir(&candidates)
}

/// Of `candidates`, the first with a `cloud/` directory, else the first
/// whose parent exists, else the last.
fn first_state_dir(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|c| c.join("cloud").is_dir())
        .or_else(|| {
            candidates
                .iter()
                .find(|c| c.parent().is_some_and(std::path::Path::is_dir))
        })
        .or(candidates.last())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_home_else_the_accounts_else_none() {
        let account = || Some(PathBuf::from("/home/from-passwd"));
        assert_eq!(
            home_from(Some("/h".into()), account),
            Some(PathBuf::from("/h"))
        );
        assert_eq!(
            home_from(None, account),
            Some(PathBuf::from("/home/from-passwd"))
        );
        assert_eq!(
            home_from(Some("".into()), account),
            Some(PathBuf::from("/home/from-passwd"))
        );
        assert_eq!(home_from(None, || None), None);
        assert_eq!(home_from(Some("".into()), || Some(PathBuf::new())), None);
    }

    #[test]
    fn the_state_dir_is_the_first_with_a_cloud_dir_else_the_first_whose_parent_exists() {
        // Issue 43, item 5: SimpleTuner looks in /workspace and /notebooks
        // before the home directory; the same order over a scratch root.
        let root = tempfile::TempDir::new().unwrap();
        let r = root.path();
        let candidates = [
            r.join("workspace/simpletuner"),
            r.join("notebooks/simpletuner"),
            r.join("home/.simpletuner"),
        ];
        let mkdir = |p: &str| std::fs::create_dir_all(r.join(p)).unwrap();
        mkdir("home");
        assert_eq!(first_state_dir(&candidates), Some(candidates[2].clone()));
        mkdir("notebooks");
        assert_eq!(first_state_dir(&candidates), Some(candidates[1].clone()));
        mkdir("workspace");
        assert_eq!(first_state_dir(&candidates), Some(candidates[0].clone()));
        mkdir("home/.simpletuner/cloud");
        assert_eq!(
            first_state_dir(&candidates),
            Some(candidates[2].clone()),
            "an existing database directory wins"
        );
        mkdir("notebooks/simpletuner/cloud");
        assert_eq!(first_state_dir(&candidates), Some(candidates[1].clone()));
        let nowhere = [r.join("none/a"), r.join("none/b")];
        assert_eq!(first_state_dir(&nowhere), Some(nowhere[1].clone()));
        assert_eq!(first_state_dir(&[]), None);
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = home_dir() {
            assert_eq!(expand_home(PathBuf::from("~/a/b")), home.join("a/b"));
            assert_eq!(simpletuner_dir(), Some(home.join(".simpletuner")));
        }
        assert_eq!(expand_home(PathBuf::from("/abs")), PathBuf::from("/abs"));
    }
}
