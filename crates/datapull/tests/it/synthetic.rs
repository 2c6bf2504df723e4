//! The synthetic source: determinism, shape, bar invariants, and parameter errors.

use kf_config::Config;
use kf_datapull::{DataError, DataTypes, Query, SyntheticBars, SyntheticParams};
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
    let src = DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap();
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
        let e = DataTypes::default()
            .source(&c.section("md").unwrap())
            .unwrap_err();
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

#[test]
fn us_equity_calendar_keeps_to_session_hours_on_weekdays() {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 2,
        bars: 400,
        start: "2024-01-05 09:31".into(), // a Friday
        calendar: "us_equity".into(),
        ..SyntheticParams::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    let t = f.end_ts();
    assert_eq!(t.len(), 400);
    // Friday's 390 bars end 09:31 ... 16:00 EST (14:31 ... 21:00 UTC), then Monday.
    assert_eq!(Timestamp(t[0]).to_string(), "2024-01-05T14:31:00Z");
    assert_eq!(Timestamp(t[389]).to_string(), "2024-01-05T21:00:00Z");
    assert_eq!(Timestamp(t[390]).to_string(), "2024-01-08T14:31:00Z");
    // After the March change to EDT the session opens at 13:30 UTC.
    let g = SyntheticBars::new(SyntheticParams {
        assets: 1,
        bars: 1,
        start: "2024-03-11 09:31".into(),
        calendar: "us_equity".into(),
        ..SyntheticParams::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    assert_eq!(Timestamp(g.end_ts()[0]).to_string(), "2024-03-11T13:31:00Z");
}

#[test]
fn volume_is_u_shaped_over_the_session() {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 20,
        bars: 390 * 20,
        calendar: "us_equity".into(),
        ..SyntheticParams::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    let v = f.feature("volume").unwrap();
    // Mean volume by minute of the session, over 20 days and 20 assets.
    let mean = |minutes: std::ops::Range<usize>| -> f64 {
        let mut s = 0.0;
        let mut n = 0.0;
        for day in 0..20 {
            for m in minutes.clone() {
                s += v.row(day * 390 + m).iter().sum::<f64>();
                n += 20.0;
            }
        }
        s / n
    };
    let (open, mid, close) = (mean(0..30), mean(180..210), mean(360..390));
    assert!(
        open > 2.0 * mid && close > 2.0 * mid,
        "{open} {mid} {close}"
    );
}

#[test]
fn gaps_and_late_rows_leave_the_prices_alone() {
    let base = SyntheticParams {
        assets: 10,
        bars: 2_000,
        delay: "1s".into(),
        ..SyntheticParams::default()
    };
    let clean = SyntheticBars::new(base.clone())
        .unwrap()
        .generate()
        .unwrap();
    let f = SyntheticBars::new(SyntheticParams {
        gap_prob: 0.1,
        late_prob: 0.2,
        late_delay: "3min".into(),
        ..base
    })
    .unwrap()
    .generate()
    .unwrap();
    let (c0, c1) = (clean.feature("close").unwrap(), f.feature("close").unwrap());
    let gaps = c1.values().iter().filter(|v| v.is_nan()).count();
    assert!((1_700..2_300).contains(&gaps), "{gaps} gaps of 20000 cells");
    // Every cell that is not a gap has the clean run's bits; gaps blank all features.
    for (i, (a, b)) in c0.values().iter().zip(c1.values()).enumerate() {
        if b.is_nan() {
            assert!(f.feature("volume").unwrap().values()[i].is_nan());
        } else {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
    let late = f
        .end_ts()
        .iter()
        .zip(f.knowledge_ts())
        .filter(|(e, k)| **k - **e == 181_000_000_000)
        .count();
    let on_time = f
        .end_ts()
        .iter()
        .zip(f.knowledge_ts())
        .filter(|(e, k)| **k - **e == 1_000_000_000)
        .count();
    assert_eq!(late + on_time, 2_000);
    assert!((300..500).contains(&late), "{late} late bars of 2000");
}

/// The lag-one regression slope of `reversion_bars`-bar block returns, pooled over
/// assets, after removing each block's cross-sectional mean (the market factor):
/// an estimate of the planted `-reversion` made from the prices alone.
fn block_slope(p: &SyntheticParams) -> f64 {
    let f = SyntheticBars::new(p.clone()).unwrap().generate().unwrap();
    let (n, rows) = (f.n_assets(), f.n_rows());
    let close = f.feature("close").unwrap().values().to_vec();
    let open = f.feature("open").unwrap().values().to_vec();
    let k = p.reversion_bars;
    let blocks = rows / k;
    // Block log returns per asset: log(last close / first open).
    let mut r = vec![vec![0.0f64; n]; blocks];
    for (b, rb) in r.iter_mut().enumerate() {
        for (a, x) in rb.iter_mut().enumerate() {
            *x = (close[(b * k + k - 1) * n + a] / open[b * k * n + a]).ln();
        }
        let mean = rb.iter().sum::<f64>() / n as f64;
        rb.iter_mut().for_each(|x| *x -= mean);
    }
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for w in r.windows(2) {
        for (x, y) in w[0].iter().zip(&w[1]) {
            sxy += x * y;
            sxx += x * x;
        }
    }
    sxy / sxx
}

#[test]
fn a_planted_reversion_is_recovered_from_the_prices_with_its_sign_and_strength() {
    let mut p = params();
    p.assets = 200;
    p.bars = 1950;
    p.garch_alpha = 0.0;
    p.garch_beta = 0.0;
    p.reversion = 0.3;
    let slope = block_slope(&p);
    // Idiosyncratic block returns follow R' = -0.3 R + noise: the slope is -0.3,
    // diluted a little by the residual market exposure (betas 0.5..1.5).
    assert!((-0.33..-0.25).contains(&slope), "{slope}");
    p.reversion = 0.0;
    let none = block_slope(&p);
    assert!(none.abs() < 0.03, "{none}");
    // With no signal, the block length changes nothing.
    let plain = params();
    let mut zero = params();
    zero.reversion = 0.0;
    zero.reversion_bars = 7;
    let a = SyntheticBars::new(plain).unwrap().generate().unwrap();
    let b = SyntheticBars::new(zero).unwrap().generate().unwrap();
    assert_eq!(
        a.feature("close").unwrap().values(),
        b.feature("close").unwrap().values()
    );
}
