//! The replayed run and the knowledge-time audit.
//!
//! A replayed run is the streaming runner driven by a clock: for each bar, the
//! clock advances to the bar's end, the runner waits until the market data view
//! knows the bar (a [`kf_datapull::Replayed`] view releases rows by knowledge time),
//! and only then runs one step of the DAG. The clock's time at that moment is the
//! step's decision time `τ`, recorded for every output row the step produced. On a
//! [`kf_datapull::SimulatedClock`] waiting jumps the clock, so a day of minutes
//! replays in milliseconds, with the same results as a real-time replay.

use std::collections::BTreeMap;
use std::sync::Arc;

use kf_datapull::{Clock, MarketData};
use kf_frame::{Frame, Timestamp};

use crate::dag::{Dag, Keep, RunOptions};
use crate::error::{DataflowError, Result};
use crate::node::{NodeId, Phase, RunContext};
use crate::tiling::{Gathered, Outputs, Tiling, check_tilable};

/// How long a replayed run waits for a bar, and how often it looks again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Clock time to wait for a bar before failing (ns).
    pub timeout: i64,
    /// Clock time between looks for a bar that is late (ns).
    pub poll: i64,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            timeout: 3_600_000_000_000,
            poll: 1_000_000_000,
        }
    }
}

/// One output row of a replayed run and when it was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The row's end time.
    pub end_ts: i64,
    /// Its knowledge time, as the node reported it.
    pub knowledge_ts: i64,
    /// The decision time of the step that produced it.
    pub decided: i64,
}

/// What a replayed run produced.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Each kept node's outputs, every step joined. A node whose steps cannot be
    /// joined (it emitted a row twice, or out of order) is left out, and listed in
    /// `unjoinable`.
    pub outputs: Outputs,
    /// For each kept node, every output row (of its first port) in the order
    /// produced, with its decision time.
    pub decided: BTreeMap<NodeId, Vec<Decision>>,
    /// Nodes whose steps could not be joined, with the reason.
    pub unjoinable: Vec<(NodeId, String)>,
}

/// Replays `bars` (bar end times, increasing) through `dag` in `phase`, one bar per
/// step, reading market data through `view` and waiting on `clock`. Carried state
/// continues from what the DAG holds (reset it for a fresh run).
///
/// # Errors
/// A bar the view does not know within the timeout (naming the bar and the clock's
/// time), a node's error, or a DAG that cannot be streamed ([`check_tilable`]).
pub fn replay(
    dag: &mut Dag,
    phase: Phase,
    view: &dyn MarketData,
    clock: &Arc<dyn Clock>,
    bars: &[i64],
    keep: &Keep,
    opts: ReplayOptions,
) -> Result<Replay> {
    let tiling = Tiling {
        cuts: bars.to_vec(),
        assets: None,
        threads: 1,
    };
    check_tilable(dag, phase, &tiling)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| DataflowError::invalid(format!("cannot start the replay's runtime: {e}")))?;
    runtime.block_on(replay_async(dag, phase, view, clock, bars, keep, opts))
}

/// Waits on `clock` until `bar` has ended and `view` knows its row: the step a
/// replayed or live loop takes before using a bar.
///
/// # Errors
/// The bar is not known within `opts.timeout` of clock time (naming the bar and the
/// clock's time), or the view's read error.
pub async fn wait_for_bar(
    view: &dyn MarketData,
    clock: &Arc<dyn Clock>,
    bar: i64,
    opts: ReplayOptions,
) -> Result<()> {
    // A bar cannot be known before it ends.
    clock.sleep_until(bar).await;
    let deadline = clock.now().saturating_add(opts.timeout);
    let known = || -> Result<bool> {
        Ok(view
            .data_for_interval(Timestamp(bar), Timestamp(bar), None, None)?
            .n_rows()
            > 0)
    };
    if known()? {
        return Ok(());
    }
    // The view's own wait jumps straight to the bar's knowledge time. (It may report
    // a timeout for a bar it never gets, or have no clock; the loop below decides.)
    let _ = view.wait_for_bar(Timestamp(bar), opts.timeout).await;
    while !known()? {
        let now = clock.now();
        if now >= deadline {
            return Err(DataflowError::invalid(format!(
                "replay: the bar ending {} was not known by {} ({} s of clock time); the \
                 market data view has no such bar or releases it later than the timeout",
                Timestamp(bar),
                Timestamp(now),
                opts.timeout as f64 / 1e9
            )));
        }
        clock
            .sleep_until(now.saturating_add(opts.poll).min(deadline))
            .await;
    }
    Ok(())
}

