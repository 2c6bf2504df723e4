//! The [`Frame`] type: construction, access, slicing, selection and concatenation.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, FixedSizeListArray, Float64Array};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Field};

use crate::Timestamp;
use crate::error::{FrameError, Result, list_names};

/// A time-indexed table of f64 values with columns keyed by (feature, asset), and a
/// knowledge time per row.
///
/// # Layout
/// Each feature is one contiguous Arrow buffer of `n_rows * n_assets` f64 values in
/// row-major order: the values of every asset at row 0, then at row 1, and so on. So:
/// - one operation over every asset of a feature is a loop over contiguous memory,
///   and a recursive kernel (an EMA) vectorizes across assets in its inner loop;
/// - a time slice is a zero-copy sub-buffer ([`Frame::slice`]);
/// - a new bar appends one contiguous row per feature.
///
/// Missing values are NaN. Cloning a frame clones reference-counted handles, not data.
///
/// # Invariants
/// - `end_ts` is strictly increasing; `knowledge_ts` has one entry per row.
/// - Feature names are unique; asset names are unique.
/// - Every feature buffer holds exactly `n_rows * n_assets` values.
#[derive(Clone, Debug)]
pub struct Frame {
    pub(crate) end_ts: ScalarBuffer<i64>,
    pub(crate) knowledge_ts: ScalarBuffer<i64>,
    pub(crate) assets: Arc<[String]>,
    pub(crate) features: Arc<[String]>,
    pub(crate) values: Columns,
}

/// A frame's feature buffers: held inline up to eight features, so that a slice, a
/// projection or a clone of a frame allocates nothing (a streaming step makes several
/// per bar).
pub(crate) type Columns = smallvec::SmallVec<[ScalarBuffer<f64>; 8]>;

/// Read access to one feature of a frame: `n_rows x n_assets` values, row-major.
#[derive(Clone, Copy, Debug)]
pub struct FeatureView<'a> {
    values: &'a [f64],
    n_assets: usize,
}

impl<'a> FeatureView<'a> {
    /// All values, row-major (`row * n_assets + asset`).
    pub fn values(&self) -> &'a [f64] {
        self.values
    }

    /// The values of every asset at `row`.
    ///
    /// # Panics
    /// If `row` is out of range (an indexing bug in the caller, not an input error).
    pub fn row(&self, row: usize) -> &'a [f64] {
        &self.values[row * self.n_assets..(row + 1) * self.n_assets]
    }

    /// The values of one asset over time (a strided walk).
    pub fn asset(&self, asset: usize) -> impl ExactSizeIterator<Item = f64> + 'a {
        let n = self.n_assets.max(1);
        let rows = if self.n_assets == 0 {
            0
        } else {
            self.values.len() / n
        };
        let values = self.values;
        (0..rows).map(move |r| values[r * n + asset])
    }

    /// Iterates over rows, each a slice of every asset's value.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &'a [f64]> + 'a {
        let n = self.n_assets;
        let rows = self.values.len().checked_div(n).unwrap_or(0);
        let values = self.values;
        (0..rows).map(move |r| &values[r * n..(r + 1) * n])
    }
}

impl Frame {
    /// Builds a frame from its parts, checking every invariant.
    ///
    /// `features` lists `(name, values)` with values row-major, `end_ts.len() *
    /// assets.len()` each.
    ///
    /// # Errors
    /// [`FrameError::UnsortedIndex`] if `end_ts` is not strictly increasing,
    /// [`FrameError::LengthMismatch`] if a length disagrees, and
    /// [`FrameError::DuplicateName`] for a repeated feature or asset.
    pub fn new(
        end_ts: Vec<i64>,
        knowledge_ts: Vec<i64>,
        assets: Vec<String>,
        features: Vec<(String, Vec<f64>)>,
    ) -> Result<Frame> {
        check_unique("asset", &assets)?;
        Frame::build(end_ts, knowledge_ts, assets.into(), features)
    }

