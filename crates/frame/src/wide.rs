//! A frame as one Arrow IPC stream in its own (wide) layout: `end_ts`,
//! `knowledge_ts`, then one `FixedSizeList<Float64>` column per feature holding
//! every asset of a row, with the asset names in the schema's metadata.
//!
//! This is the layout a frame already has in memory, so writing is a copy of its
//! buffers and reading hands the decoded buffers to [`Frame::from_buffers`] without
//! a pass over the values. A node cache stores node outputs this way; the long
//! layout of [`crate::long`] is for files that other tools read.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::error::{FrameError, Result};
use crate::frame::Frame;

/// The schema metadata key holding the asset names, each as `len:name`.
const ASSETS: &str = "kaizenflow.assets";

fn corrupt(what: impl Into<String>) -> FrameError {
    FrameError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        what.into(),
    ))
}

fn encode_names(names: &[String]) -> String {
    let mut s = String::new();
    for n in names {
        s.push_str(&n.len().to_string());
        s.push(':');
        s.push_str(n);
    }
    s
}

fn decode_names(mut s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let (len, rest) = s
            .split_once(':')
            .ok_or_else(|| corrupt("the asset list in the metadata is cut short"))?;
        let len: usize = len
            .parse()
            .map_err(|_| corrupt("the asset list in the metadata is not `len:name`"))?;
        let name = rest
            .get(..len)
            .ok_or_else(|| corrupt("an asset name in the metadata is cut short"))?;
        out.push(name.to_string());
        s = &rest[len..];
    }
    Ok(out)
}

impl Frame {
    /// The frame as an Arrow IPC stream in its own layout (see the module doc).
    ///
    /// # Errors
    /// [`FrameError::Arrow`] when Arrow refuses the layout (more than `i32::MAX`
    /// assets).
    pub fn to_wide_ipc(&self) -> Result<Vec<u8>> {
        let mut fields = vec![
            Field::new("end_ts", DataType::Int64, false),
            Field::new("knowledge_ts", DataType::Int64, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::new(self.end_ts.clone(), None)),
            Arc::new(Int64Array::new(self.knowledge_ts.clone(), None)),
        ];
        for (i, name) in self.features.iter().enumerate() {
            let array = self.feature_array(i)?;
            fields.push(Field::new(name, array.data_type().clone(), false));
            columns.push(Arc::new(array));
        }
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            HashMap::from([(ASSETS.to_string(), encode_names(&self.assets))]),
        ));
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(&schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(self.n_rows())),
        )?;
        // Sized for the values (plus the schema and padding), so a large frame is not
        // copied again as the buffer grows.
        let values = self.n_rows() * (2 + self.n_assets() * self.features.len());
        let mut bytes = Vec::with_capacity(values * 8 + 64 * (self.features.len() + 8) + 4096);
        let mut writer = StreamWriter::try_new(&mut bytes, &schema)?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);
        Ok(bytes)
    }

    /// Reads a frame written by [`Frame::to_wide_ipc`].
    ///
    /// # Errors
    /// [`FrameError::Io`] (invalid data) for bytes that are not such a stream, and
    /// the frame's own errors for contents that break its invariants.
    pub fn from_wide_ipc(bytes: &[u8]) -> Result<Frame> {
        let read = || -> Result<Frame> {
            let reader = StreamReader::try_new(bytes, None)?;
            let schema = reader.schema();
            let assets = decode_names(
                schema
                    .metadata()
                    .get(ASSETS)
                    .ok_or_else(|| corrupt("no asset list in the metadata"))?,
            )?;
            let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>()?;
            let [batch] = batches.as_slice() else {
                return Err(corrupt(format!(
                    "{} record batches where one was written",
                    batches.len()
                )));
            };
            if batch.num_columns() < 2 {
                return Err(corrupt("fewer than the two time columns"));
            }
            let times = |i: usize| -> Result<arrow::buffer::ScalarBuffer<i64>> {
                batch
                    .column(i)
                    .as_primitive_opt::<Int64Type>()
                    .map(|a| a.values().clone())
                    .ok_or_else(|| corrupt(format!("column {i} is not Int64")))
            };
            let (end_ts, knowledge_ts) = (times(0)?, times(1)?);
            let mut features = Vec::with_capacity(batch.num_columns() - 2);
            for (field, column) in schema.fields().iter().zip(batch.columns()).skip(2) {
                let list = column
                    .as_fixed_size_list_opt()
                    .ok_or_else(|| corrupt(format!("feature `{}` is not a list", field.name())))?;
                let values = list
                    .values()
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| {
                        corrupt(format!("feature `{}` does not hold Float64", field.name()))
                    })?;
                let start = list.offset() * assets.len();
                let cells = list.len() * assets.len();
                if values.len() < start + cells {
                    return Err(corrupt(format!("feature `{}` is cut short", field.name())));
                }
                features.push((field.name().clone(), values.values().slice(start, cells)));
            }
            Frame::from_buffers(end_ts, knowledge_ts, assets, features)
        };
        crate::guard::catch_quiet(read)
            .unwrap_or_else(|panic| Err(corrupt(format!("the IPC decoder failed: {panic}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_bit_for_bit_including_nan_payloads_and_negative_zero() {
        let odd_nan = f64::from_bits(0x7ff8_0000_0000_1234);
        let f = Frame::new(
            vec![10, 20, 30],
            vec![11, 25, 31],
            vec!["A".into(), "B:C".into(), "".into()],
            vec![
                (
                    "x".into(),
                    vec![1.0, -0.0, odd_nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
                ),
                ("y".into(), vec![0.5; 9]),
            ],
        )
        .unwrap();
        let g = Frame::from_wide_ipc(&f.to_wide_ipc().unwrap()).unwrap();
        assert_eq!(g.end_ts(), f.end_ts());
        assert_eq!(g.knowledge_ts(), f.knowledge_ts());
        assert_eq!(g.assets(), f.assets());
        assert_eq!(g.features(), f.features());
        for i in 0..2 {
            let (a, b) = (f.feature_at(i).values(), g.feature_at(i).values());
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[test]
    fn a_slice_and_an_empty_frame_round_trip() {
        let f = Frame::new(
            vec![1, 2, 3, 4],
            vec![1, 2, 3, 4],
            vec!["a".into(), "b".into()],
            vec![("x".into(), (0..8).map(f64::from).collect())],
        )
        .unwrap();
        let s = f.slice(1, 2).unwrap();
        let g = Frame::from_wide_ipc(&s.to_wide_ipc().unwrap()).unwrap();
        assert_eq!(g.end_ts(), &[2, 3]);
        assert_eq!(g.feature_at(0).values(), &[2.0, 3.0, 4.0, 5.0]);
        let e = Frame::empty(vec!["a".into()], vec!["x".into(), "y".into()]).unwrap();
        let g = Frame::from_wide_ipc(&e.to_wide_ipc().unwrap()).unwrap();
        assert_eq!(g.n_rows(), 0);
        assert_eq!(g.features(), e.features());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let f = Frame::new(
            vec![1],
            vec![1],
            vec!["a".into()],
            vec![("x".into(), vec![1.0])],
        )
        .unwrap();
        let bytes = f.to_wide_ipc().unwrap();
        for cut in [0, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(Frame::from_wide_ipc(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Frame::from_wide_ipc(b"not arrow at all").is_err());
    }
}
