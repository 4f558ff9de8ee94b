use super::*;
use crate::attack::test_support::{bench_sigma, correlated, logistic, trained};
use crate::attack::FeatureSigma;
use ndarray::array;

#[test]
fn a_saturated_event_that_cannot_move_is_stalled_not_converged() {
    // f = σ(100·a). At a = 1 the logit is 100 and σ = 1 exactly in f32, so ∂f/∂x = σ(1 − σ) = 0:
    // the gradient at δ = 0 vanishes although the target-class score 1 − σ = 0 is 1 away from
    // its target g = 1 (cost β·(0 − 1)² = 1). At a = 0.001 (logit 0.1) a shift of −0.001 flips it.
    let m = logistic(&[100.0, 0.0], 0.0);
    let unc = UncertaintyModel::new(vec!["a".into(), "b".into()], vec![FeatureSigma::absolute(1.0); 2]).unwrap();
    let x0 = array![[1.0f32, 0.0], [0.001, 0.0]];
    for minimizer in [Minimizer::Lbfgs, Minimizer::Adam] {
        let cfg = MiniFoolConfig { minimizer, ..MiniFoolConfig::default() };
        let r = minifool(&m, &unc, x0.view(), &cfg, &Projection::default(), &Control::quiet()).unwrap();
        assert_eq!(r.attack.reason[0], "stalled", "{minimizer:?}");
        assert_eq!(r.attack.x.row(0), x0.row(0));
        assert!((r.cost_end[0] - 1.0).abs() < 1e-6, "{}", r.cost_end[0]);
        assert_ne!(r.attack.reason[1], "stalled", "{minimizer:?}");
        assert_eq!(r.attack.flipped(), vec![false, true], "{minimizer:?}");
    }
}

#[test]
fn cost_never_increases_with_either_minimizer() {
    let (m, ds) = trained(5, Output::Sigmoid);
    // At s = 4 a flip costs little χ² (the small model's scores are flat, so the cost falls by
    // a few per cent on average).
    let unc = correlated(&ds).with_scale(4.0).unwrap();
    for minimizer in [Minimizer::Lbfgs, Minimizer::Adam] {
        let cfg = MiniFoolConfig { minimizer, max_iters: 40, ..MiniFoolConfig::default() };
        let r = minifool(&m, &unc, ds.x(), &cfg, &Projection::default(), &Control::quiet()).unwrap();
        for (i, (a, b)) in r.cost_start.iter().zip(&r.cost_end).enumerate() {
            assert!(b <= a, "{minimizer:?} event {i}: {a} → {b}");
        }
        let mean_start: f64 = r.cost_start.iter().sum::<f64>() / r.cost_start.len() as f64;
        let mean_end: f64 = r.cost_end.iter().sum::<f64>() / r.cost_end.len() as f64;
        assert!(mean_end < 0.97 * mean_start, "{minimizer:?}: {mean_start} → {mean_end}");
        // The frozen last feature never moves; flips exist at this scale.
        assert!(r.attack.x.column(4).iter().zip(ds.x().column(4)).all(|(a, b)| a == b));
        assert!(r.attack.flip_fraction() > 0.0);
        // The reported cost is the χ² part plus the score part at the returned point: recompute
        // the χ² independently and check η = χ²/N ≤ λ.
        for (c, e) in r.attack.chi2.iter().zip(&r.cost_end) {
            assert!(c / 4.0 <= e + 1e-6);
        }
    }
}

/// Minimises h(Δz) = a·Δz² + (σ(z0 + Δz) − g)² over Δz ≥ 0 in f64: a fine grid, then golden
/// section around the best grid point.
fn solve_1d(a: f64, z0: f64, g: f64) -> f64 {
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    let h = |dz: f64| a * dz * dz + (sig(z0 + dz) - g).powi(2);
    let (mut best, mut hb) = (0.0, h(0.0));
    for k in 1..=200_000 {
        let dz = k as f64 * 1e-4;
        if h(dz) < hb {
            best = dz;
            hb = h(dz);
        }
    }
    let (mut lo, mut hi) = ((best - 1e-4f64).max(0.0), best + 1e-4);
    let r = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let (c, d) = (hi - r * (hi - lo), lo + r * (hi - lo));
        if h(c) < h(d) {
            hi = d
        } else {
            lo = c
        }
    }
    (lo + hi) / 2.0
}

