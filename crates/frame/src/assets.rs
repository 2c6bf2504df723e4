//! Joining asset tiles: frames over the same timestamps and disjoint assets.

use std::sync::Arc;

use arrow::buffer::ScalarBuffer;

use crate::error::{FrameError, Result};
use crate::frame::check_unique;
use crate::{Frame, Timestamp};

impl Frame {
    /// Joins asset tiles side by side: each tile has the same end times and features,
    /// and its own assets; the result has every tile's assets in tile order. A row's
    /// knowledge time is the latest of the tiles' (a row is known once every asset's
    /// part of it is).
    ///
    /// One pass per feature, interleaving each row's asset blocks.
    ///
    /// # Errors
    /// [`FrameError::TileSchema`] when a tile's features differ from the first's;
    /// [`FrameError::AssetTileIndex`] when its end times differ;
    /// [`FrameError::DuplicateName`] when two tiles share an asset. An empty list
    /// gives an empty frame with no columns.
    pub fn concat_assets(tiles: &[Frame]) -> Result<Frame> {
        let Some(first) = tiles.first() else {
            return Frame::empty(Vec::new(), Vec::new());
        };
        if tiles.len() == 1 {
            return Ok(first.clone());
        }
        let mut knowledge: Vec<i64> = first.knowledge_ts.to_vec();
        for (i, t) in tiles.iter().enumerate().skip(1) {
            if t.features != first.features {
                return Err(FrameError::TileSchema {
                    tile: i,
                    what: "features",
                    found: t.features.to_vec(),
                    expected: first.features.to_vec(),
                });
            }
            if t.end_ts[..] != first.end_ts[..] {
                let at = t
                    .end_ts
                    .iter()
                    .zip(first.end_ts.iter())
                    .find(|(a, b)| a != b)
                    .map_or_else(
                        || {
                            *t.end_ts
                                .iter()
                                .chain(first.end_ts.iter())
                                .last()
                                .unwrap_or(&0)
                        },
                        |(a, b)| *a.min(b),
                    );
                return Err(FrameError::AssetTileIndex {
                    tile: i,
                    found: t.n_rows(),
                    expected: first.n_rows(),
                    at: Timestamp(at),
                });
            }
            for (k, &x) in knowledge.iter_mut().zip(t.knowledge_ts.iter()) {
                *k = (*k).max(x);
            }
        }
        let assets: Vec<String> = tiles
            .iter()
            .flat_map(|t| t.assets.iter().cloned())
            .collect();
        check_unique("asset", &assets)?;
        let rows = first.n_rows();
        let values = (0..first.n_features())
            .map(|f| {
                let mut out = Vec::with_capacity(rows * assets.len());
                for r in 0..rows {
                    for t in tiles {
                        let n = t.n_assets();
                        out.extend_from_slice(&t.values[f][r * n..(r + 1) * n]);
                    }
                }
                ScalarBuffer::from(out)
            })
            .collect();
        Ok(Frame {
            end_ts: first.end_ts.clone(),
            knowledge_ts: ScalarBuffer::from(knowledge),
            assets: Arc::from(assets),
            features: Arc::clone(&first.features),
            values,
        })
    }
}
