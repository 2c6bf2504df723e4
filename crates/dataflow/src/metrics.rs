//! Model metrics, out of sample: what a model's predictions were worth on rows it
//! did not learn from, per walk-forward step or fold and over all of them.
//!
//! A model declares what it predicts ([`crate::Node::evaluation`]): a classifier its
//! label and one probability feature per class, a regressor its target and its
//! prediction. [`model_reports`] takes a runner's stitched out-of-sample outputs,
//! reads each label from a full-history pass of the model's inputs (a label near the
//! end of a walk-forward step is known only from later data, which that step did not
//! load), and scores:
//! - classifiers: accuracy, precision, recall and F1 per class and macro-averaged,
//!   log loss, the confusion matrix, and the majority class's share of the scored
//!   rows (the base rate a classifier must beat);
//! - regressors: RMSE, the information coefficient (Spearman rank correlation of
//!   prediction and outcome) and the hit rate (share of rows where their signs agree).

use std::collections::BTreeMap;

use serde::Serialize;

use kf_frame::Frame;

use crate::dag::{Dag, Keep, RunOptions};
use crate::error::{DataflowError, Result};
use crate::node::{DF_OUT, NodeId, Phase, RunContext};
use crate::nodes::cross_section::uniform_ranks;
use crate::tiling::Outputs;

/// What a model predicts, for scoring.
#[derive(Clone, Debug, PartialEq)]
pub enum Evaluation {
    /// A classifier: `probabilities[k]` is the feature holding `P(label = classes[k])`.
    Classifier {
        /// The label feature (on the model's input).
        label: String,
        /// The label's values, one per class.
        classes: Vec<f64>,
        /// The classes' names.
        names: Vec<String>,
        /// The probability features (on the model's output), one per class.
        probabilities: Vec<String>,
        /// The label is read this many rows after the prediction's row.
        steps_ahead: usize,
    },
    /// A regressor: `prediction` predicts `label` `steps_ahead` rows ahead.
    Regressor {
        /// The target feature (on the model's input).
        label: String,
        /// The prediction feature (on the model's output).
        prediction: String,
        /// Rows ahead.
        steps_ahead: usize,
    },
}

/// One class's scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScore {
    /// Its name.
    pub class: String,
    /// Rows predicted as it that were it.
    pub precision: f64,
    /// Rows that were it predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows that were it.
    pub support: u64,
}

/// A classifier's scores over some rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassifierMetrics {
    /// Rows scored (label and every probability present).
    pub rows: u64,
    /// Share of rows whose most probable class was the label.
    pub accuracy: f64,
    /// The majority class's share of the scored rows: the accuracy of always
    /// predicting it.
    pub base_rate: f64,
    /// The majority class.
    pub majority_class: String,
    /// Mean precision over the classes (a class never predicted counts 0).
    pub macro_precision: f64,
    /// Mean recall over the classes present.
    pub macro_recall: f64,
    /// Mean F1 over the classes.
    pub macro_f1: f64,
    /// Mean `-ln p(label)` (probabilities clipped to `[1e-15, 1]`).
    pub log_loss: f64,
    /// Per class.
    pub classes: Vec<ClassScore>,
    /// `confusion[actual][predicted]` counts, in class order.
    pub confusion: Vec<Vec<u64>>,
}

/// A regressor's scores over some rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegressorMetrics {
    /// Rows scored (target and prediction present).
    pub rows: u64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Spearman rank correlation of prediction and outcome (mean ranks for ties).
    pub ic: f64,
    /// Share of rows with a non-zero outcome whose prediction has its sign.
    pub hit_rate: f64,
}

/// Scores of either kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    /// A classifier's.
    Classifier(ClassifierMetrics),
    /// A regressor's.
    Regressor(RegressorMetrics),
}

