use super::*;
use ndarray::array;

fn names(d: usize) -> Vec<String> {
    (0..d).map(|i| format!("x{i}")).collect()
}

#[test]
fn diagonal_chi2_is_the_sum_of_squared_pulls() {
    // σ = (0.5, √(0.1² + (0.2·10)²) = √4.01, frozen); δ = (1, 2, 0):
    // χ² = (1/0.5)² + 2²/4.01 = 4 + 0.997506…
    let specs = vec![
        FeatureSigma::absolute(0.5),
        FeatureSigma { absolute: 0.1, relative: 0.2, floor: 0.0, frozen: false },
        FeatureSigma::frozen(),
    ];
    let m = UncertaintyModel::new(names(3), specs).unwrap();
    let x0 = array![[1.0f32, 10.0, 3.0]];
    let xa = array![[2.0f32, 12.0, 3.0]];
    let c = m.chi2(x0.view(), xa.view(), true).unwrap();
    assert!((c.chi2[0] - (4.0 + 4.0 / 4.01)).abs() < 1e-5, "{}", c.chi2[0]);
    assert_eq!(c.dof, [2]);
    // dof = 2: the χ² survival function is exp(−c/2) exactly.
    assert!((c.p_value[0] - (-c.chi2[0] / 2.0).exp()).abs() < 1e-9);
    // The scale s divides χ² by s².
    let c2 = m.with_scale(2.0).unwrap().chi2(x0.view(), xa.view(), true).unwrap();
    assert!((c2.chi2[0] - c.chi2[0] / 4.0).abs() < 1e-5);
}

#[test]
fn correlated_chi2_matches_the_two_by_two_inverse() {
    // Σ = [[σ1², ρσ1σ2], [ρσ1σ2, σ2²]]: δᵀΣ⁻¹δ = (z1² − 2ρ z1 z2 + z2²) / (1 − ρ²), z = δ/σ.
    let (s1, s2, rho) = (0.5f64, 2.0f64, 0.6f64);
    let m = UncertaintyModel::new(names(2), vec![FeatureSigma::absolute(s1 as f32), FeatureSigma::absolute(s2 as f32)])
        .unwrap()
        .with_correlation(array![[1.0, rho], [rho, 1.0]])
        .unwrap();
    let x0 = array![[0.0f32, 0.0], [1.0, 1.0]];
    let xa = array![[0.3f32, -1.0], [1.5, 3.0]];
    let c = m.chi2(x0.view(), xa.view(), true).unwrap();
    for (i, (d1, d2)) in [(0.3, -1.0), (0.5, 2.0)].into_iter().enumerate() {
        let (z1, z2) = (d1 / s1, d2 / s2);
        let want = (z1 * z1 - 2.0 * rho * z1 * z2 + z2 * z2) / (1.0 - rho * rho);
        assert!((c.chi2[i] - want).abs() < 1e-5 * want.max(1.0), "event {i}: {} vs {want}", c.chi2[i]);
    }
    // The diagonal form ignores ρ.
    let d = m.chi2(x0.view(), xa.view(), false).unwrap();
    assert!((d.chi2[0] - (0.36 + 0.25)).abs() < 1e-5);
    // The same model from the covariance matrix.
    let cov = array![[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]];
    let mc = UncertaintyModel::from_covariance(names(2), cov, &[false, false]).unwrap();
    let cc = mc.chi2(x0.view(), xa.view(), true).unwrap();
    for (a, b) in cc.chi2.iter().zip(&c.chi2) {
        assert!((a - b).abs() < 1e-5 * b.max(1.0));
    }
}

#[test]
fn p_values_match_known_quantiles() {
    // Tabulated upper quantiles: χ²₁(0.05) = 3.841459, χ²₁₀(0.01) = 23.209251, χ²₂₀(0.5) = 19.337429.
    let p = p_values(&[3.841459], 1);
    assert!((p[0] - 0.05).abs() < 1e-6);
    let p = p_values(&[23.209251], 10);
    assert!((p[0] - 0.01).abs() < 1e-6);
    let p = p_values(&[19.337429], 20);
    assert!((p[0] - 0.5).abs() < 1e-6);
}

