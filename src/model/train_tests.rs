use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::model::{Activation, Mlp, MlpConfig, Output, Targets, WeightPerturbation};

/// The reference task (class 0 ~ N(0, Σ), class 1 ~ N(0.5·1, Σ), Σᵢⱼ = 0.5^|i−j|) from the
/// shared generator, with `d` features.
fn gaussians(n: usize, d: usize, seed: u64) -> Dataset {
    let cfg = crate::data::synthetic::GaussiansConfig { n, d, seed, ..Default::default() };
    crate::data::synthetic::gaussians_with(&cfg).unwrap()
}

fn small_cfg(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, batch_size: 64, ..TrainConfig::default() }
}

#[test]
fn same_seed_gives_identical_weights_and_other_seeds_differ() {
    let ds = gaussians(2000, 5, 1);
    let cfg = MlpConfig { dropout: 0.2, seed: 3, ..MlpConfig::default() };
    let m = Mlp::new(&[5, 16, 1], cfg).unwrap();
    let c = TrainConfig { seed: 11, ..small_cfg(3) };
    let a = train(&m, &ds, &c, &Control::quiet()).unwrap();
    let b = train(&m, &ds, &c, &Control::quiet()).unwrap();
    // Bit-identical, also inside a one-thread pool (the half-batch split is fixed).
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let one = pool.install(|| train(&m, &ds, &c, &Control::quiet()).unwrap());
    assert_eq!(a.model.params_flat(), b.model.params_flat());
    assert_eq!(a.model.params_flat(), one.model.params_flat());
    assert_eq!(a.history, b.history);
    let other = train(&m, &ds, &TrainConfig { seed: 12, ..c }, &Control::quiet()).unwrap();
    assert_ne!(a.model.params_flat(), other.model.params_flat());
    assert_eq!((a.stop, a.history.len()), (Stop::MaxIters, 3));
}

#[test]
fn reference_task_reaches_near_bayes_auc() {
    // Equal covariances make the Bayes discriminant linear: Δ² = μᵀΣ⁻¹μ with the
    // tridiagonal AR(1) inverse Σ⁻¹ = (1/(1−ρ²))·tridiag(−ρ, 1+ρ² (ends 1), −ρ), ρ = ½, μ = ½·1:
    // Δ² = ¼·(4/3)·(2 + 18·1.25 − 38·0.5) = 11/6, AUC = Φ(Δ/√2) = Φ(0.957) = 0.8308.
    // The standard error of an AUC on 100k events is ≈ 0.0013, so 0.825 leaves ~4σ for
    // sampling plus a little model suboptimality.
    let train_ds = gaussians(200_000, 20, 2024);
    let test_ds = gaussians(100_000, 20, 2025);
    let m = Mlp::new(&[20, 64, 64, 64, 1], MlpConfig { seed: 1, ..MlpConfig::default() }).unwrap();
    let cfg = TrainConfig { epochs: 3, batch_size: 256, seed: 5, ..TrainConfig::default() };
    let r = train(&m, &train_ds, &cfg, &Control::quiet()).unwrap();
    let e = r.model.evaluate(&test_ds, false).unwrap();
    let auc = e.auc.unwrap();
    assert!((0.825..0.835).contains(&auc), "test AUC {auc}");
    // The standardisation was fitted: feature means near ½·P(y=1) = 0.25, stds near
    // √(1 + 0.25·0.25) = 1.031 (mixture variance).
    assert!(r.model.as_mlp().unwrap().mean().iter().all(|m| (m - 0.25).abs() < 0.02));
    assert!(r.model.as_mlp().unwrap().std().iter().all(|s| (s - 1.031).abs() < 0.02));
}

