//! The `ticks` source: LEAN-style trade ticks, several per millisecond, several
//! assets, filters' inputs kept as numbers; errors located by file and line; the
//! real SPY ticks when `../shared/data` is there.

use kf_config::Config;
use kf_datapull::{DataTypes, Query, Source};

const HEADER: &str = "timestamp_et,symbol,price,size,exchange,sale_condition,suspicious\n";

fn source(dir: &std::path::Path, extra: &str) -> Box<dyn Source> {
    let text = format!(
        "[md]\ntype = \"ticks\"\nfiles = \"{}/*.csv\"\n{extra}\n",
        dir.display()
    );
    let c = Config::from_toml_str(&text, "t.toml").unwrap();
    let s = DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap();
    c.check_all_used().unwrap();
    s
}

fn utc(s: &str) -> i64 {
    kf_frame::Timestamp::parse(s).unwrap().nanos()
}

#[test]
fn ticks_of_one_millisecond_keep_their_order_and_assets_share_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        format!(
            "{HEADER}2013-10-09 09:30:00.001,SPY,165.1000,100,P,1,0\n\
             2013-10-09 09:30:00.001,SPY,165.2000,200,Q,20000020,0\n\
             2013-10-09 09:30:00.002,SPY,165.3000,300,Z,2000,1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.csv"),
        format!("{HEADER}2013-10-09 09:30:00.001,IBM,180.0000,50,D,1,0\n"),
    )
    .unwrap();
    let s = source(dir.path(), "delay = \"1ms\"");
    let f = s.load(&Query::all()).unwrap();
    assert_eq!(f.assets(), &["IBM".to_string(), "SPY".to_string()]);
    // 09:30 EDT is 13:30 UTC. The second trade of .001 sits 1 ns after the first.
    let t1 = utc("2013-10-09 13:30:00.001");
    assert_eq!(f.end_ts(), &[t1, t1 + 1, t1 + 1_000_000]);
    assert_eq!(f.knowledge_ts()[0], t1 + 1_000_000);
    let spy = |c: &str| -> Vec<f64> { f.feature(c).unwrap().asset(1).collect() };
    assert_eq!(spy("price"), [165.1, 165.2, 165.3]);
    assert_eq!(spy("size"), [100.0, 200.0, 300.0]);
    assert_eq!(spy("exchange"), [80.0, 81.0, 90.0]); // 'P', 'Q', 'Z'
    assert_eq!(
        spy("condition"),
        [1.0, f64::from(0x2000_0020u32), f64::from(0x2000u32)]
    );
    assert_eq!(spy("suspicious"), [0.0, 0.0, 1.0]);
    let ibm: Vec<f64> = f.feature("size").unwrap().asset(0).collect();
    assert_eq!(ibm[0], 50.0);
    assert!(ibm[1].is_nan() && ibm[2].is_nan());
    assert_eq!(
        s.features().unwrap()[..2],
        ["price".to_string(), "size".to_string()]
    );
}

