//! Technical indicators and a classification label, as seed 004 names them: `rsi`
//! (Wilder's relative strength index), `macd` (moving average convergence
//! divergence), `volume_zscore` (a rolling z-score of log volume) and `direction`
//! (up / flat / down over the next `horizon` rows: a forward target).
//!
//! Each indicator is a sequential scan per asset with its state carried from call to
//! call, so batch, tiled and streaming runs compute the same numbers to the bit. A
//! NaN input gives a NaN output and does not advance its asset's state.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::Frame;

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, Ring, scan, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext, require};
use crate::nodes::smooth::{Stat, window_stat};
use crate::nodes::{NodeTypes, register_column};

/// Parameters of `rsi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RsiParams {
    /// Wilder's period `n` (rows): the averages start as the mean of the first `n`
    /// changes and then move by `1/n` of each new change.
    pub window: usize,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for RsiParams {
    fn default() -> Self {
        RsiParams {
            window: 14,
            suffix: ".rsi".into(),
        }
    }
}

/// One asset's RSI state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct RsiState {
    prev: f64,
    changes: usize,
    gain: f64,
    loss: f64,
}

/// The `rsi` kernel: `100 * avg_gain / (avg_gain + avg_loss)` (the same as
/// `100 - 100 / (1 + RS)`), 50 when the price did not move over the averages, NaN
/// for the first `window` values (TA-Lib's convention).
#[derive(Clone, Debug)]
pub struct Rsi {
    params: RsiParams,
    states: AssetStates<RsiState>,
}

