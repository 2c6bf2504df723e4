//! Mock1 in batch, in input rows (bar x asset) per second: generated 1-minute bars
//! at the scale (500 assets x 100,000 bars; `KF_BENCH_QUICK=1` uses 10,000),
//! and the real 40-stock minute bars of `../shared/data/us_equity_1min_2018`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kf_benches::mock1::{input, mock1, run};
use kf_benches::us_equity_long;
use kf_frame::Frame;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mock1");
    group.sample_size(10);
    let bars = if std::env::var_os("KF_BENCH_QUICK").is_some() {
        10_000
    } else {
        100_000
    };
    group.throughput(Throughput::Elements((500 * bars) as u64));
    for (gap, name) in [(None, "every_bin"), (Some("1h"), "nights_collapsed")] {
        let mut dag = mock1(input(500, bars), gap);
        group.bench_function(format!("500x{bars}_{name}"), |b| b.iter(|| run(&mut dag)));
    }
    match us_equity_long().map(|b| Frame::from_long(&b)) {
        Some(Ok(frame)) => {
            group.throughput(Throughput::Elements(
                (frame.n_rows() * frame.n_assets()) as u64,
            ));
            let mut dag = mock1(frame, None);
            group.bench_function("us_equity_1min_2018", |b| b.iter(|| run(&mut dag)));
        }
        Some(Err(e)) => eprintln!("us_equity_1min_2018 did not convert: {e}"),
        None => eprintln!(
            "us_equity_1min_2018 not found under KF_SHARED_DATA or ../shared/data: skipped"
        ),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
