//! The tiled runner: one DAG run cut into time tiles and asset tiles, giving the
//! batch run's outputs to the bit.
//!
//! Time tiles run one after the other on one DAG, each node continuing from the
//! state it carried out of the previous tile (an EMA's sums, a rolling window's
//! ring, a resampler's open bin): the [`Node`](crate::Node) contract makes a batch
//! run one tile of the same code. Asset tiles run on separate DAG instances (made by
//! the caller's factory), in parallel, each with its sources cut to its assets, and
//! their outputs are joined side by side. Streaming is the same runner with a cut at
//! every bar ([`bar_cuts`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;

use kf_frame::{Difference, Frame};

use crate::dag::{Dag, Keep, RunOptions, RunResult};
use crate::error::{DataflowError, Result};
use crate::node::{Memory, Node, NodeId, Phase, Ports, RunContext};

/// How a run is cut.
///
/// Invariant (checked by [`Tiling::check`]): `cuts` is strictly increasing, and the
/// asset tiles are non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiling {
    /// Time cuts: tile `k` holds bar ends in `(cuts[k-1], cuts[k]]`, the first tile
    /// everything up to `cuts[0]` and the last everything after the last cut. No cut
    /// is one tile (a batch run).
    pub cuts: Vec<i64>,
    /// Asset tiles, each a list of asset names, in the order the joined output lists
    /// them; `None` is one tile of every asset.
    pub assets: Option<Vec<Vec<String>>>,
    /// Threads for asset tiles and for independent nodes (1: all sequential).
    pub threads: usize,
}

impl Tiling {
    /// One tile: the batch run.
    pub fn batch() -> Tiling {
        Tiling {
            cuts: Vec::new(),
            assets: None,
            threads: 1,
        }
    }

    /// The closed intervals of bar end times of the time tiles, in order.
    pub fn intervals(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::with_capacity(self.cuts.len() + 1);
        let mut lo = i64::MIN;
        for &c in &self.cuts {
            out.push((lo, c));
            lo = c.saturating_add(1);
        }
        out.push((lo, i64::MAX));
        out
    }

    /// Checks the invariant.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] for unsorted or repeated cuts, an empty asset tile,
    /// or zero threads.
    pub fn check(&self) -> Result<()> {
        if let Some(w) = self.cuts.windows(2).find(|w| w[1] <= w[0]) {
            return Err(DataflowError::invalid(format!(
                "time cuts must be strictly increasing, but {} is followed by {}",
                kf_frame::Timestamp(w[0]),
                kf_frame::Timestamp(w[1])
            )));
        }
        if let Some(tiles) = &self.assets
            && let Some(k) = tiles.iter().position(Vec::is_empty)
        {
            return Err(DataflowError::invalid(format!(
                "asset tile {k} is empty; every asset tile needs at least one asset"
            )));
        }
        if self.threads == 0 {
            return Err(DataflowError::invalid(
                "a tiled run needs at least one thread",
            ));
        }
        Ok(())
    }
}

/// Cuts after every `every`-th of `times` (bar end times, increasing): a streaming
/// run feeds `every` bars per call (one bar when `every` is 1).
pub fn bar_cuts(times: &[i64], every: usize) -> Vec<i64> {
    times
        .iter()
        .skip(every.max(1) - 1)
        .step_by(every.max(1))
        .copied()
        .collect()
}

