//! The `python` node type: a user's Python function over the frame of one call.
//!
//! The function receives the rows of the call (after the `memory` rows carried
//! from the calls before) as a pandas frame with `(feature, asset)` columns, or as
//! a long pyarrow table, and returns the same rows with its features. Everything a
//! built-in node promises is then the framework's job: carrying `memory` rows from
//! tile to tile, the knowledge time of each output row, and the checks that tell
//! the user whether the function is causal and tilable. The cost is one call per
//! tile, under the GIL: Python nodes of one DAG never run at the same time.

use kaizenflow::config::{Section, TypeDoc};
use kaizenflow::dataflow::column::ColMode;
use kaizenflow::dataflow::nodes::{BuildContext, node_id};
use kaizenflow::dataflow::{DataflowError, Memory, Node, NodeId, Ports, RunContext};
use kaizenflow::frame::{Frame, LongRows};
use pyo3::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::arrow_ffi::{ArrowTable, import_batches};

/// Parameters of `python`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PythonParams {
    /// The function: a name given to `kaizenflow.register_node`, or `module:attribute`
    /// of an importable module.
    pub function: String,
    /// How many rows before each row the function reads (0: each row alone). The
    /// framework hands it that many earlier rows ahead of each call's rows, so a
    /// tiled or streamed run computes what a batch run does. `-1`: every row since
    /// the start (then the DAG is never cut into tiles).
    #[serde(default)]
    pub memory: i64,
    /// What the function receives and returns: `pandas` (a DataFrame indexed by
    /// `end_ts`, with `(feature, asset)` columns) or `arrow` (a long pyarrow table:
    /// `end_ts`, `knowledge_ts`, `asset`, one column per feature).
    #[serde(default = "pandas")]
    pub frame: String,
    /// `append`: the input's features, then the function's; `replace_all`: only the
    /// function's.
    #[serde(default)]
    pub col_mode: ColMode,
}

fn pandas() -> String {
    "pandas".to_string()
}

/// A `python` node.
#[derive(Debug)]
pub struct PythonNode {
    id: NodeId,
    params: PythonParams,
    memory: Memory,
    /// The last rows of earlier calls (at most `memory` of them).
    carry: Option<Frame>,
}

/// Registers `python` on `types`.
///
/// # Errors
/// The name is taken.
pub fn register(types: &mut kaizenflow::Registries) -> kaizenflow::config::Result<()> {
    types.register_node(
        "python",
        TypeDoc::new(
            "a Python function over the frame of each call (pandas or pyarrow in, the same \
             rows out), with the rows of history it declares carried between calls",
        )
        .params_of::<PythonParams>()
        .example("function = \"my_module:zscore\"\nmemory = 20"),
        |s: &Section<'_>, _: &BuildContext<'_>| {
            let p: PythonParams = s.deserialize()?;
            let memory = match p.memory {
                -1 => Memory::AllHistory,
                0 => Memory::Row,
                n if n > 0 => Memory::Rows(n as usize),
                n => {
                    return Err(s
                        .invalid(
                            "memory",
                            format!("{n}: give the rows of history the function reads (0 or more), or -1 for all"),
                        ));
                }
            };
            if p.frame != "pandas" && p.frame != "arrow" {
                return Err(s
                    .invalid("frame", format!("{:?}: write \"pandas\" or \"arrow\"", p.frame)));
            }
            if p.col_mode == ColMode::ReplaceSelected {
                return Err(s
                    .invalid("col_mode", "a python node has `append` or `replace_all`"));
            }
            if p.function.trim().is_empty() {
                return Err(s.invalid("function", "name the function"));
            }
            // An unknown name or a module that does not import is a config error,
            // reported where the config names it, before anything runs.
            let found = Python::attach(|py| -> PyResult<()> {
                py.import("kaizenflow._nodes")?
                    .call_method1("resolve", (p.function.as_str(),))?;
                Ok(())
            });
            if let Err(e) = found {
                let text = Python::attach(|py| e.value(py).to_string());
                return Err(s.invalid("function", text));
            }
            Ok(Box::new(PythonNode {
                id: NodeId(node_id(s)),
                params: p,
                memory,
                carry: None,
            }) as Box<dyn Node>)
        },
    )?;
    Ok(())
}

