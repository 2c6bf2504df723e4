//! `kaizenflow cache info|clear`, and opening the cache that `run`, `sweep` and
//! `check` use with `--cache DIR`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use kf_dataflow::cache::{CacheHandle, CacheStats, NodeCache};

use super::CacheArgs;

/// The cache `args` name, for runs of the config at `origin` (a path and id).
///
/// # Errors
/// A folder that cannot be created.
pub(super) fn open(args: &CacheArgs) -> Result<Option<Arc<NodeCache>>> {
    let Some(dir) = &args.cache else {
        return Ok(None);
    };
    let cache = NodeCache::open(dir, args.cache_max)
        .with_context(|| format!("cannot use {} as a node cache", dir.display()))?;
    Ok(Some(Arc::new(cache)))
}

/// A handle on `cache` for runs of the config at `path` with id `id`.
pub(super) fn handle(cache: &Arc<NodeCache>, path: &Path, id: &str) -> CacheHandle {
    CacheHandle {
        cache: Arc::clone(cache),
        origin: format!("{} ({id})", path.display()).into(),
    }
}

/// Writes a runner's output frame to `path` as Parquet; with a cache, a file that
/// an earlier run wrote from the same node outputs (the same keys, the same runner)
/// is copied from the cache instead, byte for byte, and a new one is stored.
///
/// # Errors
/// The file cannot be written.
pub(super) fn write_result(
    dag: &mut kf_dataflow::Dag,
    runner: &kf_dataflow::runner::RunSpec,
    frame: &kf_frame::Frame,
    path: &Path,
) -> Result<()> {
    let keys = dag.take_run_keys();
    let key = match dag.cache() {
        Some(h) if !keys.is_empty() && keys.iter().all(Option::is_some) => {
            let mut b = kf_dataflow::cache::KeyBuilder::new();
            b.text("file", "result.parquet")
                .text("runner", &format!("{runner:?}"));
            for k in keys.iter().flatten() {
                b.field("run", &k.0);
            }
            Some((Arc::clone(&h.cache), b.finish()))
        }
        _ => None,
    };
    if let Some((cache, key)) = &key
        && cache.fetch_file(key, path)
    {
        return Ok(());
    }
    frame
        .write_parquet(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Some((cache, key)) = &key
        && let Err(e) = cache.store_file(key, path)
    {
        eprintln!("warning: {} was not cached: {e}", path.display());
    }
    Ok(())
}

/// One line: hits, misses, uncached outputs and the compute time saved; then adds
/// this process's counts to the folder's lifetime counts.
///
/// # Errors
/// The counts file cannot be written, or `out` fails.
pub(super) fn report(cache: &NodeCache, out: &mut dyn Write) -> Result<CacheStats> {
    let s = cache.stats();
    writeln!(
        out,
        "# cache: {} hits, {} misses, {} uncached; {:.3} s of node time saved{}{} ({})",
        s.hits,
        s.misses,
        s.uncached,
        s.saved().as_secs_f64(),
        if s.corrupt > 0 {
            format!("; {} corrupt entries recomputed", s.corrupt)
        } else {
            String::new()
        },
        if s.evicted > 0 {
            format!("; {} entries evicted", s.evicted)
        } else {
            String::new()
        },
        cache.dir().display()
    )?;
    if let Err(e) = cache.flush_stats() {
        writeln!(out, "# cache: the lifetime counts were not updated: {e}")?;
    }
    Ok(s)
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// `kaizenflow cache info DIR`.
pub(super) fn info(dir: &Path, out: &mut dyn Write) -> Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a cache folder (no such directory); runs create one with `--cache {}`",
            dir.display(),
            dir.display()
        );
    }
    let cache = NodeCache::open(dir, u64::MAX)?;
    let entries = cache.entries()?;
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    let life = cache.lifetime_stats();
    writeln!(
        out,
        "# {} entries, {} in {}",
        entries.len(),
        human(total),
        dir.display()
    )?;
    writeln!(
        out,
        "# lifetime: {} hits, {} misses, {} uncached, {} corrupt entries recomputed, {} evicted; {:.3} s saved",
        life.hits,
        life.misses,
        life.uncached,
        life.corrupt,
        life.evicted,
        life.saved().as_secs_f64()
    )?;
    writeln!(
        out,
        "{:<16} {:<20} {:<16} {:>9} {:>10} {:>10}  config",
        "key", "node", "kind", "rows", "size", "compute"
    )?;
    // Most recently used first.
    for e in entries.iter().rev() {
        match &e.meta {
            Some(m) => writeln!(
                out,
                "{:<16} {:<20} {:<16} {:>9} {:>10} {:>8.1}ms  {}",
                &e.key[..16.min(e.key.len())],
                m.node,
                format!("{} v{}", m.kind, m.version),
                m.rows,
                human(e.bytes),
                m.compute_ns as f64 / 1e6,
                m.origin
            )?,
            None if e.file => writeln!(
                out,
                "{:<16} {:<20} {:<16} {:>9} {:>10}",
                &e.key[..16.min(e.key.len())],
                "(output file)",
                "result.parquet",
                "",
                human(e.bytes)
            )?,
            None => writeln!(
                out,
                "{:<16} (unreadable header: removed at its next use) {:>10}",
                &e.key[..16.min(e.key.len())],
                human(e.bytes)
            )?,
        }
    }
    if !life.by_node.is_empty() {
        writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>9}",
            "node", "hits", "misses", "uncached"
        )?;
        for (node, c) in &life.by_node {
            writeln!(
                out,
                "{node:<20} {:>8} {:>8} {:>9}",
                c.hits, c.misses, c.uncached
            )?;
        }
    }
    Ok(())
}

/// `kaizenflow cache clear DIR`.
pub(super) fn clear(dir: &Path, out: &mut dyn Write) -> Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a cache folder (no such directory)",
            dir.display()
        );
    }
    let cache = NodeCache::open(dir, u64::MAX)?;
    let (n, bytes) = cache.clear()?;
    writeln!(
        out,
        "# removed {n} entries ({}) from {}",
        human(bytes),
        dir.display()
    )?;
    Ok(())
}
