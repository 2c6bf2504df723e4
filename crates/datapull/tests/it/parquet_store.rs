//! Parquet stores: exact round trip, pushdown (row groups and bytes read), revisions
//! read as of a knowledge time, and errors naming the file.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use kf_datapull::parquet_store::{write_frame, write_long};
use kf_datapull::{
    ParquetStore, Query, Source, StoreCompression, StoreOptions, SyntheticBars, SyntheticParams,
};
use kf_frame::{Frame, long_schema};

fn bars(assets: usize, bars: usize) -> Frame {
    SyntheticBars::new(SyntheticParams {
        assets,
        bars,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap()
}

#[test]
fn round_trip_is_exact_including_missing_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.parquet");
    let f = bars(7, 3_000);
    // Knock out a few cells (all features) and one value, to see both survive.
    let holes = [(5usize, 2usize), (6, 2), (2_999, 6)];
    let feats: Vec<(String, Vec<f64>)> = f
        .features()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut v = f.feature_at(i).values().to_vec();
            for (r, a) in holes {
                v[r * 7 + a] = f64::NAN;
            }
            if name == "close" {
                v[10] = f64::NAN;
            }
            (name.clone(), v)
        })
        .collect();
    let f = Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        f.assets().to_vec(),
        feats,
    )
    .unwrap();
    write_frame(
        &f,
        &path,
        StoreOptions {
            time_block: 500,
            asset_block: 3,
            compression: StoreCompression::None,
        },
    )
    .unwrap();
    let store = ParquetStore::open(&path).unwrap();
    let (back, stats) = store.query_with_stats(&Query::all()).unwrap();
    assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
    // 3000 bars / 500 per block x ceil(7 assets / 3) blocks.
    assert_eq!(stats.units_total, 6 * 3);
    let info = store.info();
    assert_eq!(info.rows, 3_000 * 7 - 3);
    assert_eq!(info.assets, f.assets());
    assert_eq!(
        info.time_range.map(|(a, b)| (a.nanos(), b.nanos())),
        Some((f.end_ts()[0], f.end_ts()[2_999]))
    );
    assert!(!info.revisions);
    // The file is a plain long-layout Parquet file: the frame crate reads it too.
    assert!(Frame::read_parquet(&path).unwrap().bit_eq(&f));
    // And a long-layout file written by another tool (no store metadata) is a store.
    let foreign = dir.path().join("foreign.parquet");
    f.write_parquet(&foreign).unwrap();
    let other = ParquetStore::open(&foreign).unwrap();
    assert_eq!(other.assets(), f.assets());
    assert!(other.has_revisions());
    assert!(other.load(&Query::all()).unwrap().bit_eq(&f));
    let q = Query::between(f.end_ts()[100], f.end_ts()[200]).assets(&["A0006", "A0001"]);
    assert!(other.load(&q).unwrap().bit_eq(&q.apply(&f).unwrap()));
}

#[test]
fn a_narrow_query_reads_few_row_groups_and_few_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.parquet");
    let f = bars(256, 20_000);
    write_frame(&f, &path, StoreOptions::default()).unwrap();
    let store = ParquetStore::open(&path).unwrap();
    let (all, full) = store.query_with_stats(&Query::all()).unwrap();
    assert!(all.bit_eq(&f));
    assert_eq!(full.units_read, full.units_total);
    // Default blocks: 64 assets x 2048 bars: 4 x 10 groups.
    assert_eq!(full.units_total, 40);

    // One day of bars, 50 assets in one asset block, two columns.
    let t = f.end_ts();
    let assets: Vec<String> = (70..120).map(|a| format!("A{a:04}")).collect();
    let q = Query::between(t[9_000], t[10_439])
        .assets(&assets)
        .columns(&["close", "volume"]);
    let (part, stats) = store.query_with_stats(&q).unwrap();
    let expected = q.apply(&f).unwrap();
    assert!(
        part.bit_eq(&expected),
        "{:?}",
        part.first_difference(&expected)
    );
    // Bars 9000..=10439 span time blocks 4 and 5; assets 70..119 span asset blocks 1.
    assert_eq!(stats.units_read, 2);
    assert!(
        stats.bytes_read * 20 < full.bytes_read,
        "narrow read {} bytes, full scan {}",
        stats.bytes_read,
        full.bytes_read
    );
    // Column projection alone: one column of everything reads well under half.
    let (_, one_col) = store
        .query_with_stats(&Query::all().columns(&["close"]))
        .unwrap();
    assert!(one_col.bytes_read * 2 < full.bytes_read);
    // A range with no bars reads no row group and still has the asked shape.
    let (none, s) = store
        .query_with_stats(&Query::between(t[19_999] + 1, i64::MAX).assets(&["A0003"]))
        .unwrap();
    assert_eq!(
        (none.n_rows(), none.assets().len(), s.units_read),
        (0, 1, 0)
    );
}

