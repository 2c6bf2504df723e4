//! The atom/molecule job engine: how KaizenFlow for Rust runs many independent pieces
//! of work (config sweeps, time tiles, asset tiles) on all cores or across machines.
//!
//! An *atom* is an indivisible task; a *molecule* is a group of atoms scheduled as
//! one unit. The engine partitions atoms into molecules (linear or nested partitions,
//! over-decomposed into more molecules than workers), runs them on a backend (rayon
//! threads; MPI ranks behind the `mpi` feature), and stitches or reduces the results
//! in molecule order, so a parallel run is bit-identical to the sequential one.
//!
//! This crate is filled by the job-engine issue; for now it fixes the vocabulary.

#![deny(missing_docs)]

/// A contiguous range of atom indices scheduled as one unit of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Molecule {
    /// Position of this molecule in the partition (the order of reduction).
    pub index: usize,
    /// First atom (inclusive).
    pub start: usize,
    /// Last atom (exclusive).
    pub end: usize,
}

/// Splits `atoms` into at most `parts` molecules of sizes differing by at most one,
/// in atom order (the seed's `linear` partition). Zero atoms give no molecules;
/// `parts == 0` is read as 1.
pub fn linear_partition(atoms: usize, parts: usize) -> Vec<Molecule> {
    let parts = parts.clamp(1, atoms.max(1));
    if atoms == 0 {
        return Vec::new();
    }
    let (base, extra) = (atoms / parts, atoms % parts);
    let mut start = 0;
    (0..parts)
        .map(|index| {
            let len = base + usize::from(index < extra);
            let m = Molecule {
                index,
                start,
                end: start + len,
            };
            start += len;
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_partition_covers_all_atoms_in_balanced_order() {
        let m = linear_partition(10, 3);
        let sizes: Vec<usize> = m.iter().map(|m| m.end - m.start).collect();
        assert_eq!(sizes, [4, 3, 3]);
        assert_eq!((m[0].start, m[2].end), (0, 10));
        assert!(m.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(linear_partition(2, 5).len(), 2);
        assert!(linear_partition(0, 4).is_empty());
        assert_eq!(linear_partition(7, 0).len(), 1);
    }
}
