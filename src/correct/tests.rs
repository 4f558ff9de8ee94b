use super::distance::Distance;
use super::*;
use crate::data::synthetic::gaussians;
use crate::data::Dataset;
use crate::model::{Convergence, GradTarget, Model, Optimizer, TrainConfig};
use crate::optim::Control;
use ndarray::Array2;

fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn sample_target(feature: &str, values: Vec<f32>) -> Target {
    Target { feature: feature.into(), shape: Shape::Samples { values, weights: None } }
}

fn hist_target() -> Target {
    Target {
        feature: "x0".into(),
        shape: Shape::Histogram {
            edges: vec![-2.0, -1.0, 0.0, 0.5, 1.0, 2.5],
            counts: vec![10.0, 30.0, 25.0, 20.0, 15.0],
            errors: vec![3.0, 5.0, 5.0, 4.5, 4.0],
        },
    }
}

/// Every distance's gradient against central differences of its value (f64), with weights,
/// for a sample target and a histogram target.
#[test]
fn distance_gradients_match_finite_differences() {
    let u = lcg(7, 200);
    let t: Vec<f64> = u[..40].iter().map(|v| 3.0 * v - 1.2).collect();
    let w: Vec<f64> = u[40..80].iter().map(|v| 0.5 + v).collect();
    let sample: Vec<f32> = u[80..200].iter().map(|v| (2.5 * v - 1.0) as f32).collect();
    for target in [sample_target("x0", sample), hist_target()] {
        let p = target.prepare().unwrap();
        for d in [Distance::Wasserstein, Distance::Chi2 { smoothing: 0.7 }, Distance::Mmd { bandwidth: 0.4 }] {
            let mut g = vec![0.0; t.len()];
            d.eval(&t, &w, &p, 0.8, &mut g);
            let h = 1e-6;
            for i in 0..t.len() {
                let (mut a, mut b) = (t.clone(), t.clone());
                a[i] += h;
                b[i] -= h;
                let mut s = vec![0.0; t.len()];
                let fd = (d.eval(&a, &w, &p, 0.8, &mut s) - d.eval(&b, &w, &p, 0.8, &mut s)) / (2.0 * h);
                assert!((fd - g[i]).abs() <= 1e-6 * (1.0 + fd.abs()), "{d:?} event {i}: analytic {} vs fd {fd}", g[i]);
            }
        }
    }
}

/// Zero distance at the target itself: a sample matched to its own quantiles gives W₂ = 0.
#[test]
fn wasserstein_of_a_sample_to_itself_is_zero() {
    let v: Vec<f32> = lcg(3, 100).iter().map(|x| *x as f32).collect();
    let p = sample_target("x0", v.clone()).prepare().unwrap();
    let t: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    let mut g = vec![0.0; t.len()];
    assert!(Distance::Wasserstein.eval(&t, &vec![1.0; t.len()], &p, 1.0, &mut g) < 1e-12);
}

fn quick_config(lambda: f64, epochs: usize) -> CorrectConfig {
    CorrectConfig {
        lambda,
        hidden: vec![16],
        train: TrainConfig {
            epochs,
            batch_size: 512,
            optimizer: Optimizer::adam(1e-2),
            seed: 3,
            ..TrainConfig::default()
        },
        converge: None,
        ..CorrectConfig::default()
    }
}

fn shifted(ds: &Dataset, feature: &str, by: f32) -> Vec<f32> {
    ds.column(feature).unwrap().iter().map(|v| v + by).collect()
}

