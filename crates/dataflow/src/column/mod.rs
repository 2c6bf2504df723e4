//! Column nodes: the framework part of every node that maps some features of its
//! input to new features over the same rows.
//!
//! A [`ColumnKernel`] computes new features from the selected ones; [`ColumnNode`]
//! owns the rest: which features to read (`cols`), how outputs join the input
//! (`col_mode`), the knowledge time of output rows, and the per-asset carried state
//! across calls. Kernels work on the row-major (row, asset) layout, so one kernel
//! call covers every asset of a feature in one pass.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use kf_frame::{Frame, RowBuf, View};

mod state;

pub use state::{AssetStates, Ring, scan, scan_into};

use crate::error::{DataflowError, Result};
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext,
    single_input, single_output,
};

/// How a node's outputs join its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColMode {
    /// Every input feature, then the outputs (KaizenFlow's `merge_all`/append).
    #[default]
    Append,
    /// Only the outputs.
    ReplaceAll,
    /// The input features that were not read, then the outputs.
    ReplaceSelected,
}

/// How a per-asset kernel treats missing values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NanMode {
    /// Rows are rows: a NaN input is a value like any other and takes part in
    /// windows, lags and differences (so it propagates).
    #[default]
    Keep,
    /// Each asset's kernel runs over its non-NaN values only, in order; its outputs
    /// are written back at those values' rows, and rows with a NaN input give NaN.
    Drop,
}

/// The column selection and output mode every column node reads from its config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Columns {
    /// The features to read; all when empty.
    pub cols: Vec<String>,
    /// How the outputs join the input.
    pub col_mode: ColMode,
}

/// The computation of a column node.
pub trait ColumnKernel: Send {
    /// The node type name.
    fn kind(&self) -> &str;

    /// See [`Node::version`].
    fn version(&self) -> u32 {
        1
    }

    /// What the kernel remembers between rows.
    fn memory(&self) -> Memory;

    /// See [`Node::cross_sectional`].
    fn cross_sectional(&self) -> bool {
        false
    }

    /// See [`Node::learns`].
    fn learns(&self) -> bool {
        false
    }

    /// See [`Node::lookahead`]: rows ahead the features it adds look (a forward
    /// target's horizon).
    fn lookahead(&self) -> usize {
        0
    }

    /// See [`Node::fit_horizon`].
    fn fit_horizon(&self) -> usize {
        0
    }

    /// See [`Node::fit_only_inputs`].
    fn fit_only_inputs(&self) -> Vec<String> {
        Vec::new()
    }

