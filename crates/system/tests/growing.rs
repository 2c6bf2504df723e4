//! Systems over growing data: a run with a cache continues from the last run's
//! checkpoint when the data only gained bars, and its result is a full rerun's, to
//! the bit; anything else that changed runs every decision again, and says why.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{config, fingerprint, with_processor, write_days};

use kf_config::Config;
use kf_dataflow::Growth;
use kf_dataflow::cache::{CacheHandle, NodeCache};
use kf_system::{Registries, System, SystemRun};

const CROSS_SECTIONAL: &str = "[system.processor]\ntype = \"cross_sectional\"\n";
const THRESHOLD: &str = "[system.processor]\ntype = \"threshold\"\nlong_above = 0.1\n\
     short_below = -0.1\nposition_size = 5000.0\nmax_positions = 3\nstop_loss = 0.02\n";

const TRAJECTORY: &str = "[system.processor]\ntype = \"trajectory\"\ntarget_gmv = 100000.0\n\
     max_assets = 3\nmin_periods = 5\ncost = 0.0001\n";

fn handle(dir: &Path) -> CacheHandle {
    CacheHandle {
        cache: Arc::new(NodeCache::open(dir, u64::MAX).unwrap()),
        origin: "growing.toml".into(),
    }
}

fn plain(config: &Config) -> SystemRun {
    System::from_config(config).unwrap().run().unwrap()
}

fn growing(config: &Config, cache: &CacheHandle) -> (SystemRun, Growth) {
    System::run_growing(Registries::builtin(), config, None, cache).unwrap()
}

#[test]
fn systems_over_data_grown_by_a_day_make_only_the_new_decisions_with_a_full_runs_bits() {
    for processor in [CROSS_SECTIONAL, THRESHOLD, TRAJECTORY] {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("bars.csv");
        let cache = handle(&dir.path().join("cache"));
        let config = config(&csv, processor);
        write_days(&csv, 2);
        let (first, g) = growing(&config, &cache);
        assert_eq!(
            g,
            Growth::Full("no checkpoint of this system yet".into()),
            "{processor}"
        );
        assert_eq!(fingerprint(&first), fingerprint(&plain(&config)));
        let day2_end = *first.bars.last().map(|b| &b.ts).unwrap();
        // Positions are open at the checkpoint: the processor's state matters.
        assert!(first.holdings.iter().any(|&h| h != 0.0), "{processor}");

        write_days(&csv, 3);
        let (grown, g) = growing(&config, &cache);
        let full = plain(&config);
        let day3_end = full.bars.last().unwrap().ts;
        assert_eq!(
            g,
            Growth::Continued {
                from: day2_end,
                to: day3_end
            },
            "{processor}"
        );
        assert!(full.stats.fills > 20, "the system trades: {:?}", full.stats);
        assert!(full.bars.len() > first.bars.len() + 70);
        assert_eq!(fingerprint(&grown), fingerprint(&full), "{processor}");

        // Nothing new: nothing decided, the same run.
        let (again, g) = growing(&config, &cache);
        assert_eq!(g, Growth::Unchanged { at: day3_end });
        assert_eq!(fingerprint(&again), fingerprint(&full));

        // Another day: continued again, over two history segments.
        write_days(&csv, 4);
        let (grown, g) = growing(&config, &cache);
        assert!(
            matches!(g, Growth::Continued { from, .. } if from == day3_end),
            "{g:?}"
        );
        assert_eq!(
            fingerprint(&grown),
            fingerprint(&plain(&config)),
            "{processor}"
        );
    }
}

