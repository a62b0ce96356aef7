//! `st-secrets run -- CMD ARGS...`: starts a command with the secrets added
//! to its environment (never its command line), forwards signals to it,
//! conceals the values in its output, and exits with its status.
//!
//! Signals: before the command starts, the forwarded signals and SIGCHLD are
//! blocked in this thread (the command gets the mask from before), and this
//! thread then takes them one by one with `sigtimedwait`, looking each second
//! whether the command ended too (in case a thread of other code took the
//! SIGCHLD): SIGCHLD means the command may have ended; any other is
//! passed on with `kill`, unless the terminal sent it (`SI_KERNEL`: Ctrl-C,
//! Ctrl-\, a resize or a hangup go to the whole foreground process group, the
//! command included, and must not arrive twice). The command is reaped only
//! after the last forward, so a signal can never reach a recycled pid.
//!
//! `--file`'s private directory is removed once the command is reaped,
//! whichever way it ended; the signals are blocked before it is written,
//! so one that arrives in between waits and is forwarded. As PID 1 (a
//! container's entrypoint) `run` also reaps the orphans it inherits.

mod output;

use output::{drain, start_pumps};

use super::awsserve::CredentialServer;
use super::exchanged::Planned;
use super::export::{resolve, Purpose, Resolved, Var};
use super::identity::{Keeper, Spec};
use super::ledger::JobLedger;
use super::watch::{PatternSlot, Watch, Watched};
use crate::args::RunArgs;
use crate::context::Globals;
use crate::outcome::{usage, CliError, Outcome};
use crate::secretfiles::{self, SecretDir};
use crate::sys::{self, Blocked};
use st_secrets::job::delivery::{self, Delivery, Render};
use st_secrets::job::vars;
use st_secrets::secrets::{IdentityToken, VaultJob};
use st_secrets::Error;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;

/// The signals passed on to the command: every signal whose default
/// action would end the tool and that another process can send (SIGKILL
/// and SIGSTOP cannot be caught), and SIGWINCH. Ending the tool without
/// ending the command would orphan it and leave `--file`'s secrets behind;
/// forwarded, the command ends of it, and the tool then removes the files
/// and exits as the command did. On Linux that includes SIGSEGV, SIGBUS,
/// SIGFPE and SIGILL sent by another process: a fault of the tool's own is
/// delivered whether blocked or not (the kernel forces it), so blocking
/// them only takes what `kill` sends.
fn forwarded() -> Vec<libc::c_int> {
    let mut signals = vec![
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGALRM,
        libc::SIGABRT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGTRAP,
        libc::SIGSYS,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
    ];
    #[cfg(target_os = "linux")]
    {
        signals.extend([libc::SIGPWR, libc::SIGSTKFLT]);
        signals.extend([libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL]);
        signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    }
    signals
}

/// How often `run` looks whether its command has ended without a
/// `SIGCHLD` to say so: another thread of this process that does not block
/// it may have taken it (the library's threads block it; a thread of some
/// other code might not).
const CHILD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The exit status for the command's: its code, or 128+N for signal N.
fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

