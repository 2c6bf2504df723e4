//! Systems that learn: a DAG with gradient-boosted trees fitted before the first
//! decision or retrained walk-forward in the loop trades exactly as the research
//! evaluator computes, and a saved fit trades as the fit that made it.

use kf_config::Config;
use kf_system::research::research;
use kf_system::{System, SystemRun};

/// A learning system on synthetic 1-minute bars: seed 004's features, a 3-class
/// direction label 5 bars ahead, trees that learn it, and a threshold strategy on
/// the probability of `up`. `fit` is the `[system.fit]` table (or nothing).
fn config(fit: &str, clock: &str) -> Config {
    let text = format!(
        r#"
[market_data]
type = "synthetic"
assets = 4
bars = 1950
start = "2024-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 11

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"
[dag.nodes.rets]
type = "compute_ret_0"
cols = ["close"]
[dag.nodes.strength]
type = "rsi"
cols = ["close"]
[dag.nodes.trend]
type = "macd"
cols = ["close"]
[dag.nodes.activity]
type = "volume_zscore"
cols = ["volume"]
window = 30
[dag.nodes.vol]
type = "rolling"
cols = ["close.ret_0"]
window = 30
stat = "std"
[dag.nodes.label]
type = "direction"
cols = ["close"]
horizon = 5
threshold = 0.3
threshold_in = "volatility"
volatility = "close.ret_0.std"
[dag.nodes.model]
type = "gbt"
x_vars = ["close.ret_0", "close.rsi", "close.macd_hist", "volume.zscore", "close.ret_0.std"]
y_var = "close.direction"
objective = "multiclass"
classes = [-1.0, 0.0, 1.0]
class_names = ["down", "flat", "up"]
iterations = 15
max_depth = 3

[system]
bar = "5min"
start = "2024-01-03 09:35"
prediction = "close.direction.p_up"

[system.processor]
type = "threshold"
long_above = 0.4
position_size = 10000.0
max_positions = 2
stop_loss = 0.01

[system.costs]
half_spread_bps = 1.0
{clock}
{fit}
"#
    );
    Config::from_toml_str(&text, "learning.toml").unwrap()
}

const FIT_ONCE: &str = "[system.fit]\nlookback = \"1d\"\n";
// Four calendar days: a Monday's refit reaches back over the weekend to Thursday.
const RETRAIN: &str = "[system.fit]\nlookback = \"4d\"\nretrain_every = \"2h\"\n";

/// Research and the event loop agree to the cent, bar by bar, and fit alike.
fn agree(system: &mut System<'_>, run: &SystemRun) {
    let res = research(system).unwrap();
    assert!(
        run.stats.fills > 10,
        "the strategy trades: {} fills",
        run.stats.fills
    );
    assert_eq!(run.bars.len(), res.bars.len());
    assert_eq!(run.orders, res.orders);
    for (a, b) in run.bars.iter().zip(&res.bars) {
        assert!(
            (a.pnl - b.pnl).abs() < 0.005,
            "bar {}: {} vs {}",
            a.ts,
            a.pnl,
            b.pnl
        );
        assert!((a.nav - b.nav).abs() < 0.005, "nav at {}", a.ts);
    }
    assert!((run.stats.pnl - res.stats.pnl).abs() < 0.005);
    let when = |f: &[kf_system::FitRecord]| -> Vec<(i64, (i64, i64), i64)> {
        f.iter().map(|r| (r.decision, r.span, r.known_by)).collect()
    };
    assert_eq!(when(&run.fits), when(&res.fits));
    assert_eq!(
        run.audit.early_forecasts + run.audit.early_fills,
        0,
        "{:?}",
        run.audit
    );
}

#[test]
fn a_model_fitted_before_the_first_decision_trades_as_research_says() {
    let config = config(FIT_ONCE, "");
    let mut s = System::from_config(&config).unwrap();
    let run = s.run().unwrap();
    config.check_all_used().unwrap();
    assert_eq!(run.fits.len(), 1);
    let fit = &run.fits[0];
    assert_eq!(fit.decision, s.grid[0]);
    assert_eq!(fit.span, (s.grid[0] - 86_400_000_000_000 + 1, s.grid[0]));
    assert_eq!(run.states.len(), 1, "the trees' state");
    agree(&mut s, &run);
}

#[test]
fn a_model_retrained_walk_forward_trades_as_research_says_under_a_delay() {
    // A 30-second delay on every bar: each fit learns only from what the view had
    // released by its decision, and research fits on the same rows.
    let clock = "[system.clock]\ntype = \"simulated\"\ndelay = \"30s\"\n";
    let config = config(RETRAIN, clock);
    let mut s = System::from_config(&config).unwrap();
    let run = s.run().unwrap();
    // Four 6.5-hour sessions of decisions, a refit every 2 hours of clock time.
    assert!(run.fits.len() >= 6, "{} fits", run.fits.len());
    for pair in run.fits.windows(2) {
        assert!(pair[1].decision - pair[0].decision >= 7_200_000_000_000);
    }
    for f in &run.fits {
        assert_eq!(
            f.known_by, f.decision,
            "decided 30 s late, cut off at the bar"
        );
    }
    agree(&mut s, &run);
    // Retraining changes the trading: the fit-once run trades otherwise.
    let once = config_run(FIT_ONCE, clock);
    assert_ne!(once.orders, run.orders);
}

fn config_run(fit: &str, clock: &str) -> SystemRun {
    let config = config(fit, clock);
    System::from_config(&config).unwrap().run().unwrap()
}

#[test]
fn a_saved_fit_trades_exactly_as_the_run_that_fitted_it() {
    let config = config(FIT_ONCE, "");
    let fitted = System::from_config(&config).unwrap().run().unwrap();
    // The same config with no [system.fit], from the fitted state.
    let bare = self::config("", "");
    let mut s = System::from_config_with_states(
        kf_system::Registries::builtin(),
        &bare,
        fitted.states.clone(),
    )
    .unwrap();
    let again = s.run().unwrap();
    assert!(again.fits.is_empty());
    assert_eq!(again.orders, fitted.orders);
    assert_eq!(again.fills, fitted.fills);
    for (a, b) in again.bars.iter().zip(&fitted.bars) {
        assert_eq!(a.nav.to_bits(), b.nav.to_bits());
    }
    agree(&mut s, &again);
}

#[test]
fn a_learning_dag_with_nothing_to_fit_it_is_refused_naming_the_node() {
    let config = config("", "");
    let e = System::from_config(&config).unwrap_err().to_string();
    assert!(
        e.contains("node `model` learns") && e.contains("[system.fit]") && e.contains("--state"),
        "{e}"
    );
    // A state of another node type is refused when loaded, naming the node.
    let mut states = kf_system::States::new();
    states.insert("model".into(), b"not trees".to_vec());
    let e = System::from_config_with_states(kf_system::Registries::builtin(), &config, states)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model") && e.contains("gbt"), "{e}");
    // A bad [system.fit] duration is located.
    let e = System::from_config(&self::config("[system.fit]\nretrain_every = \"0s\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("system.fit.retrain_every") && e.contains("positive"),
        "{e}"
    );
}
