//! The model interface with a second, independent implementation: [`CandleMlp`] (candle-core
//! autograd) holding the same weights as a fused [`Mlp`] goes through every consumer — FGSM,
//! PGD, MiniFool, RDSA, s-scans, training, a Hessian spectrum — and agrees with the fused
//! path within float tolerance; its input gradients through the trait match finite
//! differences of its own logits. Freezing a parameter group leaves it bit-unchanged.

use ndarray::{Array2, ArrayView2};

use crate::attack::test_support::{bench_sigma, trained};
use crate::attack::{configure, s_scan, Outcome, Purpose, Setup, Value, Values};
use crate::data::Dataset;
use crate::landscape::{power_iteration, ModelHessian, PowerConfig};
use crate::model::{load_model, train, CandleMlp, GradTarget, Mlp, Model, Output, Targets, TrainConfig};
use crate::optim::Control;

/// The trained tanh MLP of the attack tests on 300 events, and the same network on candle.
fn pair() -> (Mlp, CandleMlp, Dataset) {
    let (m, ds) = trained(5, Output::Sigmoid);
    let c = CandleMlp::from_mlp(&m).unwrap();
    (m, c, ds.head(300))
}

/// The registered attack `name` configured from `values` and run on `model`.
fn attack(name: &str, model: &dyn Model, ds: &Dataset, values: Values) -> Outcome {
    let unc = bench_sigma(ds);
    let setup = Setup { model, events: ds, unc: Some(&unc), purpose: Purpose::Script };
    let x = model.inputs(ds).unwrap();
    configure(name, &setup, values).unwrap().run(model, x.view(), ds.label(), &Control::quiet()).unwrap()
}

/// Largest |a − b| over two arrays of the same shape.
fn max_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn input_gradients_through_the_trait_match_finite_differences() {
    let (_, c, ds) = pair();
    let model: &dyn Model = &c;
    let x = model.inputs(&ds.head(20)).unwrap();
    // A custom objective of the logit, sin(z₀) (∂/∂z₀ = cos z₀), and the label loss.
    let obj = |_: usize, z: &[f32], g: &mut [f32]| {
        g[0] = z[0].cos();
        z[0].sin()
    };
    let labels: Vec<i64> = ds.label().unwrap()[..20].to_vec();
    let eval = |xv: ArrayView2<'_, f32>, custom: bool| -> Vec<f64> {
        let z = model.logits(xv).unwrap();
        z.rows()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let z0 = f64::from(r[0]);
                if custom {
                    z0.sin()
                } else {
                    // BCE with logits: max(z,0) − y·z + ln(1 + e^−|z|).
                    z0.max(0.0) - labels[i] as f64 * z0 + (-z0.abs()).exp().ln_1p()
                }
            })
            .collect()
    };
    for custom in [true, false] {
        let target = if custom { GradTarget::Custom(&obj) } else { GradTarget::Loss(Targets::Labels(&labels)) };
        let g = model.input_grad_and_scores(x.view(), target).unwrap().grad;
        // Central differences with h = 10⁻²: truncation O(h²) ≈ 10⁻⁴·|f'''| and f32 rounding
        // of the logits ≈ 10⁻⁷/h = 10⁻⁵, so 2·10⁻³ absolute is a safe bound for O(1) gradients.
        let h = 1e-2f32;
        for j in 0..x.ncols() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp.column_mut(j).mapv_inplace(|v| v + h);
            xm.column_mut(j).mapv_inplace(|v| v - h);
            let (fp, fm) = (eval(xp.view(), custom), eval(xm.view(), custom));
            for i in 0..x.nrows() {
                let fd = (fp[i] - fm[i]) / (2.0 * f64::from(h));
                assert!(
                    (fd - f64::from(g[[i, j]])).abs() < 2e-3,
                    "custom={custom} event {i} feature {j}: fd {fd}, grad {}",
                    g[[i, j]]
                );
            }
        }
    }
}