/// Appends a day of bars for an asset that the earlier days do not have.
fn add_new_asset_day(path: &Path, day: usize) {
    let mut s = std::fs::read_to_string(path).unwrap();
    for m in 0..390u32 {
        let (h, min) = (14 + (31 + m) / 60, (31 + m) % 60);
        s.push_str(&format!(
            "2024-01-{:02} {h:02}:{min:02},NEW,{:.4},100\n",
            2 + day,
            20.0 + f64::from(m % 7) * 0.01
        ));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn a_new_asset_in_a_csv_or_a_lost_history_segment_runs_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    let cache_dir = dir.path().join("cache");
    let cache = handle(&cache_dir);
    let config = config(&csv, CROSS_SECTIONAL);
    write_days(&csv, 2);
    growing(&config, &cache);

    // A new asset in the new day: the system's asset slots change. The CSV
    // source's rows up to the checkpoint gain the asset's (empty) column.
    write_days(&csv, 3);
    add_new_asset_day(&csv, 2);
    let (run, g) = growing(&config, &cache);
    assert_eq!(
        g,
        Growth::Full("the data up to 2024-01-03T21:00:00Z changed since the checkpoint".into())
    );
    assert_eq!(run.assets.len(), 5);
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));

    // The history the checkpoint lists was evicted: the records cannot be whole.
    for e in cache.cache.entries().unwrap() {
        if e.meta.is_some_and(|m| m.kind == "system history") {
            std::fs::remove_file(cache_dir.join(format!("{}.kfc", e.key))).unwrap();
        }
    }
    let (run, g) = growing(&config, &cache);
    let Growth::Full(why) = g else {
        panic!("{g:?}")
    };
    assert!(
        why.starts_with("a part of its history is not in the cache any more"),
        "{why}"
    );
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));
}

#[test]
fn a_changed_old_bar_a_damaged_checkpoint_or_a_replayed_clock_run_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    let cache_dir = dir.path().join("cache");
    let cache = handle(&cache_dir);
    let config = config(&csv, THRESHOLD);
    write_days(&csv, 2);
    growing(&config, &cache);

    // An old bar changes (and a day is added): every decision again, from the data.
    write_days(&csv, 3);
    let text = std::fs::read_to_string(&csv).unwrap();
    let line = text.lines().nth(10).unwrap().to_string();
    // The volume field of an old row: the prices, and so the forecasts, stay.
    let (head, _) = line.rsplit_once(',').unwrap();
    let changed = format!("{head},999");
    assert_ne!(line, changed);
    std::fs::write(&csv, text.replacen(&line, &changed, 1)).unwrap();
    let (run, g) = growing(&config, &cache);
    let Growth::Full(why) = g else {
        panic!("{g:?}")
    };
    assert!(
        why.starts_with("the data up to 2024-01-03T21:00:00Z changed"),
        "{why}"
    );
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));

    // A damaged checkpoint is reported and replaced.
    for entry in std::fs::read_dir(&cache_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "kfc") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let (run, g) = growing(&config, &cache);
    let Growth::Full(why) = g else {
        panic!("{g:?}")
    };
    assert!(why.starts_with("its checkpoint was unreadable"), "{why}");
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));
    let (_, g) = growing(&config, &cache);
    assert!(matches!(g, Growth::Unchanged { .. }), "{g:?}");

    // A replayed clock decides at times the machine sets: never continued.
    let replayed = Config::from_toml_str(
        &format!(
            "{}\n[system.clock]\ntype = \"replayed\"\nspeed = 1e9\n",
            config.to_toml_string()
        ),
        "replayed.toml",
    )
    .unwrap();
    let (_, g) = growing(&replayed, &cache);
    assert_eq!(
        g,
        Growth::Full(
            "the system cannot continue runs: its clock is not simulated (a replayed or wall \
             clock decides at times the machine sets)"
                .into()
        )
    );
}

#[test]
fn a_processor_that_cannot_save_its_state_runs_every_decision_and_says_so() {
    use kf_system::{Decide, ForecastProcessor};
    #[derive(Debug)]
    struct Forgetful;
    impl ForecastProcessor for Forgetful {
        fn kind(&self) -> &'static str {
            "forgetful"
        }
        fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
            for (o, f) in orders.iter_mut().zip(input.forecast) {
                *o = if f.is_finite() { f.signum() } else { 0.0 };
            }
        }
        fn reset(&mut self) {}
    }
    let types = with_processor("forgetful", || Box::new(Forgetful));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    write_days(&csv, 2);
    let cache = handle(&dir.path().join("cache"));
    let config = config(&csv, "[system.processor]\ntype = \"forgetful\"\n");
    for _ in 0..2 {
        let (_, g) = System::run_growing(&types, &config, None, &cache).unwrap();
        let Growth::Full(why) = g else {
            panic!("{g:?}")
        };
        assert!(
            why.ends_with(
                "no checkpoint was written: the `forgetful` processor cannot save what it carries"
            ),
            "{why}"
        );
    }
}

