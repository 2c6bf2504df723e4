//! A content-addressed cache of node outputs on disk (the paper's section 4.12:
//! "only nodes that see a change of inputs or in the implementation code need to be
//! recomputed").
//!
//! # Keys
//! A node output's [`Key`] is a SHA-256 of:
//! - the node's type and its code version ([`crate::Node::version`]), and this
//!   crate's version;
//! - its resolved parameters, as its builder recorded them ([`crate::Dag::set_recipe`]);
//! - for a source, a fingerprint of its data ([`crate::Node::data_fingerprint`]:
//!   the files' content hashes and the reader's settings);
//! - the run's context (phase, interval, training spans, decision time, targets);
//! - for a node that learns, its learned state before the call;
//! - its input keys, port by port (so a key covers everything upstream).
//!
//! A node without a recipe, or a source that cannot fingerprint its data, has no
//! key: it and everything downstream of it run every time.
//!
//! # Entries
//! One file per key, `KEY.kfc`, written atomically (a temporary file renamed into
//! place, so processes sharing a folder, such as MPI ranks, never read half an
//! entry). Entries are not synced to disk: after a power cut an entry may be empty
//! or partial, which its checksum catches. Each holds the output frames as Arrow IPC and a SHA-256 of its bytes; a
//! corrupt or truncated entry is reported, removed and recomputed, never used. The
//! folder has a size bound: after each store, the least recently used entries
//! (by modification time, which a hit refreshes) are removed until it fits.
//!
//! A command's output file may be cached too ([`NodeCache::store_file`]): keyed by
//! the keys of the node outputs it was written from, it is copied out byte for byte
//! when a later run has the same keys, so a warm sweep does not write its results
//! again.
//!
//! How a run uses it is in [`crate::Dag::use_cache`].

pub mod entry;
pub mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use entry::{EntryError, Meta};
pub use key::{Key, KeyBuilder};
pub use kf_datapull::fingerprint::frame_digest;

use crate::node::Ports;

/// The file name extension of an entry.
const EXT: &str = "kfc";
/// The file name extension of a cached output file.
const FILE_EXT: &str = "kff";
/// The file of lifetime counts, beside the entries.
const STATS_FILE: &str = "stats.json";

/// Per-node counts of one cache's use (in this process).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeCounts {
    /// Outputs taken from the cache (loaded, or not needed at all because every
    /// consumer's output was in the cache too).
    pub hits: u64,
    /// Outputs computed and stored.
    pub misses: u64,
    /// Outputs computed without a key (no recipe or no data fingerprint).
    pub uncached: u64,
}

/// What a cache did: hits, misses, and the compute time the hits saved.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Outputs taken from the cache.
    pub hits: u64,
    /// Outputs computed and stored.
    pub misses: u64,
    /// Outputs computed without a key.
    pub uncached: u64,
    /// Entries found corrupt or truncated (removed and recomputed).
    pub corrupt: u64,
    /// Entries that could not be written (the run went on without them).
    pub store_errors: u64,
    /// Entries removed to keep the folder under its bound.
    pub evicted: u64,
    /// Compute time of the outputs taken from the cache, as stored with them (ns).
    pub saved_ns: u64,
    /// Time spent loading entries (ns).
    pub load_ns: u64,
    /// The counts by node id.
    pub by_node: BTreeMap<String, NodeCounts>,
}

impl CacheStats {
    /// The compute time hits saved, less the time spent loading them.
    pub fn saved(&self) -> Duration {
        Duration::from_nanos(self.saved_ns.saturating_sub(self.load_ns))
    }

    fn add(&mut self, other: &CacheStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.uncached += other.uncached;
        self.corrupt += other.corrupt;
        self.store_errors += other.store_errors;
        self.evicted += other.evicted;
        self.saved_ns += other.saved_ns;
        self.load_ns += other.load_ns;
        for (k, v) in &other.by_node {
            let e = self.by_node.entry(k.clone()).or_default();
            e.hits += v.hits;
            e.misses += v.misses;
            e.uncached += v.uncached;
        }
    }
}

/// One entry as `cache info` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryInfo {
    /// Its key.
    pub key: String,
    /// Its size on disk.
    pub bytes: u64,
    /// Its header (`None` for an output file, or an entry that does not decode:
    /// such an entry is removed at its next use).
    pub meta: Option<Meta>,
    /// Whether it is a cached output file ([`NodeCache::store_file`]).
    pub file: bool,
}

/// A cache of node outputs in a folder, shared by every run that holds it (and by
/// every process pointed at the same folder).
///
/// # Invariants
/// Every `*.kfc` file in the folder was written whole (atomic rename); entries are
/// immutable once written, so a key's entry is the same bytes for every reader.
#[derive(Debug)]
pub struct NodeCache {
    dir: PathBuf,
    max_bytes: u64,
    stats: Mutex<CacheStats>,
}

