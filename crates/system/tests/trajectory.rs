//! The `trajectory` processor in a system: it reads every horizon's forecast, plans
//! over them net of costs, and research and the event-driven system agree.

use std::path::Path;

use kf_config::Config;
use kf_system::System;
use kf_system::research::research;

/// Two assets, three warm-up bars without forecasts (the covariance learns from
/// their returns), then one bar with forecasts for two horizons.
fn config(dir: &Path, horizons: bool) -> Config {
    let csv = dir.join("bars.csv");
    // A: +0.4% now, -2% next; B: +0.1% now, +2% next. Returns alternate +-1% in
    // opposite directions, so the two variances are close and the covariance is
    // positive definite.
    let rows = "\
timestamp,asset,close,volume,f1,f2
2024-01-02 09:31,A,10,100,,
2024-01-02 09:31,B,20,100,,
2024-01-02 09:32,A,10.1,100,,
2024-01-02 09:32,B,19.8,100,,
2024-01-02 09:33,A,10,100,,
2024-01-02 09:33,B,20,100,,
2024-01-02 09:34,A,10.1,100,0.004,-0.02
2024-01-02 09:34,B,19.8,100,0.001,0.02
2024-01-02 09:35,A,10,100,,
2024-01-02 09:35,B,20,100,,
";
    std::fs::write(&csv, rows).unwrap();
    let later = if horizons { "horizons = [\"f2\"]" } else { "" };
    let text = format!(
        r#"
[market_data]
type = "csv"
files = "{}"
asset_column = "asset"

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"

[system]
bar = "1min"
prediction = "f1"
{later}

[system.processor]
type = "trajectory"
target_gmv = 1000.0
units = 1
max_assets = 2
cost = 0.01
min_periods = 2
"#,
        csv.display()
    );
    Config::from_toml_str(&text, "trajectory.toml").unwrap()
}

#[test]
fn the_plan_over_two_horizons_buys_what_the_first_alone_would_not() {
    let dir = tempfile::tempdir().unwrap();
    // K = 1: all in one asset, long or short. By hand, with c = 0.01 and the two
    // variances within 2% of each other:
    // - one horizon: A long nets 0.004 - 0.01 = -0.006, B long 0.001 - 0.01 =
    //   -0.009, shorts worse: A long (the least bad, 100 shares at 10.1 = $1010
    //   against $1000: 99.0099 shares).
    // - two horizons: B long twice nets 0.001 - 0.01 + 0.02 = 0.011; A then B
    //   0.004 - 0.01 + 0.02 - 0.02 = -0.006; A then short A -0.006 + 0.02 - 0.01
    //   sqrt 2 < 0: B long, $1000 / 19.8 = 50.505 shares.
    let one = {
        let c = config(dir.path(), false);
        let mut s = System::from_config(&c).unwrap();
        let r = s.run().unwrap();
        c.check_all_used().unwrap();
        r
    };
    assert_eq!(one.orders.asset, [0]);
    assert!((one.orders.quantity[0] - 1000.0 / 10.1).abs() < 1e-9);
    let two_dir = tempfile::tempdir().unwrap();
    let c = config(two_dir.path(), true);
    let mut s = System::from_config(&c).unwrap();
    let two = s.run().unwrap();
    c.check_all_used().unwrap();
    assert_eq!(two.orders.asset, [1]);
    assert!((two.orders.quantity[0] - 1000.0 / 19.8).abs() < 1e-9);
    // Research runs the same processor on the same inputs: the same orders.
    let res = research(&mut s).unwrap();
    assert_eq!(res.orders.asset, two.orders.asset);
    assert_eq!(res.orders.quantity, two.orders.quantity);
}

#[test]
fn a_horizon_column_the_dag_does_not_make_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), true);
    c.set("system.horizons=[\"f3\"]").unwrap();
    // The market data's columns are known once read, so the run refuses it.
    let e = System::from_config(&c)
        .unwrap()
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("[system] horizons") && e.contains("f3"), "{e}");
    let mut c = config(dir.path(), true);
    c.set("system.processor.units=64").unwrap();
    c.set("system.processor.max_assets=12").unwrap();
    let e = System::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("over 100000 weight vectors"), "{e}");
}

#[test]
fn an_exact_plan_too_large_for_its_horizons_is_refused_when_the_system_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), true).to_toml_string();
    // 2 assets and 3 units: |Ω| = 12 ((0,3) and (3,0)
    // with 2 signs each, (1,2), (2,1) with 4), so two horizons face 144 trajectories.
    let sized = |extra: &str| {
        let c = Config::from_toml_str(
            &text.replace("units = 1", &format!("units = 3\n{extra}")),
            "t.toml",
        )
        .unwrap();
        System::from_config(&c)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let e = sized("method = \"exact\"\nmax_exact = 100.0").unwrap_err();
    assert!(
        e.contains("system.processor.method")
            && e.contains("12^2 = 1.440e2 trajectories, over max_exact = 1.000e2"),
        "{e}"
    );
    assert!(sized("method = \"exact\"\nmax_exact = 144.0").is_ok());
    assert!(sized("method = \"auto\"\nmax_exact = 100.0").is_ok());
}
