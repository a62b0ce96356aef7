//! Secrets handed to a job's processes as files, so their environment holds
//! paths, never values: `run --as-files` and the C ABI's
//! `st_secrets_write_files` (what the Slurm plugin writes on each node).
//!
//! **The conventions** (`Layout::Conventions`): which file each secret goes
//! to and which variable names its path.
//!
//! | variables resolved | file | variable set to its path | read by |
//! |---|---|---|---|
//! | `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) | the token | `HF_TOKEN_PATH` | `huggingface_hub` |
//! | `WANDB_API_KEY` | a netrc: `machine <host of WANDB_BASE_URL, else api.wandb.ai> login user password <key>` | `NETRC` | `wandb`, `requests`, curl (`--netrc-file`) |
//! | a W&B token exchange's credential | W&B's credentials file ([`wandb_exchanged`]) | `WANDB_CREDENTIALS_FILE`, with `WANDB_IDENTITY_TOKEN_FILE` and `WANDB_BASE_URL` | `wandb` (wandb-core) |
//! | an Anthropic token exchange's credential | the SDK's profile, a directory ([`anthropic_exchanged`]) | `ANTHROPIC_CONFIG_DIR`, with `ANTHROPIC_PROFILE` | `anthropic` |
//! | `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) | a credentials file, profile `$AWS_PROFILE` (else `default`) | `AWS_SHARED_CREDENTIALS_FILE` | every AWS SDK and the CLI |
//! | any other `NAME` | the value | `NAME_FILE` | the `*_FILE` convention (Docker images' entrypoints, many tools) |
//!
//! **References** (`Layout::Keys`): one file per key, the directory a
//! mounted-secrets provider reads (`SIMPLETUNER_SECRETS_DIRS`), and
//! `NAME=st://KEY` for each variable, which the process's own library
//! resolves from that directory.
//!
//! The plan and the files' contents are pure (`conventions`);
//! [`write_files`] fetches every value first, then writes each file new
//! (0600 from its first byte, never through an existing name), owned by
//! the job's user when asked, into a directory on a memory-backed
//! filesystem; a failure removes what it wrote. [`refresh_files`] rewrites
//! the files of short-lived credentials (a token exchange's) as the library
//! renews them, each atomically and with the access of the file it
//! replaces; the others are never read again. Which keys are exchanged
//! and the vendor's file for each: `exchanged`, over the manager's
//! configuration.

mod conventions;
mod exchanged;
mod write;

pub use conventions::{
    anthropic_exchanged, file_path, plan, refusal, render, render_ending, render_files,
    wandb_exchanged, Delivery, Render, ANTHROPIC_PROFILE,
};
pub use exchanged::{exchange_of, exchanged_delivery, ManagerValues};
pub use write::{
    check_name, create_new_private, parse_wanted, plain_name, refresh_files, replace_file,
    write_files, JobValues, Layout, Refreshed, Wanted, MAX_WANTED,
};

#[cfg(test)]
mod tests;
