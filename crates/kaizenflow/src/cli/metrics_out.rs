//! `run`'s model metrics: OUT/metrics.toml (every model, every out-of-sample span)
//! and a few lines on the terminal.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use kf_dataflow::metrics::{Metrics, ModelReport};
use serde::Serialize;

#[derive(Serialize)]
struct File<'a> {
    model: &'a [ModelReport],
}

/// Writes `reports` to `dir/metrics.toml` and prints each model's overall scores.
pub(super) fn write(reports: &[ModelReport], dir: &Path, out: &mut dyn Write) -> Result<()> {
    let path = dir.join("metrics.toml");
    let text = toml::to_string(&File { model: reports })
        .context("cannot write the model metrics as TOML")?;
    super::out_dir::write_text(
        &path,
        &format!("# Out-of-sample model metrics, written by `kaizenflow run`.\n{text}"),
    )?;
    for r in reports {
        match &r.overall {
            Metrics::Classifier(m) => {
                writeln!(
                    out,
                    "# model `{}` ({}), out of sample over {} rows in {} spans: accuracy {:.4} \
                     (base rate {:.4}, always `{}`), macro precision {:.4} recall {:.4} F1 {:.4}, \
                     log loss {:.4}",
                    r.node,
                    r.kind,
                    m.rows,
                    r.spans.len(),
                    m.accuracy,
                    m.base_rate,
                    m.majority_class,
                    m.macro_precision,
                    m.macro_recall,
                    m.macro_f1,
                    m.log_loss
                )?;
                for c in &m.classes {
                    writeln!(
                        out,
                        "#   class {:<8} precision {:.4} recall {:.4} F1 {:.4} ({} rows)",
                        c.class, c.precision, c.recall, c.f1, c.support
                    )?;
                }
            }
            Metrics::Regressor(m) => writeln!(
                out,
                "# model `{}` ({}), out of sample over {} rows in {} spans: RMSE {:.6}, IC {:.4}, \
                 hit rate {:.4}",
                r.node,
                r.kind,
                m.rows,
                r.spans.len(),
                m.rmse,
                m.ic,
                m.hit_rate
            )?,
        }
        if !r.importance.is_empty() {
            let mut imp: Vec<_> = r.importance.iter().collect();
            imp.sort_by(|a, b| b.1.total_cmp(a.1));
            let line: Vec<String> = imp.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
            writeln!(out, "#   importance: {}", line.join(", "))?;
        }
    }
    writeln!(out, "metrics: {}", path.display())?;
    Ok(())
}
