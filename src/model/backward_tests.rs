//! Gradients against central finite differences of an independent f64 reference forward.
//!
//! Tolerance: the f32 analytic gradients carry rounding of a few ulp per operation through
//! three small layers (fan-in ≤ 5), i.e. relative errors around 1e-6. The f64 central
//! difference with h = 1e-4 has truncation error h²·|f'''|/6 ≲ 1e-8 for these smooth O(1)
//! functions and rounding error ~1e-16/h = 1e-12. So |analytic − fd| ≤ 2e-5·(1 + |fd|) holds
//! with a wide margin, while any wrong term (an O(0.1) error) fails it. Coordinates whose ±h
//! perturbation flips the sign of some hidden pre-activation (a ReLU kink between the two
//! points) are skipped, and the test asserts that almost none are.

use ndarray::Array2;
use rand::Rng as _;

use super::*;
use crate::model::{Activation, MlpConfig};

const H: f64 = 1e-4;
const TOL: f64 = 2e-5;

/// Independent f64 forward of one event: logits and the signs of all hidden pre-activations.
fn ref_forward(m: &Mlp, theta: &[f64], x: &[f64]) -> (Vec<f64>, Vec<bool>) {
    let mut a: Vec<f64> =
        x.iter().zip(m.mean()).zip(m.std()).map(|((v, mu), s)| (v - f64::from(*mu)) / f64::from(*s)).collect();
    let mut signs = Vec::new();
    let mut off = 0;
    let nl = m.n_layers();
    for (l, (out, inp)) in m.layer_shapes().into_iter().enumerate() {
        let w = &theta[off..off + out * inp];
        let b = &theta[off + out * inp..off + out * inp + out];
        off += out * inp + out;
        let mut z: Vec<f64> = (0..out).map(|j| b[j] + (0..inp).map(|i| w[j * inp + i] * a[i]).sum::<f64>()).collect();
        if l + 1 < nl {
            signs.extend(z.iter().map(|v| *v > 0.0));
            z.iter_mut().for_each(|v| *v = m.activation().reference_f64(*v));
        }
        a = z;
    }
    (a, signs)
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Naive textbook loss of one event: −y ln σ − (1−y) ln(1−σ); −Σ t ln p; mean squared error.
fn ref_loss(out: Output, z: &[f64], t: &[f64]) -> f64 {
    match out {
        Output::Sigmoid => {
            let s = 1.0 / (1.0 + (-z[0]).exp());
            -t[0] * s.ln() - (1.0 - t[0]) * (1.0 - s).ln()
        }
        Output::Softmax => -softmax(z).iter().zip(t).map(|(p, ti)| ti * p.ln()).sum::<f64>(),
        Output::Linear => z.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / z.len() as f64,
    }
}

/// The objective of one event as the tests define it, from f64 logits.
fn ref_objective(out: Output, z: &[f64], which: &Which, t: &[f64]) -> f64 {
    match *which {
        Which::Loss => ref_loss(out, z, t),
        Which::Logit(c) if out == Output::Sigmoid => {
            if c == 1 {
                z[0]
            } else {
                -z[0]
            }
        }
        Which::Logit(c) => z[c],
        Which::Score(c) => match out {
            Output::Sigmoid => {
                let s = 1.0 / (1.0 + (-z[0]).exp());
                if c == 1 {
                    s
                } else {
                    1.0 - s
                }
            }
            Output::Softmax => softmax(z)[c],
            Output::Linear => z[c],
        },
    }
}

enum Which {
    Loss,
    Score(usize),
    Logit(usize),
}

/// A small model with a non-trivial standardisation and n events with valid targets
/// (as a dense n × k f64 matrix for the reference, and as Targets for the model).
struct Case {
    m: Mlp,
    x: Array2<f32>,
    labels: Vec<i64>,
    values: Array2<f32>,
    dense: Array2<f64>,
}

fn case(act: Activation, out: Output, seed: u64) -> Case {
    let k = match out {
        Output::Sigmoid => 1,
        Output::Softmax => 3,
        Output::Linear => 2,
    };
    let cfg = MlpConfig { activation: act, output: out, seed, ..MlpConfig::default() };
    let mut m = Mlp::new(&[3, 5, 4, k], cfg).unwrap();
    m.set_standardization(vec![0.5, -1.0, 2.0], vec![1.5, 0.7, 2.5]).unwrap();
    let mut r = crate::rng::rng(seed + 100);
    let n = 7;
    let x = Array2::from_shape_fn((n, 3), |(_, j)| m.mean()[j] + m.std()[j] * r.random_range(-2.0f32..2.0));
    let classes = if out == Output::Softmax { 3 } else { 2 };
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let values = Array2::from_shape_fn((n, k), |_| r.random_range(-1.0f32..1.0));
    let dense = match out {
        Output::Linear => values.mapv(f64::from),
        Output::Sigmoid => Array2::from_shape_fn((n, 1), |(i, _)| labels[i] as f64),
        Output::Softmax => Array2::from_shape_fn((n, 3), |(i, j)| f64::from(u8::from(labels[i] == j as i64))),
    };
    Case { m, x, labels, values, dense }
}

fn targets(c: &Case) -> Targets<'_> {
    if c.m.output() == Output::Linear {
        Targets::Values(c.values.view())
    } else {
        Targets::Labels(&c.labels)
    }
}

