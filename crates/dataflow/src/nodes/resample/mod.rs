//! `resample`: bars onto a coarser grid, closed right and labelled right.

use indexmap::IndexMap;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::{Section, TypeDoc};
use kf_frame::{RowBuf, View, parse_duration};

use std::sync::Arc;

mod acc;

use acc::Acc;

use crate::column::{running_max, running_max_into};
use crate::error::{DataflowError, Result};
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, require,
    single_input, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// An aggregation over the rows of a bin; NaN inputs are skipped, and a bin with no
/// value gives NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggFunc {
    /// The last value.
    Last,
    /// The first value.
    First,
    /// The mean.
    Mean,
    /// The sum.
    Sum,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// Time-weighted average price: the mean of the price over the bin's bars.
    Twap,
    /// Volume-weighted average price: `sum(price * volume) / sum(volume)` over rows
    /// with both present (NaN when there are none or the ratio is not finite).
    Vwap,
}

/// One output column of a resample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggSpec {
    /// The aggregation.
    pub func: AggFunc,
    /// The input column (the price for `vwap`).
    pub col: String,
    /// The volume column, for `vwap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// When true, an input without `col` leaves this output out instead of failing.
    #[serde(default)]
    pub optional: bool,
}

/// Parameters of `resample`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResampleParams {
    /// The bin length (`5min`, `1h`, ...); bins end on multiples of it since the epoch.
    pub rule: String,
    /// Output name -> aggregation, in output order.
    pub aggs: IndexMap<String, AggSpec>,
    /// When set, a run of empty bins longer than this (a night, a weekend) leaves
    /// one empty bin instead of all of them. Nodes that look one row back (returns)
    /// or skip NaN rows give the same values on every other bin; the output is
    /// smaller by the closed hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap: Option<String>,
}

/// The `resample` node. A bar ending at `t` falls in the bin ending at the first
/// multiple of `rule` at or after `t`. Every bin from the first input row's on is an
/// output row, empty bins included (all NaN).
///
/// A bin is emitted once it is complete: when a row at its end arrives, or the first
/// row of a later bin. Until then it stays open and is carried to the next call, so a
/// run cut into tiles or fed one bar at a time emits the same bins, with the same
/// bits, as one batch call; the last bin of a run that stops inside it is not
/// emitted (it is not known yet).
#[derive(Clone, Debug)]
pub struct Resample {
    id: NodeId,
    rule: i64,
    aggs: Vec<(String, AggSpec)>,
    max_gap: Option<i64>,
    /// The bin still open after the last call (carried state).
    open: Option<Open>,
    /// The latest knowledge time seen (carried state).
    known: Option<i64>,
    /// The aggregations resolved against the last input's features (a cache).
    layout: Option<Arc<Layout>>,
    /// Running knowledge times of a step's rows (reused scratch).
    kt: Vec<i64>,
}

/// The aggregations of `resample` resolved against one list of input features.
#[derive(Clone, Debug)]
struct Layout {
    /// The input's feature names (kept, so pointer equality means the same list).
    input: Arc<[String]>,
    plan: Vec<Agg>,
    names: Arc<[String]>,
}

impl Resample {
    /// A resample node.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] for a non-positive rule, no aggregations, or a
    /// `vwap` without a volume column.
    pub fn new(id: impl Into<String>, rule: i64, aggs: Vec<(String, AggSpec)>) -> Result<Resample> {
        if rule <= 0 {
            return Err(DataflowError::invalid(
                "the resampling rule must be a positive duration",
            ));
        }
        if aggs.is_empty() {
            return Err(DataflowError::invalid(
                "a resample needs at least one aggregation in `aggs`",
            ));
        }
        if let Some((name, _)) = aggs
            .iter()
            .find(|(_, a)| a.func == AggFunc::Vwap && a.volume.is_none())
        {
            return Err(DataflowError::invalid(format!(
                "aggregation `{name}` is a vwap and needs `volume`"
            )));
        }
        Ok(Resample {
            id: NodeId(id.into()),
            rule,
            aggs,
            max_gap: None,
            open: None,
            known: None,
            layout: None,
            kt: Vec::new(),
        })
    }

    /// Collapses runs of empty bins longer than `gap` to one empty bin (see
    /// [`ResampleParams::max_gap`]).
    pub fn with_max_gap(mut self, gap: Option<i64>) -> Resample {
        self.max_gap = gap;
        self
    }

