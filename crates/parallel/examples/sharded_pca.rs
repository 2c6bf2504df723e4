//! The seed's canonical example: principal components of a matrix too large to load
//! at once, computed from column shards on disk.
//!
//! `Z` (rows x cols) is written as column shards. The top `k` eigenvectors `W` of
//! `Z'Z` are found by block power iteration, each step a sharded `Z W` (per-shard
//! partials summed on the fly) followed by a sharded `Z' (Z W)` (per-shard blocks
//! stitched in order); the principal components are `P = Z W`. The full matrix is
//! never in memory: each worker holds one shard at a time.
//!
//! ```sh
//! cargo run --release -p kf-parallel --example sharded_pca -- 20000 2000 100
//! ```
//! (arguments: rows, columns, columns per shard; defaults 20000, 2000, 100).

use kf_parallel::Engine;
use kf_parallel::sharded::ShardedMatrix;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rows, cols, shard) = (
        args.first().copied().unwrap_or(20_000),
        args.get(1).copied().unwrap_or(2_000),
        args.get(2).copied().unwrap_or(100),
    );
    let k = 3;
    // A matrix with three planted factors plus noise, so the top 3 PCs are known to
    // carry most of the variance.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let loadings: Vec<f64> = (0..cols * k).map(|_| noise()).collect();
    // Factor values per row (rows x k): small; the matrix itself is streamed to disk.
    let factors: Vec<f64> = (0..rows * k)
        .map(|i| noise() * (3.0 * (k - i % k) as f64))
        .collect();
    let dir = tempfile_dir()?;
    let m = ShardedMatrix::write_with(&dir, rows, cols, shard, |r, c| {
        let signal: f64 = (0..k)
            .map(|j| factors[r * k + j] * loadings[c * k + j])
            .sum();
        signal + 0.1 * noise()
    })?;
    let engine = Engine::new();
    let start = std::time::Instant::now();
    // Block power iteration on Z'Z with Gram-Schmidt.
    let mut w: Vec<f64> = (0..cols * k).map(|_| noise()).collect();
    let mut eigenvalues = vec![0.0; k];
    for _ in 0..30 {
        let p = m.times(&w, k, &engine)?;
        let mut next = m.transpose_times(&p, k, &engine)?;
        for j in 0..k {
            for prev in 0..j {
                let dot: f64 = (0..cols)
                    .map(|c| next[c * k + j] * next[c * k + prev])
                    .sum();
                for c in 0..cols {
                    next[c * k + j] -= dot * next[c * k + prev];
                }
            }
            let norm = (0..cols)
                .map(|c| next[c * k + j].powi(2))
                .sum::<f64>()
                .sqrt();
            eigenvalues[j] = norm;
            for c in 0..cols {
                next[c * k + j] /= norm;
            }
        }
        w = next;
    }
    let pcs = m.times(&w, k, &engine)?;
    let total_var: f64 = (0..rows * k).map(|i| pcs[i] * pcs[i]).sum();
    println!(
        "{rows} x {cols} matrix in {} shards of {shard} columns ({:.0} MB on disk)",
        m.shards.len(),
        (rows * cols * 8) as f64 / 1e6
    );
    let shown: Vec<String> = eigenvalues.iter().map(|e| format!("{e:.4e}")).collect();
    println!("top {k} eigenvalues of Z'Z: {}", shown.join(", "));
    println!("variance carried by the {k} PCs: {total_var:.4e}");
    println!(
        "{:.2} s on {} threads",
        start.elapsed().as_secs_f64(),
        engine.thread_count()
    );
    if let Some(kb) = peak_kb() {
        println!(
            "peak memory {:.0} MB (the matrix is {:.0} MB)",
            kb as f64 / 1024.0,
            (rows * cols * 8) as f64 / 1_048_576.0
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("kf-sharded-pca-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
