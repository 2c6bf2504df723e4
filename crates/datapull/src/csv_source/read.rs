//! Reading one CSV file (plain or gzip) into a long-layout batch.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use flate2::read::MultiGzDecoder;
use kf_frame::{Timestamp, long_schema};

use super::{AssetFrom, CsvSource, Order, TimeParser, asset_of_file};
use crate::{DataError, Result};

fn store(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn line_err(path: &Path, line: u64, message: impl Into<String>) -> DataError {
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
fn rows_hint(path: &Path, header_len: usize) -> usize {
    use std::io::{Seek, SeekFrom};
    let text = (|| -> Option<u64> {
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
    .unwrap_or(0);
    let rows = text / header_len.max(8) as u64;
    usize::try_from(rows.min(16 << 20)).unwrap_or(0)
}

/// Turns a `csv` crate error into one naming the file and line.
fn csv_err(path: &Path, line: u64, e: csv::Error) -> DataError {
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
            pos.as_ref().map_or(line, |p| p.line()),
            format!("has {len} fields, but the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { pos, err } => line_err(
            path,
            pos.as_ref().map_or(line, |p| p.line()),
            format!("is not valid UTF-8 ({err})"),
        ),
        _ => line_err(path, line, e.to_string()),
    }
}

/// Which file column feeds which output.
struct Plan {
    ts: usize,
    knowledge: Option<usize>,
    asset: Option<usize>,
    /// (file column index, feature name)
    features: Vec<(usize, String)>,
}

fn plan(src: &CsvSource, path: &Path, header: &[String]) -> Result<Plan> {
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
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
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
                let file = files
                    .get(k)
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

/// Tracks the last bar time per asset to enforce the configured order.
struct OrderCheck {
    order: Order,
    last: HashMap<Vec<u8>, (i64, u64)>,
    /// The previous row's asset and its entry, so a run of one asset hashes once.
    current: Vec<u8>,
    current_last: (i64, u64),
}

impl OrderCheck {
    fn check(&mut self, asset: &[u8], t: i64, line: u64) -> std::result::Result<(), (i64, u64)> {
        if self.order == Order::Any {
            return Ok(());
        }
        if asset != self.current.as_slice() {
            if !self.current.is_empty() {
                self.last.insert(self.current.clone(), self.current_last);
            }
            self.current = asset.to_vec();
            self.current_last = self.last.get(asset).copied().unwrap_or((i64::MIN, 0));
        }
        let (prev, prev_line) = self.current_last;
        let ok = match self.order {
            Order::Strict => t > prev,
            _ => t >= prev,
        };
        if !ok {
            return Err((prev, prev_line));
        }
        self.current_last = (t, line);
        Ok(())
    }
}

pub(crate) fn read_file(src: &CsvSource, path: &Path) -> Result<RecordBatch> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(src.delimiter)
        .has_headers(true)
        .from_reader(open(path)?);
    let header: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| csv_err(path, 1, e))?
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
    let plan = plan(src, path, &header)?;
    let fixed_asset = match &src.asset {
        AssetFrom::Fixed(a) => Some(a.clone()),
        AssetFrom::FileName { prefix, suffix } => {
            Some(asset_of_file(path, prefix, suffix).map_err(|m| store(path, m))?)
        }
        AssetFrom::Column(_) => None,
    };
    let mut times = TimeParser::new(src.format.clone(), src.tz);
    // Columns sized once from the file's text size, instead of grown by doubling
    // (each doubling copies the column into fresh pages).
    let rows = rows_hint(path, header.iter().map(|h| h.len() + 1).sum());
    let mut end_ts: Vec<i64> = Vec::with_capacity(rows);
    let mut knowledge_ts: Vec<i64> = Vec::with_capacity(rows);
    let mut assets: Vec<u8> = Vec::new();
    let mut asset_offsets: Vec<i32> = vec![0];
    let mut values: Vec<Vec<f64>> = (0..plan.features.len())
        .map(|_| Vec::with_capacity(rows))
        .collect();
    let mut order = OrderCheck {
        order: src.order,
        last: HashMap::new(),
        current: Vec::new(),
        current_last: (i64::MIN, 0),
    };
    let mut record = csv::ByteRecord::new();
    let mut line = 1u64;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(path, line + 1, e)),
        }
        line = record.position().map_or(line + 1, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or_default();
        let at = |m: String| line_err(path, line, m);
        let col_err =
            |i: usize, m: String| line_err(path, line, format!("column `{}`: {m}", header[i]));
        let t = times
            .parse(field(plan.ts))
            .map_err(|m| col_err(plan.ts, m))?;
        let end = t
            .checked_add(src.to_end)
            .ok_or_else(|| at("bar end out of range".into()))?;
        let known = match plan.knowledge {
            Some(k) => times.parse(field(k)).map_err(|m| col_err(k, m))?,
            None => end,
        }
        .checked_add(src.delay)
        .ok_or_else(|| at("knowledge time out of range".into()))?;
        let asset: &[u8] = match plan.asset {
            Some(a) => {
                let v = field(a);
                if v.is_empty() {
                    return Err(col_err(a, "the asset is empty".into()));
                }
                v
            }
            None => fixed_asset.as_deref().unwrap_or_default().as_bytes(),
        };
        if let Err((prev, prev_line)) = order.check(asset, end, line) {
            return Err(at(format!(
                "bar time {} is {} the previous one for asset {} ({} at line {prev_line}); \
                 sort the file by time, set `order = \"non_decreasing\"` for ticks, or set \
                 `knowledge_column` if repeated rows are revisions",
                Timestamp(end),
                if end == prev { "equal to" } else { "before" },
                kf_config::clip_text(&String::from_utf8_lossy(asset)),
                Timestamp(prev),
            )));
        }
        if plan.asset.is_some() {
            std::str::from_utf8(asset)
                .map_err(|_| col_err(plan.asset.unwrap_or(0), "the asset is not UTF-8".into()))?;
            assets.extend_from_slice(asset);
            let len = i32::try_from(assets.len())
                .map_err(|_| at("asset names exceed 2 GiB in one file".into()))?;
            asset_offsets.push(len);
        }
        for ((i, _), out) in plan.features.iter().zip(values.iter_mut()) {
            out.push(parse_number(field(*i)).map_err(|m| col_err(*i, m))?);
        }
        end_ts.push(end);
        knowledge_ts.push(known);
    }
    let n = end_ts.len();
    let asset_array = match &fixed_asset {
        Some(a) => StringArray::from_iter_values(std::iter::repeat_n(a.as_str(), n)),
        None => {
            let offsets = arrow::buffer::OffsetBuffer::new(asset_offsets.into());
            StringArray::try_new(offsets, assets.into(), None)
                .map_err(|e| store(path, e.to_string()))?
        }
    };
    let names: Vec<&str> = plan.features.iter().map(|(_, n)| n.as_str()).collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from(end_ts).with_timezone("UTC")),
        Arc::new(TimestampNanosecondArray::from(knowledge_ts).with_timezone("UTC")),
        Arc::new(asset_array),
    ];
    columns.extend(
        values
            .into_iter()
            .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
    );
    RecordBatch::try_new(long_schema(&names), columns).map_err(|e| store(path, e.to_string()))
}

/// A number from a CSV field: empty (or `NaN`, `nan`, `null`, `NA`) is missing.
///
/// The common case, a plain decimal, is parsed from the bytes by lexical-core (no
/// UTF-8 check, no `String`); it rounds correctly, as `str::parse` does, so the bits
/// are the same. Anything it refuses takes the general path below, which decides
/// what is missing, what is a number and what the error says.
fn parse_number(b: &[u8]) -> std::result::Result<f64, String> {
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
