//! `write_table_parquet_with` writes what `write_table_parquet` writes for the same
//! rows, byte for byte, pulling a row group at a time; a batch of the wrong length
//! or schema is an error naming the rows and the file, and leaves no file; a
//! frame's file, written so too, reads back as its long table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use kf_frame::{ROW_GROUP_ROWS, write_table_parquet, write_table_parquet_with};

const ROWS: usize = 2 * ROW_GROUP_ROWS + 17;

fn rows(start: usize, len: usize) -> RecordBatch {
    let asset: ArrayRef = Arc::new(StringArray::from_iter_values(
        (start..start + len).map(|i| ["AAPL", "MSFT", "IBM"][i % 3]),
    ));
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (start..start + len).map(|i| (i as f64).sqrt()),
    ));
    RecordBatch::try_from_iter([("asset", asset), ("x", x)]).unwrap()
}

#[test]
fn row_groups_pulled_one_at_a_time_give_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.parquet");
    let pulled = dir.path().join("pulled.parquet");
    let all = rows(0, ROWS);
    write_table_parquet(&all, &whole, &["asset"]).unwrap();
    let asked = std::sync::Mutex::new(Vec::new());
    write_table_parquet_with(&all.schema(), ROWS, &pulled, &["asset"], |start, len| {
        asked.lock().unwrap().push((start, len));
        Ok(rows(start, len))
    })
    .unwrap();
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&pulled).unwrap()
    );
    // In order, a row group at a time.
    assert_eq!(
        asked.into_inner().unwrap(),
        [
            (0, ROW_GROUP_ROWS),
            (ROW_GROUP_ROWS, ROW_GROUP_ROWS),
            (2 * ROW_GROUP_ROWS, 17)
        ]
    );
}

#[test]
fn a_batch_of_the_wrong_length_or_schema_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let schema = rows(0, 1).schema();
    let e = write_table_parquet_with(&schema, ROWS, &path, &[], |start, len| {
        Ok(rows(start, len.min(1000)))
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("t.parquet"), "{e}");
    assert!(e.contains("rows 0..131072"), "{e}");
    assert!(e.contains("1000"), "{e}");
    assert!(!path.exists());

    let other = Arc::new(Schema::new(vec![Field::new("y", DataType::Float64, false)]));
    let e = write_table_parquet_with(&other, 10, &path, &[], |start, len| Ok(rows(start, len)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.parquet") && e.contains("schema"), "{e}");
    assert!(!path.exists());
}

#[test]
fn a_frame_written_a_row_group_at_a_time_reads_back_as_its_long_table() {
    // 3 assets x 60,000 rows, every 7th cell missing (not written): two row groups
    // of long rows.
    let rows = 60_000;
    let ts: Vec<i64> = (0..rows as i64).map(|i| 1_000 + 60 * i).collect();
    let x: Vec<f64> = (0..rows * 3)
        .map(|c| if c % 7 == 0 { f64::NAN } else { c as f64 / 3.0 })
        .collect();
    let frame = kf_frame::Frame::new(
        ts.clone(),
        ts,
        vec!["A".into(), "B".into(), "C".into()],
        vec![("x".into(), x)],
    )
    .unwrap();
    let want = frame.to_long(kf_frame::LongRows::Present).unwrap();
    assert!(want.num_rows() > ROW_GROUP_ROWS);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    frame.write_parquet(&path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).unwrap(),
    )
    .unwrap();
    assert_eq!(reader.metadata().num_row_groups(), 2);
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    let got = arrow::compute::concat_batches(&want.schema(), &batches).unwrap();
    assert_eq!(got, want);
    let back = kf_frame::Frame::read_parquet(&path).unwrap();
    assert_eq!(back.first_difference(&frame), None);
}
