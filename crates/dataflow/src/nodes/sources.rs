//! Source nodes: a `MarketData` view, a frame (in memory or a Parquet file), and a
//! seeded ARMA generator. Each loads the run's interval (all it has when none).

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::{ParamDoc, Section, TypeDoc};
use kf_datapull::{MarketData, ReplaySettings};
use kf_frame::{Frame, RowBuf, Timestamp, parse_duration};

use crate::error::{DataflowError, Result};
use crate::node::{
    DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// Parameters of `market_data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MarketDataParams {
    /// The assets to load (all when empty).
    pub assets: Vec<String>,
    /// The columns to load (all when empty).
    pub columns: Vec<String>,
    /// Read the data as it was known at this time (ISO 8601, UTC unless it carries
    /// an offset): of each bar, the latest version known by then; revisions known
    /// later are left out. Absent: the latest versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

/// Loads the run's interval from a [`MarketData`] view.
#[derive(Debug)]
pub struct MarketDataSource {
    id: NodeId,
    view: Arc<dyn MarketData>,
    params: MarketDataParams,
    /// `params.as_of`, parsed (the parse error, reported when the node runs).
    as_of: std::result::Result<Option<i64>, String>,
}

impl MarketDataSource {
    /// A source node over `view`.
    pub fn new(
        id: impl Into<String>,
        view: Arc<dyn MarketData>,
        params: MarketDataParams,
    ) -> MarketDataSource {
        let as_of = parse_as_of(params.as_of.as_deref());
        MarketDataSource {
            id: NodeId(id.into()),
            view,
            params,
            as_of,
        }
    }
}

impl MarketDataSource {
    /// The view's rows of the run's interval (all when it has none).
    fn load(&self, ctx: &RunContext) -> Result<Frame> {
        let (start, end) = ctx.interval.unwrap_or((i64::MIN, i64::MAX));
        let as_of = match &self.as_of {
            Ok(t) => *t,
            Err(e) => return Err(DataflowError::invalid(e.clone())),
        };
        Ok(self.view.data_as_of(
            Timestamp(start),
            Timestamp(end),
            nonempty(&self.params.assets),
            nonempty(&self.params.columns),
            as_of,
        )?)
    }
}

/// `names`, or `None` (everything) when there are none.
fn nonempty(names: &[String]) -> Option<&[String]> {
    (!names.is_empty()).then_some(names)
}

/// Parses `as_of` (ISO 8601), saying what is wrong with it.
fn parse_as_of(text: Option<&str>) -> std::result::Result<Option<i64>, String> {
    text.map(|t| {
        Timestamp::parse(t)
            .map(|t| t.nanos())
            .map_err(|e| format!("as_of {t:?} is not a time: {e} (write it as 2024-01-02 09:30)"))
    })
    .transpose()
}

impl Node for MarketDataSource {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "market_data"
    }
    fn inputs(&self) -> Vec<String> {
        Vec::new()
    }
    fn output_features(
        &self,
        _: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let Some(there) = self.view.features() else {
            return Ok(None);
        };
        let out = if self.params.columns.is_empty() {
            there
        } else {
            for c in &self.params.columns {
                if !there.contains(c) {
                    return Err(MissingFeature {
                        key: "columns".into(),
                        feature: c.clone(),
                        port: format!("market data ({})", self.view.describe()),
                        available: Some(there),
                    });
                }
            }
            self.params.columns.clone()
        };
        Ok(Some(FeatureMap::from([(DF_OUT.to_string(), out)])))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn data_fingerprint(&self) -> Result<Option<String>> {
        Ok(self.view.fingerprint()?)
    }
    fn data_lineage(&self) -> Option<String> {
        self.view.lineage()
    }
    fn data_prefix(&self, until: i64) -> Result<Option<String>> {
        Ok(self.view.prefix_fingerprint(until)?)
    }
    fn run(&mut self, ctx: &RunContext, _: &Ports) -> Result<Ports> {
        Ok(single_output(self.load(ctx)?))
    }
    fn steps(&self) -> bool {
        true
    }
    /// Copies the view's rows of the interval into `out`: one query, as
    /// [`Node::run`]. Nothing is allocated here once `out` has grown to the
    /// largest step; what the view allocates to answer is the view's.
    fn step(&mut self, ctx: &RunContext, _: Option<&RowBuf>, out: &mut RowBuf) -> Result<()> {
        let frame = self.load(ctx)?;
        out.reset_to(frame.assets_shared(), frame.features_shared());
        out.extend_from_frame(&frame, 0, frame.n_rows());
        Ok(())
    }
}

/// Serves slices of a frame held in memory (or read once from a Parquet file).
#[derive(Clone, Debug)]
pub struct FrameSource {
    id: NodeId,
    kind: &'static str,
    frame: Frame,
    /// The frame's digest, computed on first use (the frame never changes).
    digest: std::sync::OnceLock<String>,
}

impl FrameSource {
    /// A source node serving `frame`.
    pub fn new(id: impl Into<String>, frame: Frame) -> FrameSource {
        FrameSource {
            id: NodeId(id.into()),
            kind: "frame",
            frame,
            digest: std::sync::OnceLock::new(),
        }
    }

    /// The same source under another type name (`arma`: a generated frame).
    pub fn with_kind(mut self, kind: &'static str) -> FrameSource {
        self.kind = kind;
        self
    }
}

impl Node for FrameSource {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        self.kind
    }
    fn inputs(&self) -> Vec<String> {
        Vec::new()
    }
    fn output_features(
        &self,
        _: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        Ok(Some(FeatureMap::from([(
            DF_OUT.to_string(),
            self.frame.features().to_vec(),
        )])))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn data_fingerprint(&self) -> Result<Option<String>> {
        let digest = self
            .digest
            .get_or_init(|| crate::cache::frame_digest(&self.frame));
        Ok(Some(format!("frame;{digest}")))
    }
    fn run(&mut self, ctx: &RunContext, _: &Ports) -> Result<Ports> {
        Ok(single_output(match ctx.interval {
            Some((s, e)) => self.frame.slice_time(s, e),
            None => self.frame.clone(),
        }))
    }
    fn steps(&self) -> bool {
        true
    }
    fn step(&mut self, ctx: &RunContext, _: Option<&RowBuf>, out: &mut RowBuf) -> Result<()> {
        out.reset_to(self.frame.assets_shared(), self.frame.features_shared());
        let ts = self.frame.end_ts();
        let (lo, hi) = match ctx.interval {
            Some((s, e)) => {
                let lo = ts.partition_point(|&t| t < s);
                (lo, ts.partition_point(|&t| t <= e).max(lo))
            }
            None => (0, ts.len()),
        };
        out.extend_from_frame(&self.frame, lo, hi);
        Ok(())
    }
}

/// Parameters of `arma`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ArmaParams {
    /// How many assets (named `A0000`, `A0001`, ...).
    pub assets: usize,
    /// How many bars.
    pub bars: usize,
    /// The first bar's end (ISO 8601, UTC unless it has an offset).
    pub start: String,
    /// Bar length.
    pub freq: String,
    /// AR coefficients `phi_1..phi_p`.
    pub ar: Vec<f64>,
    /// MA coefficients `theta_1..theta_q`.
    pub ma: Vec<f64>,
    /// Standard deviation of the innovations.
    pub scale: f64,
    /// RNG seed: the same seed gives the same bits everywhere.
    pub seed: u64,
    /// The output feature's name.
    pub col: String,
}

