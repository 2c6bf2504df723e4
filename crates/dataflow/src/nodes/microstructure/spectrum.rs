//! `arrival_spectrum`: the power of trade arrival times at chosen periods, per
//! block of time (a non-uniform Fourier transform of the arrival times).
//!
//! For the `n` trades of a block at times `t_k` (seconds from the block's start),
//! the power at frequency `f` is `|Σ_k exp(−2πi f t_k)|² / n`. Arrivals at random
//! (a Poisson process) give about 1 at every frequency; algorithms that trade on a
//! clock (a TWAP slicing an order every minute) raise a line at their period (60 s)
//! and its harmonics.
//!
//! A block's row is emitted with the first tick of a later block: a node that
//! streams cannot know a block is over before then, and emitting it at that tick
//! keeps batch, tiled and streamed runs equal. The last block of the data therefore
//! has no row.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::{Section, TypeDoc};
use kf_frame::parse_duration;

use crate::column::running_max;
use crate::error::Result;
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, require,
    single_input, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// Parameters of `arrival_spectrum`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SpectrumParams {
    /// A tick arrives where this column is finite.
    pub col: String,
    /// The periods, in seconds, whose power is given (outputs `power_60s`, ...).
    pub periods: Vec<f64>,
    /// The block of time one row covers, on a grid from the epoch (`"1D"`: UTC days).
    pub block: String,
    /// Arrivals of one asset closer than this to its last counted one are not
    /// counted (`"1ms"`: the trades of one sweep, printed in one millisecond, are
    /// one arrival); `"0s"` counts every trade.
    pub min_gap: String,
}

impl Default for SpectrumParams {
    fn default() -> Self {
        SpectrumParams {
            col: "price".into(),
            periods: vec![30.0, 59.0, 60.0, 61.0, 120.0, 300.0],
            block: "1D".into(),
            min_gap: "0s".into(),
        }
    }
}

/// One asset's sums over the open block: `Σ cos`, `Σ sin` per period, and `n`.
#[derive(Clone, Debug)]
struct Sums {
    re: Vec<f64>,
    im: Vec<f64>,
    n: f64,
    /// The time of the last counted arrival (across blocks).
    last: Option<i64>,
}

/// The `arrival_spectrum` node (see the module doc).
#[derive(Clone, Debug)]
pub struct ArrivalSpectrum {
    id: NodeId,
    params: SpectrumParams,
    block: i64,
    min_gap: i64,
    names: Vec<String>,
    /// Angular frequency per period, in radians per nanosecond.
    omega: Vec<f64>,
    sums: Vec<Sums>,
    open: Option<(i64, i64)>,
    known: Option<i64>,
}

impl ArrivalSpectrum {
    /// A node with `params`.
    ///
    /// # Errors
    /// The key and message of a bad parameter.
    pub fn new(
        id: impl Into<String>,
        params: SpectrumParams,
    ) -> std::result::Result<ArrivalSpectrum, (&'static str, String)> {
        let block = parse_duration(&params.block).map_err(|e| ("block", e.to_string()))?;
        if block <= 0 {
            return Err(("block", "must be a positive duration".into()));
        }
        let min_gap = parse_duration(&params.min_gap).map_err(|e| ("min_gap", e.to_string()))?;
        if min_gap < 0 {
            return Err(("min_gap", "cannot be negative".into()));
        }
        if params.periods.is_empty() || params.periods.len() > 1000 {
            return Err(("periods", "give 1 to 1000 periods, in seconds".into()));
        }
        let mut names = Vec::with_capacity(params.periods.len());
        for &p in &params.periods {
            // From a microsecond to a year: the column is named after the period,
            // and a period far outside the data's span measures nothing.
            if !(1e-6..=31_536_000.0).contains(&p) {
                return Err((
                    "periods",
                    format!("{p:?} is not a number of seconds from 1e-6 to 31536000 (a year)"),
                ));
            }
            let name = format!("power_{p}s");
            if names.contains(&name) {
                return Err(("periods", format!("{p} is given twice")));
            }
            names.push(name);
        }
        names.push("arrivals".into());
        let omega = params
            .periods
            .iter()
            .map(|p| 2.0 * std::f64::consts::PI / (p * 1e9))
            .collect();
        Ok(ArrivalSpectrum {
            id: NodeId(id.into()),
            params,
            block,
            min_gap,
            names,
            omega,
            sums: Vec::new(),
            open: None,
            known: None,
        })
    }

