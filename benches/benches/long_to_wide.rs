//! Long -> wide conversion (`Frame::from_long`), in cells (rows x features) per second.
//!
//! Cases: generated 500 assets x 100,000 bars x 5 features (the scale; 250
//! million cells) in time-major and asset-major order, a 10x smaller case, and the
//! real 40-stock minute bars of `../shared/data/us_equity_1min_2018`.
//! `KF_BENCH_QUICK=1` skips the full-scale cases.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kf_benches::{Order, generate_long, us_equity_long};
use kf_frame::Frame;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("long_to_wide");
    group.sample_size(10);
    let quick = std::env::var_os("KF_BENCH_QUICK").is_some();
    let mut cases = vec![
        (500, 10_000, Order::TimeMajor, "500x10k_time_major"),
        (500, 10_000, Order::AssetMajor, "500x10k_asset_major"),
    ];
    if !quick {
        cases.push((500, 100_000, Order::TimeMajor, "500x100k_time_major"));
        cases.push((500, 100_000, Order::AssetMajor, "500x100k_asset_major"));
    }
    for (assets, bars, order, name) in cases {
        let batch = generate_long(assets, bars, 5, order);
        group.throughput(Throughput::Elements((assets * bars * 5) as u64));
        group.bench_function(name, |b| b.iter(|| Frame::from_long(black_box(&batch))));
    }
    match us_equity_long() {
        Some(batch) => {
            group.throughput(Throughput::Elements((batch.num_rows() * 5) as u64));
            group.bench_function("us_equity_1min_2018_asset_major", |b| {
                b.iter(|| Frame::from_long(black_box(&batch)))
            });
        }
        None => eprintln!(
            "us_equity_1min_2018 not found under KF_SHARED_DATA or ../shared/data: skipped"
        ),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
