//! `kaizenflow live`, `kaizenflow ingest` and `kaizenflow reconcile`: a system
//! trading a PostgreSQL feed in real time, restartable; a simulated vendor feed
//! from stored data; and the check of a live run against a replay of the stored
//! rows (feature `postgres`).

#[cfg(not(feature = "postgres"))]
use std::io::Write;
use std::path::PathBuf;

#[cfg(not(feature = "postgres"))]
use anyhow::Result;
use clap::Args;
#[cfg(not(feature = "postgres"))]
use kf_system::Registries;

use super::ConfigArgs;

/// `kaizenflow live ...`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The config (its `[market_data]` a `postgres` source with `assets`; its
    /// `[system]` with `start` and `end`) and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The run's folder: its journal, checkpoint, live log and, at the end, its
    /// orders, fills and portfolio. Run the same command again on it to resume.
    #[arg(long)]
    pub out: PathBuf,
    /// Trade with the fitted DAG an earlier `run --out DIR` saved under DIR/state/.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// `kaizenflow ingest ...`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The config whose `[market_data]` is read (a store, CSV files, ...), and
    /// overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The config whose `[market_data]` is the `postgres` table to feed (its
    /// `columns` are written, and only its `assets` when it lists some).
    #[arg(long, value_name = "CONFIG")]
    pub to: PathBuf,
    /// The first bar end to read (read in UTC unless it names a zone).
    #[arg(long)]
    pub start: Option<String>,
    /// The last bar end to read.
    #[arg(long)]
    pub end: Option<String>,
    /// Move the bars in time so that the first ends at this time (`now`: the next
    /// bar boundary from now), keeping their spacing; `today` or `tomorrow` move
    /// them by whole days (UTC), keeping their time of day, which a model with
    /// session hours (Mock1's) reads.
    #[arg(long, value_name = "TIME|now|today|tomorrow")]
    pub shift_to: Option<String>,
    /// Write a bar every `bar / speed` of wall time (0: as fast as the database
    /// takes them).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Bars per transaction (1: each bar commits alone, as a feed delivers it).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Drop and create the table first.
    #[arg(long)]
    pub fresh: bool,
    /// Hold this many rows back, writing each 3 bars late.
    #[arg(long, default_value_t = 0)]
    pub late: usize,
    /// Write this many rows twice.
    #[arg(long, default_value_t = 0)]
    pub duplicates: usize,
    /// Swap this many pairs of consecutive bars.
    #[arg(long, default_value_t = 0)]
    pub out_of_order: usize,
    /// Revise this many rows 2 bars after their first version (price x 1.01).
    #[arg(long, default_value_t = 0)]
    pub revise: usize,
    /// Leave out this many whole bars (never sent; never the last).
    #[arg(long, default_value_t = 0)]
    pub drop_bars: usize,
    /// Seed of the fault positions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `kaizenflow reconcile ...`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The folder of a `kaizenflow live` run.
    pub dir: PathBuf,
}

#[cfg(not(feature = "postgres"))]
fn no_feature() -> anyhow::Error {
    anyhow::anyhow!(
        "this build has no PostgreSQL support: rebuild with `--features postgres` \
         (`cargo run --release --features postgres -- ...`)"
    )
}

#[cfg(not(feature = "postgres"))]
pub(super) fn live(_: &Registries, _: &LiveArgs, _: &mut dyn Write) -> Result<()> {
    Err(no_feature())
}

#[cfg(not(feature = "postgres"))]
pub(super) fn ingest(_: &Registries, _: &IngestArgs, _: &mut dyn Write) -> Result<()> {
    Err(no_feature())
}

#[cfg(not(feature = "postgres"))]
pub(super) fn reconcile(_: &Registries, _: &ReconcileArgs, _: &mut dyn Write) -> Result<()> {
    Err(no_feature())
}

#[cfg(feature = "postgres")]
pub(super) use with_pg::{ingest, live, reconcile};

#[cfg(feature = "postgres")]
mod with_pg {
    use std::io::Write;
    use std::sync::Arc;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use anyhow::{Context, Result, bail};
    use kf_config::Config;
    use kf_datapull::pg::{PgFeed, PgSettings, PgWriter};
    use kf_datapull::{Feed, GrowingSource};
    use kf_frame::Timestamp;
    use kf_system::durable::{Recorded, first_difference, recorded};
    use kf_system::{Registries, System};