async fn replay_async(
    dag: &mut Dag,
    phase: Phase,
    view: &dyn MarketData,
    clock: &Arc<dyn Clock>,
    bars: &[i64],
    keep: &Keep,
    opts: ReplayOptions,
) -> Result<Replay> {
    let run_opts = RunOptions {
        up_to: None,
        parallel: false,
        keep: keep.clone(),
    };
    let mut parts = Gathered::default();
    let mut decided: BTreeMap<NodeId, Vec<Decision>> = BTreeMap::new();
    let mut lo = i64::MIN;
    for &bar in bars {
        wait_for_bar(view, clock, bar, opts).await?;
        let tau = clock.now();
        let res = dag.run(&RunContext::new(phase, Some((lo, bar))), &run_opts)?;
        lo = bar.saturating_add(1);
        for (id, ports) in &res.outputs {
            if let Some(f) = ports.values().next() {
                decided.entry(id.clone()).or_default().extend(
                    f.end_ts()
                        .iter()
                        .zip(f.knowledge_ts())
                        .map(|(&end_ts, &knowledge_ts)| Decision {
                            end_ts,
                            knowledge_ts,
                            decided: tau,
                        }),
                );
            }
        }
        parts.push(res.outputs);
    }
    let mut outputs = Outputs::new();
    let mut unjoinable = Vec::new();
    for (id, joined) in parts.join(Frame::concat) {
        match joined {
            Ok(j) => {
                outputs.insert(id, j);
            }
            Err(e) => unjoinable.push((id, e.to_string())),
        }
    }
    Ok(Replay {
        outputs,
        decided,
        unjoinable,
    })
}

/// An output row used at a decision time earlier than its knowledge time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateRow {
    /// The node.
    pub node: NodeId,
    /// The row's end time.
    pub end_ts: i64,
    /// Its knowledge time (the later of the replay's and the batch run's claim).
    pub knowledge_ts: i64,
    /// The decision time at which the replay produced it.
    pub decided: i64,
}

impl std::fmt::Display for LateRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "future peeking: node `{}` produced its row ending {} at decision time {}, but \
             the row is known only at {}",
            self.node,
            Timestamp(self.end_ts),
            Timestamp(self.decided),
            Timestamp(self.knowledge_ts)
        )
    }
}

/// The knowledge-time audit: for each node in `order`, every row the replay produced
/// at decision time `τ` must be known by `τ`, by its own knowledge time and by the
/// knowledge time the batch run (`batch`, all data at once) gave the same row. The
/// second catches a node that, given all the data, uses rows a live run would not
/// yet have. Returns the first late row in `order`.
pub fn knowledge_audit(order: &[NodeId], batch: &Outputs, replay: &Replay) -> Option<LateRow> {
    for id in order {
        let Some(decided) = replay.decided.get(id) else {
            continue;
        };
        let claimed: BTreeMap<i64, i64> = batch
            .get(id)
            .and_then(|p| p.values().next())
            .map(|b| {
                b.end_ts()
                    .iter()
                    .copied()
                    .zip(b.knowledge_ts().iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        for d in decided {
            let known = d
                .knowledge_ts
                .max(claimed.get(&d.end_ts).copied().unwrap_or(i64::MIN));
            if known > d.decided {
                return Some(LateRow {
                    node: id.clone(),
                    end_ts: d.end_ts,
                    knowledge_ts: known,
                    decided: d.decided,
                });
            }
        }
    }
    None
}
