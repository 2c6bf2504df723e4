//! The [`Node`] contract: ports, declared memory, phases and learned state.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kf_frame::Frame;

use crate::error::{DataflowError, Result};

/// The unique id of a node in a DAG (KaizenFlow's `nid`).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> NodeId {
        NodeId(s.to_string())
    }
}

/// Frames by port name: a node's inputs or outputs.
pub type Ports = BTreeMap<String, Frame>;

/// Feature names by port name: what a node receives or gives, known before any data
/// is read (see [`Node::output_features`]).
pub type FeatureMap = BTreeMap<String, Vec<String>>;

/// A feature that a node's parameters name and its input lacks: the answer of
/// [`Node::output_features`] that lets a DAG refuse a misspelt column when it is
/// built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingFeature {
    /// The node's config key that names it (`cols`, `weights`, `x_vars`), relative
    /// to the node's table.
    pub key: String,
    /// The name given.
    pub feature: String,
    /// The input port it was looked for on (or, for a source, what it read).
    pub port: String,
    /// The features that were there, when not those of an input port (a source's
    /// data).
    pub available: Option<Vec<String>>,
}

impl MissingFeature {
    /// `feature`, named by `key`, is not on the `df_in` port.
    pub fn new(key: impl Into<String>, feature: impl Into<String>) -> MissingFeature {
        MissingFeature {
            key: key.into(),
            feature: feature.into(),
            port: DF_IN.to_string(),
            available: None,
        }
    }
}

/// Checks that every name in `wanted` (read from config key `key`) is in `features`.
///
/// # Errors
/// The first name that is not.
pub fn require<'a>(
    features: &[String],
    key: &str,
    wanted: impl IntoIterator<Item = &'a String>,
) -> std::result::Result<(), MissingFeature> {
    for w in wanted {
        if !features.contains(w) {
            return Err(MissingFeature::new(key, w.clone()));
        }
    }
    Ok(())
}

/// The conventional name of a single input port.
pub const DF_IN: &str = "df_in";
/// The conventional name of a single output port.
pub const DF_OUT: &str = "df_out";

/// What a node remembers of rows before the current call: it decides how a runner
/// may cut time into tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Each output row depends only on the same input row.
    Row,
    /// A finite number of earlier rows (a rolling window, a lag).
    Rows(usize),
    /// A finite span of earlier time (a time window, a resampling bin).
    Duration(kf_frame::Duration),
    /// A recursive state handed from one tile to the next (an EMA).
    Carried,
    /// Every row since the start (a fit on the whole history): not tilable.
    AllHistory,
}

/// A phase of a run. Models learn in `Fit` and use what they learned in `Predict`;
/// other nodes compute the same in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Learn from the data (and produce in-sample outputs).
    Fit,
    /// Use what was learned.
    Predict,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Fit => "fit",
            Phase::Predict => "predict",
        })
    }
}

/// What a runner tells every node of the current call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunContext {
    /// The phase.
    pub phase: Phase,
    /// The closed interval of bar end times the call covers (source nodes load it;
    /// `None` means all the data they have).
    pub interval: Option<(i64, i64)>,
    /// In `fit`, the closed intervals of bar end times a model may learn from (all
    /// rows when `None`). Cross-validation uses it to leave out the test fold and its
    /// purge and embargo zones while features are still computed over every row.
    pub train: Option<Arc<Vec<(i64, i64)>>>,
    /// In `fit`, the decision time of the fit: a model may learn only from rows whose
    /// features *and* targets are known by then (see [`RunContext::known_by_decision`]).
    /// Walk-forward and fit-then-predict runners set it to the end of the fit span;
    /// `None` (cross-validation, a bare call) sets no such bound.
    pub decision: Option<i64>,
    /// The forward targets of the DAG, by feature name (set by [`crate::Dag::run`]):
    /// which node made each and how many rows ahead it looks.
    pub targets: Option<Arc<Targets>>,
}

/// A forward target: a feature whose row `r` holds a value of row `r + horizon`
/// (research code's `shift(-h)`), so it is known only when that later row is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The node that made it.
    pub node: NodeId,
    /// Rows ahead.
    pub horizon: usize,
}

/// Forward targets by feature name. A feature keeps its name downstream (a node in
/// `append` mode passes it on), so the name identifies the target wherever it goes.
pub type Targets = BTreeMap<String, Target>;

