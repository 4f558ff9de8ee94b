use super::*;
use crate::attack::test_support::{bench_sigma, correlated, logistic, trained};
use crate::attack::Rule;
use crate::model::{Mlp, Output};
use ndarray::array;

fn untargeted(m: &Mlp, x: ArrayView2<'_, f32>) -> Goal {
    Goal::Untargeted(m.predict_class(x).unwrap())
}

fn mean_loss(m: &Mlp, x: ArrayView2<'_, f32>, y: &[i64]) -> f64 {
    m.loss(x, Targets::Labels(y), None).unwrap()
}

#[test]
fn linf_pgd_stays_in_its_box_and_raises_the_loss() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let mut unc = bench_sigma(&ds);
    // Freeze the last feature: σ = 0, so it must never move.
    let mut specs = unc.specs().to_vec();
    specs[4] = crate::attack::FeatureSigma::frozen();
    unc = UncertaintyModel::new(ds.names().to_vec(), specs).unwrap().with_scale(0.7).unwrap();
    let x0 = ds.x();
    let goal = untargeted(&m, x0);
    for random_start in [false, true] {
        let cfg =
            PgdConfig { eps: 0.3, step: 0.05, steps: 10, norm: Norm::Linf, random_start, seed: 4, first_event: 0 };
        let r = pgd(&m, &unc, x0, &goal, &cfg, &Projection::default(), &Control::quiet()).unwrap();
        let sigma = unc.sigma(x0);
        for ((xa, xo), s) in r.x.iter().zip(x0.iter()).zip(sigma.iter()) {
            // |δ| ≤ ε·s·σ on every feature of every event (f32 rounding of x0 ± r allowed).
            assert!((xa - xo).abs() <= 0.3 * s * (1.0 + 1e-5) + 1e-6, "{xa} {xo} {s}");
        }
        assert!(r.x.column(4).iter().zip(x0.column(4)).all(|(a, b)| a == b));
        let Goal::Untargeted(y) = &goal else { unreachable!() };
        let (l0, l1) = (mean_loss(&m, x0, y), mean_loss(&m, r.x.view(), y));
        assert!(l1 > l0 + 0.01, "{l0} → {l1}");
        assert!(r.flip_fraction() > 0.0);
    }
}

#[test]
fn l2_pgd_stays_in_the_mahalanobis_ball() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = correlated(&ds);
    let x0 = ds.x();
    let goal = untargeted(&m, x0);
    for random_start in [false, true] {
        let cfg = PgdConfig { eps: 1.5, step: 0.3, steps: 8, norm: Norm::L2, random_start, seed: 9, first_event: 0 };
        let r = pgd(&m, &unc, x0, &goal, &cfg, &Projection::default(), &Control::quiet()).unwrap();
        // χ² = ‖u‖² ≤ ε² on every event (independent check through the model's χ²).
        assert!(
            r.chi2.iter().all(|&c| c <= 1.5 * 1.5 * (1.0 + 1e-4)),
            "{:?}",
            r.chi2.iter().cloned().fold(0.0, f64::max)
        );
        assert!(r.x.column(4).iter().zip(x0.column(4)).all(|(a, b)| a == b));
        let Goal::Untargeted(y) = &goal else { unreachable!() };
        assert!(mean_loss(&m, r.x.view(), y) > mean_loss(&m, x0, y));
    }
}

#[test]
fn fgsm_on_logistic_regression_moves_by_eps_sigma_against_the_class() {
    // f = σ(w·x + b). For the predicted class 1 the BCE gradient is (f − 1)·w, so
    // δ = −ε·σ ⊙ sign(w); for class 0 it is +ε·σ ⊙ sign(w). A zero weight gives no move.
    let w = [1.0f32, -2.0, 0.0];
    let m = logistic(&w, 0.0);
    let names: Vec<String> = (0..3).map(|i| format!("x{i}")).collect();
    let specs = vec![crate::attack::FeatureSigma::absolute(0.5); 3];
    let unc = UncertaintyModel::new(names, specs).unwrap();
    let x0 = array![[1.0f32, 0.0, 0.0], [-1.0, 0.0, 0.0]];
    let goal = untargeted(&m, x0.view());
    let r =
        pgd(&m, &unc, x0.view(), &goal, &PgdConfig::fgsm(0.2, Norm::Linf), &Projection::default(), &Control::quiet())
            .unwrap();
    assert_eq!(r.x, array![[0.9f32, 0.1, 0.0], [-0.9, -0.1, 0.0]]);
    // L2: the step is ε along σ⊙w/‖σ⊙w‖ in whitened units: δ = ε·σ²w/‖σw‖ for class 0.
    let r2 =
        pgd(&m, &unc, x0.view(), &goal, &PgdConfig::fgsm(0.2, Norm::L2), &Projection::default(), &Control::quiet())
            .unwrap();
    let nrm = (0.25f32 + 1.0).sqrt(); // ‖σ⊙w‖ = ‖(0.5, −1, 0)‖
    let want = [0.2 * 0.25 * 1.0 / nrm, 0.2 * 0.25 * -2.0 / nrm];
    assert!((r2.x[[1, 0]] - (-1.0 + want[0])).abs() < 1e-6 && (r2.x[[1, 1]] - want[1]).abs() < 1e-6);
    assert!((r2.chi2[1] - 0.04).abs() < 1e-5);
}

