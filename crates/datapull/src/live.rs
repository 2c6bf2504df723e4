//! Live market data: a source that grows as a feed delivers rows, and the [`Feed`]
//! trait a live system waits on.
//!
//! A live system cannot load its market before it starts: the rows arrive while it
//! runs. [`GrowingSource`] holds what arrived so far (every version of every row,
//! each with its knowledge time) over a universe and bar period declared up front,
//! and answers [`Query`]s like any other [`Source`], as of any knowledge time. A
//! [`Feed`] (the PostgreSQL tail behind the `postgres` feature, or a test's
//! script) appends to it. Because a query reads as of a knowledge time, a system
//! that decides as of the knowledge time of the bars it waited for sees the same
//! rows whether it runs live (the later rows not there yet) or replays the whole
//! stored period afterwards (the later rows there, but not yet known): that is
//! what makes a live run reproducible.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use kf_frame::Frame;

use crate::query::check_known;
use crate::{DataError, Query, Result, Source};

/// Rows arriving from a feed, in the long layout: one entry per `(end_ts, asset)`
/// version, `values` row-major with one value per feature of the source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arrived {
    /// Bar ends (ns).
    pub end: Vec<i64>,
    /// Knowledge times (ns): when the feed's store committed each row.
    pub known: Vec<i64>,
    /// Assets.
    pub asset: Vec<String>,
    /// Feature values, `end.len() * n_features`, row-major.
    pub values: Vec<f64>,
    /// When each row's transaction committed (ns), where the store tells (empty
    /// otherwise): for measuring latency, never for deciding.
    pub committed: Vec<i64>,
}

impl Arrived {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }
}

#[derive(Debug, Default)]
struct Rows {
    known: Vec<i64>,
    asset: Vec<u32>,
    values: Vec<f64>,
    /// Row indices by bar end.
    by_end: BTreeMap<i64, Vec<u32>>,
    /// The earliest knowledge time of any row of each bar end: when the bar arrived.
    first_known: BTreeMap<i64, i64>,
    /// The latest knowledge time of any row.
    latest_known: i64,
    /// Of each bar end: the first commit time the store told, and when the source
    /// first held a row of it (local wall clock, ns).
    timing: BTreeMap<i64, (Option<i64>, i64)>,
    /// Rows of assets outside the universe, left out.
    foreign: u64,
}

/// A source over a declared universe whose rows arrive while it is read.
///
/// Invariant: every row held has an asset of the universe and one value per
/// feature; rows are never removed or changed (a revision is another row).
#[derive(Debug)]
pub struct GrowingSource {
    label: String,
    assets: Vec<String>,
    index: HashMap<String, u32>,
    features: Vec<String>,
    freq: i64,
    rows: RwLock<Rows>,
}

