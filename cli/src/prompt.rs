//! Reading a value at a terminal without echo, through `inquire`: it puts the
//! terminal in raw mode, where Ctrl-C is a key rather than a signal, and
//! restores it on every way out (Enter, Ctrl-C, Esc, Ctrl-D, an error), so
//! an interrupted prompt never leaves the shell with echo off.

use crate::outcome::CliError;
use inquire::error::InquireError;
use inquire::{Password, PasswordDisplayMode};
use st_secrets::Error;

/// The line typed after `message`, shown as nothing at all.
pub fn hidden(message: &str) -> Result<String, CliError> {
    let answer = Password::new(message)
        .with_display_mode(PasswordDisplayMode::Hidden)
        .without_confirmation()
        .with_help_message("Enter to save, Esc or Ctrl-C to cancel")
        .prompt();
    match answer {
        Ok(value) => Ok(value),
        Err(InquireError::OperationInterrupted) | Err(InquireError::OperationCanceled) => {
            Err(CliError::Interrupted)
        }
        Err(e) => Err(CliError::Error(Error::Io(format!(
            "cannot read from the terminal: {e}"
        )))),
    }
}
