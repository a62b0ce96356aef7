//! Secrets for other programs: which keys `run` and `env` resolve and under
//! which variable names, `env`'s output formats, and `inject`'s templates.

use crate::args::{EnvArgs, Format, InjectArgs, Selection, TemplateFormat};
use crate::childenv;
use crate::context::{not_found_message, Globals};
use crate::envfile::{self, docker_refusal, dotenv_quote, sh_quote, valid_name, Source};
use crate::io::{is_stdio, print_json, printable, read_stdin, write_private_file};
use crate::outcome::{usage, CliError, Outcome};
use crate::template::{self, Piece};
use st_secrets::secrets::{normalize_key, preferred_key, SecretsManager};
use st_secrets::{Error, SecretString};
use std::collections::{HashMap, HashSet};

/// A variable `run` sets or `env` prints.
pub struct Var {
    pub name: String,
    /// The key it was resolved from (empty for an env file's literal).
    pub key: String,
    pub value: SecretString,
    /// Whether the value is a secret, masked in `run`'s output: every value
    /// from the chain is; an env file's literals are not.
    pub secret: bool,
}

/// What `run` and `env` resolved: the variables, and `run --file`'s values
/// (named by the variable that gets the file's path).
pub struct Resolved {
    pub vars: Vec<Var>,
    pub files: Vec<Var>,
    /// Leased values passed as references: masked in `run`'s output, never
    /// set.
    pub masked: Vec<SecretString>,
    /// The manager that resolved them (`run --watch` goes on with it).
    pub manager: SecretsManager,
}

/// `--file NAME=st://KEY`: the name and the key.
fn file_spec(spec: &str) -> Result<(&str, &str), CliError> {
    let bad = || {
        usage(format!(
            "--file {}: expected NAME=st://KEY (NAME a variable name, KEY without spaces or \
             braces)",
            printable(spec)
        ))
    };
    let (name, reference) = spec.split_once('=').ok_or_else(bad)?;
    let key = template::reference(reference).ok_or_else(bad)?;
    if !valid_name(name) {
        return Err(bad());
    }
    Ok((name, key))
}

/// Resolves the selected keys, the env files and `--file`'s references
/// through the chain, before anything starts or is written. A missing key,
/// an unresolved reference or any provider failure is an error naming the
/// key (and the env file's line), never a value.
///
/// Chain keys: the `--only` keys; else every key of the file and remote
/// providers when `--all` is given or no env file is, except keys that
/// cannot be variable names (skipped, with a warning) and variables that
/// change how a child or the loader runs ([`childenv`]: `LD_PRELOAD`,
/// `BASH_ENV`, `PATH`...), which a provider never sets unless the user names
/// them (skipped, with a warning naming the key, never its value). A chain
/// key's variable is the key normalized as SimpleTuner does (`hf-token` is
/// `HF_TOKEN`) and its value what `get NAME` answers; keys of one provider
/// that normalize to the same name are one variable ([`preferred_key`] says
/// whose value), with a warning naming them. Env files then set their
/// variables under the names they give, over the chain's (a later file, or
/// a later line, wins). Linear in the number of keys.
///
/// For `run` ([`Purpose::Run`]), every variable of this process's
/// environment whose value is a reference `st://KEY` is resolved first, as
/// the library resolves the environment's references (KEY in the providers
/// after the environment), under its own name (the chain keys and env files
/// then set theirs over it), unless the configuration turns references off.
/// A value holding a NUL byte is refused (named) or skipped (listed) for
/// the environment, and delivered for `run --as-files`, whose secrets go
/// to files.
pub fn resolve(
    g: &Globals,
    selection: &Selection,
    files: &[String],
    purpose: Purpose,
) -> Result<Resolved, CliError> {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|s| file_spec(s))
        .collect::<Result<_, _>>()?;
    let mut entries = Vec::new();
    for path in &selection.env_file {
        entries.extend(envfile::parse(path)?);
    }
    let m = g.manager()?;
    let mut r = Resolving {
        m: &m,
        vars: Vars::default(),
        missing: Vec::new(),
        purpose,
        referenced: Vec::new(),
        masked: Vec::new(),
    };
    if purpose != Purpose::Env && m.config().references {
        r.inherited_references()?;
    }
    if !selection.only.is_empty() {
        r.only(&selection.only)?;
    } else if selection.all || selection.env_file.is_empty() {
        r.every_key()?;
    }
    for entry in entries {
        r.env_file_entry(entry)?;
    }
    let files = r.file_values(&files)?;
    if !r.referenced.is_empty() {
        eprintln!(
            "st-secrets: {} hold leased credentials: set to st://KEY references, which the \
             library resolves in the command and keeps current (a program that reads the \
             variable itself: --file NAME=st://KEY --watch)",
            r.referenced.join(", ")
        );
    }
    if let Some(first) = r.missing.first() {
        let more = match r.missing.len() {
            1 => String::new(),
            n => format!(
                " ({} more unresolved: {})",
                n - 1,
                r.missing[1..].join("; ")
            ),
        };
        return Err(CliError::NotFound(format!("{first}{more}")));
    }
    Ok(Resolved {
        vars: r.vars.into_vec(),
        files,
        masked: r.masked,
        manager: m,
    })
}