impl RunContext {
    /// A call in `phase` over `interval`, learning from every row.
    pub fn new(phase: Phase, interval: Option<(i64, i64)>) -> RunContext {
        RunContext {
            phase,
            interval,
            train: None,
            decision: None,
            targets: None,
        }
    }

    /// The same call with the fit's decision time set (see [`RunContext::decision`]).
    pub fn deciding_at(mut self, decision: i64) -> RunContext {
        self.decision = Some(decision);
        self
    }

    /// How many rows ahead feature `name` looks: its forward-target horizon, or 0.
    pub fn horizon_of(&self, name: &str) -> usize {
        self.targets
            .as_ref()
            .and_then(|t| t.get(name))
            .map_or(0, |t| t.horizon)
    }

    /// Whether a fit at this call's decision time may learn from row `row` of a frame
    /// with knowledge times `knowledge`, when its target lies `ahead` rows further on:
    /// the row and its target row must exist and be known by the decision time. Always
    /// true without a decision time (beyond the target row existing).
    pub fn known_by_decision(&self, knowledge: &[i64], row: usize, ahead: usize) -> bool {
        let Some(target) = row.checked_add(ahead).filter(|&t| t < knowledge.len()) else {
            return false;
        };
        match self.decision {
            None => true,
            Some(tau) => knowledge[row] <= tau && knowledge[target] <= tau,
        }
    }

    /// Whether a fit may learn from row `row` of a frame with bar ends `end_ts` and
    /// knowledge times `knowledge`, with the value it learns at row `row + steps`
    /// (a model's `steps_ahead`), itself a target known `ahead` rows after `row`
    /// (`steps` plus the target's horizon): both rows in the training spans, and
    /// known by the decision time. `row + steps` must be a row of the frame.
    pub fn learns_from(
        &self,
        end_ts: &[i64],
        knowledge: &[i64],
        row: usize,
        steps: usize,
        ahead: usize,
    ) -> bool {
        self.trains_on(end_ts[row])
            && self.trains_on(end_ts[row + steps])
            && (self.decision.is_none() || self.known_by_decision(knowledge, row, ahead))
    }

    /// Whether a model may learn from the row ending at `t`.
    pub fn trains_on(&self, t: i64) -> bool {
        match &self.train {
            None => true,
            Some(spans) => spans.iter().any(|&(a, b)| a <= t && t <= b),
        }
    }
}

/// A step of a DAG: takes frames on named input ports, returns frames on named
/// output ports.
///
/// # Contract
/// - Parameters come from a config subtree when the node is built; unknown keys are
///   reported by the config's unused-key check.
/// - A call receives consecutive rows and returns the output rows for those rows,
///   continuing from the state carried out of the previous call; [`Node::reset`]
///   forgets that carried state (not what was learned in `fit`).
/// - Deterministic: the same inputs, parameters and state give bit-identical outputs.
/// - A node's output row has the knowledge time of the latest input row it used.
pub trait Node: Send {
    /// The node's id, unique in its DAG.
    fn id(&self) -> &NodeId;

    /// The node's type name (the config's `type`).
    fn kind(&self) -> &str;

    /// The version of this node type's semantics: bump it whenever a change of code
    /// changes what the node outputs for the same inputs and parameters, so node
    /// caches stop serving outputs of the old code. A test pins each built-in
    /// type's outputs on a fixed input to its version (`tests/it/versions.rs`).
    fn version(&self) -> u32 {
        1
    }

    /// For a node that reads data from outside the DAG (a source): a fingerprint of
    /// that data (file contents, a store's version, a generator's seed), a part of
    /// its cache key. `Ok(None)` means it cannot say, and its outputs (and everything
    /// downstream) are never cached. The default: a node with input ports reads
    /// nothing else (`Some("")`); a node without any cannot say.
    ///
    /// # Errors
    /// A data file that cannot be read.
    fn data_fingerprint(&self) -> Result<Option<String>> {
        Ok((!self.inputs().is_empty()).then(String::new))
    }

    /// For a source: what it reads apart from the data's content (a store's path, a
    /// files' pattern, the reader's settings), so that a run over the same source
    /// grown by new bars may continue from where the last run stopped (see
    /// [`crate::Dag::run_growing`]). The default: a node with input ports reads
    /// nothing else (`Some("")`); a node without any cannot say (`None`), and runs
    /// over it always start from scratch.
    fn data_lineage(&self) -> Option<String> {
        (!self.inputs().is_empty()).then(String::new)
    }

