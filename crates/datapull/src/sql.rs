//! SQL over frames with DataFusion (feature `sql`).
//!
//! Each frame is registered as a table in the long layout (`end_ts`, `knowledge_ts`,
//! `asset`, one column per feature), so a query reads like one over the files the
//! project writes. Parquet stores and run outputs are registered as files
//! ([`query_files`]): DataFusion then prunes row groups by their `end_ts` and
//! `asset` statistics, which the stores' row-group layout makes tight.

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

fn runtime(sql: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| DataError::Sql {
            query: sql.to_string(),
            source: Box::new(e),
        })
}

/// Runs `sql` over Parquet files, each `(name, path)` registered as table `name`.
///
/// # Errors
/// [`DataError::Sql`] with the query when a file cannot be registered or the query
/// fails.
pub fn query_files(tables: &[(String, std::path::PathBuf)], sql: &str) -> Result<Vec<RecordBatch>> {
    let fail = |e: datafusion::error::DataFusionError| DataError::Sql {
        query: sql.to_string(),
        source: Box::new(e),
    };
    let ctx = SessionContext::new();
    runtime(sql)?.block_on(async {
        for (name, path) in tables {
            let p = path.to_string_lossy();
            ctx.register_parquet(
                name.as_str(),
                p.as_ref(),
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await
            .map_err(|e| DataError::Store {
                path: path.clone(),
                message: format!("cannot register as table {name}: {e}"),
            })?;
        }
        let df = ctx.sql(sql).await.map_err(fail)?;
        df.collect().await.map_err(fail)
    })
}

/// As [`query_files`], formatted as a text table.
///
/// # Errors
/// As [`query_files`].
pub fn query_files_pretty(tables: &[(String, std::path::PathBuf)], sql: &str) -> Result<String> {
    let batches = query_files(tables, sql)?;
    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .map(|t| t.to_string())
        .map_err(|e| DataError::Sql {
            query: sql.to_string(),
            source: Box::new(e),
        })
}
