//! `kaizenflow check`: runs the configured DAG in batch, under random tilings,
//! streamed one bar at a time, under the perturbation test of its own learning
//! style (refitting as its `[run]` does), replayed on a simulated clock with the
//! knowledge-time audit, and, for a config with `[system]`, the trading loop on a
//! simulated clock with every decision and fill audited; prints a verdict per check
//! and fails when any check does. A check that cannot run fails unless skipped.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kf_dataflow::check::{
    CHECK_NAMES, CheckOptions, CheckResult, Subject, Verdict, replay_check, run_checks, skipped,
    warm_up,
};
use kf_dataflow::{Dag, DataflowError, Targets};
use kf_datapull::{Clock, MarketData, ReplaySettings, SimulatedClock};
use kf_frame::Duration;
use kf_system::Registries;

use super::CheckArgs;
use super::config_cmd::load;

pub(super) fn check(types: &Registries, args: &CheckArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(bad) = args
        .skip
        .iter()
        .find(|s| !CHECK_NAMES.contains(&s.as_str()))
    {
        bail!(
            "--skip {bad}: there is no such check; the checks are {}{}",
            CHECK_NAMES.join(", "),
            kf_config::did_you_mean(bad, CHECK_NAMES)
        );
    }
    let config = load(&args.config)?;
    let points = config.expand_sweep()?;
    if points.len() == 1 {
        let results = check_loaded(types, &config, args, out)?;
        return conclude(&results, out);
    }
    // A sweep: every point is a config of its own, and each is checked.
    let mut failed = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let varied: Vec<String> = p.varied.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        writeln!(
            out,
            "# sweep point {} of {}: {} ({})",
            i + 1,
            points.len(),
            p.config.id(),
            varied.join(", ")
        )?;
        if let Err(e) = check_loaded(types, &p.config, args, out).and_then(|r| conclude(&r, out)) {
            writeln!(out, "# point {}: {e:#}", p.config.id())?;
            failed.push(p.config.id());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} sweep points failed their checks: {}",
            failed.len(),
            points.len(),
            failed.join(", ")
        );
    }
    writeln!(out, "# all {} sweep points passed", points.len())?;
    Ok(())
}

