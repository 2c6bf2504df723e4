//! [`Engine`]: runs a function of one molecule over every molecule of a partition,
//! on worker threads or sequentially, and stitches or reduces the results as they
//! finish.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::error::{BoxError, FailureKind, MoleculeFailure, RunError};
use crate::partition::{Molecule, Partition};
use crate::progress::{Progress, Reporter};

/// The outcome of a run that keeps going past failed molecules.
#[derive(Debug)]
pub struct Report<T> {
    /// The result over every molecule that succeeded.
    pub value: T,
    /// The molecules that failed, in the order they were delivered.
    pub failures: Vec<MoleculeFailure>,
}

/// Runs work over molecules of atoms. Configure with the builder methods, then call
/// [`Engine::run`] (one output per molecule, in atom order) or
/// [`Engine::run_reduce`] (outputs folded into an accumulator as they finish).
///
/// # Scheduling
/// The most worker threads an engine starts. Each is an OS thread with its own stack;
/// a million of them would not start at all.
pub const MAX_THREADS: usize = 1024;

/// The atoms are split into `threads x batches` molecules (over-decomposition: more
/// molecules than workers smooths out stragglers) by the [`Partition`]. A fixed set
/// of `threads` workers (a rayon pool, never a thread per atom or per molecule)
/// claims molecules in schedule order; the calling thread receives the results.
///
/// # Determinism
/// By default results are delivered in schedule order (atom order, or heaviest first
/// with [`Engine::heavy_first`]), whatever order they finish in, so a parallel
/// reduction is bit-identical to the sequential one ([`Engine::debug`]). To keep
/// memory bounded, a worker does not start a molecule more than `2 x threads`
/// positions ahead of the next one to deliver. [`Engine::unordered`] delivers in
/// finishing order instead: faster when molecules vary, not reproducible to the bit.
pub struct Engine {
    threads: usize,
    batches: usize,
    partition: Partition,
    heavy_first: bool,
    debug: bool,
    ordered: bool,
    progress: Progress,
    pool: OnceLock<Result<rayon::ThreadPool, String>>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads)
            .field("batches", &self.batches)
            .field("partition", &self.partition)
            .field("heavy_first", &self.heavy_first)
            .field("debug", &self.debug)
            .field("ordered", &self.ordered)
            .field("progress", &self.progress)
            .finish()
    }
}

impl Engine {
    /// An engine with one thread per core, one molecule per thread, a linear
    /// partition, ordered delivery and no progress output.
    pub fn new() -> Engine {
        Engine {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            batches: 1,
            partition: Partition::Linear,
            heavy_first: false,
            debug: false,
            ordered: true,
            progress: Progress::Off,
            pool: OnceLock::new(),
        }
    }

