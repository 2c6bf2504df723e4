//! Conversion between the long layout (one row per timestamp and asset) and [`Frame`].
//!
//! The long layout is what files hold and what pandas or polars read directly:
//!
//! | column | type |
//! |---|---|
//! | `end_ts` | `Timestamp(ns, "UTC")` (any unit or zone, or `Int64` ns, on input) |
//! | `knowledge_ts` | as `end_ts` |
//! | `asset` | `Utf8` (also `LargeUtf8`, `Utf8View`, or a dictionary of them, on input) |
//! | one column per feature | `Float64` (any integer or float type on input; null reads as NaN) |
//!
//! Converting to a frame takes two passes over the input and no per-cell hashing:
//! the first finds the distinct timestamps and assets (guessing each row's asset from
//! the previous row's, which is right for time-major and asset-major input alike, and
//! hashing only on a miss), the second scatters each row's features into place.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{FrameError, Result, list_names};
use crate::{Frame, Timestamp};

/// Name of the bar-end time column in the long layout.
pub const END_TS: &str = "end_ts";
/// Name of the knowledge time column in the long layout.
pub const KNOWLEDGE_TS: &str = "knowledge_ts";
/// Name of the asset column in the long layout.
pub const ASSET: &str = "asset";

/// Which rows [`Frame::to_long`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LongRows {
    /// Only (timestamp, asset) pairs with at least one non-NaN feature (the default):
    /// a missing bar stays missing.
    #[default]
    Present,
    /// Every (timestamp, asset) pair.
    All,
}

/// The schema of the long layout for the given features.
pub fn long_schema<S: AsRef<str>>(features: &[S]) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new(END_TS, ts.clone(), false),
        Field::new(KNOWLEDGE_TS, ts, false),
        Field::new(ASSET, DataType::Utf8, false),
    ];
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f.as_ref(), DataType::Float64, true)),
    );
    Arc::new(Schema::new(fields))
}

/// The feature columns of a long-layout schema: every column other than `end_ts`,
/// `knowledge_ts` and `asset`, in schema order.
pub fn feature_columns(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != END_TS && n != KNOWLEDGE_TS && n != ASSET)
        .collect()
}

/// One input batch, with its columns normalized to plain slices.
struct LongChunk {
    end_ts: ScalarBuffer<i64>,
    knowledge_ts: ScalarBuffer<i64>,
    /// Asset id per row, in order of first appearance.
    asset_ids: Vec<u32>,
    features: Vec<Float64Array>,
}

/// Rows per block of the scatter pass: the block's cell indices stay in L1.
const SCATTER_BLOCK: usize = 1024;

/// Assigns ids to asset names in order of first appearance.
#[derive(Default)]
struct AssetTable {
    names: Vec<String>,
    lookup: HashMap<String, u32>,
}

impl AssetTable {
    /// The id of `name`, trying `guess` first (a string compare) before hashing.
    fn id(&mut self, name: &str, guess: usize) -> u32 {
        if let Some(g) = self.names.get(guess)
            && g == name
        {
            return guess as u32;
        }
        if let Some(&id) = self.lookup.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.lookup.insert(name.to_string(), id);
        id
    }
}

impl Frame {
    /// Builds a frame from one long-layout batch. See [`Frame::from_long_batches`].
    ///
    /// # Errors
    /// As [`Frame::from_long_batches`].
    pub fn from_long(batch: &RecordBatch) -> Result<Frame> {
        Frame::from_long_batches(std::slice::from_ref(batch))
    }

