//! `kaizenflow.Dag`: a config's DAG held in Python, fitted, predicted and stepped
//! bar by bar.
//!
//! `step(new_rows)` feeds the rows a notebook has just received: the DAG's source
//! node is swapped for one that gives those rows, and the DAG runs one call over
//! their interval, continuing from the state the last call carried (the same path
//! as a tiled or streamed run, so stepping gives a batch run's values to the bit).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use kaizenflow::dataflow::{
    Dag, DataflowError, Keep, Memory, Node, NodeId, Phase, Ports, RunContext, RunOptions,
};
use kaizenflow::frame::{Frame, LongRows, Timestamp};
use pyo3::prelude::*;

use crate::arrow_ffi::{ArrowTable, import_batches};
use crate::errors::to_py;

/// A source node that gives the rows last handed to `Dag.step`.
#[derive(Debug)]
struct Pushed {
    id: NodeId,
    rows: Arc<Mutex<Option<Frame>>>,
}

impl Node for Pushed {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "pushed_rows"
    }
    fn inputs(&self) -> Vec<String> {
        Vec::new()
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn run(&mut self, _: &RunContext, _: &Ports) -> kaizenflow::dataflow::Result<Ports> {
        let frame = self
            .rows
            .lock()
            .map_err(|_| DataflowError::invalid("the pushed rows' lock is poisoned"))?
            .clone()
            .ok_or_else(|| DataflowError::invalid("no rows were handed to step"))?;
        let mut p = Ports::new();
        p.insert(kaizenflow::dataflow::DF_OUT.to_string(), frame);
        Ok(p)
    }
}

/// A DAG built from a config, held for step-by-step use.
#[pyclass(module = "kaizenflow._kaizenflow", name = "Dag", unsendable)]
pub struct PyDag {
    dag: Dag,
    /// The DAG's one source node, for `step`.
    source: Option<NodeId>,
    /// The node not in the DAG now: the config's source while stepping, the pushed
    /// one otherwise.
    parked: Option<Box<dyn Node>>,
    /// Whether the pushed source is in the DAG.
    stepping: bool,
    rows: Arc<Mutex<Option<Frame>>>,
}

/// A bound of an interval: `None` for open, else a time (`2024-01-02 09:30`, UTC
/// unless it carries an offset).
fn bound(t: Option<&str>, open: i64) -> anyhow::Result<i64> {
    match t {
        None => Ok(open),
        Some(s) => Timestamp::parse(s)
            .map(|t| t.nanos())
            .with_context(|| format!("{s:?} is not a time (write it as 2024-01-02 09:30)")),
    }
}

impl PyDag {
    /// Puts the config's source back (or the pushed one, when `step`).
    fn use_source(&mut self, step: bool) -> anyhow::Result<()> {
        if self.stepping == step {
            return Ok(());
        }
        let Some(node) = self.parked.take() else {
            anyhow::bail!("internal: no parked source node");
        };
        self.parked = Some(self.dag.replace_node(node)?);
        self.stepping = step;
        Ok(())
    }

