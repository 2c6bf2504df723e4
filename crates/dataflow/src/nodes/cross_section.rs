//! Cross-sectional nodes: each row is transformed across its assets (NaN assets are
//! left out and stay NaN).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::Frame;

use crate::column::{ColMode, ColumnKernel, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext};
use crate::nodes::{NodeTypes, register_column};

/// What a cross-sectional node computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrossSection {
    /// `x - mean(row)`.
    Demean,
    /// `(rank - 0.5) / n` with ranks `1..=n` (ties share their average rank): in (0, 1).
    UniformRank,
    /// The standard normal quantile of the uniform rank.
    GaussianRank,
}

/// Parameters of the cross-sectional nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CrossSectionParams {
    /// Appended to each input name (default: `.` and the node type).
    pub suffix: Option<String>,
}

/// The cross-sectional kernel.
#[derive(Clone, Debug)]
pub struct CrossSectional {
    what: CrossSection,
    suffix: String,
}

impl CrossSectional {
    /// A kernel computing `what`.
    pub fn new(what: CrossSection, params: CrossSectionParams) -> CrossSectional {
        let name = match what {
            CrossSection::Demean => "demean",
            CrossSection::UniformRank => "uniform_rank",
            CrossSection::GaussianRank => "gaussian_rank",
        };
        CrossSectional {
            what,
            suffix: params.suffix.unwrap_or_else(|| format!(".{name}")),
        }
    }
}

/// Average ranks (1-based) of the present values of `row`, written to `out`
/// (`(rank - 0.5) / n`); NaN stays NaN. `idx` is scratch space.
///
/// The project's one tie rule for ranks: tied values share the mean of their ranks
/// (pandas' `rank(method="average")`), so tied inputs get equal outputs. The
/// `uniform_rank` and `gaussian_rank` nodes and the `cross_sectional` forecast
/// processor all rank through this function, and map ranks to normal scores with
/// [`normal_quantile`].
pub fn uniform_ranks(row: &[f64], out: &mut [f64], idx: &mut Vec<usize>) {
    idx.clear();
    idx.extend((0..row.len()).filter(|&i| !row[i].is_nan()));
    idx.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
    let n = idx.len() as f64;
    out.fill(f64::NAN);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && row[idx[j + 1]] == row[idx[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = (rank - 0.5) / n;
        }
        i = j + 1;
    }
}

/// The standard normal quantile function (Acklam's rational approximation, then one
/// Halley step on `erfc`, which brings it to full double precision).
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return match p {
            0.0 => f64::NEG_INFINITY,
            1.0 => f64::INFINITY,
            _ => f64::NAN,
        };
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

impl ColumnKernel for CrossSectional {
    fn kind(&self) -> &str {
        match self.what {
            CrossSection::Demean => "demean",
            CrossSection::UniformRank => "uniform_rank",
            CrossSection::GaussianRank => "gaussian_rank",
        }
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn cross_sectional(&self) -> bool {
        true
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let n = input.n_assets();
        let mut idx = Vec::with_capacity(n);
        let mut buf = vec![0.0; n];
        let mut out = Vec::with_capacity(cols.len());
        for &c in cols {
            let mut v = Vec::with_capacity(input.n_rows() * n);
            for row in input.feature_at(c).rows() {
                match self.what {
                    CrossSection::Demean => {
                        let (s, k) = row
                            .iter()
                            .filter(|x| !x.is_nan())
                            .fold((0.0, 0usize), |(s, k), x| (s + x, k + 1));
                        let m = s / k as f64;
                        v.extend(row.iter().map(|x| x - m));
                    }
                    CrossSection::UniformRank => {
                        uniform_ranks(row, &mut buf, &mut idx);
                        v.extend_from_slice(&buf);
                    }
                    CrossSection::GaussianRank => {
                        uniform_ranks(row, &mut buf, &mut idx);
                        v.extend(buf.iter().map(|&u| normal_quantile(u)));
                    }
                }
            }
            out.push((format!("{}{}", input.features()[c], self.suffix), v));
        }
        Ok(out)
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    for (name, what, summary) in [
        (
            "demean",
            CrossSection::Demean,
            "each row minus its cross-sectional mean",
        ),
        (
            "uniform_rank",
            CrossSection::UniformRank,
            "each row's cross-sectional rank, scaled to (0, 1)",
        ),
        (
            "gaussian_rank",
            CrossSection::GaussianRank,
            "each row's cross-sectional rank mapped through the normal quantile",
        ),
    ] {
        register_column(
            r,
            name,
            summary,
            ColMode::Append,
            move |_: &Section<'_>, p: CrossSectionParams| Ok(CrossSectional::new(what, p)),
        )?;
    }
    Ok(())
}
