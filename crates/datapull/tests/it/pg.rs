//! The PostgreSQL bars table (feature `postgres`), against a real server: the one
//! `scripts/postgres-up` starts (`.ci/run` does), or `KF_PG_URL`.

#![cfg(feature = "postgres")]

use kf_datapull::pg::{PgParams, PgSettings, PgSource, PgWriter};
use kf_datapull::{Feed, GrowingSource, Query, Source};

const MIN: i64 = 60_000_000_000;
const T0: i64 = 1_704_205_800_000_000_000;

fn url() -> String {
    std::env::var("KF_PG_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:54329/postgres".into())
}

fn settings(table: &str) -> PgSettings {
    let params = PgParams {
        url: url(),
        table: table.into(),
        assets: vec!["A".into(), "B".into()],
        ..PgParams::default()
    };
    PgSettings::new(params, std::path::Path::new(".")).unwrap()
}

/// A fresh table, or a failure that says how to start the server.
fn table(name: &str) -> (PgSettings, PgWriter) {
    let s = settings(&format!("{name}_{}", std::process::id()));
    let mut w = PgWriter::connect(s.clone()).unwrap_or_else(|e| {
        panic!("{e}\nstart the test server with `scripts/postgres-up` (or set KF_PG_URL)")
    });
    w.ensure_table(true).unwrap();
    (s, w)
}

#[test]
fn the_database_stamps_knowledge_time_and_refuses_dated_rows_and_changes() {
    let (s, mut w) = table("kf_it_stamp");
    let before = w.server_now().unwrap();
    w.write(&[
        (T0 + MIN, "A", &[10.0, 100.0]),
        (T0 + MIN, "B", &[20.0, 200.0]),
    ])
    .unwrap();
    let after = w.server_now().unwrap();
    let mut client = s.connect().unwrap();
    // A writer that dates its row is refused, naming the rule.
    let err = client
        .execute(
            &format!(
                "INSERT INTO \"{}\" (end_ts, asset, knowledge_ts, close, volume) VALUES \
                 (to_timestamp(0), 'A', to_timestamp(0), 1, 1)",
                s.params.table
            ),
            &[],
        )
        .unwrap_err();
    let msg = err
        .as_db_error()
        .map(|d| d.constraint().unwrap_or("").to_string());
    assert_eq!(
        msg.as_deref(),
        Some(format!("{}_stamped", s.params.table).as_str())
    );
    let f = PgSource::new(s.clone()).load(&Query::all()).unwrap();
    assert_eq!(f.end_ts(), &[T0 + MIN]);
    let k = f.knowledge_ts();
    assert!(
        k[0] >= before && k[0] <= after,
        "stamped by the server as it wrote"
    );
    // Rows are never changed: an update is refused, naming the rule.
    let err = client
        .execute(&format!("UPDATE \"{}\" SET close = 0", s.params.table), &[])
        .unwrap_err();
    let msg = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains("insert a revision"), "{msg}");
}

