//! The CSV adapter on small hand-written files: time zones and bar labels, gzip,
//! per-file and column assets, renames, knowledge times and revisions, and bad
//! files whose errors name the file and line.

use std::io::Write;
use std::path::{Path, PathBuf};

use kf_config::Config;
use kf_datapull::{CsvParams, CsvSource, DataTypes, Query, Source};
use kf_frame::Timestamp;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn gzip(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
    p
}

fn ts(s: &str) -> i64 {
    Timestamp::parse(s).unwrap().nanos()
}

const AAPL: &str = "timestamp_et,open,high,low,close,volume\r\n\
2018-02-16 09:30:00,172.36,172.47,172.19,172.25,1667756\r\n\
2018-02-16 09:31:00,172.25,172.5,172.2,172.4,300000\r\n\
2018-03-12 09:30:00,177.0,177.5,176.9,177.2,900000\r\n";

const MSFT: &str = "timestamp_et,open,high,low,close,volume\n\
2018-02-16 09:31:00,92.0,92.1,91.9,92.05,100\n";

fn per_asset_params(dir: &Path) -> CsvParams {
    CsvParams {
        files: dir.join("*_1min.csv*").to_string_lossy().into_owned(),
        asset_from_file: Some("{asset}_1min.csv".into()),
        timestamp_column: "timestamp_et".into(),
        tz: "America/New_York".into(),
        label: "start".into(),
        freq: Some("1min".into()),
        delay: "2s".into(),
        ..CsvParams::default()
    }
}

#[test]
fn per_asset_files_with_start_labels_in_new_york_time() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "AAPL_1min.csv", AAPL);
    write(dir.path(), "MSFT_1min.csv", MSFT);
    let src = CsvSource::new(per_asset_params(dir.path()), Path::new("")).unwrap();
    let f = src.load(&Query::all()).unwrap();
    assert_eq!(f.assets(), ["AAPL", "MSFT"]);
    // A 09:30 ET bar start in February (EST, UTC-5) ends at 14:31 UTC; in March,
    // after the change to EDT (UTC-4), at 13:31 UTC.
    assert_eq!(
        f.end_ts(),
        [
            ts("2018-02-16 14:31"),
            ts("2018-02-16 14:32"),
            ts("2018-03-12 13:31")
        ]
    );
    assert!(
        f.end_ts()
            .iter()
            .zip(f.knowledge_ts())
            .all(|(e, k)| k - e == 2_000_000_000)
    );
    assert_eq!(f.value("close", "AAPL", 0).unwrap(), 172.25);
    assert_eq!(f.value("volume", "MSFT", 1).unwrap(), 100.0);
    assert!(f.value("close", "MSFT", 0).unwrap().is_nan());
    // A query is applied after reading.
    let q = Query::between(ts("2018-02-16 14:32"), ts("2018-02-16 14:32"))
        .assets(&["MSFT"])
        .columns(&["close"]);
    let one = src.load(&q).unwrap();
    assert_eq!(
        (one.n_rows(), one.value("close", "MSFT", 0).unwrap()),
        (1, 92.05)
    );
}

#[test]
fn gzip_and_plain_files_read_the_same() {
    let plain = tempfile::tempdir().unwrap();
    let zipped = tempfile::tempdir().unwrap();
    write(plain.path(), "AAPL_1min.csv", AAPL);
    gzip(zipped.path(), "AAPL_1min.csv.gz", AAPL);
    let a = CsvSource::new(per_asset_params(plain.path()), Path::new("")).unwrap();
    let mut p = per_asset_params(zipped.path());
    p.asset_from_file = Some("{asset}_1min.csv.gz".into());
    let b = CsvSource::new(p, Path::new("")).unwrap();
    assert!(
        a.load(&Query::all())
            .unwrap()
            .bit_eq(&b.load(&Query::all()).unwrap())
    );
}

#[test]
fn asset_column_renames_shift_and_date_format_from_config() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "daily.csv",
        "date,open,close,volume,Name\n2013-02-08,15.07,14.75,8407500,AAL\n2013-02-11,14.89,14.46,8882000,AAL\n2013-02-08,67.7142,67.8542,158168416,AAPL\n2013-02-11,,68.5614,129029425,AAPL\n",
    );
    let toml = "[md]\ntype = \"csv\"\nfiles = \"daily.csv\"\nasset_column = \"Name\"\ntimestamp_column = \"date\"\ntimestamp_format = \"%Y-%m-%d\"\ntz = \"America/New_York\"\nshift = \"16h\"\ncolumns = [\"px\", \"volume\"]\nrename = { close = \"px\" }\n";
    let cfg_path = write(dir.path(), "md.toml", toml);
    let c = Config::from_file(&cfg_path).unwrap();
    let src = DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap();
    assert!(c.check_all_used().is_ok());
    let f = src.load(&Query::all()).unwrap();
    assert_eq!(f.features(), ["px", "volume"]);
    assert_eq!(f.assets(), ["AAL", "AAPL"]);
    // A daily bar dated 2013-02-08, shifted to the 16:00 ET close (EST): 21:00 UTC.
    assert_eq!(f.end_ts(), [ts("2013-02-08 21:00"), ts("2013-02-11 21:00")]);
    assert_eq!(f.value("px", "AAPL", 1).unwrap(), 68.5614);
}

