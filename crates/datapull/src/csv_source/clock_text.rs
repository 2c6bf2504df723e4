//! Parsing timestamp text from files: a fast path for ISO-like layouts, chrono for
//! any other `strftime` format, and a cached local-to-UTC offset per local hour.

use chrono::{NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use kf_frame::time::{NANOS_PER_MILLI, NANOS_PER_SEC};

/// How a timestamp column is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    /// `YYYY-MM-DD[ HH:MM[:SS[.fff...]]]` (also with `T` between date and time).
    Iso,
    /// Any chrono `strftime` format with a time of day.
    DateTime(String),
    /// A chrono `strftime` format with a date only (midnight).
    Date(String),
    /// Integer seconds, milliseconds, microseconds or nanoseconds since the epoch.
    Epoch(i64),
}

impl TimeFormat {
    /// Reads a format name: `iso`, `unix_s`, `unix_ms`, `unix_us`, `unix_ns`, or a
    /// chrono format string (`%Y-%m-%d %H:%M:%S` and `%Y-%m-%d` take the fast path).
    pub(crate) fn parse(s: &str) -> TimeFormat {
        match s {
            "iso"
            | "%Y-%m-%d %H:%M:%S"
            | "%Y-%m-%d %H:%M:%S%.f"
            | "%Y-%m-%d %H:%M"
            | "%Y-%m-%dT%H:%M:%S"
            | "%Y-%m-%d" => TimeFormat::Iso,
            "unix_s" => TimeFormat::Epoch(NANOS_PER_SEC),
            "unix_ms" => TimeFormat::Epoch(NANOS_PER_MILLI),
            "unix_us" => TimeFormat::Epoch(1_000),
            "unix_ns" => TimeFormat::Epoch(1),
            f if f.contains("%H") || f.contains("%T") || f.contains("%R") || f.contains("%I") => {
                TimeFormat::DateTime(f.to_string())
            }
            f => TimeFormat::Date(f.to_string()),
        }
    }
}

