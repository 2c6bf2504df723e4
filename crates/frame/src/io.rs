//! Reading and writing frames as Parquet and Arrow IPC files, in the long layout (see
//! [`crate::long`]), so pandas, polars or DuckDB read them directly.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::atomic::AtomicFile;
use crate::error::Result;
use crate::{Frame, LongRows};

/// Writes `batch` to a Parquet file at `path`, atomically (a reader sees the old file
/// or the whole new one), zstd-compressed, in row groups of 128 Ki rows with
/// statistics. The file is what [`parquet::arrow::ArrowWriter`] would write (the Arrow
/// schema is embedded, so time zones survive), encoded faster:
/// - the columns of each row group are encoded in parallel on rayon, then appended
///   in schema order, so the bytes do not depend on the thread count;
/// - only the columns named in `dictionary` are dictionary-encoded (names repeated
///   row after row, such as assets). Numbers are almost all distinct, and a
///   dictionary tried on them is hashed value by value until it overflows and is
///   thrown away.
///
/// A run's tables (a system's orders and fills: millions of rows) are written so.
///
/// # Errors
/// [`FrameError::File`](crate::FrameError::File) naming the path, wrapping the I/O or
/// Parquet error.
pub fn write_table_parquet(batch: &RecordBatch, path: &Path, dictionary: &[&str]) -> Result<()> {
    write_table_parquet_with(
        &batch.schema(),
        batch.num_rows(),
        path,
        dictionary,
        |start, len| Ok(batch.slice(start, len)),
    )
}

/// [`write_table_parquet`] for a table of `rows` rows that is not in memory as one
/// batch: `rows_at(start, len)` builds the rows of each row group as the writer
/// comes to it (at most [`ROW_GROUP_ROWS`] at a time, in order), in `schema`.
///
/// A table held as plain vectors (a system's orders and fills: millions of rows)
/// is written so without first being copied whole into Arrow arrays: each row
/// group's arrays are built from slices, and their memory is reused by the next.
///
/// # Errors
/// As [`write_table_parquet`], and whatever `rows_at` returns; a batch of the wrong
/// length is a [`FrameError::LengthMismatch`](crate::FrameError::LengthMismatch), of
/// the wrong schema a [`FrameError::Arrow`](crate::FrameError::Arrow).
pub fn write_table_parquet_with(
    schema: &arrow::datatypes::SchemaRef,
    rows: usize,
    path: &Path,
    dictionary: &[&str],
    rows_at: impl Fn(usize, usize) -> Result<RecordBatch>,
) -> Result<()> {
    let run = || -> Result<()> {
        let mut out = AtomicFile::create(path)?;
        write_parquet_to(
            schema,
            rows,
            &rows_at,
            BufWriter::with_capacity(1 << 20, &mut out),
            dictionary,
        )?
        .flush()?;
        out.commit()?;
        Ok(())
    };
    run().map_err(|e| e.in_file(path))
}

/// [`write_table_parquet_with`]'s encoder, writing to `out` and returning it.
fn write_parquet_to<W: Write + Send>(
    schema: &arrow::datatypes::SchemaRef,
    n_rows: usize,
    rows_at: &dyn Fn(usize, usize) -> Result<RecordBatch>,
    out: W,
    dictionary: &[&str],
) -> Result<W> {
    use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
    use parquet::file::writer::SerializedFileWriter;
    use rayon::prelude::*;

    let schema = Arc::clone(schema);
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for column in dictionary {
        builder = builder.set_column_dictionary_enabled((*column).into(), true);
    }
    let mut props = builder.build();
    parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let parquet_schema = parquet::arrow::ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)?;
    let mut writer =
        SerializedFileWriter::new(out, parquet_schema.root_schema_ptr(), Arc::new(props))?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(&schema));
    let mut start = 0;
    let mut group = 0;
    while start < n_rows {
        let len = ROW_GROUP_ROWS.min(n_rows - start);
        let rows = rows_at(start, len)?;
        if rows.num_rows() != len {
            return Err(crate::FrameError::LengthMismatch {
                what: format!("the batch for rows {start}..{} of the table", start + len),
                actual: rows.num_rows(),
                expected: len,
            });
        }
        if rows.schema() != schema {
            return Err(arrow::error::ArrowError::SchemaError(format!(
                "the batch for rows {start}..{} of the table has schema {:?}, not the \
                 table's {:?}",
                start + len,
                rows.schema(),
                schema
            ))
            .into());
        }
        let writers = factory.create_column_writers(group)?;
        let chunks = writers
            .into_par_iter()
            .zip(rows.columns().par_iter().zip(schema.fields().par_iter()))
            .map(|(mut w, (column, field))| {
                for leaf in compute_leaves(field, column)? {
                    w.write(&leaf)?;
                }
                w.close()
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut row_group = writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        start += len;
        group += 1;
    }
    Ok(writer.into_inner()?)
}

/// Rows per Parquet row group (of [`write_table_parquet`] and of a frame's file):
/// small enough that a time-range read can skip groups by
/// their statistics, large enough to compress well.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

impl Frame {
    /// Writes the frame to a Parquet file in long layout (zstd-compressed, with
    /// statistics per row group so readers can skip by time and asset).
    ///
    /// # Errors
    /// [`FrameError::File`] naming the path, wrapping the I/O or Parquet error.
    pub fn write_parquet(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        // Each row group's rows are built as the writer comes to it, in memory the
        // next one reuses, rather than the whole long table first.
        let keep = self.long_cells(LongRows::Present);
        let schema = crate::long::long_schema(self.features());
        write_table_parquet_with(&schema, keep.len(), path, &[crate::ASSET], |start, len| {
            self.long_rows(&keep[start..start + len])
        })
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