    /// See [`Node::evaluation`].
    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        None
    }

    /// See [`Node::importance`].
    fn importance(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The names of the features [`ColumnKernel::compute`] returns, in the same order,
    /// for an input with `features` of which `cols` are selected: the kernel's schema,
    /// which lets a DAG check its columns before reading data. A test holds every
    /// built-in kernel's names to what `compute` returns.
    ///
    /// # Errors
    /// [`MissingFeature`] for a feature named by a parameter other than `cols`
    /// (a weight's name, a regressor) that `features` lacks, with that parameter's
    /// key.
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature>;

    /// New features computed from `cols` (indices into `input`'s features), as
    /// `(name, row-major values)`, each `input.n_rows() * input.n_assets()` long.
    ///
    /// # Errors
    /// Missing columns or invalid values, said in full.
    ///
    /// The default runs [`ColumnKernel::compute_into`], so a kernel that has the
    /// streaming fast path computes batch and stream with the same code.
    fn compute(
        &mut self,
        ctx: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let names = self
            .output_names(input.features(), cols)
            .map_err(missing_input)?;
        let mut outs: Vec<Vec<f64>> = names.iter().map(|_| Vec::new()).collect();
        self.compute_into(ctx, &input.view(), cols, &mut outs)?;
        Ok(names.into_iter().zip(outs).collect())
    }

    /// Whether the kernel has [`ColumnKernel::compute_into`] (the streaming fast
    /// path).
    fn steps(&self) -> bool {
        false
    }

    /// What [`ColumnKernel::compute`] computes, written into `outs` (one vector per
    /// output name, cleared and refilled, so their capacity is reused).
    ///
    /// # Errors
    /// As [`ColumnKernel::compute`]; [`DataflowError::Invalid`] from kernels
    /// without it.
    fn compute_into(
        &mut self,
        ctx: &RunContext,
        input: &View<'_>,
        cols: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let _ = (ctx, input, cols, outs);
        Err(DataflowError::invalid(format!(
            "a `{}` node has no streaming step",
            self.kind()
        )))
    }

    /// Whether the kernel would return its selected inputs unchanged (a filter with
    /// nothing to filter). A node that replaces every input feature then passes its
    /// input on, sharing its buffers, instead of copying them.
    fn is_identity(&self, input: &Frame) -> bool {
        let _ = input;
        false
    }

    /// Forgets carried state.
    fn reset(&mut self) {}

    /// Learned state (see [`Node::save_state`]).
    ///
    /// # Errors
    /// Serialization failure.
    fn save_state(&self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Restores learned state (see [`Node::load_state`]).
    ///
    /// # Errors
    /// [`DataflowError::State`] when the bytes do not fit.
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        crate::node::no_state(self.kind(), state)
    }

    /// Carried state as bytes (see [`Node::save_carry`]); the default: nothing for
    /// a kernel with [`Memory::Row`], `None` (cannot) for any other.
    ///
    /// # Errors
    /// Serialization failure.
    fn save_carry(&self) -> Result<Option<Vec<u8>>> {
        Ok((self.memory() == Memory::Row).then(Vec::new))
    }

    /// Continues from [`ColumnKernel::save_carry`]'s bytes (see [`Node::load_carry`]).
    ///
    /// # Errors
    /// [`DataflowError::State`] when the bytes do not fit.
    fn load_carry(&mut self, bytes: &[u8]) -> Result<()> {
        crate::node::no_carry(self.kind(), self.memory(), bytes)
    }
}

/// The [`ColumnKernel::save_carry`] and [`ColumnKernel::load_carry`] of a kernel
/// whose whole carried state is one serde field (its per-asset states).
macro_rules! carry_field {
    ($field:ident) => {
        fn save_carry(&self) -> $crate::error::Result<Option<Vec<u8>>> {
            $crate::node::encode_carry(&self.$field).map(Some)
        }
        fn load_carry(&mut self, bytes: &[u8]) -> $crate::error::Result<()> {
            self.$field = $crate::node::decode_carry(self.kind(), bytes)?;
            Ok(())
        }
    };
}
pub(crate) use carry_field;

/// A [`Node`] with one input and one output that adds (or replaces) features.
pub struct ColumnNode<K> {
    id: NodeId,
    columns: Columns,
    kernel: K,
    /// Latest knowledge time seen, carried between calls.
    known: Option<i64>,
    /// The step path's columns, resolved against the last input's features.
    layout: Option<StepLayout>,
}

/// A [`ColumnNode`]'s columns resolved against one list of input features.
#[derive(Clone, Debug)]
struct StepLayout {
    /// The input's feature names (kept, so pointer equality means the same list).
    input: Arc<[String]>,
    /// The selected input columns.
    cols: Vec<usize>,
    /// The input columns passed through, in output order.
    keep: Vec<usize>,
    /// The output's feature names: the kept ones, then the kernel's.
    names: Arc<[String]>,
}

impl<K: ColumnKernel> ColumnNode<K> {
    /// A node with this id, column selection and kernel.
    pub fn new(id: impl Into<String>, columns: Columns, kernel: K) -> ColumnNode<K> {
        ColumnNode {
            id: NodeId(id.into()),
            columns,
            kernel,
            known: None,
            layout: None,
        }
    }

