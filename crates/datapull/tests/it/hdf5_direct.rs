//! Uncompressed HDF5 stores read around the library (feature `hdf5`, Linux): the
//! mapped, copied and library reads agree bit for bit on every query shape; a
//! mapped full read really is the file's pages (checked in `/proc/self/maps`); a
//! store rewritten while a mapped frame is alive leaves that frame intact; a
//! truncated file is an error, not a fault.
#![cfg(all(feature = "hdf5", target_os = "linux"))]

use std::path::Path;

use kf_config::Config;
use kf_datapull::hdf5_store::{Compression, Hdf5Store, ReadMode, write_hdf5};
use kf_datapull::{DataTypes, Query, Source, SyntheticBars, SyntheticParams};
use kf_frame::Frame;

fn bars(assets: usize, bars: usize, seed: u64) -> Frame {
    SyntheticBars::new(SyntheticParams {
        assets,
        bars,
        seed,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap()
}

/// The file mapped at `ptr` in this process, from `/proc/self/maps`.
fn mapped_file(ptr: *const f64) -> Option<String> {
    let addr = ptr as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let (lo, hi) = parts.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        let path = parts.nth(4).map(str::to_string);
        (lo <= addr && addr < hi).then_some(path).flatten()
    })
}

fn open(path: &Path, mode: ReadMode) -> Hdf5Store {
    Hdf5Store::open(path).unwrap().with_read_mode(mode)
}

#[test]
fn mapped_copied_and_library_reads_agree_on_every_query_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.h5");
    let f = bars(300, 3_000, 7);
    write_hdf5(&f, &path, Compression::None).unwrap();
    // Feature values start on a 4 KiB boundary, so they can be used in place.
    let file = hdf5::File::open(&path).unwrap();
    for name in f.features() {
        let ds = file.dataset(&format!("features/{name}")).unwrap();
        assert_eq!(ds.chunk(), None);
        assert_eq!(ds.offset().unwrap() % 4096, 0, "{name}");
    }
    let t = f.end_ts();
    let queries = [
        Query::all(),
        Query::between(t[1_000], t[2_000]),
        Query::between(t[1_000], t[2_000])
            .assets(&["A0200", "A0012", "A0010", "A0011", "A0299"])
            .columns(&["volume", "close"]),
        Query::all().as_of(t[1_500]),
        Query::between(t[2_999], t[2_999]),
        Query::between(t[10] + 1, t[11] - 1),
    ];
    let stores = [
        open(&path, ReadMode::Map),
        open(&path, ReadMode::Copy),
        open(&path, ReadMode::Library),
    ];
    for q in &queries {
        let expected = q.apply(&f).unwrap();
        for store in &stores {
            let (got, stats) = store.query_with_stats(q).unwrap();
            assert!(
                got.bit_eq(&expected),
                "{:?} {q:?}: {:?}",
                store.read_mode(),
                got.first_difference(&expected)
            );
            assert_eq!(got.assets(), expected.assets());
            // The direct modes count the bytes they fetch: the rows in range, of
            // every asset, for each requested feature (as of a time, every row is
            // read and the later ones dropped).
            if store.read_mode() != ReadMode::Library && q.as_of.is_none() {
                let cells = expected.n_rows() * 300 * expected.n_features();
                assert_eq!(stats.bytes_read, cells as u64 * 8, "{q:?}");
            }
        }
    }
    assert_eq!(queries[4].apply(&f).unwrap().n_rows(), 1);
    assert_eq!(queries[5].apply(&f).unwrap().n_rows(), 0);
}

#[test]
fn a_mapped_full_read_is_the_file_itself_and_a_copy_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.h5");
    let f = bars(50, 2_000, 1);
    write_hdf5(&f, &path, Compression::None).unwrap();
    let canonical = std::fs::canonicalize(&path).unwrap();
    let mapped = open(&path, ReadMode::Map).load(&Query::all()).unwrap();
    let copied = open(&path, ReadMode::Copy).load(&Query::all()).unwrap();
    assert!(mapped.bit_eq(&f) && copied.bit_eq(&f));
    let ptr = mapped.feature("close").unwrap().values().as_ptr();
    assert_eq!(
        mapped_file(ptr).as_deref(),
        Some(canonical.to_str().unwrap()),
        "the mapped frame's values are not in a mapping of the store"
    );
    let ptr = copied.feature("close").unwrap().values().as_ptr();
    assert_ne!(
        mapped_file(ptr).as_deref(),
        Some(canonical.to_str().unwrap())
    );
    // A compressed store is never mapped: chunks are decompressed by the library.
    let lzf = dir.path().join("lzf.h5");
    write_hdf5(&f, &lzf, Compression::Lzf).unwrap();
    let read = open(&lzf, ReadMode::Map).load(&Query::all()).unwrap();
    assert!(read.bit_eq(&f));
    let ptr = read.feature("close").unwrap().values().as_ptr();
    assert_eq!(mapped_file(ptr), None);
}

