//! `kaizenflow run`: build the data and the DAG from a config, run its runner, and
//! write the resolved config, the result, the per-node timings, fitted states and
//! any captured node inputs and outputs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use kf_dataflow::metrics::model_reports;
use kf_dataflow::runner::{RunSpec, RunnerOutput, read_states, save_states};
use kf_dataflow::{Dag, Growth, Incremental, Keep, NodeId, RunOptions};
use kf_system::Registries;

use super::config_cmd::load;
use super::{Backend, RunArgs};

pub(super) fn run(types: &Registries, args: &RunArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(&args.config)?;
    match args.backend {
        Backend::Threads => run_loaded(types, &config, args, out).map(drop),
        Backend::Mpi => on_ranks(types, &config, args, out),
    }
}

/// Every rank of an MPI job runs the config with the job's collective installed, so
/// the ranks train the DAG's data-parallel models together. Rank 0 writes `--out`;
/// the others write into a scratch folder they remove. A rank that fails aborts
/// the job (the others would wait for it in the next exchange).
#[cfg(feature = "mpi")]
fn on_ranks(
    types: &Registries,
    config: &kf_config::Config,
    args: &RunArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kf_parallel::cluster::Cluster::init()?;
    let installed = kf_parallel::collective::install(cluster.collective()?);
    let mut args = args.clone();
    // Two nodes training at once could make their exchanges in another order on
    // another rank.
    args.sequential = true;
    let result = if cluster.is_root() {
        run_loaded(types, config, &args, out).map(drop)
    } else {
        let scratch = std::env::temp_dir().join(format!(
            "kaizenflow-rank{}-{}",
            cluster.rank(),
            std::process::id()
        ));
        args.out = scratch.clone();
        args.force = true;
        args.no_report = true;
        let r = run_loaded(types, config, &args, &mut std::io::sink()).map(drop);
        // Best effort: a scratch folder left behind is only clutter in the temp dir.
        let _ = std::fs::remove_dir_all(&scratch);
        r
    };
    drop(installed);
    if let Err(e) = &result {
        eprintln!("error on rank {}: {e:#}", cluster.rank());
        cluster.abort(1);
    }
    result
}

#[cfg(not(feature = "mpi"))]
fn on_ranks(
    _types: &Registries,
    _config: &kf_config::Config,
    _args: &RunArgs,
    _out: &mut dyn Write,
) -> Result<()> {
    bail!(
        "this kaizenflow was built without MPI support; rebuild with \
         `cargo build --release -p kaizenflow --features mpi`"
    )
}

/// What a run computed, in memory, beside the files it wrote: what the Python
/// package hands over without reading the files back.
#[derive(Debug)]
pub struct RunOutcome {
    /// The runner's output frame (what `result.parquet` holds, in wide layout).
    pub forecasts: kf_frame::Frame,
    /// The per-node timings of every pass: `(pass, node, kind, wall, rows)`.
    pub timings: Vec<(String, String, String, Duration, usize)>,
    /// The trading loop's run, for a config with `[system]`.
    pub system: Option<kf_system::SystemRun>,
}

