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
//! | `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) | a credentials file, profile `$AWS_PROFILE` (else `default`) | `AWS_SHARED_CREDENTIALS_FILE` | every AWS SDK and the CLI |
//! | any other `NAME` | the value | `NAME_FILE` | the `*_FILE` convention (Docker images' entrypoints, many tools) |
//!
//! **References** (`Layout::Keys`): one file per key, the directory a
//! mounted-secrets provider reads (`SIMPLETUNER_SECRETS_DIRS`), and
//! `NAME=st://KEY` for each variable, which the process's own library
//! resolves from that directory.
//!
//! The plan and the files' contents are pure; [`write_files`] fetches every
//! value first, then writes each file new (0600 from its first byte, never
//! through an existing name), owned by the job's user when asked, into a
//! directory on a memory-backed filesystem; a failure removes what it wrote.

use crate::error::{printable, Error};
use crate::secret::SecretString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Render {
    /// The one value as it is.
    Plain,
    /// A netrc entry for `host` with the one value as its password.
    Netrc { host: String },
    /// An AWS credentials file, profile `profile`: the values are the key
    /// id, the secret key and, when there is one, the session token.
    AwsCredentials { profile: String },
}

/// One file of the run: its name in the private directory, the variable
/// set to its path, the variables whose values it holds (in `Render`'s
/// order), and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub file: String,
    pub path_var: String,
    pub from: Vec<String>,
    pub render: Render,
}

const AWS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The files for the variables `names` (each a secret's variable), with
/// `env` the environment the command inherits (`WANDB_BASE_URL`,
/// `AWS_PROFILE`). Every name goes to exactly one file.
pub fn plan(names: &[&str], env: impl Fn(&str) -> Option<String>) -> Vec<Delivery> {
    let has = |n: &str| names.contains(&n);
    let mut out = Vec::new();
    let aws = has(AWS[0]) && has(AWS[1]);
    for &name in names {
        let delivery = match name {
            "HF_TOKEN" | "HUGGING_FACE_HUB_TOKEN" => {
                if name == "HUGGING_FACE_HUB_TOKEN" && has("HF_TOKEN") {
                    plain(name) // HF_TOKEN wins the token file, as the hub reads it
                } else {
                    Delivery {
                        file: "hf-token".into(),
                        path_var: "HF_TOKEN_PATH".into(),
                        from: vec![name.into()],
                        render: Render::Plain,
                    }
                }
            }
            "WANDB_API_KEY" => Delivery {
                file: "netrc".into(),
                path_var: "NETRC".into(),
                from: vec![name.into()],
                render: Render::Netrc {
                    host: env("WANDB_BASE_URL")
                        .as_deref()
                        .and_then(host_of)
                        .unwrap_or("api.wandb.ai")
                        .to_owned(),
                },
            },
            n if aws && n == AWS[0] => Delivery {
                file: "aws-credentials".into(),
                path_var: "AWS_SHARED_CREDENTIALS_FILE".into(),
                from: AWS
                    .iter()
                    .filter(|v| has(v))
                    .map(|v| (*v).to_owned())
                    .collect(),
                render: Render::AwsCredentials {
                    profile: env("AWS_PROFILE")
                        .filter(|p| valid_profile(p))
                        .unwrap_or_else(|| "default".into()),
                },
            },
            n if aws && AWS[1..].contains(&n) => continue, // in the credentials file
            _ => plain(name),
        };
        out.push(delivery);
    }
    out
}

fn plain(name: &str) -> Delivery {
    Delivery {
        file: name.to_owned(),
        path_var: format!("{name}_FILE"),
        from: vec![name.to_owned()],
        render: Render::Plain,
    }
}

/// The host of a URL such as `https://api.wandb.ai:443/path`.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
    .then_some(host)
}

/// A profile name that cannot break the file's `[section]` line.
fn valid_profile(p: &str) -> bool {
    !p.is_empty() && !p.contains(['[', ']', '\n', '\r'])
}

/// Why `value` cannot go into a file of kind `render` (netrc and INI
/// files are whitespace- and line-separated), if it cannot.
pub fn refusal(render: &Render, value: &[u8]) -> Option<&'static str> {
    match render {
        Render::Plain => None,
        Render::Netrc { .. } if value.iter().any(|b| b.is_ascii_whitespace() || *b == b'"') => {
            Some("a netrc password cannot hold whitespace or quotes")
        }
        Render::AwsCredentials { .. } if value.iter().any(|b| b"\r\n".contains(b)) => {
            Some("a credentials file value cannot hold a line break")
        }
        _ => None,
    }
}

