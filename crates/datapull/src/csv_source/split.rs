//! Records of CSV text that holds no quote character, split with one vectorized
//! scan ([`Splitter`]).
//!
//! Without quotes, CSV has no escapes: a delimiter always ends a field and a `\n`
//! or `\r` always ends a record. One `memchr3` pass over the text finds every
//! boundary, where the `csv` crate's state machine looks at each byte in turn.
//! The records are the `csv` crate's, byte for byte: a record ends at `\n`, `\r`
//! or `\r\n`, an empty record (a blank line) is skipped, and a last record needs
//! no terminator. A record's line is the one its first byte is on: one more than
//! the `\n`s before it, as an editor counts ([`super::lines`] gives records read
//! by the `csv` crate the same numbers). `split_tests` checks both against the
//! `csv` crate on generated text.

/// The fields of one record, as byte ranges of the text (what
/// [`super::rows::Rows::push`] reads through [`Fields`]).
#[derive(Debug, Default)]
pub(crate) struct Record<'a> {
    text: &'a [u8],
    /// Each field's (start, end) in `text`.
    bounds: Vec<(usize, usize)>,
}

/// Read access to a record's fields, by index: what the row parser needs of a
/// `csv::ByteRecord` and of a [`Record`].
pub(crate) trait Fields {
    /// How many fields the record has.
    fn len(&self) -> usize;
    /// Field `i`, or empty past the last.
    fn field(&self, i: usize) -> &[u8];
}

impl Fields for csv::ByteRecord {
    fn len(&self) -> usize {
        csv::ByteRecord::len(self)
    }
    fn field(&self, i: usize) -> &[u8] {
        self.get(i).unwrap_or_default()
    }
}

impl Fields for Record<'_> {
    fn len(&self) -> usize {
        self.bounds.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        self.bounds
            .get(i)
            .and_then(|&(a, b)| self.text.get(a..b))
            .unwrap_or_default()
    }
}

/// Splits quote-free CSV text into records (see the module doc).
///
/// The text must hold no `"` (the caller checks with one `memchr`), and the
/// delimiter must be neither `\n`, `\r` nor `"`: [`Splitter::new`] refuses
/// those, and the caller parses with the `csv` crate instead.
pub(crate) struct Splitter<'a> {
    text: &'a [u8],
    hits: memchr::Memchr3<'a>,
    delimiter: u8,
    /// One more than the `\n`s read so far.
    line: u64,
    /// Where the record being read starts.
    start: usize,
    done: bool,
}

impl<'a> Splitter<'a> {
    /// A splitter over `text`, whose first byte is on line `first_line`; `None` for
    /// a delimiter that a record terminator or a quote could be.
    pub(crate) fn new(text: &'a [u8], delimiter: u8, first_line: u64) -> Option<Splitter<'a>> {
        if matches!(delimiter, b'\n' | b'\r' | b'"') {
            return None;
        }
        Some(Splitter {
            text,
            hits: memchr::memchr3_iter(delimiter, b'\n', b'\r', text),
            delimiter,
            line: first_line,
            start: 0,
            done: false,
        })
    }

    /// Reads the next record into `record` and returns its line; `None` at the end
    /// of the text.
    pub(crate) fn next_record(&mut self, record: &mut Record<'a>) -> Option<u64> {
        record.text = self.text;
        record.bounds.clear();
        loop {
            let line = self.line;
            let mut field_start = self.start;
            loop {
                let Some(at) = self.hits.next() else {
                    // The last record, with no terminator after it.
                    if self.done || (field_start == self.text.len() && record.bounds.is_empty()) {
                        self.done = true;
                        return None;
                    }
                    self.done = true;
                    record.bounds.push((field_start, self.text.len()));
                    self.start = self.text.len();
                    return Some(line);
                };
                let byte = self.text[at];
                if byte == self.delimiter {
                    record.bounds.push((field_start, at));
                    field_start = at + 1;
                    continue;
                }
                if byte == b'\n' {
                    self.line += 1;
                }
                self.start = at + 1;
                if at == field_start && record.bounds.is_empty() {
                    // An empty record: a blank line, or the `\n` of a `\r\n`.
                    break;
                }
                record.bounds.push((field_start, at));
                return Some(line);
            }
        }
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod split_tests;
