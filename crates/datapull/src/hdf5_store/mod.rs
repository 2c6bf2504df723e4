//! HDF5 stores (feature `hdf5`): one dataset per feature, time x asset, chunked in
//! both directions and compressed, plus the time index and knowledge time.
//!
//! Layout of a file:
//!
//! | path | type | shape |
//! |---|---|---|
//! | `/end_ts` | i64 (ns UTC) | rows |
//! | `/knowledge_ts` | i64 (ns UTC) | rows |
//! | `/assets` | UTF-8 strings | assets |
//! | `/feature_names` | UTF-8 strings | features (the column order) |
//! | `/features/<name>` | f64, NaN for missing | rows x assets, chunks of up to 1024 x 64 |
//!
//! A feature dataset is the frame's row-major feature buffer, so a full read is one
//! decompressing copy. A query finds its rows by binary search in `/end_ts` and
//! reads, per feature, one hyperslab per contiguous run of the requested assets;
//! HDF5 then reads and decompresses only the chunks that the hyperslab touches
//! ([`ReadStats::units_read`] counts them). A chunk of 1024 minutes x 64 assets is
//! 512 KiB: a day of one-minute bars touches two chunk rows.
//!
//! An uncompressed store ([`Compression::None`]) is stored contiguously, each
//! feature's values aligned to 4 KiB in the file, and read around the library
//! ([`ReadMode`]): by default the requested rows are memory-mapped and become the
//! frame's buffers with no copy, which is what makes it the fastest way to load
//! years of bars.
//!
//! An HDF5 store holds one version of each bar (its per-row knowledge time); a
//! query `as_of` drops rows known later. Revised data belongs in a Parquet store.

mod direct;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::buffer::ScalarBuffer;
use hdf5::types::VarLenUnicode;
use kf_frame::{Frame, Timestamp};
use ndarray::{ArrayView2, s};

pub use direct::ReadMode;

use crate::parquet_store::{ReadStats, StoreInfo};
use crate::query::{Query, check_known};
use crate::{DataError, Result, Source};

/// Rows per chunk.
pub const CHUNK_ROWS: usize = 1024;
/// Assets per chunk.
pub const CHUNK_ASSETS: usize = 64;

/// How feature datasets are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Byte shuffle then LZF: fast to decompress, the default.
    #[default]
    Lzf,
    /// Byte shuffle then deflate (zlib) at the given level: smaller, slower.
    Deflate(u8),
    /// Stored as is, contiguously (not chunked): the fastest full reads.
    None,
}

/// How many blocks of `size` the range `lo..hi` touches.
fn chunk_span(lo: usize, hi: usize, size: usize) -> usize {
    if hi > lo {
        (hi - 1) / size - lo / size + 1
    } else {
        0
    }
}

fn h5(path: &Path, what: &str, e: hdf5::Error) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

/// Writes `frame` to a new HDF5 file at `path` (replacing any file there).
///
/// # Errors
/// [`DataError::Store`] naming the file and the dataset that could not be written.
pub fn write_hdf5(frame: &Frame, path: impl AsRef<Path>, compression: Compression) -> Result<()> {
    let path = path.as_ref();
    // Written beside the target and renamed over it: a reader that has mapped the
    // old file keeps its pages (a file truncated in place would fault under it),
    // and a failed write leaves the old store as it was.
    let name = path
        .file_name()
        .map_or_else(|| "store.h5".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_file(frame, &tmp, compression).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| DataError::Store {
            path: path.to_path_buf(),
            message: format!("cannot move the written store into place: {e}"),
        })
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| match e {
        // Errors name the target, not the temporary file.
        DataError::Store { message, .. } => DataError::Store {
            path: path.to_path_buf(),
            message,
        },
        other => other,
    })
}

