//! The `MarketData` views (the paper's DataPull interface): historical, replayed,
//! stitched. DataFlow source nodes and the System read market data only through
//! this trait, so the same model runs on a store, a replay and a live feed.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use kf_frame::{Duration, Frame, Timestamp};

use crate::clock::Clock;
use crate::query::Query;
use crate::{DataError, Result, Source, conform};

/// A boxed future yielding a frame (the object-safe form of an `async fn`).
pub type FrameFuture<'a> = Pin<Box<dyn Future<Output = Result<Frame>> + Send + 'a>>;

/// Market data as the rest of the system sees it: wide frames with per-row
/// knowledge time, by interval, and (for views with a clock) the latest bar.
pub trait MarketData: Send + Sync + Debug {
    /// A short description for logs and messages.
    fn describe(&self) -> String;

    /// Rows with bar ends in `[start, end]` (closed at both ends) for the given assets
    /// and columns (all when `None`), in the order asked. A view with a clock
    /// returns only rows already known at its current time.
    ///
    /// # Errors
    /// [`DataError::Query`] for an unknown asset or column; the store's read errors.
    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> Result<Frame>;

    /// As [`MarketData::data_for_interval`], as the data was known at `as_of`: of
    /// each bar, the latest version with knowledge time `<= as_of` (revisions known
    /// later are left out, and bars not yet known at all). `None` reads the latest
    /// versions. Views with a clock already read as of their clock's time and refuse
    /// an explicit `as_of` (the default).
    ///
    /// # Errors
    /// [`DataError::Unsupported`] for a view that cannot; as `data_for_interval`.
    fn data_as_of(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
        as_of: Option<i64>,
    ) -> Result<Frame> {
        match as_of {
            None => self.data_for_interval(start, end, assets, columns),
            Some(_) => Err(DataError::Unsupported {
                what: format!(
                    "{} cannot read as of a time: it follows a clock, and reads as of the                      clock's time; drop `as_of`",
                    self.describe()
                ),
            }),
        }
    }

    /// Resolves with the bar for the clock's current time once it is known, or an
    /// error after `timeout` ns of clock time. Views without a clock have no current
    /// time and answer with an error.
    fn wait_for_latest_data(&self, timeout: i64) -> FrameFuture<'_> {
        let _ = timeout;
        let what = format!(
            "{} has no clock, so it has no latest bar to wait for; use a replayed or stitched view",
            self.describe()
        );
        Box::pin(async move { Err(DataError::Query { what }) })
    }

    /// Resolves with the row of the bar ending at `bar` once the view knows it, or an
    /// error after `timeout` ns of clock time: what a replayed or live loop waits on
    /// before using a bar. Views without a clock answer with an error.
    fn wait_for_bar(&self, bar: Timestamp, timeout: i64) -> FrameFuture<'_> {
        let _ = (bar, timeout);
        self.wait_for_latest_data(timeout)
    }

    /// The delay this view adds to the knowledge time of the row of the bar ending
    /// at `bar` before it releases it on a clock (a replayed view's `delay`), on top
    /// of whatever delay a run's clock settings add: what a loop that models when
    /// each row arrives (the research evaluator) must add too.
    fn delay_at(&self, bar: Timestamp) -> Duration {
        let _ = bar;
        Duration::ZERO
    }

    /// The clock a view follows, if any.
    fn clock(&self) -> Option<Arc<dyn Clock>> {
        None
    }

    /// A fingerprint of what [`MarketData::data_for_interval`] returns for a given
    /// query (see [`crate::Source::fingerprint`]); `None` (the default) when the view
    /// cannot say or its answers depend on a clock, so outputs read through it are
    /// never cached.
    ///
    /// # Errors
    /// The source's.
    fn fingerprint(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// What this view reads apart from its content (see [`Source::lineage`]);
    /// `None` (the default) for a view that cannot say or follows a clock.
    fn lineage(&self) -> Option<String> {
        None
    }

    /// A fingerprint of the rows up to `until` (see [`Source::prefix_fingerprint`]);
    /// `None` (the default) when the view has no lineage.
    ///
    /// # Errors
    /// The source's.
    fn prefix_fingerprint(&self, until: i64) -> Result<Option<String>> {
        let _ = until;
        Ok(None)
    }

    /// The feature columns a full read gives, when known without reading data (see
    /// [`Source::features`]).
    fn features(&self) -> Option<Vec<String>> {
        None
    }

    /// This view's data with no clock: everything it would ever show, as research
    /// and the system's price table read it. A [`Historical`] view is its own; a
    /// [`Replayed`] view gives its historical data; a [`Stitched`] one stitches its
    /// parts' unclocked views.
    ///
    /// # Errors
    /// [`DataError::Unsupported`] for a view that cannot say (the default).
    fn unclocked(&self) -> Result<Arc<dyn MarketData>> {
        Err(DataError::Unsupported {
            what: format!(
                "{} cannot give its data without its clock (implement `MarketData::unclocked`)",
                self.describe()
            ),
        })
    }

    /// This view's data released on `clock` by knowledge time, as a run on that clock
    /// (the system's loop, the replay check) must read it: a [`Historical`] view
    /// becomes a [`Replayed`] one with `replay`'s settings; a [`Replayed`] view keeps
    /// its bar grid and delay, adds `replay.delay`, and moves to `clock`; a
    /// [`Stitched`] view moves both parts.
    ///
    /// # Errors
    /// [`DataError::Unsupported`] for a view that cannot be replayed (the default);
    /// [`DataError::Invalid`] for bad settings.
    fn on_clock(
        &self,
        clock: Arc<dyn Clock>,
        replay: &ReplaySettings,
    ) -> Result<Arc<dyn MarketData>> {
        let _ = (clock, replay);
        Err(DataError::Unsupported {
            what: format!(
                "{} cannot be replayed on another clock (implement `MarketData::on_clock`)",
                self.describe()
            ),
        })
    }
}