#[test]
fn rewriting_a_store_leaves_frames_mapped_from_it_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.h5");
    let (a, b) = (bars(40, 1_000, 1), bars(40, 500, 2));
    write_hdf5(&a, &path, Compression::None).unwrap();
    let from_a = open(&path, ReadMode::Map).load(&Query::all()).unwrap();
    // Replaced by a smaller store: truncating the old file in place would pull the
    // pages out from under `from_a`.
    write_hdf5(&b, &path, Compression::None).unwrap();
    assert!(from_a.bit_eq(&a), "{:?}", from_a.first_difference(&a));
    let from_b = open(&path, ReadMode::Map).load(&Query::all()).unwrap();
    assert!(from_b.bit_eq(&b));
    // No temporary file is left beside the store.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["raw.h5"]);
}

#[test]
fn a_store_written_without_alignment_reads_the_same() {
    // The layout of write_hdf5, written plainly (no alignment), as another tool
    // would: whatever the offsets, every mode returns the same frame.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.h5");
    let f = bars(7, 333, 3);
    {
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset_builder()
            .with_data(f.end_ts())
            .create("end_ts")
            .unwrap();
        file.new_dataset_builder()
            .with_data(f.knowledge_ts())
            .create("knowledge_ts")
            .unwrap();
        let strings = |v: &[String]| -> Vec<hdf5::types::VarLenUnicode> {
            v.iter().map(|s| s.parse().unwrap()).collect()
        };
        file.new_dataset_builder()
            .with_data(&strings(f.assets()))
            .create("assets")
            .unwrap();
        file.new_dataset_builder()
            .with_data(&strings(f.features()))
            .create("feature_names")
            .unwrap();
        let g = file.create_group("features").unwrap();
        for (i, name) in f.features().iter().enumerate() {
            let view = ndarray::ArrayView2::from_shape((333, 7), f.feature_at(i).values()).unwrap();
            g.new_dataset_builder()
                .with_data(view)
                .create(name.as_str())
                .unwrap();
        }
    }
    let q = Query::between(f.end_ts()[100], f.end_ts()[200]).assets(&["A0006", "A0001"]);
    for mode in [ReadMode::Map, ReadMode::Copy, ReadMode::Library] {
        let store = open(&path, mode);
        assert!(store.load(&Query::all()).unwrap().bit_eq(&f), "{mode:?}");
        assert!(store.load(&q).unwrap().bit_eq(&q.apply(&f).unwrap()));
    }
}

#[test]
fn a_truncated_uncompressed_store_is_an_error_that_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.h5");
    write_hdf5(&bars(20, 1_000, 1), &path, Compression::None).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10_000)
        .unwrap();
    let e = Hdf5Store::open(&path).unwrap_err().to_string();
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn the_read_mode_is_a_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.h5");
    let f = bars(3, 100, 1);
    write_hdf5(&f, &path, Compression::None).unwrap();
    for mode in ["map", "copy", "library"] {
        let text = format!(
            "[md]\ntype = \"hdf5\"\npath = {:?}\nread = \"{mode}\"\n",
            path.display().to_string()
        );
        let c = Config::from_toml_str(&text, "h.toml").unwrap();
        let source = DataTypes::default()
            .source(&c.section("md").unwrap())
            .unwrap();
        c.check_all_used().unwrap();
        assert!(source.load(&Query::all()).unwrap().bit_eq(&f), "{mode}");
    }
    let text = format!(
        "[md]\ntype = \"hdf5\"\npath = {:?}\nread = \"mmap\"\n",
        path.display().to_string()
    );
    let c = Config::from_toml_str(&text, "h.toml").unwrap();
    let e = DataTypes::default()
        .source(&c.section("md").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("h.toml:4: md.read: unknown read mode \"mmap\"; known: map, copy, library"),
        "{e}"
    );
}

#[test]
fn a_dataset_past_the_end_of_the_file_is_an_error_not_a_fault() {
    // Cut the file and lower the end-of-file address in its (version 0) superblock
    // to match, so the library opens it: the direct reader must notice that the
    // last feature's values run past the end before it maps them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.h5");
    write_hdf5(&bars(20, 1_000, 1), &path, Compression::None).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89HDF\r\n\x1a\n");
    assert_eq!(bytes[8], 0, "superblock version");
    let eof = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
    assert_eq!(eof, bytes.len() as u64);
    let cut = bytes.len() - 10_000;
    bytes.truncate(cut);
    bytes[40..48].copy_from_slice(&(cut as u64).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = Hdf5Store::open(&path).unwrap_err().to_string();
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    // 1,000 bars x 20 assets x 8 bytes.
    assert!(e.contains(": its 160000 bytes at offset "), "{e}");
    assert!(
        e.ends_with(&format!("run past the end of the file ({cut} bytes): the file is truncated; write the store again")),
        "{e}"
    );
}
