//! Saving and restoring what a DAG's nodes carry from one call to the next, so a run
//! cut into tiles can continue in another process (a restarted live run, a run
//! over appended data) with the outputs it would have had uncut.

use std::collections::BTreeMap;

use super::Dag;
use crate::error::{DataflowError, Result};
use crate::node::NodeId;

impl Dag {
    /// Every node's carried state after the last run or step, by id (see
    /// [`crate::Node::save_carry`]). Loaded into a DAG built from the same config
    /// ([`Dag::load_carry`]), the next tile continues as this DAG's would, to the
    /// bit.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] naming every node that cannot save its carried
    /// state; a node's serialization error.
    pub fn save_carry(&self) -> Result<BTreeMap<NodeId, Vec<u8>>> {
        self.check_carry()?;
        let mut out = BTreeMap::new();
        let mut cannot = Vec::new();
        for n in &self.nodes {
            match n.save_carry().map_err(|e| e.in_node(n.id(), n.kind()))? {
                Some(bytes) => {
                    out.insert(n.id().clone(), bytes);
                }
                None => cannot.push(format!("`{}` ({})", n.id(), n.kind())),
            }
        }
        if !cannot.is_empty() {
            return Err(DataflowError::invalid(format!(
                "cannot save the DAG's carried state: {} cannot save theirs; such a run \
                 can only be continued in the process that holds it",
                cannot.join(", ")
            )));
        }
        Ok(out)
    }

    /// Restores carried state that [`Dag::save_carry`] gave: the next run or step
    /// continues from it, as the DAG that saved it would have.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] when a node has no saved state or a saved state
    /// has no node; a node's error (naming it) for bytes that do not fit.
    pub fn load_carry(&mut self, carry: &BTreeMap<NodeId, Vec<u8>>) -> Result<()> {
        if let Some(extra) = carry
            .keys()
            .find(|id| !self.index.contains_key(id.as_str()))
        {
            return Err(DataflowError::invalid(format!(
                "the saved carried state has node `{extra}`, which this DAG does not have; \
                 it was saved by another DAG"
            )));
        }
        for n in &mut self.nodes {
            let bytes = carry.get(n.id()).ok_or_else(|| {
                DataflowError::invalid(format!(
                    "the saved carried state has nothing for node `{}`; it was saved by \
                     another DAG",
                    n.id()
                ))
            })?;
            n.load_carry(bytes)
                .map_err(|e| e.in_node(n.id(), n.kind()))?;
        }
        if let Some(s) = &mut self.stepper {
            s.clear();
        }
        // The nodes now carry state: the next run continues, so it may not take
        // outputs from a cache (which keys whole runs from a reset).
        self.fresh = false;
        self.carry_lost = false;
        Ok(())
    }
}
