//! Runners: fit then predict over given intervals, rolling walk-forward,
//! time-series cross-validation with purging and embargo, and saving a fitted DAG.
//!
//! Every runner resets the DAG's carried state before each pass, and predicts with
//! what the last `fit` learned. Out-of-sample outputs of several passes are stitched
//! with [`Frame::concat`], so their time ranges never overlap.

use std::sync::Arc;

use kf_frame::Frame;

use crate::dag::{Dag, Keep, NodeTiming, RunOptions, RunResult};
use crate::error::{DataflowError, Result};
use crate::node::{DF_OUT, Phase, RunContext};
use crate::tiling::{Gathered, Outputs};

pub use crate::state::{load_states, read_states, save_states};

/// The frame on the DAG's single sink's `df_out`.
fn sink_frame(dag: &Dag, result: &RunResult) -> Result<Frame> {
    let sinks = dag.sinks();
    let [sink] = sinks.as_slice() else {
        return Err(DataflowError::invalid(format!(
            "this runner needs a DAG with one sink, but it has {}: {}",
            sinks.len(),
            sinks
                .iter()
                .map(|s| s.0.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    result
        .outputs
        .get(sink)
        .and_then(|p| p.get(DF_OUT))
        .cloned()
        .ok_or_else(|| DataflowError::invalid(format!("sink `{sink}` gave no `df_out`")))
}

/// What a runner returns: the output frame, every pass's per-node timings (in run
/// order), the last pass's kept outputs (for captures), and every kept node's
/// out-of-sample outputs stitched over the passes.
#[derive(Clone, Debug)]
pub struct RunnerOutput {
    /// The (stitched) output of the DAG's sink.
    pub frame: Frame,
    /// `(pass name, timings)` for each pass.
    pub passes: Vec<(String, Vec<NodeTiming>)>,
    /// The last pass's kept outputs, by node.
    pub last: RunResult,
    /// Each kept node's outputs over the rows the runner keeps (the predict span;
    /// each walk-forward step's `(t, t + freq]`; each fold's test span), stitched in
    /// time order: what `kaizenflow check` compares when it reruns the runner, and
    /// what model metrics are computed from. Only with [`Keep::All`] or
    /// [`Keep::Nodes`] (empty with [`Keep::Sinks`]: a run keeps its sink's frame in
    /// `frame`, and stitching more would hold every step's outputs).
    pub outputs: Outputs,
}

/// Every kept node's frames of one pass, cut to the pass's kept span `[lo, hi]`,
/// gathered into `parts` when the run keeps every node ([`Keep::All`]).
fn gather(parts: &mut Gathered, opts: &RunOptions, r: &RunResult, lo: i64, hi: i64) {
    if matches!(opts.keep, Keep::Sinks) {
        return;
    }
    let cut: Outputs = r
        .outputs
        .iter()
        .map(|(id, ports)| {
            let ports = ports
                .iter()
                .map(|(port, f)| (port.clone(), f.slice_time(lo, hi)))
                .collect();
            (id.clone(), ports)
        })
        .collect();
    parts.push(cut);
}

/// The gathered pieces, stitched node by node in time order.
fn stitch(parts: Gathered) -> Result<Outputs> {
    parts
        .join(Frame::concat)
        .map(|(id, joined)| Ok((id.clone(), joined.map_err(|e| e.in_node(&id, "passes"))?)))
        .collect()
}

/// One pass: reset, then run `phase` over `interval`.
fn pass(dag: &mut Dag, ctx: RunContext, opts: &RunOptions) -> Result<RunResult> {
    dag.reset();
    dag.run(&ctx, opts)
}

/// The fit call of a fit over the closed span `span`, deciding at its end.
pub fn fit_over(span: (i64, i64)) -> RunContext {
    RunContext::new(Phase::Fit, Some(span)).deciding_at(span.1)
}

/// Fits on `fit` (skipped when `None`: the DAG predicts with what it has, such as a
/// loaded state) and predicts on `predict`.
///
/// # Errors
/// A node's error, naming the node.
pub fn fit_predict(
    dag: &mut Dag,
    fit: Option<(i64, i64)>,
    predict: Option<(i64, i64)>,
    opts: &RunOptions,
) -> Result<RunnerOutput> {
    let mut passes = Vec::new();
    if let Some(f) = fit {
        let r = pass(
            dag,
            fit_over(f),
            &RunOptions {
                keep: Default::default(),
                ..opts.clone()
            },
        )?;
        passes.push(("fit".to_string(), r.timings));
    }
    let r = pass(dag, RunContext::new(Phase::Predict, predict), opts)?;
    passes.push(("predict".to_string(), r.timings.clone()));
    Ok(RunnerOutput {
        frame: sink_frame(dag, &r)?,
        passes,
        outputs: if !matches!(opts.keep, Keep::Sinks) {
            r.outputs.clone()
        } else {
            Outputs::new()
        },
        last: r,
    })
}

/// Rolling walk-forward parameters (all nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rolling {
    /// First bar end predicted out of sample is after this time.
    pub start: i64,
    /// Last bar end predicted.
    pub end: i64,
    /// Refit every this long (KaizenFlow's `retraining_freq`).
    pub retraining_freq: i64,
    /// Each fit uses the bars ending in `(t - retraining_lookback, t]`.
    pub retraining_lookback: i64,
}

impl Rolling {
    /// The span the fit at `t` learns from: bars ending in `(t - lookback, t]`.
    pub fn fit_span(&self, t: i64) -> (i64, i64) {
        (t - self.retraining_lookback + 1, t)
    }
}

/// Rolling walk-forward: at `t = start, start + freq, ...`, fit on `(t - lookback, t]`,
/// then predict over `(t - lookback, t + freq]` (the lookback warms up the features)
/// and keep `(t, t + freq]`: out of sample. The kept pieces are stitched in order.
/// `progress(done, total)` is called after each step.
///
/// # Errors
/// [`DataflowError::Invalid`] for a non-positive frequency or lookback, or an empty
/// range; a node's error.
pub fn rolling(
    dag: &mut Dag,
    r: Rolling,
    opts: &RunOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunnerOutput> {
    if r.retraining_freq <= 0 || r.retraining_lookback <= 0 {
        return Err(DataflowError::invalid(
            "retraining_freq and retraining_lookback must be positive durations",
        ));
    }
    if r.end <= r.start {
        return Err(DataflowError::invalid(
            "the rolling range is empty: end must be after start",
        ));
    }
    let steps = usize::try_from((r.end - r.start + r.retraining_freq - 1) / r.retraining_freq)
        .map_err(|_| DataflowError::invalid("too many rolling steps"))?;
    let mut pieces = Vec::with_capacity(steps);
    let mut kept = Gathered::default();
    let mut passes = Vec::new();
    let mut last = RunResult::default();
    for k in 0..steps {
        let t = r.start + k as i64 * r.retraining_freq;
        let hi = (t + r.retraining_freq).min(r.end);
        let lo = r.fit_span(t).0;
        let fit_opts = RunOptions {
            keep: Default::default(),
            ..opts.clone()
        };
        let f = pass(dag, fit_over(r.fit_span(t)), &fit_opts)?;
        passes.push((
            format!(
                "fit {k} on ({}, {}], rows known by then",
                kf_frame::Timestamp(lo - 1),
                kf_frame::Timestamp(t)
            ),
            f.timings,
        ));
        let p = pass(dag, RunContext::new(Phase::Predict, Some((lo, hi))), opts)?;
        passes.push((format!("predict {k}"), p.timings.clone()));
        pieces.push(sink_frame(dag, &p)?.slice_time(t + 1, hi));
        gather(&mut kept, opts, &p, t + 1, hi);
        last = p;
        progress(k + 1, steps);
    }
    Ok(RunnerOutput {
        frame: Frame::concat(&pieces)?,
        passes,
        last,
        outputs: stitch(kept)?,
    })
}

/// Cross-validation parameters (times in nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossValidation {
    /// First bar end used.
    pub start: i64,
    /// Last bar end used.
    pub end: i64,
    /// Number of contiguous test folds.
    pub folds: usize,
    /// Training rows ending within this long before a test fold are left out (their
    /// targets reach into the fold).
    pub purge: i64,
    /// Training rows ending within this long after a test fold are left out (they
    /// are correlated with it).
    pub embargo: i64,
}

impl CrossValidation {
    /// The fit call of `fold`: features over the whole range, learning from the
    /// fold's training spans only (no decision time: later folds train by design).
    pub fn fit_context(&self, fold: &Fold) -> RunContext {
        RunContext {
            train: Some(Arc::new(fold.train.clone())),
            ..RunContext::new(Phase::Fit, Some((self.start, self.end)))
        }
    }
}

/// The time spans of one fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// The test span (closed).
    pub test: (i64, i64),
    /// The training spans (closed): everything else, less purge and embargo.
    pub train: Vec<(i64, i64)>,
}

/// The folds of `cv`: `folds` contiguous, equal-length test spans, each with the rest
/// of `[start, end]` as training, less `purge` before and `embargo` after the test
/// span (López de Prado, *Advances in Financial Machine Learning*, ch. 7).
///
/// # Errors
/// [`DataflowError::Invalid`] for fewer than 2 folds, an empty range, or negative
/// purge or embargo.
pub fn folds(cv: &CrossValidation) -> Result<Vec<Fold>> {
    if cv.folds < 2 {
        return Err(DataflowError::invalid(
            "cross-validation needs at least 2 folds",
        ));
    }
    if cv.end <= cv.start || cv.purge < 0 || cv.embargo < 0 {
        return Err(DataflowError::invalid(
            "cross-validation needs start < end and purge, embargo >= 0",
        ));
    }
    let span = (cv.end - cv.start) as i128 + 1;
    let edge = |k: usize| cv.start + (span * k as i128 / cv.folds as i128) as i64;
    Ok((0..cv.folds)
        .map(|k| {
            let test = (edge(k), edge(k + 1) - 1);
            let mut train = Vec::new();
            if test.0 - cv.purge > cv.start {
                train.push((cv.start, test.0 - cv.purge - 1));
            }
            if test.1 + cv.embargo < cv.end {
                train.push((test.1 + cv.embargo + 1, cv.end));
            }
            Fold { test, train }
        })
        .collect())
}

/// Cross-validation: for each fold, fit on its training spans (features are computed
/// over the whole range, models learn only from training rows), predict over the
/// whole range, and keep the test span. The kept spans, stitched, are out of sample
/// everywhere.
///
/// # Errors
/// As [`folds`]; a node's error.
pub fn cross_validate(
    dag: &mut Dag,
    cv: CrossValidation,
    opts: &RunOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(RunnerOutput, Vec<Fold>)> {
    let folds = folds(&cv)?;
    let mut pieces = Vec::with_capacity(folds.len());
    let mut kept = Gathered::default();
    let mut passes = Vec::new();
    let mut last = RunResult::default();
    for (k, fold) in folds.iter().enumerate() {
        let ctx = cv.fit_context(fold);
        let fit_opts = RunOptions {
            keep: Default::default(),
            ..opts.clone()
        };
        let f = pass(dag, ctx, &fit_opts)?;
        passes.push((format!("fit {k}"), f.timings));
        let p = pass(
            dag,
            RunContext::new(Phase::Predict, Some((cv.start, cv.end))),
            opts,
        )?;
        passes.push((format!("predict {k}"), p.timings.clone()));
        pieces.push(sink_frame(dag, &p)?.slice_time(fold.test.0, fold.test.1));
        gather(&mut kept, opts, &p, fold.test.0, fold.test.1);
        last = p;
        progress(k + 1, folds.len());
    }
    Ok((
        RunnerOutput {
            frame: Frame::concat(&pieces)?,
            passes,
            last,
            outputs: stitch(kept)?,
        },
        folds,
    ))
}

/// Which runner a config's `[run]` section picks, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunSpec {
    /// `type = "fit_predict"`: fit on `fit` (optional), predict on `predict` (all
    /// data when absent).
    FitPredict {
        /// Fit interval.
        fit: Option<(i64, i64)>,
        /// Predict interval.
        predict: Option<(i64, i64)>,
    },
    /// `type = "rolling"`: walk-forward ([`rolling`]).
    Rolling(Rolling),
    /// `type = "cross_validation"`: out-of-sample folds ([`cross_validate`]).
    CrossValidation(CrossValidation),
}

fn time(s: &kf_config::Section<'_>, key: &str) -> kf_config::Result<i64> {
    let text: String = s.get(key)?;
    kf_frame::Timestamp::parse(&text)
        .map(|t| t.nanos())
        .map_err(|e| s.invalid(key, e.to_string()))
}

fn duration(s: &kf_config::Section<'_>, key: &str) -> kf_config::Result<i64> {
    let text: String = s.get(key)?;
    match kf_frame::parse_duration(&text) {
        Ok(d) if d > 0 => Ok(d),
        Ok(_) => Err(s.invalid(key, "must be a positive duration")),
        Err(e) => Err(s.invalid(key, e.to_string())),
    }
}

fn interval(s: &kf_config::Section<'_>, key: &str) -> kf_config::Result<Option<(i64, i64)>> {
    let Some([a, b]) = s.get_opt::<[String; 2]>(key)? else {
        return Ok(None);
    };
    let parse = |t: &str| {
        kf_frame::Timestamp::parse(t)
            .map(|t| t.nanos())
            .map_err(|e| s.invalid(key, e.to_string()))
    };
    let (a, b) = (parse(&a)?, parse(&b)?);
    if b < a {
        return Err(s.invalid(key, "the interval ends before it starts"));
    }
    Ok(Some((a, b)))
}

impl RunSpec {
    /// Reads a `[run]` section (times are ISO 8601, UTC unless they carry an offset;
    /// durations as `5min`, `1d`).
    ///
    /// # Errors
    /// A located config error: unknown `type`, a bad time or duration, an empty range.
    pub fn from_section(s: &kf_config::Section<'_>) -> kf_config::Result<RunSpec> {
        let kind: String = s.get_or("type", "fit_predict".to_string())?;
        match kind.as_str() {
            "fit_predict" => Ok(RunSpec::FitPredict {
                fit: interval(s, "fit")?,
                predict: interval(s, "predict")?,
            }),
            "rolling" => {
                let r = Rolling {
                    start: time(s, "start")?,
                    end: time(s, "end")?,
                    retraining_freq: duration(s, "retraining_freq")?,
                    retraining_lookback: duration(s, "retraining_lookback")?,
                };
                if r.end <= r.start {
                    return Err(s.invalid("end", "must be after start"));
                }
                Ok(RunSpec::Rolling(r))
            }
            "cross_validation" => {
                let cv = CrossValidation {
                    start: time(s, "start")?,
                    end: time(s, "end")?,
                    folds: s.get_or("folds", 5usize)?,
                    purge: s
                        .get_opt::<String>("purge")?
                        .map_or(Ok(0), |_| duration(s, "purge"))?,
                    embargo: s
                        .get_opt::<String>("embargo")?
                        .map_or(Ok(0), |_| duration(s, "embargo"))?,
                };
                folds(&cv).map_err(|e| s.invalid("folds", e.to_string()))?;
                Ok(RunSpec::CrossValidation(cv))
            }
            other => Err(s.invalid(
                "type",
                format!(
                    "unknown runner `{other}`; runners: fit_predict, rolling, cross_validation"
                ),
            )),
        }
    }

    /// The spans whose predictions are out of sample, named: each walk-forward step's
    /// `(t, t + freq]`, each fold's test span, the predict span outside the fit span
    /// (all of it when `fitted` is false: the DAG predicts from a loaded state).
    pub fn out_of_sample(&self, fitted: bool) -> Vec<(String, (i64, i64))> {
        match self {
            RunSpec::FitPredict { fit, predict } => {
                let (lo, hi) = predict.unwrap_or((i64::MIN, i64::MAX));
                match fit.filter(|_| fitted) {
                    None => vec![("predict".into(), (lo, hi))],
                    Some((a, b)) => {
                        let mut out = Vec::new();
                        if lo < a {
                            out.push(("before the fit".into(), (lo, a - 1)));
                        }
                        if b < hi {
                            out.push(("after the fit".into(), (b + 1, hi)));
                        }
                        out
                    }
                }
            }
            RunSpec::Rolling(r) if fitted => {
                let mut out = Vec::new();
                let mut t = r.start;
                let mut k = 0;
                while t < r.end {
                    out.push((
                        format!("fit {k}"),
                        (t + 1, (t + r.retraining_freq).min(r.end)),
                    ));
                    t += r.retraining_freq;
                    k += 1;
                }
                out
            }
            RunSpec::Rolling(r) => vec![("predict".into(), (r.start + 1, r.end))],
            RunSpec::CrossValidation(cv) if fitted => folds(cv)
                .map(|f| {
                    f.iter()
                        .enumerate()
                        .map(|(i, f)| (format!("fold {i}"), f.test))
                        .collect()
                })
                .unwrap_or_default(),
            RunSpec::CrossValidation(cv) => vec![("predict".into(), (cv.start, cv.end))],
        }
    }

    /// Predicts with what `dag` holds (a loaded state) over this runner's span:
    /// `fit_predict`'s predict span, or the walk-forward or cross-validation range,
    /// with no fit.
    ///
    /// # Errors
    /// A node's error ([`DataflowError::NotFitted`] for a model without a state).
    pub fn predict_only(&self, dag: &mut Dag, opts: &RunOptions) -> Result<RunnerOutput> {
        let span = match self {
            RunSpec::FitPredict { predict, .. } => *predict,
            RunSpec::Rolling(r) => Some((r.start + 1, r.end)),
            RunSpec::CrossValidation(cv) => Some((cv.start, cv.end)),
        };
        fit_predict(dag, None, span, opts)
    }

    /// Runs `dag` with this runner.
    ///
    /// # Errors
    /// The runner's or a node's error.
    pub fn execute(
        &self,
        dag: &mut Dag,
        opts: &RunOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RunnerOutput> {
        match self {
            RunSpec::FitPredict { fit, predict } => {
                let out = fit_predict(dag, *fit, *predict, opts)?;
                progress(1, 1);
                Ok(out)
            }
            RunSpec::Rolling(r) => rolling(dag, *r, opts, progress),
            RunSpec::CrossValidation(cv) => {
                cross_validate(dag, *cv, opts, progress).map(|(o, _)| o)
            }
        }
    }
}
