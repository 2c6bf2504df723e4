//! Live systems: the same loop as a replay, fed by rows as they arrive.
//!
//! A live system trades a universe and a session declared up front (`assets` of
//! its source, `[system] start` and `end`), over a [`GrowingSource`] that a
//! [`Feed`] fills while it runs. Before each decision it waits, in real time, until
//! every data bar of the decision's interval has arrived, or is known not to be
//! coming (`[system.clock] missing`). The decision then reads the data **as of the
//! knowledge time at which its last bar arrived** (the cut-off), on a simulated
//! clock set to the time the decision is taken in data terms: the later of its grid
//! time and the cut-off plus the clock's `delay`.
//!
//! Every quantity there comes from the rows' knowledge times, none from the wall
//! clock, so a replay of the stored rows after the fact (no feed: every row already
//! there, but none read before it was known) decides exactly alike, bar by bar: that
//! is what `kaizenflow reconcile` checks. The wall clock only says how long the
//! system waited and how late it was (the live log), never what it decided.
//!
//! A bar is *missing* when it has not arrived by `timeout` after its end, or (with
//! `missing = "skip"`) by `grace` after a later bar arrived; the system then stops
//! (the default) or decides without it as of that time. Concluding that a bar is
//! missing needs the feed's clock to be `grace` past that time, so that no write
//! still committing could be dated before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kf_config::Config;
use kf_datapull::{Clock, Feed, GrowingSource, Historical, MarketData, Query, Source};
use kf_frame::{Frame, Timestamp};

use crate::engine::System;
use crate::error::{Result, SystemError};
use crate::learning::States;
use crate::market::{Market, ceil_to};
use crate::spec::{ClockSpec, Missing, SystemSpec};

/// A decision's interval, settled: the knowledge cut-off it reads as of, and how
/// many of its bars it goes without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) cut: i64,
    pub(crate) missing: u64,
}

