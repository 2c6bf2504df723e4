//! Clocks: what time it is for a replayed or live view, and how to wait for a time.
//!
//! One trait with a simulated, a replayed (scaled wall time) and a wall-clock
//! implementation, so the code that waits for data is the same in a test, a replay
//! and production.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A boxed future that waits (the object-safe form of an `async fn`).
pub type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The current time and a way to wait until a later one.
pub trait Clock: Send + Sync + Debug {
    /// Now, in ns since the epoch (UTC).
    fn now(&self) -> i64;

    /// Resolves once [`Clock::now`] is at least `t`.
    fn sleep_until(&self, t: i64) -> Wait<'_>;
}

/// A clock that moves only when told to (or when something waits on it): runs as
/// fast as the machine allows and gives the same result every time.
///
/// Invariant: time never goes backwards.
#[derive(Debug)]
pub struct SimulatedClock {
    now: AtomicI64,
}

impl SimulatedClock {
    /// A clock reading `start`.
    pub fn new(start: i64) -> SimulatedClock {
        SimulatedClock {
            now: AtomicI64::new(start),
        }
    }

    /// Moves the clock to `t` (never backwards: an earlier `t` is ignored).
    pub fn set(&self, t: i64) {
        self.now.fetch_max(t, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d` ns.
    pub fn advance(&self, d: i64) {
        self.now.fetch_add(d.max(0), Ordering::SeqCst);
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, t: i64) -> Wait<'_> {
        // Waiting on a simulated clock jumps it to the wake-up time.
        self.set(t);
        Box::pin(Over)
    }
}

/// A wait that is already over: a simulated clock's. A unit type, so that boxing it
/// allocates nothing (a system loop waits several times per decision).
struct Over;

impl Future for Over {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

/// Wall time, shifted to start at a simulated instant and running `speed` times
/// faster: replays a past day in real time (`speed = 1`) or faster.
#[derive(Debug)]
pub struct ReplayClock {
    start: i64,
    wall_start: Instant,
    speed: f64,
}

impl ReplayClock {
    /// A clock reading `start` now and advancing `speed` simulated seconds per wall
    /// second (a non-positive or non-finite speed is taken as 1).
    pub fn new(start: i64, speed: f64) -> ReplayClock {
        ReplayClock {
            start,
            wall_start: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }
}

impl Clock for ReplayClock {
    fn now(&self) -> i64 {
        let elapsed = self.wall_start.elapsed().as_nanos() as f64 * self.speed;
        self.start.saturating_add(elapsed as i64)
    }

    fn sleep_until(&self, t: i64) -> Wait<'_> {
        let wait = ((t - self.now()).max(0) as f64 / self.speed) as u64;
        Box::pin(tokio::time::sleep(Duration::from_nanos(wait)))
    }
}

/// The system's wall clock (needs a tokio runtime with the time driver to wait).
#[derive(Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, t: i64) -> Wait<'_> {
        let wait = (t - self.now()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_nanos(wait)))
    }
}
