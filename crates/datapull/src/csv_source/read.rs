//! Reading one CSV file (plain or gzip) into long-layout batches: the header and
//! its plan, the streaming read, and the checks shared with the chunked read
//! ([`super::chunks`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use flate2::read::MultiGzDecoder;

use super::lines::{Tee, next_record};
use super::rows::Rows;
use super::{AssetFrom, CsvSource, asset_of_file};
use crate::{DataError, Result};

pub(super) fn store(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(super) fn line_err(path: &Path, line: u64, message: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Opens a file, decompressing it when it starts with the gzip magic bytes.
pub(crate) fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| store(path, format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader
        .fill_buf()
        .map_err(|e| store(path, format!("cannot read: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// About how many rows a file holds, from its text size over a line's size
/// estimated from the header's (each field at least as long as its name, so this
/// errs high): the file's size, or for gzip the uncompressed size its trailer
/// records. At most 16 M rows; 0 when the size cannot be read.
pub(super) fn rows_hint(path: &Path, header_len: usize) -> usize {
    let rows = text_size(path) / header_len.max(8) as u64;
    usize::try_from(rows.min(16 << 20)).unwrap_or(0)
}

/// About how many bytes of text a file holds: its size, or for gzip the
/// uncompressed size its trailer records (the last member's, mod 2^32: a hint, not a
/// fact); 0 when the size cannot be read.
pub(crate) fn text_size(path: &Path) -> u64 {
    use std::io::{Seek, SeekFrom};
    (|| -> Option<u64> {
        let mut f = File::open(path).ok()?;
        let len = f.metadata().ok()?.len();
        let mut magic = [0u8; 2];
        f.read_exact(&mut magic).ok()?;
        if magic != [0x1f, 0x8b] {
            return Some(len);
        }
        // ISIZE: the last member's uncompressed size mod 2^32 (a hint, not a fact).
        f.seek(SeekFrom::End(-4)).ok()?;
        let mut isize = [0u8; 4];
        f.read_exact(&mut isize).ok()?;
        Some(u64::from(u32::from_le_bytes(isize)))
    })()
    .unwrap_or(0)
}

/// Turns a `csv` crate error into one naming the file and line: `line` when the
/// error carries no position, else `line_of` its position (the `csv` crate's own
/// line numbers count from where it started reading a record; see
/// [`super::lines`]).
pub(crate) fn csv_err(
    path: &Path,
    line: u64,
    e: csv::Error,
    mut line_of: impl FnMut(&csv::Position) -> u64,
) -> DataError {
    match e.kind() {
        csv::ErrorKind::Io(io) => line_err(
            path,
            line,
            format!("cannot read past this line ({io}); is the file truncated or not really gzip?"),
        ),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => line_err(
            path,
            pos.as_ref().map_or(line, &mut line_of),
            format!("has {len} fields, but the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { pos, err } => line_err(
            path,
            pos.as_ref().map_or(line, &mut line_of),
            format!("is not valid UTF-8 ({err})"),
        ),
        _ => line_err(path, line, e.to_string()),
    }
}

/// Which file column feeds which output.
pub(super) struct Plan {
    pub(super) ts: usize,
    pub(super) knowledge: Option<usize>,
    pub(super) asset: Option<usize>,
    /// (file column index, feature name)
    pub(super) features: Vec<(usize, String)>,
}

pub(super) fn plan(src: &CsvSource, path: &Path, header: &[String]) -> Result<Plan> {
    let p = &src.params;
    let find = |name: &str, key: &str| -> Result<usize> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            store(
                path,
                format!(
                    "no column `{name}` (configured as `{key}`); the header has: {}",
                    header.join(", ")
                ),
            )
        })
    };
    let ts = find(&p.timestamp_column, "timestamp_column")?;
    let knowledge = p
        .knowledge_column
        .as_deref()
        .map(|k| find(k, "knowledge_column"))
        .transpose()?;
    let asset = match &src.asset {
        AssetFrom::Column(c) => Some(find(c, "asset_column")?),
        _ => None,
    };
    let renamed: Vec<String> = header
        .iter()
        .map(|h| p.rename.get(h).cloned().unwrap_or_else(|| h.clone()))
        .collect();
    let features = match &p.columns {
        Some(cols) => cols
            .iter()
            .map(|c| {
                renamed
                    .iter()
                    .position(|r| r == c)
                    .map(|i| (i, c.clone()))
                    .ok_or_else(|| {
                        store(
                            path,
                            format!(
                                "no column `{c}` (in `columns`); the columns after renaming are: {}",
                                renamed.join(", ")
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?,
        None => renamed
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != Some(ts) && Some(*i) != knowledge && Some(*i) != asset)
            .map(|(i, r)| (i, r.clone()))
            .collect(),
    };
    // Two features of one name would make a store that no reader can open (and a
    // frame with one feature hidden): refuse them here, naming the file.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in &features {
        if [kf_frame::END_TS, kf_frame::KNOWLEDGE_TS, kf_frame::ASSET].contains(&name.as_str()) {
            return Err(store(
                path,
                format!(
                    "column {} is named `{name}` (after renaming), a name the long layout \
                     keeps for itself; rename it",
                    i + 1
                ),
            ));
        }
        if let Some(first) = seen.insert(name.as_str(), *i) {
            return Err(store(
                path,
                format!(
                    "columns {} (`{}`) and {} (`{}`) are both named `{name}` after renaming; \
                     every column needs its own name (check the header and `rename`)",
                    first + 1,
                    header[first],
                    i + 1,
                    header[*i]
                ),
            ));
        }
    }
    Ok(Plan {
        ts,
        knowledge,
        asset,
        features,
    })
}

/// Puts every file's columns in the first file's order: files of one source may
/// write their columns in any order, but must have the same ones.
///
/// # Errors
/// [`DataError::Store`] naming a file whose columns differ from the first file's,
/// with what it lacks and what it has more.
pub(crate) fn same_columns(
    files: &[PathBuf],
    per_file: Vec<Vec<RecordBatch>>,
) -> Result<Vec<RecordBatch>> {
    // A file's batches (its chunks) share its columns: the file's first stands for
    // them.
    let mut batches = Vec::with_capacity(per_file.iter().map(Vec::len).sum());
    let mut file_of = Vec::with_capacity(batches.capacity());
    for (k, b) in per_file.into_iter().enumerate() {
        file_of.extend(std::iter::repeat_n(k, b.len()));
        batches.extend(b);
    }
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let want = first.schema();
    let names = |s: &arrow::datatypes::Schema| -> Vec<String> {
        s.fields().iter().map(|f| f.name().clone()).collect()
    };
    let want_names = names(&want);
    let mut out = Vec::with_capacity(batches.len());
    for (k, b) in batches.into_iter().enumerate() {
        let has = names(&b.schema());
        if has == want_names {
            out.push(b);
            continue;
        }
        let order: Option<Vec<usize>> = want_names
            .iter()
            .map(|n| has.iter().position(|h| h == n))
            .collect();
        match order {
            Some(order) if has.len() == want_names.len() => {
                let b = b.project(&order).map_err(kf_frame::FrameError::from)?;
                out.push(b);
            }
            _ => {
                let lacks: Vec<&str> = want_names
                    .iter()
                    .filter(|n| !has.contains(n))
                    .map(String::as_str)
                    .collect();
                let more: Vec<&str> = has
                    .iter()
                    .filter(|n| !want_names.contains(n))
                    .map(String::as_str)
                    .collect();
                let file = file_of
                    .get(k)
                    .and_then(|&i| files.get(i))
                    .map_or_else(String::new, |f| f.display().to_string());
                let first = files
                    .first()
                    .map_or_else(String::new, |f| f.display().to_string());
                return Err(store(
                    Path::new(&file),
                    format!(
                        "its columns differ from those of {first} (the first file): it lacks \
                         [{}] and has [{}] more; every file of a source needs the same columns",
                        lacks.join(", "),
                        more.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads one file into long-layout batches: one batch, or one per chunk for a file
/// large enough to parse on every thread ([`super::chunks`]). The rows are the
/// same, in the same order, either way, and so are the errors.
///
/// # Errors
/// [`DataError::Line`] naming the line of a malformed row; [`DataError::Store`] for a
/// file that cannot be opened, is empty, or lacks a configured column.
pub(crate) fn read_file(src: &CsvSource, path: &Path) -> Result<Vec<RecordBatch>> {
    if let Some(batches) = super::chunks::read_chunked(src, path, super::chunks::Chunking::auto())?
    {
        return Ok(batches);
    }
    read_streaming(src, path).map(|b| vec![b])
}

/// The header of a file: its names, trimmed (and a byte-order mark dropped).
///
/// # Errors
/// [`DataError::Store`] for an empty file.
pub(super) fn header_names(path: &Path, raw: &csv::ByteRecord) -> Result<Vec<String>> {
    let header: Vec<String> = raw
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(store(path, "the file is empty: no header line"));
    }
    Ok(header)
}

/// The asset of every row of `path`, when it does not come from a column.
///
/// # Errors
/// [`DataError::Store`] for a file name that does not match the configured pattern.
pub(super) fn fixed_asset(src: &CsvSource, path: &Path) -> Result<Option<String>> {
    Ok(match &src.asset {
        AssetFrom::Fixed(a) => Some(a.clone()),
        AssetFrom::FileName { prefix, suffix } => {
            Some(asset_of_file(path, prefix, suffix).map_err(|m| store(path, m))?)
        }
        AssetFrom::Column(_) => None,
    })
}

/// What a file's header line decides: its names, which column feeds which output,
/// and the asset of every row when no column holds it.
pub(super) struct Head {
    pub(super) header: Vec<String>,
    pub(super) plan: Plan,
    pub(super) fixed: Option<String>,
}

/// A `csv` reader over `reader` with the file's header read, and what the header
/// decides.
///
/// # Errors
/// [`DataError::Store`] for an empty file, a missing column or a file name that
/// does not match the pattern; [`DataError::Line`] for a header that cannot be
/// read.
pub(super) fn with_head<R: Read>(
    src: &CsvSource,
    path: &Path,
    reader: R,
) -> Result<(csv::Reader<R>, Head)> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(src.delimiter)
        .has_headers(true)
        .from_reader(reader);
    let header = header_names(
        path,
        rdr.byte_headers()
            .map_err(|e| csv_err(path, 1, e, csv::Position::line))?,
    )?;
    let plan = plan(src, path, &header)?;
    let fixed = fixed_asset(src, path)?;
    Ok((
        rdr,
        Head {
            header,
            plan,
            fixed,
        },
    ))
}

/// Reads one file as a stream: inflated and parsed a buffer at a time, on this
/// thread.
pub(super) fn read_streaming(src: &CsvSource, path: &Path) -> Result<RecordBatch> {
    let (tee, tail) = Tee::new(open(path)?, 1);
    let (
        mut rdr,
        Head {
            header,
            plan,
            fixed,
        },
    ) = with_head(src, path, tee)?;
    let rows = rows_hint(path, header.iter().map(|h| h.len() + 1).sum());
    let mut out = Rows::new(src, path, &header, &plan, fixed.as_deref(), rows);
    let mut record = csv::ByteRecord::new();
    let mut line = 1u64;
    while let Some(l) = next_record(&mut rdr, &tail, &mut record, line, path)? {
        line = l;
        out.push(&record, line)?;
    }
    Ok(out.finish()?.0)
}

/// A number from a CSV field: empty (or `NaN`, `nan`, `null`, `NA`) is missing.
///
/// The common case, a plain decimal, is parsed from the bytes by lexical-core (no
/// UTF-8 check, no `String`); it rounds correctly, as `str::parse` does, so the bits
/// are the same. Anything it refuses takes the general path below, which decides
/// what is missing, what is a number and what the error says.
pub(crate) fn parse_number(b: &[u8]) -> std::result::Result<f64, String> {
    if let Ok(x) = lexical_core::parse::<f64>(b)
        && x.is_finite()
    {
        return Ok(x);
    }
    parse_number_slow(b)
}

fn parse_number_slow(b: &[u8]) -> std::result::Result<f64, String> {
    let s = std::str::from_utf8(b).map_err(|_| "the value is not UTF-8".to_string())?;
    let s = s.trim();
    if s.is_empty() || matches!(s, "NaN" | "nan" | "null" | "NULL" | "NA") {
        return Ok(f64::NAN);
    }
    s.parse::<f64>().map_err(|_| {
        format!(
            "{:?} is not a number; list the numeric columns in `columns` to skip text columns",
            kf_config::clip_text(s)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_number, parse_number_slow};

    /// The fast path agrees with `str::parse` to the bit on every form a CSV holds,
    /// and hands what it cannot read to the slow path with the same outcome.
    #[test]
    fn fast_numbers_equal_std_parse() {
        let cases = [
            "0",
            "-0",
            "1",
            "172.36",
            "0.1",
            "1e-300",
            "2.2250738585072014e-308",
            "4.9e-324",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "0.30000000000000004",
            "9007199254740993",
            "-12.5e3",
            "1E5",
            ".5",
            "5.",
            "+3.25",
            " 7.5",
            "7.5 ",
            "inf",
            "-infinity",
            "NaN",
            "nan",
            "",
            "NA",
            "null",
            "1e400",
            "-1e400",
        ];
        for c in cases {
            let fast = parse_number(c.as_bytes());
            let slow = parse_number_slow(c.as_bytes());
            match (fast, slow) {
                (Ok(a), Ok(b)) => assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{c:?}: fast {a:e} vs std {b:e}"
                ),
                (a, b) => assert_eq!(a, b, "{c:?}"),
            }
        }
        // Decimal digits drawn from a generator: the two parsers agree to the bit.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = format!(
                "{}.{:0>6}e{}",
                x % 1_000_000,
                (x >> 20) % 1_000_000,
                (x >> 40) % 40
            );
            let want: f64 = s.parse().unwrap_or(f64::NAN);
            let got = parse_number(s.as_bytes()).unwrap_or(f64::NAN);
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
        }
        assert!(
            parse_number(b"abc")
                .unwrap_err()
                .contains("is not a number")
        );
        assert!(parse_number(b"\xff").is_err());
    }
}
