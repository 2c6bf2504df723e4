//! [`SharedQuery`]: one query per interval, shared by every reader of a view.
//!
//! A system's decision reads the bar's prices for its broker and the same interval
//! for its DAG's source. Through a `SharedQuery` the underlying view is asked once,
//! for every column, and each reader gets its columns from that one answer.
//!
//! A clocked view's answer depends on the clock's time (it shows what is known by
//! then), so the answer is shared only at the same clock time: on a simulated clock
//! that is every query of one decision; on a wall clock, which moves between any two
//! queries, each query goes to the view.

use std::sync::{Arc, Mutex};

use kf_frame::{Duration, Frame, Timestamp};

use crate::Result;
use crate::clock::Clock;
use crate::market_data::{FrameFuture, MarketData, ReplaySettings};

/// The last answer: its interval and assets, and every column of its rows.
#[derive(Debug)]
struct Last {
    /// The clock's time when it was asked (`None`: an unclocked view).
    now: Option<i64>,
    start: Timestamp,
    end: Timestamp,
    assets: Option<Vec<String>>,
    frame: Frame,
}

/// Column subsets whose names a [`SharedQuery`] keeps.
const MAX_SUBSETS: usize = 16;

/// A view that remembers its last answer and serves any column subset of the same
/// interval and assets from it. Everything else is the inner view's.
///
/// Serving a subset allocates nothing once each subset has been asked for: the
/// subsets' names are kept, shared by every answer.
#[derive(Debug)]
pub struct SharedQuery {
    inner: Arc<dyn MarketData>,
    clock: Option<Arc<dyn Clock>>,
    last: Mutex<Option<Last>>,
    /// The column subsets asked for so far (a reader asks for the same one each time).
    names: Mutex<Vec<Arc<[String]>>>,
}

impl SharedQuery {
    /// Shares `inner`'s answers.
    pub fn new(inner: Arc<dyn MarketData>) -> SharedQuery {
        SharedQuery {
            clock: inner.clock(),
            inner,
            last: Mutex::new(None),
            names: Mutex::new(Vec::new()),
        }
    }

    /// `frame`'s `columns` (all when `None`), or `None` when one is missing (the
    /// inner view then answers, with its own error).
    fn project(&self, frame: &Frame, columns: Option<&[String]>) -> Option<Frame> {
        match columns {
            None => Some(frame.clone()),
            Some(c) if frame.features() == c => Some(frame.clone()),
            Some(c) => {
                let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
                let shared = match names.iter().find(|n| n[..] == *c) {
                    Some(n) => Arc::clone(n),
                    None => {
                        let n: Arc<[String]> = c.into();
                        // Readers ask for a few subsets, each every time; a view
                        // asked for ever new ones keeps only the latest few.
                        if names.len() >= MAX_SUBSETS {
                            names.remove(0);
                        }
                        names.push(Arc::clone(&n));
                        n
                    }
                };
                frame.select_features_shared(&shared).ok()
            }
        }
    }
}

