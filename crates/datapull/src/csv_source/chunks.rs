//! A file read from memory: inflated whole, and when large, cut into chunks of
//! whole lines, each chunk parsed on its own thread, with the per-asset order
//! checked across the cuts. Text with no quote character is split into records by
//! one vectorized scan ([`super::split`]) instead of the `csv` crate's
//! byte-at-a-time state machine.
//!
//! The result is the streaming read's, row for row and error for error:
//! - a chunk starts right after a newline, so it starts a record, and every line
//!   number is the file's, the line of the record's first byte (a chunk's first
//!   line is counted from the newlines before it);
//! - a file with a quote character anywhere after its header is not cut (a quoted
//!   field may hold a newline), and is parsed in one piece;
//! - each chunk checks the order of its own rows; then each asset's first row in a
//!   chunk is checked against its last row in the chunks before, and of all the
//!   errors the one on the earliest line is reported, as the streaming read, which
//!   stops at the first, would;
//! - a file that cannot be inflated whole (truncated, corrupt), or whose text
//!   turns out larger than the memory allows, is read by the streaming path after
//!   all, which says on which line it broke.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use arrow::array::RecordBatch;
use rayon::prelude::*;

use super::lines::LineCounter;
use super::read::{Head, Plan, csv_err, line_err, open, text_size, with_head};
use super::rows::{OrderCheck, Rows, order_err};
use super::split::{Fields, Record, Splitter};
use super::{CsvSource, Order};
use crate::{DataError, Result};

/// Files with at least this much text are cut into chunks (smaller ones are
/// parsed in one piece, in parallel with each other, a file per thread).
const MIN_BYTES: u64 = 4 << 20;
/// Chunks per thread, so that chunks of uneven cost even out.
const CHUNKS_PER_THREAD: usize = 4;

/// When and how finely a file is cut.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunking {
    /// Files with less text are parsed in one piece.
    pub(crate) min_bytes: u64,
    /// Files with more text than this are read as a stream (their text would not
    /// fit in memory beside their columns).
    pub(crate) max_bytes: u64,
    /// How many chunks to cut a file into.
    pub(crate) chunks: usize,
}

impl Chunking {
    /// Chunks for the threads of the current rayon pool: none on one thread, and
    /// a stream for a file whose text exceeds an eighth of the memory budget.
    pub(crate) fn auto() -> Chunking {
        let threads = rayon::current_num_threads();
        Chunking {
            min_bytes: if threads < 2 { u64::MAX } else { MIN_BYTES },
            max_bytes: kf_frame::budget::memory_limit() / 8,
            chunks: threads * CHUNKS_PER_THREAD,
        }
    }
}

/// Reads `path` from memory, in chunks when its text is large enough (`None`:
/// read it as a stream instead, for a file whose text is unknown, too large, or
/// does not inflate).
///
/// # Errors
/// As the streaming read: [`DataError::Line`] for the earliest malformed row,
/// [`DataError::Store`] for an empty file or a missing column.
pub(crate) fn read_chunked(
    src: &CsvSource,
    path: &Path,
    how: Chunking,
) -> Result<Option<Vec<RecordBatch>>> {
    let Some((text, size)) = read_whole(path, how.max_bytes)? else {
        return Ok(None);
    };
    let (
        rdr,
        Head {
            header,
            plan,
            fixed,
        },
    ) = with_head(src, path, &text[..])?;
    let start = usize::try_from(rdr.position().byte())
        .unwrap_or(text.len())
        .min(text.len());
    let body = &text[start..];
    let quoted = memchr::memchr(b'"', body).is_some();
    let pieces = if quoted || size < how.min_bytes {
        vec![body]
    } else {
        cut(body, how.chunks)
    };
    // Each piece's first line: the file's line after the newlines before it.
    let newlines: Vec<u64> = pieces
        .par_iter()
        .map(|p| memchr::memchr_iter(b'\n', p).count() as u64)
        .collect();
    let mut line = 1 + memchr::memchr_iter(b'\n', &text[..start]).count() as u64;
    let mut firsts = Vec::with_capacity(pieces.len());
    for n in &newlines {
        firsts.push(line);
        line += n;
    }
    let header_len: usize = header.iter().map(|h| h.len() + 1).sum();
    let ctx = Context {
        src,
        path,
        header: &header,
        plan: &plan,
        fixed: fixed.as_deref(),
        header_len,
        quoted,
    };
    let parsed: Vec<Parsed> = pieces
        .par_iter()
        .zip(firsts.par_iter())
        .map(|(piece, &first)| ctx.parse(piece, first))
        .collect();
    join(src, path, parsed).map(Some)
}

/// The text of `path`, inflated whole, and the size its trailer (or the file)
/// gave; `None` when that size is unknown or over `max_bytes`, when the file does
/// not inflate whole, or when its text turns out over `max_bytes` after all.
///
/// # Errors
/// [`DataError::Store`] for a file that cannot be opened.
pub(crate) fn read_whole(path: &Path, max_bytes: u64) -> Result<Option<(Vec<u8>, u64)>> {
    let size = text_size(path);
    if size == 0 || size > max_bytes {
        return Ok(None);
    }
    let mut text = Vec::new();
    // The trailer's size is a hint (a multi-member file records its last member's,
    // mod 2^32), so the read stops past the limit whatever it said.
    let _ = text.try_reserve_exact(usize::try_from(size).unwrap_or(0).saturating_add(1));
    let limit = max_bytes.saturating_add(1);
    if open(path)?.take(limit).read_to_end(&mut text).is_err() || text.len() as u64 >= limit {
        return Ok(None);
    }
    Ok(Some((text, size)))
}

