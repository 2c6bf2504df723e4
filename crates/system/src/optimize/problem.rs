//! [`Problem`]: the forecasts, covariances and costs of a trajectory search, checked,
//! with the per-vector tables every method scores trajectories from.

use super::Trajectory;
use super::space::WeightSet;

/// Why a problem cannot be built or solved.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// An input has the wrong shape.
    #[error("{what} has {got} {unit}; expected {expected} (one per {per})")]
    Shape {
        /// The input (`mu`, `cov[2]`, `cost`, `start`).
        what: String,
        /// What it has.
        got: usize,
        /// What it should have.
        expected: usize,
        /// Rows, values.
        unit: &'static str,
        /// Asset, horizon.
        per: &'static str,
    },
    /// A value that must be a finite number (non-negative for costs) is not.
    #[error("{what} is {value:?}: {rule}")]
    Value {
        /// The input and position (`cost[1][0]`).
        what: String,
        /// The value.
        value: f64,
        /// What it must be.
        rule: &'static str,
    },
    /// A covariance that is not symmetric (beyond rounding) or gives some weight
    /// vector of `Ω` a negative variance, or a problem with a trajectory of zero
    /// variance (its Sharpe ratio is undefined).
    #[error(
        "cov[{horizon}] is not {why}; a covariance must be symmetric and positive \
         semi-definite, with no trajectory of zero variance (add a small ridge to its \
         diagonal)"
    )]
    Covariance {
        /// The horizon (0-based).
        horizon: usize,
        /// What fails.
        why: String,
    },
    /// A problem too large to hold or to enumerate.
    #[error(
        "|Φ| = |Ω|^H = {omega}^{horizons} = {space:.3e} trajectories is over the exact \
         limit of {max_exact:.3e}; use method = \"beam\" or \"auto\", fewer units or \
         horizons, or raise max_exact"
    )]
    TooLarge {
        /// `|Φ|`.
        space: f64,
        /// The limit.
        max_exact: f64,
        /// `|Ω|`.
        omega: usize,
        /// `H`.
        horizons: usize,
    },
    /// `Ω` itself is too large to build.
    #[error(
        "{assets} assets and {units} units give |Ω| = {count} weight vectors, over the \
         limit of {limit}; use fewer units or assets"
    )]
    OmegaTooLarge {
        /// `N`.
        assets: usize,
        /// `K`.
        units: u32,
        /// `|Ω|` (as text: it may not fit a u64).
        count: String,
        /// The limit.
        limit: usize,
    },
    /// A beam search that would score too many prefixes.
    #[error(
        "a beam of {width} over |Ω| = {omega} vectors and {horizons} horizons scores \
         {work:.3e} prefixes, over the limit of {limit:.0e}; use a narrower beam_width, \
         fewer units or assets"
    )]
    BeamTooLarge {
        /// The beam's width.
        width: usize,
        /// `|Ω|`.
        omega: usize,
        /// `H`.
        horizons: usize,
        /// `width × |Ω| × H`.
        work: f64,
        /// [`MAX_BEAM_WORK`].
        limit: f64,
    },
    /// The job engine failed.
    #[error(transparent)]
    Engine(#[from] kf_parallel::RunError),
}

/// The most prefixes a beam search may score (`width × |Ω| × H`): about a minute
/// on one core.
pub const MAX_BEAM_WORK: f64 = 1e10;

/// The most weight vectors `Ω` may hold: the tables hold a few `f64` per vector
/// and horizon.
pub const MAX_OMEGA: usize = 5_000_000;

/// Vectors squared per horizon up to which the costs between consecutive weights
/// are tabulated (64 MB of `f64` at most); above it they are computed as needed,
/// by the same arithmetic.
const PAIR_TABLE_LIMIT: usize = 8_000_000;

