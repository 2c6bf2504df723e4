//! SQL over frames (feature `sql`): results checked against sums computed directly
//! from the frame (volumes are integers, so the sums are exact in any order).
#![cfg(feature = "sql")]

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use kf_datapull::sql::query;
use kf_datapull::{DataError, SyntheticBars, SyntheticParams};

#[test]
fn group_by_and_time_filter_match_direct_computation() {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 3,
        bars: 40,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    let out = query(
        &[("bars", &f)],
        "SELECT asset, SUM(volume) AS v, COUNT(*) AS n FROM bars \
         WHERE end_ts > TIMESTAMP '2024-01-02T14:40:00Z' GROUP BY asset ORDER BY asset",
    )
    .unwrap();
    let batch = arrow::compute::concat_batches(&out[0].schema(), &out).unwrap();
    assert_eq!(batch.num_rows(), 3);
    let assets = batch.column(0).as_string::<i32>();
    let sums = batch.column(1).as_primitive::<Float64Type>();
    let counts = batch.column(2).as_primitive::<Int64Type>();
    // Bars end 14:31 .. 15:10 UTC; those after 14:40 are rows 10..40.
    let volume = f.feature("volume").unwrap();
    for a in 0..3 {
        assert_eq!(assets.value(a), f.assets()[a]);
        let expected: f64 = volume.asset(a).skip(10).sum();
        assert_eq!(sums.value(a), expected);
        assert_eq!(counts.value(a), 30);
    }
    assert_eq!(sums.null_count(), 0);
}

#[test]
fn a_bad_query_names_the_query() {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 1,
        bars: 2,
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    let e = query(&[("bars", &f)], "SELECT nope FROM bars").unwrap_err();
    assert!(matches!(e, DataError::Sql { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("SQL query failed: "), "{msg}");
    assert!(
        msg.contains("nope") && msg.ends_with("query: SELECT nope FROM bars"),
        "{msg}"
    );
}
