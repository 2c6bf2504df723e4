//! A user's crate: what a team adopting KaizenFlow writes in its own repository.
//!
//! It depends on the `kaizenflow` facade only, and adds three types that its TOML
//! configs name like built-ins:
//! - the node `cutler_rsi` ([`Rsi`]), Cutler's relative strength index written as a
//!   [`ColumnKernel`](kaizenflow::dataflow::column::ColumnKernel), so it tiles, streams and passes `kaizenflow check` like the
//!   library's nodes;
//! - the market data source `jsonl` ([`JsonLines`]): one bar of one asset per line;
//! - the forecast processor `rsi_contrarian` ([`RsiContrarian`]): short when the RSI
//!   is high, long when it is low.
//!
//! [`registries`] is the built-ins plus these three. Library code runs a config
//! with [`kaizenflow::system::build_with`] or
//! [`kaizenflow::system::System::from_config_with`]; the crate's program (its
//! `main.rs`) is the whole `kaizenflow` command line with them:
//! `kaizenflow::cli::main_with(registries())`.

#![deny(missing_docs)]

mod jsonl;
mod processor;
mod rsi;

/// The walk-through of this crate (`docs/extending.md`), whose code blocks run as
/// this crate's doc tests.
#[doc = include_str!("../../../docs/extending.md")]
pub mod guide {}

pub use jsonl::{JsonLines, JsonLinesParams};
pub use processor::{RsiContrarian, RsiContrarianParams};
pub use rsi::{Rsi, RsiParams};

use kaizenflow::Registries;
use kaizenflow::config::{ConfigError, TypeDoc};
use kaizenflow::dataflow::column::ColMode;

/// The built-in types plus this crate's `cutler_rsi`, `jsonl` and `rsi_contrarian`
/// (the built-in `rsi` is Wilder's, with smoothed averages).
///
/// # Errors
/// [`ConfigError::DuplicateBuilder`] if a name is already taken (it is not, for the
/// built-ins of this version).
pub fn registries() -> Result<Registries, ConfigError> {
    let mut types = Registries::default();
    kaizenflow::dataflow::register_column(
        &mut types.dataflow.nodes,
        "cutler_rsi",
        "relative strength index over the last `window` changes, 0 to 100",
        ColMode::Append,
        |s, p: RsiParams| {
            if p.window == 0 {
                return Err(s.invalid("window", "must be at least 1"));
            }
            Ok(Rsi::new(p))
        },
    )?;
    types.register_source(
        "jsonl",
        TypeDoc::new("JSON lines: one bar of one asset per line")
            .params_of::<JsonLinesParams>()
            .example("path = \"bars.jsonl\""),
        |s| Ok(Box::new(JsonLines::from_config(s)?) as Box<dyn kaizenflow::datapull::Source>),
    )?;
    types.register_processor(
        "rsi_contrarian",
        TypeDoc::new("short `shares` above `upper`, long below `lower`, flat between")
            .params_of::<RsiContrarianParams>(),
        |s| {
            let p: RsiContrarianParams = s.deserialize()?;
            if !(p.lower.is_finite() && p.upper.is_finite()) || p.lower >= p.upper {
                return Err(s.invalid(
                    "lower",
                    "`lower` and `upper` must be finite, with `lower` below `upper`",
                ));
            }
            if !(p.shares.is_finite() && p.shares > 0.0) {
                return Err(s.invalid("shares", "must be a positive number"));
            }
            Ok(Box::new(RsiContrarian::new(p)) as Box<dyn kaizenflow::system::ForecastProcessor>)
        },
    )?;
    Ok(types)
}