/// Scores `probs[k][i]` (P(class k) for row `i`) against `labels[i]`. Rows with a
/// NaN label or probability, a label that is not a class, or no probability (one
/// vector per class is expected) are skipped.
pub fn classifier_metrics(
    labels: &[f64],
    probs: &[Vec<f64>],
    classes: &[f64],
    names: &[String],
) -> ClassifierMetrics {
    let k = classes.len();
    let mut confusion = vec![vec![0u64; k]; k];
    let mut loss = 0.0;
    let mut rows = 0u64;
    for (i, &y) in labels.iter().enumerate() {
        let Some(actual) = classes.iter().position(|&c| c == y) else {
            continue;
        };
        if probs.len() != k || probs.iter().any(|p| p.get(i).is_none_or(|v| v.is_nan())) {
            continue;
        }
        // The most probable class; ties go to the first.
        let mut best = 0;
        for c in 1..k {
            if probs[c][i] > probs[best][i] {
                best = c;
            }
        }
        confusion[actual][best] += 1;
        loss -= probs[actual][i].clamp(1e-15, 1.0).ln();
        rows += 1;
    }
    let n = rows.max(1) as f64;
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let support: Vec<u64> = confusion.iter().map(|r| r.iter().sum()).collect();
    let predicted: Vec<u64> = (0..k)
        .map(|c| confusion.iter().map(|r| r[c]).sum())
        .collect();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let scores: Vec<ClassScore> = (0..k)
        .map(|c| {
            let precision = ratio(confusion[c][c], predicted[c]);
            let recall = ratio(confusion[c][c], support[c]);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassScore {
                class: names
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| classes[c].to_string()),
                precision,
                recall,
                f1,
                support: support[c],
            }
        })
        .collect();
    let majority = (0..k)
        .max_by_key(|&c| (support[c], std::cmp::Reverse(c)))
        .unwrap_or(0);
    let mean = |f: &dyn Fn(&ClassScore) -> f64| {
        scores.iter().map(f).sum::<f64>() / scores.len().max(1) as f64
    };
    ClassifierMetrics {
        rows,
        accuracy: correct as f64 / n,
        base_rate: support.get(majority).copied().unwrap_or(0) as f64 / n,
        majority_class: scores
            .get(majority)
            .map(|s| s.class.clone())
            .unwrap_or_default(),
        macro_precision: mean(&|s| s.precision),
        macro_recall: mean(&|s| s.recall),
        macro_f1: mean(&|s| s.f1),
        log_loss: loss / n,
        classes: scores,
        confusion,
    }
}

/// Ranks by the project's one tie rule ([`uniform_ranks`]: mean ranks for ties,
/// scaled to `(rank - 0.5) / n`, which Pearson's correlation does not see).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    uniform_ranks(v, &mut out, &mut Vec::with_capacity(v.len()));
    out
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    let r = sab / (saa * sbb).sqrt();
    if r.is_finite() { r } else { f64::NAN }
}

/// Scores `pred[i]` against `truth[i]`; rows with either NaN are skipped.
pub fn regressor_metrics(truth: &[f64], pred: &[f64]) -> RegressorMetrics {
    let (t, p): (Vec<f64>, Vec<f64>) = truth
        .iter()
        .zip(pred)
        .filter(|(t, p)| !t.is_nan() && !p.is_nan())
        .map(|(&t, &p)| (t, p))
        .unzip();
    let n = t.len();
    let rmse = (t
        .iter()
        .zip(&p)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / n.max(1) as f64)
        .sqrt();
    let moved: Vec<(f64, f64)> = t
        .iter()
        .zip(&p)
        .filter(|(a, _)| **a != 0.0)
        .map(|(a, b)| (*a, *b))
        .collect();
    let hits = moved
        .iter()
        .filter(|(a, b)| a.signum() == b.signum() && *b != 0.0)
        .count();
    RegressorMetrics {
        rows: n as u64,
        rmse: if n == 0 { f64::NAN } else { rmse },
        ic: if n < 2 {
            f64::NAN
        } else {
            pearson(&ranks(&p), &ranks(&t))
        },
        hit_rate: if moved.is_empty() {
            f64::NAN
        } else {
            hits as f64 / moved.len() as f64
        },
    }
}

/// One model's out-of-sample report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model node.
    pub node: String,
    /// Its type.
    pub kind: String,
    /// Over every out-of-sample span.
    pub overall: Metrics,
    /// Per span (walk-forward step, fold), by name, with the span.
    pub spans: Vec<SpanMetrics>,
    /// Feature importance (each regressor's share), when the model has one.
    pub importance: BTreeMap<String, f64>,
}

/// Scores over one out-of-sample span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanMetrics {
    /// The span's name (`fit 3`, `fold 1`, `after the fit`).
    pub name: String,
    /// First bar end (UTC; empty when open).
    pub start: String,
    /// Last bar end (UTC; empty when open).
    pub end: String,
    /// The scores.
    pub metrics: Metrics,
}