/// A cache as one run uses it: the cache and the name of the run's origin (a
/// config's path and id), recorded in the entries it stores.
#[derive(Clone, Debug)]
pub struct CacheHandle {
    /// The cache.
    pub cache: Arc<NodeCache>,
    /// Where the run came from, for `cache info`.
    pub origin: Arc<str>,
}

/// An exclusive hold on one key ([`NodeCache::lock`]), released when dropped (or
/// when the process ends, however it ends).
#[derive(Debug)]
pub struct KeyLock {
    _file: std::fs::File,
}

/// The folder of the lock files, inside the cache folder.
const LOCKS: &str = "locks";

/// A problem with the cache folder itself.
#[derive(Debug, thiserror::Error)]
#[error("cache folder {}: {message}", path.display())]
pub struct CacheError {
    /// The folder or entry.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

impl NodeCache {
    /// The default bound on a cache folder's size: 8 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 8 << 30;

    /// Opens (creating it if absent) the cache in `dir`, bounded to `max_bytes`.
    ///
    /// # Errors
    /// [`CacheError`] when the folder cannot be created or is a file.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<NodeCache, CacheError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| CacheError {
            path: dir.clone(),
            message: format!("cannot create it: {e}"),
        })?;
        Ok(NodeCache {
            dir,
            max_bytes,
            stats: Mutex::new(CacheStats::default()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What this process's runs did with the cache so far.
    pub fn stats(&self) -> CacheStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn record(&self, f: impl FnOnce(&mut CacheStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn path_of(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.{EXT}", key.hex()))
    }

    /// The header of `key`'s entry, if the cache has one that starts well (the
    /// checksum is checked by [`NodeCache::load`]).
    pub fn probe(&self, key: &Key) -> Option<Meta> {
        use std::io::Read;
        let mut f = std::fs::File::open(self.path_of(key)).ok()?;
        let mut head = [0u8; 12];
        f.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let mut buf = vec![0u8; 12 + len];
        buf[..12].copy_from_slice(&head);
        f.read_exact(&mut buf[12..]).ok()?;
        entry::header(&buf).ok().map(|(m, _)| m)
    }

    /// Loads `key`'s entry: its outputs and the learned state stored with them. A
    /// hit refreshes the entry's age for the LRU bound.
    ///
    /// # Errors
    /// [`EntryError`] for a missing, corrupt or truncated entry; the corrupt entry
    /// is removed, so the next run recomputes it.
    pub fn load(&self, key: &Key) -> Result<(Meta, Ports, Vec<u8>), EntryError> {
        let path = self.path_of(key);
        let bytes =
            std::fs::read(&path).map_err(|e| EntryError::Truncated(format!("cannot read: {e}")))?;
        match entry::decode(&bytes) {
            Ok(e) => {
                if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Ok(e)
            }
            Err(err) => {
                tracing::warn!(entry = %path.display(), error = %err, "corrupt cache entry removed");
                let _ = std::fs::remove_file(&path);
                self.record(|s| s.corrupt += 1);
                Err(err)
            }
        }
    }

    /// Holds `key`, waiting while another thread or process holds it, for at most
    /// `patience`. Whoever computes an output holds its key until the entry is
    /// stored, so a run that wants the same output meanwhile waits, then loads it
    /// instead of computing it again: points of a sweep (threads, or MPI ranks
    /// sharing the folder) compute a shared upstream node once. A lock is an OS file
    /// lock on `locks/KEY` (the files stay; they are empty). `None` when the wait
    /// ran out or the lock file cannot be made: the caller then computes too.
    ///
    /// The wait is bounded, not blocking, because a waiting thread may be a rayon
    /// worker whose own stack holds work the holder waits for; a bounded wait turns
    /// that rare cycle into a delay and a duplicate computation, never a hang.
    pub fn lock(&self, key: &Key, patience: Duration) -> Option<KeyLock> {
        let dir = self.dir.join(LOCKS);
        std::fs::create_dir_all(&dir).ok()?;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(key.hex()))
            .ok()?;
        let start = std::time::Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Some(KeyLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < patience => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(_) => return None,
            }
        }
    }

    /// Stores an entry under `key` (atomically), then evicts the least recently used
    /// entries beyond the size bound.
    ///
    /// # Errors
    /// A frame that does not encode, or a file that cannot be written.
    pub fn store(
        &self,
        key: &Key,
        meta: &Meta,
        outputs: &Ports,
        state: &[u8],
    ) -> crate::Result<()> {
        let bytes = entry::encode(meta, outputs, state)?;
        let path = self.path_of(key);
        kf_frame::write_replace(&path, &bytes).map_err(|e| {
            crate::DataflowError::invalid(format!("cannot write {}: {e}", path.display()))
        })?;
        self.evict();
        Ok(())
    }

    /// Stores a copy of the file at `path` under `key`, for
    /// [`NodeCache::fetch_file`]. The copy's CRC-32 is part of its name
    /// (`KEY.CRC.kff`), so the file itself stays byte for byte what was written.
    ///
    /// # Errors
    /// The file cannot be read or the entry written.
    pub fn store_file(&self, key: &Key, path: &Path) -> std::io::Result<()> {
        let bytes = std::fs::read(path)?;
        let sum = crc32fast::hash(&bytes);
        let name = format!("{}.{sum:08x}.{FILE_EXT}", key.hex());
        kf_frame::write_replace(self.dir.join(name), &bytes)?;
        self.evict();
        Ok(())
    }

    /// Puts the file stored under `key` at `path` (a hard link to the entry when the
    /// file system allows, else a copy), after checking its CRC-32; `false` when
    /// there is none, or it is damaged (then it is removed).
    pub fn fetch_file(&self, key: &Key, path: &Path) -> bool {
        let prefix = format!("{}.", key.hex());
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            return false;
        };
        let Some((entry, sum)) = list.filter_map(|e| e.ok()).find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let crc = name
                .strip_prefix(&prefix)?
                .strip_suffix(&format!(".{FILE_EXT}"))?;
            Some((e.path(), u32::from_str_radix(crc, 16).ok()?))
        }) else {
            return false;
        };
        let Ok(bytes) = std::fs::read(&entry) else {
            return false;
        };
        if crc32fast::hash(&bytes) != sum {
            tracing::warn!(entry = %entry.display(), "corrupt cached file removed");
            let _ = std::fs::remove_file(&entry);
            self.record(|s| s.corrupt += 1);
            return false;
        }
        let _ = std::fs::remove_file(path);
        if std::fs::hard_link(&entry, path).is_err()
            && kf_frame::write_atomic(path, &bytes).is_err()
        {
            return false;
        }
        if let Ok(f) = std::fs::File::options().write(true).open(&entry) {
            let _ = f.set_modified(SystemTime::now());
        }
        true
    }

    /// Every entry, oldest use first, with its size and header.
    ///
    /// # Errors
    /// [`CacheError`] when the folder cannot be listed.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, CacheError> {
        Ok(self
            .files()?
            .into_iter()
            .map(|(path, bytes, _)| {
                let key = path
                    .file_name()
                    .map(|s| s.to_string_lossy().chars().take(64).collect::<String>())
                    .unwrap_or_default();
                let file = path.extension().is_some_and(|x| x == FILE_EXT);
                let meta = Key::from_hex(&key)
                    .filter(|_| !file)
                    .and_then(|k| self.probe(&k));
                EntryInfo {
                    key,
                    bytes,
                    meta,
                    file,
                }
            })
            .collect())
    }

    /// Removes every entry (and the lifetime counts); returns how many entries and
    /// bytes were removed.
    ///
    /// # Errors
    /// [`CacheError`] when the folder cannot be listed or a file not removed.
    pub fn clear(&self) -> Result<(usize, u64), CacheError> {
        let files = self.files()?;
        let (n, bytes) = (files.len(), files.iter().map(|f| f.1).sum());
        for (path, _, _) in files {
            std::fs::remove_file(&path).map_err(|e| CacheError {
                path: path.clone(),
                message: format!("cannot remove it: {e}"),
            })?;
        }
        let _ = std::fs::remove_file(self.dir.join(STATS_FILE));
        Ok((n, bytes))
    }

    /// Adds this process's counts to the folder's lifetime counts (`stats.json`) and
    /// returns the new totals. Processes that flush at the same instant may lose
    /// one's counts (the file is replaced whole), never corrupt it.
    ///
    /// # Errors
    /// [`CacheError`] when the file cannot be written.
    pub fn flush_stats(&self) -> Result<CacheStats, CacheError> {
        let mut total = self.lifetime_stats();
        let mine = match self.stats.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => CacheStats::default(),
        };
        total.add(&mine);
        let path = self.dir.join(STATS_FILE);
        let text = serde_json::to_vec_pretty(&total).unwrap_or_default();
        kf_frame::write_replace(&path, &text).map_err(|e| CacheError {
            path,
            message: format!("cannot write the counts: {e}"),
        })?;
        Ok(total)
    }

    /// The folder's lifetime counts, as last flushed (zero when none were).
    pub fn lifetime_stats(&self) -> CacheStats {
        std::fs::read(self.dir.join(STATS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The entries' paths, sizes and ages, least recently used first.
    fn files(&self) -> Result<Vec<(PathBuf, u64, SystemTime)>, CacheError> {
        let list = std::fs::read_dir(&self.dir).map_err(|e| CacheError {
            path: self.dir.clone(),
            message: format!("cannot list it: {e}"),
        })?;
        let mut files: Vec<(PathBuf, u64, SystemTime)> = list
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x == EXT || x == FILE_EXT)
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((
                    e.path(),
                    m.len(),
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ))
            })
            .collect();
        files.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        Ok(files)
    }

    /// Removes the least recently used entries until the folder fits its bound.
    fn evict(&self) {
        let Ok(files) = self.files() else { return };
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut removed = 0;
        for (path, bytes, _) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= bytes;
                removed += 1;
            }
        }
        if removed > 0 {
            self.record(|s| s.evicted += removed);
        }
    }
}
