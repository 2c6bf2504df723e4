//! The tick files read on every thread: each file inflated whole, a large one cut
//! into pieces of whole lines, every piece of every file parsed on its own
//! thread, and the pieces joined in file order.
//!
//! A piece gives each asset's ticks their row times as if the asset had no ticks
//! before the piece. Joining a piece after the ones before it checks that the
//! asset's first tick in the piece is not earlier than its last one before, and
//! moves the piece's first row times on while they tie with the row before: a row
//! time is its tick's time or 1 ns after the previous row, so the fixed row is the
//! larger of the piece's own and the previous fixed row plus 1 ns, and from the
//! first row that keeps its own, the rest are already right. The result is the
//! sequential read's, row for row.
//!
//! Anything this path does not take (a quote in a file, a file that does not
//! inflate whole, a missing column, a bad value, a tick out of order, a crowded
//! millisecond) makes it give up; the sequential read then reads the files and
//! names the error with its file and line, as it always has.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::{AssetTicks, TickSource, trade_values};
use crate::Result;
use crate::csv_source::chunks::{Chunking, cut, read_whole};
use crate::csv_source::split::{Fields, Record, Splitter};
use crate::csv_source::{TimeFormat, TimeParser};

/// Ticks pushed this far past their own time crowd a millisecond (an error of the
/// sequential read).
const CROWDED: i64 = 1_000_000;

/// One asset's ticks in one piece: their times, their row times (counted from the
/// piece's start) and their values.
#[derive(Default)]
pub(super) struct Run {
    pub(super) raw: Vec<i64>,
    pub(super) rows: Vec<i64>,
    pub(super) values: Vec<[f64; 5]>,
}

/// One piece's ticks: each asset's symbol and run, in the order they first appear.
type Piece = Vec<(Vec<u8>, Run)>;

/// Every asset's ticks of every file, as the sequential read gives them; `None`
/// when the sequential read must do it (see the module doc).
///
/// # Errors
/// [`crate::DataError::Store`] for a file that cannot be opened.
pub(super) fn read_all(
    src: &TickSource,
    how: Chunking,
) -> Result<Option<Vec<(String, AssetTicks)>>> {
    let mut assets: Vec<(String, AssetTicks)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    // Files are taken in groups whose text fits the budget together.
    let mut at = 0;
    while at < src.files.len() {
        let mut end = at;
        let mut bytes = 0u64;
        while end < src.files.len() {
            let size = crate::csv_source::read::text_size(&src.files[end]);
            if end > at && bytes.saturating_add(size) > how.max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            end += 1;
        }
        let Some(parsed) = read_group(src, &src.files[at..end], how)? else {
            return Ok(None);
        };
        for piece in parsed {
            for (symbol, run) in piece {
                let a = match index.get(&symbol) {
                    Some(&a) => a,
                    None => {
                        let Ok(name) = String::from_utf8(symbol.clone()) else {
                            return Ok(None);
                        };
                        assets.push((name, AssetTicks::default()));
                        index.insert(symbol, assets.len() - 1);
                        assets.len() - 1
                    }
                };
                if join(&mut assets[a].1, run).is_none() {
                    return Ok(None);
                }
            }
        }
        at = end;
    }
    Ok(Some(assets))
}

/// The pieces of `files`, parsed in parallel, in file order and piece order.
fn read_group(src: &TickSource, files: &[PathBuf], how: Chunking) -> Result<Option<Vec<Piece>>> {
    let texts: Vec<Option<(Vec<u8>, u64)>> = files
        .par_iter()
        .map(|p| read_whole(p, how.max_bytes))
        .collect::<Result<_>>()?;
    let mut jobs: Vec<(&[u8], [usize; 7], usize)> = Vec::new();
    for text in &texts {
        let Some((text, size)) = text else {
            return Ok(None);
        };
        let Some((start, cols, width)) = header(src, text) else {
            return Ok(None);
        };
        let body = &text[start..];
        if memchr::memchr(b'"', body).is_some() {
            return Ok(None);
        }
        let pieces = if *size < how.min_bytes {
            vec![body]
        } else {
            cut(body, how.chunks)
        };
        jobs.extend(pieces.into_iter().map(|p| (p, cols, width)));
    }
    Ok(jobs
        .par_iter()
        .map(|&(piece, cols, width)| parse(src, piece, cols, width))
        .collect())
}

