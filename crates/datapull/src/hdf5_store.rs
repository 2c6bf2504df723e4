//! Frames in HDF5 files (feature `hdf5`): one dataset per feature, time x asset,
//! chunked along time and deflate-compressed, plus the time index and knowledge time.
//!
//! Layout of a file:
//!
//! | path | type | shape |
//! |---|---|---|
//! | `/end_ts` | i64 (ns UTC) | rows |
//! | `/knowledge_ts` | i64 (ns UTC) | rows |
//! | `/assets` | UTF-8 strings | assets |
//! | `/feature_names` | UTF-8 strings | features (the column order) |
//! | `/features/<name>` | f64, NaN for missing | rows x assets, chunks of up to 4096 rows |
//!
//! The row-major (time x asset) dataset is exactly the frame's feature buffer, so
//! writing and reading are single copies. Range queries by time and asset are the
//! store issue's next step.

use std::path::Path;

use hdf5::types::VarLenUnicode;
use kf_frame::Frame;
use ndarray::ArrayView2;

use crate::{DataError, Result};

/// Rows per HDF5 chunk: a day of minute bars is ~1,400 rows, so a one-day query
/// touches one or two chunks per feature.
const CHUNK_ROWS: usize = 4096;

fn h5(path: &Path, what: &str, e: hdf5::Error) -> DataError {
    DataError::Store {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

/// Writes `frame` to a new HDF5 file at `path` (replacing any file there).
///
/// # Errors
/// [`DataError::Store`] naming the file and the dataset that could not be written.
pub fn write_hdf5(frame: &Frame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let file = hdf5::File::create(path).map_err(|e| h5(path, "cannot create the file", e))?;
    let (rows, n) = (frame.n_rows(), frame.n_assets());
    file.new_dataset_builder()
        .with_data(frame.end_ts())
        .create("end_ts")
        .map_err(|e| h5(path, "writing end_ts", e))?;
    file.new_dataset_builder()
        .with_data(frame.knowledge_ts())
        .create("knowledge_ts")
        .map_err(|e| h5(path, "writing knowledge_ts", e))?;
    let strings = |names: &[String]| -> Result<Vec<VarLenUnicode>> {
        names
            .iter()
            .map(|s| {
                s.parse::<VarLenUnicode>().map_err(|e| DataError::Store {
                    path: path.to_path_buf(),
                    message: format!("name {s:?} cannot be stored: {e}"),
                })
            })
            .collect()
    };
    file.new_dataset_builder()
        .with_data(&strings(frame.assets())?)
        .create("assets")
        .map_err(|e| h5(path, "writing assets", e))?;
    file.new_dataset_builder()
        .with_data(&strings(frame.features())?)
        .create("feature_names")
        .map_err(|e| h5(path, "writing feature_names", e))?;
    let group = file
        .create_group("features")
        .map_err(|e| h5(path, "creating /features", e))?;
    for (i, name) in frame.features().iter().enumerate() {
        let values = frame.feature_at(i).values();
        let view = ArrayView2::from_shape((rows, n), values).map_err(|e| DataError::Store {
            path: path.to_path_buf(),
            message: format!("feature {name}: {e}"),
        })?;
        let mut builder = group.new_dataset_builder().with_data(view);
        if rows > 0 && n > 0 {
            builder = builder.chunk((rows.min(CHUNK_ROWS), n)).deflate(4);
        }
        builder
            .create(name.as_str())
            .map_err(|e| h5(path, &format!("writing /features/{name}"), e))?;
    }
    Ok(())
}

/// Reads a frame written by [`write_hdf5`].
///
/// # Errors
/// [`DataError::Store`] naming the file and the dataset that is missing, has the
/// wrong shape or type; [`DataError::Frame`] when the index is not strictly
/// increasing.
pub fn read_hdf5(path: impl AsRef<Path>) -> Result<Frame> {
    let path = path.as_ref();
    let file = hdf5::File::open(path).map_err(|e| h5(path, "cannot open the file", e))?;
    let dataset = |name: &str| {
        file.dataset(name).map_err(|e| {
            h5(
                path,
                &format!("dataset /{name} is missing or unreadable"),
                e,
            )
        })
    };
    let end_ts: Vec<i64> = dataset("end_ts")?
        .read_raw()
        .map_err(|e| h5(path, "reading /end_ts", e))?;
    let knowledge_ts: Vec<i64> = dataset("knowledge_ts")?
        .read_raw()
        .map_err(|e| h5(path, "reading /knowledge_ts", e))?;
    let names = |name: &str| -> Result<Vec<String>> {
        let raw: Vec<VarLenUnicode> = dataset(name)?
            .read_raw()
            .map_err(|e| h5(path, &format!("reading /{name}"), e))?;
        Ok(raw.iter().map(|s| s.as_str().to_string()).collect())
    };
    let assets = names("assets")?;
    let feature_names = names("feature_names")?;
    let mut features = Vec::with_capacity(feature_names.len());
    for name in feature_names {
        let ds = dataset(&format!("features/{name}"))?;
        let shape = ds.shape();
        let expected = [end_ts.len(), assets.len()];
        if shape != expected {
            return Err(DataError::Store {
                path: path.to_path_buf(),
                message: format!(
                    "/features/{name} has shape {shape:?}, expected {expected:?} (rows x assets)"
                ),
            });
        }
        let values: Vec<f64> = ds
            .read_raw()
            .map_err(|e| h5(path, &format!("reading /features/{name}"), e))?;
        features.push((name, values));
    }
    Frame::new(end_ts, knowledge_ts, assets, features).map_err(|e| DataError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
