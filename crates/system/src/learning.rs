//! Systems that learn: when the loop fits its DAG's models, and how one fit is made.
//!
//! A system whose DAG learns fits it at the first decision (unless it starts from a
//! loaded state) and, with `retrain_every`, again at the first decision at least
//! that long after the last fit. A fit at decision `τ` runs the DAG's fit phase over
//! the bars ending in `(τ - lookback, τ]` on a second DAG built from the same config,
//! with the decision's knowledge cut-off as the fit's decision time, so its models
//! learn only from rows whose features *and* targets the system could see then. The
//! learned states are then loaded into the streaming DAG, whose carried state (its
//! EMAs, its lags) goes on untouched: only what the models learned changes.
//!
//! The event loop and the research evaluator both call [`fit_decisions`] and
//! [`fit_at`], so they fit at the same decisions on the same rows; the loop reads
//! its view on the run's clock, research the history, and their models agree.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kf_dataflow::{Dag, NodeId, Phase, RunContext, RunOptions};

use crate::error::Result;
use crate::spec::FitSpec;

/// Learned states by node id (only the nodes that learned something).
pub type States = BTreeMap<NodeId, Vec<u8>>;

/// One fit the loop made.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitRecord {
    /// The decision it was made at.
    pub decision: i64,
    /// The span of bar ends it learned from (closed).
    pub span: (i64, i64),
    /// Its knowledge cut-off: rows (and targets) known later were not learned from.
    pub known_by: i64,
    /// How long it took.
    pub wall: Duration,
}

/// The indices into `grid` of the decisions that fit: the first (unless the run
/// starts from a loaded state), then each first decision at least `retrain_every`
/// after the previous fit. None without `[system.fit]`.
pub fn fit_decisions(grid: &[i64], fit: Option<FitSpec>, from_state: bool) -> Vec<usize> {
    let Some(fit) = fit else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut last = grid.first().copied();
    if !from_state && !grid.is_empty() {
        out.push(0);
    }
    if let (Some(every), Some(mut last_fit)) = (fit.retrain_every, last.take()) {
        for (k, &tau) in grid.iter().enumerate().skip(1) {
            if tau >= last_fit.saturating_add(every) {
                out.push(k);
                last_fit = tau;
            }
        }
    }
    out
}

/// The span a fit at `tau` learns from.
pub fn fit_span(fit: FitSpec, tau: i64) -> (i64, i64) {
    let lo = fit
        .lookback
        .map_or(i64::MIN, |l| tau.saturating_sub(l).saturating_add(1));
    (lo, tau)
}

/// Fits `dag` (reset first) at decision `tau` with knowledge cut-off `known_by`,
/// running it up to `node`, and returns what its models learned.
///
/// # Errors
/// A node's error, naming the node (a model with nothing to learn from, say).
pub fn fit_at(
    dag: &mut Dag,
    fit: FitSpec,
    tau: i64,
    known_by: i64,
    node: &NodeId,
) -> Result<(States, FitRecord)> {
    let started = Instant::now();
    let span = fit_span(fit, tau);
    dag.reset();
    dag.run(
        &RunContext::new(Phase::Fit, Some(span)).deciding_at(known_by),
        &RunOptions {
            up_to: Some(node.clone()),
            parallel: false,
            keep: Default::default(),
        },
    )?;
    let states = dag
        .save_states()?
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    Ok((
        states,
        FitRecord {
            decision: tau,
            span,
            known_by,
            wall: started.elapsed(),
        },
    ))
}