/// Long rows: (end minute, asset, knowledge minute, close).
fn long(rows: &[(i64, &str, i64, f64)]) -> RecordBatch {
    let m = 60_000_000_000i64;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.0 * m))
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.2 * m))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
    ];
    RecordBatch::try_new(long_schema(&["close"]), cols).unwrap()
}

#[test]
fn revisions_are_read_as_of_a_knowledge_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rev.parquet");
    let m = 60_000_000_000i64;
    // Bar 1 of X is first published at minute 1 (10.0), revised at 5 (10.5) and 9
    // (10.7). Y's bar 2 arrives late, at minute 4. Input deliberately unsorted.
    let rows = [
        (1, "X", 9, 10.7),
        (2, "Y", 4, 20.0),
        (1, "X", 1, 10.0),
        (2, "X", 2, 11.0),
        (1, "Y", 1, 19.0),
        (1, "X", 5, 10.5),
    ];
    write_long(
        &[long(&rows)],
        &path,
        StoreOptions {
            time_block: 1,
            asset_block: 1,
            compression: StoreCompression::Lz4,
        },
    )
    .unwrap();
    let store = ParquetStore::open(&path).unwrap();
    assert!(store.has_revisions());
    assert_eq!(store.info().rows, 6);
    let at = |tau: Option<i64>| {
        let q = Query {
            as_of: tau.map(|t| t * m),
            ..Query::all()
        };
        store.load(&q).unwrap()
    };
    let close = |f: &Frame, a: &str, row: usize| f.value("close", a, row).unwrap();
    // As of minute 0: nothing is known; the shape is still the store's.
    let f0 = at(Some(0));
    assert_eq!((f0.n_rows(), f0.assets().len()), (0, 2));
    // As of minute 1: bar 1 of both, first versions.
    let f1 = at(Some(1));
    assert_eq!(f1.end_ts(), [m]);
    assert_eq!((close(&f1, "X", 0), close(&f1, "Y", 0)), (10.0, 19.0));
    // As of minute 3: bar 2 of X is known, Y's is not yet (NaN).
    let f3 = at(Some(3));
    assert_eq!(f3.end_ts(), [m, 2 * m]);
    assert!(close(&f3, "Y", 1).is_nan());
    assert_eq!(close(&f3, "X", 1), 11.0);
    // As of 6: X's bar 1 is the first revision; bar 2 is complete, known at 4.
    let f6 = at(Some(6));
    assert_eq!(close(&f6, "X", 0), 10.5);
    assert_eq!(close(&f6, "Y", 1), 20.0);
    assert_eq!(f6.knowledge_ts(), [5 * m, 4 * m]);
    // No cut-off: the latest of everything.
    let all = at(None);
    assert_eq!(close(&all, "X", 0), 10.7);
    assert!(
        all.knowledge_ts()
            .iter()
            .zip([9, 4])
            .all(|(&k, e)| k == e * m)
    );
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_frame(&bars(3, 100), &good, StoreOptions::default()).unwrap();
    // A corrupt footer: cut the last bytes off.
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let e = ParquetStore::open(&cut).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: not a readable Parquet file", cut.display())),
        "{e}"
    );
    // Not Parquet at all.
    let junk = dir.path().join("junk.parquet");
    std::fs::write(&junk, b"end_ts,asset\n1,X\n").unwrap();
    assert!(
        ParquetStore::open(&junk)
            .unwrap_err()
            .to_string()
            .contains("junk.parquet: not a readable Parquet file")
    );
    // Missing.
    let e = ParquetStore::open(dir.path().join("absent.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.parquet: cannot open"), "{e}");
    // A Parquet file that is not in the long layout.
    let other = dir.path().join("other.parquet");
    {
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        )])
        .unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&other).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let e = ParquetStore::open(&other).unwrap_err().to_string();
    assert!(
        e.contains("not a market data store: no `end_ts` column"),
        "{e}"
    );
    // Unknown assets and columns are named, with what there is.
    let store = ParquetStore::open(&good).unwrap();
    let e = store
        .load(&Query::all().columns(&["vwap"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("unknown column `vwap`; the data has 5 columns: open, high"),
        "{e}"
    );
    // Corrupt data pages (footer intact): the row group is named.
    let mut bad = bytes.clone();
    for b in &mut bad[4..bytes.len() / 2] {
        *b ^= 0x5a;
    }
    let corrupt = dir.path().join("corrupt.parquet");
    std::fs::write(&corrupt, &bad).unwrap();
    let e = ParquetStore::open(&corrupt)
        .unwrap()
        .load(&Query::all())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}: row group 0", corrupt.display())),
        "{e}"
    );
}

