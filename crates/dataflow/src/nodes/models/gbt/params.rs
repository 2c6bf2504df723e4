//! `gbt`'s parameters: the objective, the classes and their output names, and the
//! tree settings, checked once when the node is built.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a `gbt` node learns to predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// A number (squared loss): outputs `{y_var}_hat`.
    Regression,
    /// One of two classes (log loss): outputs one probability per class.
    Binary,
    /// One of several classes (one-vs-rest log loss): one probability per class.
    Multiclass,
}

/// Parameters of `gbt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GbtParams {
    /// Regressors.
    pub x_vars: Vec<String>,
    /// The label (a classifier's class values, or a regressor's target).
    pub y_var: String,
    /// `regression`, `binary` or `multiclass`.
    #[serde(default = "binary")]
    pub objective: Objective,
    /// A classifier's label values, in order (binary: `[0, 1]` when empty; the
    /// second is the positive class). Each gets an output `{y_var}.p_{name}`.
    #[serde(default)]
    pub classes: Vec<f64>,
    /// A name per class for the output features (default: the value, with `m` for a
    /// minus sign: `-1` is `m1`).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// One model on every asset's rows (true) or one model per asset.
    #[serde(default = "yes")]
    pub pooled: bool,
    /// The label is `y_var` this many rows ahead of the regressors (0: the label is
    /// already a forward target, such as a `direction` label).
    #[serde(default)]
    pub steps_ahead: usize,
    /// Boosting rounds (trees per booster).
    #[serde(default = "iterations")]
    pub iterations: usize,
    /// Shrinkage of each tree's leaf weights.
    #[serde(default = "learning_rate")]
    pub learning_rate: f64,
    /// Deepest split.
    #[serde(default = "max_depth")]
    pub max_depth: usize,
    /// Least hessian sum in a leaf.
    #[serde(default = "one")]
    pub min_leaf_weight: f64,
    /// L2 penalty on leaf weights.
    #[serde(default = "one")]
    pub l2: f64,
    /// Histogram bins per regressor.
    #[serde(default = "nbins")]
    pub nbins: u16,
    /// Share of rows each tree samples (1: all).
    #[serde(default = "one")]
    pub subsample: f64,
    /// Share of regressors each tree samples (1: all).
    #[serde(default = "one")]
    pub colsample_bytree: f64,
    /// Seed of the row and column sampling.
    #[serde(default)]
    pub seed: u64,
    /// Threads a fit uses (0: every core). The trees do not depend on it.
    #[serde(default)]
    pub threads: usize,
}

fn binary() -> Objective {
    Objective::Binary
}
fn yes() -> bool {
    true
}
fn iterations() -> usize {
    100
}
fn learning_rate() -> f64 {
    0.1
}
fn max_depth() -> usize {
    5
}
fn one() -> f64 {
    1.0
}
fn nbins() -> u16 {
    256
}

impl GbtParams {
    /// A binary classifier of `y_var` on `x_vars` with the default settings.
    pub fn new(x_vars: &[&str], y_var: &str) -> GbtParams {
        GbtParams {
            x_vars: x_vars.iter().map(|s| s.to_string()).collect(),
            y_var: y_var.to_string(),
            objective: binary(),
            classes: Vec::new(),
            class_names: Vec::new(),
            pooled: true,
            steps_ahead: 0,
            iterations: iterations(),
            learning_rate: learning_rate(),
            max_depth: max_depth(),
            min_leaf_weight: 1.0,
            l2: 1.0,
            nbins: nbins(),
            subsample: 1.0,
            colsample_bytree: 1.0,
            seed: 0,
            threads: 0,
        }
    }

    /// The class values a classifier predicts (empty for a regressor).
    pub fn class_values(&self) -> Vec<f64> {
        match self.objective {
            Objective::Regression => Vec::new(),
            Objective::Binary if self.classes.is_empty() => vec![0.0, 1.0],
            _ => self.classes.clone(),
        }
    }

    /// Boosters per model group: one per class for multi-class, else one.
    pub fn boosters_per_group(&self) -> usize {
        match self.objective {
            Objective::Multiclass => self.class_values().len(),
            _ => 1,
        }
    }

    /// The output features, in order: `{y_var}_hat`, or `{y_var}.p_{name}` per class.
    pub fn output_names(&self) -> Vec<String> {
        let classes = self.class_values();
        if classes.is_empty() {
            return vec![format!("{}_hat", self.y_var)];
        }
        self.names()
            .iter()
            .map(|c| format!("{}.p_{c}", self.y_var))
            .collect()
    }

    /// The class names (given, or made from the values).
    pub fn names(&self) -> Vec<String> {
        if !self.class_names.is_empty() {
            return self.class_names.clone();
        }
        self.class_values()
            .iter()
            .map(|v| format!("{v}").replace('-', "m"))
            .collect()
    }

    /// Checks the values a config cannot type: positive rates and depths, distinct
    /// classes, one name per class.
    ///
    /// # Errors
    /// `(key, message)` for the first bad value.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.x_vars.is_empty() {
            return Err(("x_vars", "give at least one regressor".into()));
        }
        if self.iterations == 0 {
            return Err(("iterations", "must be at least 1".into()));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(("learning_rate", "must be a positive number".into()));
        }
        if self.max_depth == 0 {
            return Err(("max_depth", "must be at least 1".into()));
        }
        if self.nbins < 2 {
            return Err(("nbins", "must be at least 2".into()));
        }
        for (key, v, max) in [
            ("iterations", self.iterations, 100_000),
            ("max_depth", self.max_depth, 64),
            ("threads", self.threads, kf_parallel::MAX_THREADS),
        ] {
            if v > max {
                return Err((key, format!("must be at most {max}, not {v}")));
            }
        }
        for (key, v) in [("min_leaf_weight", self.min_leaf_weight), ("l2", self.l2)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err((key, format!("must be a finite number >= 0, not {v}")));
            }
        }
        for (key, v) in [
            ("subsample", self.subsample),
            ("colsample_bytree", self.colsample_bytree),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err((key, format!("must be in (0, 1], not {v}")));
            }
        }
        let classes = self.class_values();
        match self.objective {
            Objective::Regression if !self.classes.is_empty() => {
                return Err(("classes", "a regression has no classes".into()));
            }
            Objective::Binary if classes.len() != 2 => {
                return Err((
                    "classes",
                    format!("a binary classifier has two classes, not {}", classes.len()),
                ));
            }
            Objective::Multiclass if classes.len() < 2 => {
                return Err((
                    "classes",
                    "a multiclass classifier needs its label values, at least two \
                     (for a direction label: [-1, 0, 1])"
                        .into(),
                ));
            }
            _ => {}
        }
        if let Some(v) = classes.iter().find(|v| !v.is_finite()) {
            return Err(("classes", format!("a class value must be finite, not {v}")));
        }
        for (i, a) in classes.iter().enumerate() {
            if classes[..i].contains(a) {
                return Err(("classes", format!("class {a} is given twice")));
            }
        }
        if !self.class_names.is_empty() && self.class_names.len() != classes.len() {
            return Err((
                "class_names",
                format!(
                    "give one name per class: {} names for {} classes",
                    self.class_names.len(),
                    classes.len()
                ),
            ));
        }
        Ok(())
    }
}
