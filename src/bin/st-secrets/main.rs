//! `st-secrets`: the secrets chain for shell launchers (uses the Rust API).

use st_secrets::secrets::{self, ManagerConfig, SecretsManager};
use st_secrets::store::{hardware, Store};
use st_secrets::Error;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

const HELP: &str = "\
st-secrets: read and manage SimpleTuner secrets (env > secrets file)

Usage: st-secrets [--config FILE] [--json] COMMAND [ARGS]

Commands:
  get KEY              print the value of KEY (to stdout, nothing else)
  set KEY [--value V]  save KEY to the secrets file; the value is read from
                       stdin unless --value is given (keeps it out of shell history)
  delete KEY           remove KEY from the secrets file
  providers            the provider chain with availability and details
  doctor [KEY...]      explain where each key would come from (default: the
                       well-known keys) and report problems; values are never shown
  encrypt              encrypt the credential read from stdin (or --value) with
                       the credential key; prints the stored form (Z0FBQUFB...)
  decrypt              decrypt the ciphertext read from stdin (or --value)
  rotate               re-encrypt ciphertexts (one per line on stdin) under the
                       current key; prints them in the same order (a line that
                       cannot be decrypted is printed unchanged and reported)
  config get PROVIDER  a provider's configuration (JSON) from the store
  config set PROVIDER  replace it with the JSON object read from stdin
  config merge PROVIDER  apply the JSON merge patch read from stdin (atomic)
  hardware [HARDWARE]  hardware pricing (JSON); with HARDWARE, its hourly cost
  credential set PROVIDER NAME   store a credential (value from stdin or
                       --value), encrypted at rest
  credential get PROVIDER NAME   print it (decrypted)
  credential delete PROVIDER NAME
  audit list [--limit N]  the newest audit entries (JSON lines)
  audit verify [--expect COUNT:HASH]
                       check the audit chain; exit 1 at the first broken entry,
                       or when it no longer holds the anchor (entries removed)
  audit head           print the chain's anchor COUNT:HASH (keep it elsewhere)
  version              print the library version
  help                 this text

Options:
  --config FILE   JSON configuration (keys: file_path, env_prefix, cache_ttl,
                  negative_ttl, providers, aws_secret_name, aws_region,
                  aws_endpoint, vault_url, vault_token, vault_path,
                  vault_mount, vault_namespace, vault_kv_version,
                  connect_timeout, request_timeout, retries, max_stale,
                  failure_ttl); default: from the environment
  --json          machine-readable output (providers, doctor)
  --db FILE       the store's database (default: <state dir>/cloud/jobs.db;
                  state dir: SIMPLETUNER_STATE_DIR, SIMPLETUNER_CONFIG_DIR,
                  ~/.simpletuner)
  --store         with rotate: re-encrypt the credentials kept in the store

Credential key: SIMPLETUNER_CREDENTIAL_KEY, else ~/.simpletuner/credential.key
(SIMPLETUNER_CREDENTIAL_KEY_FILE), else a new one saved there; previous keys:
SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS (one per line) and the key file's later lines.

Exit codes: 0 success; 1 not found (get, delete, credential) or problems found
(doctor, audit verify); 2 usage error; 3 any other error (message on stderr with its ST_ code).

Examples:
  export HF_TOKEN=\"$(st-secrets get HF_TOKEN)\"
  printf '%s' \"$TOKEN\" | st-secrets set REPLICATE_API_TOKEN
  st-secrets --config ./secrets-config.json doctor REPLICATE_API_TOKEN
  st-secrets providers --json
  printf '%s' \"$TOKEN\" | st-secrets encrypt > token.enc
  st-secrets rotate < old-ciphertexts.txt > new-ciphertexts.txt
";