/// The file's bytes for `values` (in the delivery's `from` order).
pub fn render(render: &Render, values: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    match render {
        Render::Plain => out.extend_from_slice(values[0]),
        Render::Netrc { host } => {
            out.extend_from_slice(format!("machine {host} login user password ").as_bytes());
            out.extend_from_slice(values[0]);
            out.push(b'\n');
        }
        Render::AwsCredentials { profile } => {
            out.extend_from_slice(format!("[{profile}]\n").as_bytes());
            let names = [
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ];
            for (name, value) in names.iter().zip(values) {
                out.extend_from_slice(format!("{name} = ").as_bytes());
                out.extend_from_slice(value);
                out.push(b'\n');
            }
        }
    }
    out
}

/// How [`write_files`] lays a job's secrets out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The conventions of the table above: a token file, a netrc, an AWS
    /// credentials file, `NAME_FILE`.
    Conventions,
    /// One file per key and `NAME=st://KEY`, for processes that read their
    /// secrets through the library.
    Keys,
}

impl Layout {
    /// `"files"` or `"refs"`, the names the C ABI and the Slurm plugin take.
    pub fn from_name(name: &str) -> Result<Layout, Error> {
        match name {
            "files" => Ok(Layout::Conventions),
            "refs" => Ok(Layout::Keys),
            other => Err(Error::InvalidArgument(format!(
                "layout '{}' is not one of files, refs",
                printable(other)
            ))),
        }
    }
}

/// One secret a job asks for: the variable its processes know it by, and
/// the key it is read under (the variable's own name unless given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub var: String,
    pub key: String,
}

/// The most secrets one list may name.
pub const MAX_WANTED: usize = 256;

/// `NAME[=KEY],...`: each `NAME` a variable name (a letter or `_`, then
/// letters, digits, `_`), each `KEY` a key without spaces, commas, `=`, `/`
/// or control characters, and not starting with `.`; no variable twice.
/// Errors name the item, which is a name, never a value.
pub fn parse_wanted(list: &str) -> Result<Vec<Wanted>, Error> {
    let bad = |item: &str, why: &str| {
        Error::InvalidArgument(format!(
            "'{}' in the list of secrets: {why}",
            printable(item)
        ))
    };
    let mut out: Vec<Wanted> = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(Error::InvalidArgument(
                "the list of secrets has an empty item (NAME[=KEY],...)".into(),
            ));
        }
        let (var, key) = item.split_once('=').unwrap_or((item, item));
        let var_ok = var
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !var_ok {
            return Err(bad(
                item,
                "not a variable name (a letter or _, then letters, digits, _)",
            ));
        }
        if !plain_file_name(key) || key.contains('=') {
            return Err(bad(item, "not a key (no spaces, /, = or a leading dot)"));
        }
        if out.iter().any(|w| w.var == var) {
            return Err(bad(item, "the variable is named twice"));
        }
        out.push(Wanted {
            var: var.to_owned(),
            key: key.to_owned(),
        });
        if out.len() > MAX_WANTED {
            return Err(Error::InvalidArgument(format!(
                "the list of secrets names more than {MAX_WANTED}"
            )));
        }
    }
    Ok(out)
}

/// A name that is one plain file in a directory.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name
            .bytes()
            .any(|b| b == b'/' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Fetches every secret of `wanted` with `get` (its key), then writes them
/// into `dir` laid out as `layout`, each file created new with mode 0600
/// and, with `owner` (uid, gid), handed to that user before anything is
/// written to it. Returns the variables the job's processes get, in order
/// (each a path, the directory, or `st://KEY`): what to put in their
/// environment.
///
/// `dir` must exist, be a directory (not a link) and be on a memory-backed
/// filesystem (tmpfs or ramfs). A key no provider holds is
/// [`Error::NotFound`] naming the variable and the key; nothing is written
/// unless every value was found. A failure after the first file removes
/// the files written.
pub fn write_files(
    wanted: &[Wanted],
    dir: &Path,
    layout: Layout,
    owner: Option<(u32, u32)>,
    env: impl Fn(&str) -> Option<String>,
    get: impl Fn(&str) -> Result<Option<SecretString>, Error>,
) -> Result<Vec<(String, String)>, Error> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::io("cannot use", dir, &e)),
    }
    if crate::sys::memory_backed(dir) != Some(true) {
        return Err(Error::InvalidArgument(format!(
            "{} is not on a memory-backed filesystem (tmpfs or ramfs): the values would touch a disk",
            dir.display()
        )));
    }
    let mut values = Vec::with_capacity(wanted.len());
    for w in wanted {
        // A provider's failure (a store refusing the key, a server away)
        // names the variable and the key it was fetching.
        let found = get(&w.key).map_err(|e| e.context(format!("{} (key '{}')", w.var, w.key)))?;
        match found {
            Some(v) => values.push(v),
            None => {
                return Err(Error::NotFound(format!(
                    "{}: the key '{}' is set nowhere in the chain",
                    w.var, w.key
                )))
            }
        }
    }
    let mut written = Written {
        paths: Vec::new(),
        done: false,
    };
    let mut vars = Vec::new();
    match layout {
        Layout::Keys => {
            let mut seen: Vec<&str> = Vec::new();
            for (w, v) in wanted.iter().zip(&values) {
                if !seen.contains(&w.key.as_str()) {
                    written.write(dir, &w.key, v.expose_bytes(), owner)?;
                    seen.push(&w.key);
                }
                vars.push((w.var.clone(), format!("st://{}", w.key)));
            }
            vars.push((
                "SIMPLETUNER_SECRETS_DIRS".to_owned(),
                dir.to_string_lossy().into_owned(),
            ));
        }
        Layout::Conventions => {
            let names: Vec<&str> = wanted.iter().map(|w| w.var.as_str()).collect();
            for d in plan(&names, env) {
                let parts: Vec<&[u8]> = d
                    .from
                    .iter()
                    .filter_map(|f| names.iter().position(|n| n == f))
                    .map(|i| values[i].expose_bytes())
                    .collect();
                if let Some(why) = parts.iter().find_map(|p| refusal(&d.render, p)) {
                    return Err(Error::InvalidArgument(format!(
                        "{}: {why} (its value cannot go into {})",
                        d.from.join(", "),
                        d.file
                    )));
                }
                let path = written.write(dir, &d.file, &render(&d.render, &parts), owner)?;
                vars.push((d.path_var, path.to_string_lossy().into_owned()));
            }
        }
    }
    written.done = true;
    Ok(vars)
}