/// A CSV source of `file` (`asset,end,known,close`) with its knowledge column.
fn revised(file: &Path) -> CsvSource {
    CsvSource::new(
        CsvParams {
            files: file.to_string_lossy().into_owned(),
            asset_column: Some("asset".into()),
            timestamp_column: "end".into(),
            knowledge_column: Some("known".into()),
            ..CsvParams::default()
        },
        Path::new(""),
    )
    .unwrap()
}

#[test]
fn knowledge_column_gives_revisions_read_as_of() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rev.csv",
        "asset,end,known,close\nX,2024-01-02 10:00,2024-01-02 10:00:05,1.0\nX,2024-01-02 10:00,2024-01-02 11:00,1.5\nX,2024-01-02 10:01,2024-01-02 10:01:05,2.0\n",
    );
    let src = revised(&file);
    let early = src
        .load(&Query::all().as_of(ts("2024-01-02 10:30")))
        .unwrap();
    assert_eq!(early.value("close", "X", 0).unwrap(), 1.0);
    assert_eq!(early.n_rows(), 2);
    let late = src.load(&Query::all()).unwrap();
    assert_eq!(late.value("close", "X", 0).unwrap(), 1.5);
    assert_eq!(late.knowledge_ts()[0], ts("2024-01-02 11:00"));
    let none = src
        .load(&Query::all().as_of(ts("2024-01-02 10:00")))
        .unwrap();
    assert_eq!(none.n_rows(), 0);
    // The file is parsed once: a streaming run asks as of every bar, and each read
    // picks its versions from memory (the file could be gone, and reads still work).
    std::fs::remove_file(&file).unwrap();
    let again = src
        .load(&Query::all().as_of(ts("2024-01-02 10:30")))
        .unwrap();
    assert_eq!(again.value("close", "X", 0).unwrap(), 1.0);
    assert_eq!(again.n_rows(), 2);
}

#[test]
fn a_historical_view_of_revised_csv_serves_latest_reads_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rev.csv",
        "asset,end,known,close\nX,2024-01-02 10:00,2024-01-02 10:00:05,1.0\nX,2024-01-02 10:00,2024-01-02 11:00,1.5\n",
    );
    let src = revised(&file);
    let view = kf_datapull::Historical::new(std::sync::Arc::new(src));
    let first = view.query(&Query::all()).unwrap();
    std::fs::remove_file(&file).unwrap();
    let second = view
        .query(&Query::between(
            ts("2024-01-02 10:00"),
            ts("2024-01-02 10:00"),
        ))
        .unwrap();
    assert!(first.bit_eq(&second));
    assert_eq!(second.value("close", "X", 0).unwrap(), 1.5);
}

/// The error of reading `text` (as file `name`) with simple parameters.
fn read_error(
    name: &str,
    text: Option<&str>,
    bytes: Option<&[u8]>,
    tweak: impl FnOnce(&mut CsvParams),
) -> (String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    match (text, bytes) {
        (Some(t), _) => std::fs::write(&path, t).unwrap(),
        (_, Some(b)) => std::fs::write(&path, b).unwrap(),
        _ => {}
    }
    let mut p = CsvParams {
        files: path.to_string_lossy().into_owned(),
        asset: Some("X".into()),
        ..CsvParams::default()
    };
    tweak(&mut p);
    let e = CsvSource::new(p, Path::new("")).and_then(|s| s.load(&Query::all()));
    let e = e.map(|_| ()).unwrap_err().to_string();
    (e, path)
}

