//! The tiling-invariance property: random DAGs drawn from the node library (random
//! parameters, random wiring) over random synthetic bars (gaps, NaNs, late bars),
//! run under random tilings (time cuts, asset tiles, one-bar streaming, thread
//! counts), give the batch outputs to the bit. A failing case shrinks to a small DAG,
//! printed as the TOML that builds it.
//!
//! 64 cases by default; `KF_PROPTEST_CASES` sets another number.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::check::Subject;
use kf_dataflow::tiling::{Tiling, bar_cuts, first_divergence, run_tiled};
use kf_dataflow::{Dag, DataflowError, DataflowTypes, Keep, Phase};
use kf_datapull::MarketData;
use proptest::prelude::*;

/// One library node with its parameters; `parent` picks an earlier node (0 is the
/// market data source).
#[derive(Clone, Debug)]
enum NodeSpec {
    Returns {
        mode: &'static str,
    },
    Ema {
        tau: f64,
        min_periods: usize,
    },
    Rolling {
        window: usize,
        stat: &'static str,
        ddof: usize,
        drop: bool,
        burn_in: usize,
    },
    Lags {
        num_lags: usize,
        first_lag: usize,
        drop: bool,
    },
    Shift {
        periods: i64,
    },
    Compress {
        scale: f64,
    },
    Clip {
        lower: f64,
        upper: f64,
    },
    CrossSection {
        kind: &'static str,
    },
    Hours,
    Weekends,
    Vol {
        tau: f64,
        steps_ahead: usize,
    },
    Sma {
        tau: f64,
    },
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    prop_oneof![
        prop::sample::select(vec!["log_rets", "pct_change", "diff"])
            .prop_map(|mode| NodeSpec::Returns { mode }),
        (1.0..20.0f64, 0..3usize).prop_map(|(tau, min_periods)| NodeSpec::Ema { tau, min_periods }),
        (
            1..6usize,
            prop::sample::select(vec!["sum", "mean", "var", "std", "norm", "zscore"]),
            0..2usize,
            any::<bool>(),
            0..3usize
        )
            .prop_map(|(window, stat, ddof, drop, burn_in)| NodeSpec::Rolling {
                window,
                stat,
                ddof,
                drop,
                burn_in
            }),
        (1..3usize, 0..3usize, any::<bool>()).prop_map(|(num_lags, first_lag, drop)| {
            NodeSpec::Lags {
                num_lags,
                first_lag,
                drop,
            }
        }),
        (0..4i64).prop_map(|periods| NodeSpec::Shift { periods }),
        (0.5..5.0f64).prop_map(|scale| NodeSpec::Compress { scale }),
        (-1.0..0.0f64, 0.0..1.0f64).prop_map(|(lower, upper)| NodeSpec::Clip { lower, upper }),
        prop::sample::select(vec!["demean", "uniform_rank", "gaussian_rank"])
            .prop_map(|kind| NodeSpec::CrossSection { kind }),
        Just(NodeSpec::Hours),
        Just(NodeSpec::Weekends),
        (1.0..20.0f64, 0..3usize).prop_map(|(tau, steps_ahead)| NodeSpec::Vol { tau, steps_ahead }),
        (1.0..20.0f64).prop_map(|tau| NodeSpec::Sma { tau }),
    ]
}

