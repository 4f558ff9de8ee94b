use ndarray::Array2;
use serde_json::json;

use super::*;
use crate::attack::MiniFoolConfig;
use crate::data::synthetic::{collider, ColliderConfig, COLLIDER_FEATURES};
use crate::model::{Activation, Mlp, MlpConfig, Model};
use crate::rng::Stream;
use crate::systematics::quantity::{Quantity, QuantityKind};
use crate::systematics::theta_grad::model_inputs;
use crate::systematics::{from_json, Prepared, Systematics};

/// Toy collider events with Σ jet pT as its own column, ±1σ alternative columns of pt1, and
/// weights between 0.5 and 1.5.
fn events(n: usize) -> Dataset {
    let ds = collider(&ColliderConfig::new(n, 7)).unwrap();
    let ds = ds.derive("jets_ht", "ht - pt1 - pt2").unwrap();
    let ds = ds.derive("pt1_up", "pt1 * (1.03 + 0.01 * abs(eta1))").unwrap();
    let ds = ds.derive("pt1_dn", "pt1 * 0.98").unwrap();
    let ds = ds.derive("w_up", "1.1 + 0.001 * met").unwrap();
    let w: Vec<f32> = (0..n).map(|i| 0.5 + (i % 11) as f32 / 10.0).collect();
    ds.with_weight(Some(w)).unwrap()
}

/// JES (relative scale through a σ expression), an alternative with code 4 on pt1, a MET
/// smearing, a weight variation (code 1) and a log-normal normalisation; m12, dr12 and ht
/// recomputed.
fn systematics() -> Systematics {
    from_json(&json!({
        "nuisances": [
            { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets_ht"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
            { "name": "alt", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 4 },
            { "name": "MET", "kind": "smear", "targets": ["met"], "sigma": "0.3 * sqrt(ht)", "seed": 3 },
            { "name": "wvar", "kind": "weight", "up": "w_up", "code": 1 },
            { "name": "lumi", "kind": "norm", "size": 0.05 } ],
        "derived": {
            "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
            "dr12": "hypot(eta1 - eta2, dphi(phi1, phi2))",
            "ht": "pt1 + pt2 + jets_ht" } }))
    .unwrap()
}

/// A smooth (tanh) untrained classifier on the 11 collider features, standardised on `ds`.
fn classifier(ds: &Dataset) -> Mlp {
    classifier_seeded(ds, 11)
}

/// [`classifier`] with its weights drawn from `seed` (the fused path's tests use it too).
pub(in crate::systematics) fn classifier_seeded(ds: &Dataset, seed: u64) -> Mlp {
    let names: Vec<String> = COLLIDER_FEATURES.iter().map(|s| s.to_string()).collect();
    let cfg =
        MlpConfig { activation: Activation::Tanh, seed, feature_names: Some(names.clone()), ..MlpConfig::default() };
    let mut m = Mlp::new(&[11, 16, 16, 1], cfg).unwrap();
    m.fit_standardization(&ds.select(&names).unwrap()).unwrap();
    m
}

fn config(method: Method, mode: Mode, k: usize) -> ThetaAttackConfig {
    ThetaAttackConfig {
        method,
        mode,
        chi2: 4.0,
        steps: 20,
        step: None,
        free: vec![true; k],
        minifool: MiniFoolConfig::default(),
        population: Population {
            quantity: Quantity::new(QuantityKind::Yield, None, Some(0.5)).unwrap(),
            temperature: 0.05,
        },
        direction: 1.0,
        target: 0.05,
        tolerance: 1e-3,
    }
}

/// Random θ per event with |θ| in [0.2, 0.9] (away from code 0/4 joins at 0 and ±1).
fn random_theta(n: usize, k: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, k), |(i, j)| {
        let mut s = Stream::new(5, (i * k + j) as u64);
        let v = 0.2 + 0.7 * s.uniform();
        if s.uniform() < 0.5 {
            -v
        } else {
            v
        }
    })
}

