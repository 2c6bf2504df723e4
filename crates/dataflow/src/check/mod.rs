//! `kaizenflow check`'s engine: one DAG run in batch, under random tilings, streamed
//! one bar at a time, replayed on a simulated clock, and perturbed under the config's
//! own learning style ([`causality_checks`]), with a verdict per check that names the
//! first diverging or peeking node; and the warm-up report ([`warm_up`]).

mod learning;
mod warmup;

pub use learning::{causality_checks, in_sample};
pub use warmup::{WarmUp, warm_up};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kf_datapull::{Clock, MarketData};

use crate::dag::{Dag, Keep, RunOptions};
use crate::error::{DataflowError, Result};
use crate::node::{DF_OUT, NodeId, Phase, RunContext, Targets};
use crate::peeking::{reads_target, without_targets};
use crate::replay::{ReplayOptions, knowledge_audit, replay};
use crate::runner::{RunSpec, fit_over, folds};
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
    /// Accept an in-sample evaluation (a `fit_predict` that predicts rows it was
    /// fitted on) for research, instead of failing it.
    pub allow_in_sample: bool,
    /// Checks the user asked to skip, by name ([`CHECK_NAMES`]).
    pub skip: Vec<String>,
}

/// The names `--skip` takes: `tiling`, `streaming`, `perturbation` (every causality
/// check of the learning style), `replay` and `system`.
pub const CHECK_NAMES: [&str; 5] = ["tiling", "streaming", "perturbation", "replay", "system"];

impl CheckOptions {
    /// Whether the check `name` was asked to be skipped.
    pub fn skips(&self, name: &str) -> bool {
        self.skip.iter().any(|s| s == name)
    }
}

/// The line a check skipped on request prints.
pub fn skipped(name: &str) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        verdict: Verdict::Skipped("asked by --skip".into()),
        elapsed: Duration::ZERO,
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            tilings: 8,
            perturbations: 3,
            seed: 0,
            max_threads: 4,
            allow_in_sample: false,
            skip: Vec::new(),
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
    /// It was not run, because the user asked (never a pass: reported as such).
    Skipped(String),
    /// It does not apply to this DAG (the message says why), so it was not run.
    NotApplicable(String),
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
            Verdict::Skipped(why) => write!(f, "skip  {} ({why})", self.name),
            Verdict::NotApplicable(why) => write!(f, "n/a   {} ({why})", self.name),
        }
    }
}

/// A node that learns, as the checks report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learner {
    /// Its id.
    pub id: NodeId,
    /// Its type.
    pub kind: String,
    /// Rows ahead of each row its fit's target lies ([`crate::Node::fit_horizon`]).
    pub fit_horizon: usize,
    /// The forward targets it learns to predict (its fit-only inputs that are
    /// targets), with their horizons.
    pub targets: Vec<(String, usize)>,
}

/// A DAG made fresh for each run (by the caller's factory), with the learning style
/// of its config and a fitted state for the checks that run the predict phase.
pub struct Subject<'a> {
    make: &'a (dyn Fn() -> Result<Dag> + Sync),
    /// The node cache of the batch run.
    cache: Option<crate::cache::CacheHandle>,
    states: BTreeMap<NodeId, Vec<u8>>,
    order: Vec<NodeId>,
    cross_sectional: bool,
    learners: Vec<Learner>,
    targets: Targets,
    /// For each node that does not learn and has a forward target among its inputs,
    /// the first such target: named when that node diverges.
    readers: BTreeMap<NodeId, String>,
    spec: Option<RunSpec>,
}

impl<'a> Subject<'a> {
    /// Makes one DAG with `make` and, when a node learns, fits it in one batch call
    /// over all the data; every later run starts from that fitted state. The
    /// perturbation test then checks the predict phase only (see
    /// [`Subject::with_runner`] to check the learning too).
    ///
    /// # Errors
    /// The build's or the fit's errors.
    pub fn fit(make: &'a (dyn Fn() -> Result<Dag> + Sync)) -> Result<Subject<'a>> {
        Subject::build(make, None)
    }

    /// As [`Subject::fit`], with `spec` (the config's `[run]`) as the learning style:
    /// the fitted state is that of the runner's first fit, and the causality checks
    /// rerun the whole runner, fits included ([`causality_checks`]).
    ///
    /// # Errors
    /// The build's or the fit's errors; [`DataflowError::Invalid`] when a node learns
    /// and the runner fits nothing (a `fit_predict` without `fit`), naming the node.
    pub fn with_runner(
        make: &'a (dyn Fn() -> Result<Dag> + Sync),
        spec: &RunSpec,
    ) -> Result<Subject<'a>> {
        Subject::build(make, Some(spec.clone()))
    }

