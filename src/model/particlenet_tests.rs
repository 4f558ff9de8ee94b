//! ParticleNet: the PyTorch fixture, gradients through EdgeConv with kNN against finite
//! differences, permutation invariance, padded slots, save/load, the Lite parameter count,
//! and the attacks running on it.
//!
//! **Finite differences of a ReLU network with kNN.** The logits are piecewise linear in each
//! input and in each single weight (ReLU kinks), and jump where a kNN set switches (two
//! distances tie), so between such events the central difference has no truncation error.
//! Each coordinate is probed with one-sided differences of step h on both sides: where they
//! disagree by more than `SKIP`, an event lies within h and the coordinate is skipped (and
//! counted — at least two thirds must be checked, so the test cannot pass by skipping;
//! with h = 2e-3 the f32 noise alone, ≈ 1e-6/h = 5e-4, is at the skip threshold, so about a
//! quarter of the input coordinates are skipped). Where they
//! agree, an event on one side could still shift their mean by at most `SKIP`/2, and the f32
//! rounding of O(1) logits (≈ 1e-6 after the layers) over h adds ≲ 1e-6/h; so
//! |analytic − fd| ≤ `TOL`·(1 + |fd|) with `TOL` = `SKIP` + 1e-6/h + margin fails on any wrong
//! term (O(0.1)). Inputs use h = 2e-3 (kNN switches are within h of a coordinate more often
//! than kinks), weights h = 1e-2.

use ndarray::Array2;
use rand::Rng as _;

use super::*;
use crate::model::{GradTarget, Model, Targets};

const H_INPUT: f32 = 2e-3;
const H_WEIGHT: f32 = 1e-2;
const SKIP: f32 = 5e-4;
const TOL: f32 = 2e-3;

/// Object features (Δη, Δφ, log pT); coordinates Δη, Δφ; 6 slots.
pub(super) fn layout() -> SetLayout {
    SetLayout::new(vec![], "part", vec!["deta".into(), "dphi".into(), "logpt".into()], 6).unwrap()
}

/// Two blocks (k = 3 then 2, the second with an identity shortcut), fc 5, 2 classes.
fn small(fusion: bool) -> SetModel<ParticleNet> {
    small_with(fusion, 0.0)
}

/// [`small`] with dropout `p` in the fully connected layer.
pub(super) fn small_with(fusion: bool, p: f32) -> SetModel<ParticleNet> {
    let cfg = ParticleNetConfig {
        conv: vec![(3, vec![8, 6]), (2, vec![6])],
        fc: vec![(5, p)],
        points: vec![0, 1],
        fusion,
        n_outputs: 2,
        seed: 4,
    };
    let mut m = particlenet(layout(), &cfg, Output::Softmax).unwrap();
    // Batch norms with non-trivial statistics and a standardisation that is not the identity.
    let mut r = crate::rng::rng(9);
    let store = m.net_mut().store_mut();
    for i in 0..store.buffers().len() {
        let n = store.buffers()[i].shape[0];
        let var = store.buffers()[i].name.ends_with("running_var");
        let v = (0..n).map(|_| if var { r.random_range(0.5..2.0) } else { r.random_range(-0.3..0.3) }).collect();
        store.set_buffer(i, v).unwrap();
    }
    let p: Vec<f32> = m.params().iter().map(|v| v + r.random_range(-0.2..0.2)).collect();
    m.set_params(&p).unwrap();
    m.set_standardization(vec![], vec![], vec![0.0, 0.0, 1.0], vec![0.2, 0.2, 1.5]).unwrap();
    m
}

/// Jets with 0, 1, 3, 5, 6 and 6 (count entry 9, clamped) constituents; padded slots hold
/// garbage that must not matter.
pub(super) fn jets(seed: u64) -> Array2<f32> {
    let mut r = crate::rng::rng(seed);
    let counts = [0usize, 1, 3, 5, 6, 6];
    let mut x = Array2::<f32>::zeros((counts.len(), 1 + 18));
    for (i, &k) in counts.iter().enumerate() {
        x[[i, 0]] = if i == 5 { 9.0 } else { k as f32 };
        for s in 0..6 {
            for j in 0..3 {
                x[[i, 1 + 3 * s + j]] = match (s < k, j) {
                    (false, _) => 55.0,
                    (true, 2) => r.random_range(0.0..4.0),
                    (true, _) => r.random_range(-0.4..0.4),
                };
            }
        }
    }
    x
}