#[test]
#[allow(clippy::needless_range_loop)]
fn per_event_theta_gradients_match_finite_differences_through_derived_features() {
    let ds = events(200);
    let s = systematics();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let theta = random_theta(ds.len(), 5);
    // The logit z of every event: ∂z/∂θ by the chain rule against central differences of z
    // recomputed from the varied events (f32-stored inputs: h = 1e-2, tolerance 2e-3).
    let ev = space.event_grad(&theta, GradTarget::Logit { class: 1 }).unwrap();
    let logit = |t: &Array2<f64>| -> Vec<f64> {
        let v = space.vary(Theta::PerEvent(t.view())).unwrap();
        m.logits(model_inputs(&m, &v).unwrap().view()).unwrap().column(0).iter().map(|&z| f64::from(z)).collect()
    };
    let h = 1e-2;
    let mut moved = [0usize; 5];
    for k in 0..5 {
        let (mut tp, mut tm) = (theta.clone(), theta.clone());
        tp.column_mut(k).mapv_inplace(|v| v + h);
        tm.column_mut(k).mapv_inplace(|v| v - h);
        let (zp, zm) = (logit(&tp), logit(&tm));
        for i in 0..ds.len() {
            let fd = (zp[i] - zm[i]) / (2.0 * h);
            let g = ev.grad[[i, k]];
            assert!((g - fd).abs() < 2e-3 * (1.0 + fd.abs()), "event {i} θ{k}: chain rule {g} vs fd {fd}");
            moved[k] += usize::from(g.abs() > 1e-4);
        }
    }
    // JES, the alternative and the MET smearing move the logit (through m12, dr12, ht and
    // met); weight effects never change a score: exactly 0.
    assert!(moved[0] > 150 && moved[1] > 150 && moved[2] > 150, "{moved:?}");
    assert!(ev.grad.column(3).iter().chain(ev.grad.column(4).iter()).all(|g| *g == 0.0));
}

#[test]
fn coherent_theta_gradients_match_finite_differences_for_every_quantity() {
    let ds = events(300);
    let s = systematics();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let (_, scores, _) = space.scores(Theta::Shared(&[0.0; 5])).unwrap();
    let mut sorted: Vec<f32> = scores.column(0).to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = f64::from(sorted[sorted.len() / 2]);
    let theta = [0.4, -0.3, 0.6, 0.5, -0.7];
    for kind in [QuantityKind::Yield, QuantityKind::Efficiency, QuantityKind::MeanScore] {
        let threshold = (kind != QuantityKind::MeanScore).then_some(median);
        let region = Some(crate::data::expr::Expr::parse("m12 > 100").unwrap());
        let pop = Population { quantity: Quantity::new(kind, region, threshold).unwrap(), temperature: 0.05 };
        let v = space.population(&theta, &pop).unwrap();
        let h = 1e-2;
        for k in 0..5 {
            let (mut tp, mut tm) = (theta, theta);
            tp[k] += h;
            tm[k] -= h;
            let fd =
                (space.population(&tp, &pop).unwrap().soft - space.population(&tm, &pop).unwrap().soft) / (2.0 * h);
            // The region is a hard cut: an event crossing m12 = 100 between θ ± h would break
            // the comparison; the tolerance is relative to the quantity's own size.
            let scale = v.soft.abs().max(1e-3);
            assert!(
                (v.grad[k] - fd).abs() < 2e-3 * scale + 2e-3 * fd.abs(),
                "{} θ{k}: chain rule {} vs fd {fd}",
                kind.as_str(),
                v.grad[k]
            );
        }
        // The weight effects move the yield (w changes) but not an efficiency's ratio of
        // the same weights' normalisation: lumi's derivative of the efficiency is 0.
        if kind == QuantityKind::Yield {
            assert!(v.grad[4].abs() > 1e-3 * v.soft, "lumi moves the yield: {}", v.grad[4]);
        } else {
            assert!(v.grad[4].abs() < 1e-9 * (1.0 + v.soft.abs()), "lumi cancels in a ratio: {}", v.grad[4]);
        }
    }
}