    /// The node whose output a call returns: `node`, or the DAG's one sink.
    fn target(&self, node: Option<&str>) -> anyhow::Result<NodeId> {
        if let Some(n) = node {
            return Ok(self.dag.node(n)?.id().clone());
        }
        match self.dag.sinks().as_slice() {
            [one] => Ok(one.clone()),
            many => anyhow::bail!(
                "the DAG has {} sinks ({}): name the node whose output you want with node=",
                many.len(),
                many.iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn call(&mut self, ctx: RunContext, node: Option<&str>) -> anyhow::Result<Frame> {
        let target = self.target(node)?;
        let opts = RunOptions {
            up_to: None,
            parallel: true,
            keep: Keep::Nodes(BTreeSet::from([target.clone()])),
        };
        let out = self.dag.run(&ctx, &opts)?;
        Ok(out.df_out(target.as_str())?.clone())
    }
}

#[pymethods]
impl PyDag {
    /// Builds the `[dag]` of a config (a path or TOML text) with its market data.
    #[staticmethod]
    #[pyo3(signature = (config, overrides=Vec::new()))]
    fn from_config(py: Python<'_>, config: String, overrides: Vec<String>) -> PyResult<PyDag> {
        let types = crate::types()?;
        let dag = py
            .detach(|| -> anyhow::Result<Dag> {
                let (config, label) = crate::load(&config, &overrides)?;
                let components = kaizenflow::system::build_with(types, &config)
                    .with_context(|| format!("{} is not a valid config", label.display()))?;
                config.check_all_used()?;
                components.dag.with_context(|| {
                    format!(
                        "{} has no [dag] section: add one (for example `[dag] type = \"mock1\"`)",
                        label.display()
                    )
                })
            })
            .map_err(to_py)?;
        let sources = dag.sources();
        let rows = Arc::new(Mutex::new(None));
        let (source, parked) = match sources.as_slice() {
            [one] => (
                Some(one.clone()),
                Some(Box::new(Pushed {
                    id: one.clone(),
                    rows: Arc::clone(&rows),
                }) as Box<dyn Node>),
            ),
            _ => (None, None),
        };
        Ok(PyDag {
            dag,
            source,
            parked,
            stepping: false,
            rows,
        })
    }

    /// The node ids, in topological order.
    #[getter]
    fn nodes(&self) -> Vec<String> {
        self.dag
            .topological_order()
            .into_iter()
            .map(|n| n.0)
            .collect()
    }

    /// Fits the DAG's models on the rows ending in `[start, end]` (all when open)
    /// and returns `node`'s (the sink's) output over them, in long layout.
    #[pyo3(signature = (start=None, end=None, node=None))]
    fn fit(
        &mut self,
        py: Python<'_>,
        start: Option<String>,
        end: Option<String>,
        node: Option<String>,
    ) -> PyResult<ArrowTable> {
        self.interval_call(py, Phase::Fit, start, end, node)
    }

    /// Predicts over the rows ending in `[start, end]`, continuing from the state
    /// the last call carried (call `reset` to start afresh), and returns `node`'s
    /// (the sink's) output, in long layout.
    #[pyo3(signature = (start=None, end=None, node=None))]
    fn predict(
        &mut self,
        py: Python<'_>,
        start: Option<String>,
        end: Option<String>,
        node: Option<String>,
    ) -> PyResult<ArrowTable> {
        self.interval_call(py, Phase::Predict, start, end, node)
    }

    /// One streaming call: `rows` (a long Arrow table: `end_ts`, `knowledge_ts`,
    /// `asset`, features) are the source's next rows; returns `node`'s (the
    /// sink's) output rows for them.
    #[pyo3(signature = (rows, node=None))]
    fn step(
        &mut self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        node: Option<String>,
    ) -> PyResult<ArrowTable> {
        let (_, batches) = import_batches(rows)?;
        let this = &mut *self;
        let out = py
            .detach(|| -> anyhow::Result<_> {
                if this.source.is_none() {
                    anyhow::bail!(
                        "step feeds a DAG with one source node; this one has {} ({}): use \
                         predict",
                        this.dag.sources().len(),
                        this.dag
                            .sources()
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let frame = Frame::from_long_batches(&batches)
                    .context("the rows given to step are not a long-layout frame")?;
                let (Some(&first), Some(&last)) = (frame.end_ts().first(), frame.end_ts().last())
                else {
                    anyhow::bail!("step was given no rows");
                };
                *this
                    .rows
                    .lock()
                    .map_err(|_| anyhow::anyhow!("the pushed rows' lock is poisoned"))? =
                    Some(frame);
                this.use_source(true)?;
                let ctx = RunContext::new(Phase::Predict, Some((first, last)));
                this.call(ctx, node.as_deref())?
                    .to_long(LongRows::Present)
                    .context("cannot lay the output out long")
            })
            .map_err(to_py)?;
        Ok(ArrowTable::one(out))
    }

    /// Forgets the state carried from call to call (not what the models learned).
    fn reset(&mut self) {
        self.dag.reset();
    }
}

impl PyDag {
    fn interval_call(
        &mut self,
        py: Python<'_>,
        phase: Phase,
        start: Option<String>,
        end: Option<String>,
        node: Option<String>,
    ) -> PyResult<ArrowTable> {
        let this = &mut *self;
        let out = py
            .detach(|| -> anyhow::Result<_> {
                this.use_source(false)?;
                let interval = match (&start, &end) {
                    (None, None) => None,
                    _ => Some((
                        bound(start.as_deref(), i64::MIN)?,
                        bound(end.as_deref(), i64::MAX)?,
                    )),
                };
                let mut ctx = RunContext::new(phase, interval);
                if phase == Phase::Fit
                    && let Some((_, e)) = interval
                {
                    ctx = ctx.deciding_at(e);
                }
                this.call(ctx, node.as_deref())?
                    .to_long(LongRows::Present)
                    .context("cannot lay the output out long")
            })
            .map_err(to_py)?;
        Ok(ArrowTable::one(out))
    }
}