#[test]
fn projections_hold_on_every_event() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = bench_sigma(&ds);
    let x0 = ds.x();
    let proj = Projection::new(
        ds.names().to_vec(),
        vec![Rule::Clip { feature: 0, lo: -0.5, hi: 0.5 }, Rule::Integer { feature: 1 }, Rule::Frozen { feature: 2 }],
    )
    .unwrap();
    let cfg =
        PgdConfig { eps: 1.0, step: 0.2, steps: 5, norm: Norm::Linf, random_start: true, seed: 1, first_event: 0 };
    let r = pgd(&m, &unc, x0, &untargeted(&m, x0), &cfg, &proj, &Control::quiet()).unwrap();
    let clip_only =
        Projection::new(ds.names().to_vec(), vec![Rule::Integer { feature: 1 }, Rule::Frozen { feature: 2 }]);
    assert!(proj.violations(x0, r.x.view()).iter().all(|&i| {
        // An event whose original value lies outside the clip range is clipped into it;
        // every rule then holds. Only the clip can differ from the original check.
        let v = r.x[[i, 0]];
        (-0.5..=0.5).contains(&v)
    }));
    assert!(clip_only.unwrap().violations(x0, r.x.view()).is_empty());
    assert!(r.x.column(0).iter().all(|v| (-0.5..=0.5).contains(v)));
}

#[test]
fn targeted_and_regression_goals_move_the_output_the_right_way() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = bench_sigma(&ds);
    let x0 = ds.x();
    let cfg =
        PgdConfig { eps: 0.5, step: 0.1, steps: 10, norm: Norm::Linf, random_start: false, seed: 0, first_event: 0 };
    let r = pgd(&m, &unc, x0, &Goal::TargetScore(1.0), &cfg, &Projection::default(), &Control::quiet()).unwrap();
    let before: f32 = r.score_before.sum();
    let after: f32 = r.score_after.sum();
    assert!(after > before + 0.01 * x0.nrows() as f32, "{before} → {after}");
    let all_one = vec![1i64; x0.nrows()];
    let t = pgd(&m, &unc, x0, &Goal::TargetClass(all_one), &cfg, &Projection::default(), &Control::quiet()).unwrap();
    assert!(t.score_after.sum() > before);

    let (reg, ds) = trained(5, Output::Linear);
    let x0 = ds.x();
    for up in [true, false] {
        let r = pgd(&reg, &unc, x0, &Goal::Shift { index: 0, up }, &cfg, &Projection::default(), &Control::quiet())
            .unwrap();
        let shift = r.score_after.sum() - r.score_before.sum();
        assert!(if up { shift > 0.0 } else { shift < 0.0 }, "{shift}");
    }
    assert!(pgd(&reg, &unc, x0, &untargeted(&m, x0), &cfg, &Projection::default(), &Control::quiet()).is_err());
}

#[test]
fn clean_class_goal_equals_explicit_predicted_labels_and_reuses_the_clean_pass() {
    // Goal::UntargetedClean finds the clean classes in the first step's forward pass; the
    // attack must be identical to passing predict_class explicitly, and the clean scores it
    // reports must be those of a separate forward pass.
    for output in [Output::Sigmoid, Output::Softmax] {
        let (m, ds) = trained(5, output);
        let unc = bench_sigma(&ds);
        let x0 = ds.x();
        for (random_start, norm) in [(false, Norm::Linf), (true, Norm::Linf), (false, Norm::L2)] {
            let cfg = PgdConfig { eps: 0.4, step: 0.1, steps: 5, norm, random_start, seed: 3, first_event: 0 };
            let q = Control::quiet();
            let a = pgd(&m, &unc, x0, &Goal::UntargetedClean, &cfg, &Projection::default(), &q).unwrap();
            let b = pgd(&m, &unc, x0, &untargeted(&m, x0), &cfg, &Projection::default(), &q).unwrap();
            assert_eq!(a.x, b.x, "{output} {norm:?} {random_start}");
            assert_eq!(a.class_before, b.class_before);
            assert_eq!(a.score_before, b.score_before);
            assert_eq!(a.chi2, b.chi2);
            let (s0, c0) = crate::attack::outputs(&m, x0).unwrap();
            assert_eq!(a.class_before, c0);
            assert_eq!(a.score_before, s0);
        }
    }
    // A regression model has no class to move away from.
    let (reg, ds) = trained(5, Output::Linear);
    let cfg = PgdConfig::fgsm(0.1, Norm::Linf);
    let e =
        pgd(&reg, &bench_sigma(&ds), ds.x(), &Goal::UntargetedClean, &cfg, &Projection::default(), &Control::quiet());
    assert!(e.is_err());
}
