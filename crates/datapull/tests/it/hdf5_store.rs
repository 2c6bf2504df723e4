//! Frames in HDF5 files (feature `hdf5`): exact round trip, chunking and compression,
//! and errors that name the file and dataset.
#![cfg(feature = "hdf5")]

use kf_datapull::hdf5_store::{
    CHUNK_ASSETS, CHUNK_ROWS, Compression, Hdf5Store, read_hdf5, write_hdf5,
};
use kf_datapull::{Query, Source};
use kf_datapull::{SyntheticBars, SyntheticParams};
use kf_frame::Frame;

fn frame() -> Frame {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 5,
        bars: 5_000,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    // Put NaN, -0.0 and inf in, to check the bits survive.
    let mut close = f.feature("close").unwrap().values().to_vec();
    close[7] = f64::NAN;
    close[8] = -0.0;
    close[9] = f64::INFINITY;
    let mut feats: Vec<(String, Vec<f64>)> = vec![
        ("close".into(), close),
        (
            "volume".into(),
            f.feature("volume").unwrap().values().to_vec(),
        ),
    ];
    feats.reverse(); // a column order that is not alphabetical
    Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        f.assets().to_vec(),
        feats,
    )
    .unwrap()
}

#[test]
fn round_trip_is_exact_and_datasets_are_chunked_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.h5");
    let f = frame();
    write_hdf5(&f, &path, Compression::default()).unwrap();
    let back = read_hdf5(&path).unwrap();
    assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
    let file = hdf5::File::open(&path).unwrap();
    let ds = file.dataset("features/close").unwrap();
    assert_eq!(ds.shape(), [5_000, 5]);
    assert_eq!(ds.chunk(), Some(vec![1_024, 5]));
    assert!(
        ds.storage_size() < 5_000 * 5 * 8,
        "not compressed: {}",
        ds.storage_size()
    );

    let empty = Frame::empty(vec!["A".into()], vec!["x".into()]).unwrap();
    let empty_path = dir.path().join("empty.h5");
    write_hdf5(&empty, &empty_path, Compression::None).unwrap();
    assert!(read_hdf5(&empty_path).unwrap().bit_eq(&empty));
}

#[test]
fn missing_datasets_bad_shapes_and_non_hdf5_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.h5");
    {
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset_builder()
            .with_data(&[1i64, 2])
            .create("end_ts")
            .unwrap();
    }
    let e = read_hdf5(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: dataset /knowledge_ts is missing",
            path.display()
        )),
        "{e}"
    );

    let path = dir.path().join("shape.h5");
    write_hdf5(&frame(), &path, Compression::Deflate(4)).unwrap();
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        file.unlink("features/close").unwrap();
        file.new_dataset_builder()
            .with_data(&[0.0f64; 3])
            .create("features/close")
            .unwrap();
    }
    let e = read_hdf5(&path).unwrap_err().to_string();
    assert!(
        e.contains("/features/close has shape [3], expected [5000, 5]"),
        "{e}"
    );

    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, b"this is not HDF5").unwrap();
    let e = read_hdf5(&junk).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: cannot open the file", junk.display())),
        "{e}"
    );
    let e = read_hdf5(dir.path().join("absent.h5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.h5: cannot open the file"), "{e}");
}

/// A wide synthetic store: 300 assets x 5,000 bars.
fn wide() -> Frame {
    SyntheticBars::new(SyntheticParams {
        assets: 300,
        bars: 5_000,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap()
}

#[test]
fn queries_read_only_the_chunks_they_need_and_match_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.h5");
    let f = wide();
    write_hdf5(&f, &path, Compression::Lzf).unwrap();
    let store = Hdf5Store::open(&path).unwrap();
    let (all, full) = store.query_with_stats(&Query::all()).unwrap();
    assert!(all.bit_eq(&f));
    // 5 features x ceil(5000/1024)=5 row chunks x ceil(300/64)=5 asset chunks.
    assert_eq!(full.units_total, 5 * 5 * 5);
    assert_eq!(full.units_read, full.units_total);

    // Rows 1100..=1500 and assets 10, 11, 12 (one asset chunk) plus 200 (another),
    // asked in a scrambled order.
    let t = f.end_ts();
    let assets = ["A0200", "A0012", "A0010", "A0011"];
    let q = Query::between(t[1100], t[1500])
        .assets(&assets)
        .columns(&["close", "open"]);
    let (part, stats) = store.query_with_stats(&q).unwrap();
    let expected = q.apply(&f).unwrap();
    assert!(
        part.bit_eq(&expected),
        "{:?}",
        part.first_difference(&expected)
    );
    assert_eq!(part.assets(), assets);
    assert_eq!(part.n_rows(), 401);
    // Rows 1100..=1500 lie in row chunk 1 (1024..2048); two asset chunks; 2 features.
    assert_eq!(stats.units_read, 2 * 2);
    const { assert!(CHUNK_ROWS == 1024 && CHUNK_ASSETS == 64) };

    // As of a knowledge time: nothing known later comes back.
    let tau = t[1200];
    let (known, _) = store.query_with_stats(&q.clone().as_of(tau)).unwrap();
    assert_eq!(known.n_rows(), 101);
    assert!(known.knowledge_ts().iter().all(|&k| k <= tau));
    // An uncompressed store is contiguous (not chunked) and answers the same.
    let raw_path = dir.path().join("raw.h5");
    write_hdf5(&f, &raw_path, Compression::None).unwrap();
    let raw = Hdf5Store::open(&raw_path).unwrap();
    assert_eq!(
        hdf5::File::open(&raw_path)
            .unwrap()
            .dataset("features/close")
            .unwrap()
            .chunk(),
        None
    );
    assert!(raw.query_with_stats(&q).unwrap().0.bit_eq(&expected));
    assert!(raw.load(&Query::all()).unwrap().bit_eq(&f));
    assert!(
        store
            .load(&Query::all().assets(&["NOPE"]))
            .unwrap_err()
            .to_string()
            .contains("unknown asset `NOPE`")
    );
}
