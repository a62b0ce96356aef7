//! `st-secrets doctor`: where each key would come from, the chain's live
//! checks and the store's audit state; values never appear, nor their lengths.

use crate::context::Globals;
use crate::io::print_json;
use crate::outcome::{CliError, Outcome};
use st_secrets::secrets::{self, EnvProvider};
use st_secrets::store::Store;
use st_secrets::Error;

/// The doctor's look at the provider-config store, without creating it: its
/// audit chain, and whether it holds fewer audit entries than it recorded
/// after its last write (a truncated or replaced database). Returns one line.
fn store_check(g: &Globals, problems: &mut Vec<String>) -> String {
    let path = match g.db.clone() {
        Some(p) => p,
        None => match st_secrets::store::default_db_path() {
            Ok(p) => p,
            Err(e) => return format!("none ({e})"),
        },
    };
    let recorded = st_secrets::store::recorded_head_path(&path);
    if !path.exists() {
        if recorded.exists() {
            problems.push(format!(
                "store: {} is missing, but a store there had recorded audit entries ({}): deleted?",
                path.display(),
                recorded.display()
            ));
            return format!("{} MISSING", path.display());
        }
        return format!("{} (not created yet)", path.display());
    }
    let store = match Store::open(Some(&path)) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("store: {e}"));
            return format!("{} FAILED ({})", path.display(), e.code_name());
        }
    };
    let report = match store.verify_audit() {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("store: {e}"));
            return format!("{} FAILED ({})", path.display(), e.code_name());
        }
    };
    if let Some((id, why)) = &report.first_broken {
        problems.push(format!("store: audit trail broken at entry {id}: {why}"));
    }
    if let Some((had, _)) = store.recorded_audit_head() {
        if had > report.entries {
            problems.push(format!(
                "store: {} had {had} audit entries after its last write and now has {}: \
                 truncated or replaced?",
                path.display(),
                report.entries
            ));
        }
    }
    format!("{}: {} audit entries", path.display(), report.entries)
}

/// The remote providers' live checks, as the lines each provider's
/// diagnosis gives (`label`, `text`, and the problem a line is, if one).
fn remote_checks(diagnosis: &serde_json::Value, problems: &mut Vec<String>) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in diagnosis.as_array().into_iter().flatten() {
        let (name, c) = (entry["name"].as_str().unwrap_or_default(), &entry["checks"]);
        if !c.is_object() {
            continue;
        }
        lines.push(format!("{name} checks:"));
        for l in c["lines"].as_array().into_iter().flatten() {
            let label = l["label"].as_str().unwrap_or_default();
            lines.push(format!(
                "  {label:<12} {}",
                l["text"].as_str().unwrap_or_default()
            ));
            if let Some(problem) = l["problem"].as_str() {
                problems.push(format!("provider '{name}': {problem}"));
            }
        }
    }
    lines
}

