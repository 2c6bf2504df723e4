//! `Ω`: every weight vector with `Σ|ω| = 1` made of `K` whole units of capital.

/// The feasible weight vectors of one horizon, in units of `1/K`.
///
/// Invariant: each vector's absolute units sum to `K`, no vector appears twice (a
/// sign on a zero weight is not a second vector), and the order is fixed: the
/// splits of `K` among the `N` assets in lexicographic order of their absolute
/// units (`(0, …, 0, K)` first, `(K, 0, …, 0)` last), and within a split the sign
/// patterns of its nonzero weights as a binary count (bit `b` set: the `b`-th
/// nonzero weight is short; all long first). Ties between trajectories break by
/// this order.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightSet {
    n: usize,
    k: u32,
    units: Vec<i32>,
    weights: Vec<f64>,
}

impl WeightSet {
    /// `Ω` for `n` assets and `k` units.
    ///
    /// The caller bounds the size first ([`WeightSet::count`]): this allocates
    /// `count × n` values.
    pub fn new(n: usize, k: u32) -> WeightSet {
        let mut units = Vec::new();
        let mut split = vec![0i32; n];
        if n > 0 && k > 0 {
            splits(&mut split, 0, k as i32, &mut |p: &[i32]| {
                let nonzero: Vec<usize> = (0..p.len()).filter(|&i| p[i] != 0).collect();
                for mask in 0u64..(1u64 << nonzero.len()) {
                    let start = units.len();
                    units.extend_from_slice(p);
                    for (b, &i) in nonzero.iter().enumerate() {
                        if mask >> b & 1 == 1 {
                            units[start + i] = -units[start + i];
                        }
                    }
                }
            });
        }
        let weights = units.iter().map(|&u| f64::from(u) / f64::from(k)).collect();
        WeightSet {
            n,
            k,
            units,
            weights,
        }
    }

    /// `|Ω|` for `n` assets and `k` units, without building it:
    /// `Σ_j C(n, j) C(k−1, j−1) 2^j` over the `j` nonzero weights (`None` on
    /// overflow). Before deduplicating zero signs it would be `C(k+n−1, n−1) 2^n`.
    pub fn count(n: usize, k: u32) -> Option<u128> {
        if n == 0 || k == 0 {
            return Some(0);
        }
        let mut total: u128 = 0;
        for j in 1..=n.min(k as usize) {
            let term = binomial(n as u128, j as u128)?
                .checked_mul(binomial(u128::from(k) - 1, j as u128 - 1)?)?
                .checked_mul(1u128.checked_shl(j as u32)?)?;
            total = total.checked_add(term)?;
        }
        Some(total)
    }

    /// `C(k+n−1, n−1) 2^n`: the vectors of the seed's construction before a sign on
    /// a zero weight is recognized as the same vector (`None` on overflow).
    pub fn raw_count(n: usize, k: u32) -> Option<u128> {
        if n == 0 || k == 0 {
            return Some(0);
        }
        binomial(u128::from(k) + n as u128 - 1, n as u128 - 1)?
            .checked_mul(1u128.checked_shl(u32::try_from(n).ok()?)?)
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.units.len().checked_div(self.n).unwrap_or(0)
    }

    /// Whether there are none (no assets or no units).
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Assets per vector.
    pub fn assets(&self) -> usize {
        self.n
    }

    /// Units of capital `K`.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Vector `a` in signed units (`|units|` sums to `K`).
    pub fn units(&self, a: usize) -> &[i32] {
        &self.units[a * self.n..(a + 1) * self.n]
    }

    /// Vector `a` as weights (`units / K`).
    pub fn weights(&self, a: usize) -> &[f64] {
        &self.weights[a * self.n..(a + 1) * self.n]
    }
}

/// Calls `f` with every split of `left` units among `p[at..]`, in lexicographic
/// order.
fn splits(p: &mut [i32], at: usize, left: i32, f: &mut dyn FnMut(&[i32])) {
    if at + 1 == p.len() {
        p[at] = left;
        f(p);
        return;
    }
    for u in 0..=left {
        p[at] = u;
        splits(p, at + 1, left - u, f);
    }
}

fn binomial(n: u128, k: u128) -> Option<u128> {
    if k > n {
        return Some(0);
    }
    let k = k.min(n - k);
    let mut r: u128 = 1;
    for i in 0..k {
        // r * (n - i) / (i + 1) stays whole at every step.
        r = r.checked_mul(n - i)? / (i + 1);
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_assets_two_units_by_hand() {
        // Splits (0,2), (1,1), (2,0); signs on nonzeros only.
        let w = WeightSet::new(2, 2);
        let all: Vec<&[i32]> = (0..w.len()).map(|a| w.units(a)).collect();
        assert_eq!(
            all,
            vec![
                &[0, 2][..],
                &[0, -2],
                &[1, 1],
                &[-1, 1],
                &[1, -1],
                &[-1, -1],
                &[2, 0],
                &[-2, 0]
            ]
        );
        assert_eq!(WeightSet::count(2, 2), Some(8));
        // C(3,1) * 4 = 12 before zero signs are merged.
        assert_eq!(WeightSet::raw_count(2, 2), Some(12));
        assert_eq!(w.weights(2), &[0.5, 0.5]);
    }

    #[test]
    fn the_count_formula_matches_the_construction() {
        for n in 1..=5 {
            for k in 1..=7 {
                let w = WeightSet::new(n, k);
                assert_eq!(Some(w.len() as u128), WeightSet::count(n, k), "n {n} k {k}");
                for a in 0..w.len() {
                    let s: i32 = w.units(a).iter().map(|u| u.abs()).sum();
                    assert_eq!(s, k as i32);
                }
                // No vector twice.
                let mut seen: Vec<&[i32]> = (0..w.len()).map(|a| w.units(a)).collect();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), w.len());
            }
        }
        // N = 4, K = 6: 8 + 120 + 320 + 160.
        assert_eq!(WeightSet::count(4, 6), Some(608));
        assert_eq!(WeightSet::count(200, 200), None);
    }
}
