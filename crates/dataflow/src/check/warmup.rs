//! The warm-up report: how much history each node needs before its outputs no
//! longer depend on where the run started.
//!
//! The DAG (in its fitted state) runs once from the first bar and once from each of
//! several later start bars. For each node, a run started at bar `s` gives, from
//! some row on, exactly the rows the full run gives there: the rows before are its
//! warm-up. An EMA never forgets its start to the bit, but it does to a tolerance,
//! so both are reported. A live system must load at least the largest warm-up of
//! history before its first decision.

use std::fmt;

use kf_frame::Frame;

use super::Subject;
use crate::dag::{Keep, RunOptions};
use crate::error::Result;
use crate::node::{NodeId, Phase, RunContext};
use crate::peeking::without_targets;
use crate::tiling::Outputs;

/// One node's warm-up: the most rows of its output, over the start points tried,
/// before a run started later agrees with the full run from then on.
#[derive(Clone, Debug, PartialEq)]
pub struct WarmUp {
    /// The node.
    pub node: NodeId,
    /// Rows until the outputs agree to the bit; `None` when some start point never
    /// agreed within the data.
    pub exact: Option<usize>,
    /// Rows until they agree within the relative tolerance; `None` likewise.
    pub within: Option<usize>,
    /// The tolerance used for `within`.
    pub tolerance: f64,
}

impl fmt::Display for WarmUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = |r: Option<usize>| r.map_or("more than the data".to_string(), |r| r.to_string());
        write!(
            f,
            "warm-up  {}: {} rows to the bit, {} rows within {:e}",
            self.node,
            rows(self.exact),
            rows(self.within),
            self.tolerance
        )
    }
}

/// Whether `a` and `b` agree: bit for bit (`tol` `None`), or within a relative
/// tolerance (NaN agrees with NaN only).
fn agree(a: f64, b: f64, tol: Option<f64>) -> bool {
    match tol {
        None => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        Some(t) => {
            if a.is_nan() || b.is_nan() {
                a.is_nan() && b.is_nan()
            } else {
                a == b || (a - b).abs() <= t * a.abs().max(b.abs())
            }
        }
    }
}

/// Rows of `late` (a run started later) before it agrees with `full` on every row
/// from then on, matched by end time; `None` when its last row still disagrees or
/// the rows do not match.
fn settle(full: &Frame, late: &Frame, tol: Option<f64>) -> Option<usize> {
    let Some(&first) = late.end_ts().first() else {
        return Some(0);
    };
    let offset = full.end_ts().partition_point(|&t| t < first);
    let n = late.n_rows();
    if full.n_rows() < offset + n
        || full.end_ts()[offset..offset + n] != *late.end_ts()
        || full.features() != late.features()
        || full.assets() != late.assets()
    {
        return None;
    }
    let mut last_bad = None;
    for r in 0..n {
        let bad = (0..late.n_features()).any(|f| {
            let (x, y) = (
                full.feature_at(f).row(offset + r),
                late.feature_at(f).row(r),
            );
            x.iter().zip(y).any(|(&a, &b)| !agree(a, b, tol))
        });
        if bad {
            last_bad = Some(r);
        }
    }
    match last_bad {
        None => Some(0),
        Some(r) if r + 1 == n => None,
        Some(r) => Some(r + 1),
    }
}

fn run_from(subject: &Subject<'_>, start: i64) -> Result<Outputs> {
    let mut dag = subject.dag()?;
    dag.reset();
    let opts = RunOptions {
        up_to: None,
        parallel: false,
        keep: Keep::All,
    };
    let r = dag.run(
        &RunContext::new(Phase::Predict, Some((start, i64::MAX))),
        &opts,
    )?;
    Ok(without_targets(&r.outputs, subject.targets()))
}

/// The warm-up of every node (see the module doc), from `starts` start points
/// spread over the first half of `bars` (the bar end times of the data), with
/// `tolerance` as the relative tolerance.
///
/// # Errors
/// A node's error in any run.
pub fn warm_up(
    subject: &Subject<'_>,
    bars: &[i64],
    starts: usize,
    tolerance: f64,
) -> Result<Vec<WarmUp>> {
    let Some(&first) = bars.first() else {
        return Ok(Vec::new());
    };
    let full = run_from(subject, first)?;
    let mut at: Vec<i64> = (1..=starts)
        .map(|i| bars[(i * bars.len() / (2 * starts + 1)).min(bars.len() - 1)])
        .filter(|&t| t > first)
        .collect();
    at.dedup();
    let mut report: Vec<WarmUp> = subject
        .order()
        .iter()
        .map(|id| WarmUp {
            node: id.clone(),
            exact: Some(0),
            within: Some(0),
            tolerance,
        })
        .collect();
    for &start in &at {
        let late = run_from(subject, start)?;
        for w in &mut report {
            let (Some(a), Some(b)) = (full.get(&w.node), late.get(&w.node)) else {
                continue;
            };
            for (port, fa) in a {
                let Some(fb) = b.get(port) else {
                    w.exact = None;
                    w.within = None;
                    continue;
                };
                let e = settle(fa, fb, None);
                let t = settle(fa, fb, Some(tolerance));
                w.exact = w.exact.zip(e).map(|(x, y)| x.max(y));
                w.within = w.within.zip(t).map(|(x, y)| x.max(y));
            }
        }
    }
    Ok(report)
}
