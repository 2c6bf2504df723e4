//! The live tail of a bars table: brings each committed row into a
//! [`GrowingSource`] once, wakes on the table's notifications (or polls), and
//! reconnects when the server goes away.

use std::time::{Duration as StdDuration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::worker::Worker;
use super::{PgSettings, arrived, db_err, from_time};
use crate::live::{Arrived, Feed, GrowingSource};
use crate::{DataError, Result};

/// A [`Feed`] over a PostgreSQL bars table.
///
/// Rows are read in `id` order, each once: `id > the last one read`. Ids are given
/// at insert and rows become visible at commit, so this misses nothing when the
/// table has one writer committing its transactions one after another (a feed
/// handler; `kaizenflow ingest`); with several concurrent writers, a row of a
/// transaction that commits after a later-numbered one is skipped, and
/// `kaizenflow reconcile` reports the difference it makes.
///
/// The connections live on a thread of their own, so a feed may be called from
/// inside an async runtime (a system's loop).
pub struct PgFeed {
    worker: Worker<Tail>,
    describe: String,
}

impl std::fmt::Debug for PgFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFeed")
            .field("table", &self.describe)
            .finish()
    }
}

impl PgFeed {
    /// A tail of the table `settings` names, from its first row (connects at the
    /// first sync).
    ///
    /// # Errors
    /// The tail's thread cannot start.
    pub fn new(settings: PgSettings) -> Result<PgFeed> {
        let describe = settings.describe();
        let tail = Tail {
            settings,
            client: None,
            listener: None,
            last_id: 0,
            read: None,
            clock: None,
            notes: Vec::new(),
        };
        Ok(PgFeed {
            worker: Worker::new("kf-postgres-feed", tail)?,
            describe,
        })
    }
}

impl Feed for PgFeed {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn sync(&mut self, into: &GrowingSource) -> Result<i64> {
        let (now, rows) = self.worker.call(|t: &mut Tail| t.sync())?;
        into.append(&rows)?;
        Ok(now)
    }

    fn wait(&mut self, until: i64) -> Result<()> {
        self.worker.call(move |t: &mut Tail| t.wait(until))
    }

    fn take_notes(&mut self) -> Vec<String> {
        self.worker
            .call(|t: &mut Tail| Ok(std::mem::take(&mut t.notes)))
            .unwrap_or_default()
    }
}

/// The tail's state, on its thread.
struct Tail {
    settings: PgSettings,
    client: Option<postgres::Client>,
    listener: Option<postgres::Client>,
    last_id: i64,
    /// The prepared read, and whether it gives commit times.
    read: Option<(postgres::Statement, bool)>,
    /// The store's clock at the last sync, and the local instant it was read.
    clock: Option<(i64, Instant)>,
    notes: Vec<String>,
}

impl Tail {
    fn disconnect(&mut self, why: &str) {
        if self.client.is_some() || self.listener.is_some() {
            self.notes.push(format!(
                "lost the connection to {} ({why}); reconnecting",
                self.settings.describe()
            ));
        }
        self.client = None;
        self.listener = None;
        self.read = None;
    }