    /// Builds a frame from long-layout batches (as a Parquet or IPC reader yields
    /// them), in any row order.
    ///
    /// Every column other than `end_ts`, `knowledge_ts` and `asset` is a feature.
    /// Assets come out sorted by name, rows by time. A (timestamp, asset) pair absent
    /// from the input is NaN in every feature. A row's knowledge time is the latest
    /// knowledge time of the input rows at that timestamp (the time when the whole
    /// row was known; never earlier than any part of it).
    ///
    /// # Errors
    /// [`FrameError::Unknown`] when a required column is missing,
    /// [`FrameError::ColumnType`] for a column of the wrong type,
    /// [`FrameError::NullValue`] for a null time or asset,
    /// [`FrameError::DuplicateRow`] when a (timestamp, asset) pair repeats,
    /// [`FrameError::TileSchema`] when batches have different columns.
    pub fn from_long_batches(batches: &[RecordBatch]) -> Result<Frame> {
        let Some(first) = batches.first() else {
            return Frame::empty(Vec::new(), Vec::new());
        };
        let schema = first.schema();
        let feature_names = feature_columns(&schema);
        // Pass 1: normalize columns, assign asset ids, collect distinct timestamps.
        let mut assets = AssetTable::default();
        let mut chunks = Vec::with_capacity(batches.len());
        let mut times = TimeCollector::default();
        let mut row_base = 0;
        let column_names =
            |s: &Schema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
        let expected = column_names(&schema);
        for (i, batch) in batches.iter().enumerate() {
            let names = column_names(&batch.schema());
            if names != expected {
                return Err(FrameError::TileSchema {
                    tile: i,
                    what: "columns",
                    found: names,
                    expected,
                });
            }
            let chunk = LongChunk::new(batch, &feature_names, &mut assets, row_base)?;
            times.add(&chunk.end_ts);
            row_base += batch.num_rows();
            chunks.push(chunk);
        }
        let index = times.finish();
        // Sorted asset order, and the map from first-appearance id to column.
        let mut order: Vec<u32> = (0..assets.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| assets.names[a as usize].cmp(&assets.names[b as usize]));
        let mut column_of = vec![0usize; order.len()];
        for (col, &id) in order.iter().enumerate() {
            column_of[id as usize] = col;
        }
        let sorted_names: Vec<String> = order
            .iter()
            .map(|&id| assets.names[id as usize].clone())
            .collect();

        // Pass 2: scatter, in blocks of rows: first each row's cell (with the
        // duplicate check and the knowledge-time max), then one tight loop per feature.
        let n_assets = sorted_names.len();
        let cells = index.len() * n_assets;
        // Outputs grow by appending while cells arrive in order (time-major input
        // writes each cell once); a cell behind the end is written in place, and gaps
        // are NaN. This avoids a separate NaN-fill pass over the whole output.
        let mut values: Vec<Vec<f64>> = (0..feature_names.len())
            .map(|_| Vec::with_capacity(cells))
            .collect();
        let mut knowledge = vec![i64::MIN; index.len()];
        let mut seen = vec![0u64; cells.div_ceil(64)];
        let mut block = vec![0usize; SCATTER_BLOCK];
        let mut row_base = 0;
        let mut cursor = 0usize;
        for chunk in &chunks {
            let len = chunk.end_ts.len();
            for start in (0..len).step_by(SCATTER_BLOCK) {
                let end = (start + SCATTER_BLOCK).min(len);
                let block = &mut block[..end - start];
                for (slot, r) in block.iter_mut().zip(start..end) {
                    let t = chunk.end_ts[r];
                    cursor = locate(&index, t, cursor);
                    let col = column_of[chunk.asset_ids[r] as usize];
                    let cell = cursor * n_assets + col;
                    let (word, bit) = (cell / 64, 1u64 << (cell % 64));
                    if seen[word] & bit != 0 {
                        return Err(FrameError::DuplicateRow {
                            asset: sorted_names[col].clone(),
                            end_ts: Timestamp(t),
                            row: row_base + r,
                        });
                    }
                    seen[word] |= bit;
                    let k = &mut knowledge[cursor];
                    *k = (*k).max(chunk.knowledge_ts[r]);
                    *slot = cell;
                }
                for (feature, out) in chunk.features.iter().zip(values.iter_mut()) {
                    if feature.null_count() == 0 {
                        for (&cell, &v) in block.iter().zip(&feature.values()[start..end]) {
                            put(out, cell, v);
                        }
                    } else {
                        for (&cell, r) in block.iter().zip(start..end) {
                            let v = if feature.is_valid(r) {
                                feature.value(r)
                            } else {
                                f64::NAN
                            };
                            put(out, cell, v);
                        }
                    }
                }
            }
            row_base += len;
        }
        for out in &mut values {
            out.resize(cells, f64::NAN);
        }
        Ok(Frame {
            end_ts: ScalarBuffer::from(index),
            knowledge_ts: ScalarBuffer::from(knowledge),
            assets: sorted_names.into(),
            features: feature_names.clone().into(),
            values: values.into_iter().map(ScalarBuffer::from).collect(),
        })
    }

    /// The frame in long layout (see the module docs), rows ordered by time then asset.
    ///
    /// With [`LongRows::Present`], a (timestamp, asset) pair whose features are all
    /// NaN is left out, so `from_long(to_long(f))` gives back `f` for any frame whose
    /// assets each have a value somewhere; with [`LongRows::All`] every pair is written.
    ///
    /// # Errors
    /// [`FrameError::Arrow`] if Arrow rejects the batch (it should not).
    pub fn to_long(&self, rows: LongRows) -> Result<RecordBatch> {
        self.long_rows(&self.long_cells(rows))
    }