/// A 3-feature logistic regression f = σ(wᵀx + b) with a correlated uncertainty model
/// (σ = 0.4, 0.3, 0.6 and correlation `rho`).
struct LogisticCase {
    w: [f32; 3],
    b: f32,
    m: crate::model::Mlp,
    names: Vec<String>,
    sig: [f64; 3],
    rho: ndarray::Array2<f64>,
    unc: UncertaintyModel,
}

fn logistic_case() -> LogisticCase {
    let (w, b) = ([1.5f32, -1.0, 0.5], -0.3f32);
    let names: Vec<String> = (0..3).map(|i| format!("x{i}")).collect();
    let sig = [0.4f64, 0.3, 0.6];
    let specs = sig.iter().map(|&s| FeatureSigma::absolute(s as f32)).collect();
    let rho = array![[1.0, 0.5, -0.2], [0.5, 1.0, 0.1], [-0.2, 0.1, 1.0]];
    let unc = UncertaintyModel::new(names.clone(), specs).unwrap().with_correlation(rho.clone()).unwrap();
    LogisticCase { w, b, m: logistic(&w, b), names, sig, rho, unc }
}

#[test]
fn logistic_regression_optimum_lies_along_sigma_w() {
    // f = σ(wᵀx + b). For a fixed change Δz = wᵀδ the smallest χ² = δᵀΣ⁻¹δ is Δz²/(wᵀΣw), at
    // δ = Δz·Σw/(wᵀΣw). So the optimum is δ* = Δz*·Σw/(wᵀΣw) with Δz* minimising
    // h(Δz) = (α/N)·Δz²/(wᵀΣw) + β(σ(z0 + Δz) − g)², solved independently in f64 above.
    let LogisticCase { w, b, m, names: _, sig, rho, unc } = logistic_case();
    let s = 1.3f64;
    let unc = unc.with_scale(s).unwrap();
    // Σ = s²·D ρ D; Σw and wᵀΣw.
    let cov = array![
        [sig[0] * sig[0] * rho[[0, 0]], sig[0] * sig[1] * rho[[0, 1]], sig[0] * sig[2] * rho[[0, 2]]],
        [sig[1] * sig[0] * rho[[1, 0]], sig[1] * sig[1] * rho[[1, 1]], sig[1] * sig[2] * rho[[1, 2]]],
        [sig[2] * sig[0] * rho[[2, 0]], sig[2] * sig[1] * rho[[2, 1]], sig[2] * sig[2] * rho[[2, 2]]],
    ] * (s * s);
    let wv = array![w[0] as f64, w[1] as f64, w[2] as f64];
    let sw = cov.dot(&wv);
    let wsw = wv.dot(&sw);
    // Events predicted class 0 (z0 < 0): the target is class 1 with g = 1 (margin 0.5).
    let x0 = array![[-0.5f32, 0.2, 0.1], [-0.2, 0.4, -0.3], [-1.0, -0.5, 0.0]];
    let cfg = MiniFoolConfig { alpha: 0.3, max_iters: 200, gtol: 1e-7, ..MiniFoolConfig::default() };
    let r = minifool(&m, &unc, x0.view(), &cfg, &Projection::default(), &Control::quiet()).unwrap();
    for i in 0..3 {
        let z0: f64 = (0..3).map(|j| (w[j] * x0[[i, j]]) as f64).sum::<f64>() + b as f64;
        assert!(z0 < 0.0);
        let dz = solve_1d(0.3 / 3.0 / wsw, z0, 1.0);
        for j in 0..3 {
            let want = dz * sw[j] / wsw;
            let got = (r.attack.x[[i, j]] - x0[[i, j]]) as f64;
            assert!((got - want).abs() < 2e-3 * (1.0 + want.abs()), "event {i} feature {j}: {got} vs {want}");
        }
        assert_eq!(r.attack.reason[i], "converged");
    }
}

