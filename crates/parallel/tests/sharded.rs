//! The seed's canonical example: PCs of a column-sharded matrix, summed on the fly.

use kf_parallel::sharded::ShardedMatrix;
use kf_parallel::{Engine, RunError};

/// Z (rows x cols) and W (cols x k) with small integer entries, so every product and
/// sum is exact and the direct product is a valid independent reference.
fn data(rows: usize, cols: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let z = (0..rows * cols)
        .map(|i| ((i * 37) % 11) as f64 - 5.0)
        .collect();
    let w = (0..cols * k).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
    (z, w)
}

fn direct(z: &[f64], w: &[f64], rows: usize, cols: usize, k: usize) -> Vec<f64> {
    let mut p = vec![0.0; rows * k];
    for r in 0..rows {
        for j in 0..k {
            p[r * k + j] = (0..cols).map(|c| z[r * cols + c] * w[c * k + j]).sum();
        }
    }
    p
}

#[test]
fn sharded_product_equals_the_direct_product() {
    let (rows, cols, k) = (50, 37, 3);
    let (z, w) = data(rows, cols, k);
    let dir = tempfile::tempdir().unwrap();
    let m = ShardedMatrix::write(dir.path(), &z, rows, cols, 5).unwrap();
    assert_eq!(m.shards.len(), 8); // 37 columns in shards of 5
    let expected = direct(&z, &w, rows, cols, k);
    for (threads, batches) in [(1, 1), (2, 1), (2, 3)] {
        let engine = Engine::new().threads(threads).batches(batches);
        assert_eq!(
            m.times(&w, k, &engine).unwrap(),
            expected,
            "{threads} threads"
        );
    }
}

#[test]
fn results_are_bit_identical_across_thread_counts_with_inexact_data() {
    let (rows, cols, k) = (20, 64, 2);
    let z: Vec<f64> = (0..rows * cols)
        .map(|i| (i as f64 * 0.37).sin() * 1e3)
        .collect();
    let w: Vec<f64> = (0..cols * k).map(|i| (i as f64 * 0.11).cos()).collect();
    let dir = tempfile::tempdir().unwrap();
    let m = ShardedMatrix::write(dir.path(), &z, rows, cols, 4).unwrap();
    let reference = m.times(&w, k, &Engine::new().debug(true)).unwrap();
    for (threads, batches) in [(2, 1), (2, 4), (1, 16)] {
        let got = m
            .times(&w, k, &Engine::new().threads(threads).batches(batches))
            .unwrap();
        assert!(
            got.iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}

#[test]
fn a_truncated_shard_is_named() {
    let (rows, cols, k) = (4, 6, 1);
    let (z, w) = data(rows, cols, k);
    let dir = tempfile::tempdir().unwrap();
    let m = ShardedMatrix::write(dir.path(), &z, rows, cols, 2).unwrap();
    let (path, _) = &m.shards[1];
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() - 8]).unwrap();
    let err = m
        .times(&w, k, &Engine::new().threads(2).batches(3))
        .unwrap_err();
    let RunError::Molecule(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.atoms, 1..2);
    assert!(
        err.to_string()
            .contains("shard_00001.f64: 56 bytes, expected 64"),
        "{err}"
    );
}

#[test]
fn transpose_product_equals_the_direct_one() {
    let (rows, cols, k) = (30, 23, 2);
    let (z, _) = data(rows, cols, k);
    let u: Vec<f64> = (0..rows * k).map(|i| ((i * 5) % 9) as f64 - 4.0).collect();
    let dir = tempfile::tempdir().unwrap();
    let m = ShardedMatrix::write(dir.path(), &z, rows, cols, 4).unwrap();
    let mut expected = vec![0.0; cols * k];
    for c in 0..cols {
        for j in 0..k {
            expected[c * k + j] = (0..rows).map(|r| z[r * cols + c] * u[r * k + j]).sum();
        }
    }
    let got = m
        .transpose_times(&u, k, &Engine::new().threads(2).batches(2))
        .unwrap();
    assert_eq!(got, expected);
}
