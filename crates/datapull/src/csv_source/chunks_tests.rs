//! The chunked read of a file against the streaming read of the same file: the
//! same rows in the same order, and the same error (file, line and message), for
//! every number of chunks, on files whose cuts fall on every line.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType};

use super::chunks::{Chunking, read_chunked};
use super::read::read_streaming;
use super::{CsvParams, CsvSource};

/// Every chunk count tried: 1 (one piece) up to more chunks than lines.
const CUTS: [usize; 8] = [1, 2, 3, 4, 5, 7, 11, 64];

fn chunking(chunks: usize) -> Chunking {
    Chunking {
        min_bytes: 0,
        max_bytes: u64::MAX,
        chunks,
    }
}

/// A source over `path` with an `asset` column (or the fixed asset `X` when
/// `column` is false), strict order unless `order` says otherwise.
fn source(path: &Path, column: bool, order: &str) -> CsvSource {
    let p = CsvParams {
        files: path.to_string_lossy().into_owned(),
        asset: (!column).then(|| "X".into()),
        asset_column: column.then(|| "asset".into()),
        order: order.into(),
        ..CsvParams::default()
    };
    CsvSource::new(p, Path::new("")).unwrap()
}

/// Every value of the batches, rows in order: times, asset names and the bits of
/// each feature.
fn cells(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let mut row = String::new();
            for c in b.columns() {
                let cell = if let Some(t) = c.as_primitive_opt::<TimestampNanosecondType>() {
                    t.value(r).to_string()
                } else if let Some(f) = c.as_primitive_opt::<Float64Type>() {
                    format!("{:x}", f.value(r).to_bits())
                } else {
                    c.as_string::<i32>().value(r).to_string()
                };
                row.push_str(&cell);
                row.push('|');
            }
            out.push(row);
        }
    }
    out
}

/// `text` written as `name` in a temporary folder.
fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Chunked and streaming reads of `path` agree for every chunk count: rows, or
/// the error's text. Returns the streaming outcome.
fn agree(src: &CsvSource, path: &Path) -> Result<Vec<String>, String> {
    let want = read_streaming(src, path)
        .map(|b| cells(&[b]))
        .map_err(|e| e.to_string());
    for n in CUTS {
        let got = read_chunked(src, path, chunking(n))
            .map(|b| cells(&b.expect("forced chunking reads in chunks")))
            .map_err(|e| e.to_string());
        assert_eq!(got, want, "{n} chunks of {}", path.display());
    }
    want
}

/// Forty rows of three assets taking turns, one minute apart, with CRLF or LF.
fn three_assets(crlf: bool) -> String {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut t = format!("timestamp,asset,close,volume{nl}");
    for i in 0..40 {
        let asset = ["AAA", "BB", "C"][i % 3];
        t.push_str(&format!(
            "2024-01-02 10:{:02},{asset},{}.25,{}{nl}",
            i / 3,
            100 + i,
            1000 * i
        ));
    }
    t
}

#[test]
fn chunks_read_the_rows_of_the_stream_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    for crlf in [false, true] {
        let path = file(dir.path(), "a.csv", &three_assets(crlf));
        let rows = agree(&source(&path, true, "strict"), &path).unwrap();
        assert_eq!(rows.len(), 40);
    }
    // No newline after the last row; a missing value; one asset per file.
    let text = "timestamp,close\n2024-01-02 10:00,1.5\n2024-01-02 10:01,\n2024-01-02 10:02,3";
    let path = file(dir.path(), "b.csv", text);
    assert_eq!(
        agree(&source(&path, false, "strict"), &path).unwrap().len(),
        3
    );
    // Blank lines, a lone `\r` ending a record, and a field too many after
    // them: the line is the one an editor shows, on either path.
    let text = "timestamp,close\n\n2024-01-02 10:00,1.5\r\n\r\n2024-01-02 10:01,2\r2024-01-02 10:02,3\n\n\n";
    let path = file(dir.path(), "blank.csv", text);
    assert_eq!(
        agree(&source(&path, false, "strict"), &path).unwrap().len(),
        3
    );
    let path = file(
        dir.path(),
        "blank_bad.csv",
        &format!("{text}2024-01-02 10:03,4,5\n"),
    );
    let e = agree(&source(&path, false, "strict"), &path).unwrap_err();
    assert!(e.contains(":8: has 3 fields, but the header has 2"), "{e}");
    // Gzip: inflated whole, then cut.
    let path = dir.path().join("c.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(three_assets(false).as_bytes()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    assert_eq!(
        agree(&source(&path, true, "strict"), &path).unwrap().len(),
        40
    );
    // A quote anywhere: one piece, a newline inside a quoted field included.
    let text = "timestamp,asset,close\n2024-01-02 10:00,\"A\nB\",1\n2024-01-02 10:01,C,2\n";
    let path = file(dir.path(), "d.csv", text);
    let rows = agree(&source(&path, true, "strict"), &path).unwrap();
    assert!(rows[0].contains("A\nB"), "{rows:?}");
}

