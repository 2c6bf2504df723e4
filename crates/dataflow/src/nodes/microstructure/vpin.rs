//! `vpin`: the volume-synchronized probability of informed trading over volume
//! buckets, its lognormal CDF, and the events it raises.
//!
//! Bars (with their buy and sell volumes, from `bvc`) fill buckets of `V` shares in
//! order; a bar that overflows a bucket is split pro rata, its buy fraction kept.
//! Each full bucket has an order imbalance `|buy − sell|`. VPIN is the sum of the
//! imbalances of the last `support` buckets over their volume. Its CDF is that of
//! a lognormal fitted to every earlier VPIN value (the mean and standard deviation
//! of their logarithms), so it uses nothing later than the bucket. When the CDF
//! crosses `threshold` (it reaches it from below, or with the first CDF given), an
//! event starts and lasts `event_buckets` buckets; a CDF that stays high raises no
//! second event until it has fallen below the threshold again.
//!
//! `V` is `bucket_volume` when given, else the previous trading day's volume over
//! `buckets_per_day` (days in `tz`; no bucket fills on the first day). A new day's
//! size applies from the first bucket that opens on that day: the bucket open at
//! midnight fills to the size it opened with.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use kf_config::{Section, TypeDoc};
use kf_frame::parse_tz;

use super::sized;
use crate::error::Result;
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, require,
    single_input, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// The features `vpin` outputs.
pub const VPIN_FEATURES: [&str; 4] = ["vpin", "vpin_cdf", "vpin_event", "buckets"];

/// Parameters of `vpin` (defaults: seed 002's tuned set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VpinParams {
    /// The buy volume column.
    pub buy: String,
    /// The sell volume column.
    pub sell: String,
    /// Shares per bucket; when absent, the previous day's volume over
    /// `buckets_per_day`.
    pub bucket_volume: Option<f64>,
    /// Buckets per day, for a bucket volume from the previous day.
    pub buckets_per_day: usize,
    /// Buckets in one VPIN value (200: one day of buckets).
    pub support: usize,
    /// The CDF whose crossing from below starts an event.
    pub threshold: f64,
    /// Buckets an event lasts (20: a tenth of a day of 200 buckets).
    pub event_buckets: usize,
    /// Earlier VPIN values needed before the CDF is given.
    pub min_fit: usize,
    /// The zone that days are counted in.
    pub tz: String,
}

impl Default for VpinParams {
    fn default() -> Self {
        VpinParams {
            buy: "buy_volume".into(),
            sell: "sell_volume".into(),
            bucket_volume: None,
            buckets_per_day: 200,
            support: 200,
            threshold: 0.99,
            event_buckets: 20,
            min_fit: 50,
            tz: "America/New_York".into(),
        }
    }
}

/// One asset's state.
#[derive(Clone, Debug)]
struct AssetState {
    /// The bucket volume in force (NaN until known).
    size: f64,
    /// The size for the next bucket to open, from a new day (NaN when none).
    next_size: f64,
    /// The open bucket: buys, sells, shares.
    buy: f64,
    sell: f64,
    filled: f64,
    /// The last `support` full buckets: imbalance and volume.
    recent: VecDeque<(f64, f64)>,
    /// Full buckets so far.
    buckets: u64,
    /// The lognormal fit of earlier VPIN values (Welford).
    fit_n: u64,
    fit_mean: f64,
    fit_m2: f64,
    /// Buckets left in the current event.
    event_left: usize,
    /// Whether the last CDF was at or above the threshold (a crossing needs it
    /// below).
    above: bool,
    /// The day being counted and its volume so far, for the next day's bucket.
    day: i64,
    day_volume: f64,
    /// The latest values.
    vpin: f64,
    cdf: f64,
}

impl AssetState {
    fn new(size: Option<f64>) -> AssetState {
        AssetState {
            size: size.unwrap_or(f64::NAN),
            next_size: f64::NAN,
            buy: 0.0,
            sell: 0.0,
            filled: 0.0,
            recent: VecDeque::new(),
            buckets: 0,
            fit_n: 0,
            fit_mean: 0.0,
            fit_m2: 0.0,
            event_left: 0,
            above: false,
            day: i64::MIN,
            day_volume: 0.0,
            vpin: f64::NAN,
            cdf: f64::NAN,
        }
    }
}