/// What [`resolve`] has found so far: the variables, and what could not be
/// resolved (reported together at the end, so one run names every gap).
struct Resolving<'m> {
    m: &'m SecretsManager,
    vars: Vars,
    missing: Vec<String>,
    purpose: Purpose,
    /// The variables set to a reference rather than a leased value.
    referenced: Vec<String>,
    /// Their values, for `run`'s masking.
    masked: Vec<SecretString>,
}

/// What [`resolve`] resolves for: `env` (and its formats), `run`, or `run
/// --as-files`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Env,
    Run,
    RunAsFiles,
}

impl Resolving<'_> {
    /// The value of `key`, and whether it is a field of a leased
    /// credential; missing or failing stops everything.
    fn required(&self, key: &str) -> Result<(SecretString, bool), CliError> {
        match self.m.get_with_version(key) {
            Ok(Some(f)) => Ok((f.value, f.version.is_some_and(|v| v.leased))),
            Ok(None) => Err(CliError::NotFound(not_found_message(self.m, key))),
            Err(e) => Err(CliError::from(
                e.context(format!("secret '{}'", printable(key))),
            )),
        }
    }

    /// The references `st-secrets` inherited in its environment, resolved
    /// as the library resolves the environment's: in the providers after
    /// it, never the environment itself.
    fn inherited_references(&mut self) -> Result<(), CliError> {
        for (name, value) in std::env::vars_os() {
            let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                continue;
            };
            let Some(key) = template::reference(value) else {
                continue;
            };
            match self.m.resolve_reference("env", key) {
                Ok(Some(value)) => {
                    self.refuse_nul(name, key, &value)?;
                    self.vars.set(name.to_owned(), key, value, true);
                }
                Ok(None) => self.missing.push(format!(
                    "the inherited {name}={}{}: {}",
                    template::SCHEME,
                    printable(key),
                    not_found_message(self.m, key)
                )),
                Err(e) => {
                    return Err(CliError::from(e.context(format!(
                        "the inherited {name}={}{}",
                        template::SCHEME,
                        printable(key)
                    ))))
                }
            }
        }
        Ok(())
    }

    /// `--only`: each key named, required, as its normalized name.
    fn only(&mut self, keys: &[String]) -> Result<(), CliError> {
        for key in keys {
            let name = normalize_key(key);
            if !valid_name(&name) {
                return Err(usage(format!(
                    "key '{}' cannot be an environment variable name (letters, digits and _; \
                     not starting with a digit)",
                    printable(key)
                )));
            }
            if !self.vars.has(&name) {
                let (value, leased) = self.required(key)?;
                self.deliver(name, key, value, leased, true)?;
            }
        }
        Ok(())
    }

    /// Every key the file and remote providers list, except names that are
    /// no variable's, that change how programs run, or whose value holds a
    /// NUL byte (each skipped with a warning).
    fn every_key(&mut self) -> Result<(), CliError> {
        let keys = self.m.all_keys()?;
        warn_collisions(&keys);
        for (key, provider) in &keys {
            let name = normalize_key(key);
            if !valid_name(&name) {
                eprintln!(
                    "st-secrets: skipped key '{}' of provider '{provider}': not a valid \
                     environment variable name",
                    printable(key)
                );
                continue;
            }
            if self.vars.has(&name) {
                continue;
            }
            if childenv::is_guarded(&name) {
                eprintln!(
                    "st-secrets: warning: not setting {name} from provider '{provider}' (key \
                     '{}'): it changes how programs or the loader run; name it with --only \
                     {name} to set it",
                    printable(key)
                );
                continue;
            }
            let (value, leased) = self.required(&name)?;
            if leased {
                self.deliver(name.clone(), &name, value, leased, false)?;
                continue;
            }
            if self.purpose != Purpose::RunAsFiles && has_nul(&value) {
                eprintln!(
                    "st-secrets: warning: not setting {name} from provider '{provider}' (key \
                     '{}'): its value holds a NUL byte, which an environment variable cannot \
                     carry; deliver it as a file with --file {name}=st://{}",
                    printable(key),
                    printable(key)
                );
                continue;
            }
            let read_as = name.clone(); // the key `get` was asked
            self.vars.set(name, &read_as, value, true);
        }
        Ok(())
    }

    /// One line of an `--env-file`: a literal, or a reference resolved.
    fn env_file_entry(&mut self, entry: envfile::Entry) -> Result<(), CliError> {
        let (key, value, secret) = match entry.source {
            Source::Literal(value) => (String::new(), value, false),
            Source::Reference(key) => match self.m.get_with_version(&key) {
                Ok(Some(f)) if f.version.as_ref().is_some_and(|v| v.leased) => {
                    return self.deliver(entry.name, &key, f.value, true, true);
                }
                Ok(Some(f)) => {
                    self.refuse_nul(&entry.name, &key, &f.value)
                        .map_err(|e| e.context(entry.origin.to_string()))?;
                    (key, f.value, true)
                }
                Ok(None) => {
                    self.missing.push(format!(
                        "{}: {}={}{}: {}",
                        entry.origin,
                        entry.name,
                        template::SCHEME,
                        printable(&key),
                        not_found_message(self.m, &key)
                    ));
                    return Ok(());
                }
                Err(e) => {
                    return Err(CliError::from(e.context(format!(
                        "{}: {}: secret '{}'",
                        entry.origin,
                        entry.name,
                        printable(&key)
                    ))))
                }
            },
        };
        self.vars.set(entry.name, &key, value, secret);
        Ok(())
    }

    /// `--file NAME=st://KEY`: each value, for its file.
    fn file_values(&mut self, files: &[(&str, &str)]) -> Result<Vec<Var>, CliError> {
        let mut out = Vec::new();
        for &(name, key) in files {
            match self.m.get(key) {
                Ok(Some(value)) => out.push(Var {
                    name: name.to_owned(),
                    key: key.to_owned(),
                    value,
                    secret: true,
                }),
                Ok(None) => self.missing.push(format!(
                    "--file {name}={}{}: {}",
                    template::SCHEME,
                    printable(key),
                    not_found_message(self.m, key)
                )),
                Err(e) => {
                    return Err(CliError::from(
                        e.context(format!("--file {name}: secret '{}'", printable(key))),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Whether `value` holds a NUL byte, which no environment variable (and no
/// `env` format) can carry.
fn has_nul(value: &SecretString) -> bool {
    value.expose().as_bytes().contains(&0)
}

impl Resolving<'_> {
    /// [`has_nul`] for a variable the user named (`--only`, an env file's
    /// reference) that goes to the environment: refused, naming the
    /// variable and the key, never the value.
    fn refuse_nul(&self, name: &str, key: &str, value: &SecretString) -> Result<(), Error> {
        if self.purpose == Purpose::RunAsFiles || !has_nul(value) {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "{name}: secret '{}' holds a NUL byte, which an environment variable cannot \
             carry; deliver it as a file with --file {name}=st://{} or --as-files",
            printable(key),
            printable(key)
        )))
    }
}

impl Resolving<'_> {
    /// Sets `name` from `key`'s value. A field of a leased credential is
    /// never frozen into an environment: `run` sets the reference
    /// `st://KEY` (the library resolves it in the command and keeps it
    /// current), `run --as-files` writes it to a file removed at the end;
    /// `env` refuses a `named` one and skips one of `--all` with a warning.
    fn deliver(
        &mut self,
        name: String,
        key: &str,
        value: SecretString,
        leased: bool,
        named: bool,
    ) -> Result<(), CliError> {
        if !leased || self.purpose == Purpose::RunAsFiles {
            self.refuse_nul(&name, key, &value)?;
            self.vars.set(name, key, value, true);
            return Ok(());
        }
        match self.purpose {
            Purpose::Env if named => Err(crate::context::leased_refusal(key)),
            Purpose::Env => {
                eprintln!(
                    "st-secrets: skipped {name} (key '{}'): a field of a leased credential, \
                     revoked when this command exits",
                    printable(key)
                );
                Ok(())
            }
            _ => {
                let reference = SecretString::from(format!("{}{key}", template::SCHEME));
                self.vars.set(name.clone(), key, reference, false);
                self.referenced.push(name);
                self.masked.push(value);
                Ok(())
            }
        }
    }
}

/// Variables in the order they were first set; setting one again replaces
/// its value in place.
#[derive(Default)]
struct Vars {
    list: Vec<Var>,
    index: HashMap<String, usize>,
}

impl Vars {
    fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn set(&mut self, name: String, key: &str, value: SecretString, secret: bool) {
        match self.index.get(&name) {
            Some(&i) => {
                self.list[i].key = key.to_owned();
                self.list[i].value = value;
                self.list[i].secret = secret;
            }
            None => {
                self.index.insert(name.clone(), self.list.len());
                self.list.push(Var {
                    name,
                    key: key.to_owned(),
                    value,
                    secret,
                });
            }
        }
    }

    fn into_vec(self) -> Vec<Var> {
        self.list
    }
}

/// Warns about keys of one provider that normalize to the same variable,
/// naming them and the one whose value the variable takes.
fn warn_collisions(keys: &[(String, &'static str)]) {
    let mut groups: HashMap<(&str, String), Vec<&str>> = HashMap::new();
    for (key, provider) in keys {
        groups
            .entry((*provider, normalize_key(key)))
            .or_default()
            .push(key);
    }
    let mut collisions: Vec<_> = groups.into_iter().filter(|(_, k)| k.len() > 1).collect();
    collisions.sort();
    for ((provider, name), group) in collisions {
        let winner = preferred_key(&name, group.iter().copied()).unwrap_or_default();
        let listed: Vec<String> = group
            .iter()
            .map(|k| format!("'{}'", printable(k)))
            .collect();
        eprintln!(
            "st-secrets: warning: keys {} of provider '{provider}' are all {name}; it takes the \
             value of '{}' (the key spelled as the name wins, else the first in byte order), \
             as `get {name}` does",
            listed.join(", "),
            printable(winner)
        );
    }
}

pub fn env(g: &Globals, args: EnvArgs) -> Outcome {
    let vars: Vec<(String, SecretString)> = resolve(g, &args.selection, &[], Purpose::Env)?
        .vars
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect();
    let format = if g.json { Format::Json } else { args.format };
    let mut text = zeroize::Zeroizing::new(String::new());
    match format {
        Format::Json => {
            let env: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().into()))
                .collect();
            print_json(serde_json::json!({"env": env}))?;
            return Ok(0);
        }
        Format::Sh => {
            for (name, value) in &vars {
                text.push_str(&format!("export {name}={}\n", sh_quote(value.expose())));
            }
        }
        Format::Docker => {
            let refused: Vec<String> = vars
                .iter()
                .filter_map(|(n, v)| docker_refusal(n, v.expose()).map(|why| format!("{n} {why}")))
                .collect();
            if !refused.is_empty() {
                return Err(CliError::Error(Error::InvalidArgument(format!(
                    "docker's --env-file format cannot carry every value: the value of {}; \
                     nothing was written (leave the key out with --only, or pass values with \
                     `st-secrets run -- docker run -e NAME ...`)",
                    refused.join(", the value of ")
                ))));
            }
            for (name, value) in &vars {
                text.push_str(name);
                text.push('=');
                text.push_str(value.expose());
                text.push('\n');
            }
        }
        Format::Dotenv => {
            let mut refused = Vec::new();
            for (name, value) in &vars {
                match dotenv_quote(value.expose()) {
                    Ok(mut quoted) => {
                        text.push_str(&format!("{name}={quoted}\n"));
                        zeroize::Zeroize::zeroize(&mut quoted);
                    }
                    Err(why) => refused.push(format!("{name} {why}")),
                }
            }
            if !refused.is_empty() {
                return Err(CliError::Error(Error::InvalidArgument(format!(
                    "a dotenv file cannot carry every value: the value of {}; nothing was \
                     written (leave the key out with --only, or use --format sh or --json)",
                    refused.join("; the value of ")
                ))));
            }
        }
    }
    crate::io::write_out(text.as_bytes())?;
    Ok(0)
}

/// What `inject` fills: `--format`, else by the template's name (or the
/// output's, for a template on stdin): `.yaml`/`.yml` YAML, `.json` JSON,
/// anything else text.
fn template_kind(args: &InjectArgs) -> template::Kind {
    let by_name = |p: &std::path::Path| match p.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Some(template::Kind::Yaml),
        Some("json") => Some(template::Kind::Json),
        _ => None,
    };
    match args.format {
        Some(TemplateFormat::Text) => template::Kind::Text,
        Some(TemplateFormat::Yaml) => template::Kind::Yaml,
        Some(TemplateFormat::Json) => template::Kind::Json,
        None => [Some(args.input.as_path()), args.output.as_deref()]
            .into_iter()
            .flatten()
            .filter(|p| !is_stdio(p))
            .find_map(by_name)
            .unwrap_or(template::Kind::Text),
    }
}

pub fn inject(g: &Globals, args: InjectArgs) -> Outcome {
    let template = if is_stdio(&args.input) {
        read_stdin()?
    } else {
        let bytes = std::fs::read(&args.input)
            .map_err(|e| Error::io("cannot read template", &args.input, &e))?;
        String::from_utf8(bytes).map_err(|_| {
            Error::Parse(format!(
                "template {} is not UTF-8 text",
                args.input.display()
            ))
        })?
    };
    let kind = template_kind(&args);
    let pieces = template::parse(&template);
    let m = g.manager()?;
    let mut values: HashMap<&str, SecretString> = HashMap::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut asked: HashSet<&str> = HashSet::new();
    for piece in &pieces {
        let Piece::Key(key) = piece else { continue };
        if !asked.insert(key) {
            continue;
        }
        match m.get(key) {
            Ok(Some(v)) => {
                values.insert(key, v);
            }
            Ok(None) => missing.push(key),
            Err(e) => return Err(e.context(format!("secret '{key}'")).into()),
        }
    }
    if let Some(first) = missing.first() {
        let more = if missing.len() > 1 {
            format!(" (missing too: {})", missing[1..].join(", "))
        } else {
            String::new()
        };
        return Err(CliError::NotFound(format!(
            "{}{more}; nothing was written",
            not_found_message(&m, first)
        )));
    }
    let exposed: HashMap<&str, &str> = values.iter().map(|(k, v)| (*k, v.expose())).collect();
    let output = template::fill(&pieces, &exposed, kind)
        .map_err(|why| CliError::Error(Error::InvalidArgument(why)))?;
    match args.output.as_deref() {
        Some(path) if !is_stdio(path) => {
            write_private_file(path, output.as_bytes())?;
            let n = pieces.iter().filter(|p| matches!(p, Piece::Key(_))).count();
            eprintln!(
                "wrote {} ({n} reference(s) filled, mode 0600)",
                path.display()
            );
        }
        _ => {
            crate::io::write_out(output.as_bytes())?;
        }
    }
    Ok(0)
}
