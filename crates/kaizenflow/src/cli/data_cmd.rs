//! `kaizenflow data import` and `kaizenflow data info`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kf_datapull::parquet_store::{write_frame, write_long};
use kf_datapull::{
    CsvSource, ParquetStore, Query, Source, StoreCompression, StoreInfo, StoreOptions,
};
use kf_frame::Frame;

use super::{DataImportArgs, SqlArgs, StoreFormat};
use crate::cli::config_cmd::load;

/// The store format for `path`: from `--format`, else from the extension.
fn format_of(path: &Path, format: Option<StoreFormat>) -> Result<StoreFormat> {
    if let Some(f) = format {
        return Ok(f);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet" | "pq") => Ok(StoreFormat::Parquet),
        Some("h5" | "hdf5") => Ok(StoreFormat::Hdf5),
        _ => bail!(
            "cannot tell the store format of {}: name it *.parquet or *.h5, or pass --format",
            path.display()
        ),
    }
}

pub(super) fn import(
    types: &kf_system::Registries,
    args: &DataImportArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let started = Instant::now();
    let config = load(&args.config)?;
    let section = config.root().section(&args.section)?;
    let kind: String = section.get("type")?;
    let format = format_of(&args.out, args.format)?;
    let compression = args.compression.as_deref();
    let time_block = args.time_block;
    if time_block.is_some() && format != StoreFormat::Parquet {
        bail!(
            "--time-block applies to Parquet stores only (an HDF5 store is chunked by its own rule)"
        );
    }
    // A CSV source with a knowledge column may hold revisions: keep every version.
    let (rows, describe) = if kind == "csv" {
        let csv = CsvSource::from_config(&section)?;
        check_section_used(&config, &args.section)?;
        if csv.has_revisions() {
            if format != StoreFormat::Parquet {
                bail!("a source with revisions (knowledge_column) can only be stored as Parquet");
            }
            let batches = csv.read_long()?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            write_long(
                &batches,
                &args.out,
                parquet_options(compression, time_block)?,
            )?;
            (rows, csv.describe())
        } else {
            let frame = csv.load(&Query::all())?;
            (
                write(&frame, &args.out, format, (compression, time_block))?,
                csv.describe(),
            )
        }
    } else {
        let source = types.dataflow.data.source(&section)?;
        check_section_used(&config, &args.section)?;
        let frame = source.load(&Query::all())?;
        (
            write(&frame, &args.out, format, (compression, time_block))?,
            source.describe(),
        )
    };
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    writeln!(
        out,
        "imported {rows} rows from {describe} into {} ({:.1} MB) in {:.2} s",
        args.out.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// Import reads one section of a config (a whole system's config is fine): a key
/// under it that nothing read is a typo; the rest of the config is not its business.
pub(super) fn check_section_used(config: &kf_config::Config, section: &str) -> Result<()> {
    let prefix = format!("{section}.");
    let unused: Vec<_> = config
        .unused_keys()
        .into_iter()
        .filter(|k| k.path == section || k.path.starts_with(&prefix))
        .collect();
    if unused.is_empty() {
        Ok(())
    } else {
        Err(kf_config::ConfigError::Unused(unused).into())
    }
}

fn parquet_options(compression: Option<&str>, time_block: Option<usize>) -> Result<StoreOptions> {
    if time_block == Some(0) {
        bail!("--time-block 0: a row group holds at least one bar");
    }
    let compression = match compression {
        None | Some("zstd") => StoreCompression::Zstd,
        Some("lz4") => StoreCompression::Lz4,
        Some("none") => StoreCompression::None,
        Some(other) => bail!("--compression {other}: a Parquet store takes zstd, lz4 or none"),
    };
    Ok(StoreOptions {
        compression,
        time_block: time_block.unwrap_or(0),
        ..StoreOptions::default()
    })
}

/// Writes a frame; returns the rows written (present cells).
fn write(
    frame: &Frame,
    path: &Path,
    format: StoreFormat,
    (compression, time_block): (Option<&str>, Option<usize>),
) -> Result<usize> {
    match format {
        StoreFormat::Parquet => {
            write_frame(frame, path, parquet_options(compression, time_block)?)?
        }
        StoreFormat::Hdf5 => write_hdf5(frame, path, compression)?,
    }
    let present = (0..frame.n_rows() * frame.n_assets())
        .filter(|&c| (0..frame.n_features()).any(|f| !frame.feature_at(f).values()[c].is_nan()))
        .count();
    Ok(present)
}

#[cfg(feature = "hdf5")]
fn write_hdf5(frame: &Frame, path: &Path, compression: Option<&str>) -> Result<()> {
    use kf_datapull::hdf5_store::{Compression, write_hdf5};
    let compression = match compression {
        None | Some("lzf") => Compression::Lzf,
        Some("deflate") => Compression::Deflate(4),
        Some("none") => Compression::None,
        Some(other) => bail!("--compression {other}: an HDF5 store takes lzf, deflate or none"),
    };
    Ok(write_hdf5(frame, path, compression)?)
}

#[cfg(not(feature = "hdf5"))]
fn write_hdf5(_: &Frame, path: &Path, _: Option<&str>) -> Result<()> {
    bail!(
        "cannot write {}: this build has no HDF5 support; rebuild with `--features hdf5`",
        path.display()
    )
}

/// An opened store: its summary, a source to scan it, and its format and layout
/// in words.
type Opened = (StoreInfo, Box<dyn Source>, String);

/// Opens a store by its format.
fn open(path: &Path) -> Result<Opened> {
    match format_of(path, None)? {
        StoreFormat::Parquet => {
            let s = ParquetStore::open(path)?;
            let layout = format!("parquet, row groups: {}", s.info().units);
            Ok((s.info(), Box::new(s), layout))
        }
        StoreFormat::Hdf5 => open_hdf5(path),
    }
}

#[cfg(feature = "hdf5")]
fn open_hdf5(path: &Path) -> Result<Opened> {
    let s = kf_datapull::hdf5_store::Hdf5Store::open(path)?;
    let layout = if s.is_direct() {
        "hdf5, contiguous and uncompressed: memory-mapped reads".to_string()
    } else {
        format!("hdf5, chunks per feature: {}", s.info().units)
    };
    Ok((s.info(), Box::new(s), layout))
}

#[cfg(not(feature = "hdf5"))]
fn open_hdf5(path: &Path) -> Result<Opened> {
    bail!(
        "cannot read {}: this build has no HDF5 support; rebuild with `--features hdf5`",
        path.display()
    )
}

pub(super) fn info(store: &Path, out: &mut dyn Write) -> Result<()> {
    let (info, source, layout) = open(store)?;
    let frame = source
        .load(&Query::all())
        .with_context(|| format!("scanning {}", store.display()))?;
    let cells = frame.n_rows() * frame.n_assets();
    writeln!(
        out,
        "store: {} ({layout}, {:.1} MB)",
        store.display(),
        info.file_bytes as f64 / 1e6,
    )?;
    let shown: Vec<&str> = info.assets.iter().take(12).map(String::as_str).collect();
    let more = if info.assets.len() > 12 { ", ..." } else { "" };
    writeln!(
        out,
        "assets: {} ({}{more})",
        info.assets.len(),
        shown.join(", ")
    )?;
    match info.time_range {
        Some((a, b)) => writeln!(out, "time range: {a} .. {b} ({} bar times)", frame.n_rows())?,
        None => writeln!(out, "time range: empty")?,
    }
    writeln!(
        out,
        "rows: {} stored; {} bar times x {} assets = {cells} cells",
        info.rows,
        frame.n_rows(),
        frame.n_assets()
    )?;
    writeln!(out, "columns: {}", info.features.join(", "))?;
    writeln!(out, "missing values (NaN or absent, of {cells} cells):")?;
    for (i, name) in frame.features().iter().enumerate() {
        let n = frame
            .feature_at(i)
            .values()
            .iter()
            .filter(|v| v.is_nan())
            .count();
        let pct = if cells == 0 {
            0.0
        } else {
            100.0 * n as f64 / cells as f64
        };
        writeln!(out, "  {name}: {n} ({pct:.2}%)")?;
    }
    writeln!(
        out,
        "revisions: {}",
        if info.revisions {
            "may be present"
        } else {
            "none"
        }
    )?;
    Ok(())
}

pub(super) fn sql(args: &SqlArgs, out: &mut dyn Write) -> Result<()> {
    let mut tables = Vec::with_capacity(args.tables.len());
    for t in &args.tables {
        let Some((name, path)) = t.split_once('=') else {
            bail!("--table {t:?}: write it as NAME=PATH, e.g. bars=data/bars.parquet");
        };
        tables.push((name.to_string(), std::path::PathBuf::from(path)));
    }
    run_sql(&tables, &args.query, out)
}

#[cfg(feature = "sql")]
fn run_sql(
    tables: &[(String, std::path::PathBuf)],
    query: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let text = kf_datapull::sql::query_files_pretty(tables, query)?;
    writeln!(out, "{text}")?;
    Ok(())
}

#[cfg(not(feature = "sql"))]
fn run_sql(_: &[(String, std::path::PathBuf)], _: &str, _: &mut dyn Write) -> Result<()> {
    bail!("this build has no SQL support; rebuild with `--features sql`")
}
