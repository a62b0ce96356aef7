//! How a command ends: its status, or how it failed (which decides the exit
//! status `main_with_args` returns).

use st_secrets::Error;

/// How a command failed.
pub enum CliError {
    /// A usage error: exit 2.
    Usage(String),
    /// Something asked for is absent: exit 1.
    NotFound(String),
    /// Any other error: exit 3, with its `ST_` code.
    Error(Error),
    /// Ctrl-C at a prompt: exit 130.
    Interrupted,
    /// stdout's reader went away (`st-secrets providers | head -1`): exit
    /// 141 (128 + SIGPIPE, what a shell reports for a tool killed by it),
    /// printing nothing.
    ClosedPipe,
}

impl From<Error> for CliError {
    /// "Not found" from the library exits 1 like every other absence.
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => CliError::NotFound(m),
            other => CliError::Error(other),
        }
    }
}

/// What a command ended with: `Ok(0)` success, `Ok(1)` problems reported,
/// any other status (`run`: the command's).
pub type Outcome = Result<u8, CliError>;

/// A usage error with `message`.
pub fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

impl CliError {
    /// Prints the failure to stderr and returns the exit status.
    pub fn report(self) -> u8 {
        match self {
            CliError::NotFound(m) => {
                eprintln!("st-secrets: {m}");
                1
            }
            CliError::Usage(m) => {
                eprintln!("st-secrets: {m}\n(see st-secrets --help)");
                2
            }
            CliError::Error(e) => {
                eprintln!("st-secrets: {}: {e}", e.code_name());
                3
            }
            CliError::Interrupted => {
                eprintln!("st-secrets: interrupted");
                130
            }
            CliError::ClosedPipe => 141,
        }
    }
}