#[test]
fn chunks_give_the_streams_error_on_the_earliest_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = three_assets(false);
    let lines: Vec<&str> = base.lines().collect();
    // Each case breaks line `at` (1-based, the header is line 1) and sometimes a
    // later one too: the error is the earliest, whichever chunk holds it.
    let with = |edits: &[(usize, &str)]| -> String {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        for (at, text) in edits {
            l[at - 1] = text.to_string();
        }
        l.join("\n") + "\n"
    };
    let cases: Vec<(String, &str)> = vec![
        // A field too many, early, middle and last.
        (
            with(&[(2, "2024-01-02 10:00,AAA,1,2,3")]),
            ":2: has 5 fields",
        ),
        (
            with(&[(21, "2024-01-02 10:06,BB,1,2,3")]),
            ":21: has 5 fields",
        ),
        (with(&[(41, "2024-01-02 10:13,AAA,1")]), ":41: has 3 fields"),
        // A number and a time that do not parse.
        (
            with(&[(17, "2024-01-02 10:05,BB,abc,1")]),
            ":17: column `close`",
        ),
        (
            with(&[(30, "2024-13-02 10:09,AAA,1,1")]),
            ":30: column `timestamp`",
        ),
        // An asset's bar before its previous one, the two lines far apart (the
        // cut between them is checked across chunks) or adjacent.
        (
            with(&[(38, "2024-01-02 10:00,BB,1,1")]),
            ":38: bar time 2024-01-02T10:00:00Z is before the previous one for asset BB (2024-01-02T10:11:00Z at line 36)",
        ),
        (
            with(&[(5, "2024-01-02 10:00,AAA,1,1")]),
            ":5: bar time 2024-01-02T10:00:00Z is equal to the previous one for asset AAA (2024-01-02T10:00:00Z at line 2)",
        ),
        // Two errors: the order one first, then a bad number; and the reverse.
        (
            with(&[(20, "2024-01-02 10:00,C,1,1"), (35, "x,C,1,1")]),
            ":20: bar time",
        ),
        (
            with(&[
                (12, "2024-01-02 10:03,C,zz,1"),
                (35, "2024-01-02 10:00,AAA,1,1"),
            ]),
            ":12: column `close`",
        ),
        // An empty asset.
        (
            with(&[(9, "2024-01-02 10:02,,1,1")]),
            ":9: column `asset`: the asset is empty",
        ),
    ];
    for (k, (text, want)) in cases.iter().enumerate() {
        let path = file(dir.path(), &format!("bad{k}.csv"), text);
        let e = agree(&source(&path, true, "strict"), &path).unwrap_err();
        assert!(e.contains(want), "case {k}: {e} (wanted {want})");
    }
    // Ticks may share a time: the same file is good in non-decreasing order.
    let text = with(&[(5, "2024-01-02 10:00,AAA,1,1")]);
    let path = file(dir.path(), "ticks.csv", &text);
    assert_eq!(
        agree(&source(&path, true, "non_decreasing"), &path)
            .unwrap()
            .len(),
        40
    );
    // In any order, an asset may go back in time, across chunks too.
    let text = with(&[(38, "2024-01-02 10:00,BB,1,1")]);
    let path = file(dir.path(), "any.csv", &text);
    assert_eq!(agree(&source(&path, true, "any"), &path).unwrap().len(), 40);
}