/// Checks `analytic` against one-sided differences of `f` at ±H, skipping kinks; returns
/// (checked, skipped).
pub(super) fn check_fd(analytic: f32, h: f32, f: impl Fn(f32) -> f32, what: &str) -> (usize, usize) {
    let (f0, fp, fm) = (f(0.0), f(h), f(-h));
    let (right, left) = ((fp - f0) / h, (f0 - fm) / h);
    if (right - left).abs() > SKIP * (1.0 + right.abs()) {
        return (0, 1);
    }
    let fd = 0.5 * (right + left);
    assert!((analytic - fd).abs() <= TOL * (1.0 + fd.abs()), "{what}: analytic {analytic} vs fd {fd}");
    (1, 0)
}

#[test]
fn import_reproduces_the_pytorch_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("particlenet_fixture.json")).unwrap()).unwrap();
    let features: Vec<String> = serde_json::from_value(fx["object_features"].clone()).unwrap();
    let layout = SetLayout::new(vec![], "part", features, fx["max_objects"].as_u64().unwrap() as usize).unwrap();
    let config = ParticleNetConfig {
        conv: serde_json::from_value(fx["conv"].clone()).unwrap(),
        fc: serde_json::from_value(fx["fc"].clone()).unwrap(),
        points: serde_json::from_value(fx["points"].clone()).unwrap(),
        fusion: fx["fusion"].as_bool().unwrap(),
        n_outputs: 2,
        seed: 0,
    };
    let spec = ParticleNetImport { layout, config, output: Output::Softmax };
    let m = import_torch_particlenet(&dir.join("particlenet_fixture.safetensors"), &spec).unwrap();
    assert_eq!(m.n_params() as u64, fx["n_params"].as_u64().unwrap());
    let rows: Vec<Vec<f32>> = serde_json::from_value(fx["inputs"].clone()).unwrap();
    let want: Vec<Vec<f64>> = serde_json::from_value(fx["logits"].clone()).unwrap();
    let x = Array2::from_shape_vec((rows.len(), rows[0].len()), rows.concat()).unwrap();
    let z = m.logits(x.view()).unwrap();
    for (i, w) in want.iter().enumerate() {
        for (j, &b) in w.iter().enumerate() {
            // f32 against PyTorch's f32 forward (different summation order): a few ulp of O(1).
            let a = f64::from(z[[i, j]]);
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "jet {i} logit {j}: {a} vs {b}");
        }
    }
    // A configuration that does not match the file is refused.
    let mut bad = spec.clone();
    bad.config.fusion = false;
    let e = import_torch_particlenet(&dir.join("particlenet_fixture.safetensors"), &bad).unwrap_err().to_string();
    assert!(e.contains("fusion_block"), "{e}");
}

#[test]
fn input_gradient_matches_finite_differences_and_is_zero_on_padding() {
    for fusion in [false, true] {
        let m = small(fusion);
        let x = jets(1);
        let g = m.input_grad_and_scores(x.view(), GradTarget::Logit { class: 1 }).unwrap().grad;
        let (mut checked, mut skipped) = (0, 0);
        for i in 0..x.nrows() {
            let k = m.layout().count(x.row(i).as_slice().unwrap());
            for c in 0..x.ncols() {
                if c == 0 || c > 3 * k {
                    assert_eq!(g[[i, c]], 0.0, "padded: jet {i} column {c}");
                    continue;
                }
                let f = |d: f32| {
                    let mut y = x.clone();
                    y[[i, c]] += d;
                    m.logits(y.view()).unwrap()[[i, 1]]
                };
                let (a, b) = check_fd(g[[i, c]], H_INPUT, f, &format!("jet {i} column {c}"));
                (checked, skipped) = (checked + a, skipped + b);
            }
        }
        assert!(checked >= 2 * skipped, "checked {checked}, skipped {skipped}");
    }
}

