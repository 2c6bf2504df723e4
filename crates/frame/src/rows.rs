//! [`RowBuf`], a frame's rows in buffers that keep their capacity, and [`View`], read
//! access common to it and to [`Frame`].
//!
//! A streaming step moves a few rows through every node. Building a [`Frame`] for
//! them allocates (reference-counted Arrow buffers, the list of features), and at a
//! few rows that is most of the step's cost. A node's [`RowBuf`] is cleared and
//! refilled instead: once its vectors have grown to the largest step seen, a step
//! allocates nothing. Kernels read their input through a [`View`], so the batch path
//! (over a [`Frame`]) and the streaming path (over a [`RowBuf`]) run the same code.

use std::sync::Arc;

use arrow::buffer::ScalarBuffer;

use crate::Frame;
use crate::error::{FrameError, Result, list_names};

/// A frame's rows in growable buffers: one time per row, and per feature
/// `n_rows * n_assets` values, row-major as in a [`Frame`].
///
/// # Invariants
/// Maintained by whoever fills it (the DAG's nodes): `end_ts` strictly increasing,
/// `knowledge_ts` and every feature sized to the rows, one value vector per
/// feature name. [`RowBuf::to_frame`] checks them.
#[derive(Clone, Debug)]
pub struct RowBuf {
    /// Bar end times (ns UTC).
    pub end_ts: Vec<i64>,
    /// Knowledge times (ns UTC), one per row.
    pub knowledge_ts: Vec<i64>,
    /// Asset names (shared with the frames and buffers they came from).
    pub assets: Arc<[String]>,
    /// Feature names, one per entry of `values`.
    pub features: Arc<[String]>,
    /// Per feature, `n_rows * n_assets` values.
    pub values: Vec<Vec<f64>>,
}

impl RowBuf {
    /// An empty buffer with the given layout.
    pub fn new(assets: Arc<[String]>, features: Arc<[String]>) -> RowBuf {
        let values = features.iter().map(|_| Vec::new()).collect();
        RowBuf {
            end_ts: Vec::new(),
            knowledge_ts: Vec::new(),
            assets,
            features,
            values,
        }
    }

    /// Rows held.
    pub fn n_rows(&self) -> usize {
        self.end_ts.len()
    }

    /// Assets (columns per feature).
    pub fn n_assets(&self) -> usize {
        self.assets.len()
    }

    /// Sets the layout (sharing the names, not copying them; names equal to the
    /// current ones keep the current handle) and drops every row, keeping the
    /// buffers' capacity. Allocates only when the number of features grows.
    pub fn reset_to(&mut self, assets: &Arc<[String]>, features: &Arc<[String]>) {
        // Equal names keep this buffer's handle, so consumers that cache what they
        // resolved against it (by pointer) keep their cache.
        if !Arc::ptr_eq(&self.assets, assets) && self.assets[..] != assets[..] {
            self.assets = Arc::clone(assets);
        }
        if !Arc::ptr_eq(&self.features, features) && self.features[..] != features[..] {
            self.features = Arc::clone(features);
        }
        self.values.resize_with(features.len(), Vec::new);
        self.clear();
    }

    /// Drops every row, keeping the layout and the buffers' capacity.
    pub fn clear(&mut self) {
        self.end_ts.clear();
        self.knowledge_ts.clear();
        for v in &mut self.values {
            v.clear();
        }
    }

    /// Appends `frame`'s rows `lo..hi` (same layout: [`RowBuf::reset_to`] first).
    pub fn extend_from_frame(&mut self, frame: &Frame, lo: usize, hi: usize) {
        let n = frame.n_assets();
        self.end_ts.extend_from_slice(&frame.end_ts()[lo..hi]);
        self.knowledge_ts
            .extend_from_slice(&frame.knowledge_ts()[lo..hi]);
        for (out, v) in self.values.iter_mut().zip(&frame.values) {
            out.extend_from_slice(&v[lo * n..hi * n]);
        }
    }

    /// Read access to the rows.
    pub fn view(&self) -> View<'_> {
        View {
            end_ts: &self.end_ts,
            knowledge_ts: &self.knowledge_ts,
            assets: &self.assets,
            features: &self.features,
            values: Values::Vecs(&self.values),
        }
    }

    /// The rows as a [`Frame`] (a copy: for consumers that keep them).
    ///
    /// # Errors
    /// As [`Frame::new`], when the buffer breaks an invariant.
    pub fn to_frame(&self) -> Result<Frame> {
        Frame::build(
            self.end_ts.clone(),
            self.knowledge_ts.clone(),
            Arc::clone(&self.assets),
            self.features
                .iter()
                .cloned()
                .zip(self.values.iter().cloned())
                .collect(),
        )
    }
}

