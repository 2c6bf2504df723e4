//! `kaizenflow check`: runs the configured DAG in batch, under random tilings,
//! streamed one bar at a time, replayed on a simulated clock with the
//! knowledge-time audit, and under the perturbation test; prints a verdict per
//! check and fails when any check does.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use kf_dataflow::check::{CheckOptions, Subject, Verdict, replay_check, run_checks};
use kf_dataflow::{BuildContext, Dag, DataflowError, dag_registry};
use kf_datapull::{Clock, Historical, MarketData, Replayed, SimulatedClock, source_registry};

use super::CheckArgs;
use super::config_cmd::load;

pub(super) fn check(args: &CheckArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(&args.config)?;
    let components = kf_system::build(&config)
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
    let make_on = |view: Arc<dyn MarketData>| -> kf_dataflow::Result<Dag> {
        let ctx = BuildContext {
            market_data: Some(view),
        };
        dag_registry(&ctx)?
            .build(&dag_section)
            .map_err(DataflowError::from)
    };
    let market_data = Arc::clone(&components.market_data);
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
    // The replay needs the market data as a source it can release by knowledge time.
    let source = source_registry().build(&root.section("market_data")?);
    let bars = subject
        .input(&batch)
        .map(|f| f.end_ts().to_vec())
        .unwrap_or_default();
    let mut skipped = None;
    match (source, bars.first()) {
        (Ok(source), Some(&first)) => {
            let freq = bars
                .windows(2)
                .map(|w| w[1] - w[0])
                .min()
                .unwrap_or(60_000_000_000)
                .max(1);
            let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(first - freq));
            let view = Replayed::new(
                Historical::new(Arc::from(source)),
                Arc::clone(&clock),
                0,
                freq,
                first.rem_euclid(freq),
                freq,
            )?;
            results.push(replay_check(
                &subject,
                &make_on,
                Arc::new(view),
                &clock,
                &bars,
                &batch,
            ));
        }
        (Err(e), _) => skipped = Some(format!("the market data is not a plain source ({e})")),
        (_, None) => skipped = Some("the sources gave no rows".to_string()),
    }
    let mut failed = 0;
    for r in &results {
        writeln!(out, "{r}")?;
        failed += usize::from(r.verdict != Verdict::Pass);
    }
    if let Some(why) = skipped {
        writeln!(out, "skip  replay: {why}")?;
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", results.len());
    }
    writeln!(out, "# all {} checks passed", results.len())?;
    Ok(())
}
