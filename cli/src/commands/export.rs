//! Secrets for other programs: which keys `run` and `env` resolve and under
//! which variable names, `env`'s output formats, and `inject`'s templates.

use crate::args::{EnvArgs, Format, InjectArgs, Selection, TemplateFormat};
use crate::childenv;
use crate::context::{not_found_message, Globals};
use crate::io::{is_stdio, print_json, printable, read_stdin, write_private_file};
use crate::outcome::{usage, CliError, Outcome};
use crate::template::{self, Piece};
use st_secrets::secrets::{normalize_key, preferred_key};
use st_secrets::{Error, SecretString};
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// Whether `name` can be an environment variable a shell can read.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolves the selected keys through the chain: `(variable name, value)`
/// pairs, the variable being the key normalized as SimpleTuner does
/// (`hf-token` is `HF_TOKEN`) and its value what `get NAME` answers. A
/// listed key that is missing, or any provider failure, is an error naming
/// the key and provider, never the value.
///
/// Without `--only`, every key of the file and remote providers, except:
/// keys that cannot be variable names (skipped, with a warning), and
/// variables that change how a child or the loader runs ([`childenv`]:
/// `LD_PRELOAD`, `BASH_ENV`, `PATH`...), which a provider never sets unless
/// the user names them with `--only` (skipped, with a warning naming the
/// key, never its value). Keys of one provider that normalize to the same
/// name are one variable ([`preferred_key`] says whose value), with a
/// warning naming them. Linear in the number of keys.
pub fn resolve(
    g: &Globals,
    selection: &Selection,
) -> Result<Vec<(String, SecretString)>, CliError> {
    let m = g.manager()?;
    // The value of `key`; missing or failing stops everything.
    let required = |key: &str| match m.get(key) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(CliError::NotFound(not_found_message(&m, key))),
        Err(e) => Err(CliError::from(
            e.context(format!("secret '{}'", printable(key))),
        )),
    };
    let mut out: Vec<(String, SecretString)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    if !selection.only.is_empty() {
        for key in &selection.only {
            let name = normalize_key(key);
            if !valid_name(&name) {
                return Err(usage(format!(
                    "key '{}' cannot be an environment variable name (letters, digits and _; \
                     not starting with a digit)",
                    printable(key)
                )));
            }
            if !seen.insert(name.clone()) {
                continue;
            }
            out.push((name, required(key)?));
        }
        return Ok(out);
    }
    let keys = m.all_keys()?;
    warn_collisions(&keys);
    for (key, provider) in &keys {
        let name = normalize_key(key);
        if !valid_name(&name) {
            eprintln!(
                "st-secrets: skipped key '{}' of provider '{provider}': not a valid environment \
                 variable name",
                printable(key)
            );
            continue;
        }
        if !seen.insert(name.clone()) {
            continue;
        }
        if childenv::is_guarded(&name) {
            eprintln!(
                "st-secrets: warning: not setting {name} from provider '{provider}' (key '{}'): \
                 it changes how programs or the loader run; name it with --only {name} to set it",
                printable(key)
            );
            continue;
        }
        let value = required(&name)?;
        out.push((name, value));
    }
    Ok(out)
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

/// `value` in single quotes for a POSIX shell.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `value` in single quotes for a dotenv file: `\` and `'` escaped.
fn dotenv_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The longest line `docker run --env-file` reads (its line scanner's
/// limit, 64 KiB, newline included).
const DOCKER_MAX_LINE: usize = 64 * 1024 - 1;

/// Why docker's env-file reader cannot carry `NAME=value`, if it cannot:
/// it reads one literal `NAME=value` per line (no quotes, no escapes), so a
/// line break (or a carriage return, which it strips at a line's end) would
/// cut the value, and a line over its scanner's limit fails the run.
fn docker_refusal(name: &str, value: &str) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        Some("holds a line break")
    } else if name.len() + 1 + value.len() > DOCKER_MAX_LINE {
        Some("makes a line longer than docker reads (64 KiB)")
    } else {
        None
    }
}

pub fn env(g: &Globals, args: EnvArgs) -> Outcome {
    let vars = resolve(g, &args.selection)?;
    let format = if g.json { Format::Json } else { args.format };
    let mut text = zeroize::Zeroizing::new(String::new());
    match format {
        Format::Json => {
            let env: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().into()))
                .collect();
            print_json(serde_json::json!({"env": env}));
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
            for (name, value) in &vars {
                if value.expose().contains("${") {
                    eprintln!(
                        "st-secrets: note: the value of {name} contains '${{', which python-dotenv \
                         and docker compose expand (dotenv has no escape for it): read the file \
                         with interpolation off"
                    );
                }
                text.push_str(&format!("{name}={}\n", dotenv_quote(value.expose())));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Io(format!("cannot write to stdout: {e}")))?;
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
            let mut out = std::io::stdout().lock();
            out.write_all(output.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::Io(format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(dotenv_quote(r"a\b'c"), r"'a\\b\'c'");
        assert!(valid_name("HF_TOKEN") && valid_name("_X1"));
        assert!(!valid_name("1X") && !valid_name("A B") && !valid_name(""));
        assert_eq!(docker_refusal("A", "  'quoted' $x # y  "), None);
        assert!(docker_refusal("A", "two\nlines").is_some());
        assert!(docker_refusal("A", "cr\r").is_some());
        assert_eq!(docker_refusal("A", &"x".repeat(DOCKER_MAX_LINE - 2)), None);
        assert!(docker_refusal("A", &"x".repeat(DOCKER_MAX_LINE - 1)).is_some());
    }
}
