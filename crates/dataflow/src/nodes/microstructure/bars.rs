//! `tick_bars`: time bars or volume bars from trade ticks, with tick filters and
//! the venue concentration (HHI) of each bar.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::{Section, TypeDoc};
use kf_frame::parse_duration;

use super::sized;
use crate::column::running_max;
use crate::error::Result;
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, require,
    single_input, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// The features every bar has, in this order.
pub const BAR_FEATURES: [&str; 9] = [
    "open", "high", "low", "close", "median", "vwap", "volume", "ticks", "hhi",
];

/// How bars close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BarKind {
    /// On a time grid: a bar holds the ticks in `(end - freq, end]` and is labelled
    /// by its end; a bin without an input row is not emitted, and an asset without
    /// a kept trade in an emitted bin is NaN.
    Time,
    /// Every `volume` shares: a bar closes at the tick that brings its volume to at
    /// least `volume` (that tick counts whole) and is labelled by that tick's time.
    /// The output has a row per input row, NaN where no bar closes.
    Volume,
}

/// Parameters of `tick_bars`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TickBarsParams {
    /// `time` or `volume` bars.
    pub by: BarKind,
    /// The bar length of time bars (`"1min"`, `"3900ms"`).
    pub freq: Option<String>,
    /// The shares per volume bar.
    pub volume: Option<f64>,
    /// Leave out ticks flagged suspicious.
    pub drop_suspicious: bool,
    /// Leave out ticks whose sale-condition flags share a bit with any of these
    /// (hexadecimal, as in the data: `"2000"` is extended hours).
    pub exclude_conditions: Vec<String>,
    /// The input's price column.
    pub price: String,
    /// The input's size column.
    pub size: String,
    /// The input's venue column (ASCII code of the exchange letter); `""` for none
    /// (every tick on one venue).
    pub exchange: String,
    /// The input's sale-condition column; `""` for none (no condition filter).
    pub condition: String,
    /// The input's suspicious-flag column; `""` for none.
    pub suspicious: String,
}

impl Default for TickBarsParams {
    fn default() -> Self {
        TickBarsParams {
            by: BarKind::Time,
            freq: None,
            volume: None,
            drop_suspicious: true,
            exclude_conditions: Vec::new(),
            price: "price".into(),
            size: "size".into(),
            exchange: "exchange".into(),
            condition: "condition".into(),
            suspicious: "suspicious".into(),
        }
    }
}

/// One asset's open bar.
#[derive(Clone, Debug, Default)]
struct OpenBar {
    prices: Vec<f64>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    pv: f64,
    volume: f64,
    /// Volume by venue code.
    venues: Vec<(u32, f64)>,
}

impl OpenBar {
    fn add(&mut self, price: f64, size: f64, venue: u32) {
        if self.prices.is_empty() {
            self.open = price;
            self.high = price;
            self.low = price;
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        }
        self.close = price;
        self.prices.push(price);
        self.pv += price * size;
        self.volume += size;
        match self.venues.iter_mut().find(|(v, _)| *v == venue) {
            Some((_, vol)) => *vol += size,
            None => self.venues.push((venue, size)),
        }
    }

    /// Writes the bar's features (see [`BAR_FEATURES`]) into `out` and clears it.
    fn emit(&mut self, out: &mut [f64; 9]) {
        let n = self.prices.len();
        if n == 0 {
            out.fill(f64::NAN);
            return;
        }
        // The median by selection (linear time): the upper middle, and for an even
        // count the largest value below it.
        let (below, &mut upper, _) = self.prices.select_nth_unstable_by(n / 2, f64::total_cmp);
        let median = if n % 2 == 1 {
            upper
        } else {
            let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            0.5 * (lower + upper)
        };
        let vwap = if self.volume > 0.0 {
            self.pv / self.volume
        } else {
            f64::NAN
        };
        // Herfindahl-Hirschman index of the bar's volume by venue, in venue order
        // of first appearance (a fixed order, so the sum is the same in any run).
        let hhi = if self.volume > 0.0 {
            self.venues
                .iter()
                .map(|&(_, v)| {
                    let s = v / self.volume;
                    s * s
                })
                .sum()
        } else {
            f64::NAN
        };
        *out = [
            self.open,
            self.high,
            self.low,
            self.close,
            median,
            vwap,
            self.volume,
            n as f64,
            hhi,
        ];
        self.prices.clear();
        self.venues.clear();
        self.pv = 0.0;
        self.volume = 0.0;
    }
}

