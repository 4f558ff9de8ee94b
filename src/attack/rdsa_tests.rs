//! RDSA: marginals kept, correlations broken, constraints respected, determinism.

use ndarray::{Array2, Axis};

use super::*;
use crate::attack::metrics::{correlation_change, fooling_ratio, jsd_per_feature};
use crate::attack::test_support::trained;
use crate::data::synthetic::{gaussians_with, GaussiansConfig};
use crate::model::{Mlp, MlpConfig, Output};

fn names(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("x{j}")).collect()
}

fn run(model: &Mlp, x: &Array2<f32>, labels: Option<&[i64]>, cfg: &RdsaConfig, proj: &Projection) -> RdsaResult {
    let r = Rdsa::new(&names(x.ncols()), x.view(), labels, cfg, proj).unwrap();
    r.attack(model, x.view(), labels, None, &Control::quiet()).unwrap()
}

/// The reference task with strongly correlated neighbours (ρ = 0.8).
fn correlated(n: usize, d: usize, seed: u64) -> crate::Dataset {
    gaussians_with(&GaussiansConfig { n, d, seed, rho: 0.8, ..Default::default() }).unwrap()
}

/// The JS distance expected between two independent samples of `n` events from the same
/// distribution in `bins` bins: JS divergence ≈ ⅛·Σ_b (p̂_b − q̂_b)²/m_b with
/// E(p̂_b − q̂_b)² = 2m_b(1 − m_b)/n, so E[D] ≈ (B − 1)/(4n) nats = (B − 1)/(4n ln 2) bits,
/// and the distance is √D.
fn resample_jsd(n: usize, bins: usize) -> f64 {
    ((bins - 1) as f64 / (4.0 * n as f64 * std::f64::consts::LN_2)).sqrt()
}

#[test]
fn marginals_match_and_correlations_move() {
    // The reference task's shape (d = 20, k = 3, 100 steps, 100 bins) with strongly
    // correlated neighbours (ρ = 0.8), N = 20,000: the independent-resample distance is
    // 0.042 (checked: two halves of N/2 give √2·0.042 ≈ 0.06). The RDSA output differs from
    // its input only in redrawn values (a fraction f ≈ k/d = 0.15 per feature, more with
    // flips' selection), so each feature's distance must stay below the resample value.
    let (n, d, bins) = (20_000, 20, 100);
    let threshold = resample_jsd(n, bins);
    let ds = correlated(n, d, 11);
    let (model, _) = trained(d, Output::Sigmoid);
    let x = ds.x().to_owned();
    let r = run(&model, &x, None, &RdsaConfig::default(), &Projection::default());
    assert!(r.attack.flip_fraction() > 0.2, "the attack must bite: {}", r.attack.flip_fraction());
    let jsd = jsd_per_feature(x.view(), r.attack.x.view(), bins).unwrap();
    assert!(jsd.iter().all(|&j| j < threshold), "per-feature JSD {jsd:?} vs {threshold}");
    // A 0.2σ shift of every value (JS divergence ≈ δ²/8 nats → distance ≈ 0.085) is far
    // above it: the test can fail.
    let shifted = &x + 0.2f32;
    let jsd_shift = jsd_per_feature(x.view(), shifted.view(), bins).unwrap();
    assert!(jsd_shift.iter().all(|&j| j > 1.5 * threshold), "{jsd_shift:?}");
    // One try per event (no selection by flips): the redrawn values are a plain resample, so
    // the distance is ≈ √f·0.042 = 0.016.
    let one = run(&model, &x, None, &RdsaConfig { steps: 1, ..Default::default() }, &Projection::default());
    let jsd1 = jsd_per_feature(x.view(), one.attack.x.view(), bins).unwrap();
    assert!(jsd1.iter().all(|&j| j < 0.6 * threshold), "{jsd1:?}");
    // Correlations: each entry's sampling error is ≈ (1 − ρ²)/√N ≤ 0.007; over the 380
    // off-diagonal entries the relative Frobenius noise is ≈ 0.007·√380 / ‖C‖ (‖C‖ ≈ 9) ≈
    // 0.015, as two halves of the same data show. Redrawing a feature independently in a
    // fraction f of the events scales its correlations by ≈ (1 − f): a change > 0.1.
    let change = correlation_change(x.view(), r.attack.x.view()).unwrap();
    assert!(change > 0.1, "correlation change {change}");
    let half = x.slice(ndarray::s![..n / 2, ..]).to_owned();
    let other = x.slice(ndarray::s![n / 2.., ..]).to_owned();
    let noise = correlation_change(half.view(), other.view()).unwrap();
    assert!(noise < 0.03, "two halves of the same data: {noise}");
}