fn all_cases() -> Vec<(Activation, Output)> {
    let mut v = Vec::new();
    for a in Activation::NAMES {
        for o in Output::NAMES {
            v.push((Activation::parse(a).unwrap(), Output::parse(o).unwrap()));
        }
    }
    v
}

fn close(analytic: f64, fd: f64) -> bool {
    (analytic - fd).abs() <= TOL * (1.0 + fd.abs())
}

#[test]
fn input_gradients_match_f64_finite_differences_for_every_activation_and_output() {
    let (mut checked, mut skipped) = (0, 0);
    for (seed, (act, out)) in all_cases().into_iter().enumerate() {
        let c = case(act, out, seed as u64);
        let theta: Vec<f64> = c.m.params_flat().iter().map(|&v| f64::from(v)).collect();
        let k = c.m.n_outputs();
        let whiches = [
            (Which::Loss, GradTarget::Loss(targets(&c))),
            (Which::Score(1), GradTarget::Score { class: 1 }),
            (Which::Logit(0), GradTarget::Logit { class: 0 }),
        ];
        for (which, gt) in whiches {
            let r = c.m.input_grad_and_scores(c.x.view(), gt).unwrap();
            for i in 0..c.x.nrows() {
                let t: Vec<f64> = c.dense.row(i).to_vec();
                let x0: Vec<f64> = c.x.row(i).iter().map(|&v| f64::from(v)).collect();
                let (z0, _) = ref_forward(&c.m, &theta, &x0);
                // The value returned with the gradient is the objective itself.
                let v0 = ref_objective(out, &z0, &which, &t);
                assert!((f64::from(r.value[i]) - v0).abs() < 1e-5 * (1.0 + v0.abs()), "{act}/{out} value");
                assert_eq!(r.scores.ncols(), k);
                for j in 0..3 {
                    let (mut xp, mut xm) = (x0.clone(), x0.clone());
                    xp[j] += H;
                    xm[j] -= H;
                    let (zp, sp) = ref_forward(&c.m, &theta, &xp);
                    let (zm, sm) = ref_forward(&c.m, &theta, &xm);
                    if sp != sm {
                        skipped += 1;
                        continue;
                    }
                    let fd = (ref_objective(out, &zp, &which, &t) - ref_objective(out, &zm, &which, &t)) / (2.0 * H);
                    let g = f64::from(r.grad[[i, j]]);
                    assert!(close(g, fd), "{act}/{out}: event {i} feature {j}: analytic {g}, fd {fd}");
                    checked += 1;
                }
            }
        }
    }
    // 15 cases × 3 objectives × 7 events × 3 features = 945 coordinates.
    assert_eq!(checked + skipped, 945);
    assert!(skipped < 20, "{skipped} coordinates skipped at kinks");
}

