//! Renders what `scripts/install.sh` installs beside the tool, from the
//! tool's own command definitions (`src/args.rs`, compiled here as well):
//! the man pages (one per command, `st-secrets.1` and `st-secrets-run.1`,
//! ...) and the bash, zsh and fish completions, into
//! `<profile dir>/share-install/` laid out as under a prefix's `share/`.
//! Generated at build time, so a cross build (aarch64 on x86_64) ships them
//! without running the tool; `st-secrets completions SHELL` prints the same
//! completions at run time.

use clap::CommandFactory;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The library's version, as `args.rs` names it (`st_secrets::VERSION`): the
/// two crates share one version (asserted by a unit test of the tool).
mod st_secrets {
    pub const VERSION: &str = env!("CARGO_PKG_VERSION");
}

/// The command line itself; only its clap definitions are used here.
#[allow(dead_code)]
mod args {
    use crate::st_secrets;
    include!("src/args.rs");
}

fn main() {
    println!("cargo:rerun-if-changed=src/args.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let share = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <profile dir>/build/<pkg>/out")
        .join("share-install");

    let man_dir = share.join("man/man1");
    let _ = fs::remove_dir_all(&man_dir);
    fs::create_dir_all(&man_dir).expect("create share-install/man/man1");
    clap_mangen::generate_to(args::Cli::command(), &man_dir).expect("render the man pages");

    use clap_complete::Shell;
    for (shell, path) in [
        (Shell::Bash, "bash-completion/completions/st-secrets"),
        (Shell::Zsh, "zsh/site-functions/_st-secrets"),
        (Shell::Fish, "fish/vendor_completions.d/st-secrets.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut args::Cli::command(), "st-secrets", &mut text);
        write_if_changed(&share.join(path), &text);
    }
}

fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() == Some(bytes) {
        return;
    }
    fs::create_dir_all(path.parent().expect("a file under share-install/"))
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
