//! Future-peeking detection: the perturbation test and the knowledge-time audit.
//!
//! Both are independent of how a node is written. The perturbation test changes
//! every input value known after a time `t` and reruns: an output row known at or
//! before `t` that changes used data from after `t`. The audit (see
//! [`crate::replay`]) compares each output row's knowledge time with the decision
//! time at which a replayed run produced it.

use std::collections::{BTreeMap, BTreeSet};

use kf_frame::{Frame, Timestamp};

use crate::dag::{Dag, Keep, RunOptions};
use crate::error::Result;
use crate::node::{Node, NodeId, Phase, RunContext, Targets};
use crate::nodes::sources::FrameSource;
use crate::tiling::{Divergence, Outputs, first_divergence};

/// What the perturbation test found at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct Peek {
    /// The time after which inputs were changed.
    pub t: i64,
    /// The first node (topological order) whose output known by `t` changed.
    pub divergence: Divergence,
    /// Why that node is the likely culprit, when the test can tell: a forward target
    /// it reads, or a fit that learned from rows known after `t`.
    pub hint: Option<String>,
}

impl std::fmt::Display for Peek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "future peeking: changing the inputs known after {} changed an output known by \
             then; {}",
            Timestamp(self.t),
            self.divergence
        )?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// A value that always differs from `x` (NaN stays NaN, so gaps stay gaps).
fn perturb_value(x: f64) -> f64 {
    x + 1.0 + x.abs()
}

/// `frame` with every value of rows known after `t` changed.
pub fn perturb_after(frame: &Frame, t: i64) -> Result<Frame> {
    let late: Vec<bool> = frame.knowledge_ts().iter().map(|&k| k > t).collect();
    if !late.iter().any(|&l| l) {
        return Ok(frame.clone());
    }
    let n = frame.n_assets();
    let features = (0..frame.n_features())
        .map(|f| {
            let mut v = frame.feature_at(f).values().to_vec();
            for (r, row) in v.chunks_exact_mut(n.max(1)).enumerate() {
                if late[r] {
                    row.iter_mut().for_each(|x| *x = perturb_value(*x));
                }
            }
            (frame.features()[f].clone(), v)
        })
        .collect();
    Ok(Frame::new(
        frame.end_ts().to_vec(),
        frame.knowledge_ts().to_vec(),
        frame.assets().to_vec(),
        features,
    )?)
}

/// The rows of `f` whose end time is in `keep`.
fn rows_at(f: &Frame, keep: &BTreeSet<i64>) -> Result<Frame> {
    let mask: Vec<bool> = f.end_ts().iter().map(|t| keep.contains(t)).collect();
    Ok(f.filter_rows(&mask)?)
}

/// The end times of `f`'s rows known by `t`: rows whose knowledge time is `<= t`
/// (`horizon` 0), or, for forward targets `horizon` rows ahead, rows whose row
/// `horizon` later exists and is known by `t`.
fn known_rows(f: &Frame, t: i64, horizon: usize) -> BTreeSet<i64> {
    let kt = f.knowledge_ts();
    f.end_ts()
        .iter()
        .enumerate()
        .filter(|&(r, _)| {
            r.checked_add(horizon)
                .and_then(|j| kt.get(j))
                .is_some_and(|&k| k <= t)
        })
        .map(|(_, &e)| e)
        .collect()
}

/// `outputs` cut to what `reference` knew by `t`, per node and port: the features
/// that are not forward targets on the rows known by `t`, and each group of forward
/// targets (by horizon) on the rows whose target row is known by `t`, under the port
/// name `PORT (forward targets, H rows ahead)`.
fn known_by(reference: &Outputs, outputs: &Outputs, t: i64, targets: &Targets) -> Outputs {
    let mut out = Outputs::new();
    for (id, ports) in reference {
        let Some(theirs) = outputs.get(id) else {
            continue;
        };
        let mut cut = crate::node::Ports::new();
        for (port, f) in ports {
            let mut groups: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
            for name in f.features() {
                groups
                    .entry(targets.get(name).map_or(0, |t| t.horizon))
                    .or_default()
                    .push(name);
            }
            if groups.is_empty() {
                groups.insert(0, Vec::new());
            }
            for (h, names) in groups {
                let keep = known_rows(f, t, h);
                let label = if h == 0 {
                    port.clone()
                } else {
                    format!("{port} (forward targets, {h} rows ahead)")
                };
                // A frame that lacks a feature is left out: a difference in rows.
                if let Some(g) = theirs
                    .get(port)
                    .and_then(|g| g.select_features(&names).ok())
                    .and_then(|g| rows_at(&g, &keep).ok())
                {
                    cut.insert(label, g);
                }
            }
        }
        out.insert(id.clone(), cut);
    }
    out
}

