//! Runs over data that grows: a run over a store that gained bars computes only the
//! new rows from its checkpoint, and its outputs are the bits a run from scratch
//! over all the data gives; any change of the old rows, of the DAG or of its
//! segments falls back to a full run, saying why.

use std::path::Path;
use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::cache::{CacheHandle, NodeCache};
use kf_dataflow::{
    Dag, DataflowTypes, Growth, Incremental, Keep, Phase, RunContext, RunOptions, RunResult,
};
use kf_datapull::StoreOptions;
use kf_datapull::parquet_store::write_frame;
use kf_frame::Frame;

const MINUTE: i64 = 60_000_000_000;
const T0: i64 = 1_704_205_800_000_000_000; // 2024-01-02 14:30 UTC

/// `bars` minute bars of three assets (`close`, `volume`); `bump` is added to the
/// close of AAA at bar `at`.
fn bars(bars: usize, bump: Option<(usize, f64)>) -> Frame {
    let end: Vec<i64> = (0..bars as i64).map(|k| T0 + k * MINUTE).collect();
    let assets = ["AAA", "BBB", "CCC"];
    let mut close = Vec::with_capacity(bars * 3);
    let mut volume = Vec::with_capacity(bars * 3);
    for k in 0..bars {
        for (a, base) in [100.0, 50.0, 20.0].iter().enumerate() {
            let mut c = base + ((k * (a + 2)) as f64 * 0.37).sin() + k as f64 * 0.01;
            if a == 0 && bump.is_some_and(|(at, _)| at == k) {
                c += bump.map_or(0.0, |b| b.1);
            }
            close.push(c);
            volume.push(100.0 + ((k + a) % 17) as f64);
        }
    }
    Frame::new(
        end.clone(),
        end,
        assets.iter().map(|s| s.to_string()).collect(),
        vec![("close".into(), close), ("volume".into(), volume)],
    )
    .unwrap()
}

/// Writes `frame` as the store, cut into blocks of 50 bars (so the old end falls
/// inside a block that the appended bars complete).
fn store(path: &Path, frame: &Frame) {
    write_frame(
        frame,
        path,
        StoreOptions {
            time_block: 50,
            ..StoreOptions::default()
        },
    )
    .unwrap();
}

/// read -> returns -> (rolling z-score, ema) -> lags.
fn build(path: &Path, window: usize) -> Dag {
    let toml = format!(
        r#"
[md]
type = "parquet"
path = {path:?}

[dag]
type = "graph"
edges = [["read", "ret"], ["ret", "z"], ["z", "ema"], ["ema", "lag"]]

[dag.nodes.read]
type = "market_data"

[dag.nodes.ret]
type = "compute_ret_0"
cols = ["close"]

[dag.nodes.z]
type = "rolling"
stat = "zscore"
cols = ["close.ret_0"]
window = {window}

[dag.nodes.ema]
type = "ema"
cols = ["close.ret_0.zscore"]
tau = 5.0

[dag.nodes.lag]
type = "lags"
cols = ["close.ret_0.zscore"]
num_lags = 3
"#,
        path = path.display().to_string()
    );
    let config = Config::from_toml_str(&toml, "growing.toml").unwrap();
    let types = DataflowTypes::default();
    let md = types.data.view(&config.section("md").unwrap()).unwrap();
    types
        .dag(&config.section("dag").unwrap(), Some(&md))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn handle(cache: &Arc<NodeCache>) -> CacheHandle {
    CacheHandle {
        cache: Arc::clone(cache),
        origin: "test".into(),
    }
}

/// One run from a reset DAG over growing data; what it did and its outputs.
fn grow(path: &Path, cache: &Arc<NodeCache>, mode: Incremental, keep: Keep) -> (Growth, RunResult) {
    let mut dag = build(path, 12);
    dag.use_cache(Some(handle(cache)));
    dag.grow_incrementally(Some(mode));
    dag.reset();
    let r = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions {
                keep,
                ..RunOptions::default()
            },
        )
        .unwrap();
    let mut g = dag.take_growth();
    assert_eq!(g.len(), 1, "{g:?}");
    (g.remove(0), r)
}

/// The outputs of a plain run from scratch (no cache).
fn scratch(path: &Path, keep: Keep) -> RunResult {
    let mut dag = build(path, 12);
    dag.run(
        &RunContext::new(Phase::Predict, None),
        &RunOptions {
            keep,
            ..RunOptions::default()
        },
    )
    .unwrap()
}

fn same_bits(a: &Frame, b: &Frame) -> bool {
    kf_dataflow::cache::frame_digest(a) == kf_dataflow::cache::frame_digest(b)
}

