//! The parallel tick read against the sequential one: the same assets, row times
//! and values for every number of pieces, on files whose cuts fall on every line
//! and whose ticks tie across the cuts; and the cases it must leave to the
//! sequential read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::pieces::{join, read_all};
use super::{AssetTicks, TickParams, TickSource};
use crate::csv_source::chunks::Chunking;

const HEADER: &str = "timestamp_et,symbol,price,size,exchange,sale_condition,suspicious\n";

fn source(files: Vec<PathBuf>) -> TickSource {
    TickSource {
        params: TickParams::default(),
        files,
        tz: chrono_tz::America::New_York,
        delay: 0,
        frame: OnceLock::new(),
        loading: Mutex::new(()),
    }
}

fn pieces(chunks: usize) -> Chunking {
    Chunking {
        min_bytes: 0,
        max_bytes: u64::MAX,
        chunks,
    }
}

/// The sequential read's assets, in the order they appear.
fn sequential(src: &TickSource) -> Vec<(String, AssetTicks)> {
    let mut assets = Vec::new();
    for path in &src.files {
        src.read_file(path, &mut assets).unwrap();
    }
    assets
}

/// Every asset's name, row times and the bits of its values.
fn cells(assets: &[(String, AssetTicks)]) -> Vec<(String, Vec<i64>, Vec<[u64; 5]>)> {
    assets
        .iter()
        .map(|(name, t)| {
            let bits = t.values.iter().map(|v| v.map(f64::to_bits)).collect();
            (name.clone(), t.ts.clone(), bits)
        })
        .collect()
}