/// `outputs` without the forward targets (by name): what a tiled, streamed or
/// replayed run must reproduce to the bit. A target is not known at its own row, so
/// a run that sees the data as it comes cannot give it there; it is left out of those
/// comparisons (and checked by the perturbation test instead).
pub fn without_targets(outputs: &Outputs, targets: &Targets) -> Outputs {
    if targets.is_empty() {
        return outputs.clone();
    }
    outputs
        .iter()
        .map(|(id, ports)| {
            let ports = ports
                .iter()
                .map(|(port, f)| {
                    let keep: Vec<&str> = f
                        .features()
                        .iter()
                        .filter(|n| !targets.contains_key(*n))
                        .map(String::as_str)
                        .collect();
                    let g = if keep.len() == f.n_features() {
                        f.clone()
                    } else {
                        f.select_features(&keep).unwrap_or_else(|_| f.clone())
                    };
                    (port.clone(), g)
                })
                .collect();
            (id.clone(), ports)
        })
        .collect()
}

/// How a perturbation run runs a DAG (fresh from the factory, its sources already
/// replaced): the outputs to compare, by node. A batch call for a DAG that learns
/// nothing; the config's whole runner, fits included, for one that learns.
pub type Style<'a> = &'a (dyn Fn(&mut Dag) -> Result<Outputs> + Sync);

/// Every source's whole output, read once: what the perturbation test perturbs.
fn source_frames(make: &(dyn Fn() -> Result<Dag> + Sync)) -> Result<Vec<(NodeId, Frame)>> {
    let mut dag = make()?;
    let mut frames = Vec::new();
    for id in dag.sources() {
        dag.reset();
        let opts = RunOptions {
            up_to: Some(id.clone()),
            parallel: false,
            keep: Keep::Sinks,
        };
        let r = dag.run(&RunContext::new(Phase::Predict, None), &opts)?;
        if let Some(f) = r.outputs.get(&id).and_then(|p| p.get(crate::node::DF_OUT)) {
            frames.push((id, f.clone()));
        }
    }
    Ok(frames)
}

/// What is likely wrong with `node`, the first to diverge: a forward target among its
/// inputs (only a model's fit may use one), or its learning.
fn hint(dag: &Dag, node: &NodeId, targets: &Targets, t: i64, refits: bool) -> Option<String> {
    let n = dag.node(node.as_str()).ok()?;
    let schema = dag.features().ok()?;
    if let Some(first) = target_read(dag, &schema, node, targets) {
        return Some(reads_target(&first, targets.get(&first)?));
    }
    if n.learns() && refits {
        return Some(format!(
            "node `{node}` ({}) learns: a fit of the config's runner learned from rows known \
             after {} (a fit span that reaches past it, or targets that end after it) and \
             predicted rows known by then",
            n.kind(),
            Timestamp(t)
        ));
    }
    None
}

/// The first forward target that reaches node `id` as an input it reads when it
/// predicts (not only as what a model learns to predict, see
/// [`Node::fit_only_inputs`](crate::Node::fit_only_inputs)), by `schema`.
pub fn target_read(
    dag: &Dag,
    schema: &crate::Schema,
    id: &NodeId,
    targets: &Targets,
) -> Option<String> {
    let fit_only = dag.node(id.as_str()).ok()?.fit_only_inputs();
    dag.input_features(schema, id)
        .into_iter()
        .find(|f| targets.contains_key(f) && !fit_only.contains(f))
}

