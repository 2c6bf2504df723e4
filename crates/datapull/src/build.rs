//! Building sources and views from config sections, by `type`.

use std::sync::Arc;

use kf_config::{Registry, Result, Section};
use kf_frame::{Timestamp, parse_duration, parse_tz};

use crate::clock::{Clock, ReplayClock, SimulatedClock, WallClock};
use crate::market_data::{Historical, MarketData, Replayed, Stitched};
use crate::{CsvSource, ParquetStore, Source, SyntheticBars, paths};

/// The registry of source kinds, by `type`: `synthetic`, `csv`, `parquet`, `hdf5`.
pub fn source_registry() -> Registry<Box<dyn Source>> {
    let mut r: Registry<Box<dyn Source>> = Registry::new("market data source");
    // Registering fixed, distinct names into a fresh registry cannot collide.
    let _ = r.register("synthetic", |s: &Section<'_>| {
        Ok(Box::new(SyntheticBars::from_config(s)?) as Box<dyn Source>)
    });
    let _ = r.register("csv", |s: &Section<'_>| {
        Ok(Box::new(CsvSource::from_config(s)?) as Box<dyn Source>)
    });
    let _ = r.register("parquet", |s: &Section<'_>| {
        let path = store_path(s)?;
        let store =
            ParquetStore::open(&path).map_err(|e| s.build_error("cannot open the store", e))?;
        Ok(Box::new(store) as Box<dyn Source>)
    });
    let _ = r.register("hdf5", build_hdf5);
    r
}

fn store_path(s: &Section<'_>) -> Result<std::path::PathBuf> {
    let text: String = s.get("path")?;
    paths::resolve(&text, &paths::config_dir(s)).map_err(|m| s.invalid("path", m))
}

#[cfg(feature = "hdf5")]
fn build_hdf5(s: &Section<'_>) -> Result<Box<dyn Source>> {
    let path = store_path(s)?;
    let text: String = s.get_or("read", "map".to_string())?;
    let mode = crate::hdf5_store::ReadMode::parse(&text).map_err(|m| s.invalid("read", m))?;
    let store = crate::hdf5_store::Hdf5Store::open(&path)
        .map_err(|e| s.build_error("cannot open the store", e))?
        .with_read_mode(mode);
    Ok(Box::new(store))
}

#[cfg(not(feature = "hdf5"))]
fn build_hdf5(s: &Section<'_>) -> Result<Box<dyn Source>> {
    s.mark_all_used();
    Err(s.invalid(
        "type",
        "this build has no HDF5 support; rebuild with `--features hdf5` (needs libhdf5-dev)",
    ))
}

/// The registry of market data views, by `type`: every source kind (a
/// [`Historical`] view of it), `replayed` and `stitched`.
pub fn market_data_registry() -> Registry<Box<dyn MarketData>> {
    let mut r: Registry<Box<dyn MarketData>> = Registry::new("market data");
    for name in source_registry().names() {
        let _ = r.register(name, |s: &Section<'_>| {
            let source = source_registry().build(s)?;
            Ok(Box::new(Historical::new(Arc::from(source))) as Box<dyn MarketData>)
        });
    }
    let _ = r.register("replayed", build_replayed);
    let _ = r.register("stitched", |s: &Section<'_>| {
        let before = market_data_registry().build(&s.section("before")?)?;
        let after = market_data_registry().build(&s.section("after")?)?;
        let split = time_at(s, "split")?;
        Ok(Box::new(Stitched::new(before, after, split)) as Box<dyn MarketData>)
    });
    r
}

fn duration_at(s: &Section<'_>, key: &str, default: &str) -> Result<i64> {
    let text: String = s.get_or(key, default.to_string())?;
    parse_duration(&text).map_err(|e| s.invalid(key, e.to_string()))
}

/// A time at `key`, read in the zone at `tz` (default UTC).
fn time_at(s: &Section<'_>, key: &str) -> Result<i64> {
    let tz_name: String = s.get_or("tz", "UTC".to_string())?;
    let tz = parse_tz(&tz_name).map_err(|e| s.invalid("tz", e.to_string()))?;
    let text: String = s.get(key)?;
    Timestamp::parse_in(&text, tz)
        .map(Timestamp::nanos)
        .map_err(|e| s.invalid(key, e.to_string()))
}

fn build_replayed(s: &Section<'_>) -> Result<Box<dyn MarketData>> {
    let source = source_registry().build(&s.section("source")?)?;
    let c = s.section("clock")?;
    let kind: String = c.get_or("type", "simulated".to_string())?;
    let clock: Arc<dyn Clock> = match kind.as_str() {
        "simulated" => Arc::new(SimulatedClock::new(time_at(&c, "start")?)),
        "replay" => {
            let speed: f64 = c.get_or("speed", 1.0)?;
            if !(speed.is_finite() && speed > 0.0) {
                return Err(c.invalid("speed", "must be a finite number > 0"));
            }
            Arc::new(ReplayClock::new(time_at(&c, "start")?, speed))
        }
        "wall" => Arc::new(WallClock),
        other => {
            return Err(c.invalid(
                "type",
                format!("unknown clock {other:?}; known: simulated, replay, wall"),
            ));
        }
    };
    let view = Replayed::new(
        Historical::new(Arc::from(source)),
        clock,
        duration_at(s, "delay", "0s")?,
        duration_at(s, "freq", "1min")?,
        duration_at(s, "offset", "0s")?,
        duration_at(s, "poll", "1s")?,
    )
    .map_err(|e| s.build_error("invalid replay settings", e))?;
    Ok(Box::new(view))
}