#[test]
fn softmax_multiclass_learns_separated_blobs() {
    // Three blobs at distance 6 (σ = 1) along different axes: the Bayes error is tiny
    // (P(|z| > 3·√2/… ) < 1 %), so accuracy > 0.95 is required.
    let mut r = crate::rng::rng(4);
    let n = 3000;
    let labels: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        let z: f32 = StandardNormal.sample(&mut r);
        z + if labels[i] == j as i64 { 6.0 } else { 0.0 }
    });
    let ds = Dataset::new(vec!["a".into(), "b".into(), "c".into()], x, Some(labels), None).unwrap();
    let cfg = MlpConfig { activation: Activation::Tanh, output: Output::Softmax, ..MlpConfig::default() };
    let m = Mlp::new(&[3, 8, 3], cfg).unwrap();
    let r = train(&m, &ds, &TrainConfig { validation_fraction: 0.2, ..small_cfg(5) }, &Control::quiet()).unwrap();
    let last = r.history.last().unwrap();
    assert!(last.val_accuracy.unwrap() > 0.95, "{last:?}");
    assert!(last.val_auc.is_none(), "no AUC for 3 classes");
    assert!(r.history[0].loss > last.loss, "training loss did not decrease");
}

#[test]
fn early_stopping_restores_the_best_weights() {
    // A large rate on a small set overfits quickly; whatever the curve, the returned model
    // must reproduce exactly the best recorded validation loss.
    let ds = gaussians(600, 5, 8);
    let val = gaussians(400, 5, 9);
    let m = Mlp::new(&[5, 64, 64, 1], MlpConfig::default()).unwrap();
    let cfg = TrainConfig {
        optimizer: Optimizer::adam(0.05),
        validation: Some(val.clone()),
        patience: Some(2),
        ..small_cfg(40)
    };
    let r = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
    let best = r.best_epoch.unwrap();
    let min = r.history.iter().map(|h| h.val_loss.unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!(r.history[best - 1].val_loss, Some(min));
    assert_eq!(r.model.evaluate(&val, true).unwrap().loss, min);
    if r.stop == Stop::EarlyStopped {
        assert_eq!(r.history.len(), best + 2, "stops `patience` epochs after the best");
    }
}

#[test]
fn uniform_event_weights_change_nothing() {
    // Normalising by the mean weight makes the loss invariant to a global weight scale; with
    // a power of two (w = 2) even the rounding is identical.
    let ds = gaussians(1000, 4, 3);
    let w2 = ds.with_weight(Some(vec![2.0; 1000])).unwrap();
    let m = Mlp::new(&[4, 8, 1], MlpConfig::default()).unwrap();
    let a = train(&m, &ds, &small_cfg(2), &Control::quiet()).unwrap();
    let b = train(&m, &w2, &small_cfg(2), &Control::quiet()).unwrap();
    assert_eq!(a.model.params_flat(), b.model.params_flat());
}

#[test]
fn optimizer_steps_match_hand_computation() {
    // Adam, constant gradient 0.5: after bias correction m̂ = 0.5 and v̂ = 0.25 at every
    // step, so each step moves by lr·0.5/(0.5 + 1e-8) ≈ lr.
    let mut s = OptState::new(1);
    let mut p = [1.0f32];
    s.step(&Optimizer::adam(0.1), 0.1, &mut p, &[0.5]);
    s.step(&Optimizer::adam(0.1), 0.1, &mut p, &[0.5]);
    assert!((p[0] - 0.8).abs() < 1e-6, "{}", p[0]);
    // SGD with momentum 0.9, gradient 1: buffers 1 then 1.9 → moves 0.1 + 0.19 = 0.29.
    let mut s = OptState::new(1);
    let mut p = [1.0f32];
    let sgd = Optimizer::Sgd { lr: 0.1, momentum: 0.9 };
    s.step(&sgd, 0.1, &mut p, &[1.0]);
    s.step(&sgd, 0.1, &mut p, &[1.0]);
    assert!((p[0] - 0.71).abs() < 1e-6, "{}", p[0]);
    // AdamW with g = 0: only the decay acts, p·(1 − lr·λ) = 1·(1 − 0.1·0.5) = 0.95.
    let mut s = OptState::new(1);
    let mut p = [1.0f32];
    let aw = Optimizer::AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.5 };
    s.step(&aw, 0.1, &mut p, &[0.0]);
    assert!((p[0] - 0.95).abs() < 1e-7, "{}", p[0]);
}