/// A pure shift a between simulation and target on one feature: for a constant shift c the
/// loss is (c − a)²/σ² + λc²/σ² (W₂² of a shifted copy plus the closeness term), minimised at
/// c* = a/(1 + λ); the correction recovers it, and a feature without a target barely moves.
#[test]
fn a_pure_shift_is_recovered() {
    let sim = gaussians(4000, 1).select(&["x0".into(), "x1".into(), "x2".into()]).unwrap();
    let truth = gaussians(4000, 2);
    let a = 0.6f32;
    let targets = vec![
        TargetSpec {
            target: sample_target("x0", shifted(&truth, "x0", a)),
            distance: Distance::Wasserstein,
            weight: 1.0,
        },
        TargetSpec {
            target: sample_target("x1", shifted(&truth, "x1", 0.0)),
            distance: Distance::Wasserstein,
            weight: 1.0,
        },
    ];
    let lambda = 0.05;
    let f = fit(&sim, &targets, &quick_config(lambda, 40), &Control::quiet()).unwrap();
    let out = f.correction.apply(&sim).unwrap();
    let mean_shift = |c: &str| {
        let (x0, x1) = (sim.column(c).unwrap(), out.column(c).unwrap());
        x0.iter().zip(x1).map(|(a, b)| f64::from(b - a)).sum::<f64>() / x0.len() as f64
    };
    // σ of the samples cancels: c* = a/(1 + λ) = 0.5714; the sim/truth sample difference
    // (two draws of 4000) moves the optimum by ~ 1/√4000 ≈ 0.016.
    let expect = f64::from(a) / (1.0 + lambda);
    assert!((mean_shift("x0") - expect).abs() < 0.04, "shift {} vs {expect}", mean_shift("x0"));
    assert!(mean_shift("x1").abs() < 0.04, "{}", mean_shift("x1"));
    assert!(mean_shift("x2").abs() < 0.04, "{}", mean_shift("x2"));
}

/// With a very large λ the closeness term dominates: the transform stays the identity.
#[test]
fn a_large_lambda_keeps_the_identity() {
    let sim = gaussians(2000, 1).select(&["x0".into(), "x1".into()]).unwrap();
    let truth = gaussians(2000, 2);
    let targets = vec![TargetSpec {
        target: sample_target("x0", shifted(&truth, "x0", 1.0)),
        distance: Distance::Wasserstein,
        weight: 1.0,
    }];
    let f = fit(&sim, &targets, &quick_config(1e5, 10), &Control::quiet()).unwrap();
    let out = f.correction.apply(&sim).unwrap();
    // optimum c* = a/(1 + λ) = 1e-5 σ against the 1 σ the target asks for; Adam's steps
    // (lr 1e-2 on each weight) leave a jitter of the order of the step around it.
    let d: Vec<f32> = sim.x().iter().zip(out.x().iter()).map(|(a, b)| b - a).collect();
    let worst = d.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mean = d.iter().sum::<f32>() / d.len() as f32;
    assert!(worst < 0.02 && mean.abs() < 5e-3, "max |T(x) − x| = {worst}, mean {mean}");
}

#[test]
fn a_new_correction_is_the_identity_and_survives_save_and_load() {
    let sim = gaussians(300, 4).select(&["x0".into(), "x1".into(), "x2".into()]).unwrap();
    let derived = vec![("x2".to_string(), "x0 + x1".to_string())];
    let c = Correction::new(
        sim.names().to_vec(),
        &[8],
        crate::model::Activation::Tanh,
        vec![1.0; 3],
        vec![true; 3],
        derived,
        1,
    )
    .unwrap();
    let t = c.transform(sim.x()).unwrap();
    assert_eq!(t, sim.x().to_owned());
    assert!(!c.moves()[2], "a derived feature never moves");
    // apply recomputes the derived feature from the (unchanged) inputs.
    let out = c.apply(&sim).unwrap();
    let x2: Vec<f32> = out.column("x2").unwrap().to_vec();
    let want: Vec<f32> = sim.column("x0").unwrap().iter().zip(sim.column("x1").unwrap()).map(|(a, b)| a + b).collect();
    assert_eq!(x2, want);
    let path = std::env::temp_dir().join(format!("nuisance_correction_{}.safetensors", std::process::id()));
    let mut trained = c.clone();
    let mut p = trained.params();
    p.iter_mut().enumerate().for_each(|(i, v)| *v += 0.01 * (i % 7) as f32);
    trained.set_params(&p).unwrap();
    trained.save(&path).unwrap();
    let back = crate::model::load_model(&path).unwrap();
    assert_eq!(back.kind(), "correction");
    assert_eq!(back.logits(sim.x()).unwrap(), trained.transform(sim.x()).unwrap());
    let _ = std::fs::remove_file(&path);
    let missing = sim.select(&["x0".into(), "x1".into()]).unwrap();
    let e = c.apply(&missing).unwrap_err().to_string();
    assert!(e.contains("lacks feature(s) 'x2'"), "{e}");
}

