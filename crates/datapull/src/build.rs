//! Building sources and views from config sections, by `type`, through one
//! [`DataTypes`] value that a user's crate can extend.

use std::sync::Arc;

use kf_config::{ParamDoc, Registry, Result, Section, TypeDoc};
use kf_frame::{Duration, Timestamp, parse_tz};

use crate::clock::{Clock, ReplayClock, SimulatedClock, WallClock};
use crate::market_data::{Historical, MarketData, ReplaySettings, Replayed, Stitched};
use crate::{CsvParams, CsvSource, ParquetStore, Source, SyntheticBars, SyntheticParams, paths};

/// The builder of a market data source from its config table.
pub type SourceBuildFn = dyn Fn(&Section<'_>) -> Result<Box<dyn Source>> + Send + Sync;

/// The builder of a market data view from its config table; it gets the registries
/// so that a view can build the sources and views it wraps (`replayed`'s `source`,
/// `stitched`'s `before` and `after`).
pub type ViewBuildFn =
    dyn Fn(&Section<'_>, &DataTypes) -> Result<Arc<dyn MarketData>> + Send + Sync;

/// Every market data type a config can name: sources (`synthetic`, `csv`,
/// `parquet`, `hdf5`, and a user's own) and views over them (`replayed`,
/// `stitched`). A `[market_data]` table that names a source is read through a
/// [`Historical`] view of it.
///
/// [`DataTypes::default`] holds the built-ins; a user's crate registers more with
/// [`DataTypes::register_source`] and [`DataTypes::register_view`] and hands the
/// value to every build.
pub struct DataTypes {
    /// Sources, by `type`.
    pub sources: Registry<Box<dyn Source>, SourceBuildFn>,
    /// Views other than a plain historical one, by `type`.
    pub views: Registry<Arc<dyn MarketData>, ViewBuildFn>,
}

impl std::fmt::Debug for DataTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTypes")
            .field("sources", &self.sources.names())
            .field("views", &self.views.names())
            .finish()
    }
}

impl Default for DataTypes {
    /// The built-in sources and views.
    fn default() -> Self {
        let mut t = DataTypes::empty();
        t.builtins();
        t
    }
}

impl DataTypes {
    /// No types at all (the built-ins are [`DataTypes::default`]).
    pub fn empty() -> DataTypes {
        DataTypes {
            sources: Registry::new("market data source"),
            views: Registry::new("market data"),
        }
    }

