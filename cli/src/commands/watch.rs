//! `run --file NAME=st://KEY --watch` (and `--as-files --watch`): while the
//! command runs, each file is rewritten when a secret in it changes (a
//! rotation), atomically (a new 0600 file renamed over it: a reader sees
//! the old value or the new one, never part of one), so a program that
//! reads its credentials file again picks up a rotation without a restart.
//!
//! The library's change events say when to look (its watch fetches a
//! remote secret at its soft deadline and checks the secrets file while a
//! listener is registered); each file's key is then read again and the file
//! rewritten only when its value differs. The new value is concealed in the
//! command's output from then on too.

use crate::io::printable;
use crate::secretfiles::SecretDir;
use st_secrets::job::delivery::{file_path, refusal, render_files, Render};
use st_secrets::redact::Patterns;
use st_secrets::secrets::SecretsManager;
use st_secrets::{Error, SecretString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Values shorter than this are not masked on the terminal: they cannot be
/// secrets worth the name, and masking them would garble every `1`, `true`
/// or `on` in the output. Their encoded forms (base64, hex, ...) are masked
/// from the library's floor, `st_secrets::redact::MIN_LEN` (8 bytes).
pub const MIN_MASKED_LEN: usize = 4;

/// The values `run` conceals in the command's output, with their encoded
/// forms; `None` when there is nothing to conceal.
///
/// # Errors
/// Past the leak guard's bound ([`Patterns::checked`]): a clear refusal
/// naming the way out, never a value.
pub fn masking_patterns<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Patterns>, Error> {
    Patterns::checked(values.into_iter().map(|v| ("", v)), MIN_MASKED_LEN).map_err(|e| {
        e.context("run: masking the command's output")
            .with_note("name the keys with --only, or pass --no-mask")
    })
}

/// The values concealed in the command's output: replaced when a rotation
/// (or a fresh identity token) adds one; the output threads take the new
/// set at their next read.
pub struct PatternSlot {
    generation: AtomicU64,
    current: Mutex<Arc<Patterns>>,
    /// Every value concealed so far.
    values: Mutex<Vec<SecretString>>,
}

impl PatternSlot {
    /// The slot concealing `values`; `None` when there is nothing to
    /// conceal.
    ///
    /// # Errors
    /// As [`masking_patterns`].
    pub fn new(values: Vec<SecretString>) -> Result<Option<PatternSlot>, Error> {
        let Some(patterns) = masking_patterns(values.iter().map(|v| v.expose_bytes()))? else {
            return Ok(None);
        };
        Ok(Some(PatternSlot {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(patterns)),
            values: Mutex::new(values),
        }))
    }

    /// Conceals `more` too, from the output threads' next read on.
    pub fn conceal(&self, more: impl IntoIterator<Item = SecretString>) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.extend(more);
        match masking_patterns(values.iter().map(|v| v.expose_bytes())) {
            Ok(Some(p)) => self.replace(p),
            Ok(None) => {}
            Err(e) => eprintln!("st-secrets: warning: {e}; the values before stay concealed"),
        }
    }

    /// The set and its generation.
    pub fn current(&self) -> (u64, Arc<Patterns>) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (
            self.generation.load(Ordering::Acquire),
            Arc::clone(&current),
        )
    }

    /// The generation of the set (changes when it is replaced).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn replace(&self, patterns: Patterns) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(patterns);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// One file being kept current: how messages name it (`--file NAME`, or
/// the path variable of `--as-files`), its name in the directory, the keys
/// whose values it holds, the values written last, and how it is written.
pub struct Watched {
    pub label: String,
    pub file: String,
    pub keys: Vec<String>,
    pub values: Vec<SecretString>,
    pub render: Render,
}

enum Message {
    Changed,
    Stop,
}

/// The watching thread; [`stop`](Self::stop) it before the files go.
pub struct Watch {
    sender: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts keeping `files` (in `dir`) current with `manager`.
    pub fn start(
        manager: SecretsManager,
        dir: PathBuf,
        files: Vec<Watched>,
        masking: Option<Arc<PatternSlot>>,
    ) -> Result<Watch, st_secrets::Error> {
        let (sender, receiver) = channel();
        let told = Mutex::new(sender.clone());
        let listener = manager.on_change(move |_| {
            let _ = told
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Message::Changed);
        });
        let thread = std::thread::Builder::new()
            .name("st-secrets-watch".into())
            .spawn(move || {
                let mut files = files;
                while let Ok(Message::Changed) = receiver.recv() {
                    // Several changes told at once are one look.
                    if receiver.try_iter().any(|m| matches!(m, Message::Stop)) {
                        break;
                    }
                    for f in &mut files {
                        rewrite_if_changed(&manager, &dir, f, masking.as_deref());
                    }
                }
                manager.remove_listener(listener);
            })
            .map_err(|e| st_secrets::Error::Internal(format!("cannot start a thread: {e}")))?;
        Ok(Watch {
            sender,
            thread: Some(thread),
        })
    }

    /// Stops watching: no file is written after this returns.
    pub fn stop(mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads `f`'s keys again and rewrites its file when a value differs. A
/// key that is gone or cannot be read keeps the file as it is (a warning
/// says so); nothing here shows a value.
fn rewrite_if_changed(
    manager: &SecretsManager,
    dir: &std::path::Path,
    f: &mut Watched,
    masking: Option<&PatternSlot>,
) {
    let mut found = Vec::with_capacity(f.keys.len());
    for key in &f.keys {
        let shown = printable(key);
        match manager.get_with_version(key) {
            Ok(Some(v)) => found.push(v),
            Ok(None) => {
                return eprintln!(
                    "st-secrets: warning: {}: secret '{shown}' is gone; the file keeps its value",
                    f.label
                )
            }
            Err(e) => {
                return eprintln!(
                    "st-secrets: warning: {}: cannot read secret '{shown}' ({e}); the file keeps its value",
                    f.label
                )
            }
        }
    }
    let changed: Vec<usize> = (0..found.len())
        .filter(|&i| found[i].value.expose_bytes() != f.values[i].expose_bytes())
        .collect();
    if changed.is_empty() {
        return;
    }
    let bytes: Vec<&[u8]> = found.iter().map(|v| v.value.expose_bytes()).collect();
    if let Some(why) = bytes.iter().find_map(|b| refusal(&f.render, b)) {
        return eprintln!(
            "st-secrets: warning: {}: {why}; the file keeps its value",
            f.label
        );
    }
    if let Some(slot) = masking {
        // Concealed before the command can have read it.
        slot.conceal(changed.iter().map(|&i| found[i].value.clone()));
    }
    let ends = found.first().and_then(|v| v.version.as_ref()?.ends);
    let replaced = render_files(&f.render, &bytes, ends)
        .iter()
        .try_for_each(|(name, content)| {
            SecretDir::replace(dir, &file_path(&f.file, name), content)
        });
    match replaced {
        Ok(()) => {
            for &i in &changed {
                let version = found[i]
                    .version
                    .as_ref()
                    .map(|v| format!(" (version {})", v.id))
                    .unwrap_or_default();
                eprintln!(
                    "st-secrets: {}: rewritten, secret '{}' changed{version}",
                    f.label,
                    printable(&f.keys[i])
                );
            }
            f.values = found.into_iter().map(|v| v.value).collect();
        }
        Err(e) => eprintln!("st-secrets: warning: {}: {e}", f.label),
    }
}