#[test]
fn a_system_that_refits_in_the_loop_continues_with_its_learned_state_and_fit_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    let cache = handle(&dir.path().join("cache"));
    let text = format!(
        r#"
[market_data]
type = "csv"
files = "{}"
asset_column = "asset"

[dag]
type = "graph"
[dag.nodes.read]
type = "market_data"
[dag.nodes.ret]
type = "compute_ret_0"
cols = ["close"]
[dag.nodes.vol]
type = "rolling"
cols = ["close.ret_0"]
window = 30
stat = "std"
[dag.nodes.label]
type = "direction"
cols = ["close"]
horizon = 5
threshold = 0.3
threshold_in = "volatility"
volatility = "close.ret_0.std"
[dag.nodes.model]
type = "gbt"
x_vars = ["close.ret_0", "close.ret_0.std"]
y_var = "close.direction"
objective = "multiclass"
classes = [-1.0, 0.0, 1.0]
class_names = ["down", "flat", "up"]
iterations = 5
max_depth = 2

[system]
bar = "5min"
start = "2024-01-02 18:00"
prediction = "close.direction.p_up"
[system.fit]
lookback = "1d"
retrain_every = "1d"
{THRESHOLD}
"#,
        csv.display()
    );
    let config = Config::from_toml_str(&text, "learning.toml").unwrap();
    write_days(&csv, 2);
    let (first, _) = growing(&config, &cache);
    write_days(&csv, 3);
    let (grown, g) = growing(&config, &cache);
    let full = plain(&config);
    assert!(matches!(g, Growth::Continued { .. }), "{g:?}");
    // Fits at 18:00 each day: the new day's first decisions trade the checkpoint's
    // model, the later ones a model fitted in the continued run.
    assert_eq!(full.fits.len(), first.fits.len() + 1);
    assert_eq!(fingerprint(&grown), fingerprint(&full));
}

#[test]
fn a_checkpoint_whose_state_does_not_load_runs_every_decision_and_says_why() {
    use kf_system::{Decide, ForecastProcessor};
    /// Saves a state it then refuses to load (a processor whose format changed).
    #[derive(Debug)]
    struct Refusing;
    impl ForecastProcessor for Refusing {
        fn kind(&self) -> &'static str {
            "refusing"
        }
        fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
            for (o, f) in orders.iter_mut().zip(input.forecast) {
                *o = if f.is_finite() { f.signum() } else { 0.0 };
            }
        }
        fn reset(&mut self) {}
        fn save_state(&self) -> Option<Vec<u8>> {
            Some(vec![7])
        }
        fn load_state(&mut self, _: &[u8]) -> Result<(), String> {
            Err("version 7 states are not read any more".into())
        }
    }
    let types = with_processor("refusing", || Box::new(Refusing));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    write_days(&csv, 2);
    let cache = handle(&dir.path().join("cache"));
    let config = config(&csv, "[system.processor]\ntype = \"refusing\"\n");
    let run = || System::run_growing(&types, &config, None, &cache).unwrap();
    let (_, g) = run();
    assert_eq!(g, Growth::Full("no checkpoint of this system yet".into()));
    write_days(&csv, 3);
    let (grown, g) = run();
    assert_eq!(
        g,
        Growth::Full(
            "the checkpoint could not be continued: version 7 states are not read any more".into()
        )
    );
    let full = System::from_config_with(&types, &config)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(fingerprint(&grown), fingerprint(&full));
}