    /// Number of worker threads (at least 1, at most [`MAX_THREADS`]; callers that
    /// take the number from a user refuse a larger one rather than rely on the clamp).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.clamp(1, MAX_THREADS);
        self.pool = OnceLock::new();
        self
    }

    /// Molecules per thread (at least 1): the seed's `mpBatches`.
    pub fn batches(mut self, batches: usize) -> Self {
        self.batches = batches.max(1);
        self
    }

    /// How atoms are grouped into molecules.
    pub fn partition(mut self, partition: Partition) -> Self {
        self.partition = partition;
        self
    }

    /// Schedules the costliest molecules first (by the partition's cost model), so
    /// the run does not end waiting on one heavy molecule. Results are still
    /// delivered in a fixed order: the schedule's.
    pub fn heavy_first(mut self, on: bool) -> Self {
        self.heavy_first = on;
        self
    }

    /// Runs every molecule sequentially in the calling thread, in schedule order:
    /// the same results, for hunting bugs.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Delivers results in the order they finish rather than in schedule order.
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// Where progress is reported.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The configured number of worker threads.
    pub fn thread_count(&self) -> usize {
        self.threads
    }

    /// The molecules a run over `atoms` atoms uses, in schedule order.
    pub fn schedule(&self, atoms: usize) -> Vec<Molecule> {
        self.schedule_for(atoms, self.threads)
    }

    /// The progress setting (for other backends).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn progress_setting(&self) -> &Progress {
        &self.progress
    }

    /// The schedule for `workers` workers (`workers x batches` molecules).
    pub(crate) fn schedule_for(&self, atoms: usize, workers: usize) -> Vec<Molecule> {
        let mut molecules = self
            .partition
            .split(atoms, workers.saturating_mul(self.batches));
        if self.heavy_first {
            let p = self.partition;
            // Stable sort: equal costs keep atom order.
            molecules.sort_by(|a, b| {
                p.molecule_cost(b, atoms)
                    .total_cmp(&p.molecule_cost(a, atoms))
            });
        }
        molecules
    }

    /// Runs `work` on every molecule's atoms and returns the outputs in atom order
    /// (molecule 0 first), one per molecule.
    ///
    /// # Errors
    /// [`RunError::Molecule`] for the first molecule (in delivery order) that returned
    /// an error or panicked; no molecule starts after it.
    pub fn run<A, R, E, F>(&self, atoms: &[A], work: F) -> Result<Vec<R>, RunError>
    where
        A: Sync,
        R: Send,
        E: Into<BoxError>,
        F: Fn(&[A]) -> Result<R, E> + Sync,
    {
        let schedule = self.schedule(atoms.len());
        let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None)
            .take(schedule.len())
            .collect();
        let call = |m: &Molecule| call(&work, atoms, m);
        self.drive(&schedule, &call, false, &mut |m, r| {
            slots[m.index] = Some(r)
        })?;
        Ok(slots.into_iter().flatten().collect())
    }

    /// Runs `work` on every molecule and folds each output into `init` with `redux`
    /// as soon as it can be delivered, so memory does not grow with the number of
    /// molecules.
    ///
    /// # Errors
    /// As [`Engine::run`].
    pub fn run_reduce<A, R, E, F, Acc, G>(
        &self,
        atoms: &[A],
        init: Acc,
        work: F,
        redux: G,
    ) -> Result<Acc, RunError>
    where
        A: Sync,
        R: Send,
        E: Into<BoxError>,
        F: Fn(&[A]) -> Result<R, E> + Sync,
        G: FnMut(&mut Acc, R),
    {
        self.reduce(atoms, init, work, redux, false)
            .map(|r| r.value)
    }

    /// As [`Engine::run_reduce`], but a failed molecule does not stop the run: every
    /// molecule runs, the successes are reduced, and the failures are listed.
    ///
    /// # Errors
    /// [`RunError::Pool`] or [`RunError::Cluster`] when the backend cannot run at all.
    pub fn run_reduce_keep_going<A, R, E, F, Acc, G>(
        &self,
        atoms: &[A],
        init: Acc,
        work: F,
        redux: G,
    ) -> Result<Report<Acc>, RunError>
    where
        A: Sync,
        R: Send,
        E: Into<BoxError>,
        F: Fn(&[A]) -> Result<R, E> + Sync,
        G: FnMut(&mut Acc, R),
    {
        self.reduce(atoms, init, work, redux, true)
    }

    /// The body of both reducing runs.
    fn reduce<A, R, E, F, Acc, G>(
        &self,
        atoms: &[A],
        init: Acc,
        work: F,
        mut redux: G,
        keep_going: bool,
    ) -> Result<Report<Acc>, RunError>
    where
        A: Sync,
        R: Send,
        E: Into<BoxError>,
        F: Fn(&[A]) -> Result<R, E> + Sync,
        G: FnMut(&mut Acc, R),
    {
        let schedule = self.schedule(atoms.len());
        let mut acc = init;
        let call = |m: &Molecule| call(&work, atoms, m);
        let failures = self.drive(&schedule, &call, keep_going, &mut |_, r| redux(&mut acc, r))?;
        Ok(Report {
            value: acc,
            failures,
        })
    }

    /// Runs `call` on each molecule of `schedule` and hands the results to `deliver`.
    fn drive<R: Send>(
        &self,
        schedule: &[Molecule],
        call: &(dyn Fn(&Molecule) -> Result<R, MoleculeFailure> + Sync),
        keep_going: bool,
        deliver: &mut dyn FnMut(&Molecule, R),
    ) -> Result<Vec<MoleculeFailure>, RunError> {
        let mut sink = Delivery {
            schedule,
            deliver,
            keep_going,
            failures: Vec::new(),
            first: None,
            reporter: Reporter::new(&self.progress, schedule.len()),
        };
        if self.debug || schedule.len() <= 1 {
            for (pos, m) in schedule.iter().enumerate() {
                if !sink.handle(pos, call(m)) {
                    break;
                }
            }
        } else {
            self.drive_threads(schedule, call, &mut sink)?;
        }
        match sink.first {
            Some(f) => Err(RunError::Molecule(Box::new(f))),
            None => Ok(sink.failures),
        }
    }

    fn pool(&self) -> Result<&rayon::ThreadPool, RunError> {
        let threads = self.threads;
        self.pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("kf-parallel-{i}"))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| RunError::Pool {
                threads,
                message: message.clone(),
            })
    }

    fn drive_threads<R: Send>(
        &self,
        schedule: &[Molecule],
        call: &(dyn Fn(&Molecule) -> Result<R, MoleculeFailure> + Sync),
        sink: &mut Delivery<'_, R>,
    ) -> Result<(), RunError> {
        let pool = self.pool()?;
        let workers = self.threads.min(schedule.len());
        let window = if self.ordered {
            2 * workers
        } else {
            usize::MAX
        };
        let claims = Claims::new(schedule.len(), window, workers);
        let (tx, rx) = mpsc::channel::<(usize, Result<R, MoleculeFailure>)>();
        let ordered = self.ordered;
        let total = schedule.len();
        pool.in_place_scope(|scope| {
            // A worker claims molecules while the delivery window has room, then
            // ends: it never waits inside the pool. A molecule that runs parallel
            // code of its own (a DAG's kernels, a Parquet writer) waits in a join,
            // and a pool thread waiting in a join runs other jobs of the pool
            // meanwhile; had a waiting worker been such a job, the molecule under
            // it would never finish, nor the window move (a deadlock seen in a
            // sweep). The delivering thread starts workers again as it opens the
            // window.
            let start = |n: usize| {
                for _ in 0..n {
                    let tx = tx.clone();
                    let claims = &claims;
                    scope.spawn(move |_| {
                        while let Some(pos) = claims.claim() {
                            if tx.send((pos, call(&schedule[pos]))).is_err() {
                                claims.stop();
                            }
                        }
                    });
                }
            };
            start(claims.start());
            // The calling thread delivers while the workers compute.
            let mut pending = BTreeMap::new();
            let (mut next, mut received) = (0, 0);
            while !claims.finished(received) {
                let Ok((pos, result)) = rx.recv() else { break };
                received += 1;
                if ordered {
                    pending.insert(pos, result);
                    while let Some(result) = pending.remove(&next) {
                        if !sink.handle(next, result) {
                            claims.stop();
                        }
                        next += 1;
                        start(claims.delivered(next));
                    }
                } else {
                    next += 1;
                    if !sink.handle(pos, result) {
                        claims.stop();
                    }
                    start(claims.delivered(next));
                }
            }
            debug_assert!(claims.finished(received) || total == 0);
        });
        Ok(())
    }
}

