//! The detector's defining properties: its efficiencies are the fractions of held-out events it
//! calls clean / adversarial (recomputed here from its logits), the corrected fooling ratio
//! is initial × (1 − efficiency on adversaries) and equals the fooling events it misses over
//! the attacked events, and it separates separable samples.

use ndarray::Array2;

use super::detector::{fooled, train_detector, DetectorConfig, Mitigation};
use crate::data::Dataset;
use crate::model::{Mlp, MlpConfig};
use crate::optim::Control;
use crate::rng::Stream;

/// `n` events of 2 features, Gaussian around (`mx`, 0), all labelled 0.
fn gauss(n: usize, mx: f32, stream: u64) -> Dataset {
    let mut r = Stream::new(11, stream);
    let x = Array2::from_shape_fn((n, 2), |(_, j)| {
        let (u, v) = (r.uniform().max(1e-300), r.uniform());
        let z = ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32;
        z + if j == 0 { mx } else { 0.0 }
    });
    Dataset::new(vec!["a".into(), "b".into()], x, Some(vec![0; n]), None).unwrap()
}

/// A classifier with logit = a (class 1 iff a > 0): an event labelled 0 fools it iff a > 0.
fn threshold_model() -> Mlp {
    let mut m =
        Mlp::new(&[2, 1], MlpConfig { feature_names: Some(vec!["a".into(), "b".into()]), ..Default::default() })
            .unwrap();
    m.set_params_flat(&[1.0, 0.0, 0.0]).unwrap();
    m
}

fn quick() -> DetectorConfig {
    DetectorConfig { hidden: vec![16, 8], lr: 1e-2, epochs: 15, seed: 5, ..DetectorConfig::default() }
}

#[test]
fn efficiencies_and_corrected_ratio_match_an_independent_count_on_held_out_events() {
    let model = threshold_model();
    // Clean around 0, "attacked" events around 1.5: about 93 % of them have a > 0 (fooling).
    let (clean_tr, adv_tr) = (gauss(800, 0.0, 1), gauss(800, 1.5, 2));
    let det = train_detector(
        &clean_tr,
        &super::detector::fooling_events(&model, &adv_tr).unwrap(),
        &quick(),
        &Control::quiet(),
    )
    .unwrap()
    .model;
    let (clean_te, attacked_te) = (gauss(600, 0.0, 3), gauss(700, 1.5, 4));
    let m = Mitigation::evaluate(&model, &*det, &clean_te, &attacked_te).unwrap();
    // Independently: the detector's logits (> 0: clean, class 1) and the fooling rule a > 0.
    let zc = det.logits(clean_te.x()).unwrap();
    let za = det.logits(attacked_te.x()).unwrap();
    let called_clean = zc.column(0).iter().filter(|&&z| z > 0.0).count();
    let a = attacked_te.x();
    let fool: Vec<bool> = (0..a.nrows()).map(|i| a[[i, 0]] > 0.0).collect();
    assert_eq!(fooled(&model, &attacked_te).unwrap(), fool);
    let n_fooled = fool.iter().filter(|f| **f).count();
    let missed = (0..a.nrows()).filter(|&i| fool[i] && za[[i, 0]] > 0.0).count();
    let detected = n_fooled - missed;
    assert_eq!(m.n_fooled, n_fooled);
    assert_eq!(m.efficiency_clean, called_clean as f64 / 600.0);
    assert_eq!(m.efficiency_adversarial, detected as f64 / n_fooled as f64);
    assert_eq!(m.initial, n_fooled as f64 / 700.0);
    // By construction, and as the count of fooling events the detector misses.
    assert!((m.corrected - m.initial * (1.0 - m.efficiency_adversarial)).abs() < 1e-15);
    assert!((m.corrected - missed as f64 / 700.0).abs() < 1e-12);
}

#[test]
fn a_detector_separates_separable_samples_on_held_out_events() {
    let model = threshold_model();
    // Clean around −3, adversarial around +3 (all fooling): overlap Φ(−3) ≈ 0.13 % per side.
    let det = train_detector(&gauss(600, -3.0, 5), &gauss(600, 3.0, 6), &quick(), &Control::quiet()).unwrap().model;
    let m = Mitigation::evaluate(&model, &*det, &gauss(500, -3.0, 7), &gauss(500, 3.0, 8)).unwrap();
    assert!(m.efficiency_clean > 0.97 && m.efficiency_adversarial > 0.97, "{m:?}");
    assert!(m.corrected < 0.03 * m.initial, "{m:?}");
}

#[test]
fn too_few_events_and_missing_labels_are_clear_errors() {
    let model = threshold_model();
    let e = train_detector(&gauss(10, 0.0, 1), &gauss(1, 1.0, 2), &quick(), &Control::quiet()).unwrap_err();
    assert!(
        e.to_string().contains("needs at least 2 clean and 2 adversarial events, got 10 clean and 1 adversarial"),
        "{e}"
    );
    let unlabelled = gauss(10, 0.0, 1).with_label(None).unwrap();
    let e = Mitigation::evaluate(&model, &model, &gauss(10, 0.0, 1), &unlabelled).unwrap_err();
    assert!(e.to_string().contains("no label column"), "{e}");
}
