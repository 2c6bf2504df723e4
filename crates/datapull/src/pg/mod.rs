//! PostgreSQL market data (feature `postgres`): a bars table with knowledge time
//! stamped by the database, read by time, asset, column and knowledge time with the
//! filters pushed down to SQL, tailed live ([`PgFeed`]) and fed ([`PgWriter`]).
//!
//! # The table
//! One row per version of a bar of an asset: `id bigserial`, `end_ts timestamptz`,
//! `asset text`, `knowledge_ts timestamptz`, then one `double precision` column per
//! feature, indexed by `(end_ts, asset)`. `knowledge_ts` defaults to the writing
//! transaction's time and a check refuses any other value, so a writer cannot date
//! its rows; a trigger refuses updates and deletes (a revision is a new row, read
//! as of a time). A statement trigger notifies the channel named after the table,
//! which [`PgFeed`] listens on.
//!
//! # Why the `postgres` crate
//! It is the blocking client over `tokio-postgres`: pure Rust (no libpq to
//! install), with `LISTEN/NOTIFY` and binary `COPY`, and small. `sqlx` would bring
//! its macros, a connection pool and several database drivers that a bars table
//! does not need. Sources are read through a blocking trait, so a blocking client
//! fits without a second runtime.
//!
//! # Passwords
//! The connection string in a config holds no password (one there is refused): it
//! comes from the environment variable `password_env` or the file
//! `password_file`, and every message shows the connection string as written.

mod feed;
mod worker;
mod writer;

use std::sync::Mutex;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use kf_config::Section;
use kf_frame::{Duration, Frame};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use feed::PgFeed;
pub use writer::PgWriter;

use crate::live::{Arrived, GrowingSource};
use crate::{DataError, Query, Result, Source};

/// The `postgres` source's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct PgParams {
    /// Connection string without a password:
    /// `postgresql://user@host:port/database` or `host=... user=...`.
    pub url: String,
    /// The environment variable that holds the password (none: no password).
    pub password_env: String,
    /// A file whose first line is the password, relative to the config's folder.
    pub password_file: String,
    /// The bars table.
    pub table: String,
    /// The feature columns.
    pub columns: Vec<String>,
    /// The universe: the assets a live system trades, in its order (empty: every
    /// asset the table holds, sorted, for historical reads).
    pub assets: Vec<String>,
    /// The bar period.
    pub bar: String,
    /// How often a live tail looks again when no notification comes.
    pub poll: String,
    /// How long to keep trying to reach the database before giving up.
    pub reconnect: String,
}

impl Default for PgParams {
    fn default() -> Self {
        PgParams {
            url: String::new(),
            password_env: String::new(),
            password_file: String::new(),
            table: "kf_bars".into(),
            columns: vec!["close".into(), "volume".into()],
            assets: Vec::new(),
            bar: "1min".into(),
            poll: "1s".into(),
            reconnect: "60s".into(),
        }
    }
}