/// How a clockless view is released on a clock (see [`MarketData::on_clock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    /// Added to every row's knowledge time.
    pub delay: Duration,
    /// The bar period.
    pub freq: Duration,
    /// Where the bar grid starts, from the epoch.
    pub offset: Duration,
    /// How often to look again for a bar the store lacks (clock time).
    pub poll: Duration,
}

fn query_for(
    start: Timestamp,
    end: Timestamp,
    assets: Option<&[String]>,
    columns: Option<&[String]>,
) -> Query {
    Query {
        start: Some(start.nanos()),
        end: Some(end.nanos()),
        assets: assets.map(<[String]>::to_vec),
        columns: columns.map(<[String]>::to_vec),
        as_of: None,
    }
}

/// All of a source's data, with no clock: the research view.
///
/// Sources that push queries down (Parquet, HDF5) are queried each time; others
/// (CSV, synthetic) are loaded once and sliced in memory. Clones share one cache
/// (loaded or not yet), so views on several clocks load the source once.
#[derive(Clone, Debug)]
pub struct Historical {
    source: Arc<dyn Source>,
    /// Shared by every clone, so a view and the views made from it (on a clock,
    /// unclocked) load the source once between them.
    cache: Arc<OnceLock<Frame>>,
    /// Held while the source is loaded into `cache`, so that calls in parallel (the
    /// tiles of a tiled run) wait for one load instead of each loading it all.
    loading: Arc<Mutex<()>>,
}

impl Historical {
    /// A historical view of `source`.
    pub fn new(source: Arc<dyn Source>) -> Historical {
        Historical {
            source,
            cache: Arc::new(OnceLock::new()),
            loading: Arc::new(Mutex::new(())),
        }
    }

    /// The underlying source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Runs any query (the views build theirs on this).
    ///
    /// # Errors
    /// The source's errors; [`DataError::Query`] for unknown assets or columns.
    pub fn query(&self, q: &Query) -> Result<Frame> {
        // A source that filters for itself, or an as-of read of revised data (the
        // cache holds only the latest version of each row), goes to the source.
        if self.source.pushes_down() || (self.source.has_revisions() && q.as_of.is_some()) {
            return self.source.load(q);
        }
        if let Some(f) = self.cache.get() {
            return q.apply(f);
        }
        // A poisoned lock only means another load panicked; loading again is fine.
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = self.cache.get() {
            return q.apply(f);
        }
        let all = self.source.load(&Query::all())?;
        q.apply(self.cache.get_or_init(|| all))
    }
}

impl MarketData for Historical {
    fn describe(&self) -> String {
        format!("historical {}", self.source.describe())
    }

    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> Result<Frame> {
        self.query(&query_for(start, end, assets, columns))
    }

    fn data_as_of(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
        as_of: Option<i64>,
    ) -> Result<Frame> {
        let mut q = query_for(start, end, assets, columns);
        q.as_of = as_of;
        self.query(&q)
    }

