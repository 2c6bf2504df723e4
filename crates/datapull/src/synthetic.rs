//! A seeded generator of intraday OHLCV bars: the project's built-in default data.
//!
//! Each asset's log return is a market factor times the asset's beta plus an
//! idiosyncratic shock whose variance follows a GARCH(1,1) recursion, so volatility
//! clusters and assets co-move. Volume rises with the size of the move and follows
//! a U shape over the session (busy at the open and the close). Bars run around the
//! clock (`calendar = "24/7"`) or in US equity hours (`"us_equity"`: 09:30-16:00
//! New York, Monday to Friday; holidays are not modelled). Optional gaps (missing
//! bars of one asset) and late rows (bars known later than their delay) exercise
//! the code that must cope with them. The random stream is ChaCha8 from the seed, so
//! the same seed gives the same bits on every machine; gaps and late rows draw from
//! a second stream, so turning them on leaves the prices unchanged.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::{Frame, Timestamp, parse_duration, parse_tz};

use crate::{DataError, Result, Source};

/// Parameters of [`SyntheticBars`], read from a config section; every field has a
/// default, and the printed config shows them all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SyntheticParams {
    /// Number of assets (named `A0000`, `A0001`, ...).
    pub assets: usize,
    /// Number of bars.
    pub bars: usize,
    /// End time of the first bar, read in `tz`.
    pub start: String,
    /// Time zone of `start`.
    pub tz: String,
    /// Bar length (`1min`, `5min`, `1h`, ...).
    pub freq: String,
    /// Delay after a bar's end before it is known (`knowledge_ts = end_ts + delay`).
    pub delay: String,
    /// Seed of the random stream.
    pub seed: u64,
    /// Long-run standard deviation of one bar's idiosyncratic log return.
    pub vol: f64,
    /// Standard deviation of one bar's market factor.
    pub market_vol: f64,
    /// GARCH reaction to the last squared return.
    pub garch_alpha: f64,
    /// GARCH persistence of the variance.
    pub garch_beta: f64,
    /// `24/7` (every bar) or `us_equity` (09:30-16:00 New York, weekdays).
    pub calendar: String,
    /// Probability that one asset's bar is missing (all features NaN).
    pub gap_prob: f64,
    /// Probability that a bar is known late (its knowledge time moves by `late_delay`).
    pub late_prob: f64,
    /// How late a late bar is.
    pub late_delay: String,
    /// A planted signal (0: none, pure noise): each asset's idiosyncratic return
    /// over a block of `reversion_bars` bars reverts this fraction of its
    /// idiosyncratic return over the block before, spread evenly over the block's
    /// bars. The blocks' returns then have a lag-one regression slope of
    /// `-reversion` (what Mock1's negative lag-0 weight trades).
    pub reversion: f64,
    /// Bars per block of the planted signal (5: Mock1's 5-minute bins on 1-minute
    /// bars).
    pub reversion_bars: usize,
}

impl Default for SyntheticParams {
    fn default() -> Self {
        SyntheticParams {
            assets: 10,
            bars: 390,
            start: "2024-01-02 09:31".into(),
            tz: "America/New_York".into(),
            freq: "1min".into(),
            delay: "0s".into(),
            seed: 1,
            vol: 0.001,
            market_vol: 0.0007,
            garch_alpha: 0.05,
            garch_beta: 0.9,
            calendar: "24/7".into(),
            gap_prob: 0.0,
            late_prob: 0.0,
            late_delay: "5min".into(),
            reversion: 0.0,
            reversion_bars: 5,
        }
    }
}

/// The synthetic bar source, validated and ready to generate.
#[derive(Clone, Debug)]
pub struct SyntheticBars {
    params: SyntheticParams,
    start: i64,
    step: i64,
    delay: i64,
    late_delay: i64,
    us_equity: bool,
}

impl SyntheticBars {
    /// Validates `params`.
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming the parameter, when a count is zero, a time,
    /// zone or duration does not parse, a volatility is negative or not finite, the
    /// GARCH recursion is not stationary, or the last bar is past year 2262.
    pub fn new(params: SyntheticParams) -> Result<SyntheticBars> {
        Self::validate(params).map_err(|(key, message)| DataError::Invalid {
            source_kind: "synthetic",
            key,
            message,
        })
    }

    /// Reads and validates the parameters from a config section (unknown keys are
    /// left unread, so the config reports them).
    ///
    /// # Errors
    /// As [`SyntheticBars::new`], located at the offending key's file and line.
    pub fn from_config(section: &Section<'_>) -> kf_config::Result<SyntheticBars> {
        let params: SyntheticParams = section.deserialize()?;
        Self::validate(params).map_err(|(key, message)| section.invalid(key, message))
    }

