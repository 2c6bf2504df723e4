//! Writing Parquet stores: row groups of (time block x asset block).

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::kernels::sort::{SortColumn, lexsort_to_indices};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use kf_frame::{ASSET, AtomicFile, END_TS, Frame, FrameError, KNOWLEDGE_TS};

use super::checksum::{META_CHECKSUMS, META_CRC, batch_line, meta_crc};
use super::{LAYOUT, META_ASSETS, META_LAYOUT, META_REVISIONS};
use crate::revisions::times;
use crate::{DataError, Result};

/// How a Parquet store is cut into row groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Distinct bar times per row group; 0 picks about 128k rows per group.
    pub time_block: usize,
    /// Assets (in name order) per row group: a query for a few assets skips the
    /// groups of the others by their `asset` statistics.
    pub asset_block: usize,
    /// Page compression.
    pub compression: StoreCompression,
}

/// Page compression of a Parquet store: a trade between file size and read speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreCompression {
    /// zstd at level 1: compact, about 1 GB/s per core to decompress (the default).
    #[default]
    Zstd,
    /// LZ4 (raw): faster to decompress, larger.
    Lz4,
    /// None: the fastest reads, the largest files.
    None,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            time_block: 0,
            asset_block: 64,
            compression: StoreCompression::default(),
        }
    }
}

impl StoreOptions {
    fn blocks(&self, n_assets: usize) -> (usize, usize) {
        let asset_block = self.asset_block.max(1);
        let time_block = match self.time_block {
            0 => (128 * 1024 / n_assets.clamp(1, asset_block)).max(16),
            t => t,
        };
        (time_block, asset_block)
    }
}

/// The schema of a store: the long layout with a dictionary-encoded asset column.
pub(super) fn store_schema(features: &[String]) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new(END_TS, ts.clone(), false),
        Field::new(KNOWLEDGE_TS, ts, false),
        Field::new(
            ASSET,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
    ];
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f.as_str(), DataType::Float64, true)),
    );
    Arc::new(Schema::new(fields))
}

/// A store being written: the Parquet writer over a file that replaces the target
/// only when [`StoreWriter::finish`] succeeds, and the checksum of each row group.
struct StoreWriter<'p> {
    path: &'p Path,
    writer: ArrowWriter<BufWriter<AtomicFile>>,
    meta: Vec<(&'static str, String)>,
    lines: Vec<String>,
}

impl StoreWriter<'_> {
    /// Writes `batch` as one row group.
    fn group(&mut self, batch: &RecordBatch) -> Result<()> {
        let fail = |e| parquet_err(self.path, "writing the store", e);
        self.lines.push(batch_line(batch));
        self.writer.write(batch).map_err(fail)?;
        self.writer.flush().map_err(fail)
    }

    /// Writes the footer (with the checksums) and moves the file into place.
    fn finish(mut self) -> Result<()> {
        let path = self.path;
        let fail = |e| parquet_err(path, "writing the store", e);
        let checksums = self.lines.join("\n");
        let mut entries: Vec<(&str, &str)> =
            self.meta.iter().map(|(k, v)| (*k, v.as_str())).collect();
        entries.push((META_CHECKSUMS, &checksums));
        let crc = meta_crc(&entries);
        self.writer
            .append_key_value_metadata(KeyValue::new(META_CHECKSUMS.into(), checksums.clone()));
        self.writer
            .append_key_value_metadata(KeyValue::new(META_CRC.into(), crc));
        let mut buf = self.writer.into_inner().map_err(fail)?;
        buf.flush()
            .map_err(|e| parquet_err(path, "writing the store", e))?;
        let file = buf
            .into_inner()
            .map_err(|e| parquet_err(path, "writing the store", e.into_error()))?;
        file.commit()
            .map_err(|e| parquet_err(path, "cannot move the written store into place", e))
    }
}

fn open_writer<'p>(
    path: &'p Path,
    schema: SchemaRef,
    assets: &[String],
    revisions: bool,
    compression: StoreCompression,
) -> Result<StoreWriter<'p>> {
    let meta = vec![
        (META_LAYOUT, LAYOUT.to_string()),
        (META_ASSETS, assets.join("\n")),
        (META_REVISIONS, revisions.to_string()),
    ];
    let props = WriterProperties::builder()
        .set_compression(match compression {
            StoreCompression::Zstd => Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
            StoreCompression::Lz4 => Compression::LZ4_RAW,
            StoreCompression::None => Compression::UNCOMPRESSED,
        })
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(None)
        .set_key_value_metadata(Some(
            meta.iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
                .collect(),
        ))
        .build();
    let file = AtomicFile::create(path).map_err(|e| parquet_err(path, "cannot create", e))?;
    let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema, Some(props))
        .map_err(|e| parquet_err(path, "writing the store", e))?;
    Ok(StoreWriter {
        path,
        writer,
        meta,
        lines: Vec::new(),
    })
}