impl MarketData for SharedQuery {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        assets: Option<&[String]>,
        columns: Option<&[String]>,
    ) -> Result<Frame> {
        // A poisoned lock only means a reader panicked; the memo is still valid.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.as_ref().map(|c| c.now());
        if let Some(l) = last.as_ref()
            && l.now == now
            && l.start == start
            && l.end == end
            && l.assets.as_deref() == assets
            && let Some(f) = self.project(&l.frame, columns)
        {
            return Ok(f);
        }
        let frame = self.inner.data_for_interval(start, end, assets, None)?;
        let out = match self.project(&frame, columns) {
            Some(f) => f,
            None => return self.inner.data_for_interval(start, end, assets, columns),
        };
        *last = Some(Last {
            now,
            start,
            end,
            assets: assets.map(<[String]>::to_vec),
            frame,
        });
        Ok(out)
    }

    fn wait_for_latest_data(&self, timeout: i64) -> FrameFuture<'_> {
        self.inner.wait_for_latest_data(timeout)
    }

    fn wait_for_bar(&self, bar: Timestamp, timeout: i64) -> FrameFuture<'_> {
        self.inner.wait_for_bar(bar, timeout)
    }

    fn delay_at(&self, bar: Timestamp) -> Duration {
        self.inner.delay_at(bar)
    }

    fn clock(&self) -> Option<Arc<dyn Clock>> {
        self.inner.clock()
    }

    fn features(&self) -> Option<Vec<String>> {
        self.inner.features()
    }

    fn unclocked(&self) -> Result<Arc<dyn MarketData>> {
        self.inner.unclocked()
    }

    fn on_clock(
        &self,
        clock: Arc<dyn Clock>,
        replay: &ReplaySettings,
    ) -> Result<Arc<dyn MarketData>> {
        self.inner.on_clock(clock, replay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Historical, SyntheticBars, SyntheticParams};

    /// Counts the inner view's queries.
    #[derive(Debug)]
    struct Counted(Historical, std::sync::atomic::AtomicUsize);

    impl MarketData for Counted {
        fn describe(&self) -> String {
            "counted".into()
        }
        fn data_for_interval(
            &self,
            start: Timestamp,
            end: Timestamp,
            assets: Option<&[String]>,
            columns: Option<&[String]>,
        ) -> Result<Frame> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.data_for_interval(start, end, assets, columns)
        }
    }

    #[test]
    fn one_inner_query_serves_every_column_subset_of_an_interval() {
        let params = SyntheticParams {
            assets: 3,
            bars: 50,
            ..SyntheticParams::default()
        };
        let source = SyntheticBars::new(params).expect("valid parameters");
        let inner = Arc::new(Counted(
            Historical::new(Arc::new(source)),
            Default::default(),
        ));
        let shared = SharedQuery::new(inner.clone());
        let all = inner
            .0
            .data_for_interval(Timestamp(i64::MIN), Timestamp(i64::MAX), None, None)
            .expect("all rows");
        let (a, b) = (Timestamp(all.end_ts()[10]), Timestamp(all.end_ts()[20]));
        let cols = vec![all.features()[0].clone()];
        let one = shared
            .data_for_interval(a, b, None, Some(&cols))
            .expect("one column");
        let every = shared.data_for_interval(a, b, None, None).expect("all");
        let count = || inner.1.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(count(), 1, "the second read of the interval is shared");
        assert_eq!(one.features(), &cols[..]);
        assert_eq!(one.n_rows(), 11);
        assert!(every.select_features(&cols).expect("a column").bit_eq(&one));
        // Another interval asks again; a missing column gets the inner view's error.
        let _ = shared
            .data_for_interval(a, Timestamp(all.end_ts()[21]), None, None)
            .expect("another interval");
        assert_eq!(count(), 2);
        let missing = vec!["nope".to_string()];
        assert!(
            shared
                .data_for_interval(a, b, None, Some(&missing))
                .is_err()
        );
    }

    #[test]
    fn a_subset_asked_again_shares_its_names_and_the_memo_stays_bounded() {
        let params = SyntheticParams {
            assets: 2,
            bars: 20,
            ..SyntheticParams::default()
        };
        let source = SyntheticBars::new(params).expect("valid parameters");
        let shared = SharedQuery::new(Arc::new(Historical::new(Arc::new(source))));
        let (a, b) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        let features = shared
            .data_for_interval(a, b, None, None)
            .expect("all")
            .features()
            .to_vec();
        assert!(features.len() >= 2, "{features:?}");
        let pair = vec![features[1].clone(), features[0].clone()];
        let first = shared
            .data_for_interval(a, b, None, Some(&pair))
            .expect("2");
        let again = shared
            .data_for_interval(a, b, None, Some(&pair))
            .expect("2");
        assert_eq!(first.features(), &pair[..]);
        // The same names, not a copy: the second answer allocated none.
        assert!(Arc::ptr_eq(
            first.features_shared(),
            again.features_shared()
        ));
        // Ever new subsets (every ordered choice of one to three columns, twice)
        // keep at most MAX_SUBSETS names.
        let n = features.len();
        let mut subsets: Vec<Vec<String>> = Vec::new();
        for i in 0..n {
            subsets.push(vec![features[i].clone()]);
            for j in (0..n).filter(|&j| j != i) {
                subsets.push(vec![features[i].clone(), features[j].clone()]);
                for k in (0..n).filter(|&k| k != i && k != j) {
                    subsets.push([i, j, k].map(|x| features[x].clone()).to_vec());
                }
            }
        }
        assert!(subsets.len() > MAX_SUBSETS, "{} subsets", subsets.len());
        for cols in subsets.iter().chain(&subsets) {
            let f = shared
                .data_for_interval(a, b, None, Some(cols))
                .expect("subset");
            assert_eq!(f.features(), &cols[..]);
        }
        let kept = shared.names.lock().map(|n| n.len()).unwrap_or(usize::MAX);
        assert!(kept <= MAX_SUBSETS, "{kept}");
    }
}