/// The (label, predictions) cells of `frame` (a model's stitched output) whose row
/// end falls in `span`, the label read from `labels` (a full-history frame of the
/// model's input) `steps_ahead` rows later.
fn cells(
    frame: &Frame,
    labels: &Frame,
    label: &str,
    predictions: &[String],
    steps_ahead: usize,
    span: (i64, i64),
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let n = frame.n_assets();
    let lab = labels.feature(label)?;
    let lab_ts = labels.end_ts();
    let slot: Vec<Option<usize>> = frame
        .assets()
        .iter()
        .map(|a| labels.assets().iter().position(|b| b == a))
        .collect();
    let preds: Vec<&[f64]> = predictions
        .iter()
        .map(|p| frame.feature(p).map(|f| f.values()))
        .collect::<kf_frame::Result<_>>()?;
    let (mut ys, mut ps) = (Vec::new(), vec![Vec::new(); preds.len()]);
    for (r, &t) in frame.end_ts().iter().enumerate() {
        if t < span.0 || t > span.1 {
            continue;
        }
        let Ok(lr) = lab_ts.binary_search(&t) else {
            continue;
        };
        let Some(target) = lr.checked_add(steps_ahead).filter(|&x| x < lab_ts.len()) else {
            continue;
        };
        for a in 0..n {
            let Some(s) = slot[a] else { continue };
            ys.push(lab.values()[target * labels.n_assets() + s]);
            for (k, p) in preds.iter().enumerate() {
                ps[k].push(p[r * n + a]);
            }
        }
    }
    Ok((ys, ps))
}

fn time(t: i64) -> String {
    if t == i64::MIN || t == i64::MAX {
        String::new()
    } else {
        kf_frame::Timestamp(t).to_string()
    }
}

fn score(e: &Evaluation, ys: &[f64], ps: &[Vec<f64>]) -> Metrics {
    match e {
        Evaluation::Classifier { classes, names, .. } => {
            Metrics::Classifier(classifier_metrics(ys, ps, classes, names))
        }
        Evaluation::Regressor { .. } => Metrics::Regressor(regressor_metrics(ys, &ps[0])),
    }
}

/// Scores every model of `dag` that declares an [`Evaluation`] on its out-of-sample
/// outputs `outputs` (a runner's stitched outputs, which must hold the models'),
/// over each of `spans` and over all of them. Labels come from one batch
/// predict pass of the DAG up to each model's input, over every row.
///
/// # Errors
/// A node's error in the label pass; a model whose outputs or label are missing.
pub fn model_reports(
    dag: &mut Dag,
    outputs: &Outputs,
    spans: &[(String, (i64, i64))],
) -> Result<Vec<ModelReport>> {
    let mut reports = Vec::new();
    for id in dag.topological_order() {
        let node = dag.node(id.as_str())?;
        let Some(eval) = node.evaluation() else {
            continue;
        };
        let kind = node.kind().to_string();
        let importance: BTreeMap<String, f64> = node.importance().into_iter().collect();
        let Some(frame) = outputs.get(&id).and_then(|p| p.get(DF_OUT)) else {
            return Err(DataflowError::invalid(format!(
                "no out-of-sample outputs of model `{id}` to score (keep its outputs)"
            )));
        };
        let inputs = dag.inputs_of(id.as_str())?;
        let Some((_, from, port)) = inputs.first().cloned() else {
            continue;
        };
        let labels = label_pass(dag, &from, &port)?;
        let (label, predictions, steps) = match &eval {
            Evaluation::Classifier {
                label,
                probabilities,
                steps_ahead,
                ..
            } => (label, probabilities.clone(), *steps_ahead),
            Evaluation::Regressor {
                label,
                prediction,
                steps_ahead,
            } => (label, vec![prediction.clone()], *steps_ahead),
        };
        let (mut all_y, mut all_p) = (Vec::new(), vec![Vec::new(); predictions.len()]);
        let mut per = Vec::with_capacity(spans.len());
        for (name, span) in spans {
            let (ys, ps) = cells(frame, &labels, label, &predictions, steps, *span)?;
            per.push(SpanMetrics {
                name: name.clone(),
                start: time(span.0),
                end: time(span.1),
                metrics: score(&eval, &ys, &ps),
            });
            all_y.extend(ys);
            for (a, p) in all_p.iter_mut().zip(ps) {
                a.extend(p);
            }
        }
        reports.push(ModelReport {
            node: id.to_string(),
            kind,
            overall: score(&eval, &all_y, &all_p),
            spans: per,
            importance,
        });
    }
    Ok(reports)
}

/// Every row of node `from`'s output `port`, from one batch predict pass.
fn label_pass(dag: &mut Dag, from: &NodeId, port: &str) -> Result<Frame> {
    dag.reset();
    let out = dag.run(
        &RunContext::new(Phase::Predict, None),
        &RunOptions {
            up_to: Some(from.clone()),
            parallel: false,
            keep: Keep::Nodes([from.clone()].into_iter().collect()),
        },
    )?;
    out.outputs
        .get(from)
        .and_then(|p| p.get(port))
        .cloned()
        .ok_or_else(|| DataflowError::invalid(format!("node `{from}` gave no `{port}`")))
}