    /// The cells (row * assets + asset) that [`Frame::to_long`] makes rows of, in
    /// order.
    pub(crate) fn long_cells(&self, rows: LongRows) -> Vec<usize> {
        (0..self.n_rows() * self.n_assets())
            .filter(|&cell| rows == LongRows::All || self.values.iter().any(|v| !v[cell].is_nan()))
            .collect()
    }

    /// The long-layout rows of `keep`'s cells.
    pub(crate) fn long_rows(&self, keep: &[usize]) -> Result<RecordBatch> {
        let n = self.n_assets();
        let end_ts: Vec<i64> = keep.iter().map(|&c| self.end_ts[c / n]).collect();
        let knowledge_ts: Vec<i64> = keep.iter().map(|&c| self.knowledge_ts[c / n]).collect();
        let assets = StringArray::from_iter_values(keep.iter().map(|&c| &self.assets[c % n]));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(end_ts).with_timezone("UTC")),
            Arc::new(TimestampNanosecondArray::from(knowledge_ts).with_timezone("UTC")),
            Arc::new(assets),
        ];
        for v in &self.values {
            columns.push(Arc::new(Float64Array::from_iter_values(
                keep.iter().map(|&c| v[c]),
            )));
        }
        Ok(RecordBatch::try_new(long_schema(&self.features), columns)?)
    }
}

impl LongChunk {
    fn new(
        batch: &RecordBatch,
        features: &[String],
        assets: &mut AssetTable,
        row_base: usize,
    ) -> Result<LongChunk> {
        let end_ts = time_column(batch, END_TS, row_base)?;
        let knowledge_ts = time_column(batch, KNOWLEDGE_TS, row_base)?;
        let asset_ids = asset_column(batch, assets, row_base)?;
        let features = features
            .iter()
            .map(|name| {
                let col = column(batch, name)?;
                if !(col.data_type().is_numeric()) {
                    return Err(FrameError::ColumnType {
                        column: name.clone(),
                        found: col.data_type().to_string(),
                        expected: "a numeric type (Float64, Float32 or an integer)",
                    });
                }
                let f = cast(col, &DataType::Float64)?;
                Ok(f.as_primitive::<arrow::datatypes::Float64Type>().clone())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LongChunk {
            end_ts,
            knowledge_ts,
            asset_ids,
            features,
        })
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        FrameError::Unknown {
            kind: "column",
            name: name.to_string(),
            available: list_names(&names),
        }
    })
}

fn first_null(a: &dyn Array) -> Option<usize> {
    (a.null_count() > 0).then(|| (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0))
}

