//! `st-secrets scan`'s engine: known values (and their encoded forms) in
//! files and directories, and inside what training writes: zip archives
//! (`torch.save`), gzip, tar, W&B run records and TensorBoard event files
//! (records reassembled), safetensors files (header or tensor data). Finds
//! only values it was given (never guesses by pattern) and reports where,
//! never what.
//!
//! A file is read once, in chunks of [`WINDOW`] bytes overlapping by one
//! less than the longest form, through the library's matcher; a container
//! is opened by its own reader and each member scanned the same way (a
//! member that is itself a container too, down to [`MAX_DEPTH`]).

mod containers;
mod walk;

use st_secrets::redact::{Encoding, Patterns};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How much of a stream is looked at at once.
pub const WINDOW: usize = 4 << 20;

/// Containers inside containers looked into, at most.
pub const MAX_DEPTH: usize = 4;

/// A value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The file.
    pub path: PathBuf,
    /// Where inside it (`archive/data.pkl`, `record 3`, `header`, members
    /// of nested containers joined by `!`); `None` for a plain file.
    pub member: Option<String>,
    /// The offset in the member (or the file).
    pub offset: u64,
    /// The key whose value it is.
    pub key: String,
    pub encoding: Encoding,
}

/// What a scan found and read.
#[derive(Default)]
pub struct Report {
    pub hits: Vec<Hit>,
    /// Files that could not be read or opened as what they claim to be,
    /// with the reason (never a value).
    pub errors: Vec<(PathBuf, String)>,
    pub files: u64,
    /// Bytes read from disk.
    pub bytes: u64,
    /// Bytes looked at (members inflated included).
    pub scanned: u64,
}

/// A scan in progress: the values and what was found so far.
pub struct Scanner<'p> {
    patterns: &'p Patterns,
    pub report: Report,
    /// Bytes inflated from the current file, against `max_expanded`.
    expanded: u64,
    /// What one file may inflate to before the scan of it stops (an
    /// archive bomb is an error, not a hang). Sparse tar members count
    /// their holes.
    pub max_expanded: u64,
    /// Bytes of containers held now (a zip inside a container must be
    /// read whole to be opened; so is a W&B record file), in memory or in
    /// a temporary file, against `max_in_memory`: nested ones add up.
    in_memory: u64,
    /// What may be held at once for that, all levels together.
    pub max_in_memory: u64,
    /// Of those, the bytes in memory now (a zip above 4 MiB is held in an
    /// anonymous temporary file instead), and the most there ever were.
    resident: u64,
    peak_resident: u64,
    /// The window streams are read into, kept from one to the next.
    window: Vec<u8>,
}

impl<'p> Scanner<'p> {
    pub fn new(patterns: &'p Patterns) -> Scanner<'p> {
        Scanner {
            patterns,
            report: Report::default(),
            expanded: 0,
            max_expanded: 64 << 30,
            in_memory: 0,
            max_in_memory: 512 << 20,
            resident: 0,
            peak_resident: 0,
            window: Vec::new(),
        }
    }

    /// Counts `n` bytes inflated from the current file; an error past the
    /// limit.
    fn inflated(&mut self, n: u64) -> io::Result<()> {
        self.expanded += n;
        self.room_for(0)
    }

    /// An error when `n` more bytes inflated would pass the limit (counted
    /// when they are read).
    fn room_for(&self, n: u64) -> io::Result<()> {
        if self.expanded.saturating_add(n) > self.max_expanded {
            return Err(io::Error::other(format!(
                "expands to more than {} GiB: not scanned to the end",
                self.max_expanded >> 30
            )));
        }
        Ok(())
    }

    /// Scans a stream to its end; hits are reported at `at`, with offsets
    /// from the stream's start. `inflated`: its bytes count against the
    /// file's limit.
    fn scan_stream(&mut self, from: &mut dyn Read, at: &Place, inflated: bool) -> io::Result<()> {
        // One window for the whole scan (a checkpoint's zip has a member per
        // tensor): taken out while it is filled, put back after.
        let mut buf = std::mem::take(&mut self.window);
        let keep = self.patterns.longest().saturating_sub(1);
        buf.resize(WINDOW + keep, 0);
        let outcome = self.scan_window(&mut buf, keep, from, at, inflated);
        self.window = buf;
        outcome
    }

    fn scan_window(
        &mut self,
        buf: &mut [u8],
        keep: usize,
        from: &mut dyn Read,
        at: &Place,
        inflated: bool,
    ) -> io::Result<()> {
        // `buf[..carried]` is the end of the previous window; `base` the
        // stream offset of `buf[0]`.
        let mut carried = 0;
        let mut base: u64 = 0;
        loop {
            // Fill the window (short reads from pipes and inflaters).
            let filled = carried + read_full(from, &mut buf[carried..])?;
            let fresh = (filled - carried) as u64;
            if inflated {
                self.inflated(fresh)?;
            }
            self.report.scanned += fresh;
            self.find(&buf[..filled], carried, base, at);
            if filled < buf.len() {
                return Ok(());
            }
            let next = filled - keep;
            buf.copy_within(next..filled, 0);
            base += next as u64;
            carried = keep;
        }
    }

    /// Reports the occurrences in `window` that end past `old` (those
    /// wholly inside the carried bytes were reported with the window
    /// before).
    fn find(&mut self, window: &[u8], old: usize, base: u64, at: &Place) {
        for f in self.patterns.find_all(window) {
            if f.end > old {
                self.report
                    .hits
                    .push(at.hit(base + f.start as u64, f.key, f.encoding));
            }
        }
    }

    /// Scans bytes held in memory (a record, a header).
    fn scan_bytes(&mut self, bytes: &[u8], at: &Place) {
        self.report.scanned += bytes.len() as u64;
        self.find(bytes, 0, 0, at);
    }
}

/// Where a stream being scanned is: the file, and the members leading to it.
#[derive(Clone)]
pub struct Place {
    path: PathBuf,
    members: Vec<String>,
}

impl Place {
    fn file(path: &Path) -> Place {
        Place {
            path: path.to_owned(),
            members: Vec::new(),
        }
    }

    /// The member `name` of this place.
    fn inside(&self, name: impl Into<String>) -> Place {
        let mut p = self.clone();
        p.members.push(name.into());
        p
    }

    fn depth(&self) -> usize {
        self.members.len()
    }

    fn hit(&self, offset: u64, key: &str, encoding: Encoding) -> Hit {
        Hit {
            path: self.path.clone(),
            member: (!self.members.is_empty()).then(|| self.members.join("!")),
            offset,
            key: key.to_owned(),
            encoding,
        }
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes were read.
fn read_full(from: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match from.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
