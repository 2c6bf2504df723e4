//! `report.html`: one self-contained page about a run folder, for a person.
//!
//! It reads only the folder's files (what `kaizenflow run` and `check` write), so a
//! report can be made for any run, old or new, and holds everything inline (SVG
//! charts, CSS; no script, no font or image from the network): it opens offline,
//! from a mail attachment as well as from the disk. Sections appear when their
//! files are there: the system's statistics and charts (`stats.toml`,
//! `portfolio.parquet`, `assets.parquet`), model metrics (`metrics.toml`), per-node
//! timing (`timings.tsv`), the DAG drawn from the resolved config (`config.toml`),
//! the check verdicts (`check.tsv`), and the config itself.

mod charts;
mod dag_svg;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use plotters::style::RGBColor;

pub use dag_svg::{DagShape, dag_svg};

use crate::error::{Result, SystemError};

/// The report's file name in a run folder.
pub const REPORT: &str = "report.html";

fn out_err(path: &Path, e: impl std::fmt::Display) -> SystemError {
    SystemError::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Every batch of a Parquet file.
fn read_parquet(path: &Path) -> Result<Option<Vec<RecordBatch>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(out_err(path, e)),
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| {
            out_err(
                path,
                format!("not a Parquet table this report can read: {e}"),
            )
        })?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| out_err(path, e))?;
    Ok(Some(batches))
}

/// A float column of `batches`.
fn f64_col(path: &Path, batches: &[RecordBatch], name: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .ok_or_else(|| out_err(path, format!("has no `{name}` column")))?;
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Float64)
            .map_err(|e| out_err(path, e))?;
        let col = col.as_primitive::<Float64Type>();
        out.extend((0..col.len()).map(|i| {
            if col.is_null(i) {
                f64::NAN
            } else {
                col.value(i)
            }
        }));
    }
    Ok(out)
}

/// A time column of `batches`, as ns.
fn ts_col(path: &Path, batches: &[RecordBatch], name: &str) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .ok_or_else(|| out_err(path, format!("has no `{name}` column")))?;
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64)
            .map_err(|e| out_err(path, e))?;
        out.extend_from_slice(col.as_primitive::<Int64Type>().values());
    }
    Ok(out)
}

/// A string column of `batches`.
fn str_col(path: &Path, batches: &[RecordBatch], name: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .ok_or_else(|| out_err(path, format!("has no `{name}` column")))?;
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| out_err(path, e))?;
        let col = col.as_string::<i32>();
        out.extend((0..col.len()).map(|i| col.value(i).to_string()));
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(out_err(path, e)),
    }
}

use dag_svg::escape;

/// A two-column table of `key = value` lines of a flat TOML file.
fn toml_table(text: &str) -> String {
    let mut out = String::from("<table class=\"kv\">\n");
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(_) => return format!("<pre>{}</pre>", escape(text)),
    };
    for (k, v) in &table {
        let shown = match v {
            toml::Value::Float(f) => charts::human(*f),
            toml::Value::Table(_) | toml::Value::Array(_) => {
                format!("<code>{}</code>", escape(&v.to_string()))
            }
            other => escape(&other.to_string()),
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td title=\"{}\">{shown}</td></tr>",
            escape(k),
            escape(&v.to_string())
        );
    }
    out.push_str("</table>\n");
    out
}

/// Per-node wall time from `timings.tsv` (`pass node kind wall_ms rows cells`),
/// summed over passes, largest first.
fn node_timing(text: &str) -> Vec<(String, f64)> {
    let mut by: Vec<(String, f64)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(node), Some(ms)) = (f.get(1), f.get(3).and_then(|m| m.parse::<f64>().ok()))
        else {
            continue;
        };
        match by.iter_mut().find(|(n, _)| n == node) {
            Some(e) => e.1 += ms,
            None => by.push((node.to_string(), ms)),
        }
    }
    by.sort_by(|a, b| b.1.total_cmp(&a.1));
    by
}

