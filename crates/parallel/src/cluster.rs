//! The MPI backend (feature `mpi`): the same molecules and the same ordered
//! reduction as on threads, with ranks of an MPI job as the workers.
//!
//! Every rank runs the same program (SPMD) and calls the same
//! [`Cluster::run_reduce`] with the same atoms. Rank 0 schedules: it hands molecule
//! positions to the other ranks as they ask for work, receives their results
//! (serialized with serde), and reduces them in schedule order, so the result is
//! bit-identical to the thread backend's and the sequential debug path's. The other
//! ranks compute and return `None`. With one rank, the run falls back to the local
//! engine.
//!
//! Run it with `mpirun -np 4 PROGRAM` (as root, OpenMPI also wants
//! `--allow-run-as-root`; more ranks than cores need `--oversubscribe`).

use std::collections::BTreeMap;

use std::sync::{Arc, Mutex, PoisonError};

use mpi::Threading;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Destination, Source};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Engine;
use crate::engine::call;
use crate::error::{BoxError, FailureKind, MoleculeFailure, RunError};
use crate::progress::Reporter;

// Messages of one run all carry that run's tag, so a rank that has moved on to the
// next run cannot be mistaken for a worker of the current one. The content says what
// a message is: worker -> root, empty = ready, longer = a result (position, kind,
// body); root -> worker, 8 bytes = a position to compute, empty = stop.

/// Tags cycle below 32767, the least upper bound MPI guarantees.
const MAX_TAG: u32 = 32_000;

const OK: u8 = 0;
const FAILED: u8 = 1;
const PANICKED: u8 = 2;

/// An initialized MPI world. Create one per process, at the start; MPI is finalized
/// when it is dropped.
///
/// Every rank must make the same sequence of runs with the same atoms (SPMD).
pub struct Cluster {
    // Field order matters: the communicator must go before the universe finalizes.
    world: SimpleCommunicator,
    /// Runs started so far; every rank counts the same runs (SPMD).
    runs: std::cell::Cell<u32>,
    /// The thread support MPI gave.
    threading: Threading,
    _universe: Universe,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cluster(rank {} of {})", self.rank(), self.size())
    }
}

