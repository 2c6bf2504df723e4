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

/// Feeds a buffer of fixed-width values to `h` as little-endian bytes: the buffer
/// itself on a little-endian machine (one pass at memory speed), value by value
/// elsewhere, so that a store checks the same on every machine.
fn update_le<T: arrow::datatypes::ArrowNativeType>(
    h: &mut crc32fast::Hasher,
    values: &arrow::buffer::ScalarBuffer<T>,
    le: impl Fn(&T) -> [u8; 8],
) {
    if cfg!(target_endian = "little") {
        h.update(values.inner().as_slice());
    } else {
        for v in values.iter() {
            h.update(&le(v));
        }
    }
}

/// The CRC of one column's values, or `None` for a type a store does not hold.
///
/// Timestamps and floats hash their bits. Asset names hash in a form that does not
/// depend on how a writer or reader laid out the dictionary: the sorted distinct
/// names, then each row's rank among them (as `u32`).
pub(super) fn column_crc(col: &dyn Array) -> Option<u32> {
    let mut h = crc32fast::Hasher::new();
    match col.data_type() {
        DataType::Timestamp(..) | DataType::Int64 => {
            let c = arrow::compute::cast(col, &DataType::Int64).ok()?;
            update_le(&mut h, c.as_primitive::<Int64Type>().values(), |v| {
                v.to_le_bytes()
            });
        }
        DataType::Float64 => {
            let c = col.as_primitive::<Float64Type>();
            if c.null_count() == 0 {
                update_le(&mut h, c.values(), |v| v.to_le_bytes());
            } else {
                // A null (never written by this crate) hashes as NaN's canonical bits.
                for (i, v) in c.values().iter().enumerate() {
                    let bits = if c.is_null(i) {
                        f64::NAN.to_bits()
                    } else {
                        v.to_bits()
                    };
                    h.update(&bits.to_le_bytes());
                }
            }
        }
        DataType::Dictionary(..) => {
            let d = col.as_dictionary_opt::<Int32Type>()?;
            let values = arrow::compute::cast(d.values(), &DataType::Utf8).ok()?;
            ranked(&mut h, values.as_string::<i32>(), d.keys().values())?;
        }
        DataType::Utf8 => {
            let s = col.as_string::<i32>();
            let keys: Vec<i32> = (0..s.len() as i32).collect();
            ranked(&mut h, s, &keys)?;
        }
        _ => return None,
    }
    Some(h.finalize())
}

/// Hashes the rows `keys` of `names` as (sorted distinct names, rank per row).
fn ranked(
    h: &mut crc32fast::Hasher,
    names: &arrow::array::StringArray,
    keys: &[i32],
) -> Option<()> {
    let mut used = vec![false; names.len()];
    for &k in keys {
        *used.get_mut(usize::try_from(k).ok()?)? = true;
    }
    let mut distinct: Vec<&str> = (0..names.len())
        .filter(|&i| used[i])
        .map(|i| names.value(i))
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    for n in &distinct {
        h.update(n.as_bytes());
        h.update(&[0]);
    }
    let rank: Vec<u32> = (0..names.len())
        .map(|i| {
            if used[i] {
                distinct
                    .binary_search(&names.value(i))
                    .map_or(u32::MAX, |r| r as u32)
            } else {
                u32::MAX
            }
        })
        .collect();
    let mut bytes = Vec::with_capacity(keys.len() * 4);
    for &k in keys {
        bytes.extend_from_slice(&rank[k as usize].to_le_bytes());
    }
    h.update(&bytes);
    Some(())
}

/// What a row group holds, recorded by the writer: the range of its bar times, its
/// earliest knowledge time and the range of its asset names. A reader prunes row
/// groups by these (they are covered by the footer's CRC), not by the Parquet
/// statistics, which no checksum covers: a flipped bit there would make a query skip
/// a row group in silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bounds {
    /// Smallest and largest `end_ts`.
    pub end: (i64, i64),
    /// Smallest `knowledge_ts`.
    pub known_from: i64,
    /// Smallest and largest asset name.
    pub assets: (String, String),
}

/// The bounds of a store batch (its first three columns are the layout's keys).
fn bounds(batch: &RecordBatch) -> Option<Bounds> {
    let range = |i: usize| -> Option<(i64, i64)> {
        let c = arrow::compute::cast(batch.column(i), &DataType::Int64).ok()?;
        let v = c.as_primitive::<Int64Type>().values();
        let lo = v.iter().copied().min()?;
        let hi = v.iter().copied().max()?;
        Some((lo, hi))
    };
    let (end, known) = (range(0)?, range(1)?);
    let d = batch.column(2).as_dictionary_opt::<Int32Type>()?;
    let values = arrow::compute::cast(d.values(), &DataType::Utf8).ok()?;
    let values = values.as_string::<i32>();
    // Min and max over the dictionary entries the rows use (a pass over the keys,
    // then one over the few names), not a string comparison per row.
    let mut used = vec![false; values.len()];
    for &k in d.keys().values() {
        if let Some(u) = usize::try_from(k).ok().and_then(|k| used.get_mut(k)) {
            *u = true;
        }
    }
    let names = (0..values.len())
        .filter(|&i| used[i])
        .map(|i| values.value(i));
    let lo = names.clone().min()?.to_string();
    let hi = names.max()?.to_string();
    Some(Bounds {
        end,
        known_from: known.0,
        assets: (lo, hi),
    })
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One row group's line: the CRC of every column in schema order, then `|` and its
/// bounds.
pub(super) fn batch_line(batch: &RecordBatch) -> String {
    let crcs: Vec<String> = batch
        .columns()
        .iter()
        .map(|c| column_crc(c.as_ref()).map_or_else(|| "-".to_string(), |v| format!("{v:08x}")))
        .collect();
    let b = bounds(batch).map_or_else(
        || "-".to_string(),
        |b| {
            format!(
                "{} {} {} {} {}",
                b.end.0,
                b.end.1,
                b.known_from,
                hex(&b.assets.0),
                hex(&b.assets.1)
            )
        },
    );
    format!("{} | {b}", crcs.join(" "))
}

/// One row group's recorded checks.
#[derive(Clone, Debug)]
pub(super) struct GroupCheck {
    /// The CRC of each column, `None` for a column of a type without one.
    pub crcs: Vec<Option<u32>>,
    /// Its bounds (`None` for an empty group).
    pub bounds: Option<Bounds>,
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

/// Parses the lines [`batch_line`] wrote, one per row group.
pub(super) fn parse(text: &str) -> Option<Vec<GroupCheck>> {
    text.lines()
        .map(|line| {
            let (crcs, bounds) = line.split_once(" | ")?;
            let crcs = crcs
                .split(' ')
                .map(|v| match v {
                    "-" => Some(None),
                    v => u32::from_str_radix(v, 16).ok().map(Some),
                })
                .collect::<Option<Vec<_>>>()?;
            let bounds = match bounds {
                "-" => None,
                b => {
                    let f: Vec<&str> = b.split(' ').collect();
                    let [e0, e1, k0, a0, a1] = f.as_slice() else {
                        return None;
                    };
                    Some(Bounds {
                        end: (e0.parse().ok()?, e1.parse().ok()?),
                        known_from: k0.parse().ok()?,
                        assets: (unhex(a0)?, unhex(a1)?),
                    })
                }
            };
            Some(GroupCheck { crcs, bounds })
        })
        .collect()
}
