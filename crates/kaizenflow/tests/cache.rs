//! `--cache` on `run`, `sweep` and `check`, and `kaizenflow cache info|clear`, run
//! as a user runs them.

mod common;

use std::path::Path;

use common::{kaizenflow, text};

fn ok(args: &[&str]) -> String {
    let out = kaizenflow(args);
    assert!(
        out.status.success(),
        "{args:?}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `(hits, misses, uncached)` from a command's `# cache:` line.
fn counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("# cache: "))
        .unwrap_or_else(|| panic!("no cache line in\n{stdout}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn a_cached_run_writes_the_same_bytes_and_a_second_run_computes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let plain = ok(&["run", "configs/mock1.toml", "--out", &p(&a)]);
    assert!(!plain.contains("# cache:"), "{plain}");
    let cold = ok(&[
        "run",
        "configs/mock1.toml",
        "--out",
        &p(&b),
        "--cache",
        &p(&cache),
    ]);
    // Mock1 has nine nodes, every one with a key.
    assert_eq!(counts(&cold), (0, 9, 0), "{cold}");
    let warm = ok(&[
        "run",
        "configs/mock1.toml",
        "--out",
        &p(&c),
        "--cache",
        &p(&cache),
    ]);
    assert_eq!(counts(&warm), (9, 0, 0), "{warm}");
    let bytes = |d: &Path| std::fs::read(d.join("result.parquet")).unwrap();
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(bytes(&a), bytes(&c));
    // Another downstream parameter: only the nodes after it run.
    let d = dir.path().join("d");
    let other = ok(&[
        "run",
        "configs/mock1.toml",
        "--out",
        &p(&d),
        "--cache",
        &p(&cache),
        "--set",
        "dag.weights=[0.1, 0.2, 0.3, 0.4]",
    ]);
    assert_eq!(counts(&other), (8, 1, 0), "{other}");

    // `cache info` names the nodes and the config; `cache clear` empties it.
    let info = ok(&["cache", "info", &p(&cache)]);
    assert!(
        info.contains("resample") && info.contains("configs/mock1.toml"),
        "{info}"
    );
    assert!(info.contains("lifetime: 17 hits, 10 misses"), "{info}");
    let cleared = ok(&["cache", "clear", &p(&cache)]);
    assert!(cleared.starts_with("# removed "), "{cleared}");
    let info = ok(&["cache", "info", &p(&cache)]);
    assert!(info.starts_with("# 0 entries"), "{info}");
}

#[test]
fn a_sweep_computes_shared_upstream_nodes_once_and_a_second_sweep_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sweep.toml");
    let base = std::fs::read_to_string(common::workspace().join("configs/mock1.toml")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{base}\n[sweep]\n\"dag.compress_scale\" = [2.0, 4.0]\n\
             \"dag.weights\" = [[-0.2, -0.2, 0.3, -0.2], [0.1, 0.1, 0.1, 0.1]]\n"
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let run = |out: &str, cached: bool| {
        let out = p(&dir.path().join(out));
        let mut args = vec![
            "sweep",
            cfg.to_str().unwrap(),
            "--out",
            &out,
            "--threads",
            "1",
        ];
        let c = p(&cache);
        if cached {
            args.extend(["--cache", &c]);
        }
        ok(&args)
    };
    let cold = run("cold", true);
    // 4 points x 9 nodes: the 6 upstream nodes once, `compress_rets` and `add_lags`
    // once per scale, `predict` once per point.
    assert_eq!(counts(&cold), (36 - 14, 6 + 2 + 2 + 4, 0), "{cold}");
    let warm = run("warm", true);
    assert_eq!(counts(&warm), (36, 0, 0), "{warm}");
    run("plain", false);
    let mut n = 0;
    for e in std::fs::read_dir(dir.path().join("plain")).unwrap() {
        let e = e.unwrap();
        if !e.path().is_dir() {
            continue;
        }
        let id = e.file_name();
        let read =
            |s: &str| std::fs::read(dir.path().join(s).join(&id).join("result.parquet")).unwrap();
        assert_eq!(read("plain"), read("cold"), "{id:?}");
        assert_eq!(read("plain"), read("warm"), "{id:?}");
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn check_takes_its_batch_run_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = p(&dir.path().join("cache"));
    let args = [
        "check",
        "configs/mock1.toml",
        "--tilings",
        "2",
        "--perturbations",
        "1",
        "--cache",
        &cache,
    ];
    let cold = ok(&args);
    assert!(cold.contains("# all 7 checks passed"), "{cold}");
    assert_eq!(counts(&cold).1, 9, "{cold}");
    let warm = ok(&args);
    assert!(warm.contains("# all 7 checks passed"), "{warm}");
    assert_eq!(counts(&warm), (9, 0, 0), "{warm}");
}

#[test]
fn bad_cache_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = p(&dir.path().join("o"));
    let e = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--out",
        &out,
        "--cache",
        "x",
        "--cache-max",
        "12XB",
    ]);
    assert!(!e.status.success());
    assert!(
        text(&e.stderr).contains("unknown size unit"),
        "{}",
        text(&e.stderr)
    );
    let e = kaizenflow(&["cache", "info", &p(&dir.path().join("nope"))]);
    assert!(!e.status.success());
    assert!(
        text(&e.stderr).contains("is not a cache folder"),
        "{}",
        text(&e.stderr)
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let e = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--out",
        &out,
        "--cache",
        &p(&file),
    ]);
    assert!(!e.status.success());
    assert!(
        text(&e.stderr).contains("as a node cache"),
        "{}",
        text(&e.stderr)
    );
}

