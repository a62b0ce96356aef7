// The command line, as clap reads it: every command, option and help text
// of the tool in one place. The completions and the man pages are generated
// from these definitions, at run time (`completions`) and by build.rs, which
// compiles this file too (hence plain comments here: an included file cannot
// carry inner doc comments). No behaviour: the commands live in `commands`.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

pub const TOOL_AFTER_HELP: &str = "\
Secrets are looked up in the chain environment > mounted files > secrets file >
AWS Secrets Manager > GCP Secret Manager > Azure Key Vault > Vault (first match
wins; configure it with --config or the environment). Values are printed only by get, decrypt, credential get and env.

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
    after_help = TOOL_AFTER_HELP,
    arg_required_else_help = true,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// JSON configuration of the chain (keys: file_path, env_prefix,
    /// cache_ttl, providers, aws_*, gcp_*, azure_*, vault_*, timeouts); default: the
    /// environment
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print a JSON document (with "schema": 1) instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// The store's database (default: <state dir>/cloud/jobs.db; state dir:
    /// SIMPLETUNER_STATE_DIR, SIMPLETUNER_CONFIG_DIR, ~/.simpletuner)
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start a command with secrets in its environment, masking their values
    /// in its output
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Print secrets for eval, direnv, a dotenv file or a CI step
    #[command(after_help = ENV_AFTER_HELP)]
    Env(EnvArgs),
    /// Fill {{ st://KEY }} references in a template; write the result 0600
    #[command(after_help = INJECT_AFTER_HELP)]
    Inject(InjectArgs),
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
    /// The node cache: where it is, whether it is used, what it holds
    /// (never a value), or remove its entries
    #[command(subcommand, name = "node-cache")]
    NodeCache(NodeCacheCommand),
    /// The store's tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Find the secrets' values, raw or encoded, in files, directories and
    /// archives (never prints a value); exit 1 on a find
    #[command(after_help = SCAN_AFTER_HELP)]
    Scan(ScanArgs),
    /// Conceal the secrets' values, raw or encoded: stdin to stdout, or
    /// files rewritten in place
    #[command(after_help = REDACT_AFTER_HELP)]
    Redact(RedactArgs),
    /// A Slurm site's job tokens: the JWKS and discovery documents to
    /// publish, or a token for a job record
    #[command(subcommand, name = "job-token")]
    JobToken(JobTokenCommand),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the version
    Version,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration (JSON)
    Get { provider: String },
    /// Replace it with the JSON object read from stdin
    Set { provider: String },
    /// Apply the JSON merge patch read from stdin (atomic); print the result
    Merge { provider: String },
}

