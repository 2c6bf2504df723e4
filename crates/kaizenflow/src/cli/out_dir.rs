//! A run's `--out` directory: it holds one run's files and nothing of an earlier one.
//!
//! Before a run writes, [`prepare`] removes every file a run or sweep writes (the
//! previous run's orders must not sit beside this run's result), and refuses a
//! non-empty directory that no run made unless `--force` says so. A marker file,
//! [`MARKER`], says the directory is a run's and whether the run finished
//! (`complete = true`, written last by [`finish`]). Every file is written atomically,
//! so a run killed at any instant leaves only whole files of the new run (each one
//! what an uninterrupted run writes) and a marker that says `complete = false`.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The marker of a directory that a run writes.
pub(super) const MARKER: &str = ".kaizenflow-run";

/// Every file name a run or a sweep writes at the top of its directory.
const FILES: &[&str] = &[
    "config.toml",
    "result.parquet",
    "timings.tsv",
    "metrics.toml",
    "orders.parquet",
    "fills.parquet",
    "portfolio.parquet",
    "assets.parquet",
    "check.tsv",
    "report.html",
    "stats.toml",
    "pnl.png",
    "market_data.parquet",
    "summary.tsv",
];

/// Every folder a run writes.
const FOLDERS: &[&str] = &["state", "capture"];

/// Makes `dir` ready for a run: created when absent; emptied of an earlier run's
/// files when it has the marker (or `force`); refused when it holds anything else.
/// With `nested` (a sweep), sub-folders that hold a marker (its points) go too.
///
/// # Errors
/// A directory that is not empty and was not written by a run, without `force`; a
/// path that is a file; an I/O error naming the path.
pub(super) fn prepare(dir: &Path, force: bool, nested: bool) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!(
                "--out {} is a file, not a directory: name a directory",
                dir.display()
            );
        }
        let ours = dir.join(MARKER).exists();
        // A folder holding only hidden temporary files (of a write killed before its
        // rename) is empty.
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .flatten()
            .all(|e| is_temp(&e.file_name().to_string_lossy()));
        if !empty && !ours && !force {
            bail!(
                "--out {} is not empty and holds no earlier run (no {MARKER} in it); \
                 name a new or empty directory, or pass --force to replace the files a \
                 run writes there",
                dir.display()
            );
        }
        // Marked unfinished before anything is removed: a run killed while clearing
        // leaves a partial earlier run that says so.
        mark(dir, false)?;
        return clear(dir, nested);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    mark(dir, false)
}

/// Removes what an earlier run wrote in `dir` (and only that).
fn clear(dir: &Path, nested: bool) -> Result<()> {
    let remove = |p: &Path| -> Result<()> {
        let r = if p.is_dir() {
            // Removing a folder is not atomic: rename it out of sight first, so that a
            // kill half way leaves a hidden temporary folder (cleared next time), not a
            // marked folder missing some of its files.
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let hidden = if name.starts_with('.') && name.ends_with(".tmp") {
                p.to_path_buf()
            } else {
                p.with_file_name(format!(".{name}.{}.removing.tmp", std::process::id()))
            };
            std::fs::rename(p, &hidden).and_then(|()| std::fs::remove_dir_all(&hidden))
        } else {
            std::fs::remove_file(p)
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("cannot remove {} (left by an earlier run)", p.display())),
        }
    };
    for name in FILES.iter().chain(FOLDERS) {
        remove(&dir.join(name))?;
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of a write that was killed before its rename; not the
        // marker's own (another rank of an MPI sweep may be writing it now).
        let temp = is_temp(&name) && !name.starts_with(&kf_frame::temp_prefix(MARKER));
        let point = nested && path.is_dir() && path.join(MARKER).exists();
        if temp || point {
            remove(&path)?;
        }
    }
    Ok(())
}

/// Whether `name` is a temporary file of an atomic write or a chart being drawn.
fn is_temp(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".tmp.png"))
}

/// Writes the marker (atomically).
fn mark(dir: &Path, complete: bool) -> Result<()> {
    let path = dir.join(MARKER);
    let text = format!(
        "# Written by kaizenflow; `complete = false` means the run did not finish.\n\
         complete = {complete}\n"
    );
    kf_frame::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Marks `dir`'s run as finished: every file it writes is in place.
///
/// # Errors
/// The I/O error naming the marker.
pub(super) fn finish(dir: &Path) -> Result<()> {
    mark(dir, true)
}

/// Writes `text` to `path` atomically.
///
/// # Errors
/// The I/O error naming the file.
pub(super) fn write_text(path: &Path, text: &str) -> Result<()> {
    kf_frame::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Ranks of an MPI sweep prepare one folder at once: one rank's clearing must
    /// not remove the temporary file of another rank's marker write.
    #[test]
    fn clearing_spares_a_marker_being_written_and_removes_other_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        prepare(&out, false, false).unwrap();
        let mut marker = kf_frame::AtomicFile::create(out.join(MARKER)).unwrap();
        marker.write_all(b"complete = false\n").unwrap();
        let stale = out.join(".summary.tsv.abc123.tmp");
        std::fs::write(&stale, b"half").unwrap();
        prepare(&out, false, false).unwrap();
        assert!(!stale.exists(), "a stale temporary file is removed");
        marker.commit().unwrap();
        assert!(out.join(MARKER).exists());
    }
}