    use std::path::{Path, PathBuf};

    use super::{IngestArgs, LiveArgs, ReconcileArgs};

    /// The file in a live run's folder that says how it was started.
    const STARTED: &str = "live.toml";
    /// The live log: one line per decision with its wall-clock latency.
    pub(super) const LOG: &str = "live.tsv";

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Started {
        config: PathBuf,
        set: Vec<String>,
        state: Option<PathBuf>,
    }

    /// Reads what a live folder's `live.toml` says, or writes it for a new run; a
    /// folder started with another config is refused.
    fn started(dir: &Path, now: Option<&Started>) -> Result<Started> {
        let path = dir.join(STARTED);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let was: Started = toml::from_str(&text)
                    .with_context(|| format!("{} is damaged", path.display()))?;
                if let Some(now) = now
                    && (now.config != was.config || now.set != was.set || now.state != was.state)
                {
                    bail!(
                        "{} holds a live run of {} (with {:?}): resume it with the same config and \
                         overrides, or use another --out",
                        dir.display(),
                        was.config.display(),
                        was.set
                    );
                }
                Ok(was)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(now) = now else {
                    bail!(
                        "{} is not the folder of a `kaizenflow live` run (it has no {STARTED})",
                        dir.display()
                    );
                };
                if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
                    bail!(
                        "{} is not empty and holds no live run: use an empty or new folder",
                        dir.display()
                    );
                }
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let text = toml::to_string(now)?;
                kf_frame::write_atomic(&path, text.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(Started {
                    config: now.config.clone(),
                    set: now.set.clone(),
                    state: now.state.clone(),
                })
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn wall_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// The `postgres` settings of `config`'s `[market_data]`.
    fn settings(config: &Config, what: &str) -> Result<PgSettings> {
        let s = config.section("market_data")?;
        let kind: String = s.get("type")?;
        if kind != "postgres" {
            bail!(
                "{what}'s [market_data] is a `{kind}` source: a live system reads a \
                 `postgres` one"
            );
        }
        Ok(PgSettings::from_config(&s)?)
    }

    fn load(path: &std::path::Path, set: &[String]) -> Result<Config> {
        let mut config = Config::from_file(path)?;
        config.set_all(set)?;
        Ok(config)
    }

    /// A feed that says on stderr what its tail met (lost connections,
    /// reconnections) as it happens.
    struct Noting(PgFeed);

    impl Feed for Noting {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn sync(&mut self, into: &GrowingSource) -> kf_datapull::Result<i64> {
            let r = self.0.sync(into);
            for n in self.0.take_notes() {
                eprintln!("# live: {n}");
            }
            r
        }
        fn wait(&mut self, until: i64) -> kf_datapull::Result<()> {
            self.0.wait(until)
        }
    }

    fn states_for(
        types: &Registries,
        config: &Config,
        dir: Option<&std::path::Path>,
    ) -> Result<Option<kf_system::States>> {
        let Some(dir) = dir else { return Ok(None) };
        let components = kf_system::build_with(types, config)?;
        let Some(dag) = components.dag else {
            bail!("the config has no [dag]")
        };
        Ok(Some(
            kf_dataflow::runner::read_states(&dag, dir)
                .with_context(|| format!("cannot start from the state in {}", dir.display()))?,
        ))
    }

    pub(in crate::cli) fn live(
        types: &Registries,
        args: &LiveArgs,
        out: &mut dyn Write,
    ) -> Result<()> {
        let config_path = std::path::absolute(&args.config.config)
            .with_context(|| format!("cannot find {}", args.config.config.display()))?;
        let state = match &args.state {
            Some(s) => Some(std::path::absolute(s)?),
            None => None,
        };
        started(
            &args.out,
            Some(&Started {
                config: config_path.clone(),
                set: args.config.set.clone(),
                state: state.clone(),
            }),
        )?;
        let config = load(&config_path, &args.config.set)?;
        let settings = settings(&config, &config_path.display().to_string())?;
        let states = states_for(types, &config, state.as_deref())?;
        let source = Arc::new(settings.growing()?);
        let mut system = System::build_live(types, &config, states, Arc::clone(&source))
            .with_context(|| format!("{} is not a live system", config_path.display()))?;
        config.check_all_used()?;
        let log_path = args.out.join(LOG);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        if log.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            writeln!(
                log,
                "ts\tdecided\tknown\tcommitted\tseen\twall\tlatency_us\tsystem_us\tlate"
            )?;
        }
        let started_at = Instant::now();
        let started_wall = wall_now();
        let mut live_latency = Vec::new();
        let mut system_latency = Vec::new();
        let mut from_commit = true;
        let mut late = 0usize;
        let mut log_error = None;
        let timing_of = Arc::clone(&source);
        let mut observe = |r: Recorded| {
            let wall = wall_now();
            // From the commit of the decision's bar (the server's commit time when
            // it keeps them, `track_commit_timestamp`; else the writing
            // transaction's time) to its order, recorded; and from the bar's rows
            // being held here (the system's own part). A bar that came before this
            // process started (while it was down) is decided late: caught up.
            let (committed, seen) = match timing_of.timing(r.ts) {
                Some((c, seen)) => (c, seen),
                None => (None, wall),
            };
            from_commit &= committed.is_some();
            let latency = wall.saturating_sub(committed.unwrap_or(r.cut));
            let own = wall.saturating_sub(seen);
            let is_late = r.cut < started_wall;
            if is_late {
                late += 1;
            } else {
                live_latency.push(latency);
                system_latency.push(own);
            }
            if let Err(e) = writeln!(
                log,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                Timestamp(r.ts),
                Timestamp(r.decided),
                Timestamp(r.cut),
                committed.map_or("-".to_string(), |c| Timestamp(c).to_string()),
                Timestamp(seen),
                Timestamp(wall),
                latency / 1000,
                own / 1000,
                is_late
            ) {
                log_error.get_or_insert(e);
            }
        };
        let mut feed = Noting(PgFeed::new(settings)?);
        let (run, resumed) = system
            .run_live(&args.out, &mut feed, &mut observe)
            .with_context(|| {
                format!(
                    "the live run in {} stopped (every decision made is recorded: run the \
                     same command again to resume)",
                    args.out.display()
                )
            })?;
        if let Some(e) = log_error {
            eprintln!("# live: cannot write {}: {e}", log_path.display());
        }
        kf_system::output::write_run(&run, &args.out)?;
        writeln!(
            out,
            "# live: {} decisions x {} assets ({} before this start, {} late: their bars came \
             before it) in {:.1} s; orders, fills, portfolio in {}",
            run.bars.len(),
            run.assets.len(),
            resumed.decisions,
            late,
            started_at.elapsed().as_secs_f64(),
            args.out.display()
        )?;
        let from = if from_commit {
            "bar commit"
        } else {
            "bar write (the server keeps no commit times)"
        };
        for (what, mut v) in [
            (from, live_latency),
            ("rows held here, the system's part", system_latency),
        ] {
            v.sort_unstable();
            if v.is_empty() {
                continue;
            }
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
            writeln!(
                out,
                "# live latency ({what} to recorded order): p50 {:.3} ms, p99 {:.3} ms, max \
                 {:.3} ms over {} decisions",
                q(0.5),
                q(0.99),
                q(1.0),
                v.len()
            )?;
        }
        if run.audit.missing_bars > 0 {
            writeln!(
                out,
                "# live: {} bars never came and were decided without",
                run.audit.missing_bars
            )?;
        }
        write!(
            out,
            "{}",
            kf_system::output::summary(&run.stats, run.stale_forecasts)
        )?;
        Ok(())
    }