    fn from_section(s: &Section<'_>) -> kf_config::Result<ArrivalSpectrum> {
        let p: SpectrumParams = s.deserialize()?;
        ArrivalSpectrum::new(node_id(s), p).map_err(|(k, m)| s.invalid(k, m))
    }

    /// The start of the block that holds `t` (blocks are `[start, start + block)`).
    fn block_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.block)
    }

    fn emit(
        &mut self,
        start: i64,
        kt: i64,
        ts: &mut Vec<i64>,
        kts: &mut Vec<i64>,
        cols: &mut [Vec<f64>],
    ) {
        let end = start.saturating_add(self.block);
        ts.push(end);
        kts.push(kt.max(end));
        let k = self.omega.len();
        for s in &mut self.sums {
            for ((col, re), im) in cols.iter_mut().zip(&s.re).zip(&s.im) {
                col.push(if s.n > 0.0 {
                    (re * re + im * im) / s.n
                } else {
                    f64::NAN
                });
            }
            cols[k].push(s.n);
            s.re.fill(0.0);
            s.im.fill(0.0);
            s.n = 0.0;
        }
    }
}

impl Node for ArrivalSpectrum {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "arrival_spectrum"
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
        require(features, "col", [&self.params.col])?;
        Ok(Some(FeatureMap::from([(
            DF_OUT.to_string(),
            self.names.clone(),
        )])))
    }

    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let n = input.n_assets();
        let k = self.omega.len();
        let fresh = Sums {
            re: vec![0.0; k],
            im: vec![0.0; k],
            n: 0.0,
            last: None,
        };
        super::sized(&mut self.sums, n, || fresh.clone(), self.id.as_str())?;
        let col = input.feature(&self.params.col)?.values();
        let kt = running_max(&mut self.known, input.knowledge_ts());
        let (mut ts, mut kts) = (Vec::new(), Vec::new());
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); k + 1];
        for (r, &t) in input.end_ts().iter().enumerate() {
            let start = self.block_of(t);
            if let Some((open, open_kt)) = self.open
                && open != start
            {
                self.emit(open, open_kt, &mut ts, &mut kts, &mut cols);
            }
            self.open = Some((start, kt[r]));
            // Time in the block, in ns: exact in f64 for blocks under 104 days.
            let dt = (t - start) as f64;
            for a in 0..n {
                if !col[r * n + a].is_finite() {
                    continue;
                }
                let s = &mut self.sums[a];
                if self.min_gap > 0 && s.last.is_some_and(|l| t - l < self.min_gap) {
                    continue;
                }
                s.last = Some(t);
                for (j, &w) in self.omega.iter().enumerate() {
                    let (sin, cos) = (w * dt).sin_cos();
                    s.re[j] += cos;
                    s.im[j] -= sin;
                }
                s.n += 1.0;
            }
        }
        let features = self.names.iter().cloned().zip(cols).collect();
        Ok(single_output(input.with_rows(ts, kts, features)?))
    }

    fn reset(&mut self) {
        self.sums.clear();
        self.open = None;
        self.known = None;
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "arrival_spectrum",
        TypeDoc::new(
            "the power of trade arrival times at chosen periods, per block of time: a \
             line at 60 s shows algorithms trading once a minute",
        )
        .params_of::<SpectrumParams>()
        .ports(&[DF_IN], &[DF_OUT])
        .example("periods = [59.0, 60.0, 61.0]\nblock = \"1D\"\nmin_gap = \"1ms\""),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            Ok(Box::new(ArrivalSpectrum::from_section(s)?) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}