enum CliError {
    Usage(String),
    NotFound(String),
    Error(Error),
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

struct Options {
    config: Option<String>,
    json: bool,
    value: Option<String>,
    db: Option<String>,
    store: bool,
    limit: Option<usize>,
    expect: Option<String>,
    words: Vec<String>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, CliError> {
    let mut o = Options {
        config: None,
        json: false,
        value: None,
        db: None,
        store: false,
        limit: None,
        expect: None,
        words: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--config" => {
                o.config = Some(args.next().ok_or_else(|| usage("--config needs a FILE"))?)
            }
            "--value" => o.value = Some(args.next().ok_or_else(|| usage("--value needs a value"))?),
            "--db" => o.db = Some(args.next().ok_or_else(|| usage("--db needs a FILE"))?),
            "--store" => o.store = true,
            "--expect" => {
                o.expect = Some(
                    args.next()
                        .ok_or_else(|| usage("--expect needs COUNT:HASH"))?,
                )
            }
            "--limit" => {
                let n = args.next().ok_or_else(|| usage("--limit needs a number"))?;
                o.limit = Some(n.parse().map_err(|_| usage("--limit needs a number"))?);
            }
            "-h" | "--help" => o.words.insert(0, "help".into()),
            s if s.starts_with("--config=") => o.config = Some(s["--config=".len()..].into()),
            s if s.starts_with("--value=") => o.value = Some(s["--value=".len()..].into()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage(&format!("unknown option {s}")))
            }
            _ => o.words.push(a),
        }
    }
    Ok(o)
}

fn usage(message: &str) -> CliError {
    CliError::Usage(message.to_owned())
}

fn manager(o: &Options) -> Result<SecretsManager, CliError> {
    let config = match &o.config {
        None => ManagerConfig::from_environment(),
        Some(path) => ManagerConfig::from_file(path.as_ref())?,
    };
    Ok(SecretsManager::new(config)?)
}

fn one_key<'a>(o: &'a Options, command: &str) -> Result<&'a str, CliError> {
    match o.words.as_slice() {
        [_, key] => Ok(key),
        _ => Err(usage(&format!("{command} takes exactly one KEY"))),
    }
}

/// The value for `set`: --value, else stdin (one trailing newline removed).
fn read_value(o: &Options) -> Result<String, CliError> {
    if let Some(v) = &o.value {
        return Ok(v.clone());
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("value (input hidden, end with Enter): ");
        set_echo(false);
    }
    let mut value = String::new();
    let read = if interactive {
        stdin.read_line(&mut value).map(|_| ())
    } else {
        stdin.lock().read_to_string(&mut value).map(|_| ())
    };
    if interactive {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| Error::Io(format!("cannot read the value from stdin: {e}")))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        // Almost always a mistake (an empty pipe); --value "" says it on purpose.
        return Err(usage(
            "no value on stdin (use --value \"\" to save an empty value)",
        ));
    }
    Ok(value)
}

/// Turns terminal echo off or on with stty (best effort, so that a typed secret
/// does not appear on screen).
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