#[test]
fn schedules_follow_their_formulas() {
    assert_eq!(Schedule::Step { every: 2, gamma: 0.5 }.lr(1.0, 3, 10), 0.5);
    assert_eq!(Schedule::Step { every: 2, gamma: 0.5 }.lr(1.0, 4, 10), 0.25);
    let c = Schedule::Cosine { min_lr: 0.1 };
    assert_eq!(c.lr(1.0, 0, 10), 1.0);
    // Half way: cos(π/2) = 0 → (1 + 0.1)/2 = 0.55.
    assert!((c.lr(1.0, 5, 10) - 0.55).abs() < 1e-12);
}

#[test]
fn interrupt_is_polled_inside_an_epoch() {
    let ds = gaussians(500, 4, 1);
    let m = Mlp::new(&[4, 8, 1], MlpConfig::default()).unwrap();
    let control = Control::quiet();
    let mut t = Trainer::new(&m, &ds, &small_cfg(3), &control).unwrap();
    control.interrupt.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(matches!(t.step(0), Err(Error::Interrupted)));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let m = Mlp::new(&[2, 4, 1], MlpConfig::default()).unwrap();
    let q = Control::quiet();
    let x = Array2::from_shape_vec((3, 2), vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let names = vec!["a".to_string(), "b".to_string()];
    let bad = Dataset::new(names.clone(), x.clone(), Some(vec![0, 1, 2]), None).unwrap();
    let e = train(&m, &bad, &small_cfg(1), &q).unwrap_err().to_string();
    assert_eq!(e, "train: label 2 at event 2 is invalid; labels must be 0 or 1 for a sigmoid output");
    let nolabel = Dataset::new(names.clone(), x.clone(), None, None).unwrap();
    let e = train(&m, &nolabel, &small_cfg(1), &q).unwrap_err().to_string();
    assert_eq!(e, "train: the training set has no label column");
    let empty = Dataset::new(names.clone(), Array2::zeros((0, 2)), Some(vec![]), None).unwrap();
    let e = train(&m, &empty, &small_cfg(1), &q).unwrap_err().to_string();
    assert_eq!(e, "train: the training set is empty");
    let three =
        Dataset::new(vec!["a".into(), "b".into(), "c".into()], Array2::zeros((3, 3)), Some(vec![0, 1, 0]), None)
            .unwrap();
    let e = train(&m, &three, &small_cfg(1), &q).unwrap_err().to_string();
    assert_eq!(e, "classifier: expected 2 features, got 3 features [a, b, c]");
    let mut named = m.clone();
    named.set_feature_names(Some(vec!["a".into(), "z".into()])).unwrap();
    let ok = Dataset::new(names, x, Some(vec![0, 1, 0]), None).unwrap();
    let e = named.check_features(&ok).unwrap_err().to_string();
    assert_eq!(e, "classifier: expected 2 features [a, z], got 2 features [a, b] (missing: z; not in the model: b)");
    let swapped = Dataset::new(vec!["z".into(), "a".into()], Array2::zeros((1, 2)), None, None).unwrap();
    let e = named.check_features(&swapped).unwrap_err().to_string();
    assert_eq!(e, "classifier: expected 2 features [a, z], got 2 features [z, a] (the same features in another order)");
    let cfg = TrainConfig { class_weights: Some(vec![1.0]), ..small_cfg(1) };
    let e = train(&m, &ok, &cfg, &q).unwrap_err().to_string();
    assert_eq!(e, "train: option 'class_weights' has 1 entries, no entry for label 1");
    let cfg = TrainConfig { patience: Some(3), ..small_cfg(1) };
    let e = train(&m, &ok, &cfg, &q).unwrap_err().to_string();
    assert_eq!(e, "train: option 'patience' needs a validation set or a validation_fraction");
}

#[test]
fn sam_training_step_follows_its_formula() {
    // One epoch of plain SGD (lr η) with the whole set as one minibatch and SAM radius ρ:
    //   g = ∇L(w₀), ε̂ = ρ·g/‖g‖, w₁ = w₀ − η·∇L(w₀ + ε̂).
    // Computed independently from weight_grad; the minibatch sums events in shuffled order,
    // so agreement is to f32 rounding (1e-6), not bitwise.
    let ds = gaussians(300, 4, 9);
    let mut m =
        Mlp::new(&[4, 6, 1], MlpConfig { activation: Activation::Tanh, seed: 2, ..MlpConfig::default() }).unwrap();
    m.fit_standardization(&ds).unwrap();
    let (eta, rho) = (0.5, 0.2);
    let labels = Targets::Labels(ds.label().unwrap());
    let (_, g) = m.weight_grad(ds.x(), labels, None).unwrap();
    let gn = g.iter().map(|v| v * v).sum::<f32>().sqrt();
    let w0 = m.params_flat();
    let mut shifted = m.clone();
    shifted.set_params_flat(&w0.iter().zip(&g).map(|(w, gi)| w + rho * gi / gn).collect::<Vec<_>>()).unwrap();
    let (_, g_adv) = shifted.weight_grad(ds.x(), labels, None).unwrap();
    let want: Vec<f32> = w0.iter().zip(&g_adv).map(|(w, gi)| w - eta * gi).collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 300,
        optimizer: Optimizer::Sgd { lr: f64::from(eta), momentum: 0.0 },
        standardize: crate::model::Standardize::Keep,
        weight_attack: Some(WeightPerturbation::Sam { rho: f64::from(rho) }),
        ..TrainConfig::default()
    };
    let got = train(&m, &ds, &cfg, &Control::quiet()).unwrap().model.params_flat();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // The step differs from plain SGD's (the perturbation matters at this ρ).
    let plain: Vec<f32> = w0.iter().zip(&g).map(|(w, gi)| w - eta * gi).collect();
    assert!(got.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn zero_sized_weight_attacks_train_bit_identically_to_plain_training() {
    // ε = 0 leaves every gradient and hence every bit unchanged (the clean weights are
    // restored by copy, not by subtraction).
    let ds = gaussians(1000, 5, 3);
    let m = Mlp::new(&[5, 8, 1], MlpConfig { dropout: 0.1, seed: 4, ..MlpConfig::default() }).unwrap();
    let plain = train(&m, &ds, &small_cfg(2), &Control::quiet()).unwrap();
    for p in [
        WeightPerturbation::Sam { rho: 0.0 },
        WeightPerturbation::Asam { rho: 0.0, eta: 0.01 },
        WeightPerturbation::Awp { gamma: 0.0 },
        WeightPerturbation::Rwp { gamma: 0.0 },
    ] {
        let cfg = TrainConfig { weight_attack: Some(p.clone()), ..small_cfg(2) };
        let r = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
        assert_eq!(r.model.params_flat(), plain.model.params_flat(), "{}", p.name());
    }
    // And non-zero ones change the result.
    let cfg = TrainConfig { weight_attack: Some(WeightPerturbation::Awp { gamma: 0.05 }), ..small_cfg(2) };
    assert_ne!(train(&m, &ds, &cfg, &Control::quiet()).unwrap().model.params_flat(), plain.model.params_flat());
}

#[test]
fn weighted_training_loss_is_the_weighted_mean() {
    // A 2 → 1 logistic model with zero weights and bias 1: z = 1 for every event whatever the
    // (standardised) inputs, so ℓ = ln(1 + e^−1) for label 1 and ln(1 + e^1) for label 0.
    // One minibatch of all four events: the recorded loss is at these initial weights.
    // Labels (1, 0, 1, 0) with weights (1, 2, 3, 4): Σwℓ/Σw = (4·ln(1+e^−1) + 6·ln(1+e)) / 10
    // = 0.913 26…, where Σwℓ/n (the old figure) is 2.5 times more.
    let x = ndarray::array![[0.0f32, 1.0], [1.0, 0.0], [2.0, 3.0], [3.0, 2.0]];
    let names = vec!["a".to_string(), "b".to_string()];
    let ds = Dataset::new(names, x, Some(vec![1, 0, 1, 0]), Some(vec![1.0, 2.0, 3.0, 4.0])).unwrap();
    let mut m = Mlp::new(&[2, 1], MlpConfig::default()).unwrap();
    m.set_params_flat(&[0.0, 0.0, 1.0]).unwrap();
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..TrainConfig::default() };
    let r = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
    let sp = |z: f64| (1.0 + z.exp()).ln();
    let expected = (4.0 * sp(-1.0) + 6.0 * sp(1.0)) / 10.0;
    assert!((r.history[0].loss - expected).abs() < 1e-6, "{} vs {expected}", r.history[0].loss);
    // Without event weights the plain mean: (2·ln(1+e^−1) + 2·ln(1+e)) / 4.
    let r = train(&m, &ds, &TrainConfig { use_event_weights: false, ..cfg }, &Control::quiet()).unwrap();
    let plain = (2.0 * sp(-1.0) + 2.0 * sp(1.0)) / 4.0;
    assert!((r.history[0].loss - plain).abs() < 1e-6, "{} vs {plain}", r.history[0].loss);
}

#[test]
fn absurd_batch_sizes_and_widths_are_limit_errors() {
    let ds = gaussians(10, 2, 1);
    let m = Mlp::new(&[2, 1], MlpConfig::default()).unwrap();
    let cfg = TrainConfig { batch_size: 1 << 40, ..TrainConfig::default() };
    let e = train(&m, &ds, &cfg, &Control::quiet()).unwrap_err();
    assert_eq!(e.to_string(), "train: batch_size 1099511627776 is over the limit of 16777216");
    let e = Mlp::new(&[2, 1 << 40, 1], MlpConfig::default()).unwrap_err();
    assert_eq!(e.to_string(), "mlp: layer width 1099511627776 is over the limit of 100000000");
    // Every width allowed, the product not: 10⁵·10⁵ weights.
    let e = Mlp::new(&[100_000, 100_000, 1], MlpConfig::default()).unwrap_err();
    assert_eq!(e.to_string(), "mlp: parameter count 10000200001 is over the limit of 1000000000");
}

#[test]
fn trainer_buffers_are_held_against_the_budget_while_it_lives() {
    let b = crate::memory::Budget::new(1 << 30);
    let _g = crate::memory::enter(b.clone());
    let ds = gaussians(200, 5, 1);
    let m = Mlp::new(&[5, 16, 1], MlpConfig::default()).unwrap();
    let before = b.used();
    let t = Trainer::new(&m, &ds, &small_cfg(1), &Control::quiet()).unwrap();
    // Two workspaces of 32 rows (half a minibatch of 64): per row 2 × (5 + 16 + 1) + 2 × 16
    // = 76 f32, so 2 × 32 × 76 × 4 = 19456 bytes; 113 weights × 7 f32 copies = 3164 bytes.
    assert!(b.used() - before >= 19456 + 3164, "{} bytes held", b.used() - before);
    drop(t);
    assert_eq!(b.used(), before);
    // Without room for them, the trainer is refused before allocating.
    let small = crate::memory::Budget::new(b.used() + 1000);
    let _g2 = crate::memory::enter(small);
    let e = Trainer::new(&m, &ds, &small_cfg(1), &Control::quiet()).err().unwrap();
    assert_eq!(e.kind(), "memory");
}