/// A time column as i64 nanoseconds.
fn time_column(batch: &RecordBatch, name: &str, row_base: usize) -> Result<ScalarBuffer<i64>> {
    let col = column(batch, name)?;
    if let Some(row) = first_null(col.as_ref()) {
        return Err(FrameError::NullValue {
            column: name.to_string(),
            row: row_base + row,
        });
    }
    let (values, scale, unit): (&[i64], i64, &'static str) = match col.data_type() {
        DataType::Int64 => {
            return Ok(col
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .clone());
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            return Ok(col
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .values()
                .clone());
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => (
            col.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .values(),
            1_000,
            "us",
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => (
            col.as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .values(),
            1_000_000,
            "ms",
        ),
        DataType::Timestamp(TimeUnit::Second, _) => (
            col.as_primitive::<arrow::datatypes::TimestampSecondType>()
                .values(),
            1_000_000_000,
            "s",
        ),
        other => {
            return Err(FrameError::ColumnType {
                column: name.to_string(),
                found: other.to_string(),
                expected: "Timestamp (any unit) or Int64 nanoseconds",
            });
        }
    };
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        match v.checked_mul(scale) {
            Some(ns) => out.push(ns),
            None => {
                return Err(FrameError::TimeOverflow {
                    column: name.to_string(),
                    value: v,
                    unit,
                });
            }
        }
    }
    Ok(ScalarBuffer::from(out))
}

/// The asset column as ids into `assets`.
fn asset_column(batch: &RecordBatch, assets: &mut AssetTable, row_base: usize) -> Result<Vec<u32>> {
    let col = column(batch, ASSET)?;
    if let Some(row) = first_null(col.as_ref()) {
        return Err(FrameError::NullValue {
            column: ASSET.to_string(),
            row: row_base + row,
        });
    }
    // Dictionary: resolve each dictionary entry once, then map the keys.
    if let DataType::Dictionary(_, _) = col.data_type() {
        let dict = col.as_any_dictionary();
        let values = cast(dict.values(), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut guess = 0;
        let ids: Vec<u32> = (0..values.len())
            .map(|i| {
                let id = assets.id(values.value(i), guess);
                guess = id as usize + 1;
                id
            })
            .collect();
        return Ok(dict.normalized_keys().iter().map(|&k| ids[k]).collect());
    }
    let strings = match col.data_type() {
        DataType::Utf8 => col.clone(),
        DataType::LargeUtf8 | DataType::Utf8View => cast(col, &DataType::Utf8)?,
        other => {
            return Err(FrameError::ColumnType {
                column: ASSET.to_string(),
                found: other.to_string(),
                expected: "Utf8, LargeUtf8, Utf8View or a dictionary of strings",
            });
        }
    };
    let strings = strings.as_string::<i32>();
    let mut ids = Vec::with_capacity(strings.len());
    let mut prev = usize::MAX;
    for i in 0..strings.len() {
        // Time-major input cycles through assets (guess prev + 1); asset-major input
        // repeats the same asset (the wrapping guess prev + 1 still falls back fine,
        // but try prev first).
        let name = strings.value(i);
        let id = if prev != usize::MAX && assets.names[prev] == name {
            prev as u32
        } else {
            assets.id(name, prev.wrapping_add(1) % assets.names.len().max(1))
        };
        prev = id as usize;
        ids.push(id);
    }
    Ok(ids)
}

/// Collects the distinct timestamps of all chunks, sorted.
///
/// Sorted input (time-major) is read in one pass with no sort. Input made of a few
/// sorted runs (asset-major: one run per asset) is merged run by run; anything else
/// is sorted.
#[derive(Default)]
struct TimeCollector {
    /// Distinct sorted timestamps of the runs merged so far.
    merged: Vec<i64>,
    /// The current run (non-decreasing).
    run: Vec<i64>,
    /// All timestamps, once merging runs would cost more than sorting.
    all: Option<Vec<i64>>,
    runs: usize,
}

const MAX_MERGED_RUNS: usize = 4096;

impl TimeCollector {
    fn add(&mut self, ts: &[i64]) {
        if let Some(all) = &mut self.all {
            all.extend_from_slice(ts);
            return;
        }
        for &t in ts {
            match self.run.last() {
                Some(&last) if t < last => self.flush(),
                Some(&last) if t == last => continue,
                _ => {}
            }
            if let Some(all) = &mut self.all {
                all.push(t);
            } else {
                self.run.push(t);
            }
        }
    }

    fn flush(&mut self) {
        self.runs += 1;
        let run = std::mem::take(&mut self.run);
        if self.runs > MAX_MERGED_RUNS {
            let mut all = std::mem::take(&mut self.merged);
            all.extend_from_slice(&run);
            self.all = Some(all);
        } else if self.merged.is_empty() {
            self.merged = run;
        } else {
            self.merged = merge_dedup(&self.merged, &run);
        }
    }

    fn finish(mut self) -> Vec<i64> {
        if let Some(mut all) = self.all.take() {
            all.extend_from_slice(&self.run);
            all.sort_unstable();
            all.dedup();
            return all;
        }
        self.flush();
        self.merged
    }
}

fn merge_dedup(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let next = a[i].min(b[j]);
        out.push(next);
        i += usize::from(a[i] == next);
        j += usize::from(b[j] == next);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Writes `v` at `cell` of a growing output: appends when `cell` is the end, pads a
/// gap with NaN, writes in place behind the end.
#[inline]
fn put(out: &mut Vec<f64>, cell: usize, v: f64) {
    if cell < out.len() {
        out[cell] = v;
    } else {
        out.resize(cell, f64::NAN);
        out.push(v);
    }
}

/// The position of `t` in the sorted `index`, trying `cursor` and `cursor + 1` first.
#[inline]
fn locate(index: &[i64], t: i64, cursor: usize) -> usize {
    if index.get(cursor) == Some(&t) {
        cursor
    } else if index.get(cursor + 1) == Some(&t) {
        cursor + 1
    } else {
        index.partition_point(|&x| x < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_dedup_merges_and_drops_duplicates() {
        assert_eq!(merge_dedup(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(merge_dedup(&[], &[2]), vec![2]);
    }

    #[test]
    fn time_collector_handles_sorted_runs_and_chaos() {
        let mut c = TimeCollector::default();
        c.add(&[1, 1, 2, 3]);
        c.add(&[0, 2, 4]);
        assert_eq!(c.finish(), vec![0, 1, 2, 3, 4]);
        let mut c = TimeCollector::default();
        let chaos: Vec<i64> = (0..20_000).map(|i| (i * 7919) % 10_007).collect();
        c.add(&chaos);
        let mut expected = chaos.clone();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(c.finish(), expected);
    }
}