/// The `tick_bars` node (see [`TickBarsParams`] and [`BarKind`]).
#[derive(Clone, Debug)]
pub struct TickBars {
    id: NodeId,
    params: TickBarsParams,
    freq: i64,
    exclude: u32,
    bars: Vec<OpenBar>,
    /// The end of the open time bin and the knowledge time of its last row.
    bin: Option<(i64, i64)>,
    known: Option<i64>,
}

impl TickBars {
    /// A node with `params`.
    ///
    /// # Errors
    /// A message naming the parameter: no `freq` for time bars, no positive
    /// `volume` for volume bars, or a condition that is not hexadecimal.
    pub fn new(
        id: impl Into<String>,
        params: TickBarsParams,
    ) -> std::result::Result<TickBars, (&'static str, String)> {
        let freq = match (params.by, &params.freq) {
            (BarKind::Time, Some(f)) => {
                let d = parse_duration(f).map_err(|e| ("freq", e.to_string()))?;
                if d <= 0 {
                    return Err(("freq", "must be a positive duration".into()));
                }
                d
            }
            (BarKind::Time, None) => {
                return Err(("freq", "time bars need `freq` (such as \"1min\")".into()));
            }
            (BarKind::Volume, _) => 0,
        };
        if params.by == BarKind::Volume && !params.volume.is_some_and(|v| v.is_finite() && v > 0.0)
        {
            return Err((
                "volume",
                "volume bars need a positive `volume` (shares per bar)".into(),
            ));
        }
        let mut exclude = 0u32;
        for c in &params.exclude_conditions {
            exclude |= u32::from_str_radix(c.trim(), 16).map_err(|_| {
                (
                    "exclude_conditions",
                    format!(
                        "{:?} is not hexadecimal sale-condition flags (such as \"2000\")",
                        kf_config::clip_text(c)
                    ),
                )
            })?;
        }
        Ok(TickBars {
            id: NodeId(id.into()),
            params,
            freq,
            exclude,
            bars: Vec::new(),
            bin: None,
            known: None,
        })
    }

    fn from_section(s: &Section<'_>) -> kf_config::Result<TickBars> {
        let p: TickBarsParams = s.deserialize()?;
        TickBars::new(node_id(s), p).map_err(|(k, m)| s.invalid(k, m))
    }

    fn bin_end(&self, t: i64) -> i64 {
        let r = t.rem_euclid(self.freq);
        // Saturating: a tick in the last bar before i64::MAX (year 2262) ends it there.
        if r == 0 {
            t
        } else {
            (t - r).saturating_add(self.freq)
        }
    }

    /// The input columns read: price and size, then venue, condition and
    /// suspicious flag where named.
    fn columns(&self) -> Vec<(&'static str, &String)> {
        let p = &self.params;
        [
            ("price", &p.price),
            ("size", &p.size),
            ("exchange", &p.exchange),
            ("condition", &p.condition),
            ("suspicious", &p.suspicious),
        ]
        .into_iter()
        .filter(|(k, c)| !c.is_empty() || matches!(*k, "price" | "size"))
        .collect()
    }
}

/// Output rows being built.
struct Rows {
    ts: Vec<i64>,
    kt: Vec<i64>,
    cols: Vec<Vec<f64>>,
}

impl Rows {
    fn push_row(&mut self, t: i64, k: i64, bars: &mut [OpenBar]) {
        self.ts.push(t);
        self.kt.push(k);
        let mut v = [0.0; 9];
        for bar in bars.iter_mut() {
            bar.emit(&mut v);
            for (col, x) in self.cols.iter_mut().zip(v) {
                col.push(x);
            }
        }
    }
}