/// `kaizenflow run` over a config already loaded (and overridden): `args.config`
/// only names it in messages. Writes the same files as the command and returns
/// what it computed.
///
/// # Errors
/// As the command: a bad config, a failed build or run, a file that cannot be
/// written.
pub fn run_loaded(
    types: &Registries,
    config: &kf_config::Config,
    args: &RunArgs,
    out: &mut dyn Write,
) -> Result<RunOutcome> {
    let components = kf_system::build_with(types, config)
        .with_context(|| format!("{} is not a valid config", args.config.config.display()))?;
    config.check_all_used()?;
    let Some(mut dag) = components.dag else {
        bail!(
            "{} has no [dag] section: add one (for example `[dag] type = \"mock1\"`) to have something to run",
            args.config.config.display()
        );
    };
    let capture = captured(&dag, &args.capture)?;
    let config = config.clone();
    let cache = super::cache_cmd::open(&args.cache)?;
    if let Some(c) = &cache {
        dag.use_cache(Some(super::cache_cmd::handle(
            c,
            &args.config.config,
            &config.id(),
        )));
        // A prediction over all the data continues from where the last run over the
        // same sources stopped, when they only gained bars since.
        if matches!(components.run, RunSpec::FitPredict { predict: None, .. }) {
            dag.grow_incrementally(Some(Incremental::Whole));
        }
    }
    let states = match &args.state {
        Some(dir) => {
            let states = read_states(&dag, dir)
                .with_context(|| format!("cannot start from the state in {}", dir.display()))?;
            dag.load_states(&states)
                .with_context(|| format!("cannot load the state in {}", dir.display()))?;
            Some(states)
        }
        None => None,
    };
    // Models' outputs are kept (stitched over the runner's passes) to score them.
    let models: Vec<NodeId> = dag
        .topological_order()
        .into_iter()
        .filter(|id| {
            dag.node(id.as_str())
                .is_ok_and(|n| n.evaluation().is_some())
        })
        .collect();
    let mut keep: BTreeSet<NodeId> = capture.iter().chain(&models).cloned().collect();
    for id in &capture {
        keep.extend(
            dag.inputs_of(id.as_str())?
                .into_iter()
                .map(|(_, from, _)| from),
        );
    }
    let opts = RunOptions {
        up_to: None,
        parallel: !args.sequential,
        keep: if keep.is_empty() {
            Keep::Sinks
        } else {
            Keep::Nodes(keep)
        },
    };
    super::out_dir::prepare(&args.out, args.force, false)?;
    super::out_dir::write_text(&args.out.join("config.toml"), &config.to_toml_string())?;

    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} passes ({eta} left)",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    });
    let started = Instant::now();
    let result = match &states {
        Some(_) => components.run.predict_only(&mut dag, &opts)?,
        None => components
            .run
            .execute(&mut dag, &opts, &mut |done, total| {
                if let Some(b) = &bar {
                    b.set_length(total as u64);
                    b.set_position(done as u64);
                }
            })?,
    };
    let wall = started.elapsed();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let writing = Instant::now();
    super::cache_cmd::write_result(
        &mut dag,
        &components.run,
        &result.frame,
        &args.out.join("result.parquet"),
    )?;
    write_outputs(&dag, &result, &capture, &args.out)?;
    let write = writing.elapsed();
    report(&result, wall, &args.out, out)?;
    // Reading is the source nodes' time (nodes with no input), the DAG the rest.
    let read: Duration = result
        .passes
        .iter()
        .flat_map(|(_, ts)| ts.iter())
        .filter(|t| {
            dag.node(t.node.as_str())
                .is_ok_and(|n| n.inputs().is_empty())
        })
        .map(|t| t.wall)
        .sum();
    writeln!(
        out,
        "# phases: read {:.3} s, dag {:.3} s, write {:.3} s",
        read.as_secs_f64(),
        wall.saturating_sub(read).as_secs_f64(),
        write.as_secs_f64()
    )?;
    if let Some(c) = &cache {
        super::cache_cmd::report(c, out)?;
        for g in dag.take_growth() {
            writeln!(out, "# {}", growth_line(&g))?;
        }
    }
    if let Some(dir) = &args.state {
        writeln!(
            out,
            "# predicted with the fitted state in {} (no fit)",
            dir.display()
        )?;
    }
    if !models.is_empty() {
        let spans = components.run.out_of_sample(states.is_none());
        let reports = model_reports(&mut dag, &result.outputs, &spans)?;
        super::metrics_out::write(&reports, &args.out, out)?;
    }
    let system = if config.root().contains("system") {
        let handle = cache
            .as_ref()
            .map(|c| super::cache_cmd::handle(c, &args.config.config, &config.id()));
        Some(run_system(
            types,
            &config,
            states,
            handle.as_ref(),
            &args.out,
            out,
        )?)
    } else {
        None
    };
    if !args.no_report {
        let path = kf_system::report::write_report(&args.out, types)?;
        writeln!(out, "report: {}", path.display())?;
    }
    super::out_dir::finish(&args.out)?;
    let timings = result
        .passes
        .iter()
        .flat_map(|(pass, ts)| {
            ts.iter().map(move |t| {
                (
                    pass.to_string(),
                    t.node.to_string(),
                    t.kind.to_string(),
                    t.wall,
                    t.rows,
                )
            })
        })
        .collect();
    Ok(RunOutcome {
        forecasts: result.frame,
        timings,
        system,
    })
}

/// What a run over growing data did, for the report.
fn growth_line(g: &Growth) -> String {
    let t = |ns: i64| kf_frame::Timestamp(ns).to_string();
    match g {
        Growth::Continued { from, to } => format!(
            "incremental: continued from the checkpoint at {}; computed the bars after it, up to {}",
            t(*from),
            t(*to)
        ),
        Growth::Unchanged { at } => format!(
            "incremental: the data has not changed since the checkpoint at {}; nothing computed",
            t(*at)
        ),
        Growth::Full(why) => format!("incremental: computed every bar ({why})"),
    }
}