/// Refuses what `dag` cannot do under `tiling` in `phase`, naming the node: a node
/// that needs all history, when there is more than one time tile; a node that learns,
/// in a fit over more than one time tile; a cross-sectional node, on asset tiles.
///
/// # Errors
/// [`DataflowError::NotTilable`] for the first such node in topological order.
pub fn check_tilable(dag: &Dag, phase: Phase, tiling: &Tiling) -> Result<()> {
    tiling.check()?;
    let time_tiled = !tiling.cuts.is_empty();
    let asset_tiled = tiling.assets.as_ref().is_some_and(|t| t.len() > 1);
    for id in dag.topological_order() {
        let node = dag.node(id.as_str())?;
        let refuse = |how, why: String| DataflowError::NotTilable {
            node: id.clone(),
            kind: node.kind().to_string(),
            how,
            why,
        };
        if time_tiled && node.memory() == Memory::AllHistory {
            return Err(refuse(
                "on time tiles",
                "it needs all history at once; run it in one batch call".into(),
            ));
        }
        if time_tiled && phase == Phase::Fit && node.learns() {
            return Err(refuse(
                "on time tiles in fit",
                "a model learns from every row of one call; fit in one batch call, then tile \
                 the predict phase"
                    .into(),
            ));
        }
        if asset_tiled && node.cross_sectional() {
            return Err(refuse(
                "on asset tiles",
                "it is cross-sectional (each asset's output depends on the other assets); run \
                 this DAG with one asset tile"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Runs the time tiles of `tiling` one after the other on `dag` (no asset cut),
/// handing each tile's [`RunResult`] to `on_tile` with the tile's index and
/// interval; memory is bounded by one tile's frames plus what `on_tile` keeps.
/// Carried state continues from whatever the DAG holds: reset it first for a fresh
/// run.
///
/// # Errors
/// [`check_tilable`]'s refusals, a node's error (naming the node), or `on_tile`'s.
pub fn for_each_tile(
    dag: &mut Dag,
    phase: Phase,
    tiling: &Tiling,
    keep: &Keep,
    mut on_tile: impl FnMut(usize, (i64, i64), RunResult) -> Result<()>,
) -> Result<()> {
    check_tilable(dag, phase, tiling)?;
    let opts = RunOptions {
        up_to: None,
        parallel: tiling.threads > 1,
        keep: keep.clone(),
    };
    for (k, iv) in tiling.intervals().into_iter().enumerate() {
        let ctx = RunContext::new(phase, Some(iv));
        on_tile(k, iv, dag.run(&ctx, &opts)?)?;
    }
    Ok(())
}

/// Joined outputs of a tiled run: each kept node's ports, every tile concatenated.
pub type Outputs = BTreeMap<NodeId, Ports>;

/// Runs `tiling` over DAGs made by `make` (one per asset tile, each reset before
/// use) and joins the tiles: time tiles concatenated, asset tiles side by side.
/// `make` should return the DAG in the state the run starts from (fitted, or with
/// its state loaded).
///
/// # Errors
/// [`check_tilable`]'s refusals; a node's error; a tile whose outputs cannot be
/// joined (its schema changed between tiles).
pub fn run_tiled(
    make: &(dyn Fn() -> Result<Dag> + Sync),
    phase: Phase,
    tiling: &Tiling,
    keep: &Keep,
) -> Result<Outputs> {
    tiling.check()?;
    let run_one = |assets: Option<&Vec<String>>| -> Result<Outputs> {
        let mut dag = make()?;
        dag.reset();
        if let Some(assets) = assets {
            let assets: Arc<[String]> = Arc::from(assets.as_slice());
            for id in dag.sources() {
                let assets = Arc::clone(&assets);
                dag.wrap_node(id.as_str(), |inner| {
                    Box::new(AssetTile { inner, assets }) as Box<dyn Node>
                })?;
            }
        }
        let mut parts = Gathered::default();
        for_each_tile(&mut dag, phase, tiling, keep, |_, _, res| {
            parts.push(res.outputs);
            Ok(())
        })?;
        parts
            .join(Frame::concat)
            .map(|(id, joined)| Ok((id.clone(), joined.map_err(|e| e.in_node(&id, "tiles"))?)))
            .collect()
    };
    let Some(asset_tiles) = &tiling.assets else {
        return run_one(None);
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(tiling.threads)
        .build()
        .map_err(|e| {
            DataflowError::invalid(format!("cannot start {} threads: {e}", tiling.threads))
        })?;
    let per_tile: Vec<Outputs> = pool.install(|| {
        asset_tiles
            .par_iter()
            .map(|a| run_one(Some(a)))
            .collect::<Result<_>>()
    })?;
    join_asset_tiles(per_tile)
}

/// Joins the outputs of asset tiles side by side, node by node and port by port.
fn join_asset_tiles(per_tile: Vec<Outputs>) -> Result<Outputs> {
    let mut parts = Gathered::default();
    per_tile.into_iter().for_each(|t| parts.push(t));
    parts
        .join(Frame::concat_assets)
        .map(|(id, joined)| {
            Ok((
                id.clone(),
                joined.map_err(|e| e.in_node(&id, "asset tiles"))?,
            ))
        })
        .collect()
}

/// Frames gathered per node and port over the pieces of a run (time steps or asset
/// tiles), in order, until they are joined.
#[derive(Default)]
pub(crate) struct Gathered(BTreeMap<NodeId, BTreeMap<String, Vec<Frame>>>);

impl Gathered {
    /// Adds one piece's outputs.
    pub(crate) fn push(&mut self, outputs: Outputs) {
        for (id, ports) in outputs {
            let node = self.0.entry(id).or_default();
            for (port, frame) in ports {
                node.entry(port).or_default().push(frame);
            }
        }
    }

    /// Joins each node's pieces, port by port, with `join` ([`Frame::concat`] for
    /// time pieces, [`Frame::concat_assets`] for asset tiles).
    pub(crate) fn join(
        self,
        join: fn(&[Frame]) -> kf_frame::Result<Frame>,
    ) -> impl Iterator<Item = (NodeId, Result<Ports>)> {
        self.0.into_iter().map(move |(id, ports)| {
            let joined = ports
                .into_iter()
                .map(|(port, pieces)| Ok((port, join(&pieces)?)))
                .collect::<Result<Ports>>();
            (id, joined)
        })
    }
}

/// A source cut to one asset tile.
struct AssetTile {
    inner: Box<dyn Node>,
    assets: Arc<[String]>,
}

impl Node for AssetTile {
    fn id(&self) -> &NodeId {
        self.inner.id()
    }
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn inputs(&self) -> Vec<String> {
        self.inner.inputs()
    }
    fn outputs(&self) -> Vec<String> {
        self.inner.outputs()
    }
    fn memory(&self) -> Memory {
        self.inner.memory()
    }
    fn lookahead(&self) -> usize {
        self.inner.lookahead()
    }
    fn fit_horizon(&self) -> usize {
        self.inner.fit_horizon()
    }
    fn fit_only_inputs(&self) -> Vec<String> {
        self.inner.fit_only_inputs()
    }
    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        self.inner.evaluation()
    }
    fn importance(&self) -> Vec<(String, f64)> {
        self.inner.importance()
    }
    fn output_features(
        &self,
        inputs: &crate::node::FeatureMap,
    ) -> std::result::Result<Option<crate::node::FeatureMap>, crate::node::MissingFeature> {
        self.inner.output_features(inputs)
    }
    fn run(&mut self, ctx: &RunContext, inputs: &Ports) -> Result<Ports> {
        self.inner
            .run(ctx, inputs)?
            .into_iter()
            .map(|(port, f)| Ok((port, f.select_assets(&self.assets)?)))
            .collect()
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn save_state(&self) -> Result<Vec<u8>> {
        self.inner.save_state()
    }
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        self.inner.load_state(state)
    }
}

/// Where two runs of one DAG first differ: the first node in topological order
/// whose output differs, and its first differing cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// The node.
    pub node: NodeId,
    /// Its output port.
    pub port: String,
    /// The first difference (expected on the left).
    pub difference: Difference,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node `{}` (port `{}`) diverged first: {}",
            self.node, self.port, self.difference
        )
    }
}

/// The first node in `order` whose outputs differ between `expected` and `actual`
/// (bit for bit), or `None` when every node in `order` that both kept agrees. A node
/// or port that only one side kept counts as a difference in row count.
pub fn first_divergence(
    order: &[NodeId],
    expected: &Outputs,
    actual: &Outputs,
) -> Option<Divergence> {
    for id in order {
        let (Some(e), Some(a)) = (expected.get(id), actual.get(id)) else {
            if expected.contains_key(id) != actual.contains_key(id) {
                let rows = |o: &Outputs| {
                    o.get(id)
                        .and_then(|p| p.values().next())
                        .map_or(0, Frame::n_rows)
                };
                return Some(Divergence {
                    node: id.clone(),
                    port: String::new(),
                    difference: Difference::Rows {
                        left: rows(expected),
                        right: rows(actual),
                    },
                });
            }
            continue;
        };
        for (port, ef) in e {
            let diff = match a.get(port) {
                Some(af) => ef.first_difference(af),
                None => Some(Difference::Rows {
                    left: ef.n_rows(),
                    right: 0,
                }),
            };
            if let Some(difference) = diff {
                return Some(Divergence {
                    node: id.clone(),
                    port: port.clone(),
                    difference,
                });
            }
        }
    }
    None
}
