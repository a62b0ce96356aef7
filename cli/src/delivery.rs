//! `run --as-files`: which file each secret goes to and which variable
//! names its path, so a command's environment holds paths, never values.
//!
//! | variables resolved | file | variable set to its path | read by |
//! |---|---|---|---|
//! | `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) | the token | `HF_TOKEN_PATH` | `huggingface_hub` |
//! | `WANDB_API_KEY` | a netrc: `machine <host of WANDB_BASE_URL, else api.wandb.ai> login user password <key>` | `NETRC` | `wandb`, `requests`, curl (`--netrc-file`) |
//! | `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) | a credentials file, profile `$AWS_PROFILE` (else `default`) | `AWS_SHARED_CREDENTIALS_FILE` | every AWS SDK and the CLI |
//! | any other `NAME` | the value | `NAME_FILE` | the `*_FILE` convention (Docker images' entrypoints, many tools) |
//!
//! Pure: the plan and the files' contents; `run` writes them.

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
}