/// Where and how to reach a bars table: the checked parameters with the password
/// resolved (never shown).
#[derive(Clone)]
pub struct PgSettings {
    /// The parameters as written.
    pub params: PgParams,
    password: Option<String>,
    /// The bar period (ns).
    pub freq: i64,
    /// The poll period (ns).
    pub poll: i64,
    /// How long to keep reconnecting (ns).
    pub reconnect: i64,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.params.url)
            .field("table", &self.params.table)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Whether `name` is a plain SQL identifier (so it can be written into a query
/// unquoted-safe, inside double quotes).
fn identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl PgSettings {
    /// Reads and checks the `postgres` table `s`, resolving the password.
    ///
    /// # Errors
    /// A located config error: no `url`, a password in it, a password variable or
    /// file that is missing, a table or column name that is not a plain identifier,
    /// or a bad duration.
    pub fn from_config(s: &Section<'_>) -> kf_config::Result<PgSettings> {
        let params: PgParams = s.deserialize()?;
        let file_dir = crate::paths::config_dir(s);
        PgSettings::new(params, &file_dir).map_err(|(key, m)| s.invalid(key, m))
    }

    /// Checks `params` (a `password_file` is read relative to `dir`).
    ///
    /// # Errors
    /// The key at fault and what is wrong with it.
    pub fn new(
        params: PgParams,
        dir: &std::path::Path,
    ) -> std::result::Result<PgSettings, (&'static str, String)> {
        if params.url.trim().is_empty() {
            return Err((
                "url",
                "is required: `postgresql://user@host:port/database`".into(),
            ));
        }
        let config: postgres::Config = params
            .url
            .parse()
            .map_err(|e| ("url", format!("is not a connection string: {e}")))?;
        if config.get_password().is_some() {
            return Err((
                "url",
                "holds a password: take it out, and name the environment variable that \
                 holds it with `password_env` (or a file with `password_file`)"
                    .into(),
            ));
        }
        if !identifier(&params.table) {
            return Err((
                "table",
                format!(
                    "`{}` is not a plain name (letters, digits, `_`)",
                    params.table
                ),
            ));
        }
        if params.columns.is_empty() {
            return Err(("columns", "lists no column".into()));
        }
        for c in &params.columns {
            if !identifier(c) || ["id", "end_ts", "asset", "knowledge_ts"].contains(&c.as_str()) {
                return Err((
                    "columns",
                    format!("`{c}` is not a plain name of a feature column"),
                ));
            }
        }
        let password = if !params.password_env.is_empty() {
            Some(std::env::var(&params.password_env).map_err(|_| {
                (
                    "password_env",
                    format!(
                        "the environment variable `{}` is not set: set it to the password",
                        params.password_env
                    ),
                )
            })?)
        } else if !params.password_file.is_empty() {
            let path = crate::paths::resolve(&params.password_file, dir)
                .map_err(|m| ("password_file", m))?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    "password_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(text.lines().next().unwrap_or("").to_string())
        } else {
            None
        };
        let dur = |key: &'static str, text: &str| {
            Duration::parse(text)
                .map(|d| d.nanos())
                .map_err(|e| (key, e.to_string()))
                .and_then(|d| {
                    if d > 0 {
                        Ok(d)
                    } else {
                        Err((key, "must be longer than zero".to_string()))
                    }
                })
        };
        let freq = dur("bar", &params.bar)?;
        let poll = dur("poll", &params.poll)?;
        let reconnect = dur("reconnect", &params.reconnect)?;
        Ok(PgSettings {
            params,
            password,
            freq,
            poll,
            reconnect,
        })
    }

    /// `table at url`, for messages (the url as written holds no password).
    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL table `{}` at {}",
            self.params.table, self.params.url
        )
    }

    /// Opens a connection.
    ///
    /// # Errors
    /// [`DataError::Database`] naming the server and saying what to check.
    pub fn connect(&self) -> Result<postgres::Client> {
        self.connect_as("kaizenflow")
    }

    /// Opens a connection that the server lists (`pg_stat_activity`) under
    /// `application_name` = `name`.
    ///
    /// # Errors
    /// As [`PgSettings::connect`].
    pub fn connect_as(&self, name: &str) -> Result<postgres::Client> {
        let mut config: postgres::Config = self
            .params
            .url
            .parse()
            .map_err(|e| db_err(self, "cannot read the connection string", e))?;
        if let Some(p) = &self.password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name(name);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(StdDuration::from_secs(5));
        }
        config.connect(postgres::NoTls).map_err(|e| {
            db_err(
                self,
                "cannot connect (is the server running? `scripts/postgres-up` starts one)",
                e,
            )
        })
    }

    /// The quoted table name.
    pub(crate) fn table(&self) -> String {
        format!("\"{}\"", self.params.table)
    }

    /// The quoted feature columns, comma-separated.
    pub(crate) fn column_list(&self) -> String {
        self.params
            .columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An empty growing source over the configured universe (for a live system).
    ///
    /// # Errors
    /// [`DataError::Invalid`] when `assets` is empty: a live system must know what
    /// it trades before the rows come.
    pub fn growing(&self) -> Result<GrowingSource> {
        if self.params.assets.is_empty() {
            return Err(DataError::Invalid {
                source_kind: "postgres",
                key: "assets",
                message: "a live system needs its universe before the rows come: list the \
                          assets"
                    .into(),
            });
        }
        GrowingSource::new(
            self.describe(),
            self.params.assets.clone(),
            self.params.columns.clone(),
            self.freq,
        )
    }
}

pub(crate) fn db_err(
    s: &PgSettings,
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DataError {
    DataError::Database {
        what: format!("{}: {what}", s.describe()),
        source: Box::new(e),
    }
}

/// ns since the epoch as a `SystemTime` (what `timestamptz` binds to).
pub(crate) fn to_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + StdDuration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - StdDuration::from_nanos(ns.unsigned_abs())
    }
}

/// A `SystemTime` as ns since the epoch (saturating).
pub(crate) fn from_time(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |v| -v),
    }
}

/// Rows read from the table into the long layout.
pub(crate) fn arrived(
    rows: &[postgres::Row],
    first: usize,
    nf: usize,
    with_commit: bool,
) -> Result<Arrived> {
    let mut out = Arrived {
        end: Vec::with_capacity(rows.len()),
        known: Vec::with_capacity(rows.len()),
        asset: Vec::with_capacity(rows.len()),
        values: Vec::with_capacity(rows.len() * nf),
        committed: Vec::new(),
    };
    for row in rows {
        let get = |i: usize| -> Result<SystemTime> {
            row.try_get(first + i).map_err(|e| DataError::Query {
                what: format!("a bars row has no time in column {}: {e}", first + i),
            })
        };
        out.end.push(from_time(get(0)?));
        out.known.push(from_time(get(1)?));
        out.asset
            .push(row.try_get(first + 2).map_err(|e| DataError::Query {
                what: format!("a bars row has no asset: {e}"),
            })?);
        for f in 0..nf {
            let v: Option<f64> = row.try_get(first + 3 + f).map_err(|e| DataError::Query {
                what: format!("a bars row's feature column {f} is not a float: {e}"),
            })?;
            out.values.push(v.unwrap_or(f64::NAN));
        }
        if with_commit {
            let t: Option<SystemTime> =
                row.try_get(first + 3 + nf).map_err(|e| DataError::Query {
                    what: format!("a bars row's commit time: {e}"),
                })?;
            out.committed.push(t.map_or(i64::MIN, from_time));
        }
    }
    Ok(out)
}

