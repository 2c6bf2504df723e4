//! Parquet stores: long-layout market data cut into row groups that a query can skip.
//!
//! A store is one Parquet file in the long layout (`end_ts`, `knowledge_ts`, `asset`,
//! one `Float64` column per feature) that pandas, polars, DuckDB or DataFusion read
//! as is. Its row groups are blocks of (consecutive bar times x assets in name
//! order), so each group's statistics bound both its time range and its asset range.
//! A query for a time range, some assets and some columns therefore reads:
//! - only the row groups whose `end_ts` and `asset` statistics overlap the request
//!   (and, with an `as_of`, whose earliest `knowledge_ts` is not after it);
//! - only the requested columns of those groups (projection);
//!
//! and selects the remaining rows exactly. [`ReadStats`] reports the groups and
//! bytes actually read, which the tests compare with a full scan.
//!
//! A store written with [`write_long`] may hold revisions (several knowledge times
//! for one bar); a read then keeps the latest version known at the query's `as_of`.
//! The footer's key-value metadata records the layout version, the asset list and
//! whether revisions may be present.

mod assemble;
mod checksum;
mod write;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Int32Type};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;

use kf_frame::{ASSET, END_TS, Frame, FrameError, KNOWLEDGE_TS, Timestamp};

use crate::query::{Query, check_known};
use crate::revisions::{latest_known, times};
use crate::{Result, Source, conform};

pub use write::{StoreCompression, StoreOptions, write_frame, write_long};
use write::{parquet_err, store_err};

const META_LAYOUT: &str = "kaizenflow.layout";
const META_ASSETS: &str = "kaizenflow.assets";
const META_REVISIONS: &str = "kaizenflow.revisions";
const LAYOUT: &str = "long-v1";

/// What a query read, for tests and for `data info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Row groups (Parquet) or chunks (HDF5) read.
    pub units_read: usize,
    /// Row groups or chunks in the whole store.
    pub units_total: usize,
    /// Bytes fetched from the file.
    pub bytes_read: u64,
}

/// A file handle that counts the bytes the Parquet reader fetches through it.
struct CountingFile {
    file: File,
    bytes: Arc<AtomicU64>,
}

struct CountingRead<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Length for CountingFile {
    fn len(&self) -> u64 {
        Length::len(&self.file)
    }
}

