//! Future-peeking detection: the perturbation test and the knowledge-time audit.
//!
//! Both are independent of how a node is written. The perturbation test changes
//! every input value known after a time `t` and reruns: an output row known at or
//! before `t` that changes used data from after `t`. The audit (see
//! [`crate::replay`]) compares each output row's knowledge time with the decision
//! time at which a replayed run produced it.

use std::collections::BTreeSet;

use kf_frame::{Frame, Timestamp};

use crate::dag::{Dag, Keep};
use crate::error::Result;
use crate::node::{Node, NodeId, Phase};
use crate::nodes::sources::FrameSource;
use crate::tiling::{Divergence, Outputs, Tiling, first_divergence, run_tiled};

/// What the perturbation test found at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct Peek {
    /// The time after which inputs were changed.
    pub t: i64,
    /// The first node (topological order) whose output known by `t` changed.
    pub divergence: Divergence,
}

impl std::fmt::Display for Peek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "future peeking: changing the inputs known after {} changed an output known by \
             then; {}",
            Timestamp(self.t),
            self.divergence
        )
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

/// `outputs` cut to the rows `reference` knew by `t` (by end time, per port).
fn known_by(reference: &Outputs, outputs: &Outputs, t: i64) -> Result<Outputs> {
    let mut out = Outputs::new();
    for (id, ports) in reference {
        let Some(theirs) = outputs.get(id) else {
            continue;
        };
        let mut cut = crate::node::Ports::new();
        for (port, f) in ports {
            let keep: BTreeSet<i64> = f
                .end_ts()
                .iter()
                .zip(f.knowledge_ts())
                .filter(|(_, k)| **k <= t)
                .map(|(e, _)| *e)
                .collect();
            if let Some(g) = theirs.get(port) {
                cut.insert(port.clone(), rows_at(g, &keep)?);
            }
        }
        out.insert(id.clone(), cut);
    }
    Ok(out)
}

/// The perturbation test: runs the DAG made by `make` in one batch call, then, for
/// each `t` in `times`, replaces every source's output by the same frame with the
/// rows known after `t` changed, reruns, and compares every node's output rows that
/// the first run knew by `t` (knowledge time `<= t`). Returns the first peek found,
/// naming the first node in topological order whose output changed, or `None`.
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
    let probe = make()?;
    let order = probe.topological_order();
    let sources = probe.sources();
    drop(probe);
    let base = run_tiled(make, phase, &Tiling::batch(), &Keep::All)?;
    for &t in times {
        let mut inputs = Vec::with_capacity(sources.len());
        for id in &sources {
            if let Some(f) = base.get(id).and_then(|p| p.get(crate::node::DF_OUT)) {
                inputs.push((id.clone(), perturb_after(f, t)?));
            }
        }
        let make_perturbed = || {
            let mut dag = make()?;
            for (id, f) in &inputs {
                dag.replace_node(
                    Box::new(FrameSource::new(id.as_str(), f.clone())) as Box<dyn Node>
                )?;
            }
            Ok(dag)
        };
        let changed = run_tiled(&make_perturbed, phase, &Tiling::batch(), &Keep::All)?;
        let expected = known_by(&base, &base, t)?;
        let actual = known_by(&base, &changed, t)?;
        let inner: Vec<NodeId> = order
            .iter()
            .filter(|id| !sources.contains(id))
            .cloned()
            .collect();
        if let Some(divergence) = first_divergence(&inner, &expected, &actual) {
            return Ok(Some(Peek { t, divergence }));
        }
    }
    Ok(None)
}

/// `k` times spread over the rows of `frame` (at 1/(k+1), 2/(k+1), ... of its rows):
/// where a perturbation test cuts.
pub fn spread_times(frame: &Frame, k: usize) -> Vec<i64> {
    let ts = frame.end_ts();
    if ts.is_empty() {
        return Vec::new();
    }
    (1..=k)
        .map(|i| ts[(i * ts.len() / (k + 1)).min(ts.len() - 1)])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
