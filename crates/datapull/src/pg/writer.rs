//! Writing a bars table: its schema (with the check that knowledge time is the
//! database's and the triggers that refuse changes and notify readers) and
//! batches of rows, each batch one transaction.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use super::{PgSettings, db_err, to_time};
use crate::Result;

/// Creates a bars table and writes to it (what a feed handler, or
/// `kaizenflow ingest`, does).
pub struct PgWriter {
    settings: PgSettings,
    client: postgres::Client,
}

impl std::fmt::Debug for PgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWriter")
            .field("table", &self.settings.params.table)
            .finish()
    }
}

/// One row to write: bar end (ns), asset, one value per feature column.
pub type BarRow<'a> = (i64, &'a str, &'a [f64]);

impl PgWriter {
    /// Connects to the table's database.
    ///
    /// # Errors
    /// As [`PgSettings::connect`].
    pub fn connect(settings: PgSettings) -> Result<PgWriter> {
        let client = settings.connect()?;
        Ok(PgWriter { settings, client })
    }

    /// Creates the table, its index and its triggers if they are missing; with
    /// `fresh`, drops the table first.
    ///
    /// # Errors
    /// [`crate::DataError::Database`] naming the table.
    pub fn ensure_table(&mut self, fresh: bool) -> Result<()> {
        let s = &self.settings;
        let name = &s.params.table;
        let t = s.table();
        let cols: String = s
            .params
            .columns
            .iter()
            .map(|c| format!(",\n  \"{c}\" double precision"))
            .collect();
        let drop = if fresh {
            format!("DROP TABLE IF EXISTS {t};")
        } else {
            String::new()
        };
        let sql = format!(
            "{drop}
CREATE TABLE IF NOT EXISTS {t} (
  id bigserial PRIMARY KEY,
  end_ts timestamptz NOT NULL,
  asset text NOT NULL,
  knowledge_ts timestamptz NOT NULL DEFAULT now()
    CONSTRAINT \"{name}_stamped\" CHECK (knowledge_ts = now()){cols}
);
CREATE INDEX IF NOT EXISTS \"{name}_end_asset\" ON {t} (end_ts, asset);
CREATE INDEX IF NOT EXISTS \"{name}_known\" ON {t} (knowledge_ts);
CREATE OR REPLACE FUNCTION \"{name}_frozen\"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'rows of {name} are never changed or deleted: insert a revision';
END $$;
CREATE OR REPLACE FUNCTION \"{name}_notify\"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{name}', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS \"{name}_frozen\" ON {t};
CREATE TRIGGER \"{name}_frozen\" BEFORE UPDATE OR DELETE ON {t}
  FOR EACH ROW EXECUTE FUNCTION \"{name}_frozen\"();
DROP TRIGGER IF EXISTS \"{name}_notify\" ON {t};
CREATE TRIGGER \"{name}_notify\" AFTER INSERT ON {t}
  FOR EACH STATEMENT EXECUTE FUNCTION \"{name}_notify\"();"
        );
        self.client
            .batch_execute(&sql)
            .map_err(|e| db_err(s, "cannot create the table", e))
    }

    /// Writes `rows` in one transaction (binary `COPY`); the database stamps their
    /// knowledge time. Returns the number written.
    ///
    /// # Errors
    /// [`crate::DataError::Database`] naming the table; a row with the wrong number
    /// of values is refused before anything is written.
    pub fn write(&mut self, rows: &[BarRow<'_>]) -> Result<u64> {
        let s = &self.settings;
        let nf = s.params.columns.len();
        if let Some((end, asset, v)) = rows.iter().find(|r| r.2.len() != nf) {
            return Err(crate::DataError::Invalid {
                source_kind: "postgres",
                key: "rows",
                message: format!(
                    "the row of `{asset}` ending {} has {} values for {nf} columns",
                    kf_frame::Timestamp(*end),
                    v.len()
                ),
            });
        }
        let mut types = vec![Type::TIMESTAMPTZ, Type::TEXT];
        types.extend(std::iter::repeat_n(Type::FLOAT8, nf));
        let copy = format!(
            "COPY {} (end_ts, asset, {}) FROM STDIN (FORMAT binary)",
            s.table(),
            s.column_list()
        );
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| db_err(s, "cannot start a write", e))?;
        let sink = tx
            .copy_in(copy.as_str())
            .map_err(|e| db_err(s, "cannot start copying rows", e))?;
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for (end, asset, values) in rows {
            let end = to_time(*end);
            let values: Vec<Option<f64>> = values
                .iter()
                .map(|v| if v.is_nan() { None } else { Some(*v) })
                .collect();
            let mut cells: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::with_capacity(2 + nf);
            cells.push(&end);
            cells.push(asset);
            for v in &values {
                cells.push(v);
            }
            w.write(&cells)
                .map_err(|e| db_err(s, "cannot copy a row", e))?;
        }
        let n = w
            .finish()
            .map_err(|e| db_err(s, "cannot finish copying rows", e))?;
        tx.commit()
            .map_err(|e| db_err(s, "cannot commit rows", e))?;
        Ok(n)
    }

    /// The server's clock (ns).
    ///
    /// # Errors
    /// [`crate::DataError::Database`].
    pub fn server_now(&mut self) -> Result<i64> {
        let t: std::time::SystemTime = self
            .client
            .query_one("SELECT now()", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| db_err(&self.settings, "cannot read the server's clock", e))?;
        Ok(super::from_time(t))
    }
}
