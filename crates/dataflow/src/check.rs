//! `kaizenflow check`'s engine: one DAG run in batch, under random tilings, streamed
//! one bar at a time, replayed on a simulated clock, and perturbed, with a verdict
//! per check that names the first diverging or peeking node.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kf_datapull::{Clock, MarketData};

use crate::dag::{Dag, Keep};
use crate::error::Result;
use crate::node::{DF_OUT, NodeId, Phase, RunContext};
use crate::peeking::{perturbation_test, spread_times};
use crate::replay::{ReplayOptions, knowledge_audit, replay};
use crate::tiling::{Outputs, Tiling, bar_cuts, first_divergence, run_tiled};

/// What to check, and how hard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// How many random tilings.
    pub tilings: usize,
    /// How many perturbation times.
    pub perturbations: usize,
    /// The seed of the random tilings.
    pub seed: u64,
    /// The most threads a random tiling uses.
    pub max_threads: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            tilings: 8,
            perturbations: 3,
            seed: 0,
            max_threads: 4,
        }
    }
}

/// The verdict of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It holds.
    Pass,
    /// It does not; the message names the node and the first difference.
    Fail(String),
}

/// One check and its verdict.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// What was checked (`batch`, `tiling 3: ...`, `streaming`, ...).
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// How long it took.
    pub elapsed: Duration,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        match &self.verdict {
            Verdict::Pass => write!(f, "pass  {} ({ms:.0} ms)", self.name),
            Verdict::Fail(why) => write!(f, "FAIL  {} ({ms:.0} ms): {why}", self.name),
        }
    }
}

/// A DAG made fresh for each run (by the caller's factory), fitted once.
pub struct Subject<'a> {
    make: &'a (dyn Fn() -> Result<Dag> + Sync),
    states: BTreeMap<NodeId, Vec<u8>>,
    order: Vec<NodeId>,
    cross_sectional: bool,
}

impl<'a> Subject<'a> {
    /// Makes one DAG with `make` and, when a node learns, fits it in one batch call
    /// over all the data; every later run starts from that fitted state.
    ///
    /// # Errors
    /// The build's or the fit's errors.
    pub fn fit(make: &'a (dyn Fn() -> Result<Dag> + Sync)) -> Result<Subject<'a>> {
        let mut dag = make()?;
        let order = dag.topological_order();
        let mut learns = false;
        let mut cross_sectional = false;
        for id in &order {
            let node = dag.node(id.as_str())?;
            learns |= node.learns();
            cross_sectional |= node.cross_sectional();
        }
        if learns {
            dag.run(&RunContext::new(Phase::Fit, None), &Default::default())?;
        }
        Ok(Subject {
            make,
            states: dag.save_states()?,
            order,
            cross_sectional,
        })
    }

    /// A fresh DAG in the fitted state.
    ///
    /// # Errors
    /// The factory's errors.
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = (self.make)()?;
        dag.load_states(&self.states)?;
        Ok(dag)
    }

    /// The nodes in topological order.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// The frame the checks cut into tiles and bars: the first node's (a source's)
    /// `df_out` in `outputs`.
    pub fn input<'o>(&self, outputs: &'o Outputs) -> Option<&'o kf_frame::Frame> {
        self.order
            .iter()
            .find_map(|id| outputs.get(id).and_then(|p| p.get(DF_OUT)))
    }

    fn run(&self, tiling: &Tiling) -> Result<Outputs> {
        run_tiled(&|| self.dag(), Phase::Predict, tiling, &Keep::All)
    }
}

fn timed(name: String, f: impl FnOnce() -> Result<Verdict>) -> CheckResult {
    let start = Instant::now();
    let verdict = f().unwrap_or_else(|e| Verdict::Fail(format!("error: {e}")));
    CheckResult {
        name,
        verdict,
        elapsed: start.elapsed(),
    }
}

fn compare(order: &[NodeId], batch: &Outputs, other: &Outputs) -> Verdict {
    match first_divergence(order, batch, other) {
        None => Verdict::Pass,
        Some(d) => Verdict::Fail(d.to_string()),
    }
}