#[test]
fn attacks_scans_and_spectra_agree_between_the_fused_and_the_candle_model() {
    let (m, c, ds) = pair();
    // FGSM along the χ² ball and PGD in the L2 (χ²) ball: continuous steps, so the perturbed
    // events differ only by the rounding of the two gradient computations (≈10⁻⁶ relative;
    // events are O(1), σ ≤ 1, budget 0.5).
    for (name, values) in [
        (
            "pgd",
            Values::new("pgd")
                .with("norm", Value::Str("l2".into()))
                .with("eps", Value::Float(0.5))
                .with("steps", Value::Int(5))
                .with("step", Value::Float(0.2)),
        ),
        ("minifool", Values::new("minifool").with("steps", Value::Int(10))),
    ] {
        let (a, b) = (attack(name, &m, &ds, values.clone()), attack(name, &c, &ds, values));
        let d = max_diff(&a.attack.x, &b.attack.x);
        assert!(d < 1e-3, "{name}: events differ by {d}");
        assert!(a.attack.flip_fraction() > 0.0, "{name} flips nothing");
        assert!((a.attack.flip_fraction() - b.attack.flip_fraction()).abs() <= 2.0 / 300.0, "{name} flip fractions");
    }
    // FGSM (sign steps): the same events move unless a gradient component is ~0.
    let v = Values::new("fgsm").with("eps", Value::Float(0.3));
    let (a, b) = (attack("fgsm", &m, &ds, v.clone()), attack("fgsm", &c, &ds, v));
    let same = a
        .attack
        .x
        .rows()
        .into_iter()
        .zip(b.attack.x.rows())
        .filter(|(p, q)| p.iter().zip(q.iter()).all(|(u, w)| (u - w).abs() < 1e-4))
        .count();
    assert!(same >= 297, "fgsm: only {same} of 300 events agree");
    // RDSA: the draws depend only on the seed, the classes on the logits' signs.
    let v = Values::new("rdsa").with("steps", Value::Int(10)).with("seed", Value::Int(3));
    let (a, b) = (attack("rdsa", &m, &ds, v.clone()), attack("rdsa", &c, &ds, v));
    assert_eq!(a.attack.x, b.attack.x);
    assert_eq!(a.attack.flipped(), b.attack.flipped());
    // s-scan with MiniFool at two scales: the same flip fractions up to an event per scale.
    let unc = bench_sigma(&ds);
    let scan = |model: &dyn Model| {
        let setup = Setup { model, events: &ds, unc: Some(&unc), purpose: Purpose::Scan };
        let a = configure("minifool", &setup, Values::new("minifool").with("steps", Value::Int(10))).unwrap();
        s_scan(model, ds.x(), ds.label(), a.as_ref(), &[0.5, 2.0], 0, &Control::quiet()).unwrap()
    };
    let (sa, sb) = (scan(&m), scan(&c));
    for (ra, rb) in sa.rows.iter().zip(&sb.rows) {
        assert!((ra.all.p - rb.all.p).abs() <= 1.0 / 300.0 + 1e-12, "s = {}: {} vs {}", ra.s, ra.all.p, rb.all.p);
    }
    // The top Hessian eigenvalue: exact (R-operator) for the fused model, central differences
    // of candle gradients (relative step 10⁻³) for the other; 1 % covers the O(ε²) truncation
    // and the f32 rounding of the differenced gradients.
    let cfg = PowerConfig { k: 1, max_iter: 50, tol: 1e-4, seed: 1 };
    let top = |model: &dyn Model| {
        let op = ModelHessian::from_dataset(model, &ds, None).unwrap();
        power_iteration(&op, &cfg, &Control::quiet()).unwrap().eigenvalues[0]
    };
    let (la, lb) = (top(&m), top(&c));
    assert!(la > 0.0 && ((la - lb) / la).abs() < 1e-2, "top eigenvalue: exact {la}, finite differences {lb}");
}

#[test]
fn training_agrees_and_frozen_groups_stay_bit_identical() {
    let (m, c, ds) = pair();
    // One epoch of SGD without momentum (an update linear in the gradient, so rounding
    // differences of the two gradient paths stay at rounding level) on 300 events.
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 100,
        optimizer: crate::model::Optimizer::Sgd { lr: 0.05, momentum: 0.0 },
        standardize: crate::model::Standardize::Keep,
        seed: 4,
        ..TrainConfig::default()
    };
    let (a, b) = (train(&m, &ds, &cfg, &Control::quiet()).unwrap(), train(&c, &ds, &cfg, &Control::quiet()).unwrap());
    assert_eq!(b.model.kind(), "candle_mlp");
    let (pa, pb) = (a.model.params_flat(), b.model.params_flat());
    let d = pa.iter().zip(&pb).fold(0.0f32, |s, (x, y)| s.max((x - y).abs()));
    assert!(d < 1e-5, "trained weights differ by {d}");
    assert_ne!(pa, m.params_flat(), "training changed nothing");
    assert!((a.history[0].loss - b.history[0].loss).abs() < 1e-5);
    // Freezing layer 1 (of 3): its parameters are bit-identical after training, on both
    // paths; the others move.
    let frozen = TrainConfig { freeze: vec!["layer1".into()], optimizer: crate::model::Optimizer::adam(1e-2), ..cfg };
    for model in [&m as &dyn Model, &c] {
        let r = train(model, &ds, &frozen, &Control::quiet()).unwrap();
        let g = model.param_groups()[1].range.clone();
        let (before, after) = (model.params_flat(), r.model.params_flat());
        assert_eq!(before[g.clone()], after[g.clone()], "{}: frozen group changed", model.kind());
        assert_ne!(before[..g.start], after[..g.start], "{}: layer 0 did not train", model.kind());
    }
    let bad = TrainConfig { freeze: vec!["layer9".into()], ..TrainConfig::default() };
    let e = train(&m, &ds, &bad, &Control::quiet()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "train: option 'freeze' names no parameter group of the model: 'layer9' (its groups: layer0, layer1, layer2)"
    );
}

#[test]
fn models_save_and_load_as_their_own_kind() {
    let (m, c, _) = pair();
    let dir = std::env::temp_dir().join(format!("nuisance-interface-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for model in [&m as &dyn Model, &c] {
        let path = dir.join(format!("{}.safetensors", model.kind()));
        model.save(&path).unwrap();
        let back = load_model(&path).unwrap();
        assert_eq!((back.kind(), back.params_flat()), (model.kind(), model.params_flat()));
        assert_eq!(back.feature_names(), model.feature_names());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
