//! The `kaizenflow` command line: argument parsing (clap) and the commands.
//!
//! Commands write their report to a `Write` so tests can read it; the binary passes
//! standard output and turns an error into its printed cause chain and exit status 1.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kf_config::Config;

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
    /// Inspect and validate configs.
    #[command(subcommand)]
    Config(ConfigCommand),
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
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The TOML config file.
    pub config: PathBuf,
    /// Override a value: `--set dag.nodes.zscore.window=20` (value parsed as TOML;
    /// text that is not TOML is taken as a string). Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// Runs a parsed command line, writing its report to `out`.
///
/// # Errors
/// Whatever the command met: bad config, failed build, I/O.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Config(ConfigCommand::Show(args)) => config_show(&args, out),
        Command::Config(ConfigCommand::Sweep(args)) => config_sweep(&args, out),
    }
}

fn load(args: &ConfigArgs) -> Result<Config> {
    let mut config = Config::from_file(&args.config)?;
    config.set_all(&args.set)?;
    Ok(config)
}

/// Builds every component of `config`, then fails on any key that nothing read.
fn validate(config: &Config) -> Result<()> {
    kf_system::build(config)?;
    config.check_all_used()?;
    Ok(())
}

fn config_show(args: &ConfigArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(args)?;
    let swept = config.root().contains(kf_config::SWEEP);
    if swept {
        // Every point of the sweep must be a valid config on its own.
        for (i, p) in config.expand_sweep()?.iter().enumerate() {
            validate(&p.config).with_context(|| {
                format!(
                    "sweep point {i} ({}) is not a valid config",
                    describe(&p.varied)
                )
            })?;
        }
    }
    // Build the base config too: this records its defaults for printing.
    kf_system::build(&config)
        .with_context(|| format!("{} is not a valid config", args.config.display()))?;
    if swept {
        config.section(kf_config::SWEEP)?.mark_all_used();
    }
    config.check_all_used()?;
    writeln!(
        out,
        "# resolved config {} (id {})",
        args.config.display(),
        config.id()
    )?;
    write!(out, "{}", config.to_toml_string())?;
    Ok(())
}

fn config_sweep(args: &ConfigArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(args)?;
    let points = config.expand_sweep()?;
    writeln!(
        out,
        "# {} config{} from {}",
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        args.config.display()
    )?;
    for (i, p) in points.iter().enumerate() {
        validate(&p.config).with_context(|| {
            format!(
                "sweep point {i} ({}) is not a valid config",
                describe(&p.varied)
            )
        })?;
        writeln!(out, "{}  {}", p.config.id(), describe(&p.varied))?;
    }
    Ok(())
}

fn describe(varied: &[(String, String)]) -> String {
    if varied.is_empty() {
        return "(no sweep)".to_string();
    }
    varied
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