/// A library error on the store at `path` while doing `what`, kept as the source.
pub(super) fn parquet_err(
    path: &Path,
    what: impl Into<String>,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DataError {
    DataError::StoreLibrary {
        path: path.to_path_buf(),
        what: what.into(),
        source: e.into(),
    }
}

/// A store that is not what it should be, for a reason of our own.
pub(super) fn store_err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes a frame as a store: no revisions, one version per (bar, asset); cells
/// whose features are all NaN are left out.
///
/// # Errors
/// [`DataError::Store`] naming the file when it cannot be written.
pub fn write_frame(frame: &Frame, path: impl AsRef<Path>, options: StoreOptions) -> Result<()> {
    let path = path.as_ref();
    let n = frame.n_assets();
    let mut by_name: Vec<usize> = (0..n).collect();
    by_name.sort_by(|&a, &b| frame.assets()[a].cmp(&frame.assets()[b]));
    let names: Vec<String> = by_name.iter().map(|&a| frame.assets()[a].clone()).collect();
    let schema = store_schema(frame.features());
    let mut writer = open_writer(
        path,
        Arc::clone(&schema),
        &names,
        false,
        options.compression,
    )?;
    let dict_values: ArrayRef = Arc::new(StringArray::from_iter_values(names.iter()));
    let (time_block, asset_block) = options.blocks(n);
    let views: Vec<&[f64]> = (0..frame.n_features())
        .map(|i| frame.feature_at(i).values())
        .collect();
    let mut cells: Vec<(usize, usize)> = Vec::new();
    for r0 in (0..frame.n_rows()).step_by(time_block) {
        let r1 = (r0 + time_block).min(frame.n_rows());
        for b0 in (0..n).step_by(asset_block) {
            let block = &by_name[b0..(b0 + asset_block).min(n)];
            cells.clear();
            for r in r0..r1 {
                for (k, &a) in block.iter().enumerate() {
                    let cell = r * n + a;
                    if views.iter().any(|v| !v[cell].is_nan()) {
                        cells.push((r, b0 + k));
                    }
                }
            }
            if cells.is_empty() {
                continue;
            }
            let end: Vec<i64> = cells.iter().map(|&(r, _)| frame.end_ts()[r]).collect();
            let known: Vec<i64> = cells
                .iter()
                .map(|&(r, _)| frame.knowledge_ts()[r])
                .collect();
            let keys = Int32Array::from_iter_values(cells.iter().map(|&(_, k)| k as i32));
            let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&dict_values))
                .map_err(|e| parquet_err(path, "writing the store", e))?;
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(TimestampNanosecondArray::from(end).with_timezone("UTC")),
                Arc::new(TimestampNanosecondArray::from(known).with_timezone("UTC")),
                Arc::new(dict),
            ];
            for v in &views {
                columns.push(Arc::new(Float64Array::from_iter_values(
                    cells.iter().map(|&(r, k)| v[r * n + by_name[k]]),
                )));
            }
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
                .map_err(|e| parquet_err(path, "writing the store", e))?;
            writer.group(&batch)?;
        }
    }
    writer.finish()
}

