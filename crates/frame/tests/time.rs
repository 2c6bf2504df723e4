//! Time parsing and printing: hand-computed epoch offsets, time zones with
//! daylight saving, durations, and the errors for each bad input.

use kf_frame::time::{NANOS_PER_DAY, NANOS_PER_SEC};
use kf_frame::{Timestamp, parse_duration, parse_tz};

#[test]
fn parses_naive_in_new_york_winter_and_summer() {
    let tz = parse_tz("America/New_York").unwrap();
    // EST is UTC-5 in January, EDT is UTC-4 in July.
    let w = Timestamp::parse_in("2000-01-01 09:31", tz).unwrap();
    assert_eq!(w, Timestamp::parse("2000-01-01T14:31:00Z").unwrap());
    let s = Timestamp::parse_in("2018-07-02 09:30:00", tz).unwrap();
    assert_eq!(s.to_string(), "2018-07-02T13:30:00Z");
    assert_eq!(s.format_in(tz), "2018-07-02T09:30:00-04:00");
}

#[test]
fn epoch_arithmetic_matches_hand_computation() {
    // 2000-01-01 is 10957 days after 1970-01-01.
    let t = Timestamp::parse("2000-01-01").unwrap();
    assert_eq!(t.nanos(), 10_957 * NANOS_PER_DAY);
    let frac = Timestamp(t.nanos() + 1_500);
    assert_eq!(frac.to_string(), "2000-01-01T00:00:00.000001500Z");
}

#[test]
fn rejects_dst_gap_and_fold() {
    let tz = parse_tz("America/New_York").unwrap();
    let gap = Timestamp::parse_in("2018-03-11 02:30", tz).unwrap_err();
    assert!(gap.to_string().contains("does not exist"), "{gap}");
    let fold = Timestamp::parse_in("2018-11-04 01:30", tz).unwrap_err();
    assert!(fold.to_string().contains("ambiguous"), "{fold}");
}

#[test]
fn rejects_garbage_out_of_range_and_unknown_zone() {
    let e = Timestamp::parse("yesterday").unwrap_err();
    assert!(e.to_string().contains("`yesterday`"), "{e}");
    let e = Timestamp::parse("2300-01-01").unwrap_err();
    assert!(e.to_string().contains("range"), "{e}");
    let e = parse_tz("Mars/Olympus").unwrap_err();
    assert!(e.to_string().contains("unknown time zone"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("5min").unwrap(), 300 * NANOS_PER_SEC);
    assert_eq!(parse_duration("5T").unwrap(), 300 * NANOS_PER_SEC);
    assert_eq!(parse_duration("1d").unwrap(), 86_400 * NANOS_PER_SEC);
    assert_eq!(parse_duration("h").unwrap(), 3_600 * NANOS_PER_SEC);
    assert_eq!(parse_duration("250us").unwrap(), 250_000);
    assert!(
        parse_duration("5")
            .unwrap_err()
            .to_string()
            .contains("missing unit")
    );
    assert!(
        parse_duration("5 fortnights")
            .unwrap_err()
            .to_string()
            .contains("unknown unit")
    );
    assert!(
        parse_duration("99999999999d")
            .unwrap_err()
            .to_string()
            .contains("overflow")
    );
}