impl Default for RowBuf {
    fn default() -> Self {
        RowBuf::new(Arc::from(Vec::new()), Arc::from(Vec::new()))
    }
}

/// Where a [`View`]'s values live.
#[derive(Clone, Copy, Debug)]
enum Values<'a> {
    Buffers(&'a [ScalarBuffer<f64>]),
    Vecs(&'a [Vec<f64>]),
}

/// Read access to rows of a [`Frame`] or a [`RowBuf`]: times, names, and each
/// feature's `n_rows * n_assets` values, row-major.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    end_ts: &'a [i64],
    knowledge_ts: &'a [i64],
    assets: &'a [String],
    features: &'a [String],
    values: Values<'a>,
}

impl<'a> View<'a> {
    /// Rows.
    pub fn n_rows(&self) -> usize {
        self.end_ts.len()
    }

    /// Assets.
    pub fn n_assets(&self) -> usize {
        self.assets.len()
    }

    /// Features.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Bar end times.
    pub fn end_ts(&self) -> &'a [i64] {
        self.end_ts
    }

    /// Knowledge times.
    pub fn knowledge_ts(&self) -> &'a [i64] {
        self.knowledge_ts
    }

    /// Asset names.
    pub fn assets(&self) -> &'a [String] {
        self.assets
    }

    /// Feature names.
    pub fn features(&self) -> &'a [String] {
        self.features
    }

    /// The values of feature `i`, row-major.
    ///
    /// # Panics
    /// If `i` is not a feature index (a bug in the caller, not an input error).
    pub fn values(&self, i: usize) -> &'a [f64] {
        match self.values {
            Values::Buffers(b) => &b[i],
            Values::Vecs(v) => &v[i],
        }
    }

    /// Position of a feature.
    ///
    /// # Errors
    /// [`FrameError::Unknown`] listing the features.
    pub fn feature_index(&self, name: &str) -> Result<usize> {
        self.features
            .iter()
            .position(|f| f == name)
            .ok_or_else(|| FrameError::Unknown {
                kind: "feature",
                name: name.to_string(),
                available: list_names(self.features),
            })
    }
}

impl Frame {
    /// Read access shared with [`RowBuf`].
    pub fn view(&self) -> View<'_> {
        View {
            end_ts: &self.end_ts,
            knowledge_ts: &self.knowledge_ts,
            assets: &self.assets,
            features: &self.features,
            values: Values::Buffers(&self.values),
        }
    }

    /// The asset names' shared handle (for buffers that keep this frame's layout).
    pub fn assets_shared(&self) -> &Arc<[String]> {
        &self.assets
    }

    /// The feature names' shared handle.
    pub fn features_shared(&self) -> &Arc<[String]> {
        &self.features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame::new(
            vec![1, 2, 3],
            vec![1, 2, 4],
            vec!["A".into(), "B".into()],
            vec![("x".into(), vec![1., 2., 3., 4., 5., 6.])],
        )
        .expect("a valid frame")
    }

    #[test]
    fn a_buffer_refilled_keeps_capacity_and_round_trips() {
        let f = frame();
        let mut b = RowBuf::default();
        b.reset_to(f.assets_shared(), f.features_shared());
        b.extend_from_frame(&f, 1, 3);
        assert_eq!(b.end_ts, [2, 3]);
        assert_eq!(b.knowledge_ts, [2, 4]);
        assert_eq!(b.values[0], [3., 4., 5., 6.]);
        let g = b.to_frame().expect("valid rows");
        assert!(g.bit_eq(&f.slice(1, 2).expect("in range")));
        let cap = b.values[0].capacity();
        let ptr = b.values[0].as_ptr();
        b.reset_to(f.assets_shared(), f.features_shared());
        assert_eq!(b.n_rows(), 0);
        b.extend_from_frame(&f, 0, 1);
        assert_eq!((b.values[0].capacity(), b.values[0].as_ptr()), (cap, ptr));
        assert_eq!(b.view().values(0), &[1., 2.]);
        assert_eq!(f.view().values(0), &[1., 2., 3., 4., 5., 6.]);
        assert!(b.view().feature_index("y").is_err());
    }
}