#[test]
fn reads_push_time_asset_column_and_as_of_down_and_see_revisions() {
    let (s, mut w) = table("kf_it_read");
    w.write(&[
        (T0 + MIN, "A", &[10.0, 100.0]),
        (T0 + MIN, "B", &[20.0, 200.0]),
        (T0 + 2 * MIN, "A", &[11.0, 110.0]),
    ])
    .unwrap();
    let first = w.server_now().unwrap();
    // A revision of A's first bar, committed later.
    std::thread::sleep(std::time::Duration::from_millis(5));
    w.write(&[(T0 + MIN, "A", &[10.5, 100.0])]).unwrap();
    let src = PgSource::new(s.clone());
    let now = src.load(&Query::all()).unwrap();
    assert_eq!(now.feature("close").unwrap().values()[0], 10.5);
    let then = src.load(&Query::all().as_of(first)).unwrap();
    assert_eq!(then.feature("close").unwrap().values()[0], 10.0);
    let one = src
        .load(
            &Query::between(T0 + 2 * MIN, T0 + 2 * MIN)
                .assets(&["A"])
                .columns(&["volume"]),
        )
        .unwrap();
    assert_eq!(one.end_ts(), &[T0 + 2 * MIN]);
    assert_eq!(one.features(), &["volume".to_string()]);
    assert_eq!(one.feature("volume").unwrap().values(), &[110.0]);
    let err = src
        .load(&Query::all().columns(&["open"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("open"), "{err}");
}

#[test]
fn a_feed_brings_each_committed_row_once_and_reports_the_server_clock() {
    let (s, mut w) = table("kf_it_feed");
    let into = GrowingSource::new(
        "t",
        vec!["A".into(), "B".into()],
        s.params.columns.clone(),
        MIN,
    )
    .unwrap();
    let mut feed = kf_datapull::pg::PgFeed::new(s.clone()).unwrap();
    let t0 = feed.sync(&into).unwrap();
    assert_eq!(into.counts().0, 0);
    w.write(&[(T0 + MIN, "A", &[1.0, 1.0]), (T0 + MIN, "B", &[2.0, 2.0])])
        .unwrap();
    // The notification wakes the wait well before its 1 s poll.
    let started = std::time::Instant::now();
    feed.wait(t0 + 10_000_000_000).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    let t1 = feed.sync(&into).unwrap();
    assert!(t1 >= t0);
    assert_eq!(into.counts().0, 2);
    let arrived = into.arrival(T0 + MIN).unwrap();
    assert!(arrived >= t0 && arrived <= t1);
    // Nothing is read twice.
    feed.sync(&into).unwrap();
    assert_eq!(into.counts().0, 2);
}

#[test]
fn a_dropped_connection_is_said_and_reopened_and_no_row_is_lost_or_repeated() {
    let (s, mut w) = table("kf_it_drop");
    let into = GrowingSource::new(
        "t",
        vec!["A".into(), "B".into()],
        s.params.columns.clone(),
        MIN,
    )
    .unwrap();
    let mut feed = kf_datapull::pg::PgFeed::new(s.clone()).unwrap();
    w.write(&[(T0 + MIN, "A", &[1.0, 1.0])]).unwrap();
    feed.sync(&into).unwrap();
    assert_eq!(into.counts().0, 1);
    // The server drops both of the feed's connections (as a proxy or a restart
    // would), and rows come meanwhile.
    let mut admin = s.connect().unwrap();
    let dropped = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&format!("kaizenflow feed {}", s.params.table)],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(dropped, 2);
    w.write(&[
        (T0 + MIN, "B", &[2.0, 2.0]),
        (T0 + 2 * MIN, "A", &[3.0, 3.0]),
    ])
    .unwrap();
    feed.wait(i64::MAX).unwrap();
    feed.sync(&into).unwrap();
    assert_eq!(into.counts().0, 3, "each row once");
    let notes = feed.take_notes().join("\n");
    assert!(notes.contains("lost the connection"), "{notes}");
}

#[test]
fn a_feed_that_cannot_reach_its_server_gives_up_after_reconnect_and_says_so() {
    let params = PgParams {
        url: "postgresql://postgres@127.0.0.1:1/postgres".into(),
        reconnect: "300ms".into(),
        ..PgParams::default()
    };
    let s = PgSettings::new(params, std::path::Path::new(".")).unwrap();
    let into = GrowingSource::new("t", vec!["A".into()], s.params.columns.clone(), MIN).unwrap();
    let mut feed = kf_datapull::pg::PgFeed::new(s).unwrap();
    let started = std::time::Instant::now();
    let err = feed.sync(&into).unwrap_err().to_string();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(
        err.contains("gave up reaching the database") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("run the same command again"), "{err}");
}

#[test]
fn a_config_never_holds_a_password_and_messages_never_show_one() {
    let mut p = PgParams {
        url: "postgresql://kf:secret@127.0.0.1:1/db".into(),
        ..PgParams::default()
    };
    let err = PgSettings::new(p.clone(), std::path::Path::new(".")).unwrap_err();
    assert_eq!(err.0, "url");
    assert!(
        err.1.contains("password_env") && !err.1.contains("secret"),
        "{}",
        err.1
    );
    p.url = "postgresql://kf@127.0.0.1:1/db".into();
    p.password_env = "KF_TEST_NO_SUCH_VARIABLE".into();
    let err = PgSettings::new(p.clone(), std::path::Path::new(".")).unwrap_err();
    assert_eq!(err.0, "password_env");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    p.password_env = String::new();
    p.password_file = "pw".into();
    let s = PgSettings::new(p, dir.path()).unwrap();
    // Port 1 refuses: the error names the server, never the password.
    let Err(err) = s.connect() else {
        panic!("port 1 took a connection")
    };
    let err = err.to_string();
    assert!(
        err.contains("127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!format!("{s:?}").contains("hunter2"));
    let p = PgParams {
        url: url(),
        table: "bars; drop table x".into(),
        ..PgParams::default()
    };
    let err = PgSettings::new(p, std::path::Path::new(".")).unwrap_err();
    assert_eq!(err.0, "table");
}