/// Converts timestamp text to UTC nanoseconds, caching the zone's offset per local
/// hour so the zone database is consulted about once an hour of data, not per row.
pub(crate) struct TimeParser {
    format: TimeFormat,
    tz: Tz,
    utc: bool,
    cached_hour: i64,
    cached_offset: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return None;
    }
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Local wall time of ISO-like text as nanoseconds since the local epoch, in `i128`
/// so that any four-digit year computes exactly; the caller checks the `i64` range.
fn parse_iso(b: &[u8]) -> Option<i128> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut nanos = i128::from(days_from_civil(y, m, d)) * i128::from(86_400 * NANOS_PER_SEC);
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(nanos);
    }
    if rest.len() < 6 || !(rest[0] == b' ' || rest[0] == b'T') || rest[3] != b':' {
        return None;
    }
    let (h, mi) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
    let mut s = 0;
    let mut frac = 0;
    let tail = &rest[6..];
    if !tail.is_empty() {
        if tail.len() < 3 || tail[0] != b':' {
            return None;
        }
        s = digits(&tail[1..3])?;
        let f = &tail[3..];
        if !f.is_empty() {
            if f[0] != b'.' || f.len() > 10 {
                return None;
            }
            let fd = &f[1..];
            frac = digits(fd)? * 10i64.pow(9 - fd.len() as u32);
        }
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    nanos += i128::from(((h * 60 + mi) * 60 + s) * NANOS_PER_SEC + frac);
    Some(nanos)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl TimeParser {
    pub(crate) fn new(format: TimeFormat, tz: Tz) -> TimeParser {
        TimeParser {
            format,
            utc: tz == Tz::UTC || tz == Tz::Etc__UTC,
            tz,
            cached_hour: i64::MIN,
            cached_offset: 0,
        }
    }

    /// UTC nanoseconds of `text`, or a message saying why it is not a time.
    pub(crate) fn parse(&mut self, text: &[u8]) -> Result<i64, String> {
        let bad = || {
            format!(
                "cannot read {:?} as a time in format {}",
                kf_config::clip_text(&String::from_utf8_lossy(text)),
                self.describe_format()
            )
        };
        let out_of_range = || {
            format!(
                "{:?} is out of range for nanosecond timestamps (years 1677 to 2262)",
                kf_config::clip_text(&String::from_utf8_lossy(text))
            )
        };
        let local = match &self.format {
            TimeFormat::Epoch(unit) => {
                let v = std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(bad)?;
                return v.checked_mul(*unit).ok_or_else(out_of_range);
            }
            TimeFormat::Iso => {
                i64::try_from(parse_iso(text).ok_or_else(bad)?).map_err(|_| out_of_range())?
            }
            TimeFormat::DateTime(f) => {
                let s = std::str::from_utf8(text).map_err(|_| bad())?;
                let dt = NaiveDateTime::parse_from_str(s.trim(), f).map_err(|_| bad())?;
                dt.and_utc()
                    .timestamp_nanos_opt()
                    .ok_or_else(out_of_range)?
            }
            TimeFormat::Date(f) => {
                let s = std::str::from_utf8(text).map_err(|_| bad())?;
                let d = NaiveDate::parse_from_str(s.trim(), f).map_err(|_| bad())?;
                d.and_hms_opt(0, 0, 0)
                    .and_then(|dt| dt.and_utc().timestamp_nanos_opt())
                    .ok_or_else(out_of_range)?
            }
        };
        if self.utc {
            return Ok(local);
        }
        let hour_ns = 3_600 * NANOS_PER_SEC;
        let hour = local.div_euclid(hour_ns);
        if hour == self.cached_hour {
            return local
                .checked_sub(self.cached_offset)
                .ok_or_else(out_of_range);
        }
        let offset = self.offset_at(local, text)?;
        // Cache only an hour with one offset throughout (some zones change on the
        // half hour), so a cached answer is never wrong.
        // The hour's first instant is before i64::MIN for times in the first partial
        // hour of the range (1677-09-21 00:12 to 01:00): such an hour is not cached.
        let Some(first) = hour.checked_mul(hour_ns) else {
            return local.checked_sub(offset).ok_or_else(out_of_range);
        };
        let last = first.saturating_add(hour_ns - 1);
        if self.offset_at(first, text) == Ok(offset) && self.offset_at(last, text) == Ok(offset) {
            self.cached_hour = hour;
            self.cached_offset = offset;
        }
        local.checked_sub(offset).ok_or_else(out_of_range)
    }

    /// The zone's UTC offset (ns) at a local wall time; folds and gaps are errors,
    /// since the text alone cannot say which instant was meant.
    fn offset_at(&self, local: i64, text: &[u8]) -> Result<i64, String> {
        let naive = chrono::DateTime::from_timestamp_nanos(local).naive_utc();
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(dt) => {
                Ok(i64::from(dt.offset().fix().local_minus_utc()) * NANOS_PER_SEC)
            }
            chrono::LocalResult::Ambiguous(..) => Err(format!(
                "{:?} happens twice in {} (the clocks go back); use UTC timestamps or epoch times",
                kf_config::clip_text(&String::from_utf8_lossy(text)),
                self.tz
            )),
            chrono::LocalResult::None => Err(format!(
                "{:?} does not exist in {} (the clocks skip it)",
                kf_config::clip_text(&String::from_utf8_lossy(text)),
                self.tz
            )),
        }
    }

    fn describe_format(&self) -> String {
        match &self.format {
            TimeFormat::Iso => "YYYY-MM-DD[ HH:MM[:SS[.fff]]]".into(),
            TimeFormat::DateTime(f) | TimeFormat::Date(f) => f.clone(),
            TimeFormat::Epoch(1) => "unix_ns".into(),
            TimeFormat::Epoch(1_000) => "unix_us".into(),
            TimeFormat::Epoch(NANOS_PER_MILLI) => "unix_ms".into(),
            TimeFormat::Epoch(_) => "unix_s".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_frame::{Timestamp, parse_tz};

    fn utc(s: &str) -> i64 {
        Timestamp::parse(s)
            .map(Timestamp::nanos)
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn years_outside_the_nanosecond_range_are_refused_not_wrapped() {
        // i64 nanoseconds span 1677-09-21 00:12:43.145224192 to 2262-04-11
        // 23:47:16.854775807 UTC (i64::MIN and i64::MAX ns).
        for tz in [Tz::UTC, Tz::America__New_York] {
            let mut p = TimeParser::new(TimeFormat::Iso, tz);
            for s in [
                "1000-01-01",
                "0001-01-01 00:00:00",
                "9999-12-31 23:59",
                "1677-09-21",
            ] {
                let e = p.parse(s.as_bytes()).unwrap_err();
                assert!(
                    e.contains("out of range") && e.contains("1677 to 2262"),
                    "{s}: {e}"
                );
            }
            let mut c = TimeParser::new(TimeFormat::Date("%d/%m/%Y".into()), tz);
            assert!(c.parse(b"01/01/1000").unwrap_err().contains("out of range"));
        }
        // The first partial hour of the range, in a zone with an offset: no overflow.
        let mut ny = TimeParser::new(TimeFormat::Iso, Tz::America__New_York);
        let t = ny.parse(b"1677-09-21 00:30:00");
        assert!(t.is_ok() || t.is_err_and(|e| e.contains("out of range")));
        let mut p = TimeParser::new(TimeFormat::Iso, Tz::UTC);
        assert!(p.parse(b"1677-09-21 00:30:00").is_ok());
        // The last whole second inside the range reads exactly.
        assert_eq!(
            p.parse(b"2262-04-11 23:47:16").unwrap(),
            9_223_372_036 * NANOS_PER_SEC
        );
        assert_eq!(
            p.parse(b"1677-09-21 00:12:44").unwrap(),
            -9_223_372_036 * NANOS_PER_SEC
        );
    }

    #[test]
    fn iso_fast_path_agrees_with_chrono() {
        let mut p = TimeParser::new(TimeFormat::Iso, Tz::UTC);
        for s in [
            "1970-01-01 00:00:00",
            "2000-02-29 23:59:59",
            "2018-04-20 16:00:00",
            "2013-10-09 04:00:00.924",
            "1969-12-31 23:59:59",
            "2024-12-31",
            "2024-06-30T12:30",
        ] {
            let mut c =
                TimeParser::new(TimeFormat::DateTime("%Y-%m-%d %H:%M:%S%.f".into()), Tz::UTC);
            let fast = p.parse(s.as_bytes()).unwrap_or(i64::MIN);
            let full = if s.len() == 19 || s.len() == 23 {
                c.parse(s.as_bytes()).unwrap_or(i64::MAX)
            } else {
                utc(&s.replace('T', " "))
            };
            assert_eq!(fast, full, "{s}");
        }
        for bad in [
            "2018-02-30 10:00:00",
            "2018-13-01",
            "2018-01-01 25:00:00",
            "20180101",
            "x",
        ] {
            assert!(p.parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn zone_offsets_follow_daylight_saving() {
        let ny = parse_tz("America/New_York").unwrap_or(Tz::UTC);
        let mut p = TimeParser::new(TimeFormat::Iso, ny);
        // EST (UTC-5) in February, EDT (UTC-4) after the March 11, 2018 change.
        assert_eq!(
            p.parse(b"2018-02-16 09:30:00"),
            Ok(utc("2018-02-16 14:30:00"))
        );
        assert_eq!(
            p.parse(b"2018-03-12 09:30:00"),
            Ok(utc("2018-03-12 13:30:00"))
        );
        assert!(
            p.parse(b"2018-03-11 02:30:00")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            p.parse(b"2018-11-04 01:30:00")
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn epoch_and_date_formats() {
        let mut ms = TimeParser::new(TimeFormat::parse("unix_ms"), Tz::UTC);
        assert_eq!(ms.parse(b"1500000000000"), Ok(1_500_000_000_000_000_000));
        let mut d = TimeParser::new(TimeFormat::parse("%d/%m/%Y"), Tz::UTC);
        assert_eq!(d.parse(b"08/02/2013"), Ok(utc("2013-02-08 00:00")));
    }
}
