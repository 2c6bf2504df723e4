//! The `kaizenflow` command line: argument parsing (clap) and the commands.
//!
//! Commands write their report to a `Write` so tests can read it; the binary passes
//! standard output and turns an error into its printed cause chain and exit status 1.

mod cache_cmd;
mod check_cmd;
mod config_cmd;
mod data_cmd;
mod live_cmd;
mod metrics_out;
mod optimize_cmd;
mod out_dir;
mod run_cmd;
mod sweep_cmd;
mod types_cmd;

pub use check_cmd::{check_loaded, conclude};
pub use run_cmd::{RunOutcome, run_loaded};

use std::io::Write;
use std::path::PathBuf;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use kf_system::Registries;

/// KaizenFlow for Rust: describe a time-series ML system once in TOML; run it in
/// batch, tiled, replayed and real-time modes with identical results.
#[derive(Debug, Parser)]
#[command(name = "kaizenflow", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the data and the DAG from a config and run its runner (`[run]`), writing
    /// OUT/config.toml (resolved), OUT/result.parquet (long layout), OUT/timings.tsv,
    /// fitted states under OUT/state/, model metrics in OUT/metrics.toml and captures
    /// under OUT/capture/; with a `[system]`, its orders, fills, portfolio and stats.
    Run(RunArgs),
    /// Check the config's DAG for exactness and causality: batch vs random tilings,
    /// one-bar streaming and a replay on a simulated clock must agree to the bit, no
    /// row may be used before it is known, and changing inputs known after a time
    /// must not change outputs known by then. Prints a verdict per check; exits
    /// non-zero when any fails.
    Check(CheckArgs),
    /// Inspect and validate configs.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run every config of a [sweep] on the job engine, writing each run's outputs
    /// under OUT/<config id>/ and a summary table OUT/summary.tsv.
    Sweep(SweepArgs),
    /// Convert market data into stores and inspect stores.
    #[command(subcommand)]
    Data(DataCommand),
    /// Find the portfolio trajectory over several horizons that maximizes the Sharpe
    /// ratio net of square-root transaction costs (seed 002's dynamic optimizer):
    /// exact enumeration with pruning, or beam search when the space is too large,
    /// beside the static baseline. Reads the config's [optimize] section.
    Optimize(OptimizeArgs),
    /// Run SQL over stores and run outputs (Parquet files), with time and asset
    /// filters pushed down to row groups (needs the `sql` feature).
    Sql(SqlArgs),
    /// List every node type a config can name (built-in and registered by the
    /// program), or print one type's parameters (types, defaults, docs) and ports.
    Nodes(TypeArgs),
    /// List every market data source and view type, or print one's parameters.
    Sources(TypeArgs),
    /// List every forecast processor type, or print one's parameters.
    Processors(TypeArgs),
    /// List every DAG builder (`[dag] type`), or print one's parameters.
    Dags(TypeArgs),
    /// Inspect or empty a node cache folder (see `run --cache`).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Trade a system live on a PostgreSQL feed (feature `postgres`): wait for each
    /// bar by the database's commit time, decide, fill (simulated broker), and record
    /// every decision durably in OUT (journal and checkpoint, synced). Killed at any
    /// instant, the same command resumes: it decides the bars that came meanwhile as
    /// a replay would, marks them late in OUT/live.tsv, and goes on live.
    Live(live_cmd::LiveArgs),
    /// Feed a PostgreSQL bars table from any source a config reads (a store, CSV
    /// files), at a speed factor and shifted in time, as a vendor feed would; with
    /// planted faults on request (feature `postgres`).
    Ingest(live_cmd::IngestArgs),
    /// Write RUN_DIR/report.html from a run folder's files: statistics, P&L with
    /// drawdowns, exposure, turnover, returns, P&L by asset, model metrics, time by
    /// node, the DAG drawn, check verdicts and the resolved config; one
    /// self-contained page that opens offline (`run` writes it too).
    Report {
        /// The run folder (`run --out`, `check --out`).
        dir: PathBuf,
    },
    /// Replay a live run's period from what the database holds, by knowledge time,
    /// on a simulated clock, and compare orders, fills and P&L bar by bar with the
    /// live run's records: prints "identical" or the first difference (feature
    /// `postgres`).
    Reconcile(live_cmd::ReconcileArgs),
}

/// `kaizenflow cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache's entries (node, type, config, rows, size, age), its size,
    /// and the hits and misses of the runs that used it.
    Info {
        /// The cache folder.
        dir: PathBuf,
    },
    /// Remove every entry of the cache.
    Clear {
        /// The cache folder.
        dir: PathBuf,
    },
}

/// Where node outputs are cached (`run`, `sweep` and `check`).
#[derive(Debug, Args, Clone)]
pub struct CacheArgs {
    /// Take node outputs from, and store them in, this cache folder (created if
    /// absent): a node whose type, code version, parameters, data and inputs are
    /// unchanged since a run stored its output is not run again. Outputs are the
    /// same bytes with and without it.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The cache folder's size bound (`500MB`, `8GiB`); the least recently used
    /// entries are removed beyond it.
    #[arg(long, value_name = "SIZE", default_value = "8GiB", value_parser = parse_size, requires = "cache")]
    pub cache_max: u64,
}

