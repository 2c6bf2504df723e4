//! Bounds on the sizes a config can ask of a node, checked when the node is built,
//! before anything is allocated.
//!
//! A window, a lag, a delay or a shift is memory a node keeps per asset and feature;
//! a size beyond these bounds cannot be what a user meant, and allocating it would
//! abort the process (or overflow a capacity) instead of saying which key was wrong.

use kf_config::Section;

/// The most earlier (or later) rows a node may remember: a rolling window, a lag, a
/// shift, a delay. Ten million rows is 19 years of one-minute bars around the clock.
pub const MAX_ROWS_BACK: usize = 10_000_000;

/// The most lagged copies one `lags` node may add (each is a feature of its own).
pub const MAX_LAGS: usize = 1_000;

/// The most iterated EMAs one `ema` node may chain.
pub const MAX_EMA_DEPTH: usize = 100;

/// Refuses `value` at `key` when it exceeds `max`, naming the key and the limit.
///
/// # Errors
/// A located config error.
pub(crate) fn at_most(
    s: &Section<'_>,
    key: &str,
    value: u128,
    max: usize,
    what: &str,
) -> kf_config::Result<()> {
    if value > max as u128 {
        return Err(s.invalid(
            key,
            format!("{value} is more than the {max} {what} a node may take; use a smaller value"),
        ));
    }
    Ok(())
}

/// Refuses a float parameter that is NaN or infinite.
///
/// # Errors
/// A located config error.
pub(crate) fn finite(s: &Section<'_>, key: &str, value: f64) -> kf_config::Result<()> {
    if !value.is_finite() {
        return Err(s.invalid(key, format!("must be a finite number, not {value}")));
    }
    Ok(())
}