impl Cluster {
    /// Initializes MPI. A program started without `mpirun` is a world of one rank.
    ///
    /// # Errors
    /// [`RunError::Cluster`] when MPI was initialized already in this process.
    pub fn init() -> Result<Cluster, RunError> {
        // Serialized: one thread at a time may call MPI, whichever thread it is (a
        // model's fit runs on a worker thread of the DAG).
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| {
                RunError::Cluster("MPI is already initialized in this process".into())
            })?;
        Ok(Cluster {
            world: universe.world(),
            runs: std::cell::Cell::new(0),
            threading,
            _universe: universe,
        })
    }

    /// A [`Collective`](crate::collective::Collective) over every rank, on its own
    /// communicator (its messages cannot meet [`Cluster::run_reduce`]'s). Install it
    /// with [`crate::collective::install`], and drop the guard and every clone before
    /// this `Cluster`: MPI is finalized when the `Cluster` goes.
    ///
    /// # Errors
    /// [`RunError::Cluster`] when this MPI cannot be called from more than one thread
    /// (it gave less than `MPI_THREAD_SERIALIZED`).
    pub fn collective(&self) -> Result<Arc<dyn crate::collective::Collective>, RunError> {
        if matches!(self.threading, Threading::Single | Threading::Funneled) {
            return Err(RunError::Cluster(format!(
                "this MPI supports only {:?} threading; a collective needs Serialized \
                 (rebuild OpenMPI with thread support)",
                self.threading
            )));
        }
        Ok(Arc::new(MpiCollective {
            rank: self.rank(),
            size: self.size(),
            comm: Mutex::new(self.world.duplicate()),
        }))
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.world.rank().max(0) as usize
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.world.size().max(1) as usize
    }

    /// Ends every rank of the job with exit code `code` (`MPI_Abort`): what a rank
    /// that failed does, since the others would otherwise wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Whether this is rank 0, the one that schedules and returns the result.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// [`Engine::run_reduce`] across the ranks: rank 0 returns `Some(result)`, the
    /// others `None`. The partition is the engine's, with one worker per rank other
    /// than 0 (times the engine's batches).
    ///
    /// # Errors
    /// [`RunError::Molecule`] for the first failed molecule in schedule order (on rank
    /// 0); [`RunError::Cluster`] when a result cannot be decoded.
    pub fn run_reduce<A, R, E, F, Acc, G>(
        &self,
        engine: &Engine,
        atoms: &[A],
        init: Acc,
        work: F,
        mut redux: G,
    ) -> Result<Option<Acc>, RunError>
    where
        A: Sync,
        R: Send + Serialize + DeserializeOwned,
        E: Into<BoxError>,
        F: Fn(&[A]) -> Result<R, E> + Sync,
        G: FnMut(&mut Acc, R),
    {
        if self.size() == 1 {
            return engine.run_reduce(atoms, init, work, redux).map(Some);
        }
        let workers = self.size() - 1;
        let schedule = engine.schedule_for(atoms.len(), workers);
        let run = self.runs.get();
        self.runs.set(run.wrapping_add(1));
        let tag = 1 + (run % MAX_TAG) as i32;
        if !self.is_root() {
            self.serve(&schedule, tag, |m| call(&work, atoms, m));
            return Ok(None);
        }
        let mut acc = init;
        let mut reporter = Reporter::new(engine.progress_setting(), schedule.len());
        let window = 2 * workers;
        let (mut next, mut delivered, mut stopped) = (0usize, 0usize, 0usize);
        let mut idle: Vec<i32> = Vec::new();
        let mut pending: BTreeMap<usize, (u8, Vec<u8>)> = BTreeMap::new();
        let mut first: Option<MoleculeFailure> = None;
        let mut decode_error: Option<String> = None;
        while stopped < workers {
            let (msg, status) = self.world.any_process().receive_vec_with_tag::<u8>(tag);
            let src = status.source_rank();
            if msg.len() >= 9 {
                let mut pos = [0u8; 8];
                pos.copy_from_slice(&msg[..8]);
                pending.insert(
                    u64::from_le_bytes(pos) as usize,
                    (msg[8], msg[9..].to_vec()),
                );
                while let Some((kind, body)) = pending.remove(&delivered) {
                    let m = &schedule[delivered];
                    delivered += 1;
                    if first.is_some() || decode_error.is_some() {
                        continue;
                    }
                    reporter.tick();
                    let text = || String::from_utf8_lossy(&body).into_owned();
                    let failure = |kind| MoleculeFailure {
                        index: m.index,
                        atoms: m.atoms.clone(),
                        kind,
                    };
                    match kind {
                        OK => match postcard::from_bytes::<R>(&body) {
                            Ok(r) => redux(&mut acc, r),
                            Err(e) => {
                                decode_error = Some(format!("result of molecule {}: {e}", m.index))
                            }
                        },
                        PANICKED => first = Some(failure(FailureKind::Panicked(text()))),
                        _ => first = Some(failure(FailureKind::Failed(text().into()))),
                    }
                }
            }
            idle.push(src);
            // An idle worker holds no work: give it the next molecule within the
            // window, or stop it when nothing is left to give. Workers still holding
            // work are stopped when their results come back.
            let stop = first.is_some() || decode_error.is_some();
            while let Some(&w) = idle.last() {
                if !stop && next < schedule.len() {
                    if next >= delivered + window {
                        break; // the molecule at `delivered` is out; wait for it
                    }
                    self.world
                        .process_at_rank(w)
                        .send_with_tag(&(next as u64).to_le_bytes()[..], tag);
                    next += 1;
                } else {
                    self.world
                        .process_at_rank(w)
                        .send_with_tag(&[0u8; 0][..], tag);
                    stopped += 1;
                }
                idle.pop();
            }
        }
        if let Some(e) = decode_error {
            return Err(RunError::Cluster(e));
        }
        match first {
            Some(f) => Err(RunError::Molecule(Box::new(f))),
            None => Ok(Some(acc)),
        }
    }

    /// A worker rank: asks for work, computes, sends results, until told to stop.
    fn serve<R: Serialize>(
        &self,
        schedule: &[crate::Molecule],
        tag: i32,
        run: impl Fn(&crate::Molecule) -> Result<R, MoleculeFailure>,
    ) {
        let root = self.world.process_at_rank(0);
        root.send_with_tag(&[0u8; 0][..], tag);
        loop {
            let (msg, _) = root.receive_vec_with_tag::<u8>(tag);
            if msg.len() != 8 {
                break; // stop
            }
            let mut pos = [0u8; 8];
            pos.copy_from_slice(&msg[..8]);
            let pos_u = u64::from_le_bytes(pos) as usize;
            let mut out = pos.to_vec();
            match schedule.get(pos_u).map(&run) {
                Some(Ok(r)) => match postcard::to_allocvec(&r) {
                    Ok(bytes) => {
                        out.push(OK);
                        out.extend_from_slice(&bytes);
                    }
                    Err(e) => {
                        out.push(FAILED);
                        out.extend_from_slice(
                            format!("cannot serialize the result: {e}").as_bytes(),
                        );
                    }
                },
                Some(Err(f)) => match f.kind {
                    FailureKind::Failed(e) => {
                        out.push(FAILED);
                        out.extend_from_slice(e.to_string().as_bytes());
                    }
                    FailureKind::Panicked(m) => {
                        out.push(PANICKED);
                        out.extend_from_slice(m.as_bytes());
                    }
                },
                None => {
                    out.push(FAILED);
                    out.extend_from_slice(format!("no molecule at position {pos_u}").as_bytes());
                }
            }
            root.send_with_tag(&out[..], tag);
        }
    }
}

/// The MPI collective: `MPI_Allgather` on a communicator of its own.
struct MpiCollective {
    rank: usize,
    size: usize,
    comm: Mutex<SimpleCommunicator>,
}

// SAFETY: the communicator is a handle into the MPI library, which was initialized
// with `MPI_THREAD_SERIALIZED` or more (checked by `Cluster::collective`): any thread
// may call MPI as long as no two call at once, and the mutex makes every call on this
// communicator exclusive.
unsafe impl Send for MpiCollective {}
// SAFETY: as above; shared access goes through the mutex.
unsafe impl Sync for MpiCollective {}

impl crate::collective::Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, RunError> {
        let comm = self.comm.lock().unwrap_or_else(PoisonError::into_inner);
        // Lengths first: a rank whose vector differs would otherwise corrupt the call.
        let n = local.len() as u64;
        let mut lens = vec![0u64; self.size];
        comm.all_gather_into(&n, &mut lens[..]);
        if let Some((r, m)) = lens.iter().enumerate().find(|(_, m)| **m != n) {
            return Err(RunError::Cluster(format!(
                "all-gather of unequal vectors: rank {} has {n} values, rank {r} has {m}; \
                 every rank must make the same calls (run the same config on every rank)",
                self.rank
            )));
        }
        let mut out = vec![0.0f64; local.len() * self.size];
        comm.all_gather_into(local, &mut out[..]);
        Ok(out)
    }
}