impl Rsi {
    /// An RSI kernel; `window >= 1` is the caller's to check.
    pub fn new(params: RsiParams) -> Rsi {
        Rsi {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Rsi {
    fn kind(&self) -> &str {
        "rsi"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let w = self.params.window;
        let init = RsiState {
            prev: f64::NAN,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        };
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(slot, input.n_assets(), init.clone())?;
            let v = scan(input.feature_at(c).values(), st, NanMode::Drop, |s, x| {
                if s.prev.is_nan() {
                    s.prev = x;
                    return f64::NAN;
                }
                let d = x - s.prev;
                s.prev = x;
                let (g, l) = (d.max(0.0), (-d).max(0.0));
                s.changes += 1;
                if s.changes <= w {
                    s.gain += g;
                    s.loss += l;
                    if s.changes < w {
                        return f64::NAN;
                    }
                    s.gain /= w as f64;
                    s.loss /= w as f64;
                } else {
                    let k = (w - 1) as f64;
                    s.gain = (s.gain * k + g) / w as f64;
                    s.loss = (s.loss * k + l) / w as f64;
                }
                let total = s.gain + s.loss;
                if total > 0.0 {
                    100.0 * s.gain / total
                } else {
                    50.0
                }
            });
            out.push((format!("{}{}", input.features()[c], self.params.suffix), v));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// Parameters of `macd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MacdParams {
    /// Span of the fast EMA (rows; `alpha = 2 / (span + 1)`).
    pub fast: usize,
    /// Span of the slow EMA.
    pub slow: usize,
    /// Span of the signal line (an EMA of the MACD line).
    pub signal: usize,
}

impl Default for MacdParams {
    fn default() -> Self {
        MacdParams {
            fast: 12,
            slow: 26,
            signal: 9,
        }
    }
}

/// One asset's MACD state: the fast, slow and signal EMAs (NaN before the first
/// value).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct MacdState {
    fast: f64,
    slow: f64,
    signal: f64,
}

/// The `macd` kernel: for each column, `{col}.macd` (fast EMA - slow EMA),
/// `{col}.macd_signal` (EMA of the MACD line) and `{col}.macd_hist` (their
/// difference). The EMAs are pandas' `ewm(span, adjust=False)`: each starts at its
/// first value.
#[derive(Clone, Debug)]
pub struct Macd {
    params: MacdParams,
    states: AssetStates<MacdState>,
}

impl Macd {
    /// A MACD kernel; `1 <= fast < slow` and `signal >= 1` are the caller's to check.
    pub fn new(params: MacdParams) -> Macd {
        Macd {
            params,
            states: AssetStates::default(),
        }
    }
}

fn ema_next(prev: f64, alpha: f64, x: f64) -> f64 {
    if prev.is_nan() {
        x
    } else {
        prev + alpha * (x - prev)
    }
}

impl ColumnKernel for Macd {
    fn kind(&self) -> &str {
        "macd"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(cols
            .iter()
            .flat_map(|&c| {
                ["macd", "macd_signal", "macd_hist"].map(|s| format!("{}.{s}", features[c]))
            })
            .collect())
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let alpha = |span: usize| 2.0 / (span as f64 + 1.0);
        let (af, asl, asg) = (
            alpha(self.params.fast),
            alpha(self.params.slow),
            alpha(self.params.signal),
        );
        let n = input.n_assets();
        let init = MacdState {
            fast: f64::NAN,
            slow: f64::NAN,
            signal: f64::NAN,
        };
        let mut out = Vec::with_capacity(3 * cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(slot, n, init.clone())?;
            let values = input.feature_at(c).values();
            let mut line = Vec::with_capacity(values.len());
            let mut signal = Vec::with_capacity(values.len());
            let mut hist = Vec::with_capacity(values.len());
            if n > 0 {
                for row in values.chunks_exact(n) {
                    for (&x, s) in row.iter().zip(st.iter_mut()) {
                        if x.is_nan() {
                            line.push(f64::NAN);
                            signal.push(f64::NAN);
                            hist.push(f64::NAN);
                            continue;
                        }
                        s.fast = ema_next(s.fast, af, x);
                        s.slow = ema_next(s.slow, asl, x);
                        let m = s.fast - s.slow;
                        s.signal = ema_next(s.signal, asg, m);
                        line.push(m);
                        signal.push(s.signal);
                        hist.push(m - s.signal);
                    }
                }
            }
            let name = &input.features()[c];
            out.push((format!("{name}.macd"), line));
            out.push((format!("{name}.macd_signal"), signal));
            out.push((format!("{name}.macd_hist"), hist));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// Parameters of `volume_zscore`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VolumeZscoreParams {
    /// Rows in the window (the current row included).
    pub window: usize,
    /// Score `ln(1 + volume)` instead of the volume (volumes are heavy-tailed).
    pub log: bool,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for VolumeZscoreParams {
    fn default() -> Self {
        VolumeZscoreParams {
            window: 60,
            log: true,
            suffix: ".zscore".into(),
        }
    }
}

/// The `volume_zscore` kernel: `(v - mean) / std` of the last `window` present
/// values (sample std), NaN until the window is full or when the std is 0. A
/// negative volume is NaN.
#[derive(Clone, Debug)]
pub struct VolumeZscore {
    params: VolumeZscoreParams,
    states: AssetStates<Ring>,
}

impl VolumeZscore {
    /// A volume z-score kernel; `window >= 2` is the caller's to check.
    pub fn new(params: VolumeZscoreParams) -> VolumeZscore {
        VolumeZscore {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for VolumeZscore {
    fn kind(&self) -> &str {
        "volume_zscore"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let (w, log) = (self.params.window, self.params.log);
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(slot, input.n_assets(), Ring::new(w))?;
            let values: Vec<f64> = input
                .feature_at(c)
                .values()
                .iter()
                .map(|&v| match (v >= 0.0, log) {
                    (false, _) => f64::NAN,
                    (true, true) => v.ln_1p(),
                    (true, false) => v,
                })
                .collect();
            let v = scan(&values, st, NanMode::Drop, |ring, x| {
                ring.push(x);
                window_stat(ring, Stat::Zscore, 1, w, x)
            });
            out.push((format!("{}{}", input.features()[c], self.params.suffix), v));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// How `direction` sets its band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdIn {
    /// `threshold` is a return (0.001 = 10 bps).
    Returns,
    /// `threshold` is in units of the `volatility` feature (a one-row return's
    /// volatility), scaled to the horizon: the band is
    /// `threshold * volatility * sqrt(horizon)`.
    Volatility,
}

/// Parameters of `direction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DirectionParams {
    /// Rows ahead: the label of row `t` compares the price at `t + horizon` with the
    /// price at `t`.
    pub horizon: usize,
    /// The band around 0 inside which the move is `flat`.
    pub threshold: f64,
    /// What `threshold` is measured in.
    pub threshold_in: ThresholdIn,
    /// The volatility feature (one row's return), for `threshold_in = "volatility"`.
    pub volatility: Option<String>,
    /// No label (NaN) where the row `horizon` rows ahead ends more than this long
    /// after the row (a duration such as `10min`): a move across a night, a weekend
    /// or missing bars is not the next `horizon` bars' move. No limit when absent.
    pub max_span: Option<String>,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for DirectionParams {
    fn default() -> Self {
        DirectionParams {
            horizon: 1,
            threshold: 0.0,
            threshold_in: ThresholdIn::Returns,
            volatility: None,
            max_span: None,
            suffix: ".direction".into(),
        }
    }
}

/// The `direction` kernel: `1` (up) when the return from `t` to `t + horizon`
/// exceeds the band, `-1` (down) when it is below minus the band, `0` (flat)
/// otherwise; NaN when either price is missing or not positive, or the volatility is
/// missing. Its outputs are forward targets (declared through
/// [`ColumnKernel::lookahead`]): a model may learn from them, nothing else may read
/// them, and `kaizenflow check` says so.
#[derive(Clone, Debug)]
pub struct Direction {
    params: DirectionParams,
    /// `max_span` in nanoseconds.
    max_span: Option<i64>,
}

impl Direction {
    /// A direction label; `horizon >= 1`, a finite `threshold >= 0` and a
    /// `volatility` when the band is in volatility units are the caller's to check.
    ///
    /// # Errors
    /// `max_span` that is not a positive duration.
    pub fn new(params: DirectionParams) -> std::result::Result<Direction, String> {
        let max_span = match &params.max_span {
            None => None,
            Some(text) => match kf_frame::parse_duration(text) {
                Ok(d) if d > 0 => Some(d),
                Ok(_) => return Err("must be a positive duration".into()),
                Err(e) => return Err(e.to_string()),
            },
        };
        Ok(Direction { params, max_span })
    }
}

impl ColumnKernel for Direction {
    fn kind(&self) -> &str {
        "direction"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        if let Some(v) = &self.params.volatility {
            require(features, "volatility", [v])?;
        }
        Ok(suffixed(features, cols, &self.params.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn lookahead(&self) -> usize {
        self.params.horizon
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let p = &self.params;
        let n = input.n_assets();
        let ahead = p.horizon.saturating_mul(n);
        let vol = match (&p.volatility, p.threshold_in) {
            (Some(v), ThresholdIn::Volatility) => Some(input.feature(v)?.values()),
            _ => None,
        };
        let scale = (p.horizon as f64).sqrt();
        let ts = input.end_ts();
        // Rows whose horizon spans longer than `max_span` get no label.
        let spans_too_long = |row: usize| {
            self.max_span.is_some_and(|m| {
                ts.get(row + p.horizon)
                    .is_some_and(|&end| end.saturating_sub(ts[row]) > m)
            })
        };
        let mut out = Vec::with_capacity(cols.len());
        for &c in cols {
            let values = input.feature_at(c).values();
            let v = (0..values.len())
                .map(|i| {
                    let (x0, x1) = (
                        values[i],
                        values.get(i + ahead).copied().unwrap_or(f64::NAN),
                    );
                    if !(x0 > 0.0 && x1 > 0.0) || spans_too_long(i / n.max(1)) {
                        return f64::NAN;
                    }
                    let band = match vol {
                        Some(v) => p.threshold * v[i] * scale,
                        None => p.threshold,
                    };
                    if band.is_nan() {
                        return f64::NAN;
                    }
                    let r = x1 / x0 - 1.0;
                    if r > band {
                        1.0
                    } else if r < -band {
                        -1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            out.push((format!("{}{}", input.features()[c], p.suffix), v));
        }
        Ok(out)
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "rsi",
        "Wilder's relative strength index over `window` rows, in [0, 100]",
        ColMode::Append,
        |s: &Section<'_>, p: RsiParams| {
            if p.window == 0 {
                return Err(s.invalid("window", "must be at least 1"));
            }
            Ok(Rsi::new(p))
        },
    )?;
    register_column(
        r,
        "macd",
        "MACD line, signal line and histogram of each feature (EMA spans fast, slow, signal)",
        ColMode::Append,
        |s: &Section<'_>, p: MacdParams| {
            if p.fast == 0 || p.signal == 0 {
                return Err(s.invalid("fast", "the spans must be at least 1"));
            }
            if p.slow <= p.fast {
                return Err(s.invalid(
                    "slow",
                    format!("must be longer than `fast` ({}), not {}", p.fast, p.slow),
                ));
            }
            Ok(Macd::new(p))
        },
    )?;
    register_column(
        r,
        "volume_zscore",
        "a rolling z-score of (log) volume over `window` rows",
        ColMode::Append,
        |s: &Section<'_>, p: VolumeZscoreParams| {
            if p.window < 2 {
                return Err(s.invalid("window", "must be at least 2 (a std needs two values)"));
            }
            Ok(VolumeZscore::new(p))
        },
    )?;
    register_column(
        r,
        "direction",
        "a label: 1 up, 0 flat, -1 down over the next `horizon` rows (a forward target)",
        ColMode::Append,
        |s: &Section<'_>, p: DirectionParams| {
            if p.horizon == 0 {
                return Err(s.invalid("horizon", "must be at least 1 row ahead"));
            }
            if !(p.threshold >= 0.0 && p.threshold.is_finite()) {
                return Err(s.invalid("threshold", "must be a finite number >= 0"));
            }
            match (p.threshold_in, &p.volatility) {
                (ThresholdIn::Volatility, None) => {
                    return Err(s.invalid(
                        "volatility",
                        "threshold_in = \"volatility\" needs the volatility feature's name",
                    ));
                }
                (ThresholdIn::Returns, Some(_)) => {
                    return Err(s.invalid(
                        "volatility",
                        "a volatility is read only with threshold_in = \"volatility\"",
                    ));
                }
                _ => {}
            }
            Direction::new(p).map_err(|e| s.invalid("max_span", e))
        },
    )?;
    Ok(())
}
