//! Knowledge time and revisions in the long layout.
//!
//! A store may hold several versions of one bar: rows with the same `(end_ts,
//! asset)` and different `knowledge_ts`, a later one revising an earlier one. A read
//! "as of" `τ` keeps, for each `(end_ts, asset)`, the latest version with
//! `knowledge_ts <= τ`, and drops every row that became known after `τ`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::kernels::sort::{SortColumn, lexsort_to_indices};
use arrow::compute::{cast, concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::DataType;
use kf_frame::{ASSET, END_TS, KNOWLEDGE_TS};

use crate::{DataError, Result};

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| DataError::Query {
        what: format!("long-layout data has no `{name}` column"),
    })
}

/// The time column `name` as plain i64 nanoseconds.
pub(crate) fn times(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let col = cast(column(batch, name)?, &DataType::Int64).map_err(kf_frame::FrameError::from)?;
    if let Some(row) = col
        .logical_nulls()
        .and_then(|n| (0..n.len()).find(|&i| n.is_null(i)))
    {
        return Err(kf_frame::FrameError::NullValue {
            column: name.to_string(),
            row,
        }
        .into());
    }
    Ok(col
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .to_vec())
}

/// Rows of `batches` (long layout) known at `as_of` (all rows when `None`), with only
/// the latest known version of each `(end_ts, asset)`, ordered by time then asset.
///
/// Sorting costs `O(n log n)`; readers call this only for data that may hold
/// revisions (a store written with them, or a CSV source with a knowledge column).
///
/// # Errors
/// [`DataError::Query`] when a layout column is missing; [`DataError::Frame`] when a
/// column has a type Arrow cannot compare.
pub fn latest_known(batches: &[RecordBatch], as_of: Option<i64>) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let frame_err = kf_frame::FrameError::from;
    let mut batch = concat_batches(&first.schema(), batches).map_err(frame_err)?;
    if let Some(tau) = as_of {
        let known: BooleanArray = times(&batch, KNOWLEDGE_TS)?
            .iter()
            .map(|&k| Some(k <= tau))
            .collect();
        batch = filter_record_batch(&batch, &known).map_err(frame_err)?;
    }
    let asset = cast(column(&batch, ASSET)?, &DataType::Utf8).map_err(frame_err)?;
    let sort_cols = [
        SortColumn {
            values: Arc::clone(column(&batch, END_TS)?),
            options: None,
        },
        SortColumn {
            values: Arc::clone(&asset),
            options: None,
        },
        SortColumn {
            values: Arc::clone(column(&batch, KNOWLEDGE_TS)?),
            options: None,
        },
    ];
    let order = lexsort_to_indices(&sort_cols, None).map_err(frame_err)?;
    let end = times(&batch, END_TS)?;
    let known = times(&batch, KNOWLEDGE_TS)?;
    let names = asset.as_string::<i32>();
    let order = order.values();
    // Two rows with the same bar, asset and knowledge time are not a revision: no
    // rule says which one is the data. Refuse them instead of keeping either.
    if let Some(w) = order.windows(2).find(|w| {
        let (a, b) = (w[0] as usize, w[1] as usize);
        end[a] == end[b] && known[a] == known[b] && names.value(a) == names.value(b)
    }) {
        let r = w[1] as usize;
        return Err(crate::DataError::Query {
            what: format!(
                "two rows for asset `{}` at {} with the same knowledge time {}: a revision \
                 needs a later knowledge time; remove the duplicate",
                names.value(r),
                kf_frame::Timestamp(end[r]),
                kf_frame::Timestamp(known[r])
            ),
        });
    }
    // Keep the last row of each (end_ts, asset) run in sorted order: the latest version.
    let keep: UInt32Array = order
        .iter()
        .enumerate()
        .filter(|&(i, &r)| {
            order.get(i + 1).is_none_or(|&next| {
                let (r, next) = (r as usize, next as usize);
                end[r] != end[next] || names.value(r) != names.value(next)
            })
        })
        .map(|(_, &r)| r)
        .collect();
    debug_assert!(keep.null_count() == 0);
    Ok(Some(take_record_batch(&batch, &keep).map_err(frame_err)?))
}
