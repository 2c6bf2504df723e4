//! The node cache: what each change invalidates, corrupt entries, near-duplicate
//! keys, and outputs that are the same bits with and without the cache.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::cache::{CacheHandle, NodeCache};
use kf_dataflow::{Dag, DataflowTypes, Phase, RunContext, RunOptions};

/// Two assets of 120 1-minute bars, `close` and `volume`, written as CSV files;
/// `bump` is added to one close.
fn write_csv(dir: &Path, bump: f64) {
    for (a, base) in [("AAA", 100.0), ("BBB", 50.0)] {
        let mut s = String::from("t,close,volume\n");
        for k in 0..120 {
            let close = base + (k as f64 * 0.37).sin() + if k == 60 { bump } else { 0.0 };
            s.push_str(&format!(
                "2024-01-02 {:02}:{:02}:00,{close},{}\n",
                14 + k / 60,
                k % 60,
                100 + k
            ));
        }
        std::fs::write(dir.join(format!("{a}.csv")), s).unwrap();
    }
}

/// A graph: read -> returns -> (z-score, lags) -> combine; `window` is the z-score's.
fn config(dir: &Path, window: &str, lags: usize) -> String {
    format!(
        r#"
[md]
type = "csv"
files = "{dir}/*.csv"
timestamp_column = "t"
asset_from_file = "{{asset}}.csv"
tz = "UTC"

[dag]
type = "graph"
edges = [["read", "ret"], ["ret", "z"], ["z", "lag"]]

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

[dag.nodes.lag]
type = "lags"
cols = ["close.ret_0"]
num_lags = {lags}
"#,
        dir = dir.display()
    )
}

fn build(toml: &str) -> Dag {
    let config = Config::from_toml_str(toml, "cache.toml").unwrap();
    let types = DataflowTypes::default();
    let md = types.data.view(&config.section("md").unwrap()).unwrap();
    types
        .dag(&config.section("dag").unwrap(), Some(&md))
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Run {
    /// Per node: hits, misses, uncached in this run.
    counts: BTreeMap<String, (u64, u64, u64)>,
    sink: kf_frame::Frame,
}

fn run(dag: &mut Dag, cache: &Arc<NodeCache>) -> Run {
    let before = cache.stats();
    dag.use_cache(Some(CacheHandle {
        cache: Arc::clone(cache),
        origin: "test".into(),
    }));
    dag.reset();
    let out = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    let after = cache.stats();
    let counts = after
        .by_node
        .iter()
        .map(|(k, c)| {
            let b = before.by_node.get(k).cloned().unwrap_or_default();
            (
                k.clone(),
                (
                    c.hits - b.hits,
                    c.misses - b.misses,
                    c.uncached - b.uncached,
                ),
            )
        })
        .collect();
    Run {
        counts,
        sink: out.df_out("lag").unwrap().clone(),
    }
}

fn missed(r: &Run) -> Vec<&str> {
    r.counts
        .iter()
        .filter(|(_, c)| c.1 > 0 || c.2 > 0)
        .map(|(k, _)| k.as_str())
        .collect()
}

fn same_bits(a: &kf_frame::Frame, b: &kf_frame::Frame) -> bool {
    kf_dataflow::cache::frame_digest(a) == kf_dataflow::cache::frame_digest(b)
}

#[test]
fn each_change_misses_exactly_the_nodes_it_affects() {
    let data = tempfile::tempdir().unwrap();
    write_csv(data.path(), 0.0);
    let store = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    let base = config(data.path(), "10", 2);

    let cold = run(&mut build(&base), &cache);
    assert_eq!(missed(&cold), ["lag", "read", "ret", "z"]);
    let warm = run(&mut build(&base), &cache);
    assert!(missed(&warm).is_empty(), "{:?}", warm.counts);
    assert!(same_bits(&cold.sink, &warm.sink));
    // Only the sink was needed: it was loaded, the others not even read.
    let uncached = {
        let mut d = build(&base);
        d.reset();
        d.run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap()
    };
    assert!(same_bits(&cold.sink, uncached.df_out("lag").unwrap()));

    // A parameter of `z`: `z` and what follows it.
    let r = run(&mut build(&config(data.path(), "11", 2)), &cache);
    assert_eq!(missed(&r), ["lag", "z"]);
    // A parameter of the sink alone.
    let r = run(&mut build(&config(data.path(), "10", 3)), &cache);
    assert_eq!(missed(&r), ["lag"]);

    // One byte of one data file: the source and everything downstream.
    write_csv(data.path(), 0.5);
    let r = run(&mut build(&base), &cache);
    assert_eq!(missed(&r), ["lag", "read", "ret", "z"]);
    assert!(!same_bits(&r.sink, &cold.sink));
    // Back to the original bytes: everything hits again.
    write_csv(data.path(), 0.0);
    let r = run(&mut build(&base), &cache);
    assert!(missed(&r).is_empty(), "{:?}", r.counts);
}

#[test]
fn a_corrupt_or_truncated_entry_is_recomputed_never_used() {
    let data = tempfile::tempdir().unwrap();
    write_csv(data.path(), 0.0);
    let store = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    let toml = config(data.path(), "10", 2);
    let cold = run(&mut build(&toml), &cache);
    // Damage every entry: flip a byte in the middle of one, cut the others short.
    let mut entries: Vec<_> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kfc"))
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 4);
    for (i, p) in entries.iter().enumerate() {
        let mut bytes = std::fs::read(p).unwrap();
        if i == 0 {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x40;
        } else {
            bytes.truncate(bytes.len() - 7);
        }
        std::fs::write(p, bytes).unwrap();
    }
    let r = run(&mut build(&toml), &cache);
    assert!(same_bits(&r.sink, &cold.sink));
    // The sink's entry was needed, found damaged and recomputed.
    assert!(cache.stats().corrupt >= 1, "{:?}", cache.stats());
    assert_eq!(r.counts["lag"].1, 1, "{:?}", r.counts);
    // And the next run hits a good entry again.
    let r = run(&mut build(&toml), &cache);
    assert!(missed(&r).is_empty(), "{:?}", r.counts);
    assert!(same_bits(&r.sink, &cold.sink));
}