    fn from_section(s: &Section<'_>) -> kf_config::Result<Resample> {
        let p: ResampleParams = s.deserialize()?;
        let rule = parse_duration(&p.rule).map_err(|e| s.invalid("rule", e.to_string()))?;
        let gap = match &p.max_gap {
            Some(g) => Some(parse_duration(g).map_err(|e| s.invalid("max_gap", e.to_string()))?),
            None => None,
        };
        Ok(
            Resample::new(node_id(s), rule, p.aggs.into_iter().collect())
                .map_err(|e| s.invalid("aggs", e.to_string()))?
                .with_max_gap(gap),
        )
    }

    /// The end of the bin holding a bar that ends at `t`.
    pub fn bin_end(&self, t: i64) -> i64 {
        t.div_euclid(self.rule) * self.rule
            + if t.rem_euclid(self.rule) == 0 {
                0
            } else {
                self.rule
            }
    }
}

#[derive(Clone, Debug)]
/// A resample's carried state: the bin still open at the end of the last call.
struct Open {
    /// The output names the accumulators belong to (checked on every call).
    names: Arc<[String]>,
    accs: Vec<Acc>,
    /// Where the bins stand.
    cur: Cursor,
}

/// The bin position of a resample, the same for every aggregation.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Cursor {
    /// The end of the earliest bin not emitted yet.
    bin: i64,
    /// Whether that bin has rows (it has none right after a bin closed on its end row).
    has_rows: bool,
    /// The knowledge time of the latest row seen.
    bin_kt: i64,
}

/// One aggregation of a call: its output name, input column, volume column and
/// function.
type Agg = (String, usize, Option<usize>, AggFunc);

/// Output columns being built by one call.
struct Emitted<'a> {
    outs: &'a mut [Vec<f64>],
    end_ts: &'a mut Vec<i64>,
    kt: &'a mut Vec<i64>,
}

impl Resample {
    /// Refuses a resample whose output bins would not fit in memory (a `1ns` rule
    /// over days of data), before any bin is allocated. Counts the bins from the
    /// row times in one pass, as [`Resample::emit_until`] will emit them (a gap
    /// longer than `max_gap` gives at most two).
    fn check_bins(&self, ts: &[i64], f64s_per_bin: usize) -> Result<()> {
        let mut prev: Option<i64> = self.open.as_ref().map(|o| o.cur.bin);
        let mut bins: u128 = u128::from(!ts.is_empty());
        for &t in ts {
            let b = self.bin_end(t);
            if let Some(p) = prev
                && b != p
            {
                let gap = i128::from(b) - i128::from(p);
                // The bin that closes first is emitted whole; only what is left of the
                // gap after it collapses.
                let rule = i128::from(self.rule);
                bins += if self.max_gap.is_some_and(|g| gap - rule > i128::from(g)) {
                    2
                } else {
                    (gap / rule).unsigned_abs()
                };
            }
            prev = Some(b);
        }
        kf_frame::budget::check_bytes_with(bins * f64s_per_bin as u128 * 8, || {
            format!(
                "resampling node `{}` (rule of {} ns over {} rows: {bins} bins)",
                self.id,
                self.rule,
                ts.len()
            )
        })
        .map_err(|e| DataflowError::invalid(format!("{e}: use a longer rule or a max_gap")))
    }

    /// Closes bins up to (not including) `target`: the open one when `first`, then
    /// the empty ones before `target`: every one, or only the first of a gap longer
    /// than `max_gap`.
    fn emit_until(
        &self,
        cur: &mut Cursor,
        accs: &mut [Acc],
        target: i64,
        mut first: bool,
        out: &mut Emitted,
    ) {
        while cur.bin < target {
            for (acc, o) in accs.iter_mut().zip(out.outs.iter_mut()) {
                acc.emit(o);
                acc.clear();
            }
            out.end_ts.push(cur.bin);
            out.kt.push(cur.bin_kt);
            let collapse = !first && self.max_gap.is_some_and(|g| target - cur.bin > g);
            first = false;
            cur.bin = if collapse {
                target
            } else {
                cur.bin + self.rule
            };
        }
    }

    /// One pass over the rows for the aggregations `plan` (with their accumulators),
    /// from bin position `cur`, appending the bins it closes to `out`.
    fn pass(
        &self,
        input: &View<'_>,
        kt: &[i64],
        cur: &mut Cursor,
        accs: &mut [Acc],
        plan: &[Agg],
        out: &mut Emitted<'_>,
    ) {
        let n = input.n_assets();
        for (r, &t) in input.end_ts().iter().enumerate() {
            let b = self.bin_end(t);
            if b != cur.bin {
                let first = cur.has_rows;
                self.emit_until(cur, accs, b, first, out);
            }
            cur.bin_kt = kt[r];
            cur.has_rows = true;
            for (acc, p) in accs.iter_mut().zip(plan) {
                let x = &input.values(p.1)[r * n..(r + 1) * n];
                let v = p.2.map(|v| &input.values(v)[r * n..(r + 1) * n]);
                acc.add(x, v);
            }
            // A row at the bin's end completes it: nothing later can fall in it.
            if t == b {
                self.emit_until(cur, accs, b + 1, true, out);
                cur.bin = b + self.rule;
                cur.has_rows = false;
            }
        }
    }