fn run(o: &Options) -> Result<bool, CliError> {
    let command = o.words.first().map(String::as_str).unwrap_or("help");
    match command {
        "help" => {
            print!("{HELP}");
            Ok(true)
        }
        "version" => {
            println!("st-secrets {}", st_secrets::VERSION);
            Ok(true)
        }
        "get" => {
            let key = one_key(o, "get")?;
            let value = manager(o)?
                .get(key)?
                .ok_or_else(|| CliError::NotFound(format!("secret '{key}' was not found")))?;
            print_raw(value.expose(), false)?;
            Ok(true)
        }
        "set" => {
            let key = one_key(o, "set")?;
            let m = manager(o)?;
            let value = read_value(o)?;
            m.set(key, &value)?;
            let path = m
                .file_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            eprintln!("saved '{key}' ({} bytes) to {path}", value.len());
            Ok(true)
        }
        "delete" => {
            let key = one_key(o, "delete")?;
            if manager(o)?.delete(key)? {
                eprintln!("deleted '{key}'");
                Ok(true)
            } else {
                Err(CliError::NotFound(format!(
                    "secret '{key}' is not in the secrets file"
                )))
            }
        }
        "providers" => {
            if o.words.len() != 1 {
                return Err(usage("providers takes no arguments"));
            }
            let m = manager(o)?;
            if o.json {
                println!("{}", m.providers_json());
            } else {
                for entry in m.providers() {
                    let s = entry.status;
                    let state = if s.available {
                        "available"
                    } else {
                        "unavailable"
                    };
                    println!("{:<6} {:<12} {}", s.name, state, s.detail);
                    for w in s.warnings {
                        println!("{:<6} {:<12} {w}", "", "WARNING");
                    }
                }
            }
            Ok(true)
        }
        "doctor" => doctor(o),
        "encrypt" | "decrypt" => {
            if o.words.len() != 1 {
                return Err(usage(&format!(
                    "{command} reads its input from stdin or --value"
                )));
            }
            let input = read_value(o)?;
            let output = if command == "encrypt" {
                st_secrets::crypto::encrypt(&input)?
            } else {
                st_secrets::crypto::decrypt(&input)?.expose().to_owned()
            };
            print_raw(&output, command == "encrypt")?;
            Ok(true)
        }
        "rotate" if o.store => {
            let r = open_store(o)?.rotate_credentials()?;
            println!(
                "{}",
                serde_json::json!({"rotated": r.rotated, "current": r.current, "failed": r.failed})
            );
            if r.failed > 0 {
                return Err(CliError::Error(Error::InvalidToken(format!(
                    "{} stored credential(s) could not be decrypted with the current or previous keys",
                    r.failed
                ))));
            }
            Ok(true)
        }
        "rotate" => rotate(o),
        "config" => config_command(o),
        "hardware" => {
            let store = open_store(o)?;
            match o.words.as_slice() {
                [_] => println!("{}", hardware::info(Some(&store))?),
                [_, id] => println!("{}", hardware::hourly_cost(Some(&store), Some(id))?),
                _ => return Err(usage("hardware takes at most one HARDWARE")),
            }
            Ok(true)
        }
        "credential" => credential_command(o),
        "audit" => audit_command(o),
        other => Err(usage(&format!("unknown command '{other}'"))),
    }
}