#[test]
fn near_duplicate_parameters_never_share_a_key() {
    // `1` vs `"1"`, `0.0` vs `-0.0`, NaN payloads: each pair gives two recipes.
    let recipe = |v: &str| {
        let c = Config::from_toml_str(&format!("[n]\nx = {v}\n"), "n.toml").unwrap();
        c.section("n").unwrap().canonical()
    };
    assert_ne!(recipe("1"), recipe("\"1\""));
    assert_ne!(recipe("1"), recipe("1.0"));
    assert_ne!(recipe("0.0"), recipe("-0.0"));
    assert_ne!(recipe("[1, 2]"), recipe("[2, 1]"));
    assert_ne!(recipe("{a = 1, b = 2}"), recipe("{b = 2, a = 1}"));
    assert_eq!(recipe("{ a = 1 }"), recipe("{a=1}"));
    let quiet = f64::NAN;
    let payload = f64::from_bits(quiet.to_bits() | 1);
    assert_ne!(
        kf_config::canonical_of(&quiet),
        kf_config::canonical_of(&payload)
    );
    assert_ne!(
        kf_config::canonical_of(&0.0f64),
        kf_config::canonical_of(&-0.0f64)
    );
    // In data: two in-memory sources that differ only in a NaN payload or the sign
    // of a zero have different fingerprints, so different keys.
    use kf_dataflow::Node;
    let frame = |v: f64| {
        kf_frame::Frame::new(
            vec![1],
            vec![1],
            vec!["A".into()],
            vec![("x".into(), vec![v])],
        )
        .unwrap()
    };
    let fp = |v: f64| {
        kf_dataflow::nodes::sources::FrameSource::new("s", frame(v))
            .data_fingerprint()
            .unwrap()
    };
    assert_ne!(fp(quiet), fp(payload));
    assert_ne!(fp(0.0), fp(-0.0));
    assert_eq!(fp(1.0), fp(1.0));
}