/// The correction's input gradient (through the model interface) against central differences.
#[test]
fn correction_input_gradient_matches_finite_differences() {
    let sim = gaussians(5, 4).select(&["x0".into(), "x1".into()]).unwrap();
    let mut c = Correction::new(
        sim.names().to_vec(),
        &[6],
        crate::model::Activation::Tanh,
        vec![0.5, 2.0],
        vec![true, true],
        vec![],
        1,
    )
    .unwrap();
    let p: Vec<f32> = c.params().iter().enumerate().map(|(i, v)| v + 0.05 * ((i % 5) as f32 - 2.0)).collect();
    c.set_params(&p).unwrap();
    let g = c.input_grad_and_scores(sim.x(), GradTarget::Score { class: 1 }).unwrap();
    let h = 1e-2f32;
    for i in 0..5 {
        for j in 0..2 {
            let (mut a, mut b) = (sim.x().to_owned(), sim.x().to_owned());
            a[[i, j]] += h;
            b[[i, j]] -= h;
            let fd = (c.transform(a.view()).unwrap()[[i, 1]] - c.transform(b.view()).unwrap()[[i, 1]]) / (2.0 * h);
            assert!((fd - g.grad[[i, j]]).abs() < 2e-3, "event {i} feature {j}: {} vs {fd}", g.grad[[i, j]]);
        }
    }
}

/// Quantile morphing maps the simulation's own quantiles onto the target's exactly:
/// F_sim(x₍ᵢ₎) = uᵢ on its own points, so the morphed value is Q_target(uᵢ).
#[test]
fn quantile_morphing_reproduces_target_quantiles_exactly() {
    let sim = gaussians(500, 5);
    let truth = gaussians(700, 6);
    let target = sample_target("x0", shifted(&truth, "x0", 0.3).iter().map(|v| v * 1.5).collect());
    let m = quantile_morph(&sim, std::slice::from_ref(&target)).unwrap();
    let out = m.apply(&sim).unwrap();
    let p = target.prepare().unwrap();
    let mut v: Vec<f32> = out.column("x0").unwrap().to_vec();
    v.sort_by(f32::total_cmp);
    for (i, x) in v.iter().enumerate() {
        let want = p.quantile((i as f64 + 0.5) / 500.0) as f32;
        assert!((x - want).abs() <= 1e-5 * (1.0 + want.abs()), "quantile {i}: {x} vs {want}");
    }
    // the other features are untouched
    assert_eq!(out.column("x1").unwrap(), sim.column("x1").unwrap());
}

/// Raking converges: every target histogram's fractions are reached within the tolerance.
#[test]
fn raking_converges_to_the_target_marginals() {
    let sim = gaussians(5000, 8);
    let truth = gaussians(5000, 9);
    // Targets the simulation's events can reach: its own values reweighted by exp(0.3·x0)
    // (for x0) and by 1 + 0.2·x1² (for x1), so every target bin has simulated events.
    let reweighted = |f: &str, w: &dyn Fn(f32) -> f32| Target {
        feature: f.into(),
        shape: Shape::Samples {
            values: sim.column(f).unwrap().to_vec(),
            weights: Some(sim.column(f).unwrap().iter().map(|&v| w(v)).collect()),
        },
    };
    let targets = vec![reweighted("x0", &|v| (0.3 * v).exp()), reweighted("x1", &|v| 1.0 + 0.2 * v * v)];
    let _ = truth;
    let r = rake(&sim, &targets, 1e-4, 500).unwrap();
    assert!(r.converged, "max deviation {}", r.max_deviation);
    let w = sim.with_weight(Some(r.weights.clone())).unwrap();
    for t in &targets {
        let p = t.prepare().unwrap();
        let (c, _) = validate::binned(&w, &t.feature, &p.edges).unwrap();
        let total: f64 = c.iter().sum();
        for (a, b) in c.iter().zip(&p.fractions) {
            assert!((a / total - b).abs() < 1e-4, "{}: {} vs {b}", t.feature, a / total);
        }
    }
    let s0: f64 = sim.weights_or_ones().iter().map(|&v| f64::from(v)).sum();
    let s1: f64 = r.weights.iter().map(|&v| f64::from(v)).sum();
    assert!((s0 - s1).abs() < 1e-6 * s0);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let sim = gaussians(200, 1).select(&["x0".into(), "x1".into()]).unwrap();
    let spec = |t: Target| vec![TargetSpec { target: t, distance: Distance::Wasserstein, weight: 1.0 }];
    let cfg = quick_config(0.1, 1);
    let q = Control::quiet();
    let e = fit(&sim, &spec(sample_target("x9", vec![1.0])), &cfg, &q).unwrap_err().to_string();
    assert!(e.contains("a target names feature 'x9', which the simulation does not have"), "{e}");
    let empty = Target {
        feature: "x0".into(),
        shape: Shape::Histogram { edges: vec![0.0, 1.0], counts: vec![0.0], errors: vec![1.0] },
    };
    let e = fit(&sim, &spec(empty), &cfg, &q).unwrap_err().to_string();
    assert!(e.contains("the histogram is empty"), "{e}");
    let neg = Target {
        feature: "x0".into(),
        shape: Shape::Samples { values: vec![1.0, 2.0], weights: Some(vec![1.0, -1.0]) },
    };
    let e = fit(&sim, &spec(neg), &cfg, &q).unwrap_err().to_string();
    assert!(e.contains("weight 1 is -1; target weights must be finite and ≥ 0"), "{e}");
    let w: Vec<f32> = (0..200).map(|i| if i == 3 { -0.5 } else { 1.0 }).collect();
    let negsim = sim.with_weight(Some(w)).unwrap();
    let e = fit(&negsim, &spec(sample_target("x0", vec![1.0, 2.0])), &cfg, &q).unwrap_err().to_string();
    assert!(e.contains("event weight 3 is -0.5; a batch objective needs finite weights ≥ 0"), "{e}");
    let e = rake(&negsim, &[sample_target("x0", vec![1.0, 2.0])], 1e-3, 10).unwrap_err().to_string();
    assert!(e.contains("raking needs weights ≥ 0"), "{e}");
    let mut frozen = cfg.clone();
    frozen.frozen = vec!["x0".into()];
    let e = fit(&sim, &spec(sample_target("x0", vec![1.0, 2.0])), &frozen, &q).unwrap_err().to_string();
    assert!(e.contains("has a target but is frozen"), "{e}");
}

