//! Tests of `vary.rs`, `prepared.rs` and `derived.rs`.

use super::*;
use crate::data::Collection;
use crate::systematics::{from_json, Code};
use ndarray::array;
use serde_json::json;

/// Two events: pt1, eta1, phi1, pt2, eta2, phi2, and up/down columns of pt1; jets with
/// pt and phi (2 jets, then 1).
fn events() -> Dataset {
    let x = array![[50.0f32, 0.5, 0.1, 40.0, -1.0, 2.0, 52.0, 49.0], [80.0, -1.5, -2.0, 30.0, 0.2, 1.0, 83.0, 78.0]];
    let names = ["pt1", "eta1", "phi1", "pt2", "eta2", "phi2", "pt1_up", "pt1_dn"];
    let ds =
        Dataset::new(names.iter().map(|s| s.to_string()).collect(), x, Some(vec![0, 1]), Some(vec![1.0, 2.0])).unwrap();
    let c = Collection::new(
        "jets",
        vec![0, 2, 3],
        vec!["pt".into(), "phi".into()],
        vec![vec![30.0, 45.0, 60.0], vec![0.3, -1.2, 2.5]],
    )
    .unwrap();
    ds.with_collection(c).unwrap()
}

fn model(v: serde_json::Value) -> Systematics {
    from_json(&v).unwrap()
}

