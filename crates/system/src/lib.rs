//! System: a forecast DAG plus forecast processing, portfolio, broker and clock,
//! cycling through time (simulated, replayed or wall clock), built from one config.
//!
//! It owns the top-level layout of a system config: which sections exist and which
//! registry builds each, and [`Registries`], the one value that holds every type a
//! config can name (the built-ins by default, plus a user crate's own).
//! [`build_with`] is the one path from a config to its components: it builds
//! everything the config describes without reading data, checking the DAG's columns
//! and the forecast columns, and `kaizenflow config show`, `check`, `run`, `sweep`
//! and [`System::from_config_with`] all go through it.
//!
//! The primary type is [`System`]: `[market_data]` + `[dag]` + `[system]` (decision
//! period, processor, costs, clock). [`System::run`] cycles through the decision
//! times: wait for the bar's data, fill the last bar's orders at this bar's TWAP or
//! VWAP, mark to market, run one streaming step of the DAG, turn its forecasts into
//! orders. The DAG stays acyclic; the portfolio's state feeds the next decision
//! through time.
//!
//! The key design decision: the loop is one `async` function over a
//! [`kf_datapull::Clock`], and the market data reaches both the DAG and the broker
//! through a [`kf_datapull::Replayed`] view on that clock. A simulated clock jumps to
//! each wake-up (as fast as the machine allows), a replayed clock runs scaled wall
//! time, the wall clock is real time; the system code is the same under each, so
//! their orders, fills and P&L are the same. [`research::research`] computes the
//! same P&L from batch forecasts by a second algorithm, which tests hold it to.

#![deny(missing_docs)]

mod book;
mod broker;
mod checkpoint;
pub mod durable;
mod engine;
mod error;
mod fill_rule;
mod learning;
pub mod live;
mod market;
pub mod optimize;
pub mod output;
mod portfolio;
mod prefault;
mod processor;
pub mod report;
pub mod research;
mod spec;

pub use broker::{CostModel, FillPrice, FillTotals, fill_orders};
pub use engine::{Audit, Fills, Orders, System, SystemRun};
pub use error::SystemError;
pub use learning::{FitRecord, States, fit_at, fit_decisions, fit_span};
pub use market::Market;
pub use portfolio::{BarRecord, Stats};
pub use processor::{CrossSectional, CrossSectionalParams, Decide, Threshold, ThresholdParams};
pub use spec::{ClockKind, ClockSpec, FitSpec, Missing, SystemSpec};

use std::sync::{Arc, OnceLock};

use kf_config::{Config, Result, Section, TypeDoc};
use kf_dataflow::runner::RunSpec;
use kf_dataflow::{BuildContext, Dag, DataflowTypes, Node};
use kf_datapull::{MarketData, Source};

pub use processor::{ForecastProcessor, ProcessorTypes, builtin_processors};

/// Every type a config can name by `type`: node types, DAG builders, market data
/// sources and views (in `dataflow`), and forecast processors. The built-ins are
/// [`Registries::default`]; a user's crate adds its own and passes the value to
/// [`build_with`], [`System::from_config_with`] or the command line
/// (`kaizenflow::cli::main_with`), so its configs can name them.
///
/// ```
/// use kf_system::Registries;
///
/// let mut types = Registries::default();
/// assert!(types.dataflow.nodes.contains("ema"));
/// assert!(types.dataflow.data.sources.contains("synthetic"));
/// assert!(types.processors.contains("cross_sectional"));
/// // A user's source would be registered like this one (here: a second name for
/// // the synthetic generator).
/// types.register_source("my_bars", kf_config::TypeDoc::new("my bars"), |s| {
///     Ok(Box::new(kf_datapull::SyntheticBars::from_config(s)?) as Box<dyn kf_datapull::Source>)
/// })?;
/// assert!(types.dataflow.data.sources.contains("my_bars"));
/// # Ok::<(), kf_config::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Registries {
    /// Nodes, DAG builders, sources and views.
    pub dataflow: DataflowTypes,
    /// Forecast processors.
    pub processors: ProcessorTypes,
}

impl Default for Registries {
    fn default() -> Self {
        Registries {
            dataflow: DataflowTypes::default(),
            processors: builtin_processors(),
        }
    }
}