/// What every chunk's parse shares.
struct Context<'a> {
    src: &'a CsvSource,
    path: &'a Path,
    header: &'a [String],
    plan: &'a Plan,
    fixed: Option<&'a str>,
    header_len: usize,
    /// Whether the text after the header holds a quote character (then the `csv`
    /// crate splits it; otherwise [`Splitter`]).
    quoted: bool,
}

/// One chunk's rows (or the error that stopped them) and its order check up to
/// where it stopped.
struct Parsed {
    rows: std::result::Result<RecordBatch, DataError>,
    order: OrderCheck,
}

impl Context<'_> {
    /// Parses the records of `piece`, whose first line is the file's line `first`.
    fn parse(&self, piece: &[u8], first: u64) -> Parsed {
        let mut rows = Rows::new(
            self.src,
            self.path,
            self.header,
            self.plan,
            self.fixed,
            piece.len() / self.header_len.max(8),
        );
        let split = match self.quoted {
            false => Splitter::new(piece, self.src.delimiter, first),
            true => None,
        };
        let failed = match split {
            Some(split) => self.split_records(split, &mut rows),
            None => self.csv_records(piece, first, &mut rows),
        };
        match failed {
            Some(e) => Parsed {
                rows: Err(e),
                order: rows.into_order(),
            },
            None => match rows.finish() {
                Ok((batch, order)) => Parsed {
                    rows: Ok(batch),
                    order,
                },
                Err(e) => Parsed {
                    rows: Err(e),
                    order: OrderCheck::new(self.src.order),
                },
            },
        }
    }

    /// Pushes the records of quote-free text onto `rows`; the error that stopped
    /// them, if any.
    fn split_records(&self, mut split: Splitter<'_>, rows: &mut Rows<'_>) -> Option<DataError> {
        let mut record = Record::default();
        while let Some(line) = split.next_record(&mut record) {
            // The `csv` crate compares every record with the header, in these words.
            if let Err(e) = self.field_count(record.len(), line) {
                return Some(e);
            }
            if let Err(e) = rows.push(&record, line) {
                return Some(e);
            }
        }
        None
    }

    /// Pushes the records of `piece` (whose first line is `first`) onto `rows`,
    /// parsed by the `csv` crate; the error that stopped them, if any.
    fn csv_records(&self, piece: &[u8], first: u64, rows: &mut Rows<'_>) -> Option<DataError> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(self.src.delimiter)
            .has_headers(false)
            .from_reader(piece);
        let mut record = csv::ByteRecord::new();
        let mut lines = LineCounter::new(first);
        let mut line_of = |p: &csv::Position| {
            lines.line_of(piece, usize::try_from(p.byte()).unwrap_or(piece.len()))
        };
        let mut line = first - 1;
        loop {
            match rdr.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(csv_err(self.path, line + 1, e, &mut line_of)),
            }
            line = record.position().map_or(line + 1, &mut line_of);
            // The streaming reader compares every record with the header; a
            // chunk's reader has none, so the first record of a chunk is checked
            // here (the reader checks each later one against the one before).
            if let Err(e) = self.field_count(record.len(), line) {
                return Some(e);
            }
            if let Err(e) = rows.push(&record, line) {
                return Some(e);
            }
        }
    }

    /// The error of a record on `line` with `len` fields when the header has
    /// another number.
    fn field_count(&self, len: usize, line: u64) -> Result<()> {
        if len == self.header.len() {
            return Ok(());
        }
        Err(line_err(
            self.path,
            line,
            format!("has {len} fields, but the header has {}", self.header.len()),
        ))
    }
}

/// The chunks' batches in file order, or the error on the earliest line: each
/// chunk's own error, or an asset's first row in a chunk out of order after its
/// last row in the chunks before.
fn join(src: &CsvSource, path: &Path, parsed: Vec<Parsed>) -> Result<Vec<RecordBatch>> {
    let mut lasts: HashMap<Vec<u8>, (i64, u64)> = HashMap::new();
    let mut batches = Vec::with_capacity(parsed.len());
    for Parsed { rows, order } in parsed {
        if src.order != Order::Any {
            // `firsts` holds rows before the chunk's own error only, so a violation
            // found here is on an earlier line than that error.
            for (asset, t, line) in &order.firsts {
                if let Some(&prev) = lasts.get(asset)
                    && !order.allows(prev.0, *t)
                {
                    return Err(order_err(path, *line, asset, *t, prev));
                }
            }
        }
        let batch = rows?;
        lasts.extend(order.into_lasts());
        batches.push(batch);
    }
    Ok(batches)
}

/// Cuts `body` into about `n` pieces of whole lines (each but the last ends with a
/// newline).
pub(crate) fn cut(body: &[u8], n: usize) -> Vec<&[u8]> {
    let target = body.len() / n.max(1) + 1;
    let mut pieces = Vec::with_capacity(n);
    let mut at = 0;
    while at < body.len() {
        let want = (at + target).min(body.len());
        let end = match memchr::memchr(b'\n', &body[want..]) {
            Some(i) => want + i + 1,
            None => body.len(),
        };
        pieces.push(&body[at..end]);
        at = end;
    }
    pieces
}