    fn validate(p: SyntheticParams) -> std::result::Result<SyntheticBars, (&'static str, String)> {
        if p.assets == 0 {
            return Err(("assets", "must be at least 1".into()));
        }
        if p.bars == 0 {
            return Err(("bars", "must be at least 1".into()));
        }
        let tz = parse_tz(&p.tz).map_err(|e| ("tz", e.to_string()))?;
        let start = Timestamp::parse_in(&p.start, tz)
            .map_err(|e| ("start", e.to_string()))?
            .nanos();
        let step = parse_duration(&p.freq).map_err(|e| ("freq", e.to_string()))?;
        if step <= 0 {
            return Err(("freq", "must be longer than zero".into()));
        }
        let delay = parse_duration(&p.delay).map_err(|e| ("delay", e.to_string()))?;
        for (key, v) in [
            ("vol", p.vol),
            ("market_vol", p.market_vol),
            ("garch_alpha", p.garch_alpha),
            ("garch_beta", p.garch_beta),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err((key, format!("must be a finite number >= 0, got {v}")));
            }
        }
        for (key, v) in [("gap_prob", p.gap_prob), ("late_prob", p.late_prob)] {
            if !(0.0..=1.0).contains(&v) {
                return Err((key, format!("must be a probability in [0, 1], got {v}")));
            }
        }
        if !(p.reversion.is_finite() && (-1.0..1.0).contains(&p.reversion)) {
            return Err((
                "reversion",
                format!("must be in (-1, 1) (a stable signal), got {}", p.reversion),
            ));
        }
        if p.reversion_bars == 0 {
            return Err(("reversion_bars", "must be at least 1".into()));
        }
        let late_delay =
            parse_duration(&p.late_delay).map_err(|e| ("late_delay", e.to_string()))?;
        let us_equity = match p.calendar.as_str() {
            "24/7" => false,
            "us_equity" => true,
            other => {
                return Err((
                    "calendar",
                    format!("must be \"24/7\" or \"us_equity\", not {other:?}"),
                ));
            }
        };
        if us_equity && (step > 390 * 60 * 1_000_000_000 || (390 * 60 * 1_000_000_000) % step != 0)
        {
            return Err((
                "freq",
                "with calendar = \"us_equity\" the bar must divide the 390-minute session".into(),
            ));
        }
        if p.garch_alpha + p.garch_beta >= 1.0 {
            return Err((
                "garch_beta",
                "garch_alpha + garch_beta must be below 1 (a stationary variance)".into(),
            ));
        }
        // Sessions stretch the span about 4.3x (a 6.5-hour session in 7 x 24 hours).
        let stretch = if us_equity { 5 } else { 1 };
        let last = (p.bars as i64 - 1)
            .checked_mul(step)
            .and_then(|span| span.checked_mul(stretch))
            .and_then(|span| span.checked_add(start))
            .and_then(|t| t.checked_add(delay))
            .and_then(|t| t.checked_add(late_delay.max(0)));
        if last.is_none() {
            return Err(("bars", "the last bar would be past the year 2262".into()));
        }
        // Five features, a knowledge time and the generator's work arrays: about
        // eight f64 per (bar, asset).
        kf_frame::budget::check_bytes(
            &format!("{} bars x {} assets", p.bars, p.assets),
            p.bars as u128 * p.assets as u128 * 64,
        )
        .map_err(|e| ("assets", e))?;
        Ok(SyntheticBars {
            params: p,
            start,
            step,
            delay,
            late_delay,
            us_equity,
        })
    }

    /// The validated parameters.
    pub fn params(&self) -> &SyntheticParams {
        &self.params
    }

    /// Generates the bars: features `open`, `high`, `low`, `close`, `volume`.
    pub fn generate(&self) -> Result<Frame> {
        let p = &self.params;
        let n = p.assets;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let normal = move |rng: &mut ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
        let beta: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
        let mut price: Vec<f64> = (0..n).map(|_| rng.random_range(20.0..200.0)).collect();
        let base_volume: Vec<f64> = (0..n).map(|_| rng.random_range(1e3..1e5)).collect();
        let omega = p.vol * p.vol * (1.0 - p.garch_alpha - p.garch_beta);
        let mut var = vec![p.vol * p.vol; n];
        let mut last_ret = vec![0.0f64; n];
        // The planted signal: each asset's idiosyncratic return over the block so
        // far, and the drift per bar the block before set for this one.
        let plant = p.reversion != 0.0;
        let block = p.reversion_bars.max(1);
        let mut block_sum = vec![0.0f64; n];
        let mut drift = vec![0.0f64; n];
        let (end_ts, session) = self.bar_times();
        let cells = n * end_ts.len();
        let mut cols: [Vec<f64>; 5] = std::array::from_fn(|_| Vec::with_capacity(cells));
        let [open, high, low, close, volume] = &mut cols;
        for (i, &x) in session.iter().enumerate() {
            if plant && i > 0 && i % block == 0 {
                for a in 0..n {
                    drift[a] = -p.reversion * block_sum[a] / block as f64;
                    block_sum[a] = 0.0;
                }
            }
            // U-shaped intraday volume: three times busier at the open and close.
            let u = 1.0 + 2.0 * (2.0 * x - 1.0) * (2.0 * x - 1.0);
            let market = p.market_vol * normal(&mut rng);
            for a in 0..n {
                var[a] = omega + p.garch_alpha * last_ret[a] * last_ret[a] + p.garch_beta * var[a];
                let sd = var[a].sqrt();
                let mut idio = sd * normal(&mut rng);
                if plant {
                    idio += drift[a];
                    block_sum[a] += idio;
                }
                let r = beta[a] * market + idio;
                let o = price[a];
                let c = o * r.exp();
                let wick_up = (0.5 * sd * normal(&mut rng).abs()).exp();
                let wick_down = (-0.5 * sd * normal(&mut rng).abs()).exp();
                let v =
                    (u * base_volume[a] * (0.5 * normal(&mut rng)).exp() * (1.0 + 50.0 * r.abs()))
                        .round();
                open.push(o);
                high.push(o.max(c) * wick_up);
                low.push(o.min(c) * wick_down);
                close.push(c);
                volume.push(v);
                price[a] = c;
                last_ret[a] = r;
            }
        }
        // Gaps and late rows from a second stream, so the prices do not depend on them.
        let mut events = ChaCha8Rng::seed_from_u64(p.seed ^ 0x9e37_79b9_7f4a_7c15);
        if p.gap_prob > 0.0 {
            for cell in 0..cells {
                if events.random_bool(p.gap_prob) {
                    for c in cols.iter_mut() {
                        c[cell] = f64::NAN;
                    }
                }
            }
        }
        let knowledge_ts = end_ts
            .iter()
            .map(|t| {
                let late = p.late_prob > 0.0 && events.random_bool(p.late_prob);
                t + self.delay + if late { self.late_delay } else { 0 }
            })
            .collect();
        let names = SYNTHETIC_FEATURES;
        let features = names
            .iter()
            .zip(cols)
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        let assets = (0..n).map(|a| format!("A{a:04}")).collect();
        Ok(Frame::new(end_ts, knowledge_ts, assets, features)?)
    }
}

