//! Mock1 streamed one bar at a time: per-step latency (p50, p99), the step time
//! early and late in the run (O(new rows), not O(history)), and the total against
//! one batch call. The streamed predictions are checked against the batch's bits.

use std::time::{Duration, Instant};

use kf_dataflow::{Phase, RunContext, RunOptions};
use kf_frame::Frame;

use crate::mock1::{input, median, mock1, run};

/// What a streaming run measured.
pub struct StreamReport {
    /// Each step's wall time, in bar order.
    pub steps: Vec<Duration>,
    /// The batch call's wall time.
    pub batch: Duration,
    /// Whether the streamed predictions equal the batch's to the bit.
    pub identical: bool,
    /// Minor page faults during the streaming loop (Linux only).
    pub faults: Option<u64>,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The median step time over `steps[at .. at + width]`.
pub fn median_at(steps: &[Duration], at: usize, width: usize) -> Duration {
    let end = (at + width).min(steps.len());
    median(steps[at.min(end)..end].to_vec())
}

/// Streams Mock1 over `assets x bars` generated bars, one bar per call.
pub fn stream(assets: usize, bars: usize, max_gap: Option<&str>) -> StreamReport {
    let frame: Frame = input(assets, bars);
    let times = frame.end_ts().to_vec();
    let mut dag = mock1(frame, max_gap);
    let start = Instant::now();
    let (batch_out, _) = run(&mut dag);
    let batch = start.elapsed();
    dag.reset();
    let opts = RunOptions::default();
    let mut steps = Vec::with_capacity(times.len());
    // Each streamed chunk is checked against the batch rows it should equal as it
    // arrives, so the loop holds no growing list of outputs.
    let mut identical = true;
    let mut row = 0;
    let mut lo = i64::MIN;
    let faults = minor_faults();
    // The fast path (`Dag::step`, buffers reused) when every node has it; else one
    // `Dag::run` per bar.
    let fast = dag.can_step();
    for &t in &times {
        let ctx = RunContext::new(Phase::Predict, Some((lo, t)));
        let s = Instant::now();
        let out = if fast {
            dag.step(&ctx).map(|()| None)
        } else {
            dag.run(&ctx, &opts).map(Some)
        };
        let elapsed = s.elapsed();
        let out = out.expect("Mock1 streams on generated data");
        lo = t + 1;
        let got: Option<Frame> = match &out {
            None => dag
                .stepped("predict")
                .ok()
                .filter(|b| b.n_rows() > 0)
                .map(|b| b.to_frame().expect("a step's rows make a frame")),
            Some(out) => out
                .df_out("predict")
                .ok()
                .filter(|f| !f.is_empty())
                .cloned(),
        };
        if let Some(f) = got {
            identical &= batch_out
                .slice(row, f.n_rows())
                .is_ok_and(|expected| expected.bit_eq(&f));
            row += f.n_rows();
        }
        steps.push(elapsed);
    }
    identical &= row == batch_out.n_rows();
    let faults = minor_faults()
        .zip(faults)
        .map(|(after, before)| after - before);
    StreamReport {
        steps,
        batch,
        identical,
        faults,
    }
}

/// Prints the report.
pub fn print(assets: usize, bars: usize, r: &StreamReport) {
    let mut sorted = r.steps.clone();
    sorted.sort_unstable();
    let total: Duration = r.steps.iter().sum();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("stream mock1: {assets} assets x {bars} one-minute bars, one bar per call");
    println!(
        "  step p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        us(quantile(&sorted, 0.5)),
        us(quantile(&sorted, 0.99)),
        us(quantile(&sorted, 1.0))
    );
    let w = 1000.min(r.steps.len() / 4).max(1);
    let early = median_at(&r.steps, 1000.min(r.steps.len() / 4), w);
    let late = median_at(&r.steps, r.steps.len().saturating_sub(w), w);
    println!(
        "  median step over {w} steps from bar {}: {:.1} us; over the last {w}: {:.1} us (ratio {:.2})",
        1000.min(r.steps.len() / 4),
        us(early),
        us(late),
        late.as_secs_f64() / early.as_secs_f64()
    );
    let deciles: Vec<String> = (0..10)
        .map(|d| {
            let at = d * r.steps.len() / 10;
            format!("{:.0}", us(median_at(&r.steps, at, w)))
        })
        .collect();
    println!(
        "  median step (us) at each tenth of the run: {}",
        deciles.join(" ")
    );
    // The fastest tenth of each window is the least disturbed by other work on the
    // machine: a window slowed by a neighbour shows in the medians, not here.
    let floors: Vec<String> = (0..10)
        .map(|d| {
            let at = d * r.steps.len() / 10;
            let end = (at + w).min(r.steps.len());
            let mut window = r.steps[at..end].to_vec();
            window.sort_unstable();
            format!("{:.0}", us(quantile(&window, 0.1)))
        })
        .collect();
    println!(
        "  10th-percentile step (us) at each tenth of the run: {}",
        floors.join(" ")
    );
    println!(
        "  streaming total {:.2} s vs batch {:.2} s: {:.2}x; {:.0} bars/s, {:.1} M cells/s",
        total.as_secs_f64(),
        r.batch.as_secs_f64(),
        total.as_secs_f64() / r.batch.as_secs_f64(),
        bars as f64 / total.as_secs_f64(),
        (bars * assets) as f64 / total.as_secs_f64() / 1e6
    );
    if let Some(faults) = r.faults {
        println!(
            "  minor page faults while streaming: {faults} ({:.2} per step)",
            faults as f64 / r.steps.len().max(1) as f64
        );
    }
    println!(
        "  streamed predictions equal the batch's to the bit: {}",
        r.identical
    );
}

/// The process's minor page faults so far, from `/proc/self/stat` (field 10).
pub(crate) fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(7)?.parse().ok()
}