#[derive(Subcommand)]
pub enum CredentialCommand {
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
pub enum JobTokenCommand {
    /// The JWKS document of the signing keys (PEM files: the current key,
    /// and during a change the one before it)
    Jwks {
        #[arg(required = true, value_name = "KEY_FILE")]
        keys: Vec<std::path::PathBuf>,
    },
    /// The OpenID discovery document of ISSUER (its keys at
    /// ISSUER/.well-known/jwks.json)
    Discovery { issuer: String },
    /// Mint a token for the job record read from stdin (JSON: cluster,
    /// job_id, user, uid, account, partition, and optionally array_task_id,
    /// qos, end)
    Mint {
        /// The site's signing key (PEM; this user's or root's, read by
        /// nobody else)
        #[arg(long, value_name = "KEY_FILE")]
        key: std::path::PathBuf,
        /// The issuer the token names (an https URL)
        #[arg(long, value_name = "URL")]
        issuer: String,
        /// Its audience
        #[arg(long, default_value = "openbao")]
        audience: String,
        /// Its lifetime in seconds (60 to 86400; never past the job's end)
        #[arg(long, default_value_t = 900, value_name = "SECONDS")]
        lifetime: u64,
    },
}

#[derive(Subcommand)]
pub enum NodeCacheCommand {
    /// Whether it is on, its directory and whether it is usable, and how
    /// many entries it holds
    Status,
    /// Remove every entry (the next get of each process fetches)
    Clear,
}

#[derive(Subcommand)]
pub enum AuditCommand {
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

pub const RUN_AFTER_HELP: &str = "\
The command inherits this environment plus the secrets (each key under its
normalized name: hf-token as HF_TOKEN), stdin, and, with --no-mask, stdout and
stderr. By default its stdout and stderr go through pipes that replace every
value of 4 bytes or more with <concealed by st-secrets> (so the command sees
pipes, not a terminal). A key that cannot be resolved fails before the command
starts. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH sent to
st-secrets are forwarded to the command; the exit status is the command's
(128+N when it dies of signal N; 127 not found, 126 not executable).

Env files (--env-file): one NAME=st://KEY or NAME=value per line, dotenv
syntax (# comments, export, quotes, ${VAR}); the variable gets the secret's
value under the name the file gives it. Reference values are masked, literal
ones are not (they are not secrets). An unresolved reference fails before the
command starts, naming its file and line.

References inherited: a variable of this environment whose value is
st://KEY (a launcher's `export HF_TOKEN=st://hf-token`) is resolved in the
providers after the environment and the command gets the value under the same name (or, with
--as-files, a file); one that resolves nowhere fails before the command
starts.

As files (--as-files): each secret goes to a 0600 file and the command gets
only its path: HF_TOKEN as HF_TOKEN_PATH, WANDB_API_KEY in a netrc named by
NETRC (machine api.wandb.ai, or WANDB_BASE_URL's host; a W&B token exchange's
credential in W&B's credentials file, WANDB_CREDENTIALS_FILE), AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in a credentials file named by
AWS_SHARED_CREDENTIALS_FILE (profile $AWS_PROFILE, else default), any other
NAME as NAME_FILE. The variables holding values (and inherited references)
are removed from its environment; an env file's literals stay variables.

Identity tokens (--identity-token VAR=ROLE[:AUDIENCE]): the tool logs in to
OpenBao/Vault as configured (a Kubernetes, JWT, certificate or AWS login, say)
and writes an identity token of ROLE (an OIDC JWT its role signs; AUDIENCE, if
given, must be the role's client_id) to a 0600 file named by VAR, replaced by a
new one (renamed over it) two thirds through its TTL, for SDKs that federate:
AWS_WEB_IDENTITY_TOKEN_FILE (with AWS_ROLE_ARN), WANDB_IDENTITY_TOKEN_FILE.

Files (--file NAME=st://KEY): the value is written to a new 0600 file in a
private directory ($XDG_RUNTIME_DIR, else /dev/shm, else the temp dir) and
NAME is set to its path; file and directory are removed when the command ends,
also when it dies of a signal or st-secrets gets SIGTERM, SIGINT or SIGHUP
(which it forwards). Only SIGKILL leaves them behind.

As a container's entrypoint (PID 1), st-secrets also reaps every orphaned
process it inherits, as tini does, and exits with its command's status (at
most 2 s after the command ends, however long orphans keep its output open).

Examples:
  st-secrets run -- torchrun --nproc_per_node 8 train.py --config cfg.yaml
  st-secrets run --only HF_TOKEN,WANDB_API_KEY -- accelerate launch train.py
  st-secrets run --env-file train.env -- accelerate launch train.py
  st-secrets run --file GOOGLE_APPLICATION_CREDENTIALS=st://gcp-sa -- python train.py
  HF_TOKEN=st://hf-token st-secrets run --as-files -- accelerate launch train.py
  st-secrets run --identity-token AWS_WEB_IDENTITY_TOKEN_FILE=s3-reader:sts.amazonaws.com \\
    -- python train.py
  st-secrets run -- docker run -e HF_TOKEN trainer:latest   # names only";

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Let the command write to stdout and stderr directly (a terminal stays
    /// a terminal); its output then shows values it prints
    #[arg(long)]
    pub no_mask: bool,

    /// Write the secret KEY to a private file (mode 0600, on a memory-backed
    /// filesystem where there is one) and set NAME to its path; removed when
    /// the command ends (repeatable)
    #[arg(long = "file", value_name = "NAME=st://KEY")]
    pub files: Vec<String>,

    /// Deliver every secret as a private file instead of a variable, and
    /// set only the variables naming the files (HF_TOKEN_PATH, NETRC for
    /// WANDB_API_KEY, AWS_SHARED_CREDENTIALS_FILE, else NAME_FILE): the
    /// command's environment holds no value
    #[arg(long)]
    pub as_files: bool,

    /// Put an OpenBao/Vault identity token of ROLE (identity/oidc/token/ROLE,
    /// for the entity the tool logs in as) in a private file, set VAR to its
    /// path (AWS_WEB_IDENTITY_TOKEN_FILE, WANDB_IDENTITY_TOKEN_FILE, any
    /// NAME_FILE), and replace it before it expires; with AUDIENCE, the
    /// token must be for it (repeatable)
    #[arg(long = "identity-token", value_name = "VAR=ROLE[:AUDIENCE]")]
    pub identity_tokens: Vec<String>,

    /// Serve the AWS credential chain's credentials (an assumed role, SSO,
    /// a web identity, a credential_process) to the command on 127.0.0.1
    /// through the container-credentials protocol every AWS SDK and the CLI
    /// speak, with a per-run token: its SDK asks again before they expire
    /// and gets current ones; its other AWS credential sources are removed
    #[arg(long)]
    pub aws_credentials: bool,

    /// After the first SIGTERM, SIGINT or SIGHUP, send the command SIGKILL
    /// if it still runs SECONDS later, so that run ends (and revokes the
    /// job's leases) before the platform's own kill: set it below Slurm's
    /// KillWait or the pod's terminationGracePeriodSeconds
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub kill_after: Option<std::time::Duration>,

    /// Keep FILE (for a node exporter's textfile collector) the job's
    /// counters in the Prometheus / OpenMetrics text format: requests to
    /// the secret stores by outcome with their time, retries, failovers,
    /// stale values, refreshes, logins, renewals, leases; rewritten every 5
    /// seconds and when the command ends, summing run and every process of
    /// the command
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<std::path::PathBuf>,

    /// Record in FILE (JSON lines, 0600) which version of each secret run
    /// and every process of the command used, with a fingerprint of each
    /// value (HMAC-SHA256 under the job's salt: SIMPLETUNER_PROVENANCE_SALT_FILE
    /// when set, else a new one for this run), never a value
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<std::path::PathBuf>,

    /// Keep the files (--file, --as-files) current while the command runs:
    /// each is rewritten atomically (renamed over) when a secret in it
    /// changes
    #[arg(long)]
    pub watch: bool,

    /// The command and its arguments (after --)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

pub const ENV_AFTER_HELP: &str = "\
Formats:
  sh      export NAME='value' lines for eval (single quotes; ' as '\\'')
  dotenv  NAME='value' lines, or NAME=\"value\" with \\\\ \\\" and \\n escaped for a
          value with ' or \\, as python-dotenv and dotenvy read them back; a
          value neither reads back (a carriage return, ${, or $ with a quote
          or backslash) fails the command, nothing written
  docker  NAME=value lines for `docker run --env-file` (no quoting: docker
          takes each line literally); a value docker cannot carry (a line
          break, or a line over 64 KiB) fails the command, nothing written
  json    {\"schema\": 1, \"env\": {\"NAME\": \"value\"}}

Safe patterns:
  eval \"$(st-secrets env --only HF_TOKEN)\"      # fails the eval if a key is missing
  st-secrets env --format dotenv > .env && chmod 600 .env

Prefer `st-secrets run -- CMD` where you can: values then never pass through a
shell, a file or the output of a command.";

pub const INJECT_AFTER_HELP: &str = "\
A reference is {{ st://KEY }} (spaces inside the braces optional); any other
{{ ... }} is left as it is. Every key is resolved through the chain first: one
that is missing fails the command and nothing is written. The output file is
replaced atomically and has mode 0600.

Formats (--format, else by extension: .yaml/.yml, .json, anything else text):
  text  values inserted as they are
  yaml  escaped inside quoted strings; a whole unquoted value is a number or
        boolean when written as YAML writes one (8080, true), else a string
        (double-quoted unless plain letters and digits);
        a value that would change the document (a line break in single
        quotes, structure inside an unquoted value) fails the command
  json  escaped inside strings; outside quotes only a number, true, false or
        null; the filled document is checked to be JSON";

/// Which keys `run` and `env` resolve.
#[derive(Clone, clap::Args)]
pub struct Selection {
    /// Only these keys (comma-separated, or the option repeated)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "KEYS",
        conflicts_with = "all"
    )]
    pub only: Vec<String>,

    /// Every key the secrets file and the remote providers hold (the default
    /// without --only and --env-file)
    #[arg(long)]
    pub all: bool,

    /// A dotenv file of NAME=st://KEY references (resolved through the
    /// chain) and NAME=value literals; only its variables are set, unless
    /// --all or --only is given too (repeatable; a later file wins)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Sh,
    Dotenv,
    Docker,
    Json,
}

#[derive(clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Output format (--json is --format json)
    #[arg(long, value_enum, default_value_t = Format::Sh)]
    pub format: Format,
}

#[derive(clap::Args)]
pub struct InjectArgs {
    /// The template (`-` for stdin)
    #[arg(short, long = "in", value_name = "TEMPLATE")]
    pub input: PathBuf,

    /// Where to write the result (default: stdout)
    #[arg(short, long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How values are written in: text (as they are), yaml or json (escaped
    /// so the document keeps its shape); default by the template's (else the
    /// output's) extension
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<TemplateFormat>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TemplateFormat {
    Text,
    Yaml,
    Json,
}

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Files and directories (walked; symbolic links inside are not followed)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
    /// Also look for the value of KEY (from the chain)
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(clap::Args)]
pub struct RedactArgs {
    /// Files to rewrite in place (atomically, keeping their mode); none:
    /// stdin to stdout
    #[arg(value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Also conceal the value of KEY (from the chain)
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
}

pub const SCAN_AFTER_HELP: &str = "\
Looks for every value the providers hold (each key of the secrets file and of
the remote secrets, in every provider, and the well-known keys in the
environment) and the values of --key, each of 8 bytes or more, raw and
encoded: base64 and URL-safe base64 at any alignment, percent-encoded, inside
a JSON string, hexadecimal. Looks inside zip archives (torch.save), gzip, tar,
W&B run records, TensorBoard event files and safetensors files. Prints file,
member, offset, key and encoding, never the value (--json: one document).
Exit status: 0 nothing found, 1 found, 2 an error (a file unreadable, an
archive that expands past 64 GiB, no value to look for).";

pub const REDACT_AFTER_HELP: &str = "\
Conceals the values scan looks for, replacing each occurrence with
<concealed by st-secrets>. As a filter, bytes are held back only while they
could start a value; each read is passed on at once otherwise. A file is
rewritten only when something in it was concealed (a temporary file renamed
over it). Archives are not rewritten: scan them.";

/// A positive number of seconds, at most a day (`--kill-after`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err("a number of seconds above 0 and at most 86400".into()),
    }
}
