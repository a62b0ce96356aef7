//! `--env-file FILE`: dotenv files whose values are literals or references
//! to secrets (`NAME=st://KEY`), the mapping from a variable a program reads
//! to the secret that fills it; and the other way, `env`'s quoting of
//! values for a shell, a dotenv file and docker's `--env-file`.
//!
//! The dotenv syntax is dotenvy's (the maintained fork of the `dotenv`
//! crate): `#` comments and blank lines, an optional `export `, single
//! quotes literal, double quotes with escapes and line breaks, `$VAR` and
//! `${VAR}` expanded from earlier lines and the environment outside single
//! quotes. A value that is exactly `st://KEY` after that (KEY as `inject`
//! reads it: no whitespace, `{` or `}`) is a reference; anything else is a
//! literal. Messages name the file and line, never a value: dotenvy's own
//! parse error quotes the line, which may hold a literal secret, so only
//! its column is kept.

use crate::template;
use st_secrets::{Error, SecretString};
use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

/// The largest env file read (a mapping of variable names, not data).
pub const MAX_BYTES: u64 = 1 << 20;

/// What a line of an env file sets its variable to.
#[derive(Debug)] // a literal prints redacted (SecretString)
pub enum Source {
    /// `st://KEY`: the secret KEY, resolved through the chain.
    Reference(String),
    /// Anything else, as dotenv reads it (not a secret: not masked).
    Literal(SecretString),
}

/// One variable of an env file.
#[derive(Debug)] // a literal prints redacted (SecretString)
pub struct Entry {
    pub name: String,
    pub source: Source,
    /// `FILE:LINE` of the line that sets it (its last line, for a value in
    /// quotes over several lines).
    pub origin: String,
}

/// Whether `name` can be an environment variable a shell can read.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A reader that hands out at most one line per `read`, so the byte count
/// it has handed out tells on which line the parser stands (dotenvy's
/// buffered reader asks for more only when its buffer is empty).
struct LineReader {
    data: Rc<Vec<u8>>,
    pos: Rc<Cell<usize>>,
}

impl Read for LineReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.pos.get();
        let rest = &self.data[start..];
        let line = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let n = line.min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos.set(start + n);
        Ok(n)
    }
}

/// The line (1-based) of the last byte before a position, counted on from
/// the last position asked (positions only grow): linear in the file, where
/// counting from the start for each line was quadratic (a 1 MiB file of
/// short lines took 38 s).
struct LineCounter {
    counted: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, data: &[u8], pos: usize) -> usize {
        let end = pos.saturating_sub(1).max(self.counted);
        self.newlines += data[self.counted..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.counted = end;
        1 + self.newlines
    }
}

/// Reads `path` (a regular file, or a pipe such as `<(...)`; at most
/// [`MAX_BYTES`]).
fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::io("cannot read env file", path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read env file", path, &e))?;
    if meta.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "env file {} is a directory",
            path.display()
        )));
    }
    let mut data = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io("cannot read env file", path, &e))?;
    if data.len() as u64 > MAX_BYTES {
        return Err(Error::InvalidArgument(format!(
            "env file {} is larger than {} KiB; it maps names to secrets and holds no data",
            path.display(),
            MAX_BYTES / 1024
        )));
    }
    Ok(data)
}

