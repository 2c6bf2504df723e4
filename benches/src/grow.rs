//! Incremental runs: a year of generated minute bars in a Parquet store, Mock1 run
//! once over it with a node cache, then one more day appended to the store. The run
//! over the grown store continues from the checkpoint; it is timed against Mock1 on
//! the day alone (its own store, no cache) and checked bit for bit against a run
//! from scratch over the year and the day.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kf_config::Config;
use kf_dataflow::cache::{CacheHandle, NodeCache};
use kf_dataflow::{Dag, DataflowTypes, Growth, Incremental, Phase, RunContext, RunOptions};
use kf_datapull::StoreOptions;
use kf_datapull::parquet_store::write_frame;
use kf_frame::Frame;

use crate::mock1::{input, median};

/// Mock1 over the store at `path`, built as `kaizenflow run` builds it.
fn build(path: &Path) -> Result<Dag, String> {
    let toml = format!(
        "[md]\ntype = \"parquet\"\npath = {:?}\n\n[dag]\ntype = \"mock1\"\nmax_gap = \"1h\"\n",
        path.display().to_string()
    );
    let config = Config::from_toml_str(&toml, "grow.toml").map_err(|e| e.to_string())?;
    let types = DataflowTypes::default();
    let md_section = config.section("md").map_err(|e| e.to_string())?;
    let md = types.data.view(&md_section).map_err(|e| e.to_string())?;
    let dag_section = config.section("dag").map_err(|e| e.to_string())?;
    types
        .dag(&dag_section, Some(&md))
        .map_err(|e| e.to_string())
}

/// Builds Mock1 over `path` and runs one prediction (with the cache and mode given);
/// the wall time of both, the sink's frame, and what the run did.
fn timed(
    path: &Path,
    cache: Option<&Arc<NodeCache>>,
    mode: Incremental,
) -> Result<(Duration, Frame, Option<Growth>), String> {
    let started = Instant::now();
    let mut dag = build(path)?;
    if let Some(c) = cache {
        dag.use_cache(Some(CacheHandle {
            cache: Arc::clone(c),
            origin: "kf-bench grow".into(),
        }));
        dag.grow_incrementally(Some(mode));
    }
    let out = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    let frame = out.df_out("predict").map_err(|e| e.to_string())?.clone();
    Ok((wall, frame, dag.take_growth().pop()))
}