#[test]
fn weight_gradient_matches_finite_differences() {
    let m = small(false);
    let x = jets(2);
    let labels = [0i64, 1, 1, 0, 1, 0];
    let (loss, g) = m.weight_grad(x.view(), Targets::Labels(&labels), None).unwrap();
    let base = (&m as &dyn Model).loss(x.view(), Targets::Labels(&labels), None).unwrap();
    assert!((loss - base).abs() < 1e-6);
    let p = m.params();
    let (mut checked, mut skipped) = (0, 0);
    for j in 0..p.len() {
        let f = |d: f32| {
            let mut q = p.clone();
            q[j] += d;
            let mut mm = m.clone();
            mm.set_params(&q).unwrap();
            (&mm as &dyn Model).loss(x.view(), Targets::Labels(&labels), None).unwrap() as f32
        };
        let (a, b) = check_fd(g[j], H_WEIGHT, f, &format!("param {j}"));
        (checked, skipped) = (checked + a, skipped + b);
    }
    assert!(checked >= 2 * skipped, "checked {checked}, skipped {skipped}");
}

#[test]
fn permuting_constituents_and_padding_garbage_leave_the_logits_unchanged() {
    let m = small(true);
    let x = jets(3);
    let z = m.logits(x.view()).unwrap();
    let mut y = x.clone();
    // Jet 3 (5 constituents): rotate them by 2 slots; padded slots get other garbage.
    for s in 0..5 {
        for j in 0..3 {
            y[[3, 1 + 3 * s + j]] = x[[3, 1 + 3 * ((s + 2) % 5) + j]];
        }
    }
    for c in 1 + 3 * 5..19 {
        y[[3, c]] = -1e6;
    }
    y[[2, 18]] = f32::NAN;
    let w = m.logits(y.view()).unwrap();
    for i in 0..x.nrows() {
        for j in 0..2 {
            assert!((z[[i, j]] - w[[i, j]]).abs() <= 1e-5 * (1.0 + z[[i, j]].abs()), "jet {i}");
        }
    }
    // The empty jet's logits are the head applied to zeros: the same for any garbage.
    assert!(z.row(0).iter().all(|v| v.is_finite()));
}

#[test]
fn save_load_round_trip_and_lite_size() {
    let m = small(true);
    let path = std::env::temp_dir().join(format!("nuisance_particlenet_{}.safetensors", std::process::id()));
    m.save(&path).unwrap();
    let l = crate::model::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let x = jets(4);
    assert_eq!(l.kind(), "particlenet");
    assert_eq!(l.logits(x.view()).unwrap(), m.logits(x.view()).unwrap());
    // weaver's ParticleNet-Lite on 5 features and 2 classes has 26,220 parameters (printed by
    // scripts/export_particlenet.py's module with these settings).
    let lite_layout = SetLayout::new(vec![], "part", ["a", "b", "c", "d", "e"].map(String::from).to_vec(), 10).unwrap();
    let lite = particlenet(lite_layout, &ParticleNetConfig::lite(), Output::Softmax).unwrap();
    assert_eq!(lite.n_params(), 26_220);
    let e = particlenet(layout(), &ParticleNetConfig { points: vec![3], ..ParticleNetConfig::lite() }, Output::Softmax)
        .unwrap_err()
        .to_string();
    assert!(e.contains("coordinate feature 3 does not exist"), "{e}");
}