#[test]
fn a_run_that_continues_after_a_cached_run_is_refused_until_reset() {
    let data = tempfile::tempdir().unwrap();
    write_csv(data.path(), 0.0);
    let store = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    let toml = config(data.path(), "10", 2);
    run(&mut build(&toml), &cache);
    let mut dag = build(&toml);
    run(&mut dag, &cache); // all hits: the nodes carry nothing
    let e = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("reset it first"), "{e}");
    dag.reset();
    assert!(
        dag.run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn the_size_bound_evicts_the_least_recently_used_entries() {
    let data = tempfile::tempdir().unwrap();
    write_csv(data.path(), 0.0);
    let store = tempfile::tempdir().unwrap();
    // Room for about two entries of this DAG.
    let probe = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    run(&mut build(&config(data.path(), "10", 2)), &probe);
    let sizes: Vec<u64> = probe.entries().unwrap().iter().map(|e| e.bytes).collect();
    probe.clear().unwrap();
    let bound = sizes.iter().max().unwrap() * 2 + 1;
    let cache = Arc::new(NodeCache::open(store.path(), bound).unwrap());
    run(&mut build(&config(data.path(), "10", 2)), &cache);
    let total: u64 = cache.entries().unwrap().iter().map(|e| e.bytes).sum();
    assert!(total <= bound, "{total} > {bound}");
    assert!(cache.stats().evicted >= 1);
    // The newest entry (the sink, stored last) is kept.
    let kept: Vec<String> = cache
        .entries()
        .unwrap()
        .iter()
        .filter_map(|e| e.meta.as_ref().map(|m| m.node.clone()))
        .collect();
    assert!(kept.contains(&"lag".to_string()), "{kept:?}");
}

#[test]
fn an_as_of_time_misses_the_source_and_what_follows_and_reads_other_versions() {
    let data = tempfile::tempdir().unwrap();
    // The 14:01 bar is revised at 15:00.
    std::fs::write(
        data.path().join("AAA.csv"),
        "t,k,close\n\
         2024-01-02 14:00:00,2024-01-02 14:00:00,100\n\
         2024-01-02 14:01:00,2024-01-02 14:01:00,101\n\
         2024-01-02 14:01:00,2024-01-02 15:00:00,111\n\
         2024-01-02 14:02:00,2024-01-02 14:02:00,102\n",
    )
    .unwrap();
    let toml = |as_of: &str| {
        format!(
            r#"
[md]
type = "csv"
files = "{dir}/*.csv"
timestamp_column = "t"
knowledge_column = "k"
asset_from_file = "{{asset}}.csv"
tz = "UTC"

[dag]
type = "graph"

[dag.nodes.read]
type = "market_data"
as_of = "{as_of}"

[dag.nodes.ret]
type = "compute_ret_0"
cols = ["close"]

[dag.nodes.lag]
type = "lags"
cols = ["close.ret_0"]
num_lags = 1
"#,
            dir = data.path().display()
        )
    };
    let store = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    let early = run(&mut build(&toml("2024-01-02 14:30")), &cache);
    assert_eq!(missed(&early), ["lag", "read", "ret"]);
    let again = run(&mut build(&toml("2024-01-02 14:30")), &cache);
    assert!(missed(&again).is_empty(), "{:?}", again.counts);
    let late = run(&mut build(&toml("2024-01-02 16:00")), &cache);
    assert_eq!(missed(&late), ["lag", "read", "ret"]);
    let close = |r: &Run| r.sink.value("close", "AAA", 1).unwrap();
    assert_eq!(close(&early), 101.0);
    assert_eq!(close(&late), 111.0);
}

#[test]
fn a_bad_as_of_is_a_located_error() {
    let config = Config::from_toml_str(
        "[md]\ntype = \"synthetic\"\n[dag]\ntype = \"graph\"\n\
         [dag.nodes.read]\ntype = \"market_data\"\nas_of = \"yesterday\"\n",
        "asof.toml",
    )
    .unwrap();
    let types = DataflowTypes::default();
    let md = types.data.view(&config.section("md").unwrap()).unwrap();
    let e = types
        .dag(&config.section("dag").unwrap(), Some(&md))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("asof.toml")
            && e.contains("dag.nodes.read.as_of")
            && e.contains("is not a time"),
        "{e}"
    );
}

/// Single flight: a run that needs an output another run is computing (it holds the
/// key's lock) waits, then loads the entry the other run stored instead of
/// computing it.
#[test]
fn a_run_waits_for_an_output_being_computed_and_loads_it() {
    let data = tempfile::tempdir().unwrap();
    write_csv(data.path(), 0.0);
    let store = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(store.path(), u64::MAX).unwrap());
    let toml = config(data.path(), "10", 2);
    let cold = run(&mut build(&toml), &cache);
    let entry_of = |node: &str| {
        cache
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.meta.as_ref().is_some_and(|m| m.node == node))
            .map(|e| e.key)
            .unwrap()
    };
    let (z, lag) = (entry_of("z"), entry_of("lag"));
    let path = |k: &str| store.path().join(format!("{k}.kfc"));
    // `z` and its consumer are gone, so the next run needs `z`; another "run" holds
    // `z`'s key and stores the entry only later.
    let z_bytes = std::fs::read(path(&z)).unwrap();
    std::fs::remove_file(path(&z)).unwrap();
    std::fs::remove_file(path(&lag)).unwrap();
    let key = kf_dataflow::cache::Key::from_hex(&z).unwrap();
    let held = cache.lock(&key, std::time::Duration::ZERO).unwrap();
    // Nobody else gets it meanwhile.
    assert!(
        cache
            .lock(&key, std::time::Duration::from_millis(30))
            .is_none()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let target = path(&z);
        std::thread::spawn(move || {
            rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::fs::write(target, z_bytes).unwrap();
            drop(held);
        })
    };
    tx.send(()).unwrap();
    let r = run(&mut build(&toml), &cache);
    writer.join().unwrap();
    assert_eq!(r.counts["z"], (1, 0, 0), "{:?}", r.counts);
    assert_eq!(r.counts["lag"], (0, 1, 0), "{:?}", r.counts);
    assert!(same_bits(&r.sink, &cold.sink));
}