/// Hard-links every file of `from` into `to` (emptied first): entries are replaced
/// by renames, never written in place, so a link keeps a snapshot.
pub(crate) fn link_all(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::hard_link(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

pub(crate) fn write(frame: &Frame, path: &Path, time_block: usize) -> Result<(), String> {
    write_frame(
        frame,
        path,
        StoreOptions {
            time_block,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| e.to_string())
}

fn same_bits(a: &Frame, b: &Frame) -> bool {
    kf_datapull::fingerprint::frame_digest(a) == kf_datapull::fingerprint::frame_digest(b)
}

/// Runs the case and prints one line per figure; `false` on a failure or a
/// difference from the run from scratch.
pub fn run(assets: usize, days: usize, time_block: usize, runs: usize, dir: &Path) -> bool {
    match case(assets, days, time_block, runs, dir) {
        Ok(same) => same,
        Err(e) => {
            println!("grow: {e}");
            false
        }
    }
}

fn case(
    assets: usize,
    days: usize,
    time_block: usize,
    runs: usize,
    dir: &Path,
) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(dir).map_err(io)?;
    let all = input(assets, (days + 1) * 390);
    let t_old = all.end_ts()[days * 390 - 1];
    let year = all.slice_time(i64::MIN, t_old);
    let day = all.slice_time(t_old + 1, i64::MAX);
    let store: PathBuf = dir.join("bars.parquet");
    let alone: PathBuf = dir.join("day.parquet");
    let cache_dir = dir.join("cache");
    let snapshot = dir.join("cache.snapshot");
    let _ = std::fs::remove_dir_all(&cache_dir);
    write(&year, &store, time_block)?;
    write(&day, &alone, time_block)?;
    println!(
        "grow: {assets} assets, {days} days + 1 of 1-minute bars ({} + {} bars), store time block {}",
        year.n_rows(),
        day.n_rows(),
        if time_block == 0 {
            "default".to_string()
        } else {
            format!("{time_block} bars")
        }
    );
    let cache = Arc::new(NodeCache::open(&cache_dir, 64 << 30).map_err(|e| e.to_string())?);
    let (cold, _, g) = timed(&store, Some(&cache), Incremental::NewRows)?;
    println!(
        "grow: first run over the year with the cache (checkpoint written): {:.3} s ({g:?})",
        cold.as_secs_f64()
    );
    link_all(&cache_dir, &snapshot).map_err(io)?;
    write(&all, &store, time_block)?;

    // Let the writes of the stores reach the disk before anything is timed.
    let _ = std::process::Command::new("sync").status();
    // The two cases alternate, so both see the same state of the machine.
    let mut day_alone = Vec::new();
    let mut new_rows = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        day_alone.push(timed(&alone, None, Incremental::NewRows)?.0);
        link_all(&snapshot, &cache_dir).map_err(io)?;
        let cache = Arc::new(NodeCache::open(&cache_dir, 64 << 30).map_err(|e| e.to_string())?);
        let (wall, frame, g) = timed(&store, Some(&cache), Incremental::NewRows)?;
        if !matches!(g, Some(Growth::Continued { .. })) {
            return Err(format!(
                "the run over the grown store did not continue: {g:?}"
            ));
        }
        new_rows.push(wall);
        last = Some(frame);
    }
    let mut whole = Vec::new();
    let mut whole_frame = None;
    for _ in 0..runs {
        link_all(&snapshot, &cache_dir).map_err(io)?;
        let cache = Arc::new(NodeCache::open(&cache_dir, 64 << 30).map_err(|e| e.to_string())?);
        let (wall, frame, _) = timed(&store, Some(&cache), Incremental::Whole)?;
        whole.push(wall);
        whole_frame = Some(frame);
    }
    let open = |path: &Path| -> Result<Duration, String> {
        let mut t = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            kf_datapull::ParquetStore::open(path).map_err(|e| e.to_string())?;
            t.push(started.elapsed());
        }
        Ok(median(t))
    };
    let (open_year, open_day) = (open(&store)?, open(&alone)?);
    let (full_wall, full, _) = timed(&store, None, Incremental::NewRows)?;
    let (day_t, inc_t, whole_t) = (median(day_alone), median(new_rows), median(whole));
    let new_rows_same = last.is_some_and(|f| same_bits(&f, &full.slice_time(t_old + 1, i64::MAX)));
    let whole_same = whole_frame.is_some_and(|f| same_bits(&f, &full));
    println!(
        "grow: the day alone (its own store, no cache): {:.1} ms ({:.0} rows/s)",
        day_t.as_secs_f64() * 1e3,
        (day.n_rows() * assets) as f64 / day_t.as_secs_f64()
    );
    println!(
        "grow: incremental run, new rows only: {:.1} ms = {:.2}x the day alone; bit-identical to the full rerun's last day: {new_rows_same}",
        inc_t.as_secs_f64() * 1e3,
        inc_t.as_secs_f64() / day_t.as_secs_f64()
    );
    println!(
        "grow: of which opening the stores (their footers): the year and the day {:.1} ms, the day alone {:.1} ms",
        open_year.as_secs_f64() * 1e3,
        open_day.as_secs_f64() * 1e3
    );
    println!(
        "grow: incremental run, whole outputs (the year's segment loaded and joined): {:.1} ms; bit-identical to the full rerun: {whole_same}",
        whole_t.as_secs_f64() * 1e3
    );
    println!(
        "grow: full rerun over the year and the day (no cache): {:.3} s = {:.0}x the incremental run",
        full_wall.as_secs_f64(),
        full_wall.as_secs_f64() / inc_t.as_secs_f64()
    );
    Ok(new_rows_same && whole_same)
}
