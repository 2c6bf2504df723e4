//! Generated hostile input for the four readers, in process: the config parser (any
//! text, any `--set`), the CSV reader (mutated files), the Parquet store reader
//! (damaged bytes) and the state loader (damaged states). None may panic; a damaged
//! store either fails or reads back exactly what was written; a damaged state always
//! fails. `PROPTEST_CASES` sets the number of cases of every property (the defaults
//! below keep CI to seconds).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kaizenflow::Registries;
use kf_config::Config;
use kf_datapull::parquet_store::{StoreOptions, write_frame};
use kf_datapull::{CsvSource, ParquetStore, Query, Source, SyntheticBars, SyntheticParams};
use kf_frame::Frame;
use proptest::prelude::*;

/// `default` cases, or `PROPTEST_CASES` when set (`with_cases` alone would ignore it).
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Runs `f` and fails the property if it panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match kf_frame::guard::catch_quiet(f) {
        Ok(v) => v,
        Err(panic) => panic!("{what} panicked: {panic}"),
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn the_config_parser_takes_any_text(text in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        no_panic("parsing text", || Config::from_toml_str(&text, "x.toml").map(|c| c.to_toml_string()).ok());
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        no_panic("parsing bytes", || Config::from_toml_str(&raw, "x.toml").map(|c| c.id()).ok());
    }

    #[test]
    fn overrides_take_any_path_and_value(path in "[a-z.]{0,80}", value in ".{0,40}") {
        let mut c = Config::from_toml_str("[a]\nb = 1\n", "x.toml").unwrap();
        let set = no_panic("an override", || c.set(&format!("{path}={value}")).is_ok());
        if set {
            no_panic("printing", || c.to_toml_string());
            no_panic("checking keys", || c.check_all_used().is_ok());
        }
    }
}

/// The files of a small CSV source.
fn csv_files() -> Vec<(String, String)> {
    ["AAA", "BBB"]
        .iter()
        .map(|a| {
            let mut s = String::from("t,close,volume\n");
            for m in 0..30 {
                s.push_str(&format!(
                    "2024-01-02 14:{:02}:00,{}.5,{}\n",
                    30 + m,
                    100 + m,
                    1000 + m
                ));
            }
            (a.to_string(), s)
        })
        .collect()
}

fn csv_source(dir: &Path) -> Option<CsvSource> {
    let text = format!(
        "[market_data]\ntype = \"csv\"\nfiles = \"{}/*.csv\"\ntimestamp_column = \"t\"\n\
         asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n",
        dir.display()
    );
    let config = Config::from_toml_str(&text, "c.toml").ok()?;
    CsvSource::from_config(&config.section("market_data").ok()?).ok()
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn the_csv_reader_takes_any_mutation(
        file in 0usize..2,
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 0..16),
        cut in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut files = csv_files();
        let mut bytes = files[file].1.clone().into_bytes();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes.splice(i..(i + junk.len()).min(bytes.len()), junk.iter().copied());
        }
        files[file].1 = String::from_utf8_lossy(&bytes).into_owned();
        for (a, body) in &files {
            std::fs::write(dir.path().join(format!("{a}.csv")), body).unwrap();
        }
        let src = csv_source(dir.path());
        if let Some(src) = src {
            let read = no_panic("reading csv", || src.load(&Query::all()));
            if let Err(e) = read {
                // An error names the file it comes from.
                let msg = e.to_string();
                prop_assert!(msg.contains(".csv"), "{msg}");
            }
        }
    }
}

/// A pristine store and the frame it holds.
fn store() -> &'static (PathBuf, Vec<u8>, Frame) {
    static STORE: OnceLock<(PathBuf, Vec<u8>, Frame)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kf-fuzz-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.parquet");
        let frame = SyntheticBars::new(SyntheticParams {
            assets: 5,
            bars: 300,
            ..SyntheticParams::default()
        })
        .unwrap()
        .generate()
        .unwrap();
        write_frame(
            &frame,
            &path,
            StoreOptions {
                time_block: 100,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let back = ParquetStore::open(&path)
            .unwrap()
            .load(&Query::all())
            .unwrap();
        (path, std::fs::read(dir.join("s.parquet")).unwrap(), back)
    })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn a_damaged_store_fails_or_reads_back_what_was_written(
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        run in 0usize..3,
    ) {
        let (_, bytes, pristine) = store();
        let mut b = bytes.clone();
        let i = at.index(b.len());
        match run {
            0 => b[i] ^= 1 << bit,
            1 => b.truncate(i),
            _ => b[i..(i + 32).min(bytes.len())].fill(bit),
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.parquet");
        std::fs::write(&p, &b).unwrap();
        let read = no_panic("reading a store", || ParquetStore::open(&p).and_then(|s| s.load(&Query::all())));
        match read {
            Ok(frame) => prop_assert!(frame.bit_eq(pristine), "byte {i} changed what reads back"),
            Err(e) => prop_assert!(e.to_string().contains("d.parquet"), "{e}"),
        }
    }
}

/// A fitted DAG's state folder and the config it came from.
fn fitted() -> &'static (PathBuf, Config) {
    static FITTED: OnceLock<(PathBuf, Config)> = OnceLock::new();
    FITTED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::env::temp_dir().join(format!("kf-fuzz-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let config = root.join("configs/library.toml");
        let cli = <kaizenflow::cli::Cli as clap::Parser>::try_parse_from([
            "kaizenflow".as_ref(),
            "run".as_ref(),
            config.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .unwrap();
        kaizenflow::cli::run(cli, &mut std::io::sink()).unwrap();
        (out, Config::from_file(&config).unwrap())
    })
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn a_damaged_state_is_always_refused(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<bool>(),
    ) {
        let (out, config) = fitted();
        let states: Vec<PathBuf> = std::fs::read_dir(out.join("state")).unwrap().map(|e| e.unwrap().path()).collect();
        let victim = pick.get(&states);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        for s in &states {
            std::fs::copy(s, dir.path().join("state").join(s.file_name().unwrap())).unwrap();
        }
        let mut b = std::fs::read(victim).unwrap();
        let i = at.index(b.len());
        if cut { b.truncate(i) } else { b[i] ^= 1 << bit }
        std::fs::write(dir.path().join("state").join(victim.file_name().unwrap()), &b).unwrap();
        let dag = kf_system::build_with(&Registries::default(), config).unwrap().dag.unwrap();
        let read = no_panic("reading states", || kf_dataflow::runner::read_states(&dag, dir.path()));
        prop_assert!(read.is_err(), "a damaged state (byte {i}) was read");
    }
}