impl GrowingSource {
    /// An empty source over `assets` (the system's order), with `features` per
    /// row and bars every `freq` ns (ending on multiples of `freq`).
    ///
    /// # Errors
    /// [`DataError::Invalid`] for no asset, a repeated asset or feature, or a
    /// non-positive `freq`.
    pub fn new(
        label: impl Into<String>,
        assets: Vec<String>,
        features: Vec<String>,
        freq: i64,
    ) -> Result<GrowingSource> {
        let invalid = |key, message: String| DataError::Invalid {
            source_kind: "live",
            key,
            message,
        };
        if assets.is_empty() {
            return Err(invalid("assets", "lists no asset".into()));
        }
        if freq <= 0 {
            return Err(invalid("bar", "must be longer than zero".into()));
        }
        let mut index = HashMap::with_capacity(assets.len());
        for (i, a) in assets.iter().enumerate() {
            if index.insert(a.clone(), i as u32).is_some() {
                return Err(invalid("assets", format!("lists `{a}` twice")));
            }
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].contains(f) {
                return Err(invalid("columns", format!("lists `{f}` twice")));
            }
        }
        Ok(GrowingSource {
            label: label.into(),
            assets,
            index,
            features,
            freq,
            rows: RwLock::new(Rows {
                latest_known: i64::MIN,
                ..Rows::default()
            }),
        })
    }

    /// The universe, in order.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    /// The bar period (ns).
    pub fn freq(&self) -> i64 {
        self.freq
    }

    /// The feature columns of every row.
    pub fn feature_names(&self) -> &[String] {
        &self.features
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rows> {
        // A poisoned lock only means a reader panicked; the rows are whole (each
        // append finishes before it releases the lock).
        self.rows.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends rows (versions of a bar already held are revisions; nothing is
    /// replaced). Rows of assets outside the universe are counted and left out.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the lengths disagree.
    pub fn append(&self, rows: &Arrived) -> Result<()> {
        let nf = self.features.len();
        let n = rows.end.len();
        if rows.known.len() != n || rows.asset.len() != n || rows.values.len() != n * nf {
            return Err(DataError::Invalid {
                source_kind: "live",
                key: "rows",
                message: format!(
                    "{n} bar ends, {} knowledge times, {} assets and {} values for {nf} \
                     features do not make whole rows",
                    rows.known.len(),
                    rows.asset.len(),
                    rows.values.len()
                ),
            });
        }
        let seen = crate::clock::Clock::now(&crate::clock::WallClock);
        let mut held = self.rows.write().unwrap_or_else(|e| e.into_inner());
        for i in 0..n {
            let Some(&slot) = self.index.get(&rows.asset[i]) else {
                held.foreign += 1;
                continue;
            };
            let (end, known) = (rows.end[i], rows.known[i]);
            let r = held.known.len() as u32;
            held.known.push(known);
            held.asset.push(slot);
            held.values
                .extend_from_slice(&rows.values[i * nf..(i + 1) * nf]);
            held.by_end.entry(end).or_default().push(r);
            let first = held.first_known.entry(end).or_insert(known);
            *first = (*first).min(known);
            let commit = rows.committed.get(i).copied();
            let t = held.timing.entry(end).or_insert((commit, seen));
            t.0 = match (t.0, commit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            held.latest_known = held.latest_known.max(known);
        }
        Ok(())
    }

    /// When the bar ending at `end` arrived: the earliest knowledge time of its
    /// rows (`None` before any).
    pub fn arrival(&self, end: i64) -> Option<i64> {
        self.read().first_known.get(&end).copied()
    }

    /// When the bar ending at `end` was first committed in the feed's store (when
    /// the store tells) and first held here (local wall clock): what a live
    /// system's latency is measured from.
    pub fn timing(&self, end: i64) -> Option<(Option<i64>, i64)> {
        self.read().timing.get(&end).copied()
    }

    /// The earliest arrival of any bar ending after `end` (a feed that has moved on
    /// past a bar that did not come).
    pub fn next_arrival_after(&self, end: i64) -> Option<i64> {
        self.read()
            .first_known
            .range(end.saturating_add(1)..)
            .map(|(_, &k)| k)
            .min()
    }

    /// The latest knowledge time of any row held (`None` when empty).
    pub fn latest_known(&self) -> Option<i64> {
        let rows = self.read();
        (!rows.known.is_empty()).then_some(rows.latest_known)
    }

    /// Rows held, and rows left out for an asset outside the universe.
    pub fn counts(&self) -> (usize, u64) {
        let rows = self.read();
        (rows.known.len(), rows.foreign)
    }
}

impl Source for GrowingSource {
    fn describe(&self) -> String {
        format!(
            "{} ({} assets, {} rows so far)",
            self.label,
            self.assets.len(),
            self.counts().0
        )
    }

    /// Of each `(bar end, asset)` in range, the latest version known at the query's
    /// `as_of` (all versions when `None`); a bar's knowledge time is the latest of
    /// the rows it shows. Assets come in the order asked (the universe's when
    /// `None`), missing values as NaN.
    fn load(&self, q: &Query) -> Result<Frame> {
        if let Some(a) = &q.assets {
            check_known("asset", a, &self.assets)?;
        }
        if let Some(c) = &q.columns {
            check_known("column", c, &self.features)?;
        }
        let slots: Vec<usize> = match &q.assets {
            Some(a) => a.iter().map(|x| self.index[x] as usize).collect(),
            None => (0..self.assets.len()).collect(),
        };
        let cols: Vec<usize> = match &q.columns {
            Some(c) => c
                .iter()
                .filter_map(|x| self.features.iter().position(|f| f == x))
                .collect(),
            None => (0..self.features.len()).collect(),
        };
        // Where each universe asset sits in the output (None: not asked).
        let mut out_slot = vec![None; self.assets.len()];
        for (j, &s) in slots.iter().enumerate() {
            out_slot[s] = Some(j);
        }
        let (na, nf) = (slots.len(), self.features.len());
        let as_of = q.as_of.unwrap_or(i64::MAX);
        let rows = self.read();
        let (lo, hi) = (q.start.unwrap_or(i64::MIN), q.end.unwrap_or(i64::MAX));
        let (mut ends, mut knowns) = (Vec::new(), Vec::new());
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); cols.len()];
        let mut best: Vec<Option<(i64, u32)>> = vec![None; na];
        if lo <= hi {
            for (&end, idx) in rows.by_end.range(lo..=hi) {
                best.fill(None);
                let mut bar_known = i64::MIN;
                for &r in idx {
                    let k = rows.known[r as usize];
                    let Some(j) = out_slot[rows.asset[r as usize] as usize] else {
                        continue;
                    };
                    // The latest version known by `as_of`; of equal times, the later row.
                    if k <= as_of && best[j].is_none_or(|(bk, _)| k >= bk) {
                        best[j] = Some((k, r));
                    }
                }
                if best.iter().all(Option::is_none) {
                    continue;
                }
                for (c, &f) in cols.iter().enumerate() {
                    values[c]
                        .extend(best.iter().map(|b| {
                            b.map_or(f64::NAN, |(_, r)| rows.values[r as usize * nf + f])
                        }));
                }
                for (k, _) in best.iter().flatten() {
                    bar_known = bar_known.max(*k);
                }
                ends.push(end);
                knowns.push(bar_known);
            }
        }
        let assets = slots.iter().map(|&s| self.assets[s].clone()).collect();
        let features = cols
            .iter()
            .zip(values)
            .map(|(&f, v)| (self.features[f].clone(), v))
            .collect();
        Ok(Frame::new(ends, knowns, assets, features)?)
    }

    fn pushes_down(&self) -> bool {
        // The rows grow: a view must ask each time, never cache a first read.
        true
    }

    fn has_revisions(&self) -> bool {
        true
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(self.features.clone())
    }
}

/// Where a live source's rows come from: something that brings every row its
/// store has committed into a [`GrowingSource`], and waits for more.
///
/// Knowledge times are stamped by the feed's store, on the store's clock; the feed
/// reports that clock ([`Feed::sync`]) so that waiting is measured on the same
/// clock as the rows, whatever the local clock does.
pub trait Feed: Send {
    /// What the feed reads, for messages (never a password).
    fn describe(&self) -> String;

    /// Brings every row committed so far into the source; returns the store's
    /// clock now (ns), after the rows it brought.
    ///
    /// # Errors
    /// The store cannot be reached even after the feed's own retries, saying what
    /// was tried.
    fn sync(&mut self, into: &GrowingSource) -> Result<i64>;

    /// Blocks until rows may have arrived or the store's clock reaches `until`,
    /// whichever is first (it may return early; callers sync and look again).
    ///
    /// # Errors
    /// As [`Feed::sync`].
    fn wait(&mut self, until: i64) -> Result<()>;

    /// What happened that a user should know (a lost connection, a reconnection),
    /// each said once.
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> GrowingSource {
        GrowingSource::new(
            "test",
            vec!["A".into(), "B".into()],
            vec!["close".into(), "volume".into()],
            60,
        )
        .unwrap()
    }

    fn rows(spec: &[(i64, i64, &str, f64)]) -> Arrived {
        Arrived {
            end: spec.iter().map(|r| r.0).collect(),
            known: spec.iter().map(|r| r.1).collect(),
            asset: spec.iter().map(|r| r.2.to_string()).collect(),
            values: spec.iter().flat_map(|r| [r.3, r.3 * 10.0]).collect(),
            committed: Vec::new(),
        }
    }

    #[test]
    fn reads_the_latest_version_known_at_the_cut_off() {
        let s = source();
        s.append(&rows(&[
            (60, 61, "A", 1.0),
            (60, 61, "B", 2.0),
            (120, 121, "A", 3.0),
        ]))
        .unwrap();
        // A revision of A's first bar, known at 200.
        s.append(&rows(&[(60, 200, "A", 9.0)])).unwrap();
        let before = s.load(&Query::all().as_of(150)).unwrap();
        assert_eq!(before.end_ts(), &[60, 120]);
        assert_eq!(before.knowledge_ts(), &[61, 121]);
        let close = before.feature("close").unwrap().values().to_vec();
        assert_eq!(close[..3], [1.0, 2.0, 3.0]);
        assert!(close[3].is_nan(), "B has no second bar");
        let after = s.load(&Query::all()).unwrap();
        assert_eq!(after.feature("close").unwrap().values()[0], 9.0);
        assert_eq!(after.knowledge_ts()[0], 200);
        // Nothing known yet: no rows.
        assert_eq!(s.load(&Query::all().as_of(10)).unwrap().n_rows(), 0);
        // The bar arrived with its first version.
        assert_eq!(s.arrival(60), Some(61));
        assert_eq!(s.next_arrival_after(60), Some(121));
        assert_eq!(s.next_arrival_after(120), None);
        assert_eq!(s.latest_known(), Some(200));
    }

    #[test]
    fn asks_by_asset_column_and_time_and_names_what_it_lacks() {
        let s = source();
        s.append(&rows(&[
            (60, 61, "A", 1.0),
            (60, 61, "B", 2.0),
            (120, 121, "B", 4.0),
        ]))
        .unwrap();
        let f = s
            .load(&Query::between(100, 200).assets(&["B"]).columns(&["volume"]))
            .unwrap();
        assert_eq!(f.end_ts(), &[120]);
        assert_eq!(f.assets(), &["B".to_string()]);
        assert_eq!(f.feature("volume").unwrap().values(), &[40.0]);
        let err = s
            .load(&Query::all().assets(&["ZZ"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ZZ"), "{err}");
        let err = s
            .load(&Query::all().columns(&["open"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("open"), "{err}");
    }

    #[test]
    fn leaves_out_foreign_assets_and_refuses_ragged_rows() {
        let s = source();
        s.append(&rows(&[(60, 61, "ZZ", 1.0)])).unwrap();
        assert_eq!(s.counts(), (0, 1));
        let mut bad = rows(&[(60, 61, "A", 1.0)]);
        bad.values.pop();
        let err = s.append(&bad).unwrap_err().to_string();
        assert!(err.contains("whole rows"), "{err}");
        assert!(GrowingSource::new("x", vec![], vec![], 60).is_err());
        assert!(GrowingSource::new("x", vec!["A".into(), "A".into()], vec![], 60).is_err());
        assert!(GrowingSource::new("x", vec!["A".into()], vec![], 0).is_err());
    }
}
