//! The trajectory optimizer against a naive enumeration written here from the
//! formulas of seed 002, on random instances (N ≤ 4, H ≤ 3, K ≤ 6), with pruning,
//! symmetry, beam search and the static baseline.

use kf_parallel::Engine;
use kf_system::optimize::{
    Method, OptimizeError, Problem, ProblemSpec, SearchOptions, beam_search, solve, solve_exact,
    static_baseline,
};

/// Every weight vector with Σ|ω| = 1 in units of 1/K, built independently of the
/// library: all integer vectors in [-K, K]^N with Σ|u| = K.
fn naive_omega(n: usize, k: i32) -> Vec<Vec<i32>> {
    let mut out = Vec::new();
    let mut u = vec![-k; n];
    loop {
        if u.iter().map(|x| x.abs()).sum::<i32>() == k {
            out.push(u.clone());
        }
        let mut i = 0;
        loop {
            if i == n {
                return out;
            }
            if u[i] < k {
                u[i] += 1;
                break;
            }
            u[i] = -k;
            i += 1;
        }
    }
}

/// The seed's objective, straight from its formula.
fn naive_sharpe(
    traj: &[Vec<f64>],
    mu: &[Vec<f64>],
    cov: &[Vec<Vec<f64>>],
    cost: &[Vec<f64>],
    start: &[f64],
) -> f64 {
    let n = start.len();
    let (mut num, mut var) = (0.0, 0.0);
    for (h, w) in traj.iter().enumerate() {
        let prev = if h == 0 { start } else { &traj[h - 1][..] };
        for i in 0..n {
            num += mu[h][i] * w[i] - cost[h][i] * (w[i] - prev[i]).abs().sqrt();
            for j in 0..n {
                var += w[i] * cov[h][i][j] * w[j];
            }
        }
    }
    num / var.sqrt()
}

/// The best trajectory by brute force over Ω^H, and the second best score (to
/// know whether the instance has a clear winner).
fn naive_best(
    k: i32,
    mu: &[Vec<f64>],
    cov: &[Vec<Vec<f64>>],
    cost: &[Vec<f64>],
    start: &[f64],
) -> (f64, Vec<Vec<f64>>, f64) {
    let n = start.len();
    let hz = mu.len();
    let omega: Vec<Vec<f64>> = naive_omega(n, k)
        .into_iter()
        .map(|u| u.iter().map(|&x| f64::from(x) / f64::from(k)).collect())
        .collect();
    let mut idx = vec![0usize; hz];
    let (mut best, mut second, mut arg) = (f64::NEG_INFINITY, f64::NEG_INFINITY, Vec::new());
    loop {
        let traj: Vec<Vec<f64>> = idx.iter().map(|&a| omega[a].clone()).collect();
        let sr = naive_sharpe(&traj, mu, cov, cost, start);
        if sr > best {
            second = best;
            best = sr;
            arg = traj;
        } else if sr > second {
            second = sr;
        }
        let mut h = 0;
        loop {
            if h == hz {
                return (best, arg, second);
            }
            idx[h] += 1;
            if idx[h] < omega.len() {
                break;
            }
            idx[h] = 0;
            h += 1;
        }
    }
}