impl Default for ArmaParams {
    fn default() -> Self {
        ArmaParams {
            assets: 2,
            bars: 1000,
            start: "2024-01-02 09:31".into(),
            freq: "1min".into(),
            ar: vec![0.5],
            ma: Vec::new(),
            scale: 0.01,
            seed: 0,
            col: "ret".into(),
        }
    }
}

/// Generates an ARMA(p, q) series per asset,
/// `x_t = sum phi_i x_{t-i} + e_t + sum theta_j e_{t-j}`, `e_t ~ N(0, scale^2)`.
///
/// # Errors
/// [`DataflowError::Invalid`] for a bad start time or frequency.
pub fn arma_frame(p: &ArmaParams) -> Result<Frame> {
    let t0 = Timestamp::parse(&p.start)
        .map_err(|e| DataflowError::invalid(e.to_string()))?
        .nanos();
    let step = parse_duration(&p.freq).map_err(|e| DataflowError::invalid(e.to_string()))?;
    if step <= 0 {
        return Err(DataflowError::invalid(
            "the ARMA frequency must be positive",
        ));
    }
    let n = p.assets;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let (np, nq) = (p.ar.len(), p.ma.len());
    let mut xs = vec![0.0; p.bars * n];
    let mut es = vec![0.0; p.bars * n];
    for t in 0..p.bars {
        for a in 0..n {
            let e: f64 = StandardNormal.sample(&mut rng);
            let e = e * p.scale;
            let mut x = e;
            for i in 1..=np.min(t) {
                x += p.ar[i - 1] * xs[(t - i) * n + a];
            }
            for j in 1..=nq.min(t) {
                x += p.ma[j - 1] * es[(t - j) * n + a];
            }
            xs[t * n + a] = x;
            es[t * n + a] = e;
        }
    }
    let end_ts: Vec<i64> = (0..p.bars as i64).map(|i| t0 + i * step).collect();
    let assets = (0..n).map(|a| format!("A{a:04}")).collect();
    Ok(Frame::new(
        end_ts.clone(),
        end_ts,
        assets,
        vec![(p.col.clone(), xs)],
    )?)
}