/// Checks one config already loaded (a sweep's point, or a config without
/// `[sweep]`; `args.config` only names it in messages), prints a line per check and
/// returns the verdicts, failed ones included: [`conclude`] turns them into the
/// command's outcome. A config with no `[dag]` is checked as its market data alone: a
/// DAG of one `market_data` node, so that the view is read in batch, tiled, streamed
/// and replayed.
///
/// # Errors
/// A config that does not build, or a batch run that fails (no check can run).
pub fn check_loaded(
    types: &Registries,
    config: &kf_config::Config,
    args: &CheckArgs,
    out: &mut dyn Write,
) -> Result<Vec<CheckResult>> {
    let mut config = config.clone();
    if !config.root().contains("dag") {
        config.set_all(&[
            "dag.type=\"graph\"",
            "dag.nodes.market_data.type=\"market_data\"",
        ])?;
        writeln!(
            out,
            "# {} has no [dag]: checking its market data alone (a DAG of one `market_data` \
             node)",
            args.config.config.display()
        )?;
    }
    let config = &config;
    let components = kf_system::build_with(types, config)
        .with_context(|| format!("{} is not a valid config", args.config.config.display()))?;
    config.check_all_used()?;
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
    let cache = super::cache_cmd::open(&args.cache)?;
    let subject = Subject::with_runner(&make, &components.run)
        .context("building the DAG and fitting it as [run] does")?
        .with_cache(
            cache
                .as_ref()
                .map(|c| super::cache_cmd::handle(c, &args.config.config, &config.id())),
        );
    let opts = CheckOptions {
        tilings: args.tilings,
        perturbations: args.perturbations,
        seed: args.seed,
        max_threads: 4,
        allow_in_sample: args.allow_in_sample,
        skip: args.skip.clone(),
    };
    writeln!(
        out,
        "# checking {} ({} nodes{})",
        args.config.config.display(),
        subject.order().len(),
        describe_targets(subject.targets())
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
    if opts.skips("replay") {
        results.push(skipped("replay"));
    } else {
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
        match components
            .market_data
            .on_clock(Arc::clone(&clock), settings)
        {
            Ok(view) => results.push(replay_check(
                &subject, &make_on, view, &clock, &bars, &batch,
            )),
            Err(e) => results.push(CheckResult {
                name: "replay".into(),
                verdict: Verdict::Fail(format!(
                    "the market data cannot be put on a simulated clock, so the replay and \
                     the knowledge-time audit cannot run: {e} (skip them with --skip replay)"
                )),
                elapsed: std::time::Duration::ZERO,
            }),
        }
    }
    if root.contains("system") {
        if opts.skips("system") {
            results.push(skipped("system"));
        } else {
            results.extend(system_checks(types, config, subject.targets()));
        }
    }
    if let Some(c) = &cache {
        super::cache_cmd::report(c, out)?;
    }
    for r in &results {
        writeln!(out, "{r}")?;
    }

    if args.warmup {
        let report = warm_up(&subject, &bars, 4, args.warmup_tolerance)
            .context("the warm-up runs failed")?;
        for w in &report {
            writeln!(out, "{w}")?;
        }
        let unsettled: Vec<String> = report
            .iter()
            .filter(|w| w.within.is_none())
            .map(|w| format!("`{}`", w.node))
            .collect();
        if !unsettled.is_empty() {
            writeln!(
                out,
                "# warm-up: {} never agree within {:e} in the data: load more history than \
                 the data holds, or start them from a saved state",
                unsettled.join(", "),
                args.warmup_tolerance
            )?;
        } else if let Some(most) = report.iter().filter_map(|w| w.within).max() {
            let exact = if report.iter().all(|w| w.exact.is_some()) {
                report
                    .iter()
                    .filter_map(|w| w.exact)
                    .max()
                    .map_or(String::new(), |e| {
                        format!("; {e} rows for the bit-identical outputs")
                    })
            } else {
                "; some outputs never become bit-identical within the data".to_string()
            };
            writeln!(
                out,
                "# warm-up: load at least {most} rows of history before the first decision \
                 (outputs within {:e} of a run from the first bar){exact}",
                args.warmup_tolerance
            )?;
        }
    }
    if let Some(dir) = &args.out {
        write_verdicts(dir, &results)?;
        let path = kf_system::report::write_report(dir, types)?;
        writeln!(out, "report: {}", path.display())?;
    }
    Ok(results)
}

/// The command's outcome from the verdicts: an error counting the failed checks, or
/// a closing line saying how many passed (and how many were skipped or moot).
///
/// # Errors
/// When any check failed.
pub fn conclude(results: &[CheckResult], out: &mut dyn Write) -> Result<()> {
    let mut failed = 0;
    let mut skips = 0;
    // Checks that do not apply (fast streaming of a DAG with a node that has no
    // fast path) are neither passed nor skipped by request.
    let mut moot = 0;
    for r in results {
        match &r.verdict {
            Verdict::Pass => {}
            Verdict::Fail(_) => failed += 1,
            Verdict::Skipped(_) => skips += 1,
            Verdict::NotApplicable(_) => moot += 1,
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", results.len() - moot);
    }
    let moot_note = if moot > 0 {
        format!("; {moot} not applicable")
    } else {
        String::new()
    };
    if skips > 0 {
        writeln!(
            out,
            "# {} checks passed; {skips} skipped by request (not passed){moot_note}",
            results.len() - skips - moot
        )?;
    } else {
        writeln!(
            out,
            "# all {} checks passed{moot_note}",
            results.len() - moot
        )?;
    }
    Ok(())
}

/// The verdicts as `DIR/check.tsv`: check, verdict, seconds, detail.
fn write_verdicts(dir: &std::path::Path, results: &[CheckResult]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = String::from("check\tverdict\tseconds\tdetail\n");
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    for r in results {
        let (verdict, detail) = match &r.verdict {
            Verdict::Pass => ("pass", String::new()),
            Verdict::Fail(m) => ("fail", clean(m)),
            Verdict::Skipped(m) => ("skipped", clean(m)),
            Verdict::NotApplicable(m) => ("not applicable", clean(m)),
        };
        text.push_str(&format!(
            "{}\t{verdict}\t{:.3}\t{detail}\n",
            clean(&r.name),
            r.elapsed.as_secs_f64()
        ));
    }
    let path = dir.join("check.tsv");
    kf_frame::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn describe_targets(targets: &Targets) -> String {
    if targets.is_empty() {
        return String::new();
    }
    let names: Vec<String> = targets
        .iter()
        .map(|(name, t)| format!("`{name}` ({} rows ahead, node `{}`)", t.horizon, t.node))
        .collect();
    format!("; forward targets: {}", names.join(", "))
}

fn result(name: String, started: Instant, verdict: Verdict) -> CheckResult {
    CheckResult {
        name,
        verdict,
        elapsed: started.elapsed(),
    }
}

/// The trading loop's checks: the columns it trades are not forward targets; one
/// run on a simulated clock with every decision and fill audited; and the research
/// evaluator's P&L equal to the event-driven one.
fn system_checks(
    types: &Registries,
    config: &kf_config::Config,
    targets: &Targets,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let mut system = match kf_system::System::from_config_with(types, config) {
        Ok(s) => s,
        Err(e) => {
            return vec![result(
                "system".into(),
                started,
                Verdict::Fail(format!("the system cannot be built: {e}")),
            )];
        }
    };
    let mut results = Vec::new();
    let spec = &system.spec;
    let traded = std::iter::once(("prediction", &spec.prediction))
        .chain(spec.volatility.as_ref().map(|v| ("volatility", v)));
    let mut peeks = Vec::new();
    for (key, name) in traded {
        if let Some(t) = targets.get(name) {
            peeks.push(format!(
                "[system] {key} = \"{name}\" is a forward target (made by node `{}`, {} rows \
                 ahead): the system would trade on the future; trade a model's prediction of \
                 it instead",
                t.node, t.horizon
            ));
        }
    }
    results.push(result(
        "system: the traded columns are not forward targets".into(),
        started,
        if peeks.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(peeks.join("; "))
        },
    ));
    let started = Instant::now();
    let clock = system.clock(kf_system::ClockKind::Simulated);
    let delay = system.spec.clock.delay;
    let run = match system.run_on(clock) {
        Ok(r) => r,
        Err(e) => {
            results.push(result(
                "system: run on a simulated clock".into(),
                started,
                Verdict::Fail(format!("error: {e}")),
            ));
            return results;
        }
    };
    let a = &run.audit;
    let name = format!(
        "system: {} decisions on a simulated clock (delay {} s), each forecast known at its \
         decision and each fill after its order; {} stale forecasts, {} decisions later than \
         the declared delay, {} price rows not yet known when filled, {} price rows \
         straddling a decision",
        a.decisions,
        delay as f64 / 1e9,
        run.stale_forecasts,
        a.late_decisions,
        a.late_price_rows,
        a.straddling_rows
    );
    results.push(result(
        name,
        started,
        match &a.first_violation {
            None => Verdict::Pass,
            Some(v) => Verdict::Fail(format!(
                "future peeking in the trading loop: {} forecasts used before known, {} fills \
                 over prices from before their order; first: {v}",
                a.early_forecasts, a.early_fills
            )),
        },
    ));
    let started = Instant::now();
    let verdict = match kf_system::research::research(&mut system) {
        Err(e) => Verdict::Fail(format!("error: {e}")),
        Ok(r) => {
            let (x, y) = (r.stats.pnl, run.stats.pnl);
            if (x - y).abs() <= 0.005 + 1e-12 * y.abs() || (x.is_nan() && y.is_nan()) {
                Verdict::Pass
            } else {
                Verdict::Fail(format!(
                    "the research evaluator's P&L is {x:.2}, the event-driven run's {y:.2}: the \
                     batch forecasts that research trades are not those a live run has (a \
                     forward target or another non-causal node; see the checks above)"
                ))
            }
        }
    };
    results.push(result(
        "system: research P&L equals the event-driven P&L".into(),
        started,
        verdict,
    ));
    results
}
