//! Partitions of atoms into molecules.
//!
//! An atom is an indivisible task, identified by its position `0..atoms`. A molecule
//! is a contiguous range of atoms scheduled as one unit. The partition decides the
//! load balance: equal counts of atoms ([`Partition::Linear`]) when atoms cost the
//! same, or equal work over a triangular index space ([`Partition::NestedLower`],
//! [`Partition::NestedUpper`]) when atom `i` costs in proportion to `i + 1` (or to
//! `atoms - i`), as in a loop `for i in 0..n { for j in 0..=i { .. } }`.

use std::ops::Range;

/// A contiguous range of atoms scheduled as one unit of work.
///
/// Invariant: `start < end` (a molecule is never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Molecule {
    /// Position of this molecule in atom order (0 holds the first atoms).
    pub index: usize,
    /// The atoms it holds.
    pub atoms: Range<usize>,
}

impl Molecule {
    /// Number of atoms.
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    /// Always false: a molecule holds at least one atom.
    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }
}

/// How atoms are grouped into molecules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Partition {
    /// Equal numbers of atoms (sizes differ by at most one): the seed's `linParts`.
    #[default]
    Linear,
    /// Equal work when atom `i` costs `i + 1` (lower-triangular loops): the first
    /// molecules hold more atoms. The seed's `nestedParts` (lower).
    NestedLower,
    /// Equal work when atom `i` costs `atoms - i` (upper-triangular loops): the last
    /// molecules hold more atoms. The seed's `nestedParts` (upper).
    NestedUpper,
}

impl Partition {
    /// Splits `atoms` atoms into at most `parts` non-empty molecules, in atom order.
    /// Zero atoms give no molecules; `parts == 0` is read as 1.
    pub fn split(self, atoms: usize, parts: usize) -> Vec<Molecule> {
        let parts = parts.clamp(1, atoms.max(1));
        if atoms == 0 {
            return Vec::new();
        }
        let bounds = match self {
            Partition::Linear => linear_bounds(atoms, parts),
            Partition::NestedLower => nested_lower_bounds(atoms, parts),
            Partition::NestedUpper => {
                // Mirror of the lower partition: atom i here is atom atoms-1-i there.
                let lower = nested_lower_bounds(atoms, parts);
                lower.iter().rev().map(|b| atoms - b).collect()
            }
        };
        bounds
            .windows(2)
            .filter(|w| w[1] > w[0])
            .enumerate()
            .map(|(index, w)| Molecule {
                index,
                atoms: w[0]..w[1],
            })
            .collect()
    }

    /// The relative cost of atom `i` of `atoms` under this partition's model (1 for
    /// linear), used to schedule heavy molecules first.
    pub fn atom_cost(self, i: usize, atoms: usize) -> f64 {
        match self {
            Partition::Linear => 1.0,
            Partition::NestedLower => (i + 1) as f64,
            Partition::NestedUpper => (atoms - i) as f64,
        }
    }

    /// The relative cost of a molecule: the sum of its atoms' costs.
    pub fn molecule_cost(self, m: &Molecule, atoms: usize) -> f64 {
        let (s, e) = (m.atoms.start as f64, m.atoms.end as f64);
        match self {
            Partition::Linear => e - s,
            // sum_{i=s}^{e-1} (i+1) = W(e) - W(s) with W(k) = k(k+1)/2
            Partition::NestedLower => (e * (e + 1.0) - s * (s + 1.0)) / 2.0,
            Partition::NestedUpper => {
                let n = atoms as f64;
                // sum_{i=s}^{e-1} (n - i)
                (e - s) * n - (e * (e - 1.0) - s * (s - 1.0)) / 2.0
            }
        }
    }
}

fn linear_bounds(atoms: usize, parts: usize) -> Vec<usize> {
    let (base, extra) = (atoms / parts, atoms % parts);
    let mut bounds = Vec::with_capacity(parts + 1);
    let mut at = 0;
    bounds.push(0);
    for p in 0..parts {
        at += base + usize::from(p < extra);
        bounds.push(at);
    }
    bounds
}

/// Boundaries `0 = b_0 < ... < b_k = atoms` with equal cumulative work
/// `W(b) = b (b + 1) / 2` per part: `b_j` solves `W(b) = j W(atoms) / k`.
fn nested_lower_bounds(atoms: usize, parts: usize) -> Vec<usize> {
    let n = atoms as f64;
    let total = n * (n + 1.0) / 2.0;
    let mut bounds = vec![0];
    for j in 1..parts {
        let target = total * j as f64 / parts as f64;
        let b = ((-1.0 + (1.0 + 8.0 * target).sqrt()) / 2.0).round() as usize;
        let prev = bounds.last().copied().unwrap_or(0);
        bounds.push(b.clamp(prev, atoms));
    }
    bounds.push(atoms);
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(ms: &[Molecule]) -> Vec<usize> {
        ms.iter().map(Molecule::len).collect()
    }

    #[test]
    fn linear_is_balanced_and_covers_every_atom_once() {
        let m = Partition::Linear.split(10, 3);
        assert_eq!(sizes(&m), [4, 3, 3]);
        assert_eq!(m[0].atoms, 0..4);
        assert!(m.windows(2).all(|w| w[0].atoms.end == w[1].atoms.start));
        assert_eq!(Partition::Linear.split(2, 5).len(), 2);
        assert!(Partition::Linear.split(0, 4).is_empty());
        assert_eq!(Partition::Linear.split(7, 0).len(), 1);
    }

    #[test]
    fn nested_partitions_put_more_atoms_where_atoms_are_cheap() {
        let lower = Partition::NestedLower.split(100, 4);
        let upper = Partition::NestedUpper.split(100, 4);
        assert_eq!(lower.first().map(|m| m.atoms.start), Some(0));
        assert_eq!(lower.last().map(|m| m.atoms.end), Some(100));
        // Lower: cheap atoms first, so the first molecule is the longest.
        assert!(sizes(&lower)[0] > sizes(&lower)[3]);
        // Upper mirrors lower.
        assert_eq!(
            sizes(&upper),
            sizes(&lower).into_iter().rev().collect::<Vec<_>>()
        );
        // Hand check: 100 atoms, 2 parts: W(b) = 5050 / 2 -> b = 70.56 -> 71.
        assert_eq!(Partition::NestedLower.split(100, 2)[0].atoms, 0..71);
    }

    #[test]
    fn molecule_cost_sums_atom_costs() {
        for p in [
            Partition::Linear,
            Partition::NestedLower,
            Partition::NestedUpper,
        ] {
            for m in p.split(37, 5) {
                let direct: f64 = m.atoms.clone().map(|i| p.atom_cost(i, 37)).sum();
                assert_eq!(p.molecule_cost(&m, 37), direct, "{p:?} {m:?}");
            }
        }
    }
}