/// Columns: a, b (sentinel −999 in a fifth of the events), c (integer, 5 values), d, e.
fn mixed(n: usize) -> Array2<f32> {
    let ds = correlated(n, 5, 3);
    let mut x = ds.x().to_owned();
    for (i, mut row) in x.axis_iter_mut(Axis(0)).enumerate() {
        if i % 5 == 0 {
            row[1] = -999.0;
        }
        row[2] = (row[2].abs() * 2.0).floor().min(4.0);
        row[4] *= 10.0;
    }
    x
}

#[test]
fn non_continuous_frozen_and_projected_features_are_respected() {
    let x = mixed(4000);
    let cfg = MlpConfig { seed: 9, ..MlpConfig::default() };
    let model = Mlp::new(&[5, 16, 1], cfg).unwrap();
    let proj = Projection::new(
        names(5),
        vec![
            Rule::Sentinel { feature: 1, value: -999.0 },
            Rule::Frozen { feature: 3 },
            Rule::Integer { feature: 4 },
            Rule::Clip { feature: 0, lo: -0.5, hi: 0.5 },
        ],
    )
    .unwrap();
    let rcfg = RdsaConfig { k: 2, steps: 20, frozen: vec![], ..Default::default() };
    let prepared = Rdsa::new(&names(5), x.view(), None, &rcfg, &proj).unwrap();
    // c has 5 distinct values (not continuous), d is frozen by the projection.
    assert_eq!(prepared.candidates(), &[0, 1, 4]);
    let r = prepared.attack(&model, x.view(), None, None, &Control::quiet()).unwrap();
    let xa = &r.attack.x;
    assert!(proj.violations(x.view(), xa.view()).is_empty());
    // The sentinel's region is never drawn for events that did not have it (without the
    // exclusion a fifth of b's histogram mass sits in the bin at −999).
    assert!((0..x.nrows()).all(|i| (x[[i, 1]] == -999.0) == (xa[[i, 1]] < -900.0)));
    assert_eq!(xa.column(2), x.column(2), "non-continuous c changed");
    assert_eq!(xa.column(3), x.column(3), "frozen d changed");
    // The continuous features did move (the test could fail).
    for j in [0, 1, 4] {
        let moved = (0..x.nrows()).filter(|&i| xa[[i, j]] != x[[i, j]]).count();
        assert!(moved > 100, "feature {j} moved in {moved} events");
    }
    // The `frozen` option does the same as a frozen projection rule.
    let by_option = RdsaConfig { frozen: vec![0], ..rcfg.clone() };
    let prepared = Rdsa::new(&names(5), x.view(), None, &by_option, &Projection::default()).unwrap();
    assert_eq!(prepared.candidates(), &[1, 3, 4]);
    let r = prepared.attack(&model, x.view(), None, None, &Control::quiet()).unwrap();
    assert_eq!(r.attack.x.column(0), x.column(0), "frozen a changed");
    // Explicitly listed features may be shuffled whatever their distinct values; k larger
    // than the shufflable features is an error naming them.
    let listed = RdsaConfig { features: Some(vec![2]), steps: 5, ..Default::default() };
    let r = run(&model, &x, None, &listed, &Projection::default());
    assert!((0..x.nrows()).any(|i| r.attack.x[[i, 2]] != x[[i, 2]]));
    let e = Rdsa::new(&names(5), x.view(), None, &RdsaConfig { k: 4, ..Default::default() }, &proj).unwrap_err();
    assert!(
        e.to_string().contains("option 'k' is 4, more than the 3 features that can be shuffled [x0, x1, x4]"),
        "{e}"
    );
}

