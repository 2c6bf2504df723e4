//! A system run's files: `orders.parquet`, `fills.parquet`, `portfolio.parquet`,
//! `stats.toml` and `pnl.png` (cumulative P&L with drawdowns shaded), plus the
//! summary table printed at the end of `kaizenflow run`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::error::Result as ArrowResult;

use arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use plotters::prelude::*;

use crate::engine::SystemRun;
use crate::error::{Result, SystemError};
use crate::portfolio::Stats;

fn out_err(path: &Path, e: impl std::fmt::Display) -> SystemError {
    SystemError::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn ts(v: &[i64]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v.to_vec()).with_timezone("UTC"))
}

fn f64s(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

/// The asset name of each slot, its text written once per row into buffers sized
/// up front.
fn names(assets: &[String], slots: &[u32]) -> ArrayRef {
    let name = |s: u32| assets.get(s as usize).map_or("", String::as_str);
    let bytes: usize = slots.iter().map(|&s| name(s).len()).sum();
    let mut values: Vec<u8> = Vec::with_capacity(bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(slots.len() + 1);
    offsets.push(0);
    for &s in slots {
        values.extend_from_slice(name(s).as_bytes());
        offsets.push(i32::try_from(values.len()).unwrap_or(i32::MAX));
    }
    match StringArray::try_new(
        arrow::buffer::OffsetBuffer::new(offsets.into()),
        values.into(),
        None,
    ) {
        Ok(a) => Arc::new(a),
        // Over 2 GiB of names in one batch (the writer asks for 128 Ki rows at a
        // time, so only a caller of `tables` with more): the builder grows to
        // whatever it needs and fails there with a clear error instead.
        Err(_) => Arc::new(StringArray::from_iter_values(
            slots.iter().map(|&s| name(s)),
        )),
    }
}

/// `v[range]`, or an error naming the column when the record vectors disagree in
/// length (a bug, reported rather than a panic).
fn part<'a, T>(v: &'a [T], range: &Range<usize>, column: &str) -> ArrowResult<&'a [T]> {
    v.get(range.clone()).ok_or_else(|| {
        arrow::error::ArrowError::InvalidArgumentError(format!(
            "column `{column}` has {} records, fewer than the {} of its table",
            v.len(),
            range.end
        ))
    })
}

/// Rows `r` of the `orders` table.
fn orders_rows(run: &SystemRun, r: Range<usize>) -> ArrowResult<RecordBatch> {
    let o = &run.orders;
    RecordBatch::try_from_iter([
        ("decision_ts", ts(part(&o.ts, &r, "decision_ts")?)),
        ("asset", names(&run.assets, part(&o.asset, &r, "asset")?)),
        (
            "quantity",
            f64s(part(&o.quantity, &r, "quantity")?.iter().copied()),
        ),
        (
            "mark_price",
            f64s(part(&o.mark, &r, "mark_price")?.iter().copied()),
        ),
    ])
}

/// Rows `r` of the `fills` table.
fn fills_rows(run: &SystemRun, r: Range<usize>) -> ArrowResult<RecordBatch> {
    let f = &run.fills;
    RecordBatch::try_from_iter([
        ("order_ts", ts(part(&f.order_ts, &r, "order_ts")?)),
        ("fill_ts", ts(part(&f.ts, &r, "fill_ts")?)),
        ("asset", names(&run.assets, part(&f.asset, &r, "asset")?)),
        (
            "quantity",
            f64s(part(&f.quantity, &r, "quantity")?.iter().copied()),
        ),
        ("price", f64s(part(&f.price, &r, "price")?.iter().copied())),
        ("cost", f64s(part(&f.cost, &r, "cost")?.iter().copied())),
    ])
}

/// Writes one table: columns encoded in parallel, only the asset column as a
/// dictionary (see [`kf_frame::write_table_parquet`]).
fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    kf_frame::write_table_parquet(batch, path, &["asset"]).map_err(|e| out_err(path, e))
}

/// One asset's share of a run's P&L.
#[derive(Clone, Debug, PartialEq)]
pub struct AssetPnl {
    /// The asset.
    pub asset: String,
    /// P&L after costs: the cash its fills moved, less their costs, plus what the
    /// holding at the end is worth at its last mark.
    pub pnl: f64,
    /// Transaction costs paid.
    pub costs: f64,
    /// Absolute notional traded.
    pub traded: f64,
    /// Shares held at the end.
    pub holding: f64,
}

/// Each asset's share of `run`'s P&L, in the run's asset order. Their sum is the
/// run's P&L (the bars' NAV changes) up to rounding: two computations, one by
/// asset over fills, one by bar over the book.
pub fn asset_pnl(run: &SystemRun) -> Vec<AssetPnl> {
    let mut out: Vec<AssetPnl> = run
        .assets
        .iter()
        .zip(&run.holdings)
        .map(|(a, &h)| AssetPnl {
            asset: a.clone(),
            pnl: 0.0,
            costs: 0.0,
            traded: 0.0,
            holding: h,
        })
        .collect();
    let f = &run.fills;
    for k in 0..f.ts.len() {
        let Some(a) = out.get_mut(f.asset[k] as usize) else {
            continue;
        };
        let notional = f.quantity[k] * f.price[k];
        a.pnl -= notional + f.cost[k];
        a.costs += f.cost[k];
        a.traded += notional.abs();
    }
    for (a, &m) in out.iter_mut().zip(&run.marks) {
        if a.holding != 0.0 && m.is_finite() {
            a.pnl += a.holding * m;
        }
    }
    out
}