/// The doctor's look at the provider-config store, without creating it: its
/// audit chain, and whether it holds fewer audit entries than it recorded
/// after its last write (a truncated or replaced database). Returns one line.
fn store_check(o: &Options, problems: &mut Vec<String>) -> String {
    let path = match o.db.as_ref().map(std::path::PathBuf::from) {
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

fn open_store(o: &Options) -> Result<Store, CliError> {
    Ok(Store::open(o.db.as_deref().map(std::path::Path::new))?)
}

fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
    Ok(text)
}

fn config_command(o: &Options) -> Result<bool, CliError> {
    let [_, action, provider] = o.words.as_slice() else {
        return Err(usage("config takes get|set|merge PROVIDER"));
    };
    let store = open_store(o)?;
    match action.as_str() {
        "get" => println!("{}", store.get_provider_config(provider)?),
        "set" => store.save_provider_config(provider, &read_stdin()?)?,
        "merge" => println!("{}", store.merge_provider_config(provider, &read_stdin()?)?),
        other => return Err(usage(&format!("unknown config action '{other}'"))),
    }
    Ok(true)
}

fn credential_command(o: &Options) -> Result<bool, CliError> {
    let [_, action, provider, name] = o.words.as_slice() else {
        return Err(usage("credential takes set|get|delete PROVIDER NAME"));
    };
    let store = open_store(o)?;
    match action.as_str() {
        "set" => {
            let value = read_value(o)?;
            store.set_credential(provider, name, &value)?;
            eprintln!(
                "stored credential '{name}' of '{provider}' ({} bytes, encrypted)",
                value.len()
            );
        }
        "get" => match store.get_credential(provider, name)? {
            Some(v) => print_raw(v.expose(), false)?,
            None => {
                return Err(CliError::NotFound(format!(
                    "no credential '{name}' for provider '{provider}'"
                )))
            }
        },
        "delete" => {
            if !store.delete_credential(provider, name)? {
                return Err(CliError::NotFound(format!(
                    "no credential '{name}' for provider '{provider}'"
                )));
            }
        }
        other => return Err(usage(&format!("unknown credential action '{other}'"))),
    }
    Ok(true)
}

fn audit_command(o: &Options) -> Result<bool, CliError> {
    let store = open_store(o)?;
    match o.words.get(1).map(String::as_str) {
        Some("list") if o.words.len() == 2 => {
            for entry in store.audit_entries(o.limit.unwrap_or(50))? {
                println!(
                    "{}",
                    serde_json::to_string(&entry).map_err(|e| Error::Internal(e.to_string()))?
                );
            }
            Ok(true)
        }
        Some("head") if o.words.len() == 2 => {
            println!("{}", store.audit_head()?);
            Ok(true)
        }
        Some("verify") if o.words.len() == 2 => {
            let report = match &o.expect {
                None => store.verify_audit()?,
                Some(anchor) => match store.verify_audit_against(anchor) {
                    Err(Error::Store(m)) => {
                        println!("audit trail BROKEN: {m}");
                        return Ok(false);
                    }
                    other => other?,
                },
            };
            match report.first_broken {
                None => {
                    println!("audit trail intact: {} entries verified", report.entries);
                    Ok(true)
                }
                Some((id, why)) => {
                    println!("audit trail BROKEN at entry {id}: {why}");
                    Ok(false)
                }
            }
        }
        _ => Err(usage(
            "audit takes list [--limit N] | verify [--expect COUNT:HASH] | head",
        )),
    }
}

/// Prints `text` as it is, followed by a newline when `newline` is set or
/// stdout is a terminal (so `$(st-secrets get KEY)` gets the value alone).
fn print_raw(text: &str, newline: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let newline = newline || out.is_terminal();
    out.write_all(text.as_bytes())
        .and_then(|_| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|_| out.flush())
        .map_err(|e| CliError::Error(Error::Io(format!("cannot write to stdout: {e}"))))
}

/// Re-encrypts stdin's ciphertexts (one per line) under the current key.
fn rotate(o: &Options) -> Result<bool, CliError> {
    if o.words.len() != 1 {
        return Err(usage("rotate reads ciphertexts from stdin"));
    }
    let cipher = st_secrets::crypto::cipher()?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
    let (mut changed, mut current, mut failed) = (0usize, 0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for (number, line) in input.lines().enumerate() {
        let text = if line.trim().is_empty() {
            line.to_owned()
        } else {
            match cipher.reencrypt(line) {
                Ok(r) if r.changed => {
                    changed += 1;
                    r.ciphertext
                }
                Ok(r) => {
                    current += 1;
                    r.ciphertext
                }
                Err(e) => {
                    failed += 1;
                    eprintln!(
                        "st-secrets: line {}: {}: {e} (kept unchanged)",
                        number + 1,
                        e.code_name()
                    );
                    line.to_owned()
                }
            }
        };
        writeln!(out, "{text}").map_err(|e| Error::Io(format!("cannot write to stdout: {e}")))?;
    }
    eprintln!(
        "rotate: {changed} re-encrypted, {current} already under the current key, {failed} failed"
    );
    if failed > 0 {
        return Err(CliError::Error(Error::InvalidToken(format!(
            "{failed} ciphertext(s) could not be decrypted with the current or previous keys"
        ))));
    }
    Ok(true)
}

/// The remote providers' live checks (credential source, caller identity,
/// whether the secret is readable) as report lines; failures are added to
/// `problems`.
fn remote_checks(diagnosis: &serde_json::Value, problems: &mut Vec<String>) -> Vec<String> {
    let mut lines = Vec::new();
    let error = |e: &serde_json::Value| {
        format!(
            "{}: {}",
            e["code"].as_str().unwrap_or("ST_INTERNAL"),
            e["message"].as_str().unwrap_or_default()
        )
    };
    for entry in diagnosis.as_array().into_iter().flatten() {
        let (name, c) = (entry["name"].as_str().unwrap_or_default(), &entry["checks"]);
        if !c.is_object() {
            continue;
        }
        lines.push(format!("{name} checks:"));
        if let Some(e) = c.get("error") {
            lines.push(format!("  configuration: {}", error(e)));
            problems.push(format!("provider '{name}': {}", error(e)));
            continue;
        }
        for (label, key) in [
            ("secret", "secret"),
            ("region", "region"),
            ("endpoint", "endpoint"),
            ("url", "url"),
            ("namespace", "namespace"),
            ("kv", "kv_version"),
        ] {
            if let Some(v) = c[key].as_str() {
                lines.push(format!("  {label:<12} {v}"));
            }
        }
        match (c["credentials"].as_str(), c.get("credentials_error")) {
            (Some(source), _) => lines.push(format!("  {:<12} {source}", "credentials")),
            (None, Some(e)) => {
                lines.push(format!("  {:<12} NONE ({})", "credentials", error(e)));
                problems.push(format!("provider '{name}': credentials: {}", error(e)));
            }
            _ => {}
        }
        if let Some(caller) = c.get("caller") {
            match caller.get("error") {
                Some(e) => {
                    lines.push(format!("  {:<12} unknown ({})", "caller", error(e)));
                    problems.push(format!("provider '{name}': caller identity: {}", error(e)));
                }
                None => lines.push(format!(
                    "  {:<12} {} (account {})",
                    "caller",
                    caller["arn"].as_str().unwrap_or("?"),
                    caller["account"].as_str().unwrap_or("?")
                )),
            }
        }
        if let Some(h) = c.get("health") {
            let text = match (h.get("error"), h["supported"].as_bool()) {
                (Some(e), _) => {
                    problems.push(format!("provider '{name}': health: {}", error(e)));
                    format!("unknown ({})", error(e))
                }
                (None, Some(false)) => "not reported by this server (no sys/health)".to_owned(),
                _ => format!(
                    "HTTP {}, sealed: {}, version {}",
                    h["status"],
                    h["sealed"],
                    h["version"].as_str().unwrap_or("?")
                ),
            };
            lines.push(format!("  {:<12} {text}", "health"));
        }
        if let Some(t) = c.get("token") {
            if t["valid"] == true {
                lines.push(format!(
                    "  {:<12} valid ({}, policies {})",
                    "token",
                    t["display_name"].as_str().unwrap_or("?"),
                    t["policies"]
                ));
            } else {
                let why = t.get("error").map(&error).unwrap_or_default();
                lines.push(format!("  {:<12} INVALID ({why})", "token"));
                problems.push(format!("provider '{name}': token: {why}"));
            }
        }
        let r = &c["secret_readable"];
        if r["readable"] == true {
            lines.push(format!(
                "  {:<12} readable ({} keys)",
                "secret read", r["keys"]
            ));
        } else if r.is_object() {
            let why = r.get("error").map_or_else(
                || r["reason"].as_str().unwrap_or_default().to_owned(),
                &error,
            );
            lines.push(format!("  {:<12} NOT READABLE ({why})", "secret read"));
            problems.push(format!("provider '{name}': secret not readable: {why}"));
        }
    }
    lines
}

fn doctor(o: &Options) -> Result<bool, CliError> {
    let m = manager(o)?;
    let keys: Vec<String> = if o.words.len() > 1 {
        o.words[1..].to_vec()
    } else {
        [
            secrets::REPLICATE_API_TOKEN,
            secrets::HF_TOKEN,
            secrets::WEBHOOK_SECRET,
        ]
        .map(String::from)
        .to_vec()
    };
    let env = secrets::EnvProvider::new(m.config().env_prefix.clone());
    let mut problems: Vec<String> = Vec::new();
    let mut report_keys = Vec::new();
    for key in &keys {
        let trace = m.trace(key)?;
        let answered = trace.iter().find(|a| matches!(a.outcome, Ok(Some(_))));
        let answers: Vec<serde_json::Value> = trace
            .iter()
            .map(|a| {
                let (state, detail) = match &a.outcome {
                    Ok(Some(len)) => ("found", format!("{len} bytes")),
                    Ok(None) => ("absent", String::new()),
                    Err(e) => ("error", format!("{}: {}", e.code_name(), e)),
                };
                serde_json::json!({"provider": a.provider, "state": state, "detail": detail})
            })
            .collect();
        for a in &trace {
            if let Err(e) = &a.outcome {
                problems.push(format!("{key}: provider '{}' failed: {e}", a.provider));
            }
        }
        if answered.is_none() {
            problems.push(format!("{key}: not found by any provider"));
        }
        report_keys.push(serde_json::json!({
            "key": key,
            "env_variable": env.variable_name(key),
            "answered_by": answered.map(|a| a.provider),
            "providers": answers,
        }));
    }
    let chain = m.providers();
    for entry in &chain {
        for w in &entry.status.warnings {
            problems.push(format!("provider '{}': {w}", entry.status.name));
        }
    }
    let diagnosis: serde_json::Value = serde_json::from_str(&m.diagnose_json())
        .map_err(|e| Error::Internal(format!("doctor JSON: {e}")))?;
    let checks = remote_checks(&diagnosis, &mut problems);
    let store_state = store_check(o, &mut problems);
    if o.json {
        let report = serde_json::json!({
            "version": st_secrets::VERSION,
            "chain": diagnosis,
            "secrets_file": m.file_path().map(|p| p.display().to_string()),
            "store": store_state,
            "keys": report_keys,
            "problems": problems,
        });
        println!("{report}");
    } else {
        println!("st-secrets {}", st_secrets::VERSION);
        println!("chain (first match wins):");
        for entry in &chain {
            let s = &entry.status;
            let state = if s.available {
                "available"
            } else {
                "unavailable"
            };
            println!("  {:<6} {:<12} {}", s.name, state, s.detail);
        }
        if let Some(p) = m.file_path() {
            println!("secrets file: {}", p.display());
        }
        println!("store: {store_state}");
        for line in &checks {
            println!("{line}");
        }
        println!("keys:");
        for k in &report_keys {
            let key = k["key"].as_str().unwrap_or_default();
            match k["answered_by"].as_str() {
                Some(p) => println!("  {key:<22} found in {p}"),
                None => println!("  {key:<22} NOT FOUND"),
            }
            println!(
                "  {:<22} env variable: {}",
                "",
                k["env_variable"].as_str().unwrap_or_default()
            );
            for a in k["providers"].as_array().into_iter().flatten() {
                println!(
                    "  {:<22} {:<6} {} {}",
                    "",
                    a["provider"].as_str().unwrap_or_default(),
                    a["state"].as_str().unwrap_or_default(),
                    a["detail"].as_str().unwrap_or_default()
                );
            }
        }
        if problems.is_empty() {
            println!("no problems found");
        } else {
            println!("problems:");
            for p in &problems {
                println!("  - {p}");
            }
        }
    }
    Ok(problems.is_empty())
}

fn main() -> ExitCode {
    ExitCode::from(main_with_args(std::env::args().skip(1)))
}

/// The tool on `args` (without the program name); returns the exit status.
/// The Python package's `st-secrets` console script runs the tool through
/// this function (the file is compiled into its extension module too).
pub fn main_with_args(args: impl Iterator<Item = String>) -> u8 {
    let outcome = parse_args(args).and_then(|o| run(&o));
    match outcome {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(CliError::NotFound(m)) => {
            eprintln!("st-secrets: {m}");
            1
        }
        Err(CliError::Usage(m)) => {
            eprintln!("st-secrets: {m}\n(see st-secrets help)");
            2
        }
        Err(CliError::Error(e)) => {
            eprintln!("st-secrets: {}: {e}", e.code_name());
            3
        }
    }
}
