//! The synthetic source: determinism, shape, bar invariants, and parameter errors.

use kf_config::Config;
use kf_datapull::{DataError, Query, SyntheticBars, SyntheticParams, source_registry as registry};
use kf_frame::Timestamp;

fn params() -> SyntheticParams {
    SyntheticParams {
        assets: 4,
        bars: 50,
        ..SyntheticParams::default()
    }
}

#[test]
fn same_seed_same_bits_other_seed_other_data() {
    let a = SyntheticBars::new(params()).unwrap().generate().unwrap();
    let b = SyntheticBars::new(params()).unwrap().generate().unwrap();
    assert!(a.bit_eq(&b));
    let c = SyntheticBars::new(SyntheticParams {
        seed: 2,
        ..params()
    })
    .unwrap()
    .generate()
    .unwrap();
    assert!(!a.bit_eq(&c));
}

#[test]
fn bars_are_on_the_grid_and_ohlc_consistent() {
    let p = SyntheticParams {
        delay: "5s".into(),
        ..params()
    };
    let f = SyntheticBars::new(p).unwrap().generate().unwrap();
    assert_eq!((f.n_rows(), f.n_assets()), (50, 4));
    assert_eq!(f.features(), ["open", "high", "low", "close", "volume"]);
    // 2024-01-02 09:31 New York (EST, UTC-5) is 14:31 UTC; bars one minute apart.
    assert_eq!(Timestamp(f.end_ts()[0]).to_string(), "2024-01-02T14:31:00Z");
    assert!(f.end_ts().windows(2).all(|w| w[1] - w[0] == 60_000_000_000));
    assert!(
        f.end_ts()
            .iter()
            .zip(f.knowledge_ts())
            .all(|(e, k)| k - e == 5_000_000_000)
    );
    let (o, h, l, c, v) = (
        f.feature("open").unwrap(),
        f.feature("high").unwrap(),
        f.feature("low").unwrap(),
        f.feature("close").unwrap(),
        f.feature("volume").unwrap(),
    );
    for i in 0..f.n_rows() * f.n_assets() {
        let (o, h, l, c, v) = (
            o.values()[i],
            h.values()[i],
            l.values()[i],
            c.values()[i],
            v.values()[i],
        );
        assert!(
            l <= o.min(c) && h >= o.max(c) && l > 0.0,
            "bar {i}: {o} {h} {l} {c}"
        );
        assert!(v >= 0.0 && v == v.round());
    }
    // Each bar opens at the previous close.
    for r in 1..f.n_rows() {
        assert_eq!(o.row(r), c.row(r - 1));
    }
}

#[test]
fn built_from_config_by_name_with_located_errors() {
    let c = Config::from_toml_str(
        "[md]\ntype = \"synthetic\"\nassets = 3\nbars = 7\n",
        "s.toml",
    )
    .unwrap();
    let src = registry().build(&c.section("md").unwrap()).unwrap();
    assert!(c.check_all_used().is_ok());
    assert_eq!(src.load(&Query::all()).unwrap().n_rows(), 7);
    assert!(src.describe().starts_with("synthetic: 3 assets x 7 bars"));

    let cases = [
        ("assets = 0", "s.toml:3: md.assets: must be at least 1"),
        ("bars = 0", "s.toml:3: md.bars: must be at least 1"),
        (
            "tz = \"Mars/Base\"",
            "s.toml:3: md.tz: cannot parse time `Mars/Base`: unknown time zone",
        ),
        (
            "start = \"soon\"",
            "s.toml:3: md.start: cannot parse time `soon`",
        ),
        (
            "freq = \"0min\"",
            "s.toml:3: md.freq: must be longer than zero",
        ),
        (
            "delay = \"5 parsecs\"",
            "s.toml:3: md.delay: cannot parse time `5 parsecs`",
        ),
        (
            "vol = -1.0",
            "s.toml:3: md.vol: must be a finite number >= 0, got -1",
        ),
        (
            "garch_beta = 0.99",
            "s.toml:3: md.garch_beta: garch_alpha + garch_beta must be below 1",
        ),
        (
            "bars = 9000000000000",
            "s.toml:3: md.bars: the last bar would be past the year 2262",
        ),
        (
            "assets = \"ten\"",
            "s.toml:3: md.assets: expected an integer, found the string \"ten\"",
        ),
    ];
    for (line, expected) in cases {
        let text = format!("[md]\ntype = \"synthetic\"\n{line}\n");
        let c = Config::from_toml_str(&text, "s.toml").unwrap();
        let e = registry().build(&c.section("md").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with(expected), "{line}: {e}");
    }
    let e = SyntheticBars::new(SyntheticParams {
        assets: 0,
        ..params()
    })
    .unwrap_err();
    assert!(matches!(e, DataError::Invalid { key: "assets", .. }));
    assert_eq!(
        e.to_string(),
        "synthetic source: assets: must be at least 1"
    );
}
