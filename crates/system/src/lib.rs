//! System: a forecast DAG plus forecast processing, portfolio, broker and clock,
//! cycling through time (simulated, replayed or wall clock), built from one config.
//!
//! It owns the top-level layout of a system config: which sections exist and which
//! registry builds each. [`build`] validates a config by building every component it
//! describes without running anything, which is what `kaizenflow config show` does.
//! The portfolio loop is filled by the system issue.

#![deny(missing_docs)]

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
    Ok(Components {
        market_data,
        dag,
        run,
    })
}
