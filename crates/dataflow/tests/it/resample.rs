//! `resample`: closed right, labelled right, every bin from the first to the last
//! complete one, each aggregation checked by hand, with gaps and missing values.

use kf_dataflow::nodes::resample::{AggFunc, AggSpec, Resample};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Dag, Phase, RunContext, RunOptions};
use kf_frame::{Frame, Timestamp};

use crate::common::{MIN, same, series};

const NAN: f64 = f64::NAN;

fn spec(func: AggFunc, col: &str) -> AggSpec {
    AggSpec {
        func,
        col: col.into(),
        volume: (func == AggFunc::Vwap).then(|| "v".to_string()),
        optional: false,
    }
}

fn run(input: Frame, aggs: Vec<(String, AggSpec)>) -> Frame {
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", input)))
        .unwrap();
    dag.add_node(Box::new(Resample::new("rs", 5 * MIN, aggs).unwrap()))
        .unwrap();
    dag.chain("src", "rs").unwrap();
    dag.run(
        &RunContext::new(Phase::Predict, None),
        &RunOptions::default(),
    )
    .unwrap()
    .df_out("rs")
    .unwrap()
    .clone()
}

#[test]
fn every_aggregation_by_hand_with_a_gap_and_an_empty_bin() {
    let t = |s: &str| Timestamp::parse(s).unwrap().nanos();
    // Bars ending 09:31..09:35 fall in the bin ending 09:35; 09:36..09:40 in 09:40.
    // No bar between 09:41 and 09:45: that bin is empty. 09:46 is in 09:50. 09:51
    // opens the bin ending 09:55, which closes 09:50; that last bin is still open
    // when the data ends, so it is not emitted (it is not complete yet).
    let ts = vec![
        t("2024-01-02 09:31"),
        t("2024-01-02 09:33"),
        t("2024-01-02 09:35"),
        t("2024-01-02 09:36"),
        t("2024-01-02 09:40"),
        t("2024-01-02 09:46"),
        t("2024-01-02 09:51"),
    ];
    let kt: Vec<i64> = ts.iter().map(|x| x + MIN).collect();
    let p = vec![10.0, 12.0, NAN, 20.0, 22.0, 30.0, 99.0];
    let v = vec![1.0, 3.0, 5.0, 0.0, 0.0, 2.0, 1.0];
    let f = Frame::new(
        ts,
        kt,
        vec!["A".into()],
        vec![("p".into(), p), ("v".into(), v)],
    )
    .unwrap();
    let aggs = [
        ("last", AggFunc::Last),
        ("first", AggFunc::First),
        ("mean", AggFunc::Mean),
        ("sum", AggFunc::Sum),
        ("min", AggFunc::Min),
        ("max", AggFunc::Max),
        ("twap", AggFunc::Twap),
        ("vwap", AggFunc::Vwap),
    ]
    .into_iter()
    .map(|(n, func)| (n.to_string(), spec(func, "p")))
    .collect();
    let out = run(f, aggs);
    let bins: Vec<i64> = ["09:35", "09:40", "09:45", "09:50"]
        .iter()
        .map(|h| t(&format!("2024-01-02 {h}")))
        .collect();
    assert_eq!(out.end_ts(), bins);
    // Knowledge time: the latest of the bin's rows (and of rows before, for the empty bin).
    assert_eq!(
        out.knowledge_ts(),
        [
            bins[0] + MIN,
            bins[1] + MIN,
            bins[1] + MIN,
            bins[3] - 4 * MIN + MIN
        ]
    );
    assert!(same(&series(&out, "last", 0), &[12.0, 22.0, NAN, 30.0]));
    assert!(same(&series(&out, "first", 0), &[10.0, 20.0, NAN, 30.0]));
    assert!(same(&series(&out, "mean", 0), &[11.0, 21.0, NAN, 30.0]));
    assert!(same(&series(&out, "sum", 0), &[22.0, 42.0, NAN, 30.0]));
    assert!(same(&series(&out, "min", 0), &[10.0, 20.0, NAN, 30.0]));
    assert!(same(&series(&out, "max", 0), &[12.0, 22.0, NAN, 30.0]));
    assert!(same(&series(&out, "twap", 0), &[11.0, 21.0, NAN, 30.0]));
    // vwap: (10*1 + 12*3) / (1 + 3) (the NaN price's volume is left out); zero volume
    // gives 0/0: NaN.
    assert!(same(
        &series(&out, "vwap", 0),
        &[46.0 / 4.0, NAN, NAN, 30.0]
    ));
}

#[test]
fn optional_columns_may_be_absent_and_required_ones_may_not() {
    let t0 = Timestamp::parse("2024-01-02 09:31").unwrap().nanos();
    let f = Frame::new(
        vec![t0],
        vec![t0],
        vec!["A".into()],
        vec![("p".into(), vec![1.0])],
    )
    .unwrap();
    let mut opt = spec(AggFunc::Mean, "feature1");
    opt.optional = true;
    let out = run(
        f.clone(),
        vec![
            ("p".into(), spec(AggFunc::Last, "p")),
            ("feature1".into(), opt),
        ],
    );
    assert_eq!(out.features(), ["p"]);
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", f))).unwrap();
    dag.add_node(Box::new(
        Resample::new(
            "rs",
            5 * MIN,
            vec![("q".into(), spec(AggFunc::Last, "nope"))],
        )
        .unwrap(),
    ))
    .unwrap();
    dag.chain("src", "rs").unwrap();
    let err = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rs") && err.contains("nope") && err.contains('p'),
        "{err}"
    );
    assert!(Resample::new("rs", 0, vec![("p".into(), spec(AggFunc::Last, "p"))]).is_err());
    let mut bad = spec(AggFunc::Vwap, "p");
    bad.volume = None;
    assert!(
        Resample::new("rs", MIN, vec![("p".into(), bad)])
            .unwrap_err()
            .to_string()
            .contains("volume")
    );
}