    /// The aggregations resolved against `features` (cached while they stay the
    /// same list), and the checks that the carried state fits them.
    fn layout(&mut self, features: &Arc<[String]>, view: &View<'_>) -> Result<Arc<Layout>> {
        if let Some(l) = &self.layout
            && Arc::ptr_eq(&l.input, features)
        {
            return Ok(Arc::clone(l));
        }
        let mut plan: Vec<Agg> = Vec::new();
        for (name, spec) in &self.aggs {
            let col = match view.feature_index(&spec.col) {
                Ok(c) => c,
                Err(_) if spec.optional => continue,
                Err(e) => return Err(e.into()),
            };
            let vol = spec
                .volume
                .as_deref()
                .map(|v| view.feature_index(v))
                .transpose()?;
            plan.push((name.clone(), col, vol, spec.func));
        }
        let names: Vec<String> = plan.iter().map(|p| p.0.clone()).collect();
        let l = Arc::new(Layout {
            input: Arc::clone(features),
            plan,
            names: names.into(),
        });
        self.layout = Some(Arc::clone(&l));
        Ok(l)
    }

    /// The running knowledge time of the first of `kt`'s rows, without moving the
    /// carried one.
    fn first_kt(&self, kt: &[i64]) -> Option<i64> {
        kt.first().map(|&k| self.known.map_or(k, |m| m.max(k)))
    }

    /// Checks the carried state against this call's outputs and assets, and opens a
    /// bin at the first row when there is none.
    fn open_state(
        &mut self,
        l: &Layout,
        view: &View<'_>,
        first_kt: Option<i64>,
    ) -> Result<Option<Open>> {
        let n = view.n_assets();
        if let Some(open) = &self.open {
            if !Arc::ptr_eq(&open.names, &l.names) && open.names != l.names {
                return Err(DataflowError::invalid(format!(
                    "this call's input gives the outputs [{}], but earlier calls gave [{}]; \
                     a run keeps one set of columns (reset the DAG to start over)",
                    l.names.join(", "),
                    open.names.join(", ")
                )));
            }
            if open.accs.first().is_some_and(|a| a.n_assets() != n) {
                return Err(DataflowError::invalid(format!(
                    "the input has {n} assets, but earlier calls had {}; a run keeps one \
                     asset universe (reset the DAG to start over)",
                    open.accs.first().map_or(0, |a| a.n_assets())
                )));
            }
        }
        self.check_bins(view.end_ts(), n * l.names.len() + 2)?;
        Ok(match (self.open.take(), view.end_ts().first(), first_kt) {
            (Some(open), _, _) => Some(open),
            (None, Some(&t0), Some(k0)) => Some(Open {
                names: Arc::clone(&l.names),
                accs: l.plan.iter().map(|p| Acc::new(p.3, n)).collect(),
                cur: Cursor {
                    bin: self.bin_end(t0),
                    has_rows: false,
                    bin_kt: k0,
                },
            }),
            (None, _, _) => None,
        })
    }
}