#[test]
fn with_a_frozen_feature_the_optimum_is_the_conditional_one() {
    // The projection freezes x0, so the reachable perturbations have δ₀ = 0 and χ² = δ_Rᵀ
    // (Σ⁻¹)_RR δ_R over the other features R = {1, 2}. (Σ⁻¹)_RR is the inverse of the Schur
    // complement C = Σ_RR − Σ_R0 Σ₀₀⁻¹ Σ_0R, so for a fixed Δz = w_Rᵀδ_R the smallest χ² is
    // Δz²/(w_RᵀCw_R), at δ_R = Δz·Cw_R/(w_RᵀCw_R). Δz* minimises h(Δz) = (α/N)·Δz²/(w_RᵀCw_R)
    // + β(σ(z0 + Δz) − g)² (N = 3, the uncertainty model's dof). Projecting the unconstrained
    // optimum (along Σw) afterwards would instead lose the part of the move carried by x0.
    let LogisticCase { w, b, m, names, sig, rho, unc } = logistic_case();
    let cov = |i: usize, j: usize| sig[i] * sig[j] * rho[[i, j]];
    let c = |i: usize, j: usize| cov(i, j) - cov(i, 0) * cov(0, j) / cov(0, 0);
    let wr = [w[1] as f64, w[2] as f64];
    let cw = [c(1, 1) * wr[0] + c(1, 2) * wr[1], c(2, 1) * wr[0] + c(2, 2) * wr[1]];
    let wcw = wr[0] * cw[0] + wr[1] * cw[1];
    let proj = Projection::new(names, vec![crate::attack::Rule::Frozen { feature: 0 }]).unwrap();
    let x0 = array![[-0.5f32, 0.2, 0.1], [-0.2, 0.4, -0.3], [-1.0, -0.5, 0.0]];
    let cfg = MiniFoolConfig { alpha: 0.3, max_iters: 300, gtol: 1e-7, ..MiniFoolConfig::default() };
    let r = minifool(&m, &unc, x0.view(), &cfg, &proj, &Control::quiet()).unwrap();
    for i in 0..3 {
        let z0: f64 = (0..3).map(|j| (w[j] * x0[[i, j]]) as f64).sum::<f64>() + b as f64;
        let dz = solve_1d(0.3 / 3.0 / wcw, z0, 1.0);
        assert_eq!(r.attack.x[[i, 0]], x0[[i, 0]]);
        for (k, j) in [1usize, 2].into_iter().enumerate() {
            let want = dz * cw[k] / wcw;
            let got = (r.attack.x[[i, j]] - x0[[i, j]]) as f64;
            assert!((got - want).abs() < 2e-3 * (1.0 + want.abs()), "event {i} feature {j}: {got} vs {want}");
        }
    }
}

#[test]
fn projected_cost_gradient_matches_finite_differences() {
    // Problem::eval with clip (binding on feature 0 for event 0, far enough that ±h stays
    // clipped), frozen feature 2 and a correlated model: central differences of the cost in
    // whitened coordinates, h = 1e-2 (truncation ~h² ≈ 1e-4 relative; f32 rounding of the
    // cost ~1e-7/2h ≈ 1e-5 relative).
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = correlated(&ds);
    let names = ds.names().to_vec();
    let x0 = ds.x().slice(ndarray::s![0..4, ..]).to_owned();
    let lo = x0[[0, 0]] + 0.3;
    let proj = Projection::new(
        names,
        vec![
            crate::attack::Rule::Clip { feature: 0, lo, hi: f32::INFINITY },
            crate::attack::Rule::Frozen { feature: 2 },
        ],
    )
    .unwrap();
    let (targets, _) = resolve_targets(&m, x0.view(), &Target::Flip { margin: 0.5 }).unwrap();
    let p = Problem {
        model: &m,
        unc: &unc,
        x0: x0.view(),
        sigma: unc.sigma(x0.view()),
        targets,
        alpha: 2.0,
        beta: 1.0,
        dof: unc.dofs(x0.view()),
        proj: &proj,
        evaluations: AtomicUsize::new(0),
    };
    let idx: Vec<usize> = (0..4).collect();
    let mut r = crate::rng::rng(3);
    let u = Array2::from_shape_fn((4, 5), |_| rand::Rng::random_range(&mut r, -0.8f32..0.8));
    let (_, g) = p.eval(&idx, u.view()).unwrap();
    let h = 1e-2f32;
    for e in 0..4 {
        for k in 0..5 {
            let (mut up, mut um) = (u.clone(), u.clone());
            up[[e, k]] += h;
            um[[e, k]] -= h;
            let fd = (p.eval(&idx, up.view()).unwrap().0[e] - p.eval(&idx, um.view()).unwrap().0[e]) / (2.0 * h as f64);
            let got = f64::from(g[[e, k]]);
            assert!((got - fd).abs() < 2e-3 * (1.0 + fd.abs()), "event {e} u{k}: gradient {got} vs fd {fd}");
        }
    }
}

