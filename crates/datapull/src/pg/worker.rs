//! A thread that owns a blocking database client, so the client can be used from
//! inside an async runtime (a system's loop), where the `postgres` crate's own
//! runtime may not start.

use std::sync::mpsc;

use crate::{DataError, Result};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Runs closures on a state `S` owned by its own thread, one at a time, in order.
///
/// Invariant: the thread lives as long as the worker (dropping the worker ends
/// it after the job in hand).
pub(crate) struct Worker<S> {
    jobs: mpsc::Sender<Job<S>>,
}

impl<S: Send + 'static> Worker<S> {
    /// A thread named `name` owning `state`.
    pub(crate) fn new(name: &str, mut state: S) -> Result<Worker<S>> {
        let (jobs, rx) = mpsc::channel::<Job<S>>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(|e| DataError::Unsupported {
                what: format!("cannot start the database thread `{name}`: {e}"),
            })?;
        Ok(Worker { jobs })
    }

    /// Runs `f` on the state and returns what it returns.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job<S> = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        let gone = || DataError::Unsupported {
            what: "the database thread has stopped (a client call panicked)".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}
