//! `st-secrets`: the secrets chain for shell launchers, over the library's
//! Rust API (not its C ABI). `src/main.rs` only calls [`main_with_args`];
//! the Python package's `st-secrets` console script calls it too.
//!
//! # Module map
//!
//! Every import points up this table: a module imports only what its row
//! names (checked, both ways, by the library's `tests/layout.rs`, which
//! reads the `imports` column).
//!
//! | module | what it holds | imports |
//! |---|---|---|
//! | `args` | the command line as clap reads it: every command, option and help text | nothing |
//! | `outcome` | `CliError`, `Outcome`: how a command ends, and its exit status | nothing |
//! | `childenv` | the variables that change how a child or the loader runs, never set from a provider unless named | nothing |
//! | `template` | `inject`'s `{{ st://KEY }}` references, and values written into YAML and JSON so the document keeps its shape | nothing |
//! | `envfile` | `--env-file`: dotenv files of `NAME=st://KEY` references and literals (dotenvy), with file and line | `template` |
//! | `sys` | the tool's system calls, the only module where `unsafe` is allowed: signals blocked and taken, a signal passed on, children reaped, a command's starting mask, a pipe's size, the user id | nothing |
//! | `secretfiles` | `run --file`: the private directory on a memory-backed filesystem and the 0600 files in it, removed on drop | `sys` |
//! | `scan` | `scan`'s engine: files and directories walked, containers opened (zip, gzip, tar, W&B, TensorBoard, safetensors), hits located | nothing |
//! | `prompt` | a hidden prompt that restores the terminal (inquire) | `outcome` |
//! | `io` | `--json` documents, raw values, stdin, private files written atomically | `outcome`, `prompt` |
//! | `context` | `Globals`: the global options, the manager and store they configure | `outcome`, `io` |
//! | `commands` | one file per command group: `secrets`, `crypto`, `store`, `export` (env, inject), `run`, `doctor`, `leak` (scan, redact), `job_token` | `args`, `outcome`, `childenv`, `template`, `envfile`, `secretfiles`, `sys`, `io`, `context`, `scan` |
//! | (root) | `main_with_args`: keeps the process out of core dumps, parses, dispatches, maps the outcome to an exit status | `args`, `outcome`, `io`, `context`, `commands`, `sys` |

#![deny(unsafe_code)]

mod args;
mod childenv;
mod commands;
mod context;
mod envfile;
mod io;
mod outcome;
mod prompt;
mod scan;
mod secretfiles;
#[allow(unsafe_code)]
mod sys;
mod template;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use commands::{crypto, doctor, export, job_token, leak, run, secrets, store};
use context::Globals;
use io::print_json;
use outcome::Outcome;
use std::ffi::OsString;
use sys::forbid_core_dumps;

fn version(g: &Globals) -> Outcome {
    if g.json {
        print_json(serde_json::json!({"version": st_secrets::VERSION}))?;
    } else {
        crate::io::outln!("st-secrets {}", st_secrets::VERSION);
    }
    Ok(0)
}

fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "st-secrets", &mut std::io::stdout());
    Ok(0)
}

fn dispatch(cli: Cli) -> Outcome {
    let g = Globals {
        config: cli.config,
        json: cli.json,
        db: cli.db,
    };
    match cli.command {
        Command::Run(args) => run::run(&g, args),
        Command::Env(args) => export::env(&g, args),
        Command::Inject(args) => export::inject(&g, args),
        Command::Get { key } => secrets::get(&g, &key),
        Command::Set { key, value } => secrets::set(&g, &key, value),
        Command::Delete { key } => secrets::delete(&g, &key),
        Command::Providers => secrets::providers(&g),
        Command::Doctor { keys } => doctor::doctor(&g, &keys),
        Command::Encrypt { value } => crypto::encrypt(&g, value),
        Command::Decrypt { value } => crypto::decrypt(&g, value),
        Command::Rotate { store: true } => crypto::rotate_store(&g),
        Command::Rotate { store: false } => crypto::rotate(&g),
        Command::Config(c) => store::config(&g, c),
        Command::Hardware { hardware } => store::hardware(&g, hardware),
        Command::Credential(c) => store::credential(&g, c),
        Command::Audit(c) => store::audit(&g, c),
        Command::NodeCache(c) => secrets::node_cache(&g, c),
        Command::Scan(args) => leak::scan(&g, args),
        Command::Redact(args) => leak::redact(&g, args),
        Command::JobToken(c) => job_token::job_token(c),
        Command::Completions { shell } => completions(shell),
        Command::Version => version(&g),
    }
}

/// The tool on `args` (without the program name); returns the exit status.
pub fn main_with_args(args: impl Iterator<Item = impl Into<OsString> + Clone>) -> u8 {
    forbid_core_dumps();
    let argv = std::iter::once(OsString::from("st-secrets")).chain(args.map(Into::into));
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; a usage
            // error (or no arguments at all) prints to stderr and exits 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    dispatch(cli).unwrap_or_else(outcome::CliError::report)
}

#[cfg(test)]
mod tests {
    /// build.rs renders the man pages with the tool crate's version standing
    /// in for the library's (`st_secrets::VERSION`, which `--version` prints):
    /// they must be one version.
    #[test]
    fn the_tool_and_the_library_share_one_version() {
        assert_eq!(env!("CARGO_PKG_VERSION"), st_secrets::VERSION);
    }
}
