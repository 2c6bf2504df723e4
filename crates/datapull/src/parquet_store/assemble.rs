//! Building the wide frame straight from a store's row groups, selecting rows on
//! the way: one pass over each group, no string materialization, no hashing per
//! row.
//!
//! Each row group holds consecutive bar times in time order, so a cursor walks the
//! output index instead of searching it, and the asset column is a dictionary whose
//! few entries (one asset block) are mapped to output columns once per group.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int32Type, TimestampNanosecondType};
use kf_frame::{ASSET, END_TS, Frame, FrameError, KNOWLEDGE_TS, Timestamp};

use crate::query::Query;
use crate::{DataError, Result};

fn missing(b: &RecordBatch, name: &str) -> DataError {
    let found = b.schema().field_with_name(name).map_or_else(
        |_| "no such column".to_string(),
        |f| format!("type {}", f.data_type()),
    );
    let expected = match name {
        END_TS | KNOWLEDGE_TS => "Timestamp(ns)",
        ASSET => "Dictionary(Int32, Utf8)",
        _ => "Float64",
    };
    DataError::Query {
        what: format!(
            "column `{name}`: expected {expected}, found {found}; the file was not written \
             as a store: import it with `kaizenflow data import`"
        ),
    }
}

/// The values of time column `name` of a store batch.
fn time_values<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a [i64]> {
    b.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .map(|c| &c.values()[..])
        .ok_or_else(|| missing(b, name))
}

/// The frame with `assets` x `features` holding the rows of `batches` that `q`
/// selects. Every (bar, asset) must appear at most once (a store without
/// revisions).
///
/// # Errors
/// [`DataError::Frame`] for a repeated (bar, asset); [`DataError::Query`] when a
/// batch is not in the store layout.
pub(super) fn assemble(
    batches: &[RecordBatch],
    q: &Query,
    assets: &[String],
    features: &[String],
    store_assets: &[String],
    sorted: bool,
) -> Result<Frame> {
    let col_of: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    let listed: std::collections::HashSet<&str> = store_assets.iter().map(String::as_str).collect();
    let tau = q.as_of.unwrap_or(i64::MAX);
    let selected = |end: i64, known: i64| q.contains_time(end) && known <= tau;
    // A batch in time order (as this crate writes row groups) is cut to the query's
    // time range first (zero copy), so a query of a few bars from a large row group
    // touches those bars' rows only.
    let cut: Vec<(RecordBatch, usize)> = batches
        .iter()
        .map(|b| in_range(b, q, sorted))
        .collect::<Result<_>>()?;
    // The output index: distinct selected bar times over all groups.
    let mut index: Vec<i64> = Vec::new();
    for (b, _) in &cut {
        let (end, known) = (time_values(b, END_TS)?, time_values(b, KNOWLEDGE_TS)?);
        let mut last = None;
        for (&t, &k) in end.iter().zip(known) {
            if last != Some(t) && selected(t, k) {
                index.push(t);
                last = Some(t);
            }
        }
    }
    index.sort_unstable();
    index.dedup();
    let n = assets.len();
    let cells = index.len() * n;
    let mut values: Vec<Vec<f64>> = vec![vec![f64::NAN; cells]; features.len()];
    let mut knowledge = vec![i64::MIN; index.len()];
    let mut seen = vec![false; cells];
    for (b, offset) in &cut {
        let (end, known) = (time_values(b, END_TS)?, time_values(b, KNOWLEDGE_TS)?);
        let dict = b
            .column_by_name(ASSET)
            .and_then(|c| c.as_dictionary_opt::<Int32Type>())
            .ok_or_else(|| missing(b, ASSET))?;
        let names = cast(dict.values(), &DataType::Utf8).map_err(FrameError::from)?;
        let names = names.as_string::<i32>();
        let key_col: Vec<Option<usize>> = names
            .iter()
            .map(|v| v.and_then(|v| col_of.get(v).copied()))
            .collect();
        // A row of an asset the footer does not list (a damaged footer, another
        // writer) must not vanish from the result: refuse it by name. Assets that are
        // listed but not asked for are skipped, once per dictionary entry.
        for (key, name) in names.iter().enumerate() {
            if key_col[key].is_none() {
                let listed = name.is_some_and(|n| listed.contains(n));
                if !listed && dict.keys().values().iter().any(|&k| k as usize == key) {
                    return Err(DataError::Query {
                        what: format!(
                            "rows of asset {:?} are in the file, but its footer lists {} \
                             assets without it: the store is damaged or was written by \
                             another tool; import it again",
                            name.map(kf_config::clip_text).unwrap_or_default(),
                            store_assets.len()
                        ),
                    });
                }
            }
        }
        // Nulls (which this crate never writes) read as NaN.
        let owned: Vec<Option<Vec<f64>>> = features
            .iter()
            .map(|f| {
                let c = b
                    .column_by_name(f)
                    .and_then(|c| c.as_primitive_opt::<Float64Type>())
                    .ok_or_else(|| missing(b, f))?;
                Ok((c.null_count() > 0).then(|| c.iter().map(|v| v.unwrap_or(f64::NAN)).collect()))
            })
            .collect::<Result<_>>()?;
        let cols: Vec<&[f64]> = features
            .iter()
            .zip(&owned)
            .map(|(f, o)| match o {
                Some(v) => Ok(&v[..]),
                None => b
                    .column_by_name(f)
                    .and_then(|c| c.as_primitive_opt::<Float64Type>())
                    .map(|c| &c.values()[..])
                    .ok_or_else(|| missing(b, f)),
            })
            .collect::<Result<_>>()?;
        let mut cursor = 0usize;
        for (r, (&t, &k)) in end.iter().zip(known).enumerate() {
            let Some(col) = usize::try_from(dict.keys().values()[r])
                .ok()
                .and_then(|key| key_col.get(key).copied().flatten())
            else {
                continue;
            };
            if !selected(t, k) {
                continue;
            }
            if index.get(cursor) != Some(&t) {
                cursor = index.partition_point(|&x| x < t);
            }
            let cell = cursor * n + col;
            if std::mem::replace(&mut seen[cell], true) {
                return Err(DataError::Frame(FrameError::DuplicateRow {
                    asset: assets[col].clone(),
                    end_ts: Timestamp(t),
                    row: offset + r,
                }));
            }
            knowledge[cursor] = knowledge[cursor].max(k);
            for (out, v) in values.iter_mut().zip(&cols) {
                out[cell] = v[r];
            }
        }
    }
    Ok(Frame::new(
        index,
        knowledge,
        assets.to_vec(),
        features.iter().cloned().zip(values).collect(),
    )?)
}

/// The rows of `b` whose bar end is inside `q`'s time range, as a zero-copy slice
/// with the index of its first row, when `b` is in time order (`sorted`: a store
/// this crate wrote); `b` itself otherwise (every row is then tested, so a foreign
/// file's bad rows are found whatever the range).
fn in_range(b: &RecordBatch, q: &Query, sorted: bool) -> Result<(RecordBatch, usize)> {
    if !sorted || (q.start.is_none() && q.end.is_none()) {
        return Ok((b.clone(), 0));
    }
    let end = time_values(b, END_TS)?;
    let lo = q.start.map_or(0, |s| end.partition_point(|&t| t < s));
    let hi = q
        .end
        .map_or(end.len(), |e| end.partition_point(|&t| t <= e));
    Ok((b.slice(lo, hi.saturating_sub(lo)), lo))
}
