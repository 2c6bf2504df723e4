//! The seed's canonical example: principal components `P = Z W` of a matrix `Z`
//! (`rows x cols`) too large to load at once.
//!
//! `Z` is stored as column shards, one file per shard (`rows x shard_cols` f64,
//! row-major, little-endian). Each molecule reads one shard `Z_b` and multiplies it
//! by its rows `W_b` of the eigenvector matrix `W` (`cols x k`); the partial products
//! `Z_b W_b` (`rows x k`) are summed by the on-the-fly reducer. Peak memory is one
//! shard and a few `rows x k` partials per worker, whatever the number of shards.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{BoxError, Engine, RunError};

/// A matrix stored as column shards on disk.
#[derive(Clone, Debug)]
pub struct ShardedMatrix {
    /// Rows of the matrix.
    pub rows: usize,
    /// For each shard: its file and the range of columns it holds.
    pub shards: Vec<(PathBuf, std::ops::Range<usize>)>,
}

impl ShardedMatrix {
    /// Writes `z` (`rows x cols`, row-major) as shards of `shard_cols` columns into
    /// `dir`, one file per shard.
    ///
    /// # Errors
    /// An I/O error from creating or writing a shard file.
    pub fn write(
        dir: &Path,
        z: &[f64],
        rows: usize,
        cols: usize,
        shard_cols: usize,
    ) -> std::io::Result<ShardedMatrix> {
        Self::write_with(dir, rows, cols, shard_cols, |r, c| z[r * cols + c])
    }

    /// Writes the matrix whose entry `(r, c)` is `value(r, c)` as shards of
    /// `shard_cols` columns into `dir`, streaming: the matrix is never in memory.
    ///
    /// # Errors
    /// An I/O error from creating or writing a shard file.
    pub fn write_with(
        dir: &Path,
        rows: usize,
        cols: usize,
        shard_cols: usize,
        mut value: impl FnMut(usize, usize) -> f64,
    ) -> std::io::Result<ShardedMatrix> {
        let shard_cols = shard_cols.max(1);
        let mut shards = Vec::new();
        for (b, start) in (0..cols).step_by(shard_cols).enumerate() {
            let end = (start + shard_cols).min(cols);
            let path = dir.join(format!("shard_{b:05}.f64"));
            let mut out = BufWriter::new(std::fs::File::create(&path)?);
            for r in 0..rows {
                for c in start..end {
                    out.write_all(&value(r, c).to_le_bytes())?;
                }
            }
            out.flush()?;
            shards.push((path, start..end));
        }
        Ok(ShardedMatrix { rows, shards })
    }

    /// Reads one shard.
    fn read_shard(&self, b: usize) -> Result<Vec<f64>, BoxError> {
        let (path, cols) = &self.shards[b];
        let expected = self.rows * cols.len() * 8;
        let mut bytes = Vec::with_capacity(expected);
        BufReader::new(std::fs::File::open(path)?).read_to_end(&mut bytes)?;
        if bytes.len() != expected {
            return Err(format!(
                "{}: {} bytes, expected {expected} ({} rows x {} columns of f64)",
                path.display(),
                bytes.len(),
                self.rows,
                cols.len()
            )
            .into());
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// `Z W` for `w` (`cols x k`, row-major), one shard per atom, the per-shard
    /// partials added in shard order: bit-identical for any threads and batches.
    ///
    /// # Errors
    /// [`RunError::Molecule`] naming the shard whose file is missing or truncated.
    pub fn times(&self, w: &[f64], k: usize, engine: &Engine) -> Result<Vec<f64>, RunError> {
        let shard_ids: Vec<usize> = (0..self.shards.len()).collect();
        let rows = self.rows;
        engine.run_reduce(
            &shard_ids,
            vec![0.0; rows * k],
            |ids: &[usize]| -> Result<Vec<Vec<f64>>, BoxError> {
                // One partial per shard, so the fold below adds them in shard order
                // whatever the grouping of shards into molecules.
                let mut partials = Vec::with_capacity(ids.len());
                for &b in ids {
                    let z = self.read_shard(b)?;
                    let cols = self.shards[b].1.clone();
                    let width = cols.len();
                    let mut partial = vec![0.0; rows * k];
                    for r in 0..rows {
                        let out = &mut partial[r * k..(r + 1) * k];
                        for (j, c) in cols.clone().enumerate() {
                            let zv = z[r * width + j];
                            for (o, wv) in out.iter_mut().zip(&w[c * k..(c + 1) * k]) {
                                *o += zv * wv;
                            }
                        }
                    }
                    partials.push(partial);
                }
                Ok(partials)
            },
            |acc, partials| {
                for partial in partials {
                    for (a, p) in acc.iter_mut().zip(&partial) {
                        *a += p;
                    }
                }
            },
        )
    }

    /// `Z' U` for `u` (`rows x k`, row-major): one shard per atom, each giving its
    /// columns' rows of the result (`shard_cols x k`), stitched in column order.
    ///
    /// # Errors
    /// As [`ShardedMatrix::times`].
    pub fn transpose_times(
        &self,
        u: &[f64],
        k: usize,
        engine: &Engine,
    ) -> Result<Vec<f64>, RunError> {
        let shard_ids: Vec<usize> = (0..self.shards.len()).collect();
        let rows = self.rows;
        let blocks = engine.run(&shard_ids, |ids: &[usize]| -> Result<Vec<f64>, BoxError> {
            let mut out = Vec::new();
            for &b in ids {
                let z = self.read_shard(b)?;
                let width = self.shards[b].1.len();
                let mut block = vec![0.0; width * k];
                for r in 0..rows {
                    let ur = &u[r * k..(r + 1) * k];
                    for j in 0..width {
                        let zv = z[r * width + j];
                        for (o, uv) in block[j * k..(j + 1) * k].iter_mut().zip(ur) {
                            *o += zv * uv;
                        }
                    }
                }
                out.extend_from_slice(&block);
            }
            Ok(out)
        })?;
        Ok(blocks.concat())
    }
}