/// The JES alone.
fn jes_only() -> Systematics {
    from_json(&json!({
        "nuisances": [
            { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets_ht"], "sigma": 0.05, "relative": true } ],
        "derived": {
            "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
            "ht": "pt1 + pt2 + jets_ht" } }))
    .unwrap()
}

#[test]
fn one_nuisance_coherent_pgd_equals_the_scan_optimum() {
    let ds = events(400);
    let s = jes_only();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    for direction in [1.0, -1.0] {
        let mut cfg = config(Method::Pgd, Mode::Coherent, 1);
        cfg.population.quantity = Quantity::new(QuantityKind::MeanScore, None, None).unwrap();
        cfg.direction = direction;
        cfg.steps = 40;
        let ThetaAttack::Coherent(r) = theta_attack(&space, &cfg, &Control::quiet()).unwrap() else { panic!() };
        assert!(r.chi2 <= cfg.chi2 * (1.0 + 1e-12), "χ² {} over the budget", r.chi2);
        // The scan: θ on a grid of step 0.005 over [−2, 2] (χ² ≤ 4).
        let best = (0..=800)
            .map(|i| -2.0 + 0.005 * i as f64)
            .map(|t| space.population(&[t], &cfg.population).unwrap().hard)
            .fold(f64::NEG_INFINITY, |a, v| a.max(direction * v));
        let got = direction * r.value;
        assert!(got >= best - 1e-5 * best.abs(), "dir {direction}: attack {got} below the scan's optimum {best}");
        assert!(got <= best + 1e-3 * best.abs(), "dir {direction}: attack {got} above every scanned point {best}");
        // The value reported is the quantity recomputed at the reported θ.
        assert_eq!(space.population(&r.theta, &cfg.population).unwrap().hard, r.value);
    }
}

#[test]
fn one_nuisance_smallest_pull_reaching_a_yield_target_equals_the_scan() {
    let ds = events(400);
    let s = jes_only();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let (_, scores, _) = space.scores(Theta::Shared(&[0.0])).unwrap();
    let mut sorted: Vec<f32> = scores.column(0).to_vec();
    sorted.sort_by(f32::total_cmp);
    let mut cfg = config(Method::MiniFool, Mode::Coherent, 1);
    cfg.population.quantity.threshold = Some(f64::from(sorted[sorted.len() * 3 / 4]));
    cfg.chi2 = 9.0;
    for target in [0.05, -0.05] {
        cfg.target = target;
        let ThetaAttack::Coherent(r) = theta_attack(&space, &cfg, &Control::quiet()).unwrap() else { panic!() };
        assert_eq!(r.reached, Some(true), "target {target}");
        assert!(r.relative_change() * target.signum() >= target.abs(), "{} vs {target}", r.relative_change());
        // The scan: the smallest |θ| (grid 0.002 up to 3) whose hard relative change reaches the target.
        let q0 = space.population(&[0.0], &cfg.population).unwrap().hard;
        let first = (1..=1500)
            .map(|i| 0.002 * i as f64)
            .find(|&a| {
                [a, -a].iter().any(|&t| {
                    let q = space.population(&[t], &cfg.population).unwrap().hard;
                    (q - q0) / q0.abs() * target.signum() >= target.abs()
                })
            })
            .unwrap();
        let pull = r.theta[0].abs();
        assert!(pull <= first * (1.0 + cfg.tolerance) + 1e-9, "target {target}: pull {pull} above the scan's {first}");
        assert!(
            pull > first - 0.002,
            "target {target}: pull {pull} below the scan's {first} (no grid point there reaches it)"
        );
    }
}

#[test]
fn per_event_pgd_stays_in_its_chi2_ball_and_moves_only_free_nuisances() {
    let ds = events(300);
    let s = systematics();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let mut cfg = config(Method::Pgd, Mode::Event, 5);
    cfg.chi2 = 2.25;
    cfg.free = vec![true, true, true, false, true];
    let ThetaAttack::Event(r) = theta_attack(&space, &cfg, &Control::quiet()).unwrap() else { panic!() };
    for i in 0..ds.len() {
        assert!(r.chi2[i] <= 2.25 * (1.0 + 1e-12), "event {i}: χ² {}", r.chi2[i]);
        assert_eq!(r.theta[[i, 3]], 0.0);
        let c: f64 = r.theta.row(i).iter().map(|t| t * t).sum();
        assert_eq!(c, r.chi2[i]);
        // 4 attacked nuisances: the χ² tail with 4 dof is (1 + χ²/2)·e^(−χ²/2).
        let p = (1.0 + c / 2.0) * (-c / 2.0).exp();
        assert!((r.p_value[i] - p).abs() < 1e-12);
    }
    // The attack raises the other class's logit: on average the clean class's score falls.
    let push: f64 = (0..ds.len())
        .map(|i| {
            let s = |a: &Array2<f32>| f64::from(a[[i, 0]]);
            if r.clean_class[i] == 1 {
                s(&r.clean_scores) - s(&r.scores)
            } else {
                s(&r.scores) - s(&r.clean_scores)
            }
        })
        .sum();
    assert!(push > 0.0, "{push}");
    assert!(r.flip_fraction() > 0.0);
}

#[test]
fn per_event_minifool_ends_at_a_local_minimum_of_its_cost() {
    let ds = events(150);
    let s = jes_only();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let cfg = config(Method::MiniFool, Mode::Event, 1);
    let ThetaAttack::Event(r) = theta_attack(&space, &cfg, &Control::quiet()).unwrap() else { panic!() };
    let (start, end) = r.cost.clone().unwrap();
    // The cost recomputed from the scores: α·θ²/1 + β·(f_t − 0.5 − margin)², f_t the other
    // class's score (α = β = 1, margin 0.5).
    let cost_at = |t: f64| -> Vec<f64> {
        let theta = Array2::from_elem((ds.len(), 1), t);
        let (_, sc, _) = space.scores(Theta::PerEvent(theta.view())).unwrap();
        (0..ds.len())
            .map(|i| {
                let p = f64::from(sc[[i, 0]]);
                let f = if r.clean_class[i] == 1 { 1.0 - p } else { p };
                t * t + (f - 1.0) * (f - 1.0)
            })
            .collect()
    };
    for i in 0..ds.len() {
        assert!(end[i] <= start[i] + 1e-12, "event {i}: cost rose {} → {}", start[i], end[i]);
    }
    let at0 = cost_at(0.0);
    for i in 0..ds.len() {
        assert!((at0[i] - start[i]).abs() < 1e-5, "event {i}: {} vs {}", at0[i], start[i]);
    }
    // Local minimality: moving the event's θ by ±0.02 or ±0.1 never lowers its cost.
    for d in [0.02, -0.02, 0.1, -0.1] {
        for i in 0..ds.len() {
            let t = r.theta[[i, 0]] + d;
            let mut theta = r.theta.clone();
            theta[[i, 0]] = t;
            let (_, sc, _) = space.scores(Theta::PerEvent(theta.view())).unwrap();
            let p = f64::from(sc[[i, 0]]);
            let f = if r.clean_class[i] == 1 { 1.0 - p } else { p };
            let c = t * t + (f - 1.0) * (f - 1.0);
            assert!(c >= end[i] - 1e-5, "event {i}: θ {} + {d} has cost {c} < {}", r.theta[[i, 0]], end[i]);
        }
    }
}

#[test]
fn per_event_theta_matches_a_shared_theta_event_by_event_and_threads_do_not_matter() {
    let ds = events(50);
    let s = systematics();
    let p = Prepared::new(&ds, &s).unwrap();
    let theta = random_theta(ds.len(), 5);
    let all = p.vary(Theta::PerEvent(theta.view())).unwrap();
    for i in [0, 17, 49] {
        let row = theta.row(i).to_vec();
        let one = p.vary(Theta::Shared(&row)).unwrap();
        assert_eq!(all.x().row(i), one.x().row(i), "event {i}");
        assert_eq!(all.weight().unwrap()[i], one.weight().unwrap()[i]);
    }
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let cfg = config(Method::Pgd, Mode::Event, 5);
    let run = || match theta_attack(&space, &cfg, &Control::quiet()).unwrap() {
        ThetaAttack::Event(r) => r.theta.clone(),
        _ => unreachable!(),
    };
    let a = run();
    let b = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(run);
    assert_eq!(a, b);
}

#[test]
fn bad_settings_are_clear_errors() {
    let ds = events(20);
    let s = jes_only();
    let m = classifier(&ds);
    let space = ThetaSpace::new(&m, &ds, &s).unwrap();
    let err = |cfg: &ThetaAttackConfig| theta_attack(&space, cfg, &Control::quiet()).unwrap_err().to_string();
    let mut cfg = config(Method::Pgd, Mode::Event, 1);
    cfg.chi2 = -1.0;
    assert!(err(&cfg).contains("option 'chi2' must be a finite number > 0, got -1"), "{}", err(&cfg));
    let mut cfg = config(Method::MiniFool, Mode::Coherent, 1);
    cfg.target = 0.0;
    assert!(err(&cfg).contains("a coherent MiniFool needs a relative change ≠ 0"), "{}", err(&cfg));
    let mut cfg = config(Method::Pgd, Mode::Event, 1);
    cfg.free = vec![false];
    assert!(err(&cfg).contains("no nuisance parameter to attack"), "{}", err(&cfg));
    let unnamed = Mlp::new(&[11, 4, 1], MlpConfig::default()).unwrap();
    let e = ThetaSpace::new(&unnamed, &ds, &s).err().unwrap().to_string();
    assert!(e.contains("needs a model that reads event features by name"), "{e}");
}