/// The files of the run: `--file`'s, then (with `--as-files`) one per
/// delivery of the secret variables, which then leave the environment.
fn plan_files(resolved: &Resolved, as_files: bool) -> Result<Vec<Planned>, CliError> {
    let mut out: Vec<Planned> = resolved
        .files
        .iter()
        .map(|f| Planned {
            label: format!("--file {}", f.name),
            delivery: Delivery {
                file: f.name.clone(),
                path_var: f.name.clone(),
                from: vec![f.name.clone()],
                render: Render::Plain,
                also: Vec::new(),
            },
            keys: vec![f.key.clone()],
            values: vec![f.value.clone()],
            ends: None,
        })
        .collect();
    if as_files {
        let secrets: std::collections::HashMap<&str, &Var> = resolved
            .vars
            .iter()
            .filter(|v| v.secret)
            .map(|v| (v.name.as_str(), v))
            .collect();
        // An exchanged W&B or Anthropic credential goes where its SDK
        // reads one.
        let mut exchanged = Vec::new();
        for v in resolved.vars.iter().filter(|v| v.secret) {
            if let Some(p) = super::exchanged::plan(resolved, v)? {
                exchanged.push(v.name.as_str());
                out.push(p);
            }
        }
        // The plan keeps the variables' order (`vars` is in first-set order).
        let names: Vec<&str> = resolved
            .vars
            .iter()
            .filter(|v| v.secret && !exchanged.contains(&v.name.as_str()))
            .map(|v| v.name.as_str())
            .collect();
        for d in delivery::plan(&names, |n| std::env::var(n).ok()) {
            let from: Vec<&Var> = d
                .from
                .iter()
                .filter_map(|n| secrets.get(n.as_str()).copied())
                .collect();
            if let Some((v, why)) = from
                .iter()
                .find_map(|v| delivery::refusal(&d.render, v.value.expose_bytes()).map(|w| (v, w)))
            {
                return Err(usage(format!(
                    "--as-files: {} (secret '{}') cannot go to {}: {why}",
                    v.name,
                    crate::io::printable(&v.key),
                    d.path_var
                )));
            }
            out.push(Planned {
                label: d.path_var.clone(),
                keys: from.iter().map(|v| v.key.clone()).collect(),
                values: from.iter().map(|v| v.value.clone()).collect(),
                delivery: d,
                ends: None,
            });
        }
    }
    if let Some(p) = out
        .iter()
        .find(|p| !secretfiles::plain_name(&p.delivery.file))
    {
        return Err(usage(format!(
            "{}: '{}' cannot name a file of the run (a plain file name: not empty, no '/', \
             not '.' or '..'); nothing was written: rename the variable, or deliver it with \
             --file NAME=st://KEY",
            p.label,
            crate::io::printable(&p.delivery.file)
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(p) = out.iter().find(|p| !seen.insert(p.delivery.file.as_str())) {
        return Err(usage(format!(
            "{}: two files of the run would be named {}; give --file another name",
            p.label, p.delivery.file
        )));
    }
    Ok(out)
}

pub fn run(g: &Globals, args: RunArgs) -> Outcome {
    // Blocked first, before any thread starts (threads inherit the mask: a
    // signal sent to the process then reaches no thread that would die of
    // it) and before any private directory is made. A signal from here on
    // waits for the command, which it is passed to; one that comes while
    // the run cannot start its command (a failure) ends it as 128+N once
    // the directories are removed, not by the signal with no status.
    let mut signals = forwarded();
    signals.push(libc::SIGCHLD);
    let blocked = Blocked::block(&signals)?;
    let outcome = run_blocked(g, args, &blocked);
    // A signal that came while the run could not start its command is
    // taken here, never left to end the process once unblocked.
    let mut pending = None;
    while let Ok(Some((signal, _))) = blocked.wait(std::time::Duration::ZERO) {
        if signal != libc::SIGCHLD {
            pending = pending.or(Some(signal));
        }
    }
    match (outcome, pending) {
        (Err(_), Some(signal)) => Ok(128u8.saturating_add(signal as u8)),
        (outcome, _) => outcome,
    }
}

/// The signals that end a run that has no command yet.
const ENDING: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The run's secrets, resolved on a thread of their own while this one
/// takes the blocked signals: resolving may wait minutes for the node's
/// slot in a fleet's start, and a SIGTERM, SIGINT or SIGHUP then ends the
/// run at once (its ledger revoked, its directories removed, 128+N) rather
/// than at the slot. Every signal taken is made pending again (still
/// blocked): an ending one for [`run`] to end with, any other for the
/// command. The thread left behind ends with the process; it made no
/// request while it waited for its slot.
fn resolve_unless_ended(
    blocked: &Blocked,
    g: &Globals,
    args: &RunArgs,
    purpose: Purpose,
) -> Result<Resolved, CliError> {
    let (g, selection, files) = (g.clone(), args.selection.clone(), args.files.clone());
    let (sender, resolved) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("st-secrets-resolve".into())
        .spawn(move || {
            let _ = sender.send(resolve(&g, &selection, &files, purpose));
        })
        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
    let mut taken = Vec::new();
    let outcome = loop {
        match resolved.try_recv() {
            Ok(outcome) => break outcome,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                break Err(Error::Internal("resolving the secrets failed".into()).into())
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        match blocked.wait(std::time::Duration::from_millis(20))? {
            Some((signal, _)) if ENDING.contains(&signal) => {
                taken.push(signal);
                break Err(CliError::Error(Error::Internal(format!(
                    "signal {signal} came while the secrets were resolved"
                ))));
            }
            Some((signal, _)) if signal != libc::SIGCHLD => taken.push(signal),
            _ => {}
        }
    };
    for signal in taken {
        sys::kill(std::process::id() as libc::pid_t, signal);
    }
    outcome
}

fn run_blocked(g: &Globals, args: RunArgs, blocked: &Blocked) -> Outcome {
    if args.watch && args.files.is_empty() && !args.as_files {
        return Err(usage(
            "--watch keeps the run's files current: give --file NAME=st://KEY or --as-files",
        ));
    }
    let purpose = match args.as_files {
        true => Purpose::RunAsFiles,
        false => Purpose::Run,
    };
    let specs = args
        .identity_tokens
        .iter()
        .map(|a| Spec::parse(a).map_err(usage))
        .collect::<Result<Vec<_>, _>>()?;
    // Before the chain is built: its leases and logins are the job's, and
    // what it uses is recorded with the command's.
    let ledger = JobLedger::open(g)?;
    let _salt = args.provenance.as_deref().map(provenance).transpose()?;
    let metrics = (args.metrics.as_deref())
        .map(super::metrics::Exporter::start)
        .transpose()?;
    let resolved = resolve_unless_ended(blocked, g, &args, purpose)?;
    let aws_chain = aws_chain(&resolved, args.aws_credentials)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| usage("run needs a command after --"))?;
    // Identity tokens first: they are concealed with the secrets.
    let (vault, tokens) = identity_tokens(&resolved, specs)?;
    let patterns = match args.no_mask {
        true => None,
        false => concealing(&resolved, &tokens)?.map(Arc::new),
    };
    let planned = plan_files(&resolved, args.as_files)?;
    let mut command = Command::new(program);
    command.args(rest);
    set_environment(&mut command, &resolved.vars, args.as_files);
    if patterns.is_some() {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let secret_dir = write_files(&planned, &tokens, &mut command)?;
    let watched = args.watch.then_some((resolved, planned));
    let mut beside = Beside::start(secret_dir, vault, tokens, patterns.as_ref(), watched)?;
    if let Some(chain) = aws_chain {
        let dir = SecretDir::create()?;
        beside.aws_server = Some((CredentialServer::start(chain, &dir, &mut command)?, dir));
    }
    blocked.restore_in(&mut command);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Ok(not_started(program, &e)),
    };
    drop(command); // the values it held
    let pumps = match &patterns {
        Some(patterns) => start_pumps(&mut child, patterns)?,
        None => Vec::new(),
    };
    // As a container's PID 1, every orphan of the namespace is this
    // process's child: reaped as it ends, or it stays a zombie.
    let init = std::process::id() == 1;
    let status = supervise(&mut child, blocked, init, args.kill_after)?;
    beside.stop();
    // Signals still blocked: a second SIGTERM does not stop the revocation.
    ledger.finish();
    if let Some(metrics) = metrics {
        metrics.finish(); // the revocations counted too
    }
    // Unblocked for the output's last bytes: a process that keeps the
    // pipes open cannot make a SIGTERM wait.
    blocked.release();
    drain(pumps, init);
    Ok(status_code(status))
}

/// `--aws-credentials`: the AWS credential chain the command's endpoint
/// serves.
fn aws_chain(
    resolved: &Resolved,
    wanted: bool,
) -> Result<Option<st_secrets::secrets::AwsCredentialChain>, Error> {
    if !wanted {
        return Ok(None);
    }
    let c = resolved.manager.config();
    let vars = st_secrets::secrets::Vars::from_process();
    st_secrets::secrets::AwsCredentialChain::new(&c.aws, &c.remote, vars).map(Some)
}

/// The identity tokens of `--identity-token`, each with what asked for it.
type Tokens = Vec<(Spec, IdentityToken)>;

/// `--identity-token`: the job's Vault login and each token it issued.
fn identity_tokens(
    resolved: &Resolved,
    specs: Vec<Spec>,
) -> Result<(Option<VaultJob>, Tokens), Error> {
    if specs.is_empty() {
        return Ok((None, Vec::new()));
    }
    let c = resolved.manager.config();
    let vars = st_secrets::secrets::Vars::from_process();
    let vault = VaultJob::new(&c.vault, &c.remote, vars);
    let mut tokens = Vec::with_capacity(specs.len());
    for spec in specs {
        let token = spec.fetch(&vault)?;
        tokens.push((spec, token));
    }
    Ok((Some(vault), tokens))
}

/// The values concealed in the command's output: the secrets resolved, the
/// values masked, the identity tokens; `None` when there are none.
fn concealing(
    resolved: &Resolved,
    tokens: &[(Spec, IdentityToken)],
) -> Result<Option<PatternSlot>, Error> {
    let secrets = resolved.vars.iter().chain(&resolved.files);
    let values = secrets
        .filter(|v| v.secret)
        .map(|v| v.value.clone())
        .chain(resolved.masked.iter().cloned())
        .chain(tokens.iter().map(|t| t.1.token.clone()))
        .collect();
    PatternSlot::new(values)
}

/// The exit status of a command that could not be started (127: not found,
/// 126: not runnable), said on stderr.
fn not_started(program: &std::ffi::OsStr, e: &std::io::Error) -> u8 {
    eprintln!("st-secrets: cannot run {}: {e}", program.to_string_lossy());
    match e.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

/// What runs beside the command: the identity tokens' keeper, the watch
/// of its files, the AWS credentials endpoint; and the files' directory.
struct Beside {
    keeper: Option<Keeper>,
    watch: Option<Watch>,
    aws_server: Option<(CredentialServer, SecretDir)>,
    secret_dir: Option<SecretDir>,
}

impl Beside {
    /// Starts the keeper of `tokens` and, when `watched`, the watch of the
    /// files in `secret_dir` (the resolution and the plan are dropped
    /// otherwise: the values they held go before the command starts).
    fn start(
        secret_dir: Option<SecretDir>,
        vault: Option<VaultJob>,
        tokens: Tokens,
        patterns: Option<&Arc<PatternSlot>>,
        watched: Option<(Resolved, Vec<Planned>)>,
    ) -> Result<Beside, Error> {
        let keeper = match (&secret_dir, vault) {
            (Some(dir), Some(vault)) if !tokens.is_empty() => Some(Keeper::start(
                vault,
                dir.path().to_owned(),
                tokens,
                patterns.cloned(),
            )),
            _ => None,
        };
        let watch = match (&secret_dir, watched) {
            (Some(dir), Some((resolved, planned))) => {
                Some(start_watch(resolved, dir, planned, patterns)?)
            }
            _ => None,
        };
        Ok(Beside {
            keeper,
            watch,
            aws_server: None,
            secret_dir,
        })
    }

    /// Stops each: no file is rewritten and nothing listens after this;
    /// the files are removed.
    fn stop(self) {
        if let Some(watch) = self.watch {
            watch.stop();
        }
        if let Some(keeper) = self.keeper {
            keeper.stop();
        }
        if let Some((server, dir)) = self.aws_server {
            server.stop();
            dir.remove();
        }
        if let Some(dir) = self.secret_dir {
            dir.remove();
        }
    }
}

/// The command's environment: each variable resolved, except the secret
/// ones `--as-files` delivers as files instead (an inherited reference is
/// removed too).
fn set_environment(command: &mut Command, vars: &[Var], as_files: bool) {
    for var in vars {
        if as_files && var.secret {
            command.env_remove(&var.name);
        } else {
            command.env(&var.name, var.value.expose());
        }
    }
}

/// Writes the run's files (and its identity tokens) in a new private
/// directory, each named to the command by its variable; `None` when there
/// are none.
fn write_files(
    planned: &[Planned],
    tokens: &[(Spec, st_secrets::secrets::IdentityToken)],
    command: &mut Command,
) -> Result<Option<SecretDir>, Error> {
    if planned.is_empty() && tokens.is_empty() {
        return Ok(None);
    }
    let dir = SecretDir::create()?;
    for p in planned {
        let values: Vec<&[u8]> = p.values.iter().map(|v| v.expose_bytes()).collect();
        let mut path = dir.path().join(&p.delivery.file);
        for (name, bytes) in delivery::render_files(&p.delivery.render, &values, p.ends) {
            let written = dir.write(&delivery::file_path(&p.delivery.file, &name), &bytes)?;
            if name.is_empty() {
                path = written;
            }
        }
        command.env(&p.delivery.path_var, path);
        command.envs(p.delivery.also.iter().map(|(k, v)| (k, v)));
    }
    for (spec, token) in tokens {
        let path = dir.write(&spec.file(), token.token.expose().as_bytes())?;
        command.env(&spec.var, path);
    }
    Ok(Some(dir))
}

/// `--watch`: keeps the files of `dir` current, going on with each file's
/// keys and values, and the values concealed (a rotated one joins them).
fn start_watch(
    resolved: Resolved,
    dir: &SecretDir,
    planned: Vec<Planned>,
    patterns: Option<&Arc<PatternSlot>>,
) -> Result<Watch, Error> {
    let watched = planned
        .into_iter()
        .map(|p| Watched {
            label: p.label,
            file: p.delivery.file,
            keys: p.keys,
            values: p.values,
            render: p.delivery.render,
        })
        .collect();
    Watch::start(
        resolved.manager,
        dir.path().to_owned(),
        watched,
        patterns.cloned(),
    )
}

/// Names `file` (made absolute) as the job's provenance record in this
/// process's environment, and so the command's, with the job's salt: the
/// launcher's `SIMPLETUNER_PROVENANCE_SALT_FILE` when set, else a new salt
/// in a private directory that lives as long as `run` (returned).
fn provenance(file: &std::path::Path) -> Result<Option<SecretDir>, Error> {
    let file = std::path::absolute(file)
        .map_err(|e| Error::InvalidArgument(format!("--provenance {}: {e}", file.display())))?;
    // Before any thread of this process reads the environment.
    std::env::set_var(vars::SIMPLETUNER_PROVENANCE_FILE, &file);
    if std::env::var_os(vars::SIMPLETUNER_PROVENANCE_SALT_FILE).is_some_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let dir = SecretDir::create()?;
    let salt = st_secrets::secrets::provenance::new_salt();
    let path = dir.write("provenance-salt", salt.expose().as_bytes())?;
    std::env::set_var(vars::SIMPLETUNER_PROVENANCE_SALT_FILE, &path);
    Ok(Some(dir))
}

/// Takes the blocked signals until the command has ended: each passed on
/// unless the terminal sent it to the whole group; as PID 1 (`init`) the
/// orphans reaped as they end. With `kill_after`, a command still running
/// that long after the first SIGTERM, SIGINT or SIGHUP is sent SIGKILL (so
/// that `run` ends, and revokes, before the platform's own deadline). The
/// command is reaped last, after the last forward.
fn supervise(
    child: &mut Child,
    blocked: &Blocked,
    init: bool,
    kill_after: Option<std::time::Duration>,
) -> Result<ExitStatus, Error> {
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    let mut deadline: Option<std::time::Instant> = None;
    loop {
        let wait = deadline.map_or(CHILD_CHECK, |d| {
            d.saturating_duration_since(std::time::Instant::now())
                .clamp(std::time::Duration::from_millis(1), CHILD_CHECK)
        });
        let (signal, from_kernel) = blocked.wait(wait)?.unwrap_or((libc::SIGCHLD, true));
        if signal == libc::SIGCHLD {
            // Not reaped yet: a forward below still reaches this process.
            if sys::exited(pid)? {
                return child
                    .wait()
                    .map_err(|e| Error::Internal(format!("cannot wait for the command: {e}")));
            }
            if init {
                sys::reap_orphans(Some(pid));
            }
        } else {
            if !from_kernel {
                sys::kill(pid, signal); // not reaped yet: the pid is the command's
            }
            if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP) && deadline.is_none() {
                deadline = kill_after.map(|k| std::time::Instant::now() + k);
            }
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            deadline = None;
            if !sys::exited(pid)? {
                sys::kill(pid, libc::SIGKILL); // not reaped yet
            }
        }
    }
}
