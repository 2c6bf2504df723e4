//! Reads of uncompressed, contiguous feature datasets that go around the HDF5
//! library: the dataset's bytes are the frame's row-major feature buffer, so rows
//! `r0..r1` of every asset are one byte range of the file.
//!
//! Two ways to fetch that range, both outside the library's global lock:
//! - [`ReadMode::Map`] maps it (private, read-only, pre-faulted when the whole
//!   range is returned) and hands the mapping to the frame as its buffer: no copy.
//! - [`ReadMode::Copy`] reads it with positional reads on every core into an owned,
//!   64-byte-aligned buffer.
//!
//! A dataset qualifies when it is contiguous, unfiltered, allocated, native `f64`,
//! and lies inside the file ([`extent`]); anything else, and every chunked
//! dataset, goes through the library ([`ReadMode::Library`]).

use std::fs::File;
use std::os::unix::fs::FileExt;

use arrow::buffer::{Buffer, MutableBuffer, ScalarBuffer};
use rayon::prelude::*;

/// How an uncompressed, contiguous feature dataset is read. Chunked (compressed)
/// datasets are always read through the HDF5 library.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Memory-map the requested rows: a query for every asset returns the mapped
    /// file pages themselves (no copy; pages are faulted in before the query
    /// returns), a query for some assets gathers them from the mapping. The
    /// default. The file must not be truncated or rewritten in place while a frame
    /// read from it is alive ([`write_hdf5`](super::write_hdf5) replaces files by
    /// renaming, which is safe); use [`ReadMode::Copy`] where another program may.
    #[default]
    Map,
    /// Positional reads of the requested rows, 8 MiB blocks in parallel, into
    /// owned buffers; a query for some assets gathers them from the rows read.
    /// Nothing stays tied to the file.
    Copy,
    /// The HDF5 library's hyperslab reads for every dataset (serial: the library is
    /// locked). The reference the other modes are checked against.
    Library,
}

impl ReadMode {
    /// Parses `map`, `copy` or `library`.
    ///
    /// # Errors
    /// A message listing the known modes.
    pub fn parse(text: &str) -> Result<ReadMode, String> {
        match text {
            "map" => Ok(ReadMode::Map),
            "copy" => Ok(ReadMode::Copy),
            "library" => Ok(ReadMode::Library),
            other => Err(format!(
                "unknown read mode {other:?}; known: map, copy, library"
            )),
        }
    }
}

/// The byte offset of a feature dataset's values in the file, if the dataset can
/// be read directly: contiguous, unfiltered, allocated, native `f64`, with
/// `cells` values.
///
/// # Errors
/// A message when such a dataset claims bytes past the end of the file (a
/// truncated file): mapping it would fault on first access.
pub(super) fn extent(
    ds: &hdf5::Dataset,
    cells: usize,
    file_len: u64,
) -> Result<Option<u64>, String> {
    if cells == 0 || ds.is_chunked() || !ds.filters().is_empty() {
        return Ok(None);
    }
    let native = ds.dtype().is_ok_and(|t| t.is::<f64>());
    let Some(offset) = ds.offset().filter(|_| native) else {
        return Ok(None);
    };
    let bytes = cells as u64 * 8;
    if ds.storage_size() != bytes {
        return Ok(None);
    }
    if offset.checked_add(bytes).is_none_or(|end| end > file_len) {
        return Err(format!(
            "its {bytes} bytes at offset {offset} run past the end of the file \
             ({file_len} bytes): the file is truncated; write the store again"
        ));
    }
    Ok(Some(offset))
}

/// Maps rows `r0..r1` (of `n` values each) of the dataset at `offset`; `populate`
/// faults every page in now. `None` when the mapped values would not be 8-byte
/// aligned (a file written without alignment): read them with [`copy_rows`].
///
/// # Errors
/// The operating system's error from `mmap`.
pub(super) fn map_rows(
    file: &File,
    offset: u64,
    (r0, r1): (usize, usize),
    n: usize,
    populate: bool,
) -> std::io::Result<Option<ScalarBuffer<f64>>> {
    let len = (r1 - r0) * n * 8;
    if len == 0 {
        return Ok(Some(ScalarBuffer::from(Vec::new())));
    }
    let start = offset + (r0 * n * 8) as u64;
    if !start.is_multiple_of(8) {
        return Ok(None);
    }
    let mut options = memmap2::MmapOptions::new();
    options.offset(start).len(len);
    if populate {
        options.populate();
    }
    // SAFETY: a private, read-only map of a range that `extent` checked lies inside
    // the file. What Rust cannot check is that no other process truncates or
    // rewrites the file while the map lives; `ReadMode::Map` documents that
    // contract and `ReadMode::Copy` is the mode that does not need it.
    let map = unsafe { options.map(file)? };
    // The map starts on a page boundary plus `start % page`, so with `start` a
    // multiple of 8 its values are aligned for f64.
    let buffer = Buffer::from(bytes::Bytes::from_owner(map));
    if buffer.as_ptr().align_offset(8) != 0 {
        return Ok(None);
    }
    Ok(Some(ScalarBuffer::new(buffer, 0, len / 8)))
}

/// Reads rows `r0..r1` (of `n` values each) of the dataset at `offset` into an
/// owned buffer, 8 MiB per positional read, blocks in parallel.
///
/// # Errors
/// The operating system's error from `pread` (a short file is `UnexpectedEof`).
pub(super) fn copy_rows(
    file: &File,
    offset: u64,
    (r0, r1): (usize, usize),
    n: usize,
) -> std::io::Result<ScalarBuffer<f64>> {
    const BLOCK: usize = 8 << 20;
    let len = (r1 - r0) * n * 8;
    let start = offset + (r0 * n * 8) as u64;
    // A zeroed Vec of f64 comes from calloc: fresh pages that the reads fault in
    // on every core, not a serial memset first (an over-aligned zeroed allocation
    // is one). Wrapping it as bytes moves the allocation, no copy.
    let mut out = MutableBuffer::from(vec![0.0f64; len / 8]);
    out.as_slice_mut()
        .par_chunks_mut(BLOCK)
        .enumerate()
        .try_for_each(|(i, block)| file.read_exact_at(block, start + (i * BLOCK) as u64))?;
    Ok(ScalarBuffer::new(Buffer::from(out), 0, len / 8))
}

/// The values of the assets at `columns` (stored indices, ascending) out of rows
/// of `n` values: row-major, `columns.len()` per row.
pub(super) fn gather(rows: &[f64], n: usize, columns: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() / n.max(1) * columns.len());
    for row in rows.chunks_exact(n) {
        out.extend(columns.iter().map(|&a| row[a]));
    }
    out
}
