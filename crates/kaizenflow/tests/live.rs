//! A live system on a real PostgreSQL server (feature `postgres`): a day of real
//! minute bars ingested at speed while `kaizenflow live` trades them, killed with
//! SIGKILL at random instants and started again; once with the database restarted
//! in the middle. Each ends with orders, fills and portfolio files byte-identical
//! to an uninterrupted run's, every decision recorded once, and `reconcile`
//! saying "identical".

#![cfg(feature = "postgres")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{shared_data, text, workspace};
use kf_system::durable::{first_difference, recorded};

const MIN_S: i64 = 60;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaizenflow"));
    c.current_dir(workspace());
    c
}

fn default_port() -> u16 {
    std::env::var("KF_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(54329)
}

/// The live config of the repository, on `table` at `port`.
fn live_config(dir: &Path, port: u16, table: &str) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("configs/live_us_equity_1min_2018.toml"))
        .unwrap()
        .replace("127.0.0.1:54329", &format!("127.0.0.1:{port}"))
        .replace(
            "table = \"us_equity_1min\"",
            &format!("table = \"{table}\""),
        );
    let path = dir.join(format!("{table}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn ingest(to: &Path, start: &str, end: &str, shift_to: &str, speed: &str, fresh: bool) -> Command {
    let mut c = bin();
    c.args([
        "ingest",
        "configs/mock1_system_us_equity_1min_2018.toml",
        "--to",
    ])
    .arg(to)
    .args(["--start", start, "--end", end, "--speed", speed])
    .args(["--shift-to", shift_to]);
    if fresh {
        c.arg("--fresh");
    }
    c
}

fn stamp(secs: i64) -> String {
    format!("{}", kf_frame::Timestamp(secs * 1_000_000_000))
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        c,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn live(config: &Path, session: i64, out: &Path, log: &Path) -> Command {
    let mut c = bin();
    c.arg("live")
        .arg(config)
        .args(["--set", &format!("system.start=\"{}\"", stamp(session))])
        .args([
            "--set",
            &format!("system.end=\"{}\"", stamp(session + 389 * MIN_S)),
        ])
        .arg("--out")
        .arg(out);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    c.stdout(file.try_clone().unwrap()).stderr(file);
    c
}

/// A seeded stream of pauses in `[lo, hi)` ms.
struct Pauses(u64);

impl Pauses {
    fn next(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo))
    }
}

fn seed() -> u64 {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill seed {s}");
    s
}

/// Tomorrow at 13:31 UTC (s since the epoch): the session day's bars moved by
/// whole days (`--shift-to tomorrow`), their time of day kept for Mock1's session
/// hours, and ahead of the wall clock however fast they are fed.
fn session_start() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 + 1) * 86_400 + 13 * 3600 + 31 * MIN_S
}