/// One key's report: which provider answered, and the answers of the
/// providers that are configured (an unconfigured provider says nothing).
fn key_report(
    m: &secrets::SecretsManager,
    env: &EnvProvider,
    available: &[&'static str],
    key: &str,
    required: bool,
    problems: &mut Vec<String>,
) -> Result<serde_json::Value, CliError> {
    let trace = m.trace(key)?;
    let answered = trace.iter().find(|a| matches!(a.outcome, Ok(Some(_))));
    let mut answers = Vec::new();
    let mut failed = false;
    for a in &trace {
        let state = match &a.outcome {
            Ok(Some(_)) => serde_json::json!({"provider": a.provider, "state": "found"}),
            Ok(None) if available.contains(&a.provider) => {
                serde_json::json!({"provider": a.provider, "state": "absent"})
            }
            Ok(None) => continue,
            Err(e) => {
                failed = true;
                problems.push(format!("{key}: provider '{}' failed: {e}", a.provider));
                serde_json::json!({"provider": a.provider, "state": "error",
                    "error": {"code": e.code_name(), "message": e.to_string()}})
            }
        };
        answers.push(state);
    }
    // A failure already explains a missing key: one problem, not two.
    if answered.is_none() && required && !failed {
        let why = match m.non_secret_holder(key) {
            Some(p) => format!(" ({p} holds it with a value that is not a secret)"),
            None => String::new(),
        };
        problems.push(format!("{key}: not found by any provider{why}"));
    }
    Ok(serde_json::json!({
        "key": key,
        "required": required,
        "env_variable": env.variable_name(key),
        "answered_by": answered.map(|a| a.provider),
        "providers": answers,
    }))
}

/// The keys `doctor` checks: those asked (required), else the well-known
/// ones (optional).
fn keys_to_check(asked: &[String]) -> (Vec<String>, bool) {
    if asked.is_empty() {
        let known = [
            secrets::REPLICATE_API_TOKEN,
            secrets::HF_TOKEN,
            secrets::WEBHOOK_SECRET,
        ];
        (known.map(String::from).to_vec(), false)
    } else {
        (asked.to_vec(), true)
    }
}

pub fn doctor(g: &Globals, asked: &[String]) -> Outcome {
    let m = g.manager()?;
    let (keys, required) = keys_to_check(asked);
    let env = EnvProvider::new(m.config().env_prefix.clone());
    let chain = m.providers();
    let available: Vec<&'static str> = chain
        .iter()
        .filter(|e| e.status.available)
        .map(|e| e.status.name)
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let mut report_keys = Vec::new();
    for key in &keys {
        let report = key_report(&m, &env, &available, key, required, &mut problems)?;
        report_keys.push(report);
    }
    for entry in &chain {
        for w in &entry.status.warnings {
            problems.push(format!("provider '{}': {w}", entry.status.name));
        }
    }
    let diagnosis: serde_json::Value = serde_json::from_str(&m.diagnose_json())
        .map_err(|e| Error::Internal(format!("doctor JSON: {e}")))?;
    let checks = remote_checks(&diagnosis, &mut problems);
    let store_state = store_check(g, &mut problems);
    let memory = secrets::secret_memory();
    if g.json {
        print_json(serde_json::json!({
            "version": st_secrets::VERSION,
            "chain": diagnosis,
            "secrets_file": m.file_path().map(|p| p.display().to_string()),
            "store": store_state,
            "secret_memory": {
                "mapped": memory.mapped,
                "locked": memory.locked,
                "lock_refused": memory.lock_refused,
                "in_use": memory.in_use,
            },
            "keys": report_keys,
            "problems": problems,
        }))?;
        return Ok(u8::from(!problems.is_empty()));
    }
    let mut lines = chain_lines(&chain, m.file_path(), &store_state, &memory);
    lines.extend(checks);
    lines.extend(key_lines(&report_keys, required));
    if problems.is_empty() {
        lines.push("no problems found".to_owned());
    } else {
        lines.push("problems:".to_owned());
        lines.extend(problems.iter().map(|p| format!("  - {p}")));
    }
    for line in lines {
        crate::io::outln!("{}", line.trim_end());
    }
    Ok(u8::from(!problems.is_empty()))
}

/// The report's first lines: the version, the chain, the secrets file, the
/// store and the secret memory.
fn chain_lines(
    chain: &[secrets::ChainEntry],
    file: Option<std::path::PathBuf>,
    store_state: &str,
    memory: &secrets::SecretMemory,
) -> Vec<String> {
    let mut lines = vec![
        format!("st-secrets {}", st_secrets::VERSION),
        "chain (first match wins):".to_owned(),
    ];
    for entry in chain {
        let s = &entry.status;
        let state = if s.available {
            "available"
        } else {
            "unavailable"
        };
        lines.push(format!("  {:<7} {:<12} {}", s.name, state, s.detail));
    }
    if let Some(p) = file {
        lines.push(format!("secrets file: {}", p.display()));
    }
    lines.push(format!("store: {store_state}"));
    lines.push(format!(
        "secret memory: {} KiB out of core dumps, {} KiB locked in RAM{}",
        memory.mapped / 1024,
        memory.locked / 1024,
        match memory.lock_refused {
            0 => String::new(),
            n => format!(" (mlock refused {n} times: RLIMIT_MEMLOCK; values may reach swap)"),
        }
    ));
    lines
}

/// The lines of each key's report: where it was found, its variable, and
/// each provider's answer.
fn key_lines(report_keys: &[serde_json::Value], required: bool) -> Vec<String> {
    let mut lines = vec![if required {
        "keys:"
    } else {
        "well-known keys (optional):"
    }
    .to_owned()];
    for k in report_keys {
        let key = k["key"].as_str().unwrap_or_default();
        let state = match k["answered_by"].as_str() {
            Some(p) => format!("found in {p}"),
            None if required => "NOT FOUND".to_owned(),
            None => "not set".to_owned(),
        };
        lines.push(format!("  {key:<22} {state}"));
        lines.push(format!(
            "  {:<22} env variable: {}",
            "",
            k["env_variable"].as_str().unwrap_or_default()
        ));
        for a in k["providers"].as_array().into_iter().flatten() {
            let detail = a["error"]["code"]
                .as_str()
                .map_or_else(String::new, |code| {
                    format!(
                        "{code}: {}",
                        a["error"]["message"].as_str().unwrap_or_default()
                    )
                });
            lines.push(format!(
                "  {:<22} {:<7} {} {detail}",
                "",
                a["provider"].as_str().unwrap_or_default(),
                a["state"].as_str().unwrap_or_default(),
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::remote_checks;
    use serde_json::json;

    #[test]
    fn the_providers_lines_are_shown_and_their_problems_named() {
        let diagnosis = json!([
            { "name": "env", "checks": null },
            { "name": "vault", "checks": { "lines": [
                { "label": "url", "text": "http://a", "ok": true, "problem": null },
                { "label": "cluster", "text": "no node serves", "ok": false,
                  "problem": "no node of the cluster serves" },
            ]}},
        ]);
        let mut problems = Vec::new();
        let lines = remote_checks(&diagnosis, &mut problems);
        assert_eq!(
            lines,
            [
                "vault checks:",
                "  url          http://a",
                "  cluster      no node serves"
            ]
        );
        assert_eq!(
            problems,
            ["provider 'vault': no node of the cluster serves"]
        );
    }
}
