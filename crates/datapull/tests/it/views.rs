//! The MarketData views: historical intervals, replay on a simulated clock (no row
//! before its knowledge time), waiting for the current bar, timeouts, stitching,
//! and building views from config.

use std::sync::Arc;

use kf_config::Config;
use kf_datapull::{
    Clock, DataError, DataTypes, Historical, MarketData, Query, ReplaySettings, Replayed,
    SimulatedClock, Stitched, SyntheticBars, SyntheticParams,
};
use kf_frame::{Duration, Frame, Timestamp};

const MIN: i64 = 60_000_000_000;
const SEC: i64 = 1_000_000_000;

/// 3 assets x 30 one-minute bars known 5 s after their end, bar 10 arriving late
/// (known 3 minutes after its end).
fn data() -> Frame {
    let f = SyntheticBars::new(SyntheticParams {
        assets: 3,
        bars: 30,
        delay: "5s".into(),
        ..Default::default()
    })
    .unwrap()
    .generate()
    .unwrap();
    let mut known = f.knowledge_ts().to_vec();
    known[10] = f.end_ts()[10] + 3 * MIN;
    let feats = (0..f.n_features())
        .map(|i| (f.features()[i].clone(), f.feature_at(i).values().to_vec()))
        .collect();
    Frame::new(f.end_ts().to_vec(), known, f.assets().to_vec(), feats).unwrap()
}

#[derive(Debug)]
struct InMemory(Frame);

impl kf_datapull::Source for InMemory {
    fn describe(&self) -> String {
        "in memory".into()
    }
    fn load(&self, q: &Query) -> kf_datapull::Result<Frame> {
        q.apply(&self.0)
    }
}

fn replayed(f: &Frame, clock: Arc<SimulatedClock>, delay: i64) -> Replayed {
    let hist = Historical::new(Arc::new(InMemory(f.clone())));
    Replayed::new(
        hist,
        clock,
        ReplaySettings {
            delay: Duration(delay),
            freq: Duration(MIN),
            offset: Duration(0),
            poll: Duration(SEC),
        },
    )
    .unwrap()
}

#[test]
fn historical_intervals_are_closed_and_shaped_as_asked() {
    let f = data();
    let h = Historical::new(Arc::new(InMemory(f.clone())));
    let t = f.end_ts();
    let assets = vec!["A0002".to_string(), "A0000".to_string()];
    let cols = vec!["close".to_string()];
    let part = h
        .data_for_interval(Timestamp(t[3]), Timestamp(t[7]), Some(&assets), Some(&cols))
        .unwrap();
    assert_eq!(part.end_ts(), &t[3..=7]);
    assert_eq!(part.assets(), assets);
    assert_eq!(
        part.value("close", "A0002", 0).unwrap(),
        f.value("close", "A0002", 3).unwrap()
    );
    let e = h
        .data_for_interval(
            Timestamp(t[0]),
            Timestamp(t[1]),
            None,
            Some(&["vwap".to_string()]),
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("unknown column `vwap`"), "{e}");
}

#[test]
fn replay_releases_no_row_before_its_knowledge_time() {
    let f = data();
    let t = f.end_ts().to_vec();
    let clock = Arc::new(SimulatedClock::new(t[0] - MIN));
    let extra = 2 * SEC;
    let view = replayed(&f, Arc::clone(&clock), extra);
    // Step the clock second by second over the whole day and check at every step
    // that exactly the rows with knowledge_ts + delay <= now are visible.
    let mut now = t[0] - MIN;
    let mut seen_late_bar_at = None;
    while now <= t[29] + 4 * MIN {
        clock.set(now);
        let got = view
            .data_for_interval(Timestamp::MIN, Timestamp::MAX, None, None)
            .unwrap();
        let expected: Vec<i64> = (0..30)
            .filter(|&r| f.knowledge_ts()[r] + extra <= now)
            .map(|r| t[r])
            .collect();
        assert_eq!(got.end_ts(), expected, "at {now}");
        assert!(got.knowledge_ts().iter().all(|&k| k + extra <= now));
        if seen_late_bar_at.is_none() && got.end_ts().contains(&t[10]) {
            seen_late_bar_at = Some(now);
        }
        now += SEC;
    }
    // The late bar appears exactly when it became known (3 min + 2 s after its end).
    assert_eq!(seen_late_bar_at, Some(t[10] + 3 * MIN + extra));
}