/// A Parquet store (day row groups) of `days` days of the CSV's bars, with the
/// assets `assets` (a later asset's earlier cells missing).
fn write_store(path: &Path, days: usize, assets: &[&str]) {
    let mut ends = Vec::new();
    let mut close = Vec::new();
    let mut volume = Vec::new();
    for d in 0..days {
        for m in 0..390i64 {
            // 2024-01-02 14:31 UTC, then one minute a bar, one day a day.
            ends.push(1_704_205_860_000_000_000 + (d as i64 * 86_400 + m * 60) * 1_000_000_000);
            for (a, name) in assets.iter().enumerate() {
                let late = *name == "NEW" && d + 1 < days;
                let p = 50.0 + a as f64 + ((d as i64 * 390 + m) as f64 * 0.1 + a as f64).sin();
                close.push(if late { f64::NAN } else { p });
                volume.push(if late {
                    f64::NAN
                } else {
                    100.0 + (m % 9) as f64
                });
            }
        }
    }
    let frame = kf_frame::Frame::new(
        ends.clone(),
        ends,
        assets.iter().map(|a| a.to_string()).collect(),
        vec![("close".into(), close), ("volume".into(), volume)],
    )
    .unwrap();
    kf_datapull::parquet_store::write_frame(
        &frame,
        path,
        kf_datapull::StoreOptions {
            time_block: 390,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn a_new_asset_in_a_store_runs_every_decision_and_a_grown_store_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bars.parquet");
    let cache = handle(&dir.path().join("cache"));
    let text = config(Path::new("unused"), CROSS_SECTIONAL)
        .to_toml_string()
        .replace("type = \"csv\"", "type = \"parquet\"");
    let mut text = text
        .lines()
        .filter(|l| !l.starts_with("files") && !l.starts_with("asset_column"))
        .collect::<Vec<_>>()
        .join("\n");
    text = text.replacen(
        "type = \"parquet\"",
        &format!(
            "type = \"parquet\"\npath = {:?}",
            store.display().to_string()
        ),
        1,
    );
    let config = Config::from_toml_str(&text, "store.toml").unwrap();
    let old = ["A0", "A1", "A2"];
    write_store(&store, 2, &old);
    growing(&config, &cache);
    write_store(&store, 3, &old);
    let (run, g) = growing(&config, &cache);
    assert!(matches!(g, Growth::Continued { .. }), "{g:?}");
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));
    // A new asset: the store's rows up to the checkpoint gain its (empty) cells.
    write_store(&store, 4, &["A0", "A1", "A2", "NEW"]);
    let (run, g) = growing(&config, &cache);
    assert_eq!(
        g,
        Growth::Full("the data up to 2024-01-04T21:00:00Z changed since the checkpoint".into())
    );
    assert_eq!(run.assets.len(), 4);
    assert_eq!(fingerprint(&run), fingerprint(&plain(&config)));
}

/// A store whose prefix fingerprint covers only the assets with values up to the
/// cut: a new asset in appended bars leaves it unchanged, so only the system's own
/// check of its assets can see that the asset slots moved.
#[derive(Debug)]
struct ValuesOnly(kf_datapull::ParquetStore);

impl kf_datapull::Source for ValuesOnly {
    fn describe(&self) -> String {
        "a store fingerprinted by its values".into()
    }
    fn load(&self, q: &kf_datapull::Query) -> kf_datapull::Result<kf_frame::Frame> {
        kf_datapull::Source::load(&self.0, q)
    }
    fn pushes_down(&self) -> bool {
        true
    }
    fn features(&self) -> Option<Vec<String>> {
        Some(self.0.features().to_vec())
    }
    fn fingerprint(&self) -> kf_datapull::Result<Option<String>> {
        kf_datapull::Source::fingerprint(&self.0)
    }
    fn lineage(&self) -> Option<String> {
        Some(format!("values-only;{}", self.0.path().display()))
    }
    fn prefix_fingerprint(&self, until: i64) -> kf_datapull::Result<Option<String>> {
        let f = kf_datapull::Source::load(&self.0, &kf_datapull::Query::between(i64::MIN, until))?;
        let mut out = format!("{:?}", f.end_ts());
        for (a, name) in f.assets().iter().enumerate() {
            for i in 0..f.n_features() {
                let v = f.feature_at(i);
                let cells: Vec<u64> = (0..f.n_rows()).map(|r| v.row(r)[a].to_bits()).collect();
                if cells.iter().any(|&c| !f64::from_bits(c).is_nan()) {
                    out.push_str(&format!("|{name}:{cells:?}"));
                }
            }
        }
        Ok(Some(out))
    }
}

