//! Tables across the language boundary through the Arrow C stream interface (the
//! PyCapsule protocol): Rust record batches become an object with
//! `__arrow_c_stream__` that `pyarrow.table()` takes without copying a buffer, and
//! any object with that method (a `pyarrow.Table`, a polars frame) becomes batches.

use std::ffi::CString;

use arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

/// Record batches of one schema, handed to Python once: `pyarrow.table(t)` (or any
/// consumer of the Arrow PyCapsule stream protocol) takes the buffers as they are.
#[pyclass(module = "kaizenflow._kaizenflow", name = "ArrowTable")]
pub struct ArrowTable {
    schema: SchemaRef,
    /// `None` once a consumer took the stream.
    batches: Option<Vec<RecordBatch>>,
}

impl ArrowTable {
    /// A table of `batches`, all of `schema`.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowTable {
        ArrowTable {
            schema,
            batches: Some(batches),
        }
    }

    /// One batch.
    pub fn one(batch: RecordBatch) -> ArrowTable {
        ArrowTable::new(batch.schema(), vec![batch])
    }
}

#[pymethods]
impl ArrowTable {
    /// The Arrow PyCapsule protocol: a capsule named `arrow_array_stream` holding an
    /// `ArrowArrayStream` over the batches. The stream can be taken once.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // A requested schema is a hint the producer may ignore (the protocol's rule).
        let _ = requested_schema;
        let batches = self.batches.take().ok_or_else(|| {
            PyValueError::new_err(
                "this table's Arrow stream was already taken; ask for the table again",
            )
        })?;
        let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
            batches.into_iter().map(Ok),
            self.schema.clone(),
        ));
        let stream = FFI_ArrowArrayStream::new(reader);
        let name =
            CString::new("arrow_array_stream").map_err(|e| PyValueError::new_err(e.to_string()))?;
        PyCapsule::new(py, stream, Some(name))
    }
}

/// The batches of a Python object that speaks the Arrow stream protocol (has
/// `__arrow_c_stream__`: a `pyarrow.Table` or `RecordBatchReader`, a polars frame).
///
/// # Errors
/// `TypeError` for an object without the protocol; `ValueError` for a stream that
/// fails to import or to read.
pub fn import_batches(obj: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "expected an Arrow table (an object with __arrow_c_stream__, such as a pyarrow.Table), \
             got {}",
            obj.get_type().name()?
        )));
    }
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a capsule"))?;
    let name =
        CString::new("arrow_array_stream").map_err(|e| PyValueError::new_err(e.to_string()))?;
    let ptr = capsule.pointer_checked(Some(name.as_c_str()))?;
    // SAFETY: the capsule holds an `ArrowArrayStream` (its name says so, checked
    // above); `from_raw` moves the stream out and leaves a released one behind, which
    // the capsule's destructor then ignores, as the protocol asks.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr().cast()) };
    let reader = ArrowArrayStreamReader::try_new(stream)
        .map_err(|e| PyValueError::new_err(format!("cannot import the Arrow stream: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(format!("cannot read the Arrow stream: {e}")))?;
    Ok((schema, batches))
}
