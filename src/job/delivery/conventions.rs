//! The files of `run --as-files` and `st_secrets_write_files`: which file
//! each secret goes to, the variable naming it, and each file's bytes.

use std::path::Path;
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
    /// W&B's credentials file for an access token exchanged at `base_url`
    /// (`{"credentials": {BASE: {"access_token", "expires_at"}}}`, the
    /// end in UTC as `%Y-%m-%d %H:%M:%S`): wandb reads it instead of
    /// exchanging its identity token again.
    WandbCredentials { base_url: String },
    /// The `anthropic` SDK's profile [`ANTHROPIC_PROFILE`] for an access
    /// token another process keeps current: a directory (the SDK's
    /// `ANTHROPIC_CONFIG_DIR`) holding `configs/PROFILE.json` (`user_oauth`
    /// without a client, so that the SDK reads the token file at each use
    /// and never refreshes it itself; the organization; the API's
    /// `base_url` when not Anthropic's) and `credentials/PROFILE.json`
    /// (`{"type": "oauth_token", "access_token", "expires_at"}`, the end in
    /// Unix seconds). The SDK sends such a token with the OAuth API's beta
    /// flag, which a bare `ANTHROPIC_AUTH_TOKEN` does not get.
    AnthropicProfile {
        organization_id: String,
        base_url: Option<String>,
    },
}

/// The profile name of [`Render::AnthropicProfile`].
pub const ANTHROPIC_PROFILE: &str = "st-secrets";

/// One file of the run: its name in the private directory, the variable
/// set to its path, the variables whose values it holds (in `Render`'s
/// order), and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub file: String,
    pub path_var: String,
    pub from: Vec<String>,
    pub render: Render,
    /// Variables the reader needs beside the path (never a value).
    pub also: Vec<(String, String)>,
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
                        also: Vec::new(),
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
                also: Vec::new(),
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
                also: Vec::new(),
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
        also: Vec::new(),
    }
}

/// The file for variable `name` holding a credential a W&B token exchange
/// gave (the API at `base`) for the subject token in `subject_file`: W&B's
/// credentials file, named by `WANDB_CREDENTIALS_FILE`, beside
/// `WANDB_IDENTITY_TOKEN_FILE` and `WANDB_BASE_URL` (wandb reads the
/// credentials file only with an identity token file, and by its base
/// URL).
pub fn wandb_exchanged(name: &str, base: &str, subject_file: &Path) -> Delivery {
    Delivery {
        file: "wandb-credentials.json".into(),
        path_var: "WANDB_CREDENTIALS_FILE".into(),
        from: vec![name.to_owned()],
        render: Render::WandbCredentials {
            base_url: base.to_owned(),
        },
        also: vec![
            (
                "WANDB_IDENTITY_TOKEN_FILE".into(),
                subject_file.to_string_lossy().into_owned(),
            ),
            ("WANDB_BASE_URL".into(), base.to_owned()),
        ],
    }
}

/// The directory for variable `name` holding a credential an Anthropic
/// token exchange gave (the API at `base`) for `organization_id`: the
/// SDK's profile ([`Render::AnthropicProfile`]), named by
/// `ANTHROPIC_CONFIG_DIR` and `ANTHROPIC_PROFILE`, with the base URL when
/// it is not Anthropic's.
pub fn anthropic_exchanged(name: &str, base: &str, organization_id: &str) -> Delivery {
    Delivery {
        file: "anthropic".into(),
        path_var: "ANTHROPIC_CONFIG_DIR".into(),
        from: vec![name.to_owned()],
        render: Render::AnthropicProfile {
            organization_id: organization_id.to_owned(),
            base_url: (base != "https://api.anthropic.com").then(|| base.to_owned()),
        },
        also: vec![("ANTHROPIC_PROFILE".into(), ANTHROPIC_PROFILE.into())],
    }
}

/// The files of a delivery, each with its path in the delivery's
/// directory, for `values` ending at `ends`: one file named `""` (the
/// delivery's file itself), except for a render that is a directory
/// (Anthropic's profile).
pub fn render_files(
    render: &Render,
    values: &[&[u8]],
    ends: Option<std::time::SystemTime>,
) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    let Render::AnthropicProfile {
        organization_id,
        base_url,
    } = render
    else {
        return vec![(String::new(), render_ending(render, values, ends))];
    };
    let mut config = serde_json::json!({
        "authentication": {"type": "user_oauth"},
        "organization_id": organization_id,
    });
    if let Some(base) = base_url {
        config["base_url"] = base.clone().into();
    }
    let config = Zeroizing::new(config.to_string().into_bytes());
    vec![
        (format!("configs/{ANTHROPIC_PROFILE}.json"), config),
        (
            format!("credentials/{ANTHROPIC_PROFILE}.json"),
            render_ending(render, values, ends),
        ),
    ]
}

/// The path, in the directory the files are written to, of the file
/// `name` of a delivery whose file is `file` ([`render_files`]'s names:
/// `""` is the delivery's file itself).
pub fn file_path(file: &str, name: &str) -> String {
    if name.is_empty() {
        file.to_owned()
    } else {
        format!("{file}/{name}")
    }
}

/// The host of a URL such as `https://api.wandb.ai:443/path`.
pub(super) fn host_of(url: &str) -> Option<&str> {
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
    render_ending(render, values, None)
}

/// [`render`], for values that end at `ends` (a W&B credentials file says
/// when; without an end it says now, so that wandb exchanges itself).
pub fn render_ending(
    render: &Render,
    values: &[&[u8]],
    ends: Option<std::time::SystemTime>,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    match render {
        Render::WandbCredentials { base_url } => {
            // Written straight into the zeroed buffer (reserved first, so
            // that no growth leaves a copy of the token behind), each
            // string escaped as JSON.
            let token = std::str::from_utf8(values[0]).unwrap_or_default();
            let ends = wandb_time(ends.unwrap_or_else(std::time::SystemTime::now));
            out.reserve(token.len() * 6 + base_url.len() * 6 + 96);
            let buf: &mut Vec<u8> = &mut out;
            buf.extend_from_slice(b"{\"credentials\": {");
            let _ = serde_json::to_writer(&mut *buf, base_url);
            buf.extend_from_slice(b": {\"access_token\": ");
            let _ = serde_json::to_writer(&mut *buf, token);
            buf.extend_from_slice(b", \"expires_at\": ");
            let _ = serde_json::to_writer(&mut *buf, &ends);
            buf.extend_from_slice(b"}}}");
        }
        Render::AnthropicProfile { .. } => {
            // The credentials file, written as W&B's is.
            let token = std::str::from_utf8(values[0]).unwrap_or_default();
            let ends = ends
                .unwrap_or_else(std::time::SystemTime::now)
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            out.reserve(token.len() * 6 + 96);
            let buf: &mut Vec<u8> = &mut out;
            buf.extend_from_slice(b"{\"type\": \"oauth_token\", \"access_token\": ");
            let _ = serde_json::to_writer(&mut *buf, token);
            buf.extend_from_slice(format!(", \"expires_at\": {ends}}}").as_bytes());
        }
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

/// `t` (whole seconds, UTC) as wandb writes `expires_at`.
fn wandb_time(t: std::time::SystemTime) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    let secs = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = DateTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
        .fmt(Format::DateTime)
        .unwrap_or_default();
    text.get(..19)
        .unwrap_or("1970-01-01T00:00:00")
        .replace('T', " ")
}