/// A `--capture` of a node's output stands in, as a `frame` source, for the whole
/// DAG upstream of it (the paper's section 4.14.2): the nodes downstream of the cut
/// give the same bytes as in the full run. This is how an incident becomes a test.
#[test]
fn a_captured_cut_replays_into_the_downstream_nodes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let downstream = r#"
[dag.nodes.z]
type = "rolling"
stat = "zscore"
window = 12
cols = ["close.ret_0"]

[dag.nodes.lag]
type = "lags"
cols = ["close.ret_0.zscore"]
num_lags = 3
"#;
    let full = dir.path().join("full.toml");
    std::fs::write(
        &full,
        format!(
            "[market_data]\ntype = \"synthetic\"\nassets = 5\nbars = 600\nseed = 3\n\
             [dag]\ntype = \"graph\"\nedges = [[\"read\", \"ret\"], [\"ret\", \"z\"], [\"z\", \"lag\"]]\n\
             [dag.nodes.read]\ntype = \"market_data\"\n\
             [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n{downstream}"
        ),
    )
    .unwrap();
    let a = dir.path().join("a");
    ok(&[
        "run",
        full.to_str().unwrap(),
        "--out",
        &p(&a),
        "--capture",
        "ret",
    ]);
    let cut = a.join("capture/ret/out.df_out.parquet");
    assert!(cut.exists());
    // The same downstream nodes, fed by the captured frame instead of the upstream.
    let replay = dir.path().join("replay.toml");
    std::fs::write(
        &replay,
        format!(
            "[market_data]\ntype = \"synthetic\"\nassets = 5\nbars = 600\nseed = 3\n\
             [dag]\ntype = \"graph\"\nedges = [[\"ret\", \"z\"], [\"z\", \"lag\"]]\n\
             [dag.nodes.ret]\ntype = \"frame\"\npath = {:?}\n{downstream}",
            p(&cut)
        ),
    )
    .unwrap();
    let b = dir.path().join("b");
    ok(&[
        "run",
        replay.to_str().unwrap(),
        "--out",
        &p(&b),
        "--capture",
        "z",
    ]);
    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(bytes(&a, "result.parquet"), bytes(&b, "result.parquet"));
    // Same rows and knowledge times at the cut's input to `z`.
    ok(&[
        "run",
        full.to_str().unwrap(),
        "--out",
        &p(&a),
        "--capture",
        "z",
    ]);
    assert_eq!(
        bytes(&a, "capture/z/in.df_in.parquet"),
        bytes(&b, "capture/z/in.df_in.parquet")
    );
    assert_eq!(
        bytes(&a, "capture/z/out.df_out.parquet"),
        bytes(&b, "capture/z/out.df_out.parquet")
    );
}

