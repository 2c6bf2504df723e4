//! The `[system]` section of a config: the decision grid, prices, forecast columns,
//! costs and clock, parsed and checked once.

use kf_config::Section;
use kf_frame::{Timestamp, parse_duration, parse_tz};

use crate::broker::{CostModel, FillPrice};
use crate::processor::{ForecastProcessor, ProcessorTypes};

pub use kf_datapull::ClockKind;

/// The `[system.clock]` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSpec {
    /// Which clock.
    pub kind: ClockKind,
    /// Extra delay after a row's knowledge time before the system sees it (ns).
    pub delay: i64,
    /// How long to wait for a bar's data before failing (clock ns).
    pub timeout: i64,
    /// How often to look again for late data (clock ns).
    pub poll: i64,
    /// What a live system does about a bar that has not come by its timeout.
    pub missing: Missing,
    /// How long a live system waits after a later bar came (or after a bar's
    /// timeout) before it takes a bar as missing: the longest a feed's write may
    /// take to commit (ns).
    pub grace: i64,
}

/// What a live system does about a bar that does not come in time
/// (`[system.clock] missing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Stop with an error naming the bar (the default); run the same command again
    /// once the feed has it, and the run decides it as if it had come in time.
    Stop,
    /// Decide without it, once a later bar has come and `grace` has passed, or at
    /// the bar's end plus `timeout`; the audit counts it in `missing_bars`.
    Skip,
}

/// Everything `[system]` says, besides the processor.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemSpec {
    /// Decision period (ns): decisions fall on multiples of it (from the epoch).
    pub bar: i64,
    /// The wake-up time: no decision before it (the DAG still sees earlier data).
    pub start: Option<i64>,
    /// No decision after this.
    pub end: Option<i64>,
    /// The market data column prices come from.
    pub price: String,
    /// The market data column volumes come from (none when empty).
    pub volume: Option<String>,
    /// Fill at each bar's TWAP or VWAP.
    pub fill: FillPrice,
    /// The DAG node whose `df_out` holds the forecasts (its only sink when absent).
    pub forecast_node: Option<String>,
    /// The forecast column.
    pub prediction: String,
    /// The volatility column, if the processor should divide by it.
    pub volatility: Option<String>,
    /// Forecast columns of later horizons (the prediction is the first), for a
    /// processor that plans over several (`trajectory`); empty for the others.
    pub horizons: Vec<String>,
    /// Starting cash.
    pub initial_cash: f64,
    /// Bars per year for the Sharpe ratio (estimated from the decision grid when
    /// absent).
    pub bars_per_year: Option<f64>,
    /// Transaction costs.
    pub costs: CostModel,
    /// The clock.
    pub clock: ClockSpec,
    /// How a DAG that learns is fitted in the loop (`[system.fit]`), if it is.
    pub fit: Option<FitSpec>,
}

/// The `[system.fit]` table: fit the DAG's models at the first decision, and refit
/// them walk-forward inside the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitSpec {
    /// Each fit learns from the bars ending in `(τ - lookback, τ]` (every bar up to
    /// `τ` when `None`), and only from rows whose features and targets are known by
    /// the decision (ns).
    pub lookback: Option<i64>,
    /// Refit at the first decision at least this long after the last fit (fit once
    /// when `None`) (ns).
    pub retrain_every: Option<i64>,
}

fn fit_spec(s: &Section<'_>) -> kf_config::Result<FitSpec> {
    let positive = |key: &str| -> kf_config::Result<Option<i64>> {
        if !s.contains(key) {
            return Ok(None);
        }
        let d = duration(s, key, "")?;
        if d <= 0 {
            return Err(s.invalid(key, "must be a positive duration"));
        }
        Ok(Some(d))
    };
    Ok(FitSpec {
        lookback: positive("lookback")?,
        retrain_every: positive("retrain_every")?,
    })
}

fn duration(s: &Section<'_>, key: &str, default: &str) -> kf_config::Result<i64> {
    let text: String = s.get_or(key, default.to_string())?;
    parse_duration(&text).map_err(|e| s.invalid(key, e.to_string()))
}

fn positive(s: &Section<'_>, key: &str, v: f64) -> kf_config::Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(s.invalid(key, format!("must be a positive finite number, not {v}")))
    }
}