/// Writes long-layout rows as a store, keeping every version of a revised bar
/// (rows with the same time and asset and different knowledge times).
///
/// # Errors
/// [`DataError::Store`] naming the file when it cannot be written;
/// [`DataError::Frame`] when the batches are not in the long layout.
pub fn write_long(
    batches: &[RecordBatch],
    path: impl AsRef<Path>,
    options: StoreOptions,
) -> Result<()> {
    let path = path.as_ref();
    let Some(first) = batches.first() else {
        return write_frame(&Frame::empty(Vec::new(), Vec::new())?, path, options);
    };
    let features = kf_frame::long::feature_columns(&first.schema());
    let batch = concat_batches(&first.schema(), batches).map_err(FrameError::from)?;
    let end = times(&batch, END_TS)?;
    let known = times(&batch, KNOWLEDGE_TS)?;
    let asset_col = batch
        .column_by_name(ASSET)
        .ok_or_else(|| store_err(path, "the rows have no `asset` column"))?;
    let asset = cast(asset_col, &DataType::Utf8).map_err(FrameError::from)?;
    let asset = asset.as_string::<i32>();
    if asset.null_count() > 0 {
        return Err(store_err(
            path,
            "the `asset` column has nulls; every row needs an asset",
        ));
    }
    // Rank assets by name and times by value; blocks are ranges of ranks.
    let mut ids: HashMap<&str, u32> = HashMap::new();
    for a in asset.iter().flatten() {
        let next = ids.len() as u32;
        ids.entry(a).or_insert(next);
    }
    let mut names: Vec<&str> = ids.keys().copied().collect();
    names.sort_unstable();
    let rank: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, &a)| (a, i as u32))
        .collect();
    let mut distinct = end.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let (time_block, asset_block) = options.blocks(names.len());
    let arank: Vec<u32> = asset
        .iter()
        .map(|a| rank.get(a.unwrap_or_default()).copied().unwrap_or(0))
        .collect();
    let tblock: Vec<u32> = end
        .iter()
        .map(|t| (distinct.partition_point(|d| d < t) / time_block) as u32)
        .collect();
    let ablock: Vec<u32> = arank.iter().map(|&r| r / asset_block as u32).collect();
    let key = |v: Vec<u32>| SortColumn {
        values: Arc::new(UInt32Array::from(v)),
        options: None,
    };
    let i64col = |v: &[i64]| SortColumn {
        values: Arc::new(arrow::array::Int64Array::from(v.to_vec())),
        options: None,
    };
    let order = lexsort_to_indices(
        &[
            key(tblock.clone()),
            key(ablock.clone()),
            i64col(&end),
            key(arank.clone()),
            i64col(&known),
        ],
        None,
    )
    .map_err(FrameError::from)?;
    // Sorted so, a repeated (bar, asset, knowledge time) is adjacent: refuse it here,
    // or every read of the store would refuse it later.
    if let Some(w) = order.values().windows(2).find(|w| {
        let (a, b) = (w[0] as usize, w[1] as usize);
        end[a] == end[b] && arank[a] == arank[b] && known[a] == known[b]
    }) {
        let r = w[1] as usize;
        return Err(store_err(
            path,
            format!(
                "two rows for asset `{}` at {} with the same knowledge time {}: a revision \
                 needs a later knowledge time; remove the duplicate",
                names[arank[r] as usize],
                kf_frame::Timestamp(end[r]),
                kf_frame::Timestamp(known[r])
            ),
        ));
    }
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let schema = store_schema(&features);
    let sorted = take_record_batch(&batch, &order).map_err(FrameError::from)?;
    let keys =
        Int32Array::from_iter_values(order.values().iter().map(|&i| arank[i as usize] as i32));
    let dict = DictionaryArray::<Int32Type>::try_new(
        keys,
        Arc::new(StringArray::from_iter_values(names.iter())),
    )
    .map_err(|e| parquet_err(path, "writing the store", e))?;
    let mut columns: Vec<ArrayRef> = vec![
        cast(
            &sorted
                .column(sorted.schema().index_of(END_TS).map_err(FrameError::from)?)
                .clone(),
            schema.field(0).data_type(),
        )
        .map_err(FrameError::from)?,
        cast(
            &sorted
                .column(
                    sorted
                        .schema()
                        .index_of(KNOWLEDGE_TS)
                        .map_err(FrameError::from)?,
                )
                .clone(),
            schema.field(1).data_type(),
        )
        .map_err(FrameError::from)?,
        Arc::new(dict),
    ];
    for f in &features {
        let c = sorted.column(sorted.schema().index_of(f).map_err(FrameError::from)?);
        columns.push(cast(c, &DataType::Float64).map_err(FrameError::from)?);
    }
    let all = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| parquet_err(path, "writing the store", e))?;
    let mut writer = open_writer(path, schema, &names, true, options.compression)?;
    let group_of = |i: usize| {
        let r = order.value(i) as usize;
        (tblock[r], ablock[r])
    };
    let mut start = 0;
    while start < all.num_rows() {
        let g = group_of(start);
        let mut end_row = start + 1;
        while end_row < all.num_rows() && group_of(end_row) == g {
            end_row += 1;
        }
        writer.group(&all.slice(start, end_row - start))?;
        start = end_row;
    }
    writer.finish()
}