/// Runs the config's `[system]` on its clock and writes its files; with a cache, as
/// a run over growing data (continuing from the last run's checkpoint when the
/// data only gained bars since).
fn run_system(
    types: &Registries,
    config: &kf_config::Config,
    states: Option<kf_system::States>,
    cache: Option<&kf_dataflow::cache::CacheHandle>,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<kf_system::SystemRun> {
    let started = Instant::now();
    let (run, growth) = match cache {
        Some(c) => {
            let (run, g) = kf_system::System::run_growing(types, config, states, c)?;
            (run, Some(g))
        }
        None => {
            let mut system = match states {
                Some(s) => kf_system::System::from_config_with_states(types, config, s)?,
                None => kf_system::System::from_config_with(types, config)?,
            };
            (system.run()?, None)
        }
    };
    let wall = started.elapsed();
    if let Some(g) = &growth {
        writeln!(out, "# system {}", growth_line(g))?;
    }
    if !run.fits.is_empty() {
        let total: Duration = run.fits.iter().map(|f| f.wall).sum();
        writeln!(
            out,
            "# system fits: {} in the loop, {:.3} s each on average ({:.3} s in all)",
            run.fits.len(),
            total.as_secs_f64() / run.fits.len() as f64,
            total.as_secs_f64()
        )?;
    }
    let chart = kf_system::output::write_run(&run, dir)?;
    writeln!(
        out,
        "# system: {} decisions x {} assets in {:.3} s ({:.0} decisions/s); orders, fills, \
         portfolio and stats in {}",
        run.bars.len(),
        run.assets.len(),
        wall.as_secs_f64(),
        run.bars.len() as f64 / wall.as_secs_f64().max(1e-9),
        dir.display()
    )?;
    write!(
        out,
        "{}",
        kf_system::output::summary(&run.stats, run.stale_forecasts)
    )?;
    writeln!(out, "pnl chart: {}", chart.display())?;
    Ok(run)
}

/// The node ids `--capture` names (`all` for every node), checked against the DAG.
fn captured(dag: &Dag, names: &[String]) -> Result<Vec<NodeId>> {
    if names.iter().any(|n| n == "all") {
        return Ok(dag.topological_order());
    }
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| {
            dag.node(n)
                .map(|node| node.id().clone())
                .with_context(|| format!("--capture names `{n}`, which is not a node of the DAG"))
        })
        .collect()
}

fn write_outputs(dag: &Dag, result: &RunnerOutput, capture: &[NodeId], dir: &Path) -> Result<()> {
    let mut tsv = String::from("pass\tnode\tkind\twall_ms\trows\tcells\n");
    for (pass, timings) in &result.passes {
        for t in timings {
            let _ = writeln!(
                tsv,
                "{pass}\t{}\t{}\t{:.3}\t{}\t{}",
                t.node,
                t.kind,
                t.wall.as_secs_f64() * 1e3,
                t.rows,
                t.cells
            );
        }
    }
    super::out_dir::write_text(&dir.join("timings.tsv"), &tsv)?;
    save_states(dag, dir)?;
    for id in capture {
        let folder = dir.join("capture").join(id.as_str());
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        if let Some(ports) = result.last.outputs.get(id) {
            for (port, frame) in ports {
                let p = folder.join(format!("out.{port}.parquet"));
                frame
                    .write_parquet(&p)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
        }
        for (port, from, from_port) in dag.inputs_of(id.as_str())? {
            if let Some(frame) = result
                .last
                .outputs
                .get(&from)
                .and_then(|p| p.get(&from_port))
            {
                let p = folder.join(format!("in.{port}.parquet"));
                frame
                    .write_parquet(&p)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
        }
    }
    Ok(())
}

fn report(result: &RunnerOutput, wall: Duration, dir: &Path, out: &mut dyn Write) -> Result<()> {
    let f = &result.frame;
    writeln!(
        out,
        "# {} rows x {} assets x {} features in {:.3} s ({} passes); outputs in {}",
        f.n_rows(),
        f.n_assets(),
        f.n_features(),
        wall.as_secs_f64(),
        result.passes.len(),
        dir.display()
    )?;
    // Per-node totals over every pass, in the order of the last pass.
    let Some((_, last)) = result.passes.last() else {
        return Ok(());
    };
    writeln!(
        out,
        "{:<24} {:<22} {:>12} {:>12}",
        "node", "kind", "wall ms", "rows"
    )?;
    for t in last {
        let total: Duration = result
            .passes
            .iter()
            .flat_map(|(_, ts)| ts.iter().filter(|x| x.node == t.node).map(|x| x.wall))
            .sum();
        writeln!(
            out,
            "{:<24} {:<22} {:>12.3} {:>12}",
            t.node.as_str(),
            t.kind,
            total.as_secs_f64() * 1e3,
            t.rows
        )?;
    }
    Ok(())
}
