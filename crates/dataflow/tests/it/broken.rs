//! Deliberately broken nodes: each peeks into the future in one of the ways the
//! paper warns about, while declaring the memory of a causal node. The tiling,
//! perturbation and knowledge-time checks must catch every one.

use kf_dataflow::{
    DF_IN, Memory, Node, NodeId, Ports, Result, RunContext, single_input, single_output,
};
use kf_frame::Frame;

/// How a broken node peeks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// `y[t] = x[t + 1]`: a negative lag.
    NegativeLag,
    /// The mean of `x` over `t - 2 ..= t + 2`: a centered rolling window.
    CenteredRolling,
    /// `(x - mean) / std` with the mean and std of the whole call.
    FullSampleZscore,
    /// `beta * x[t]`, `beta` fitted on every pair `(x[t], x[t + 1])` of the call and
    /// used in-sample.
    InSampleModel,
    /// 5-minute bins `(b - 5min, b]` of `x` (last value) labelled `b - 5min`.
    LeftLabelResample,
}

/// All the flaws.
pub const FLAWS: [Flaw; 5] = [
    Flaw::NegativeLag,
    Flaw::CenteredRolling,
    Flaw::FullSampleZscore,
    Flaw::InSampleModel,
    Flaw::LeftLabelResample,
];

const BIN: i64 = 5 * 60_000_000_000;

/// A broken node reading feature `col` and writing `y`. When `honest`, an output
/// row's knowledge time is that of the latest input row it used (so the
/// knowledge-time audit can see the peek); otherwise it is the running maximum up to
/// the row's own time, the causal assumption a careless author would make.
pub struct Broken {
    id: NodeId,
    flaw: Flaw,
    col: String,
    honest: bool,
    memory: Memory,
}

impl Broken {
    pub fn new(id: &str, flaw: Flaw, col: &str, honest: bool) -> Broken {
        Broken {
            id: NodeId(id.into()),
            flaw,
            col: col.into(),
            honest,
            memory: Memory::Row,
        }
    }

    /// The same node, declaring that it needs all history (the honest declaration
    /// for a full-sample statistic, which runners refuse to tile).
    pub fn declaring_all_history(mut self) -> Broken {
        self.memory = Memory::AllHistory;
        self
    }
}

fn running_max(kt: &[i64], upto: impl Fn(usize) -> usize) -> Vec<i64> {
    let mut prefix = Vec::with_capacity(kt.len());
    let mut m = i64::MIN;
    for &k in kt {
        m = m.max(k);
        prefix.push(m);
    }
    (0..kt.len())
        .map(|i| prefix[upto(i).min(kt.len() - 1)])
        .collect()
}

impl Node for Broken {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        match self.flaw {
            Flaw::NegativeLag => "negative_lag",
            Flaw::CenteredRolling => "centered_rolling",
            Flaw::FullSampleZscore => "full_sample_zscore",
            Flaw::InSampleModel => "in_sample_model",
            Flaw::LeftLabelResample => "left_label_resample",
        }
    }
    fn memory(&self) -> Memory {
        self.memory
    }
    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let (rows, n) = (input.n_rows(), input.n_assets());
        let x = input.feature(&self.col)?.values();
        let kt = input.knowledge_ts();
        let ts = input.end_ts();
        if rows == 0 {
            return Ok(single_output(Frame::empty(
                input.assets().to_vec(),
                vec!["y".into()],
            )?));
        }
        let at = |r: usize, a: usize| x[r * n + a];
        let last = rows - 1;
        if self.flaw == Flaw::LeftLabelResample {
            let mut end_ts = Vec::new();
            let mut known = Vec::new();
            let mut y = Vec::new();
            let mut r = 0;
            while r < rows {
                let b =
                    ts[r].div_euclid(BIN) * BIN + if ts[r].rem_euclid(BIN) == 0 { 0 } else { BIN };
                let start = r;
                while r < rows && ts[r] <= b {
                    r += 1;
                }
                for a in 0..n {
                    let v = (start..r).rev().map(|i| at(i, a)).find(|v| !v.is_nan());
                    y.push(v.unwrap_or(f64::NAN));
                }
                end_ts.push(b - BIN);
                known.push(if self.honest {
                    kt[start..r].iter().copied().max().unwrap_or(i64::MIN)
                } else {
                    b - BIN + (kt[start] - ts[start])
                });
            }
            return Ok(single_output(Frame::new(
                end_ts,
                known,
                input.assets().to_vec(),
                vec![("y".into(), y)],
            )?));
        }
        let mut y = vec![f64::NAN; rows * n];
        for a in 0..n {
            match self.flaw {
                Flaw::NegativeLag => {
                    for r in 0..last {
                        y[r * n + a] = at(r + 1, a);
                    }
                }
                Flaw::CenteredRolling => {
                    for r in 0..rows {
                        let (lo, hi) = (r.saturating_sub(2), (r + 2).min(last));
                        let s: f64 = (lo..=hi).map(|i| at(i, a)).sum();
                        y[r * n + a] = s / (hi - lo + 1) as f64;
                    }
                }
                Flaw::FullSampleZscore => {
                    let v: Vec<f64> = (0..rows)
                        .map(|r| at(r, a))
                        .filter(|v| !v.is_nan())
                        .collect();
                    let m = v.iter().sum::<f64>() / v.len() as f64;
                    let s =
                        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
                    for r in 0..rows {
                        y[r * n + a] = (at(r, a) - m) / s;
                    }
                }
                Flaw::InSampleModel => {
                    let (mut xy, mut xx) = (0.0, 0.0);
                    for r in 0..last {
                        let (p, q) = (at(r, a), at(r + 1, a));
                        if !p.is_nan() && !q.is_nan() {
                            xy += p * q;
                            xx += p * p;
                        }
                    }
                    let beta = xy / xx;
                    for r in 0..rows {
                        y[r * n + a] = beta * at(r, a);
                    }
                }
                Flaw::LeftLabelResample => {}
            }
        }
        let known = match (self.honest, self.flaw) {
            (false, _) => running_max(kt, |i| i),
            (true, Flaw::NegativeLag) => running_max(kt, |i| i + 1),
            (true, Flaw::CenteredRolling) => running_max(kt, |i| i + 2),
            (true, _) => running_max(kt, |_| last),
        };
        Ok(single_output(Frame::new(
            ts.to_vec(),
            known,
            input.assets().to_vec(),
            vec![("y".into(), y)],
        )?))
    }
}
