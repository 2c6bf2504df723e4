//! Mock1, KaizenFlow's public example model, as a code builder: the connectivity is
//! fixed here, the parameters come from config.
//!
//! Per asset, on 1-minute bars of `close`, `volume` and (optionally) `feature1`:
//! active trading hours -> 5-minute bars (`close` last, `twap`, `vwap`, `feature1`
//! mean) -> log returns -> a volatility estimate over the present returns ->
//! returns adjusted by the volatility two steps earlier -> `4 tanh(x / 4)` -> four
//! lags -> a weighted sum, `prediction`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::{Section, canonical_of};

use crate::column::{ColMode, ColumnNode, Columns, NanMode};
use crate::dag::Dag;
use crate::error::Result;
use crate::node::Node;
use crate::nodes::BuildContext;
use crate::nodes::filters::ActiveHours;
use crate::nodes::resample::{AggFunc, AggSpec, Resample};
use crate::nodes::returns::{RetMode, RetParams, Returns};
use crate::nodes::smooth::{Rolling, RollingParams, Stat};
use crate::nodes::sources::{MarketDataParams, MarketDataSource};
use crate::nodes::transforms::{
    Combine, CombineParams, Compress, CompressParams, LagParams, Lags, Operation, WeightedSum,
    WeightedSumParams,
};

/// Mock1's parameters (KaizenFlow's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Mock1Params {
    /// The session's time zone.
    pub tz: String,
    /// Session start (exclusive), local.
    pub start_time: String,
    /// Session end (inclusive), local.
    pub end_time: String,
    /// The resampling rule.
    pub resample_rule: String,
    /// The tail compression scale.
    pub compress_scale: f64,
    /// Weights of lags 0 to 3 in the prediction.
    pub weights: [f64; 4],
    /// When set, the resample leaves one empty bin for a gap longer than this (a
    /// night) instead of every bin of it. Predictions on the other bins are the same;
    /// the frames are smaller by the closed hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_gap: Option<String>,
}

impl Default for Mock1Params {
    fn default() -> Self {
        Mock1Params {
            tz: "America/New_York".into(),
            start_time: "09:30".into(),
            end_time: "16:00".into(),
            resample_rule: "5min".into(),
            compress_scale: 4.0,
            weights: [-0.209, -0.223, 0.304, -0.264],
            max_gap: None,
        }
    }
}

/// Records a node's recipe (its parameters, for cache keys); a recipe that did not
/// serialize leaves the node uncached, which is slower, never wrong.
fn set(dag: &mut Dag, id: &str, recipe: Option<String>) -> Result<()> {
    match recipe {
        Some(r) => dag.set_recipe(id, format!("mock1:{r}")),
        None => Ok(()),
    }
}

fn cols(names: &[&str], col_mode: ColMode) -> Columns {
    Columns {
        cols: names.iter().map(|s| s.to_string()).collect(),
        col_mode,
    }
}