#[test]
fn a_library_error_is_kept_as_the_source_not_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.parquet");
    let e = ParquetStore::open(&absent).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: cannot open", absent.display()));
    let source = std::error::Error::source(&e).expect("the I/O error is the source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error, not a string");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    // Writing where no folder exists: the I/O error again, as the source.
    let e = write_frame(
        &bars(2, 10),
        dir.path().join("no/such/dir/s.parquet"),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("s.parquet"), "{e}");
}

/// Writes `batch` as a Parquet file with the given footer entries (another writer).
fn foreign(path: &std::path::Path, batch: &RecordBatch, kv: &[(&str, &str)]) {
    use parquet::file::metadata::KeyValue;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(
            kv.iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
                .collect(),
        ))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn ts(v: &[i64]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v.to_vec()).with_timezone("UTC"))
}

#[test]
fn foreign_files_with_duplicate_rows_or_null_times_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The same (bar, asset, knowledge time) twice: no rule says which is the data.
    let dup = RecordBatch::try_from_iter([
        ("end_ts", ts(&[60, 60, 120])),
        ("knowledge_ts", ts(&[60, 60, 120])),
        (
            "asset",
            Arc::new(StringArray::from(vec!["A", "A", "A"])) as ArrayRef,
        ),
        (
            "close",
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let p = dir.path().join("dup.parquet");
    foreign(&p, &dup, &[]);
    let e = ParquetStore::open(&p)
        .unwrap()
        .load(&Query::all())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: ", p.display())), "{e}");
    assert!(
        e.contains(
            "two rows for asset `A` at 1970-01-01T00:00:00.000000060Z with the same knowledge time"
        ),
        "{e}"
    );
    // A later knowledge time is a revision, and the latest wins.
    let rev = RecordBatch::try_from_iter([
        ("end_ts", ts(&[60, 60])),
        ("knowledge_ts", ts(&[60, 90])),
        (
            "asset",
            Arc::new(StringArray::from(vec!["A", "A"])) as ArrayRef,
        ),
        (
            "close",
            Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let p = dir.path().join("rev.parquet");
    foreign(&p, &rev, &[]);
    let f = ParquetStore::open(&p).unwrap().load(&Query::all()).unwrap();
    assert_eq!(f.feature("close").unwrap().values(), &[2.0]);
    // A null knowledge time.
    let null = RecordBatch::try_from_iter([
        ("end_ts", ts(&[60, 120])),
        (
            "knowledge_ts",
            Arc::new(TimestampNanosecondArray::from(vec![Some(60), None]).with_timezone("UTC"))
                as ArrayRef,
        ),
        (
            "asset",
            Arc::new(StringArray::from(vec!["A", "A"])) as ArrayRef,
        ),
        (
            "close",
            Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let p = dir.path().join("null.parquet");
    foreign(&p, &null, &[]);
    let e = ParquetStore::open(&p)
        .unwrap()
        .load(&Query::all())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column `knowledge_ts` is null at input row 1"),
        "{e}"
    );
}

#[test]
fn rows_of_an_asset_the_footer_does_not_list_are_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.parquet");
    let f = bars(3, 50);
    write_frame(&f, &path, StoreOptions::default()).unwrap();
    // The same rows, rewritten by another writer whose footer lists two of the three
    // assets (and carries no checksums).
    let rows: Vec<RecordBatch> = {
        let file = std::fs::File::open(&path).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let batch = arrow::compute::concat_batches(&rows[0].schema(), &rows).unwrap();
    let p = dir.path().join("short.parquet");
    foreign(
        &p,
        &batch,
        &[
            ("kaizenflow.layout", "long-v1"),
            ("kaizenflow.assets", "A0000\nA0001"),
            ("kaizenflow.revisions", "false"),
        ],
    );
    let e = ParquetStore::open(&p)
        .unwrap()
        .load(&Query::all())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: ", p.display())), "{e}");
    assert!(
        e.contains("rows of asset \"A0002\" are in the file, but its footer lists 2 assets"),
        "{e}"
    );
    // The footer of a store this crate wrote is covered by its CRC: a changed asset
    // list fails at open.
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(5).rposition(|w| w == b"A0002").unwrap();
    let mut b = bytes.clone();
    b[at + 4] = b'9';
    let p = dir.path().join("edited.parquet");
    std::fs::write(&p, b).unwrap();
    let e = ParquetStore::open(&p).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("fails its checksum") || e.contains("damaged"),
        "{e}"
    );
}

#[test]
fn a_store_column_of_another_type_names_the_file_and_both_types() {
    let dir = tempfile::tempdir().unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "end_ts",
            Arc::new(arrow::array::Int64Array::from(vec![60])) as ArrayRef,
        ),
        ("knowledge_ts", ts(&[60])),
        ("asset", Arc::new(StringArray::from(vec!["A"])) as ArrayRef),
        ("close", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
    ])
    .unwrap();
    let p = dir.path().join("typed.parquet");
    foreign(
        &p,
        &batch,
        &[
            ("kaizenflow.layout", "long-v1"),
            ("kaizenflow.assets", "A"),
            ("kaizenflow.revisions", "false"),
        ],
    );
    let e = ParquetStore::open(&p)
        .unwrap()
        .load(&Query::all())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: ", p.display())), "{e}");
    assert!(
        e.contains("column `end_ts`: expected Timestamp(ns), found type Int64"),
        "{e}"
    );
}

#[test]
fn a_repeated_version_is_refused_when_the_store_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.parquet");
    // X's bar 1 published twice at minute 1 (an overlapping dump): not a revision.
    let rows = [(1, "X", 1, 10.0), (1, "X", 1, 10.0), (1, "X", 5, 10.5)];
    let e = write_long(&[long(&rows)], &path, StoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
    assert!(
        e.contains("two rows for asset `X`") && e.contains("same knowledge time"),
        "{e}"
    );
    assert!(!path.exists(), "nothing is written");
}

#[test]
fn a_store_is_fingerprinted_by_its_content_through_its_footer() {
    let dir = tempfile::tempdir().unwrap();
    let f = bars(5, 300);
    let write = |name: &str, frame: &Frame| {
        let p = dir.path().join(name);
        write_frame(frame, &p, StoreOptions::default()).unwrap();
        ParquetStore::open(&p)
            .unwrap()
            .fingerprint()
            .unwrap()
            .unwrap()
    };
    let a = write("a.parquet", &f);
    // The same content written again (elsewhere): the same fingerprint.
    assert_eq!(a, write("b.parquet", &f));
    assert!(a.starts_with("parquet-footer;"), "{a}");
    // One value changed: another fingerprint.
    let features = f
        .features()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut v = f.feature_at(i).values().to_vec();
            if i == 0 {
                v[777] = f64::from_bits(v[777].to_bits() ^ 1);
            }
            (name.clone(), v)
        })
        .collect();
    let g = Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        f.assets().to_vec(),
        features,
    )
    .unwrap();
    assert_ne!(a, write("c.parquet", &g));
    // A file of another writer is hashed whole.
    let foreign = dir.path().join("foreign.parquet");
    f.write_parquet(&foreign).unwrap();
    let fp = ParquetStore::open(&foreign)
        .unwrap()
        .fingerprint()
        .unwrap()
        .unwrap();
    assert!(fp.starts_with("parquet;"), "{fp}");
}

/// `f` with one bit of `close`-or-first-feature flipped at (`row`, asset 1).
fn flipped(f: &Frame, row: usize) -> Frame {
    let cell = row * f.n_assets() + 1;
    let features = f
        .features()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut v = f.feature_at(i).values().to_vec();
            if i == 0 {
                v[cell] = f64::from_bits(v[cell].to_bits() ^ 1);
            }
            (name.clone(), v)
        })
        .collect();
    Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        f.assets().to_vec(),
        features,
    )
    .unwrap()
}

