//! Model metrics against values computed by hand.

use kf_dataflow::metrics::{classifier_metrics, regressor_metrics};

#[test]
fn classifier_scores_match_a_hand_computed_confusion_matrix() {
    // Classes -1, 0, 1. Labels and the class each row's probabilities favour:
    //   1 -> 1, 1 -> 1, 1 -> 0, 0 -> 0, 0 -> 1, -1 -> -1; then a NaN label (skipped).
    let labels = [1.0, 1.0, 1.0, 0.0, 0.0, -1.0, f64::NAN];
    let favoured = [2usize, 2, 1, 1, 2, 0, 0];
    let probs: Vec<Vec<f64>> = (0..3)
        .map(|c| {
            favoured
                .iter()
                .map(|&f| if f == c { 0.6 } else { 0.2 })
                .collect()
        })
        .collect();
    let names = ["down".to_string(), "flat".into(), "up".into()];
    let m = classifier_metrics(&labels, &probs, &[-1.0, 0.0, 1.0], &names);
    assert_eq!(m.rows, 6);
    assert_eq!(
        m.confusion,
        vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 1, 2]]
    );
    assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-15);
    assert_eq!(m.majority_class, "up");
    assert!((m.base_rate - 0.5).abs() < 1e-15);
    let p: Vec<f64> = m.classes.iter().map(|c| c.precision).collect();
    let r: Vec<f64> = m.classes.iter().map(|c| c.recall).collect();
    let f: Vec<f64> = m.classes.iter().map(|c| c.f1).collect();
    for (got, want) in [
        (p, [1.0, 0.5, 2.0 / 3.0]),
        (r, [1.0, 0.5, 2.0 / 3.0]),
        (f, [1.0, 0.5, 2.0 / 3.0]),
    ] {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{g} vs {w}");
        }
    }
    assert!((m.macro_f1 - (1.0 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-15);
    // Four rows gave their label 0.6, two gave it 0.2.
    let loss = (4.0 * -(0.6f64.ln()) + 2.0 * -(0.2f64.ln())) / 6.0;
    assert!((m.log_loss - loss).abs() < 1e-12);
    assert_eq!(m.classes[2].support, 3);
}

#[test]
fn regressor_scores_match_hand_computed_rmse_spearman_and_hit_rate() {
    let truth = [1.0, 2.0, 3.0, -4.0, f64::NAN];
    let pred = [10.0, 30.0, 20.0, 40.0, 5.0];
    let m = regressor_metrics(&truth, &pred);
    assert_eq!(m.rows, 4);
    // Errors 9, 28, 17, 44.
    let rmse = ((81.0 + 784.0 + 289.0 + 1936.0) / 4.0f64).sqrt();
    assert!((m.rmse - rmse).abs() < 1e-12);
    // Ranks: truth 2, 3, 4, 1; prediction 1, 3, 2, 4; d = 1, 0, 2, -3:
    // 1 - 6 * 14 / (4 * 15) = -0.4.
    assert!((m.ic - -0.4).abs() < 1e-12, "{}", m.ic);
    assert!((m.hit_rate - 0.75).abs() < 1e-15);
    // Ties share their mean rank: a constant prediction has no correlation.
    assert!(
        regressor_metrics(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0])
            .ic
            .is_nan()
    );
}