#[test]
fn a_file_that_cannot_be_inflated_whole_is_left_to_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"timestamp,asset,close\n").unwrap();
    for i in 0..5_000 {
        writeln!(gz, "2024-01-02 10:{:02},A{},{i}.5", i % 60, i % 7).unwrap();
    }
    let gz = gz.finish().unwrap();
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let src = source(&path, true, "any");
    assert!(read_chunked(&src, &path, chunking(4)).unwrap().is_none());
    // The stream says on which line it broke.
    let e = read_streaming(&src, &path).unwrap_err().to_string();
    assert!(e.contains("is the file truncated"), "{e}");
}

#[test]
fn small_files_are_one_piece_and_large_ones_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "s.csv", &three_assets(false));
    let src = source(&path, true, "strict");
    let small = Chunking {
        min_bytes: 1 << 20,
        max_bytes: u64::MAX,
        chunks: 4,
    };
    let b = read_chunked(&src, &path, small).unwrap().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].num_rows(), 40);
    let large = Chunking {
        min_bytes: 0,
        max_bytes: 16,
        chunks: 4,
    };
    assert!(read_chunked(&src, &path, large).unwrap().is_none());
    // The chunks' batches are one per piece (here 4), and hold every row.
    let b = read_chunked(&src, &path, chunking(4)).unwrap().unwrap();
    assert_eq!(b.len(), 4);
    assert_eq!(b.iter().map(RecordBatch::num_rows).sum::<usize>(), 40);
    assert!(b.iter().all(|b| b.column(0).len() == b.num_rows()));
}

#[test]
fn a_gzip_trailer_that_understates_the_text_cannot_overrun_the_limit() {
    // Two gzip members: the trailer read for the size is the last one's (a few
    // bytes), while the text is the first one's 40 rows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.csv.gz");
    let member = |text: &str| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    let mut bytes = member(&three_assets(false));
    bytes.extend(member("2024-01-02 11:00,C,1,1\n"));
    std::fs::write(&path, bytes).unwrap();
    let src = source(&path, true, "strict");
    let tight = Chunking {
        min_bytes: 0,
        max_bytes: 100,
        chunks: 1,
    };
    assert!(read_chunked(&src, &path, tight).unwrap().is_none());
    // With room, both members are read.
    assert_eq!(agree(&src, &path).unwrap().len(), 41);
}

#[test]
fn errors_name_the_line_an_editor_shows_on_every_path() {
    // CRLF line ends, a byte-order mark, a blank line and a quoted field with a
    // newline in it: the bad row is on line 6 whichever way the file is read
    // (split from memory, parsed by the `csv` crate from memory, or streamed).
    let dir = tempfile::tempdir().unwrap();
    let plain = "\u{feff}timestamp,asset,close\r\n2024-01-02 10:00,A,1\r\n\r\n\
                 2024-01-02 10:01,A,2\r\n2024-01-02 10:02,B,3\r\n2024-01-02 10:03,A,x\r\n";
    let quoted = "timestamp,asset,close\r\n2024-01-02 10:00,\"A\r\nA\",1\r\n\r\n\
                  2024-01-02 10:01,C,2\r\n2024-01-02 10:03,B,x\r\n";
    for (name, text) in [("plain.csv", plain), ("quoted.csv", quoted)] {
        let path = file(dir.path(), name, text);
        let e = agree(&source(&path, true, "strict"), &path).unwrap_err();
        assert!(e.contains(":6: column `close`"), "{name}: {e}");
    }
    // The rows of the good part are read, with the mark dropped from the header.
    let path = file(dir.path(), "bom.csv", &plain.replace(",x", ",4"));
    assert_eq!(
        agree(&source(&path, true, "strict"), &path).unwrap().len(),
        4
    );
}
