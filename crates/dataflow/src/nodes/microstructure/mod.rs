//! Market-microstructure nodes on trade ticks (seed 002, "High-Performance
//! Computational Intelligence & Forecasting"): bars from ticks, bulk volume
//! classification, VPIN with its events, and the arrival-time spectrum that shows
//! algorithms trading on a clock.
//!
//! Every node carries its state from call to call (an open bar, the last price,
//! the open volume bucket, the running sums of a spectrum) and emits a row only
//! when it is complete, so batch, tiled and one-row streaming runs give the same
//! rows to the bit.

mod bars;
mod bvc;
mod spectrum;
mod vpin;

pub use bars::{BarKind, TickBars, TickBarsParams};
pub use bvc::{Bvc, BvcParams, student_t_cdf};
pub use spectrum::{ArrivalSpectrum, SpectrumParams};
pub use vpin::{Vpin, VpinParams};

use crate::nodes::NodeTypes;

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    bars::register(r)?;
    bvc::register(r)?;
    vpin::register(r)?;
    spectrum::register(r)?;
    Ok(())
}

/// Per-asset state, sized on the first call; a later call with another number of
/// assets is an error (a run keeps one universe).
pub(crate) fn sized<S: Clone>(
    states: &mut Vec<S>,
    n: usize,
    fresh: impl Fn() -> S,
    node: &str,
) -> crate::error::Result<()> {
    if states.is_empty() {
        *states = vec![fresh(); n];
    } else if states.len() != n {
        return Err(crate::error::DataflowError::invalid(format!(
            "node `{node}`: the input has {n} assets, but earlier calls had {}; a run keeps \
             one asset universe (reset the DAG to start over)",
            states.len()
        )));
    }
    Ok(())
}
