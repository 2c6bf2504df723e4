//! `kaizenflow check` and `run` on the microstructure configs: ticks to bars, BVC
//! and VPIN tile, stream and replay to the bit (here on generated ticks written in
//! the real files' format; `configs/vpin_spy_2013.toml` itself reads the real SPY
//! ticks, which a debug build would stream too slowly for a test).

mod common;

use common::{kaizenflow, text, workspace};

/// Two days of ticks for one asset, several per millisecond at times, with venues,
/// flagged sale conditions and a suspicious tick.
fn tick_file(path: &std::path::Path) {
    let mut s = String::from("timestamp_et,symbol,price,size,exchange,sale_condition,suspicious\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut price = 165.0f64;
    for day in ["2013-10-09", "2013-10-10"] {
        let mut ms: u64 = (9 * 3600 + 30 * 60) * 1000;
        for _ in 0..1500 {
            ms += next() % 3000;
            price += ((next() % 5) as f64 - 2.0) * 0.01;
            let venue = ["P", "Q", "Z", "D", "K"][(next() % 5) as usize];
            let cond = if next() % 20 == 0 { "2000" } else { "1" };
            let susp = u8::from(next() % 500 == 0);
            let (h, m, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            s.push_str(&format!(
                "{day} {h:02}:{m:02}:{sec:02}.{milli:03},SPY,{price:.4},{},{venue},{cond},{susp}\n",
                100 * (1 + next() % 5)
            ));
        }
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn the_vpin_pipeline_passes_every_check_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("SPY_tick_trades_20131009_20131010.csv");
    tick_file(&ticks);
    // The SPY config on these ticks, with buckets and support to their scale.
    let config = workspace().join("configs/vpin_spy_2013.toml");
    let files = format!("market_data.files=\"{}\"", ticks.display());
    let sets = [
        files.as_str(),
        "dag.nodes.vpin.bucket_volume=20000.0",
        "dag.nodes.vpin.support=20",
        "dag.nodes.vpin.min_fit=5",
        "dag.nodes.bvc.window=200",
    ];
    let mut args = vec!["check", config.to_str().unwrap(), "--tilings", "3"];
    for s in &sets {
        args.push("--set");
        args.push(s);
    }
    let out = kaizenflow(&args);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    for check in ["batch", "tiling 0", "streaming", "perturbation", "replay"] {
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("pass  ") && l.contains(check)),
            "{check}: {shown}"
        );
    }
    assert!(shown.contains("all 7 checks passed"), "{shown}");
    let out_dir = dir.path().join("out");
    args[0] = "run";
    args.splice(2..4, ["--out", out_dir.to_str().unwrap()]);
    let out = kaizenflow(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.join("result.parquet").is_file());
    let shown = text(&out.stdout);
    assert!(
        shown.contains("vpin") && shown.contains("tick_bars"),
        "{shown}"
    );
}