    /// For a source with a [`Node::data_lineage`]: a fingerprint of its rows whose
    /// bars end at or before `until`, which appending later bars leaves unchanged
    /// (see [`kf_datapull::Source::prefix_fingerprint`]). `Ok(None)`: it cannot say.
    /// The default answers `Some("")` for a node with inputs, `None` otherwise.
    ///
    /// # Errors
    /// A data file that cannot be read.
    fn data_prefix(&self, until: i64) -> Result<Option<String>> {
        let _ = until;
        Ok((!self.inputs().is_empty()).then(String::new))
    }

    /// Its input port names (none for a source).
    fn inputs(&self) -> Vec<String> {
        vec![DF_IN.to_string()]
    }

    /// Its output port names.
    fn outputs(&self) -> Vec<String> {
        vec![DF_OUT.to_string()]
    }

    /// What it remembers between rows.
    fn memory(&self) -> Memory;

    /// Whether one asset's output depends on other assets' values (a cross-sectional
    /// rank, a demean). Such a node sees every asset at once, so a runner does not
    /// cut its input into asset tiles.
    fn cross_sectional(&self) -> bool {
        false
    }

    /// Whether the node learns from its input in [`Phase::Fit`] (a model). A fit uses
    /// every row it is given at once, so runners fit in one batch call and tile only
    /// the predict phase.
    fn learns(&self) -> bool {
        false
    }

    /// How many rows ahead of each row the features this node *adds* look: non-zero
    /// only for a node that builds a forward target (a `shift` with negative
    /// `periods`). The features it adds are then [`Target`]s: known only when the row
    /// `lookahead` rows later is. `kaizenflow check` lets them feed a model's fit, and
    /// names any other path they reach.
    fn lookahead(&self) -> usize {
        0
    }

    /// In [`Phase::Fit`], how many rows ahead of each row lies the target value a
    /// model learns from (a regression's `steps_ahead`), on top of the target's own
    /// horizon; 0 for a node that does not learn. Cross-validation's purge and
    /// embargo must cover it.
    fn fit_horizon(&self) -> usize {
        0
    }

    /// The input features the node reads only in [`Phase::Fit`], as what it learns
    /// to predict (a regression's `y_vars`): the one place a forward target may go.
    /// Empty for a node that reads every input it names when it predicts.
    fn fit_only_inputs(&self) -> Vec<String> {
        Vec::new()
    }