#[test]
fn flips_stop_early_and_budgets_hold() {
    let ds = correlated(3000, 6, 5);
    let (model, _) = trained(6, Output::Sigmoid);
    let x = ds.x().to_owned();
    let cfg = RdsaConfig { steps: 30, ..Default::default() };
    let r = run(&model, &x, None, &cfg, &Projection::default());
    let a = &r.attack;
    assert!(a.flip_fraction() > 0.05 && a.flip_fraction() < 1.0, "{}", a.flip_fraction());
    for i in 0..a.len() {
        let flipped = a.class_after[i] != a.class_before[i];
        assert_eq!(flipped, a.reason[i] == "flipped");
        if flipped {
            assert!(a.iters[i] >= 1 && a.iters[i] <= 30);
        } else {
            assert_eq!(a.iters[i], 30);
        }
        // At most k = 3 features differ from the original.
        let changed = (0..6).filter(|&j| a.x[[i, j]] != x[[i, j]]).count();
        assert!(changed <= 3);
    }
    // Scores after are the model's on the returned events.
    let (s, c) = outputs(&model, a.x.view()).unwrap();
    assert_eq!(c, a.class_after);
    assert!((&s - &a.score_after).iter().all(|v| v.abs() < 1e-6));
    assert_eq!(r.tries, a.iters.iter().map(|&t| u64::from(t)).sum::<u64>());
    // Without early stopping every try is evaluated; an event flips if any try flips.
    let all = run(&model, &x, None, &RdsaConfig { stop_at_flip: false, ..cfg.clone() }, &Projection::default());
    assert_eq!(all.tries, 30 * 3000);
    assert!(all.attack.iters.iter().all(|&t| t == 30));
    assert_eq!(all.attack.flipped(), a.flipped(), "the same draws flip the same events");
    assert!(all.flipping_tries >= r.flipping_tries);
}

#[test]
fn same_seed_same_output_whatever_the_threads() {
    let ds = correlated(2000, 6, 7);
    let (model, _) = trained(6, Output::Sigmoid);
    let x = ds.x().to_owned();
    let cfg = RdsaConfig { seed: 3, steps: 10, ..Default::default() };
    let a = run(&model, &x, None, &cfg, &Projection::default());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| run(&model, &x, None, &cfg, &Projection::default()));
    assert_eq!(a.attack.x, b.attack.x);
    assert_eq!(a.attack.iters, b.attack.iters);
    let c = run(&model, &x, None, &RdsaConfig { seed: 4, ..cfg }, &Projection::default());
    assert_ne!(a.attack.x, c.attack.x);
}

#[test]
fn per_class_and_reference_marginals() {
    // Feature 0 lives in [0, 1] for class 0 and in [10, 11] for class 1.
    let n = 2000;
    let ds = correlated(n, 3, 2);
    let labels = ds.label().unwrap().to_vec();
    let mut x = ds.x().to_owned();
    for (i, mut row) in x.axis_iter_mut(Axis(0)).enumerate() {
        row[0] = (i % 997) as f32 / 997.0 + 10.0 * labels[i] as f32;
    }
    let model = Mlp::new(&[3, 8, 1], MlpConfig { seed: 1, ..MlpConfig::default() }).unwrap();
    let cfg = RdsaConfig { features: Some(vec![0]), steps: 3, per_class: true, ..Default::default() };
    let r = run(&model, &x, Some(&labels), &cfg, &Projection::default());
    for (i, (&v, &l)) in r.attack.x.column(0).iter().zip(&labels).enumerate() {
        let lo = 10.0 * l as f32;
        assert!(v >= lo && v <= lo + 1.0, "event {i} of class {l} got {v}");
    }
    // Marginals from another set: every drawn value comes from its range [100, 101].
    let reference = x.mapv(|v| v.rem_euclid(1.0) + 100.0);
    let pooled = RdsaConfig { features: Some(vec![0]), steps: 1, ..Default::default() };
    let prepared = Rdsa::new(&names(3), reference.view(), None, &pooled, &Projection::default()).unwrap();
    let r = prepared.attack(&model, x.view(), None, None, &Control::quiet()).unwrap();
    assert!(r.attack.x.column(0).iter().all(|&v| (100.0..=101.0).contains(&v)));
    // Per-class marginals need labels on the attacked events.
    let p = Rdsa::new(&names(3), x.view(), Some(&labels), &cfg, &Projection::default()).unwrap();
    let e = p.attack(&model, x.view(), None, None, &Control::quiet()).unwrap_err();
    assert!(e.to_string().contains("per_class"), "{e}");
}