    fn unclocked(&self) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(self.clone()))
    }

    fn features(&self) -> Option<Vec<String>> {
        self.source.features()
    }

    fn fingerprint(&self) -> Result<Option<String>> {
        Ok(self
            .source
            .fingerprint()?
            .map(|f| format!("historical;{f}")))
    }

    fn lineage(&self) -> Option<String> {
        self.source.lineage().map(|l| format!("historical;{l}"))
    }

    fn prefix_fingerprint(&self, until: i64) -> Result<Option<String>> {
        self.source.prefix_fingerprint(until)
    }

    fn on_clock(
        &self,
        clock: Arc<dyn Clock>,
        replay: &ReplaySettings,
    ) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(Replayed::new(self.clone(), clock, *replay)?))
    }
}

/// Historical data released by a clock: at time `now` it shows only rows whose
/// knowledge time plus `delay` is `<= now` (and whose bar has ended), as a live
/// feed would have.
#[derive(Debug)]
pub struct Replayed {
    historical: Historical,
    clock: Arc<dyn Clock>,
    delay: i64,
    freq: i64,
    offset: i64,
    poll: i64,
}

impl Replayed {
    /// Replays `historical` on `clock`. Bars are on the grid `offset + k * freq`;
    /// `delay` is added to every row's knowledge time; `poll` is how often to look
    /// again for a bar that the store does not hold (yet).
    ///
    /// # Errors
    /// [`DataError::Invalid`] when `freq` or `poll` is not positive or `delay` is
    /// negative.
    pub fn new(
        historical: Historical,
        clock: Arc<dyn Clock>,
        settings: ReplaySettings,
    ) -> Result<Replayed> {
        let ReplaySettings {
            delay,
            freq,
            offset,
            poll,
        } = settings;
        let (delay, freq, offset, poll) = (delay.0, freq.0, offset.0, poll.0);
        let invalid = |key, message: &str| DataError::Invalid {
            source_kind: "replayed",
            key,
            message: message.into(),
        };
        if freq <= 0 {
            return Err(invalid("freq", "must be longer than zero"));
        }
        if poll <= 0 {
            return Err(invalid("poll", "must be longer than zero"));
        }
        if delay < 0 {
            return Err(invalid("delay", "must not be negative"));
        }
        Ok(Replayed {
            historical,
            clock,
            delay,
            freq,
            offset,
            poll,
        })
    }

    /// The end of the bar for time `t`: the latest grid point `<= t`.
    pub fn bar_end(&self, t: i64) -> i64 {
        self.offset + (t - self.offset).div_euclid(self.freq) * self.freq
    }

    fn known_query(&self, mut q: Query, now: i64) -> Query {
        q.end = Some(q.end.map_or(now, |e| e.min(now)));
        q.as_of = Some(now - self.delay);
        q
    }

    async fn wait(&self, timeout: i64) -> Result<Frame> {
        let bar = self.bar_end(self.clock.now());
        self.wait_bar(bar, timeout).await
    }

    /// Waits for the one bar ending at `bar` (not for whichever bar is the newest
    /// while it waits: with a delay longer than a bar, the newest bar is always
    /// further ahead, and chasing it would wait out the whole timeout).
    async fn wait_bar(&self, bar: i64, timeout: i64) -> Result<Frame> {
        let started = self.clock.now();
        let deadline = started.saturating_add(timeout);
        loop {
            let now = self.clock.now();
            let known = self
                .historical
                .query(&self.known_query(Query::between(bar, bar), now))?;
            if known.n_rows() == 1 {
                return Ok(known);
            }
            if now >= deadline {
                let latest = self
                    .historical
                    .query(&self.known_query(Query::between(i64::MIN, now), now))?;
                return Err(DataError::Timeout {
                    bar_end: Timestamp(bar),
                    waited_s: (now - started) as f64 / 1e9,
                    now: Timestamp(now),
                    latest: latest
                        .end_ts()
                        .last()
                        .map_or("none".into(), |t| Timestamp(*t).to_string()),
                });
            }
            // When will this bar be known? The store says (the view itself never
            // returns it early); a bar the store lacks is looked for again later.
            let pending = self.historical.query(&Query::between(bar, bar))?;
            let wake = match pending.knowledge_ts().first() {
                Some(&k) => k.saturating_add(self.delay),
                None => now.saturating_add(self.poll),
            };
            self.clock
                .sleep_until(wake.min(deadline).max(now + 1))
                .await;
        }
    }
}

impl MarketData for Replayed {
    fn describe(&self) -> String {
        format!(
            "replayed {} (delay {} s)",
            self.historical.source.describe(),
            self.delay as f64 / 1e9
        )
    }

    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> Result<Frame> {
        let now = self.clock.now();
        self.historical
            .query(&self.known_query(query_for(start, end, assets, columns), now))
    }

