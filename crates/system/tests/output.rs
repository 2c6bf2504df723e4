//! A run's files hold its tables: `write_run` builds the orders and fills a row
//! group at a time from the records, and what it writes reads back as the batches
//! `tables` builds whole, over several row groups.

use arrow::array::RecordBatch;
use kf_config::Config;
use kf_system::{System, SystemRun, output};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Mock1 on 2 days of one-minute bars of 6 synthetic assets, deciding every minute.
fn run() -> SystemRun {
    let text = r#"
[market_data]
type = "synthetic"
assets = 6
bars = 780
start = "2018-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 3

[dag]
type = "mock1"
max_gap = "1h"

[system]
bar = "1min"
volatility = "vwap.ret_0.vol"

[system.processor]
type = "cross_sectional"
target_gmv = 1000000.0
max_holding = 20000.0
"#;
    let config = Config::from_toml_str(text, "output.toml").unwrap();
    System::from_config(&config).unwrap().run().unwrap()
}

/// `run` with its orders and fills repeated until each has over `rows` records.
fn grown(mut run: SystemRun, rows: usize) -> SystemRun {
    let (orders, fills) = (run.orders.clone(), run.fills.clone());
    assert!(!orders.ts.is_empty() && !fills.ts.is_empty());
    while run.orders.ts.len() <= rows {
        run.orders.ts.extend_from_slice(&orders.ts);
        run.orders.asset.extend_from_slice(&orders.asset);
        run.orders.quantity.extend_from_slice(&orders.quantity);
        run.orders.mark.extend_from_slice(&orders.mark);
    }
    while run.fills.ts.len() <= rows {
        run.fills.order_ts.extend_from_slice(&fills.order_ts);
        run.fills.ts.extend_from_slice(&fills.ts);
        run.fills.asset.extend_from_slice(&fills.asset);
        run.fills.quantity.extend_from_slice(&fills.quantity);
        run.fills.price.extend_from_slice(&fills.price);
        run.fills.cost.extend_from_slice(&fills.cost);
    }
    run
}

/// A Parquet file's rows as one batch, and its number of row groups.
fn read(path: &std::path::Path) -> (RecordBatch, usize) {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    (
        arrow::compute::concat_batches(&schema, &batches).unwrap(),
        groups,
    )
}

#[test]
fn written_tables_read_back_as_the_tables_over_several_row_groups() {
    let run = grown(run(), 2 * kf_frame::ROW_GROUP_ROWS + 1000);
    let dir = tempfile::tempdir().unwrap();
    output::write_run(&run, dir.path()).unwrap();
    for (name, want) in output::tables(&run).unwrap() {
        let (got, groups) = read(&dir.path().join(format!("{name}.parquet")));
        assert_eq!(got, want, "{name}");
        if name == "orders" || name == "fills" {
            assert_eq!(groups, want.num_rows().div_ceil(kf_frame::ROW_GROUP_ROWS));
            assert_eq!(groups, 3, "{name}");
        }
    }
}

#[test]
fn records_of_unequal_length_are_an_error_naming_the_file_and_column() {
    let mut run = run();
    run.fills.cost.pop();
    let dir = tempfile::tempdir().unwrap();
    let e = output::write_run(&run, dir.path()).unwrap_err().to_string();
    assert!(e.contains("fills.parquet"), "{e}");
    assert!(e.contains("column `cost` has"), "{e}");
    assert!(!dir.path().join("fills.parquet").exists());
}
