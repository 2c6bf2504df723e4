//! Expansion of a `[sweep]` section into the cartesian product of configs.

use crate::Config;
use crate::error::{ConfigError, Result};
use crate::value::{Entry, Value};

/// The name of the top-level table that lists swept keys.
pub const SWEEP: &str = "sweep";

/// The most points a sweep may expand to. Each point is a whole config (and a whole
/// run); a product beyond this is refused before any point is built, naming the axes.
pub const MAX_SWEEP_POINTS: usize = 10_000;

/// One config of a sweep, with the values that vary across the sweep.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    /// The config with the swept values set and the `[sweep]` table removed.
    pub config: Config,
    /// `(dotted path, value as TOML text)` for each swept key, in sweep order.
    pub varied: Vec<(String, String)>,
}

impl Config {
    /// Expands the `[sweep]` table into one config per element of the cartesian
    /// product of its arrays. Keys are dotted paths (`"dag.nodes.zscore.window" =
    /// [10, 20, 40]`, or nested tables); the first key varies slowest. A config
    /// without `[sweep]` expands to itself.
    ///
    /// Each point's [`Config::id`] is stable: it depends on the resolved content only.
    ///
    /// # Errors
    /// [`ConfigError::Type`] when `sweep` or one of its leaves is not an array (or
    /// table of them); [`ConfigError::Invalid`] for an empty array.
    pub fn expand_sweep(&self) -> Result<Vec<SweepPoint>> {
        let mut base = self.clone();
        let Some(sweep) = base.take_top(SWEEP) else {
            return Ok(vec![SweepPoint {
                config: base,
                varied: Vec::new(),
            }]);
        };
        let mut axes: Vec<(Vec<String>, Vec<Entry>)> = Vec::new();
        collect_axes(&sweep, &mut Vec::new(), &mut axes)?;
        let total = axes.iter().try_fold(1usize, |n, (_, v)| {
            n.checked_mul(v.len()).filter(|&n| n <= MAX_SWEEP_POINTS)
        });
        if total.is_none() {
            let sizes: Vec<String> = axes
                .iter()
                .map(|(p, v)| format!("{} ({})", crate::clip_text(&p.join(".")), v.len()))
                .collect();
            return Err(ConfigError::Invalid {
                origin: sweep.origin.clone(),
                path: SWEEP.to_string(),
                message: format!(
                    "the sweep has more than {MAX_SWEEP_POINTS} points (the product of {}); \
                     split it into several sweeps or list fewer values",
                    sizes.join(" x ")
                ),
            });
        }
        let mut points = vec![SweepPoint {
            config: base,
            varied: Vec::new(),
        }];
        for (path, values) in &axes {
            let mut next = Vec::with_capacity(points.len() * values.len());
            for p in &points {
                for v in values {
                    let mut config = p.config.clone();
                    config.set_value(path, v.value.clone(), v.origin.clone())?;
                    let mut varied = p.varied.clone();
                    varied.push((path.join("."), v.value.to_toml().to_string()));
                    next.push(SweepPoint { config, varied });
                }
            }
            points = next;
        }
        Ok(points)
    }
}

fn collect_axes(
    entry: &Entry,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Vec<Entry>)>,
) -> Result<()> {
    match &entry.value {
        Value::Table(t) => {
            for (k, child) in t {
                let n = path.len();
                path.extend(k.split('.').map(str::to_string));
                if path.len() > crate::MAX_KEY_SEGMENTS {
                    return Err(ConfigError::Invalid {
                        origin: child.origin.clone(),
                        path: SWEEP.to_string(),
                        message: format!(
                            "a swept key has {} segments; at most {} are allowed",
                            path.len(),
                            crate::MAX_KEY_SEGMENTS
                        ),
                    });
                }
                collect_axes(child, path, out)?;
                path.truncate(n);
            }
            Ok(())
        }
        Value::Array(items) if items.is_empty() => Err(ConfigError::Invalid {
            origin: entry.origin.clone(),
            path: format!("{SWEEP}.{}", path.join(".")),
            message: "an empty sweep gives no configs; list at least one value".into(),
        }),
        Value::Array(items) => {
            out.push((path.clone(), items.clone()));
            Ok(())
        }
        other => Err(ConfigError::Type {
            origin: entry.origin.clone(),
            path: if path.is_empty() {
                SWEEP.to_string()
            } else {
                format!("{SWEEP}.{}", path.join("."))
            },
            expected: "an array of values to sweep over".into(),
            found: other.describe(),
        }),
    }
}
