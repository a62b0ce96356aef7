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
    // git: the programs it runs and the paths it reads or writes.
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CEILING_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_DIR",
    "GIT_EDITOR",
    "GIT_EXTERNAL_DIFF",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PAGER",
    "GIT_SEQUENCE_EDITOR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_SSL_NO_VERIFY",
    "GIT_TEMPLATE_DIR",
    "GIT_WORK_TREE",
    // Proxies: every request of the command would go through the store
    // owner's host.
    "ALL_PROXY",
    "FTP_PROXY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "all_proxy",
    "ftp_proxy",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    // Certificate authorities: a CA of the store owner's would be trusted.
    "AWS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_DIR",
    "SSL_CERT_FILE",
    // Package indexes: what an install in the command would fetch.
    "GOFLAGS",
    "GONOSUMDB",
    "GOPROXY",
    "GOSUMDB",
    // Where programs find their configuration (and the credentials in it),
    // or the daemon they talk to.
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "CURL_HOME",
    "DOCKER_CERT_PATH",
    "DOCKER_CONFIG",
    "DOCKER_HOST",
    "INPUTRC",
    "KUBECONFIG",
    "WGETRC",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_DIRS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_DIRS",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "ZDOTDIR",
];

/// Variables refused by prefix: the loaders' (`LD_PRELOAD`,
/// `LD_LIBRARY_PATH`, `DYLD_INSERT_LIBRARIES`), every `PYTHON*`
/// (`PYTHONPATH`, `PYTHONSTARTUP`, `PYTHONBREAKPOINT`...), every `NODE_*`
/// (`NODE_OPTIONS`, `NODE_PATH`), bash's exported functions and git's
/// injected configuration, git's trace files, and the package managers'
/// settings (`PIP_INDEX_URL`, `UV_INDEX_URL`, `npm_config_registry`,
/// `CONDA_CHANNELS`...).
pub const PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "PYTHON",
    "NODE_",
    "BASH_FUNC_",
    "GIT_CONFIG_",
    "GIT_TRACE",
    "PIP_",
    "UV_",
    "NPM_CONFIG_",
    "npm_config_",
    "CONDA_",
    "CARGO_",
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
            // Program-steering variables by family: git's programs and
            // paths, proxies, CA bundles, package indexes, config files.
            "GIT_EXTERNAL_DIFF",
            "GIT_PAGER",
            "GIT_EDITOR",
            "GIT_DIR",
            "GIT_SEQUENCE_EDITOR",
            "GIT_TEMPLATE_DIR",
            "GIT_TRACE2_EVENT",
            "DOCKER_HOST",
            "KUBECONFIG",
            "HTTPS_PROXY",
            "https_proxy",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "UV_INDEX_URL",
            "SSL_CERT_FILE",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "AWS_CONFIG_FILE",
            "XDG_CONFIG_HOME",
            "ZDOTDIR",
        ] {
            assert!(is_guarded(name), "{name}");
        }
        for name in [
            "HF_TOKEN",
            "REPLICATE_API_TOKEN",
            "PATHNAME",
            "ENVIRONMENT",
            "AWS_REGION",
            "GIT_TOKEN",
            "GITHUB_TOKEN",
            "WANDB_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(!is_guarded(name), "{name}");
        }
    }
}