impl ChunkReader for CountingFile {
    type T = CountingRead<<File as ChunkReader>::T>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(CountingRead {
            inner: self.file.get_read(start)?,
            bytes: Arc::clone(&self.bytes),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let b = self.file.get_bytes(start, length)?;
        self.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
}

/// A row group's index and its decoded batches.
type GroupBatches = (usize, Vec<RecordBatch>);

/// A row group's batches projected to some of the store's columns: (group, the
/// columns' root indices, batches).
type ProjectedGroup = (usize, Vec<usize>, Vec<RecordBatch>);

/// At most this many row groups of a query are kept for the next one (a query of
/// a few bars touches one, or two across a boundary; a large query keeps nothing,
/// so no history stays decoded in memory).
const LAST_READ_GROUPS: usize = 2;

/// An open Parquet store: its footer is parsed once; queries read what they need.
#[derive(Debug, Clone)]
pub struct ParquetStore {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
    assets: Vec<String>,
    features: Vec<String>,
    revisions: bool,
    /// Leaf column indices of end_ts, knowledge_ts and asset.
    key_columns: [usize; 3],
    /// The CRC of each (row group, column) of a store this crate wrote (see
    /// [`checksum`]); `None` for a file of another writer.
    checksums: Option<Vec<checksum::GroupCheck>>,
    /// The row groups the last [`Source::prefix_fingerprint`] read (whole, every
    /// column, verified), for the query that usually follows it: a run continuing
    /// after the cut reads the same groups.
    recent: Arc<std::sync::Mutex<Vec<GroupBatches>>>,
    /// The row groups of the last query that read few of them (decoded, verified,
    /// projected to its columns `.1`): a streaming reader (a system's decision, a
    /// DAG's step) asks for a few bars at a time, mostly from the group the last
    /// query read, which is then neither decoded nor verified again.
    last_read: Arc<std::sync::Mutex<Vec<ProjectedGroup>>>,
    /// [`Source::fingerprint`], computed on first use (the footer never changes).
    footer_digest: std::sync::OnceLock<String>,
}

/// Summary of a store for `kaizenflow data info`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreInfo {
    /// Assets, in name order.
    pub assets: Vec<String>,
    /// Feature columns.
    pub features: Vec<String>,
    /// Stored rows (one per (bar, asset, version)).
    pub rows: u64,
    /// First and last bar end, if any rows.
    pub time_range: Option<(Timestamp, Timestamp)>,
    /// Whether the store may hold revised rows.
    pub revisions: bool,
    /// Row groups (Parquet) or chunks per feature (HDF5).
    pub units: usize,
    /// File size in bytes.
    pub file_bytes: u64,
}

/// Feeds one row group's part of a prefix fingerprint to `h`: its rows up to the
/// cut and the CRC of each column over them (a tag byte for a column without one).
fn group_token(h: &mut sha2::Sha256, rows: i64, crcs: &[Option<u32>]) {
    use sha2::Digest;
    h.update(rows.to_le_bytes());
    h.update((crcs.len() as u64).to_le_bytes());
    for c in crcs {
        match c {
            Some(v) => {
                h.update([1]);
                h.update(v.to_le_bytes());
            }
            None => h.update([0]),
        }
    }
}

fn int64_range(stats: Option<&Statistics>) -> Option<(i64, i64)> {
    match stats? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

impl ParquetStore {
    /// Opens a store, reading only its footer.
    ///
    /// # Errors
    /// [`DataError::Store`](crate::DataError::Store) naming the file when it is missing, not Parquet, has a
    /// corrupt footer, or lacks the layout's columns.
    pub fn open(path: impl AsRef<Path>) -> Result<ParquetStore> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| parquet_err(path, "cannot open", e))?;
        // A corrupt footer (or the Arrow schema embedded in it) can make the decoder
        // panic; the panic is the file's fault, so it is this file's error.
        let metadata = kf_frame::guard::catch_quiet(|| {
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        })
        .map_err(|panic| {
            parquet_err(
                path,
                "corrupt Parquet footer (the file is damaged; import it again)",
                panic,
            )
        })?
        .map_err(|e| parquet_err(path, "not a readable Parquet file", e))?;
        let schema = metadata.schema();
        let kv = |key: &str| -> Option<String> {
            metadata
                .metadata()
                .file_metadata()
                .key_value_metadata()?
                .iter()
                .find(|kv| kv.key == key)?
                .value
                .clone()
        };
        let features = kf_frame::long::feature_columns(schema);
        let leaves = metadata.metadata().file_metadata().schema_descr();
        let leaf = |name: &str| -> Result<usize> {
            leaves
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .ok_or_else(|| {
                    store_err(
                        path,
                        format!("not a market data store: no `{name}` column (expected the long layout: end_ts, knowledge_ts, asset, features)"),
                    )
                })
        };
        let key_columns = [leaf(END_TS)?, leaf(KNOWLEDGE_TS)?, leaf(ASSET)?];
        let assets = match kv(META_ASSETS) {
            Some(a) if !a.is_empty() => a.lines().map(str::to_string).collect(),
            Some(_) => Vec::new(),
            None => {
                // A long-layout file written by another tool: list its assets once.
                ParquetStore {
                    path: path.to_path_buf(),
                    metadata: metadata.clone(),
                    assets: Vec::new(),
                    features: Vec::new(),
                    revisions: true,
                    key_columns,
                    checksums: None,
                    recent: Arc::default(),
                    last_read: Arc::default(),
                    footer_digest: std::sync::OnceLock::new(),
                }
                .scan_assets()?
            }
        };
        if let Some(layout) = kv(META_LAYOUT)
            && layout != LAYOUT
        {
            return Err(store_err(
                path,
                format!("store layout {layout:?} is not supported (this build reads {LAYOUT:?})"),
            ));
        }
        let checksums = match kv(checksum::META_CHECKSUMS) {
            None => None,
            Some(text) => {
                let mut entries: Vec<(&str, String)> = Vec::new();
                for key in [META_LAYOUT, META_ASSETS, META_REVISIONS] {
                    entries.push((key, kv(key).unwrap_or_default()));
                }
                entries.push((checksum::META_CHECKSUMS, text.clone()));
                let pairs: Vec<(&str, &str)> =
                    entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let damaged = |what: &str| {
                    store_err(
                        path,
                        format!("{what}: the file is damaged; import it again"),
                    )
                };
                if kv(checksum::META_CRC) != Some(checksum::meta_crc(&pairs)) {
                    return Err(damaged(
                        "the footer's metadata (asset list, layout, checksums) fails its checksum",
                    ));
                }
                let lines = checksum::parse(&text)
                    .filter(|l| l.len() == metadata.metadata().num_row_groups())
                    .ok_or_else(|| damaged("the footer's checksums do not match its row groups"))?;
                Some(lines)
            }
        };
        Ok(ParquetStore {
            path: path.to_path_buf(),
            revisions: kv(META_REVISIONS).is_none_or(|r| r == "true"),
            metadata,
            assets,
            features,
            key_columns,
            checksums,
            recent: Arc::default(),
            last_read: Arc::default(),
            footer_digest: std::sync::OnceLock::new(),
        })
    }