impl Registries {
    /// The built-ins, built once and shared (what [`build`] and
    /// [`System::from_config`] use).
    pub fn builtin() -> &'static Registries {
        static BUILTIN: OnceLock<Registries> = OnceLock::new();
        BUILTIN.get_or_init(Registries::default)
    }

    /// Registers a node type.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_node<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>, &BuildContext<'_>) -> Result<Box<dyn Node>> + Send + Sync + 'static,
    {
        self.dataflow.register_node(name, doc, build)?;
        Ok(self)
    }

    /// Registers a market data source type (read through a historical view, and
    /// usable inside `replayed` and `stitched`).
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_source<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>) -> Result<Box<dyn Source>> + Send + Sync + 'static,
    {
        self.dataflow.data.register_source(name, doc, build)?;
        Ok(self)
    }

    /// Registers a market data view type (a view over other views or sources, built
    /// with the registries at hand).
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_view<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>, &kf_datapull::DataTypes) -> Result<Arc<dyn MarketData>>
            + Send
            + Sync
            + 'static,
    {
        self.dataflow.data.register_view(name, doc, build)?;
        Ok(self)
    }

    /// Registers a DAG builder (`[dag] type`).
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_dag<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>, &BuildContext<'_>) -> Result<Dag> + Send + Sync + 'static,
    {
        self.dataflow.register_dag(name, doc, build)?;
        Ok(self)
    }

    /// Registers a forecast processor type.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_processor<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>) -> Result<Box<dyn ForecastProcessor>> + Send + Sync + 'static,
    {
        self.processors.insert(name, doc, Box::new(build))?;
        Ok(self)
    }
}

/// The components a config describes, built and validated, not yet run.
#[derive(Debug)]
pub struct Components {
    /// The market data view (`[market_data]`, by `type`).
    pub market_data: Arc<dyn MarketData>,
    /// The forecast DAG (`[dag]`, by `type`), fed by the market data without its
    /// clock (all of it, as a batch run reads it) unless its sources say otherwise.
    pub dag: Option<Dag>,
    /// The runner (`[run]`; fit on nothing and predict on everything when absent).
    pub run: RunSpec,
    /// The `[system]` settings, when the config describes a trading system.
    pub system: Option<SystemSpec>,
    /// The `[system]`'s forecast processor.
    pub processor: Option<Box<dyn ForecastProcessor>>,
}

/// Builds every component `config` describes from the built-in types.
///
/// # Errors
/// See [`build_with`].
pub fn build(config: &Config) -> Result<Components> {
    build_with(Registries::builtin(), config)
}

/// Builds every component `config` describes, naming types from `types`: the one
/// path from a config to a system that `config show`, `check`, `run` and `sweep`
/// take. Nothing is read from the data (sources are opened, not loaded), but the
/// DAG's columns and the `[system]`'s forecast columns are checked against what
/// the nodes declare.
///
/// Does not check for unread keys: call [`Config::check_all_used`] after this (and
/// after anything else that reads the config).
///
/// # Errors
/// The first configuration error, located at its file, line and key path; a
/// misspelt feature names the node, the features there are and the closest one.
pub fn build_with(types: &Registries, config: &Config) -> Result<Components> {
    let root = config.root();
    let market_data = types.dataflow.data.view(&root.section("market_data")?)?;
    // The DAG of a batch run reads all the data the view would ever show; the
    // system and the replay check put the view on their own clocks.
    let batch_data = market_data
        .unclocked()
        .unwrap_or_else(|_| Arc::clone(&market_data));
    let dag = if root.contains("dag") {
        Some(
            types
                .dataflow
                .dag(&root.section("dag")?, Some(&batch_data))?,
        )
    } else {
        None
    };
    let run = if root.contains("run") {
        RunSpec::from_section(&root.section("run")?)?
    } else {
        RunSpec::FitPredict {
            fit: None,
            predict: None,
        }
    };
    let (system, processor) = if root.contains("system") {
        let section = root.section("system")?;
        let (spec, processor) = SystemSpec::from_section(&section, &types.processors)?;
        if let Some(dag) = &dag {
            check_forecast_columns(&section, &spec, dag)?;
        }
        (Some(spec), Some(processor))
    } else {
        (None, None)
    };
    Ok(Components {
        market_data,
        dag,
        run,
        system,
        processor,
    })
}

/// Checks that `[system] prediction`, `volatility` and `horizons` are features of the forecast
/// node's output, when the DAG's columns are known before running.
fn check_forecast_columns(s: &Section<'_>, spec: &SystemSpec, dag: &Dag) -> Result<()> {
    let node = match &spec.forecast_node {
        Some(n) => match dag.node(n) {
            Ok(node) => node.id().clone(),
            Err(e) => return Err(s.invalid("forecast_node", e.to_string())),
        },
        None => match dag.sinks().as_slice() {
            [one] => one.clone(),
            _ => return Ok(()),
        },
    };
    let Ok(schema) = dag.features() else {
        return Ok(());
    };
    let Some(Some(out)) = schema.get(&node) else {
        return Ok(());
    };
    let Some(features) = out.get(kf_dataflow::DF_OUT) else {
        return Ok(());
    };
    let wanted = [
        ("prediction", Some(&spec.prediction)),
        ("volatility", spec.volatility.as_ref()),
    ]
    .into_iter()
    .chain(spec.horizons.iter().map(|h| ("horizons", Some(h))));
    for (key, want) in wanted {
        let Some(want) = want else { continue };
        if !features.contains(want) {
            let hint = kf_config::did_you_mean(want, features.iter().map(String::as_str));
            return Err(s.invalid(
                key,
                format!(
                    "`{want}` is not a feature of the forecast node `{node}`'s output; the \
                     features there are: {}{hint}",
                    features.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