impl Node for Resample {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "resample"
    }
    fn memory(&self) -> Memory {
        Memory::Duration(kf_frame::Duration(self.rule))
    }

    fn output_features(
        &self,
        inputs: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let Some(features) = inputs.get(DF_IN) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(self.aggs.len());
        for (name, spec) in &self.aggs {
            if !features.contains(&spec.col) {
                if spec.optional {
                    continue;
                }
                return Err(MissingFeature::new(
                    format!("aggs.{name}.col"),
                    spec.col.clone(),
                ));
            }
            if let Some(v) = &spec.volume {
                require(features, &format!("aggs.{name}.volume"), [v])?;
            }
            out.push(name.clone());
        }
        Ok(Some(FeatureMap::from([(DF_OUT.to_string(), out)])))
    }

    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let view = input.view();
        let n = input.n_assets();
        let l = self.layout(input.features_shared(), &view)?;
        let ts = input.end_ts();
        let first_kt = self.first_kt(input.knowledge_ts());
        let Some(mut open) = self.open_state(&l, &view, first_kt)? else {
            let features = l.names.iter().map(|n| (n.clone(), Vec::new())).collect();
            return Ok(single_output(input.with_rows(
                Vec::new(),
                Vec::new(),
                features,
            )?));
        };
        // About one bin per row at most, unless every empty bin is kept.
        let hint = match (self.max_gap, ts.first(), ts.last()) {
            (None, Some(&a), Some(&b)) => ((b - a) / self.rule + 2).min(4 * ts.len() as i64 + 2),
            _ => ts.len() as i64 + 2,
        };
        let hint = usize::try_from(hint).unwrap_or(0);
        let kt = running_max(&mut self.known, input.knowledge_ts());
        let mut end_ts = Vec::with_capacity(hint);
        let mut out_kt = Vec::with_capacity(hint);
        let mut outs: Vec<Vec<f64>> = l
            .plan
            .iter()
            .map(|_| Vec::with_capacity(hint * n))
            .collect();
        // Each aggregation's pass is independent, and each replays the same bins: on
        // large inputs they run in parallel, each with its own copy of the cursor
        // (and its own copy of the bin times, of which the first is kept).
        let start = open.cur;
        if ts.len() * n >= crate::par::PAR_MIN_CELLS && l.plan.len() > 1 {
            let cursors: Vec<(Cursor, Vec<i64>, Vec<i64>)> = open
                .accs
                .par_iter_mut()
                .zip(l.plan.par_iter())
                .zip(outs.par_iter_mut())
                .map(|((acc, p), o)| {
                    let mut cur = start;
                    let (mut e, mut k) = (Vec::new(), Vec::new());
                    let mut out = Emitted {
                        outs: std::slice::from_mut(o),
                        end_ts: &mut e,
                        kt: &mut k,
                    };
                    self.pass(
                        &view,
                        &kt,
                        &mut cur,
                        std::slice::from_mut(acc),
                        std::slice::from_ref(p),
                        &mut out,
                    );
                    (cur, e, k)
                })
                .collect();
            if let Some((cur, e, k)) = cursors.into_iter().next() {
                open.cur = cur;
                end_ts = e;
                out_kt = k;
            }
        } else {
            let mut cur = start;
            let mut out = Emitted {
                outs: &mut outs,
                end_ts: &mut end_ts,
                kt: &mut out_kt,
            };
            self.pass(&view, &kt, &mut cur, &mut open.accs, &l.plan, &mut out);
            open.cur = cur;
        }
        self.open = Some(open);
        let features = l.names.iter().cloned().zip(outs).collect();
        Ok(single_output(input.with_rows(end_ts, out_kt, features)?))
    }

    fn steps(&self) -> bool {
        true
    }

    fn step(&mut self, _: &RunContext, input: Option<&RowBuf>, out: &mut RowBuf) -> Result<()> {
        let Some(input) = input else {
            return Err(DataflowError::invalid("a resample steps on one input"));
        };
        let view = input.view();
        let l = self.layout(&input.features, &view)?;
        out.reset_to(&input.assets, &l.names);
        let first_kt = self.first_kt(&input.knowledge_ts);
        let open = self.open_state(&l, &view, first_kt)?;
        let mut kt = std::mem::take(&mut self.kt);
        kt.clear();
        running_max_into(&mut self.known, &input.knowledge_ts, &mut kt);
        {
            if let Some(mut open) = open {
                let mut cur = open.cur;
                let mut e = Emitted {
                    outs: &mut out.values,
                    end_ts: &mut out.end_ts,
                    kt: &mut out.knowledge_ts,
                };
                self.pass(&view, &kt, &mut cur, &mut open.accs, &l.plan, &mut e);
                open.cur = cur;
                self.open = Some(open);
            }
        }
        self.kt = kt;
        Ok(())
    }

    fn reset(&mut self) {
        self.open = None;
        self.known = None;
        self.layout = None;
    }

    /// The open bin (its output names, accumulators and position) and the latest
    /// knowledge time seen.
    fn save_carry(&self) -> Result<Option<Vec<u8>>> {
        let open = self
            .open
            .as_ref()
            .map(|o| (o.names.to_vec(), o.accs.clone(), o.cur));
        crate::node::encode_carry(&(open, self.known)).map(Some)
    }

    fn load_carry(&mut self, bytes: &[u8]) -> Result<()> {
        type Saved = (Option<(Vec<String>, Vec<Acc>, Cursor)>, Option<i64>);
        let (open, known): Saved = crate::node::decode_carry("resample", bytes)?;
        self.open = open.map(|(names, accs, cur)| Open {
            names: names.into(),
            accs,
            cur,
        });
        self.known = known;
        self.layout = None;
        Ok(())
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "resample",
        TypeDoc::new(
            "bars onto a coarser grid (closed right, labelled right), one output per aggregation",
        )
        .params_of::<ResampleParams>()
        .ports(&[DF_IN], &[DF_OUT])
        .example("rule = \"5min\"\naggs.close = { func = \"last\", col = \"close\" }"),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            Ok(Box::new(Resample::from_section(s)?) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}