    /// Registers a source type.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when a source or view has that name.
    pub fn register_source<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>) -> Result<Box<dyn Source>> + Send + Sync + 'static,
    {
        self.refuse_taken(name)?;
        self.sources.insert(name, doc, Box::new(build))?;
        Ok(self)
    }

    /// Registers a view type.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when a source or view has that name.
    pub fn register_view<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>, &DataTypes) -> Result<Arc<dyn MarketData>> + Send + Sync + 'static,
    {
        self.refuse_taken(name)?;
        self.views.insert(name, doc, Box::new(build))?;
        Ok(self)
    }

    fn refuse_taken(&self, name: &str) -> Result<()> {
        if self.sources.contains(name) || self.views.contains(name) {
            return Err(kf_config::ConfigError::DuplicateBuilder {
                kind: "market data".into(),
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Builds the source that `s`'s `type` names.
    ///
    /// # Errors
    /// A located config error: no `type`, an unknown one (a view's name included, with
    /// the reason), or the builder's own error.
    pub fn source(&self, s: &Section<'_>) -> Result<Box<dyn Source>> {
        let name: String = s.get("type")?;
        match self.sources.get(&name) {
            Some(build) => build(s),
            None if self.views.contains(&name) => Err(s.invalid(
                "type",
                format!(
                    "`{name}` is a view, and a source is needed here: name a source ({})",
                    self.sources.names().join(", ")
                ),
            )),
            None => Err(self.sources.unknown(s, &name, &[])),
        }
    }

    /// Builds the market data view that `s`'s `type` names: a view type, or a source
    /// type read through a [`Historical`] view.
    ///
    /// # Errors
    /// A located config error: no `type`, an unknown one (listing every source and
    /// view), or the builder's own error.
    pub fn view(&self, s: &Section<'_>) -> Result<Arc<dyn MarketData>> {
        let name: String = s.get("type")?;
        if let Some(build) = self.views.get(&name) {
            return build(s, self);
        }
        match self.sources.get(&name) {
            Some(build) => Ok(Arc::new(Historical::new(Arc::from(build(s)?)))),
            None => Err(self.views.unknown(s, &name, &self.sources.names())),
        }
    }

    fn builtins(&mut self) {
        // Fixed, distinct names registered into an empty value cannot collide.
        let _ = self.register_source(
            "synthetic",
            TypeDoc::new(
                "seeded synthetic 1-minute bars (GARCH returns, a market factor, volume): \
                 the built-in default data",
            )
            .params_of::<SyntheticParams>(),
            |s| Ok(Box::new(SyntheticBars::from_config(s)?) as Box<dyn Source>),
        );
        let _ = self.register_source(
            "csv",
            TypeDoc::new(
                "CSV files, plain or gzip: one file per asset or an asset column, any time \
                 format and zone, bars labelled by start or end",
            )
            .params_of::<CsvParams>()
            .example("files = \"data/*.csv\"\nasset_from_file = \"{asset}.csv\""),
            |s| Ok(Box::new(CsvSource::from_config(s)?) as Box<dyn Source>),
        );
        let _ = self.register_source(
            "ticks",
            TypeDoc::new(
                "trade ticks from CSV (plain or gzip): price, size, exchange, sale \
                 condition and suspicious flag per trade, one row per trade",
            )
            .params_of::<crate::TickParams>()
            .example("files = \"ticks/SPY_tick_trades_*.csv.gz\""),
            |s| Ok(Box::new(crate::TickSource::from_config(s)?) as Box<dyn Source>),
        );
        let path_doc = ParamDoc::new(
            "path",
            "string",
            None,
            "The store's file, relative to the config's folder.",
        )
        .required();
        let _ = self.register_source(
            "parquet",
            TypeDoc::new("a Parquet store written by `kaizenflow data import`, with time, asset and column pushdown")
                .param(path_doc.clone())
                .example("path = \"bars.parquet\""),
            |s| {
                let path = store_path(s)?;
                let store = ParquetStore::open(&path)
                    .map_err(|e| s.build_error("cannot open the store", e))?;
                Ok(Box::new(store) as Box<dyn Source>)
            },
        );
        let _ = self.register_source(
            "hdf5",
            TypeDoc::new("an HDF5 store (feature `hdf5`): chunked and compressed, or contiguous and memory-mapped")
                .param(path_doc)
                .param(ParamDoc::new(
                    "read",
                    "one of \"map\", \"copy\", \"library\"",
                    Some("\"map\""),
                    "How an uncompressed store is read: memory-mapped, copied by parallel reads, or through the HDF5 library.",
                ))
                .example("path = \"bars.h5\""),
            build_hdf5,
        );
        let pg_doc = TypeDoc::new(
            "a PostgreSQL bars table (feature `postgres`): knowledge time stamped by the \
             database, time, asset, column and as-of filters pushed down to SQL; the live \
             source of `kaizenflow live`",
        )
        .example(
            "url = \"postgresql://kf@127.0.0.1:54329/postgres\"\npassword_env = \"KF_PG_PASSWORD\"\n\
             table = \"bars\"\ncolumns = [\"close\", \"volume\"]\nassets = [\"AAPL\", \"MSFT\"]",
        );
        #[cfg(feature = "postgres")]
        let pg_doc = pg_doc.params_of::<crate::pg::PgParams>();
        let _ = self.register_source("postgres", pg_doc, build_postgres);
        let _ = self.register_view(
            "replayed",
            TypeDoc::new(
                "a source released by a clock at knowledge time plus a delay, as a live feed would have it",
            )
            .param(ParamDoc::new("source", "table", None, "The source to replay (a table with its own `type`).").required())
            .param(ParamDoc::new("clock", "table", None, "The clock: `type` (simulated, replayed or wall), `start`, `tz`, `speed`.").required())
            .param(ParamDoc::new("delay", "duration", Some("\"0s\""), "Added to every row's knowledge time."))
            .param(ParamDoc::new("freq", "duration", Some("\"1min\""), "The bar period of the replayed data."))
            .param(ParamDoc::new("offset", "duration", Some("\"0s\""), "Where the bar grid starts, from the epoch."))
            .param(ParamDoc::new("poll", "duration", Some("\"1s\""), "How often to look again for a bar the store lacks."))
            .example("source = { type = \"synthetic\" }\nclock = { type = \"simulated\", start = \"2024-01-02 09:30\" }"),
            build_replayed,
        );
        let _ = self.register_view(
            "stitched",
            TypeDoc::new("one view up to a split time (bar ends <= split) and another after it")
                .param(ParamDoc::new("before", "table", None, "The view up to the split.").required())
                .param(ParamDoc::new("after", "table", None, "The view after the split.").required())
                .param(ParamDoc::new("split", "time", None, "The last bar end the first view answers for.").required())
                .param(ParamDoc::new("tz", "string", Some("\"UTC\""), "The zone `split` is written in."))
                .example("split = \"2024-01-02 12:00\"\nbefore = { type = \"synthetic\" }\nafter = { type = \"synthetic\" }"),
            |s, types| {
                let before = types.view(&s.section("before")?)?;
                let after = types.view(&s.section("after")?)?;
                let split = time_at(s, "split")?;
                Ok(Arc::new(Stitched::new(before, after, Timestamp(split))) as Arc<dyn MarketData>)
            },
        );
    }
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

#[cfg(feature = "postgres")]
fn build_postgres(s: &Section<'_>) -> Result<Box<dyn Source>> {
    let settings = crate::pg::PgSettings::from_config(s)?;
    Ok(Box::new(crate::pg::PgSource::new(settings)))
}

#[cfg(not(feature = "postgres"))]
fn build_postgres(s: &Section<'_>) -> Result<Box<dyn Source>> {
    s.mark_all_used();
    Err(s.invalid(
        "type",
        "this build has no PostgreSQL support; rebuild with `--features postgres`",
    ))
}

#[cfg(not(feature = "hdf5"))]
fn build_hdf5(s: &Section<'_>) -> Result<Box<dyn Source>> {
    let _ = s.get_opt::<String>("path");
    let _ = s.get_opt::<String>("read");
    s.mark_all_used();
    Err(s.invalid(
        "type",
        "this build has no HDF5 support; rebuild with `--features hdf5` (needs libhdf5-dev)",
    ))
}

fn duration_at(s: &Section<'_>, key: &str, default: &str) -> Result<Duration> {
    let text: String = s.get_or(key, default.to_string())?;
    Duration::parse(&text).map_err(|e| s.invalid(key, e.to_string()))
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

/// Which clock a run follows: the one parser of a clock table's `type` (and its
/// `speed`), shared by the `replayed` view and the system's `[system.clock]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockKind {
    /// Virtual time that jumps to each wake-up: as fast as the machine allows.
    Simulated,
    /// Wall time shifted to the first bar and scaled by `speed` (1.0 is real time).
    Replayed {
        /// Simulated seconds per wall second.
        speed: f64,
    },
    /// The machine's clock: bars in the past are run at once, bars in the future
    /// are waited for.
    Wall,
}

impl ClockKind {
    /// The spellings of `type`.
    pub const NAMES: [&'static str; 3] = ["simulated", "replayed", "wall"];

    /// Reads `type` (default `simulated`) and, for `replayed`, `speed` (default 1).
    ///
    /// # Errors
    /// A located error for an unknown type (with the closest spelling) or a speed
    /// that is not a positive finite number.
    pub fn from_section(s: &Section<'_>) -> Result<ClockKind> {
        let kind: String = s.get_or("type", "simulated".to_string())?;
        match kind.as_str() {
            "simulated" => Ok(ClockKind::Simulated),
            "replayed" => {
                let speed: f64 = s.get_or("speed", 1.0)?;
                if !(speed.is_finite() && speed > 0.0) {
                    return Err(s.invalid(
                        "speed",
                        format!("must be a positive finite number, not {speed}"),
                    ));
                }
                Ok(ClockKind::Replayed { speed })
            }
            "wall" => Ok(ClockKind::Wall),
            other => {
                let hint = kf_config::did_you_mean(other, ClockKind::NAMES);
                Err(s.invalid(
                    "type",
                    format!("unknown clock {other:?}{hint}; known: simulated, replayed, wall"),
                ))
            }
        }
    }

    /// A fresh clock of this kind reading `start` (the wall clock reads the machine's
    /// time whatever `start` is).
    pub fn clock(self, start: i64) -> Arc<dyn Clock> {
        match self {
            ClockKind::Simulated => Arc::new(SimulatedClock::new(start)),
            ClockKind::Replayed { speed } => Arc::new(ReplayClock::new(start, speed)),
            ClockKind::Wall => Arc::new(WallClock),
        }
    }
}

fn build_replayed(s: &Section<'_>, types: &DataTypes) -> Result<Arc<dyn MarketData>> {
    let source = types.source(&s.section("source")?)?;
    let c = s.section("clock")?;
    let kind = ClockKind::from_section(&c)?;
    let start = match kind {
        ClockKind::Wall => 0,
        _ => time_at(&c, "start")?,
    };
    let view = Replayed::new(
        Historical::new(Arc::from(source)),
        kind.clock(start),
        ReplaySettings {
            delay: duration_at(s, "delay", "0s")?,
            freq: duration_at(s, "freq", "1min")?,
            offset: duration_at(s, "offset", "0s")?,
            poll: duration_at(s, "poll", "1s")?,
        },
    )
    .map_err(|e| s.build_error("invalid replay settings", e))?;
    Ok(Arc::new(view))
}