/// Ranks of an MPI job that share a file system share the cache: after a thread
/// sweep filled it, four ranks compute nothing (no entry is added) and write the
/// same result files.
#[cfg(feature = "mpi")]
#[test]
fn mpi_ranks_take_a_sweeps_outputs_from_a_shared_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sweep.toml");
    let base = std::fs::read_to_string(common::workspace().join("configs/mock1.toml")).unwrap();
    std::fs::write(
        &cfg,
        format!("{base}\n[sweep]\n\"dag.compress_scale\" = [2.0, 4.0, 8.0]\n"),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let threads = dir.path().join("threads");
    ok(&[
        "sweep",
        cfg.to_str().unwrap(),
        "--out",
        &p(&threads),
        "--cache",
        &p(&cache),
    ]);
    let entries = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "kfc")
            })
            .count()
    };
    let before = entries();
    // 6 shared upstream nodes, then 3 x (compress, lags, predict).
    assert_eq!(before, 6 + 3 * 3);
    let mpi = dir.path().join("mpi");
    let out = common::mpirun(
        4,
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--backend",
            "mpi",
            "--out",
            mpi.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(entries(), before, "a rank computed and stored an entry");
    let mut n = 0;
    for e in std::fs::read_dir(&threads).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            let id = e.file_name();
            let read = |d: &Path| std::fs::read(d.join(&id).join("result.parquet")).unwrap();
            assert_eq!(read(&threads), read(&mpi), "{id:?}");
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

/// The shipped real-data sweep expands to its 27 points, each a valid config
/// (`kaizenflow check` passes all 27; docs/caching.md has its timings).
#[test]
fn the_real_data_sweep_has_27_valid_points() {
    if !common::shared_data("us_equity_1min_2018") {
        return;
    }
    let out = ok(&[
        "config",
        "sweep",
        "configs/mock1_sweep_us_equity_1min_2018.toml",
    ]);
    assert!(
        out.starts_with("# 27 configs from configs/mock1_sweep_us_equity_1min_2018.toml"),
        "{out}"
    );
    let ids: std::collections::BTreeSet<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 27, "{out}");
}

/// Minute bars of two assets over `days` days (60 bars a day) as CSV files.
fn write_days(dir: &Path, days: usize) {
    for (a, base) in [("AAA", 100.0), ("BBB", 50.0)] {
        let mut s = String::from("t,close,volume\n");
        for d in 0..days {
            for k in 0..60 {
                let i = (d * 60 + k) as f64;
                s.push_str(&format!(
                    "2024-01-{:02} 14:{k:02}:00,{},{}\n",
                    2 + d,
                    base + (i * 0.37).sin() + i * 0.01,
                    100 + (d * 60 + k) % 13
                ));
            }
        }
        std::fs::write(dir.join(format!("{a}.csv")), s).unwrap();
    }
}

/// `run --cache` over a store that gained a day computes only that day (it says
/// so), and writes the bytes a run without the cache writes; unchanged data
/// computes nothing; a changed old bar runs everything again.
#[test]
fn a_run_over_a_store_that_gained_a_day_continues_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    let import = dir.path().join("import.toml");
    std::fs::write(
        &import,
        format!(
            "[market_data]\ntype = \"csv\"\nfiles = \"{}/*.csv\"\ntimestamp_column = \"t\"\n\
             asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n",
            p(&csv)
        ),
    )
    .unwrap();
    let store = dir.path().join("bars.parquet");
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[market_data]\ntype = \"parquet\"\npath = {:?}\n\
             [dag]\ntype = \"graph\"\nedges = [[\"read\", \"ret\"], [\"ret\", \"z\"], [\"z\", \"ema\"]]\n\
             [dag.nodes.read]\ntype = \"market_data\"\n\
             [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n\
             [dag.nodes.z]\ntype = \"rolling\"\nstat = \"zscore\"\ncols = [\"close.ret_0\"]\nwindow = 15\n\
             [dag.nodes.ema]\ntype = \"ema\"\ncols = [\"close.ret_0.zscore\"]\ntau = 4.0\n",
            p(&store)
        ),
    )
    .unwrap();
    let cache = p(&dir.path().join("cache"));
    let import_days = |days: usize| {
        write_days(&csv, days);
        ok(&[
            "data",
            "import",
            import.to_str().unwrap(),
            "--out",
            &p(&store),
            "--time-block",
            "60",
        ]);
    };
    let run = |out: &str, cached: bool| {
        let out = p(&dir.path().join(out));
        let mut args = vec!["run", config.to_str().unwrap(), "--out", &out, "--force"];
        if cached {
            args.extend(["--cache", &cache]);
        }
        let stdout = ok(&args);
        (
            stdout,
            std::fs::read(Path::new(&out).join("result.parquet")).unwrap(),
        )
    };
    import_days(3);
    let (first, _) = run("a", true);
    assert!(
        first.contains("# incremental: computed every bar (no checkpoint"),
        "{first}"
    );
    import_days(4);
    let (grown, bytes) = run("b", true);
    assert!(
        grown.contains(
            "# incremental: continued from the checkpoint at 2024-01-04T14:59:00Z; computed the \
             bars after it, up to 2024-01-05T14:59:00Z"
        ),
        "{grown}"
    );
    let (_, plain) = run("c", false);
    assert_eq!(
        bytes, plain,
        "result.parquet differs from a run without the cache"
    );
    let (again, bytes) = run("d", true);
    assert!(
        again.contains("# incremental: the data has not changed"),
        "{again}"
    );
    assert_eq!(bytes, plain);
    // An old bar changes: everything runs again, and the bytes are a plain run's.
    let text = std::fs::read_to_string(csv.join("AAA.csv")).unwrap();
    std::fs::write(
        csv.join("AAA.csv"),
        text.replacen("2024-01-02 14:05:00,", "2024-01-02 14:05:00,1", 1),
    )
    .unwrap();
    ok(&[
        "data",
        "import",
        import.to_str().unwrap(),
        "--out",
        &p(&store),
        "--time-block",
        "60",
    ]);
    let (changed, bytes) = run("e", true);
    assert!(
        changed.contains("# incremental: computed every bar (the data of source `read` up to 2024-01-05T14:59:00Z changed"),
        "{changed}"
    );
    let (_, plain) = run("f", false);
    assert_eq!(bytes, plain);
}

