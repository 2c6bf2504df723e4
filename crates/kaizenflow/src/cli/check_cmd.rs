//! `kaizenflow check`: runs the configured DAG in batch, under random tilings,
//! streamed one bar at a time, replayed on a simulated clock with the
//! knowledge-time audit, and under the perturbation test; prints a verdict per
//! check and fails when any check does.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use kf_dataflow::check::{CheckOptions, Subject, Verdict, replay_check, run_checks};
use kf_dataflow::{Dag, DataflowError};
use kf_datapull::{Clock, MarketData, ReplaySettings, SimulatedClock};
use kf_frame::Duration;
use kf_system::Registries;

use super::CheckArgs;
use super::config_cmd::load;

pub(super) fn check(types: &Registries, args: &CheckArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(&args.config)?;
    let components = kf_system::build_with(types, &config)
        .with_context(|| format!("{} is not a valid config", args.config.config.display()))?;
    config.check_all_used()?;
    if components.dag.is_none() {
        bail!(
            "{} has no [dag] section: there is nothing to check",
            args.config.config.display()
        );
    }
    let root = config.root();
    let dag_section = root.section("dag")?;
    // Set once the bar grid is known, before the replay: how nodes' own sources
    // are put on the replay's clock.
    let replay_settings: OnceLock<ReplaySettings> = OnceLock::new();
    let make_on = |view: Arc<dyn MarketData>| -> kf_dataflow::Result<Dag> {
        types
            .dataflow
            .dag_with(&dag_section, Some(&view), replay_settings.get())
            .map_err(DataflowError::from)
    };
    // The batch, tiling, streaming and perturbation checks read all the data; the
    // replay reads the same data released on a simulated clock.
    let market_data = components
        .market_data
        .unclocked()
        .context("the batch, tiling, streaming and perturbation checks read the market data without its clock")?;
    let make = || make_on(Arc::clone(&market_data));
    let subject = Subject::fit(&make).context("building and fitting the DAG")?;
    let opts = CheckOptions {
        tilings: args.tilings,
        perturbations: args.perturbations,
        seed: args.seed,
        max_threads: 4,
    };
    writeln!(
        out,
        "# checking {} ({} nodes)",
        args.config.config.display(),
        subject.order().len()
    )?;
    let (batch, mut results) = run_checks(&subject, &opts).context("the batch run failed")?;
    let bars = subject
        .input(&batch)
        .map(|f| f.end_ts().to_vec())
        .unwrap_or_default();
    let Some(&first) = bars.first() else {
        bail!(
            "the DAG's sources gave no rows, so the replay and the knowledge-time audit \
             cannot run: a check that cannot run is not a pass"
        );
    };
    let freq = bars
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(60_000_000_000)
        .max(1);
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(first - freq));
    let settings = replay_settings.get_or_init(|| ReplaySettings {
        delay: Duration::ZERO,
        freq: Duration(freq),
        offset: Duration(first.rem_euclid(freq)),
        poll: Duration(freq),
    });
    let view = components
        .market_data
        .on_clock(Arc::clone(&clock), settings)
        .context("the replay check puts the market data on a simulated clock")?;
    results.push(replay_check(
        &subject, &make_on, view, &clock, &bars, &batch,
    ));
    let mut failed = 0;
    for r in &results {
        writeln!(out, "{r}")?;
        failed += usize::from(r.verdict != Verdict::Pass);
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", results.len());
    }
    writeln!(out, "# all {} checks passed", results.len())?;
    Ok(())
}