/// The Mock1 DAG fed by `source` (a node with no input; its id must not be one of
/// Mock1's stage ids).
///
/// # Errors
/// [`crate::DataflowError::Invalid`] for a bad time, zone or rule.
pub fn dag(source: Box<dyn Node>, p: &Mock1Params) -> Result<Dag> {
    let mut dag = Dag::new();
    dag.add_node(source)?;
    let ath = ActiveHours::new(&p.start_time, &p.end_time, &p.tz)?;
    let c = cols(&[], ColMode::ReplaceSelected);
    let recipe = canonical_of(&(&c, [&p.start_time, &p.end_time, &p.tz]));
    dag.append_to_tail(Box::new(ColumnNode::new("filter_ath", c, ath)))?;
    set(&mut dag, "filter_ath", recipe)?;
    let rule = kf_frame::parse_duration(&p.resample_rule)
        .map_err(|e| crate::DataflowError::invalid(e.to_string()))?;
    let agg = |func, col: &str, volume: Option<&str>, optional| AggSpec {
        func,
        col: col.into(),
        volume: volume.map(str::to_string),
        optional,
    };
    let aggs = vec![
        (
            "close".to_string(),
            agg(AggFunc::Last, "close", None, false),
        ),
        (
            "vwap".to_string(),
            agg(AggFunc::Vwap, "close", Some("volume"), false),
        ),
        ("twap".to_string(), agg(AggFunc::Twap, "close", None, false)),
        (
            "feature1".to_string(),
            agg(AggFunc::Mean, "feature1", None, true),
        ),
    ];
    let gap = match &p.max_gap {
        Some(g) => Some(
            kf_frame::parse_duration(g)
                .map_err(|e| crate::DataflowError::invalid(e.to_string()))?,
        ),
        None => None,
    };
    let recipe = canonical_of(&(rule, &aggs, gap.unwrap_or(-1)));
    dag.append_to_tail(Box::new(
        Resample::new("resample", rule, aggs)?.with_max_gap(gap),
    ))?;
    set(&mut dag, "resample", recipe)?;
    let rp = RetParams {
        mode: RetMode::LogRets,
        ..RetParams::default()
    };
    let c = cols(&["close", "vwap", "twap"], ColMode::Append);
    let recipe = canonical_of(&(&c, &rp));
    dag.append_to_tail(Box::new(ColumnNode::new(
        "compute_ret_0",
        c,
        Returns::new(rp),
    )))?;
    set(&mut dag, "compute_ret_0", recipe)?;
    let vp = RollingParams {
        window: 2,
        stat: Stat::Std,
        min_periods: None,
        ddof: 0,
        burn_in: 2,
        nan_mode: NanMode::Drop,
        suffix: Some(".vol".into()),
    };
    let c = cols(&["vwap.ret_0"], ColMode::Append);
    let recipe = canonical_of(&(&c, &vp));
    dag.append_to_tail(Box::new(ColumnNode::new(
        "compute_vol",
        c,
        Rolling::new(vp),
    )))?;
    set(&mut dag, "compute_vol", recipe)?;
    let ap = CombineParams {
        term1: "vwap.ret_0".into(),
        term2: "vwap.ret_0.vol".into(),
        operation: Operation::Div,
        term1_delay: 0,
        term2_delay: 2,
        out_col: "vwap.ret_0.vol_adj".into(),
        nan_mode: NanMode::Drop,
    };
    let recipe = canonical_of(&(Columns::default(), &ap));
    dag.append_to_tail(Box::new(ColumnNode::new(
        "adjust_rets",
        Columns::default(),
        Combine::new(ap),
    )))?;
    set(&mut dag, "adjust_rets", recipe)?;
    let cp = CompressParams {
        scale: p.compress_scale,
        suffix: ".c".into(),
    };
    let c = cols(&["vwap.ret_0.vol_adj"], ColMode::Append);
    let recipe = canonical_of(&(&c, &cp));
    dag.append_to_tail(Box::new(ColumnNode::new("compress_rets", c, Compress(cp))))?;
    set(&mut dag, "compress_rets", recipe)?;
    let lp = LagParams {
        num_lags: 4,
        first_lag: 0,
        nan_mode: NanMode::Drop,
    };
    let c = cols(&["vwap.ret_0.vol_adj.c"], ColMode::Append);
    let recipe = canonical_of(&(&c, &lp));
    dag.append_to_tail(Box::new(ColumnNode::new("add_lags", c, Lags::new(lp))))?;
    set(&mut dag, "add_lags", recipe)?;
    let weights = (0..4)
        .map(|k| (format!("vwap.ret_0.vol_adj.c.lag{k}"), p.weights[k]))
        .collect();
    let wp = WeightedSumParams {
        weights,
        out_col: "prediction".into(),
    };
    let recipe = canonical_of(&(Columns::default(), &wp));
    dag.append_to_tail(Box::new(ColumnNode::new(
        "predict",
        Columns::default(),
        WeightedSum(wp),
    )))?;
    set(&mut dag, "predict", recipe)?;
    Ok(dag)
}

/// The `mock1` builder: `[dag] type = "mock1"` plus any of [`Mock1Params`]; the data
/// comes from a `source` table here or the system's `[market_data]`.
///
/// # Errors
/// A located config error.
pub fn build(s: &Section<'_>, ctx: &BuildContext<'_>) -> kf_config::Result<Dag> {
    let view = crate::nodes::sources::view(s, ctx)?;
    let p: Mock1Params = s.deserialize()?;
    if !(p.compress_scale > 0.0 && p.compress_scale.is_finite()) {
        return Err(s.invalid(
            "compress_scale",
            format!(
                "must be a positive finite number, not {}: it divides the returns",
                p.compress_scale
            ),
        ));
    }
    for (k, &w) in p.weights.iter().enumerate() {
        if !w.is_finite() {
            return Err(s.invalid(
                "weights",
                format!("weight {k} (of lag {k}) must be a finite number, not {w}"),
            ));
        }
    }
    let params = MarketDataParams::default();
    let recipe = canonical_of(&params);
    let source = Box::new(MarketDataSource::new("read_data", view, params));
    let mut dag = dag(source, &p).map_err(|e| s.build_error("building Mock1", e))?;
    set(&mut dag, "read_data", recipe).map_err(|e| s.build_error("building Mock1", e))?;
    Ok(dag)
}