    fn build(
        make: &'a (dyn Fn() -> Result<Dag> + Sync),
        spec: Option<RunSpec>,
    ) -> Result<Subject<'a>> {
        let mut dag = make()?;
        let order = dag.topological_order();
        let mut learners = Vec::new();
        let mut cross_sectional = false;
        for id in &order {
            let node = dag.node(id.as_str())?;
            if node.learns() {
                learners.push(Learner {
                    id: id.clone(),
                    kind: node.kind().to_string(),
                    fit_horizon: node.fit_horizon(),
                    targets: Vec::new(),
                });
            }
            cross_sectional |= node.cross_sectional();
        }
        if let Some(first) = learners.first() {
            let ctx = match &spec {
                None => RunContext::new(Phase::Fit, None),
                Some(spec) => first_fit(spec, first)?,
            };
            dag.reset();
            dag.run(&ctx, &RunOptions::default())?;
        }
        let targets = dag.targets();
        let mut readers = BTreeMap::new();
        if let Ok(schema) = dag.features() {
            for l in &mut learners {
                let fit_only = dag.node(l.id.as_str())?.fit_only_inputs();
                l.targets = dag
                    .input_features(&schema, &l.id)
                    .into_iter()
                    .filter(|f| fit_only.contains(f))
                    .filter_map(|f| targets.get(&f).map(|t| (f.clone(), t.horizon)))
                    .collect();
            }
            for id in &order {
                if let Some(t) = crate::peeking::target_read(&dag, &schema, id, &targets) {
                    readers.insert(id.clone(), t);
                }
            }
        }
        Ok(Subject {
            make,
            cache: None,
            states: dag.save_states()?,
            targets,
            readers,
            order,
            cross_sectional,
            learners,
            spec,
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

    /// A fresh DAG, as the factory makes it (nothing fitted).
    ///
    /// # Errors
    /// The factory's errors.
    pub fn fresh(&self) -> Result<Dag> {
        (self.make)()
    }

    /// The nodes in topological order.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// The nodes that learn, in topological order.
    pub fn learners(&self) -> &[Learner] {
        &self.learners
    }

    /// The DAG's forward targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The learning style, when given ([`Subject::with_runner`]).
    pub fn spec(&self) -> Option<&RunSpec> {
        self.spec.as_ref()
    }

    /// The frame the checks cut into tiles and bars: the first node's (a source's)
    /// `df_out` in `outputs`.
    pub fn input<'o>(&self, outputs: &'o Outputs) -> Option<&'o kf_frame::Frame> {
        self.order
            .iter()
            .find_map(|id| outputs.get(id).and_then(|p| p.get(DF_OUT)))
    }

    fn run(&self, tiling: &Tiling) -> Result<Outputs> {
        // The batch run (the reference every check compares with) may come from the
        // node cache; tiled runs are what is checked, so they always compute.
        if let Some(cache) = self
            .cache
            .as_ref()
            .filter(|_| tiling.cuts.is_empty() && tiling.assets.is_none())
        {
            let make = || -> Result<Dag> {
                let mut dag = self.dag()?;
                dag.use_cache(Some(cache.clone()));
                Ok(dag)
            };
            return run_tiled(&make, Phase::Predict, tiling, &Keep::All);
        }
        run_tiled(&|| self.dag(), Phase::Predict, tiling, &Keep::All)
    }

    /// Takes the batch run's node outputs from `cache` (the checked runs compute).
    pub fn with_cache(mut self, cache: Option<crate::cache::CacheHandle>) -> Subject<'a> {
        self.cache = cache;
        self
    }

    /// Every node's outputs over `tiling`'s intervals through the streaming fast path
    /// ([`Dag::step`]), each node's rows of every step joined; `None` when the DAG
    /// cannot step (with the nodes that lack the fast path).
    fn stepped(&self, tiling: &Tiling) -> Result<std::result::Result<Outputs, String>> {
        let mut dag = self.dag()?;
        if !dag.can_step() {
            return Ok(Err(
                match dag.step(&RunContext::new(Phase::Predict, None)) {
                    Err(e) => e.to_string(),
                    Ok(()) => "the DAG cannot step".to_string(),
                },
            ));
        }
        let mut chunks: BTreeMap<&NodeId, Vec<kf_frame::Frame>> = BTreeMap::new();
        for iv in tiling.intervals() {
            dag.step(&RunContext::new(Phase::Predict, Some(iv)))?;
            for id in &self.order {
                let rows = dag.stepped(id.as_str())?;
                let seen = chunks.entry(id).or_default();
                // Empty steps add nothing but the first (which carries the layout).
                if rows.n_rows() > 0 || seen.is_empty() {
                    seen.push(rows.to_frame()?);
                }
            }
        }
        let mut out = Outputs::new();
        for (id, frames) in chunks {
            let whole = kf_frame::Frame::concat(&frames)?;
            out.insert(id.clone(), crate::node::single_output(whole));
        }
        Ok(Ok(out))
    }
}

