//! Exact enumeration of `Φ` on the job engine, with the admissible bound and the
//! symmetry of identical assets.
//!
//! Atoms are the trajectory prefixes of the first `d` horizons (`|Ω|^d` of them, `d`
//! the smallest depth that gives at least 1024 atoms, or `H`), in enumeration order;
//! molecules are runs of consecutive atoms. Each atom is searched depth first below
//! its prefix, starting from the same incumbent (a narrow beam search's answer), so
//! the counts of scored and skipped trajectories, like the answer, do not depend on
//! how atoms are grouped or on the thread count. Molecules' bests are reduced as
//! they arrive: the higher Sharpe ratio wins, and on equal ratios the trajectory
//! earlier in the enumeration order.

use std::convert::Infallible;

use kf_parallel::Engine;

use super::bound::Bounds;
use super::heuristic::beam_search;
use super::problem::{OptimizeError, Problem};
use super::{Method, SearchOptions, SearchStats, Solution};

/// The fewest atoms the prefix depth aims for: enough for dozens per thread on any
/// machine here, and fixed so that the atoms (and the counts) do not depend on the
/// thread count.
const MIN_ATOMS: usize = 1024;

/// The most atoms: the atom list is held in memory.
const MAX_ATOMS: usize = 1 << 22;

/// The lex-leader constraints of identical assets: for each pair `(i, j)` of
/// consecutive identical assets, asset `i`'s weights over the horizons must be
/// lexicographically at least asset `j`'s. Per vector, the pairs it orders one way
/// or the other, as bit masks (at most 64 pairs; more are not used).
#[derive(Clone, Debug)]
pub(super) struct Symmetry {
    pub(super) all: u64,
    less: Vec<u64>,
    greater: Vec<u64>,
}

impl Symmetry {
    pub(super) fn new(p: &Problem, on: bool) -> Symmetry {
        let m = p.omega().len();
        let pairs: Vec<(usize, usize)> = if on {
            p.identical_pairs().into_iter().take(64).collect()
        } else {
            Vec::new()
        };
        let (mut less, mut greater) = (vec![0u64; m], vec![0u64; m]);
        for a in 0..m {
            let u = p.omega().units(a);
            for (b, &(i, j)) in pairs.iter().enumerate() {
                if u[i] < u[j] {
                    less[a] |= 1 << b;
                } else if u[i] > u[j] {
                    greater[a] |= 1 << b;
                }
            }
        }
        let all = if pairs.len() == 64 {
            u64::MAX
        } else {
            (1u64 << pairs.len()) - 1
        };
        Symmetry { all, less, greater }
    }

    /// Whether vector `a` may follow a prefix whose still-tied pairs are `tied`,
    /// and the pairs still tied after it.
    #[inline]
    pub(super) fn admit(&self, tied: u64, a: usize) -> Option<u64> {
        if tied & self.less[a] != 0 {
            None
        } else {
            Some(tied & !self.greater[a])
        }
    }
}

/// The best trajectory seen and the counts of a search.
#[derive(Clone, Debug)]
struct Found {
    sharpe: f64,
    path: Vec<u32>,
    evaluated: u64,
    pruned: u64,
    symmetric: u64,
}

impl Found {
    fn merge(&mut self, other: Found) {
        if better(other.sharpe, &other.path, self.sharpe, &self.path) {
            self.sharpe = other.sharpe;
            self.path = other.path;
        }
        self.evaluated += other.evaluated;
        self.pruned += other.pruned;
        self.symmetric += other.symmetric;
    }
}

/// The tie rule: a higher Sharpe ratio, or the same one earlier in enumeration
/// order (an empty `best_path` is no trajectory yet).
#[inline]
pub(super) fn better(sharpe: f64, path: &[u32], best: f64, best_path: &[u32]) -> bool {
    best_path.is_empty() || sharpe > best || (sharpe == best && path < best_path)
}

/// One depth-first search, reused across the atoms of a molecule.
struct Search<'a> {
    p: &'a Problem,
    bounds: &'a Bounds,
    sym: &'a Symmetry,
    prune: bool,
    path: Vec<u32>,
    found: Found,
    scratch: Vec<Vec<f64>>,
}

