//! One cache entry on disk: a header, each output port as an Arrow IPC stream in the
//! frame's own layout, the node's learned state, and a CRC-32 of all of it.
//!
//! ```text
//! "KFCACHE1"  u32 header length  header (JSON: Meta)
//! per port:   u64 length  Arrow IPC stream (kf_frame::Frame::to_wide_ipc)
//!             u64 length  learned state (empty for a node that learns nothing)
//!             4 bytes     CRC-32 of everything before
//! ```
//!
//! The key is a SHA-256 (no two inputs may share it); the checksum only has to catch
//! damage, and CRC-32 does at several GB/s, so a hit costs little more than reading
//! the file.
//!
//! The header comes first so `cache info` and a run's planning read it without the
//! frames; a load reads the whole file and refuses it unless the checksum matches.

use serde::{Deserialize, Serialize};

use kf_frame::Frame;

use crate::node::Ports;

const MAGIC: &[u8; 8] = b"KFCACHE1";

/// What an entry says about itself: where it came from and what it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The node's id in the run that stored it.
    pub node: String,
    /// The node's type.
    pub kind: String,
    /// The node type's code version.
    pub version: u32,
    /// Where the run came from (a config's path and id), as the caller named it.
    pub origin: String,
    /// The node's parameters in canonical form, clipped for display.
    pub recipe: String,
    /// The output ports, in the order stored.
    pub ports: Vec<String>,
    /// Rows of the first port.
    pub rows: usize,
    /// Values over every port.
    pub cells: usize,
    /// Wall time the node took to compute this output (ns): what a hit saves.
    pub compute_ns: u64,
    /// When it was stored (ns since the epoch).
    pub stored_at: i64,
}

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Shorter than its own framing says, or not an entry at all.
    #[error("truncated or not a cache entry: {0}")]
    Truncated(String),
    /// The content does not match its checksum.
    #[error("checksum mismatch: the file was changed or damaged after it was written")]
    Checksum,
    /// The header or a frame does not decode.
    #[error("does not decode: {0}")]
    Decode(String),
}

/// The bytes of an entry.
///
/// # Errors
/// A frame Arrow cannot encode.
pub fn encode(meta: &Meta, outputs: &Ports, state: &[u8]) -> crate::Result<Vec<u8>> {
    let header = serde_json::to_vec(meta)
        .map_err(|e| crate::DataflowError::invalid(format!("cache header: {e}")))?;
    let frames = meta
        .ports
        .iter()
        .map(|port| {
            let frame = outputs.get(port).ok_or_else(|| {
                crate::DataflowError::invalid(format!("no frame on port `{port}` to cache"))
            })?;
            Ok(frame.to_wide_ipc()?)
        })
        .collect::<crate::Result<Vec<Vec<u8>>>>()?;
    // One allocation of the entry's size: a large output is copied once.
    let size =
        12 + header.len() + frames.iter().map(|f| 8 + f.len()).sum::<usize>() + 8 + state.len() + 4;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for bytes in &frames {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&(state.len() as u64).to_le_bytes());
    out.extend_from_slice(state);
    let sum = crc32fast::hash(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Reads the header from the first bytes of an entry.
///
/// # Errors
/// [`EntryError`] when the bytes do not start an entry.
pub fn header(bytes: &[u8]) -> Result<(Meta, usize), EntryError> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(EntryError::Truncated("no KFCACHE1 magic".into()));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let body = bytes
        .get(12..12 + len)
        .ok_or_else(|| EntryError::Truncated(format!("header of {len} bytes cut short")))?;
    let meta = serde_json::from_slice(body).map_err(|e| EntryError::Decode(e.to_string()))?;
    Ok((meta, 12 + len))
}

/// Decodes a whole entry, checking its checksum first.
///
/// # Errors
/// [`EntryError`] for anything but an intact entry.
pub fn decode(bytes: &[u8]) -> Result<(Meta, Ports, Vec<u8>), EntryError> {
    if bytes.len() < 8 + 4 + 8 + 4 {
        return Err(EntryError::Truncated(format!("{} bytes", bytes.len())));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != sum {
        return Err(EntryError::Checksum);
    }
    let (meta, mut at) = header(body)?;
    let mut take = |what: &str| -> Result<&[u8], EntryError> {
        let len = body
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| EntryError::Truncated(format!("length of {what}")))?;
        let len = usize::try_from(len).map_err(|_| EntryError::Truncated(what.into()))?;
        let start = at + 8;
        let chunk = body
            .get(start..start.saturating_add(len))
            .ok_or_else(|| EntryError::Truncated(format!("{what} cut short")))?;
        at = start + len;
        Ok(chunk)
    };
    let mut ports = Ports::new();
    for port in &meta.ports {
        let frame = Frame::from_wide_ipc(take(port)?)
            .map_err(|e| EntryError::Decode(format!("port `{port}`: {e}")))?;
        ports.insert(port.clone(), frame);
    }
    let state = take("state")?.to_vec();
    Ok((meta, ports, state))
}