    /// The selected columns of `features`, in order (all of them when none are
    /// configured).
    fn cols_of(&self, features: &[String]) -> Result<Vec<usize>> {
        if self.columns.cols.is_empty() {
            return Ok((0..features.len()).collect());
        }
        self.columns
            .cols
            .iter()
            .map(|c| {
                features.iter().position(|f| f == c).ok_or_else(|| {
                    DataflowError::from(kf_frame::FrameError::Unknown {
                        kind: "feature",
                        name: c.clone(),
                        available: features.join(", "),
                    })
                })
            })
            .collect()
    }

    /// The step path's layout for `features`, taken out of the cache (the caller puts
    /// it back): the cached one while they stay the same list, else a new one.
    fn take_step_layout(&mut self, features: &Arc<[String]>) -> Result<StepLayout> {
        if let Some(l) = self.layout.take()
            && Arc::ptr_eq(&l.input, features)
        {
            return Ok(l);
        }
        let cols = self.cols_of(features)?;
        let keep: Vec<usize> = match self.columns.col_mode {
            ColMode::Append => (0..features.len()).collect(),
            ColMode::ReplaceAll => Vec::new(),
            ColMode::ReplaceSelected => (0..features.len()).filter(|i| !cols.contains(i)).collect(),
        };
        let new = self
            .kernel
            .output_names(features, &cols)
            .map_err(missing_input)?;
        let mut names: Vec<String> = keep.iter().map(|&i| features[i].clone()).collect();
        names.extend(new);
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(DataflowError::invalid(format!(
                "the output would have two features named `{dup}`"
            )));
        }
        Ok(StepLayout {
            input: Arc::clone(features),
            cols,
            keep,
            names: names.into(),
        })
    }

    /// The kernel.
    pub fn kernel(&self) -> &K {
        &self.kernel
    }
}

impl<K: ColumnKernel> Node for ColumnNode<K> {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &str {
        self.kernel.kind()
    }

    fn version(&self) -> u32 {
        self.kernel.version()
    }

    fn memory(&self) -> Memory {
        self.kernel.memory()
    }

    fn cross_sectional(&self) -> bool {
        self.kernel.cross_sectional()
    }

    fn learns(&self) -> bool {
        self.kernel.learns()
    }

    fn lookahead(&self) -> usize {
        self.kernel.lookahead()
    }

    fn fit_horizon(&self) -> usize {
        self.kernel.fit_horizon()
    }

