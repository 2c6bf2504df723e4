//! Future-peeking detection: every library node and the replay pass; each
//! deliberately broken node is caught by the perturbation test (when it claims the
//! causal knowledge time) and by the knowledge-time audit of a replay (when it
//! reports the knowledge time of what it used), and named.

use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::check::{CheckOptions, Subject, Verdict, replay_check, run_checks};
use kf_dataflow::nodes::sources::{FrameSource, MarketDataParams, MarketDataSource};
use kf_dataflow::peeking::{perturbation_test, spread_times};
use kf_dataflow::replay::{ReplayOptions, knowledge_audit, replay};
use kf_dataflow::tiling::{Tiling, run_tiled};
use kf_dataflow::{Dag, DataflowTypes, Keep, Phase, Result};
use kf_datapull::{
    Clock, Historical, MarketData, ReplaySettings, Replayed, SimulatedClock, SyntheticBars,
    SyntheticParams,
};
use kf_frame::{Duration, Frame};

use crate::broken::{Broken, FLAWS};
use crate::common::MIN;

fn params() -> SyntheticParams {
    SyntheticParams {
        assets: 3,
        bars: 2 * 390,
        calendar: "us_equity".into(),
        gap_prob: 0.05,
        late_prob: 0.05,
        late_delay: "3min".into(),
        seed: 21,
        ..SyntheticParams::default()
    }
}

fn input() -> Frame {
    SyntheticBars::new(params()).unwrap().generate().unwrap()
}

fn with_broken(source: Box<dyn kf_dataflow::Node>, b: Broken) -> Result<Dag> {
    let mut d = Dag::new();
    d.add_node(source)?;
    d.append_to_tail(Box::new(b))?;
    Ok(d)
}

#[test]
fn the_perturbation_test_names_every_broken_node() {
    let input = input();
    let times = spread_times(&input, 3);
    for flaw in FLAWS {
        let make = || {
            with_broken(
                Box::new(FrameSource::new("read", input.clone())),
                Broken::new("broken", flaw, "close", false),
            )
        };
        let peek = perturbation_test(&make, Phase::Predict, &times)
            .unwrap()
            .unwrap_or_else(|| panic!("{flaw:?} was not caught"));
        assert_eq!(peek.divergence.node.as_str(), "broken", "{flaw:?}: {peek}");
        assert!(peek.to_string().contains("future peeking"), "{peek}");
    }
}

/// A replayed view of the synthetic bars on a simulated clock.
fn replayed() -> (Arc<dyn MarketData>, Arc<dyn Clock>) {
    let bars = SyntheticBars::new(params()).unwrap();
    let t0 = bars.generate().unwrap().end_ts()[0];
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(t0 - MIN));
    let view = Replayed::new(
        Historical::new(Arc::new(bars)),
        Arc::clone(&clock),
        ReplaySettings {
            delay: Duration(0),
            freq: Duration(MIN),
            offset: Duration(0),
            poll: Duration(1_000_000_000),
        },
    )
    .unwrap();
    (Arc::new(view), clock)
}

#[test]
fn the_knowledge_time_audit_names_every_broken_node() {
    let input = input();
    for flaw in FLAWS {
        let broken = || Broken::new("broken", flaw, "close", true);
        let make = || with_broken(Box::new(FrameSource::new("read", input.clone())), broken());
        let order = make().unwrap().topological_order();
        let batch = run_tiled(&make, Phase::Predict, &Tiling::batch(), &Keep::All).unwrap();
        let (view, clock) = replayed();
        let source = MarketDataSource::new("read", Arc::clone(&view), MarketDataParams::default());
        let mut dag = with_broken(Box::new(source), broken()).unwrap();
        let r = replay(
            &mut dag,
            Phase::Predict,
            view.as_ref(),
            &clock,
            input.end_ts(),
            &Keep::All,
            ReplayOptions::default(),
        )
        .unwrap();
        let late = knowledge_audit(&order, &batch, &r)
            .unwrap_or_else(|| panic!("{flaw:?} was not caught"));
        assert_eq!(late.node.as_str(), "broken", "{flaw:?}: {late}");
        assert!(late.knowledge_ts > late.decided, "{late}");
    }
}

