//! The `kaizenflow` program, run as a user runs it: exit status, output, messages.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kaizenflow, shared_data, text, workspace};

#[test]
fn config_show_prints_a_resolved_config_that_reads_back_to_the_same_id() {
    let out = kaizenflow(&[
        "config",
        "show",
        "configs/example.toml",
        "--set",
        "market_data.bars=30",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("bars = 30"), "{shown}");
    // Defaults that the file leaves out are printed.
    assert!(shown.contains("garch_alpha = 0.05"), "{shown}");
    let id = shown
        .lines()
        .next()
        .unwrap()
        .split("(id ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &shown).unwrap();
    let again = kaizenflow(&["config", "show", printed.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let again = text(&again.stdout);
    assert!(again.contains(&format!("(id {id})")), "{again}");
    // Same content after the header line.
    assert_eq!(
        shown.split_once('\n').unwrap().1,
        again.split_once('\n').unwrap().1
    );
}

#[test]
fn config_show_rejects_a_typo_naming_file_line_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[market_data]\ntype = \"synthetic\"\nasets = 5\n").unwrap();
    let out = kaizenflow(&["config", "show", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3: market_data.asets: unknown key (nothing read it)",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn config_errors_print_the_cause_chain_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[market_data]\ntype = \"synthetik\"\n").unwrap();
    let out = kaizenflow(&["config", "show", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("error: {} is not a valid config", path.display())),
        "{err}"
    );
    assert!(
        err.contains("caused by: ") && err.contains(":2: market_data.type: unknown market data type \"synthetik\"; known types: csv, hdf5, parquet, postgres, replayed, stitched, synthetic"),
        "{err}"
    );
    let out = kaizenflow(&[
        "config",
        "show",
        "configs/example.toml",
        "--set",
        "market_data.assets=-2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("--set market_data.assets=-2: market_data.assets: invalid value"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&["config", "show", "configs/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("configs/nonexistent.toml: cannot read config"));
}

#[test]
fn config_sweep_prints_one_line_per_config_with_distinct_ids() {
    let out = kaizenflow(&["config", "sweep", "configs/sweep_example.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "# 6 configs from configs/sweep_example.toml");
    assert_eq!(lines.len(), 7);
    assert!(
        lines[1].ends_with("  market_data.seed=1 market_data.freq=\"1min\""),
        "{}",
        lines[1]
    );
    let mut ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    // Ids are of resolved content: point 0 (seed 1, freq "1min") written out as a
    // plain config, with freq left to its default, has the same id.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.toml");
    std::fs::write(
        &plain,
        "[market_data]\ntype = \"synthetic\"\nassets = 20\nbars = 390\nseed = 1\n",
    )
    .unwrap();
    let show = kaizenflow(&["config", "show", plain.to_str().unwrap()]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let first_id = lines[1].split_whitespace().next().unwrap();
    assert!(
        text(&show.stdout)
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!("(id {first_id})"))
    );

    // A sweep point that is invalid is named.
    let bad = dir.path().join("bad_sweep.toml");
    std::fs::write(
        &bad,
        "[market_data]\ntype = \"synthetic\"\n[sweep]\n\"market_data.freq\" = [\"1min\", \"0s\"]\n",
    )
    .unwrap();
    let out = kaizenflow(&["config", "sweep", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("sweep point 1 (market_data.freq=\"0s\") is not a valid config"),
        "{err}"
    );
    assert!(
        err.contains(":4: market_data.freq: must be longer than zero"),
        "{err}"
    );
}

#[test]
fn sweep_runs_every_config_and_writes_outputs_under_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("runs");
    let out = kaizenflow(&[
        "sweep",
        "configs/sweep_example.toml",
        "--out",
        out_dir.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = std::fs::read_to_string(out_dir.join("summary.tsv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines[0],
        "id\tmarket_data.seed\tmarket_data.freq\trows\tassets\tseconds"
    );
    assert_eq!(lines.len(), 7);
    // The ids are the ones `config sweep` gives, in the same order.
    let listed = text(&kaizenflow(&["config", "sweep", "configs/sweep_example.toml"]).stdout);
    let listed: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let ran: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ran, listed);
    for line in &lines[1..] {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!((cols[3], cols[4]), ("390", "20"), "{line}");
        let run = out_dir.join(cols[0]);
        // The saved config reads back to the id it is filed under.
        let config = kaizenflow::config::Config::from_file(run.join("config.toml")).unwrap();
        assert_eq!(config.id(), cols[0]);
        let data = kaizenflow::frame::Frame::read_parquet(run.join("market_data.parquet")).unwrap();
        let step = data.end_ts()[1] - data.end_ts()[0];
        let minutes = if cols[2] == "\"5min\"" { 5 } else { 1 };
        assert_eq!(step, minutes * 60_000_000_000, "{line}");
    }
    assert!(
        text(&out.stdout).ends_with(&format!("# 6 runs; outputs under {}\n", out_dir.display()))
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn sweep_on_mpi_without_the_feature_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = kaizenflow(&[
        "sweep",
        "configs/sweep_example.toml",
        "--out",
        dir.path().to_str().unwrap(),
        "--backend",
        "mpi",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("built without MPI support; rebuild with"),
        "{}",
        text(&out.stderr)
    );
}

/// `mpirun -np 4 kaizenflow sweep ... --backend mpi`: 3 worker ranks run the 6
/// configs; rank 0 writes the same summary as the thread backend.
#[cfg(feature = "mpi")]
#[test]
fn sweep_on_four_mpi_ranks_matches_the_thread_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (threads_dir, mpi_dir) = (dir.path().join("threads"), dir.path().join("mpi"));
    let t = kaizenflow(&[
        "sweep",
        "configs/sweep_example.toml",
        "--out",
        threads_dir.to_str().unwrap(),
    ]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "4"])
        .arg(env!("CARGO_BIN_EXE_kaizenflow"))
        .args([
            "sweep",
            "configs/sweep_example.toml",
            "--backend",
            "mpi",
            "--out",
        ])
        .arg(&mpi_dir)
        .current_dir(workspace())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run mpirun (install openmpi-bin): {e}"));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Same ids, varied values and data shapes (the seconds column differs).
    let strip = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("summary.tsv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once('\t').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(&mpi_dir), strip(&threads_dir));
    assert_eq!(strip(&mpi_dir).len(), 7);
    // Only rank 0 printed the table.
    assert_eq!(text(&out.stdout).matches("# 6 runs").count(), 1);
}

#[test]
fn data_import_then_info_describes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bars.parquet");
    let store_s = store.to_str().unwrap();
    let out = kaizenflow(&["data", "import", "configs/example.toml", "--out", store_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 20 assets x 390 bars, all present.
    assert!(
        text(&out.stdout).starts_with("imported 7800 rows from synthetic: 20 assets x 390 bars"),
        "{}",
        text(&out.stdout)
    );
    let out = kaizenflow(&["data", "info", store_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    for expected in [
        // 20 assets and 7,800 rows fit in one row group (64 assets x ~128k rows).
        "(parquet, row groups: 1, ",
        "assets: 20 (A0000, A0001,",
        // 09:31 and 16:00 New York (EST) are 14:31 and 21:00 UTC.
        "time range: 2024-01-02T14:31:00Z .. 2024-01-02T21:00:00Z (390 bar times)",
        "rows: 7800 stored; 390 bar times x 20 assets = 7800 cells",
        "columns: open, high, low, close, volume",
        "  close: 0 (0.00%)",
        "revisions: none",
    ] {
        assert!(info.contains(expected), "missing {expected:?} in\n{info}");
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn data_info_tells_a_mapped_hdf5_store_from_a_chunked_one() {
    let dir = tempfile::tempdir().unwrap();
    for (compression, layout) in [
        (
            "none",
            "(hdf5, contiguous and uncompressed: memory-mapped reads, ",
        ),
        // 390 bars x 20 assets lie in one 1024 x 64 chunk.
        ("lzf", "(hdf5, chunks per feature: 1, "),
    ] {
        let store = dir.path().join(format!("{compression}.h5"));
        let store_s = store.to_str().unwrap();
        let out = kaizenflow(&[
            "data",
            "import",
            "configs/example.toml",
            "--out",
            store_s,
            "--compression",
            compression,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = kaizenflow(&["data", "info", store_s]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let info = text(&out.stdout);
        assert!(info.contains(layout), "missing {layout:?} in\n{info}");
        assert!(
            info.contains("rows: 7800 stored; 390 bar times x 20 assets = 7800 cells"),
            "{info}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    // `kaizenflow config show ... | head -1`: the pipe's reader is gone before the
    // program writes (dropped right after the spawn, while the program is still
    // starting), so its writes fail with a broken pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(["config", "show", "configs/mock1_system.toml"])
        .current_dir(workspace())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn data_commands_name_what_is_wrong() {
    let out = kaizenflow(&[
        "data",
        "import",
        "configs/example.toml",
        "--out",
        "/tmp/x.csv",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot tell the store format of /tmp/x.csv"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&["data", "info", "/nonexistent/s.parquet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent/s.parquet: cannot open"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&[
        "data",
        "import",
        "configs/example.toml",
        "--out",
        "/tmp/kf-never.parquet",
        "--compression",
        "brotli",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--compression brotli: a Parquet store takes zstd, lz4 or none"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&["sql", "--table", "nonsense", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("write it as NAME=PATH"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(feature = "sql")]
#[test]
fn sql_over_a_store_prunes_row_groups_by_time_and_asset() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bars.parquet");
    let store_s = store.to_str().unwrap();
    // 200 assets x 3000 bars: 4 blocks of 64 assets x 2 blocks of 2048 bars.
    let out = kaizenflow(&[
        "data",
        "import",
        "configs/example.toml",
        "--out",
        store_s,
        "--set",
        "market_data.assets=200",
        "--set",
        "market_data.bars=3000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = format!("bars={store_s}");
    let q = "SELECT count(*) AS n FROM bars WHERE asset = 'A0007' \
             AND end_ts <= '2024-01-02T15:30:00Z'";
    let out = kaizenflow(&["sql", "--table", &table, q]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Bars end 14:31, 14:32, ... so 60 of them end by 15:30.
    assert!(
        text(&out.stdout).contains("| 60 |"),
        "{}",
        text(&out.stdout)
    );
    let out = kaizenflow(&["sql", "--table", &table, &format!("EXPLAIN ANALYZE {q}")]);
    let plan = text(&out.stdout);
    // One asset in the first hour: DataFusion reads 1 of the 8 row groups.
    assert!(
        plan.contains("row_groups_pruned_statistics=8 total \u{2192} 1 matched"),
        "{plan}"
    );
}

#[test]
fn run_mock1_writes_config_result_timings_and_captures() {
    use arrow::array::AsArray;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("mock1");
    let out_s = out_dir.to_str().unwrap();
    let out = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--set",
        "market_data.bars=780",
        "--out",
        out_s,
        "--capture",
        "add_lags",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for node in [
        "read_data",
        "filter_ath",
        "resample",
        "compute_vol",
        "predict",
    ] {
        assert!(report.contains(node), "missing {node} in\n{report}");
    }
    // The resolved config runs again to the same result.
    let again = dir.path().join("again");
    let out = kaizenflow(&[
        "run",
        out_dir.join("config.toml").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--sequential",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a = std::fs::read(out_dir.join("result.parquet")).unwrap();
    let b = std::fs::read(again.join("result.parquet")).unwrap();
    assert_eq!(a, b, "a resolved config rebuilds the same system");
    // result.parquet: end_ts (UTC timestamp), knowledge_ts, asset (string), features.
    let file = std::fs::File::open(out_dir.join("result.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[..4], ["end_ts", "knowledge_ts", "asset", "close"]);
    assert!(
        names.contains(&"vwap.ret_0.vol_adj.c.lag0") && names.contains(&"prediction"),
        "{names:?}"
    );
    assert_eq!(
        schema.field(0).data_type().to_string(),
        "Timestamp(ns, \"UTC\")"
    );
    let asset = batches[0].column(2).as_string::<i32>();
    assert_eq!(asset.value(0), "A0000");
    let timings = std::fs::read_to_string(out_dir.join("timings.tsv")).unwrap();
    assert_eq!(timings.lines().count(), 1 + 9, "{timings}");
    assert!(out_dir.join("capture/add_lags/in.df_in.parquet").is_file());
    assert!(
        out_dir
            .join("capture/add_lags/out.df_out.parquet")
            .is_file()
    );
}

#[test]
fn run_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out_s = dir.path().to_str().unwrap();
    let out = kaizenflow(&["run", "configs/example.toml", "--out", out_s]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no [dag] section"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--out",
        out_s,
        "--capture",
        "ghost",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`ghost`, which is not a node"),
        "{}",
        text(&out.stderr)
    );
    let out = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--out",
        out_s,
        "--set",
        "run.type=\"walk\"",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("run.type") && err.contains("unknown runner `walk`"),
        "{err}"
    );
    let out = kaizenflow(&[
        "run",
        "configs/mock1.toml",
        "--out",
        out_s,
        "--set",
        "dag.resample_rul=\"1min\"",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("dag.resample_rul"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_mock1_on_the_real_us_equity_minute_bars() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = kaizenflow(&[
        "run",
        "configs/mock1_us_equity_1min_2018.toml",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    // 40 stocks (SOURCE.md). The data has no feature1, so Mock1 runs without it:
    // close, vwap, twap, 3 returns, vol, vol_adj, .c, 4 lags, prediction = 14.
    assert!(report.contains("x 40 assets x 14 features"), "{report}");
    let result = kf_frame::Frame::read_parquet(dir.path().join("result.parquet")).unwrap();
    assert!(result.feature("feature1").is_err());
    let pred = result.feature("prediction").unwrap();
    let present = pred.values().iter().filter(|v| !v.is_nan()).count();
    assert!(present > 40 * 1000, "only {present} predictions");
    // Predictions are bounded: |sum w_k * 4 tanh(.)| <= 4 * sum |w_k|.
    assert!(
        pred.values()
            .iter()
            .filter(|v| !v.is_nan())
            .all(|v| v.abs() <= 4.0 * (0.209 + 0.223 + 0.304 + 0.264) + 1e-12)
    );
}

#[test]
fn check_passes_mock1_and_the_library_and_names_a_peeking_node() {
    for config in ["configs/mock1.toml", "configs/library.toml"] {
        let path = workspace().join(config);
        let out = kaizenflow(&["check", path.to_str().unwrap(), "--tilings", "4"]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{config}: {stdout}{}",
            text(&out.stderr)
        );
        for check in ["batch", "tiling 3", "streaming", "perturbation", "replay"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with("pass") && l.contains(check)),
                "{config}: no passing {check}: {stdout}"
            );
        }
        // Mock1 also streams through the fast path; the library's DAG has nodes
        // without it, so that check does not apply there.
        let (all, fast) = match config {
            "configs/mock1.toml" => ("all 9 checks passed\n", "pass  fast streaming"),
            _ => (
                "all 8 checks passed; 1 not applicable",
                "n/a   fast streaming",
            ),
        };
        assert!(stdout.contains(all), "{stdout}");
        assert!(stdout.contains(fast), "{stdout}");
    }
    let path = workspace().join("configs/peeking.toml");
    let out = kaizenflow(&["check", path.to_str().unwrap(), "--tilings", "2"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for check in ["streaming", "perturbation", "replay"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check} line: {stdout}"));
        assert!(
            line.starts_with("FAIL") && line.contains("node `leak`"),
            "{line}"
        );
    }
    assert!(
        text(&out.stderr).contains("checks failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_passes_mock1_on_the_real_us_equity_and_binance_bars() {
    for (data, config, bars) in [
        (
            "us_equity_1min_2018",
            "configs/mock1_us_equity_1min_2018.toml",
            17_000,
        ),
        ("binance_top10_1m", "configs/mock1_binance_1m.toml", 44_000),
    ] {
        if !shared_data(data) {
            continue;
        }
        let out = kaizenflow(&["check", config, "--tilings", "3", "--seed", "7"]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{config}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("all 8 checks passed\n"), "{stdout}");
        assert!(stdout.contains("pass  fast streaming"), "{stdout}");
        // Streaming and the replay went through every minute bar, one at a time.
        let steps: usize = stdout
            .lines()
            .find(|l| l.contains("streaming:"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or(0);
        assert!(steps > bars, "{config}: {steps} steps: {stdout}");
    }
}

fn parquet_rows(path: &Path) -> (usize, Vec<String>) {
    let file = std::fs::File::open(path).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let names = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let rows = builder
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    (rows, names)
}

#[test]
fn run_the_mock1_system_writes_orders_fills_portfolio_stats_and_the_chart() {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;
    let dir = tempfile::tempdir().unwrap();
    let out = kaizenflow(&[
        "run",
        "configs/mock1_system.toml",
        "--set",
        "market_data.bars=780",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for line in [
        "pnl ",
        "sharpe (annualized)",
        "max drawdown",
        "hit rate",
        "costs",
    ] {
        assert!(report.contains(line), "no `{line}` in\n{report}");
    }
    let chart = dir.path().join("pnl.png");
    assert!(
        report.contains(&format!("pnl chart: {}\n", chart.display())),
        "{report}"
    );
    assert!(
        report.trim_end().ends_with(&format!(
            "report: {}",
            dir.path().join("report.html").display()
        )),
        "{report}"
    );
    let png = std::fs::read(&chart).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Two days of 5-minute decisions: 156 portfolio rows.
    let (bars, cols) = parquet_rows(&dir.path().join("portfolio.parquet"));
    assert_eq!(bars, 156);
    assert!(cols.iter().any(|c| c == "nav") && cols.iter().any(|c| c == "pnl"));
    let (orders, cols) = parquet_rows(&dir.path().join("orders.parquet"));
    assert!(orders > 0 && cols.contains(&"quantity".to_string()));
    let (fills, cols) = parquet_rows(&dir.path().join("fills.parquet"));
    assert!(fills > 0 && cols.contains(&"cost".to_string()));
    // stats.toml's P&L is the sum of the portfolio's bar P&L.
    let stats: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.path().join("stats.toml")).unwrap()).unwrap();
    let file = std::fs::File::open(dir.path().join("portfolio.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut total = 0.0;
    for b in reader {
        let b = b.unwrap();
        let pnl = b
            .column_by_name("pnl")
            .unwrap()
            .as_primitive::<Float64Type>();
        total += pnl.values().iter().sum::<f64>();
    }
    let pnl = stats["pnl"].as_float().unwrap();
    assert!((pnl - total).abs() < 1e-6, "{pnl} vs {total}");
    assert_eq!(stats["fills"].as_integer().unwrap() as usize, fills);
}

#[test]
fn the_mock1_system_runs_on_the_real_us_equity_bars() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = kaizenflow(&[
        "run",
        "configs/mock1_system_us_equity_1min_2018.toml",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    // 40 stocks, one decision per 5-minute bar with data over Feb-Apr 2018.
    assert!(report.contains("decisions x 40 assets"), "{report}");
    let (bars, _) = parquet_rows(&dir.path().join("portfolio.parquet"));
    assert!(bars > 3000, "{bars} decisions");
}

/// Without the `postgres` feature, the live commands say how to get them.
#[cfg(not(feature = "postgres"))]
#[test]
fn live_commands_without_the_postgres_feature_say_how_to_build_it() {
    for cmd in [
        vec![
            "live",
            "configs/live_us_equity_1min_2018.toml",
            "--out",
            "/tmp/kf-x",
        ],
        vec!["reconcile", "/tmp/kf-x"],
        vec![
            "ingest",
            "configs/mock1.toml",
            "--to",
            "configs/live_us_equity_1min_2018.toml",
        ],
    ] {
        let out = kaizenflow(&cmd);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("--features postgres"), "{cmd:?}: {err}");
    }
}

/// A run asked to use MPI fails with a clear message when the program was built
/// without it.
#[cfg(not(feature = "mpi"))]
#[test]
fn run_on_mpi_without_the_feature_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let done = kaizenflow(&[
        "run",
        "configs/mock1_system.toml",
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "mpi",
    ]);
    assert!(!done.status.success());
    let err = text(&done.stderr);
    assert!(
        err.contains("built without MPI support") && err.contains("--features mpi"),
        "{err}"
    );
}
