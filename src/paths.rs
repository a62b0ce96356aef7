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

/// The state directory: `SIMPLETUNER_STATE_DIR`, else `SIMPLETUNER_CONFIG_DIR`,
/// else `~/.simpletuner` (SimpleTuner's order); `None` when none applies.
pub(crate) fn state_dir() -> Option<PathBuf> {
    path_from_env("SIMPLETUNER_STATE_DIR")
        .or_else(|| path_from_env("SIMPLETUNER_CONFIG_DIR"))
        .or_else(simpletuner_dir)
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
    fn home_is_expanded() {
        if let Some(home) = home_dir() {
            assert_eq!(expand_home(PathBuf::from("~/a/b")), home.join("a/b"));
            assert_eq!(simpletuner_dir(), Some(home.join(".simpletuner")));
        }
        assert_eq!(expand_home(PathBuf::from("/abs")), PathBuf::from("/abs"));
    }
}
