//! KaizenFlow for Rust's Python extension module, `kaizenflow._kaizenflow`.
//!
//! The Python package `kaizenflow` (in `python/kaizenflow/`) is a thin layer over
//! this module: `run`, `check`, `config_show` and the command line, and the `Dag`
//! class for fitting, predicting and stepping bar by bar from a notebook. Tables
//! leave as [`arrow_ffi::ArrowTable`]s, which pyarrow takes through the Arrow C
//! stream interface without copying a buffer, and enter the same way.
//!
//! One design decision shapes every entry point: the GIL is released while Rust
//! runs. The engine runs nodes on several threads, and a `python` node
//! ([`pynode`]) takes the GIL for each of its calls; holding it across a run
//! would deadlock the first Python node that runs off the calling thread.

#![deny(missing_docs)]

mod arrow_ffi;
mod dag;
mod errors;
mod pynode;

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Context;
use clap::Parser;
use kaizenflow::Registries;
use kaizenflow::cli::{Cli, Command};
use kaizenflow::config::Config;
use kaizenflow::frame::LongRows;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use arrow_ffi::ArrowTable;
use errors::{KaizenflowError, to_py};

/// The built-in types and `python`, built once per process.
fn types() -> PyResult<&'static Registries> {
    static TYPES: OnceLock<Result<Registries, String>> = OnceLock::new();
    TYPES
        .get_or_init(|| {
            let mut t = Registries::default();
            pynode::register(&mut t).map_err(|e| e.to_string())?;
            Ok(t)
        })
        .as_ref()
        .map_err(|e| KaizenflowError::new_err(e.clone()))
}

/// A config from a file path, or from TOML text (anything with a newline or `=`
/// that is not an existing file), with `overrides` (`key=value`) applied. Returns
/// the config and the name it goes by in messages.
fn load(config: &str, overrides: &[String]) -> anyhow::Result<(Config, PathBuf)> {
    let path = PathBuf::from(config);
    let (mut c, label) = if path.is_file() {
        (Config::from_file(&path)?, path)
    } else if config.contains('\n') || config.contains('=') {
        (
            Config::from_toml_str(config, "<config string>")?,
            PathBuf::from("<config string>"),
        )
    } else {
        anyhow::bail!(
            "{config}: no such config file (give a path to a TOML file, or the TOML text itself)"
        );
    };
    c.set_all(overrides)?;
    Ok((c, label))
}

/// Parses a `kaizenflow` command line (without the program name).
fn parse(args: &[String]) -> anyhow::Result<Command> {
    let argv = std::iter::once("kaizenflow".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|c| c.command)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}

/// Runs a config as `kaizenflow run` does, writing its files into `out`, and
/// returns its tables and figures: `forecasts` (the long layout of
/// `result.parquet`), `timings`, and for a `[system]` `orders`, `fills`,
/// `portfolio`, `assets` and `stats`; `output` is what the command prints.
#[pyfunction]
#[pyo3(signature = (config, out, overrides=Vec::new(), force=false, sequential=false, report=true))]
fn run(
    py: Python<'_>,
    config: String,
    out: PathBuf,
    overrides: Vec<String>,
    force: bool,
    sequential: bool,
    report: bool,
) -> PyResult<Py<PyDict>> {
    let types = types()?;
    let done = py.detach(|| -> anyhow::Result<_> {
        let (config, label) = load(&config, &overrides)?;
        let mut argv = vec![
            "run".to_string(),
            label.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        argv.extend(
            [
                (force, "--force"),
                (sequential, "--sequential"),
                (!report, "--no-report"),
            ]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| flag.to_string()),
        );
        let Command::Run(args) = parse(&argv)? else {
            anyhow::bail!("internal: `run` did not parse as a run");
        };
        let mut text = Vec::new();
        let outcome = kaizenflow::cli::run_loaded(types, &config, &args, &mut text)?;
        let forecasts = outcome
            .forecasts
            .to_long(LongRows::Present)
            .context("cannot lay the forecasts out long")?;
        let system = match &outcome.system {
            Some(s) => Some((
                kaizenflow::system::output::tables(s)?,
                toml::Table::try_from(&s.stats).context("cannot read the run's statistics")?,
            )),
            None => None,
        };
        Ok((forecasts, outcome.timings, system, text))
    });
    let (forecasts, timings, system, text) = done.map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("forecasts", Py::new(py, ArrowTable::one(forecasts))?)?;
    let rows = PyList::empty(py);
    for (pass, node, kind, wall, n) in timings {
        rows.append((pass, node, kind, wall.as_secs_f64() * 1e3, n))?;
    }
    d.set_item("timings", rows)?;
    if let Some((tables, stats)) = system {
        for (name, batch) in tables {
            d.set_item(name, Py::new(py, ArrowTable::one(batch))?)?;
        }
        d.set_item("stats", toml_to_py(py, &toml::Value::Table(stats))?)?;
    }
    d.set_item("output", String::from_utf8_lossy(&text).into_owned())?;
    Ok(d.unbind())
}