    /// A frame over this frame's assets (shared, not copied) with new rows and
    /// features: what a node that changes the index (a resample) returns, at no cost
    /// per asset, which matters when a streaming step emits one row.
    ///
    /// # Errors
    /// As [`Frame::new`], but the assets are known to be valid.
    pub fn with_rows(
        &self,
        end_ts: Vec<i64>,
        knowledge_ts: Vec<i64>,
        features: Vec<(String, Vec<f64>)>,
    ) -> Result<Frame> {
        Frame::build(end_ts, knowledge_ts, Arc::clone(&self.assets), features)
    }

    /// Builds a frame over existing Arrow buffers, checking every invariant; no
    /// value is copied. This is how a reader hands over memory it already holds (a
    /// memory-mapped store, a buffer filled by one positional read) without a
    /// second pass over it.
    ///
    /// # Errors
    /// As [`Frame::new`].
    pub fn from_buffers(
        end_ts: ScalarBuffer<i64>,
        knowledge_ts: ScalarBuffer<i64>,
        assets: Vec<String>,
        features: Vec<(String, ScalarBuffer<f64>)>,
    ) -> Result<Frame> {
        check_unique("asset", &assets)?;
        Frame::build(end_ts, knowledge_ts, assets.into(), features)
    }

    pub(crate) fn build<F: Into<ScalarBuffer<f64>>>(
        end_ts: impl Into<ScalarBuffer<i64>>,
        knowledge_ts: impl Into<ScalarBuffer<i64>>,
        assets: Arc<[String]>,
        features: Vec<(String, F)>,
    ) -> Result<Frame> {
        let (end_ts, knowledge_ts) = (end_ts.into(), knowledge_ts.into());
        check_sorted(&end_ts)?;
        if knowledge_ts.len() != end_ts.len() {
            return Err(FrameError::LengthMismatch {
                what: "knowledge_ts".into(),
                actual: knowledge_ts.len(),
                expected: end_ts.len(),
            });
        }
        let names: Vec<String> = features.iter().map(|(n, _)| n.clone()).collect();
        check_unique("feature", &names)?;
        let cells = end_ts.len() * assets.len();
        let mut values = Columns::with_capacity(features.len());
        for (name, v) in features {
            let v: ScalarBuffer<f64> = v.into();
            if v.len() != cells {
                return Err(FrameError::LengthMismatch {
                    what: format!("feature `{name}`"),
                    actual: v.len(),
                    expected: cells,
                });
            }
            values.push(v);
        }
        Ok(Frame {
            end_ts,
            knowledge_ts,
            assets,
            features: names.into(),
            values,
        })
    }

    /// A frame with no rows, with the given assets and features.
    ///
    /// # Errors
    /// [`FrameError::DuplicateName`] for a repeated feature or asset.
    pub fn empty(assets: Vec<String>, features: Vec<String>) -> Result<Frame> {
        Frame::new(
            Vec::new(),
            Vec::new(),
            assets,
            features.into_iter().map(|f| (f, Vec::new())).collect(),
        )
    }

    /// Number of rows (timestamps).
    pub fn n_rows(&self) -> usize {
        self.end_ts.len()
    }

    /// Number of assets.
    pub fn n_assets(&self) -> usize {
        self.assets.len()
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Whether the frame has no rows.
    pub fn is_empty(&self) -> bool {
        self.end_ts.is_empty()
    }

    /// Bar end times, strictly increasing, in ns since the epoch.
    pub fn end_ts(&self) -> &[i64] {
        &self.end_ts
    }

    /// Knowledge time of each row: when every value in it was available.
    pub fn knowledge_ts(&self) -> &[i64] {
        &self.knowledge_ts
    }

    /// Asset names, in column order.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    /// Feature names, in column order.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Position of an asset.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] listing the assets when `name` is not one.
    pub fn asset_index(&self, name: &str) -> Result<usize> {
        self.assets
            .iter()
            .position(|a| a == name)
            .ok_or_else(|| FrameError::Unknown {
                kind: "asset",
                name: name.to_string(),
                available: list_names(&self.assets),
            })
    }

    /// Position of a feature.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] listing the features when `name` is not one.
    pub fn feature_index(&self, name: &str) -> Result<usize> {
        self.features
            .iter()
            .position(|a| a == name)
            .ok_or_else(|| FrameError::Unknown {
                kind: "feature",
                name: name.to_string(),
                available: list_names(&self.features),
            })
    }

    /// Read access to a feature by name.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] when there is no such feature.
    pub fn feature(&self, name: &str) -> Result<FeatureView<'_>> {
        let i = self.feature_index(name)?;
        Ok(self.feature_at(i))
    }

