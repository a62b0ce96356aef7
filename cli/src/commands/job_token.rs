//! `job-token`: a Slurm site's job tokens ([docs](../../docs/job-token.md)):
//! the JWKS and OpenID discovery documents a site publishes for the
//! services that verify its jobs' tokens, and a token minted for a job
//! record read from stdin (what the plugin does in each job's prolog; for a
//! site checking its store's role before its jobs use it).

use crate::args::JobTokenCommand;
use crate::outcome::{usage, Outcome};
use st_secrets::job::token::{self as job_token, JobRecord, SigningKey};
use std::io::Read;
use std::time::{Duration, SystemTime};

/// The documents as published (no `schema` field: they are the standards').
fn publish(doc: &serde_json::Value) -> Outcome {
    let text = serde_json::to_string_pretty(doc)
        .map_err(|e| st_secrets::Error::Internal(format!("cannot print the document: {e}")))?;
    crate::io::outln!("{text}");
    Ok(0)
}

pub fn job_token(c: JobTokenCommand) -> Outcome {
    match c {
        JobTokenCommand::Jwks { keys } => {
            let keys = keys
                .iter()
                .map(|k| SigningKey::load(k))
                .collect::<Result<Vec<_>, _>>()?;
            publish(&job_token::jwks(&keys))
        }
        JobTokenCommand::Discovery { issuer } => publish(&job_token::discovery(&issuer)?),
        JobTokenCommand::Mint {
            key,
            issuer,
            audience,
            lifetime,
        } => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 << 10)
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("cannot read the job record from stdin: {e}")))?;
            let job: JobRecord = serde_json::from_str(&text)
                .map_err(|e| usage(format!("stdin is not a job record: {e}")))?;
            let key = SigningKey::load(&key)?;
            let lifetime = Duration::from_secs(lifetime);
            let minted =
                job_token::mint(&key, &issuer, &audience, &job, lifetime, SystemTime::now())?;
            crate::io::outln!("{}", minted.token.expose());
            Ok(0)
        }
    }
}