#[test]
fn waiting_for_the_current_bar_resolves_at_its_knowledge_time() {
    let f = data();
    let t = f.end_ts().to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // At bar 4's end the bar is not known yet (5 s delay + 1 s extra): the wait
    // moves the simulated clock to 6 s after the end and returns that one bar.
    let clock = Arc::new(SimulatedClock::new(t[4]));
    let view = replayed(&f, Arc::clone(&clock), SEC);
    let bar = rt.block_on(view.wait_for_latest_data(30 * SEC)).unwrap();
    assert_eq!(bar.end_ts(), [t[4]]);
    assert_eq!(clock.now(), t[4] + 6 * SEC);
    // Bar 10 arrives 3 min late: waiting 30 s for it times out with a clear error.
    clock.set(t[10]);
    let e = rt
        .block_on(view.wait_for_latest_data(30 * SEC))
        .unwrap_err();
    assert!(matches!(e, DataError::Timeout { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("no bar ending at") && msg.contains("within 30 s"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "latest available bar ends at {}",
            kf_frame::Timestamp(t[9])
        )),
        "{msg}"
    );
    // After the end of the data, the wait polls and then times out.
    clock.set(t[29] + 10 * MIN);
    assert!(rt.block_on(view.wait_for_latest_data(5 * SEC)).is_err());
    // A historical view has no clock.
    let h = Historical::new(Arc::new(InMemory(f.clone())));
    assert!(
        rt.block_on(h.wait_for_latest_data(SEC))
            .unwrap_err()
            .to_string()
            .contains("has no clock")
    );
}

#[test]
fn stitched_views_answer_across_the_split() {
    let f = data();
    let t = f.end_ts().to_vec();
    let clock = Arc::new(SimulatedClock::new(t[20] + 10 * SEC));
    // History from one source up to bar 14, the replay of another after it.
    let before = Historical::new(Arc::new(InMemory(f.clone())));
    let after = replayed(&f, Arc::clone(&clock), 0);
    let s = Stitched::new(Arc::new(before), Arc::new(after), Timestamp(t[14]));
    let all = s
        .data_for_interval(Timestamp(t[0]), Timestamp(t[29]), None, None)
        .unwrap();
    // Bars 0..=14 from history; 15..=20 from the replay (known by now); none later.
    assert_eq!(all.end_ts(), &t[0..=20]);
    let whole = Query::between(t[0], t[20]).apply(&f).unwrap();
    assert!(all.bit_eq(&whole), "{:?}", all.first_difference(&whole));
    assert!(s.clock().is_some());
}

#[test]
fn views_are_built_from_config() {
    let text = r#"
[md]
type = "stitched"
split = "2024-01-02 09:40"
tz = "America/New_York"
before = { type = "synthetic", assets = 2, bars = 30 }

[md.after]
type = "replayed"
delay = "1s"
source = { type = "synthetic", assets = 2, bars = 30 }
clock = { type = "simulated", start = "2024-01-02 09:45", tz = "America/New_York" }
"#;
    let c = Config::from_toml_str(text, "v.toml").unwrap();
    let md = DataTypes::default()
        .view(&c.section("md").unwrap())
        .unwrap();
    c.check_all_used().unwrap();
    let f = md
        .data_for_interval(Timestamp::MIN, Timestamp::MAX, None, None)
        .unwrap();
    // Synthetic bars end 09:31, 09:32, ...; the replay's clock is at 09:45, and a
    // bar is known 1 s after its end, so bars up to 09:44 are visible: 14 bars.
    assert_eq!(f.n_rows(), 14);
    let bad = "[md]\ntype = \"replayed\"\nsource = { type = \"synthetic\" }\nclock = { type = \"sundial\" }\n";
    let c = Config::from_toml_str(bad, "b.toml").unwrap();
    let e = DataTypes::default()
        .view(&c.section("md").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("b.toml:4: md.clock.type: unknown clock \"sundial\""),
        "{e}"
    );
}

/// A view of a user's that implements only what it must.
#[derive(Debug)]
struct Bare(Frame);

impl MarketData for Bare {
    fn describe(&self) -> String {
        "a bare view".into()
    }
    fn data_for_interval(
        &self,
        start: Timestamp,
        end: Timestamp,
        _: Option<&[String]>,
        _: Option<&[String]>,
    ) -> kf_datapull::Result<Frame> {
        Ok(self.0.slice_time(start.nanos(), end.nanos()))
    }
}

#[test]
fn views_go_onto_a_runs_clock_keeping_their_own_settings() {
    let f = data();
    let t = f.end_ts().to_vec();
    let settings = ReplaySettings {
        delay: Duration(0),
        freq: Duration(MIN),
        offset: Duration(0),
        poll: Duration(SEC),
    };
    // A historical view on a clock releases rows by knowledge time (5 s after the
    // bar's end here; row 10 three minutes late).
    let h = Historical::new(Arc::new(InMemory(f.clone())));
    let clock = Arc::new(SimulatedClock::new(t[4] + 5 * SEC));
    let on = h.on_clock(clock.clone(), &settings).unwrap();
    let seen = on
        .data_for_interval(Timestamp::MIN, Timestamp::MAX, None, None)
        .unwrap();
    assert_eq!(seen.end_ts(), &t[..5]);
    // A replayed view moved to another clock keeps its own delay (2 s) and adds the
    // run's (1 s): at 5 s + 2 s + 1 s after bar 4's end, bar 4 is known; a moment
    // earlier it is not.
    let r = replayed(&f, Arc::new(SimulatedClock::new(t[29])), 2 * SEC);
    let clock = Arc::new(SimulatedClock::new(t[4] + 8 * SEC - 1));
    let later = ReplaySettings {
        delay: Duration(SEC),
        ..settings
    };
    let moved = r.on_clock(clock.clone(), &later).unwrap();
    let n = |v: &Arc<dyn MarketData>| {
        v.data_for_interval(Timestamp::MIN, Timestamp::MAX, None, None)
            .unwrap()
            .n_rows()
    };
    assert_eq!(n(&moved), 4);
    clock.set(t[4] + 8 * SEC);
    assert_eq!(n(&moved), 5);
    // Its unclocked form is all of its data, whatever its clock says.
    assert_eq!(n(&r.unclocked().unwrap()), 30);
    // A stitched view moves both parts.
    let s = Stitched::new(
        Arc::new(Historical::new(Arc::new(InMemory(f.clone())))),
        Arc::new(replayed(&f, Arc::new(SimulatedClock::new(t[0])), 0)),
        Timestamp(t[14]),
    );
    assert_eq!(n(&s.unclocked().unwrap()), 30);
    let clock = Arc::new(SimulatedClock::new(t[19] + 4 * SEC));
    let s_on = s.on_clock(clock.clone(), &settings).unwrap();
    // Both parts follow the new clock: 4 s after bar 19's end, bar 19 is not known
    // yet (15 bars from the first part, 4 from the second); a second later it is.
    assert_eq!(n(&s_on), 19);
    clock.set(t[19] + 5 * SEC);
    assert_eq!(n(&s_on), 20);
}

#[test]
fn a_view_that_cannot_go_on_a_clock_says_so() {
    let v = Bare(data());
    let clock = Arc::new(SimulatedClock::new(0));
    let settings = ReplaySettings {
        delay: Duration(0),
        freq: Duration(MIN),
        offset: Duration(0),
        poll: Duration(SEC),
    };
    let e = v.on_clock(clock, &settings).unwrap_err().to_string();
    assert_eq!(
        e,
        "a bare view cannot be replayed on another clock (implement `MarketData::on_clock`)"
    );
    let e = v.unclocked().unwrap_err().to_string();
    assert_eq!(
        e,
        "a bare view cannot give its data without its clock (implement `MarketData::unclocked`)"
    );
}

#[test]
fn a_view_named_where_a_source_is_needed_is_refused() {
    let c = Config::from_toml_str("[md]\ntype = \"stitched\"\n", "s.toml").unwrap();
    let e = DataTypes::default()
        .source(&c.section("md").unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "s.toml:2: md.type: `stitched` is a view, and a source is needed here: name a source \
         (csv, hdf5, parquet, postgres, synthetic, ticks)"
    );
}

#[test]
fn with_a_delay_longer_than_a_bar_the_wait_resolves_at_the_bar_s_knowledge_time() {
    // Known 5 s after their end, released 3 minutes after that: each bar is known
    // only after two more bars have ended. Waiting for bar 4 from its end must jump
    // to its knowledge time (end + 5 s + 3 min), not chase the newest bar, which is
    // always further ahead, until the timeout.
    let f = data();
    let t = f.end_ts().to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let clock = Arc::new(SimulatedClock::new(t[4]));
    let view = replayed(&f, Arc::clone(&clock), 3 * MIN);
    let bar = rt.block_on(view.wait_for_latest_data(3_600 * SEC)).unwrap();
    assert_eq!(bar.end_ts(), [t[4]]);
    assert_eq!(clock.now(), t[4] + 5 * SEC + 3 * MIN);
    // The same for a named bar, asked for when the clock is already past its end.
    clock.set(t[6] + 30 * SEC);
    let bar = rt
        .block_on(view.wait_for_bar(Timestamp(t[6]), 3_600 * SEC))
        .unwrap();
    assert_eq!(bar.end_ts(), [t[6]]);
    assert_eq!(clock.now(), t[6] + 5 * SEC + 3 * MIN);
    // The view's delay is what a research loop must add to each row.
    assert_eq!(view.delay_at(Timestamp(t[6])), Duration(3 * MIN));
}