/// Hands results to the user's `deliver` and records failures.
struct Delivery<'a, R> {
    schedule: &'a [Molecule],
    deliver: &'a mut dyn FnMut(&Molecule, R),
    keep_going: bool,
    failures: Vec<MoleculeFailure>,
    first: Option<MoleculeFailure>,
    reporter: Reporter,
}

impl<R> Delivery<'_, R> {
    /// Handles the result at schedule position `pos`; false once the run must stop.
    fn handle(&mut self, pos: usize, result: Result<R, MoleculeFailure>) -> bool {
        if self.first.is_some() {
            return false; // stopped: results still arriving are discarded
        }
        self.reporter.tick();
        match result {
            Ok(r) => (self.deliver)(&self.schedule[pos], r),
            Err(f) if self.keep_going => self.failures.push(f),
            Err(f) => {
                self.first = Some(f);
                return false;
            }
        }
        true
    }
}

/// Hands out schedule positions to workers, in order, no further than `window`
/// ahead of the next position to deliver, and counts the workers running: a worker
/// that finds no room ends, and a delivery that makes room starts workers again
/// (both under one lock, so no room goes unused with no worker to use it).
struct Claims {
    state: Mutex<ClaimState>,
    total: usize,
    window: usize,
    workers: usize,
}

struct ClaimState {
    next: usize,
    delivered: usize,
    stopped: bool,
    /// Workers started and not yet ended.
    active: usize,
}

