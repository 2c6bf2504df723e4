//! Checksums of a store's content, written in its footer and checked on every read.
//!
//! The Parquet writer we use does not write page CRCs, and a flipped bit in a data
//! page decodes to another value without complaint. So the writer records, for every
//! row group and column, a CRC-32 of the column's *decoded* values (timestamps and
//! floats by their bits, assets by their names), and a CRC of the footer's own
//! metadata; the reader recomputes the CRC of each column it decodes and refuses a
//! mismatch, naming the file, the row group and the column. Checking decoded values
//! costs one pass over memory already read (CRC-32 runs at several GB/s), and works
//! for any projection of columns and any subset of row groups.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};

/// The footer key of the per-row-group checksums: one line per row group, one hex
/// CRC per column of the store's schema.
pub(super) const META_CHECKSUMS: &str = "kaizenflow.checksums";
/// The footer key of the CRC of the other `kaizenflow.*` entries.
pub(super) const META_CRC: &str = "kaizenflow.meta_crc";

/// The CRC of one column's values, or `None` for a type a store does not hold.
pub(super) fn column_crc(col: &dyn Array) -> Option<u32> {
    let mut h = crc32fast::Hasher::new();
    match col.data_type() {
        DataType::Timestamp(..) | DataType::Int64 => {
            let c = arrow::compute::cast(col, &DataType::Int64).ok()?;
            for v in c.as_primitive::<Int64Type>().values() {
                h.update(&v.to_le_bytes());
            }
        }
        DataType::Float64 => {
            let c = col.as_primitive::<Float64Type>();
            for (i, v) in c.values().iter().enumerate() {
                // A null (never written by this crate) hashes as NaN's canonical bits.
                let bits = if c.is_null(i) {
                    f64::NAN.to_bits()
                } else {
                    v.to_bits()
                };
                h.update(&bits.to_le_bytes());
            }
        }
        DataType::Dictionary(..) => {
            let d = col.as_dictionary_opt::<Int32Type>()?;
            let values = arrow::compute::cast(d.values(), &DataType::Utf8).ok()?;
            let values = values.as_string::<i32>();
            for k in d.keys().values() {
                let name = usize::try_from(*k)
                    .ok()
                    .filter(|&k| k < values.len())
                    .map_or(&b"\xff"[..], |k| values.value(k).as_bytes());
                h.update(name);
                h.update(&[0]);
            }
        }
        DataType::Utf8 => {
            for v in col.as_string::<i32>().iter() {
                h.update(v.map_or(&b"\xff"[..], str::as_bytes));
                h.update(&[0]);
            }
        }
        _ => return None,
    }
    Some(h.finalize())
}

/// The CRC of every column of `batch`, in schema order, as one line of hex.
pub(super) fn batch_line(batch: &RecordBatch) -> String {
    batch
        .columns()
        .iter()
        .map(|c| column_crc(c.as_ref()).map_or_else(|| "-".to_string(), |v| format!("{v:08x}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CRC of the footer entries that describe the store.
pub(super) fn meta_crc(entries: &[(&str, &str)]) -> String {
    let mut h = crc32fast::Hasher::new();
    for (k, v) in entries {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    format!("{:08x}", h.finalize())
}

/// Parses the checksum lines: `lines[group][column]`, `None` for a `-`.
pub(super) fn parse(text: &str) -> Option<Vec<Vec<Option<u32>>>> {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|v| match v {
                    "-" => Some(None),
                    v => u32::from_str_radix(v, 16).ok().map(Some),
                })
                .collect()
        })
        .collect()
}
