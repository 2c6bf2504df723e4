//! One file's rows as they are parsed ([`Rows`]): the columns of its long-layout
//! batch, and the per-asset order check. The streaming read of a file and the
//! chunked read of a large one push their records through the same code, so both
//! give the same values and the same errors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use kf_frame::{Timestamp, long_schema};

use super::read::{Plan, line_err, parse_number, store};
use super::split::Fields;
use super::{CsvSource, Order, TimeParser};
use crate::{DataError, Result};

/// The columns of one file (or one chunk of it) so far.
pub(super) struct Rows<'a> {
    src: &'a CsvSource,
    path: &'a Path,
    header: &'a [String],
    plan: &'a Plan,
    /// The asset of every row, when it does not come from a column.
    fixed_asset: Option<&'a str>,
    times: TimeParser,
    end_ts: Vec<i64>,
    knowledge_ts: Vec<i64>,
    assets: Vec<u8>,
    asset_offsets: Vec<i32>,
    values: Vec<Vec<f64>>,
    order: OrderCheck,
}

impl<'a> Rows<'a> {
    /// Empty columns with room for `rows` rows (sized once instead of grown by
    /// doubling, which copies each column into fresh pages).
    pub(super) fn new(
        src: &'a CsvSource,
        path: &'a Path,
        header: &'a [String],
        plan: &'a Plan,
        fixed_asset: Option<&'a str>,
        rows: usize,
    ) -> Rows<'a> {
        Rows {
            src,
            path,
            header,
            plan,
            fixed_asset,
            times: TimeParser::new(src.format.clone(), src.tz),
            end_ts: Vec::with_capacity(rows),
            knowledge_ts: Vec::with_capacity(rows),
            assets: Vec::new(),
            asset_offsets: vec![0],
            values: (0..plan.features.len())
                .map(|_| Vec::with_capacity(rows))
                .collect(),
            order: OrderCheck::new(src.order),
        }
    }

    /// Parses `record`, the file's line `line`, onto the columns.
    ///
    /// # Errors
    /// [`DataError::Line`] for a time or number that does not parse, an empty asset,
    /// or a bar out of the configured order.
    pub(super) fn push<R: Fields>(&mut self, record: &R, line: u64) -> Result<()> {
        let (path, header, plan, src) = (self.path, self.header, self.plan, self.src);
        let field = |i: usize| record.field(i);
        let at = |m: String| line_err(path, line, m);
        let col_err =
            |i: usize, m: String| line_err(path, line, format!("column `{}`: {m}", header[i]));
        let t = self
            .times
            .parse(field(plan.ts))
            .map_err(|m| col_err(plan.ts, m))?;
        let end = t
            .checked_add(src.to_end)
            .ok_or_else(|| at("bar end out of range".into()))?;
        let known = match plan.knowledge {
            Some(k) => self.times.parse(field(k)).map_err(|m| col_err(k, m))?,
            None => end,
        }
        .checked_add(src.delay)
        .ok_or_else(|| at("knowledge time out of range".into()))?;
        let asset: &[u8] = match plan.asset {
            Some(a) => {
                let v = field(a);
                if v.is_empty() {
                    return Err(col_err(a, "the asset is empty".into()));
                }
                v
            }
            None => self.fixed_asset.unwrap_or_default().as_bytes(),
        };
        if let Err((prev, prev_line)) = self.order.check(asset, end, line) {
            return Err(order_err(path, line, asset, end, (prev, prev_line)));
        }
        if let Some(a) = plan.asset {
            std::str::from_utf8(asset).map_err(|_| col_err(a, "the asset is not UTF-8".into()))?;
            self.assets.extend_from_slice(asset);
            let len = i32::try_from(self.assets.len())
                .map_err(|_| at("asset names exceed 2 GiB in one file".into()))?;
            self.asset_offsets.push(len);
        }
        for ((i, _), out) in plan.features.iter().zip(self.values.iter_mut()) {
            out.push(parse_number(field(*i)).map_err(|m| col_err(*i, m))?);
        }
        self.end_ts.push(end);
        self.knowledge_ts.push(known);
        Ok(())
    }

    /// The order check of the rows pushed so far (what is left of a chunk whose
    /// parse stopped at an error).
    pub(super) fn into_order(self) -> OrderCheck {
        self.order
    }

    /// The long-layout batch of the rows pushed, and their order check (where each
    /// asset first and last appeared).
    ///
    /// # Errors
    /// [`DataError::Store`] when the columns cannot form a batch.
    pub(super) fn finish(self) -> Result<(RecordBatch, OrderCheck)> {
        let n = self.end_ts.len();
        let asset_array = match (self.plan.asset, self.fixed_asset) {
            (None, a) => {
                StringArray::from_iter_values(std::iter::repeat_n(a.unwrap_or_default(), n))
            }
            (Some(_), _) => {
                let offsets = arrow::buffer::OffsetBuffer::new(self.asset_offsets.into());
                StringArray::try_new(offsets, self.assets.into(), None)
                    .map_err(|e| store(self.path, e.to_string()))?
            }
        };
        let names: Vec<&str> = self.plan.features.iter().map(|(_, n)| n.as_str()).collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(self.end_ts).with_timezone("UTC")),
            Arc::new(TimestampNanosecondArray::from(self.knowledge_ts).with_timezone("UTC")),
            Arc::new(asset_array),
        ];
        columns.extend(
            self.values
                .into_iter()
                .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
        );
        let batch = RecordBatch::try_new(long_schema(&names), columns)
            .map_err(|e| store(self.path, e.to_string()))?;
        Ok((batch, self.order))
    }
}