fn assert_same(a: &RunResult, b: &RunResult) {
    assert_eq!(
        a.outputs.keys().collect::<Vec<_>>(),
        b.outputs.keys().collect::<Vec<_>>()
    );
    for (id, ports) in &a.outputs {
        for (port, f) in ports {
            let g = &b.outputs[id][port];
            assert!(
                same_bits(f, g),
                "{id}.{port}: {} rows vs {} rows",
                f.n_rows(),
                g.n_rows()
            );
        }
    }
}

fn keep_some() -> Keep {
    Keep::Nodes(["z".into(), "ema".into()].into_iter().collect())
}

#[test]
fn appended_bars_are_computed_alone_and_the_whole_is_the_full_runs_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
    let (old, grown) = (317, 317 + 95);
    store(&path, &bars(old, None));
    let (g, first) = grow(&path, &cache, Incremental::Whole, keep_some());
    assert!(
        matches!(&g, Growth::Full(why) if why.contains("no checkpoint")),
        "{g:?}"
    );
    assert_same(&first, &scratch(&path, keep_some()));

    store(&path, &bars(grown, None));
    let (g, whole) = grow(&path, &cache, Incremental::Whole, keep_some());
    let old_end = T0 + (old as i64 - 1) * MINUTE;
    let new_end = T0 + (grown as i64 - 1) * MINUTE;
    assert_eq!(
        g,
        Growth::Continued {
            from: old_end,
            to: new_end
        }
    );
    // Only the new bars went through the nodes.
    let rows: Vec<usize> = whole.timings.iter().map(|t| t.rows).collect();
    assert_eq!(rows, vec![grown - old; 5], "{:?}", whole.timings);
    assert_same(&whole, &scratch(&path, keep_some()));

    // Unchanged data: nothing runs, the same outputs.
    let (g, again) = grow(&path, &cache, Incremental::Whole, keep_some());
    assert_eq!(g, Growth::Unchanged { at: new_end });
    assert!(again.timings.is_empty());
    assert_same(&again, &whole);

    // Grown again, asking for the new rows only.
    let more = grown + 40;
    store(&path, &bars(more, None));
    let (g, new) = grow(&path, &cache, Incremental::NewRows, keep_some());
    assert_eq!(
        g,
        Growth::Continued {
            from: new_end,
            to: T0 + (more as i64 - 1) * MINUTE
        }
    );
    let full = scratch(&path, keep_some());
    for (id, ports) in &new.outputs {
        for (port, f) in ports {
            let want = full.outputs[id][port].slice_time(new_end + 1, i64::MAX);
            assert_eq!(f.n_rows(), 40);
            assert!(same_bits(f, &want), "{id}.{port}");
        }
    }
}

#[test]
fn a_change_of_an_old_row_runs_everything_again() {
    // Bar 10 lies in a block wholly before the old end (checked by the footer's
    // checksums); bar 310 in the block the old end cuts (checked by reading it).
    for at in [10, 310] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.parquet");
        let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
        store(&path, &bars(317, None));
        grow(&path, &cache, Incremental::Whole, Keep::Sinks);
        store(&path, &bars(400, Some((at, 1e-9))));
        let (g, r) = grow(&path, &cache, Incremental::Whole, Keep::Sinks);
        assert!(
            matches!(&g, Growth::Full(why) if why.contains("source `read`") && why.contains("changed")),
            "bar {at}: {g:?}"
        );
        assert_same(&r, &scratch(&path, Keep::Sinks));
    }
}

#[test]
fn other_parameters_keep_or_a_lost_segment_start_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
    store(&path, &bars(317, None));
    grow(&path, &cache, Incremental::Whole, Keep::Sinks);
    store(&path, &bars(400, None));

    // Another window: another lineage, so no checkpoint.
    let mut dag = build(&path, 13);
    dag.use_cache(Some(handle(&cache)));
    dag.grow_incrementally(Some(Incremental::Whole));
    dag.run(
        &RunContext::new(Phase::Predict, None),
        &RunOptions::default(),
    )
    .unwrap();
    assert!(matches!(&dag.take_growth()[..], [Growth::Full(why)] if why.contains("no checkpoint")),);

    // Other kept outputs than the checkpoint's.
    let (g, r) = grow(&path, &cache, Incremental::Whole, keep_some());
    assert!(
        matches!(&g, Growth::Full(why) if why.contains("other nodes")),
        "{g:?}"
    );
    assert_same(&r, &scratch(&path, keep_some()));

    // Every segment removed: the whole outputs cannot be joined, so a full run.
    store(&path, &bars(450, None));
    for e in cache.entries().unwrap() {
        if e.meta.is_some_and(|m| m.kind == "segment") {
            std::fs::remove_file(cache.dir().join(format!("{}.kfc", e.key))).unwrap();
        }
    }
    let (g, r) = grow(&path, &cache, Incremental::Whole, keep_some());
    assert!(
        matches!(&g, Growth::Full(why) if why.contains("segment")),
        "{g:?}"
    );
    assert_same(&r, &scratch(&path, keep_some()));
}