impl PythonNode {
    /// Calls the function on `input`: the rows, in the frame the node declares.
    fn call(&self, input: &Frame) -> Result<Frame, DataflowError> {
        let batch = input.to_long(LongRows::All)?;
        let out = Python::attach(|py| -> PyResult<_> {
            let nodes = py.import("kaizenflow._nodes")?;
            let table = Py::new(py, ArrowTable::one(batch))?;
            let result = nodes.call_method1(
                "call",
                (
                    self.params.function.as_str(),
                    self.params.frame.as_str(),
                    table,
                    self.id.as_str(),
                    input.assets().to_vec(),
                ),
            )?;
            import_batches(&result)
        })
        .map_err(|e| {
            DataflowError::invalid(format!(
                "the Python function `{}` failed: {}",
                self.params.function,
                crate::errors::python_message(&e)
            ))
        })?;
        let (schema, batches) = out;
        if input.n_rows() == 0 {
            // No rows, so no assets in the long table: the features are in its schema.
            let features = kaizenflow::frame::long::feature_columns(&schema);
            return Ok(Frame::empty(input.assets().to_vec(), features)?);
        }
        let frame = Frame::from_long_batches(&batches).map_err(|e| {
            DataflowError::invalid(format!(
                "the Python function `{}` returned a table that is not a frame: {e}",
                self.params.function
            ))
        })?;
        if frame.end_ts() != input.end_ts() {
            return Err(DataflowError::invalid(format!(
                "the Python function `{}` returned {} rows for an input of {} (or other \
                 times): return one row per input row, with the input's index",
                self.params.function,
                frame.n_rows(),
                input.n_rows()
            )));
        }
        let frame = frame.select_assets(input.assets()).map_err(|e| {
            DataflowError::invalid(format!(
                "the Python function `{}` did not return every asset of its input: {e}",
                self.params.function
            ))
        })?;
        // A row is known when the latest input row it may have read is.
        let back = match self.memory {
            Memory::Rows(n) => n,
            Memory::AllHistory => usize::MAX,
            _ => 0,
        };
        let known = input.knowledge_ts();
        let mut latest = Vec::with_capacity(known.len());
        let mut window = std::collections::VecDeque::<(usize, i64)>::new();
        for (r, &k) in known.iter().enumerate() {
            while window.back().is_some_and(|&(_, v)| v <= k) {
                window.pop_back();
            }
            window.push_back((r, k));
            while window
                .front()
                .is_some_and(|&(i, _)| back != usize::MAX && i + back < r)
            {
                window.pop_front();
            }
            latest.push(window.front().map_or(k, |&(_, v)| v));
        }
        Ok(frame.with_knowledge_ts(latest)?)
    }
}

impl Node for PythonNode {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "python"
    }
    fn memory(&self) -> Memory {
        self.memory
    }
    /// A function over a frame may mix assets (a rank, a demean): the node always
    /// sees every asset.
    fn cross_sectional(&self) -> bool {
        true
    }
    fn run(&mut self, _: &RunContext, inputs: &Ports) -> kaizenflow::dataflow::Result<Ports> {
        let input = inputs
            .get(kaizenflow::dataflow::DF_IN)
            .ok_or_else(|| DataflowError::invalid("a python node needs its `df_in` input"))?;
        let context = match self.carry.take() {
            Some(c) if c.n_rows() > 0 && input.n_rows() > 0 => Frame::concat(&[c, input.clone()])
                .map_err(|e| {
                DataflowError::invalid(format!(
                    "cannot put the rows carried from the last call before this call's: {e}"
                ))
            })?,
            Some(c) if input.n_rows() == 0 => {
                self.carry = Some(c);
                input.clone()
            }
            _ => input.clone(),
        };
        let skip = context.n_rows() - input.n_rows();
        let computed = self.call(&context)?;
        let keep = match self.memory {
            Memory::Rows(n) => n.min(context.n_rows()),
            Memory::AllHistory => context.n_rows(),
            _ => 0,
        };
        if keep > 0 {
            self.carry = Some(context.slice(context.n_rows() - keep, keep)?);
        }
        let mine = computed.slice(skip, input.n_rows())?;
        let out = match self.params.col_mode {
            ColMode::Append => {
                let added: Vec<(String, Vec<f64>)> = (0..mine.n_features())
                    .map(|i| {
                        (
                            mine.features()[i].clone(),
                            mine.feature_at(i).values().to_vec(),
                        )
                    })
                    .collect();
                input
                    .with_features(added)?
                    .with_knowledge_ts(mine.knowledge_ts().to_vec())?
            }
            _ => mine,
        };
        let mut ports = Ports::new();
        ports.insert(kaizenflow::dataflow::DF_OUT.to_string(), out);
        Ok(ports)
    }
    fn reset(&mut self) {
        self.carry = None;
    }
}