#[test]
fn weight_gradients_match_f64_finite_differences_for_every_activation_and_output() {
    let (mut checked, mut skipped) = (0, 0);
    for (seed, (act, out)) in all_cases().into_iter().enumerate() {
        let c = case(act, out, 50 + seed as u64);
        let n = c.x.nrows();
        // Unequal weights, one negative (NLO-style), positive sum.
        let w: Vec<f32> = (0..n).map(|i| if i == 2 { -0.3 } else { 0.5 + i as f32 * 0.25 }).collect();
        let (loss, g) = c.m.weight_grad(c.x.view(), targets(&c), Some(&w)).unwrap();
        let theta: Vec<f64> = c.m.params_flat().iter().map(|&v| f64::from(v)).collect();
        let wsum: f64 = w.iter().map(|&v| f64::from(v)).sum();
        let mean_loss = |th: &[f64]| -> (f64, Vec<bool>) {
            let mut tot = 0.0;
            let mut signs = Vec::new();
            for (i, wi) in w.iter().enumerate() {
                let x: Vec<f64> = c.x.row(i).iter().map(|&v| f64::from(v)).collect();
                let (z, s) = ref_forward(&c.m, th, &x);
                signs.extend(s);
                tot += f64::from(*wi) * ref_loss(out, &z, &c.dense.row(i).to_vec());
            }
            (tot / wsum, signs)
        };
        let (l0, _) = mean_loss(&theta);
        assert!((loss - l0).abs() < 1e-5 * (1.0 + l0.abs()), "{act}/{out}: loss {loss} vs {l0}");
        for p in 0..theta.len() {
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[p] += H;
            tm[p] -= H;
            let ((lp, sp), (lm, sm)) = (mean_loss(&tp), mean_loss(&tm));
            if sp != sm {
                skipped += 1;
                continue;
            }
            let fd = (lp - lm) / (2.0 * H);
            assert!(close(f64::from(g[p]), fd), "{act}/{out}: param {p}: analytic {}, fd {fd}", g[p]);
            checked += 1;
        }
    }
    assert!(checked > 800, "only {checked} parameters checked");
    assert!(skipped < 20, "{skipped} parameters skipped at kinks");
}

#[test]
fn weight_gradient_is_independent_of_chunking_and_thread_count() {
    // 1000 events span 8 blocks of 128 in 16 parts; the same call twice, and inside a
    // one-thread pool, must give bit-identical results (fixed summation order).
    let m = Mlp::new(&[4, 8, 1], MlpConfig::default()).unwrap();
    let mut r = crate::rng::rng(9);
    let x = Array2::from_shape_fn((1000, 4), |_| r.random_range(-1.0f32..1.0));
    let y: Vec<i64> = (0..1000).map(|i| (i % 2) as i64).collect();
    let a = m.weight_grad(x.view(), Targets::Labels(&y), None).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| m.weight_grad(x.view(), Targets::Labels(&y), None).unwrap());
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert_eq!(a.1, b.1);
}

#[test]
fn gradient_errors_are_clear() {
    let m = Mlp::new(&[3, 4, 1], MlpConfig::default()).unwrap();
    let x = Array2::<f32>::zeros((2, 3));
    let e = m.input_grad(x.view(), GradTarget::Score { class: 2 }).unwrap_err().to_string();
    assert_eq!(e, "input_grad: class 2 is out of range; the model has classes 0..1");
    let e = m.weight_grad(x.view(), Targets::Labels(&[0]), None).unwrap_err().to_string();
    assert_eq!(e, "weight_grad: expected 2 labels (one per event), got 1");
    let e = m.weight_grad(x.view(), Targets::Labels(&[0, 1]), Some(&[1.0, -1.0])).unwrap_err().to_string();
    assert_eq!(e, "weight_grad: event weights must have a positive sum, got 0");
    let x4 = Array2::<f32>::zeros((2, 4));
    let e = m.forward_logits(x4.view()).unwrap_err().to_string();
    assert_eq!(e, "forward: expected 3 feature columns, got 4");
}

#[test]
fn loss_of_predicted_is_the_loss_of_the_predicted_class_and_classes_match_predict_class() {
    // LossOfPredicted must equal Loss with the labels predict_class gives, bit for bit: the
    // same row objective runs with the same class.
    for (seed, (act, out)) in all_cases().into_iter().enumerate().filter(|(_, (_, o))| *o != Output::Linear) {
        let c = case(act, out, seed as u64);
        let y = c.m.predict_class(c.x.view()).unwrap();
        let a = c.m.input_grad_and_scores(c.x.view(), GradTarget::LossOfPredicted).unwrap();
        let b = c.m.input_grad_and_scores(c.x.view(), GradTarget::Loss(Targets::Labels(&y))).unwrap();
        assert_eq!(a.grad, b.grad, "{act}/{out}");
        assert_eq!(a.value, b.value, "{act}/{out}");
        assert_eq!(a.classes, y, "{act}/{out}");
        assert_eq!(b.classes, y, "{act}/{out}");
    }
}
