//! `get`, `set`, `delete` and `providers`: the chain's secrets one key at a
//! time, and the chain itself; `node-cache`: the remote values its
//! providers share on the node.

use crate::args::NodeCacheCommand;
use crate::context::{environment_holder, not_found_message, Globals};
use crate::io::{print_json, print_raw, read_value};
use crate::outcome::{CliError, Outcome};
use st_secrets::Error;

pub fn get(g: &Globals, key: &str) -> Outcome {
    let m = g.manager()?;
    let Some(found) = m.get_with_version(key)? else {
        return Err(CliError::NotFound(not_found_message(&m, key)));
    };
    if found.version.as_ref().is_some_and(|v| v.leased) {
        return Err(crate::context::leased_refusal(key));
    }
    let value = found.value;
    if g.json {
        print_json(
            serde_json::json!({"key": key, "provider": found.provider, "value": value.expose()}),
        )?;
    } else {
        print_raw(value.expose(), false)?;
    }
    Ok(0)
}

pub fn set(g: &Globals, key: &str, value: Option<String>) -> Outcome {
    let m = g.manager()?;
    let value = zeroize::Zeroizing::new(read_value(value, "value")?);
    m.set(key, &value)?;
    let path = m
        .file_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    eprintln!("saved '{key}' to {path}");
    if let Some(var) = environment_holder(&m, key) {
        eprintln!(
            "note: the environment variable {var} is set and comes first: get answers from it"
        );
    }
    Ok(0)
}

pub fn delete(g: &Globals, key: &str) -> Outcome {
    let m = g.manager()?;
    let file = m.file_path().map_or_else(
        || "the secrets file".to_owned(),
        |p| p.display().to_string(),
    );
    let env = environment_holder(&m, key);
    let env_note = env.as_ref().map(|var| {
        format!("; the environment variable {var} still sets it, and get answers from it")
    });
    if m.delete(key)? {
        eprintln!(
            "deleted '{key}' from {file}{}",
            env_note.unwrap_or_default()
        );
        Ok(0)
    } else {
        Err(CliError::NotFound(format!(
            "secret '{key}' is not in {file}{}",
            env_note.unwrap_or_default()
        )))
    }
}

pub fn providers(g: &Globals) -> Outcome {
    let m = g.manager()?;
    if g.json {
        let chain: serde_json::Value = serde_json::from_str(&m.providers_json())
            .map_err(|e| Error::Internal(format!("providers JSON: {e}")))?;
        print_json(serde_json::json!({"providers": chain}))?;
        return Ok(0);
    }
    for entry in m.providers() {
        let s = entry.status;
        let state = if s.available {
            "available"
        } else {
            "unavailable"
        };
        crate::io::outln!(
            "{}",
            format!("{:<7} {:<12} {}", s.name, state, s.detail).trim_end()
        );
        for w in s.warnings {
            crate::io::outln!("{:<7} {:<12} {w}", "", "WARNING");
        }
    }
    Ok(0)
}

/// `node-cache status` and `node-cache clear`.
pub fn node_cache(g: &Globals, command: NodeCacheCommand) -> Outcome {
    use st_secrets::secrets::{node_cache_clear, node_cache_status, Vars};
    let remote = g.config()?.remote;
    let vars = Vars::from_process();
    let dir = |s: &st_secrets::secrets::NodeCacheStatus| s.dir.display().to_string();
    match command {
        NodeCacheCommand::Status => {
            let s = node_cache_status(&remote, &vars);
            if g.json {
                print_json(serde_json::json!({
                    "enabled": s.enabled, "dir": dir(&s), "exists": s.exists,
                    "refused": s.refused, "fresh": s.fresh, "failures": s.failures,
                    "expired": s.expired, "bytes": s.bytes,
                }))?;
                return Ok(0);
            }
            let on = if s.enabled {
                "on"
            } else {
                "off (SIMPLETUNER_NODE_CACHE=1 or \"node_cache\": true turns it on)"
            };
            crate::io::outln!("node cache  {on}");
            let state = match (&s.refused, s.exists) {
                (Some(why), _) => format!("REFUSED: {why}"),
                (None, false) => "not created yet".into(),
                (None, true) => "private, memory-backed".into(),
            };
            crate::io::outln!("directory   {} ({state})", dir(&s));
            crate::io::outln!(
                "entries     {} fresh, {} failures, {} expired ({} bytes)",
                s.fresh,
                s.failures,
                s.expired,
                s.bytes
            );
            Ok(if s.refused.is_some() { 1 } else { 0 })
        }
        NodeCacheCommand::Clear => {
            let left = node_cache_clear(&remote, &vars)?;
            if g.json {
                print_json(serde_json::json!({"left": left}))?;
            } else if left == 0 {
                crate::io::outln!("node cache cleared");
            } else {
                crate::io::outln!("node cache cleared but {left} entries being fetched now");
            }
            Ok(0)
        }
    }
}
