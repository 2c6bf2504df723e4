//! `kaizenflow sweep`: every config of a `[sweep]` as one atom on the job engine.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use kf_config::SweepPoint;
use kf_dataflow::RunOptions;
use kf_dataflow::cache::NodeCache;
use kf_frame::Timestamp;
use kf_parallel::{Engine, Progress};
use kf_system::Registries;

use serde::{Deserialize, Serialize};

use super::config_cmd::{load, validate_points};
use super::{Backend, SweepArgs};

/// What one run of the sweep produced: one row of the summary table.
#[derive(Serialize, Deserialize)]
struct RunSummary {
    id: String,
    varied: Vec<(String, String)>,
    rows: usize,
    assets: usize,
    seconds: f64,
}

pub(super) fn run(types: &Registries, args: &SweepArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(&args.config)?;
    let points = config.expand_sweep()?;
    // Validate every point before running any: a bad point fails fast, by name.
    validate_points(types, &points)?;
    // Ranks of an MPI job all get here: none of them removes earlier points, since a
    // slow rank would remove what a fast one has written (each point's folder is
    // still cleared by the rank that runs it).
    super::out_dir::prepare(&args.out, args.force, args.backend == Backend::Threads)?;
    let mut engine = Engine::new().progress(Progress::Auto);
    if let Some(t) = args.threads {
        engine = engine.threads(t);
    }
    // One config per molecule: configs are few and each is a whole run.
    let per_thread = points.len().div_ceil(engine.thread_count()).max(1);
    let engine = engine.batches(per_thread);
    let cache = super::cache_cmd::open(&args.cache)?;
    let work = |batch: &[SweepPoint]| -> Result<Vec<RunSummary>> {
        batch
            .iter()
            .map(|p| run_one(types, p, args, cache.as_ref()))
            .collect()
    };
    let append = |all: &mut Vec<RunSummary>, mut some: Vec<RunSummary>| all.append(&mut some);
    let summaries = match args.backend {
        // With a cache, the first point runs alone: it computes and stores the
        // upstream nodes every point shares, which the others (in parallel) then
        // load instead of all computing them at once.
        Backend::Threads if cache.is_some() && points.len() > 1 => {
            let first = work(&points[..1])?;
            engine.run_reduce(&points[1..], first, work, append)?
        }
        Backend::Threads => engine.run_reduce(&points, Vec::new(), work, append)?,
        Backend::Mpi => match on_cluster(&engine, &points, work, append)? {
            Some(s) => s,
            None => return Ok(()), // a worker rank: rank 0 reports
        },
    };
    let table = summary_table(&summaries);
    let path = args.out.join("summary.tsv");
    super::out_dir::write_text(&path, &table)?;
    write!(out, "{table}")?;
    writeln!(
        out,
        "# {} runs; outputs under {}",
        summaries.len(),
        args.out.display()
    )?;
    if let Some(c) = &cache {
        super::cache_cmd::report(c, out)?;
    }
    super::out_dir::finish(&args.out)
}

/// One run: builds the config's components and writes the resolved config under
/// `out/<id>/` with, for a config with a `[dag]`, its runner's output
/// (`result.parquet`, as `kaizenflow run` writes it), else its market data
/// (`market_data.parquet`).
fn run_one(
    types: &Registries,
    point: &SweepPoint,
    args: &SweepArgs,
    cache: Option<&Arc<NodeCache>>,
) -> Result<RunSummary> {
    let start = Instant::now();
    let components = kf_system::build_with(types, &point.config)?;
    let id = point.config.id();
    let dir = args.out.join(&id);
    super::out_dir::prepare(&dir, true, false)?;
    super::out_dir::write_text(&dir.join("config.toml"), &point.config.to_toml_string())?;
    let data = match components.dag {
        Some(mut dag) => {
            if let Some(c) = cache {
                dag.use_cache(Some(super::cache_cmd::handle(c, &args.config.config, &id)));
            }
            let opts = RunOptions {
                parallel: true,
                ..RunOptions::default()
            };
            let result = components
                .run
                .execute(&mut dag, &opts, &mut |_, _| {})
                .with_context(|| format!("sweep point {id}"))?;
            super::cache_cmd::write_result(
                &mut dag,
                &components.run,
                &result.frame,
                &dir.join("result.parquet"),
            )?;
            result.frame
        }
        None => {
            let data = components.market_data.unclocked()?.data_for_interval(
                Timestamp::MIN,
                Timestamp::MAX,
                None,
                None,
            )?;
            data.write_parquet(dir.join("market_data.parquet"))?;
            data
        }
    };
    super::out_dir::finish(&dir)?;
    Ok(RunSummary {
        id,
        varied: point.varied.clone(),
        rows: data.n_rows(),
        assets: data.n_assets(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A tab-separated table: id, one column per varied key, then the run's figures.
fn summary_table(runs: &[RunSummary]) -> String {
    let keys: Vec<&str> = runs
        .first()
        .map(|r| r.varied.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let mut s = String::from("id");
    for k in &keys {
        s.push('\t');
        s.push_str(k);
    }
    s.push_str("\trows\tassets\tseconds\n");
    for r in runs {
        s.push_str(&r.id);
        for (_, v) in &r.varied {
            s.push('\t');
            s.push_str(v);
        }
        s.push_str(&format!("\t{}\t{}\t{:.3}\n", r.rows, r.assets, r.seconds));
    }
    s
}

#[cfg(feature = "mpi")]
fn on_cluster<F, G>(
    engine: &Engine,
    points: &[SweepPoint],
    work: F,
    append: G,
) -> Result<Option<Vec<RunSummary>>>
where
    F: Fn(&[SweepPoint]) -> Result<Vec<RunSummary>> + Sync,
    G: FnMut(&mut Vec<RunSummary>, Vec<RunSummary>),
{
    let cluster = kf_parallel::cluster::Cluster::init()?;
    Ok(cluster.run_reduce(engine, points, Vec::new(), work, append)?)
}

#[cfg(not(feature = "mpi"))]
fn on_cluster<F, G>(
    _engine: &Engine,
    _points: &[SweepPoint],
    _work: F,
    _append: G,
) -> Result<Option<Vec<RunSummary>>>
where
    F: Fn(&[SweepPoint]) -> Result<Vec<RunSummary>> + Sync,
    G: FnMut(&mut Vec<RunSummary>, Vec<RunSummary>),
{
    anyhow::bail!(
        "this kaizenflow was built without MPI support; rebuild with \
         `cargo build --release -p kaizenflow --features mpi`"
    )
}
