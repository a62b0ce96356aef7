//! The files a scan is given: a path named (a file, a directory walked in
//! order, a stream), each file opened once and handed to its container's
//! reader.

use super::{containers, Place, Scanner};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

impl Scanner<'_> {
    /// Scans `path`: a file, or a directory walked (symbolic links inside
    /// it are not followed; special files are skipped), or a stream named
    /// on the command line (a FIFO, `/dev/stdin`, `<(...)`: read to its
    /// end as one plain stream). Anything else named (a socket, a block
    /// device) is an error: what was named and not read never passes.
    pub fn scan_path(&mut self, path: &Path) {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => self.walk(path),
            Ok(m) if m.is_file() => self.scan_file(path),
            Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => {
                self.scan_named_stream(path)
            }
            Ok(_) => self.report.errors.push((
                path.to_owned(),
                "not a file, a directory or a stream: not read".into(),
            )),
            Err(e) => self.report.errors.push((path.to_owned(), e.to_string())),
        }
    }

    /// A FIFO or character device named on the command line, read to its
    /// end (no container is opened: a stream cannot be sought).
    fn scan_named_stream(&mut self, path: &Path) {
        self.report.files += 1;
        self.expanded = 0;
        let before = self.report.scanned;
        let outcome = File::open(path)
            .and_then(|mut file| self.scan_stream(&mut file, &Place::file(path), false));
        self.report.bytes += self.report.scanned - before;
        if let Err(e) = outcome {
            self.report.errors.push((path.to_owned(), e.to_string()));
        }
    }

    fn walk(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.report.errors.push((dir.to_owned(), e.to_string())),
        };
        let mut paths: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
        for entry in entries {
            match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
                Ok(p) => paths.push(p),
                Err(e) => self.report.errors.push((dir.to_owned(), e.to_string())),
            }
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, kind) in paths {
            if kind.is_dir() {
                self.walk(&path);
            } else if kind.is_file() {
                self.scan_file(&path);
            }
        }
    }

    fn scan_file(&mut self, path: &Path) {
        use std::os::unix::fs::OpenOptionsExt;
        self.report.files += 1;
        self.expanded = 0;
        // O_NONBLOCK: a file swapped for a FIFO after it was listed must not
        // block the open (it has no effect on a regular file's reads), and
        // what was opened is checked to be a regular file still.
        let outcome = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .and_then(|file| {
                let meta = file.metadata()?;
                if !meta.is_file() {
                    return Err(io::Error::other(
                        "no longer a regular file when opened (replaced while the scan ran): \
                         not read",
                    ));
                }
                self.report.bytes += meta.len();
                containers::scan_file(self, file, meta.len(), &Place::file(path))
            });
        if let Err(e) = outcome {
            self.report.errors.push((path.to_owned(), e.to_string()));
        }
    }
}