impl AssetState {
    /// Before a bar's shares go in: with no bucket open, a new day's size takes
    /// effect.
    fn open_bucket(&mut self) {
        if self.filled == 0.0 && !self.next_size.is_nan() {
            self.size = self.next_size;
            self.next_size = f64::NAN;
        }
    }
}

/// The `vpin` node (see the module doc).
#[derive(Clone, Debug)]
pub struct Vpin {
    id: NodeId,
    params: VpinParams,
    tz: chrono_tz::Tz,
    states: Vec<AssetState>,
}

impl Vpin {
    /// A node with `params`.
    ///
    /// # Errors
    /// The key and message of a bad parameter.
    pub fn new(
        id: impl Into<String>,
        params: VpinParams,
    ) -> std::result::Result<Vpin, (&'static str, String)> {
        if let Some(v) = params.bucket_volume
            && !(v.is_finite() && v > 0.0)
        {
            return Err((
                "bucket_volume",
                format!("must be a positive number of shares, not {v:?}"),
            ));
        }
        let max = crate::limits::MAX_ROWS_BACK;
        for (key, v) in [
            ("buckets_per_day", params.buckets_per_day),
            ("support", params.support),
            ("event_buckets", params.event_buckets),
        ] {
            if v == 0 || v > max {
                return Err((key, format!("must be 1 to {max}, not {v}")));
            }
        }
        if !(params.threshold > 0.0 && params.threshold < 1.0) {
            return Err((
                "threshold",
                format!("must be between 0 and 1, not {:?}", params.threshold),
            ));
        }
        if params.min_fit < 2 {
            return Err((
                "min_fit",
                "must be at least 2 (a fit needs a spread)".into(),
            ));
        }
        let tz = parse_tz(&params.tz).map_err(|e| ("tz", e.to_string()))?;
        Ok(Vpin {
            id: NodeId(id.into()),
            params,
            tz,
            states: Vec::new(),
        })
    }

    fn from_section(s: &Section<'_>) -> kf_config::Result<Vpin> {
        let p: VpinParams = s.deserialize()?;
        Vpin::new(node_id(s), p).map_err(|(k, m)| s.invalid(k, m))
    }

    /// The local calendar day (days since the epoch in `tz`) of `t`.
    fn day_of(&self, t: i64) -> i64 {
        use chrono::{Offset, TimeZone};
        let utc = chrono::DateTime::from_timestamp_nanos(t);
        let offset = self
            .tz
            .offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc();
        (t.div_euclid(1_000_000_000) + i64::from(offset)).div_euclid(86_400)
    }

    /// A full bucket: its imbalance joins the support, and VPIN, its CDF and the
    /// event state move on.
    fn complete(&self, st: &mut AssetState, normal: &Normal) {
        st.recent.push_back(((st.buy - st.sell).abs(), st.filled));
        if st.recent.len() > self.params.support {
            st.recent.pop_front();
        }
        st.buckets += 1;
        st.buy = 0.0;
        st.sell = 0.0;
        st.filled = 0.0;
        if st.event_left > 0 {
            st.event_left -= 1;
        }
        if st.recent.len() < self.params.support {
            return;
        }
        // Summed afresh over the window (200 terms): no drift from a running sum.
        let (oi, vol) = st
            .recent
            .iter()
            .fold((0.0, 0.0), |(a, b), &(o, v)| (a + o, b + v));
        let vpin = oi / vol;
        st.vpin = vpin;
        let ln = vpin.ln();
        if !ln.is_finite() {
            // A VPIN of exactly 0 (perfect balance for a day) has no logarithm.
            st.cdf = 0.0;
            st.above = false;
            return;
        }
        st.cdf = if st.fit_n >= self.params.min_fit as u64 {
            let sd = (st.fit_m2 / (st.fit_n - 1) as f64).sqrt();
            if sd > 0.0 {
                normal.cdf((ln - st.fit_mean) / sd)
            } else if ln > st.fit_mean {
                1.0
            } else {
                0.5
            }
        } else {
            f64::NAN
        };
        st.fit_n += 1;
        let delta = ln - st.fit_mean;
        st.fit_mean += delta / st.fit_n as f64;
        st.fit_m2 += delta * (ln - st.fit_mean);
        let above = st.cdf >= self.params.threshold;
        if above && !st.above && st.event_left == 0 {
            st.event_left = self.params.event_buckets;
        }
        st.above = above;
    }
}

