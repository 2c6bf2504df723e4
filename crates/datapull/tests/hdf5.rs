//! Frames in HDF5 files (feature `hdf5`): exact round trip, chunking and compression,
//! and errors that name the file and dataset.
#![cfg(feature = "hdf5")]

use kf_datapull::hdf5_store::{read_hdf5, write_hdf5};
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
    write_hdf5(&f, &path).unwrap();
    let back = read_hdf5(&path).unwrap();
    assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
    let file = hdf5::File::open(&path).unwrap();
    let ds = file.dataset("features/close").unwrap();
    assert_eq!(ds.shape(), [5_000, 5]);
    assert_eq!(ds.chunk(), Some(vec![4_096, 5]));
    assert!(
        ds.storage_size() < 5_000 * 5 * 8,
        "not compressed: {}",
        ds.storage_size()
    );

    let empty = Frame::empty(vec!["A".into()], vec!["x".into()]).unwrap();
    let empty_path = dir.path().join("empty.h5");
    write_hdf5(&empty, &empty_path).unwrap();
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
    write_hdf5(&frame(), &path).unwrap();
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
