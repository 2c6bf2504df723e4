//! Time as `i64` nanoseconds since the Unix epoch, UTC.
//!
//! Inside the project a time is a plain `i64` (fast to compare, sort, store in Arrow
//! arrays). [`Timestamp`] wraps it at the edges: parsing text in a time zone, and
//! printing. Time zones never enter a computation.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{FrameError, Result};

/// Nanoseconds in one microsecond.
pub const NANOS_PER_MICRO: i64 = 1_000;
/// Nanoseconds in one millisecond.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SEC;
/// Nanoseconds in one hour.
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
/// Nanoseconds in one day.
pub const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// A span of time in nanoseconds: a delay, a bar period, a lookback.
///
/// Public signatures that take a time and a span, or several spans side by side
/// (`Replayed`'s settings, a node's declared memory), take `Timestamp` and `Duration`
/// rather than bare `i64`s, so arguments cannot be swapped silently.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Duration(pub i64);

impl Duration {
    /// No time.
    pub const ZERO: Duration = Duration(0);

    /// The nanoseconds.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Parses `90s`, `5min`, `1h30min`... (see [`parse_duration`]).
    ///
    /// # Errors
    /// As [`parse_duration`].
    pub fn parse(text: &str) -> Result<Duration> {
        parse_duration(text).map(Duration)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0 as f64 / NANOS_PER_SEC as f64)
    }
}

/// A point in time: nanoseconds since 1970-01-01T00:00:00Z.
///
/// Displays as RFC 3339 in UTC (`2000-01-01T14:31:00Z`), with a fractional second
/// only when there is one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The earliest representable time (an open lower bound for a query).
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable time (an open upper bound for a query).
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// This time plus `d`, saturating at the ends of the range.
    pub const fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// Parses a time, reading a naive time (one without an offset) in `tz`.
    ///
    /// Accepted forms: RFC 3339 with an offset or `Z` (`2000-01-01T09:31:00-05:00`),
    /// and naive `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS[.fraction]`
    /// (with a space or a `T`), read as a local time in `tz`.
    ///
    /// # Errors
    /// [`FrameError::TimeParse`] when the text matches no accepted form, or names a
    /// local time that does not exist or is ambiguous in `tz` (daylight-saving gaps
    /// and folds), or lies outside the i64-nanosecond range (1677 to 2262).
    pub fn parse_in(input: &str, tz: Tz) -> Result<Timestamp> {
        let text = input.trim();
        let fail = |reason: String| FrameError::TimeParse {
            input: input.to_string(),
            reason,
        };
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return from_utc(dt.with_timezone(&Utc)).ok_or_else(|| fail(RANGE.to_string()));
        }
        let naive = parse_naive(text).ok_or_else(|| {
            fail(
                "expected RFC 3339 (`2000-01-01T09:31:00Z`, `...-05:00`) or a naive \
                 `YYYY-MM-DD[ HH:MM[:SS[.fff]]]`"
                    .to_string(),
            )
        })?;
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => {
                from_utc(dt.with_timezone(&Utc)).ok_or_else(|| fail(RANGE.to_string()))
            }
            LocalResult::Ambiguous(a, b) => Err(fail(format!(
                "ambiguous local time in {tz} (daylight-saving fold: {} or {}); \
                 give an explicit offset",
                a.fixed_offset(),
                b.fixed_offset()
            ))),
            LocalResult::None => Err(fail(format!(
                "local time does not exist in {tz} (daylight-saving gap)"
            ))),
        }
    }

    /// Parses a time, reading a naive time as UTC. See [`Timestamp::parse_in`].
    ///
    /// # Errors
    /// As [`Timestamp::parse_in`].
    pub fn parse(input: &str) -> Result<Timestamp> {
        Self::parse_in(input, Tz::UTC)
    }

    /// Formats the time as RFC 3339 in the time zone `tz` (with its offset).
    pub fn format_in(self, tz: Tz) -> String {
        let dt = DateTime::from_timestamp_nanos(self.0).with_timezone(&tz);
        if self.0 % NANOS_PER_SEC == 0 {
            dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
        } else {
            dt.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string()
        }
    }
}

const RANGE: &str = "outside the i64-nanosecond range (1677-09-21 to 2262-04-11)";

fn from_utc(dt: DateTime<Utc>) -> Option<Timestamp> {
    dt.timestamp_nanos_opt().map(Timestamp)
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = DateTime::from_timestamp_nanos(self.0);
        if self.0 % NANOS_PER_SEC == 0 {
            write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%SZ"))
        } else {
            write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.fZ"))
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<Self> {
        Timestamp::parse(s)
    }
}

impl From<i64> for Timestamp {
    fn from(nanos: i64) -> Self {
        Timestamp(nanos)
    }
}

/// Parses a time zone name (`UTC`, `America/New_York`) from the IANA database.
///
/// # Errors
/// [`FrameError::TimeParse`] naming the text when the zone is unknown.
pub fn parse_tz(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| FrameError::TimeParse {
        input: name.to_string(),
        reason: "unknown time zone; use an IANA name such as `UTC` or `America/New_York`"
            .to_string(),
    })
}

/// Parses a duration such as `1min`, `5min`, `30s`, `1h`, `1d`, `500ms`, `250us`,
/// `10ns` (pandas-style offsets `T`/`min`, `S`/`s`, `H`/`h`, `D`/`d` are accepted)
/// into nanoseconds.
///
/// # Errors
/// [`FrameError::TimeParse`] when the number or the unit is missing or unknown, or the
/// result overflows i64 nanoseconds.
pub fn parse_duration(input: &str) -> Result<i64> {
    let text = input.trim();
    let fail = |reason: &str| FrameError::TimeParse {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let count: i64 = if number.is_empty() {
        1
    } else {
        number
            .parse()
            .map_err(|_| fail("the count is not a valid integer"))?
    };
    let unit_nanos = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => NANOS_PER_MICRO,
        "ms" | "L" => NANOS_PER_MILLI,
        "s" | "S" | "sec" => NANOS_PER_SEC,
        "min" | "T" | "m" => NANOS_PER_MINUTE,
        "h" | "H" => NANOS_PER_HOUR,
        "d" | "D" => NANOS_PER_DAY,
        "" => return Err(fail("missing unit; use ns, us, ms, s, min, h or d")),
        _ => return Err(fail("unknown unit; use ns, us, ms, s, min, h or d")),
    };
    count
        .checked_mul(unit_nanos)
        .ok_or_else(|| fail("overflows i64 nanoseconds"))
}