    pub(in crate::cli) fn reconcile(
        types: &Registries,
        args: &ReconcileArgs,
        out: &mut dyn Write,
    ) -> Result<()> {
        let was = started(&args.dir, None)?;
        let config = load(&was.config, &was.set)?;
        let settings = settings(&config, &was.config.display().to_string())?;
        let live = recorded(&args.dir)?;
        if live.is_empty() {
            bail!(
                "{} holds no decision yet: nothing to reconcile",
                args.dir.display()
            );
        }
        // Every row the table holds, in the order the live tail reads them.
        let source = Arc::new(settings.growing()?);
        let mut feed = PgFeed::new(settings)?;
        feed.sync(&source)?;
        let states = states_for(types, &config, was.state.as_deref())?;
        let mut system = System::build_live(types, &config, states, source)?;
        // The replay covers the decisions the live run made (it may still be going).
        system.grid.truncate(live.len());
        let replay_dir = args.dir.join("reconcile");
        if replay_dir.exists() {
            std::fs::remove_dir_all(&replay_dir)
                .with_context(|| format!("cannot empty {}", replay_dir.display()))?;
        }
        system.replay_live(&replay_dir)?;
        let replay = recorded(&replay_dir)?;
        match first_difference(&live, &replay) {
            None if replay.len() == live.len() => {
                writeln!(
                    out,
                    "identical: {} decisions, their orders, fills and P&L, bar by bar, to a \
                     replay of the table by knowledge time",
                    live.len()
                )?;
                Ok(())
            }
            None => bail!(
                "the replay made {} decisions, the live run {}",
                replay.len(),
                live.len()
            ),
            Some(d) => {
                writeln!(out, "first difference: {d}")?;
                bail!("the live run and the replay of its data differ")
            }
        }
    }