/// The error of a bar at `line` whose time `end` breaks the configured order after
/// the asset's previous bar `(prev, prev_line)`.
pub(super) fn order_err(
    path: &Path,
    line: u64,
    asset: &[u8],
    end: i64,
    (prev, prev_line): (i64, u64),
) -> DataError {
    line_err(
        path,
        line,
        format!(
            "bar time {} is {} the previous one for asset {} ({} at line {prev_line}); \
             sort the file by time, set `order = \"non_decreasing\"` for ticks, or set \
             `knowledge_column` if repeated rows are revisions",
            Timestamp(end),
            if end == prev { "equal to" } else { "before" },
            kf_config::clip_text(&String::from_utf8_lossy(asset)),
            Timestamp(prev),
        ),
    )
}

/// Tracks the last bar time per asset to enforce the configured order, and where
/// each asset first appeared (what a chunk of a file checks against the chunks
/// before it).
pub(super) struct OrderCheck {
    order: Order,
    last: HashMap<Vec<u8>, (i64, u64)>,
    /// The previous row's asset and its entry, so a run of one asset hashes once.
    current: Vec<u8>,
    current_last: (i64, u64),
    /// Each asset's first bar: asset, time, line; in the order they appeared.
    pub(super) firsts: Vec<(Vec<u8>, i64, u64)>,
}

impl OrderCheck {
    pub(super) fn new(order: Order) -> OrderCheck {
        OrderCheck {
            order,
            last: HashMap::new(),
            current: Vec::new(),
            current_last: (i64::MIN, 0),
            firsts: Vec::new(),
        }
    }

    /// Whether a bar at `t` may follow `prev` in the configured order.
    pub(super) fn allows(&self, prev: i64, t: i64) -> bool {
        match self.order {
            Order::Strict => t > prev,
            Order::NonDecreasing => t >= prev,
            Order::Any => true,
        }
    }

    /// Records the bar of `asset` at `t` on `line`; the asset's previous bar when
    /// this one breaks the order.
    pub(super) fn check(
        &mut self,
        asset: &[u8],
        t: i64,
        line: u64,
    ) -> std::result::Result<(), (i64, u64)> {
        if self.order == Order::Any {
            return Ok(());
        }
        if asset != self.current.as_slice() {
            if !self.current.is_empty() {
                self.last.insert(self.current.clone(), self.current_last);
            }
            self.current = asset.to_vec();
            self.current_last = match self.last.get(asset) {
                Some(&l) => l,
                None => {
                    self.firsts.push((asset.to_vec(), t, line));
                    (i64::MIN, 0)
                }
            };
        }
        let (prev, prev_line) = self.current_last;
        if !self.allows(prev, t) {
            return Err((prev, prev_line));
        }
        self.current_last = (t, line);
        Ok(())
    }

    /// Each asset's last bar (time, line).
    pub(super) fn into_lasts(mut self) -> HashMap<Vec<u8>, (i64, u64)> {
        if !self.current.is_empty() {
            self.last
                .insert(std::mem::take(&mut self.current), self.current_last);
        }
        self.last
    }
}
