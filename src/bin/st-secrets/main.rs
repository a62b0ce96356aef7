//! `st-secrets`: the secrets chain for shell launchers (uses the Rust API).
//!
//! This file parses the command line (clap, derive) and runs the small
//! commands. `child` starts a command with the secrets in its environment
//! (`run`), `mask` conceals their values in its output, `export` prints them
//! for shells and fills templates (`env`, `inject`), `doctor` explains the
//! chain, and `prompt` reads a value at a terminal without echo.

mod child;
mod doctor;
mod export;
mod mask;
mod prompt;

use clap::{CommandFactory, Parser, Subcommand};
use st_secrets::secrets::{EnvProvider, ManagerConfig, SecretsManager};
use st_secrets::store::{hardware, Store};
use st_secrets::Error;
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Version of the `--json` documents: bumped when a field changes meaning or
/// goes away (new fields do not bump it).
const SCHEMA: u64 = 1;

const AFTER_HELP: &str = "\
Secrets are looked up in the chain environment > secrets file > AWS Secrets
Manager > Vault (first match wins; configure it with --config or the
environment). Values are printed only by get, decrypt, credential get and env.

Credential key: SIMPLETUNER_CREDENTIAL_KEY, else ~/.simpletuner/credential.key
(SIMPLETUNER_CREDENTIAL_KEY_FILE), else a new one saved there; previous keys:
SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS (one per line) and the key file's later lines.

Exit codes: 0 success; 1 not found (get, delete, credential, inject, run before
the command starts) or problems found (doctor, audit verify); 2 usage error;
3 any other error (message on stderr with its ST_ code); 130 a prompt
interrupted with Ctrl-C. run exits with its command's status (128+N when the
command dies of signal N).

Examples:
  st-secrets run -- torchrun train.py          # every secret in its environment
  st-secrets run --only HF_TOKEN -- accelerate launch train.py
  eval \"$(st-secrets env --only HF_TOKEN,WANDB_API_KEY)\"
  st-secrets inject -i accelerate.tmpl.yaml -o accelerate.yaml
  printf '%s' \"$TOKEN\" | st-secrets set REPLICATE_API_TOKEN
  st-secrets doctor HF_TOKEN
  st-secrets completions bash > /etc/bash_completion.d/st-secrets";