impl Node for TickBars {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "tick_bars"
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
        for (key, col) in self.columns() {
            require(features, key, [col])?;
        }
        Ok(Some(FeatureMap::from([(
            DF_OUT.to_string(),
            BAR_FEATURES.iter().map(|f| f.to_string()).collect(),
        )])))
    }

    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let n = input.n_assets();
        sized(&mut self.bars, n, OpenBar::default, self.id.as_str())?;
        let col = |name: &String| -> Result<Option<&[f64]>> {
            if name.is_empty() {
                Ok(None)
            } else {
                Ok(Some(input.feature(name)?.values()))
            }
        };
        let p = &self.params;
        let (price, size) = (
            input.feature(&p.price)?.values(),
            input.feature(&p.size)?.values(),
        );
        let (venue, cond, susp) = (col(&p.exchange)?, col(&p.condition)?, col(&p.suspicious)?);
        let ts = input.end_ts();
        let kt = running_max(&mut self.known, input.knowledge_ts());
        let mut out = Rows {
            ts: Vec::new(),
            kt: Vec::new(),
            cols: vec![Vec::new(); BAR_FEATURES.len()],
        };
        let (drop_suspicious, exclude) = (self.params.drop_suspicious, self.exclude);
        let keep = |c: usize| -> bool {
            let (p, s) = (price[c], size[c]);
            p.is_finite()
                && p > 0.0
                && s.is_finite()
                && s >= 0.0
                && !(drop_suspicious && susp.is_some_and(|x| x[c] == 1.0))
                && cond.is_none_or(|x| {
                    exclude == 0 || !x[c].is_finite() || (x[c] as u32) & exclude == 0
                })
        };
        let venue_of = |c: usize| -> u32 {
            let Some(venue) = venue else { return 0 };
            let v = venue[c];
            if v.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&v) {
                v as u32
            } else {
                0
            }
        };
        match self.params.by {
            BarKind::Time => {
                for (r, &t) in ts.iter().enumerate() {
                    // Rows come in time order: a row at or before the open bin's end
                    // is in it (no division per tick).
                    let b = match self.bin {
                        Some((open, _)) if t <= open => open,
                        _ => self.bin_end(t),
                    };
                    if let Some((open, open_kt)) = self.bin
                        && b != open
                    {
                        // A tick of a later bin completes the open one. Every bin with
                        // an input row is emitted (NaN for assets without a trade in
                        // it), so the rows do not depend on which assets a tile holds.
                        out.push_row(open, open_kt.max(open), &mut self.bars);
                    }
                    self.bin = Some((b, kt[r]));
                    for a in 0..n {
                        let c = r * n + a;
                        if keep(c) {
                            self.bars[a].add(price[c], size[c], venue_of(c));
                        }
                    }
                    // A tick at the bin's end completes it: nothing later falls in it.
                    if t == b {
                        out.push_row(b, kt[r].max(b), &mut self.bars);
                        self.bin = None;
                    }
                }
            }
            BarKind::Volume => {
                // One output row per input row (NaN where no bar closes), so the
                // rows do not depend on which assets a tile holds.
                let target = self.params.volume.unwrap_or(f64::INFINITY);
                let mut v = [0.0; 9];
                for (r, &t) in ts.iter().enumerate() {
                    out.ts.push(t);
                    out.kt.push(kt[r]);
                    for a in 0..n {
                        let c = r * n + a;
                        let bar = &mut self.bars[a];
                        if keep(c) {
                            bar.add(price[c], size[c], venue_of(c));
                        }
                        if bar.volume >= target {
                            bar.emit(&mut v);
                        } else {
                            v.fill(f64::NAN);
                        }
                        for (col, x) in out.cols.iter_mut().zip(v) {
                            col.push(x);
                        }
                    }
                }
            }
        }
        let features = BAR_FEATURES
            .iter()
            .map(|f| f.to_string())
            .zip(out.cols)
            .collect();
        Ok(single_output(input.with_rows(out.ts, out.kt, features)?))
    }

    fn reset(&mut self) {
        self.bars.clear();
        self.bin = None;
        self.known = None;
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "tick_bars",
        TypeDoc::new(
            "time or volume bars from trade ticks (open, high, low, close, median, vwap, \
             volume, ticks, and the venue HHI), leaving out suspicious ticks and chosen \
             sale conditions",
        )
        .params_of::<TickBarsParams>()
        .ports(&[DF_IN], &[DF_OUT])
        .example("by = \"time\"\nfreq = \"1min\"\nexclude_conditions = [\"2000\"]"),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            Ok(Box::new(TickBars::from_section(s)?) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_frame::Frame;

    /// Time, price, size, venue, condition flags, suspicious.
    type Tick = (i64, f64, f64, u8, u32, f64);

    fn ticks(rows: &[Tick]) -> Frame {
        let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let col = |f: &dyn Fn(&Tick) -> f64| -> Vec<f64> { rows.iter().map(f).collect() };
        Frame::new(
            ts.clone(),
            ts,
            vec!["X".into()],
            vec![
                ("price".into(), col(&|r| r.1)),
                ("size".into(), col(&|r| r.2)),
                ("exchange".into(), col(&|r| f64::from(r.3))),
                ("condition".into(), col(&|r| f64::from(r.4))),
                ("suspicious".into(), col(&|r| r.5)),
            ],
        )
        .unwrap()
    }

    fn run(node: &mut TickBars, f: &Frame) -> Frame {
        let mut p = Ports::new();
        p.insert(DF_IN.into(), f.clone());
        node.run(&RunContext::new(crate::node::Phase::Fit, None), &p)
            .unwrap()
            .remove(DF_OUT)
            .unwrap()
    }

    #[test]
    fn time_bars_by_hand_with_filters_and_venue_concentration() {
        let s = 1_000_000_000;
        // Bar (0, 10 s]: 100 @ 10 on P, 300 @ 11 on Q, 100 @ 12 on P; a suspicious
        // tick and an extended-hours tick (flag 0x2000) are left out.
        // Bar (10, 20 s]: 200 @ 9 on Z, at exactly 20 s (it completes the bar).
        let f = ticks(&[
            (2 * s, 10.0, 100.0, b'P', 0, 0.0),
            (3 * s, 50.0, 1e6, b'P', 0, 1.0),
            (4 * s, 11.0, 300.0, b'Q', 0x2000_0020, 0.0),
            (5 * s, 99.0, 500.0, b'Q', 0x2000, 0.0),
            (10 * s, 12.0, 100.0, b'P', 1, 0.0),
            (20 * s, 9.0, 200.0, b'Z', 0, 0.0),
        ]);
        let p = TickBarsParams {
            freq: Some("10s".into()),
            exclude_conditions: vec!["2000".into()],
            ..TickBarsParams::default()
        };
        let mut node = TickBars::new("bars", p).unwrap();
        let out = run(&mut node, &f);
        assert_eq!(out.end_ts(), &[10 * s, 20 * s]);
        let v = |name: &str| out.feature(name).unwrap().values().to_vec();
        assert_eq!(v("open"), [10.0, 9.0]);
        assert_eq!(v("high"), [12.0, 9.0]);
        assert_eq!(v("low"), [10.0, 9.0]);
        assert_eq!(v("close"), [12.0, 9.0]);
        assert_eq!(v("median"), [11.0, 9.0]);
        assert_eq!(v("volume"), [500.0, 200.0]);
        assert_eq!(v("ticks"), [3.0, 1.0]);
        // VWAP (1000 + 3300 + 1200) / 500 = 11; HHI: P has 200 of 500, Q 300:
        // 0.4^2 + 0.6^2 = 0.52. One venue: 1.
        assert!((v("vwap")[0] - 11.0).abs() < 1e-12);
        assert!((v("hhi")[0] - 0.52).abs() < 1e-12);
        assert_eq!(v("hhi")[1], 1.0);
    }

    #[test]
    fn volume_bars_close_on_the_tick_that_fills_them() {
        let f = ticks(&[
            (1, 10.0, 60.0, b'P', 0, 0.0),
            (2, 11.0, 30.0, b'P', 0, 0.0),
            (3, 12.0, 20.0, b'P', 0, 0.0),
            (4, 13.0, 100.0, b'P', 0, 0.0),
            (5, 14.0, 10.0, b'P', 0, 0.0),
        ]);
        let p = TickBarsParams {
            by: BarKind::Volume,
            volume: Some(100.0),
            ..TickBarsParams::default()
        };
        let mut node = TickBars::new("vb", p).unwrap();
        let out = run(&mut node, &f);
        // 60 + 30 + 20 = 110 >= 100 at t = 3; then 100 at t = 4; 10 stays open.
        assert_eq!(out.end_ts(), &[1, 2, 3, 4, 5]);
        let vol = out.feature("volume").unwrap().values();
        assert!(vol[0].is_nan() && vol[1].is_nan() && vol[4].is_nan());
        assert_eq!(&vol[2..4], &[110.0, 100.0]);
        assert_eq!(
            &out.feature("median").unwrap().values()[2..4],
            &[11.0, 13.0]
        );
    }

    #[test]
    fn bad_parameters_name_the_key() {
        let e = TickBars::new("b", TickBarsParams::default()).unwrap_err();
        assert_eq!(e.0, "freq");
        let p = TickBarsParams {
            by: BarKind::Volume,
            volume: Some(-1.0),
            ..TickBarsParams::default()
        };
        assert_eq!(TickBars::new("b", p).unwrap_err().0, "volume");
        let p = TickBarsParams {
            freq: Some("1s".into()),
            exclude_conditions: vec!["xyz".into()],
            ..TickBarsParams::default()
        };
        assert_eq!(TickBars::new("b", p).unwrap_err().0, "exclude_conditions");
    }
}