/// The report: a perfect correction (the truth itself) passes its targets, and the shifts are
/// the per-event σ-distances.
#[test]
fn the_report_measures_targets_correlations_and_shifts() {
    let sim = gaussians(3000, 1).select(&["x0".into(), "x1".into()]).unwrap();
    let moved = sim.with_column("x0", shifted(&sim, "x0", 0.5)).unwrap();
    let targets = vec![sample_target("x0", shifted(&gaussians(3000, 2), "x0", 0.5))];
    let cfg =
        ValidateConfig { sigma: Some(vec![0.5, 1.0]), features: Some(vec!["x0".into(), "x1".into()]), c2st: None };
    let r = validate(&sim, &moved, &targets, None, &cfg, &Control::quiet()).unwrap();
    // every event moved by 0.5 = 1 σ (σ 0.5) in x0 only
    assert!(r.shifts.iter().all(|s| (s - 1.0).abs() < 1e-5));
    // a shift leaves the correlation matrix unchanged
    assert!(r.corr_change.0 < 1e-9);
    let f = &r.features[0];
    assert!(f.ks_p > 0.001 && f.chi2_original > 5.0 * f.chi2, "{f:?}");
    let _ = Array2::<f64>::zeros((1, 1));
    let _ = Convergence { tol: 0.0, patience: 1 };
}