/// A discretized trajectory problem (see the module doc of `optimize`).
///
/// Invariant: every input is finite, the costs are non-negative, each `V_h` is
/// symmetric (symmetrized when its two halves differ only by rounding), `ω'V_hω ≥ 0`
/// on `Ω`, every trajectory has a positive variance, and the tables below agree
/// with `Ω` and the inputs.
#[derive(Clone, Debug)]
pub struct Problem {
    n: usize,
    horizons: usize,
    omega: WeightSet,
    /// `μ_h` (row-major, horizon × asset).
    mu: Vec<f64>,
    /// `V_h` (horizon × asset × asset).
    cov: Vec<f64>,
    /// `c_{i,h}` (horizon × asset).
    cost: Vec<f64>,
    /// `ω*`.
    start: Vec<f64>,
    /// `μ_h'ω` per horizon and vector.
    pub(super) ret: Vec<f64>,
    /// `ω'V_hω` per horizon and vector.
    pub(super) var: Vec<f64>,
    /// `τ_1` per vector, from `ω*`.
    pub(super) first_cost: Vec<f64>,
    /// `τ_h` per horizon `h ≥ 1`, previous vector and vector (when tabulated).
    pair_cost: Option<Vec<f64>>,
    /// `sqrt(d / K)` for `d` in `0..=2K` units.
    sqrt_units: Vec<f64>,
}

impl Problem {
    /// A problem of `k` units over `mu.len()` horizons and `mu[0].len()` assets.
    /// `cov[h]` is `V_h` as rows; `cost[h][i]` is `c_{i,h}`; `start` is `ω*`.
    ///
    /// # Errors
    /// [`OptimizeError::Shape`] for inputs of the wrong size,
    /// [`OptimizeError::Value`] for non-finite values or negative costs,
    /// [`OptimizeError::Covariance`] for a covariance that is not symmetric to 1e-9
    /// relative, that gives a vector of `Ω` a negative variance, or that leaves a
    /// trajectory with zero variance (a singular covariance is accepted when `Ω`
    /// avoids its null space), [`OptimizeError::OmegaTooLarge`] when `Ω` would not
    /// fit.
    pub fn new(
        k: u32,
        mu: &[Vec<f64>],
        cov: &[Vec<Vec<f64>>],
        cost: &[Vec<f64>],
        start: &[f64],
    ) -> Result<Problem, OptimizeError> {
        let horizons = mu.len();
        let n = mu.first().map_or(0, Vec::len);
        let shape = |what: String, got: usize, expected: usize, unit, per| {
            if got == expected {
                Ok(())
            } else {
                Err(OptimizeError::Shape {
                    what,
                    got,
                    expected,
                    unit,
                    per,
                })
            }
        };
        if horizons == 0 || n == 0 {
            return Err(OptimizeError::Shape {
                what: "mu".into(),
                got: if horizons == 0 { 0 } else { n },
                expected: 1,
                unit: if horizons == 0 { "rows" } else { "values" },
                per: if horizons == 0 { "horizon" } else { "asset" },
            });
        }
        if k == 0 {
            return Err(OptimizeError::Value {
                what: "units".into(),
                value: 0.0,
                rule: "must be at least 1",
            });
        }
        shape("cov".into(), cov.len(), horizons, "matrices", "horizon")?;
        shape("cost".into(), cost.len(), horizons, "rows", "horizon")?;
        shape("start".into(), start.len(), n, "values", "asset")?;
        let finite = |what: String, x: f64, non_negative: bool| {
            if !x.is_finite() {
                Err(OptimizeError::Value {
                    what,
                    value: x,
                    rule: "must be a finite number",
                })
            } else if non_negative && x < 0.0 {
                Err(OptimizeError::Value {
                    what,
                    value: x,
                    rule: "a cost coefficient must not be negative",
                })
            } else {
                Ok(())
            }
        };
        for h in 0..horizons {
            shape(format!("mu[{h}]"), mu[h].len(), n, "values", "asset")?;
            shape(format!("cost[{h}]"), cost[h].len(), n, "values", "asset")?;
            shape(format!("cov[{h}]"), cov[h].len(), n, "rows", "asset")?;
            for i in 0..n {
                finite(format!("mu[{h}][{i}]"), mu[h][i], false)?;
                finite(format!("cost[{h}][{i}]"), cost[h][i], true)?;
                shape(
                    format!("cov[{h}][{i}]"),
                    cov[h][i].len(),
                    n,
                    "values",
                    "asset",
                )?;
                for j in 0..n {
                    finite(format!("cov[{h}][{i}][{j}]"), cov[h][i][j], false)?;
                }
            }
            check_symmetric(h, &cov[h])?;
        }
        for (i, &s) in start.iter().enumerate() {
            finite(format!("start[{i}]"), s, false)?;
        }
        let count = WeightSet::count(n, k);
        let too_large = || OptimizeError::OmegaTooLarge {
            assets: n,
            units: k,
            count: count.map_or_else(|| "more than 2^128".into(), |c| c.to_string()),
            limit: MAX_OMEGA,
        };
        match count {
            Some(c) if c <= MAX_OMEGA as u128 => {}
            _ => return Err(too_large()),
        }
        let omega = WeightSet::new(n, k);
        let mut p = Problem {
            n,
            horizons,
            omega,
            mu: mu.concat(),
            cov: cov.iter().flat_map(|m| symmetrized(m)).collect(),
            cost: cost.concat(),
            start: start.to_vec(),
            ret: Vec::new(),
            var: Vec::new(),
            first_cost: Vec::new(),
            pair_cost: None,
            sqrt_units: (0..=2 * k)
                .map(|d| (f64::from(d) / f64::from(k)).sqrt())
                .collect(),
        };
        p.tabulate();
        p.check_variances()?;
        Ok(p)
    }