#[test]
fn a_time_block_of_zero_bars_or_for_hdf5_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = kaizenflow(&[
        "data",
        "import",
        "configs/mock1.toml",
        "--out",
        &p(&dir.path().join("x.parquet")),
        "--time-block",
        "0",
    ]);
    assert!(!e.status.success());
    assert!(
        text(&e.stderr).contains("--time-block 0"),
        "{}",
        text(&e.stderr)
    );
    let e = kaizenflow(&[
        "data",
        "import",
        "configs/mock1.toml",
        "--out",
        &p(&dir.path().join("x.h5")),
        "--time-block",
        "390",
    ]);
    assert!(!e.status.success());
    assert!(
        text(&e.stderr).contains("Parquet stores only"),
        "{}",
        text(&e.stderr)
    );
}

/// `run --cache` of a system over a store that gained a day makes only the new
/// decisions (it says so), and writes the orders, fills and portfolio a run
/// without the cache writes, byte for byte.
#[test]
fn a_system_over_a_store_that_gained_a_day_continues_from_its_loop_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    let config = dir.path().join("system.toml");
    std::fs::write(
        &config,
        format!(
            "[market_data]\ntype = \"csv\"\nfiles = \"{}/*.csv\"\ntimestamp_column = \"t\"\n\
             asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n\
             [dag]\ntype = \"graph\"\nedges = [[\"read\", \"ret\"], [\"ret\", \"z\"]]\n\
             [dag.nodes.read]\ntype = \"market_data\"\n\
             [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n\
             [dag.nodes.z]\ntype = \"rolling\"\nstat = \"zscore\"\ncols = [\"close.ret_0\"]\nwindow = 15\n\
             [system]\nbar = \"5min\"\nprediction = \"close.ret_0.zscore\"\n\
             [system.processor]\ntype = \"cross_sectional\"\n",
            p(&csv)
        ),
    )
    .unwrap();
    let cache = p(&dir.path().join("cache"));
    let run = |out: &str, cached: bool| {
        let out = dir.path().join(out);
        let o = p(&out);
        let mut args = vec!["run", config.to_str().unwrap(), "--out", &o];
        if cached {
            args.extend(["--cache", &cache]);
        }
        let stdout = ok(&args);
        let files: Vec<Vec<u8>> = ["orders.parquet", "fills.parquet", "portfolio.parquet"]
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        (stdout, files)
    };
    write_days(&csv, 3);
    let (first, _) = run("a", true);
    assert!(
        first.contains(
            "# system incremental: computed every bar (no checkpoint of this system yet)"
        ),
        "{first}"
    );
    write_days(&csv, 4);
    let (grown, files) = run("b", true);
    assert!(
        grown.contains(
            "# system incremental: continued from the checkpoint at 2024-01-04T15:00:00Z; \
             computed the bars after it, up to 2024-01-05T15:00:00Z"
        ),
        "{grown}"
    );
    let (plain, plain_files) = run("c", false);
    assert!(!plain.contains("incremental"), "{plain}");
    assert!(plain_files[1].len() > 1000, "the system trades");
    assert_eq!(
        files, plain_files,
        "a system file differs from a run without the cache"
    );
}