/// The fingerprint of a store's rows up to a time is the same before and after bars
/// are appended (the appended bars complete the row group the old end cut), and
/// differs when any old row changes: in a row group wholly before the old end
/// (checked by the footer) or in the one it cuts (checked by reading it).
#[test]
fn a_stores_prefix_fingerprint_survives_appended_bars_and_catches_old_changes() {
    let dir = tempfile::tempdir().unwrap();
    let all = bars(5, 300);
    let t = all.end_ts()[216];
    let old = all.slice_time(i64::MIN, t);
    assert_eq!(old.n_rows(), 217);
    let opts = StoreOptions {
        time_block: 40,
        asset_block: 2,
        ..StoreOptions::default()
    };
    let prefix = |name: &str, frame: &Frame, until: i64| {
        let p = dir.path().join(name);
        write_frame(frame, &p, opts).unwrap();
        let s = ParquetStore::open(&p).unwrap();
        assert!(s.lineage().is_some_and(|l| l.ends_with(name)));
        s.prefix_fingerprint(until).unwrap().unwrap()
    };
    let before = prefix("old.parquet", &old, t);
    assert!(before.starts_with("parquet-prefix;"), "{before}");
    assert_eq!(before, prefix("grown.parquet", &all, t));
    // A change after the old end does not touch it; one before it does, wherever.
    assert_eq!(before, prefix("late.parquet", &flipped(&all, 250), t));
    assert_ne!(before, prefix("cut.parquet", &flipped(&all, 205), t));
    assert_ne!(before, prefix("early.parquet", &flipped(&all, 100), t));
    // Another end, another fingerprint.
    assert_ne!(before, prefix("grown2.parquet", &all, all.end_ts()[215]));
    // A foreign file: its rows up to the time are read and hashed, with the same
    // properties.
    let foreign = |name: &str, frame: &Frame| {
        let p = dir.path().join(name);
        frame.write_parquet(&p).unwrap();
        ParquetStore::open(&p)
            .unwrap()
            .prefix_fingerprint(t)
            .unwrap()
            .unwrap()
    };
    let fa = foreign("fa.parquet", &old);
    assert!(fa.starts_with("rows;"), "{fa}");
    assert_eq!(fa, foreign("fb.parquet", &all));
    assert_ne!(fa, foreign("fc.parquet", &flipped(&all, 205)));
}

