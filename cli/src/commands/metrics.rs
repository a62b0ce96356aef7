//! `run --metrics FILE`: the job's counters for a node exporter. Every
//! process of the job (`run` itself, the command, its ranks) writes its
//! counters to a private directory (`SIMPLETUNER_METRICS_DIR`, one
//! `<pid>.json` each, after a request at most once a second and when its
//! manager is freed); every few seconds, and once more after the command
//! and the revocations have ended, `run` adds them up and replaces FILE
//! with their Prometheus / OpenMetrics text (`meter::write_textfile`: a new
//! file of an unpredictable name, mode 0644, renamed into place).

use crate::secretfiles::SecretDir;
use st_secrets::secrets::meter;
use st_secrets::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often FILE is rewritten while the command runs.
const EVERY: Duration = Duration::from_secs(5);

/// The exporter: the job's metrics directory and the thread rewriting FILE.
pub struct Exporter {
    dir: SecretDir,
    file: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Makes the job's metrics directory, names it in this process's
    /// environment (before any manager is built) and so the command's, and
    /// starts rewriting `file`.
    pub fn start(file: &Path) -> Result<Exporter, Error> {
        let file = std::path::absolute(file)
            .map_err(|e| Error::InvalidArgument(format!("--metrics {}: {e}", file.display())))?;
        let dir = SecretDir::create()?;
        // Before any thread of this process reads the environment.
        std::env::set_var(st_secrets::job::vars::SIMPLETUNER_METRICS_DIR, dir.path());
        write(dir.path(), &file)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, source, target) = (Arc::clone(&stop), dir.path().to_owned(), file.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..EVERY.as_millis() / 100 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let _ = write(&source, &target);
                }
            })
        };
        Ok(Exporter {
            dir,
            file,
            stop,
            thread: Some(thread),
        })
    }

    /// The last rewrite (after the command and the revocations), then the
    /// directory is removed; a failure is said on stderr.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match write(self.dir.path(), &self.file) {
            Ok(skipped) => {
                for s in skipped {
                    eprintln!("st-secrets: run: --metrics: {s}");
                }
            }
            Err(e) => eprintln!("st-secrets: run: --metrics: {e}"),
        }
    }
}

/// Adds up the counters in `dir` (this process's written first) and
/// replaces `file` with their text; the counters files refused (a FIFO, a
/// huge file another process of the job left) are returned by name.
fn write(dir: &Path, file: &Path) -> Result<Vec<String>, Error> {
    let (sum, skipped) = meter::gather(dir)?;
    meter::write_textfile(file, &meter::openmetrics(&sum))?;
    Ok(skipped)
}
