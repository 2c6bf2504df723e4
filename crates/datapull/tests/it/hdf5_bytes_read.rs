//! Bytes an HDF5 query really reads, measured by the kernel (`rchar` of
//! `/proc/thread-self/io`, Linux). The counter is this thread's own, and HDF5 reads
//! on the calling thread, so tests running beside this one do not mix in.
#![cfg(all(feature = "hdf5", target_os = "linux"))]

use kf_datapull::hdf5_store::{Compression, Hdf5Store, write_hdf5};
use kf_datapull::{Query, SyntheticBars, SyntheticParams};

fn rchar() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_narrow_query_reads_a_small_fraction_of_the_bytes_of_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.h5");
    let f = SyntheticBars::new(SyntheticParams {
        assets: 500,
        bars: 10_000,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    write_hdf5(&f, &path, Compression::Lzf).unwrap();
    let file_bytes = std::fs::metadata(&path).unwrap().len();

    let store = Hdf5Store::open(&path).unwrap();
    let before = rchar();
    let (all, _) = store.query_with_stats(&Query::all()).unwrap();
    let full = rchar() - before;
    assert!(all.bit_eq(&f));
    assert!(
        full >= file_bytes * 9 / 10,
        "full scan read {full} of {file_bytes} bytes"
    );

    // One day (390 bars) x 50 assets x 2 features.
    let t = f.end_ts();
    let assets: Vec<String> = (100..150).map(|a| format!("A{a:04}")).collect();
    let q = Query::between(t[5_000], t[5_389])
        .assets(&assets)
        .columns(&["close", "volume"]);
    let before = rchar();
    let (part, _) = store.query_with_stats(&q).unwrap();
    let narrow = rchar() - before;
    assert!(part.bit_eq(&q.apply(&f).unwrap()));
    assert!(
        narrow * 50 < full,
        "narrow query read {narrow} bytes, full scan {full}: not a small fraction"
    );
}
