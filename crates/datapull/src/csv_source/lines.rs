//! Editor line numbers for the records the `csv` crate reads.
//!
//! The `csv` crate gives a record the line and byte where it started reading it,
//! right after the previous record's terminator byte. The `\n` of a `\r\n` and the
//! blank lines before a record are therefore not counted for it: on a file with
//! `\r\n` line ends every record would be named one line early. [`LineCounter`]
//! turns the byte where a read started into the line of the record's first byte,
//! the one an editor shows, which is what [`super::split`] gives too. [`Tee`] keeps
//! the bytes a streaming read has not finished with, so the same count works on a
//! stream.

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use super::read::csv_err;
use crate::Result;

/// Counts the `\n`s before each record's first byte, moving forward only.
#[derive(Debug)]
pub(crate) struct LineCounter {
    /// The line of byte `at`.
    line: u64,
    /// The first byte of the last record counted.
    at: usize,
}

impl LineCounter {
    /// A counter over text whose first byte is on line `first_line`.
    pub(crate) fn new(first_line: u64) -> LineCounter {
        LineCounter {
            line: first_line,
            at: 0,
        }
    }

    /// The line of the record whose read started at byte `read_start` of `text`:
    /// the line of the first byte from there on that is not `\r` or `\n`. Calls come
    /// with the same `text` (or, through [`Tail`], the same bytes from a later
    /// origin) and `read_start` not before the previous record's first byte.
    pub(crate) fn line_of(&mut self, text: &[u8], read_start: usize) -> u64 {
        let from = read_start.max(self.at).min(text.len());
        let skip = text[from..]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(text.len() - from);
        let start = from + skip;
        self.line += memchr::memchr_iter(b'\n', &text[self.at..start]).count() as u64;
        self.at = start;
        self.line
    }
}

/// The bytes a [`Tee`] handed to the `csv` crate from the first byte of the last
/// record counted on, and the counter over them.
#[derive(Debug)]
pub(crate) struct Tail {
    /// The stream offset of `bytes[0]`.
    base: u64,
    bytes: Vec<u8>,
    counter: LineCounter,
    /// Bytes before the last record's first byte are dropped once there are this
    /// many ([`DROP_AT`]; less in tests) and they are at least half the tail.
    drop_at: usize,
}

/// Bytes before the last record's first byte are dropped once there are this many
/// (and they are at least half the tail), so the tail stays near the size of the
/// reader's buffer plus one record, and dropping costs under a copy per byte.
const DROP_AT: usize = 1 << 20;

impl Tail {
    /// The line of the record whose read started at stream offset `read_start`
    /// (see [`LineCounter::line_of`]).
    pub(crate) fn line_of(&mut self, read_start: u64) -> u64 {
        let rel = usize::try_from(read_start.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let line = self.counter.line_of(&self.bytes, rel);
        let at = self.counter.at;
        if at >= self.drop_at && at * 2 >= self.bytes.len() {
            self.bytes.drain(..at);
            self.base += at as u64;
            self.counter.at = 0;
        }
        line
    }
}

/// A reader that hands its bytes on and keeps them in a shared [`Tail`].
pub(crate) struct Tee<R> {
    inner: R,
    tail: Rc<RefCell<Tail>>,
}

impl<R: Read> Tee<R> {
    /// `inner`, teed into a tail whose first byte is on line `first_line`; the tail
    /// is shared with the caller.
    pub(crate) fn new(inner: R, first_line: u64) -> (Tee<R>, Rc<RefCell<Tail>>) {
        let tail = Rc::new(RefCell::new(Tail {
            base: 0,
            bytes: Vec::new(),
            counter: LineCounter::new(first_line),
            drop_at: DROP_AT,
        }));
        (
            Tee {
                inner,
                tail: Rc::clone(&tail),
            },
            tail,
        )
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tail.borrow_mut().bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Reads the next record of `rdr`, a `csv` reader over a [`Tee`] whose tail is
/// `tail`, into `record`, and returns its line (`None` at the end); `prev` is the
/// line of the record before (for an error with no position).
///
/// # Errors
/// [`crate::DataError::Line`] naming `path` and the line the reader failed on.
pub(crate) fn next_record<R: Read>(
    rdr: &mut csv::Reader<Tee<R>>,
    tail: &RefCell<Tail>,
    record: &mut csv::ByteRecord,
    prev: u64,
    path: &Path,
) -> Result<Option<u64>> {
    match rdr.read_byte_record(record) {
        Ok(true) => Ok(Some(match record.position() {
            Some(p) => tail.borrow_mut().line_of(p.byte()),
            None => prev + 1,
        })),
        Ok(false) => Ok(None),
        Err(e) => Err(csv_err(path, prev + 1, e, |p| {
            tail.borrow_mut().line_of(p.byte())
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::{LineCounter, Tee};

    /// Each record's line as an editor shows it, from the `csv` crate's read
    /// positions, in memory and through a tee with a tiny buffer (records longer
    /// than the buffer, tails dropped).
    #[test]
    fn records_get_the_line_of_their_first_byte() {
        let text = b"h1,h2\r\n\r\na,b\r\n\n\nc,\"x\ny\"\r\nd,e\rf,g\n";
        // Lines: header 1, `a,b` 3, `c,"x\ny"` 6 (its field spans 6-7), `d,e` 8,
        // `f,g` 8 (a lone `\r` ends a record but not a line).
        let want = vec![3, 6, 8, 8];
        let mut rdr = csv::ReaderBuilder::new().from_reader(&text[..]);
        let mut counter = LineCounter::new(1);
        let mut record = csv::ByteRecord::new();
        let mut got = Vec::new();
        while rdr.read_byte_record(&mut record).unwrap() {
            let at = usize::try_from(record.position().unwrap().byte()).unwrap();
            got.push(counter.line_of(text, at));
        }
        assert_eq!(got, want);

        let (tee, tail) = Tee::new(&text[..], 1);
        tail.borrow_mut().drop_at = 4;
        let mut rdr = csv::ReaderBuilder::new()
            .buffer_capacity(3)
            .from_reader(tee);
        let mut got = Vec::new();
        while rdr.read_byte_record(&mut record).unwrap() {
            got.push(tail.borrow_mut().line_of(record.position().unwrap().byte()));
        }
        assert_eq!(got, want);
        // The tail was cut: it holds less than the text.
        assert!(tail.borrow().bytes.len() < text.len());
    }
}
