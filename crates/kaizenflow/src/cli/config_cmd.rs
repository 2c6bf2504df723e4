//! `kaizenflow config show` and `kaizenflow config sweep`.

use std::io::Write;

use anyhow::{Context, Result};
use kf_config::Config;
use kf_system::Registries;

use super::ConfigArgs;

pub(super) fn load(args: &ConfigArgs) -> Result<Config> {
    let mut config = Config::from_file(&args.config)?;
    config.set_all(&args.set)?;
    Ok(config)
}

/// Builds every component of `config`, then fails on any key that nothing read.
pub(super) fn validate(types: &Registries, config: &Config) -> Result<()> {
    kf_system::build_with(types, config)?;
    config.check_all_used()?;
    Ok(())
}

pub(super) fn show(types: &Registries, args: &ConfigArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(args)?;
    let swept = config.root().contains(kf_config::SWEEP);
    if swept {
        // Every point of the sweep must be a valid config on its own.
        validate_points(types, &config.expand_sweep()?)?;
    }
    // Build the base config too: this records its defaults for printing.
    kf_system::build_with(types, &config)
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

pub(super) fn sweep(types: &Registries, args: &ConfigArgs, out: &mut dyn Write) -> Result<()> {
    let config = load(args)?;
    let points = config.expand_sweep()?;
    writeln!(
        out,
        "# {} config{} from {}",
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        args.config.display()
    )?;
    validate_points(types, &points)?;
    for p in &points {
        writeln!(out, "{}  {}", p.config.id(), describe(&p.varied))?;
    }
    Ok(())
}

/// Validates every point of a sweep, naming the first invalid one.
pub(super) fn validate_points(types: &Registries, points: &[kf_config::SweepPoint]) -> Result<()> {
    for (i, p) in points.iter().enumerate() {
        validate(types, &p.config).with_context(|| {
            format!(
                "sweep point {i} ({}) is not a valid config",
                describe(&p.varied)
            )
        })?;
    }
    Ok(())
}

pub(super) fn describe(varied: &[(String, String)]) -> String {
    if varied.is_empty() {
        return "(no sweep)".to_string();
    }
    varied
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