    fn fit_only_inputs(&self) -> Vec<String> {
        self.kernel.fit_only_inputs()
    }

    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        self.kernel.evaluation()
    }

    fn importance(&self) -> Vec<(String, f64)> {
        self.kernel.importance()
    }

    fn output_features(
        &self,
        inputs: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let Some(features) = inputs.get(DF_IN) else {
            return Ok(None);
        };
        let cols: Vec<usize> = if self.columns.cols.is_empty() {
            (0..features.len()).collect()
        } else {
            self.columns
                .cols
                .iter()
                .map(|c| {
                    features
                        .iter()
                        .position(|f| f == c)
                        .ok_or_else(|| MissingFeature::new("cols", c.clone()))
                })
                .collect::<std::result::Result<_, _>>()?
        };
        let new = self.kernel.output_names(features, &cols)?;
        let mut out: Vec<String> = match self.columns.col_mode {
            ColMode::Append => features.clone(),
            ColMode::ReplaceAll => Vec::new(),
            ColMode::ReplaceSelected => features
                .iter()
                .enumerate()
                .filter(|(i, _)| !cols.contains(i))
                .map(|(_, f)| f.clone())
                .collect(),
        };
        out.extend(new);
        Ok(Some(FeatureMap::from([(DF_OUT.to_string(), out)])))
    }

    fn run(&mut self, ctx: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let cols: Vec<usize> = if self.columns.cols.is_empty() {
            (0..input.n_features()).collect()
        } else {
            self.columns
                .cols
                .iter()
                .map(|c| input.feature_index(c))
                .collect::<kf_frame::Result<_>>()?
        };
        let all_in_order =
            cols.iter().enumerate().all(|(i, &c)| i == c) && cols.len() == input.n_features();
        if self.columns.col_mode != ColMode::Append
            && all_in_order
            && self.kernel.is_identity(input)
        {
            return Ok(single_output(input.clone()));
        }
        let new = self.kernel.compute(ctx, input, &cols)?;
        let base = match self.columns.col_mode {
            ColMode::Append => input.clone(),
            ColMode::ReplaceAll => input.select_features::<&str>(&[])?,
            ColMode::ReplaceSelected => {
                let keep: Vec<&str> = input
                    .features()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !cols.contains(i))
                    .map(|(_, f)| f.as_str())
                    .collect();
                input.select_features(&keep)?
            }
        };
        let mut out = base.with_features(new)?;
        if self.kernel.memory() != Memory::Row {
            out = out.with_knowledge_ts(running_max(&mut self.known, input.knowledge_ts()))?;
        }
        Ok(single_output(out))
    }

    fn steps(&self) -> bool {
        self.kernel.steps()
    }

    fn step(&mut self, ctx: &RunContext, input: Option<&RowBuf>, out: &mut RowBuf) -> Result<()> {
        let Some(input) = input else {
            return Err(DataflowError::invalid("a column node steps on one input"));
        };
        let l = self.take_step_layout(&input.features)?;
        out.reset_to(&input.assets, &l.names);
        out.end_ts.extend_from_slice(&input.end_ts);
        if self.kernel.memory() == Memory::Row {
            out.knowledge_ts.extend_from_slice(&input.knowledge_ts);
        } else {
            running_max_into(&mut self.known, &input.knowledge_ts, &mut out.knowledge_ts);
        }
        for (o, &k) in out.values.iter_mut().zip(&l.keep) {
            o.extend_from_slice(&input.values[k]);
        }
        let done =
            self.kernel
                .compute_into(ctx, &input.view(), &l.cols, &mut out.values[l.keep.len()..]);
        self.layout = Some(l);
        done
    }

    fn reset(&mut self) {
        self.known = None;
        self.layout = None;
        self.kernel.reset();
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        self.kernel.save_state()
    }

    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        self.kernel.load_state(state)
    }

    /// The kernel's carried state and the latest knowledge time seen.
    fn save_carry(&self) -> Result<Option<Vec<u8>>> {
        let Some(kernel) = self.kernel.save_carry()? else {
            return Ok(None);
        };
        crate::node::encode_carry(&(self.known, kernel)).map(Some)
    }

    fn load_carry(&mut self, bytes: &[u8]) -> Result<()> {
        let (known, kernel): (Option<i64>, Vec<u8>) =
            crate::node::decode_carry(self.kernel.kind(), bytes)?;
        self.kernel.load_carry(&kernel)?;
        self.known = known;
        self.layout = None;
        Ok(())
    }
}

/// A feature a kernel names that its input lacks, found while running (the build
/// checks the same against the declared features).
fn missing_input(m: MissingFeature) -> DataflowError {
    DataflowError::invalid(format!(
        "no feature `{}` (from `{}`) in the input",
        m.feature, m.key
    ))
}

/// `{feature}{suffix}` for each selected feature: the names most kernels give.
pub fn suffixed(features: &[String], cols: &[usize], suffix: &str) -> Vec<String> {
    cols.iter()
        .map(|&c| format!("{}{suffix}", features[c]))
        .collect()
}

/// The running maximum of `kt`, continuing from `carry` (and updating it): the
/// knowledge time of outputs that depend on every earlier row.
pub fn running_max(carry: &mut Option<i64>, kt: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(kt.len());
    running_max_into(carry, kt, &mut out);
    out
}

/// As [`running_max`], appending to `out` (a streaming step's reused buffer).
pub fn running_max_into(carry: &mut Option<i64>, kt: &[i64], out: &mut Vec<i64>) {
    let mut m = carry.unwrap_or(i64::MIN);
    for &k in kt {
        m = m.max(k);
        out.push(m);
    }
    if !kt.is_empty() {
        *carry = Some(m);
    }
}
