//! Searches past brute force: beam search, and the static baseline that optimizes
//! each horizon on its own.

use std::cmp::Ordering;

use super::bound::Bounds;
use super::exact::Symmetry;
use super::problem::Problem;
use super::{Method, SearchStats, Solution, Trajectory};

/// A kept prefix of the beam.
#[derive(Clone, Debug)]
struct State {
    num: f64,
    var: f64,
    tied: u64,
    path: Vec<u32>,
}

/// A child of a kept prefix, before it is kept itself.
#[derive(Clone, Copy, Debug)]
struct Child {
    score: f64,
    parent: usize,
    a: u32,
    num: f64,
    var: f64,
    tied: u64,
}

/// Beam search: horizon by horizon, every kept prefix is extended by every vector
/// of `Ω`, and the `width` children with the highest score are kept. A child's
/// score is the admissible bound on its completions (its own Sharpe ratio at the
/// last horizon), ties broken by enumeration order, so the search is deterministic.
/// It scores `≤ width × |Ω| × H` prefixes and holds `≤ 2 width + |Ω|` children.
///
/// With `width ≥ |Ω|^(H−1)` it keeps every prefix and is exact.
pub fn beam_search(p: &Problem, width: usize, symmetry: bool) -> Solution {
    let (m, hz) = (p.omega().len(), p.horizons());
    let width = width.max(1);
    let bounds = Bounds::new(p);
    let sym = Symmetry::new(p, symmetry);
    let mut states = vec![State {
        num: 0.0,
        var: 0.0,
        tied: sym.all,
        path: Vec::new(),
    }];
    let mut stats = SearchStats {
        space: p.space_size(),
        ..SearchStats::default()
    };
    let mut scratch = Vec::new();
    for d in 0..hz {
        let last = d + 1 == hz;
        let mut kept: Vec<Child> = Vec::with_capacity(2 * width + m);
        for (si, s) in states.iter().enumerate() {
            let prev = s.path.last().map_or(0, |&a| a as usize);
            let cost = p.costs_from(d, prev, &mut scratch);
            let ret = &p.ret[d * m..(d + 1) * m];
            let vr = &p.var[d * m..(d + 1) * m];
            for a in 0..m {
                let Some(tied) = sym.admit(s.tied, a) else {
                    stats.symmetric += 1;
                    continue;
                };
                let num = s.num + (ret[a] - cost[a]);
                let var = s.var + vr[a];
                let score = if last {
                    stats.evaluated += 1;
                    num / var.sqrt()
                } else {
                    bounds.upper(d + 1, num, var)
                };
                kept.push(Child {
                    score,
                    parent: si,
                    a: a as u32,
                    num,
                    var,
                    tied,
                });
            }
            if kept.len() >= 2 * width {
                keep_best(&mut kept, width, &states);
            }
        }
        keep_best(&mut kept, width, &states);
        states = kept
            .iter()
            .map(|c| {
                let mut path = states[c.parent].path.clone();
                path.push(c.a);
                State {
                    num: c.num,
                    var: c.var,
                    tied: c.tied,
                    path,
                }
            })
            .collect();
    }
    // `keep_best` sorted the last children best first.
    let path = states.first().map(|s| s.path.clone()).unwrap_or_default();
    Solution {
        best: p.trajectory(&path),
        method: Method::Beam { width },
        exact: false,
        stats,
    }
}

/// Keeps the `width` best children, sorted best first (higher score, then earlier
/// in enumeration order).
fn keep_best(kept: &mut Vec<Child>, width: usize, states: &[State]) {
    let order = |x: &Child, y: &Child| -> Ordering {
        y.score.total_cmp(&x.score).then_with(|| {
            states[x.parent]
                .path
                .cmp(&states[y.parent].path)
                .then(x.a.cmp(&y.a))
        })
    };
    if kept.len() > width {
        kept.select_nth_unstable_by(width - 1, order);
        kept.truncate(width);
    }
    kept.sort_by(order);
}

/// The static baseline: each horizon's weights maximize that horizon's own Sharpe
/// ratio net of the cost of moving from the weights before it (`ω*` first), ties to
/// the earlier vector; the stitched trajectory is then scored by the full
/// objective. It ignores that a trade now changes what later horizons pay.
pub fn static_baseline(p: &Problem) -> Trajectory {
    let m = p.omega().len();
    let mut path = Vec::with_capacity(p.horizons());
    let mut prev = 0usize;
    let mut scratch = Vec::new();
    for h in 0..p.horizons() {
        let cost = p.costs_from(h, prev, &mut scratch);
        let mut best = (f64::NEG_INFINITY, 0usize);
        for a in 0..m {
            let sr = (p.ret[h * m + a] - cost[a]) / p.var[h * m + a].sqrt();
            if sr > best.0 {
                best = (sr, a);
            }
        }
        path.push(best.1 as u32);
        prev = best.1;
    }
    p.trajectory(&path)
}
