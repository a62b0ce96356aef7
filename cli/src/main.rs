//! The `st-secrets` binary: everything is in the crate's library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(st_secrets_cli::main_with_args(std::env::args_os().skip(1)))
}
