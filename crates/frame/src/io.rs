//! Reading and writing frames as Parquet and Arrow IPC files, in the long layout (see
//! [`crate::long`]), so pandas, polars or DuckDB read them directly.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::atomic::AtomicFile;
use crate::error::Result;
use crate::{Frame, LongRows};

/// Rows per Parquet row group: small enough that a time-range read can skip groups by
/// their statistics, large enough to compress well.
const ROW_GROUP_ROWS: usize = 128 * 1024;

impl Frame {
    /// Writes the frame to a Parquet file in long layout (zstd-compressed, with
    /// statistics per row group so readers can skip by time and asset).
    ///
    /// # Errors
    /// [`FrameError::File`] naming the path, wrapping the I/O or Parquet error.
    pub fn write_parquet(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let run = || -> Result<()> {
            let batch = self.to_long(LongRows::Present)?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .build();
            let mut out = AtomicFile::create(path)?;
            let mut writer =
                ArrowWriter::try_new(BufWriter::new(&mut out), batch.schema(), Some(props))?;
            writer.write(&batch)?;
            writer.into_inner()?.flush()?;
            out.commit()?;
            Ok(())
        };
        run().map_err(|e| e.in_file(path))
    }

    /// Reads a frame from a long-layout Parquet file.
    ///
    /// # Errors
    /// [`FrameError::File`] naming the path, wrapping what went wrong: a missing file,
    /// a corrupt footer, or any error of [`Frame::from_long_batches`].
    pub fn read_parquet(path: impl AsRef<Path>) -> Result<Frame> {
        let path = path.as_ref();
        let run = || -> Result<Frame> {
            let file = File::open(path)?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            let schema = builder.schema().clone();
            let batches = builder.build()?.collect::<Result<Vec<RecordBatch>, _>>()?;
            read_batches(&schema, batches)
        };
        guarded(run).map_err(|e| e.in_file(path))
    }

    /// Writes the frame to an Arrow IPC file (Feather v2) in long layout.
    ///
    /// # Errors
    /// [`FrameError::File`] naming the path.
    pub fn write_ipc(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let run = || -> Result<()> {
            let batch = self.to_long(LongRows::Present)?;
            let mut out = AtomicFile::create(path)?;
            let mut writer = FileWriter::try_new(BufWriter::new(&mut out), &batch.schema())?;
            writer.write(&batch)?;
            writer.finish()?;
            writer.into_inner()?.flush()?;
            out.commit()?;
            Ok(())
        };
        run().map_err(|e| e.in_file(path))
    }

    /// Reads a frame from a long-layout Arrow IPC file.
    ///
    /// # Errors
    /// [`FrameError::File`] naming the path.
    pub fn read_ipc(path: impl AsRef<Path>) -> Result<Frame> {
        let path = path.as_ref();
        let run = || -> Result<Frame> {
            let file = BufReader::new(File::open(path)?);
            let reader = FileReader::try_new(file, None)?;
            let schema = reader.schema();
            let batches = reader.collect::<Result<Vec<RecordBatch>, _>>()?;
            read_batches(&schema, batches)
        };
        guarded(run).map_err(|e| e.in_file(path))
    }
}

/// Runs a read, turning a decoder's panic on a corrupt file into an error.
fn guarded(run: impl FnOnce() -> Result<Frame>) -> Result<Frame> {
    crate::guard::catch_quiet(run).unwrap_or_else(|panic| {
        Err(crate::FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("corrupt file: the decoder failed: {panic}"),
        )))
    })
}

/// Builds a frame from batches read from a file; an empty file (no batches) still
/// carries its feature names in the schema.
fn read_batches(schema: &Schema, batches: Vec<RecordBatch>) -> Result<Frame> {
    if batches.is_empty() {
        return Frame::empty(Vec::new(), crate::long::feature_columns(schema));
    }
    Frame::from_long_batches(&batches)
}