/// `kaizenflow nodes|sources|processors|dags [TYPE]`.
#[derive(Debug, Args)]
pub struct TypeArgs {
    /// The type to describe (all, one line each, when absent).
    pub name: Option<String>,
}

/// `kaizenflow run ...`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The config and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory for the outputs: created if absent; an earlier run's files in it are
    /// removed first. A non-empty directory that no run wrote is refused (see
    /// `--force`).
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a non-empty `--out` that no run made, replacing the files a run
    /// writes there (other files are left alone).
    #[arg(long)]
    pub force: bool,
    /// Also write these nodes' inputs and outputs as Parquet, for replay in a test:
    /// comma-separated node ids, or `all`.
    #[arg(long, value_delimiter = ',', value_name = "NID,...|all")]
    pub capture: Vec<String>,
    /// Run nodes one at a time instead of running independent nodes in parallel
    /// (the results are the same either way).
    #[arg(long)]
    pub sequential: bool,
    /// Predict (and trade) with the fitted DAG an earlier `run --out DIR` saved under
    /// DIR/state/, instead of fitting: the runner's fits are skipped and it predicts
    /// over its span, and a `[system]` starts from that state. A state that does not
    /// fit the DAG (another node type, other input features or assets) is refused,
    /// naming the node.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The node cache.
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Do not write OUT/report.html (see `kaizenflow report`).
    #[arg(long)]
    pub no_report: bool,
    /// Where the run executes: this process, or every rank of an MPI job
    /// (`mpirun -np 2 kaizenflow run ... --backend mpi`; needs the `mpi` feature).
    /// Under MPI every rank runs the config and the ranks train each `lstm` or `gru`
    /// together, each computing the gradients of its share of every minibatch
    /// (docs/dataflow.md); rank 0 writes `--out`. Nodes run one at a time.
    #[arg(long, value_enum, default_value_t = Backend::Threads)]
    pub backend: Backend,
}

/// `kaizenflow check ...`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How many random tilings (time cuts, asset tiles, threads) to compare.
    #[arg(long, default_value_t = 8)]
    pub tilings: usize,
    /// How many times to cut at in the perturbation test.
    #[arg(long, default_value_t = 3)]
    pub perturbations: usize,
    /// Seed of the random tilings.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Accept an in-sample evaluation (a `fit_predict` that predicts the rows it
    /// was fitted on) for research, instead of failing it.
    #[arg(long)]
    pub allow_in_sample: bool,
    /// Skip a check by name (`tiling`, `streaming`, `perturbation`, `replay`,
    /// `system`); repeat for several. A check that cannot run fails unless skipped.
    #[arg(long, value_name = "CHECK")]
    pub skip: Vec<String>,
    /// Also report each node's warm-up: after how many rows a run started later
    /// gives the full run's outputs (to the bit, and within --warmup-tolerance).
    #[arg(long)]
    pub warmup: bool,
    /// The relative tolerance of the warm-up report.
    #[arg(long, default_value_t = 1e-9, requires = "warmup")]
    pub warmup_tolerance: f64,
    /// The node cache, for the batch run every check compares against.
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Also write the verdicts to DIR/check.tsv (created if absent; a run folder's
    /// report then shows them) and refresh DIR/report.html.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `kaizenflow data ...`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Read the source a config describes and write it as a Parquet or HDF5 store.
    Import(DataImportArgs),
    /// Print a store's assets, time range, rows, columns and missing values.
    Info {
        /// The store (`*.parquet`, or `*.h5` with the `hdf5` feature).
        store: PathBuf,
    },
}

/// Store formats that `data import` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreFormat {
    /// A Parquet store (long layout, row groups by time and asset blocks).
    Parquet,
    /// An HDF5 store (time x asset datasets; needs the `hdf5` feature).
    Hdf5,
}

/// `kaizenflow data import ...`.
#[derive(Debug, Args)]
pub struct DataImportArgs {
    /// The config and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The config section describing the source.
    #[arg(long, default_value = "market_data")]
    pub section: String,
    /// The store to write (replaced if present).
    #[arg(long)]
    pub out: PathBuf,
    /// The store format (default: from the extension of --out).
    #[arg(long, value_enum)]
    pub format: Option<StoreFormat>,
    /// Compression: `zstd` (Parquet default), `lz4`, `lzf` (HDF5 default),
    /// `deflate`, or `none` (largest files, fastest reads; an uncompressed HDF5
    /// store is contiguous, not chunked).
    #[arg(long)]
    pub compression: Option<String>,
    /// Bars per row group of a Parquet store (default: about 128k rows per group).
    /// A store that grows by whole days is best cut at a day's bars (390 for US
    /// equity minutes): a day appended then leaves every old row group as it was,
    /// and `run --cache` continuing over it reads no old row.
    #[arg(long, value_name = "BARS")]
    pub time_block: Option<usize>,
}