fn col(ds: &Dataset, c: &str) -> Vec<f64> {
    ds.column(c).unwrap().iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn linear_nuisance_at_plus_minus_one_sigma_is_the_analytic_shift() {
    // relative σ(η) = 0.02 + 0.01·|η|: pt1 = 50 at η 0.5 → σ = 0.025 → ±1.25; pt1 = 80 at
    // η −1.5 → σ = 0.035 → ±2.8. Absolute shift of met-like pt2 by 3: ±3.
    let s = model(json!({ "nuisances": [
            { "name": "JES", "kind": "scale", "targets": ["pt1"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
            { "name": "shift", "kind": "scale", "targets": ["pt2"], "sigma": 3 } ] }));
    let ds = events();
    let up = vary(&ds, &s, &[1.0, 1.0]).unwrap();
    let dn = vary(&ds, &s, &[-1.0, -1.0]).unwrap();
    let close = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4);
    assert!(close(col(&up, "pt1"), vec![51.25, 82.8]), "{:?}", col(&up, "pt1"));
    assert!(close(col(&dn, "pt1"), vec![48.75, 77.2]));
    assert!(close(col(&up, "pt2"), vec![43.0, 33.0]));
    assert!(close(col(&dn, "pt2"), vec![37.0, 27.0]));
    // the other columns, labels and weights are untouched
    assert_eq!(col(&up, "eta1"), col(&ds, "eta1"));
    assert_eq!(up.weight(), ds.weight());
    assert_eq!(vary(&ds, &s, &[0.0, 0.0]).unwrap().x(), ds.x());
}

#[test]
fn uncertainty_model_is_one_linear_nuisance_per_feature() {
    use crate::attack::{FeatureSigma, UncertaintyModel};
    let ds = events();
    let spec = FeatureSigma { absolute: 1.0, relative: 0.1, floor: 0.0, frozen: false };
    let u = UncertaintyModel::new(ds.names().to_vec(), vec![spec; 8]).unwrap();
    let s = Systematics::from_uncertainty(&u).unwrap();
    assert_eq!(s.nuisances().len(), 8);
    // θ(pt2) = 1: pt2 moves by σ(pt2) of the per-feature model, √(1 + (0.1·x)²)
    let theta = s.theta(&[("pt2".into(), 1.0)]).unwrap();
    let v = vary(&ds, &s, &theta).unwrap();
    let sigma = u.sigma(ds.x());
    for i in 0..2 {
        let got = f64::from(v.x()[[i, 3]] - ds.x()[[i, 3]]);
        assert!((got - f64::from(sigma[[i, 3]])).abs() < 1e-4, "{got} vs {}", sigma[[i, 3]]);
    }
}

#[test]
fn derived_features_equal_a_direct_recomputation_from_the_varied_inputs() {
    let s = model(json!({
            "nuisances": [
                { "name": "JES", "effects": [
                    { "kind": "scale", "targets": ["pt1", "pt2", "jets.pt"], "sigma": 0.03, "relative": true } ] },
                { "name": "JER", "kind": "smear", "targets": ["pt2"], "sigma": 0.1, "relative": true, "seed": 4 } ],
            "derived": {
                "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
                "ht": "pt1 + pt2 + sum(jets.pt)",
                "mex": "-(pt1 * cos(phi1) + pt2 * cos(phi2) + sum(jets.px))",
                "jets.px": "pt * cos(phi)",
                "r": "m12 / ht" } }));
    let ds = events();
    let v = vary(&ds, &s, &[0.7, -1.3]).unwrap();
    // Recompute by hand from the varied inputs.
    let (pt1, pt2) = (col(&v, "pt1"), col(&v, "pt2"));
    let (e1, e2, p1, p2) = (col(&ds, "eta1"), col(&ds, "eta2"), col(&ds, "phi1"), col(&ds, "phi2"));
    let jets = v.collection("t", "jets").unwrap();
    let jpt: Vec<f64> = jets.values("pt").unwrap().iter().map(|&x| f64::from(x)).collect();
    let jphi: Vec<f64> = jets.values("phi").unwrap().iter().map(|&x| f64::from(x)).collect();
    // jets.pt scaled by 1 + 0.7·0.03 = 1.021 (JES only: JER acts on pt2)
    assert!((jpt[0] - 30.0 * 1.021).abs() < 1e-4);
    let off = [0usize, 2, 3];
    for i in 0..2 {
        let dphi = p1[i] - p2[i];
        let m12 = (2.0 * pt1[i] * pt2[i] * ((e1[i] - e2[i]).cosh() - dphi.cos())).sqrt();
        let jets_ht: f64 = jpt[off[i]..off[i + 1]].iter().sum();
        let jets_px: f64 = (off[i]..off[i + 1]).map(|k| jpt[k] * jphi[k].cos()).sum();
        let mex = -(pt1[i] * p1[i].cos() + pt2[i] * p2[i].cos() + jets_px);
        let ht = pt1[i] + pt2[i] + jets_ht;
        for (name, want) in [("m12", m12), ("ht", ht), ("mex", mex), ("r", m12 / ht)] {
            let got = col(&v, name)[i];
            assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{name}[{i}]: {got} vs {want}");
        }
    }
    // pt2 is smeared: it moved, and the same seed gives the same numbers
    assert_ne!(col(&v, "pt2")[0] as f32, 40.0 * 1.021);
    assert_eq!(vary(&ds, &s, &[0.7, -1.3]).unwrap().x(), v.x());
}

#[test]
fn smearing_is_seeded_per_event_and_independent_of_threads() {
    // 5000 events: the draws z = (x(θ=1) − x⁰)/(σ·x⁰) have mean ≈ 0 and variance ≈ 1.
    let n = 5000;
    let x = ndarray::Array2::from_shape_fn((n, 1), |(i, _)| 10.0 + i as f32 * 0.01);
    let ds = Dataset::new(vec!["pt".into()], x, None, None).unwrap();
    let s = model(
        json!({ "nuisances": [{ "name": "JER", "kind": "smear", "targets": ["pt"], "sigma": 0.1, "relative": true, "seed": 9 }] }),
    );
    let a = vary(&ds, &s, &[1.0]).unwrap();
    let b = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| vary(&ds, &s, &[1.0]).unwrap());
    assert_eq!(a.x(), b.x());
    let z: Vec<f64> =
        (0..n).map(|i| f64::from(a.x()[[i, 0]] - ds.x()[[i, 0]]) / (0.1 * f64::from(ds.x()[[i, 0]]))).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    // 5σ bounds: mean ± 5/√5000 = 0.07, variance ± 5·√(2/5000) = 0.1
    assert!(mean.abs() < 0.07 && (var - 1.0).abs() < 0.1, "mean {mean} var {var}");
    // θ = 2 doubles the same shift
    let c = vary(&ds, &s, &[2.0]).unwrap();
    let d0 = f64::from(a.x()[[7, 0]] - ds.x()[[7, 0]]);
    assert!((f64::from(c.x()[[7, 0]] - ds.x()[[7, 0]]) - 2.0 * d0).abs() < 1e-4);
}

#[test]
fn alternatives_and_weights_follow_their_codes() {
    let s = model(json!({ "nuisances": [
            { "name": "alt", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 0 },
            { "name": "w", "kind": "weight", "up": "pt1_up", "down": "pt1_dn", "code": 1 },
            { "name": "lumi", "kind": "norm", "size": 0.1 } ] }));
    let ds = events();
    // code 0 at θ = 0.5: 50 + 0.5·2 = 51; 80 + 0.5·3 = 81.5
    let v = vary(&ds, &s, &[0.5, 0.0, 0.0]).unwrap();
    assert_eq!(col(&v, "pt1"), vec![51.0, 81.5]);
    // weights are 1, 2: as nominal w⁰ with up/down columns pt1_up/pt1_dn, code 1 at θ = −1
    // gives the down column exactly: 49, 78; times the log-normal norm 1.1^2 at θ = 2.
    let v = vary(&ds, &s, &[0.0, -1.0, 2.0]).unwrap();
    let w = v.weight().unwrap();
    assert!((f64::from(w[0]) - 49.0 * 1.21).abs() < 1e-3 && (f64::from(w[1]) - 78.0 * 1.21).abs() < 1e-3, "{w:?}");
    assert_eq!(Code::from_number(1).unwrap(), Code::Exponential);
}

#[test]
fn tangents_match_finite_differences() {
    let s = model(json!({ "nuisances": [
            { "name": "JES", "effects": [
                { "kind": "scale", "targets": ["pt1", "jets.pt"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
                { "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 4 } ] },
            { "name": "JER", "kind": "smear", "targets": ["pt1"], "sigma": 0.1, "relative": true, "seed": 2 },
            { "name": "alt", "kind": "alternative", "nominal": ["pt2"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 2 },
            { "name": "w", "kind": "weight", "up": "pt1_up", "down": "pt1_dn", "code": 4 },
            { "name": "lumi", "kind": "norm", "size": 0.05, "prior": "gaussian" } ] }));
    let ds = events();
    let theta = [0.4, -0.6, 0.3, 0.7, -0.5];
    for k in 0..theta.len() {
        let (_, tan) = vary_with_tangent(&ds, &s, &theta, k).unwrap();
        let h = 1e-3;
        let (mut tp, mut tm) = (theta, theta);
        tp[k] += h;
        tm[k] -= h;
        // f64 values before the f32 rounding of the dataset: recompute through the tangent
        // API's own values at θ ± h (its columns are the same targets in the same order).
        let at = |t: &[f64]| {
            let v = Prepared::new(&ds, &s).unwrap().run(&Theta::Shared(t), &[]).unwrap();
            (v.x, v.weight.map(|w| w.0))
        };
        let ((cp, wp), (cm, wm)) = (at(&tp), at(&tm));
        for (j, (target, d)) in tan.columns.iter().enumerate() {
            for i in 0..d.len() {
                let fd = (cp[j][i] - cm[j][i]) / (2.0 * h);
                assert!((d[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()), "θ{k} {}[{i}]: {} vs {fd}", target.name(), d[i]);
            }
        }
        if let (Some(d), Some(wp), Some(wm)) = (&tan.weight, wp, wm) {
            for i in 0..d.len() {
                let fd = (wp[i] - wm[i]) / (2.0 * h);
                assert!((d[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()), "θ{k} weight[{i}]: {} vs {fd}", d[i]);
            }
        }
    }
}

#[test]
fn derived_feature_tangents_match_finite_differences() {
    let s = model(json!({
            "nuisances": [
                { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets.pt"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
                { "name": "phi", "kind": "scale", "targets": ["phi1", "jets.phi"], "sigma": 0.3 } ],
            "derived": {
                "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
                "ht": "pt1 + pt2 + sum(jets.pt)",
                "jets.px": "pt * cos(phi) + 0 * pt1",
                "mex": "-(pt1 * cos(phi1) + sum(jets.px))",
                "r": "m12 / ht + atan2(mex, ht)" } }));
    let ds = events();
    let theta = [0.6, -0.4];
    for k in 0..2 {
        let (_, tan) = vary_with_tangent(&ds, &s, &theta, k).unwrap();
        assert_eq!(tan.derived.len(), 5);
        // f32-stored inputs: h = 1e-2, relative tolerance 2e-3 (the functions are smooth here).
        let h = 1e-2;
        let (mut tp, mut tm) = (theta, theta);
        tp[k] += h;
        tm[k] -= h;
        let (vp, vm) = (vary(&ds, &s, &tp).unwrap(), vary(&ds, &s, &tm).unwrap());
        for (target, d) in &tan.derived {
            let (p, m): (Vec<f64>, Vec<f64>) = match target {
                Target::Column(c) => (col(&vp, c), col(&vm, c)),
                Target::Object { coll, feature } => {
                    let f = |v: &Dataset| {
                        v.collection("t", coll)
                            .unwrap()
                            .values(feature)
                            .unwrap()
                            .iter()
                            .map(|&x| f64::from(x))
                            .collect()
                    };
                    (f(&vp), f(&vm))
                }
            };
            for i in 0..d.len() {
                let fd = (p[i] - m[i]) / (2.0 * h);
                assert!(
                    (d[i] - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "θ{k} {}[{i}]: {} vs fd {fd}",
                    target.name(),
                    d[i]
                );
            }
            assert!(k != 0 || target.name() != "m12" || d.iter().all(|v| v.abs() > 0.1), "JES moves m12: {d:?}");
        }
    }
}

#[test]
fn bad_definitions_against_the_data_are_clear_errors() {
    let ds = events();
    let msg = |v: serde_json::Value| {
        vary(&ds, &model(v.clone()), &vec![0.0; v["nuisances"].as_array().map_or(0, |a| a.len())])
            .unwrap_err()
            .to_string()
    };
    let e = msg(json!({ "nuisances": [{ "name": "JES", "kind": "scale", "targets": ["pt3"], "sigma": 0.1 }] }));
    assert!(e.starts_with("vary: unknown column 'pt3'; available: pt1, eta1"), "{e}");
    let e = msg(
        json!({ "nuisances": [{ "name": "a", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_JES_up"], "down": ["pt1_dn"] }] }),
    );
    assert!(e.starts_with("vary: unknown column 'pt1_JES_up'"), "{e}");
    let e = msg(json!({ "nuisances": [{ "name": "w", "kind": "weight", "up": "w_up" }] }));
    assert!(e.starts_with("vary: unknown column 'w_up'"), "{e}");
    let e = msg(json!({ "nuisances": [{ "name": "j", "kind": "scale", "targets": ["jets.eta"], "sigma": 0.1 }] }));
    assert!(e.contains("unknown column 'jets.eta'"), "{e}");
    let e = msg(json!({ "derived": { "m12": "pt1 * ptt2" } }));
    assert!(e.starts_with("vary: unknown column 'ptt2'"), "{e}");
    let e = msg(json!({ "nuisances": [{ "name": "n", "kind": "scale", "targets": ["pt1"], "sigma": "eta1" }] }));
    assert!(e.contains("σ of 'pt1' must be ≥ 0 and finite, got -1.5 at row 1"), "{e}");
    let e = msg(
        json!({ "nuisances": [{ "name": "n", "kind": "scale", "targets": ["m"], "sigma": 1 }], "derived": { "m": "pt1" } }),
    );
    assert!(e.contains("varies 'm', a derived feature"), "{e}");
}

#[test]
fn columns_without_a_dataset_equal_the_point_through_the_dataset() {
    // Per-event θ on a flat model (event columns only, derived features without sums): the
    // values and tangents `columns` gives must be those of `point` (which rebuilds the
    // dataset and recomputes the derived features), bit for bit.
    let s = model(json!({
        "nuisances": [
            { "name": "JES", "effects": [
                { "kind": "scale", "targets": ["pt1", "pt2"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
                { "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 4 } ] },
            { "name": "JER", "kind": "smear", "targets": ["pt2"], "sigma": 0.1, "relative": true, "seed": 2 },
            { "name": "phi", "kind": "scale", "targets": ["phi1"], "sigma": 0.3 },
            { "name": "lumi", "kind": "norm", "size": 0.05 } ],
        "derived": {
            "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
            "ht": "pt1 + pt2",
            "r": "m12 / ht + atan2(phi1, ht)" } }));
    let ds = events();
    let p = Prepared::new(&ds, &s).unwrap();
    assert!(p.flat());
    let theta = ndarray::array![[0.4, -0.6, 0.3, 0.7], [-1.2, 0.5, -0.8, 0.1]];
    let cols = p.columns(Theta::PerEvent(theta.view())).unwrap().unwrap();
    let point = p.point(Theta::PerEvent(theta.view())).unwrap();
    assert_eq!(cols.tangents, point.tangents);
    for name in ["pt1", "pt2", "phi1", "m12", "ht", "r"] {
        assert_eq!(cols.value(name).unwrap(), &col(&point.data, name)[..], "{name}");
    }
    // an object target makes the model non-flat: the dataset path is the only one
    let o = model(json!({ "nuisances": [{ "name": "j", "kind": "scale", "targets": ["jets.pt"], "sigma": 0.1 }] }));
    assert!(Prepared::new(&ds, &o).unwrap().columns(Theta::Shared(&[0.5])).unwrap().is_none());
}