/// The variables `path` sets, in file order (a name set twice appears
/// twice; the later wins where they are used).
pub fn parse(path: &Path) -> Result<Vec<Entry>, Error> {
    let mut data = read_limited(path)?;
    if data.starts_with(b"\xEF\xBB\xBF") {
        data.drain(..3);
    }
    let data = Rc::new(data);
    let pos = Rc::new(Cell::new(0));
    let reader = LineReader {
        data: Rc::clone(&data),
        pos: Rc::clone(&pos),
    };
    let origin = |line: usize| format!("{}:{line}", path.display());
    let mut entries: Vec<Entry> = Vec::new();
    let mut references: Vec<usize> = Vec::new(); // where in `entries`
    let mut lines = LineCounter {
        counted: 0,
        newlines: 0,
    };
    for item in dotenvy::from_read_iter(reader) {
        let line = lines.line_at(&data, pos.get());
        let (name, value) = item.map_err(|e| match e {
            dotenvy::Error::LineParse(_, column) => Error::Parse(format!(
                "{}: not a NAME=value line (at column {})",
                origin(line),
                column + 1
            )),
            dotenvy::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Error::Parse(format!("{}: not UTF-8 text", origin(line)))
            }
            dotenvy::Error::Io(e) => Error::io("cannot read env file", path, &e),
            _ => Error::Parse(format!("{}: cannot read this line", origin(line))),
        })?;
        let value = SecretString::from(value);
        if !valid_name(&name) {
            return Err(Error::Parse(format!(
                "{}: '{}' cannot be an environment variable name (letters, digits and _; not \
                 starting with a digit)",
                origin(line),
                name.escape_default()
            )));
        }
        let source = match value.expose().strip_prefix(template::SCHEME) {
            Some(_) => match template::reference(value.expose()) {
                Some(key) => Source::Reference(key.to_owned()),
                None => {
                    return Err(Error::Parse(format!(
                        "{}: {name} is not a reference {}KEY (KEY without spaces or braces)",
                        origin(line),
                        template::SCHEME
                    )))
                }
            },
            None => {
                // dotenvy expands `${NAME}` from earlier lines: from a
                // reference's line that is its text, `st://KEY`, never the
                // secret. Refused rather than passed on as a literal.
                let used = value
                    .expose()
                    .contains(template::SCHEME)
                    .then(|| {
                        references.iter().rev().map(|&i| &entries[i]).find(|e| {
                            matches!(&e.source, Source::Reference(key)
                                if value.expose().contains(&format!("{}{key}", template::SCHEME)))
                        })
                    })
                    .flatten();
                if let Some(earlier) = used {
                    return Err(Error::Parse(format!(
                        "{}: {name} uses ${{{}}} (or its text), a reference ({}): dotenv would \
                         put the text of the reference there, not the secret; give the secret \
                         a line of its own, or build the value in the command from {} \
                         (`sh -c '... ${}'`)",
                        origin(line),
                        earlier.name,
                        earlier.origin,
                        earlier.name,
                        earlier.name
                    )));
                }
                Source::Literal(value)
            }
        };
        if matches!(source, Source::Reference(_)) {
            references.push(entries.len());
        }
        entries.push(Entry {
            name,
            source,
            origin: origin(line),
        });
    }
    Ok(entries)
}

// What `env` writes: each value quoted for its format.