/// The market data a node or builder configured by `s` reads: its own `source`
/// table, or else the system's `[market_data]` view.
///
/// # Errors
/// A located config error when neither is there, or the view's own build error.
pub(crate) fn view(
    s: &Section<'_>,
    ctx: &BuildContext<'_>,
) -> kf_config::Result<Arc<dyn MarketData>> {
    if s.contains("source") {
        let own = ctx.types.data.view(&s.section("source")?)?;
        // A node's own data follows the run like the run's data: on the run's clock
        // when it has one (so nothing is read before it is known), else all of it.
        return match ctx.market_data.and_then(|m| m.clock()) {
            Some(clock) => {
                let default = ReplaySettings {
                    delay: kf_frame::Duration::ZERO,
                    freq: kf_frame::Duration(60_000_000_000),
                    offset: kf_frame::Duration::ZERO,
                    poll: kf_frame::Duration(1_000_000_000),
                };
                own.on_clock(clock, ctx.replay.unwrap_or(&default))
                    .map_err(|e| {
                        s.build_error("putting this node's own `source` on the run's clock", e)
                    })
            }
            None => Ok(own.unclocked().unwrap_or(own)),
        };
    }
    // Asked for, so that `source` counts as a key this table accepts.
    let _ = s.get_opt::<String>("source.type");
    ctx.market_data.cloned().ok_or_else(|| {
        s.invalid(
            "source",
            "no market data: add a `source` table here or a top-level [market_data] section",
        )
    })
}

fn source_doc() -> ParamDoc {
    ParamDoc::new(
        "source",
        "table",
        None,
        "The market data to read, with its own `type` (default: the config's [market_data]).",
    )
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "market_data",
        TypeDoc::new("reads the run's interval from the market data: the DAG's usual source")
            .params_of::<MarketDataParams>()
            .param(source_doc())
            .ports(&[], &[DF_OUT]),
        Box::new(|s: &Section<'_>, ctx: &BuildContext<'_>| {
            let view = view(s, ctx)?;
            let params: MarketDataParams = s.deserialize()?;
            parse_as_of(params.as_of.as_deref()).map_err(|m| s.invalid("as_of", m))?;
            Ok(Box::new(MarketDataSource::new(node_id(s), view, params)) as Box<dyn Node>)
        }),
    )?;
    r.insert(
        "frame",
        TypeDoc::new("serves a frame read once from a Parquet file written by `kaizenflow run`")
            .param(
                ParamDoc::new(
                    "path",
                    "string",
                    None,
                    "The Parquet file, relative to the config's folder.",
                )
                .required(),
            )
            .ports(&[], &[DF_OUT])
            .example("path = \"frame.parquet\""),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            let path: String = s.get("path")?;
            let full = kf_datapull::paths::resolve(&path, &kf_datapull::paths::config_dir(s))
                .map_err(|m| s.invalid("path", m))?;
            let frame = Frame::read_parquet(&full)
                .map_err(|e| s.build_error(format!("reading {}", full.display()), e))?;
            Ok(Box::new(FrameSource::new(node_id(s), frame)) as Box<dyn Node>)
        }),
    )?;
    r.insert(
        "arma",
        TypeDoc::new("a seeded ARMA(p, q) series per asset, for tests and demonstrations")
            .params_of::<ArmaParams>()
            .ports(&[], &[DF_OUT]),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            let p: ArmaParams = s.deserialize()?;
            let frame = arma_frame(&p).map_err(|e| s.build_error("generating ARMA data", e))?;
            Ok(Box::new(FrameSource::new(node_id(s), frame).with_kind("arma")) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}