#[test]
fn a_source_blind_to_a_new_asset_still_runs_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bars.parquet");
    let cache = handle(&dir.path().join("cache"));
    let mut types = Registries::default();
    types
        .dataflow
        .data
        .register_source(
            "values_only",
            kf_config::TypeDoc::new("a store fingerprinted by its values"),
            |s| {
                let path: String = s.get("path")?;
                let store = kf_datapull::ParquetStore::open(&path)
                    .map_err(|e| s.invalid("path", e.to_string()))?;
                Ok(Box::new(ValuesOnly(store)) as Box<dyn kf_datapull::Source>)
            },
        )
        .unwrap();
    let text = config(Path::new("unused"), CROSS_SECTIONAL)
        .to_toml_string()
        .lines()
        .filter(|l| !l.starts_with("files") && !l.starts_with("asset_column"))
        .collect::<Vec<_>>()
        .join("\n")
        .replacen(
            "type = \"csv\"",
            &format!(
                "type = \"values_only\"\npath = {:?}",
                store.display().to_string()
            ),
            1,
        );
    let config = Config::from_toml_str(&text, "values_only.toml").unwrap();
    let run = || System::run_growing(&types, &config, None, &cache).unwrap();
    let old = ["A0", "A1", "A2"];
    write_store(&store, 2, &old);
    run();
    write_store(&store, 3, &old);
    assert!(matches!(run().1, Growth::Continued { .. }));
    write_store(&store, 4, &["A0", "A1", "A2", "NEW"]);
    let (grown, g) = run();
    assert_eq!(
        g,
        Growth::Full("the market's assets changed since the checkpoint".into())
    );
    let full = System::from_config_with(&types, &config)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(fingerprint(&grown), fingerprint(&full));
}

#[test]
fn data_that_changes_while_the_system_runs_leaves_no_checkpoint() {
    use kf_system::{Decide, ForecastProcessor};
    /// Rewrites the data (an old bar's volume) at its first decision: a feed
    /// correcting a bar while the run goes on.
    #[derive(Debug)]
    struct Meddling(std::path::PathBuf, bool);
    impl ForecastProcessor for Meddling {
        fn kind(&self) -> &'static str {
            "meddling"
        }
        fn orders(&mut self, _: &Decide<'_>, orders: &mut [f64]) {
            orders.fill(0.0);
            if !std::mem::replace(&mut self.1, true) {
                let text = std::fs::read_to_string(&self.0).unwrap();
                let line = text.lines().nth(5).unwrap();
                let (head, _) = line.rsplit_once(',').unwrap();
                let changed = text.replacen(line, &format!("{head},12345"), 1);
                std::fs::write(&self.0, changed).unwrap();
            }
        }
        fn reset(&mut self) {
            self.1 = false;
        }
        fn save_state(&self) -> Option<Vec<u8>> {
            Some(Vec::new())
        }
        fn load_state(&mut self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bars.csv");
    write_days(&csv, 2);
    let cache = handle(&dir.path().join("cache"));
    let mut types = Registries::default();
    let path = csv.clone();
    types
        .processors
        .insert(
            "meddling",
            kf_config::TypeDoc::new("rewrites the data at its first decision"),
            Box::new(move |_: &kf_config::Section<'_>| {
                Ok(Box::new(Meddling(path.clone(), false)) as Box<dyn ForecastProcessor>)
            }),
        )
        .unwrap();
    let config = config(&csv, "[system.processor]\ntype = \"meddling\"\n");
    let (_, g) = System::run_growing(&types, &config, None, &cache).unwrap();
    assert_eq!(
        g,
        Growth::Full(
            "no checkpoint of this system yet; no checkpoint was written: the data changed \
             while the system ran"
                .into()
        )
    );
    let (_, g) = System::run_growing(&types, &config, None, &cache).unwrap();
    assert!(
        matches!(&g, Growth::Full(why) if why.starts_with("no checkpoint of this system yet")),
        "{g:?}"
    );
}
