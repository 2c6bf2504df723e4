//! Live systems on a scripted feed (rows committed at times of the test's choosing,
//! with the faults a real feed has: a late row, a bar that never comes, a
//! revision after use, bars out of order, a feed that fails): the live run ends
//! with exactly the records of a replay of the rows it was fed, decided in the same
//! knowledge terms, however often it is stopped and resumed.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{config, fingerprint, write_days};
use kf_config::Config;
use kf_datapull::{Arrived, DataError, Feed, GrowingSource};
use kf_system::durable::{Recorded, Step, first_difference, recorded};
use kf_system::{Registries, System, SystemRun};

const MIN: i64 = 60_000_000_000;
const SEC: i64 = 1_000_000_000;
/// 2024-01-02 14:30 UTC.
const T0: i64 = 1_704_205_800 * SEC;
const BARS: i64 = 60;
const ASSETS: [&str; 4] = ["A0", "A1", "A2", "A3"];

/// One commit: its time on the feed's clock, and its rows.
#[derive(Clone, Debug)]
struct Commit {
    at: i64,
    rows: Vec<(i64, &'static str, f64)>,
}

fn price(bar: i64, asset: usize) -> f64 {
    let x = (bar as u64) * 4 + asset as u64;
    let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    100.0 + asset as f64 * 10.0 + (h % 2001) as f64 / 400.0
}

/// Bars ending `T0 + k min`, each committed `lag` after its end, with faults: bar
/// 17 never comes; A2's row of bar 23 comes 3 min late; bar 31 is revised 2 min
/// after it was used; bars 40 and 41 come in the other order.
fn script(lag: i64) -> Vec<Commit> {
    let mut out = Vec::new();
    for k in 1..=BARS {
        if k == 17 {
            continue;
        }
        let end = T0 + k * MIN;
        let mut rows: Vec<_> = ASSETS
            .iter()
            .enumerate()
            .filter(|&(a, _)| !(k == 23 && a == 2))
            .map(|(a, &name)| (end, name, price(k, a)))
            .collect();
        let at = match k {
            40 => end + MIN + lag + SEC,
            _ => end + lag,
        };
        out.push(Commit {
            at,
            rows: std::mem::take(&mut rows),
        });
        if k == 23 {
            out.push(Commit {
                at: end + 3 * MIN,
                rows: vec![(end, "A2", price(k, 2))],
            });
        }
        if k == 31 {
            out.push(Commit {
                at: end + 6 * MIN,
                rows: vec![(end, "A1", price(k, 1) * 1.5)],
            });
        }
    }
    out.sort_by_key(|c| c.at);
    out
}

/// A feed playing a script on its own clock: a sync delivers the commits made by
/// then, a wait moves the clock to the next commit or `until`. It can be told to
/// fail at a sync, as a lost database would.
struct Scripted {
    commits: Vec<Commit>,
    delivered: usize,
    now: i64,
    syncs: u64,
    fail_at: Option<u64>,
}

impl Scripted {
    fn new(commits: Vec<Commit>, now: i64) -> Scripted {
        Scripted {
            commits,
            delivered: 0,
            now,
            syncs: 0,
            fail_at: None,
        }
    }
}

fn arrived(c: &Commit) -> Arrived {
    Arrived {
        end: c.rows.iter().map(|r| r.0).collect(),
        known: vec![c.at; c.rows.len()],
        asset: c.rows.iter().map(|r| r.1.to_string()).collect(),
        values: c.rows.iter().flat_map(|r| [r.2, 100.0]).collect(),
        committed: Vec::new(),
    }
}

impl Feed for Scripted {
    fn describe(&self) -> String {
        "a scripted feed".into()
    }
    fn sync(&mut self, into: &GrowingSource) -> kf_datapull::Result<i64> {
        self.syncs += 1;
        if self.fail_at == Some(self.syncs) {
            return Err(DataError::Query {
                what: "the scripted feed lost its database".into(),
            });
        }
        while self.delivered < self.commits.len() && self.commits[self.delivered].at <= self.now {
            into.append(&arrived(&self.commits[self.delivered]))?;
            self.delivered += 1;
        }
        Ok(self.now)
    }
    fn wait(&mut self, until: i64) -> kf_datapull::Result<()> {
        let next = self
            .commits
            .get(self.delivered)
            .map_or(until, |c| c.at.min(until));
        self.now = self.now.max(next).max(self.now + 1);
        Ok(())
    }
}

fn source() -> Arc<GrowingSource> {
    Arc::new(
        GrowingSource::new(
            "scripted",
            ASSETS.iter().map(|a| a.to_string()).collect(),
            vec!["close".into(), "volume".into()],
            MIN,
        )
        .unwrap(),
    )
}

fn live_config(dir: &Path, missing: &str) -> Config {
    let csv = dir.join("unused.csv");
    write_days(&csv, 1);
    let mut c = config(
        &csv,
        &format!(
            "[system.processor]\ntype = \"cross_sectional\"\n[system.clock]\nmissing = \
             \"{missing}\"\ngrace = \"2s\"\ntimeout = \"10min\"\n"
        ),
    );
    c.set("system.start=\"2024-01-02 14:35\"").unwrap();
    c.set("system.end=\"2024-01-02 15:30\"").unwrap();
    c
}

/// The live run in `dir`, stopped by feed failures at the given syncs (one
/// process after another, each with a feed that redelivers everything committed
/// by its start), then to its end.
fn live(
    types: &Registries,
    config: &Config,
    dir: &Path,
    commits: &[Commit],
    fail_at: &[u64],
) -> (SystemRun, Vec<Recorded>, usize) {
    let mut seen = Vec::new();
    let mut now = T0;
    let mut stops = 0;
    let mut fails = fail_at.iter().copied();
    loop {
        let mut system = System::build_live(types, config, None, source()).unwrap();
        let mut feed = Scripted::new(commits.to_vec(), now);
        feed.fail_at = fails.next();
        let result = system.run_live(dir, &mut feed, &mut |r| seen.push(r));
        now = feed.now;
        match result {
            Ok((run, _)) => return (run, seen, stops),
            Err(e) => {
                assert!(e.to_string().contains("lost its database"), "{e}");
                stops += 1;
            }
        }
    }
}

/// A replay over every row of `commits`, recorded in `dir`.
fn replay(types: &Registries, config: &Config, dir: &Path, commits: &[Commit]) -> SystemRun {
    let all = source();
    for c in commits {
        all.append(&arrived(c)).unwrap();
    }
    let mut system = System::build_live(types, config, None, all).unwrap();
    system.replay_live(dir).unwrap().0
}

fn steps(dir: &Path) -> Vec<Step> {
    recorded(dir).unwrap()
}

#[test]
fn a_live_run_decides_as_a_replay_of_its_rows_through_every_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let config = live_config(tmp.path(), "skip");
    let types = Registries::default();
    let commits = script(2 * SEC);
    let (run, seen, _) = live(&types, &config, &tmp.path().join("live"), &commits, &[]);
    let again = replay(&types, &config, &tmp.path().join("replay"), &commits);
    assert_eq!(fingerprint(&run), fingerprint(&again));
    let (a, b) = (
        steps(&tmp.path().join("live")),
        steps(&tmp.path().join("replay")),
    );
    assert_eq!(a.len(), 12, "every decision of 14:35..15:30 every 5 min");
    assert_eq!(first_difference(&a, &b), None);
    // Bar 17 (14:47) never came: the 14:50 decision went without it.
    assert_eq!(run.audit.missing_bars, 1);
    // Each decision once, in order, and observed once.
    let ts: Vec<i64> = seen.iter().map(|r| r.ts).collect();
    assert_eq!(
        ts,
        (0..12).map(|k| T0 + (5 + 5 * k) * MIN).collect::<Vec<_>>()
    );
    // The decision of 14:50 gave bar 17 up at bar 18's arrival plus the grace
    // (14:48:04), not at its timeout, and read as of its last bar's commit.
    let d = &seen[3];
    assert_eq!(d.ts, T0 + 20 * MIN);
    assert_eq!(
        d.cut,
        T0 + 20 * MIN + 2 * SEC,
        "bars 18..20 came, the last at 14:50:02"
    );
    let before = &seen[2];
    assert_eq!(before.ts, T0 + 15 * MIN);
    assert_eq!(before.cut, T0 + 15 * MIN + 2 * SEC);
    // Bars 40 and 41 came the other way round, 1 s apart (within the grace): the
    // 15:10 decision waited for bar 40 and read as of its commit.
    assert_eq!(seen[7].ts, T0 + 40 * MIN);
    assert_eq!(seen[7].cut, T0 + 41 * MIN + 3 * SEC);
    // ... and the fill rule saw each decision after its bar's data: a decision is
    // taken at its cut-off (the last bar's commit), never before its grid time.
    for r in &seen {
        assert_eq!(r.decided, r.ts.max(r.cut));
    }
    assert!(run.audit.passed(), "{:?}", run.audit);
}

