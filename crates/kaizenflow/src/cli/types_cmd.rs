//! `kaizenflow nodes|sources|processors|dags [TYPE]`: what a config can name, from
//! the same declarations the builders read their parameters through.

use std::io::Write;

use anyhow::{Result, bail};
use kf_config::TypeDoc;
use kf_system::Registries;

use super::TypeArgs;

pub(super) fn nodes(types: &Registries, args: &TypeArgs, out: &mut dyn Write) -> Result<()> {
    let list: Vec<(&str, &TypeDoc)> = types.dataflow.nodes.iter().collect();
    show("node", &list, args, out)
}

pub(super) fn sources(types: &Registries, args: &TypeArgs, out: &mut dyn Write) -> Result<()> {
    let data = &types.dataflow.data;
    let mut list: Vec<(&str, &TypeDoc)> = data.sources.iter().collect();
    list.extend(data.views.iter());
    list.sort_by_key(|(name, _)| *name);
    show("market data", &list, args, out)
}

pub(super) fn processors(types: &Registries, args: &TypeArgs, out: &mut dyn Write) -> Result<()> {
    let list: Vec<(&str, &TypeDoc)> = types.processors.iter().collect();
    show("forecast processor", &list, args, out)
}

pub(super) fn dags(types: &Registries, args: &TypeArgs, out: &mut dyn Write) -> Result<()> {
    let list: Vec<(&str, &TypeDoc)> = types.dataflow.dags.iter().collect();
    show("DAG builder", &list, args, out)
}

/// One line per type, or one type's whole documentation.
fn show(kind: &str, list: &[(&str, &TypeDoc)], args: &TypeArgs, out: &mut dyn Write) -> Result<()> {
    match &args.name {
        None => {
            let width = list.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, doc) in list {
                writeln!(out, "{name:<width$}  {}", doc.summary)?;
            }
            Ok(())
        }
        Some(name) => match list.iter().find(|(n, _)| n == name) {
            Some((n, doc)) => {
                write!(out, "{}", doc.render(kind, n))?;
                Ok(())
            }
            None => {
                let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
                let hint = kf_config::did_you_mean(name, names.iter().copied());
                bail!("no {kind} type `{name}`{hint}; known: {}", names.join(", "))
            }
        },
    }
}