#[test]
fn attacks_run_and_keep_counts_and_padding() {
    use crate::attack::{configure, s_scan, FeatureSigma, Purpose, Setup, UncertaintyModel, Value, Values};
    use crate::data::collection::Collection;
    use crate::data::Dataset;
    use crate::optim::Control;
    let x = jets(5);
    let m = small(false);
    // The same jets as a dataset (slots back into a collection).
    let (mut off, mut vals) = (vec![0usize], vec![Vec::new(), Vec::new(), Vec::new()]);
    for row in x.rows() {
        let k = m.layout().count(row.as_slice().unwrap());
        for s in 0..k {
            for (j, v) in vals.iter_mut().enumerate() {
                v.push(row[1 + 3 * s + j]);
            }
        }
        off.push(off[off.len() - 1] + k);
    }
    let names = m.layout().object_features.clone();
    let c = Collection::new("part", off, names.clone(), vals).unwrap();
    let n = x.nrows();
    let ds = Dataset::new(vec!["id".into()], Array2::zeros((n, 1)), Some((0..n as i64).map(|i| i % 2).collect()), None)
        .unwrap()
        .with_collection(c)
        .unwrap();
    let unc = UncertaintyModel::new(vec!["id".into()], vec![FeatureSigma::frozen()])
        .unwrap()
        .with_object_sigma("part.deta", FeatureSigma::absolute(0.05))
        .unwrap()
        .with_object_sigma("part.dphi", FeatureSigma::absolute(0.05))
        .unwrap()
        .with_object_sigma("part.logpt", FeatureSigma::relative(0.1))
        .unwrap();
    let x0 = m.inputs(&ds).unwrap();
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Script };
    for (name, v) in [
        ("fgsm", Values::new("fgsm").with("eps", Value::Float(2.0))),
        ("minifool", Values::new("minifool").with("steps", Value::Int(10))),
    ] {
        let out = configure(name, &setup, v).unwrap().run(&m, x0.view(), ds.label(), &Control::quiet()).unwrap();
        let xa = out.attack.x.view();
        let mut moved = 0;
        for i in 0..n {
            let k = m.layout().count(x0.row(i).as_slice().unwrap());
            for c in 0..x0.ncols() {
                if c == 0 || c > 3 * k {
                    assert_eq!(xa[[i, c]].to_bits(), x0[[i, c]].to_bits(), "{name}: jet {i} column {c}");
                } else if xa[[i, c]] != x0[[i, c]] {
                    moved += 1;
                }
            }
        }
        // FGSM moves every free real entry by ε·σ; MiniFool may find no flip on this
        // untrained net and return the clean jets — it must still keep counts and padding.
        if name == "fgsm" {
            assert!(moved > 0, "{name} moved nothing");
        }
    }
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Scan };
    let a = configure("minifool", &setup, Values::new("minifool").with("steps", Value::Int(10))).unwrap();
    let scan = s_scan(&m, x0.view(), ds.label(), a.as_ref(), &[0.5, 2.0], 1, &Control::quiet()).unwrap();
    assert_eq!(scan.rows.len(), 2);
}

/// Hessian spectra of a ParticleNet take central differences of its exact gradients
/// (`landscape::fd_hessian`, relative step 1e-3; the model has no exact product because the
/// network is not written for double backward). On a ReLU network the Hessian is symmetric
/// and the differences are exact between kinks, so uᵀ(Hv) = vᵀ(Hu) up to the f32 gradient
/// rounding over the step (≈ 1e-7·‖∇L‖/ε ≈ 1e-4 relative here) and the rare kink crossed
/// within the step; 2 % of the magnitude fails on a wrong product (an asymmetric or scaled
/// one is off by O(1)).
#[test]
fn finite_difference_hessian_is_symmetric() {
    use crate::landscape::fd_hessian::FiniteDifferenceHessian;
    use crate::model::HessianProduct as _;
    let m = small(false);
    let x = jets(6);
    let labels = [0i64, 1, 1, 0, 1, 0];
    assert!((&m as &dyn Model).loss_hessian(x.view(), Targets::Labels(&labels), None).is_none());
    let h = FiniteDifferenceHessian::new(&m, x.view(), Targets::Labels(&labels), None).unwrap();
    let mut r = crate::rng::rng(12);
    let n = m.n_params();
    let u: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    let v: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    let (hu, hv) = (h.apply(&u, None).unwrap(), h.apply(&v, None).unwrap());
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum::<f64>();
    let (a, b) = (dot(&u, &hv), dot(&v, &hu));
    assert!(a.abs() > 1e-3, "uᵀHv = {a} is too small to test");
    assert!((a - b).abs() <= 0.02 * (a.abs() + b.abs()), "uᵀHv {a} vs vᵀHu {b}");
}
