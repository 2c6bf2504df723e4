//! The microstructure pipeline on SPY's real trade ticks (900k trades,
//! `../shared/data/lean_us_equity_tick_minute_2013`): each kernel's time and
//! ticks per second on one core, the VPIN events of the 2013-10-10 rally, the
//! arrival spectrum around the one-minute line, and the VPIN chart of
//! `docs/applications.md`.

use std::path::Path;
use std::time::Instant;

use kf_dataflow::nodes::microstructure::{
    ArrivalSpectrum, Bvc, BvcParams, SpectrumParams, TickBars, TickBarsParams, Vpin, VpinParams,
};
use kf_dataflow::{DF_IN, DF_OUT, Node, Phase, Ports, RunContext};
use kf_frame::Frame;

fn call(node: &mut dyn Node, input: &Frame) -> Option<Frame> {
    node.reset();
    let mut p = Ports::new();
    p.insert(DF_IN.to_string(), input.clone());
    match node.run(&RunContext::new(Phase::Predict, None), &p) {
        Ok(mut out) => out.remove(DF_OUT),
        Err(e) => {
            println!("  {}: {e}", node.id());
            None
        }
    }
}

/// The median seconds of `runs` calls and the last output.
fn timed(node: &mut dyn Node, input: &Frame, runs: usize) -> Option<(f64, Frame)> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = Some(call(node, input)?);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Some((times[times.len() / 2], last?))
}

/// Runs the benchmark; draws the chart at `plot` when given.
pub fn run(runs: usize, plot: Option<&Path>) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/vpin_spy_2013.toml");
    let cfg = match kf_config::Config::from_file(config) {
        Ok(c) => c,
        Err(e) => {
            println!("microstructure: {e}");
            return;
        }
    };
    let types = kf_datapull::DataTypes::default();
    let source = match cfg
        .root()
        .section("market_data")
        .and_then(|s| types.source(&s))
    {
        Ok(s) => s,
        Err(e) => {
            println!("microstructure: not run ({e})");
            return;
        }
    };
    let t = Instant::now();
    let ticks = match source.load(&kf_datapull::Query::all()) {
        Ok(f) => f,
        Err(e) => {
            println!("microstructure: cannot read the ticks: {e}");
            return;
        }
    };
    let load = t.elapsed().as_secs_f64();
    let n = ticks.n_rows() as f64;
    println!(
        "microstructure on SPY ticks: {} trades read in {load:.3} s ({:.2}M ticks/s, gzip CSV)",
        ticks.n_rows(),
        n / load / 1e6
    );
    // The config's own bars (its sale-condition filter included).
    let bars_p: TickBarsParams = match cfg
        .root()
        .section("dag.nodes.bars")
        .and_then(|s| s.deserialize())
    {
        Ok(p) => p,
        Err(e) => {
            println!("microstructure: {e}");
            return;
        }
    };
    let vpin_p = VpinParams {
        bucket_volume: Some(827_500.0),
        ..VpinParams::default()
    };
    let (Ok(mut bars), Ok(mut bvc), Ok(mut vpin)) = (
        TickBars::new("bars", bars_p),
        Bvc::new("bvc", BvcParams::default()),
        Vpin::new("vpin", vpin_p),
    ) else {
        println!("microstructure: bad parameters");
        return;
    };
    let Some((t_bars, b)) = timed(&mut bars, &ticks, runs) else {
        return;
    };
    let Some((t_bvc, c)) = timed(&mut bvc, &b, runs) else {
        return;
    };
    let Some((t_vpin, v)) = timed(&mut vpin, &c, runs) else {
        return;
    };
    let rate = |secs: f64, rows: f64| rows / secs / 1e6;
    println!(
        "  tick_bars (3.9 s median-price bars): {:.4} s, {:.1}M ticks/s -> {} bars",
        t_bars,
        rate(t_bars, n),
        b.n_rows()
    );
    println!(
        "  bvc (Student-t, nu 0.1): {:.5} s ({:.1}M bars/s, {:.0}M ticks/s equivalent)",
        t_bvc,
        rate(t_bvc, b.n_rows() as f64),
        rate(t_bvc, n)
    );
    println!(
        "  vpin (827,500-share buckets, 200 of support): {:.5} s ({:.1}M bars/s, {:.0}M ticks/s equivalent)",
        t_vpin,
        rate(t_vpin, c.n_rows() as f64),
        rate(t_vpin, n)
    );
    let total = t_bars + t_bvc + t_vpin;
    println!(
        "  pipeline ticks -> bars -> bvc -> vpin: {total:.4} s, {:.1}M ticks/s on one core",
        rate(total, n)
    );
    events(&v, "tuned set, 200 buckets of support");
    // A faster-reacting variant: a quarter day of support.
    let quick_p = VpinParams {
        bucket_volume: Some(827_500.0),
        support: 50,
        ..VpinParams::default()
    };
    let quick = Vpin::new("vpin50", quick_p)
        .ok()
        .and_then(|mut node| call(&mut node, &c));
    if let Some(q) = &quick {
        events(q, "50 buckets of support");
    }
    spectrum(&ticks);
    if let (Some(path), Some(q)) = (plot, &quick) {
        match draw(&b, &v, q, path) {
            Ok(()) => println!("  chart written to {}", path.display()),
            Err(e) => println!("  chart: {e}"),
        }
    }
}

