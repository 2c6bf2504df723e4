//! The splitter against the `csv` crate: the same records and fields on generated
//! quote-free text full of blank lines, `\r`, `\r\n`, empty fields and missing final
//! terminators, and the same lines as [`LineCounter`] gives the `csv` crate's
//! records.

use super::super::lines::LineCounter;
use super::{Fields, Record, Splitter};

/// Every record of `text` with its line, as the `csv` crate reads it (any number
/// of fields per record), lines counted by [`LineCounter`].
fn by_csv(text: &[u8], delimiter: u8, first_line: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = LineCounter::new(first_line);
    while rdr.read_byte_record(&mut record).unwrap() {
        let at = usize::try_from(record.position().unwrap().byte()).unwrap();
        let line = lines.line_of(text, at);
        out.push((line, record.iter().map(<[u8]>::to_vec).collect()));
    }
    out
}

/// Every record of `text` with its line, as the splitter reads it.
fn by_splitter(text: &[u8], delimiter: u8, first_line: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
    let mut s = Splitter::new(text, delimiter, first_line).unwrap();
    let mut record = Record::default();
    let mut out = Vec::new();
    while let Some(line) = s.next_record(&mut record) {
        let fields = (0..record.len())
            .map(|i| record.field(i).to_vec())
            .collect();
        out.push((line, fields));
    }
    // The end is sticky.
    assert!(s.next_record(&mut record).is_none());
    out
}

#[test]
fn hand_written_cases_match_the_csv_crate() {
    let cases: [&[u8]; 16] = [
        b"",
        b"\n",
        b"\r\n\r\n",
        b"a",
        b"a,b",
        b"a,b\n",
        b"a,b\r\nc,d\r\n",
        b"a,b\rc,d\r",
        b"a,\n,b\n,\n",
        b"\n\na,b\n\n\nc\n",
        b"a,b\n\r\n\rc,d",
        b" , \n",
        b"2018-02-01 09:30:00,172.3,100\n2018-02-01 09:31:00,172.4,200\n",
        b",",
        b"\r",
        b"x\r\r\ny\n\r",
    ];
    for text in cases {
        for first in [1, 7] {
            assert_eq!(
                by_splitter(text, b',', first),
                by_csv(text, b',', first),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}

#[test]
fn generated_text_matches_the_csv_crate() {
    let alphabet = b"ab1 ,;\n\r\t";
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for case in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 60) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        let delimiter = [b',', b';', b'\t'][case % 3];
        assert_eq!(
            by_splitter(&text, delimiter, 1),
            by_csv(&text, delimiter, 1),
            "{:?} split on {:?}",
            String::from_utf8_lossy(&text),
            delimiter as char
        );
    }
}

#[test]
fn lines_are_those_an_editor_shows() {
    let lines = |text: &[u8]| -> Vec<u64> {
        by_splitter(text, b',', 1)
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    };
    assert_eq!(lines(b"a,b\r\nc,d\r\ne\r\n"), [1, 2, 3]);
    assert_eq!(lines(b"\n\na\n\r\nb\rc\n\nd"), [3, 5, 5, 7]);
}

#[test]
fn a_delimiter_that_could_end_a_record_or_quote_is_refused() {
    for d in [b'\n', b'\r', b'"'] {
        assert!(Splitter::new(b"a", d, 1).is_none());
    }
    assert!(Splitter::new(b"a", b'|', 1).is_some());
}

#[test]
fn a_missing_field_reads_as_empty() {
    let mut s = Splitter::new(b"a,b\n", b',', 1).unwrap();
    let mut r = Record::default();
    assert_eq!(s.next_record(&mut r), Some(1));
    assert_eq!((r.len(), r.field(1), r.field(2)), (2, &b"b"[..], &b""[..]));
}
