//! The DAG as a picture: nodes in layers by their longest path from a source, top
//! to bottom, each a box with its id and type, edges as curves with arrows. Our own
//! layout, so the report needs no Graphviz.

use std::fmt::Write;

/// A DAG's shape: nodes `(id, type)` in a topological order, and edges as
/// indices into it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DagShape {
    /// `(id, type)` per node, producers before consumers.
    pub nodes: Vec<(String, String)>,
    /// `(from, to)` indices into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

impl DagShape {
    /// The shape of `dag`.
    pub fn of(dag: &kf_dataflow::Dag) -> DagShape {
        let order = dag.topological_order();
        let nodes: Vec<(String, String)> = order
            .iter()
            .map(|id| {
                let kind = dag.node(id.as_str()).map_or("?", |n| n.kind());
                (id.as_str().to_string(), kind.to_string())
            })
            .collect();
        let index = |id: &str| nodes.iter().position(|(n, _)| n == id);
        let mut edges = Vec::new();
        for (to, id) in order.iter().enumerate() {
            for (_, from, _) in dag.inputs_of(id.as_str()).unwrap_or_default() {
                if let Some(from) = index(from.as_str()) {
                    edges.push((from, to));
                }
            }
        }
        DagShape { nodes, edges }
    }
}

/// Text safe inside XML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 190.0;
const H: f64 = 46.0;
const GAP_X: f64 = 30.0;
const GAP_Y: f64 = 44.0;

/// The SVG of `shape` (empty for a DAG without nodes).
pub fn dag_svg(shape: &DagShape) -> String {
    let n = shape.nodes.len();
    if n == 0 {
        return String::new();
    }
    // Longest path from a source: nodes come in topological order, so one pass.
    let mut layer = vec![0usize; n];
    let mut edges = shape.edges.clone();
    edges.sort_by_key(|&(_, to)| to);
    for &(from, to) in &edges {
        if from < n && to < n {
            layer[to] = layer[to].max(layer[from] + 1);
        }
    }
    let layers = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut slot = vec![0usize; n];
    let mut width = vec![0usize; layers];
    for i in 0..n {
        slot[i] = width[layer[i]];
        width[layer[i]] += 1;
    }
    let widest = width.iter().copied().max().unwrap_or(1) as f64;
    let total_w = widest * (W + GAP_X) + GAP_X;
    let total_h = layers as f64 * (H + GAP_Y) + GAP_Y;
    let pos = |i: usize| {
        let row = width[layer[i]] as f64;
        let offset = (total_w - row * (W + GAP_X) + GAP_X) / 2.0;
        (
            offset + slot[i] as f64 * (W + GAP_X),
            GAP_Y + layer[i] as f64 * (H + GAP_Y),
        )
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{total_w:.0}" height="{total_h:.0}" viewBox="0 0 {total_w:.0} {total_h:.0}" role="img" aria-label="the DAG: {n} nodes">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>
"##
    );
    for &(from, to) in &shape.edges {
        if from >= n || to >= n {
            continue;
        }
        let (x0, y0) = pos(from);
        let (x1, y1) = pos(to);
        let (ax, ay) = (x0 + W / 2.0, y0 + H);
        let (bx, by) = (x1 + W / 2.0, y1);
        let mid = (ay + by) / 2.0;
        let _ = writeln!(
            svg,
            r##"<path d="M {ax:.1} {ay:.1} C {ax:.1} {mid:.1}, {bx:.1} {mid:.1}, {bx:.1} {:.1}" fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
            by - 2.0
        );
    }
    for (i, (id, kind)) in shape.nodes.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = writeln!(
            svg,
            r##"<g><rect x="{x:.1}" y="{y:.1}" width="{W}" height="{H}" rx="6" fill="#eef3fb" stroke="#3a6ea5"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-family="sans-serif" font-size="13" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-family="sans-serif" font-size="11" fill="#555">{}</text></g>"##,
            x + W / 2.0,
            y + 19.0,
            escape(id),
            x + W / 2.0,
            y + 35.0,
            escape(kind)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diamond_lays_out_in_three_layers_with_every_edge_drawn() {
        let shape = DagShape {
            nodes: ["read", "a", "b", "join"]
                .iter()
                .map(|s| (s.to_string(), "t<&>".to_string()))
                .collect(),
            edges: vec![(0, 1), (0, 2), (1, 3), (2, 3)],
        };
        let svg = dag_svg(&shape);
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches("marker-end=").count(), 4);
        assert!(svg.contains("t&lt;&amp;&gt;"), "kinds are escaped");
        // Three layers: height = 3 * (46 + 44) + 44.
        assert!(svg.contains("height=\"314\""), "{svg}");
        // The two middle nodes share a layer, side by side.
        assert!(svg.contains("width=\"470\""), "{svg}");
    }
}