/// Where the header ends, the columns the ticks are read from (as the sequential
/// read finds them) and how many fields a row has; `None` for a column missing.
fn header(src: &TickSource, text: &[u8]) -> Option<(usize, [usize; 7], usize)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text);
    let header = rdr.byte_headers().ok()?.clone();
    let start = usize::try_from(rdr.position().byte()).ok()?.min(text.len());
    let col = |name: &str| header.iter().position(|h| h == name.as_bytes());
    let cols = [
        col(&src.params.timestamp_column)?,
        col(&src.params.asset_column)?,
        col("price")?,
        col("size")?,
        col("exchange")?,
        col("sale_condition")?,
        col("suspicious")?,
    ];
    Some((start, cols, header.len()))
}

/// Each asset's ticks in `piece`, in the order the assets first appear; `None` at
/// the first row the sequential read would refuse.
fn parse(src: &TickSource, piece: &[u8], cols: [usize; 7], width: usize) -> Option<Piece> {
    let mut split = Splitter::new(piece, b',', 1)?;
    let mut record = Record::default();
    let mut parser = TimeParser::new(TimeFormat::Iso, src.tz);
    let mut runs: Piece = Vec::new();
    let mut current: Option<usize> = None;
    while split.next_record(&mut record).is_some() {
        if record.len() != width {
            return None;
        }
        let field = |i: usize| record.field(cols[i]);
        let ts = parser.parse(field(0)).ok()?;
        let symbol = field(1);
        let a = match current {
            Some(a) if runs[a].0 == symbol => a,
            _ => {
                if symbol.is_empty() || std::str::from_utf8(symbol).is_err() {
                    return None;
                }
                let a = match runs.iter().position(|(s, _)| s == symbol) {
                    Some(a) => a,
                    None => {
                        runs.push((symbol.to_vec(), Run::default()));
                        runs.len() - 1
                    }
                };
                current = Some(a);
                a
            }
        };
        let values = trade_values(field).ok()?;
        let run = &mut runs[a].1;
        let row = match (run.raw.last(), run.rows.last()) {
            (Some(&prev), _) if ts < prev => return None,
            (Some(_), Some(&prev_row)) => ts.max(prev_row.saturating_add(1)),
            _ => ts,
        };
        if row - ts >= CROWDED {
            return None;
        }
        run.raw.push(ts);
        run.rows.push(row);
        run.values.push(values);
    }
    Some(runs)
}

/// Appends a piece's `run` to an asset's ticks, fixing its first row times (see
/// the module doc); `None` for a tick earlier than the asset's last one or a
/// crowded millisecond.
pub(super) fn join(t: &mut AssetTicks, mut run: Run) -> Option<()> {
    let (Some(&last_raw), Some(&last_row)) = (run.raw.last(), run.rows.last()) else {
        return Some(());
    };
    if let Some((prev_raw, prev_row)) = t.last {
        if run.raw[0] < prev_raw {
            return None;
        }
        let mut prev = prev_row;
        for (row, &raw) in run.rows.iter_mut().zip(&run.raw) {
            let fixed = (*row).max(prev.saturating_add(1));
            if fixed == *row {
                break;
            }
            if fixed - raw >= CROWDED {
                return None;
            }
            *row = fixed;
            prev = fixed;
        }
    }
    let last_row = run.rows.last().copied().unwrap_or(last_row);
    t.last = Some((last_raw, last_row));
    t.ts.append(&mut run.rows);
    t.values.append(&mut run.values);
    Some(())
}
