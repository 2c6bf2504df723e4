//! The dynamic trajectory optimizer of seed 002 ("Brute Force & Quantum"): the
//! weights of `N` assets over `H` horizons that maximize the Sharpe ratio of the
//! whole trajectory net of square-root transaction costs.
//!
//! The problem ([`Problem`]): per-horizon forecasts `μ_h` and covariances `V_h`,
//! cost coefficients `c_{i,h}` and the current weights `ω*`. A trajectory `ω` is
//! scored by
//!
//! ```text
//! SR(ω) = Σ_h (μ_h'ω_h − τ_h) / sqrt(Σ_h ω_h' V_h ω_h),
//! τ_1 = Σ_i c_{i,1} sqrt|ω_{i,1} − ω*_i|,   τ_h = Σ_i c_{i,h} sqrt|ω_{i,h} − ω_{i,h−1}|.
//! ```
//!
//! The search space is discrete: `K` units of capital split among the `N` assets in
//! every ordered way, with every sign pattern, gives `Ω`, the weight vectors with
//! `Σ|ω| = 1` ([`WeightSet`]); the trajectories are `Φ = Ω^H`. A sign on a zero
//! weight is the same vector, so `Ω` holds each vector once.
//!
//! [`solve`] runs one of:
//! - **exact enumeration** ([`Method::Exact`]) on the job engine: atoms are prefixes
//!   of the trajectory, each searched depth first below its prefix, with a subtree
//!   skipped only when an admissible upper bound on the Sharpe ratio of all its
//!   completions is below the incumbent; the best is reduced on the fly;
//! - **beam search** ([`Method::Beam`]), when `|Φ|` is too large: the same
//!   arithmetic, keeping the `width` most promising prefixes per horizon;
//! - and, for comparison, the **static baseline** ([`static_baseline`]): each
//!   horizon optimized on its own, given the weights before it, then stitched.
//!
//! The key design decision is that every method scores a trajectory by the same
//! arithmetic in the same order (per-vector tables `μ_h'ω`, `ω'V_hω` and the
//! square-root costs, accumulated horizon by horizon), and that ties break by the
//! trajectory's position in the enumeration order (horizon 1 first; see
//! [`WeightSet`] for the order of `Ω`). So the answer does not depend on the
//! thread count, on the molecule sizes, on pruning, or on which incumbent seeded it.

// The kernels index several parallel arrays (weights, forecasts, covariance rows) by
// asset and horizon; index loops say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod bound;
mod exact;
mod heuristic;
mod problem;
mod processor;
mod space;
mod spec;

pub use exact::solve_exact;
pub use heuristic::{beam_search, static_baseline};
pub use problem::{MAX_BEAM_WORK, MAX_OMEGA, OptimizeError, Problem};
pub use processor::{Trajectory as TrajectoryProcessor, TrajectoryParams};
pub use space::WeightSet;
pub use spec::{
    Instance, MAX_EXACT_LIMIT, Method, OptimizeSpec, ProblemSpec, SpecResult, solve_spec,
};

use kf_parallel::Engine;

/// One trajectory: the weights per horizon and what they score.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// Index into [`WeightSet`] of each horizon's weights.
    pub path: Vec<u32>,
    /// Weights per horizon: `weights[h][i]` for asset `i`.
    pub weights: Vec<Vec<f64>>,
    /// The trajectory's Sharpe ratio net of costs.
    pub sharpe: f64,
    /// The transaction cost `τ_h` of each horizon.
    pub costs: Vec<f64>,
    /// Turnover per horizon: `Σ_i |ω_{i,h} − ω_{i,h−1}|` (from `ω*` at the first).
    pub turnover: Vec<f64>,
    /// The expected return net of costs, `Σ_h μ_h'ω_h − τ_h`.
    pub net_return: f64,
    /// The variance `Σ_h ω_h'V_hω_h`.
    pub variance: f64,
}

/// What a search did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchStats {
    /// Complete trajectories scored.
    pub evaluated: u64,
    /// Subtrees skipped by the bound.
    pub pruned: u64,
    /// Subtrees (prefixes and their completions) skipped by the symmetry of identical
    /// assets: each is the swap of one that is searched.
    pub symmetric: u64,
    /// `|Φ| = |Ω|^H`, the trajectories a full enumeration scores (as f64: it can
    /// exceed `u64`).
    pub space: f64,
    /// Atoms (trajectory prefixes) the job engine scheduled.
    pub atoms: usize,
}

impl SearchStats {
    /// The fraction of `Φ` the search did not score.
    pub fn skipped_fraction(&self) -> f64 {
        if self.space > 0.0 {
            1.0 - self.evaluated as f64 / self.space
        } else {
            0.0
        }
    }
}

/// A solution: the best trajectory found and how it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The best trajectory.
    pub best: Trajectory,
    /// The method that found it.
    pub method: Method,
    /// Whether `best` is proven optimal over `Φ` (exact enumeration).
    pub exact: bool,
    /// What the search did.
    pub stats: SearchStats,
}

/// Options of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Skip subtrees by the admissible bound (the answer is the same either way).
    pub prune: bool,
    /// Score one trajectory of each set that differs only by a swap of identical
    /// assets.
    pub symmetry: bool,
    /// Width of the beam that seeds the exact search with an incumbent (0: none).
    pub incumbent_beam: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            prune: true,
            symmetry: true,
            incumbent_beam: 16,
        }
    }
}

/// Solves `problem` by `method` on `engine` (see the module doc).
///
/// # Errors
/// [`OptimizeError::TooLarge`] when an exact search is asked of a space over
/// `max_exact` trajectories; [`OptimizeError::BeamTooLarge`] when a beam search
/// would score over [`MAX_BEAM_WORK`] prefixes; [`OptimizeError::Engine`] when the
/// job engine fails.
pub fn solve(
    problem: &Problem,
    method: Method,
    options: &SearchOptions,
    engine: &Engine,
) -> Result<Solution, OptimizeError> {
    match method {
        Method::Exact { max_exact } => {
            let space = problem.space_size();
            if space > max_exact {
                return Err(OptimizeError::TooLarge {
                    space,
                    max_exact,
                    omega: problem.omega().len(),
                    horizons: problem.horizons(),
                });
            }
            solve_exact(problem, options, engine)
        }
        Method::Beam { width } => checked_beam(problem, width, options.symmetry),
        Method::Auto { max_exact, width } => {
            if problem.space_size() <= max_exact {
                solve_exact(problem, options, engine)
            } else {
                checked_beam(problem, width, options.symmetry)
            }
        }
    }
}

/// [`beam_search`] after checking its work against [`MAX_BEAM_WORK`].
fn checked_beam(
    problem: &Problem,
    width: usize,
    symmetry: bool,
) -> Result<Solution, OptimizeError> {
    let (omega, horizons) = (problem.omega().len(), problem.horizons());
    let work = width.max(1) as f64 * omega as f64 * horizons as f64;
    if work > MAX_BEAM_WORK {
        return Err(OptimizeError::BeamTooLarge {
            width,
            omega,
            horizons,
            work,
            limit: MAX_BEAM_WORK,
        });
    }
    Ok(beam_search(problem, width, symmetry))
}