/// A random DAG over random bars, and a random tiling of its run.
#[derive(Clone)]
struct Case {
    assets: usize,
    bars: usize,
    us_equity: bool,
    gap_prob: f64,
    late_prob: f64,
    seed: u64,
    /// The resample after the source, in minutes (none: the 1-minute bars).
    resample: Option<(i64, bool)>,
    /// Nodes with the index of their parent among the earlier ones.
    nodes: Vec<(usize, NodeSpec)>,
    /// Cut positions, in thousandths of the bars, each with an offset in seconds.
    cuts: Vec<(u16, u16)>,
    /// Asset tile sizes (repeated until every asset is in a tile); empty: none.
    asset_tiles: Vec<usize>,
    /// Stream every k bars instead of using `cuts`.
    stream_every: Option<usize>,
    threads: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            1..5usize,
            60..400usize,
            any::<bool>(),
            0.0..0.2f64,
            0.0..0.1f64,
            0..4_000_000_000u64,
        ),
        prop::option::of((2..11i64, any::<bool>())),
        prop::collection::vec((any::<prop::sample::Index>(), node_spec()), 1..7),
        prop::collection::vec((0..1000u16, 0..120u16), 0..12),
        prop::collection::vec(1..4usize, 0..3),
        prop::option::weighted(0.3, 1..4usize),
        1..4usize,
    )
        .prop_map(
            |(
                (assets, bars, us_equity, gap_prob, late_prob, seed),
                resample,
                nodes,
                cuts,
                asset_tiles,
                stream_every,
                threads,
            )| {
                let nodes = nodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, (parent, spec))| (parent.index(i + 1), spec))
                    .collect();
                Case {
                    assets,
                    bars,
                    us_equity,
                    gap_prob,
                    late_prob,
                    seed,
                    resample,
                    nodes,
                    cuts,
                    asset_tiles,
                    stream_every,
                    threads,
                }
            },
        )
}

impl Case {
    /// The config that builds this case's data and DAG.
    fn toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "[market_data]\ntype = \"synthetic\"\nassets = {}\nbars = {}\ncalendar = \"{}\"\n\
             gap_prob = {:?}\nlate_prob = {:?}\nseed = {}\n\n[dag]\ntype = \"graph\"\nedges = [",
            self.assets,
            self.bars,
            if self.us_equity { "us_equity" } else { "24/7" },
            self.gap_prob,
            self.late_prob,
            self.seed
        );
        let first = if self.resample.is_some() {
            "bars"
        } else {
            "src"
        };
        if self.resample.is_some() {
            let _ = writeln!(s, "  [\"src\", \"bars\"],");
        }
        for (i, (parent, _)) in self.nodes.iter().enumerate() {
            let from = if *parent == 0 {
                first.to_string()
            } else {
                format!("n{}", parent - 1)
            };
            let _ = writeln!(s, "  [\"{from}\", \"n{i}\"],");
        }
        let _ = writeln!(s, "]\n\n[dag.nodes.src]\ntype = \"market_data\"\n");
        if let Some((minutes, gap)) = self.resample {
            let _ = writeln!(
                s,
                "[dag.nodes.bars]\ntype = \"resample\"\nrule = \"{minutes}min\"\n{}\
                 aggs.close = {{ func = \"last\", col = \"close\" }}\n\
                 aggs.volume = {{ func = \"sum\", col = \"volume\" }}\n",
                if gap { "max_gap = \"1h\"\n" } else { "" }
            );
        }
        for (i, (_, spec)) in self.nodes.iter().enumerate() {
            let _ = writeln!(s, "[dag.nodes.n{i}]");
            let body = match spec {
                NodeSpec::Returns { mode } => format!(
                    "type = \"compute_ret_0\"\nmode = \"{mode}\"\ncol_mode = \"replace_all\""
                ),
                NodeSpec::Ema { tau, min_periods } => {
                    format!(
                        "type = \"ema\"\ntau = {tau:?}\nmin_periods = {min_periods}\ncol_mode = \"replace_all\""
                    )
                }
                NodeSpec::Rolling {
                    window,
                    stat,
                    ddof,
                    drop,
                    burn_in,
                } => format!(
                    "type = \"rolling\"\nwindow = {window}\nstat = \"{stat}\"\nddof = {ddof}\nnan_mode = \"{}\"\n\
                     burn_in = {burn_in}\ncol_mode = \"replace_all\"",
                    if *drop { "drop" } else { "keep" }
                ),
                NodeSpec::Lags {
                    num_lags,
                    first_lag,
                    drop,
                } => format!(
                    "type = \"lags\"\nnum_lags = {num_lags}\nfirst_lag = {first_lag}\nnan_mode = \"{}\"\ncol_mode = \"replace_all\"",
                    if *drop { "drop" } else { "keep" }
                ),
                NodeSpec::Shift { periods } => {
                    format!("type = \"shift\"\nperiods = {periods}\ncol_mode = \"replace_all\"")
                }
                NodeSpec::Compress { scale } => format!(
                    "type = \"compress_tails\"\nscale = {scale:?}\ncol_mode = \"replace_all\""
                ),
                NodeSpec::Clip { lower, upper } => {
                    format!("type = \"clip\"\nlower = {lower:?}\nupper = {upper:?}")
                }
                NodeSpec::CrossSection { kind } => {
                    format!("type = \"{kind}\"\ncol_mode = \"replace_all\"")
                }
                NodeSpec::Hours => "type = \"active_trading_hours\"".to_string(),
                NodeSpec::Weekends => "type = \"weekends\"".to_string(),
                NodeSpec::Vol { tau, steps_ahead } => format!(
                    "type = \"volatility_model\"\ntau = {tau:?}\nsteps_ahead = {steps_ahead}\ncol_mode = \"replace_all\""
                ),
                NodeSpec::Sma { tau } => {
                    format!("type = \"sma_model\"\ntau = {tau:?}\ncol_mode = \"replace_all\"")
                }
            };
            let _ = writeln!(s, "{body}\n");
        }
        s
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n# tiling: cuts (thousandths, +s) {:?}, asset tiles {:?}, stream every {:?}, {} threads",
            self.cuts, self.asset_tiles, self.stream_every, self.threads
        )?;
        f.write_str(&self.toml())
    }
}

