//! SQL over frames with DataFusion (feature `sql`).
//!
//! Each frame is registered as a table in the long layout (`end_ts`, `knowledge_ts`,
//! `asset`, one column per feature), so a query reads like one over the files the
//! project writes. This is the first piece of `kaizenflow sql`; stores and run
//! outputs join as tables when the store issue lands.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use kf_frame::{Frame, LongRows};

use crate::{DataError, Result};

/// Runs `sql` over `tables`, each `(name, frame)` registered under `name`, and
/// returns the result batches.
///
/// # Errors
/// [`DataError::Sql`] with the query when DataFusion rejects or fails it (syntax,
/// unknown table or column); [`DataError::Frame`] if a frame cannot be converted.
pub fn query(tables: &[(&str, &Frame)], sql: &str) -> Result<Vec<RecordBatch>> {
    let fail = |e: datafusion::error::DataFusionError| DataError::Sql {
        query: sql.to_string(),
        source: Box::new(e),
    };
    let ctx = SessionContext::new();
    for (name, frame) in tables {
        let batch = frame.to_long(LongRows::Present)?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(fail)?;
        ctx.register_table(*name, Arc::new(table)).map_err(fail)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| DataError::Sql {
            query: sql.to_string(),
            source: Box::new(e),
        })?;
    runtime.block_on(async {
        let df = ctx.sql(sql).await.map_err(fail)?;
        df.collect().await.map_err(fail)
    })
}