/// A streaming reader's queries (a few bars at a time, in order, some across a row
/// group's boundary, some with other columns) give what the same queries give
/// applied to the frame in memory, while the store keeps the last query's row
/// groups decoded: a second read of the same group reads no bytes.
#[test]
fn consecutive_small_queries_match_the_frame_and_reuse_the_last_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.parquet");
    let f = bars(5, 600);
    write_frame(
        &f,
        &path,
        StoreOptions {
            time_block: 100,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let store = ParquetStore::open(&path).unwrap();
    let t = f.end_ts();
    let mut lo = 0;
    let mut reused = 0;
    for (k, width) in [7usize, 13, 1, 50, 29, 3, 100, 2]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        if lo >= t.len() {
            break;
        }
        let hi = (lo + width - 1).min(t.len() - 1);
        let mut q = Query::between(t[lo], t[hi]);
        if k % 3 == 2 {
            q = q.columns(&["close"]);
        }
        let (got, stats) = store.query_with_stats(&q).unwrap();
        let expected = q.apply(&f).unwrap();
        assert!(
            got.bit_eq(&expected),
            "bars {lo}..={hi}: {:?}",
            got.first_difference(&expected)
        );
        if stats.bytes_read == 0 {
            reused += 1;
        }
        lo = hi + 1;
    }
    assert!(
        reused >= 5,
        "only {reused} queries were served from the last groups"
    );
}