    /// Picks `n` distinct positions below `len` from a seeded xorshift stream.
    fn picks(n: usize, len: usize, seed: &mut u64) -> Vec<usize> {
        let mut out = Vec::new();
        if len == 0 {
            return out;
        }
        let mut guard = 0;
        while out.len() < n.min(len) && guard < 100 * len {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            let p = (*seed % len as u64) as usize;
            if !out.contains(&p) {
                out.push(p);
            }
            guard += 1;
        }
        out.sort_unstable();
        out
    }

    pub(in crate::cli) fn ingest(
        types: &Registries,
        args: &IngestArgs,
        out: &mut dyn Write,
    ) -> Result<()> {
        if !(args.speed.is_finite() && args.speed >= 0.0) {
            bail!("--speed {} must be a number >= 0", args.speed);
        }
        let from = load(&args.config.config, &args.config.set)?;
        let to = load(&args.to, &[])?;
        let settings = settings(&to, &args.to.display().to_string())?;
        let data = types.dataflow.data.view(&from.section("market_data")?)?;
        let time = |t: &Option<String>| -> Result<Option<i64>> {
            t.as_deref()
                .map(|s| Timestamp::parse(s).map(Timestamp::nanos))
                .transpose()
                .map_err(Into::into)
        };
        let columns = settings.params.columns.clone();
        let assets = (!settings.params.assets.is_empty()).then(|| settings.params.assets.clone());
        let frame = data
            .data_for_interval(
                Timestamp(time(&args.start)?.unwrap_or(i64::MIN)),
                Timestamp(time(&args.end)?.unwrap_or(i64::MAX)),
                assets.as_deref(),
                Some(&columns),
            )
            .with_context(|| format!("cannot read {}", data.describe()))?;
        if frame.is_empty() {
            bail!("{} has no rows in the range asked", data.describe());
        }
        let freq = settings.freq;
        let first = frame.end_ts()[0];
        const DAY: i64 = 86_400_000_000_000;
        let whole_days =
            |days: i64| (wall_now().div_euclid(DAY) + days - first.div_euclid(DAY)) * DAY;
        let shift = match args.shift_to.as_deref() {
            None => 0,
            Some("now") => {
                let now = wall_now();
                (now.div_euclid(freq) + 1) * freq - first
            }
            Some("today") => whole_days(0),
            Some("tomorrow") => whole_days(1),
            Some(t) => Timestamp::parse(t)?.nanos() - first,
        };
        // Bars in write order, each a list of rows (end, asset index, values).
        let n = frame.n_assets();
        let cols: Vec<&[f64]> = (0..columns.len())
            .map(|f| frame.feature_at(f).values())
            .collect();
        type Row = (i64, usize, Vec<f64>);
        let mut bars: Vec<(i64, Vec<Row>)> = frame
            .end_ts()
            .iter()
            .enumerate()
            .map(|(r, &end)| {
                let rows = (0..n)
                    .filter_map(|a| {
                        let v: Vec<f64> = cols.iter().map(|c| c[r * n + a]).collect();
                        v.iter().any(|x| !x.is_nan()).then_some((end + shift, a, v))
                    })
                    .collect();
                (end + shift, rows)
            })
            .collect();
        let mut seed = args.seed ^ 0x9E37_79B9_7F4A_7C15;
        let total_rows: usize = bars.iter().map(|b| b.1.len()).sum();
        // Faults, each at seeded positions: whole bars dropped, pairs swapped, rows
        // held back, rows twice, rows revised.
        // A dropped bar is followed by others (the last is always sent): a feed that
        // moves on is how a live system tells a bar will not come.
        for &b in picks(args.drop_bars, bars.len().saturating_sub(1), &mut seed)
            .iter()
            .rev()
        {
            bars.remove(b);
        }
        for b in picks(args.out_of_order, bars.len().saturating_sub(1), &mut seed) {
            bars.swap(b, b + 1);
        }
        let flat: Vec<(usize, usize)> = bars
            .iter()
            .enumerate()
            .flat_map(|(b, (_, rows))| (0..rows.len()).map(move |r| (b, r)))
            .collect();
        let mut extra: Vec<Vec<Row>> = vec![Vec::new(); bars.len() + 4];
        let mut held = Vec::new();
        for p in picks(args.late, flat.len(), &mut seed) {
            let (b, r) = flat[p];
            extra[b + 3].push(bars[b].1[r].clone());
            held.push((b, r));
        }
        for p in picks(args.duplicates, flat.len(), &mut seed) {
            let (b, r) = flat[p];
            let row = bars[b].1[r].clone();
            extra[b].push(row);
        }
        for p in picks(args.revise, flat.len(), &mut seed) {
            let (b, r) = flat[p];
            let mut row = bars[b].1[r].clone();
            row.2[0] *= 1.01;
            extra[b + 2].push(row);
        }
        held.sort_unstable();
        for &(b, r) in held.iter().rev() {
            bars[b].1.remove(r);
        }
        let names = frame.assets().to_vec();
        let mut writer = PgWriter::connect(settings.clone())?;
        writer.ensure_table(args.fresh)?;
        let started_wall = wall_now();
        let started = Instant::now();
        let first_end = bars.first().map_or(0, |b| b.0);
        let (mut written, mut commits) = (0u64, 0u64);
        let batch = args.batch.max(1);
        let last_end = bars.last().map_or(0, |b| b.0);
        let mut pending: Vec<Row> = Vec::new();
        for (i, (end, rows)) in bars.iter().enumerate() {
            pending.extend(rows.iter().cloned());
            pending.append(&mut extra[i]);
            if (i + 1) % batch != 0 && i + 1 != bars.len() {
                continue;
            }
            if args.speed > 0.0 {
                let due = started_wall + ((end - first_end) as f64 / args.speed) as i64;
                let wait = due - wall_now();
                if wait > 0 {
                    std::thread::sleep(std::time::Duration::from_nanos(wait as u64));
                }
            }
            let refs: Vec<(i64, &str, &[f64])> = pending
                .iter()
                .map(|(e, a, v)| (*e, names[*a].as_str(), v.as_slice()))
                .collect();
            written += writer.write(&refs)?;
            commits += 1;
            pending.clear();
        }
        // Rows held back past the last bar.
        let tail: Vec<Row> = extra.iter_mut().flat_map(|e| e.drain(..)).collect();
        if !tail.is_empty() {
            let refs: Vec<(i64, &str, &[f64])> = tail
                .iter()
                .map(|(e, a, v)| (*e, names[*a].as_str(), v.as_slice()))
                .collect();
            written += writer.write(&refs)?;
            commits += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "# ingest: {written} rows ({total_rows} source rows) in {commits} transactions into \
             {} in {secs:.3} s: {:.0} rows/s; bars from {} to {} (shifted by {:.0} s)",
            writer_describe(&to)?,
            written as f64 / secs.max(1e-9),
            Timestamp(first_end),
            Timestamp(last_end),
            shift as f64 / 1e9
        )?;
        if args.late + args.duplicates + args.out_of_order + args.revise + args.drop_bars > 0 {
            writeln!(
                out,
                "# ingest faults: {} rows 3 bars late, {} rows twice, {} bar pairs swapped, {} \
                 rows revised 2 bars later, {} bars dropped (seed {})",
                args.late,
                args.duplicates,
                args.out_of_order,
                args.revise,
                args.drop_bars,
                args.seed
            )?;
        }
        Ok(())
    }

    fn writer_describe(to: &Config) -> Result<String> {
        Ok(settings(to, "--to")?.describe())
    }
}