    /// What the node predicts, for scoring out of sample (a model's label and
    /// prediction features; see [`crate::metrics`]). `None` for a node that is not a
    /// model.
    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        None
    }

    /// A fitted model's feature importance: each input feature's share (empty when
    /// the node has none or has not learned).
    fn importance(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The features on each output port, given the features on each input port,
    /// without reading any data: the node's schema, as DataFusion's
    /// `ExecutionPlan::schema()`. A DAG computes its whole column flow from these when
    /// it is built, so a misspelt feature is refused before anything runs.
    ///
    /// `Ok(None)` says "not known before running" (the default, for a node that does
    /// not declare its schema): the features of the nodes it feeds are then checked
    /// at run time only. Column nodes ([`crate::column::ColumnNode`]) declare theirs
    /// through [`crate::column::ColumnKernel::output_names`].
    ///
    /// # Errors
    /// [`MissingFeature`] for a feature its parameters name that its inputs lack.
    fn output_features(
        &self,
        inputs: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let _ = inputs;
        Ok(None)
    }

    /// Runs one call.
    ///
    /// # Errors
    /// Missing columns, bad values, or [`DataflowError::NotFitted`] when a model is
    /// asked to predict before it learned anything.
    fn run(&mut self, ctx: &RunContext, inputs: &Ports) -> Result<Ports>;

    /// Whether the node has the streaming fast path, [`Node::step`]. A DAG whose
    /// nodes all have it (and each have at most one input) can be stepped with
    /// [`crate::Dag::step`], which allocates nothing per bar in steady state.
    fn steps(&self) -> bool {
        false
    }

    /// One call of the node in the sense of [`Node::run`] (the same outputs, to the
    /// bit, and the same carried state), reading its input's rows from a buffer and
    /// writing its output's rows into `out`, whose capacity is reused from call to
    /// call. `input` is `None` for a source.
    ///
    /// # Errors
    /// As [`Node::run`]; [`DataflowError::Invalid`] from nodes without the fast path.
    fn step(
        &mut self,
        ctx: &RunContext,
        input: Option<&kf_frame::RowBuf>,
        out: &mut kf_frame::RowBuf,
    ) -> Result<()> {
        let _ = (ctx, input, out);
        Err(DataflowError::invalid(format!(
            "a `{}` node has no streaming step; run the DAG with `Dag::run`",
            self.kind()
        )))
    }

    /// Forgets the state carried from call to call (start of a new run).
    fn reset(&mut self) {}

    /// What it learned, serialized (empty for a node that learns nothing).
    ///
    /// # Errors
    /// When the state cannot be serialized.
    fn save_state(&self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Restores what [`Node::save_state`] saved.
    ///
    /// # Errors
    /// [`DataflowError::State`] when the bytes do not fit the node; a node that learns
    /// nothing rejects any non-empty state.
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        no_state(self.kind(), state)
    }

    /// The state this node carries into its next call (the tiling contract's
    /// carried state: a window's last values, an open bin, the latest knowledge
    /// time), as bytes, so that another process can continue the run where this one
    /// stopped ([`crate::Dag::save_carry`]). Not what it learned ([`Node::save_state`]).
    /// `Ok(None)`: the node cannot save it. The default: a node with [`Memory::Row`]
    /// carries nothing (empty bytes); any other node cannot.
    ///
    /// # Errors
    /// A serialization failure.
    fn save_carry(&self) -> Result<Option<Vec<u8>>> {
        Ok((self.memory() == Memory::Row).then(Vec::new))
    }

    /// Continues from bytes that [`Node::save_carry`] gave, of a node of the same
    /// type and parameters.
    ///
    /// # Errors
    /// [`DataflowError::State`] when the bytes do not fit the node.
    fn load_carry(&mut self, bytes: &[u8]) -> Result<()> {
        no_carry(self.kind(), self.memory(), bytes)
    }
}

/// What a node that learns nothing answers to [`Node::load_state`]: fine for an
/// empty state, an error naming the node type for any other.
///
/// # Errors
/// [`DataflowError::State`] when `state` is not empty.
pub fn no_state(kind: &str, state: &[u8]) -> Result<()> {
    if state.is_empty() {
        Ok(())
    } else {
        Err(DataflowError::State(format!(
            "a `{kind}` node learns nothing, so it takes no state, but {} bytes were given",
            state.len()
        )))
    }
}

/// The default [`Node::load_carry`]: empty bytes for a node with [`Memory::Row`],
/// refused otherwise.
///
/// # Errors
/// [`DataflowError::State`].
pub fn no_carry(kind: &str, memory: Memory, bytes: &[u8]) -> Result<()> {
    if memory == Memory::Row && bytes.is_empty() {
        return Ok(());
    }
    Err(DataflowError::State(format!(
        "a `{kind}` node cannot continue from saved carried state ({} bytes given)",
        bytes.len()
    )))
}

/// Carried state as bytes (postcard), for [`Node::save_carry`].
///
/// # Errors
/// [`DataflowError::State`] when serde refuses the value.
pub fn encode_carry<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| DataflowError::State(e.to_string()))
}

/// Carried state from bytes [`encode_carry`] wrote, for [`Node::load_carry`].
///
/// # Errors
/// [`DataflowError::State`] naming the node type, when the bytes do not decode.
pub fn decode_carry<T: serde::de::DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        DataflowError::State(format!(
            "the carried state given to a `{kind}` node does not decode: {e}; it was saved \
             by another node type, other parameters or another version"
        ))
    })
}

/// The single input of a one-input node.
///
/// # Errors
/// [`DataflowError::Invalid`] when the port is absent (a runner bug or a hand-made call).
pub fn single_input<'a>(inputs: &'a Ports, port: &str) -> Result<&'a Frame> {
    inputs.get(port).ok_or_else(|| {
        DataflowError::invalid(format!(
            "no frame on input port `{port}` (ports given: {})",
            inputs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// One frame on the `df_out` port.
pub fn single_output(frame: Frame) -> Ports {
    let mut out = Ports::new();
    out.insert(DF_OUT.to_string(), frame);
    out
}
