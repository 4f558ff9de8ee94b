use ndarray::Array2;
use serde_json::json;

use crate::data::synthetic::{collider, ColliderConfig};
use crate::data::Dataset;
use crate::model::{GradTarget, Mlp, Model};
use crate::rng::Stream;
use crate::systematics::theta_grad::EventValue;
use crate::systematics::{from_json, Systematics, ThetaSpace};

/// 600 collider events (two full blocks of 256 and a partial one), Σ jet pT as a column, ±1σ
/// alternatives of pt1 and a weight variation's up column.
fn events() -> Dataset {
    let ds = collider(&ColliderConfig::new(600, 9)).unwrap();
    let ds = ds.derive("jets_ht", "ht - pt1 - pt2").unwrap();
    let ds = ds.derive("pt1_up", "pt1 * (1.03 + 0.01 * abs(eta1))").unwrap();
    let ds = ds.derive("pt1_dn", "pt1 * 0.98").unwrap();
    ds.derive("w_up", "1.1 + 0.001 * met").unwrap()
}

/// Every effect kind on event columns (scale with a σ expression, code-4 alternative,
/// smearing, η shift, a weight variation and a normalisation), m12, dr12 and ht recomputed
/// (ht read by m12's neighbour and by the MET smearing's σ).
fn systematics(extra: serde_json::Value) -> Systematics {
    let mut nuisances = json!([
        { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets_ht"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
        { "name": "alt", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 4 },
        { "name": "MET", "kind": "smear", "targets": ["met"], "sigma": "0.3 * sqrt(ht)", "seed": 3 },
        { "name": "eta", "kind": "scale", "targets": ["eta1", "eta2"], "sigma": 0.05 },
        { "name": "wvar", "kind": "weight", "up": "w_up", "code": 1 },
        { "name": "lumi", "kind": "norm", "size": 0.05 } ]);
    if let (Some(a), Some(e)) = (nuisances.as_array_mut(), extra.as_object().filter(|e| !e.is_empty())) {
        a.push(serde_json::Value::Object(e.clone()));
    }
    from_json(&json!({
        "nuisances": nuisances,
        "derived": {
            "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
            "dr12": "hypot(eta1 - eta2, dphi(phi1, phi2))",
            "ht": "pt1 + pt2 + jets_ht" } }))
    .unwrap()
}

/// The attack tests' smooth collider classifier, its own seed.
fn classifier(ds: &Dataset) -> Mlp {
    crate::systematics::attack::tests::classifier_seeded(ds, 13)
}

/// θ per event in [−1.5, 1.5] from a seed.
fn theta(n: usize, k: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, k), |(i, j)| 3.0 * Stream::new(21, (i * k + j) as u64).uniform() - 1.5)
}

/// A per-event objective as the PGD's: the signed logit, its sign from the row index.
fn objective(i: usize, z: &[f32], g: &mut [f32]) -> f32 {
    let s = if i % 3 == 0 { -1.0 } else { 1.0 };
    g[0] = s;
    s * z[0]
}

fn assert_same(a: &EventValue, b: &EventValue) {
    assert_eq!(a.value, b.value);
    assert_eq!(a.scores, b.scores);
    assert_eq!(a.classes, b.classes);
    assert_eq!(a.grad, b.grad);
}

#[test]
fn the_fused_gradient_equals_the_dataset_path_bit_for_bit_on_any_threads() {
    // The dataset path (varied dataset rebuilt, derived features recomputed, the model on its
    // inputs, the chain rule) is checked against finite differences in attack_tests; the fused
    // path must give its values, scores, classes and θ gradients to the bit.
    let ds = events();
    let s = systematics(json!({}));
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let th = theta(ds.len(), 6);
    let obj = objective;
    let target = GradTarget::Custom(&obj);
    let fused = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| super::event_grad(&m, space.prepared(), &m.input_names(), space.base().unwrap(), &th, &target))
            .expect("the fused path applies")
    };
    let one = fused(1);
    let reference = space.event_grad_dataset(&th, None, target).unwrap();
    assert_same(&one, &reference);
    assert_same(&fused(2), &one);
    // θ moves the logit through JES, alt, MET and η (not through the weight): the test is
    // not vacuous.
    for k in 0..4 {
        assert!(one.grad.column(k).iter().filter(|g| g.abs() > 1e-6).count() > 500, "θ{k}");
    }
    assert!(one.grad.column(4).iter().chain(one.grad.column(5).iter()).all(|g| *g == 0.0));
    // and the public entry takes it
    assert_same(&space.event_grad(&th, target).unwrap(), &one);
}

#[test]
fn where_the_reference_drops_a_zero_derivative_or_errs_the_fused_path_gives_way() {
    let ds = events();
    let m = classifier(&ds);
    let obj = objective;
    let target = GradTarget::Custom(&obj);
    // σ = 0 on every event: the reference drops the derivative (None), a block cannot know
    // it is 0 everywhere; the fused path declines and the result is the reference's.
    let s = systematics(
        json!({ "name": "nil", "kind": "scale", "targets": ["pt2"], "sigma": "0 * pt2", "relative": true }),
    );
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let th = theta(ds.len(), 7);
    let base = space.base().unwrap();
    assert!(super::event_grad(&m, space.prepared(), &m.input_names(), base, &th, &target).is_none());
    assert_same(&space.event_grad(&th, target).unwrap(), &space.event_grad_dataset(&th, None, target).unwrap());
    // A pull that makes m12's argument negative (pt2·(1 + θ·σ) < 0) is the reference's error.
    let s = systematics(json!({ "name": "big", "kind": "scale", "targets": ["pt2"], "sigma": 1.0, "relative": true }));
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let mut th = Array2::<f64>::zeros((ds.len(), 7));
    th[[300, 6]] = -3.0;
    let base = space.base().unwrap();
    assert!(super::event_grad(&m, space.prepared(), &m.input_names(), base, &th, &target).is_none());
    let e = space.event_grad(&th, target).unwrap_err().to_string();
    assert!(e.contains("m12"), "{e}");
}