/// A bars table read with every filter pushed down to SQL.
pub struct PgSource {
    settings: PgSettings,
    /// One connection, opened at the first read and again after a failure, on its
    /// own thread (so a read may come from inside a runtime); started at the first
    /// read.
    client: Mutex<Option<worker::Worker<Option<postgres::Client>>>>,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("settings", &self.settings)
            .finish()
    }
}

impl PgSource {
    /// A source over the table `settings` names; connects at the first read.
    pub fn new(settings: PgSettings) -> PgSource {
        PgSource {
            settings,
            client: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// Every row version matching `q`'s time range, assets and knowledge cut-off.
    fn select(&self, q: &Query) -> Result<Arrived> {
        let s = &self.settings;
        let mut sql = format!(
            "SELECT end_ts, knowledge_ts, asset, {} FROM {} WHERE true",
            s.column_list(),
            s.table()
        );
        let start = q.start.map(to_time);
        let end = q.end.map(to_time);
        let as_of = q.as_of.map(to_time);
        // Placeholders numbered in the order the worker binds them below.
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if start.is_some() {
            sql += &format!(" AND end_ts >= ${}", next());
        }
        if end.is_some() {
            sql += &format!(" AND end_ts <= ${}", next());
        }
        if q.assets.is_some() {
            sql += &format!(" AND asset = ANY(${})", next());
        }
        if as_of.is_some() {
            sql += &format!(" AND knowledge_ts <= ${}", next());
        }
        sql += " ORDER BY id";
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(worker::Worker::new("kf-postgres-source", None)?);
        }
        let Some(worker) = guard.as_ref() else {
            return Err(DataError::Query {
                what: "no connection".into(),
            });
        };
        let settings = s.clone();
        let assets = q.assets.clone();
        let nf = s.params.columns.len();
        worker.call(move |client: &mut Option<postgres::Client>| {
            let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
            for t in [&start, &end].into_iter().flatten() {
                args.push(t);
            }
            if let Some(a) = &assets {
                args.push(a);
            }
            if let Some(t) = &as_of {
                args.push(t);
            }
            if client.is_none() {
                *client = Some(settings.connect()?);
            }
            let Some(c) = client.as_mut() else {
                return Err(DataError::Query {
                    what: "no connection".into(),
                });
            };
            match c.query(sql.as_str(), &args) {
                Ok(rows) => arrived(&rows, 0, nf, false),
                Err(e) => {
                    // A broken connection is opened again at the next read.
                    *client = None;
                    Err(db_err(&settings, &format!("cannot read ({sql})"), e))
                }
            }
        })
    }
}

impl Source for PgSource {
    fn describe(&self) -> String {
        self.settings.describe()
    }

    fn load(&self, q: &Query) -> Result<Frame> {
        let rows = self.select(q)?;
        let assets = match (&q.assets, self.settings.params.assets.is_empty()) {
            (Some(a), _) => a.clone(),
            (None, false) => self.settings.params.assets.clone(),
            (None, true) => {
                let mut a = rows.asset.clone();
                a.sort_unstable();
                a.dedup();
                a
            }
        };
        if let Some(c) = &q.columns {
            crate::query::check_known("column", c, &self.settings.params.columns)?;
        }
        // The rows are already filtered; the in-memory source picks each bar's
        // latest known version and lays them out wide.
        let held = GrowingSource::new(
            self.describe(),
            assets,
            self.settings.params.columns.clone(),
            self.settings.freq,
        );
        let held = match held {
            Ok(h) => h,
            // No asset at all: nothing matched.
            Err(_) => {
                return Ok(Frame::empty(
                    Vec::new(),
                    q.columns
                        .clone()
                        .unwrap_or_else(|| self.settings.params.columns.clone()),
                )?);
            }
        };
        held.append(&rows)?;
        held.load(&Query {
            start: None,
            end: None,
            assets: None,
            columns: q.columns.clone(),
            as_of: q.as_of,
        })
    }

    fn pushes_down(&self) -> bool {
        true
    }

    fn has_revisions(&self) -> bool {
        true
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(self.settings.params.columns.clone())
    }

    fn fingerprint(&self) -> Result<Option<String>> {
        // The table changes under a live system: never cached.
        Ok(None)
    }
}