    /// Connects (both connections), retrying until `reconnect` runs out.
    fn ensure(&mut self) -> Result<()> {
        if self.client.is_some() && self.listener.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let limit = StdDuration::from_nanos(self.settings.reconnect as u64);
        let mut pause = StdDuration::from_millis(50);
        let mut tries = 0u32;
        loop {
            tries += 1;
            let name = format!("kaizenflow feed {}", self.settings.params.table);
            let attempt = self.settings.connect_as(&name).and_then(|client| {
                let mut listener = self.settings.connect_as(&name)?;
                listener
                    .batch_execute(&format!("LISTEN \"{}\"", self.settings.params.table))
                    .map_err(|e| db_err(&self.settings, "cannot listen", e))?;
                Ok((client, listener))
            });
            match attempt {
                Ok((client, listener)) => {
                    if tries > 1 {
                        self.notes.push(format!(
                            "reconnected to {} after {tries} tries ({:.1} s)",
                            self.settings.describe(),
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    self.client = Some(client);
                    self.listener = Some(listener);
                    return Ok(());
                }
                Err(e) if started.elapsed() >= limit => {
                    return Err(DataError::Unsupported {
                        what: format!(
                            "gave up reaching the database after {tries} tries over {:.0} s \
                             (`reconnect` = {}): {e}; the run's state is saved, so run the same \
                             command again when the server is back",
                            started.elapsed().as_secs_f64(),
                            self.settings.params.reconnect
                        ),
                    });
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(StdDuration::from_secs(1));
                }
            }
        }
    }

    /// The statement that reads the new rows and the store's clock: one round
    /// trip, one snapshot (a single statement sees the transactions committed
    /// before it started, and `now()` is when it started). With the server's
    /// `track_commit_timestamp` on, each row's commit time comes too.
    fn prepare(&mut self) -> Result<()> {
        let s = &self.settings;
        let Some(client) = self.client.as_mut() else {
            return Err(DataError::Query {
                what: "not connected".into(),
            });
        };
        let commits = client
            .query_one("SHOW track_commit_timestamp", &[])
            .and_then(|r| r.try_get::<_, String>(0))
            .map(|v| v == "on")
            .unwrap_or(false);
        let cols: String = s
            .params
            .columns
            .iter()
            .map(|c| format!(", t.\"{c}\""))
            .collect();
        let commit = if commits {
            ", pg_xact_commit_timestamp(t.xmin)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT c.now, t.id, t.end_ts, t.knowledge_ts, t.asset{cols}{commit} \
             FROM (SELECT now()) AS c(now) LEFT JOIN {} t ON t.id > $1 ORDER BY t.id",
            s.table()
        );
        let stmt = client
            .prepare(&sql)
            .map_err(|e| db_err(s, "cannot prepare the read of new rows", e))?;
        self.read = Some((stmt, commits));
        Ok(())
    }

    /// One read of the new rows and the store's clock.
    fn read(&mut self) -> Result<(i64, Arrived)> {
        if self.read.is_none() {
            self.prepare()?;
        }
        let s = &self.settings;
        let (Some(client), Some((stmt, commits))) = (self.client.as_mut(), self.read.as_ref())
        else {
            return Err(DataError::Query {
                what: "not connected".into(),
            });
        };
        let mut rows = client
            .query(stmt, &[&self.last_id])
            .map_err(|e| db_err(s, "cannot read new rows", e))?;
        let now: std::time::SystemTime = rows
            .first()
            .ok_or_else(|| DataError::Query {
                what: "the read of new rows returned nothing".into(),
            })?
            .try_get(0)
            .map_err(|e| db_err(s, "cannot read the server's clock", e))?;
        // No new row: one row of the clock alone.
        if rows.len() == 1
            && rows[0]
                .try_get::<_, Option<i64>>(1)
                .ok()
                .flatten()
                .is_none()
        {
            rows.clear();
        }
        if let Some(last) = rows.last() {
            self.last_id = last
                .try_get(1)
                .map_err(|e| db_err(s, "a row has no id", e))?;
        }
        let new = arrived(&rows, 2, s.params.columns.len(), *commits)?;
        let now = from_time(now);
        self.clock = Some((now, Instant::now()));
        Ok((now, new))
    }

    fn sync(&mut self) -> Result<(i64, Arrived)> {
        let started = Instant::now();
        let limit = StdDuration::from_nanos(self.settings.reconnect as u64);
        loop {
            self.ensure()?;
            match self.read() {
                Ok(got) => return Ok(got),
                Err(e @ DataError::Database { .. }) => {
                    // A restarted server or a dropped connection: connect again and
                    // read from the last row read (nothing is read twice).
                    self.disconnect(&e.to_string());
                    if started.elapsed() >= limit {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn wait(&mut self, until: i64) -> Result<()> {
        // The store's clock now, estimated from its last reading.
        let now = self.clock.map_or(i64::MIN, |(t, at)| {
            t.saturating_add(at.elapsed().as_nanos() as i64)
        });
        let left = until.saturating_sub(now).max(0) as u64;
        let wait = StdDuration::from_nanos(left.min(self.settings.poll as u64));
        let Some(listener) = self.listener.as_mut() else {
            std::thread::sleep(wait);
            return Ok(());
        };
        let failed = {
            let mut notes = listener.notifications();
            let got = notes.timeout_iter(wait).next();
            match got {
                Ok(Some(_)) => {
                    // Drain what else came: one sync reads it all.
                    let mut more = notes.iter();
                    while let Ok(Some(_)) = more.next() {}
                    None
                }
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(e) = failed {
            self.disconnect(&e);
        }
        Ok(())
    }
}
