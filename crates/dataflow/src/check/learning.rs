//! The causality checks that follow the config's learning style.
//!
//! A DAG that learns nothing gets the perturbation test of its batch run. One that
//! learns is checked the way its `[run]` learns:
//! - `fit_predict` that predicts rows it was fitted on is an in-sample evaluation,
//!   reported as such (and accepted only with `allow_in_sample`);
//! - `fit_predict` out of sample and `rolling` rerun the whole runner, refits
//!   included, on inputs perturbed after `t`: a prediction known by `t` that changes
//!   learned from the future (a fit span past `t`, targets that end after it);
//! - `cross_validation` trains on later folds by design, so its folds are checked to
//!   purge and embargo the target horizon, and the predict phase is perturbed with a
//!   fitted state.

use kf_frame::Timestamp;

use super::{CheckOptions, CheckResult, Learner, Subject, Verdict, skipped, timed};
use crate::dag::{Dag, Keep, RunOptions};
use crate::error::Result;
use crate::node::Phase;
use crate::peeking::{Peek, perturbation_test, perturbation_test_with, spread_times_in};
use crate::runner::{CrossValidation, RunSpec, folds};
use crate::tiling::Outputs;

/// The fit and predict spans of a `fit_predict` that predicts rows it fits on (the
/// predict span is all data when not given), or `None`.
pub fn in_sample(spec: &RunSpec) -> Option<((i64, i64), (i64, i64))> {
    match spec {
        RunSpec::FitPredict {
            fit: Some(f),
            predict,
        } => {
            let p = predict.unwrap_or((i64::MIN, i64::MAX));
            (p.0 <= f.1 && f.0 <= p.1).then_some((*f, p))
        }
        _ => None,
    }
}

fn verdict(peek: Option<Peek>) -> Verdict {
    match peek {
        None => Verdict::Pass,
        Some(p) => Verdict::Fail(p.to_string()),
    }
}

fn span(s: (i64, i64)) -> String {
    let end = |t: i64| match t {
        i64::MIN => "the first bar".to_string(),
        i64::MAX => "the last bar".to_string(),
        t => Timestamp(t).to_string(),
    };
    format!("[{}, {}]", end(s.0), end(s.1))
}

/// A duration as `parse_duration` reads it, in the largest unit that divides it.
fn duration(ns: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1, "ns"),
    ];
    UNITS
        .iter()
        .find(|(u, _)| ns % u == 0)
        .map_or(format!("{ns}ns"), |(u, name)| format!("{}{name}", ns / u))
}

/// The checks of the DAG's causality under its learning style (see the module
/// doc): each a [`CheckResult`], with the leaking node named in a failure.
pub fn causality_checks(
    subject: &Subject<'_>,
    opts: &CheckOptions,
    batch: &Outputs,
) -> Vec<CheckResult> {
    let Some(input) = subject.input(batch) else {
        return Vec::new();
    };
    let everywhere = spread_times_in(input, opts.perturbations, i64::MIN, i64::MAX);
    let frozen = |name: String, at: Vec<i64>| {
        if opts.skips("perturbation") {
            return skipped("perturbation");
        }
        timed(name, || {
            Ok(verdict(perturbation_test(
                &|| subject.dag(),
                Phase::Predict,
                &at,
            )?))
        })
    };
    let Some(learner) = subject.learners().first() else {
        return vec![frozen(
            format!("perturbation at {} times", everywhere.len()),
            everywhere,
        )];
    };
    let Some(spec) = subject.spec() else {
        return vec![frozen(
            format!(
                "perturbation at {} times, predicting with the state fitted on all data",
                everywhere.len()
            ),
            everywhere,
        )];
    };
    // The rows the model sees (its own output's), or the input's.
    let grid = batch
        .get(&learner.id)
        .and_then(|p| p.get(crate::node::DF_OUT))
        .unwrap_or(input)
        .end_ts();
    match spec {
        RunSpec::FitPredict { .. } => {
            // Spans that touch without sharing a bar (fit to a session's close,
            // predict from that instant on) are not in sample: only shared rows are.
            let shared = in_sample(spec).and_then(|(fit, predict)| {
                let (lo, hi) = (fit.0.max(predict.0), fit.1.min(predict.1));
                let n = grid.iter().filter(|&&t| lo <= t && t <= hi).count();
                (n > 0).then_some((fit, predict, n))
            });
            if let Some((fit, predict, n)) = shared {
                let what = format!(
                    "in-sample evaluation: node `{}` ({}) is fitted on {} and predicts {}, which \
                     shares {n} of its rows, so its predictions there learned from their own \
                     targets",
                    learner.id,
                    learner.kind,
                    span(fit),
                    span(predict)
                );
                let first = if opts.allow_in_sample {
                    CheckResult {
                        name: format!("learning: {what} (accepted by --allow-in-sample)"),
                        verdict: Verdict::Pass,
                        elapsed: std::time::Duration::ZERO,
                    }
                } else {
                    CheckResult {
                        name: "learning: fit_predict, out of sample".into(),
                        verdict: Verdict::Fail(format!(
                            "{what}; predict only after the fit (`[run] predict` starting after \
                             `fit` ends), walk forward (`type = \"rolling\"`), or pass \
                             --allow-in-sample to accept it for research"
                        )),
                        elapsed: std::time::Duration::ZERO,
                    }
                };
                let name = format!(
                    "perturbation at {} times, predicting with the fitted state",
                    everywhere.len()
                );
                return vec![first, frozen(name, everywhere)];
            }
            let (lo, hi) = match spec {
                RunSpec::FitPredict {
                    predict: Some(p), ..
                } => *p,
                _ => (i64::MIN, i64::MAX),
            };
            let at = spread_times_in(input, opts.perturbations, lo, hi);
            vec![refit(
                subject,
                opts,
                spec,
                format!(
                    "perturbation at {} times, refitting `{}` as [run] fit_predict does",
                    at.len(),
                    learner.id
                ),
                at,
            )]
        }
        RunSpec::Rolling(r) => {
            let at = spread_times_in(input, opts.perturbations, r.start + 1, r.end);
            vec![refit(
                subject,
                opts,
                spec,
                format!(
                    "perturbation at {} times, refitting at every walk-forward step",
                    at.len()
                ),
                at,
            )]
        }
        RunSpec::CrossValidation(cv) => {
            let purge = timed(
                "learning: cross-validation purges and embargoes the target horizon".into(),
                || purged(cv, grid, subject),
            );
            let name = format!(
                "perturbation at {} times, predicting with the first fold's fit",
                everywhere.len()
            );
            vec![purge, frozen(name, everywhere)]
        }
    }
}