#[derive(Parser)]
#[command(
    name = "st-secrets",
    version = st_secrets::VERSION,
    about = "Read and manage SimpleTuner secrets; start commands with them",
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// JSON configuration of the chain (keys: file_path, env_prefix,
    /// cache_ttl, providers, aws_*, vault_*, timeouts); default: the
    /// environment
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print a JSON document (with "schema": 1) instead of text
    #[arg(long, global = true)]
    json: bool,

    /// The store's database (default: <state dir>/cloud/jobs.db; state dir:
    /// SIMPLETUNER_STATE_DIR, SIMPLETUNER_CONFIG_DIR, ~/.simpletuner)
    #[arg(long, global = true, value_name = "FILE")]
    db: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a command with secrets in its environment, masking their values
    /// in its output
    #[command(after_help = child::AFTER_HELP)]
    Run(child::RunArgs),
    /// Print secrets for eval, direnv, a dotenv file or a CI step
    #[command(after_help = export::ENV_AFTER_HELP)]
    Env(export::EnvArgs),
    /// Fill {{ st://KEY }} references in a template; write the result 0600
    #[command(after_help = export::INJECT_AFTER_HELP)]
    Inject(export::InjectArgs),
    /// Print the value of KEY (alone, a newline only at a terminal)
    Get {
        /// The key (HF_TOKEN; hf-token finds HF_TOKEN too)
        key: String,
    },
    /// Save KEY to the secrets file (mode 0600); the value comes from stdin,
    /// a hidden prompt at a terminal, or --value
    Set {
        key: String,
        /// The value (visible in `ps` and shell history: prefer stdin)
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// Remove KEY from the secrets file
    Delete { key: String },
    /// The provider chain, with availability and details
    Providers,
    /// Explain where each key comes from and report problems (never values)
    Doctor {
        /// Keys that must be found (default: report the well-known keys,
        /// which may be absent)
        keys: Vec<String>,
    },
    /// Encrypt a credential (stdin, prompt or --value) with the credential
    /// key; prints the stored form
    Encrypt {
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// Decrypt a ciphertext (stdin or --value)
    Decrypt {
        #[arg(long, value_name = "CIPHERTEXT")]
        value: Option<String>,
    },
    /// Re-encrypt ciphertexts (one per line on stdin) under the current key
    Rotate {
        /// Re-encrypt the credentials kept in the store instead
        #[arg(long)]
        store: bool,
    },
    /// A provider's configuration in the store
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Hardware pricing; with HARDWARE, its hourly cost
    Hardware { hardware: Option<String> },
    /// Credentials kept encrypted in the store
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// The store's tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the version
    Version,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration (JSON)
    Get { provider: String },
    /// Replace it with the JSON object read from stdin
    Set { provider: String },
    /// Apply the JSON merge patch read from stdin (atomic); print the result
    Merge { provider: String },
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Store a credential (stdin, prompt or --value), encrypted at rest
    Set {
        provider: String,
        name: String,
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// Print it (decrypted)
    Get { provider: String, name: String },
    /// Delete it
    Delete { provider: String, name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The newest entries (JSON lines)
    List {
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: usize,
    },
    /// Check the chain; exit 1 at the first broken entry, or when it no
    /// longer holds the anchor (entries removed)
    Verify {
        #[arg(long, value_name = "COUNT:HASH")]
        expect: Option<String>,
    },
    /// Print the chain's anchor COUNT:HASH (keep it elsewhere)
    Head,
}

/// How a command failed, which decides the exit status.
enum CliError {
    Usage(String),
    NotFound(String),
    Error(Error),
    /// Ctrl-C at a prompt.
    Interrupted,
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
type Outcome = Result<u8, CliError>;

/// The global options every command sees.
struct Globals {
    config: Option<PathBuf>,
    json: bool,
    db: Option<PathBuf>,
}

impl Globals {
    fn manager(&self) -> Result<SecretsManager, CliError> {
        let config = match &self.config {
            None => ManagerConfig::from_environment(),
            Some(path) => ManagerConfig::from_file(path)?,
        };
        Ok(SecretsManager::new(config)?)
    }

    fn store(&self) -> Result<Store, CliError> {
        Ok(Store::open(self.db.as_deref())?)
    }
}

/// Prints `doc` with `"schema"` first.
fn print_json(mut doc: serde_json::Value) {
    let mut out = serde_json::Map::new();
    out.insert("schema".into(), SCHEMA.into());
    if let Some(fields) = doc.as_object_mut() {
        out.append(fields);
    }
    println!("{}", serde_json::Value::Object(out));
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// The value for `set`, `encrypt`, `decrypt` and `credential set`: `value`,
/// else a hidden prompt at a terminal, else stdin (one trailing newline
/// removed).
fn read_value(value: Option<String>, what: &str) -> Result<String, CliError> {
    if let Some(v) = value {
        return Ok(v);
    }
    let mut value = if std::io::stdin().is_terminal() {
        prompt::hidden(&format!("{what} (input hidden):"))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| Error::Io(format!("cannot read the {what} from stdin: {e}")))?;
        text
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        // Almost always a mistake (an empty pipe); --value "" says it on purpose.
        return Err(usage(format!(
            "no {what} given (use --value \"\" for an empty one)"
        )));
    }
    Ok(value)
}

fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
    Ok(text)
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

fn get(g: &Globals, key: &str) -> Outcome {
    let m = g.manager()?;
    let Some((value, provider)) = m.get_with_source(key)? else {
        return Err(CliError::NotFound(not_found_message(&m, key)));
    };
    if g.json {
        print_json(serde_json::json!({"key": key, "provider": provider, "value": value.expose()}));
    } else {
        print_raw(value.expose(), false)?;
    }
    Ok(0)
}

/// Why `key` was not found: no provider has it, or one holds it with a value
/// that is not a secret.
fn not_found_message(m: &SecretsManager, key: &str) -> String {
    match m.non_secret_holder(key) {
        Some(p) => format!(
            "secret '{key}' is in the {p} provider, but its value is an object, a list or \
             null, not a secret (only strings, numbers and booleans are)"
        ),
        None => {
            let looked: Vec<_> = m
                .providers()
                .into_iter()
                .filter(|e| e.status.available)
                .map(|e| e.status.name)
                .collect();
            format!(
                "secret '{key}' was not found (looked in: {})",
                looked.join(", ")
            )
        }
    }
}

/// The environment variable that holds `key` for this chain, if it is set.
fn environment_holder(m: &SecretsManager, key: &str) -> Option<String> {
    use st_secrets::secrets::Provider;
    let env = EnvProvider::new(m.config().env_prefix.clone());
    match env.lookup(key) {
        Ok(Some(_)) => Some(env.variable_name(key)),
        _ => None,
    }
}

fn set(g: &Globals, key: &str, value: Option<String>) -> Outcome {
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

fn delete(g: &Globals, key: &str) -> Outcome {
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

fn providers(g: &Globals) -> Outcome {
    let m = g.manager()?;
    if g.json {
        let chain: serde_json::Value = serde_json::from_str(&m.providers_json())
            .map_err(|e| Error::Internal(format!("providers JSON: {e}")))?;
        print_json(serde_json::json!({"providers": chain}));
        return Ok(0);
    }
    for entry in m.providers() {
        let s = entry.status;
        let state = if s.available {
            "available"
        } else {
            "unavailable"
        };
        println!(
            "{}",
            format!("{:<6} {:<12} {}", s.name, state, s.detail).trim_end()
        );
        for w in s.warnings {
            println!("{:<6} {:<12} {w}", "", "WARNING");
        }
    }
    Ok(0)
}

fn encrypt(g: &Globals, value: Option<String>) -> Outcome {
    let input = zeroize::Zeroizing::new(read_value(value, "credential")?);
    let cipher = st_secrets::crypto::cipher()?;
    if let st_secrets::crypto::KeyOrigin::Generated(path) = cipher.origin() {
        eprintln!(
            "st-secrets: created a new credential key in {} (mode 0600); keep it: \
             what is encrypted with it cannot be decrypted without it",
            path.display()
        );
    }
    let ciphertext = cipher.encrypt(&input);
    if g.json {
        print_json(serde_json::json!({"ciphertext": ciphertext}));
        return Ok(0);
    }
    print_raw(&ciphertext, true)?;
    Ok(0)
}

fn decrypt(g: &Globals, value: Option<String>) -> Outcome {
    let input = read_value(value, "ciphertext")?;
    let plain = st_secrets::crypto::decrypt(input.trim())?;
    if g.json {
        print_json(serde_json::json!({"plaintext": plain.expose()}));
        return Ok(0);
    }
    print_raw(plain.expose(), false)?;
    Ok(0)
}

fn rotate_store(g: &Globals) -> Outcome {
    let r = g.store()?.rotate_credentials()?;
    print_json(serde_json::json!({"rotated": r.rotated, "current": r.current, "failed": r.failed}));
    if r.failed > 0 {
        return Err(CliError::Error(Error::InvalidToken(format!(
            "{} stored credential(s) could not be decrypted with the current or previous keys",
            r.failed
        ))));
    }
    Ok(0)
}

/// Re-encrypts stdin's ciphertexts (one per line) under the current key.
fn rotate(g: &Globals) -> Outcome {
    let cipher = st_secrets::crypto::cipher()?;
    let input = read_stdin()?;
    let (mut changed, mut current, mut failed) = (0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let text = if line.trim().is_empty() {
            line.to_owned()
        } else {
            match cipher.reencrypt(line) {
                Ok(r) => {
                    if r.changed {
                        changed += 1;
                    } else {
                        current += 1;
                    }
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
        lines.push(text);
    }
    if g.json {
        print_json(serde_json::json!({
            "ciphertexts": lines, "reencrypted": changed, "current": current, "failed": failed
        }));
    } else {
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{line}")
                .map_err(|e| Error::Io(format!("cannot write to stdout: {e}")))?;
        }
        eprintln!(
            "rotate: {changed} re-encrypted, {current} already under the current key, {failed} failed"
        );
    }
    if failed > 0 {
        return Err(CliError::Error(Error::InvalidToken(format!(
            "{failed} ciphertext(s) could not be decrypted with the current or previous keys"
        ))));
    }
    Ok(0)
}

/// Parses JSON the library produced.
fn parse_own_json(text: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_str(text)
        .map_err(|e| CliError::Error(Error::Internal(format!("unexpected JSON: {e}"))))
}

fn config_command(g: &Globals, c: ConfigCommand) -> Outcome {
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
        print_json(serde_json::json!({"provider": provider, "config": parse_own_json(&config)?}));
    } else {
        println!("{config}");
    }
    Ok(0)
}

fn hardware_command(g: &Globals, id: Option<String>) -> Outcome {
    let store = g.store()?;
    match (id, g.json) {
        (None, false) => println!("{}", hardware::info(Some(&store))?),
        (None, true) => print_json(
            serde_json::json!({"hardware": parse_own_json(&hardware::info(Some(&store))?)?}),
        ),
        (Some(id), false) => println!("{}", hardware::hourly_cost(Some(&store), Some(&id))?),
        (Some(id), true) => print_json(serde_json::json!({
            "hardware": id, "cost_per_hour": hardware::hourly_cost(Some(&store), Some(&id))?
        })),
    }
    Ok(0)
}

fn credential_command(g: &Globals, c: CredentialCommand) -> Outcome {
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
                ),
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

fn audit_command(g: &Globals, c: AuditCommand) -> Outcome {
    let store = g.store()?;
    match c {
        AuditCommand::List { limit } => {
            let entries = store.audit_entries(limit)?;
            if g.json {
                print_json(serde_json::json!({"entries": entries}));
            } else {
                for entry in entries {
                    println!("{}", serde_json::json!(entry));
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
                );
            } else {
                println!("{head}");
            }
            Ok(0)
        }
        AuditCommand::Verify { expect } => {
            let report = match expect {
                None => store.verify_audit()?,
                Some(anchor) => match store.verify_audit_against(&anchor) {
                    Err(Error::Store(m)) => {
                        if g.json {
                            print_json(serde_json::json!({"intact": false, "problem": m}));
                        } else {
                            println!("audit trail BROKEN: {m}");
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
                }));
            } else if let Some((id, why)) = &report.first_broken {
                println!("audit trail BROKEN at entry {id}: {why}");
            } else {
                println!("audit trail intact: {} entries verified", report.entries);
            }
            Ok(u8::from(!intact))
        }
    }
}

fn version(g: &Globals) -> Outcome {
    if g.json {
        print_json(serde_json::json!({"version": st_secrets::VERSION}));
    } else {
        println!("st-secrets {}", st_secrets::VERSION);
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
        Command::Run(args) => child::run(&g, args),
        Command::Env(args) => export::env(&g, args),
        Command::Inject(args) => export::inject(&g, args),
        Command::Get { key } => get(&g, &key),
        Command::Set { key, value } => set(&g, &key, value),
        Command::Delete { key } => delete(&g, &key),
        Command::Providers => providers(&g),
        Command::Doctor { keys } => doctor::doctor(&g, &keys),
        Command::Encrypt { value } => encrypt(&g, value),
        Command::Decrypt { value } => decrypt(&g, value),
        Command::Rotate { store: true } => rotate_store(&g),
        Command::Rotate { store: false } => rotate(&g),
        Command::Config(c) => config_command(&g, c),
        Command::Hardware { hardware } => hardware_command(&g, hardware),
        Command::Credential(c) => credential_command(&g, c),
        Command::Audit(c) => audit_command(&g, c),
        Command::Completions { shell } => completions(shell),
        Command::Version => version(&g),
    }
}

fn main() -> ExitCode {
    ExitCode::from(main_with_args(std::env::args_os().skip(1)))
}

/// The tool on `args` (without the program name); returns the exit status.
/// The Python package's `st-secrets` console script runs the tool through
/// this function (the files are compiled into its extension module too).
pub fn main_with_args(args: impl Iterator<Item = impl Into<OsString> + Clone>) -> u8 {
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
    match dispatch(cli) {
        Ok(status) => status,
        Err(CliError::NotFound(m)) => {
            eprintln!("st-secrets: {m}");
            1
        }
        Err(CliError::Usage(m)) => {
            eprintln!("st-secrets: {m}\n(see st-secrets --help)");
            2
        }
        Err(CliError::Error(e)) => {
            eprintln!("st-secrets: {}: {e}", e.code_name());
            3
        }
        Err(CliError::Interrupted) => {
            eprintln!("st-secrets: interrupted");
            130
        }
    }
}

/// Whether `path` names the standard stream (`-`).
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}