/// The run's tables, in memory, as `write_run` writes them to Parquet: `orders`,
/// `fills`, `portfolio` (one row per bar) and `assets` (P&L by asset). What the
/// Python package hands to pyarrow, and what the files hold.
///
/// # Errors
/// [`SystemError::Output`] when a table cannot be assembled (columns of unequal
/// length: a bug, reported rather than a panic).
pub fn tables(run: &SystemRun) -> Result<Vec<(&'static str, RecordBatch)>> {
    let orders = orders_rows(run, 0..run.orders.ts.len())
        .map(|b| ("orders", b))
        .map_err(|e| out_err(Path::new("orders"), e))?;
    let fills = fills_rows(run, 0..run.fills.ts.len())
        .map(|b| ("fills", b))
        .map_err(|e| out_err(Path::new("fills"), e))?;
    let mut all = vec![orders, fills];
    all.extend(small_tables(run)?);
    Ok(all)
}

/// The `portfolio` and `assets` tables (a row per bar, a row per asset).
fn small_tables(run: &SystemRun) -> Result<Vec<(&'static str, RecordBatch)>> {
    let batch = |name: &'static str, columns: Vec<(&str, ArrayRef)>| {
        RecordBatch::try_from_iter(columns)
            .map(|b| (name, b))
            .map_err(|e| out_err(Path::new(name), e))
    };
    let b = &run.bars;
    let col = |g: fn(&crate::BarRecord) -> f64| f64s(b.iter().map(g));
    let decided: Vec<i64> = b.iter().map(|x| x.decided).collect();
    let bar_ts: Vec<i64> = b.iter().map(|x| x.ts).collect();
    let portfolio = batch(
        "portfolio",
        vec![
            ("ts", ts(&bar_ts)),
            ("decided_ts", ts(&decided)),
            ("cash", col(|x| x.cash)),
            ("nav", col(|x| x.nav)),
            ("gmv", col(|x| x.gmv)),
            ("nmv", col(|x| x.nmv)),
            ("pnl", col(|x| x.pnl)),
            ("gross_pnl", col(|x| x.gross_pnl)),
            ("costs", col(|x| x.costs)),
            ("traded", col(|x| x.traded)),
            ("net_return", col(|x| x.net_return)),
            (
                "fills",
                Arc::new(UInt64Array::from_iter_values(b.iter().map(|x| x.fills))) as ArrayRef,
            ),
            (
                "lapsed",
                Arc::new(UInt64Array::from_iter_values(b.iter().map(|x| x.lapsed))) as ArrayRef,
            ),
        ],
    )?;
    let per_asset = asset_pnl(run);
    let assets = batch(
        "assets",
        vec![
            (
                "asset",
                Arc::new(arrow::array::StringArray::from_iter_values(
                    per_asset.iter().map(|a| a.asset.as_str()),
                )) as ArrayRef,
            ),
            ("pnl", f64s(per_asset.iter().map(|a| a.pnl))),
            ("costs", f64s(per_asset.iter().map(|a| a.costs))),
            ("traded", f64s(per_asset.iter().map(|a| a.traded))),
            ("holding", f64s(per_asset.iter().map(|a| a.holding))),
        ],
    )?;
    Ok(vec![portfolio, assets])
}

/// Writes every file of `run` into `dir` (the [`tables`] as `NAME.parquet`,
/// `stats.toml`, `pnl.png`) and returns the chart's path.
///
/// The orders and fills (millions of rows) are not first copied whole into Arrow
/// arrays as [`tables`] does: each row group is built from slices of the records
/// as the writer comes to it, in memory the next one reuses.
///
/// # Errors
/// [`SystemError::Output`] naming the file that could not be written.
pub fn write_run(run: &SystemRun, dir: &Path) -> Result<PathBuf> {
    type Rows = fn(&SystemRun, Range<usize>) -> ArrowResult<RecordBatch>;
    let large: [(&str, usize, Rows); 2] = [
        ("orders", run.orders.ts.len(), orders_rows),
        ("fills", run.fills.ts.len(), fills_rows),
    ];
    for (name, rows, build) in large {
        let path = dir.join(format!("{name}.parquet"));
        let schema = build(run, 0..0).map_err(|e| out_err(&path, e))?.schema();
        kf_frame::write_table_parquet_with(&schema, rows, &path, &["asset"], |start, len| {
            Ok(build(run, start..start + len)?)
        })
        .map_err(|e| out_err(&path, e))?;
    }
    for (name, batch) in small_tables(run)? {
        write_table(&dir.join(format!("{name}.parquet")), &batch)?;
    }
    let path = dir.join("stats.toml");
    let text = toml::to_string(&run.stats).map_err(|e| out_err(&path, e))?;
    kf_frame::write_atomic(&path, text.as_bytes()).map_err(|e| out_err(&path, e))?;
    let chart = dir.join("pnl.png");
    draw_pnl(run, &chart)?;
    Ok(chart)
}

