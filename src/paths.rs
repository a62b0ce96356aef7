//! Where st-secrets keeps and looks for files: the home directory, `~`
//! expansion, and SimpleTuner's state directory. A leaf: the secrets file
//! provider, the remote providers, the credential key and the store all ask
//! here, and it imports nothing of the crate.

use std::path::PathBuf;

/// The user's home directory: `$HOME`, else the password database's.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(std::env::home_dir)
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
    fn home_is_expanded() {
        if let Some(home) = home_dir() {
            assert_eq!(expand_home(PathBuf::from("~/a/b")), home.join("a/b"));
            assert_eq!(simpletuner_dir(), Some(home.join(".simpletuner")));
        }
        assert_eq!(expand_home(PathBuf::from("/abs")), PathBuf::from("/abs"));
    }
}
