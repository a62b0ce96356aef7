//! `config`, `hardware`, `credential` and `audit`: the provider-config store.

use crate::args::{AuditCommand, ConfigCommand, CredentialCommand};
use crate::context::Globals;
use crate::io::{parse_own_json, print_json, print_raw, read_stdin, read_value};
use crate::outcome::{CliError, Outcome};
use st_secrets::store::hardware;
use st_secrets::Error;

pub fn config(g: &Globals, c: ConfigCommand) -> Outcome {
    let store = g.store()?;
    let (provider, config) = match c {
        ConfigCommand::Get { provider } => {
            let config = store.get_provider_config(&provider)?;
            (provider, config)
        }
        ConfigCommand::Set { provider } => {
            store.save_provider_config(&provider, &read_stdin()?)?;
            return Ok(0);
        }
        ConfigCommand::Merge { provider } => {
            let config = store.merge_provider_config(&provider, &read_stdin()?)?;
            (provider, config)
        }
    };
    if g.json {
        print_json(serde_json::json!({"provider": provider, "config": parse_own_json(&config)?}))?;
    } else {
        crate::io::outln!("{config}");
    }
    Ok(0)
}

pub fn hardware(g: &Globals, id: Option<String>) -> Outcome {
    let store = g.store()?;
    match (id, g.json) {
        (None, false) => crate::io::outln!("{}", hardware::info(Some(&store))?),
        (None, true) => print_json(
            serde_json::json!({"hardware": parse_own_json(&hardware::info(Some(&store))?)?}),
        )?,
        (Some(id), false) => {
            crate::io::outln!("{}", hardware::hourly_cost(Some(&store), Some(&id))?)
        }
        (Some(id), true) => print_json(serde_json::json!({
            "hardware": id, "cost_per_hour": hardware::hourly_cost(Some(&store), Some(&id))?
        }))?,
    }
    Ok(0)
}

pub fn credential(g: &Globals, c: CredentialCommand) -> Outcome {
    let store = g.store()?;
    let missing =
        |provider: &str, name: &str| format!("no credential '{name}' for provider '{provider}'");
    match c {
        CredentialCommand::Set {
            provider,
            name,
            value,
        } => {
            let value = zeroize::Zeroizing::new(read_value(value, "credential")?);
            store.set_credential(&provider, &name, &value)?;
            eprintln!("stored credential '{name}' of '{provider}' (encrypted)");
        }
        CredentialCommand::Get { provider, name } => {
            match store.get_credential(&provider, &name)? {
                Some(v) if g.json => print_json(
                    serde_json::json!({"provider": provider, "name": name, "value": v.expose()}),
                )?,
                Some(v) => print_raw(v.expose(), false)?,
                None => return Err(CliError::NotFound(missing(&provider, &name))),
            }
        }
        CredentialCommand::Delete { provider, name } => {
            if !store.delete_credential(&provider, &name)? {
                return Err(CliError::NotFound(missing(&provider, &name)));
            }
        }
    }
    Ok(0)
}

pub fn audit(g: &Globals, c: AuditCommand) -> Outcome {
    let store = g.store()?;
    match c {
        AuditCommand::List { limit } => {
            let entries = store.audit_entries(limit)?;
            if g.json {
                print_json(serde_json::json!({"entries": entries}))?;
            } else {
                for entry in entries {
                    crate::io::outln!("{}", serde_json::json!(entry));
                }
            }
            Ok(0)
        }
        AuditCommand::Head => {
            let head = store.audit_head()?;
            if g.json {
                let (count, hash) = head.split_once(':').unwrap_or((&head, ""));
                print_json(
                    serde_json::json!({"count": count.parse::<u64>().unwrap_or(0), "hash": hash}),
                )?;
            } else {
                crate::io::outln!("{head}");
            }
            Ok(0)
        }
        AuditCommand::Verify { expect } => {
            let report = match expect {
                None => store.verify_audit()?,
                Some(anchor) => match store.verify_audit_against(&anchor) {
                    Err(Error::Store(m)) => {
                        if g.json {
                            print_json(serde_json::json!({"intact": false, "problem": m}))?;
                        } else {
                            crate::io::outln!("audit trail BROKEN: {m}");
                        }
                        return Ok(1);
                    }
                    other => other?,
                },
            };
            let intact = report.first_broken.is_none();
            if g.json {
                print_json(serde_json::json!({
                    "intact": intact,
                    "entries": report.entries,
                    "first_broken": report.first_broken.as_ref().map(|(id, why)| serde_json::json!({"id": id, "reason": why})),
                }))?;
            } else if let Some((id, why)) = &report.first_broken {
                crate::io::outln!("audit trail BROKEN at entry {id}: {why}");
            } else {
                crate::io::outln!("audit trail intact: {} entries verified", report.entries);
            }
            Ok(u8::from(!intact))
        }
    }
}