fn write_file(frame: &Frame, path: &Path, compression: Compression) -> Result<()> {
    // Objects of 4 KiB or more start on a 4 KiB boundary, so a contiguous feature
    // dataset can be mapped and used as f64 values in place.
    let file = hdf5::File::with_options()
        .with_fapl(|p| p.alignment(4096, 4096))
        .create(path)
        .map_err(|e| h5(path, "cannot create the file", e))?;
    let (rows, n) = (frame.n_rows(), frame.n_assets());
    file.new_dataset_builder()
        .with_data(frame.end_ts())
        .create("end_ts")
        .map_err(|e| h5(path, "writing end_ts", e))?;
    file.new_dataset_builder()
        .with_data(frame.knowledge_ts())
        .create("knowledge_ts")
        .map_err(|e| h5(path, "writing knowledge_ts", e))?;
    let strings = |names: &[String]| -> Result<Vec<VarLenUnicode>> {
        names
            .iter()
            .map(|s| {
                s.parse::<VarLenUnicode>().map_err(|e| DataError::Store {
                    path: path.to_path_buf(),
                    message: format!("name {s:?} cannot be stored: {e}"),
                })
            })
            .collect()
    };
    file.new_dataset_builder()
        .with_data(&strings(frame.assets())?)
        .create("assets")
        .map_err(|e| h5(path, "writing assets", e))?;
    file.new_dataset_builder()
        .with_data(&strings(frame.features())?)
        .create("feature_names")
        .map_err(|e| h5(path, "writing feature_names", e))?;
    let group = file
        .create_group("features")
        .map_err(|e| h5(path, "creating /features", e))?;
    for (i, name) in frame.features().iter().enumerate() {
        let values = frame.feature_at(i).values();
        let view = ArrayView2::from_shape((rows, n), values).map_err(|e| DataError::Store {
            path: path.to_path_buf(),
            message: format!("feature {name}: {e}"),
        })?;
        let mut builder = group.new_dataset_builder().with_data(view);
        // Uncompressed datasets are stored contiguously: a full read is one read
        // into the output buffer, and a time range is one contiguous span.
        if rows > 0 && n > 0 && compression != Compression::None {
            builder = builder.chunk((rows.min(CHUNK_ROWS), n.min(CHUNK_ASSETS)));
            builder = match compression {
                Compression::Lzf => builder.shuffle().lzf(),
                Compression::Deflate(level) => builder.shuffle().deflate(level),
                Compression::None => builder,
            };
        }
        builder
            .create(name.as_str())
            .map_err(|e| h5(path, &format!("writing /features/{name}"), e))?;
    }
    Ok(())
}

/// An open HDF5 store: the index, assets and features are read once.
#[derive(Debug)]
pub struct Hdf5Store {
    path: PathBuf,
    file: hdf5::File,
    /// Held as Arrow buffers so that a query's rows are a zero-copy slice.
    end_ts: ScalarBuffer<i64>,
    knowledge_ts: ScalarBuffer<i64>,
    assets: Vec<String>,
    asset_index: HashMap<String, usize>,
    features: Vec<String>,
    /// Per feature: the byte offset of its values when they can be read directly.
    direct: Vec<Option<u64>>,
    /// The same file, opened for direct reads.
    raw: std::fs::File,
    mode: ReadMode,
}