    fn wait_for_latest_data(&self, timeout: i64) -> FrameFuture<'_> {
        Box::pin(self.wait(timeout))
    }

    fn wait_for_bar(&self, bar: Timestamp, timeout: i64) -> FrameFuture<'_> {
        Box::pin(self.wait_bar(bar.0, timeout))
    }

    fn delay_at(&self, _: Timestamp) -> Duration {
        Duration(self.delay)
    }

    fn clock(&self) -> Option<Arc<dyn Clock>> {
        Some(Arc::clone(&self.clock))
    }

    fn unclocked(&self) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(self.historical.clone()))
    }

    fn features(&self) -> Option<Vec<String>> {
        self.historical.source.features()
    }

    fn on_clock(
        &self,
        clock: Arc<dyn Clock>,
        replay: &ReplaySettings,
    ) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(Replayed::new(
            self.historical.clone(),
            clock,
            ReplaySettings {
                delay: Duration(self.delay.saturating_add(replay.delay.nanos())),
                freq: Duration(self.freq),
                offset: Duration(self.offset),
                poll: replay.poll,
            },
        )?))
    }
}

/// One view up to a split time (bar ends `<= split`) and another after it,
/// presented as one: years of history from a store, then a replayed or live feed.
#[derive(Debug)]
pub struct Stitched {
    before: Arc<dyn MarketData>,
    after: Arc<dyn MarketData>,
    split: i64,
}

impl Stitched {
    /// `before` answers for bar ends `<= split`, `after` for later ones.
    pub fn new(
        before: Arc<dyn MarketData>,
        after: Arc<dyn MarketData>,
        split: Timestamp,
    ) -> Stitched {
        let split = split.nanos();
        Stitched {
            before,
            after,
            split,
        }
    }
}

impl MarketData for Stitched {
    fn describe(&self) -> String {
        format!(
            "stitched: {} up to {}, then {}",
            self.before.describe(),
            Timestamp(self.split),
            self.after.describe()
        )
    }

    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> Result<Frame> {
        let split = Timestamp(self.split);
        let first = (start <= split)
            .then(|| {
                self.before
                    .data_for_interval(start, end.min(split), assets, columns)
            })
            .transpose()?;
        let second = (end > split)
            .then(|| {
                self.after.data_for_interval(
                    start.max(Timestamp(self.split.saturating_add(1))),
                    end,
                    assets,
                    columns,
                )
            })
            .transpose()?;
        match (first, second) {
            (Some(a), Some(b)) => {
                // Present the second part in the first's shape, then join.
                let b = conform(b, a.assets(), a.features())?;
                Ok(Frame::concat(&[a, b])?)
            }
            (Some(f), None) | (None, Some(f)) => Ok(f),
            (None, None) => Err(DataError::Query {
                what: format!("empty interval: start {start} is after end {end}"),
            }),
        }
    }

    fn wait_for_latest_data(&self, timeout: i64) -> FrameFuture<'_> {
        self.after.wait_for_latest_data(timeout)
    }

    fn delay_at(&self, bar: Timestamp) -> Duration {
        if bar.0 <= self.split {
            self.before.delay_at(bar)
        } else {
            self.after.delay_at(bar)
        }
    }

    fn wait_for_bar(&self, bar: Timestamp, timeout: i64) -> FrameFuture<'_> {
        if bar.0 <= self.split {
            self.before.wait_for_bar(bar, timeout)
        } else {
            self.after.wait_for_bar(bar, timeout)
        }
    }

    fn clock(&self) -> Option<Arc<dyn Clock>> {
        self.after.clock()
    }

    /// The features both parts give, in the first part's order: those a read across
    /// the split can ask for.
    fn features(&self) -> Option<Vec<String>> {
        let (a, b) = (self.before.features()?, self.after.features()?);
        Some(a.into_iter().filter(|f| b.contains(f)).collect())
    }

    fn unclocked(&self) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(Stitched::new(
            self.before.unclocked()?,
            self.after.unclocked()?,
            Timestamp(self.split),
        )))
    }

    fn on_clock(
        &self,
        clock: Arc<dyn Clock>,
        replay: &ReplaySettings,
    ) -> Result<Arc<dyn MarketData>> {
        Ok(Arc::new(Stitched::new(
            self.before.on_clock(Arc::clone(&clock), replay)?,
            self.after.on_clock(clock, replay)?,
            Timestamp(self.split),
        )))
    }
}