/// `kaizenflow sql ...`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// A table: `--table bars=data/bars.parquet`. Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    pub tables: Vec<String>,
    /// The query.
    pub query: String,
}

/// `kaizenflow sweep ...`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The config and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory for the outputs: created if absent; an earlier sweep's files and
    /// points in it are removed first. A non-empty directory that no run wrote is
    /// refused (see `--force`).
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a non-empty `--out` that no sweep made, replacing the files a
    /// sweep writes there (other files are left alone).
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: one per core; at most 1024).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Where the runs execute: threads of this process, or the ranks of an MPI job
    /// (`mpirun -np 4 kaizenflow sweep ... --backend mpi`; needs the `mpi` feature).
    #[arg(long, value_enum, default_value_t = Backend::Threads)]
    pub backend: Backend,
    /// The node cache: points that share upstream nodes compute them once, in this
    /// sweep and in later ones.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// `kaizenflow optimize ...`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// The config and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Worker threads (default: `[optimize] threads`, else one per core).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Also write the solution (weights, costs, turnover, counts) to this TOML file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Where a sweep's runs, or a run's training, execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Worker threads of this process.
    Threads,
    /// The ranks of an MPI job; rank 0 writes the outputs.
    Mpi,
}

/// `kaizenflow config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config by building everything it describes (without running it),
    /// then print the fully resolved config, every default filled in.
    Show(ConfigArgs),
    /// Expand the config's [sweep] section and print one line per config: its id and
    /// the values that vary.
    Sweep(ConfigArgs),
}

/// A config file and overrides.
#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// The TOML config file.
    pub config: PathBuf,
    /// Override a value: `--set dag.nodes.zscore.window=20` (value parsed as TOML;
    /// text that is not TOML is taken as a string). Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// Runs a parsed command line with the built-in types, writing its report to `out`.
///
/// # Errors
/// Whatever the command met: bad config, failed build, I/O.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    run_with(Registries::builtin(), cli, out)
}

/// Runs a parsed command line, naming types from `types`, writing its report to
/// `out`.
///
/// # Errors
/// Whatever the command met: bad config, failed build, I/O.
pub fn run_with(types: &Registries, cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Run(args) => run_cmd::run(types, &args, out),
        Command::Check(args) => check_cmd::check(types, &args, out),
        Command::Config(ConfigCommand::Show(args)) => config_cmd::show(types, &args, out),
        Command::Config(ConfigCommand::Sweep(args)) => config_cmd::sweep(types, &args, out),
        Command::Sweep(args) => sweep_cmd::run(types, &args, out),
        Command::Data(DataCommand::Import(args)) => data_cmd::import(types, &args, out),
        Command::Data(DataCommand::Info { store }) => data_cmd::info(&store, out),
        Command::Sql(args) => data_cmd::sql(&args, out),
        Command::Optimize(args) => optimize_cmd::run(&args, out),
        Command::Nodes(args) => types_cmd::nodes(types, &args, out),
        Command::Sources(args) => types_cmd::sources(types, &args, out),
        Command::Processors(args) => types_cmd::processors(types, &args, out),
        Command::Dags(args) => types_cmd::dags(types, &args, out),
        Command::Cache(CacheCommand::Info { dir }) => cache_cmd::info(&dir, out),
        Command::Cache(CacheCommand::Clear { dir }) => cache_cmd::clear(&dir, out),
        Command::Report { dir } => {
            let path = kf_system::report::write_report(&dir, types)?;
            writeln!(out, "report: {}", path.display())?;
            Ok(())
        }
        Command::Live(args) => live_cmd::live(types, &args, out),
        Command::Ingest(args) => live_cmd::ingest(types, &args, out),
        Command::Reconcile(args) => live_cmd::reconcile(types, &args, out),
    }
}

/// The whole `kaizenflow` program over `types`: parses the process's arguments,
/// runs the command, prints an error's cause chain, and returns the exit status. A
/// user's crate that registers its own types makes its own program with it:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let mut types = kaizenflow::Registries::default();
///     // types.register_node("rsi", ...), types.register_source(...), ...
///     kaizenflow::cli::main_with(types)
/// }
/// ```
pub fn main_with(types: Registries) -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    match run_with(&types, cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`kaizenflow data info S | head`): nothing is wrong
        // and there is no one to tell.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `--cache-max SIZE`: bytes, with an optional unit (`k`, `M`, `G`, `T`, decimal;
/// `KiB`, `MiB`, `GiB`, `TiB`, binary; `B` alone or nothing: bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("{text:?} is not a size: write a number and a unit, like 500MB or 8GiB")
    })?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = n * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is not a usable cache size"));
    }
    Ok(bytes as u64)
}

/// `--threads N`: a number from 1 to [`kf_parallel::MAX_THREADS`].
fn parse_threads(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of threads"))?;
    if !(1..=kf_parallel::MAX_THREADS).contains(&n) {
        return Err(format!(
            "{n} threads: give 1 to {} (one per core is the default)",
            kf_parallel::MAX_THREADS
        ));
    }
    Ok(n)
}