fn cases() -> u32 {
    std::env::var("KF_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_dags_are_bit_identical_under_random_tilings(case in case()) {
        let config = Config::from_toml_str(&case.toml(), "case.toml").unwrap();
        let root = config.root();
        let types = DataflowTypes::default();
        let md: Arc<dyn MarketData> =
            types.data.view(&root.section("market_data").unwrap()).unwrap();
        let dag_section = root.section("dag").unwrap();
        let make = || -> kf_dataflow::Result<Dag> {
            Ok(types.dag(&dag_section, Some(&md))?)
        };
        let subject = Subject::fit(&make).unwrap();
        config.check_all_used().unwrap();
        let batch = run_tiled(&|| subject.dag(), Phase::Predict, &Tiling::batch(), &Keep::All).unwrap();
        let input = &batch[&"src".into()]["df_out"];
        let times = input.end_ts();
        let cuts = match case.stream_every {
            Some(k) => bar_cuts(times, k),
            None => {
                let mut c: Vec<i64> = case
                    .cuts
                    .iter()
                    .map(|&(p, s)| times[(p as usize * times.len() / 1000).min(times.len() - 1)] + s as i64 * 1_000_000_000)
                    .collect();
                c.sort_unstable();
                c.dedup();
                c
            }
        };
        let assets = input.assets();
        let asset_tiles = (!case.asset_tiles.is_empty()).then(|| {
            let mut tiles = Vec::new();
            let mut at = 0;
            for size in case.asset_tiles.iter().cycle() {
                if at >= assets.len() {
                    break;
                }
                let end = (at + size).min(assets.len());
                tiles.push(assets[at..end].to_vec());
                at = end;
            }
            tiles
        });
        let tiling = Tiling { cuts, assets: asset_tiles, threads: case.threads };
        match run_tiled(&|| subject.dag(), Phase::Predict, &tiling, &Keep::All) {
            Ok(tiled) => {
                if let Some(d) = first_divergence(subject.order(), &batch, &tiled) {
                    prop_assert!(false, "{d}");
                }
            }
            // Only a cross-sectional node on more than one asset tile may refuse.
            Err(DataflowError::NotTilable { how: "on asset tiles", kind, .. }) => {
                prop_assert!(matches!(kind.as_str(), "demean" | "uniform_rank" | "gaussian_rank"), "{kind}");
                prop_assert!(tiling.assets.as_ref().is_some_and(|t| t.len() > 1));
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