impl SystemSpec {
    /// Reads `[system]` (`s`) and builds its processor from `processors`.
    ///
    /// # Errors
    /// A located config error: a missing `bar` or `processor`, a bad duration,
    /// time, column name, cost or clock.
    pub fn from_section(
        s: &Section<'_>,
        processors: &ProcessorTypes,
    ) -> kf_config::Result<(SystemSpec, Box<dyn ForecastProcessor>)> {
        let bar_text: String = s.get("bar")?;
        let bar = parse_duration(&bar_text).map_err(|e| s.invalid("bar", e.to_string()))?;
        if bar <= 0 {
            return Err(s.invalid("bar", "the decision period must be positive"));
        }
        let tz_name: String = s.get_or("tz", "UTC".to_string())?;
        let tz = parse_tz(&tz_name).map_err(|e| s.invalid("tz", e.to_string()))?;
        let time = |key: &str| -> kf_config::Result<Option<i64>> {
            match s.get_opt::<String>(key)? {
                None => Ok(None),
                Some(t) => Timestamp::parse_in(&t, tz)
                    .map(|t| Some(t.nanos()))
                    .map_err(|e| s.invalid(key, e.to_string())),
            }
        };
        let (start, end) = (time("start")?, time("end")?);
        if let (Some(a), Some(b)) = (start, end)
            && a > b
        {
            return Err(s.invalid("end", "`end` is before `start`"));
        }
        let name = |key: &str, default: &str| -> kf_config::Result<String> {
            let v: String = s.get_or(key, default.to_string())?;
            if v.is_empty() && !default.is_empty() {
                return Err(s.invalid(key, "a column name cannot be empty"));
            }
            Ok(v)
        };
        let volume = name("volume", "volume")?;
        let costs = match s.contains("costs") {
            true => {
                let cs = s.section("costs")?;
                let costs: CostModel = cs.deserialize()?;
                // A half spread of 10,000 bps is the whole price; an impact coefficient
                // is per unit of participation, so it may be larger, but not enough to
                // overflow a cost to infinity.
                for (key, v, max) in [
                    ("half_spread_bps", costs.half_spread_bps, 1e4),
                    ("impact_bps", costs.impact_bps, 1e6),
                ] {
                    if !(v.is_finite() && (0.0..=max).contains(&v)) {
                        return Err(cs.invalid(
                            key,
                            format!("must be a number from 0 to {max} (bps), not {v}"),
                        ));
                    }
                }
                costs
            }
            false => CostModel::default(),
        };
        let fill: FillPrice = s.get_or("fill", FillPrice::Twap)?;
        let volume = if volume.is_empty() {
            None
        } else {
            Some(volume)
        };
        if volume.is_none() && (fill == FillPrice::Vwap || costs.needs_volume()) {
            return Err(s.invalid(
                "volume",
                "VWAP fills and market impact need a volume column: name one",
            ));
        }
        let initial_cash = positive(s, "initial_cash", s.get_or("initial_cash", 1e6)?)?;
        let bars_per_year = match s.get_opt::<f64>("bars_per_year")? {
            Some(v) => Some(positive(s, "bars_per_year", v)?),
            None => None,
        };
        let clock = if s.contains("clock") {
            clock_spec(&s.section("clock")?)?
        } else {
            ClockSpec {
                kind: ClockKind::Simulated,
                delay: 0,
                timeout: 3_600_000_000_000,
                poll: 1_000_000_000,
                missing: Missing::Stop,
                grace: 1_000_000_000,
            }
        };
        let fit = if s.contains("fit") {
            Some(fit_spec(&s.section("fit")?)?)
        } else {
            None
        };
        let processor_section = s.section("processor")?;
        let processor = processors.build(&processor_section)?;
        let spec = SystemSpec {
            bar,
            start,
            end,
            price: name("price", "close")?,
            volume,
            fill,
            forecast_node: s.get_opt("forecast_node")?,
            prediction: name("prediction", "prediction")?,
            volatility: s.get_opt("volatility")?,
            horizons: s.get_or("horizons", Vec::<String>::new())?,
            initial_cash,
            bars_per_year,
            costs,
            clock,
            fit,
        };
        processor
            .check_horizons(1 + spec.horizons.len())
            .map_err(|(key, m)| processor_section.invalid(key, m))?;
        Ok((spec, processor))
    }
}

fn clock_spec(s: &Section<'_>) -> kf_config::Result<ClockSpec> {
    let kind = ClockKind::from_section(s)?;
    let spec = ClockSpec {
        kind,
        delay: duration(s, "delay", "0s")?,
        timeout: duration(s, "timeout", "1h")?,
        poll: duration(s, "poll", "1s")?,
        missing: match s.get_or("missing", "stop".to_string())?.as_str() {
            "stop" => Missing::Stop,
            "skip" => Missing::Skip,
            other => {
                return Err(s.invalid(
                    "missing",
                    format!("`{other}` is not a policy: write \"stop\" or \"skip\""),
                ));
            }
        },
        grace: duration(s, "grace", "1s")?,
    };
    for (key, v) in [
        ("timeout", spec.timeout),
        ("poll", spec.poll),
        ("grace", spec.grace),
    ] {
        if v <= 0 {
            return Err(s.invalid(key, "must be positive"));
        }
    }
    if spec.delay < 0 {
        return Err(s.invalid("delay", "cannot be negative"));
    }
    Ok(spec)
}
