//! The fill rule and its audit: orders wait in a queue until the first decision bar
//! that starts at or after their decision time, and every run counts what it used
//! before (or later than) it should have.
//!
//! The event loop ([`crate::System`]) and the research evaluator
//! ([`crate::research`]) share these functions, so that both decide at the same
//! times and fill the same orders over the same bars.

/// The audit of a run's decisions and fills: what `kaizenflow check` asserts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Audit {
    /// Decisions made.
    pub decisions: u64,
    /// Decisions made later than their bar plus the declared delay: the feed was
    /// later than it says.
    pub late_decisions: u64,
    /// Price rows of a fill interval not yet known when it was filled (left out of
    /// the fill and the marks).
    pub late_price_rows: u64,
    /// Forecast rows used before their knowledge time: future peeking.
    pub early_forecasts: u64,
    /// Fills that used a price row ending at or before their order's decision time:
    /// a price from before the order existed.
    pub early_fills: u64,
    /// Price rows of fills that started before their order's decision time and
    /// ended after it: data bars that straddle the decision grid (not aligned with
    /// `[system] bar`). None when the data's bars divide the decision bars.
    pub straddling_rows: u64,
    /// Bars a live system decided without, having waited their timeout (or for a
    /// later bar and the grace) under `[system.clock] missing = "skip"`.
    #[serde(default)]
    pub missing_bars: u64,
    /// The first violation, said in full.
    pub first_violation: Option<String>,
}

impl Audit {
    /// Whether nothing was used before it was known.
    pub fn passed(&self) -> bool {
        self.early_forecasts == 0 && self.early_fills == 0
    }

    pub(crate) fn violation(&mut self, what: impl FnOnce() -> String) {
        if self.first_violation.is_none() {
            self.first_violation = Some(what());
        }
    }
}

/// An order waiting for its bar: decided at `decided`, for the bar `ts`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Queued {
    pub(crate) ts: i64,
    pub(crate) decided: i64,
    pub(crate) quantity: Vec<f64>,
}

/// Sums into `pending` the queued orders decided at or before `start` (they fill
/// over the bar starting at `start`) and removes them; zero when none is due. The
/// removed orders' vectors go to `spare`, for the next decisions to reuse.
/// Returns the latest due order's bar and decision time.
pub(crate) fn take_due(
    queue: &mut std::collections::VecDeque<Queued>,
    start: i64,
    pending: &mut [f64],
    spare: &mut Vec<Vec<f64>>,
) -> Option<(i64, i64)> {
    let mut due = None;
    let mut first = true;
    while queue.front().is_some_and(|q| q.decided <= start) {
        let Some(q) = queue.pop_front() else { break };
        if first {
            pending.copy_from_slice(&q.quantity);
            first = false;
        } else {
            pending
                .iter_mut()
                .zip(&q.quantity)
                .for_each(|(p, x)| *p += x);
        }
        due = Some((q.ts, q.decided));
        spare.push(q.quantity);
    }
    if first {
        pending.fill(0.0);
    }
    due
}

/// Holdings plus the quantities still queued: the position the processor's new
/// orders start from, so that an order waiting for its bar is not placed again.
pub(crate) fn committed(
    holdings: &[f64],
    queue: &std::collections::VecDeque<Queued>,
    out: &mut [f64],
) {
    out.copy_from_slice(holdings);
    for q in queue {
        out.iter_mut().zip(&q.quantity).for_each(|(o, x)| *o += x);
    }
}

/// Of the data rows `rows` (indices into the price times `times`, with knowledge
/// times `known`) that end after `prev`, the one the feed releases last, and when:
/// its knowledge time plus `delay_of(its end)`.
pub(crate) fn known_last(
    times: &[i64],
    known: &[i64],
    rows: std::ops::Range<usize>,
    prev: i64,
    delay_of: impl Fn(i64) -> i64,
) -> Option<(usize, i64)> {
    rows.filter(|&r| times[r] > prev)
        .map(|r| (r, known[r].saturating_add(delay_of(times[r]))))
        .max_by_key(|&(r, at)| (at, r))
}
