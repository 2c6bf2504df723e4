//! Properties of `Frame`: long <-> wide round trips, slicing then concatenating, the
//! Parquet round trip, and difference reports, on random frames with gaps, NaN, inf
//! and -0.0. `PROPTEST_CASES` raises the number of cases.

use std::collections::BTreeMap;

use kf_frame::{Difference, Frame, LongRows, Timestamp};
use proptest::prelude::*;

const MIN: i64 = 60_000_000_000;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -1e6f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(-0.0),
        1 => Just(f64::INFINITY),
        1 => any::<f64>(),
    ]
}

/// A random frame: 0..25 rows with random gaps, 1..5 assets, 1..3 features.
fn frame() -> impl Strategy<Value = Frame> {
    (0usize..25, 1usize..5, 1usize..3).prop_flat_map(|(rows, assets, features)| {
        (
            prop::collection::vec((1i64..4, 0i64..5_000), rows),
            prop::collection::vec(prop::collection::vec(value(), rows * assets), features),
        )
            .prop_map(move |(steps, values)| {
                let mut t = 1_500_000_000 * 1_000_000_000i64;
                let mut end_ts = Vec::with_capacity(rows);
                let mut kt = Vec::with_capacity(rows);
                for (gap, delay) in steps {
                    t += gap * MIN;
                    end_ts.push(t);
                    kt.push(t + delay);
                }
                let asset_names = (0..assets).map(|a| format!("A{a}")).collect();
                let feats = values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("f{i}"), v))
                    .collect();
                Frame::new(end_ts, kt, asset_names, feats).unwrap()
            })
    })
}