/// Creates `path` new (never through an existing name or a link) with mode
/// 0600 from its first byte, for writing: every secret file a job gets,
/// here and in `run --file`.
pub fn create_new_private(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, &e))
}

/// The files [`write_files`] made, removed on drop unless it finished.
struct Written {
    paths: Vec<PathBuf>,
    done: bool,
}

impl Written {
    fn write(
        &mut self,
        dir: &Path,
        name: &str,
        bytes: &[u8],
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, Error> {
        let path = dir.join(name);
        let file = create_new_private(&path)?;
        self.paths.push(path.clone());
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(|e| Error::io("cannot hand to the job's user", &path, &e))?;
        }
        (&file)
            .write_all(bytes)
            .map_err(|e| Error::io("cannot write", &path, &e))?;
        Ok(path)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.done {
            for p in &self.paths {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_gets_its_file_and_path_variable() {
        let names = [
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "WANDB_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "DB_PASSWORD",
        ];
        let env = |n: &str| match n {
            "WANDB_BASE_URL" => Some("https://user@wandb.example.com:8443/x".into()),
            "AWS_PROFILE" => Some("training".into()),
            _ => None,
        };
        let plan = plan(&names, env);
        let vars: Vec<(&str, &str)> = plan
            .iter()
            .map(|d| (d.path_var.as_str(), d.file.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("HF_TOKEN_PATH", "hf-token"),
                ("HUGGING_FACE_HUB_TOKEN_FILE", "HUGGING_FACE_HUB_TOKEN"),
                ("NETRC", "netrc"),
                ("AWS_SHARED_CREDENTIALS_FILE", "aws-credentials"),
                ("DB_PASSWORD_FILE", "DB_PASSWORD"),
            ]
        );
        assert_eq!(plan[3].from, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        assert_eq!(
            &render(&plan[2].render, &[b"k123"])[..],
            b"machine wandb.example.com login user password k123\n"
        );
        assert_eq!(
            &render(&plan[3].render, &[b"AKID", b"sk/+"])[..],
            b"[training]\naws_access_key_id = AKID\naws_secret_access_key = sk/+\n"
        );
        // A lone AWS key, no base URL: plain files, the default host.
        let lone = super::plan(&["AWS_ACCESS_KEY_ID", "WANDB_API_KEY"], |_| None);
        assert_eq!(lone[0].path_var, "AWS_ACCESS_KEY_ID_FILE");
        assert_eq!(
            lone[1].render,
            Render::Netrc {
                host: "api.wandb.ai".into()
            }
        );
        assert_eq!(host_of("no host://"), None);
        assert!(refusal(&lone[1].render, b"has space").is_some());
        assert!(refusal(&Render::Plain, b"a b\n").is_none());
    }

    #[test]
    fn a_list_of_secrets_is_names_and_keys_and_bad_items_are_named() {
        let w = parse_wanted("HF_TOKEN, DB=prod-db").unwrap();
        assert_eq!(
            w,
            [
                Wanted {
                    var: "HF_TOKEN".into(),
                    key: "HF_TOKEN".into()
                },
                Wanted {
                    var: "DB".into(),
                    key: "prod-db".into()
                }
            ]
        );
        for (list, names) in [
            ("", "empty item"),
            ("A,,B", "empty item"),
            ("1A", "'1A'"),
            ("A-B", "'A-B'"),
            ("A=", "'A='"),
            ("A=x/y", "'A=x/y'"),
            ("A=.hidden", "'A=.hidden'"),
            ("A=b c", "'A=b c'"),
            ("A,A=b", "named twice"),
        ] {
            let e = parse_wanted(list).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{list}");
            assert!(e.to_string().contains(names), "{list}: {e}");
        }
        let many: Vec<String> = (0..=MAX_WANTED).map(|i| format!("V{i}")).collect();
        assert!(parse_wanted(&many.join(",")).is_err());
    }

    fn shm_dir() -> Option<tempfile::TempDir> {
        let d = tempfile::tempdir_in("/dev/shm").ok()?;
        (crate::sys::memory_backed(d.path()) == Some(true)).then_some(d)
    }

    fn held(key: &str) -> Result<Option<SecretString>, Error> {
        Ok(match key {
            "HF_TOKEN" => Some(SecretString::from("hf_abc")),
            "WANDB_API_KEY" => Some(SecretString::from("w k")),
            "db-pass" => Some(SecretString::from("p4ss")),
            _ => None,
        })
    }

    #[test]
    fn files_are_new_private_and_named_by_the_variables_each_layout_sets() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Some(dir) = shm_dir() else {
            eprintln!("skipped: no memory-backed /dev/shm here");
            return;
        };
        let d = dir.path();
        let wanted = parse_wanted("HF_TOKEN,DB_PASSWORD=db-pass").unwrap();
        let vars = write_files(&wanted, d, Layout::Conventions, None, |_| None, held).unwrap();
        let hf = d.join("hf-token");
        assert_eq!(
            vars,
            [
                ("HF_TOKEN_PATH".to_owned(), hf.display().to_string()),
                (
                    "DB_PASSWORD_FILE".to_owned(),
                    d.join("DB_PASSWORD").display().to_string()
                ),
            ]
        );
        assert_eq!(std::fs::read(&hf).unwrap(), b"hf_abc");
        let meta = std::fs::metadata(&hf).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), crate::sys::effective_uid());
        // Never through an existing name: a second write fails, and removes
        // only what it wrote itself.
        let again = write_files(&wanted, d, Layout::Conventions, None, |_| None, held);
        assert!(matches!(again, Err(Error::Io(_))), "{again:?}");
        assert!(hf.exists());

        let refs = dir.path().join("refs");
        std::fs::create_dir(&refs).unwrap();
        let vars = write_files(&wanted, &refs, Layout::Keys, None, |_| None, held).unwrap();
        assert_eq!(vars[0], ("HF_TOKEN".to_owned(), "st://HF_TOKEN".to_owned()));
        assert_eq!(
            vars[1],
            ("DB_PASSWORD".to_owned(), "st://db-pass".to_owned())
        );
        assert_eq!(vars[2].0, "SIMPLETUNER_SECRETS_DIRS");
        assert_eq!(std::fs::read(refs.join("db-pass")).unwrap(), b"p4ss");
    }

    #[test]
    fn nothing_is_written_unless_every_value_is_found_and_fits() {
        let Some(dir) = shm_dir() else {
            return;
        };
        let d = dir.path();
        let absent = parse_wanted("HF_TOKEN,MISSING=nowhere").unwrap();
        let e = write_files(&absent, d, Layout::Conventions, None, |_| None, held).unwrap_err();
        assert!(matches!(e, Error::NotFound(_)));
        assert!(
            e.to_string().contains("MISSING") && e.to_string().contains("nowhere"),
            "{e}"
        );
        // A provider's failure names the variable and the key, its kind kept.
        let refused = |_: &str| Err(Error::Permission("Vault read: permission denied".into()));
        let e = write_files(&absent, d, Layout::Conventions, None, |_| None, refused).unwrap_err();
        assert!(matches!(e, Error::Permission(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("HF_TOKEN (key 'HF_TOKEN'): Vault read"),
            "{e}"
        );
        // A netrc cannot hold a space: refused naming the variable, and the
        // token file written before it is removed.
        let spaced = parse_wanted("HF_TOKEN,WANDB_API_KEY").unwrap();
        let e = write_files(&spaced, d, Layout::Conventions, None, |_| None, held).unwrap_err();
        assert!(
            e.to_string().contains("WANDB_API_KEY") && !e.to_string().contains("w k"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 0);
        // Not a directory, or on a disk.
        let e = write_files(&absent, &d.join("none"), Layout::Keys, None, |_| None, held);
        assert!(e.is_err());
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        if crate::sys::memory_backed(disk.path()) == Some(false) {
            let e =
                write_files(&absent, disk.path(), Layout::Keys, None, |_| None, held).unwrap_err();
            assert!(e.to_string().contains("memory-backed"), "{e}");
        }
        assert!(Layout::from_name("env").is_err());
    }
}
