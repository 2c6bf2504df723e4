//! Fingerprints of the data a source reads, for caches keyed by content.
//!
//! A file's fingerprint is the SHA-256 of its bytes. Hashing runs at memory speed
//! (the CPU's SHA extensions), but a sweep asks for the same files once per point,
//! so each process remembers the digest of a file by its identity (device, inode,
//! size, modification time): a file rewritten in place gets a new modification
//! time and is hashed again; an unchanged one is hashed once per process.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// What identifies a file's version on disk without reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Identity {
    len: u64,
    modified_ns: i128,
    dev: u64,
    ino: u64,
}

fn identity(meta: &std::fs::Metadata) -> Identity {
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i128);
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Identity {
        len: meta.len(),
        modified_ns,
        dev,
        ino,
    }
}

type Memo = Mutex<HashMap<PathBuf, (Identity, String)>>;

fn memo() -> &'static Memo {
    static MEMO: OnceLock<Memo> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: format!("cannot {what} it to fingerprint its data: {e}"),
    }
}

/// The hex SHA-256 of a file's bytes, or of a folder's files (each by relative
/// name and digest, in name order), remembered per process while the file's
/// identity is unchanged.
///
/// # Errors
/// [`DataError::Store`] naming the path when it cannot be read.
pub fn path_digest(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, "stat", e))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io_error(path, "list", e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| io_error(path, "list", e))?;
        entries.sort();
        let mut h = Sha256::new();
        for entry in entries {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(path_digest(&entry)?.as_bytes());
        }
        return Ok(hex(&h.finalize()));
    }
    let id = identity(&meta);
    let key = path.to_path_buf();
    if let Ok(m) = memo().lock()
        && let Some((known, digest)) = m.get(&key)
        && *known == id
    {
        return Ok(digest.clone());
    }
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, "open", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, "read", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let digest = hex(&h.finalize());
    if let Ok(mut m) = memo().lock() {
        m.insert(key, (id, digest.clone()));
    }
    Ok(digest)
}

/// The fingerprint of a set of files: each file's name (not its folder, so the same
/// data elsewhere is the same data) and digest, in the order given.
///
/// # Errors
/// As [`path_digest`].
pub fn files_fingerprint(files: &[PathBuf]) -> Result<String> {
    let mut out = String::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(&format!("{}:{name}={};", name.len(), path_digest(f)?));
    }
    Ok(out)
}

/// The SHA-256 of a frame's content: its times, asset and feature names, and every
/// value by its bits (so `-0.0` and `0.0`, and NaNs with different payloads,
/// differ), in hex. One pass over the frame's buffers.
pub fn frame_digest(frame: &kf_frame::Frame) -> String {
    let mut h = Sha256::new();
    let names = |h: &mut Sha256, names: &[String]| {
        h.update((names.len() as u64).to_le_bytes());
        for n in names {
            h.update((n.len() as u64).to_le_bytes());
            h.update(n.as_bytes());
        }
    };
    names(&mut h, frame.assets());
    names(&mut h, frame.features());
    h.update((frame.n_rows() as u64).to_le_bytes());
    // Values go to the hash in blocks of little-endian bytes (one call per block,
    // not per value).
    let mut block = Vec::with_capacity(8 * 1024);
    let mut feed = |h: &mut Sha256, bits: &mut dyn Iterator<Item = u64>| {
        for b in bits {
            block.extend_from_slice(&b.to_le_bytes());
            if block.len() == block.capacity() {
                h.update(&block);
                block.clear();
            }
        }
        h.update(&block);
        block.clear();
    };
    feed(
        &mut h,
        &mut frame
            .end_ts()
            .iter()
            .chain(frame.knowledge_ts())
            .map(|&t| t as u64),
    );
    for f in 0..frame.n_features() {
        feed(
            &mut h,
            &mut frame.feature_at(f).values().iter().map(|v| v.to_bits()),
        );
    }
    hex(&h.finalize())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_sha256_and_follows_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, b"abc").unwrap();
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            path_digest(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(&p, b"abd").unwrap();
        // Same length; a later (or equal) mtime, and the digest of the new bytes.
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert_ne!(
            path_digest(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(path_digest(&dir.path().join("missing")).is_err());
    }
}