    /// Read access to the feature at position `i`.
    ///
    /// # Panics
    /// If `i >= n_features()` (a caller's indexing bug).
    pub fn feature_at(&self, i: usize) -> FeatureView<'_> {
        FeatureView {
            values: &self.values[i],
            n_assets: self.assets.len(),
        }
    }

    /// One value, by names and row.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] for an unknown name, [`FrameError::OutOfRange`] for a
    /// row past the end.
    pub fn value(&self, feature: &str, asset: &str, row: usize) -> Result<f64> {
        let f = self.feature_index(feature)?;
        let a = self.asset_index(asset)?;
        if row >= self.n_rows() {
            return Err(FrameError::OutOfRange {
                start: row,
                end: row + 1,
                rows: self.n_rows(),
            });
        }
        Ok(self.values[f][row * self.n_assets() + a])
    }

    /// The feature at position `i` as an Arrow `FixedSizeList<Float64>` of
    /// `n_assets` per row, sharing this frame's buffer (no copy).
    pub fn feature_array(&self, i: usize) -> Result<FixedSizeListArray> {
        let n = i32::try_from(self.n_assets()).map_err(|_| FrameError::LengthMismatch {
            what: "assets (Arrow list size)".into(),
            actual: self.n_assets(),
            expected: i32::MAX as usize,
        })?;
        let item = Arc::new(Field::new("item", DataType::Float64, false));
        let values = Arc::new(Float64Array::new(self.values[i].clone(), None)) as Arc<dyn Array>;
        Ok(FixedSizeListArray::try_new(item, n, values, None)?)
    }

    /// Rows `start..start + len`, sharing this frame's buffers (no copy).
    ///
    /// # Errors
    /// [`FrameError::OutOfRange`] when the range passes the end.
    pub fn slice(&self, start: usize, len: usize) -> Result<Frame> {
        let end = start.saturating_add(len);
        if end > self.n_rows() {
            return Err(FrameError::OutOfRange {
                start,
                end,
                rows: self.n_rows(),
            });
        }
        Ok(self.rows(start, len))
    }

    /// Rows with `start <= end_ts <= end` (closed at both ends), without copying.
    pub fn slice_time(&self, start: i64, end: i64) -> Frame {
        let lo = self.end_ts.partition_point(|&t| t < start);
        let hi = self.end_ts.partition_point(|&t| t <= end).max(lo);
        self.rows(lo, hi - lo)
    }

    /// The rows for which `keep` holds (one copy per feature; when every row is kept
    /// the buffers are shared). Used to drop rows not yet known at a cut-off time,
    /// which need not be contiguous when knowledge times are not monotonic.
    ///
    /// # Errors
    /// [`FrameError::OutOfRange`] when `keep` is not one flag per row.
    pub fn filter_rows(&self, keep: &[bool]) -> Result<Frame> {
        if keep.len() != self.n_rows() {
            return Err(FrameError::OutOfRange {
                start: 0,
                end: keep.len(),
                rows: self.n_rows(),
            });
        }
        if keep.iter().all(|&k| k) {
            return Ok(self.clone());
        }
        let n = self.n_assets();
        let pick = |src: &[i64]| -> Vec<i64> {
            src.iter()
                .zip(keep)
                .filter_map(|(&v, &k)| k.then_some(v))
                .collect()
        };
        let values = self
            .values
            .iter()
            .map(|v| {
                let mut out = Vec::new();
                for (r, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                    out.extend_from_slice(&v[r * n..(r + 1) * n]);
                }
                ScalarBuffer::from(out)
            })
            .collect();
        Ok(Frame {
            end_ts: ScalarBuffer::from(pick(&self.end_ts)),
            knowledge_ts: ScalarBuffer::from(pick(&self.knowledge_ts)),
            assets: Arc::clone(&self.assets),
            features: Arc::clone(&self.features),
            values,
        })
    }

    /// Rows `start..start + len`, sharing buffers; the caller checked the range.
    fn rows(&self, start: usize, len: usize) -> Frame {
        let n = self.n_assets();
        Frame {
            end_ts: self.end_ts.slice(start, len),
            knowledge_ts: self.knowledge_ts.slice(start, len),
            assets: Arc::clone(&self.assets),
            features: Arc::clone(&self.features),
            values: self
                .values
                .iter()
                .map(|v| v.slice(start * n, len * n))
                .collect(),
        }
    }

    /// A frame with only the named features, in the order given, sharing buffers.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] for a name that is not a feature;
    /// [`FrameError::DuplicateName`] for a name given twice.
    pub fn select_features<S: AsRef<str>>(&self, names: &[S]) -> Result<Frame> {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
        check_unique("feature", &names)?;
        let mut values = Columns::with_capacity(names.len());
        for n in &names {
            values.push(self.values[self.feature_index(n)?].clone());
        }
        Ok(Frame {
            end_ts: self.end_ts.clone(),
            knowledge_ts: self.knowledge_ts.clone(),
            assets: Arc::clone(&self.assets),
            features: names.into(),
            values,
        })
    }

    /// [`Frame::select_features`] with the names already shared: the frame takes
    /// `names` itself, so a caller that asks for the same columns bar after bar
    /// (a streaming view) allocates nothing.
    ///
    /// # Errors
    /// As [`Frame::select_features`].
    pub fn select_features_shared(&self, names: &Arc<[String]>) -> Result<Frame> {
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(FrameError::DuplicateName {
                    kind: "feature",
                    name: n.clone(),
                });
            }
        }
        let mut values = Columns::with_capacity(names.len());
        for n in names.iter() {
            values.push(self.values[self.feature_index(n)?].clone());
        }
        Ok(Frame {
            end_ts: self.end_ts.clone(),
            knowledge_ts: self.knowledge_ts.clone(),
            assets: Arc::clone(&self.assets),
            features: Arc::clone(names),
            values,
        })
    }

    /// A frame with only the named assets, in the order given (one gather per feature).
    ///
    /// # Errors
    /// [`FrameError::Unknown`] for a name that is not an asset;
    /// [`FrameError::DuplicateName`] for a name given twice.
    pub fn select_assets<S: AsRef<str>>(&self, names: &[S]) -> Result<Frame> {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
        check_unique("asset", &names)?;
        let idx = names
            .iter()
            .map(|n| self.asset_index(n))
            .collect::<Result<Vec<_>>>()?;
        let n_old = self.n_assets();
        let values = self
            .values
            .iter()
            .map(|v| {
                let mut out = Vec::with_capacity(self.n_rows() * idx.len());
                for row in v.chunks_exact(n_old.max(1)).take(self.n_rows()) {
                    out.extend(idx.iter().map(|&a| row[a]));
                }
                ScalarBuffer::from(out)
            })
            .collect();
        Ok(Frame {
            end_ts: self.end_ts.clone(),
            knowledge_ts: self.knowledge_ts.clone(),
            assets: names.into(),
            features: Arc::clone(&self.features),
            values,
        })
    }

    /// This frame with `new` features appended after its own (same rows and assets).
    /// The existing features' buffers are shared, not copied, so a DAG node that
    /// appends its outputs to its inputs costs only its outputs.
    ///
    /// # Errors
    /// [`FrameError::DuplicateName`] when a new name is already a feature (or repeats);
    /// [`FrameError::LengthMismatch`] when a new feature is not `n_rows * n_assets` long.
    pub fn with_features(&self, new: Vec<(String, Vec<f64>)>) -> Result<Frame> {
        let cells = self.n_rows() * self.n_assets();
        let mut names: Vec<String> = self.features.to_vec();
        let mut values = self.values.clone();
        for (name, v) in new {
            if v.len() != cells {
                return Err(FrameError::LengthMismatch {
                    what: format!("feature `{name}`"),
                    actual: v.len(),
                    expected: cells,
                });
            }
            names.push(name);
            values.push(ScalarBuffer::from(v));
        }
        check_unique("feature", &names)?;
        Ok(Frame {
            end_ts: self.end_ts.clone(),
            knowledge_ts: self.knowledge_ts.clone(),
            assets: Arc::clone(&self.assets),
            features: names.into(),
            values,
        })
    }

    /// This frame with another knowledge time per row (values shared).
    ///
    /// # Errors
    /// [`FrameError::LengthMismatch`] when `knowledge_ts` is not one time per row.
    pub fn with_knowledge_ts(&self, knowledge_ts: Vec<i64>) -> Result<Frame> {
        if knowledge_ts.len() != self.n_rows() {
            return Err(FrameError::LengthMismatch {
                what: "knowledge_ts".into(),
                actual: knowledge_ts.len(),
                expected: self.n_rows(),
            });
        }
        let mut out = self.clone();
        out.knowledge_ts = ScalarBuffer::from(knowledge_ts);
        Ok(out)
    }

    /// Joins consecutive tiles (same features and assets, in the same order) into one
    /// frame. Empty tiles are allowed and contribute nothing.
    ///
    /// One copy per feature when several tiles have rows; none when only one has.
    ///
    /// # Errors
    /// [`FrameError::TileSchema`] when a tile's features or assets differ from the
    /// first tile's; [`FrameError::TileOrder`] when a tile does not start after the
    /// last timestamp before it (overlap or disorder). An empty list gives an empty
    /// frame with no columns.
    pub fn concat(tiles: &[Frame]) -> Result<Frame> {
        let Some(first) = tiles.first() else {
            return Frame::empty(Vec::new(), Vec::new());
        };
        let mut last: Option<i64> = None;
        let mut rows = 0;
        for (i, t) in tiles.iter().enumerate() {
            if t.features != first.features {
                return Err(FrameError::TileSchema {
                    tile: i,
                    what: "features",
                    found: t.features.to_vec(),
                    expected: first.features.to_vec(),
                });
            }
            if t.assets != first.assets {
                return Err(FrameError::TileSchema {
                    tile: i,
                    what: "assets",
                    found: t.assets.to_vec(),
                    expected: first.assets.to_vec(),
                });
            }
            if let (Some(prev), Some(&start)) = (last, t.end_ts.first())
                && start <= prev
            {
                return Err(FrameError::TileOrder {
                    tile: i,
                    first: Timestamp(start),
                    previous_last: Timestamp(prev),
                });
            }
            if let Some(&end) = t.end_ts.last() {
                last = Some(end);
            }
            rows += t.n_rows();
        }
        let non_empty: Vec<&Frame> = tiles.iter().filter(|t| !t.is_empty()).collect();
        if non_empty.len() == 1 {
            return Ok(non_empty[0].clone());
        }
        let cat_i64 = |get: fn(&Frame) -> &[i64]| {
            let mut out = Vec::with_capacity(rows);
            for t in &non_empty {
                out.extend_from_slice(get(t));
            }
            ScalarBuffer::from(out)
        };
        let cells = rows * first.n_assets();
        let values = (0..first.n_features())
            .map(|f| {
                let mut out = Vec::with_capacity(cells);
                for t in &non_empty {
                    out.extend_from_slice(&t.values[f]);
                }
                ScalarBuffer::from(out)
            })
            .collect();
        Ok(Frame {
            end_ts: cat_i64(|t| &t.end_ts),
            knowledge_ts: cat_i64(|t| &t.knowledge_ts),
            assets: Arc::clone(&first.assets),
            features: Arc::clone(&first.features),
            values,
        })
    }
}

/// Checks that `ts` is strictly increasing.
pub(crate) fn check_sorted(ts: &[i64]) -> Result<()> {
    match ts.windows(2).position(|w| w[1] <= w[0]) {
        None => Ok(()),
        Some(i) => Err(FrameError::UnsortedIndex {
            row: i + 1,
            previous: Timestamp(ts[i]),
            current: Timestamp(ts[i + 1]),
        }),
    }
}

pub(crate) fn check_unique(kind: &'static str, names: &[String]) -> Result<()> {
    let mut seen = HashSet::with_capacity(names.len());
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(FrameError::DuplicateName {
                kind,
                name: n.clone(),
            });
        }
    }
    Ok(())
}