/// The perturbation test with the whole runner rerun on each perturbed input.
fn refit(
    subject: &Subject<'_>,
    opts: &CheckOptions,
    spec: &RunSpec,
    name: String,
    at: Vec<i64>,
) -> CheckResult {
    if opts.skips("perturbation") {
        return skipped("perturbation");
    }
    let style = |dag: &mut Dag| -> Result<Outputs> {
        let opts = RunOptions {
            up_to: None,
            parallel: false,
            keep: Keep::All,
        };
        Ok(spec.execute(dag, &opts, &mut |_, _| {})?.outputs)
    };
    timed(name, || {
        if at.is_empty() {
            return Ok(Verdict::Fail(
                "no bar of the data lies in the span the runner predicts, so nothing could be \
                 perturbed: check [run]'s times against the data"
                    .into(),
            ));
        }
        Ok(verdict(perturbation_test_with(
            &|| subject.fresh(),
            &style,
            &at,
            true,
        )?))
    })
}

/// The rows ahead of its row that a learner's fit reaches through a forward target
/// it learns to predict: its own fit horizon (`steps_ahead`) plus the target's rows
/// ahead; the largest over the learners, with the learner and what makes it up.
/// Zero when no learner fits a forward target: a model's own `steps_ahead` alone is
/// left out of the training rows next to a test fold by the model itself (it learns
/// only from rows whose target row is in a training span).
fn horizon<'s>(subject: &'s Subject<'_>) -> (usize, Option<&'s Learner>, String) {
    let mut best: (usize, Option<&Learner>, String) = (0, None, String::new());
    for l in subject.learners() {
        let Some((name, h)) = l.targets.iter().max_by_key(|(_, h)| *h) else {
            continue;
        };
        let total = l.fit_horizon.saturating_add(*h);
        if total > best.0 {
            let why = if l.fit_horizon > 0 {
                format!(
                    "it learns {} rows ahead (`steps_ahead`) of target `{name}`, which itself \
                     looks {h} rows ahead",
                    l.fit_horizon
                )
            } else {
                format!("its target `{name}` looks {h} rows ahead")
            };
            best = (total, Some(l), why);
        }
    }
    best
}

/// Whether `[run]`'s purge and embargo each cover the target horizon: `h` rows
/// ([`horizon`]) of the learner's bar period (the shortest step between the rows
/// `times` of its output), the span over which a training row's target reaches into
/// a test fold before it, or a test row's target into the training rows after it.
fn purged(cv: &CrossValidation, times: &[i64], subject: &Subject<'_>) -> Result<Verdict> {
    folds(cv)?;
    let (h, learner, why) = horizon(subject);
    if h == 0 {
        return Ok(Verdict::Pass);
    }
    let step = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(1);
    let need = step.saturating_mul(i64::try_from(h).unwrap_or(i64::MAX));
    if cv.purge >= need && cv.embargo >= need {
        return Ok(Verdict::Pass);
    }
    let who = learner.map_or(String::new(), |l| {
        format!(
            "node `{}` ({}) is fitted on a target {h} rows ahead (",
            l.id, l.kind
        )
    });
    Ok(Verdict::Fail(format!(
        "cross-validation leaks across folds: {who}{why}), i.e. {h} rows of {} = {}; [run] \
         purge is {} and embargo is {}, so training rows next to each test fold hold that \
         fold's future. Set `purge` and `embargo` to at least \"{}\"",
        duration(step),
        duration(need),
        duration(cv.purge),
        duration(cv.embargo),
        duration(need)
    )))
}
