//! Progress of a run: done/total, elapsed time and an estimate of the time left,
//! reported as molecules finish.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One progress report.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    /// Molecules finished (successfully or not).
    pub done: usize,
    /// Molecules in the run.
    pub total: usize,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Estimated time left, from the mean time per molecule so far.
    pub eta: Option<Duration>,
}

/// A function that receives progress events.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// Where progress goes.
#[derive(Clone, Default)]
pub enum Progress {
    /// Nowhere (the default).
    #[default]
    Off,
    /// A progress bar when standard error is a terminal, otherwise `tracing` events
    /// (at most one a second, and the last).
    Auto,
    /// A function called after every molecule, in the calling thread.
    Callback(ProgressFn),
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Off => f.write_str("Off"),
            Progress::Auto => f.write_str("Auto"),
            Progress::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// Reports progress for one run.
pub(crate) struct Reporter {
    sink: Sink,
    start: Instant,
    total: usize,
    done: usize,
}

enum Sink {
    Off,
    Bar(indicatif::ProgressBar),
    Log { last: Instant },
    Callback(ProgressFn),
}

impl Reporter {
    pub(crate) fn new(progress: &Progress, total: usize) -> Reporter {
        let sink = match progress {
            Progress::Off => Sink::Off,
            Progress::Callback(f) => Sink::Callback(Arc::clone(f)),
            Progress::Auto if std::io::stderr().is_terminal() => {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} molecules, {elapsed_precise} elapsed, eta {eta}",
                ) {
                    bar.set_style(style);
                }
                Sink::Bar(bar)
            }
            Progress::Auto => Sink::Log {
                last: Instant::now(),
            },
        };
        Reporter {
            sink,
            start: Instant::now(),
            total,
            done: 0,
        }
    }

    /// One more molecule finished.
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        let elapsed = self.start.elapsed();
        let eta = (self.done > 0).then(|| {
            let per = elapsed.as_secs_f64() / self.done as f64;
            Duration::from_secs_f64(per * (self.total - self.done.min(self.total)) as f64)
        });
        let event = ProgressEvent {
            done: self.done,
            total: self.total,
            elapsed,
            eta,
        };
        match &mut self.sink {
            Sink::Off => {}
            Sink::Bar(bar) => {
                bar.set_position(self.done as u64);
                if self.done == self.total {
                    bar.finish();
                }
            }
            Sink::Log { last } => {
                if self.done == self.total || last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    tracing::info!(
                        done = event.done,
                        total = event.total,
                        elapsed_s = event.elapsed.as_secs_f64(),
                        eta_s = event.eta.map(|d| d.as_secs_f64()),
                        "molecules finished"
                    );
                }
            }
            Sink::Callback(f) => f(&event),
        }
    }
}