#[test]
fn fooling_ratio_counts_only_originally_correct_events() {
    // Give half of the events the wrong label: the model's clean "accuracy" drops, and the
    // wrongly labelled events that flip become *correct*. The fooling ratio must count only
    // events correct before the attack, so it differs from the flip fraction.
    let ds = correlated(4000, 6, 9);
    let (model, _) = trained(6, Output::Sigmoid);
    let x = ds.x().to_owned();
    let mut labels = ds.label().unwrap().to_vec();
    for l in labels.iter_mut().step_by(2) {
        *l = 1 - *l;
    }
    let r = run(&model, &x, None, &RdsaConfig { steps: 20, ..Default::default() }, &Projection::default());
    let a = &r.attack;
    let f = fooling_ratio(&labels, &a.class_before, &a.class_after).unwrap();
    let correct: Vec<usize> = (0..labels.len()).filter(|&i| a.class_before[i] == labels[i]).collect();
    let by_hand = correct.iter().filter(|&&i| a.class_after[i] != labels[i]).count();
    assert_eq!((f.fooled, f.correct), (by_hand, correct.len()));
    let wrong_that_flipped =
        (0..labels.len()).filter(|&i| a.class_before[i] != labels[i] && a.class_after[i] != a.class_before[i]).count();
    assert!(wrong_that_flipped > 50, "the case must matter: {wrong_that_flipped}");
    let naive = a.flipped().iter().filter(|f| **f).count();
    assert_eq!(naive, by_hand + wrong_that_flipped);
}

#[test]
fn histogram_sampling_follows_the_bins() {
    // Values: 3 at 0.25 and 1 at 0.75 over [0.25, 0.75] with 2 bins: bin 0 = [0.25, 0.5)
    // with p = ¾, bin 1 = [0.5, 0.75] with p = ¼, uniform inside. Mean = ¾·0.375 + ¼·0.625
    // = 0.4375; 100k draws: sd of the mean ≈ 0.1/316 = 3e-4.
    let m = Marginal::histogram(&[0.25, 0.25, 0.25, 0.75], 2);
    let mut s = Stream::new(1, 2);
    let v: Vec<f32> = (0..100_000).map(|_| m.sample(&mut s)).collect();
    assert!(v.iter().all(|&x| (0.25..=0.75).contains(&x)));
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    assert!((mean - 0.4375).abs() < 1.5e-3, "{mean}");
    let low = v.iter().filter(|&&x| x < 0.5).count() as f64 / v.len() as f64;
    assert!((low - 0.75).abs() < 0.007, "{low}");
    // Empirical draws only return reference values.
    let e = Marginal::empirical(&[1.0, 2.0, 3.0]);
    assert!((0..1000).all(|_| [1.0, 2.0, 3.0].contains(&e.sample(&mut s))));
}

#[test]
fn bad_settings_are_errors() {
    let x = mixed(500);
    let p = Projection::default();
    let e = |cfg: RdsaConfig| Rdsa::new(&names(5), x.view(), None, &cfg, &p).unwrap_err().to_string();
    assert_eq!(e(RdsaConfig { steps: 0, ..Default::default() }), "rdsa: option 'steps' must be ≥ 1, got 0");
    assert_eq!(e(RdsaConfig { k: 0, ..Default::default() }), "rdsa: option 'k' must be ≥ 1, got 0");
    assert!(e(RdsaConfig { per_class: true, ..Default::default() }).contains("needs a reference set with labels"));
    let both = RdsaConfig { features: Some(vec![0]), frozen: vec![0], ..Default::default() };
    assert_eq!(e(both), "rdsa: option 'features' 'x0' is also frozen");
}