#[test]
fn bad_files_name_the_file_and_line() {
    let good =
        "timestamp,close\n2024-01-02 10:00,1.0\n2024-01-02 10:01,2.0\n2024-01-02 10:02,3.0\n";
    // Malformed line: a field too many.
    let (e, p) = read_error(
        "a.csv",
        Some("timestamp,close\n2024-01-02 10:00,1.0\n2024-01-02 10:01,2.0,9\n"),
        None,
        |_| {},
    );
    assert_eq!(
        e,
        format!("{}:3: has 3 fields, but the header has 2", p.display())
    );
    // Wrong type.
    let (e, p) = read_error(
        "b.csv",
        Some("timestamp,close\n2024-01-02 10:00,1.0\n2024-01-02 10:01,abc\n"),
        None,
        |_| {},
    );
    assert!(
        e.starts_with(&format!(
            "{}:3: column `close`: \"abc\" is not a number",
            p.display()
        )),
        "{e}"
    );
    // A bad time.
    let (e, p) = read_error(
        "c.csv",
        Some("timestamp,close\n2024-13-02 10:00,1.0\n"),
        None,
        |_| {},
    );
    assert!(
        e.starts_with(&format!(
            "{}:2: column `timestamp`: cannot read \"2024-13-02 10:00\" as a time",
            p.display()
        )),
        "{e}"
    );
    // Unsorted timestamps.
    let (e, p) = read_error(
        "d.csv",
        Some("timestamp,close\n2024-01-02 10:01,1.0\n2024-01-02 10:00,2.0\n"),
        None,
        |_| {},
    );
    assert!(e.starts_with(&format!("{}:3: bar time 2024-01-02T10:00:00Z is before the previous one for asset X (2024-01-02T10:01:00Z at line 2)", p.display())), "{e}");
    // Duplicates are an error in strict order, allowed for ticks.
    let dup = "timestamp,close\n2024-01-02 10:00,1.0\n2024-01-02 10:00,2.0\n";
    let (e, _) = read_error("e.csv", Some(dup), None, |_| {});
    assert!(
        e.contains(":3: bar time 2024-01-02T10:00:00Z is equal to the previous one"),
        "{e}"
    );
    // Truncated gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"timestamp,close\n").unwrap();
    for i in 0..5_000 {
        writeln!(
            gz,
            "2024-01-{:02} {:02}:{:02},{i}.5",
            2 + i / 1440,
            i / 60 % 24,
            i % 60
        )
        .unwrap();
    }
    let gz = gz.finish().unwrap();
    let (e, p) = read_error("f.csv.gz", None, Some(&gz[..gz.len() / 2]), |_| {});
    assert!(
        e.starts_with(&format!("{}:", p.display())) && e.contains("is the file truncated"),
        "{e}"
    );
    // A missing column names the header.
    let (e, p) = read_error("g.csv", Some(good), None, |p| {
        p.timestamp_column = "time".into()
    });
    assert_eq!(
        e,
        format!(
            "{}: no column `time` (configured as `timestamp_column`); the header has: timestamp, close",
            p.display()
        )
    );
    // An empty file.
    let (e, p) = read_error("h.csv", Some(""), None, |_| {});
    assert_eq!(
        e,
        format!("{}: the file is empty: no header line", p.display())
    );
    // No file at all.
    let (e, p) = read_error("i.csv", None, None, |_| {});
    assert_eq!(
        e,
        format!(
            "csv source: files: {} does not exist or is not a file",
            p.display()
        )
    );
    // Daylight-saving gap in a local zone.
    let (e, _) = read_error(
        "j.csv",
        Some("timestamp,close\n2018-03-11 02:30,1.0\n"),
        None,
        |p| p.tz = "America/New_York".into(),
    );
    assert!(
        e.contains(
            ":2: column `timestamp`: \"2018-03-11 02:30\" does not exist in America/New_York"
        ),
        "{e}"
    );
}

#[test]
fn config_errors_are_located() {
    let cases = [
        (
            "files = \"/nonexistent/*.csv\"\nasset = \"X\"",
            "t.toml:3: md.files: no file matches /nonexistent/*.csv",
        ),
        (
            "files = \"Cargo.toml\"",
            "t.toml:1: md.asset_column: say where the asset comes from",
        ),
        (
            "files = \"Cargo.toml\"\nasset = \"X\"\nlabel = \"start\"",
            "t.toml:1: md.freq: bars labelled by their start need `freq`",
        ),
        (
            "files = \"Cargo.toml\"\nasset = \"X\"\nlabel = \"middle\"",
            "t.toml:5: md.label: must be \"start\" or \"end\"",
        ),
        (
            "files = \"Cargo.toml\"\nasset = \"X\"\ntz = \"Mars/Olympus\"",
            "t.toml:5: md.tz: ",
        ),
    ];
    for (body, expected) in cases {
        let text = format!("[md]\ntype = \"csv\"\n{body}\n");
        let c = Config::from_toml_str(&text, "t.toml").unwrap();
        let e = DataTypes::default()
            .source(&c.section("md").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(expected),
            "{body}:\n  got {e}\n  want {expected}"
        );
    }
    // A misspelt key is reported by the config's unread-key check.
    let c = Config::from_toml_str(
        "[md]\ntype = \"csv\"\nfiles = \"Cargo.toml\"\nasset = \"X\"\ntimestamp_colum = \"t\"\n",
        "t.toml",
    )
    .unwrap();
    DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap();
    let e = c.check_all_used().unwrap_err().to_string();
    assert!(
        e.contains("t.toml:5") && e.contains("md.timestamp_colum"),
        "{e}"
    );
}
