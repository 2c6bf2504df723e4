//! Bit-exact comparison of frames, reporting the first difference.
//!
//! Tiling invariance is promised to the bit, so equality here compares the bit
//! patterns of f64 values: `NaN` equals a `NaN` with the same payload, and `0.0` does
//! not equal `-0.0`.

use std::fmt;

use crate::{Frame, Timestamp};

/// The first way in which two frames differ, in a fixed order of checks: features,
/// assets, number of rows, then row by row (end time, knowledge time, then each
/// feature's cells in column order).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Difference {
    /// The feature lists differ.
    Features {
        /// Left frame's features.
        left: Vec<String>,
        /// Right frame's features.
        right: Vec<String>,
    },
    /// The asset lists differ.
    Assets {
        /// Left frame's assets.
        left: Vec<String>,
        /// Right frame's assets.
        right: Vec<String>,
    },
    /// The row counts differ.
    Rows {
        /// Left frame's row count.
        left: usize,
        /// Right frame's row count.
        right: usize,
    },
    /// The end times differ at a row.
    EndTs {
        /// The row.
        row: usize,
        /// Left end time.
        left: Timestamp,
        /// Right end time.
        right: Timestamp,
    },
    /// The knowledge times differ at a row.
    KnowledgeTs {
        /// The row's end time.
        end_ts: Timestamp,
        /// Left knowledge time.
        left: Timestamp,
        /// Right knowledge time.
        right: Timestamp,
    },
    /// A cell's bits differ.
    Cell {
        /// The feature.
        feature: String,
        /// The asset.
        asset: String,
        /// The row's end time.
        end_ts: Timestamp,
        /// Left value.
        left: f64,
        /// Right value.
        right: f64,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Features { left, right } => {
                write!(f, "features differ: {left:?} vs {right:?}")
            }
            Difference::Assets { left, right } => write!(f, "assets differ: {left:?} vs {right:?}"),
            Difference::Rows { left, right } => write!(f, "row counts differ: {left} vs {right}"),
            Difference::EndTs { row, left, right } => {
                write!(f, "end_ts differs at row {row}: {left} vs {right}")
            }
            Difference::KnowledgeTs {
                end_ts,
                left,
                right,
            } => write!(f, "knowledge_ts differs at {end_ts}: {left} vs {right}"),
            Difference::Cell {
                feature,
                asset,
                end_ts,
                left,
                right,
            } => write!(
                f,
                "value of ({feature}, {asset}) at {end_ts} differs: {left:?} (bits {:#018x}) vs \
                 {right:?} (bits {:#018x})",
                left.to_bits(),
                right.to_bits()
            ),
        }
    }
}

fn first_bit_difference(a: &[f64], b: &[f64]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

impl Frame {
    /// The first difference between `self` (left) and `other` (right), or `None` when
    /// they are equal to the bit.
    ///
    /// "First" means the earliest row; within a row, end time, then knowledge time,
    /// then features in column order, then assets in column order.
    pub fn first_difference(&self, other: &Frame) -> Option<Difference> {
        if self.features != other.features {
            return Some(Difference::Features {
                left: self.features.to_vec(),
                right: other.features.to_vec(),
            });
        }
        if self.assets != other.assets {
            return Some(Difference::Assets {
                left: self.assets.to_vec(),
                right: other.assets.to_vec(),
            });
        }
        if self.n_rows() != other.n_rows() {
            return Some(Difference::Rows {
                left: self.n_rows(),
                right: other.n_rows(),
            });
        }
        let n = self.n_assets();
        let rows = self.n_rows();
        // The first row whose end time or knowledge time differs.
        let index_row = (0..rows)
            .find(|&r| {
                self.end_ts[r] != other.end_ts[r] || self.knowledge_ts[r] != other.knowledge_ts[r]
            })
            .unwrap_or(rows);
        // The first differing cell at or before that row: (row, feature, flat index).
        let mut cell: Option<(usize, usize, usize)> = None;
        for f in 0..self.n_features() {
            let limit = cell
                .map_or(index_row, |(r, _, _)| r)
                .saturating_add(1)
                .min(rows);
            let (a, b) = (&self.values[f][..limit * n], &other.values[f][..limit * n]);
            if let Some(i) = first_bit_difference(a, b)
                && cell.is_none_or(|(r, _, _)| i / n < r)
            {
                cell = Some((i / n, f, i));
            }
        }
        match cell {
            Some((row, f, i)) if row < index_row => Some(Difference::Cell {
                feature: self.features[f].clone(),
                asset: self.assets[i % n].clone(),
                end_ts: Timestamp(self.end_ts[row]),
                left: self.values[f][i],
                right: other.values[f][i],
            }),
            _ if index_row == rows => None,
            _ if self.end_ts[index_row] != other.end_ts[index_row] => Some(Difference::EndTs {
                row: index_row,
                left: Timestamp(self.end_ts[index_row]),
                right: Timestamp(other.end_ts[index_row]),
            }),
            _ => Some(Difference::KnowledgeTs {
                end_ts: Timestamp(self.end_ts[index_row]),
                left: Timestamp(self.knowledge_ts[index_row]),
                right: Timestamp(other.knowledge_ts[index_row]),
            }),
        }
    }

    /// Whether the frames are equal to the bit (see [`Frame::first_difference`]).
    pub fn bit_eq(&self, other: &Frame) -> bool {
        self.first_difference(other).is_none()
    }
}
