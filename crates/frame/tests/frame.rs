//! Behaviour of `Frame`: construction, long conversion, slicing, concatenation,
//! comparison and files, with every error path. Expected values are computed by hand
//! from the small inputs written out here.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use kf_frame::{Difference, Frame, FrameError, LongRows, Timestamp};

const MIN: i64 = 60_000_000_000;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// 3 rows x 2 assets (A, B) x 2 features, knowledge = end + 1 s.
fn sample() -> Frame {
    Frame::new(
        vec![MIN, 2 * MIN, 3 * MIN],
        vec![
            MIN + 1_000_000_000,
            2 * MIN + 1_000_000_000,
            3 * MIN + 1_000_000_000,
        ],
        names(&["A", "B"]),
        vec![
            ("close".into(), vec![1.0, 10.0, 2.0, 20.0, 3.0, f64::NAN]),
            ("volume".into(), vec![5.0, 50.0, 6.0, 60.0, 7.0, f64::NAN]),
        ],
    )
    .unwrap()
}

/// A long batch with `end_ts`, `knowledge_ts`, `asset` and one feature `x`.
fn long_batch(rows: &[(i64, i64, &str, Option<f64>)]) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Schema::new(vec![
        Field::new("end_ts", ts.clone(), false),
        Field::new("knowledge_ts", ts, false),
        Field::new("asset", DataType::Utf8, false),
        Field::new("x", DataType::Float64, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

#[test]
fn new_rejects_unsorted_duplicate_mismatched_and_repeated_names() {
    let e = Frame::new(vec![1, 3, 3], vec![0; 3], names(&["A"]), vec![]).unwrap_err();
    assert!(matches!(e, FrameError::UnsortedIndex { row: 2, .. }), "{e}");
    assert!(e.to_string().contains("row 2"), "{e}");
    let e = Frame::new(vec![2, 1], vec![0; 2], names(&["A"]), vec![]).unwrap_err();
    assert!(matches!(e, FrameError::UnsortedIndex { row: 1, .. }), "{e}");
    let e = Frame::new(vec![1, 2], vec![0], names(&["A"]), vec![]).unwrap_err();
    assert!(
        e.to_string()
            .contains("knowledge_ts has 1 values, expected 2"),
        "{e}"
    );
    let e = Frame::new(
        vec![1, 2],
        vec![0; 2],
        names(&["A", "B"]),
        vec![("x".into(), vec![0.0; 3])],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("feature `x` has 3 values, expected 4"),
        "{e}"
    );
    let e = Frame::new(vec![1], vec![0], names(&["A", "A"]), vec![]).unwrap_err();
    assert!(e.to_string().contains("duplicate asset name `A`"), "{e}");
    let e = Frame::new(
        vec![1],
        vec![0],
        names(&["A"]),
        vec![("x".into(), vec![0.0]), ("x".into(), vec![1.0])],
    )
    .unwrap_err();
    assert!(e.to_string().contains("duplicate feature name `x`"), "{e}");
}

#[test]
fn access_by_name_and_unknown_names() {
    let f = sample();
    assert_eq!(f.value("volume", "B", 1).unwrap(), 60.0);
    assert_eq!(
        f.feature("close").unwrap().asset(0).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0]
    );
    assert_eq!(f.feature("close").unwrap().row(1), &[2.0, 20.0]);
    let e = f.value("open", "A", 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown feature `open`; available: close, volume"
    );
    let e = f.value("close", "C", 0).unwrap_err();
    assert_eq!(e.to_string(), "unknown asset `C`; available: A, B");
    let e = f.value("close", "A", 3).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                start: 3,
                rows: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn slices_share_memory_and_check_bounds() {
    let f = sample();
    let s = f.slice(1, 2).unwrap();
    assert_eq!(s.end_ts(), &[2 * MIN, 3 * MIN]);
    // Zero copy: the slice's values are a window of the parent's buffer.
    let parent = f.feature("close").unwrap().values().as_ptr();
    let child = s.feature("close").unwrap().values().as_ptr();
    assert_eq!(child, parent.wrapping_add(2));
    assert_eq!(s.feature("close").unwrap().values()[..2], [2.0, 20.0]);
    let e = f.slice(2, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rows 2..4 are out of range for a frame of 3 rows"
    );
    // Closed at both ends.
    assert_eq!(f.slice_time(2 * MIN, 3 * MIN).end_ts(), &[2 * MIN, 3 * MIN]);
    assert_eq!(f.slice_time(MIN + 1, 2 * MIN).end_ts(), &[2 * MIN]);
    assert!(f.slice_time(4 * MIN, 9 * MIN).is_empty());
    assert!(f.slice_time(3 * MIN, MIN).is_empty());
}

#[test]
fn feature_array_is_a_zero_copy_fixed_size_list() {
    let f = sample();
    let a = f.feature_array(0).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a.value_length(), 2);
    let values = a.values().as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(values.values().as_ptr(), f.feature_at(0).values().as_ptr());
}

#[test]
fn select_features_and_assets() {
    let f = sample();
    let v = f.select_features(&["volume"]).unwrap();
    assert_eq!(v.features(), &["volume".to_string()]);
    assert_eq!(
        v.feature_at(0).values().as_ptr(),
        f.feature("volume").unwrap().values().as_ptr()
    );
    let b = f.select_assets(&["B"]).unwrap();
    assert_eq!(b.feature("close").unwrap().values()[..2], [10.0, 20.0]);
    assert!(b.feature("close").unwrap().values()[2].is_nan());
    let swapped = f.select_assets(&["B", "A"]).unwrap();
    assert_eq!(swapped.feature("volume").unwrap().row(0), &[50.0, 5.0]);
    assert!(
        f.select_features(&["nope"])
            .unwrap_err()
            .to_string()
            .contains("unknown feature `nope`")
    );
    assert!(
        f.select_assets(&["A", "A"])
            .unwrap_err()
            .to_string()
            .contains("duplicate asset")
    );
}

#[test]
fn select_features_shared_takes_the_callers_names() {
    let f = sample();
    let names: Arc<[String]> = vec!["volume".to_string(), "close".to_string()].into();
    let v = f.select_features_shared(&names).unwrap();
    // The frame holds the caller's names, not a copy, and shares the buffers.
    assert!(Arc::ptr_eq(v.features_shared(), &names));
    assert_eq!(
        v.feature_at(1).values().as_ptr(),
        f.feature("close").unwrap().values().as_ptr()
    );
    assert_eq!(v.feature_at(0).row(0), f.feature("volume").unwrap().row(0));
    let twice: Arc<[String]> = vec!["close".to_string(), "close".to_string()].into();
    assert!(
        f.select_features_shared(&twice)
            .unwrap_err()
            .to_string()
            .contains("duplicate feature")
    );
    let unknown: Arc<[String]> = vec!["nope".to_string()].into();
    assert!(
        f.select_features_shared(&unknown)
            .unwrap_err()
            .to_string()
            .contains("unknown feature `nope`")
    );
}

#[test]
fn concat_joins_tiles_and_rejects_overlap_and_schema_changes() {
    let f = sample();
    let tiles = [
        f.slice(0, 1).unwrap(),
        f.slice(1, 0).unwrap(),
        f.slice(1, 2).unwrap(),
    ];
    assert!(Frame::concat(&tiles).unwrap().bit_eq(&f));
    let e = Frame::concat(&[f.slice(0, 2).unwrap(), f.slice(1, 2).unwrap()]).unwrap_err();
    assert!(matches!(e, FrameError::TileOrder { tile: 1, .. }), "{e}");
    assert!(
        e.to_string()
            .contains("tile 1 starts at 1970-01-01T00:02:00Z"),
        "{e}"
    );
    let e = Frame::concat(&[f.slice(1, 1).unwrap(), f.slice(0, 1).unwrap()]).unwrap_err();
    assert!(matches!(e, FrameError::TileOrder { tile: 1, .. }), "{e}");
    let other = f.select_features(&["close"]).unwrap();
    let e = Frame::concat(&[f.slice(0, 1).unwrap(), other.slice(1, 1).unwrap()]).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::TileSchema {
                tile: 1,
                what: "features",
                ..
            }
        ),
        "{e}"
    );
    // Said in the user's words: a part of the data, which features, not "tile".
    let shown = e.to_string();
    assert!(
        shown.starts_with("part 1 of the data (a file, batch or tile, in the order given) has features [\"close\"], but part 0 has [")
            && shown.ends_with("; every part needs the same features"),
        "{shown}"
    );
    let other = f.select_assets(&["B", "A"]).unwrap();
    let e = Frame::concat(&[f.slice(0, 1).unwrap(), other.slice(1, 1).unwrap()]).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::TileSchema {
                tile: 1,
                what: "assets",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn concat_assets_joins_asset_tiles_and_rejects_mismatches() {
    let f = sample();
    let (a, b) = (
        f.select_assets(&["A"]).unwrap(),
        f.select_assets(&["B"]).unwrap(),
    );
    assert!(
        Frame::concat_assets(&[a.clone(), b.clone()])
            .unwrap()
            .bit_eq(&f)
    );
    // Tile order decides asset order.
    let ba = Frame::concat_assets(&[b.clone(), a.clone()]).unwrap();
    assert!(ba.bit_eq(&f.select_assets(&["B", "A"]).unwrap()));
    // A row is known once every tile's part is: the later knowledge time wins.
    let late = b
        .with_knowledge_ts(b.knowledge_ts().iter().map(|k| k + 7).collect())
        .unwrap();
    let joined = Frame::concat_assets(&[a.clone(), late]).unwrap();
    let expected: Vec<i64> = f.knowledge_ts().iter().map(|k| k + 7).collect();
    assert_eq!(joined.knowledge_ts(), expected);
    let e = Frame::concat_assets(&[a.clone(), b.slice(0, 2).unwrap()]).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::AssetTileIndex {
                tile: 1,
                found: 2,
                expected: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = Frame::concat_assets(&[a.clone(), a.clone()]).unwrap_err();
    assert!(e.to_string().contains('A'), "{e}");
    let e = Frame::concat_assets(&[a, b.select_features(&["close"]).unwrap()]).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::TileSchema {
                tile: 1,
                what: "features",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn first_difference_names_the_cell_and_compares_bits() {
    let f = sample();
    let mut close = f.feature("close").unwrap().values().to_vec();
    close[3] = 20.000000000000004; // (close, B) at row 1
    let g = Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        names(&["A", "B"]),
        vec![
            ("close".into(), close),
            (
                "volume".into(),
                f.feature("volume").unwrap().values().to_vec(),
            ),
        ],
    )
    .unwrap();
    let d = f.first_difference(&g).unwrap();
    assert_eq!(
        d,
        Difference::Cell {
            feature: "close".into(),
            asset: "B".into(),
            end_ts: Timestamp(2 * MIN),
            left: 20.0,
            right: 20.000000000000004
        }
    );
    assert!(
        d.to_string()
            .starts_with("value of (close, B) at 1970-01-01T00:02:00Z differs"),
        "{d}"
    );

    // A NaN with another payload, and -0.0 versus 0.0, are differences to the bit.
    let one =
        |v: f64| Frame::new(vec![0], vec![0], names(&["A"]), vec![("x".into(), vec![v])]).unwrap();
    assert!(one(f64::NAN).bit_eq(&one(f64::NAN)));
    assert!(!one(f64::NAN).bit_eq(&one(f64::from_bits(f64::NAN.to_bits() | 1))));
    assert!(!one(0.0).bit_eq(&one(-0.0)));

    // An earlier knowledge-time difference wins over a later cell difference.
    let mut kt = f.knowledge_ts().to_vec();
    kt[0] += 1;
    let h = Frame::new(
        f.end_ts().to_vec(),
        kt,
        names(&["A", "B"]),
        vec![
            (
                "close".into(),
                g.feature("close").unwrap().values().to_vec(),
            ),
            (
                "volume".into(),
                g.feature("volume").unwrap().values().to_vec(),
            ),
        ],
    )
    .unwrap();
    assert!(matches!(
        f.first_difference(&h),
        Some(Difference::KnowledgeTs { .. })
    ));
    assert!(matches!(
        f.first_difference(&f.slice(0, 2).unwrap()),
        Some(Difference::Rows { left: 3, right: 2 })
    ));
    assert!(matches!(
        f.first_difference(&f.select_assets(&["B", "A"]).unwrap()),
        Some(Difference::Assets { .. })
    ));
}

#[test]
fn from_long_any_row_order_gives_the_same_frame() {
    // Hand-built expectation: times 1, 2, 3; assets sorted A, B; (3, B) missing.
    let kt = |t: i64| t + 10;
    let rows_time_major = [
        (1, kt(1), "B", Some(10.0)),
        (1, kt(1), "A", Some(1.0)),
        (2, kt(2), "B", Some(20.0)),
        (2, kt(2), "A", Some(2.0)),
        (3, kt(3), "A", Some(3.0)),
    ];
    let rows_asset_major = [
        (1, kt(1), "A", Some(1.0)),
        (2, kt(2), "A", Some(2.0)),
        (3, kt(3), "A", Some(3.0)),
        (1, kt(1), "B", Some(10.0)),
        (2, kt(2), "B", Some(20.0)),
    ];
    let shuffled = [
        (2, kt(2), "A", Some(2.0)),
        (3, kt(3), "A", Some(3.0)),
        (1, kt(1), "B", Some(10.0)),
        (2, kt(2), "B", Some(20.0)),
        (1, kt(1), "A", Some(1.0)),
    ];
    let expected = Frame::new(
        vec![1, 2, 3],
        vec![11, 12, 13],
        names(&["A", "B"]),
        vec![("x".into(), vec![1.0, 10.0, 2.0, 20.0, 3.0, f64::NAN])],
    )
    .unwrap();
    for rows in [&rows_time_major[..], &rows_asset_major[..], &shuffled[..]] {
        let f = Frame::from_long(&long_batch(rows)).unwrap();
        assert!(f.bit_eq(&expected), "{:?}", f.first_difference(&expected));
    }
    // Split over batches, too.
    let b1 = long_batch(&rows_asset_major[..2]);
    let b2 = long_batch(&rows_asset_major[2..]);
    assert!(
        Frame::from_long_batches(&[b1, b2])
            .unwrap()
            .bit_eq(&expected)
    );
}

#[test]
fn from_long_takes_the_latest_knowledge_time_of_a_row_and_nulls_as_nan() {
    let rows = [
        (1, 5, "A", None),
        (1, 9, "B", Some(2.0)),
        (2, 3, "A", Some(4.0)),
    ];
    let f = Frame::from_long(&long_batch(&rows)).unwrap();
    assert_eq!(f.knowledge_ts(), &[9, 3]);
    let x = f.feature("x").unwrap().values();
    assert!(x[0].is_nan() && x[1] == 2.0 && x[2] == 4.0 && x[3].is_nan());
}

#[test]
fn from_long_accepts_other_types_dictionary_assets_and_millisecond_times() {
    let schema = Schema::new(vec![
        Field::new(
            "end_ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("knowledge_ts", DataType::Int64, false),
        Field::new(
            "asset",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("volume", DataType::Int64, false),
    ]);
    let assets: DictionaryArray<Int32Type> = vec!["MSFT", "AAPL", "MSFT"].into_iter().collect();
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![1_000, 1_000, 2_000])),
            Arc::new(Int64Array::from(vec![7, 8, 9])),
            Arc::new(assets),
            Arc::new(Int64Array::from(vec![3, 4, 5])),
        ],
    )
    .unwrap();
    let f = Frame::from_long(&batch).unwrap();
    assert_eq!(f.end_ts(), &[1_000_000_000, 2_000_000_000]);
    assert_eq!(f.assets(), &names(&["AAPL", "MSFT"]));
    assert_eq!(f.feature("volume").unwrap().row(0), &[4.0, 3.0]);
    assert_eq!(f.feature("volume").unwrap().row(1)[1], 5.0);
    assert_eq!(f.knowledge_ts(), &[8, 9]);
}

#[test]
fn from_long_errors_name_the_row_column_and_pair() {
    let e = Frame::from_long(&long_batch(&[
        (1, 1, "A", Some(1.0)),
        (1, 2, "A", Some(2.0)),
    ]))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "duplicate row for asset `A` at 1970-01-01T00:00:00.000000001Z (input row 1); \
         each (end_ts, asset) pair must appear once"
    );
    let b = long_batch(&[(1, 1, "A", Some(1.0))]);
    let missing = b.project(&[0, 2, 3]).unwrap();
    let e = Frame::from_long(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown column `knowledge_ts`; available: end_ts, asset, x"
    );

    let schema = Schema::new(vec![
        Field::new("end_ts", DataType::Int64, false),
        Field::new("knowledge_ts", DataType::Int64, false),
        Field::new("asset", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, false),
    ]);
    let batch = |asset: Vec<Option<&str>>| {
        RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(asset)),
                Arc::new(StringArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap()
    };
    let e = Frame::from_long(&batch(vec![Some("A"), None])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "column `asset` is null at input row 1; it must always be set"
    );
    let e = Frame::from_long(&batch(vec![Some("A"), Some("B")])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("column `note` has type Utf8; expected a numeric type"),
        "{e}"
    );

    let b1 = long_batch(&[(1, 1, "A", Some(1.0))]);
    let b2 = b1.project(&[0, 1, 2]).unwrap();
    let e = Frame::from_long_batches(&[b1, b2]).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::TileSchema {
                tile: 1,
                what: "columns",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn to_long_present_skips_missing_bars_and_all_keeps_them() {
    let f = sample();
    let present = f.to_long(LongRows::Present).unwrap();
    assert_eq!(present.num_rows(), 5);
    let all = f.to_long(LongRows::All).unwrap();
    assert_eq!(all.num_rows(), 6);
    assert_eq!(
        present.schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let assets = present
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        assets.iter().flatten().collect::<Vec<_>>(),
        ["A", "B", "A", "B", "A"]
    );
    assert!(Frame::from_long(&all).unwrap().bit_eq(&f));
    assert!(Frame::from_long(&present).unwrap().bit_eq(&f));
}

#[test]
fn parquet_and_ipc_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f = sample();
    let p = dir.path().join("f.parquet");
    f.write_parquet(&p).unwrap();
    let back = Frame::read_parquet(&p).unwrap();
    assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
    let i = dir.path().join("f.arrow");
    f.write_ipc(&i).unwrap();
    assert!(Frame::read_ipc(&i).unwrap().bit_eq(&f));
    // An empty frame keeps its features through a file.
    let empty = Frame::empty(vec![], names(&["a", "b"])).unwrap();
    empty.write_parquet(&p).unwrap();
    assert_eq!(
        Frame::read_parquet(&p).unwrap().features(),
        &names(&["a", "b"])
    );
}

#[test]
fn bad_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.parquet");
    let e = Frame::read_parquet(&missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{e}"
    );

    // A Parquet file whose footer is cut off.
    let p = dir.path().join("cut.parquet");
    sample().write_parquet(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    let e = Frame::read_parquet(&p).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}: ", p.display())),
        "{e}"
    );
    assert!(matches!(e, FrameError::File { .. }));

    let i = dir.path().join("junk.arrow");
    std::fs::write(&i, b"not an arrow file at all").unwrap();
    let e = Frame::read_ipc(&i).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}: ", i.display())),
        "{e}"
    );
}

#[test]
fn second_timestamps_past_2262_overflow_with_a_clear_error() {
    use arrow::array::TimestampSecondArray;
    let schema = Schema::new(vec![
        Field::new("end_ts", DataType::Timestamp(TimeUnit::Second, None), false),
        Field::new("knowledge_ts", DataType::Int64, false),
        Field::new("asset", DataType::Utf8, false),
    ]);
    let batch = |secs: i64| {
        RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(TimestampSecondArray::from(vec![1, secs])),
                Arc::new(Int64Array::from(vec![0, 0])),
                Arc::new(StringArray::from(vec!["A", "A"])),
            ],
        )
        .unwrap()
    };
    // 10^10 s is in the year 2286: past what i64 nanoseconds hold.
    let e = Frame::from_long(&batch(10_000_000_000)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timestamp 10000000000 s in column `end_ts` overflows i64 nanoseconds"
    );
    let f = Frame::from_long(&batch(2)).unwrap();
    assert_eq!(f.end_ts(), &[1_000_000_000, 2_000_000_000]);
}