#[test]
fn a_node_without_a_recipe_says_why_the_run_cannot_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
    store(&path, &bars(200, None));
    let mut dag = build(&path, 12);
    // A node added by hand has no recipe.
    let node = kf_dataflow::nodes::sources::FrameSource::new("extra", bars(5, None));
    dag.add_node(Box::new(node)).unwrap();
    dag.use_cache(Some(handle(&cache)));
    dag.grow_incrementally(Some(Incremental::Whole));
    dag.run(
        &RunContext::new(Phase::Predict, None),
        &RunOptions::default(),
    )
    .unwrap();
    let g = dag.take_growth();
    assert!(
        matches!(&g[..], [Growth::Full(why)] if why.contains("`extra`") && why.contains("no recipe")),
        "{g:?}"
    );
}

/// A forward target (a shift by -2 rows) fills its last rows only when later bars
/// come, so a run with one never continues: it computes every bar, saying why, and
/// its outputs are a run from scratch's.
#[test]
fn a_dag_that_looks_ahead_computes_every_bar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
    let toml = |path: &Path| {
        format!(
            "[md]\ntype = \"parquet\"\npath = {:?}\n[dag]\ntype = \"graph\"\n\
             edges = [[\"read\", \"fwd\"]]\n[dag.nodes.read]\ntype = \"market_data\"\n\
             [dag.nodes.fwd]\ntype = \"shift\"\ncols = [\"close\"]\nperiods = -2\n",
            path.display().to_string()
        )
    };
    let build = |path: &Path| {
        let config = Config::from_toml_str(&toml(path), "fwd.toml").unwrap();
        let types = DataflowTypes::default();
        let md = types.data.view(&config.section("md").unwrap()).unwrap();
        types
            .dag(&config.section("dag").unwrap(), Some(&md))
            .unwrap()
    };
    let run = |cached: bool| {
        let mut dag = build(&path);
        if cached {
            dag.use_cache(Some(handle(&cache)));
            dag.grow_incrementally(Some(Incremental::Whole));
        }
        let r = dag
            .run(
                &RunContext::new(Phase::Predict, None),
                &RunOptions::default(),
            )
            .unwrap();
        (dag.take_growth(), r.df_out("fwd").unwrap().clone())
    };
    store(&path, &bars(100, None));
    run(true);
    store(&path, &bars(130, None));
    let (g, grown) = run(true);
    assert!(
        matches!(&g[..], [Growth::Full(why)] if why.contains("`fwd`") && why.contains("2 rows ahead")),
        "{g:?}"
    );
    assert!(same_bits(&grown, &run(false).1));
    // Row 98, one of the old end's last two rows, holds the close of row 100: a value
    // a run that had stopped at row 99 could not have given it.
    let fwd = grown
        .features()
        .iter()
        .position(|n| n.starts_with("close") && n != "close")
        .unwrap();
    let close = grown.feature("close").unwrap();
    assert_eq!(
        grown.feature_at(fwd).values()[98 * 3].to_bits(),
        close.values()[100 * 3].to_bits()
    );
}

/// A damaged checkpoint is reported (a full run, saying so) and replaced; unchanged
/// data asked for its new rows gives the outputs with no rows.
#[test]
fn a_damaged_checkpoint_runs_everything_and_unchanged_data_has_no_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let cache = Arc::new(NodeCache::open(dir.path().join("cache"), 1 << 30).unwrap());
    store(&path, &bars(150, None));
    grow(&path, &cache, Incremental::NewRows, Keep::Sinks);
    let (g, none) = grow(&path, &cache, Incremental::NewRows, Keep::Sinks);
    assert_eq!(
        g,
        Growth::Unchanged {
            at: T0 + 149 * MINUTE
        }
    );
    let lag = none.df_out("lag").unwrap();
    assert_eq!(lag.n_rows(), 0);
    assert_eq!(
        lag.features(),
        scratch(&path, Keep::Sinks)
            .df_out("lag")
            .unwrap()
            .features()
    );
    let checkpoint = cache
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.meta.as_ref().is_some_and(|m| m.kind == "checkpoint"))
        .unwrap();
    let file = cache.dir().join(format!("{}.kfc", checkpoint.key));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    store(&path, &bars(180, None));
    let (g, r) = grow(&path, &cache, Incremental::Whole, Keep::Sinks);
    assert!(
        matches!(&g, Growth::Full(why) if why.contains("checkpoint was unreadable")),
        "{g:?}"
    );
    assert_same(&r, &scratch(&path, Keep::Sinks));
    // The full run wrote a new checkpoint, which the next run continues from.
    store(&path, &bars(200, None));
    let (g, r) = grow(&path, &cache, Incremental::Whole, Keep::Sinks);
    assert!(matches!(g, Growth::Continued { .. }), "{g:?}");
    assert_same(&r, &scratch(&path, Keep::Sinks));
}