#[test]
fn a_replay_waits_for_late_bars_and_records_decision_times() {
    let input = input();
    let (view, clock) = replayed();
    let mut dag = Dag::new();
    dag.add_node(Box::new(MarketDataSource::new(
        "read",
        Arc::clone(&view),
        MarketDataParams::default(),
    )))
    .unwrap();
    let r = replay(
        &mut dag,
        Phase::Predict,
        view.as_ref(),
        &clock,
        input.end_ts(),
        &Keep::All,
        ReplayOptions::default(),
    )
    .unwrap();
    let got = &r.outputs[&"read".into()]["df_out"];
    assert!(got.bit_eq(&input), "{:?}", got.first_difference(&input));
    let decided: Vec<i64> = r.decided[&"read".into()]
        .iter()
        .map(|d| d.decided)
        .collect();
    // Each bar is decided once it is known, never before; a late bar holds up the
    // bars after it, and time never goes back.
    let mut late = 0;
    for (i, (&tau, &kt)) in decided.iter().zip(input.knowledge_ts()).enumerate() {
        assert!(tau >= kt, "row {i}: decided {tau} before known {kt}");
        if kt > input.end_ts()[i] {
            late += 1;
        }
    }
    assert!(late > 0, "the data should have late bars");
    assert!(decided.windows(2).all(|w| w[0] <= w[1]));
    // A bar the view never gets times out, naming the bar.
    let mut dag = Dag::new();
    dag.add_node(Box::new(MarketDataSource::new(
        "read",
        Arc::clone(&view),
        MarketDataParams::default(),
    )))
    .unwrap();
    let last = *input.end_ts().last().unwrap();
    let opts = ReplayOptions {
        timeout: 10 * MIN,
        poll: MIN,
    };
    let e = replay(
        &mut dag,
        Phase::Predict,
        view.as_ref(),
        &clock,
        &[last + 7 * MIN],
        &Keep::All,
        opts,
    )
    .unwrap_err();
    assert!(e.to_string().contains("was not known by"), "{e}");
}

fn config(name: &str) -> Config {
    let path = format!("{}/../../configs/{name}", env!("CARGO_MANIFEST_DIR"));
    Config::from_file(&path).unwrap()
}

#[test]
fn every_library_node_passes_every_check() {
    let cfg = config("library.toml");
    let root = cfg.root();
    let types = DataflowTypes::default();
    let md: Arc<dyn MarketData> = types
        .data
        .view(&root.section("market_data").unwrap())
        .unwrap();
    let make_on = |view: Arc<dyn MarketData>| -> Result<Dag> {
        Ok(types.dag(&root.section("dag")?, Some(&view))?)
    };
    let make = || make_on(Arc::clone(&md));
    let subject = Subject::fit(&make).unwrap();
    let kinds: std::collections::BTreeSet<String> = {
        let d = make().unwrap();
        d.ids()
            .iter()
            .map(|id| d.node(id.as_str()).unwrap().kind().to_string())
            .collect()
    };
    // Every node type of the library but the two other sources (frame, arma) and
    // the tick nodes, which take trade ticks, not bars: the same checks pass them
    // in `microstructure::the_tick_pipeline_tiles_streams_and_is_causal`.
    let library = kf_dataflow::builtin_nodes();
    let ticks = ["tick_bars", "bvc", "vpin", "arrival_spectrum"];
    // The recurrent forecasters exist with the `nn` feature only; the same checks
    // pass them in `recurrent::an_lstm_in_a_dag_passes_every_check`.
    let nn = ["lstm", "gru"];
    for name in library.names() {
        assert!(
            kinds.contains(name)
                || name == "frame"
                || name == "arma"
                || ticks.contains(&name)
                || nn.contains(&name),
            "{name} is not in configs/library.toml"
        );
    }
    let opts = CheckOptions {
        tilings: 4,
        ..CheckOptions::default()
    };
    let (batch, results) = run_checks(&subject, &opts).unwrap();
    for r in &results {
        // Fast streaming does not apply: these nodes have no fast path.
        let moot = r.name == "fast streaming" && matches!(r.verdict, Verdict::NotApplicable(_));
        assert!(r.verdict == Verdict::Pass || moot, "{r}");
    }
    // The replay over a replayed view of the same source.
    let source = types
        .data
        .source(&root.section("market_data").unwrap())
        .unwrap();
    let bars = batch[&"prices".into()]["df_out"].end_ts().to_vec();
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(bars[0] - MIN));
    let view: Arc<dyn MarketData> = Arc::new(
        Replayed::new(
            Historical::new(Arc::from(source)),
            Arc::clone(&clock),
            ReplaySettings {
                delay: Duration(0),
                freq: Duration(MIN),
                offset: Duration(0),
                poll: Duration(1_000_000_000),
            },
        )
        .unwrap(),
    );
    let r = replay_check(&subject, &make_on, view, &clock, &bars, &batch);
    assert_eq!(r.verdict, Verdict::Pass, "{r}");
}