/// The summary table: one figure per line.
pub fn summary(s: &Stats, stale: u64) -> String {
    let rows = [
        ("bars", format!("{}", s.bars)),
        ("pnl", format!("{:.2}", s.pnl)),
        ("gross pnl", format!("{:.2}", s.gross_pnl)),
        ("costs", format!("{:.2}", s.costs)),
        ("net return", format!("{:.4}%", s.net_return * 100.0)),
        ("sharpe (annualized)", format!("{:.2}", s.sharpe)),
        (
            "max drawdown",
            format!("{:.2} ({:.4}%)", s.max_drawdown, s.max_drawdown_pct * 100.0),
        ),
        ("hit rate", format!("{:.1}%", s.hit_rate * 100.0)),
        ("mean gmv", format!("{:.0}", s.mean_gmv)),
        ("mean nmv", format!("{:.0}", s.mean_nmv)),
        (
            "turnover per bar",
            format!("{:.2}%", s.turnover_per_bar * 100.0),
        ),
        ("fills", format!("{}", s.fills)),
        ("lapsed orders", format!("{}", s.lapsed)),
        ("stale forecasts", format!("{stale}")),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<22} {v:>20}\n"));
    }
    out
}

/// Registers a system font with the chart's text renderer, once; `false` when none
/// is found (the chart is then drawn without text). `KF_FONT` names a TTF file.
/// Whether a font for chart text was found (`KF_FONT`, else a DejaVu or Liberation
/// sans in the usual places) and registered as `sans-serif`; charts without one are
/// drawn without text.
pub fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let candidates = std::env::var("KF_FONT").into_iter().chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            ]
            .map(String::from),
        );
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // The renderer keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Draws cumulative P&L over the bars, shading each drawdown (the gap below the
/// running peak).
///
/// # Errors
/// [`SystemError::Output`] when the image cannot be drawn or written.
pub fn draw_pnl(run: &SystemRun, path: &Path) -> Result<()> {
    let mut cum = Vec::with_capacity(run.bars.len());
    let mut total = 0.0;
    for b in &run.bars {
        total += b.pnl;
        cum.push(total);
    }
    let mut peak = f64::NEG_INFINITY;
    let peaks: Vec<f64> = cum
        .iter()
        .map(|&c| {
            peak = peak.max(c);
            peak
        })
        .collect();
    if let Some(i) = cum.iter().position(|c| !c.is_finite()) {
        return Err(out_err(
            path,
            format!(
                "cumulative P&L is {} at bar {i} ({}), so there is no chart to draw; \
                 check the costs and the prices that reach the broker",
                cum[i],
                kf_frame::Timestamp(run.bars[i].ts)
            ),
        ));
    }
    let lo = cum.iter().copied().fold(0.0f64, f64::min);
    let hi = cum.iter().copied().fold(0.0f64, f64::max);
    // Finite bounds whose span overflows (near f64::MAX) are drawn on a clamped axis.
    let pad = ((hi - lo) * 0.05).clamp(1.0, f64::MAX / 4.0);
    let (lo, hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
    let n = cum.len().max(2);
    let text = font_available();
    let name = path
        .file_name()
        .map_or_else(|| "chart".into(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.{}.tmp.png", std::process::id()));
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&temp, (1000, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(15);
        if text {
            builder
                .caption(
                    format!(
                        "cumulative P&L: {:.2} over {} bars; max drawdown {:.2}",
                        total,
                        run.bars.len(),
                        run.stats.max_drawdown
                    ),
                    ("sans-serif", 20),
                )
                .x_label_area_size(35)
                .y_label_area_size(80);
        }
        let mut chart = builder.build_cartesian_2d(0..n, (lo - pad)..(hi + pad))?;
        if text {
            chart
                .configure_mesh()
                .x_desc("bar")
                .y_desc("P&L")
                .label_style(("sans-serif", 14))
                .draw()?;
        }
        // Drawdowns: the band between the running peak and the curve.
        let band = RGBColor(220, 60, 60).mix(0.3);
        for (i, (&c, &p)) in cum.iter().zip(&peaks).enumerate() {
            if p > c {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(i, c), (i + 1, p)],
                    band.filled(),
                )))?;
            }
        }
        chart.draw_series(LineSeries::new(
            cum.iter().enumerate().map(|(i, &c)| (i, c)),
            BLUE.stroke_width(2),
        ))?;
        root.present()?;
        Ok(())
    };
    // Drawn beside the target (plotters picks the format from the extension) and
    // renamed over it, so a killed run never leaves half an image.
    let drawn = draw()
        .map_err(|e| out_err(path, e))
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| out_err(path, e)));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    drawn
}
