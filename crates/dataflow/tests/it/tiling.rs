//! The tiled runner: Mock1 on synthetic bars with gaps and late bars gives the
//! batch outputs to the bit under irregular time tiles, asset tiles, one-bar
//! streaming and several threads; divergences name the node; what cannot be tiled is
//! refused by name.

use std::sync::Arc;

use kf_dataflow::column::{ColumnNode, Columns};
use kf_dataflow::mock1::{Mock1Params, dag};
use kf_dataflow::nodes::cross_section::{CrossSection, CrossSectionParams, CrossSectional};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::tiling::{Outputs, Tiling, bar_cuts, first_divergence, run_tiled};
use kf_dataflow::{Dag, DataflowError, Keep, Phase};
use kf_datapull::{SyntheticBars, SyntheticParams};
use kf_frame::Frame;

use crate::broken::{Broken, Flaw};

/// Three trading days of minute bars for 5 assets, with missing bars and bars known
/// late.
pub fn bars() -> Frame {
    SyntheticBars::new(SyntheticParams {
        assets: 5,
        bars: 3 * 390,
        calendar: "us_equity".into(),
        gap_prob: 0.05,
        late_prob: 0.05,
        seed: 11,
        ..SyntheticParams::default()
    })
    .unwrap()
    .generate()
    .unwrap()
}

fn mock1(input: &Frame) -> Dag {
    let p = Mock1Params {
        max_gap: Some("1h".into()),
        ..Mock1Params::default()
    };
    dag(Box::new(FrameSource::new("read", input.clone())), &p).unwrap()
}

fn run(input: &Frame, tiling: &Tiling) -> Outputs {
    let input = input.clone();
    run_tiled(
        &move || Ok(mock1(&input)),
        Phase::Predict,
        tiling,
        &Keep::All,
    )
    .unwrap()
}

fn tiling(cuts: Vec<i64>, assets: Option<Vec<Vec<&str>>>, threads: usize) -> Tiling {
    Tiling {
        cuts,
        assets: assets.map(|t| {
            t.into_iter()
                .map(|a| a.into_iter().map(String::from).collect())
                .collect()
        }),
        threads,
    }
}

#[test]
fn mock1_is_bit_identical_under_every_tiling() {
    let input = bars();
    let order = mock1(&input).topological_order();
    let batch = run(&input, &Tiling::batch());
    assert!(batch[&"predict".into()]["df_out"].n_rows() > 100);
    let ts = input.end_ts();
    // Irregular cuts: inside a 5-minute bin, on a bin end, overnight, before the data.
    let irregular = vec![
        ts[0] - 1,
        ts[3],
        ts[4],
        ts[200] + 1,
        ts[389] + 3_600_000_000_000,
        ts[777],
    ];
    let tilings = [
        tiling(irregular.clone(), None, 1),
        tiling(bar_cuts(ts, 1), None, 1),
        tiling(bar_cuts(ts, 7), None, 2),
        tiling(
            Vec::new(),
            Some(vec![
                vec!["A0000", "A0001"],
                vec!["A0002", "A0003", "A0004"],
            ]),
            2,
        ),
        tiling(
            irregular,
            Some(vec![
                vec!["A0000"],
                vec!["A0001", "A0002"],
                vec!["A0003", "A0004"],
            ]),
            3,
        ),
    ];
    for t in &tilings {
        let tiled = run(&input, t);
        assert_eq!(tiled.len(), batch.len());
        if let Some(d) = first_divergence(&order, &batch, &tiled) {
            panic!(
                "{} tiles, {:?} asset tiles: {d}",
                t.cuts.len() + 1,
                t.assets
            );
        }
    }
}

#[test]
fn a_divergence_names_the_first_node_that_differs() {
    let input = bars();
    let make = |input: Frame| {
        move || {
            let mut d = Dag::new();
            d.add_node(Box::new(FrameSource::new("read", input.clone())))?;
            d.append_to_tail(Box::new(Broken::new(
                "zscore",
                Flaw::FullSampleZscore,
                "close",
                false,
            )))?;
            d.append_to_tail(Box::new(ColumnNode::new(
                "demean",
                Columns::default(),
                CrossSectional::new(CrossSection::Demean, CrossSectionParams::default()),
            )))?;
            Ok(d)
        }
    };
    let m = make(input.clone());
    let order = m().unwrap().topological_order();
    let batch = run_tiled(&m, Phase::Predict, &Tiling::batch(), &Keep::All).unwrap();
    let cuts = vec![input.end_ts()[500]];
    let tiled = run_tiled(&m, Phase::Predict, &tiling(cuts, None, 1), &Keep::All).unwrap();
    let d = first_divergence(&order, &batch, &tiled).expect("a full-sample z-score differs");
    assert_eq!(d.node.as_str(), "zscore");
    assert!(d.to_string().contains("(y, A0000)"), "{d}");
}

#[test]
fn what_cannot_be_tiled_is_refused_by_name() {
    let input = Arc::new(bars());
    // A cross-sectional node on asset tiles.
    let i = Arc::clone(&input);
    let make = move || {
        let mut d = Dag::new();
        d.add_node(Box::new(FrameSource::new("read", (*i).clone())))?;
        d.append_to_tail(Box::new(ColumnNode::new(
            "rank",
            Columns::default(),
            CrossSectional::new(CrossSection::UniformRank, CrossSectionParams::default()),
        )))?;
        Ok(d)
    };
    let t = tiling(Vec::new(), Some(vec![vec!["A0000"], vec!["A0001"]]), 1);
    let e = run_tiled(&make, Phase::Predict, &t, &Keep::Sinks).unwrap_err();
    assert!(
        matches!(&e, DataflowError::NotTilable { node, how: "on asset tiles", .. } if node.as_str() == "rank"),
        "{e}"
    );
    // A node that needs all history, on time tiles.
    let i = Arc::clone(&input);
    let make = move || {
        let mut d = Dag::new();
        d.add_node(Box::new(FrameSource::new("read", (*i).clone())))?;
        d.append_to_tail(Box::new(
            Broken::new("all", Flaw::FullSampleZscore, "close", true).declaring_all_history(),
        ))?;
        Ok(d)
    };
    let e = run_tiled(
        &make,
        Phase::Predict,
        &tiling(vec![0], None, 1),
        &Keep::Sinks,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`all`") && e.to_string().contains("all history"),
        "{e}"
    );
    // The same DAG in one tile is fine.
    assert!(run_tiled(&make, Phase::Predict, &Tiling::batch(), &Keep::Sinks).is_ok());
    // Bad tilings.
    let e = run_tiled(
        &make,
        Phase::Predict,
        &tiling(vec![5, 5], None, 1),
        &Keep::Sinks,
    )
    .unwrap_err();
    assert!(e.to_string().contains("strictly increasing"), "{e}");
    let e = run_tiled(
        &make,
        Phase::Predict,
        &tiling(vec![], Some(vec![vec![]]), 1),
        &Keep::Sinks,
    )
    .unwrap_err();
    assert!(e.to_string().contains("asset tile 0 is empty"), "{e}");
}