/// Waits (through `feed`; with none, the rows are final) until every data bar
/// ending in `(prev, tau]` has arrived or is known to be missing.
///
/// # Errors
/// A missing bar under `missing = "stop"`, naming it; the feed's errors.
pub(crate) fn settle(
    source: &GrowingSource,
    clock: &ClockSpec,
    prev: i64,
    tau: i64,
    mut feed: Option<&mut (dyn Feed + '_)>,
) -> Result<Settled> {
    let freq = source.freq();
    let first = (prev.div_euclid(freq) + 1).saturating_mul(freq);
    loop {
        let now = match feed.as_deref_mut() {
            Some(f) => Some(f.sync(source)?),
            None => None,
        };
        let mut settled = Settled {
            cut: i64::MIN,
            missing: 0,
        };
        let mut wake: Option<i64> = None;
        let mut e = first;
        while e <= tau {
            let deadline = e.saturating_add(clock.timeout);
            let give_up = match clock.missing {
                Missing::Skip => source
                    .next_arrival_after(e)
                    .map_or(deadline, |g| g.saturating_add(clock.grace).min(deadline)),
                Missing::Stop => deadline,
            };
            match source.arrival(e) {
                Some(a) if clock.missing == Missing::Stop || a <= give_up => {
                    settled.cut = settled.cut.max(a);
                }
                arrived => {
                    // Here too late (then sure), or not here: missing once no write
                    // still committing could be dated before the give-up time.
                    let sure = arrived.is_some()
                        || now.is_none_or(|n| n >= give_up.saturating_add(clock.grace));
                    if !sure {
                        let at = give_up.saturating_add(clock.grace);
                        wake = Some(wake.map_or(at, |w| w.min(at)));
                    } else if clock.missing == Missing::Skip {
                        settled.missing += 1;
                        settled.cut = settled.cut.max(give_up);
                    } else {
                        return Err(SystemError::Invalid(format!(
                            "the bar ending {} has not arrived from {} by {} ([system.clock] \
                             timeout after its end), and [system.clock] missing = \"stop\": \
                             run the same command again once the feed has it (the run \
                             resumes from its last decision), or set missing = \"skip\" to \
                             decide without it",
                            Timestamp(e),
                            source.describe(),
                            Timestamp(deadline)
                        )));
                    }
                }
            }
            e = e.saturating_add(freq);
        }
        match (wake, feed.as_deref_mut()) {
            (None, _) | (_, None) => return Ok(settled),
            (Some(at), Some(f)) => f.wait(at)?,
        }
    }
}

/// The view a live system's decisions read: the growing source as of the cut-off,
/// up to the clock's time.
#[derive(Debug)]
struct LiveView {
    source: Arc<GrowingSource>,
    clock: Arc<dyn Clock>,
    cut: Arc<AtomicI64>,
}

/// The view of `source` that a live loop on `clock` reads as of `cut`.
pub(crate) fn view(
    source: Arc<GrowingSource>,
    clock: Arc<dyn Clock>,
    cut: &Arc<AtomicI64>,
) -> Arc<dyn MarketData> {
    Arc::new(LiveView {
        source,
        clock,
        cut: Arc::clone(cut),
    })
}

impl MarketData for LiveView {
    fn describe(&self) -> String {
        format!("live {}", self.source.describe())
    }

    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> kf_datapull::Result<Frame> {
        self.source.load(&Query {
            start: Some(start.nanos()),
            end: Some(end.nanos().min(self.clock.now())),
            assets: assets.map(<[String]>::to_vec),
            columns: columns.map(<[String]>::to_vec),
            as_of: Some(self.cut.load(Ordering::SeqCst)),
        })
    }

    fn clock(&self) -> Option<Arc<dyn Clock>> {
        Some(Arc::clone(&self.clock))
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(self.source.feature_names().to_vec())
    }

    fn unclocked(&self) -> kf_datapull::Result<Arc<dyn MarketData>> {
        Ok(Arc::new(Historical::new(
            Arc::clone(&self.source) as Arc<dyn Source>
        )))
    }
}

/// The decision times of a live session: every multiple of `[system] bar` from
/// `start` to `end`.
fn session_grid(spec: &SystemSpec) -> Result<Vec<i64>> {
    let (Some(start), Some(end)) = (spec.start, spec.end) else {
        return Err(SystemError::Invalid(
            "a live system needs its session before the data comes: set [system] start and \
             end (the first and last decision times)"
                .into(),
        ));
    };
    let mut grid = Vec::new();
    let mut t = ceil_to(start, spec.bar);
    while t <= end {
        grid.push(t);
        t = t.saturating_add(spec.bar);
    }
    if grid.is_empty() {
        return Err(SystemError::Invalid(format!(
            "[system] start ({}) and end ({}) hold no decision time",
            Timestamp(start),
            Timestamp(end)
        )));
    }
    Ok(grid)
}

impl<'a> System<'a> {
    /// Builds the live system `config` describes over `source` (which a feed fills
    /// while it runs): the universe and bar period are the source's, the decision
    /// times the session that `[system] start` and `end` declare. The configured
    /// `[market_data]` is built (and checked) but not read.
    ///
    /// # Errors
    /// Those of [`System::from_config_with`]; no session; a price or volume column
    /// the source lacks.
    pub fn build_live(
        types: &'a crate::Registries,
        config: &'a Config,
        states: Option<States>,
        source: Arc<GrowingSource>,
    ) -> Result<System<'a>> {
        let src = Arc::clone(&source);
        let mut system = System::build_on(types, config, states, move |_, spec| {
            for c in std::iter::once(&spec.price).chain(spec.volume.as_ref()) {
                if !src.feature_names().contains(c) {
                    return Err(SystemError::Invalid(format!(
                        "[system] price/volume `{c}` is not a column of {} ({})",
                        src.describe(),
                        src.feature_names().join(", ")
                    )));
                }
            }
            let data: Arc<dyn MarketData> =
                Arc::new(Historical::new(Arc::clone(&src) as Arc<dyn Source>));
            let market = Market::declared(data, src.assets().to_vec(), src.freq(), spec)?;
            Ok((market, session_grid(spec)?))
        })?;
        system.market_data = Arc::clone(&system.market.data);
        system.live = Some(source);
        Ok(system)
    }

    /// Runs this live system in the durable folder `dir` (see
    /// [`System::run_durable`]), waiting on `feed` for each bar, and calls
    /// `observe` after each decision is recorded (its journal record synced, its
    /// checkpoint replaced: the order exists). Called again on the same folder, it
    /// resumes after the last recorded decision, deciding the bars that arrived
    /// meanwhile as a replay would, then goes on live.
    ///
    /// # Errors
    /// Not a live system ([`System::build_live`]); a missing bar under
    /// `missing = "stop"`; the feed's errors (a database gone for longer than the
    /// feed reconnects); those of [`System::run_durable`]. Whatever stops it, every
    /// decision recorded stays, and the same call resumes.
    pub fn run_live(
        &mut self,
        dir: &std::path::Path,
        feed: &mut dyn Feed,
        observe: &mut dyn FnMut(crate::durable::Recorded),
    ) -> Result<(crate::SystemRun, crate::durable::Resumed)> {
        if self.live.is_none() {
            return Err(SystemError::Invalid(
                "not a live system: build it with System::build_live".into(),
            ));
        }
        self.run_recorded(dir, Some(feed), Some(observe))
    }

    /// Replays this live system over the rows its source holds now, as final
    /// (what `kaizenflow reconcile` compares a live run with), recording it in the
    /// durable folder `dir` as the live run records itself.
    ///
    /// # Errors
    /// Not a live system; a missing bar under `missing = "stop"`; those of
    /// [`System::run_durable`].
    pub fn replay_live(
        &mut self,
        dir: &std::path::Path,
    ) -> Result<(crate::SystemRun, crate::durable::Resumed)> {
        if self.live.is_none() {
            return Err(SystemError::Invalid(
                "not a live system: build it with System::build_live".into(),
            ));
        }
        self.run_recorded(dir, None, None)
    }

    /// The live source, when this is a live system.
    pub fn live_source(&self) -> Option<&Arc<GrowingSource>> {
        self.live.as_ref()
    }
}