impl Search<'_> {
    /// Searches every completion of the prefix `path[..d]` (its last vector `prev`,
    /// its running sums `num`, `var`, its tied pairs `tied`).
    fn descend(&mut self, d: usize, prev: usize, num: f64, var: f64, tied: u64) {
        let p = self.p;
        let m = p.omega().len();
        let last = d + 1 == p.horizons();
        let mut costs = std::mem::take(&mut self.scratch[d]);
        let cost = p.costs_from(d, prev, &mut costs);
        let ret = &p.ret[d * m..(d + 1) * m];
        let vr = &p.var[d * m..(d + 1) * m];
        for a in 0..m {
            let Some(tied2) = self.sym.admit(tied, a) else {
                self.found.symmetric += 1;
                continue;
            };
            // The same arithmetic as `Problem::step`.
            let n2 = num + (ret[a] - cost[a]);
            let v2 = var + vr[a];
            self.path[d] = a as u32;
            if last {
                self.found.evaluated += 1;
                let sr = n2 / v2.sqrt();
                if better(sr, &self.path, self.found.sharpe, &self.found.path) {
                    self.found.sharpe = sr;
                    self.found.path.clone_from(&self.path);
                }
            } else if self.prune && self.bounds.upper(d + 1, n2, v2) < self.found.sharpe {
                self.found.pruned += 1;
            } else {
                self.descend(d + 1, a, n2, v2, tied2);
            }
        }
        self.scratch[d] = costs;
    }

    /// Searches below the prefix of atom `t` (`depth` horizons, base `|Ω|` digits,
    /// horizon 1 most significant).
    fn atom(&mut self, t: u64, depth: usize) {
        let p = self.p;
        let m = p.omega().len() as u64;
        let mut rest = t;
        for d in (0..depth).rev() {
            self.path[d] = (rest % m) as u32;
            rest /= m;
        }
        let (mut num, mut var, mut prev, mut tied) = (0.0, 0.0, 0usize, self.sym.all);
        for d in 0..depth {
            let a = self.path[d] as usize;
            let Some(t2) = self.sym.admit(tied, a) else {
                self.found.symmetric += 1;
                return;
            };
            tied = t2;
            (num, var) = p.step(d, prev, a, num, var);
            prev = a;
            if d + 1 == p.horizons() {
                self.found.evaluated += 1;
                let sr = num / var.sqrt();
                if better(sr, &self.path, self.found.sharpe, &self.found.path) {
                    self.found.sharpe = sr;
                    self.found.path.clone_from(&self.path);
                }
                return;
            }
            if self.prune && self.bounds.upper(d + 1, num, var) < self.found.sharpe {
                self.found.pruned += 1;
                return;
            }
        }
        self.descend(depth, prev, num, var, tied);
    }
}

/// Enumerates `Φ` exactly on `engine` (its thread count and molecules per thread as
/// configured), seeded by a beam search of `options.incumbent_beam` when pruning.
///
/// # Errors
/// [`OptimizeError::Engine`] when the job engine fails.
pub fn solve_exact(
    p: &Problem,
    options: &SearchOptions,
    engine: &Engine,
) -> Result<Solution, OptimizeError> {
    let (m, hz) = (p.omega().len(), p.horizons());
    let bounds = Bounds::new(p);
    let sym = Symmetry::new(p, options.symmetry);
    let (incumbent_sr, incumbent_path) = if options.prune && options.incumbent_beam > 0 {
        // The incumbent only speeds pruning up; its beam is narrowed to at most
        // MAX_BEAM_WORK prefixes, so a huge `incumbent_beam` cannot stall the search.
        let cap = (super::MAX_BEAM_WORK / (m as f64 * hz as f64)).max(1.0) as usize;
        let b = beam_search(p, options.incumbent_beam.min(cap), options.symmetry);
        (b.best.sharpe, b.best.path)
    } else {
        (f64::NEG_INFINITY, Vec::new())
    };
    let (mut depth, mut atoms) = (1usize, m);
    while depth < hz && atoms < MIN_ATOMS && atoms.saturating_mul(m) <= MAX_ATOMS {
        depth += 1;
        atoms *= m;
    }
    let ids: Vec<u64> = (0..atoms as u64).collect();
    let fresh = || Found {
        sharpe: incumbent_sr,
        path: incumbent_path.clone(),
        evaluated: 0,
        pruned: 0,
        symmetric: 0,
    };
    let work = |batch: &[u64]| -> Result<Found, Infallible> {
        let mut s = Search {
            p,
            bounds: &bounds,
            sym: &sym,
            prune: options.prune,
            path: vec![0; hz],
            found: fresh(),
            scratch: vec![Vec::new(); hz],
        };
        let mut molecule = fresh();
        for &t in batch {
            s.found = fresh();
            s.atom(t, depth);
            molecule.merge(std::mem::replace(&mut s.found, fresh()));
        }
        Ok(molecule)
    };
    let found = engine.run_reduce(&ids, fresh(), work, Found::merge)?;
    Ok(Solution {
        best: p.trajectory(&found.path),
        method: Method::Exact {
            max_exact: f64::INFINITY,
        },
        exact: true,
        stats: SearchStats {
            evaluated: found.evaluated,
            pruned: found.pruned,
            symmetric: found.symmetric,
            space: p.space_size(),
            atoms,
        },
    })
}
