//! `kaizenflow optimize`: the example config, its written solution, and its errors.

mod common;

use common::{kaizenflow, text};

#[test]
fn optimize_solves_the_example_exactly_and_writes_the_solution() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("solution.toml");
    let out = kaizenflow(&[
        "optimize",
        "configs/optimize_example.toml",
        // Four units keep the debug build quick: |Ω| = 8 + 72 + 96 + 16 = 192 (one,
        // two, three or four nonzero weights, times their sign patterns).
        "--set",
        "optimize.units=4",
        "--threads",
        "2",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("|Ω| = 192"), "{shown}");
    assert!(shown.contains("exact (proven optimal)"), "{shown}");
    let saved: toml::Table = toml::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let best = saved["best"].as_table().unwrap();
    let weights = best["weights"].as_array().unwrap();
    assert_eq!(weights.len(), 3);
    // Full investment at every horizon, in quarters.
    for w in weights {
        let w: Vec<f64> = w
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect();
        let gross: f64 = w.iter().map(|x| x.abs()).sum();
        assert!((gross - 1.0).abs() < 1e-12, "{w:?}");
        for x in w {
            assert!((x * 4.0 - (x * 4.0).round()).abs() < 1e-12);
        }
    }
    // The static baseline is never better than the dynamic optimum, and on this
    // example (forecasts that turn over, costs that make turning over dear) worse.
    let base = saved["baseline"].as_table().unwrap()["sharpe"]
        .as_float()
        .unwrap();
    let dynamic = best["sharpe"].as_float().unwrap();
    assert!(base < dynamic, "{base} vs {dynamic}");
    // An exact search with pruning scores fewer than |Φ| = 192^3 trajectories.
    let evaluated = saved["evaluated"].as_integer().unwrap();
    assert!(evaluated > 0 && (evaluated as f64) < 192f64.powi(3));
    // The same optimum without pruning, and with beam search wide enough to be exact.
    for set in ["optimize.prune=false", "optimize.method=\"beam\""] {
        let file = dir.path().join("other.toml");
        let out = kaizenflow(&[
            "optimize",
            "configs/optimize_example.toml",
            "--set",
            "optimize.units=4",
            "--set",
            set,
            "--set",
            "optimize.beam_width=36864",
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{set}: {}", text(&out.stderr));
        let other: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(other["best"]["sharpe"].as_float(), Some(dynamic), "{set}");
        assert_eq!(other["best"]["weights"], best["weights"], "{set}");
    }
}

#[test]
fn optimize_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("[optimize]\nunits = 3\n", "give [optimize.problem]"),
        (
            "[optimize]\nunits = 3\nmetod = \"beam\"\n[optimize.random]\nassets = 2\nhorizons = 2\n",
            "optimize.metod",
        ),
        (
            "[optimize]\nunits = 3\nmethod = \"anneal\"\n[optimize.random]\nassets = 2\nhorizons = 2\n",
            "unknown method `anneal`",
        ),
        (
            "[optimize]\nunits = 0\n[optimize.random]\nassets = 2\nhorizons = 2\n",
            "optimize.units",
        ),
        (
            "[optimize]\nunits = 3\nmax_exact = 1e300\n[optimize.random]\nassets = 2\nhorizons = 2\n",
            "optimize.max_exact: must be from 1 to 1e13 trajectories",
        ),
        (
            "[optimize]\nunits = 2\n[optimize.problem]\nmu = [[0.01, 0.02]]\n\
             cov = [[1e-4, 2e-4], [2e-4, 1e-4]]\ncost = 0.001\n",
            "cov[0] is not positive semi-definite: ω'Vω = -5e-5 for ω = [-0.5, 0.5]",
        ),
        (
            "[optimize]\nunits = 2\n[optimize.problem]\nmu = [[0.01, 0.02]]\n\
             cov = [[1e-4, 0.0], [0.0, 1e-4]]\ncost = -0.001\n",
            "cost[0][0] is -0.001",
        ),
        (
            "[optimize]\nunits = 30\nmethod = \"exact\"\nmax_exact = 1e6\n\
             [optimize.random]\nassets = 4\nhorizons = 3\n",
            "over the exact limit",
        ),
    ];
    for (i, (config, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, config).unwrap();
        let out = kaizenflow(&["optimize", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "case {i}: {}",
            text(&out.stdout)
        );
        let err = text(&out.stderr);
        assert!(err.contains(want), "case {i}: want {want:?} in {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
    }
}