/// The check verdicts from `check.tsv` (`check verdict seconds detail`) as a table.
fn checks_table(text: &str) -> String {
    let mut out = String::from(
        "<table class=\"grid\">\n<tr><th>check</th><th>verdict</th><th>seconds</th><th>detail</th></tr>\n",
    );
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        let cell = |i: usize| escape(f.get(i).copied().unwrap_or(""));
        let class = match f.get(1).copied() {
            Some("pass") => "pass",
            Some("fail") => "fail",
            _ => "",
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            cell(0),
            cell(1),
            cell(2),
            cell(3)
        );
    }
    out.push_str("</table>\n");
    out
}

/// The DAG of the resolved config at `path`, drawn (empty when the config has no
/// DAG or cannot be built here, with the reason).
fn dag_section(types: &crate::Registries, path: &Path) -> String {
    let config = match kf_config::Config::from_file(path) {
        Ok(c) => c,
        Err(e) => {
            return format!(
                "<p class=\"note\">cannot read the config: {}</p>",
                escape(&e.to_string())
            );
        }
    };
    let Ok(section) = config.root().section("dag") else {
        return String::new();
    };
    // Only the DAG's shape is drawn: its sources get a stand-in for the market data
    // (the run's files may be elsewhere by now, and nothing is read).
    let none: std::sync::Arc<dyn kf_datapull::MarketData> =
        std::sync::Arc::new(kf_datapull::Historical::new(std::sync::Arc::new(NoData)));
    match types.dataflow.dag_with(&section, Some(&none), None) {
        Ok(dag) => dag_svg(&DagShape::of(&dag)),
        Err(e) => format!(
            "<p class=\"note\">the DAG cannot be built here: {}</p>",
            escape(&e.to_string())
        ),
    }
}

/// The market data a drawn DAG is built on: none (its shape needs no rows).
#[derive(Debug)]
struct NoData;

impl kf_datapull::Source for NoData {
    fn describe(&self) -> String {
        "no market data (a DAG built to be drawn)".into()
    }