/// `rows` ticks of three assets: bursts of up to 9 trades in one millisecond, so
/// row times are pushed apart within a burst, and bursts that straddle cuts.
fn ticks(rows: usize, seed: u64, minute: u32) -> String {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut text = String::from(HEADER);
    let mut ms = 0u64;
    for i in 0..rows {
        let r = next();
        if r % 4 == 0 {
            ms += r % 3;
        }
        let symbol = ["SPY", "IBM", "AIG"][(next() % 3) as usize];
        let exchange = ["P", "", "Z"][(next() % 3) as usize];
        text.push_str(&format!(
            "2013-10-09 10:{minute:02}:{:02}.{:03},{symbol},{}.{:02},{},{exchange},{:x},{}\n",
            (ms / 1000) % 60,
            ms % 1000,
            160 + next() % 10,
            next() % 100,
            100 * (1 + i % 7),
            0x2000_0020 + (next() % 2) as u32,
            next() % 2
        ));
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn pieces_give_the_sequential_reads_rows_for_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    // Three files; SPY's and IBM's ticks go on from one file to the next, the
    // third file gzip.
    let a = write(dir.path(), "a.csv", &ticks(300, 1, 1));
    let b = write(dir.path(), "b.csv", &ticks(200, 2, 2));
    let c = dir.path().join("c.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(ticks(250, 3, 3).as_bytes()).unwrap();
    std::fs::write(&c, gz.finish().unwrap()).unwrap();
    let src = source(vec![a, b, c]);
    let want = cells(&sequential(&src));
    assert_eq!(want.len(), 3);
    // Some rows really were pushed past their tick's time.
    assert!(
        want.iter()
            .any(|(_, ts, _)| ts.windows(2).any(|w| w[1] == w[0] + 1))
    );
    for n in [1, 2, 3, 5, 8, 64, 1000] {
        let got = read_all(&src, pieces(n))
            .unwrap()
            .expect("well-formed files");
        assert_eq!(cells(&got), want, "{n} pieces");
    }
}

#[test]
fn ties_across_files_and_cuts_push_the_rows_after_them() {
    // Every tick of both files in one millisecond: each row is 1 ns after the one
    // before, across the file boundary and every cut.
    let dir = tempfile::tempdir().unwrap();
    let line = "2013-10-09 10:00:00.001,SPY,160.5,100,P,20000020,0\n";
    let a = write(dir.path(), "a.csv", &format!("{HEADER}{}", line.repeat(20)));
    let b = write(dir.path(), "b.csv", &format!("{HEADER}{}", line.repeat(15)));
    let src = source(vec![a, b]);
    for n in [1, 4, 64] {
        let got = read_all(&src, pieces(n)).unwrap().unwrap();
        let ts = &got[0].1.ts;
        assert_eq!(ts.len(), 35);
        assert!(ts.windows(2).all(|w| w[1] == w[0] + 1), "{n} pieces");
        assert_eq!(cells(&got), cells(&sequential(&src)));
    }
}

#[test]
fn what_the_sequential_read_must_name_is_left_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = ticks(40, 5, 1);
    let later = ticks(40, 6, 2);
    let cases = [
        // SPY goes back in time from one file to the next.
        (later.clone(), good.clone()),
        // A bad exchange, a bad price, a field too many.
        (good.clone(), later.replacen(",P,", ",PP,", 1)),
        (good.clone(), later.replacen("IBM,", "IBM,x", 1)),
        (good.clone(), later.replacen(",0\n", ",0,1\n", 1)),
    ];
    for (k, (first, second)) in cases.iter().enumerate() {
        let a = write(dir.path(), &format!("{k}a.csv"), first);
        let b = write(dir.path(), &format!("{k}b.csv"), second);
        let src = source(vec![a, b]);
        for n in [1, 7] {
            assert!(read_all(&src, pieces(n)).unwrap().is_none(), "case {k}");
        }
        // The source still says what is wrong, by file and line.
        let e = src.frame().unwrap_err().to_string();
        assert!(
            e.contains(&format!("{k}")) && e.contains(".csv:"),
            "case {k}: {e}"
        );
    }
    // A quote (which may hide a newline) is left to the `csv` crate, which reads
    // it.
    let a = write(dir.path(), "qa.csv", &good);
    let b = write(dir.path(), "qb.csv", &later.replacen("SPY", "\"SPY\"", 1));
    let src = source(vec![a, b]);
    assert!(read_all(&src, pieces(1)).unwrap().is_none());
    let frame = src.frame().unwrap();
    let price = frame.feature("price").unwrap();
    assert_eq!(price.values().iter().filter(|p| !p.is_nan()).count(), 80);
    // Within one file, an asset back in time across a cut.
    let mut text = ticks(60, 7, 1);
    text.push_str("2013-10-09 10:00:00.000,SPY,160.5,100,P,20000020,0\n");
    let path = write(dir.path(), "back.csv", &text);
    let src = source(vec![path]);
    for n in [1, 3, 64] {
        assert!(read_all(&src, pieces(n)).unwrap().is_none(), "{n} pieces");
    }
}

#[test]
fn joining_refuses_a_tick_out_of_order_and_a_crowded_millisecond() {
    let run = |raw: Vec<i64>, rows: Vec<i64>| super::pieces::Run {
        values: vec![[1.0; 5]; raw.len()],
        raw,
        rows,
    };
    // After a tick at 10 (row 12), a piece starting at 9 is out of order.
    let mut t = AssetTicks {
        last: Some((10, 12)),
        ts: vec![12],
        values: vec![[1.0; 5]],
    };
    assert!(join(&mut t, run(vec![9], vec![9])).is_none());
    // A tie at 10 moves on to 13 and 14; the third row (15 already) stays.
    assert!(join(&mut t, run(vec![10, 10, 15], vec![10, 11, 15])).is_some());
    assert_eq!(t.ts, [12, 13, 14, 15]);
    assert_eq!(t.last, Some((15, 15)));
    // Pushed a full millisecond past its own time: refused.
    let mut t = AssetTicks {
        last: Some((0, 999_999)),
        ts: vec![999_999],
        values: vec![[1.0; 5]],
    };
    assert!(join(&mut t, run(vec![0], vec![0])).is_none());
}

#[test]
fn a_file_group_never_exceeds_the_budget_but_always_holds_one_file() {
    // With room for one file's text at a time, each file is its own group and the
    // rows are the same.
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", &ticks(100, 8, 1));
    let b = write(dir.path(), "b.csv", &ticks(100, 9, 2));
    let src = source(vec![a.clone(), b]);
    let size = std::fs::metadata(&a).unwrap().len();
    let tight = Chunking {
        min_bytes: 0,
        max_bytes: size + 200,
        chunks: 3,
    };
    let got = read_all(&src, tight).unwrap().unwrap();
    assert_eq!(cells(&got), cells(&sequential(&src)));
}