#[test]
fn nanosecond_ticks_that_tie_are_pushed_apart_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Two trades at .000000001 and one at .000000002: tick times in nanoseconds.
    std::fs::write(
        dir.path().join("a.csv"),
        format!(
            "{HEADER}2013-10-09 09:30:00.000000001,SPY,1.0,100,P,1,0\n\
             2013-10-09 09:30:00.000000001,SPY,2.0,200,P,1,0\n\
             2013-10-09 09:30:00.000000002,SPY,3.0,300,P,1,0\n\
             2013-10-09 09:30:00.000000009,SPY,4.0,400,P,1,0\n"
        ),
    )
    .unwrap();
    let f = source(dir.path(), "").load(&Query::all()).unwrap();
    let t = utc("2013-10-09 13:30:00.000000001");
    // The second tie takes t + 1, so the tick of t + 1 moves to t + 2; the last
    // keeps its own time.
    assert_eq!(f.end_ts(), &[t, t + 1, t + 2, t + 8]);
    let price: Vec<f64> = f.feature("price").unwrap().asset(0).collect();
    assert_eq!(price, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn bad_ticks_are_refused_by_file_and_line() {
    let cases = [
        (
            "2013-10-09 09:30:00.002,SPY,1,1,P,1,0\n2013-10-09 09:30:00.001,SPY,1,1,P,1,0\n",
            ":3: this tick of SPY is earlier",
        ),
        (
            "2013-10-09 09:30:00.001,SPY,1,1,P,xyz,0\n",
            ":2: sale_condition \"xyz\" is not hexadecimal",
        ),
        (
            "2013-10-09 09:30:00.001,SPY,abc,1,P,1,0\n",
            ":2: price \"abc\" is not a finite number",
        ),
        (
            "2013-10-09 09:30:00.001,SPY,-1,1,P,1,0\n",
            ":2: price -1 and size 1",
        ),
        (
            "2013-10-09 09:30:00.001,SPY,1,1,PQ,1,0\n",
            ":2: exchange \"PQ\" is not one letter",
        ),
        (
            "2013-10-09 09:30:00.001,SPY,1,1,P,1,2\n",
            ":2: suspicious \"2\" is not 0 or 1",
        ),
        ("2013-13-09 09:30:00.001,SPY,1,1,P,1,0\n", ":2: timestamp"),
    ];
    // The error of loading a folder whose one file, x.csv, holds `text`.
    let error_of = |text: &str| -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.csv"), text).unwrap();
        source(dir.path(), "")
            .load(&Query::all())
            .unwrap_err()
            .to_string()
    };
    for (rows, want) in cases {
        let e = error_of(&format!("{HEADER}{rows}"));
        assert!(
            e.contains("x.csv") && e.contains(want),
            "want {want:?} in {e}"
        );
    }
    // CRLF line ends and a blank line: the line named is the one an editor shows
    // (the header is line 1, the blank line 2, the bad row 4).
    let crlf = format!(
        "{}\r\n\r\n2013-10-09 09:30:00.001,SPY,1,1,P,1,0\r\n2013-10-09 09:30:00.002,SPY,1,1,P,1,7\r\n",
        HEADER.trim_end()
    );
    let e = error_of(&crlf);
    assert!(e.contains("x.csv:4: suspicious \"7\""), "{e}");
    // A row with a field too many, after a row with a quoted field (a file the
    // `csv` crate reads).
    let rows =
        "2013-10-09 09:30:00.001,\"SPY\",1,1,P,1,0\n2013-10-09 09:30:00.002,SPY,1,1,P,1,0,9\n";
    let e = error_of(&format!("{HEADER}{rows}"));
    assert!(
        e.contains("x.csv:3: has 8 fields, but the header has 7"),
        "{e}"
    );
    let e = error_of("time,symbol,price\n1,SPY,1\n");
    assert!(e.contains("x.csv:1: no column `timestamp_et`"), "{e}");
    let c = Config::from_toml_str(
        "[md]\ntype = \"ticks\"\nfiles = \"/none/*.csv\"\n",
        "t.toml",
    )
    .unwrap();
    let e = DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:3: md.files"), "{e}");
}

#[test]
fn the_real_spy_ticks_have_the_published_counts() {
    let Some(data) = crate::shared_data::shared("lean_us_equity_tick_minute_2013") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data.join("SPY_tick_trades_20131009_20131010.csv.gz"),
        dir.path().join("spy.csv"),
    )
    .unwrap();
    let f = source(dir.path(), "").load(&Query::all()).unwrap();
    // SOURCE.md: 899,709 trades; 165.5M shares on 10-09 and 195.6M on 10-10; ten
    // suspicious ticks; the first at 04:00:00.924 EDT.
    assert_eq!(f.n_rows(), 899_709);
    let size: f64 = f.feature("size").unwrap().values().iter().sum();
    assert!((size / 1e6 - (165.5 + 195.6)).abs() < 0.1, "{size}");
    let susp: f64 = f.feature("suspicious").unwrap().values().iter().sum();
    assert_eq!(susp, 10.0);
    assert_eq!(f.end_ts()[0], utc("2013-10-09 08:00:00.924"));
}