    fn load(&self, _: &kf_datapull::Query) -> kf_datapull::Result<kf_frame::Frame> {
        Ok(kf_frame::Frame::empty(Vec::new(), Vec::new())?)
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}\
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;text-align:left}\
table.kv th{font-weight:normal;color:#555}table.grid th{border-bottom:1px solid #aaa}\
td.pass{color:#176d2e;font-weight:bold}td.fail{color:#b3261e;font-weight:bold}\
pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}\
.chart svg{max-width:100%;height:auto}.dagbox{overflow:auto}.note{color:#666;font-size:13px}";

/// Writes `dir/report.html` from the run files in `dir` and returns its path.
///
/// # Errors
/// [`SystemError::Output`] naming a file that is there but unreadable, a chart
/// that cannot be drawn, or the report that cannot be written.
pub fn write_report(dir: &Path, types: &crate::Registries) -> Result<PathBuf> {
    let mut body = String::new();
    let title = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let _ = writeln!(body, "<h1>Run {}</h1>", escape(&title));
    let mut charts_drawn = 0usize;
    let mut chart = |body: &mut String, svg: String| {
        if !svg.is_empty() {
            charts_drawn += 1;
            let _ = writeln!(body, "<div class=\"chart\">{svg}</div>");
        }
    };
    if let Some(stats) = read_text(&dir.join("stats.toml"))? {
        body.push_str("<h2>Statistics</h2>\n");
        body.push_str(&toml_table(&stats));
    }
    let portfolio = dir.join("portfolio.parquet");
    if let Some(b) = read_parquet(&portfolio)? {
        let ts = ts_col(&portfolio, &b, "ts")?;
        let pnl = f64_col(&portfolio, &b, "pnl")?;
        let nav = f64_col(&portfolio, &b, "nav")?;
        let gmv = f64_col(&portfolio, &b, "gmv")?;
        let nmv = f64_col(&portfolio, &b, "nmv")?;
        let traded = f64_col(&portfolio, &b, "traded")?;
        let ret = f64_col(&portfolio, &b, "net_return")?;
        let mut total = 0.0;
        let cum: Vec<f64> = pnl
            .iter()
            .map(|p| {
                total += p;
                total
            })
            .collect();
        let turnover: Vec<f64> = traded
            .iter()
            .zip(&nav)
            .map(|(t, n)| if *n != 0.0 { t / n * 100.0 } else { f64::NAN })
            .collect();
        let blue = RGBColor(40, 90, 170);
        body.push_str("<h2>P&amp;L</h2>\n");
        chart(
            &mut body,
            charts::time_lines(
                "cumulative P&L after costs (drawdowns shaded)",
                "USD",
                &ts,
                &[("P&L", &cum, blue)],
                true,
            )?,
        );
        body.push_str("<h2>Exposure and turnover</h2>\n");
        chart(
            &mut body,
            charts::time_lines(
                "gross and net exposure",
                "USD",
                &ts,
                &[
                    ("gross (GMV)", &gmv, blue),
                    ("net (NMV)", &nmv, RGBColor(200, 120, 30)),
                ],
                false,
            )?,
        );
        chart(
            &mut body,
            charts::time_lines(
                "turnover per bar",
                "% of NAV traded",
                &ts,
                &[("turnover", &turnover, RGBColor(90, 140, 60))],
                false,
            )?,
        );
        body.push_str("<h2>Bar returns</h2>\n");
        let pct: Vec<f64> = ret.iter().map(|r| r * 100.0).collect();
        chart(
            &mut body,
            charts::histogram("distribution of net bar returns", "% of NAV", &pct, 40)?,
        );
    }
    let assets = dir.join("assets.parquet");
    if let Some(b) = read_parquet(&assets)? {
        let names = str_col(&assets, &b, "asset")?;
        let pnl = f64_col(&assets, &b, "pnl")?;
        let mut rows: Vec<(String, f64)> = names.into_iter().zip(pnl).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        // The 15 best and 15 worst when there are many.
        if rows.len() > 30 {
            let tail = rows.split_off(rows.len() - 15);
            rows.truncate(15);
            rows.extend(tail);
        }
        body.push_str("<h2>P&amp;L by asset</h2>\n");
        chart(
            &mut body,
            charts::bars("P&L contribution by asset, after costs", "USD", &rows)?,
        );
    }
    if let Some(m) = read_text(&dir.join("metrics.toml"))? {
        body.push_str("<h2>Model metrics</h2>\n");
        let _ = writeln!(body, "<pre>{}</pre>", escape(&m));
    }
    if let Some(t) = read_text(&dir.join("timings.tsv"))? {
        let timing = node_timing(&t);
        body.push_str("<h2>Time by node</h2>\n");
        chart(&mut body, charts::bars("wall time by node", "ms", &timing)?);
    }
    let config = dir.join("config.toml");
    let config_text = read_text(&config)?;
    if config_text.is_some() {
        body.push_str("<h2>The DAG</h2>\n<div class=\"dagbox\">\n");
        body.push_str(&dag_section(types, &config));
        body.push_str("</div>\n");
    }
    if let Some(c) = read_text(&dir.join("check.tsv"))? {
        body.push_str("<h2>Checks</h2>\n");
        body.push_str(&checks_table(&c));
    }
    if let Some(c) = config_text {
        body.push_str("<h2>Resolved config</h2>\n");
        let _ = writeln!(body, "<pre>{}</pre>", escape(&c));
    }
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>KaizenFlow \
         run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}<p class=\"note\">{charts_drawn} \
         charts. Written by kaizenflow {} from the files of this folder.</p>\n</body>\n</html>\n",
        escape(&title),
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join(REPORT);
    kf_frame::write_atomic(&path, html.as_bytes()).map_err(|e| out_err(&path, e))?;
    Ok(path)
}