#[test]
fn stopped_and_resumed_anywhere_it_ends_with_the_uninterrupted_records() {
    let tmp = tempfile::tempdir().unwrap();
    let config = live_config(tmp.path(), "skip");
    let types = Registries::default();
    let commits = script(2 * SEC);
    let (whole, _, _) = live(&types, &config, &tmp.path().join("whole"), &commits, &[]);
    // Five failures at pseudo-random syncs of successive processes.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let fails: Vec<u64> = (0..5)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + x % 9
        })
        .collect();
    let dir = tmp.path().join("cut");
    let (cut, seen, stops) = live(&types, &config, &dir, &commits, &fails);
    assert_eq!(stops, 5);
    assert_eq!(fingerprint(&cut), fingerprint(&whole));
    assert_eq!(
        first_difference(&steps(&dir), &steps(&tmp.path().join("whole"))),
        None
    );
    // Every decision recorded once, across the processes.
    let ts: Vec<i64> = seen.iter().map(|r| r.ts).collect();
    let mut once = ts.clone();
    once.dedup();
    assert_eq!(ts, once);
    assert_eq!(steps(&dir).len(), 12);
}

#[test]
fn a_feed_ahead_of_its_bars_decides_at_grid_time_alike() {
    // Rows committed before their bar ends (a replayed feed at speed): decisions
    // are taken at their grid time and read as of the last commit.
    let tmp = tempfile::tempdir().unwrap();
    let config = live_config(tmp.path(), "skip");
    let types = Registries::default();
    let commits: Vec<Commit> = script(2 * SEC)
        .into_iter()
        .map(|c| Commit {
            at: T0 + (c.at - T0) / 60,
            rows: c.rows,
        })
        .collect();
    let (run, seen, _) = live(&types, &config, &tmp.path().join("live"), &commits, &[]);
    let again = replay(&types, &config, &tmp.path().join("replay"), &commits);
    assert_eq!(fingerprint(&run), fingerprint(&again));
    assert!(seen.iter().all(|r| r.decided == r.ts));
    assert_eq!(run.audit.missing_bars, 1);
}