    /// The distinct assets of a file without our metadata, in name order.
    fn scan_assets(&self) -> Result<Vec<String>> {
        let batches = self.read_groups(
            (0..self.metadata.metadata().num_row_groups()).collect(),
            &[],
            &Arc::new(AtomicU64::new(0)),
        )?;
        let mut names = std::collections::BTreeSet::new();
        for b in &batches {
            let col = b
                .column_by_name(ASSET)
                .ok_or_else(|| store_err(&self.path, "no asset column"))?;
            let a = cast(col, &DataType::Utf8).map_err(FrameError::from)?;
            names.extend(a.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(names.into_iter().collect())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Assets, in name order.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    /// Feature columns.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Whether rows may be revised (several knowledge times per bar).
    pub fn has_revisions(&self) -> bool {
        self.revisions
    }

    /// A summary from the footer alone (row groups' statistics).
    pub fn info(&self) -> StoreInfo {
        let md = self.metadata.metadata();
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for (g, rg) in md.row_groups().iter().enumerate() {
            let range = match self.checksums.as_ref().and_then(|c| c.get(g)) {
                Some(check) => check.bounds.as_ref().map(|b| b.end),
                None => int64_range(rg.column(self.key_columns[0]).statistics()),
            };
            if let Some((a, b)) = range {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        StoreInfo {
            assets: self.assets.clone(),
            features: self.features.clone(),
            rows: md.file_metadata().num_rows().max(0) as u64,
            time_range: (lo <= hi).then_some((Timestamp(lo), Timestamp(hi))),
            revisions: self.revisions,
            units: md.num_row_groups(),
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        }
    }

    /// The row groups that may hold rows for `q`, by their statistics.
    fn select_groups(&self, q: &Query) -> Vec<usize> {
        let md = self.metadata.metadata();
        let asked: Option<Vec<&[u8]>> = q
            .assets
            .as_ref()
            .map(|a| a.iter().map(|s| s.as_bytes()).collect());
        (0..md.num_row_groups())
            .filter(|&g| {
                if let Some(check) = self.checksums.as_ref().and_then(|c| c.get(g)) {
                    return check.bounds.as_ref().is_some_and(|b| {
                        !(q.start.is_some_and(|s| b.end.1 < s)
                            || q.end.is_some_and(|e| b.end.0 > e)
                            || q.as_of.is_some_and(|tau| b.known_from > tau))
                            && asked.as_ref().is_none_or(|asked| {
                                asked.iter().any(|x| {
                                    *x >= b.assets.0.as_bytes() && *x <= b.assets.1.as_bytes()
                                })
                            })
                    });
                }
                let rg = md.row_group(g);
                let [t, k, a] = self.key_columns.map(|c| rg.column(c).statistics());
                if let Some((lo, hi)) = int64_range(t)
                    && (q.start.is_some_and(|s| hi < s) || q.end.is_some_and(|e| lo > e))
                {
                    return false;
                }
                if let (Some((lo, _)), Some(tau)) = (int64_range(k), q.as_of)
                    && lo > tau
                {
                    return false;
                }
                if let (Some(asked), Some(s)) = (&asked, a)
                    && let (Some(lo), Some(hi)) = (s.min_bytes_opt(), s.max_bytes_opt())
                {
                    return asked.iter().any(|x| *x >= lo && *x <= hi);
                }
                true
            })
            .collect()
    }

    /// Reads whole row groups (in parallel, in order) with a column projection.
    fn read_groups(
        &self,
        groups: Vec<usize>,
        features: &[String],
        bytes: &Arc<AtomicU64>,
    ) -> Result<Vec<RecordBatch>> {
        use rayon::prelude::*;
        let schema = self.metadata.metadata().file_metadata().schema_descr_ptr();
        let arrow_schema = self.metadata.schema();
        let mut roots = vec![];
        for name in [END_TS, KNOWLEDGE_TS, ASSET]
            .into_iter()
            .chain(features.iter().map(String::as_str))
        {
            roots.push(arrow_schema.index_of(name).map_err(FrameError::from)?);
        }
        let mask = ProjectionMask::roots(&schema, roots.iter().copied());
        let read_group = |g: usize| -> Result<Vec<RecordBatch>> {
            if let Some(batches) = self.recently_read(g, &roots)? {
                return Ok(batches);
            }
            if let Some(batches) = self.last_read_of(g, &roots) {
                return Ok(batches);
            }
            let file =
                File::open(&self.path).map_err(|e| parquet_err(&self.path, "cannot open", e))?;
            let rows = self.metadata.metadata().row_group(g).num_rows().max(1) as usize;
            let read = || -> Result<Vec<RecordBatch>> {
                let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                    CountingFile {
                        file,
                        bytes: Arc::clone(bytes),
                    },
                    self.metadata.clone(),
                )
                .with_row_groups(vec![g])
                .with_projection(mask.clone())
                .with_batch_size(rows)
                .build()
                .map_err(|e| parquet_err(&self.path, "reading the store", e))?;
                reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| parquet_err(&self.path, format!("row group {g}"), e))
            };
            let batches = kf_frame::guard::catch_quiet(read).map_err(|panic| {
                parquet_err(&self.path, format!("row group {g}: corrupt data"), panic)
            })??;
            self.verify(g, &batches)?;
            Ok(batches)
        };
        // One group (a streaming query's usual case) is read on this thread: handing
        // it to the pool would cost more than its decoding.
        let parts: Vec<Vec<RecordBatch>> = match groups.len() {
            0 | 1 => groups
                .iter()
                .map(|&g| read_group(g))
                .collect::<Result<_>>()?,
            _ => groups
                .par_iter()
                .map(|&g| read_group(g))
                .collect::<Result<_>>()?,
        };
        if groups.len() <= LAST_READ_GROUPS
            && let Ok(mut last) = self.last_read.lock()
        {
            *last = groups
                .iter()
                .zip(&parts)
                .map(|(&g, b)| (g, roots.clone(), b.clone()))
                .collect();
        }
        Ok(parts.into_iter().flatten().collect())
    }

    /// Row group `g` projected to `roots`, if the last query that read few groups
    /// read it with the same columns.
    fn last_read_of(&self, g: usize, roots: &[usize]) -> Option<Vec<RecordBatch>> {
        let last = self.last_read.lock().ok()?;
        last.iter()
            .find(|(h, r, _)| *h == g && r == roots)
            .map(|(_, _, b)| b.clone())
    }

    /// Row group `g` projected to the store's columns `roots`, if the last prefix
    /// fingerprint read it.
    fn recently_read(&self, g: usize, roots: &[usize]) -> Result<Option<Vec<RecordBatch>>> {
        let Ok(recent) = self.recent.lock() else {
            return Ok(None);
        };
        let Some((_, batches)) = recent.iter().find(|(h, _)| *h == g) else {
            return Ok(None);
        };
        let store_schema = self.metadata.schema();
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let mut columns = Vec::with_capacity(roots.len());
            for &r in roots {
                let name = store_schema.field(r).name();
                columns.push(b.schema().index_of(name).map_err(FrameError::from)?);
            }
            out.push(b.project(&columns).map_err(FrameError::from)?);
        }
        Ok(Some(out))
    }

    /// Checks the decoded columns of row group `g` against the footer's checksums.
    fn verify(&self, g: usize, batches: &[RecordBatch]) -> Result<()> {
        let Some(sums) = self
            .checksums
            .as_ref()
            .and_then(|c| c.get(g))
            .map(|c| &c.crcs)
        else {
            return Ok(());
        };
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let whole;
        let batch = if batches.len() == 1 {
            first
        } else {
            whole = arrow::compute::concat_batches(&first.schema(), batches)
                .map_err(FrameError::from)?;
            &whole
        };
        let store_schema = self.metadata.schema();
        for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
            let Ok(i) = store_schema.index_of(field.name()) else {
                continue;
            };
            if let (Some(Some(want)), Some(got)) = (sums.get(i), checksum::column_crc(col.as_ref()))
                && *want != got
            {
                return Err(store_err(
                    &self.path,
                    format!(
                        "row group {g}, column `{}`: the values read fail their checksum \
                         (the file is damaged); import it again",
                        field.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Runs a query and says what it read.
    ///
    /// # Errors
    /// [`DataError::Query`](crate::DataError::Query) for an unknown asset or column; [`DataError::Store`](crate::DataError::Store)
    /// naming the file and row group that could not be read or decoded.
    pub fn query_with_stats(&self, q: &Query) -> Result<(Frame, ReadStats)> {
        if let Some(a) = &q.assets {
            check_known("asset", a, &self.assets)?;
        }
        if let Some(c) = &q.columns {
            check_known("column", c, &self.features)?;
        }
        let features = q.columns.clone().unwrap_or_else(|| self.features.clone());
        let assets = q.assets.clone().unwrap_or_else(|| self.assets.clone());
        let groups = self.select_groups(q);
        let bytes = Arc::new(AtomicU64::new(0));
        let stats = |n| ReadStats {
            units_read: n,
            units_total: self.metadata.metadata().num_row_groups(),
            bytes_read: bytes.load(Ordering::Relaxed),
        };
        let n_groups = groups.len();
        let batches = self.read_groups(groups, &features, &bytes)?;
        if !self.revisions {
            // Row groups this crate wrote (checksummed) are in time order.
            let sorted = self.checksums.is_some();
            let frame = assemble::assemble(&batches, q, &assets, &features, &self.assets, sorted)
                .map_err(|e| match e {
                crate::DataError::Query { what } => store_err(&self.path, what),
                e => e,
            })?;
            return Ok((frame, stats(n_groups)));
        }
        let mut kept = Vec::with_capacity(batches.len());
        for b in batches {
            let b = self.filter(b, q)?;
            if b.num_rows() > 0 {
                kept.push(b);
            }
        }
        let batches = if self.revisions {
            latest_known(&kept, q.as_of)
                .map_err(|e| store_err(&self.path, e.to_string()))?
                .into_iter()
                .collect()
        } else {
            kept
        };
        let frame = if batches.is_empty() {
            Frame::empty(assets.clone(), features.clone())?
        } else {
            Frame::from_long_batches(&batches)?
        };
        Ok((conform(frame, &assets, &features)?, stats(n_groups)))
    }

    /// Keeps the rows of `b` inside the query's time range and assets, for a store
    /// with revisions (the knowledge cut-off is [`latest_known`]'s job there).
    fn filter(&self, b: RecordBatch, q: &Query) -> Result<RecordBatch> {
        let end = times(&b, END_TS)?;
        let mut keep: Vec<bool> = end.iter().map(|&t| q.contains_time(t)).collect();
        if let Some(asked) = &q.assets {
            let col = b
                .column_by_name(ASSET)
                .ok_or_else(|| store_err(&self.path, "no asset column"))?;
            // Decide once per dictionary entry, then look up by key: no hashing per row.
            let asked: std::collections::HashSet<&str> = asked.iter().map(String::as_str).collect();
            if let Some(dict) = col.as_dictionary_opt::<Int32Type>() {
                let values = cast(dict.values(), &DataType::Utf8).map_err(FrameError::from)?;
                let wanted: Vec<bool> = values
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.is_some_and(|v| asked.contains(v)))
                    .collect();
                for (k, key) in keep.iter_mut().zip(dict.keys().values()) {
                    *k &= usize::try_from(*key)
                        .ok()
                        .and_then(|i| wanted.get(i))
                        .copied()
                        .unwrap_or(false);
                }
            } else {
                let names = cast(col, &DataType::Utf8).map_err(FrameError::from)?;
                for (k, v) in keep.iter_mut().zip(names.as_string::<i32>().iter()) {
                    *k &= v.is_some_and(|v| asked.contains(v));
                }
            }
        }
        if keep.iter().all(|&k| k) {
            return Ok(b);
        }
        let mask = BooleanArray::from(keep);
        debug_assert_eq!(mask.null_count(), 0);
        Ok(filter_record_batch(&b, &mask).map_err(FrameError::from)?)
    }
}

impl Source for ParquetStore {
    /// A store this crate wrote is fingerprinted by its footer: the CRC of every
    /// column of every row group over the decoded values (which every read checks,
    /// so the footer cannot go stale), the row counts, assets and features. That is
    /// free (the footer is parsed at open) where hashing the file costs a pass over
    /// it on every run. A file of another writer is hashed whole.
    fn fingerprint(&self) -> Result<Option<String>> {
        use sha2::{Digest, Sha256};
        let Some(checks) = &self.checksums else {
            let digest = crate::fingerprint::path_digest(&self.path)?;
            return Ok(Some(format!("parquet;{digest}")));
        };
        let digest = self.footer_digest.get_or_init(|| {
            let rows: Vec<i64> = self
                .metadata
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            let descr = format!(
                "{checks:?}|{rows:?}|{:?}|{:?}|{}",
                self.assets, self.features, self.revisions
            );
            crate::fingerprint::hex(&Sha256::digest(descr.as_bytes()))
        });
        Ok(Some(format!("parquet-footer;{digest}")))
    }

    fn describe(&self) -> String {
        format!("parquet store {}", self.path.display())
    }

    fn lineage(&self) -> Option<String> {
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        Some(format!("parquet-store;{}", path.display()))
    }

    /// For a store this crate wrote, from the footer and the row groups that `until`
    /// cuts. Each group holding rows up to `until` gives its rows up to `until` and
    /// the CRC of each column over them (a group's rows are in time order, so those
    /// are its first rows): the footer's checksums for a group wholly before
    /// `until`, a read for a group that `until` cuts. Appending bars to a store
    /// rewrites only its last time block, whose old rows stay its first rows, so the
    /// fingerprint of the old end is the same before and after; and the fingerprint
    /// of a store's own end costs no read at all. A foreign file is read up to
    /// `until` and hashed.
    fn prefix_fingerprint(&self, until: i64) -> Result<Option<String>> {
        use sha2::{Digest, Sha256};
        let Some(checks) = &self.checksums else {
            return crate::read_prefix_fingerprint(self, until).map(Some);
        };
        let md = self.metadata.metadata();
        let mut h = Sha256::new();
        h.update(format!("{:?}|{:?}|{}", self.assets, self.features, self.revisions).as_bytes());
        let bytes = Arc::new(AtomicU64::new(0));
        let mut read = Vec::new();
        for (g, check) in checks.iter().enumerate() {
            let Some(b) = &check.bounds else { continue };
            let (lo, hi) = b.end;
            if lo > until {
                continue;
            }
            if hi <= until {
                group_token(&mut h, md.row_group(g).num_rows(), &check.crcs);
                continue;
            }
            // `until` cuts this group: the CRCs of its first rows, up to `until`.
            let batches = self.read_groups(vec![g], &self.features, &bytes)?;
            read.push((g, batches.clone()));
            let Some(first) = batches.first() else {
                continue;
            };
            let batch = arrow::compute::concat_batches(&first.schema(), &batches)
                .map_err(FrameError::from)?;
            let end = times(&batch, END_TS)?;
            let k = end.partition_point(|&t| t <= until);
            if end[k..].iter().any(|&t| t <= until) {
                // Not in time order (never written so by this crate): hash the rows.
                return crate::read_prefix_fingerprint(self, until).map(Some);
            }
            let store_schema = self.metadata.schema();
            let mut crcs: Vec<Option<u32>> = vec![None; store_schema.fields().len()];
            for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Ok(i) = store_schema.index_of(field.name()) {
                    crcs[i] = checksum::column_crc(col.slice(0, k).as_ref());
                }
            }
            group_token(&mut h, k as i64, &crcs);
        }
        if let Ok(mut recent) = self.recent.lock() {
            *recent = read;
        }
        Ok(Some(format!(
            "parquet-prefix;{}",
            crate::fingerprint::hex(&h.finalize())
        )))
    }

    fn load(&self, query: &Query) -> Result<Frame> {
        Ok(self.query_with_stats(query)?.0)
    }

    fn pushes_down(&self) -> bool {
        true
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(ParquetStore::features(self).to_vec())
    }
}
