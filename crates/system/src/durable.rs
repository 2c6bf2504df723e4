//! Durable runs: a system run that records each decision as it is made, so that a
//! process killed at any instant (`kill -9`, a power cut) loses at most the
//! decision in flight, and the same call on the same folder resumes where it
//! stopped, ending with exactly the run an uninterrupted process gives.
//!
//! # The folder
//! - `journal.kfj`: one record per decision, appended and synced before the
//!   checkpoint moves past it: the decision's bar, its orders, the fills of its
//!   bar and its fit. Each record is framed by its length and CRC-32.
//! - `checkpoint.kfs`: replaced atomically (written aside, synced, renamed, the
//!   folder synced) after each decision's record: the loop's state (portfolio,
//!   waiting orders, audit, learned states, clock), what the DAG and the processor
//!   carry, and the journal's length at that decision.
//!
//! A kill between the two leaves a journal record past the checkpoint's length: a
//! restart cuts the journal back to that length and makes the decision again,
//! which gives the same record (the loop is deterministic on its clock). A kill
//! while the checkpoint is written leaves the previous one whole.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kf_dataflow::NodeId;

use crate::engine::{Decided, Fills, LoopState, LoopStateRef, Orders, Stopped, System, SystemRun};
use crate::error::{Result, SystemError};
use crate::learning::FitRecord;
use crate::portfolio::BarRecord;

/// The journal's file name in a durable run's folder.
pub const JOURNAL: &str = "journal.kfj";
/// The checkpoint's file name in a durable run's folder.
pub const CHECKPOINT: &str = "checkpoint.kfs";

/// One decision's records, as the journal holds them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// The bar the decision closed.
    pub bar: BarRecord,
    /// The orders it placed.
    pub orders: Orders,
    /// The fills of its bar.
    pub fills: Fills,
    /// The fit made at it, if any.
    pub fit: Option<FitRecord>,
}

/// The checkpoint as written (borrowing the running loop's state).
#[derive(serde::Serialize)]
struct CheckpointOut<'a> {
    run: &'a str,
    journal: u64,
    state: LoopStateRef<'a>,
    carry: &'a BTreeMap<NodeId, Vec<u8>>,
    processor: &'a [u8],
}

/// The checkpoint as read.
#[derive(serde::Deserialize)]
struct CheckpointIn {
    /// The run's identity: the config and the crate version.
    run: String,
    /// The journal's length (bytes) at the checkpoint's decision.
    journal: u64,
    state: LoopState,
    carry: BTreeMap<NodeId, Vec<u8>>,
    processor: Vec<u8>,
}

/// A decision just recorded (journal synced, checkpoint replaced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The decision's time on the grid.
    pub ts: i64,
    /// When it was taken, in data terms (see [`crate::live`]).
    pub decided: i64,
    /// The knowledge cut-off it read as of (a live system's; `i64::MIN` otherwise).
    pub cut: i64,
    /// Decisions made so far.
    pub done: usize,
}

/// How a durable run went: where it resumed, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// Decisions already made when the run started (0: a fresh run).
    pub decisions: usize,
    /// The last of them (ns), if any.
    pub at: Option<i64>,
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> SystemError {
    SystemError::Output {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
    }
}

/// `bytes` framed by their length and CRC-32.
fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The framed payloads of `buf` in order; `Err(offset)` at the first record that
/// is cut short or does not match its CRC.
fn unframe(buf: &[u8]) -> std::result::Result<Vec<&[u8]>, usize> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let head = buf.get(at..at + 12).ok_or(at)?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[..8]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&head[8..12]);
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| at)?;
        let end = (at + 12).checked_add(len).ok_or(at)?;
        let body = buf.get(at + 12..end).ok_or(at)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc) {
            return Err(at);
        }
        out.push(body);
        at = end;
    }
    Ok(out)
}