/// A random tiling of `times` and `assets`: 1 to 20 cuts anywhere between the first
/// and last bar (on a bar, between bars, or inside a resampling bin), asset tiles
/// when `asset_tiles`, and 1 to `max_threads` threads.
pub fn random_tiling(
    rng: &mut impl Rng,
    times: &[i64],
    assets: &[String],
    asset_tiles: bool,
    max_threads: usize,
) -> Tiling {
    let mut cuts: Vec<i64> = Vec::new();
    if times.len() > 1 {
        let k = rng.random_range(1..=20.min(times.len()));
        for _ in 0..k {
            let i = rng.random_range(0..times.len() - 1);
            let gap = (times[i + 1] - times[i]).max(1);
            cuts.push(times[i] + rng.random_range(0..gap));
        }
        cuts.sort_unstable();
        cuts.dedup();
    }
    let tiles = (asset_tiles && assets.len() > 1).then(|| {
        let k = rng.random_range(1..=4.min(assets.len()));
        let mut bounds: Vec<usize> = (0..k - 1)
            .map(|_| rng.random_range(1..assets.len()))
            .collect();
        bounds.push(0);
        bounds.push(assets.len());
        bounds.sort_unstable();
        bounds.dedup();
        bounds
            .windows(2)
            .map(|w| assets[w[0]..w[1]].to_vec())
            .collect()
    });
    Tiling {
        cuts,
        assets: tiles,
        threads: rng.random_range(1..=max_threads.max(1)),
    }
}

/// Runs the batch, tiling, streaming and perturbation checks on `subject`.
///
/// # Errors
/// Only when the batch run itself fails (every other failure is a verdict).
pub fn run_checks(
    subject: &Subject<'_>,
    opts: &CheckOptions,
) -> Result<(Outputs, Vec<CheckResult>)> {
    let mut results = Vec::new();
    let start = Instant::now();
    let batch = subject.run(&Tiling::batch())?;
    results.push(CheckResult {
        name: format!("batch: {} nodes", batch.len()),
        verdict: Verdict::Pass,
        elapsed: start.elapsed(),
    });
    let order = subject.order();
    let Some(input) = subject.input(&batch) else {
        return Ok((batch, results));
    };
    let times = input.end_ts().to_vec();
    let assets = input.assets().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    for k in 0..opts.tilings {
        let t = random_tiling(
            &mut rng,
            &times,
            &assets,
            !subject.cross_sectional,
            opts.max_threads,
        );
        let name = format!(
            "tiling {k}: {} time tiles, {} asset tiles, {} threads",
            t.cuts.len() + 1,
            t.assets.as_ref().map_or(1, Vec::len),
            t.threads
        );
        results.push(timed(name, || {
            Ok(compare(order, &batch, &subject.run(&t)?))
        }));
    }
    let streaming = Tiling {
        cuts: bar_cuts(&times, 1),
        assets: None,
        threads: 1,
    };
    results.push(timed(
        format!("streaming: {} one-bar steps", times.len()),
        || Ok(compare(order, &batch, &subject.run(&streaming)?)),
    ));
    let at = spread_times(input, opts.perturbations);
    results.push(timed(format!("perturbation at {} times", at.len()), || {
        Ok(
            match perturbation_test(&|| subject.dag(), Phase::Predict, &at)? {
                None => Verdict::Pass,
                Some(p) => Verdict::Fail(p.to_string()),
            },
        )
    }));
    Ok((batch, results))
}

/// Replays `subject`'s DAG, built over `view` by `make_on` (with the fitted state
/// loaded), one bar of `bars` at a time on `clock`, and checks that it gives the
/// batch outputs and that no row is used before it is known.
pub fn replay_check(
    subject: &Subject<'_>,
    make_on: &dyn Fn(Arc<dyn MarketData>) -> Result<Dag>,
    view: Arc<dyn MarketData>,
    clock: &Arc<dyn Clock>,
    bars: &[i64],
    batch: &Outputs,
) -> CheckResult {
    timed(
        format!("replay: {} bars, knowledge-time audit", bars.len()),
        || {
            let mut dag = make_on(Arc::clone(&view))?;
            dag.load_states(&subject.states)?;
            dag.reset();
            let r = replay(
                &mut dag,
                Phase::Predict,
                view.as_ref(),
                clock,
                bars,
                &Keep::All,
                ReplayOptions::default(),
            )?;
            if let Some(late) = knowledge_audit(subject.order(), batch, &r) {
                return Ok(Verdict::Fail(late.to_string()));
            }
            Ok(compare(subject.order(), batch, &r.outputs))
        },
    )
}
