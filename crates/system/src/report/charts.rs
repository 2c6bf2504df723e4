//! The report's charts, drawn by plotters into SVG text: time on the x axis as
//! dates and times, units on the y axis.

use plotters::prelude::*;

use crate::error::{Result, SystemError};

/// Whether chart text can be laid out (a font was found; see
/// [`crate::output::font_available`]); without one, charts are drawn without
/// captions and axis labels, and the page's headings say what they show.
fn text() -> bool {
    crate::output::font_available()
}

/// A chart's size in pixels.
const SIZE: (u32, u32) = (960, 360);

fn err(what: &str, e: impl std::fmt::Display) -> SystemError {
    SystemError::Output {
        path: "report.html".into(),
        message: format!("cannot draw the {what} chart: {e}"),
    }
}

/// A time label: the date when the span is days long, else the time of day.
fn time_label(t: i64, span: i64) -> String {
    let d = chrono::DateTime::from_timestamp_nanos(t);
    if span > 3 * 86_400_000_000_000 {
        d.format("%Y-%m-%d").to_string()
    } else if span > 86_400_000_000_000 {
        d.format("%m-%d %H:%M").to_string()
    } else {
        d.format("%H:%M").to_string()
    }
}

/// Bounds of `values` (finite ones) padded by 5%, never empty.
fn bounds<'a>(values: impl IntoIterator<Item = &'a f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05)
        .max(hi.abs().max(lo.abs()) * 1e-6)
        .max(1e-9);
    (lo - pad, hi + pad)
}

/// Lines over time: `series` is `(name, values, color)`, one value per `ts`; with
/// `drawdown`, the band below the first series' running peak is shaded.
pub(crate) fn time_lines(
    title: &str,
    unit: &str,
    ts: &[i64],
    series: &[(&str, &[f64], RGBColor)],
    drawdown: bool,
) -> Result<String> {
    let mut svg = String::new();
    if ts.is_empty() {
        return Ok(svg);
    }
    let (t0, t1) = (ts[0], ts[ts.len() - 1].max(ts[0] + 1));
    let span = t1 - t0;
    let (lo, hi) = bounds(series.iter().flat_map(|s| s.1.iter()));
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(title, e))?;
        let mut builder = ChartBuilder::on(&root);
        if text() {
            builder.caption(title, ("sans-serif", 18));
        }
        let mut chart = builder
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(90)
            .build_cartesian_2d(t0..t1, lo..hi)
            .map_err(|e| err(title, e))?;
        if text() {
            chart
                .configure_mesh()
                .x_labels(8)
                .x_label_formatter(&|t| time_label(*t, span))
                .y_desc(unit)
                .y_label_formatter(&|v| human(*v))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| err(title, e))?;
        }
        if drawdown && let Some((_, v, _)) = series.first() {
            let mut peak = f64::NEG_INFINITY;
            let band = RGBColor(220, 60, 60).mix(0.25);
            for (k, (&t, &c)) in ts.iter().zip(v.iter()).enumerate() {
                peak = peak.max(c);
                if peak > c && c.is_finite() {
                    let next = ts.get(k + 1).copied().unwrap_or(t + 1);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(t, c), (next, peak)],
                            band.filled(),
                        )))
                        .map_err(|e| err(title, e))?;
                }
            }
        }
        for (name, v, color) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    ts.iter()
                        .zip(v.iter())
                        .filter(|(_, y)| y.is_finite())
                        .map(|(&t, &y)| (t, y)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(title, e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        if series.len() > 1 && text() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(|e| err(title, e))?;
        }
        root.present().map_err(|e| err(title, e))?;
    }
    Ok(svg)
}

/// Horizontal bars, one per `(label, value)`, in the order given.
pub(crate) fn bars(title: &str, unit: &str, rows: &[(String, f64)]) -> Result<String> {
    let mut svg = String::new();
    if rows.is_empty() {
        return Ok(svg);
    }
    let height = (60 + 22 * rows.len() as u32).max(160);
    let (lo, hi) = bounds(rows.iter().map(|r| &r.1).chain([&0.0]));
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(title, e))?;
        let n = rows.len() as i32;
        let mut builder = ChartBuilder::on(&root);
        if text() {
            builder.caption(title, ("sans-serif", 18));
        }
        let mut chart = builder
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(180)
            .build_cartesian_2d(lo..hi, 0..n)
            .map_err(|e| err(title, e))?;
        if text() {
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows.len())
                .y_label_formatter(&|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| rows.get(rows.len().wrapping_sub(1).wrapping_sub(i)))
                        .map_or(String::new(), |r| r.0.clone())
                })
                .x_desc(unit)
                .x_label_formatter(&|v| human(*v))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| err(title, e))?;
        }
        chart
            .draw_series(rows.iter().enumerate().map(|(k, (_, v))| {
                let y = n - 1 - k as i32;
                let color = if *v >= 0.0 {
                    RGBColor(40, 120, 200)
                } else {
                    RGBColor(210, 70, 60)
                };
                Rectangle::new([(0.0, y), (*v, y + 1)], color.filled())
            }))
            .map_err(|e| err(title, e))?;
        root.present().map_err(|e| err(title, e))?;
    }
    Ok(svg)
}

/// A histogram of `values` (finite ones) in `bins` bins.
pub(crate) fn histogram(title: &str, unit: &str, values: &[f64], bins: usize) -> Result<String> {
    let mut svg = String::new();
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Ok(svg);
    }
    let (lo, hi) = bounds(&v);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for x in &v {
        let b = (((x - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(title, e))?;
        let mut builder = ChartBuilder::on(&root);
        if text() {
            builder.caption(title, ("sans-serif", 18));
        }
        let mut chart = builder
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0u32..top + top / 10 + 1)
            .map_err(|e| err(title, e))?;
        if text() {
            chart
                .configure_mesh()
                .x_desc(unit)
                .y_desc("bars")
                .x_label_formatter(&|v| human(*v))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| err(title, e))?;
        }
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, c)], RGBColor(90, 110, 180).filled())
            }))
            .map_err(|e| err(title, e))?;
        root.present().map_err(|e| err(title, e))?;
    }
    Ok(svg)
}

/// A number as a person reads it: thousands as `k`, millions as `M`, small ones
/// with enough digits.
pub(crate) fn human(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        v.to_string()
    } else if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 1e-3 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}