impl System<'_> {
    /// Runs the system under its configured clock as a durable run in `dir` (see
    /// the module's notes): a fresh run when `dir` holds none, else the run there
    /// resumed after its last recorded decision. The result is, to the bit, the
    /// run an uninterrupted process gives.
    ///
    /// # Errors
    /// Those of [`System::run`]; a folder that holds the run of another config or
    /// crate version, or whose files are damaged (not by a kill, which cannot
    /// damage them), naming the file; I/O errors naming the file; a DAG node or a
    /// processor that cannot save what it carries.
    pub fn run_durable(&mut self, dir: &Path) -> Result<(SystemRun, Resumed)> {
        self.run_recorded(dir, None, None)
    }

    /// [`System::run_durable`], with a live system's feed, calling `observe` after
    /// each decision is recorded.
    pub(crate) fn run_recorded(
        &mut self,
        dir: &Path,
        feed: Option<&mut (dyn kf_datapull::Feed + '_)>,
        mut observe: Option<&mut dyn FnMut(Recorded)>,
    ) -> Result<(SystemRun, Resumed)> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create the folder", e))?;
        let run_id = format!("{} {}", self.config.id(), env!("CARGO_PKG_VERSION"));
        let (journal_path, checkpoint_path) = (dir.join(JOURNAL), dir.join(CHECKPOINT));
        let mut journal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&journal_path)
            .map_err(|e| io_err(&journal_path, "cannot open the journal", e))?;
        let prior = read_checkpoint(&checkpoint_path, &run_id)?;
        let (resume, steps, length) = match prior {
            None => (None, Vec::new(), 0u64),
            Some(c) => {
                let steps = read_journal(&mut journal, &journal_path, c.journal)?;
                let resume = Stopped {
                    state: c.state,
                    carry: Ok(c.carry),
                    processor: Some(c.processor),
                };
                (Some(resume), steps, c.journal)
            }
        };
        // Records past the checkpoint are of a decision that will be made again.
        journal
            .set_len(length)
            .and_then(|()| journal.seek(SeekFrom::Start(length)).map(|_| ()))
            .map_err(|e| io_err(&journal_path, "cannot cut the journal back", e))?;
        let resumed = Resumed {
            decisions: resume.as_ref().map_or(0, |r| r.state.done),
            at: resume.as_ref().map(|r| r.state.prev),
        };
        // A live system decides on a simulated clock that follows its data.
        let kind = match self.live {
            Some(_) => kf_datapull::ClockKind::Simulated,
            None => self.spec.clock.kind,
        };
        let clock = match &resume {
            Some(r) => kind.clock(r.state.clock_now),
            None => self.clock(kind),
        };
        let mut recorder = Recorder {
            journal,
            journal_path,
            checkpoint_path,
            length,
            run_id,
            // A resumed book starts with no records (they are in the journal).
            seen: (0, 0, 0, 0),
        };
        let mut after = |d: Decided<'_>| {
            let seen = Recorded {
                ts: d.state.prev,
                decided: d.state.decided,
                cut: d.state.cut,
                done: d.state.done,
            };
            recorder.record(d)?;
            if let Some(o) = observe.as_deref_mut() {
                o(seen);
            }
            Ok(())
        };
        let stopped = self.run_loop_with(clock, resume, false, Some(&mut after), feed)?;
        let mut state = stopped.state;
        // The records before the resumption come from the journal, in order.
        let mut bars = Vec::with_capacity(steps.len() + state.book.bars.len());
        let (mut orders, mut fills, mut fits) = (Orders::default(), Fills::default(), Vec::new());
        for s in steps {
            bars.push(s.bar);
            orders.append(s.orders);
            fills.append(s.fills);
            fits.extend(s.fit);
        }
        bars.append(&mut state.book.bars);
        orders.append(std::mem::take(&mut state.book.orders));
        fills.append(std::mem::take(&mut state.book.fills));
        fits.append(&mut state.fits);
        (
            state.book.bars,
            state.book.orders,
            state.book.fills,
            state.fits,
        ) = (bars, orders, fills, fits);
        Ok((self.finish(state), resumed))
    }
}

/// Records each decision: its journal record, then the checkpoint.
struct Recorder {
    journal: std::fs::File,
    journal_path: PathBuf,
    checkpoint_path: PathBuf,
    /// The journal's length.
    length: u64,
    run_id: String,
    /// How many bars, orders, fills and fits this process's book held at the last
    /// record (its records since the resumption).
    seen: (usize, usize, usize, usize),
}

impl Recorder {
    fn record(&mut self, d: Decided<'_>) -> Result<()> {
        let book = d.state.book;
        let (bars, orders, fills, fits) = self.seen;
        let step = Step {
            bar: book.bars[bars..].first().copied().ok_or_else(|| {
                SystemError::Invalid("a decision closed no bar (an engine bug)".into())
            })?,
            orders: book.orders.tail(orders),
            fills: book.fills.tail(fills),
            fit: d.fits.get(fits).cloned(),
        };
        self.seen = (
            book.bars.len(),
            book.orders.ts.len(),
            book.fills.ts.len(),
            d.fits.len(),
        );
        let bytes = postcard::to_stdvec(&step)
            .map_err(|e| SystemError::Invalid(format!("a journal record does not encode: {e}")))?;
        let framed = frame(&bytes);
        self.journal
            .write_all(&framed)
            .and_then(|()| self.journal.sync_data())
            .map_err(|e| io_err(&self.journal_path, "cannot append to the journal", e))?;
        self.length += framed.len() as u64;
        let carry = d.dag.save_carry()?;
        let processor = d.processor.save_state().ok_or_else(|| {
            SystemError::Invalid(format!(
                "the `{}` processor cannot save what it carries, so a durable run cannot \
                 checkpoint it",
                d.processor.kind()
            ))
        })?;
        let bytes = postcard::to_stdvec(&CheckpointOut {
            run: &self.run_id,
            journal: self.length,
            state: d.state,
            carry: &carry,
            processor: &processor,
        })
        .map_err(|e| SystemError::Invalid(format!("the checkpoint does not encode: {e}")))?;
        kf_frame::write_atomic(&self.checkpoint_path, &frame(&bytes))
            .map_err(|e| io_err(&self.checkpoint_path, "cannot write the checkpoint", e))
    }
}