/// `value` in single quotes for a POSIX shell.
pub(crate) fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `value` quoted for a dotenv file so that python-dotenv (1.x, with its
/// default interpolation) and dotenvy read it back byte for byte, or why no
/// form does. The two readers agree on little:
///
/// - single quotes are literal in both for a value without `'` or `\`
///   (python-dotenv decodes `\\` and `\'` there, dotenvy refuses a `\`
///   before the closing quote); line breaks and `$HOME` are kept as they are;
/// - double quotes with `\\`, `\"` and `\n` escaped, for the other values,
///   are read the same by both unless the value holds a `$`, which dotenvy
///   expands there (python-dotenv has no `\$`);
/// - python-dotenv expands `${...}` in every quoting, has no escape for it,
///   and reads a raw carriage return as a line break (as Python's text mode
///   does), while dotenvy has no `\r`.
pub(crate) fn dotenv_quote(value: &str) -> Result<String, &'static str> {
    if value.contains('\r') {
        Err(
            "holds a carriage return (python-dotenv reads it as a line break, and dotenvy \
             has no escape for it)",
        )
    } else if value.contains("${") {
        Err("holds '${', which python-dotenv expands in any quoting (it has no escape for it)")
    } else if !value.contains(['\'', '\\']) {
        // Sized once: no copy of the value is left behind by a reallocation.
        let mut out = String::with_capacity(value.len() + 2);
        out.push('\'');
        out.push_str(value);
        out.push('\'');
        Ok(out)
    } else if !value.contains('$') {
        let mut out = String::with_capacity(2 * value.len() + 2);
        out.push('"');
        for c in value.chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str(r"\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        Ok(out)
    } else {
        Err(
            "holds '$' with a quote or a backslash (no quoting reads back the same in \
             python-dotenv and dotenvy)",
        )
    }
}

/// The longest line `docker run --env-file` reads (its line scanner's
/// limit, 64 KiB, newline included).
const DOCKER_MAX_LINE: usize = 64 * 1024 - 1;

/// Why docker's env-file reader cannot carry `NAME=value`, if it cannot:
/// it reads one literal `NAME=value` per line (no quotes, no escapes), so a
/// line break (or a carriage return, which it strips at a line's end) would
/// cut the value, and a line over its scanner's limit fails the run.
pub(crate) fn docker_refusal(name: &str, value: &str) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        Some("holds a line break")
    } else if name.len() + 1 + value.len() > DOCKER_MAX_LINE {
        Some("makes a line longer than docker reads (64 KiB)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parsed(text: &str) -> Result<Vec<(String, String, String)>, Error> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let path = f.path().display().to_string();
        Ok(parse(f.path())?
            .into_iter()
            .map(|e| {
                let v = match e.source {
                    Source::Reference(k) => format!("ref {k}"),
                    Source::Literal(v) => format!("lit {}", v.expose()),
                };
                (e.name, v, e.origin.replace(&path, "F"))
            })
            .collect())
    }

    fn row(n: &str, v: &str, o: &str) -> (String, String, String) {
        (n.into(), v.into(), o.into())
    }

    #[test]
    fn references_literals_comments_and_line_numbers() {
        let text = "# training keys\n\nWANDB_API_KEY=st://wandb-prod\nexport HF_TOKEN = \"st://HF_TOKEN\"\n\
                    PROJECT=sdxl # a comment\nMULTI=\"one\ntwo\"\nAFTER=st://x.y/z\nQUOTED='st://$NOT'\n";
        assert_eq!(
            parsed(text).unwrap(),
            vec![
                row("WANDB_API_KEY", "ref wandb-prod", "F:3"),
                row("HF_TOKEN", "ref HF_TOKEN", "F:4"),
                row("PROJECT", "lit sdxl", "F:5"),
                row("MULTI", "lit one\ntwo", "F:7"),
                row("AFTER", "ref x.y/z", "F:8"),
                row("QUOTED", "ref $NOT", "F:9"),
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_by_number_and_never_quoted() {
        let e = parsed("A=1\nB=\"unterminated-secret-value\n")
            .err()
            .map(|e| e.to_string());
        // dotenvy reads to the end looking for the closing quote.
        assert!(
            e.as_deref()
                .is_some_and(|m| m.contains(":2:") && !m.contains("secret-value")),
            "{e:?}"
        );
        let e = parsed("A=1\nthis is not a line s3cr3t\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(":2: not a NAME=value line (at column"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = parsed("OK=1\nBAD=\"st://has space\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(":2") && e.contains("BAD"), "{e}");
        let e = parsed("1X=st://K\n").err().unwrap().to_string();
        assert!(e.contains(":1: "), "{e}");
        let e = parsed("\n\nA.B=st://K\n").err().unwrap().to_string();
        assert!(e.contains(":3: 'A.B' cannot be"), "{e}");
    }

    #[test]
    fn a_reference_expanded_into_a_literal_is_refused_by_name() {
        // Issue 43, item 13: `${HF}` of `HF=st://HF_TOKEN` gave the literal
        // `https://user:st://HF_TOKEN@host`, silently.
        let text = "HF=st://HF_TOKEN\nOTHER=plain\nURL=https://user:${HF}@host\n";
        let e = parsed(text).unwrap_err().to_string();
        assert!(e.contains(":3: URL uses ${HF}") && e.contains(":1)"), "{e}");
        // Literals that use literals are fine.
        let rows = parsed("A=1\nB=x${A}y\n").unwrap();
        assert_eq!(rows[1], row("B", "lit x1y", "F:2"));
    }

    #[test]
    fn a_large_file_of_short_lines_is_read_in_linear_time() {
        // 1 MiB of 10-byte lines: 38 s when each line's number was counted
        // from the start. Counted here: bytes the counter looks at.
        let mut counter = LineCounter {
            counted: 0,
            newlines: 0,
        };
        let data: Vec<u8> = b"A=1234567\n".repeat(100_000);
        let mut looked = 0;
        for pos in (10..=data.len()).step_by(10) {
            let before = counter.counted;
            assert_eq!(counter.line_at(&data, pos), pos / 10);
            looked += counter.counted - before;
        }
        assert!(looked <= data.len(), "{looked}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        assert_eq!(parse(f.path()).unwrap().len(), 100_000);
    }

    #[test]
    fn huge_and_non_utf8_files_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
        assert!(parse(f.path())
            .unwrap_err()
            .to_string()
            .contains("larger than"));
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"A=1\nB=\xff\xfe\n").unwrap();
        let e = parse(f.path()).unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
        let dir = tempfile::TempDir::new().unwrap();
        assert!(parse(dir.path()).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(dotenv_quote("a $HOME\n").unwrap(), "'a $HOME\n'");
        assert_eq!(dotenv_quote("a\\b'c\n\"").unwrap(), r#""a\\b'c\n\"""#);
        assert!(dotenv_quote("a'$b").is_err());
        assert!(dotenv_quote("a${b}").is_err());
        assert!(dotenv_quote("a\rb").is_err());
        assert!(valid_name("HF_TOKEN") && valid_name("_X1"));
        assert!(!valid_name("1X") && !valid_name("A B") && !valid_name(""));
        assert_eq!(docker_refusal("A", "  'quoted' $x # y  "), None);
        assert!(docker_refusal("A", "two\nlines").is_some());
        assert!(docker_refusal("A", "cr\r").is_some());
        assert_eq!(docker_refusal("A", &"x".repeat(DOCKER_MAX_LINE - 2)), None);
        assert!(docker_refusal("A", &"x".repeat(DOCKER_MAX_LINE - 1)).is_some());
    }
}
