//! System: a forecast DAG plus forecast processing, portfolio, broker and clock,
//! cycling through time (simulated, replayed or wall clock), built from one config.
//!
//! It owns the top-level layout of a system config: which sections exist and which
//! registry builds each. [`build`] validates a config by building every component it
//! describes without running anything, which is what `kaizenflow config show` does.
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

pub mod broker;
pub mod engine;
pub mod error;
pub mod market;
pub mod output;
pub mod portfolio;
pub mod processor;
pub mod research;
pub mod spec;

pub use engine::{Fills, Orders, System, SystemRun};
pub use error::SystemError;
pub use portfolio::{BarRecord, Stats};
pub use spec::{ClockKind, SystemSpec};

use std::sync::Arc;

use kf_config::{Config, Result};
use kf_dataflow::runner::RunSpec;
use kf_dataflow::{BuildContext, Dag, dag_registry};
use kf_datapull::MarketData;

/// The components a config describes, built and validated, not yet run.
#[derive(Debug)]
pub struct Components {
    /// The market data view (`[market_data]`, by `type`).
    pub market_data: Arc<dyn MarketData>,
    /// The forecast DAG (`[dag]`, by `type`), fed by the market data unless its
    /// sources say otherwise.
    pub dag: Option<Dag>,
    /// The runner (`[run]`; fit on nothing and predict on everything when absent).
    pub run: RunSpec,
    /// The `[system]` settings, when the config describes a trading system.
    pub system: Option<SystemSpec>,
}

/// Builds every component `config` describes.
///
/// Does not check for unread keys: call [`Config::check_all_used`] after this (and
/// after anything else that reads the config).
///
/// # Errors
/// The first configuration error, located at its file, line and key path.
pub fn build(config: &Config) -> Result<Components> {
    let root = config.root();
    let market_data: Arc<dyn MarketData> =
        Arc::from(kf_datapull::market_data_registry().build(&root.section("market_data")?)?);
    let ctx = BuildContext {
        market_data: Some(Arc::clone(&market_data)),
    };
    let dag = if root.contains("dag") {
        Some(dag_registry(&ctx)?.build(&root.section("dag")?)?)
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
    let system = if root.contains("system") {
        Some(SystemSpec::from_section(&root.section("system")?)?.0)
    } else {
        None
    };
    Ok(Components {
        market_data,
        dag,
        run,
        system,
    })
}
