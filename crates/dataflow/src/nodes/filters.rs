//! Time filters: values outside active trading hours, or on weekends, become NaN
//! (rows stay, so the time grid is unchanged).

use chrono::{Datelike, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::{Frame, View};

use crate::column::{ColMode, ColumnKernel, suffixed};
use crate::error::{DataflowError, Result};
use crate::node::{Memory, MissingFeature, RunContext};
use crate::nodes::{NodeTypes, register_column};

/// Parameters of `active_trading_hours`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ActiveHoursParams {
    /// Start of the session, local `HH:MM[:SS]` (exclusive: a bar ending then is out).
    pub start_time: String,
    /// End of the session, local `HH:MM[:SS]` (inclusive).
    pub end_time: String,
    /// The time zone of the session times.
    pub tz: String,
}

impl Default for ActiveHoursParams {
    fn default() -> Self {
        ActiveHoursParams {
            start_time: "09:30".into(),
            end_time: "16:00".into(),
            tz: "America/New_York".into(),
        }
    }
}

/// Keeps values of bars with `start_time < local time <= end_time` (KaizenFlow's
/// active trading hours filter); others become NaN.
#[derive(Clone, Debug)]
pub struct ActiveHours {
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
}

impl ActiveHours {
    /// A filter for `start_time < local time <= end_time` in time zone `tz`.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] for a bad time of day or time zone, or an end that is
    /// not after the start.
    pub fn new(start_time: &str, end_time: &str, tz: &str) -> Result<ActiveHours> {
        let time = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                .map_err(|_| {
                    DataflowError::invalid(format!(
                        "`{s}` is not a time of day (HH:MM or HH:MM:SS)"
                    ))
                })
        };
        let (start, end) = (time(start_time)?, time(end_time)?);
        if end <= start {
            return Err(DataflowError::invalid(format!(
                "the session end {end_time} must be after its start {start_time}"
            )));
        }
        let tz: Tz = tz.parse().map_err(|_| {
            DataflowError::invalid(format!("unknown time zone `{tz}` (use an IANA name)"))
        })?;
        Ok(ActiveHours { start, end, tz })
    }

    /// Whether a bar ending at `t` (ns UTC) is inside the session.
    pub fn contains(&self, t: i64) -> bool {
        let local = self.tz.timestamp_nanos(t).time();
        self.start < local && local <= self.end
    }
}

/// NaN-fills the rows for which `keep` is false, in the selected features.
fn mask_rows(input: &Frame, cols: &[usize], keep: &[bool]) -> Vec<(String, Vec<f64>)> {
    let n = input.n_assets();
    cols.iter()
        .map(|&c| {
            let f = input.feature_at(c);
            let mut out = Vec::with_capacity(f.values().len());
            for (row, &k) in f.rows().zip(keep) {
                if k {
                    out.extend_from_slice(row);
                } else {
                    out.extend(std::iter::repeat_n(f64::NAN, n));
                }
            }
            (input.features()[c].clone(), out)
        })
        .collect()
}

impl ColumnKernel for ActiveHours {
    fn kind(&self) -> &str {
        "active_trading_hours"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, ""))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn is_identity(&self, input: &Frame) -> bool {
        input.end_ts().iter().all(|&t| self.contains(t))
    }
    fn steps(&self) -> bool {
        true
    }
    fn compute_into(
        &mut self,
        _: &RunContext,
        input: &View<'_>,
        cols: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let n = input.n_assets();
        for (&c, out) in cols.iter().zip(outs.iter_mut()) {
            out.clear();
            let values = input.values(c);
            for (r, &t) in input.end_ts().iter().enumerate() {
                if self.contains(t) {
                    out.extend_from_slice(&values[r * n..(r + 1) * n]);
                } else {
                    out.extend(std::iter::repeat_n(f64::NAN, n));
                }
            }
        }
        Ok(())
    }
}

/// Parameters of `weekends`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WeekendParams {
    /// The time zone in which the day of the week is read.
    pub tz: String,
}

impl Default for WeekendParams {
    fn default() -> Self {
        WeekendParams { tz: "UTC".into() }
    }
}

/// Sets values of bars that end on a Saturday or Sunday (local time) to NaN.
#[derive(Clone, Debug)]
pub struct Weekends {
    tz: Tz,
}

impl Weekends {
    /// A weekend filter reading the day in time zone `tz`.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] for an unknown time zone.
    pub fn new(tz: &str) -> Result<Weekends> {
        let tz: Tz = tz.parse().map_err(|_| {
            DataflowError::invalid(format!("unknown time zone `{tz}` (use an IANA name)"))
        })?;
        Ok(Weekends { tz })
    }
}

impl Weekends {
    /// Whether a bar ending at `t` is on a weekday.
    pub fn keeps(&self, t: i64) -> bool {
        !matches!(
            self.tz.timestamp_nanos(t).weekday(),
            Weekday::Sat | Weekday::Sun
        )
    }
}

impl ColumnKernel for Weekends {
    fn kind(&self) -> &str {
        "weekends"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, ""))
    }
    fn is_identity(&self, input: &Frame) -> bool {
        input.end_ts().iter().all(|&t| self.keeps(t))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let keep: Vec<bool> = input.end_ts().iter().map(|&t| self.keeps(t)).collect();
        Ok(mask_rows(input, cols, &keep))
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "active_trading_hours",
        "keeps rows inside the daily session (start exclusive, end inclusive); others become NaN",
        ColMode::ReplaceSelected,
        |s: &Section<'_>, p: ActiveHoursParams| {
            ActiveHours::new(&p.start_time, &p.end_time, &p.tz)
                .map_err(|e| s.invalid("start_time", e.to_string()))
        },
    )?;
    register_column(
        r,
        "weekends",
        "makes rows on Saturdays and Sundays NaN",
        ColMode::ReplaceSelected,
        |s: &Section<'_>, p: WeekendParams| {
            let tz: Tz = p.tz.parse().map_err(|_| {
                s.invalid(
                    "tz",
                    format!("unknown time zone `{}` (use an IANA name)", p.tz),
                )
            })?;
            Ok(Weekends { tz })
        },
    )?;
    Ok(())
}