/// A derived feature's term: its gradient in the residual outputs through the chain of derived
/// expressions (a product, then a function of it and of a feature) against central
/// differences, for each distance; a frozen feature gets no gradient.
#[test]
fn derived_target_gradients_match_finite_differences() {
    use super::derived::DerivedTerm;
    use crate::data::expr::Expr;
    use crate::model::BatchObjective;
    let u = lcg(11, 200);
    let n = 30;
    let x = Array2::from_shape_fn((n, 4), |(i, j)| (2.0 * u[4 * i + j] - 0.5) as f32);
    let z0 = Array2::from_shape_fn((n, 4), |(i, j)| (u[120 + (3 * i + j) % 80] - 0.5) as f32);
    let w: Vec<f32> = (0..n).map(|i| 0.5 + u[i + 60] as f32).collect();
    let sample: Vec<f32> = u[..100].iter().map(|v| (3.0 * v - 0.5) as f32).collect();
    let features: Vec<String> = ["x0", "x1", "x2", "s"].iter().map(|s| s.to_string()).collect();
    // x2 frozen (step 0), s derived (step 0).
    let step = vec![0.7f32, 1.3, 0.0, 0.0];
    let chain = vec![
        ("s".to_string(), Expr::parse("x0 * x1").unwrap()),
        ("v".to_string(), Expr::parse("s + exp(0.3 * x0) - x2").unwrap()),
    ];
    for distance in [Distance::Wasserstein, Distance::Chi2 { smoothing: 0.7 }, Distance::Mmd { bandwidth: 0.4 }] {
        let prepared = sample_target("v", sample.clone()).prepare().unwrap();
        let term = DerivedTerm {
            features: features.clone(),
            step: step.clone(),
            chain: chain.clone(),
            distance,
            prepared,
            sigma: 0.9,
        };
        let mut g = Array2::zeros((n, 4));
        term.eval(x.view(), z0.view(), &w, &mut g).unwrap();
        let mut scratch = Array2::zeros((n, 4));
        for i in 0..n {
            for j in 0..4 {
                let (mut a, mut b) = (z0.clone(), z0.clone());
                // The step actually taken in f32 is exact and D is computed in f64 from it,
                // so a small step keeps the truncation error (chi2 has a large curvature) small.
                a[[i, j]] += 1e-5;
                b[[i, j]] -= 1e-5;
                let h = f64::from(a[[i, j]]) - f64::from(b[[i, j]]);
                let va = term.eval(x.view(), a.view(), &w, &mut scratch).unwrap();
                let vb = term.eval(x.view(), b.view(), &w, &mut scratch).unwrap();
                let fd = (va - vb) / h;
                let an = f64::from(g[[i, j]]);
                assert!(
                    (fd - an).abs() <= 2e-4 * (1.0 + fd.abs()),
                    "{distance:?} event {i} output {j}: {an} vs fd {fd}"
                );
                if j >= 2 {
                    assert_eq!(an, 0.0, "frozen and derived features get no gradient");
                }
            }
        }
    }
}

/// Targets on x0, x1 and on the derived s = x0 + x1 carry the covariance
/// (Var s = Var x0 + Var x1 + 2 Cov): a simulation with ρ = 0.5 corrected towards a truth with
/// the same marginals and ρ = 0.8 takes the truth's correlation, which per-feature targets
/// alone cannot do (their minimal-deviation optimum is the per-feature monotone map).
#[test]
fn a_derived_target_corrects_the_correlation() {
    use crate::data::synthetic::{gaussians_with, GaussiansConfig};
    let two = |rho: f64, seed: u64| {
        let cfg = GaussiansConfig { n: 4000, d: 2, shift: 0.0, rho, seed };
        let ds = gaussians_with(&cfg).unwrap();
        ds.derive("s", "x0 + x1").unwrap()
    };
    let (sim, truth) = (two(0.5, 1), two(0.8, 2));
    let col = |f: &str| truth.column(f).unwrap().to_vec();
    let spec = |f: &str| TargetSpec { target: sample_target(f, col(f)), distance: Distance::Wasserstein, weight: 1.0 };
    let mut cfg = quick_config(0.002, 80);
    cfg.derived = vec![("s".into(), "x0 + x1".into())];
    let rho = |ds: &Dataset| ds.select(&["x0".into(), "x1".into()]).unwrap().correlation(true)[[0, 1]];
    let only_marginals = fit(&sim, &[spec("x0"), spec("x1")], &cfg, &Control::quiet()).unwrap();
    let with_sum = fit(&sim, &[spec("x0"), spec("x1"), spec("s")], &cfg, &Control::quiet()).unwrap();
    let (r0, r1) =
        (rho(&only_marginals.correction.apply(&sim).unwrap()), rho(&with_sum.correction.apply(&sim).unwrap()));
    let out = with_sum.correction.apply(&sim).unwrap();
    // apply recomputes s from the corrected features.
    let (a, b, s) = (out.column("x0").unwrap(), out.column("x1").unwrap(), out.column("s").unwrap());
    assert!(a.iter().zip(b).zip(s).all(|((a, b), s)| (a + b - s).abs() < 1e-5));
    // Sampling error of ρ on 4000 events: (1 − ρ²)/√n ≈ 0.006–0.012.
    assert!((rho(&sim) - 0.5).abs() < 0.04, "simulation ρ {}", rho(&sim));
    assert!((r0 - 0.5).abs() < 0.05, "marginal targets alone keep ρ ≈ 0.5, got {r0}");
    assert!((r1 - 0.8).abs() < 0.05, "with the target on x0 + x1, ρ ≈ 0.8, got {r1}");
}
