//! The running accumulators of `resample`: one aggregation over every asset of a
//! bin, folded row by row and emitted when the bin closes.

use super::AggFunc;

/// Running accumulators of one aggregation for every asset.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Acc {
    func: AggFunc,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Acc {
    /// Assets it accumulates.
    pub(super) fn n_assets(&self) -> usize {
        self.a.len()
    }

    pub(super) fn new(func: AggFunc, n: usize) -> Acc {
        let mut acc = Acc {
            func,
            a: vec![0.0; n],
            b: vec![0.0; n],
        };
        acc.clear();
        acc
    }

    pub(super) fn clear(&mut self) {
        let (a0, b0) = match self.func {
            AggFunc::Last | AggFunc::First => (f64::NAN, 0.0),
            AggFunc::Min => (f64::INFINITY, 0.0),
            AggFunc::Max => (f64::NEG_INFINITY, 0.0),
            _ => (0.0, 0.0),
        };
        self.a.fill(a0);
        self.b.fill(b0);
    }

    pub(super) fn add(&mut self, x: &[f64], v: Option<&[f64]>) {
        match self.func {
            AggFunc::Last => {
                for (a, &x) in self.a.iter_mut().zip(x) {
                    if !x.is_nan() {
                        *a = x;
                    }
                }
            }
            AggFunc::First => {
                for (a, &x) in self.a.iter_mut().zip(x) {
                    if a.is_nan() && !x.is_nan() {
                        *a = x;
                    }
                }
            }
            AggFunc::Mean | AggFunc::Sum | AggFunc::Twap => {
                for ((a, b), &x) in self.a.iter_mut().zip(self.b.iter_mut()).zip(x) {
                    if !x.is_nan() {
                        *a += x;
                        *b += 1.0;
                    }
                }
            }
            AggFunc::Min | AggFunc::Max => {
                let min = self.func == AggFunc::Min;
                for ((a, b), &x) in self.a.iter_mut().zip(self.b.iter_mut()).zip(x) {
                    if !x.is_nan() {
                        *a = if min { a.min(x) } else { a.max(x) };
                        *b += 1.0;
                    }
                }
            }
            AggFunc::Vwap => {
                if let Some(v) = v {
                    for (((a, b), &p), &v) in self.a.iter_mut().zip(self.b.iter_mut()).zip(x).zip(v)
                    {
                        if !p.is_nan() && !v.is_nan() {
                            *a += p * v;
                            *b += v;
                        }
                    }
                }
            }
        }
    }

    pub(super) fn emit(&self, out: &mut Vec<f64>) {
        match self.func {
            AggFunc::Last | AggFunc::First => out.extend_from_slice(&self.a),
            AggFunc::Mean | AggFunc::Twap => out.extend(
                self.a
                    .iter()
                    .zip(&self.b)
                    .map(|(&s, &c)| if c > 0.0 { s / c } else { f64::NAN }),
            ),
            AggFunc::Sum | AggFunc::Min | AggFunc::Max => out.extend(
                self.a
                    .iter()
                    .zip(&self.b)
                    .map(|(&s, &c)| if c > 0.0 { s } else { f64::NAN }),
            ),
            AggFunc::Vwap => out.extend(self.a.iter().zip(&self.b).map(|(&pv, &v)| {
                let r = pv / v;
                if r.is_finite() { r } else { f64::NAN }
            })),
        }
    }
}
