//! Collectives: a group of processes that compute one result together, such as the
//! ranks of an MPI job averaging the gradients of a model they train data-parallel.
//!
//! The primary trait is [`Collective`]: its one operation, [`Collective::all_gather`],
//! hands every member the concatenation of every member's vector in rank order.
//! Reductions are then done by each member itself, in rank order, so every member
//! gets the same bits (a tree all-reduce sums in an order that depends on the
//! library and the world size).
//!
//! A program that runs SPMD installs its collective for the span of the work
//! ([`install`]); code deep in a DAG (a model's `fit`) asks for it with [`current`].
//! With none installed, that code runs alone, as a world of one.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::RunError;

/// A group of processes (ranks `0..size`) that call the same operations in the same
/// order. Every member must make the same calls with vectors of the same length:
/// the program is SPMD.
pub trait Collective: Send + Sync {
    /// This member's rank, `0..size()`.
    fn rank(&self) -> usize;

    /// The number of members.
    fn size(&self) -> usize;

    /// Every member's `local`, concatenated in rank order, on every member.
    ///
    /// # Errors
    /// [`RunError::Cluster`] when the members' vectors differ in length (the program
    /// is not SPMD) or the transport fails.
    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, RunError>;
}

static CURRENT: RwLock<Option<Arc<dyn Collective>>> = RwLock::new(None);

/// Serializes the users of the installed collective within a process, so that two
/// threads cannot interleave their calls (the members would pair them up wrongly).
static TURN: Mutex<()> = Mutex::new(());

/// Keeps a collective installed; it is removed when this is dropped.
#[must_use = "the collective is uninstalled when the guard is dropped"]
pub struct Installed(());

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Installed")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        *CURRENT.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Makes `c` the process's collective until the returned guard is dropped.
///
/// Drop the guard before whatever `c` depends on is torn down (an MPI world must
/// outlive its communicators).
pub fn install(c: Arc<dyn Collective>) -> Installed {
    *CURRENT.write().unwrap_or_else(PoisonError::into_inner) = Some(c);
    Installed(())
}

/// The installed collective with this thread's turn to use it, or `None` when the
/// process runs alone. Hold the [`Turn`] for the whole exchange (a training run), so
/// that another thread's calls cannot come between its calls.
pub fn current() -> Option<Turn> {
    let c = CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    let lock = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    Some(Turn { c, _lock: lock })
}

/// The installed collective, held by one thread of the process at a time.
pub struct Turn {
    c: Arc<dyn Collective>,
    _lock: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Turn(rank {} of {})", self.c.rank(), self.c.size())
    }
}

impl std::ops::Deref for Turn {
    type Target = dyn Collective;
    fn deref(&self) -> &Self::Target {
        &*self.c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Alone;
    impl Collective for Alone {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            1
        }
        fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, RunError> {
            Ok(local.to_vec())
        }
    }

    #[test]
    fn a_collective_is_current_while_installed_and_gone_after() {
        // (The only test that installs one: the slot is process-wide.)
        assert!(current().is_none());
        let guard = install(Arc::new(Alone));
        {
            let turn = current().expect("installed");
            assert_eq!((turn.rank(), turn.size()), (0, 1));
            assert_eq!(turn.all_gather(&[1.0, 2.0]).ok(), Some(vec![1.0, 2.0]));
        }
        drop(guard);
        assert!(current().is_none());
    }
}