/// Prints the VPIN events: where the event flag rises, in New York time.
fn events(v: &Frame, what: &str) {
    let (Ok(flag), Ok(vp), Ok(cdf), Ok(buckets)) = (
        v.feature("vpin_event"),
        v.feature("vpin"),
        v.feature("vpin_cdf"),
        v.feature("buckets"),
    ) else {
        return;
    };
    let (flag, vp, cdf, buckets) = (flag.values(), vp.values(), cdf.values(), buckets.values());
    let mut prev = 0.0;
    let mut count = 0;
    let last_bucket = buckets
        .iter()
        .copied()
        .filter(|b| b.is_finite())
        .fold(0.0, f64::max);
    let max_cdf = cdf
        .iter()
        .copied()
        .filter(|c| c.is_finite())
        .fold(0.0, f64::max);
    println!(
        "  VPIN ({what}): {last_bucket} buckets, highest CDF {max_cdf:.4}; events (CDF >= \
         0.99), New York time:"
    );
    for (r, &f) in flag.iter().enumerate() {
        if f == 1.0 && prev != 1.0 {
            count += 1;
            println!(
                "    {} VPIN {:.4} CDF {:.4}",
                ny(v.end_ts()[r]),
                vp[r],
                cdf[r]
            );
        }
        if f.is_finite() {
            prev = f;
        }
    }
    println!("  {count} events");
}