/// The frame restricted to rows and assets that have at least one non-NaN value,
/// built cell by cell (a second algorithm for what `LongRows::Present` keeps).
fn present_part(f: &Frame) -> Frame {
    let n = f.n_assets();
    let has = |row: usize, a: usize| {
        (0..f.n_features()).any(|k| !f.feature_at(k).values()[row * n + a].is_nan())
    };
    let rows: Vec<usize> = (0..f.n_rows())
        .filter(|&r| (0..n).any(|a| has(r, a)))
        .collect();
    let assets: Vec<usize> = (0..n)
        .filter(|&a| (0..f.n_rows()).any(|r| has(r, a)))
        .collect();
    let feats = (0..f.n_features())
        .map(|k| {
            let v = f.feature_at(k).values();
            let cells = rows
                .iter()
                .flat_map(|&r| assets.iter().map(move |&a| v[r * n + a]))
                .collect();
            (f.features()[k].clone(), cells)
        })
        .collect();
    Frame::new(
        rows.iter().map(|&r| f.end_ts()[r]).collect(),
        rows.iter().map(|&r| f.knowledge_ts()[r]).collect(),
        assets.iter().map(|&a| f.assets()[a].clone()).collect(),
        feats,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn wide_long_wide_all_rows_is_exact(f in frame()) {
        prop_assume!(f.n_rows() > 0);
        let back = Frame::from_long(&f.to_long(LongRows::All).unwrap()).unwrap();
        prop_assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
    }

    #[test]
    fn wide_long_wide_present_rows_keeps_exactly_the_present_part(f in frame()) {
        let back = Frame::from_long(&f.to_long(LongRows::Present).unwrap()).unwrap();
        let expected = present_part(&f);
        if expected.n_rows() > 0 {
            prop_assert!(back.bit_eq(&expected), "{:?}", back.first_difference(&expected));
        } else {
            prop_assert_eq!(back.n_rows(), 0);
        }
    }

    /// Long input in any order, with any subset of (time, asset) pairs: every given
    /// value lands in its cell, absent cells are NaN, and a row's knowledge time is the
    /// max of its inputs' (checked against a map built directly from the input).
    #[test]
    fn long_in_any_order_lands_in_place(
        cells in prop::collection::btree_map((0i64..30, 0usize..6), (value(), 0i64..100), 1..80),
        seed in any::<u64>(),
    ) {
        let mut rows: Vec<LongRow> = cells.clone().into_iter().collect();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..rows.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            rows.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let batch = long_batch(&rows);
        let f = Frame::from_long(&batch).unwrap();
        let times: Vec<i64> = cells.keys().map(|k| k.0 * MIN).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        prop_assert_eq!(f.end_ts(), &times[..]);
        let mut max_kt: BTreeMap<i64, i64> = BTreeMap::new();
        for (&(t, _), &(_, k)) in &cells {
            let e = max_kt.entry(t * MIN).or_insert(i64::MIN);
            *e = (*e).max(k);
        }
        prop_assert_eq!(f.knowledge_ts(), &max_kt.values().copied().collect::<Vec<_>>()[..]);
        for (r, &t) in f.end_ts().iter().enumerate() {
            for (a, name) in f.assets().iter().enumerate() {
                let asset: usize = name[1..].parse().unwrap();
                let got = f.feature("x").unwrap().row(r)[a];
                match cells.get(&(t / MIN, asset)) {
                    Some(&(v, _)) => prop_assert_eq!(got.to_bits(), v.to_bits()),
                    None => prop_assert!(got.is_nan()),
                }
            }
        }
    }

    #[test]
    fn slicing_then_concatenating_gives_back_the_original(
        f in frame(),
        cuts in prop::collection::vec(0usize..26, 0..6),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(f.n_rows())).collect();
        cuts.push(0);
        cuts.push(f.n_rows());
        cuts.sort_unstable();
        let tiles: Vec<Frame> = cuts.windows(2).map(|w| f.slice(w[0], w[1] - w[0]).unwrap()).collect();
        let back = Frame::concat(&tiles).unwrap();
        prop_assert!(back.bit_eq(&f), "{:?}", back.first_difference(&f));
        // Time slices by closed intervals partition the rows the same way.
        let by_time: Vec<Frame> = cuts.windows(2).filter(|w| w[1] > w[0]).map(|w| {
            f.slice_time(f.end_ts()[w[0]], f.end_ts()[w[1] - 1])
        }).collect();
        if !by_time.is_empty() {
            prop_assert!(Frame::concat(&by_time).unwrap().bit_eq(&f));
        }
    }

    #[test]
    fn a_changed_cell_is_the_reported_difference(
        f in frame(),
        pick in any::<(usize, usize, usize)>(),
    ) {
        prop_assume!(f.n_rows() > 0);
        let (k, r, a) = (pick.0 % f.n_features(), pick.1 % f.n_rows(), pick.2 % f.n_assets());
        let i = r * f.n_assets() + a;
        let feats: Vec<(String, Vec<f64>)> = (0..f.n_features()).map(|j| {
            let mut v = f.feature_at(j).values().to_vec();
            if j == k { v[i] = f64::from_bits(v[i].to_bits() ^ 1); }
            (f.features()[j].clone(), v)
        }).collect();
        let g = Frame::new(f.end_ts().to_vec(), f.knowledge_ts().to_vec(), f.assets().to_vec(), feats).unwrap();
        match f.first_difference(&g) {
            Some(Difference::Cell { feature, asset, end_ts, .. }) => {
                prop_assert_eq!(feature, f.features()[k].clone());
                prop_assert_eq!(asset, f.assets()[a].clone());
                prop_assert_eq!(end_ts, Timestamp(f.end_ts()[r]));
            }
            other => prop_assert!(false, "expected a cell difference, got {:?}", other),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn parquet_and_ipc_round_trips_are_exact(f in frame()) {
        let dir = tempfile::tempdir().unwrap();
        let expected = present_part(&f);
        prop_assume!(expected.n_rows() > 0);
        let p = dir.path().join("f.parquet");
        f.write_parquet(&p).unwrap();
        let back = Frame::read_parquet(&p).unwrap();
        prop_assert!(back.bit_eq(&expected), "{:?}", back.first_difference(&expected));
        let i = dir.path().join("f.arrow");
        f.write_ipc(&i).unwrap();
        prop_assert!(Frame::read_ipc(&i).unwrap().bit_eq(&expected));
    }
}

/// One long row: ((minute, asset number), (value, knowledge time)).
type LongRow = ((i64, usize), (f64, i64));

fn long_batch(rows: &[LongRow]) -> arrow::array::RecordBatch {
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let schema = kf_frame::long_schema(&["x"]);
    let schema = Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if f.name() == "end_ts" || f.name() == "knowledge_ts" {
                    arrow::datatypes::Field::new(f.name(), arrow::datatypes::DataType::Int64, false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.0.0 * MIN),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1.1))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| format!("A{}", r.0.1)),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1.0))),
        ],
    )
    .unwrap()
}
