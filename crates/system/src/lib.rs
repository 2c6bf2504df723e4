//! System: a forecast DAG plus forecast processing, portfolio, broker and clock,
//! cycling through time (simulated, replayed or wall clock), built from one config.
//!
//! It owns the top-level layout of a system config: which sections exist and which
//! registry builds each. [`build`] validates a config by building every component it
//! describes without running anything, which is what `kaizenflow config show` does.
//! The portfolio loop is filled by the system issue.

#![deny(missing_docs)]

use kf_config::{Config, Result};
use kf_datapull::MarketData;

/// The components a config describes, built and validated, not yet run.
#[derive(Debug)]
pub struct Components {
    /// The market data view (`[market_data]`, by `type`).
    pub market_data: Box<dyn MarketData>,
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
    let market_data = kf_datapull::market_data_registry().build(&root.section("market_data")?)?;
    Ok(Components { market_data })
}
