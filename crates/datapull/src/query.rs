//! [`Query`]: what a read asks for (time range, assets, columns, knowledge cut-off),
//! and how it applies to a frame already in memory.

use kf_frame::{Frame, Timestamp};

use crate::{DataError, Result};

/// A read request. Every part is optional; [`Query::all`] reads everything.
///
/// Invariant kept by the readers: the result holds exactly the rows with
/// `start <= end_ts <= end` (closed at both ends, on bar ends) whose knowledge time
/// is `<= as_of`, the requested assets and columns in the order asked, and, in a
/// store with revisions, for each (end_ts, asset) the latest version known at
/// `as_of`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// First bar end to return (inclusive).
    pub start: Option<i64>,
    /// Last bar end to return (inclusive).
    pub end: Option<i64>,
    /// Assets to return, in this order; `None` for all.
    pub assets: Option<Vec<String>>,
    /// Feature columns to return, in this order; `None` for all.
    pub columns: Option<Vec<String>>,
    /// Knowledge cut-off: nothing that became known after it is returned.
    pub as_of: Option<i64>,
}

impl Query {
    /// Everything the source has.
    pub fn all() -> Query {
        Query::default()
    }

    /// Bars ending in `[start, end]`.
    pub fn between(start: i64, end: i64) -> Query {
        Query {
            start: Some(start),
            end: Some(end),
            ..Query::default()
        }
    }

    /// Only these assets, in this order.
    pub fn assets<S: AsRef<str>>(mut self, assets: &[S]) -> Query {
        self.assets = Some(assets.iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Only these feature columns, in this order.
    pub fn columns<S: AsRef<str>>(mut self, columns: &[S]) -> Query {
        self.columns = Some(columns.iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Only what was known at `as_of`.
    pub fn as_of(mut self, as_of: i64) -> Query {
        self.as_of = Some(as_of);
        self
    }

    /// Whether a bar ending at `t` is inside the time range.
    pub fn contains_time(&self, t: i64) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }

    /// Applies the query to a frame in memory (the fallback for sources that cannot
    /// push it down): a zero-copy time slice, then the knowledge cut-off, then the
    /// asset and column selection.
    ///
    /// # Errors
    /// [`DataError::Query`] for an asset or column the frame does not have.
    pub fn apply(&self, frame: &Frame) -> Result<Frame> {
        let mut f = frame.slice_time(self.start.unwrap_or(i64::MIN), self.end.unwrap_or(i64::MAX));
        // Rows not yet known are dropped; usually every row is known (no mask built).
        if let Some(tau) = self.as_of
            && f.knowledge_ts().iter().any(|&k| k > tau)
        {
            let keep: Vec<bool> = f.knowledge_ts().iter().map(|&k| k <= tau).collect();
            f = f.filter_rows(&keep)?;
        }
        if let Some(columns) = &self.columns {
            check_known("column", columns, frame.features())?;
            f = f.select_features(columns)?;
        }
        if let Some(assets) = &self.assets {
            check_known("asset", assets, frame.assets())?;
            f = f.select_assets(assets)?;
        }
        Ok(f)
    }

    /// A short description for messages: `[2024-01-02T14:31:00Z, ..] 3 assets`.
    pub fn describe(&self) -> String {
        let t = |v: Option<i64>| v.map_or("..".to_string(), |t| Timestamp(t).to_string());
        let mut s = format!("[{}, {}]", t(self.start), t(self.end));
        if let Some(a) = &self.assets {
            s.push_str(&format!(", {} assets", a.len()));
        }
        if let Some(c) = &self.columns {
            s.push_str(&format!(", columns {}", c.join(",")));
        }
        if let Some(k) = self.as_of {
            s.push_str(&format!(", as of {}", Timestamp(k)));
        }
        s
    }
}

/// Checks that every requested name exists, listing what does otherwise.
pub(crate) fn check_known(kind: &str, asked: &[String], have: &[String]) -> Result<()> {
    if let Some(missing) = asked.iter().find(|a| !have.contains(a)) {
        let mut shown: Vec<&str> = have.iter().take(20).map(String::as_str).collect();
        if have.len() > 20 {
            shown.push("...");
        }
        return Err(DataError::Query {
            what: format!(
                "unknown {kind} `{missing}`; the data has {} {kind}s: {}",
                have.len(),
                shown.join(", ")
            ),
        });
    }
    Ok(())
}
