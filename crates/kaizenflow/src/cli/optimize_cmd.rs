//! `kaizenflow optimize`: seed 002's dynamic trajectory optimizer on a config's
//! `[optimize]` problem.

use std::io::Write;

use anyhow::{Context, Result};
use kf_system::optimize::{OptimizeSpec, Problem, SpecResult, Trajectory, WeightSet, solve_spec};
use serde::Serialize;

use super::OptimizeArgs;
use super::config_cmd::load;
use super::data_cmd::check_section_used;

pub(super) fn run(args: &OptimizeArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(&args.config)?;
    let section = config.root().section("optimize")?;
    let mut spec = OptimizeSpec::from_section(&section)?;
    check_section_used(&config, "optimize")?;
    if let Some(t) = args.threads {
        spec.threads = Some(t);
    }
    let (problem, result) = solve_spec(&spec)?;
    report(&spec, &problem, &result, out)?;
    if let Some(path) = &args.out {
        let text = toml::to_string(&Saved::new(&spec, &problem, &result))
            .context("cannot write the solution as TOML")?;
        kf_frame::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "# solution written to {}", path.display())?;
    }
    Ok(())
}

fn report(spec: &OptimizeSpec, p: &Problem, r: &SpecResult, out: &mut dyn Write) -> Result<()> {
    let s = &r.solution;
    let (n, hz, k) = (p.assets(), p.horizons(), spec.units);
    let raw = WeightSet::raw_count(n, k).map_or_else(|| "overflow".into(), |c| c.to_string());
    writeln!(
        out,
        "problem: {n} assets, {hz} horizons, {k} units: |Ω| = {} ({raw} before signs of \
         zero weights are merged), |Φ| = {:.4e}",
        p.omega().len(),
        s.stats.space
    )?;
    let threads = spec
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    writeln!(
        out,
        "method: {}{}, prune {}, symmetry {} ({} identical asset pairs), {threads} threads",
        s.method.name(),
        if s.exact {
            " (proven optimal)"
        } else {
            " (heuristic)"
        },
        spec.options.prune,
        spec.options.symmetry,
        p.identical_pairs().len(),
    )?;
    trajectory(out, "best", &s.best, &spec.assets)?;
    let rate = s.stats.evaluated as f64 / r.seconds.max(1e-9);
    writeln!(
        out,
        "searched in {:.3} s: {} trajectories scored ({:.3e}/s), {} subtrees pruned, {} \
         skipped by symmetry, {} atoms; {:.4}% of Φ not scored",
        r.seconds,
        s.stats.evaluated,
        rate,
        s.stats.pruned,
        s.stats.symmetric,
        s.stats.atoms,
        100.0 * s.stats.skipped_fraction()
    )?;
    if let Some(b) = &r.baseline {
        trajectory(out, "static baseline", b, &spec.assets)?;
        writeln!(
            out,
            "dynamic - static Sharpe ratio: {:.6}",
            s.best.sharpe - b.sharpe
        )?;
    }
    Ok(())
}

fn trajectory(out: &mut dyn Write, what: &str, t: &Trajectory, assets: &[String]) -> Result<()> {
    writeln!(
        out,
        "{what}: Sharpe ratio {:.6}, net return {:.6e}, variance {:.6e}",
        t.sharpe, t.net_return, t.variance
    )?;
    write!(out, "  horizon")?;
    for a in assets {
        write!(out, "\t{a}")?;
    }
    writeln!(out, "\tcost\tturnover")?;
    for (h, w) in t.weights.iter().enumerate() {
        write!(out, "  {}", h + 1)?;
        for x in w {
            write!(out, "\t{x:.4}")?;
        }
        writeln!(out, "\t{:.3e}\t{:.4}", t.costs[h], t.turnover[h])?;
    }
    Ok(())
}

/// The solution as written by `--out`.
#[derive(Serialize)]
struct Saved<'a> {
    assets: &'a [String],
    units: u32,
    method: &'static str,
    exact: bool,
    seconds: f64,
    evaluated: u64,
    pruned: u64,
    symmetric: u64,
    space: f64,
    best: SavedTrajectory,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<SavedTrajectory>,
}

#[derive(Serialize)]
struct SavedTrajectory {
    sharpe: f64,
    net_return: f64,
    variance: f64,
    weights: Vec<Vec<f64>>,
    costs: Vec<f64>,
    turnover: Vec<f64>,
}

impl SavedTrajectory {
    fn new(t: &Trajectory) -> SavedTrajectory {
        SavedTrajectory {
            sharpe: t.sharpe,
            net_return: t.net_return,
            variance: t.variance,
            weights: t.weights.clone(),
            costs: t.costs.clone(),
            turnover: t.turnover.clone(),
        }
    }
}

impl<'a> Saved<'a> {
    fn new(spec: &'a OptimizeSpec, _p: &Problem, r: &SpecResult) -> Saved<'a> {
        let s = &r.solution;
        Saved {
            assets: &spec.assets,
            units: spec.units,
            method: s.method.name(),
            exact: s.exact,
            seconds: r.seconds,
            evaluated: s.stats.evaluated,
            pruned: s.stats.pruned,
            symmetric: s.stats.symmetric,
            space: s.stats.space,
            best: SavedTrajectory::new(&s.best),
            baseline: r.baseline.as_ref().map(SavedTrajectory::new),
        }
    }
}