impl Claims {
    fn new(total: usize, window: usize, workers: usize) -> Claims {
        Claims {
            state: Mutex::new(ClaimState {
                next: 0,
                delivered: 0,
                stopped: false,
                active: 0,
            }),
            total,
            window,
            workers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClaimState> {
        // A poisoned lock means a worker panicked while holding it, which cannot
        // happen (no user code runs under it); recover the state either way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Workers to start, counted as running: one per position the window lets be
    /// claimed now, at most `workers` running in all.
    fn top_up(&self, s: &mut ClaimState) -> usize {
        if s.stopped {
            return 0;
        }
        let limit = s.delivered.saturating_add(self.window).min(self.total);
        let room = limit.saturating_sub(s.next);
        let add = room.min(self.workers.saturating_sub(s.active));
        s.active += add;
        add
    }

    /// The workers to start first.
    fn start(&self) -> usize {
        let mut s = self.lock();
        self.top_up(&mut s)
    }

    /// The next position to compute, or `None`: the worker ends (the window is
    /// full, or everything is claimed, or the run stopped).
    fn claim(&self) -> Option<usize> {
        let mut s = self.lock();
        if !s.stopped && s.next < self.total && s.next < s.delivered.saturating_add(self.window) {
            s.next += 1;
            return Some(s.next - 1);
        }
        s.active -= 1;
        None
    }

    /// Records `count` positions delivered; returns the workers to start.
    fn delivered(&self, count: usize) -> usize {
        let mut s = self.lock();
        s.delivered = count;
        self.top_up(&mut s)
    }

    fn stop(&self) {
        self.lock().stopped = true;
    }

    /// Whether every position that will be claimed has come back (`received` of
    /// them): all of them, or, once stopped, all those claimed so far.
    fn finished(&self, received: usize) -> bool {
        let s = self.lock();
        received >= s.next && (s.stopped || s.next >= self.total)
    }
}

/// Runs `work` on one molecule's atoms, turning an error or a panic into a failure
/// that names the molecule.
pub(crate) fn call<A, R, E, F>(work: &F, atoms: &[A], m: &Molecule) -> Result<R, MoleculeFailure>
where
    E: Into<BoxError>,
    F: Fn(&[A]) -> Result<R, E>,
{
    let failure = |kind| MoleculeFailure {
        index: m.index,
        atoms: m.atoms.clone(),
        kind,
    };
    let caught =
        quiet::catching(|| catch_unwind(AssertUnwindSafe(|| work(&atoms[m.atoms.clone()]))));
    match caught {
        (Ok(Ok(r)), _) => Ok(r),
        (Ok(Err(e)), _) => Err(failure(FailureKind::Failed(e.into()))),
        (Err(payload), location) => {
            let mut message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_string());
            if let Some(at) = location {
                message.push_str(&format!(" (at {at})"));
            }
            Err(failure(FailureKind::Panicked(message)))
        }
    }
}

/// Panics inside a molecule are reported as its failure, with their message and
/// location; the default hook would also print them (with a backtrace when
/// `RUST_BACKTRACE` is set) to the terminal, in the middle of the run's output.
/// A hook installed once chains to the previous one for every panic not raised
/// inside [`catching`].
mod quiet {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
        static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if CATCHING.with(Cell::get) {
                    let at = info
                        .location()
                        .map(|l| format!("{}:{}", l.file(), l.line()));
                    LOCATION.with(|c| *c.borrow_mut() = at);
                } else {
                    previous(info);
                }
            }));
        });
    }

    /// Runs `f` with this thread's panics kept quiet; returns its result and the
    /// location of the panic it caught, if any.
    pub(super) fn catching<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
        install();
        let outer = CATCHING.with(|c| c.replace(true));
        let out = f();
        CATCHING.with(|c| c.set(outer));
        (out, LOCATION.with(|c| c.borrow_mut().take()))
    }
}