/// Kills `child` (SIGKILL) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The checks every scenario ends with: the killed run's files equal an
/// uninterrupted run's over the same table, each decision once, reconcile
/// identical.
fn check_against_uninterrupted(config: &Path, session: i64, dir: &Path, tmp: &Path) -> String {
    let whole = tmp.join("whole");
    let mut c = live(config, session, &whole, &tmp.join("whole.log"));
    c.stdout(Stdio::piped());
    let said = run_ok(c);
    for f in ["orders.parquet", "fills.parquet", "portfolio.parquet"] {
        let (a, b) = (
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(whole.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs from the uninterrupted run's");
    }
    let (cut, once) = (recorded(dir).unwrap(), recorded(&whole).unwrap());
    assert_eq!(cut.len(), 390, "every minute of the session decided");
    assert_eq!(
        cut.iter().map(|s| s.bar.ts).collect::<Vec<_>>(),
        (0..390)
            .map(|k| (session + k * MIN_S) * 1_000_000_000)
            .collect::<Vec<_>>()
    );
    assert_eq!(first_difference(&cut, &once), None);
    assert!(
        cut.windows(2).all(|w| w[0].bar.ts < w[1].bar.ts),
        "each decision once, in order"
    );
    // The live log has each decision at most once (a kill between the record and
    // its log line leaves the line out), and the caught-up ones marked late.
    let log = std::fs::read_to_string(dir.join("live.tsv")).unwrap();
    let mut ts: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    let n = ts.len();
    ts.dedup();
    assert_eq!(ts.len(), n, "a decision logged twice");
    assert!(
        log.lines().any(|l| l.ends_with("\ttrue")),
        "no decision caught up late:\n{log}"
    );
    let out = run_ok({
        let mut c = bin();
        c.arg("reconcile").arg(dir);
        c
    });
    assert!(out.starts_with("identical: 390 decisions"), "{out}");
    // The system traded: the comparisons above are of real orders and fills.
    let fills: u64 = said
        .lines()
        .find_map(|l| l.strip_prefix("fills "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(fills > 1000, "{said}");
    said
}

#[test]
fn killed_at_random_bars_while_trading_a_feed_it_ends_as_if_never_killed() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let table = format!("kf_live_kill_{}", std::process::id());
    let config = live_config(tmp.path(), default_port(), &table);
    let session = session_start();
    // The day before, at once (the DAG's history), then the session's day at 26
    // bars a second while the system trades it.
    run_ok(ingest(
        &config,
        "2018-04-19 13:31",
        "2018-04-19 20:00",
        "today",
        "0",
        true,
    ));
    // With a vendor's faults: rows late, twice, revised after use, bars swapped
    // and bars that never come.
    let mut feed = ingest(
        &config,
        "2018-04-20 13:31",
        "2018-04-20 20:00",
        "tomorrow",
        "1560",
        false,
    )
    .args(["--late", "20", "--duplicates", "10", "--revise", "10"])
    .args(["--out-of-order", "5", "--drop-bars", "2", "--seed", "7"])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let dir = tmp.path().join("live");
    let log = tmp.path().join("live.log");
    let mut pauses = Pauses(seed());
    let mut kills = 0;
    let started = Instant::now();
    while kills < 6 {
        let mut child = live(&config, session, &dir, &log).spawn().unwrap();
        std::thread::sleep(pauses.next(300, 1500));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the live run ended ({status}) before kill {kills}: {}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(dir.join("live.tsv"))
                    .unwrap_or_default()
                    .lines()
                    .take(4)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        kill(&mut child);
        kills += 1;
    }
    assert!(
        feed.try_wait().unwrap().is_none(),
        "the feed ended before the sixth kill ({:?}): slow the feed",
        started.elapsed()
    );
    // Down for a second while bars come: the next start catches them up, late.
    std::thread::sleep(Duration::from_secs(1));
    let status = live(&config, session, &dir, &log).status().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(feed.wait().unwrap().success());
    let said = check_against_uninterrupted(&config, session, &dir, tmp.path());
    assert!(said.contains("# live: 2 bars never came"), "{said}");
}

/// A private server in `dir` on `port` (started, stopped by `scripts/postgres-up`).
fn server(dir: &Path, port: u16, up: bool) {
    let mut c = Command::new(workspace().join("scripts/postgres-up"));
    if up {
        c.arg(dir).arg(port.to_string());
    } else {
        c.arg("--stop").arg(dir);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_database_restarted_mid_session_loses_and_repeats_nothing() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pg");
    // The server runs as the `postgres` user, which must reach its folder.
    std::fs::set_permissions(
        tmp.path(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let port = 55000 + (std::process::id() % 1000) as u16;
    server(&data, port, true);
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = Command::new(workspace().join("scripts/postgres-up"))
                .arg("--stop")
                .arg(self.0)
                .output();
        }
    }
    let _stop = Stop(&data);
    let config = live_config(tmp.path(), port, "kf_live_restart");
    let session = session_start();
    run_ok(ingest(
        &config,
        "2018-04-19 13:31",
        "2018-04-19 20:00",
        "today",
        "0",
        true,
    ));
    let dir = tmp.path().join("live");
    let log = tmp.path().join("live.log");
    let mut child = live(&config, session, &dir, &log).spawn().unwrap();
    // The morning at speed, then the server goes down for 1.5 s while the system
    // waits for the afternoon, and comes back.
    run_ok(ingest(
        &config,
        "2018-04-20 13:31",
        "2018-04-20 16:00",
        "tomorrow",
        "3000",
        false,
    ));
    std::thread::sleep(Duration::from_millis(500));
    server(&data, port, false);
    std::thread::sleep(Duration::from_millis(1500));
    server(&data, port, true);
    // The system says it lost the server and got it back.
    let waited = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("reconnected")
    {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no reconnection: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut afternoon = ingest(
        &config,
        "2018-04-20 16:01",
        "2018-04-20 20:00",
        &stamp(session + 150 * MIN_S),
        "1500",
        false,
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    // Killed five times in the afternoon at random instants, started again each
    // time (the last after half a second down).
    let mut pauses = Pauses(seed());
    for k in 0..5 {
        std::thread::sleep(pauses.next(300, 1200));
        kill(&mut child);
        if k == 4 {
            std::thread::sleep(Duration::from_millis(500));
        }
        child = live(&config, session, &dir, &log).spawn().unwrap();
    }
    assert!(
        afternoon.try_wait().unwrap().is_none(),
        "the feed ended before the fifth kill: slow the feed"
    );
    assert!(afternoon.wait().unwrap().success());
    let status = child.wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{said}");
    assert!(said.contains("lost the connection"), "{said}");
    assert!(said.contains("reconnected"), "{said}");
    check_against_uninterrupted(&config, session, &dir, tmp.path());
}

#[test]
fn live_reconcile_and_ingest_refuse_what_they_cannot_do_and_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let say = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        text(&out.stderr)
    };
    // A config whose market data is not a PostgreSQL table.
    let out = tmp.path().join("a");
    let err = say(&[
        "live",
        "configs/mock1_system_us_equity_1min_2018.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("a live system reads a `postgres` one"),
        "{err}"
    );
    // A folder that no live run made.
    let err = say(&["reconcile", tmp.path().to_str().unwrap()]);
    assert!(
        err.contains("not the folder of a `kaizenflow live` run"),
        "{err}"
    );
    // A server that cannot be reached: the run stops saying so, and the folder
    // then belongs to that config and those overrides.
    let config = live_config(tmp.path(), 1, "kf_nowhere");
    let out = tmp.path().join("b");
    let args = |extra: &str| {
        vec![
            "live".to_string(),
            config.display().to_string(),
            "--set".into(),
            "market_data.reconnect=\"200ms\"".into(),
            "--set".into(),
            "system.start=\"2026-01-02 14:31\"".into(),
            "--set".into(),
            format!("system.end=\"2026-01-02 {extra}\""),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| {
        let out = bin().args(&a).output().unwrap();
        assert!(!out.status.success());
        text(&out.stderr)
    };
    let err = run(args("15:00"));
    assert!(err.contains("gave up reaching the database"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    let err = run(args("16:00"));
    assert!(err.contains("holds a live run of"), "{err}");
    let err = say(&[
        "ingest",
        "configs/mock1_system_us_equity_1min_2018.toml",
        "--to",
        config.to_str().unwrap(),
        "--speed=-1",
    ]);
    assert!(err.contains("--speed -1"), "{err}");
}