#[test]
fn under_stop_a_missing_bar_stops_the_run_and_a_late_one_resumes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = live_config(tmp.path(), "stop");
    let types = Registries::default();
    let mut commits = script(2 * SEC);
    let dir = tmp.path().join("live");
    let mut system = System::build_live(&types, &config, None, source()).unwrap();
    let mut feed = Scripted::new(commits.clone(), T0);
    let err = system
        .run_live(&dir, &mut feed, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2024-01-02T14:47:00Z") && err.contains("missing = \"stop\""),
        "{err}"
    );
    assert_eq!(
        steps(&dir).len(),
        3,
        "the decisions before the gap are kept"
    );
    // The bar comes after all, 20 min late; the same call resumes.
    commits.push(Commit {
        at: T0 + 37 * MIN,
        rows: ASSETS
            .iter()
            .enumerate()
            .map(|(a, &n)| (T0 + 17 * MIN, n, price(17, a)))
            .collect(),
    });
    commits.sort_by_key(|c| c.at);
    let mut system = System::build_live(&types, &config, None, source()).unwrap();
    // Restarted once the feed has it (at 15:08).
    assert!(feed.now < T0 + 37 * MIN);
    let mut feed = Scripted::new(commits.clone(), T0 + 38 * MIN);
    let (run, _) = system.run_live(&dir, &mut feed, &mut |_| {}).unwrap();
    let again = replay(&types, &config, &tmp.path().join("replay"), &commits);
    assert_eq!(fingerprint(&run), fingerprint(&again));
    assert_eq!(run.audit.missing_bars, 0);
    // The 14:50 decision was taken when bar 17 came, at 15:07.
    assert_eq!(steps(&dir)[3].bar.decided, T0 + 37 * MIN);
}

#[test]
fn a_live_system_needs_its_session_and_its_price_column() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("unused.csv");
    write_days(&csv, 1);
    let types = Registries::default();
    let no_session = config(&csv, "[system.processor]\ntype = \"cross_sectional\"\n");
    let err = System::build_live(&types, &no_session, None, source())
        .unwrap_err()
        .to_string();
    assert!(err.contains("start and end"), "{err}");
    let mut c = live_config(tmp.path(), "skip");
    c.set("system.price=\"open\"").unwrap();
    let err = System::build_live(&types, &c, None, source())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`open`") && err.contains("close, volume"),
        "{err}"
    );
    let mut c = live_config(tmp.path(), "skip");
    c.set("system.clock.missing=\"wait\"").unwrap();
    let err = System::build_live(&types, &c, None, source())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing") && err.contains("\"skip\""), "{err}");
}