impl Node for Vpin {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "vpin"
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }

    fn output_features(
        &self,
        inputs: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let Some(features) = inputs.get(DF_IN) else {
            return Ok(None);
        };
        require(features, "buy", [&self.params.buy])?;
        require(features, "sell", [&self.params.sell])?;
        Ok(Some(FeatureMap::from([(
            DF_OUT.to_string(),
            VPIN_FEATURES.iter().map(|f| f.to_string()).collect(),
        )])))
    }

    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let n = input.n_assets();
        let fixed = self.params.bucket_volume;
        let mut states = std::mem::take(&mut self.states);
        sized(&mut states, n, || AssetState::new(fixed), self.id.as_str())?;
        let buy = input.feature(&self.params.buy)?.values();
        let sell = input.feature(&self.params.sell)?.values();
        let cells = buy.len();
        let mut cols: Vec<Vec<f64>> = vec![vec![f64::NAN; cells]; VPIN_FEATURES.len()];
        // Standard normal: these parameters are valid.
        let normal = Normal::standard();
        let per_day = self.params.buckets_per_day as f64;
        for (r, &t) in input.end_ts().iter().enumerate() {
            let day = if fixed.is_none() { self.day_of(t) } else { 0 };
            for (a, st) in states.iter_mut().enumerate() {
                let c = r * n + a;
                let (b, s) = (buy[c], sell[c]);
                if !(b.is_finite() && s.is_finite() && b >= 0.0 && s >= 0.0) {
                    continue;
                }
                if fixed.is_none() && day != st.day {
                    if st.day != i64::MIN && st.day_volume > 0.0 {
                        st.next_size = st.day_volume / per_day;
                    }
                    st.day = day;
                    st.day_volume = 0.0;
                }
                let volume = b + s;
                st.day_volume += volume;
                st.open_bucket();
                // The smallest size this bar can meet: the one in force, or the
                // next day's once the open bucket is full.
                let least = if st.next_size.is_nan() {
                    st.size
                } else {
                    st.size.min(st.next_size)
                };
                if st.size.is_finite() && volume > 0.0 {
                    if volume / least > 1e6 {
                        return Err(crate::error::DataflowError::invalid(format!(
                            "node `{}`: a bar of {volume:?} shares at {} would fill over a \
                             million buckets of {:?} shares; raise bucket_volume",
                            self.id,
                            kf_frame::Timestamp(t),
                            least
                        )));
                    }
                    let f = b / volume;
                    let mut left = volume;
                    while left > 0.0 {
                        st.open_bucket();
                        let room = st.size - st.filled;
                        let take = if left >= room { room } else { left };
                        st.buy += take * f;
                        st.sell += take * (1.0 - f);
                        st.filled += take;
                        left -= take;
                        if take == room {
                            self.complete(st, &normal);
                        }
                    }
                }
                cols[0][c] = st.vpin;
                cols[1][c] = st.cdf;
                cols[2][c] = if st.event_left > 0 { 1.0 } else { 0.0 };
                cols[3][c] = st.buckets as f64;
            }
        }
        self.states = states;
        let features = VPIN_FEATURES
            .iter()
            .map(|f| f.to_string())
            .zip(cols)
            .collect();
        Ok(single_output(input.with_rows(
            input.end_ts().to_vec(),
            input.knowledge_ts().to_vec(),
            features,
        )?))
    }

    fn reset(&mut self) {
        self.states.clear();
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "vpin",
        TypeDoc::new(
            "VPIN over volume buckets (bars split pro rata), its lognormal CDF over earlier \
             values, and events when the CDF passes a threshold",
        )
        .params_of::<VpinParams>()
        .ports(&[DF_IN], &[DF_OUT])
        .example("bucket_volume = 800000\nsupport = 200\nthreshold = 0.99"),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            Ok(Box::new(Vpin::from_section(s)?) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}
