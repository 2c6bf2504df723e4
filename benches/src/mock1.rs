//! Mock1 in batch: generated 1-minute bars at any scale (US session hours, a random
//! walk close, U-ish volume, a +-1 `feature1`), and a timed run with a per-node
//! breakdown and the process's peak memory.

use std::time::Duration;

use kf_dataflow::mock1::{Mock1Params, dag};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Dag, NodeTiming, Phase, RunContext, RunOptions};
use kf_frame::Frame;

const MIN: i64 = 60_000_000_000;

/// `assets x bars` one-minute bars in US equity hours (09:31-16:00 New York, 390 a
/// day, weekdays from 2018-01-02), features `close`, `volume`, `feature1`; values from a cheap
/// deterministic generator.
pub fn input(assets: usize, bars: usize) -> Frame {
    let tz = kf_frame::parse_tz("America/New_York").expect("a known zone");
    let mut ts = Vec::with_capacity(bars);
    let mut date = chrono::NaiveDate::from_ymd_opt(2018, 1, 2).expect("a valid date");
    while ts.len() < bars {
        use chrono::Datelike;
        if date.weekday().number_from_monday() <= 5 {
            let open = kf_frame::Timestamp::parse_in(&format!("{date} 09:31"), tz)
                .expect("09:31 New York exists every day")
                .nanos();
            ts.extend((0..390).map(|k| open + k * MIN).take(bars - ts.len()));
        }
        date = date.succ_opt().expect("dates go on");
    }
    let n = assets * bars;
    let (mut close, mut volume, mut feature1) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut price = vec![100.0f64; assets];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for b in 0..bars {
        let minute = (b % 390) as f64;
        let u_shape = 1.0 + ((minute - 195.0) / 195.0).powi(2);
        for p in price.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            *p *= 1.0 + 0.002 * u;
            close.push(*p);
            volume.push((1000.0 * u_shape * (1.5 + u)).round());
            feature1.push(if u >= 0.0 { 1.0 } else { -1.0 });
        }
    }
    let names = (0..assets).map(|a| format!("A{a:04}")).collect();
    let features = vec![
        ("close".into(), close),
        ("volume".into(), volume),
        ("feature1".into(), feature1),
    ];
    // Known one second after the bar ends.
    let kt = ts.iter().map(|t| t + 1_000_000_000).collect();
    Frame::new(ts, kt, names, features).expect("the generator makes a valid frame")
}

/// The Mock1 DAG over a frame held in memory; `max_gap` collapses longer runs of
/// empty 5-minute bins (nights) to one.
pub fn mock1(frame: Frame, max_gap: Option<&str>) -> Dag {
    let p = Mock1Params {
        max_gap: max_gap.map(str::to_string),
        ..Mock1Params::default()
    };
    dag(Box::new(FrameSource::new("read_data", frame)), &p).expect("Mock1's defaults are valid")
}

/// One batch prediction (after a reset): the sink's frame and the node timings.
pub fn run(dag: &mut Dag) -> (Frame, Vec<NodeTiming>) {
    dag.reset();
    let out = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .expect("Mock1 runs on generated data");
    let frame = out
        .df_out("predict")
        .expect("Mock1's sink is `predict`")
        .clone();
    (frame, out.timings)
}

fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Peak resident memory of this process (`VmHWM`), in bytes, on Linux.
pub fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Resident memory now (`VmRSS`), in bytes, on Linux.
pub fn rss() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Resets the peak resident memory mark to the current resident memory (Linux).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The median of some durations.
pub fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d.get(d.len() / 2).copied().unwrap_or_default()
}
