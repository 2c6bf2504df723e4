//! Files that appear whole or not at all: every output of the project is written to
//! a temporary file beside its target, synced, and renamed over it.
//!
//! A rename within one directory is atomic on POSIX file systems, so a reader (or a
//! process killed with `kill -9` half way) sees either the old file or the complete
//! new one, never a truncated mix. A write that fails or is dropped before
//! [`AtomicFile::commit`] removes its temporary file and leaves the target as it was.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written in place of `target`; see the module doc.
///
/// Invariant: until [`AtomicFile::commit`], `target` is untouched; the bytes go to a
/// hidden temporary file (`.NAME.XXXXXX.tmp`) in the same directory, removed on drop.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Starts writing a file that will replace `target` on commit.
    ///
    /// # Errors
    /// The I/O error when the temporary file cannot be made in `target`'s directory.
    pub fn create(target: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let prefix = temp_prefix(&name);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // An output is as readable as a file made with `File::create` (0666 less the
        // umask), not private like a temporary file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder.tempfile_in(dir)?;
        Ok(AtomicFile { target, temp })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the bytes to disk and renames the file over its target.
    ///
    /// # Errors
    /// The I/O error of the sync or the rename; the target is then as it was.
    pub fn commit(mut self) -> io::Result<()> {
        self.temp.flush()?;
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        // Sync the directory so the rename itself survives a power cut.
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl AtomicFile {
    /// Renames the file over its target without syncing it: readers still see the
    /// old file or the new one whole, but a power cut may leave the new name on
    /// empty or partial content. For files whose readers check their content (cache
    /// entries with a checksum) and can recompute them; it saves the two syncs that
    /// cost milliseconds per file.
    ///
    /// # Errors
    /// The I/O error of the rename; the target is then as it was.
    pub fn commit_unsynced(mut self) -> io::Result<()> {
        self.temp.flush()?;
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

/// The start of the name of every temporary file that a write of a file named
/// `name` makes (`.NAME.`); the rest is random, then `.tmp`. A cleaner that must
/// spare the temporary files of a write in progress (another process may be
/// writing the same target) tests names against this.
pub fn temp_prefix(name: &str) -> String {
    format!(".{name}.")
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
///
/// # Errors
/// The I/O error, with the target left as it was.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Writes `bytes` to `path` as [`write_atomic`] does, without syncing (see
/// [`AtomicFile::commit_unsynced`]).
///
/// # Errors
/// The I/O error, with the target left as it was.
pub fn write_replace(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit_unsynced()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_in_progress_has_a_temporary_file_named_by_temp_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let f = AtomicFile::create(dir.path().join(".marker")).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with("..marker."), "{names:?}");
        assert!(names[0].starts_with(&temp_prefix(".marker")), "{names:?}");
        assert!(names[0].ends_with(".tmp"), "{names:?}");
        drop(f);
    }

    #[test]
    fn the_target_changes_only_on_commit_and_a_dropped_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new and longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed on drop");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