/// The checkpoint at `path`, if any, checked to be the run `run_id`'s.
fn read_checkpoint(path: &Path, run_id: &str) -> Result<Option<CheckpointIn>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "cannot read the checkpoint", e)),
    };
    let damaged = |why: &str| {
        io_err(
            path,
            "damaged checkpoint",
            format!(
                "{why}; a kill cannot do this (the file is replaced whole): remove the folder to start the run again"
            ),
        )
    };
    let body = match unframe(&bytes) {
        Ok(parts) if parts.len() == 1 => parts[0],
        _ => return Err(damaged("its length or checksum does not match")),
    };
    let c: CheckpointIn = postcard::from_bytes(body).map_err(|_| damaged("it does not decode"))?;
    if c.run != run_id {
        return Err(SystemError::Invalid(format!(
            "{} holds a run of another config or version ({}; this one is {run_id}): use \
             another folder, or remove it to start again",
            path.parent().unwrap_or(path).display(),
            c.run
        )));
    }
    Ok(Some(c))
}

/// The first `length` bytes of the journal, as records.
fn read_journal(file: &mut std::fs::File, path: &Path, length: u64) -> Result<Vec<Step>> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut buf))
        .map_err(|e| io_err(path, "cannot read the journal", e))?;
    let want = usize::try_from(length).unwrap_or(usize::MAX);
    let Some(kept) = buf.get(..want) else {
        return Err(io_err(
            path,
            "damaged journal",
            format!(
                "{} bytes, shorter than the checkpoint's {length}: remove the folder to start \
                 the run again",
                buf.len()
            ),
        ));
    };
    let parts = unframe(kept).map_err(|at| {
        io_err(
            path,
            "damaged journal",
            format!("the record at byte {at} does not match its checksum"),
        )
    })?;
    parts
        .into_iter()
        .map(|p| {
            postcard::from_bytes(p).map_err(|e| {
                io_err(
                    path,
                    "damaged journal",
                    format!("a record does not decode: {e}"),
                )
            })
        })
        .collect()
}

/// The decisions recorded in the durable run folder `dir` up to its checkpoint, in
/// order (none when the run has not decided yet).
///
/// # Errors
/// A damaged checkpoint or journal, named; I/O errors naming the file.
pub fn recorded(dir: &Path) -> Result<Vec<Step>> {
    let (journal_path, checkpoint_path) = (dir.join(JOURNAL), dir.join(CHECKPOINT));
    let bytes = match std::fs::read(&checkpoint_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&checkpoint_path, "cannot read the checkpoint", e)),
    };
    let run = match unframe(&bytes) {
        Ok(parts) if parts.len() == 1 => postcard::from_bytes::<CheckpointIn>(parts[0]).ok(),
        _ => None,
    };
    let Some(run) = run else {
        return Err(io_err(
            &checkpoint_path,
            "damaged checkpoint",
            "its length, checksum or layout does not match",
        ));
    };
    let mut file = std::fs::File::open(&journal_path)
        .map_err(|e| io_err(&journal_path, "cannot open the journal", e))?;
    read_journal(&mut file, &journal_path, run.journal)
}

/// The first difference between two runs' records, decision by decision, said in
/// full (`None`: the same bits, over the decisions both made).
pub fn first_difference(live: &[Step], replay: &[Step]) -> Option<String> {
    for (k, (a, b)) in live.iter().zip(replay).enumerate() {
        let (ea, eb) = (postcard::to_stdvec(a).ok(), postcard::to_stdvec(b).ok());
        if ea.is_some() && ea == eb {
            continue;
        }
        let at = format!("decision {k} (bar {})", kf_frame::Timestamp(a.bar.ts));
        let field = |x: &dyn erased::Json, y: &dyn erased::Json, what: &str| {
            let (x, y) = (x.json(), y.json());
            diff_path(&x, &y, what).map(|(path, vx, vy)| {
                format!("{at}: {path} is {vx} in the live run and {vy} in the replay")
            })
        };
        return field(&a.bar, &b.bar, "bar")
            .or_else(|| field(&a.orders, &b.orders, "orders"))
            .or_else(|| field(&a.fills, &b.fills, "fills"))
            .or_else(|| field(&a.fit, &b.fit, "fit"))
            .or_else(|| {
                Some(format!(
                    "{at}: the records differ in their bits (a NaN's payload or the sign of a zero)"
                ))
            });
    }
    None
}

/// Values as JSON, for saying where two records differ.
mod erased {
    pub(super) trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// The first path at which `a` and `b` differ, with both values.
fn diff_path(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(k, v)| {
            diff_path(v, y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| diff_path(v, w, &format!("{path}[{i}]"))),
        (Value::Array(x), Value::Array(y)) => Some((
            format!("{path} (length)"),
            x.len().to_string(),
            y.len().to_string(),
        )),
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}