/// Why a node that reads forward target `name` peeks: only a model's fit may use it.
pub fn reads_target(name: &str, target: &crate::node::Target) -> String {
    format!(
        "it reads forward target `{name}` (made by node `{}`, {} rows ahead), which only a \
         model's fit may use (as what it learns to predict: `y_vars`, `y_var`); a feature, a processor or the system that \
         uses it peeks {} rows into the future",
        target.node, target.horizon, target.horizon
    )
}

/// The perturbation test: runs the DAG made by `make` in one batch call, then, for
/// each `t` in `times`, replaces every source's output by the same frame with the
/// rows known after `t` changed, reruns, and compares every node's output rows that
/// the first run knew by `t` (knowledge time `<= t`; a forward target's row when the
/// row it looks ahead to is known). Returns the first peek found, naming the first
/// node in topological order whose output changed, or `None`.
///
/// `make` must return the DAG ready to run in `phase` (fitted, for predict).
///
/// # Errors
/// A node's error in any run.
pub fn perturbation_test(
    make: &(dyn Fn() -> Result<Dag> + Sync),
    phase: Phase,
    times: &[i64],
) -> Result<Option<Peek>> {
    let batch = |dag: &mut Dag| -> Result<Outputs> {
        dag.reset();
        let opts = RunOptions {
            up_to: None,
            parallel: false,
            keep: Keep::All,
        };
        Ok(dag.run(&RunContext::new(phase, None), &opts)?.outputs)
    };
    perturbation_test_with(make, &batch, times, false)
}

/// The perturbation test with `style` running each DAG: the config's runner for a
/// DAG that learns, so that every fit is redone on the perturbed inputs and a fit
/// that learns from rows known after `t` shows in the predictions known by `t`.
/// `refits` says whether `style` fits (it words the report on a diverging model).
///
/// # Errors
/// A node's or the runner's error in any run.
pub fn perturbation_test_with(
    make: &(dyn Fn() -> Result<Dag> + Sync),
    style: Style<'_>,
    times: &[i64],
    refits: bool,
) -> Result<Option<Peek>> {
    let probe = make()?;
    let order = probe.topological_order();
    let sources = probe.sources();
    let targets = probe.targets();
    let inputs = source_frames(make)?;
    let run_on = |frames: &[(NodeId, Frame)]| -> Result<Outputs> {
        let mut dag = make()?;
        for (id, f) in frames {
            dag.replace_node(Box::new(FrameSource::new(id.as_str(), f.clone())) as Box<dyn Node>)?;
        }
        style(&mut dag)
    };
    let base = run_on(&inputs)?;
    let inner: Vec<NodeId> = order
        .iter()
        .filter(|id| !sources.contains(id))
        .cloned()
        .collect();
    for &t in times {
        let perturbed = inputs
            .iter()
            .map(|(id, f)| Ok((id.clone(), perturb_after(f, t)?)))
            .collect::<Result<Vec<_>>>()?;
        let changed = run_on(&perturbed)?;
        let expected = known_by(&base, &base, t, &targets);
        let actual = known_by(&base, &changed, t, &targets);
        if let Some(divergence) = first_divergence(&inner, &expected, &actual) {
            let hint = hint(&probe, &divergence.node, &targets, t, refits);
            return Ok(Some(Peek {
                t,
                divergence,
                hint,
            }));
        }
    }
    Ok(None)
}

/// `k` times spread over the rows of `frame` (at 1/(k+1), 2/(k+1), ... of its rows):
/// where a perturbation test cuts.
pub fn spread_times(frame: &Frame, k: usize) -> Vec<i64> {
    spread_times_in(frame, k, i64::MIN, i64::MAX)
}

/// As [`spread_times`], over the rows of `frame` that end in `[lo, hi]` (the span a
/// runner predicts).
pub fn spread_times_in(frame: &Frame, k: usize, lo: i64, hi: i64) -> Vec<i64> {
    let ts = frame.end_ts();
    let (a, b) = (
        ts.partition_point(|&t| t < lo),
        ts.partition_point(|&t| t <= hi),
    );
    let ts = &ts[a..b.max(a)];
    if ts.is_empty() {
        return Vec::new();
    }
    let mut at: Vec<i64> = (1..=k)
        .map(|i| ts[(i * ts.len() / (k + 1)).min(ts.len() - 1)])
        .collect();
    at.dedup();
    at
}