/// The call that fits the state the predict-phase checks start from: the runner's
/// first fit.
fn first_fit(spec: &RunSpec, learner: &Learner) -> Result<RunContext> {
    Ok(match spec {
        RunSpec::FitPredict { fit: Some(f), .. } => fit_over(*f),
        RunSpec::FitPredict { fit: None, .. } => {
            return Err(DataflowError::invalid(format!(
                "node `{}` ({}) learns, but `[run]` (fit_predict) gives no `fit` interval, so \
                 it would predict with nothing learned: give `[run] fit = [\"START\", \"END\"]` \
                 and a later `predict`, or use `type = \"rolling\"` (walk-forward)",
                learner.id, learner.kind
            )));
        }
        RunSpec::Rolling(r) => fit_over(r.fit_span(r.start)),
        RunSpec::CrossValidation(cv) => match folds(cv)?.first() {
            Some(fold) => cv.fit_context(fold),
            None => RunContext::new(Phase::Fit, Some((cv.start, cv.end))),
        },
    })
}

pub(crate) fn timed(name: String, f: impl FnOnce() -> Result<Verdict>) -> CheckResult {
    let start = Instant::now();
    let verdict = f().unwrap_or_else(|e| Verdict::Fail(format!("error: {e}")));
    CheckResult {
        name,
        verdict,
        elapsed: start.elapsed(),
    }
}

/// Compares two runs bit for bit, forward targets left out (see
/// [`without_targets`]); a diverging node that reads a forward target is told so.
fn compare(subject: &Subject<'_>, batch: &Outputs, other: &Outputs) -> Verdict {
    let targets = subject.targets();
    let (a, b) = (
        without_targets(batch, targets),
        without_targets(other, targets),
    );
    match first_divergence(subject.order(), &a, &b) {
        None => Verdict::Pass,
        Some(d) => {
            let hint = subject
                .readers
                .get(&d.node)
                .and_then(|name| Some(reads_target(name, targets.get(name)?)));
            Verdict::Fail(match hint {
                Some(h) => format!("{d}; {h}"),
                None => d.to_string(),
            })
        }
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

/// Runs the batch, tiling, streaming and causality checks ([`causality_checks`]) on
/// `subject`. Forward targets are left out of the bit-for-bit comparisons.
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
    let Some(input) = subject.input(&batch) else {
        return Ok((batch, results));
    };
    let times = input.end_ts().to_vec();
    let assets = input.assets().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    if opts.skips("tiling") {
        results.push(skipped("tiling"));
    }
    for k in (0..opts.tilings).filter(|_| !opts.skips("tiling")) {
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
            Ok(compare(subject, &batch, &subject.run(&t)?))
        }));
    }
    let streaming = Tiling {
        cuts: bar_cuts(&times, 1),
        assets: None,
        threads: 1,
    };
    if opts.skips("streaming") {
        results.push(skipped("streaming"));
    } else {
        results.push(timed(
            format!("streaming: {} one-bar steps", times.len()),
            || Ok(compare(subject, &batch, &subject.run(&streaming)?)),
        ));
        // The same bars through the fast path, whose kernels write into reused
        // buffers: it must give the same bits too.
        let start = Instant::now();
        let name = format!("fast streaming: {} one-bar Dag::step calls", times.len());
        results.push(match subject.stepped(&streaming) {
            Ok(Ok(out)) => CheckResult {
                name,
                verdict: compare(subject, &batch, &out),
                elapsed: start.elapsed(),
            },
            Ok(Err(why)) => CheckResult {
                name: "fast streaming".into(),
                verdict: Verdict::NotApplicable(why),
                elapsed: start.elapsed(),
            },
            Err(e) => CheckResult {
                name,
                verdict: Verdict::Fail(e.to_string()),
                elapsed: start.elapsed(),
            },
        });
    }
    results.extend(causality_checks(subject, opts, &batch));
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
            Ok(compare(subject, batch, &r.outputs))
        },
    )
}