fn engine(threads: usize) -> Engine {
    Engine::new().threads(threads).batches(4)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn exact_search_equals_a_naive_enumeration_on_random_instances() {
    let mut checked = 0;
    let (mut pruned_evals, mut full_evals) = (0u64, 0u64);
    for seed in 0..400u64 {
        let n = 1 + (seed % 4) as usize;
        let hz = 1 + (seed / 4 % 3) as usize;
        let k = 1 + (seed / 12 % 6) as u32;
        let m = kf_system::optimize::WeightSet::count(n, k).unwrap() as f64;
        if m.powi(hz as i32) > 3e5 {
            continue;
        }
        let (mu, cov, cost, start) = ProblemSpec::random(n, hz, seed, 0.003);
        let p = Problem::new(k, &mu, &cov, &cost, &start).unwrap();
        let (best, arg, second) = naive_best(k as i32, &mu, &cov, &cost, &start);
        let full = SearchOptions {
            prune: false,
            symmetry: false,
            incumbent_beam: 0,
        };
        let unpruned = solve_exact(&p, &full, &engine(1)).unwrap();
        let pruned1 = solve_exact(&p, &SearchOptions::default(), &engine(1)).unwrap();
        let pruned2 = solve_exact(&p, &SearchOptions::default(), &engine(2)).unwrap();
        assert!(
            close(unpruned.best.sharpe, best),
            "seed {seed}: {} vs {best}",
            unpruned.best.sharpe
        );
        // A clear winner (not a near tie) must be the same weights.
        if best - second > 1e-9 * best.abs() {
            assert_eq!(unpruned.best.weights, arg, "seed {seed}");
        }
        // Pruning and threads change nothing, to the bit; counts do not depend on
        // the thread count.
        assert_eq!(pruned1.best, unpruned.best, "seed {seed}");
        assert_eq!(pruned2.best, unpruned.best, "seed {seed}");
        assert_eq!(pruned1.stats, pruned2.stats, "seed {seed}");
        assert_eq!(unpruned.stats.evaluated as f64, unpruned.stats.space);
        assert!(pruned1.stats.evaluated <= unpruned.stats.evaluated);
        pruned_evals += pruned1.stats.evaluated;
        full_evals += unpruned.stats.evaluated;
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} instances");
    assert!(
        (pruned_evals as f64) < 0.5 * full_evals as f64,
        "pruning scored {pruned_evals} of {full_evals}"
    );
}

#[test]
fn costs_make_the_path_matter_and_the_static_baseline_misses_it() {
    // One asset, K = 1: Ω = {+1, -1}. μ = (1%, -0.3%, 1%), σ² = 1e-4, c = 0.0025.
    // By hand: holding +1 throughout nets 0.01 - 0.0025 - 0.003 + 0.01 = 0.0145, SR
    // 0.0145 / sqrt(3e-4) = 0.83716. The myopic static choice flips to -1 at the
    // second horizon (0.003 - 0.0025 sqrt 2 > -0.003) and back, netting 0.013428,
    // SR 0.77532.
    let mu = vec![vec![0.01], vec![-0.003], vec![0.01]];
    let cov = vec![vec![vec![1e-4]]; 3];
    let cost = vec![vec![0.0025]; 3];
    let p = Problem::new(1, &mu, &cov, &cost, &[0.0]).unwrap();
    let dynamic = solve_exact(&p, &SearchOptions::default(), &engine(2)).unwrap();
    assert_eq!(dynamic.best.weights, vec![vec![1.0], vec![1.0], vec![1.0]]);
    assert!((dynamic.best.sharpe - 0.0145 / 3e-4f64.sqrt()).abs() < 1e-12);
    let stat = static_baseline(&p);
    assert_eq!(stat.weights, vec![vec![1.0], vec![-1.0], vec![1.0]]);
    let by_hand =
        (0.0075 + (0.003 - 0.0025 * 2f64.sqrt()) + (0.01 - 0.0025 * 2f64.sqrt())) / 3e-4f64.sqrt();
    assert!(
        (stat.sharpe - by_hand).abs() < 1e-12,
        "{} vs {by_hand}",
        stat.sharpe
    );
    assert!((stat.sharpe - 0.77532).abs() < 1e-5);
    // Diagnostics: costs and turnover per horizon.
    assert_eq!(dynamic.best.turnover, vec![1.0, 0.0, 0.0]);
    assert!((dynamic.best.costs[0] - 0.0025).abs() < 1e-15);
    assert_eq!(&dynamic.best.costs[1..], &[0.0, 0.0]);
}

#[test]
fn identical_assets_are_searched_once_per_swap_with_the_same_optimum() {
    // Assets 0 and 2 identical (same μ, costs, variance, and covariance with asset 1).
    let mu = vec![vec![0.004, 0.002, 0.004], vec![-0.001, 0.003, -0.001]];
    let v = vec![
        vec![2e-4, 3e-5, 1e-5],
        vec![3e-5, 1e-4, 3e-5],
        vec![1e-5, 3e-5, 2e-4],
    ];
    let cov = vec![v.clone(), v];
    let cost = vec![vec![0.001, 0.002, 0.001]; 2];
    let start = [0.0; 3];
    let p = Problem::new(5, &mu, &cov, &cost, &start).unwrap();
    assert_eq!(p.identical_pairs(), vec![(0, 2)]);
    let with = solve_exact(&p, &SearchOptions::default(), &engine(2)).unwrap();
    let without = solve_exact(
        &p,
        &SearchOptions {
            symmetry: false,
            ..SearchOptions::default()
        },
        &engine(2),
    )
    .unwrap();
    let (best, _, _) = naive_best(5, &mu, &cov, &cost, &start);
    assert!(
        close(with.best.sharpe, best),
        "{} vs {best}",
        with.best.sharpe
    );
    assert!(close(without.best.sharpe, best));
    assert!(with.stats.symmetric > 0);
    assert!(with.stats.evaluated < without.stats.evaluated);
    // The symmetric answer is the lex-leader: asset 0's weights come first.
    let col = |t: &kf_system::optimize::Trajectory, i: usize| -> Vec<f64> {
        t.weights.iter().map(|w| w[i]).collect()
    };
    assert!(col(&with.best, 0) >= col(&with.best, 2));
}

#[test]
fn a_wide_beam_is_exact_and_a_narrow_one_never_beats_the_optimum() {
    for seed in 0..30u64 {
        let (mu, cov, cost, start) = ProblemSpec::random(3, 3, 1000 + seed, 0.004);
        let p = Problem::new(3, &mu, &cov, &cost, &start).unwrap();
        let exact = solve_exact(&p, &SearchOptions::default(), &engine(1)).unwrap();
        let m = p.omega().len();
        let wide = beam_search(&p, m * m, true);
        assert_eq!(wide.best, exact.best, "seed {seed}");
        for width in [1, 4, 32] {
            let narrow = beam_search(&p, width, true);
            assert!(
                narrow.best.sharpe <= exact.best.sharpe,
                "seed {seed} width {width}"
            );
            assert!(narrow.stats.evaluated <= (width * m) as u64);
        }
        assert!(static_baseline(&p).sharpe <= exact.best.sharpe);
    }
}

#[test]
fn auto_switches_to_the_beam_over_the_limit_and_exact_refuses() {
    let (mu, cov, cost, start) = ProblemSpec::random(4, 3, 5, 0.002);
    let p = Problem::new(6, &mu, &cov, &cost, &start).unwrap();
    assert_eq!(p.omega().len(), 608);
    let e = engine(1);
    let opts = SearchOptions::default();
    match solve(&p, Method::Exact { max_exact: 1e6 }, &opts, &e) {
        Err(OptimizeError::TooLarge { space, .. }) => assert_eq!(space, 608f64.powi(3)),
        other => panic!("{other:?}"),
    }
    let auto = solve(
        &p,
        Method::Auto {
            max_exact: 1e6,
            width: 8,
        },
        &opts,
        &e,
    )
    .unwrap();
    assert!(!auto.exact);
    assert_eq!(auto.method, Method::Beam { width: 8 });
}

#[test]
fn bad_problems_are_refused_naming_the_input() {
    let v = vec![vec![vec![1e-4, 0.0], vec![0.0, 1e-4]]];
    let ok_mu = vec![vec![0.01, 0.02]];
    let err = |r: Result<Problem, OptimizeError>| r.unwrap_err().to_string();
    let e = err(Problem::new(
        2,
        &ok_mu,
        &v,
        &[vec![0.001, -0.5]],
        &[0.0, 0.0],
    ));
    assert!(
        e.contains("cost[0][1] is -0.5") && e.contains("negative"),
        "{e}"
    );
    let e = err(Problem::new(
        2,
        &[vec![0.01, f64::NAN]],
        &v,
        &[vec![0.0; 2]],
        &[0.0, 0.0],
    ));
    assert!(e.contains("mu[0][1] is NaN"), "{e}");
    let e = err(Problem::new(2, &ok_mu, &v, &[vec![0.0; 2]], &[0.0]));
    assert!(e.contains("start has 1 values; expected 2"), "{e}");
    let singular = vec![vec![vec![1e-4, 1e-4], vec![1e-4, 1e-4]]];
    let e = err(Problem::new(
        2,
        &ok_mu,
        &singular,
        &[vec![0.0; 2]],
        &[0.0, 0.0],
    ));
    assert!(
        e.contains("cov[0] is not positive definite enough") && e.contains("[-0.5, 0.5]"),
        "{e}"
    );
    let asym = vec![vec![vec![1e-4, 1e-5], vec![0.0, 1e-4]]];
    let e = err(Problem::new(2, &ok_mu, &asym, &[vec![0.0; 2]], &[0.0, 0.0]));
    assert!(e.contains("cov[0] is not symmetric"), "{e}");
    let e = err(Problem::new(
        2,
        &ok_mu,
        &v,
        &[vec![1e300; 2]],
        &[1e300, 0.0],
    ));
    assert!(
        e.contains("the objective's largest terms summed over the horizons is inf")
            && e.contains("scale mu, cov, cost or start down"),
        "{e}"
    );
    // Returns that overflow only when summed over the horizons.
    let e = err(Problem::new(
        2,
        &[vec![1e308, 0.0], vec![1e308, 0.0]],
        &vec![v[0].clone(); 2],
        &[vec![0.0; 2], vec![0.0; 2]],
        &[0.0, 0.0],
    ));
    assert!(e.contains("is inf"), "{e}");
    let e = err(Problem::new(0, &ok_mu, &v, &[vec![0.0; 2]], &[0.0, 0.0]));
    assert!(e.contains("units"), "{e}");
    let big_mu = vec![vec![0.0; 40]];
    let big_cov = vec![
        (0..40)
            .map(|i| (0..40).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect(),
    ];
    let e = err(Problem::new(
        40,
        &big_mu,
        &big_cov,
        &[vec![0.0; 40]],
        &[0.0; 40],
    ));
    assert!(e.contains("over the limit"), "{e}");
}

#[test]
fn a_covariance_equal_up_to_rounding_or_singular_off_omega_is_accepted() {
    // K = 1 keeps Ω = {±e_1, ±e_2}: the singular matrix below gives each of them
    // variance 1e-4 (its null space, (1, -1), is not in Ω).
    let mu = vec![vec![0.01, 0.02], vec![-0.005, 0.01]];
    let cost = vec![vec![0.001, 0.002]; 2];
    let start = [0.0, 0.0];
    let singular = vec![vec![vec![1e-4, 1e-4], vec![1e-4, 1e-4]]; 2];
    let p = Problem::new(1, &mu, &singular, &cost, &start).unwrap();
    let got = solve_exact(&p, &SearchOptions::default(), &engine(1)).unwrap();
    let (best, _, _) = naive_best(1, &mu, &singular, &cost, &start);
    assert!(
        close(got.best.sharpe, best),
        "{} vs {best}",
        got.best.sharpe
    );
    // Halves that differ in the last digit, as printed covariances do, are averaged;
    // the answer is the one of the exactly symmetric matrix.
    let exact = vec![vec![vec![1e-4, 3e-5], vec![3e-5, 2e-4]]; 2];
    let printed = vec![vec![vec![1e-4, 3e-5], vec![3.000000000000001e-5, 2e-4]]; 2];
    let a = Problem::new(3, &mu, &exact, &cost, &start).unwrap();
    let b = Problem::new(3, &mu, &printed, &cost, &start).unwrap();
    let (ra, rb) = (
        solve_exact(&a, &SearchOptions::default(), &engine(1)).unwrap(),
        solve_exact(&b, &SearchOptions::default(), &engine(1)).unwrap(),
    );
    assert_eq!(ra.best.weights, rb.best.weights);
    assert!(close(ra.best.sharpe, rb.best.sharpe));
}

#[test]
fn a_beam_too_wide_to_finish_is_refused_before_it_starts() {
    // N = 4, K = 6: |Ω| = 608 (see docs/applications.md), H = 3: a beam of 10^7
    // would score 1.8e10 prefixes.
    let (mu, cov, cost, start) = ProblemSpec::random(4, 3, 1, 0.002);
    let p = Problem::new(6, &mu, &cov, &cost, &start).unwrap();
    assert_eq!(p.omega().len(), 608);
    let e = solve(
        &p,
        Method::Beam { width: 10_000_000 },
        &SearchOptions::default(),
        &engine(1),
    )
    .unwrap_err();
    assert!(
        matches!(e, OptimizeError::BeamTooLarge { work, .. } if work == 1.824e10),
        "{e}"
    );
    assert!(e.to_string().contains("narrower beam_width"), "{e}");
}