impl Hdf5Store {
    /// Opens a store and reads its index.
    ///
    /// # Errors
    /// [`DataError::Store`] naming the file and the dataset that is missing or has
    /// the wrong type or shape.
    pub fn open(path: impl AsRef<Path>) -> Result<Hdf5Store> {
        let path = path.as_ref();
        let file = hdf5::File::open(path).map_err(|e| h5(path, "cannot open the file", e))?;
        let dataset = |name: &str| {
            file.dataset(name).map_err(|e| {
                h5(
                    path,
                    &format!("dataset /{name} is missing or unreadable"),
                    e,
                )
            })
        };
        let end_ts: Vec<i64> = dataset("end_ts")?
            .read_raw()
            .map_err(|e| h5(path, "reading /end_ts", e))?;
        let knowledge_ts: Vec<i64> = dataset("knowledge_ts")?
            .read_raw()
            .map_err(|e| h5(path, "reading /knowledge_ts", e))?;
        let names = |name: &str| -> Result<Vec<String>> {
            let raw: Vec<VarLenUnicode> = dataset(name)?
                .read_raw()
                .map_err(|e| h5(path, &format!("reading /{name}"), e))?;
            Ok(raw.iter().map(|s| s.as_str().to_string()).collect())
        };
        let assets = names("assets")?;
        let features = names("feature_names")?;
        let store_err = |message: String| DataError::Store {
            path: path.to_path_buf(),
            message,
        };
        if knowledge_ts.len() != end_ts.len() {
            return Err(store_err(format!(
                "/knowledge_ts has {} rows but /end_ts has {}",
                knowledge_ts.len(),
                end_ts.len()
            )));
        }
        if let Some(i) = end_ts.windows(2).position(|w| w[1] <= w[0]) {
            return Err(store_err(format!(
                "/end_ts is not strictly increasing at row {}: {} then {}",
                i + 1,
                Timestamp(end_ts[i]),
                Timestamp(end_ts[i + 1])
            )));
        }
        let raw = std::fs::File::open(path)
            .map_err(|e| store_err(format!("cannot open the file for reading: {e}")))?;
        let file_len = raw
            .metadata()
            .map_err(|e| store_err(format!("cannot read the file's size: {e}")))?
            .len();
        let mut direct = Vec::with_capacity(features.len());
        for name in &features {
            let ds = dataset(&format!("features/{name}"))?;
            let shape = ds.shape();
            let expected = [end_ts.len(), assets.len()];
            if shape != expected {
                return Err(store_err(format!(
                    "/features/{name} has shape {shape:?}, expected {expected:?} (rows x assets)"
                )));
            }
            let cells = end_ts.len() * assets.len();
            direct.push(
                direct::extent(&ds, cells, file_len)
                    .map_err(|m| store_err(format!("/features/{name}: {m}")))?,
            );
        }
        let asset_index = assets
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), i))
            .collect();
        Ok(Hdf5Store {
            path: path.to_path_buf(),
            file,
            end_ts: end_ts.into(),
            knowledge_ts: knowledge_ts.into(),
            assets,
            asset_index,
            features,
            direct,
            raw,
            mode: ReadMode::default(),
        })
    }

    /// The same store, reading uncompressed datasets in `mode`.
    pub fn with_read_mode(mut self, mode: ReadMode) -> Hdf5Store {
        self.mode = mode;
        self
    }

    /// How uncompressed datasets are read.
    pub fn read_mode(&self) -> ReadMode {
        self.mode
    }

    /// Whether every feature dataset is read around the library (uncompressed,
    /// contiguous, native f64): what `kaizenflow data info` reports as the layout.
    pub fn is_direct(&self) -> bool {
        !self.direct.is_empty() && self.direct.iter().all(Option::is_some)
    }

    /// Assets, in stored order.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    /// Feature names.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// A summary of the store, from its index alone.
    pub fn info(&self) -> StoreInfo {
        let span = |n: usize, size: usize| n.div_ceil(size);
        StoreInfo {
            assets: self.assets.clone(),
            features: self.features.clone(),
            rows: (self.end_ts.len() * self.assets.len()) as u64,
            time_range: self
                .end_ts
                .first()
                .zip(self.end_ts.last())
                .map(|(a, b)| (Timestamp(*a), Timestamp(*b))),
            revisions: false,
            units: span(self.end_ts.len(), CHUNK_ROWS) * span(self.assets.len(), CHUNK_ASSETS),
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        }
    }

    /// Runs a query and says how many chunks it touched.
    ///
    /// # Errors
    /// [`DataError::Query`] for an unknown asset or column; [`DataError::Store`]
    /// naming the file and dataset that could not be read.
    pub fn query_with_stats(&self, q: &Query) -> Result<(Frame, ReadStats)> {
        if let Some(a) = &q.assets {
            check_known("asset", a, &self.assets)?;
        }
        if let Some(c) = &q.columns {
            check_known("column", c, &self.features)?;
        }
        let features = q.columns.clone().unwrap_or_else(|| self.features.clone());
        let r0 = q
            .start
            .map_or(0, |s| self.end_ts.partition_point(|&t| t < s));
        let r1 = q
            .end
            .map_or(self.end_ts.len(), |e| {
                self.end_ts.partition_point(|&t| t <= e)
            })
            .max(r0);
        // Requested assets by stored index, and contiguous runs of stored indices.
        let wanted: Vec<usize> = match &q.assets {
            Some(a) => a
                .iter()
                .filter_map(|n| self.asset_index.get(n).copied())
                .collect(),
            None => (0..self.assets.len()).collect(),
        };
        let mut sorted = wanted.clone();
        sorted.sort_unstable();
        let row_chunks = chunk_span(r0, r1, CHUNK_ROWS);
        let mut stats = ReadStats {
            units_total: features.len()
                * chunk_span(0, self.end_ts.len(), CHUNK_ROWS)
                * chunk_span(0, self.assets.len(), CHUNK_ASSETS),
            ..ReadStats::default()
        };
        let mut columns: Vec<(String, ScalarBuffer<f64>)> = Vec::with_capacity(features.len());
        let n = self.assets.len();
        let every_asset = sorted.iter().copied().eq(0..n);
        for name in &features {
            let at = self.features.iter().position(|f| f == name);
            let offset = at.and_then(|i| self.direct[i]);
            let io = |e: std::io::Error| DataError::Store {
                path: self.path.clone(),
                message: format!("reading /features/{name} directly: {e}"),
            };
            let values = match (offset, self.mode) {
                (Some(offset), ReadMode::Map | ReadMode::Copy) => {
                    // Rows r0..r1 of every asset are one byte range; a subset of
                    // assets is gathered from it.
                    let rows = (r0, r1);
                    let mapped = match self.mode {
                        ReadMode::Map => {
                            direct::map_rows(&self.raw, offset, rows, n, every_asset).map_err(io)?
                        }
                        _ => None,
                    };
                    let block = match mapped {
                        Some(mapped) => mapped,
                        None => direct::copy_rows(&self.raw, offset, rows, n).map_err(io)?,
                    };
                    stats.units_read += row_chunks * chunk_span(0, n, CHUNK_ASSETS);
                    stats.bytes_read += block.len() as u64 * 8;
                    if every_asset {
                        block
                    } else {
                        direct::gather(&block, n, &sorted).into()
                    }
                }
                _ => self
                    .read_library(name, (r0, r1), &sorted, &mut stats)?
                    .into(),
            };
            columns.push((name.clone(), values));
        }
        let names: Vec<String> = sorted.iter().map(|&a| self.assets[a].clone()).collect();
        let mut frame = Frame::from_buffers(
            self.end_ts.slice(r0, r1 - r0),
            self.knowledge_ts.slice(r0, r1 - r0),
            names,
            columns,
        )?;
        if let Some(tau) = q.as_of {
            let keep: Vec<bool> = frame.knowledge_ts().iter().map(|&t| t <= tau).collect();
            frame = frame.filter_rows(&keep)?;
        }
        if sorted != wanted {
            let order: Vec<String> = wanted.iter().map(|&a| self.assets[a].clone()).collect();
            frame = frame.select_assets(&order)?;
        }
        Ok((frame, stats))
    }

    /// Rows `r0..r1` of the stored assets `sorted` (ascending) of one feature,
    /// through the HDF5 library's hyperslab reads.
    fn read_library(
        &self,
        name: &str,
        (r0, r1): (usize, usize),
        sorted: &[usize],
        stats: &mut ReadStats,
    ) -> Result<Vec<f64>> {
        let (rows, k) = (r1 - r0, sorted.len());
        let row_chunks = chunk_span(r0, r1, CHUNK_ROWS);
        let ds = self
            .file
            .dataset(&format!("features/{name}"))
            .map_err(|e| h5(&self.path, &format!("dataset /features/{name}"), e))?;
        // Spans to read: requested assets that share an asset chunk are read
        // in one hyperslab (each chunk is decompressed once); in a contiguous
        // dataset, one span from the first to the last asset keeps the read a
        // few large runs instead of one small read per row and asset.
        let chunk_width = ds.chunk().and_then(|c| c.get(1).copied());
        let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // (s0, s1, first pos)
        for (pos, &a) in sorted.iter().enumerate() {
            match spans.last_mut() {
                Some((_, s1, _))
                    if a == *s1 || chunk_width.is_none_or(|w| a / w == (*s1 - 1) / w) =>
                {
                    *s1 = a + 1;
                }
                _ => spans.push((a, a + 1, pos)),
            }
        }
        let read = |a0: usize, a1: usize| -> Result<ndarray::Array2<f64>> {
            ds.read_slice_2d(s![r0..r1, a0..a1])
                .map_err(|e| h5(&self.path, &format!("reading /features/{name}"), e))
        };
        if rows == 0 {
            return Ok(Vec::new());
        }
        if spans.len() == 1 && spans[0].1 - spans[0].0 == k {
            // One exact span: the hyperslab is the output, row-major; no copy.
            let (a0, a1, _) = spans[0];
            let part = read(a0, a1)?;
            stats.units_read += row_chunks * chunk_span(a0, a1, CHUNK_ASSETS);
            return Ok(if part.is_standard_layout() {
                part.into_raw_vec_and_offset().0
            } else {
                part.iter().copied().collect()
            });
        }
        let mut out = vec![f64::NAN; rows * k];
        for (i, &(a0, a1, first)) in spans.iter().enumerate() {
            let last = spans.get(i + 1).map_or(k, |s| s.2);
            let part = read(a0, a1)?;
            let part = part.as_standard_layout();
            let width = a1 - a0;
            let flat = part.as_slice().unwrap_or_default();
            for (r, row) in flat.chunks_exact(width).enumerate() {
                for pos in first..last {
                    out[r * k + pos] = row[sorted[pos] - a0];
                }
            }
            stats.units_read += row_chunks * chunk_span(a0, a1, CHUNK_ASSETS);
        }
        Ok(out)
    }
}

impl Source for Hdf5Store {
    fn fingerprint(&self) -> Result<Option<String>> {
        let digest = crate::fingerprint::path_digest(&self.path)?;
        Ok(Some(format!("hdf5;{:?};{digest}", self.mode)))
    }

    fn describe(&self) -> String {
        format!("hdf5 store {}", self.path.display())
    }

    fn load(&self, query: &Query) -> Result<Frame> {
        Ok(self.query_with_stats(query)?.0)
    }

    fn pushes_down(&self) -> bool {
        true
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(Hdf5Store::features(self).to_vec())
    }
}

/// Reads a whole store into a frame.
///
/// # Errors
/// As [`Hdf5Store::open`] and [`Hdf5Store::query_with_stats`].
pub fn read_hdf5(path: impl AsRef<Path>) -> Result<Frame> {
    Hdf5Store::open(path)?.load(&Query::all())
}