    /// Every `ω'V_hω` on `Ω` is non-negative, the smallest trajectory variance,
    /// `Σ_h min_Ω ω'V_hω`, is positive, and no trajectory's return, cost or variance
    /// overflows: every Sharpe ratio is defined and finite.
    fn check_variances(&self) -> Result<(), OptimizeError> {
        let m = self.omega.len();
        let mut least = 0.0;
        let mut zero_at = None;
        for h in 0..self.horizons {
            let vars = &self.var[h * m..(h + 1) * m];

            let (a, v) = vars
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |b, (a, v)| if v < b.1 { (a, v) } else { b },
                );
            if v < 0.0 {
                return Err(OptimizeError::Covariance {
                    horizon: h,
                    why: format!(
                        "positive semi-definite: ω'Vω = {v:e} for ω = {:?}",
                        self.omega.weights(a)
                    ),
                });
            }
            if v == 0.0 && zero_at.is_none() {
                zero_at = Some((h, a));
            }
            least += v;
        }
        // The objective's parts summed over the horizons at their largest: a finite
        // total means no trajectory's return, cost or variance overflows.
        let mut total = 0.0f64;
        for h in 0..self.horizons {
            let largest = |t: &[f64]| t.iter().fold(0.0f64, |b, x| b.max(x.abs()));
            total +=
                largest(&self.ret[h * m..(h + 1) * m]) + largest(&self.var[h * m..(h + 1) * m]);
            if h > 0 {
                total += self.cost[h * self.n..(h + 1) * self.n].iter().sum::<f64>() * 2f64.sqrt();
            }
        }
        total += self.first_cost.iter().fold(0.0f64, |b, x| b.max(*x));
        if !total.is_finite() {
            return Err(OptimizeError::Value {
                what: "the objective's largest terms summed over the horizons".into(),
                value: total,
                rule: "overflow a 64-bit float: scale mu, cov, cost or start down",
            });
        }
        match zero_at {
            Some((h, a)) if least <= 0.0 => Err(OptimizeError::Covariance {
                horizon: h,
                why: format!(
                    "positive definite enough: every horizon has a vector of zero \
                     variance (at horizon {h}, ω = {:?}), so a trajectory of them has no \
                     Sharpe ratio",
                    self.omega.weights(a)
                ),
            }),
            _ => Ok(()),
        }
    }

    fn tabulate(&mut self) {
        let (n, m) = (self.n, self.omega.len());
        self.ret = Vec::with_capacity(self.horizons * m);
        self.var = Vec::with_capacity(self.horizons * m);
        for h in 0..self.horizons {
            let mu = &self.mu[h * n..(h + 1) * n];
            let cov = &self.cov[h * n * n..(h + 1) * n * n];
            for a in 0..m {
                let w = self.omega.weights(a);
                self.ret.push(dot(mu, w));
                let mut v = 0.0;
                for i in 0..n {
                    v += w[i] * dot(&cov[i * n..(i + 1) * n], w);
                }
                self.var.push(v);
            }
        }
        let c0 = &self.cost[..n];
        self.first_cost = (0..m)
            .map(|a| {
                let w = self.omega.weights(a);
                (0..n)
                    .map(|i| c0[i] * (w[i] - self.start[i]).abs().sqrt())
                    .sum()
            })
            .collect();
        if self.horizons > 1 && m.saturating_mul(m) <= PAIR_TABLE_LIMIT / (self.horizons - 1) {
            let mut t = Vec::with_capacity((self.horizons - 1) * m * m);
            for h in 1..self.horizons {
                for prev in 0..m {
                    for a in 0..m {
                        t.push(self.cost_computed(h, prev, a));
                    }
                }
            }
            self.pair_cost = Some(t);
        }
    }

    /// Assets `N`.
    pub fn assets(&self) -> usize {
        self.n
    }

    /// Horizons `H`.
    pub fn horizons(&self) -> usize {
        self.horizons
    }

    /// `Ω`.
    pub fn omega(&self) -> &WeightSet {
        &self.omega
    }

    /// `|Φ| = |Ω|^H` (as f64).
    pub fn space_size(&self) -> f64 {
        (self.omega.len() as f64).powi(self.horizons as i32)
    }

    /// `μ_h`.
    pub fn mu(&self, h: usize) -> &[f64] {
        &self.mu[h * self.n..(h + 1) * self.n]
    }

    /// Row `i` of `V_h`.
    pub fn cov_row(&self, h: usize, i: usize) -> &[f64] {
        let n = self.n;
        &self.cov[(h * n + i) * n..(h * n + i + 1) * n]
    }

    /// `c_{·,h}`.
    pub fn cost(&self, h: usize) -> &[f64] {
        &self.cost[h * self.n..(h + 1) * self.n]
    }

    /// `ω*`.
    pub fn start(&self) -> &[f64] {
        &self.start
    }

    /// `τ_h` of moving to vector `a` at horizon `h` from vector `prev` (ignored at
    /// `h = 0`, where the move is from `ω*`).
    #[inline]
    pub(super) fn step_cost(&self, h: usize, prev: usize, a: usize) -> f64 {
        if h == 0 {
            return self.first_cost[a];
        }
        match &self.pair_cost {
            Some(t) => {
                let m = self.omega.len();
                t[((h - 1) * m + prev) * m + a]
            }
            None => self.cost_computed(h, prev, a),
        }
    }

    /// `τ_h` of moving to each vector at horizon `h` from vector `prev`: a row of the
    /// table, or the row computed into `scratch`.
    pub(super) fn costs_from<'s>(
        &'s self,
        h: usize,
        prev: usize,
        scratch: &'s mut Vec<f64>,
    ) -> &'s [f64] {
        let m = self.omega.len();
        if h == 0 {
            return &self.first_cost;
        }
        if let Some(t) = &self.pair_cost {
            let at = ((h - 1) * m + prev) * m;
            return &t[at..at + m];
        }
        scratch.clear();
        scratch.extend((0..m).map(|a| self.cost_computed(h, prev, a)));
        scratch
    }

    fn cost_computed(&self, h: usize, prev: usize, a: usize) -> f64 {
        let (u, p) = (self.omega.units(a), self.omega.units(prev));
        let c = self.cost(h);
        let mut t = 0.0;
        for i in 0..self.n {
            t += c[i] * self.sqrt_units[(u[i] - p[i]).unsigned_abs() as usize];
        }
        t
    }

    /// The running sums after choosing vector `a` at horizon `h` (after `prev`):
    /// `num + (μ_h'ω − τ_h)` and `var + ω'V_hω`. Every method accumulates a
    /// trajectory's score by this one step, horizon 1 first.
    #[inline]
    pub(super) fn step(&self, h: usize, prev: usize, a: usize, num: f64, var: f64) -> (f64, f64) {
        let m = self.omega.len();
        (
            num + (self.ret[h * m + a] - self.step_cost(h, prev, a)),
            var + self.var[h * m + a],
        )
    }

    /// The Sharpe ratio of the trajectory `path` (indices into `Ω`, one per horizon).
    ///
    /// # Panics
    /// When `path` has not one index below `|Ω|` per horizon: paths come from the
    /// search, not from users.
    pub fn sharpe(&self, path: &[u32]) -> f64 {
        let (num, var) = self.sums(path);
        num / var.sqrt()
    }

    fn sums(&self, path: &[u32]) -> (f64, f64) {
        let (mut num, mut var, mut prev) = (0.0, 0.0, 0usize);
        for (h, &a) in path.iter().enumerate() {
            (num, var) = self.step(h, prev, a as usize, num, var);
            prev = a as usize;
        }
        (num, var)
    }

    /// The trajectory `path` with its weights, costs and turnover.
    ///
    /// # Panics
    /// As [`Problem::sharpe`].
    pub fn trajectory(&self, path: &[u32]) -> Trajectory {
        let (num, var) = self.sums(path);
        let mut prev_w: Vec<f64> = self.start.clone();
        let mut prev = 0usize;
        let (mut costs, mut turnover, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for (h, &a) in path.iter().enumerate() {
            let w = self.omega.weights(a as usize);
            costs.push(self.step_cost(h, prev, a as usize));
            turnover.push(w.iter().zip(&prev_w).map(|(x, y)| (x - y).abs()).sum());
            weights.push(w.to_vec());
            prev_w = w.to_vec();
            prev = a as usize;
        }
        Trajectory {
            path: path.to_vec(),
            weights,
            sharpe: num / var.sqrt(),
            costs,
            turnover,
            net_return: num,
            variance: var,
        }
    }

    /// Groups of identical assets: same `μ`, costs and `ω*` at every horizon, and
    /// covariance rows equal up to the swap of the two. Swapping two of them maps a
    /// trajectory to one of the same score.
    pub fn identical_pairs(&self) -> Vec<(usize, usize)> {
        let n = self.n;
        let same = |i: usize, j: usize| -> bool {
            if self.start[i].to_bits() != self.start[j].to_bits() {
                return false;
            }
            (0..self.horizons).all(|h| {
                let (mu, c) = (self.mu(h), self.cost(h));
                let (ri, rj) = (self.cov_row(h, i), self.cov_row(h, j));
                mu[i].to_bits() == mu[j].to_bits()
                    && c[i].to_bits() == c[j].to_bits()
                    && ri[i].to_bits() == rj[j].to_bits()
                    && ri[j].to_bits() == rj[i].to_bits()
                    && (0..n)
                        .filter(|&x| x != i && x != j)
                        .all(|x| ri[x].to_bits() == rj[x].to_bits())
            })
        };
        // Chain each asset to the next identical one: lex-leader constraints on
        // consecutive members of a group cover the whole group.
        let mut pairs = Vec::new();
        let mut taken = vec![false; n];
        for i in 0..n {
            if taken[i] {
                continue;
            }
            let mut last = i;
            for j in i + 1..n {
                if !taken[j] && same(i, j) {
                    taken[j] = true;
                    pairs.push((last, j));
                    last = j;
                }
            }
        }
        pairs
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Symmetric to 1e-9 relative: printed or computed covariances differ in their last
/// digits between the two halves, and the halves are then averaged
/// ([`symmetrized`]).
fn check_symmetric(h: usize, m: &[Vec<f64>]) -> Result<(), OptimizeError> {
    for i in 0..m.len() {
        for j in 0..i {
            let (a, b) = (m[i][j], m[j][i]);
            if (a - b).abs() > 1e-9 * a.abs().max(b.abs()) {
                return Err(OptimizeError::Covariance {
                    horizon: h,
                    why: format!(
                        "symmetric: cov[{h}][{i}][{j}] = {a:?} but cov[{h}][{j}][{i}] = {b:?}"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `(V + V')/2`, row-major: the same bits as `V` when it is exactly symmetric.
fn symmetrized(m: &[Vec<f64>]) -> Vec<f64> {
    let n = m.len();
    let mut out = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (m[i][j], m[j][i]);
            out.push(if a == b { a } else { 0.5 * a + 0.5 * b });
        }
    }
    out
}