impl SyntheticBars {
    /// Bar end times, and each bar's position in its session (0 at the open, 1 at
    /// the close; the UTC day for the 24/7 calendar).
    fn bar_times(&self) -> (Vec<i64>, Vec<f64>) {
        const DAY: i64 = 86_400_000_000_000;
        let bars = self.params.bars;
        let mut ends = Vec::with_capacity(bars);
        let mut frac = Vec::with_capacity(bars);
        if !self.us_equity {
            for i in 0..bars as i64 {
                let t = self.start + i * self.step;
                ends.push(t);
                frac.push(t.rem_euclid(DAY) as f64 / DAY as f64);
            }
            return (ends, frac);
        }
        let ny = chrono_tz::America::New_York;
        let session = 390 * 60 * 1_000_000_000i64;
        let mut day = chrono::DateTime::from_timestamp_nanos(self.start)
            .with_timezone(&ny)
            .date_naive();
        while ends.len() < bars {
            use chrono::{Datelike, TimeZone};
            let weekday = day.weekday().num_days_from_monday() < 5;
            let open = day
                .and_hms_opt(9, 30, 0)
                .and_then(|o| ny.from_local_datetime(&o).single())
                .and_then(|o| o.timestamp_nanos_opt());
            if let (true, Some(open)) = (weekday, open) {
                // The first bar of the session at or after `start`, found by
                // arithmetic: stepping there one bar at a time takes 10^13 steps for
                // 1 ns bars and an afternoon start.
                let mut t = open + self.step;
                if t < self.start {
                    let behind = (self.start - t) as u128;
                    let k = behind.div_ceil(self.step as u128);
                    t = i64::try_from(t as i128 + (k * self.step as u128) as i128)
                        .unwrap_or(i64::MAX);
                }
                while t <= open + session && ends.len() < bars {
                    if t >= self.start {
                        ends.push(t);
                        frac.push((t - open) as f64 / session as f64);
                    }
                    t += self.step;
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        (ends, frac)
    }
}

impl Source for SyntheticBars {
    fn fingerprint(&self) -> Result<Option<String>> {
        // The generator is a pure function of its validated parameters.
        Ok(Some(format!("synthetic;{self:?}")))
    }

    fn describe(&self) -> String {
        format!(
            "synthetic: {} assets x {} bars of {} from {} (seed {})",
            self.params.assets,
            self.params.bars,
            self.params.freq,
            Timestamp(self.start),
            self.params.seed
        )
    }

    fn load(&self, query: &crate::Query) -> Result<Frame> {
        query.apply(&self.generate()?)
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(SYNTHETIC_FEATURES.iter().map(|s| s.to_string()).collect())
    }
}

/// The features of [`SyntheticBars`], in order.
const SYNTHETIC_FEATURES: [&str; 5] = ["open", "high", "low", "close", "volume"];
