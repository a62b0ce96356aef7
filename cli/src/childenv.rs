//! The environment variables a secret never sets unless the user names it:
//! those that change how a child program, its shell, its interpreter or the
//! dynamic loader runs. A secret named `LD_PRELOAD` or `BASH_ENV` in a
//! remote store would otherwise load the store owner's code into every
//! command `run` starts. The one list: `run` and `env` consult it.

/// Variables refused by exact name.
pub const NAMES: &[&str] = &[
    // Shells.
    "BASH_ENV",
    "BASHOPTS",
    "CDPATH",
    "ENV",
    "GLOBIGNORE",
    "HOME",
    "IFS",
    "PATH",
    "PROMPT_COMMAND",
    "PS4",
    "SHELL",
    "SHELLOPTS",
    // The C library (glibc's list of variables unsafe for setuid programs).
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "MALLOC_TRACE",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
    // Interpreters and runtimes.
    "CLASSPATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "PERL5DB",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    // Programs other programs run.
    "BROWSER",
    "EDITOR",
    "GIT_ASKPASS",
    "GIT_EXEC_PATH",
    "GIT_PROXY_COMMAND",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "LESSCLOSE",
    "LESSOPEN",
    "MANPAGER",
    "PAGER",
    "SSH_ASKPASS",
    "VISUAL",
];

/// Variables refused by prefix: the loaders' (`LD_PRELOAD`,
/// `LD_LIBRARY_PATH`, `DYLD_INSERT_LIBRARIES`), every `PYTHON*`
/// (`PYTHONPATH`, `PYTHONSTARTUP`, `PYTHONBREAKPOINT`...), every `NODE_*`
/// (`NODE_OPTIONS`, `NODE_PATH`), bash's exported functions and git's
/// injected configuration.
pub const PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "PYTHON",
    "NODE_",
    "BASH_FUNC_",
    "GIT_CONFIG_",
];

/// Whether `name` changes how a child or the loader runs.
pub fn is_guarded(name: &str) -> bool {
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attacks_of_the_issue_are_guarded_and_ordinary_names_are_not() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "IFS",
            "PATH",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "PERL5OPT",
            "DYLD_INSERT_LIBRARIES",
        ] {
            assert!(is_guarded(name), "{name}");
        }
        for name in [
            "HF_TOKEN",
            "REPLICATE_API_TOKEN",
            "PATHNAME",
            "ENVIRONMENT",
            "AWS_REGION",
        ] {
            assert!(!is_guarded(name), "{name}");
        }
    }
}