#[test]
fn with_a_binding_clip_the_returned_events_are_feasible_and_their_cost_fell() {
    // Clipping x0 to [−0.2, 0.2] binds on most events (the feature is standard normal), even
    // at the start. The reported cost is the cost at the returned (projected) events: recompute
    // it from their χ² (α = 1, N = 4 free features) and the target class's score (the other
    // class, pushed to g = 0.5 + margin 0.5 = 1, β = 1), for both minimisers.
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = correlated(&ds).with_scale(4.0).unwrap();
    let x0 = ds.x().slice(ndarray::s![0..200, ..]).to_owned();
    let clip = crate::attack::Rule::Clip { feature: 0, lo: -0.2, hi: 0.2 };
    let integer = crate::attack::Rule::Integer { feature: 1 };
    assert!(x0.column(0).iter().filter(|v| v.abs() > 0.2).count() > 100);
    // Rounding feature 1 makes the cost piecewise constant along it (its gradient passes
    // straight through): the line search may then stop events early, but never above the start.
    for (rules, minimizer) in
        [(vec![clip], Minimizer::Lbfgs), (vec![clip], Minimizer::Adam), (vec![clip, integer], Minimizer::Lbfgs)]
    {
        let proj = Projection::new(ds.names().to_vec(), rules).unwrap();
        let cfg = MiniFoolConfig { minimizer, max_iters: 60, ..MiniFoolConfig::default() };
        let r = minifool(&m, &unc, x0.view(), &cfg, &proj, &Control::quiet()).unwrap();
        assert!(proj.violations(x0.view(), r.attack.x.view()).is_empty());
        for i in 0..x0.nrows() {
            assert!(
                r.cost_end[i] <= r.cost_start[i],
                "{minimizer:?} event {i}: {} → {}",
                r.cost_start[i],
                r.cost_end[i]
            );
            let score = f64::from(r.attack.score_after[[i, 0]]);
            let f_t = if r.attack.class_before[i] == 0 { score } else { 1.0 - score };
            let want = r.attack.chi2[i] / 4.0 + (f_t - 1.0).powi(2);
            assert!(
                (r.cost_end[i] - want).abs() < 1e-4 * (1.0 + want),
                "{minimizer:?} event {i}: {} vs {want}",
                r.cost_end[i]
            );
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean(&r.cost_end) < 0.99 * mean(&r.cost_start), "{minimizer:?}: the cost barely moved");
    }
}

#[test]
fn regression_and_softmax_targets() {
    let (reg, ds) = trained(5, Output::Linear);
    let unc = bench_sigma(&ds).with_scale(5.0).unwrap();
    let x0 = ds.x().slice(ndarray::s![..200, ..]).to_owned();
    let (before, _) = outputs(&reg, x0.view()).unwrap();
    let value: Vec<f32> = before.column(0).iter().map(|v| v + 0.3).collect();
    let cfg = MiniFoolConfig { target: Target::Values { index: 0, value }, ..MiniFoolConfig::default() };
    let r = minifool(&reg, &unc, x0.view(), &cfg, &Projection::default(), &Control::quiet()).unwrap();
    let shift = (r.attack.score_after.sum() - r.attack.score_before.sum()) / 200.0;
    // The χ² term holds the output below its target: 0 < shift < 0.3.
    assert!(shift > 0.1 && shift < 0.3, "{shift}");
    // No decision threshold without a target value.
    assert!(
        minifool(&reg, &unc, x0.view(), &MiniFoolConfig::default(), &Projection::default(), &Control::quiet()).is_err()
    );

    let (sm, ds) = trained(5, Output::Softmax);
    let r = minifool(&sm, &unc, ds.x(), &MiniFoolConfig::default(), &Projection::default(), &Control::quiet()).unwrap();
    assert!(r.attack.flip_fraction() > 0.05, "{}", r.attack.flip_fraction());
    assert!(r.cost_end.iter().zip(&r.cost_start).all(|(e, s)| e <= s));
}

#[test]
fn bad_settings_are_errors() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = bench_sigma(&ds);
    let empty = ds.x().slice(ndarray::s![..0, ..]).to_owned();
    let e = minifool(&m, &unc, empty.view(), &MiniFoolConfig::default(), &Projection::default(), &Control::quiet());
    assert!(e.unwrap_err().to_string().contains("empty"));
    let cfg = MiniFoolConfig { target: Target::Flip { margin: 0.7 }, ..MiniFoolConfig::default() };
    assert!(minifool(&m, &unc, ds.x(), &cfg, &Projection::default(), &Control::quiet()).is_err());
    let cfg = MiniFoolConfig { beta: 0.0, ..MiniFoolConfig::default() };
    assert!(minifool(&m, &unc, ds.x(), &cfg, &Projection::default(), &Control::quiet()).is_err());
}