fn ny(t: i64) -> String {
    let tz: chrono_tz::Tz = chrono_tz::America::New_York;
    chrono::DateTime::from_timestamp_nanos(t)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The arrival spectrum of each day, on a dense grid of periods around a minute and
/// at its harmonics: the power at 60 s against the median of the grid (the floor).
fn spectrum(ticks: &Frame) {
    let mut periods: Vec<f64> = (0..=400).map(|i| 40.0 + 0.1 * f64::from(i)).collect();
    for h in [30.0, 20.0, 15.0] {
        periods.push(h);
    }
    for min_gap in ["0s", "1ms"] {
        let p = SpectrumParams {
            periods: periods.clone(),
            block: "1D".into(),
            min_gap: min_gap.into(),
            ..SpectrumParams::default()
        };
        let Ok(mut node) = ArrivalSpectrum::new("fp", p) else {
            return;
        };
        // A row a day after the last tick completes the last day's block.
        let Some(last) = ticks.end_ts().last() else {
            return;
        };
        let Ok(flush) = ticks.slice(ticks.n_rows() - 1, 1).and_then(|f| {
            let end = vec![last + 86_400_000_000_000];
            let cols = f
                .features()
                .iter()
                .map(|c| (c.clone(), vec![f64::NAN; f.n_assets()]))
                .collect();
            f.with_rows(end.clone(), end, cols)
        }) else {
            return;
        };
        let Ok(both) = Frame::concat(&[ticks.clone(), flush]) else {
            return;
        };
        let Some((secs, out)) = timed(&mut node, &both, 1) else {
            return;
        };
        println!(
            "  arrival_spectrum ({} periods, daily blocks, min_gap {min_gap}): {secs:.3} s, \
             {:.1}M ticks/s",
            periods.len(),
            ticks.n_rows() as f64 / secs / 1e6
        );
        for r in 0..out.n_rows() {
            let at = |per: f64| -> f64 {
                out.feature(&format!("power_{per}s"))
                    .map_or(f64::NAN, |f| f.values()[r])
            };
            let mut grid: Vec<f64> = (0..=400)
                .map(|i| 40.0 + 0.1 * f64::from(i))
                .filter(|p| (p - 60.0).abs() > 0.5)
                .map(at)
                .collect();
            grid.sort_by(f64::total_cmp);
            let floor = grid[grid.len() / 2];
            let top = grid[grid.len() - 1];
            let arrivals = out.feature("arrivals").map_or(f64::NAN, |f| f.values()[r]);
            println!(
                "    day ending {}: {arrivals} arrivals; power at 60 s {:.1}, 30 s {:.1}, 20 s \
                 {:.1}, 15 s {:.1}; 40-80 s away from 60: median {floor:.1}, max {top:.1}",
                ny(out.end_ts()[r]),
                at(60.0),
                at(30.0),
                at(20.0),
                at(15.0),
            );
        }
    }
}

/// SPY's median price; below it VPIN with the tuned set and with a quarter day of
/// support, each with its CDF, events shaded.
fn draw(bars: &Frame, v: &Frame, q: &Frame, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let text = kf_system::output::font_available();
    let price = bars.feature("median")?.values();
    let (vp, cdf, ev) = (
        v.feature("vpin")?.values(),
        v.feature("vpin_cdf")?.values(),
        v.feature("vpin_event")?.values(),
    );
    let ts = v.end_ts();
    let hours = |t: i64| (t - ts[0]) as f64 / 3.6e12;
    let span = hours(ts[ts.len() - 1]);
    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(300);
    let finite = |x: &[f64]| -> (f64, f64) {
        x.iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            })
    };
    let (plo, phi) = finite(price);
    let mut b1 = ChartBuilder::on(&top);
    b1.margin(10);
    if text {
        b1.caption(
            format!(
                "SPY {} to {} (New York): median price of 3.9 s bars",
                ny(ts[0]),
                ny(ts[ts.len() - 1])
            ),
            ("sans-serif", 18),
        )
        .x_label_area_size(30)
        .y_label_area_size(60);
    }
    let mut c1 = b1.build_cartesian_2d(0.0..span, plo..phi)?;
    if text {
        c1.configure_mesh()
            .x_desc("hours from the first bar")
            .y_desc("USD")
            .draw()?;
    }
    c1.draw_series(LineSeries::new(
        (0..ts.len())
            .filter(|&r| price[r].is_finite())
            .map(|r| (hours(ts[r]), price[r])),
        BLACK.stroke_width(1),
    ))?;
    let (qv, qcdf, qev) = (
        q.feature("vpin")?.values(),
        q.feature("vpin_cdf")?.values(),
        q.feature("vpin_event")?.values(),
    );
    let (a_lo, a_hi) = finite(vp);
    let (b_lo, b_hi) = finite(qv);
    let (vlo, vhi) = (a_lo.min(b_lo), a_hi.max(b_hi));
    let mut b2 = ChartBuilder::on(&bottom);
    b2.margin(10);
    if text {
        b2.caption(
            "VPIN: tuned set, 200 buckets of support (blue), 50 buckets (orange); their CDFs \
             (right axis, green and grey); events (CDF >= 0.99) shaded red",
            ("sans-serif", 16),
        )
        .x_label_area_size(30)
        .y_label_area_size(60)
        .right_y_label_area_size(50);
    }
    let mut c2 = b2
        .build_cartesian_2d(0.0..span, (vlo * 0.95)..(vhi * 1.05))?
        .set_secondary_coord(0.0..span, 0.0..1.0);
    if text {
        c2.configure_mesh()
            .x_desc("hours from the first bar")
            .y_desc("VPIN")
            .draw()?;
        c2.configure_secondary_axes().y_desc("CDF").draw()?;
    }
    let band = RGBColor(220, 60, 60).mix(0.25);
    for r in 1..ts.len() {
        if ev[r] == 1.0 || qev[r] == 1.0 {
            c2.draw_secondary_series(std::iter::once(Rectangle::new(
                [(hours(ts[r - 1]), 0.0), (hours(ts[r]), 1.0)],
                band.filled(),
            )))?;
        }
    }
    let series = |x: &[f64]| -> Vec<(f64, f64)> {
        (0..ts.len())
            .filter(|&r| x[r].is_finite())
            .map(|r| (hours(ts[r]), x[r]))
            .collect()
    };
    c2.draw_secondary_series(LineSeries::new(series(cdf), GREEN.stroke_width(1)))?;
    c2.draw_secondary_series(LineSeries::new(
        series(qcdf),
        RGBColor(150, 150, 150).stroke_width(1),
    ))?;
    c2.draw_series(LineSeries::new(series(vp), BLUE.stroke_width(2)))?;
    c2.draw_series(LineSeries::new(
        series(qv),
        RGBColor(240, 140, 0).stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}
