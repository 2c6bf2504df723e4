//! The reproducers of the adversarial campaign (issue 23), one test each: the release
//! program panicked, aborted, hung, accepted garbage or lost data on every one of
//! these; now each ends in a clean error that names what was wrong, or in the right
//! result.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{kaizenflow, text, workspace};

const MAX: &str = "9223372036854775807";

/// Runs the program with a time limit (a hang fails the test instead of stalling it).
fn run_for(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(args)
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("{args:?} hung: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts a clean error (exit 1, no panic) whose message contains every `needle`.
fn clean_error(out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean error, got {:?}: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in: {err}");
    }
}

fn out_dir(tmp: &Path) -> String {
    tmp.join("o").display().to_string()
}

#[test]
fn huge_sizes_are_refused_by_key_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "configs/mock1.toml",
            "market_data.assets=9223372036854775807",
            &["market_data.assets", "memory"],
        ),
        (
            "configs/mock1.toml",
            "market_data.assets=10000000",
            &["market_data.assets", "memory"],
        ),
        (
            "configs/mock1.toml",
            "market_data.bars=1000000000",
            &["market_data.bars"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.zscore.window=9223372036854775807",
            &["dag.nodes.zscore.window", "10000000"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.zscore.window=1000000000000",
            &["dag.nodes.zscore.window"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.lagged.num_lags=9223372036854775807",
            &["dag.nodes.lagged.num_lags"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.lagged.num_lags=1000000",
            &["dag.nodes.lagged.num_lags", "1000"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.shifted.periods=9223372036854775807",
            &["dag.nodes.shifted.periods"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.shifted.periods=-9223372036854775807",
            &["dag.nodes.shifted.periods"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.range.term2_delay=9223372036854775807",
            &["dag.nodes.range.term2_delay"],
        ),
        (
            "configs/library.toml",
            "dag.nodes.smooth.depth=1000000000",
            &["dag.nodes.smooth.depth", "100"],
        ),
    ];
    for (config, set, needles) in cases {
        let o = run_for(&["run", config, "--set", set, "--out", &out], 60);
        clean_error(&o, needles);
    }
    assert!(MAX.parse::<i64>().is_ok());
}

#[test]
fn a_one_nanosecond_resample_is_refused_and_a_one_nanosecond_calendar_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let o = run_for(
        &[
            "run",
            "configs/mock1.toml",
            "--set",
            "dag.resample_rule=1ns",
            "--out",
            &out,
        ],
        60,
    );
    clean_error(&o, &["resampling node `resample`", "memory", "longer rule"]);
    // 1 ns bars from an afternoon start: the first bar is found by arithmetic. The run
    // then fails in the resample (1950 bars of 1 ns fill 1950 ns), not in a hang.
    let o = run_for(
        &[
            "config",
            "show",
            "configs/mock1.toml",
            "--set",
            "market_data.freq=1ns",
            "--set",
            "market_data.start=\"2024-01-02 13:00\"",
        ],
        30,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = run_for(
        &[
            "data",
            "import",
            "configs/mock1.toml",
            "--set",
            "market_data.freq=1ns",
            "--set",
            "market_data.start=\"2024-01-02 13:00\"",
            "--out",
            &tmp.path().join("ns.parquet").display().to_string(),
        ],
        60,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("imported 39000 rows"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn infinite_costs_are_refused_and_the_chart_never_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    for key in ["impact_bps", "half_spread_bps"] {
        let set = format!("system.costs.{key}=1e308");
        let o = run_for(
            &[
                "run",
                "configs/mock1_system.toml",
                "--set",
                &set,
                "--out",
                &out,
            ],
            120,
        );
        clean_error(&o, &[&format!("system.costs.{key}"), "from 0 to"]);
    }
}

#[test]
fn sweep_threads_are_bounded_and_huge_sweeps_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let o = run_for(
        &[
            "sweep",
            "configs/sweep_example.toml",
            "--threads",
            "1000000",
            "--out",
            &out,
        ],
        30,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses it: {}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains("give 1 to 1024"),
        "{}",
        text(&o.stderr)
    );
    // 4^10 points, written as a config.
    let mut cfg = std::fs::read_to_string(workspace().join("configs/mock1.toml")).unwrap();
    cfg.push_str("\n[sweep]\n");
    for i in 0..10 {
        cfg.push_str(&format!("\"dag.p{i}\" = [1, 2, 3, 4]\n"));
    }
    let path = tmp.path().join("big_sweep.toml");
    std::fs::write(&path, cfg).unwrap();
    let p = path.display().to_string();
    for args in [
        vec!["sweep", &p, "--out", &out],
        vec!["config", "sweep", &p],
    ] {
        let o = run_for(&args, 30);
        clean_error(&o, &["more than 10000 points"]);
    }
}

#[test]
fn deep_keys_do_not_overflow_the_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let deep = vec!["k"; 60_000].join(".");
    let o = run_for(
        &[
            "config",
            "show",
            "configs/mock1.toml",
            "--set",
            &format!("{deep}=1"),
        ],
        30,
    );
    clean_error(&o, &["60000 segments", "at most 64"]);
    assert!(o.stderr.len() < 2_000, "the path is not echoed whole");
    let mut cfg = std::fs::read_to_string(workspace().join("configs/mock1.toml")).unwrap();
    cfg.push_str(&format!("\n[sweep]\n\"{deep}\" = [1, 2]\n"));
    let path = tmp.path().join("deep.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = run_for(&["config", "sweep", &path.display().to_string()], 30);
    clean_error(&o, &["60000 segments"]);
}

#[test]
fn nan_and_infinite_parameters_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let cases: &[(&str, &str, &str)] = &[
        (
            "configs/mock1.toml",
            "dag.compress_scale=0",
            "dag.compress_scale",
        ),
        (
            "configs/mock1.toml",
            "dag.compress_scale=-1",
            "dag.compress_scale",
        ),
        (
            "configs/mock1.toml",
            "dag.compress_scale=nan",
            "dag.compress_scale",
        ),
        (
            "configs/mock1.toml",
            "dag.compress_scale=inf",
            "dag.compress_scale",
        ),
        (
            "configs/mock1.toml",
            "dag.weights=[nan, 0.1, 0.2, 0.3]",
            "dag.weights",
        ),
        (
            "configs/library.toml",
            "dag.nodes.bounded.lower=nan",
            "dag.nodes.bounded.lower",
        ),
        (
            "configs/library.toml",
            "dag.nodes.bounded.upper=nan",
            "dag.nodes.bounded.upper",
        ),
    ];
    for (config, set, key) in cases {
        let o = run_for(&["run", config, "--set", set, "--out", &out], 60);
        clean_error(&o, &[key]);
    }
}

#[test]
fn an_edge_with_extra_elements_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = r#"
[market_data]
type = "synthetic"
assets = 2
bars = 30

[dag]
type = "graph"
edges = [["bars", "rets", "zscore"]]

[dag.nodes.bars]
type = "market_data"

[dag.nodes.rets]
type = "compute_ret_0"
cols = ["close"]
"#;
    let path = tmp.path().join("edges.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = kaizenflow(&["config", "show", &path.display().to_string()]);
    clean_error(&o, &["dag.edges", "edge 1 has 3 elements"]);
}

#[test]
fn node_ids_that_are_not_plain_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for id in ["../../escaped", "/tmp/abs", "a/b", ".hidden", "a b"] {
        let cfg = format!(
            "[market_data]\ntype = \"synthetic\"\nassets = 2\nbars = 30\n\n[dag]\ntype = \"graph\"\n\n\
             [dag.nodes.bars]\ntype = \"market_data\"\n\n[dag.nodes.\"{id}\"]\ntype = \"ema\"\n\
             cols = [\"close\"]\ntau = 2.0\n"
        );
        let path = tmp.path().join("ids.toml");
        std::fs::write(&path, cfg).unwrap();
        let out = tmp.path().join("deep/o");
        let o = kaizenflow(&[
            "run",
            &path.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--capture",
            "all",
        ]);
        clean_error(&o, &["is not a plain name"]);
        // Nothing was written outside `--out`: `deep/` holds at most `o`, and `tmp`
        // only the config and `deep` (an escape from `deep/o/capture/ID` or
        // `deep/o/state/ID.bin` would land in `deep/`).
        let names = |d: &std::path::Path| -> Vec<String> {
            std::fs::read_dir(d)
                .map(|r| {
                    r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut top = names(tmp.path());
        top.sort();
        assert!(
            top == ["deep", "ids.toml"] || top == ["ids.toml"],
            "{id}: {top:?}"
        );
        let deep = names(&tmp.path().join("deep"));
        assert!(deep.iter().all(|n| n == "o"), "{id}: {deep:?}");
    }
}

#[test]
fn data_import_reads_one_section_of_a_whole_system_config() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.parquet");
    let o = kaizenflow(&[
        "data",
        "import",
        "configs/mock1_system.toml",
        "--out",
        &store.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A typo under the imported section is still caught.
    let o = kaizenflow(&[
        "data",
        "import",
        "configs/mock1_system.toml",
        "--set",
        "market_data.sead=1",
        "--out",
        &store.display().to_string(),
    ]);
    clean_error(&o, &["market_data.sead: unknown key"]);
}

/// A store imported from the synthetic data, and its pristine `data info`.
fn store(tmp: &Path) -> (std::path::PathBuf, String) {
    let store = tmp.join("s.parquet");
    let o = kaizenflow(&[
        "data",
        "import",
        "configs/mock1.toml",
        "--out",
        &store.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let info = kaizenflow(&["data", "info", &store.display().to_string()]);
    (store, text(&info.stdout))
}

#[test]
fn a_corrupt_embedded_arrow_schema_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = store(tmp.path());
    let bytes = std::fs::read(&path).unwrap();
    let key = b"ARROW:schema";
    let at = bytes.windows(key.len()).rposition(|w| w == key).unwrap() + key.len();
    let mut refused = 0;
    for off in (14..600).step_by(3) {
        let j = at + off;
        if j >= bytes.len() - 8 {
            break;
        }
        let mut b = bytes.clone();
        b[j] = if b[j] == b'A' { b'B' } else { b'A' };
        let p = tmp.path().join("c.parquet");
        std::fs::write(&p, &b).unwrap();
        let o = kaizenflow(&["data", "info", &p.display().to_string()]);
        assert_ne!(
            o.status.code(),
            Some(101),
            "offset {off}: {}",
            text(&o.stderr)
        );
        if o.status.code() == Some(1) {
            assert!(text(&o.stderr).contains("c.parquet"), "{}", text(&o.stderr));
            refused += 1;
        }
    }
    assert!(refused > 10, "most schema flips are refused ({refused})");
}

#[test]
fn flipped_bits_in_a_store_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, pristine) = store(tmp.path());
    let bytes = std::fs::read(&path).unwrap();
    // Deterministic positions spread over the file (data pages and footer).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..40 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = 4 + (state as usize) % (bytes.len() - 12);
        let mut b = bytes.clone();
        b[j] ^= 1 << (state % 8);
        let p = tmp.path().join("f.parquet");
        std::fs::write(&p, &b).unwrap();
        let o = kaizenflow(&["data", "info", &p.display().to_string()]);
        match o.status.code() {
            Some(1) => assert!(text(&o.stderr).contains("f.parquet"), "{}", text(&o.stderr)),
            // Accepted only when the flip changed nothing that is read (the output is
            // the pristine one but for the file name).
            Some(0) => assert_eq!(
                text(&o.stdout).replace("f.parquet", "s.parquet"),
                pristine,
                "byte {j} flipped and accepted with other content"
            ),
            other => panic!("byte {j}: {other:?}: {}", text(&o.stderr)),
        }
    }
}

#[test]
fn a_value_changed_by_one_ulp_in_a_data_page_fails_its_checksum() {
    // Without the store's checksums this flip reads back as another valid number
    // (1 ulp away), and `data info`, which shows no values, would not see it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut csv = String::from("t,close\n");
    for i in 0..50 {
        csv.push_str(&format!(
            "2024-01-02 09:{:02}:00,{}\n",
            i + 1,
            100.0 + f64::from(i) * 0.37
        ));
    }
    std::fs::write(dir.join("AAA.csv"), csv).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[market_data]\ntype = \"csv\"\nfiles = \"{}/*.csv\"\ntimestamp_column = \"t\"\n\
             asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let store = dir.join("u.parquet");
    let o = kaizenflow(&[
        "data",
        "import",
        &cfg.display().to_string(),
        "--compression",
        "none",
        "--out",
        &store.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut bytes = std::fs::read(&store).unwrap();
    // A value in the middle of the range: neither a page's min nor its max, so its
    // bytes are in the data (or dictionary) page only.
    let needle = (100.0 + 25.0 * 0.37f64).to_le_bytes();
    let at = bytes
        .windows(8)
        .position(|w| w == needle)
        .expect("the value's bytes in the uncompressed store");
    bytes[at] ^= 1;
    let bad = dir.join("flipped.parquet");
    std::fs::write(&bad, &bytes).unwrap();
    let o = kaizenflow(&["data", "info", &bad.display().to_string()]);
    clean_error(
        &o,
        &["flipped.parquet", "column `close`", "fail their checksum"],
    );
}

#[test]
fn bad_csv_input_is_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let write = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
    let cfg = |glob: &str, extra: &str| {
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            format!(
                "[market_data]\ntype = \"csv\"\nfiles = \"{glob}\"\ntimestamp_column = \"t\"\n\
                 asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n{extra}"
            ),
        )
        .unwrap();
        p.display().to_string()
    };
    let import = |config: &str| {
        kaizenflow(&[
            "data",
            "import",
            config,
            "--out",
            &dir.join("o.parquet").display().to_string(),
        ])
    };
    // Years outside what nanoseconds hold.
    write("AAA.csv", "t,close\n1000-01-01 09:31:00,1.0\n");
    clean_error(
        &import(&cfg(&format!("{}/AAA.csv", dir.display()), "")),
        &["AAA.csv:2", "1677 to 2262"],
    );
    // Duplicate columns, and a rename onto an existing column.
    write("AAA.csv", "t,close,close\n2024-01-02 09:31:00,1.0,2.0\n");
    clean_error(
        &import(&cfg(&format!("{}/AAA.csv", dir.display()), "")),
        &["AAA.csv", "both named `close`"],
    );
    write("AAA.csv", "t,close,last\n2024-01-02 09:31:00,1.0,2.0\n");
    clean_error(
        &import(&cfg(
            &format!("{}/AAA.csv", dir.display()),
            "rename = { last = \"close\" }\n",
        )),
        &["AAA.csv", "both named `close`"],
    );
    // Columns in another order are read by name; other columns name both files.
    write("AAA.csv", "t,close,volume\n2024-01-02 09:31:00,1.0,10\n");
    write("BBB.csv", "t,volume,close\n2024-01-02 09:31:00,20,2.0\n");
    let c = cfg(&format!("{}/*.csv", dir.display()), "");
    let o = import(&c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let info = kaizenflow(&["data", "info", &dir.join("o.parquet").display().to_string()]);
    assert!(
        text(&info.stdout).contains("columns: close, volume"),
        "{}",
        text(&info.stdout)
    );
    write("BBB.csv", "t,open,close\n2024-01-02 09:31:00,20,2.0\n");
    clean_error(
        &import(&c),
        &["BBB.csv", "lacks [volume]", "has [open] more"],
    );
    std::fs::remove_file(dir.join("BBB.csv")).unwrap();
    // A dangling symlink that the glob matches.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("gone.csv"), dir.join("CCC.csv")).unwrap();
        clean_error(&import(&c), &["CCC.csv", "symbolic link to a missing file"]);
    }
}

#[test]
fn invalid_utf8_in_a_config_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = b"[market_data]\ntype = \"synthetic\"\nseed = 1 # \xff\n".to_vec();
    bytes.extend_from_slice(b"assets = 2\n");
    let p = tmp.path().join("u.toml");
    std::fs::write(&p, bytes).unwrap();
    let o = kaizenflow(&["config", "show", &p.display().to_string()]);
    clean_error(&o, &["u.toml:3:", "invalid UTF-8"]);
}

#[test]
fn a_rerun_into_an_earlier_out_leaves_none_of_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let o = kaizenflow(&["run", "configs/mock1_system.toml", "--out", &out]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in ["orders.parquet", "stats.toml", "pnl.png", ".kaizenflow-run"] {
        assert!(Path::new(&out).join(f).exists(), "{f}");
    }
    let o = kaizenflow(&["run", "configs/mock1.toml", "--out", &out]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in ["orders.parquet", "fills.parquet", "stats.toml", "pnl.png"] {
        assert!(
            !Path::new(&out).join(f).exists(),
            "{f} of the earlier run is left"
        );
    }
    let marker = std::fs::read_to_string(Path::new(&out).join(".kaizenflow-run")).unwrap();
    assert!(marker.contains("complete = true"), "{marker}");
    // A directory that no run wrote is refused, unless --force, which keeps the
    // user's own files.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let m = mine.display().to_string();
    let o = kaizenflow(&["run", "configs/mock1.toml", "--out", &m]);
    clean_error(&o, &["is not empty", "--force"]);
    let o = kaizenflow(&["run", "configs/mock1.toml", "--out", &m, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(mine.join("result.parquet").exists());
}

#[test]
fn a_damaged_state_file_is_refused_by_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let o = kaizenflow(&["run", "configs/library.toml", "--out", &out]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let state = Path::new(&out).join("state");
    let file = std::fs::read_dir(&state)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&file).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(&file, &b).unwrap();
    let o = kaizenflow(&[
        "run",
        "configs/library.toml",
        "--state",
        &out,
        "--out",
        &tmp.path().join("o2").display().to_string(),
    ]);
    clean_error(
        &o,
        &[
            "fails its checksum",
            &file.file_name().unwrap().to_string_lossy(),
        ],
    );
}
