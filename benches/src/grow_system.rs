//! A system over growing data: the Mock1 system (cross-sectional processor) over a
//! year of generated minute bars in a Parquet store, run once with a cache, then one
//! more day appended. The run over the grown store continues from the loop's
//! checkpoint; it is timed against the system over the day alone and against a
//! full rerun, and checked against the full rerun bit for bit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kf_config::Config;
use kf_dataflow::Growth;
use kf_dataflow::cache::{CacheHandle, NodeCache};
use kf_system::{System, SystemRun};

use crate::grow::{link_all, write};
use crate::mock1::{input, median};

fn config(store: &Path, bar: &str) -> Result<Config, String> {
    let text = format!(
        "[market_data]\ntype = \"parquet\"\npath = {:?}\n{}",
        store.display().to_string(),
        crate::system::mock1_system(bar)
    );
    Config::from_toml_str(&text, "grow-system.toml").map_err(|e| e.to_string())
}

/// Everything a run produced, as exact text (`{:?}` of an f64 round-trips).
fn digest(r: &SystemRun) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        r.bars, r.orders, r.fills, r.holdings, r.audit, r.stats
    )
}

/// Builds and runs the system over `store` (with the cache when given); the time
/// to build (the market's prices read; zero with the cache, where building is part
/// of the run), the time to run, the run, and what the run did.
fn timed(
    store: &Path,
    bar: &str,
    cache: Option<&Arc<NodeCache>>,
) -> Result<(Duration, Duration, SystemRun, Option<Growth>), String> {
    let config = config(store, bar)?;
    let started = Instant::now();
    match cache {
        Some(c) => {
            let handle = CacheHandle {
                cache: Arc::clone(c),
                origin: "kf-bench grow-system".into(),
            };
            let (run, g) =
                System::run_growing(kf_system::Registries::builtin(), &config, None, &handle)
                    .map_err(|e| e.to_string())?;
            Ok((Duration::ZERO, started.elapsed(), run, Some(g)))
        }
        None => {
            let mut system = System::from_config(&config).map_err(|e| e.to_string())?;
            let built = started.elapsed();
            let run = system.run().map_err(|e| e.to_string())?;
            Ok((built, started.elapsed() - built, run, None))
        }
    }
}

/// Runs the case and prints one line per figure; `false` on a failure or a
/// difference from the full rerun.
pub fn run(assets: usize, days: usize, bar: &str, runs: usize, dir: &Path) -> bool {
    match case(assets, days, bar, runs, dir) {
        Ok(same) => same,
        Err(e) => {
            println!("grow-system: {e}");
            false
        }
    }
}

fn case(assets: usize, days: usize, bar: &str, runs: usize, dir: &Path) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(dir).map_err(io)?;
    let all = input(assets, (days + 1) * 390);
    let t_old = all.end_ts()[days * 390 - 1];
    let year = all.slice_time(i64::MIN, t_old);
    let day = all.slice_time(t_old + 1, i64::MAX);
    let (store, alone) = (dir.join("bars.parquet"), dir.join("day.parquet"));
    let (cache_dir, snapshot) = (dir.join("cache"), dir.join("cache.snapshot"));
    let _ = std::fs::remove_dir_all(&cache_dir);
    write(&year, &store, 390)?;
    write(&day, &alone, 390)?;
    println!(
        "grow-system: {assets} assets, {days} days + 1 of 1-minute bars, decisions every {bar}"
    );
    let open = |d: &Path| NodeCache::open(d, 64 << 30).map_err(|e| e.to_string());
    let cache = Arc::new(open(&cache_dir)?);
    let (b, r, first, g) = timed(&store, bar, Some(&cache))?;
    let size: u64 = std::fs::read_dir(&cache_dir)
        .map_err(io)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "grow-system: first run over the year with the cache: {:.3} s, {} decisions, {} fills; \
         checkpoint and history {:.1} MB ({g:?})",
        (b + r).as_secs_f64(),
        first.bars.len(),
        first.fills.ts.len(),
        size as f64 / 1e6
    );
    link_all(&cache_dir, &snapshot).map_err(io)?;
    write(&all, &store, 390)?;
    let _ = std::process::Command::new("sync").status();

    let (mut alone_t, mut inc_t) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs {
        let (b, r, _, _) = timed(&alone, bar, None)?;
        alone_t.push(b + r);
        link_all(&snapshot, &cache_dir).map_err(io)?;
        let cache = Arc::new(open(&cache_dir)?);
        let (_, r, run, g) = timed(&store, bar, Some(&cache))?;
        if !matches!(g, Some(Growth::Continued { .. })) {
            return Err(format!(
                "the run over the grown store did not continue: {g:?}"
            ));
        }
        inc_t.push(r);
        last = Some(run);
    }
    let (fb, fr, full, _) = timed(&store, bar, None)?;
    let same = last.is_some_and(|r| digest(&r) == digest(&full));
    let (alone_m, inc_m) = (median(alone_t), median(inc_t));
    println!(
        "grow-system: the day alone (its own store, no cache): {:.1} ms",
        alone_m.as_secs_f64() * 1e3
    );
    println!(
        "grow-system: incremental run (the new day's bars read, the year's records loaded): \
         {:.1} ms = {:.2}x the day alone; bit-identical to the full rerun: {same}",
        inc_m.as_secs_f64() * 1e3,
        inc_m.as_secs_f64() / alone_m.as_secs_f64()
    );
    println!(
        "grow-system: full rerun over the year and the day: build {:.3} s + run {:.3} s = {:.1}x \
         the incremental run",
        fb.as_secs_f64(),
        fr.as_secs_f64(),
        (fb + fr).as_secs_f64() / inc_m.as_secs_f64()
    );
    Ok(same)
}
