//! The `kf-bench datapull` case: the same bars read from CSV, from a Parquet store
//! and from an HDF5 store (feature `hdf5`), whole and as a 1-day x 50-asset slice.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kf_datapull::parquet_store::write_frame;
use kf_datapull::{
    CsvParams, CsvSource, ParquetStore, Query, Source, StoreOptions, SyntheticBars, SyntheticParams,
};
use kf_frame::{Frame, Timestamp};

/// One measured read.
pub struct Figure {
    /// What was read.
    pub case: String,
    /// Seconds (median of the runs).
    pub seconds: f64,
    /// Cells (bar x asset) returned.
    pub rows: usize,
    /// Bytes of the file(s) behind the read.
    pub bytes: u64,
}

impl Figure {
    /// One line of the report.
    pub fn line(&self) -> String {
        format!(
            "{:<44} {:>10.4} s {:>12.1} M rows/s {:>9.1} MB/s",
            self.case,
            self.seconds,
            self.rows as f64 / self.seconds / 1e6,
            self.bytes as f64 / self.seconds / 1e6
        )
    }
}

/// Median seconds of `runs` runs of `f`, and its last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    match last {
        Some(v) => (times[times.len() / 2], v),
        None => unreachable!("at least one run"),
    }
}

fn dir_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

/// Writes `frame` as one CSV file per asset (`<asset>.csv`, ISO UTC bar ends).
fn write_csv(frame: &Frame, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let stamps: Vec<String> = frame
        .end_ts()
        .iter()
        .map(|&t| {
            chrono::DateTime::from_timestamp_nanos(t)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .collect();
    for (a, name) in frame.assets().iter().enumerate() {
        let path = dir.join(format!("{name}.csv"));
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        writeln!(w, "timestamp,{}", frame.features().join(","))?;
        for (r, stamp) in stamps.iter().enumerate() {
            write!(w, "{stamp}")?;
            for f in 0..frame.n_features() {
                write!(w, ",{}", frame.feature_at(f).row(r)[a])?;
            }
            writeln!(w)?;
        }
        w.flush()?;
        files.push(path);
    }
    Ok(files)
}

/// Runs the case on a generated store of `assets x bars` one-minute bars (24/7)
/// under `dir`, printing each figure; returns them.
pub fn run(assets: usize, bars: usize, dir: &Path, runs: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut report = |f: Figure| {
        println!("{}", f.line());
        figures.push(f);
    };
    let started = Instant::now();
    let frame = match SyntheticBars::new(SyntheticParams {
        assets,
        bars,
        start: "2024-01-01 00:01".into(),
        tz: "UTC".into(),
        ..SyntheticParams::default()
    })
    .and_then(|s| s.generate())
    {
        Ok(f) => f,
        Err(e) => panic!("cannot generate the bars: {e}"),
    };
    let cells = assets * bars;
    eprintln!(
        "generated {assets} assets x {bars} bars x 5 features in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Stores.
    let csv_dir = dir.join("csv");
    let _ = std::fs::remove_dir_all(&csv_dir);
    std::fs::create_dir_all(&csv_dir).unwrap_or_else(|e| panic!("{}: {e}", csv_dir.display()));
    let t = Instant::now();
    let csv_files = write_csv(&frame, &csv_dir).unwrap_or_else(|e| panic!("writing CSV: {e}"));
    eprintln!(
        "wrote CSV ({:.0} MB) in {:.1} s",
        dir_bytes(&csv_files) as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let pq = dir.join("bars.parquet");
    let t = Instant::now();
    write_frame(&frame, &pq, StoreOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("wrote Parquet in {:.1} s", t.elapsed().as_secs_f64());
    let pq_raw = dir.join("bars-uncompressed.parquet");
    let raw_options = StoreOptions {
        compression: kf_datapull::StoreCompression::None,
        ..StoreOptions::default()
    };
    write_frame(&frame, &pq_raw, raw_options).unwrap_or_else(|e| panic!("{e}"));
    #[cfg(feature = "hdf5")]
    let (h5, h5_raw) = {
        let h5 = dir.join("bars.h5");
        let t = Instant::now();
        kf_datapull::hdf5_store::write_hdf5(&frame, &h5, Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("wrote HDF5 in {:.1} s", t.elapsed().as_secs_f64());
        let raw = dir.join("bars-uncompressed.h5");
        kf_datapull::hdf5_store::write_hdf5(
            &frame,
            &raw,
            kf_datapull::hdf5_store::Compression::None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (h5, raw)
    };

    // Full reads.
    let csv = CsvSource::new(
        CsvParams {
            files: csv_dir.join("*.csv").to_string_lossy().into_owned(),
            asset_from_file: Some("{asset}.csv".into()),
            ..CsvParams::default()
        },
        Path::new(""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (s, f) = time(1, || {
        csv.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(
        f.bit_eq(&frame),
        "CSV read differs: {:?}",
        f.first_difference(&frame)
    );
    drop(f);
    let csv_s = s;
    report(Figure {
        case: "CSV (one file per asset), full".into(),
        seconds: s,
        rows: cells,
        bytes: dir_bytes(&csv_files),
    });
    let store = ParquetStore::open(&pq).unwrap_or_else(|e| panic!("{e}"));
    let (s, f) = time(runs, || {
        store.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(f.bit_eq(&frame));
    drop(f);
    let pq_bytes = dir_bytes(std::slice::from_ref(&pq));
    report(Figure {
        case: "Parquet store, full".into(),
        seconds: s,
        rows: cells,
        bytes: pq_bytes,
    });
    eprintln!("Parquet full read is {:.1}x faster than CSV", csv_s / s);
    let raw_store = ParquetStore::open(&pq_raw).unwrap_or_else(|e| panic!("{e}"));
    let (s, f) = time(runs, || {
        raw_store
            .load(&Query::all())
            .unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(f.bit_eq(&frame));
    drop(f);
    let raw_bytes = dir_bytes(std::slice::from_ref(&pq_raw));
    report(Figure {
        case: "Parquet store (uncompressed), full".into(),
        seconds: s,
        rows: cells,
        bytes: raw_bytes,
    });
    eprintln!(
        "uncompressed Parquet full read is {:.1}x faster than CSV",
        csv_s / s
    );
    #[cfg(feature = "hdf5")]
    let (h5_store, h5_raw_store) = {
        let h5_store =
            kf_datapull::hdf5_store::Hdf5Store::open(&h5).unwrap_or_else(|e| panic!("{e}"));
        let (s, f) = time(runs, || {
            h5_store
                .load(&Query::all())
                .unwrap_or_else(|e| panic!("{e}"))
        });
        assert!(f.bit_eq(&frame));
        drop(f);
        report(Figure {
            case: "HDF5 store, full".into(),
            seconds: s,
            rows: cells,
            bytes: dir_bytes(std::slice::from_ref(&h5)),
        });
        eprintln!("HDF5 full read is {:.1}x faster than CSV", csv_s / s);
        use kf_datapull::hdf5_store::{Hdf5Store, ReadMode};
        let h5_raw_bytes = dir_bytes(std::slice::from_ref(&h5_raw));
        for (label, mode) in [
            ("library", ReadMode::Library),
            ("parallel pread", ReadMode::Copy),
            ("mapped", ReadMode::Map),
        ] {
            let store = Hdf5Store::open(&h5_raw)
                .unwrap_or_else(|e| panic!("{e}"))
                .with_read_mode(mode);
            let (s, f) = time(runs, || {
                store.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
            });
            assert!(f.bit_eq(&frame));
            drop(f);
            report(Figure {
                case: format!("HDF5 uncompressed, full ({label})"),
                seconds: s,
                rows: cells,
                bytes: h5_raw_bytes,
            });
            eprintln!(
                "uncompressed HDF5 full read ({label}) is {:.1}x faster than CSV",
                csv_s / s
            );
        }
        // The mapped read, then one pass over every value (a sum per feature): what
        // a consumer pays, compared with the same pass over owned memory.
        let mapped = Hdf5Store::open(&h5_raw).unwrap_or_else(|e| panic!("{e}"));
        let pass = |f: &Frame| -> f64 {
            (0..f.n_features())
                .map(|i| f.feature_at(i).values().iter().sum::<f64>())
                .sum()
        };
        let (s, _) = time(runs, || {
            let f = mapped.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"));
            std::hint::black_box(pass(&f))
        });
        report(Figure {
            case: "HDF5 uncompressed, mapped + one pass".into(),
            seconds: s,
            rows: cells,
            bytes: h5_raw_bytes,
        });
        // Where the mapped read's cost goes: page faults in the read (pre-faulted)
        // and in the first pass over it afterwards (none expected).
        let faults = crate::stream::minor_faults;
        let f0 = faults();
        let f = mapped.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"));
        let f1 = faults();
        std::hint::black_box(pass(&f));
        let f2 = faults();
        drop(f);
        if let (Some(f0), Some(f1), Some(f2)) = (f0, f1, f2) {
            eprintln!(
                "mapped full read: {} minor page faults in the read, {} in the pass after it",
                f1 - f0,
                f2 - f1
            );
        }
        let (s, _) = time(runs, || {
            std::hint::black_box(pass(std::hint::black_box(&frame)))
        });
        report(Figure {
            case: "one pass over the frame in memory".into(),
            seconds: s,
            rows: cells,
            bytes: h5_raw_bytes,
        });
        let h5_raw_store = mapped;
        (h5_store, h5_raw_store)
    };

    // A 1-day x 50-asset slice in the middle, all features: contiguous assets, and
    // every tenth asset.
    let day = 1440.min(bars);
    let r0 = (bars - day) / 2;
    let (t0, t1) = (frame.end_ts()[r0], frame.end_ts()[r0 + day - 1]);
    let k = 50.min(assets);
    let contiguous: Vec<String> = frame.assets()[(assets - k) / 2..][..k].to_vec();
    let stride = (assets / k).max(1);
    let scattered: Vec<String> = frame
        .assets()
        .iter()
        .step_by(stride)
        .take(k)
        .cloned()
        .collect();
    for (label, names) in [("contiguous", &contiguous), ("every 10th", &scattered)] {
        let q = Query::between(t0, t1).assets(names);
        let expected = q.apply(&frame).unwrap_or_else(|e| panic!("{e}"));
        let (s, (f, st)) = time(runs.max(5), || {
            store.query_with_stats(&q).unwrap_or_else(|e| panic!("{e}"))
        });
        assert!(f.bit_eq(&expected));
        report(Figure {
            case: format!("Parquet 1 day x {k} assets ({label})"),
            seconds: s,
            rows: day * k,
            bytes: st.bytes_read,
        });
        let (s, (f, st)) = time(runs.max(5), || {
            raw_store
                .query_with_stats(&q)
                .unwrap_or_else(|e| panic!("{e}"))
        });
        assert!(f.bit_eq(&expected));
        report(Figure {
            case: format!("Parquet uncompressed 1 day x {k} assets ({label})"),
            seconds: s,
            rows: day * k,
            bytes: st.bytes_read,
        });
        #[cfg(feature = "hdf5")]
        {
            let (s, (f, _)) = time(runs.max(5), || {
                h5_store
                    .query_with_stats(&q)
                    .unwrap_or_else(|e| panic!("{e}"))
            });
            assert!(f.bit_eq(&expected));
            report(Figure {
                case: format!("HDF5 1 day x {k} assets ({label})"),
                seconds: s,
                rows: day * k,
                bytes: 0,
            });
            let (s, (f, _)) = time(runs.max(5), || {
                h5_raw_store
                    .query_with_stats(&q)
                    .unwrap_or_else(|e| panic!("{e}"))
            });
            assert!(f.bit_eq(&expected));
            report(Figure {
                case: format!("HDF5 uncompressed 1 day x {k} assets ({label})"),
                seconds: s,
                rows: day * k,
                bytes: 0,
            });
        }
    }
    eprintln!(
        "slice window: {} .. {} ({} bars)",
        Timestamp(t0),
        Timestamp(t1),
        day
    );
    figures
}

/// The same comparison on the real minute bars of `us_equity_1min_2018` (40 stocks,
/// 687,393 rows, gzip CSV), read through `configs/data/us_equity_1min_2018.toml`.
pub fn run_real(dir: &Path, runs: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut report = |f: Figure| {
        println!("{}", f.line());
        figures.push(f);
    };
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/data/us_equity_1min_2018.toml");
    let c = kf_config::Config::from_file(&config).unwrap_or_else(|e| panic!("{e}"));
    let csv = c
        .section("market_data")
        .and_then(|s| CsvSource::from_config(&s))
        .unwrap_or_else(|e| panic!("{e} (is ../shared/data there? KF_SHARED_DATA overrides it)"));
    let (s, frame) = time(runs, || {
        csv.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
    });
    let rows = 687_393;
    let csv_s = s;
    report(Figure {
        case: "us_equity CSV.gz (40 files)".into(),
        seconds: s,
        rows,
        bytes: dir_bytes(csv.files()),
    });
    let pq = dir.join("us_equity.parquet");
    write_frame(&frame, &pq, StoreOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let store = ParquetStore::open(&pq).unwrap_or_else(|e| panic!("{e}"));
    let (s, f) = time(runs, || {
        store.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(f.bit_eq(&frame));
    report(Figure {
        case: "us_equity Parquet (zstd)".into(),
        seconds: s,
        rows,
        bytes: dir_bytes(&[pq]),
    });
    eprintln!("Parquet is {:.1}x faster than CSV.gz", csv_s / s);
    // One large file (an asset column): cut into chunks of lines parsed on every
    // thread (`RAYON_NUM_THREADS=1` reads it as one stream).
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/data/sp500_daily_2013_2018.toml");
    let c = kf_config::Config::from_file(&config).unwrap_or_else(|e| panic!("{e}"));
    let one = c
        .section("market_data")
        .and_then(|s| CsvSource::from_config(&s))
        .unwrap_or_else(|e| panic!("{e} (is ../shared/data there? KF_SHARED_DATA overrides it)"));
    let (s, long) = time(runs, || one.read_long().unwrap_or_else(|e| panic!("{e}")));
    report(Figure {
        case: format!(
            "sp500 daily CSV.gz (1 file, {} threads)",
            rayon::current_num_threads()
        ),
        seconds: s,
        rows: long.iter().map(|b| b.num_rows()).sum(),
        bytes: dir_bytes(one.files()),
    });
    #[cfg(feature = "hdf5")]
    for (name, comp) in [
        ("lzf", kf_datapull::hdf5_store::Compression::Lzf),
        ("uncompressed", kf_datapull::hdf5_store::Compression::None),
    ] {
        let h5 = dir.join(format!("us_equity-{name}.h5"));
        kf_datapull::hdf5_store::write_hdf5(&frame, &h5, comp).unwrap_or_else(|e| panic!("{e}"));
        let store = kf_datapull::hdf5_store::Hdf5Store::open(&h5).unwrap_or_else(|e| panic!("{e}"));
        let (s, f) = time(runs, || {
            store.load(&Query::all()).unwrap_or_else(|e| panic!("{e}"))
        });
        assert!(f.bit_eq(&frame));
        report(Figure {
            case: format!("us_equity HDF5 ({name})"),
            seconds: s,
            rows,
            bytes: dir_bytes(&[h5]),
        });
        eprintln!("HDF5 ({name}) is {:.1}x faster than CSV.gz", csv_s / s);
    }
    figures
}
