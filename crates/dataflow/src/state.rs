//! A fitted DAG on disk: `DIR/state/NODE.bin`, one file per node that learned
//! something, each holding the node's state inside an envelope that says which node
//! type wrote it and which input features it was fitted on.
//!
//! The envelope is what lets `kaizenflow run --state DIR` refuse a state that does
//! not fit the DAG it is loaded into, naming the node: another node type, other
//! input features, or a node that learns and has no state at all. (Other assets are
//! refused by the model itself when it is asked to predict for an asset it was not
//! fitted on.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dag::Dag;
use crate::error::{DataflowError, Result};
use crate::node::NodeId;
use crate::schema::Schema;

const MAGIC: &str = "kaizenflow-node-state";
const VERSION: u32 = 1;

/// What one state file holds.
#[derive(Serialize, Deserialize)]
struct Envelope {
    magic: String,
    version: u32,
    /// The node type that wrote it.
    kind: String,
    /// The features on the node's inputs when it was fitted (empty when the DAG did
    /// not know them before running).
    inputs: Vec<String>,
    /// The node's own bytes ([`crate::Node::save_state`]).
    state: Vec<u8>,
}

/// The features on node `id`'s inputs by `schema` (none when the DAG's columns are
/// not known before running).
fn inputs_of(dag: &Dag, schema: Option<&Schema>, id: &NodeId) -> Vec<String> {
    schema.map_or_else(Vec::new, |s| {
        dag.input_features(s, id).into_iter().collect()
    })
}

/// Writes every node's learned state under `dir/state/` (one `NODE.bin` per node that
/// learned something), each in an envelope naming its node type and input features.
/// The caller writes the resolved config beside it, so that the folder rebuilds the
/// same DAG ([`load_states`]). Returns how many files were written.
///
/// # Errors
/// [`DataflowError::Io`] naming the file; a node's serialization error.
pub fn save_states(dag: &Dag, dir: &Path) -> Result<usize> {
    let states = dag.save_states()?;
    let schema = dag.features().ok();
    let folder = dir.join("state");
    let mut written = 0;
    for (id, bytes) in states.into_iter().filter(|(_, b)| !b.is_empty()) {
        std::fs::create_dir_all(&folder).map_err(|source| DataflowError::Io {
            path: folder.clone(),
            source,
        })?;
        let envelope = Envelope {
            magic: MAGIC.into(),
            version: VERSION,
            kind: dag.node(id.as_str())?.kind().to_string(),
            inputs: inputs_of(dag, schema.as_ref(), &id),
            state: bytes,
        };
        let mut data =
            postcard::to_stdvec(&envelope).map_err(|e| DataflowError::State(e.to_string()))?;
        // A CRC-32 of the envelope closes the file, so a damaged state is refused
        // rather than loaded as other weights.
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        let path = folder.join(format!("{id}.bin"));
        // Written beside and renamed, so a crash never leaves half a state.
        kf_frame::write_atomic(&path, &data)
            .map_err(|source| DataflowError::Io { path, source })?;
        written += 1;
    }
    Ok(written)
}

/// Reads the states [`save_states`] wrote under `dir/state/` and checks each against
/// `dag` (a DAG built from the same config), without loading them.
///
/// # Errors
/// [`DataflowError::Io`] for an unreadable folder or file; [`DataflowError::State`]
/// naming the file and node for a file that is not a state, a state of another node
/// type or fitted on other input features, a node of `dag` that learns and has no
/// state; [`DataflowError::UnknownNode`] for a state whose node `dag` lacks.
pub fn read_states(dag: &Dag, dir: &Path) -> Result<BTreeMap<NodeId, Vec<u8>>> {
    let folder = dir.join("state");
    let mut states = BTreeMap::new();
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(states),
        Err(source) => {
            return Err(DataflowError::Io {
                path: folder,
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DataflowError::Io {
            path: folder.clone(),
            source,
        })?;
        paths.push(entry.path());
    }
    paths.sort();
    let schema = dag.features().ok();
    for path in paths {
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.starts_with('.'))
            .and_then(|n| n.strip_suffix(".bin"))
        else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|source| DataflowError::Io {
            path: path.clone(),
            source,
        })?;
        let id = NodeId(id.to_string());
        let node = dag.node(id.as_str())?;
        let body = match bytes.len().checked_sub(4) {
            Some(n) if crc32fast::hash(&bytes[..n]).to_le_bytes()[..] == bytes[n..] => &bytes[..n],
            _ => {
                return Err(DataflowError::State(format!(
                    "{} fails its checksum: the file is damaged, truncated or not a node \
                     state (node `{id}`, {}); write it again with `run`",
                    path.display(),
                    node.kind()
                )));
            }
        };
        let envelope: Envelope = postcard::from_bytes(body)
            .ok()
            .filter(|e: &Envelope| e.magic == MAGIC)
            .ok_or_else(|| {
                DataflowError::State(format!(
                    "{} is not a node state written by `kaizenflow run` (node `{id}`, {}); \
                     write it again with `run`",
                    path.display(),
                    node.kind()
                ))
            })?;
        if envelope.version != VERSION {
            return Err(DataflowError::State(format!(
                "{} is a state of format {}, this program reads format {VERSION}: fit again",
                path.display(),
                envelope.version
            )));
        }
        if envelope.kind != node.kind() {
            return Err(DataflowError::State(format!(
                "{} holds the state of a `{}` node, but node `{id}` is a `{}`: load a state \
                 fitted with this config",
                path.display(),
                envelope.kind,
                node.kind()
            )));
        }
        let now = inputs_of(dag, schema.as_ref(), &id);
        if !envelope.inputs.is_empty() && !now.is_empty() && envelope.inputs != now {
            let (was, is): (BTreeSet<_>, BTreeSet<_>) =
                (envelope.inputs.iter().collect(), now.iter().collect());
            let gone: Vec<_> = was.difference(&is).collect();
            let new: Vec<_> = is.difference(&was).collect();
            return Err(DataflowError::State(format!(
                "{}: node `{id}` ({}) was fitted on other input features (missing now: \
                 {gone:?}; new: {new:?}); fit it again with this config",
                path.display(),
                node.kind()
            )));
        }
        states.insert(id, envelope.state);
    }
    for id in dag.topological_order() {
        let node = dag.node(id.as_str())?;
        if node.learns() && !states.contains_key(&id) {
            return Err(DataflowError::State(format!(
                "{} has no state for node `{id}` ({}), which learns: save one with \
                 `kaizenflow run --out {}` on a config that fits it",
                folder.display(),
                node.kind(),
                dir.display()
            )));
        }
    }
    Ok(states)
}

/// Loads the states [`save_states`] wrote into `dag` (see [`read_states`] for what
/// is checked). Returns how many were loaded.
///
/// # Errors
/// Those of [`read_states`], and a node's error for bytes that do not fit it.
pub fn load_states(dag: &mut Dag, dir: &Path) -> Result<usize> {
    let states = read_states(dag, dir)?;
    let n = states.len();
    dag.load_states(&states)?;
    Ok(n)
}