/// One check's verdict for Python: `(check, verdict, seconds, detail)`.
type Verdict = (String, String, f64, String);

/// Checks a config as `kaizenflow check` does and returns `(verdicts, output)`:
/// one `(check, verdict, seconds, detail)` per check, whether or not they pass.
#[pyfunction]
#[pyo3(signature = (config, overrides=Vec::new(), out=None, tilings=8, perturbations=3, seed=0, skip=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn check(
    py: Python<'_>,
    config: String,
    overrides: Vec<String>,
    out: Option<PathBuf>,
    tilings: usize,
    perturbations: usize,
    seed: u64,
    skip: Vec<String>,
) -> PyResult<(Vec<Verdict>, String)> {
    let types = types()?;
    let done = py.detach(|| -> anyhow::Result<_> {
        let (config, label) = load(&config, &overrides)?;
        let mut argv = vec![
            "check".to_string(),
            label.display().to_string(),
            "--tilings".into(),
            tilings.to_string(),
            "--perturbations".into(),
            perturbations.to_string(),
            "--seed".into(),
            seed.to_string(),
        ];
        if let Some(o) = &out {
            argv.extend(["--out".to_string(), o.display().to_string()]);
        }
        for s in &skip {
            argv.extend(["--skip".to_string(), s.clone()]);
        }
        let Command::Check(args) = parse(&argv)? else {
            anyhow::bail!("internal: `check` did not parse as a check");
        };
        let mut text = Vec::new();
        let results = kaizenflow::cli::check_loaded(types, &config, &args, &mut text)?;
        // The closing line (or the failure count) as the command prints it.
        if let Err(e) = kaizenflow::cli::conclude(&results, &mut text) {
            text.extend_from_slice(format!("{e}\n").as_bytes());
        }
        Ok((results, text))
    });
    let (results, text) = done.map_err(to_py)?;
    use kaizenflow::dataflow::check::Verdict as V;
    let verdicts = results
        .into_iter()
        .map(|r| {
            let (v, detail) = match r.verdict {
                V::Pass => ("pass", String::new()),
                V::Fail(m) => ("fail", m),
                V::Skipped(m) => ("skipped", m),
                V::NotApplicable(m) => ("not applicable", m),
            };
            (r.name, v.to_string(), r.elapsed.as_secs_f64(), detail)
        })
        .collect();
    Ok((verdicts, String::from_utf8_lossy(&text).into_owned()))
}

/// The resolved config (every default written out), as `kaizenflow config show`
/// prints it; errors name the file, line and key.
#[pyfunction]
#[pyo3(signature = (config, overrides=Vec::new()))]
fn config_show(py: Python<'_>, config: String, overrides: Vec<String>) -> PyResult<String> {
    let types = types()?;
    py.detach(|| -> anyhow::Result<String> {
        let (config, label) = load(&config, &overrides)?;
        kaizenflow::system::build_with(types, &config)
            .with_context(|| format!("{} is not a valid config", label.display()))?;
        config.check_all_used()?;
        Ok(config.to_toml_string())
    })
    .map_err(to_py)
}

/// Runs a `kaizenflow` command line (without the program name) with this module's
/// types, and returns what it prints.
#[pyfunction]
fn cli(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    let types = types()?;
    py.detach(|| -> anyhow::Result<String> {
        let argv = std::iter::once("kaizenflow".to_string()).chain(args.iter().cloned());
        let parsed = Cli::try_parse_from(argv)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        let mut text = Vec::new();
        kaizenflow::cli::run_with(types, parsed, &mut text)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    })
    .map_err(to_py)
}

/// A TOML value as the Python value it reads as.
fn toml_to_py<'py>(py: Python<'py>, v: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        toml::Value::String(s) => s.into_pyobject(py)?.into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(f) => f.into_pyobject(py)?.into_any(),
        toml::Value::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any(),
        toml::Value::Datetime(d) => d.to_string().into_pyobject(py)?.into_any(),
        toml::Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(toml_to_py(py, x)?)?;
            }
            l.into_any()
        }
        toml::Value::Table(t) => {
            let d = PyDict::new(py);
            for (k, x) in t {
                d.set_item(k, toml_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// The extension module.
#[pymodule]
fn _kaizenflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("KaizenflowError", m.py().get_type::<KaizenflowError>())?;
    m.add_class::<ArrowTable>()?;
    m.add_class::<dag::PyDag>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(config_show, m)?)?;
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    Ok(())
}