#[test]
fn whitened_round_trip_and_gradient_map_are_adjoint() {
    let m = UncertaintyModel::new(names(3), vec![FeatureSigma::absolute(0.5); 3])
        .unwrap()
        .with_correlation(array![[1.0, 0.5, 0.2], [0.5, 1.0, -0.3], [0.2, -0.3, 1.0]])
        .unwrap();
    let x0 = array![[1.0f32, 2.0, 3.0]];
    let sigma = m.sigma(x0.view());
    let u = array![[0.3f32, -0.7, 1.1]];
    let delta = m.delta_from_whitened(sigma.view(), u.view());
    let back = m.whiten(sigma.view(), delta.view(), true);
    for (a, b) in back.iter().zip(u.iter()) {
        assert!((a - b).abs() < 1e-5);
    }
    // ⟨g, δ(u)⟩ = ⟨grad_to_whitened(g), u⟩ because δ is linear in u.
    let g = array![[0.9f32, -0.2, 0.4]];
    let lhs: f32 = (&g * &delta).sum();
    let rhs: f32 = (&m.grad_to_whitened(sigma.view(), g.view()) * &u).sum();
    assert!((lhs - rhs).abs() < 1e-5);
}

#[test]
fn smear_draws_the_model_covariance() {
    // 40k events: the sample correlation of δ/σ has standard error ≈ (1 − ρ²)/√n ≈ 0.004.
    let n = 40_000;
    let x = Array2::from_shape_fn((n, 2), |(i, j)| (i % 7) as f32 + 10.0 * j as f32 + 1.0);
    let ds = Dataset::new(names(2), x, None, None).unwrap();
    let m = UncertaintyModel::new(
        names(2),
        vec![FeatureSigma::absolute(0.5), FeatureSigma { absolute: 0.0, relative: 0.1, floor: 0.0, frozen: false }],
    )
    .unwrap()
    .with_correlation(array![[1.0, 0.7], [0.7, 1.0]])
    .unwrap();
    let sm = m.smear(&ds, 3).unwrap();
    let sigma = m.sigma(ds.x());
    let z = m.whiten(sigma.view(), (&sm.x() - &ds.x()).view(), false);
    let (mut s00, mut s11, mut s01) = (0.0f64, 0.0f64, 0.0f64);
    for r in z.rows() {
        s00 += (r[0] * r[0]) as f64;
        s11 += (r[1] * r[1]) as f64;
        s01 += (r[0] * r[1]) as f64;
    }
    let nf = n as f64;
    assert!((s00 / nf - 1.0).abs() < 0.03 && (s11 / nf - 1.0).abs() < 0.03, "{} {}", s00 / nf, s11 / nf);
    assert!((s01 / (s00 * s11).sqrt() - 0.7).abs() < 0.02);
    // Same seed, same draw; another seed, another draw.
    assert_eq!(m.smear(&ds, 3).unwrap().x(), sm.x());
    assert_ne!(m.smear(&ds, 4).unwrap().x(), sm.x());
}

#[test]
fn bad_models_are_clear_errors() {
    let e =
        UncertaintyModel::new(names(2), vec![FeatureSigma::absolute(0.5), FeatureSigma::absolute(-1.0)]).unwrap_err();
    assert!(e.to_string().contains("feature 'x1'"), "{e}");
    let e =
        UncertaintyModel::new(names(2), vec![FeatureSigma::absolute(0.5), FeatureSigma::absolute(0.0)]).unwrap_err();
    assert!(e.to_string().contains("σ = 0"), "{e}");
    let m = UncertaintyModel::new(names(3), vec![FeatureSigma::absolute(1.0); 3]).unwrap();
    // ρ with x2 = (x0 + x1)/√2·…: this matrix has determinant < 0.
    let e = m.with_correlation(array![[1.0, 0.9, 0.9], [0.9, 1.0, 0.1], [0.9, 0.1, 1.0]]).unwrap_err();
    assert!(e.to_string().contains("not positive definite") && e.to_string().contains("'x2'"), "{e}");
    assert!(m.with_scale(0.0).is_err() && m.with_scale(-1.0).is_err() && m.with_scale(f64::NAN).is_err());
    // A frozen feature's correlations are ignored.
    let mf = UncertaintyModel::new(names(2), vec![FeatureSigma::absolute(1.0), FeatureSigma::frozen()]).unwrap();
    assert!(mf.with_correlation(array![[1.0, 1.0], [1.0, 1.0]]).is_ok());
}
