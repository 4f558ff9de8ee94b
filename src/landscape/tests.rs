//! Spectra against independent references: a dense Hessian of a tiny model from f64 second
//! differences of a textbook f64 loss, and quadratic forms with a spectrum fixed by
//! construction (A = Q·diag(d)·Qᵀ with a random orthogonal Q).
//!
//! Tolerances. The R-operator products are f32: relative errors of a few 1e-6 on these O(1)
//! models. The f64 second difference with h = 1e-4 has truncation h²·|∂⁴L|/12 ≲ 1e-9 and
//! rounding ≈ 1e-16·|L|/h² ≈ 1e-8. So products agree to ≈ 1e-5 relative; 1e-4 leaves a margin
//! while any missing term (an O(0.1) error) fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ndarray::Array2;
use rand::Rng as _;

use super::op::{dot, gaussian, norm, orthogonalize, rademacher};
use super::*;
use crate::error::Result;
use crate::model::{Activation, Mlp, MlpConfig, Output, Targets};
use crate::optim::Control;

const H: f64 = 1e-4;

/// A tiny model with a non-trivial standardisation, events, targets and unequal weights.
struct Case {
    m: Mlp,
    x: Array2<f32>,
    labels: Vec<i64>,
    values: Array2<f32>,
    w: Vec<f32>,
}

fn case(act: Activation, out: Output, seed: u64) -> Case {
    let k = match out {
        Output::Sigmoid => 1,
        Output::Softmax => 3,
        Output::Linear => 2,
    };
    let cfg = MlpConfig { activation: act, output: out, seed, ..MlpConfig::default() };
    let mut m = Mlp::new(&[3, 4, 3, k], cfg).unwrap();
    m.set_standardization(vec![0.5, -1.0, 2.0], vec![1.5, 0.7, 2.5]).unwrap();
    let mut r = crate::rng::rng(seed + 100);
    let n = 12;
    let x = Array2::from_shape_fn((n, 3), |(_, j)| m.mean()[j] + m.std()[j] * r.random_range(-2.0f32..2.0));
    let classes = if out == Output::Softmax { 3 } else { 2 };
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let values = Array2::from_shape_fn((n, k), |_| r.random_range(-1.0f32..1.0));
    let w: Vec<f32> = (0..n).map(|i| 0.5 + 0.1 * i as f32).collect();
    Case { m, x, labels, values, w }
}

fn targets(c: &Case) -> Targets<'_> {
    if c.m.output() == Output::Linear {
        Targets::Values(c.values.view())
    } else {
        Targets::Labels(&c.labels)
    }
}

/// The weighted mean loss in f64 from PyTorch-order parameters, written from the textbook
/// definitions (independent of the fused code): z = W·a + b per layer.
fn ref_loss(c: &Case, theta: &[f64]) -> f64 {
    let m = &c.m;
    let (mut total, mut wsum) = (0.0, 0.0);
    for i in 0..c.x.nrows() {
        let mut a: Vec<f64> =
            (0..3).map(|j| (f64::from(c.x[[i, j]]) - f64::from(m.mean()[j])) / f64::from(m.std()[j])).collect();
        let mut off = 0;
        for (l, (o, inp)) in m.layer_shapes().into_iter().enumerate() {
            let (w, b) = (&theta[off..off + o * inp], &theta[off + o * inp..off + o * inp + o]);
            off += o * inp + o;
            let mut z: Vec<f64> = (0..o).map(|r| b[r] + (0..inp).map(|q| w[r * inp + q] * a[q]).sum::<f64>()).collect();
            if l + 1 < m.n_layers() {
                z.iter_mut().for_each(|v| *v = m.activation().reference_f64(*v));
            }
            a = z;
        }
        let li = match m.output() {
            Output::Sigmoid => {
                let (s, y) = (1.0 / (1.0 + (-a[0]).exp()), c.labels[i] as f64);
                -y * s.ln() - (1.0 - y) * (1.0 - s).ln()
            }
            Output::Softmax => {
                let lse = a.iter().map(|v| v.exp()).sum::<f64>().ln();
                lse - a[c.labels[i] as usize]
            }
            Output::Linear => {
                a.iter().enumerate().map(|(j, v)| (v - f64::from(c.values[[i, j]])).powi(2)).sum::<f64>()
                    / a.len() as f64
            }
        };
        total += f64::from(c.w[i]) * li;
        wsum += f64::from(c.w[i]);
    }
    total / wsum
}

/// Dense Hessian (PyTorch order) by f64 second differences:
/// H_ij ≈ [L(+i+j) − L(+i−j) − L(−i+j) + L(−i−j)] / 4h².
#[allow(clippy::needless_range_loop)]
fn fd_hessian(c: &Case) -> Vec<Vec<f64>> {
    let theta: Vec<f64> = c.m.params_flat().iter().map(|&v| f64::from(v)).collect();
    let n = theta.len();
    let at = |i: usize, si: f64, j: usize, sj: f64| {
        let mut t = theta.clone();
        t[i] += si * H;
        t[j] += sj * H;
        ref_loss(c, &t)
    };
    let mut h = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let v =
                (at(i, 1.0, j, 1.0) - at(i, 1.0, j, -1.0) - at(i, -1.0, j, 1.0) + at(i, -1.0, j, -1.0)) / (4.0 * H * H);
            h[i][j] = v;
            h[j][i] = v;
        }
    }
    h
}

fn matvec(h: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    h.iter().map(|row| dot(row, v)).collect()
}

/// Eigenvalues of a dense symmetric matrix, sorted by decreasing magnitude.
fn dense_eigs(h: &[Vec<f64>]) -> Vec<f64> {
    let n = h.len();
    let flat: Vec<f64> = h.iter().flatten().copied().collect();
    let mut e = eig::eigenvalues_nalgebra(n, &flat).unwrap();
    e.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
    e
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn hvp_matches_dense_finite_difference_hessian_for_every_activation_and_output() {
    let mut r = crate::rng::rng(7);
    for (seed, a) in Activation::NAMES.iter().enumerate() {
        for (o_i, o) in Output::NAMES.iter().enumerate() {
            let c = case(Activation::parse(a).unwrap(), Output::parse(o).unwrap(), (seed * 3 + o_i) as u64);
            let h = fd_hessian(&c);
            let lh = c.m.loss_hessian(c.x.view(), targets(&c), Some(&c.w)).unwrap();
            // The loss is the same weighted mean.
            let theta: Vec<f64> = c.m.params_flat().iter().map(|&v| f64::from(v)).collect();
            assert!(rel(lh.loss(), ref_loss(&c, &theta)) < 1e-5, "{a}/{o} loss");
            for _ in 0..3 {
                let v = gaussian(theta.len(), &mut r);
                let want = matvec(&h, &v);
                let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                let got: Vec<f64> = lh.hvp(&v32).unwrap().iter().map(|&x| f64::from(x)).collect();
                let err: Vec<f64> = got.iter().zip(&want).map(|(g, w)| g - w).collect();
                assert!(
                    norm(&err) <= 1e-4 * norm(&want) + 1e-6,
                    "{a}/{o}: |Hv − H_fd v| = {} of {}",
                    norm(&err),
                    norm(&want)
                );
            }
        }
    }
}

#[test]
fn quadratic_form_is_v_dot_hv_for_every_activation_output_and_layer() {
    // vᵀHv by the R-forward pass alone must equal vᵀ(H·v) from the full R-back product: the
    // same exact quantity by another route, so they agree to f32 rounding (1e-5 relative of
    // ‖v‖²·‖H‖ scale; the forms can be near 0 for indefinite H, hence the absolute term).
    let mut r = crate::rng::rng(11);
    for (seed, a) in Activation::NAMES.iter().enumerate() {
        for (o_i, o) in Output::NAMES.iter().enumerate() {
            let c = case(Activation::parse(a).unwrap(), Output::parse(o).unwrap(), (seed * 5 + o_i) as u64);
            for layer in std::iter::once(None).chain((0..c.m.n_layers()).map(Some)) {
                let op = ModelHessian::new(&c.m, c.x.view(), targets(&c), Some(&c.w), layer).unwrap();
                for _ in 0..2 {
                    let v = gaussian(op.dim(), &mut r);
                    let mut hv = vec![0.0; op.dim()];
                    op.apply(&v, &mut hv).unwrap();
                    let want = dot(&v, &hv);
                    let got = op.quadratic_form(&v).unwrap();
                    let scale = norm(&v) * norm(&hv);
                    assert!((got - want).abs() <= 1e-5 * scale + 1e-9, "{a}/{o} layer {layer:?}: {got} vs {want}");
                }
            }
        }
    }
}

#[test]
fn layer_hvp_is_the_diagonal_block() {
    let c = case(Activation::Tanh, Output::Softmax, 3);
    let h = fd_hessian(&c);
    let mut r = crate::rng::rng(1);
    for l in 0..c.m.n_layers() {
        let op = ModelHessian::new(&c.m, c.x.view(), targets(&c), Some(&c.w), Some(l)).unwrap();
        let range = crate::model::Model::param_groups(&c.m)[l].range.clone();
        assert_eq!(op.dim(), range.len());
        // A block vector in the internal layout, mapped to PyTorch order to index H_fd.
        let v = gaussian(op.dim(), &mut r);
        let mut hv = vec![0.0; op.dim()];
        op.apply(&v, &mut hv).unwrap();
        let (vt, hvt) = (op.to_torch_order(&v).unwrap(), op.to_torch_order(&hv).unwrap());
        let block: Vec<Vec<f64>> = range.clone().map(|i| range.clone().map(|j| h[i][j]).collect()).collect();
        let want = matvec(&block, &vt);
        let err: Vec<f64> = hvt.iter().zip(&want).map(|(g, w)| g - w).collect();
        assert!(norm(&err) <= 1e-4 * norm(&want) + 1e-6, "layer {l}: {} of {}", norm(&err), norm(&want));
    }
}

#[test]
#[allow(clippy::needless_range_loop)]
fn power_lanczos_trace_and_slq_match_the_dense_hessian_of_a_tiny_model() {
    let c = case(Activation::Tanh, Output::Sigmoid, 11);
    let h = fd_hessian(&c);
    let want = dense_eigs(&h);
    let op = ModelHessian::new(&c.m, c.x.view(), targets(&c), Some(&c.w), None).unwrap();
    let q = Control::quiet();
    let p = power_iteration(&op, &PowerConfig { k: 3, max_iter: 5000, tol: 1e-9, seed: 1 }, &q).unwrap();
    let l = lanczos(&op, &LanczosConfig { k: 3, max_iter: 35, tol: 1e-6, seed: 2 }, &q).unwrap();
    for i in 0..3 {
        assert!(rel(p.eigenvalues[i], want[i]) < 1e-3, "power λ{i} {} vs {}", p.eigenvalues[i], want[i]);
        assert!(rel(l.eigenvalues[i], want[i]) < 1e-4, "lanczos λ{i} {} vs {}", l.eigenvalues[i], want[i]);
    }
    assert!(l.converged.iter().all(|&x| x));
    // Eigenvectors: ‖H_fd y − λy‖ small (y mapped to PyTorch order).
    let y = op.to_torch_order(&l.eigenvectors[0]).unwrap();
    let r: Vec<f64> = matvec(&h, &y).iter().zip(&y).map(|(a, b)| a - l.eigenvalues[0] * b).collect();
    assert!(norm(&r) < 1e-3 * want[0].abs());

    // Hutchinson: unbiased with Var(vᵀHv) = 2 Σ_{i≠j} H_ij² for Rademacher v.
    let n = h.len();
    let tr: f64 = (0..n).map(|i| h[i][i]).sum();
    let off2: f64 =
        (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| h[i][j] * h[i][j]).sum();
    let samples = 400;
    let t = hutchinson(&op, &TraceConfig { samples, tol: 0.0, seed: 3 }, &q).unwrap();
    let sd = (2.0 * off2 / samples as f64).sqrt();
    assert!((t.trace - tr).abs() < 4.0 * sd, "trace {} vs {tr} (sd {sd})", t.trace);
    assert!(rel(t.stderr, sd) < 0.3, "stderr {} vs {sd}", t.stderr);

    // SLQ: weights sum to 1; the mean Σwθ is the mean of vᵀHv/n over runs, unbiased for tr/n.
    let runs = 100;
    let d = slq(&op, &SlqConfig { iters: 20, runs, seed: 4 }, &q).unwrap();
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let sd_mean = (2.0 * off2 / runs as f64).sqrt() / n as f64;
    assert!((d.mean() - tr / n as f64).abs() < 4.0 * sd_mean, "SLQ mean {} vs {}", d.mean(), tr / n as f64);
    let (x, rho) = density_on_grid(&d, 4000, Some(0.05 * want[0].abs())).unwrap();
    let integral: f64 = x.windows(2).zip(rho.windows(2)).map(|(x, y)| 0.5 * (y[0] + y[1]) * (x[1] - x[0])).sum();
    assert!((integral - 1.0).abs() < 1e-3, "density integrates to {integral}");
}

/// A = Q·diag(d)·Qᵀ for a seeded random orthogonal Q: the spectrum is d by construction.
fn quadratic(d: &[f64], seed: u64) -> DenseOp {
    let n = d.len();
    let mut r = crate::rng::rng(seed);
    let mut q: Vec<Vec<f64>> = Vec::new();
    for _ in 0..n {
        let mut v = gaussian(n, &mut r);
        orthogonalize(&mut v, &q);
        op::normalize(&mut v);
        q.push(v);
    }
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| q[k][i] * d[k] * q[k][j]).sum();
        }
    }
    DenseOp::new(n, a).unwrap()
}

fn known_spectrum() -> Vec<f64> {
    // Three separated top eigenvalues, a bulk in [0.05, 1], two negative ones.
    let mut d = vec![10.0, 7.0, 5.0, -0.8, -0.3];
    d.extend((0..35).map(|i| 0.05 + 0.95 * i as f64 / 34.0));
    d
}

#[test]
fn every_method_recovers_a_known_spectrum() {
    let d = known_spectrum();
    let n = d.len();
    let a = quadratic(&d, 5);
    let q = Control::quiet();
    let p = power_iteration(&a, &PowerConfig { k: 3, max_iter: 2000, tol: 1e-12, seed: 1 }, &q).unwrap();
    let l = lanczos(&a, &LanczosConfig { k: 3, max_iter: 40, tol: 1e-10, seed: 1 }, &q).unwrap();
    for (i, want) in [10.0, 7.0, 5.0].into_iter().enumerate() {
        assert!(rel(p.eigenvalues[i], want) < 1e-8, "power {:?}", p.eigenvalues);
        assert!(rel(l.eigenvalues[i], want) < 1e-10, "lanczos {:?}", l.eigenvalues);
    }
    assert_eq!(p.stop, crate::optim::Stop::Converged);
    // Lanczos needs far fewer products than power iteration.
    assert!(l.hvps < p.hvps, "lanczos {} vs power {}", l.hvps, p.hvps);

    // Trace: Rademacher quadratic forms of a diagonal matrix are exactly its trace.
    let diag = DenseOp::diagonal(&d);
    let t = hutchinson(&diag, &TraceConfig { samples: 5, tol: 0.0, seed: 2 }, &q).unwrap();
    assert!((t.trace - d.iter().sum::<f64>()).abs() < 1e-12 && t.stderr < 1e-12);

    // SLQ with n steps: every run's nodes are the whole spectrum.
    let s = slq(&a, &SlqConfig { iters: n, runs: 3, seed: 3 }, &q).unwrap();
    let mut sorted = d.clone();
    sorted.sort_by(f64::total_cmp);
    for run in s.nodes.chunks(n) {
        for (x, y) in run.iter().zip(&sorted) {
            assert!((x - y).abs() < 1e-8, "SLQ node {x} vs {y}");
        }
    }
    assert!((s.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);

    // Reduced Hessian: the identity basis gives the whole spectrum, the top eigenvectors
    // give the top eigenvalues, a full random basis again the whole spectrum.
    let full = reduced_hessian(&a, Basis::Identity, &q).unwrap();
    let mut desc = sorted.clone();
    desc.reverse();
    for (x, y) in full.eigenvalues.iter().zip(&desc) {
        assert!((x - y).abs() < 1e-10);
    }
    let top = reduced_hessian(&a, Basis::Vectors(l.eigenvectors.clone()), &q).unwrap();
    assert_eq!(top.dim, 3);
    for (x, y) in top.eigenvalues.iter().zip([10.0, 7.0, 5.0]) {
        assert!(rel(*x, y) < 1e-8, "{:?}", top.eigenvalues);
    }
    let rnd = reduced_hessian(&a, Basis::Random { k: n, seed: 9 }, &q).unwrap();
    for (x, y) in rnd.eigenvalues.iter().zip(&desc) {
        assert!((x - y).abs() < 1e-9);
    }
}

#[test]
fn reduced_hessian_of_a_random_subspace_is_the_projected_matrix() {
    // k = 2 random directions: M = QᵀAQ, so its eigenvalues lie within [λ_min, λ_max]
    // (Cauchy interlacing) and its trace is Σ qᵢᵀAqᵢ.
    let d = known_spectrum();
    let a = quadratic(&d, 6);
    let r = reduced_hessian(&a, Basis::Random { k: 2, seed: 1 }, &Control::quiet()).unwrap();
    assert_eq!((r.dim, r.eigenvalues.len(), r.hvps), (2, 2, 2));
    assert!(r.eigenvalues.iter().all(|&e| (-0.8..=10.0).contains(&e)));
    assert!((r.matrix[1] - r.matrix[2]).abs() < 1e-15);
    assert!((r.eigenvalues.iter().sum::<f64>() - (r.matrix[0] + r.matrix[3])).abs() < 1e-12);
}

/// An operator that sets the interrupt flag after `after` products.
struct Interrupting<'a> {
    inner: &'a DenseOp,
    after: usize,
    count: AtomicUsize,
    flag: Arc<AtomicBool>,
}

impl LinearOp for Interrupting<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.after {
            self.flag.store(true, Ordering::Relaxed);
        }
        self.inner.apply(v, out)
    }
}

#[test]
fn interrupting_returns_the_best_estimate_so_far_with_its_reason() {
    use crate::optim::Stop;
    let a = quadratic(&known_spectrum(), 7);
    let control = Control::quiet();
    let op = |after| Interrupting { inner: &a, after, count: AtomicUsize::new(0), flag: control.interrupt.clone() };
    let reset = || control.interrupt.store(false, Ordering::Relaxed);

    // Power: the Rayleigh quotient's error shrinks by (7/10)² per product, so the first
    // eigenvalue meets tol 1e-10 within ≈ 35 products and the third cannot be done by 45;
    // interrupted at product 45 it reports the first plus the one in progress.
    let p = power_iteration(&op(45), &PowerConfig { k: 3, max_iter: 1000, tol: 1e-10, seed: 1 }, &control).unwrap();
    assert_eq!(p.stop, Stop::Interrupted);
    assert_eq!(p.hvps, 45);
    assert!(rel(p.eigenvalues[0], 10.0) < 1e-8 && p.converged[0]);
    assert_eq!(p.converged.last(), Some(&false));
    assert!(p.eigenvalues.len() >= 2);
    reset();

    let l = lanczos(&op(8), &LanczosConfig { k: 2, max_iter: 40, tol: 1e-12, seed: 1 }, &control).unwrap();
    assert_eq!((l.stop, l.hvps, l.eigenvalues.len()), (Stop::Interrupted, 8, 2));
    assert!(rel(l.eigenvalues[0], 10.0) < 1e-2, "after 8 steps {:?}", l.eigenvalues);
    reset();

    let t = hutchinson(&op(7), &TraceConfig { samples: 100, tol: 0.0, seed: 1 }, &control).unwrap();
    assert_eq!((t.stop, t.samples), (Stop::Interrupted, 7));
    assert!(t.trace.is_finite());
    reset();

    // SLQ interrupted inside its second run: one full run plus the partial one.
    let s = slq(&op(15), &SlqConfig { iters: 10, runs: 4, seed: 1 }, &control).unwrap();
    assert_eq!((s.stop, s.runs, s.hvps), (Stop::Interrupted, 2, 15));
    assert!((s.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    reset();

    let r = reduced_hessian(&op(4), Basis::Identity, &control).unwrap();
    assert_eq!((r.stop, r.dim), (Stop::Interrupted, 4));
    reset();

    // Set beforehand: nothing is computed, and that is reported, not an error.
    control.interrupt.store(true, Ordering::Relaxed);
    let p = power_iteration(&a, &PowerConfig::default(), &control).unwrap();
    assert_eq!((p.stop, p.eigenvalues.len(), p.hvps), (Stop::Interrupted, 0, 0));
    reset();
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let a = DenseOp::diagonal(&[1.0, 2.0]);
    let q = Control::quiet();
    let e = power_iteration(&a, &PowerConfig { k: 3, ..PowerConfig::default() }, &q).unwrap_err();
    assert_eq!(e.to_string(), "hessian_top: option 'k' must be between 1 and the dimension 2, got 3");
    assert!(lanczos(&a, &LanczosConfig { k: 0, ..LanczosConfig::default() }, &q).is_err());
    assert!(hutchinson(&a, &TraceConfig { samples: 0, ..TraceConfig::default() }, &q).is_err());
    assert!(slq(&a, &SlqConfig { runs: 0, ..SlqConfig::default() }, &q).is_err());
    let e = reduced_hessian(&a, Basis::Vectors(vec![vec![1.0, 0.0], vec![2.0, 0.0]]), &q).unwrap_err();
    assert!(e.to_string().contains("linearly dependent"), "{e}");
}

#[test]
fn rademacher_vectors_are_signs() {
    let v = rademacher(1000, &mut crate::rng::rng(1));
    assert!(v.iter().all(|x| x.abs() == 1.0));
    let mean = v.iter().sum::<f64>() / 1000.0;
    assert!(mean.abs() < 0.15);
}

#[cfg(feature = "lapack")]
#[test]
fn lapack_and_nalgebra_eigenvalues_agree() {
    let d = known_spectrum();
    let a = quadratic(&d, 8);
    let n = d.len();
    let x = eig::eigenvalues_lapack(n, a.entries()).unwrap();
    let y = eig::eigenvalues_nalgebra(n, a.entries()).unwrap();
    for (p, q) in x.iter().zip(&y) {
        assert!((p - q).abs() < 1e-10, "{p} vs {q}");
    }
    assert_eq!(eig::backend(), "lapack");
}

fn trained_case() -> (Mlp, crate::Dataset) {
    let ds = crate::data::synthetic::gaussians(600, 4);
    let m = Mlp::new(&[20, 8, 1], MlpConfig { activation: Activation::Tanh, seed: 2, ..MlpConfig::default() }).unwrap();
    let cfg = crate::model::TrainConfig { epochs: 2, seed: 1, ..Default::default() };
    (crate::model::train(&m, &ds, &cfg, &Control::quiet()).unwrap().model.as_mlp().unwrap().clone(), ds)
}

#[test]
fn sharpness_is_first_order_rho_times_gradient_norm_for_a_small_ball() {
    // One step to the boundary of a small ball: ε = ρ·g/‖g‖, so ΔL = ρ‖g‖ + O(ρ²·λ_max);
    // with ρ = 1e-3, ‖g‖ ≈ 0.05 and λ_max ≈ 1, the second-order part is ≲ 1 % of the first.
    let (m, ds) = trained_case();
    let (_, g) = m.weight_grad(ds.x(), Targets::Labels(ds.label().unwrap()), None).unwrap();
    let gn = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    let rho = 1e-3;
    let cfg = SharpnessConfig { rho, steps: 1, ..SharpnessConfig::default() };
    let s = sharpness(&m, &ds, &cfg, &Control::quiet()).unwrap();
    assert!((s.delta_loss / (rho * gn) - 1.0).abs() < 0.05, "ΔL {} vs ρ‖g‖ {}", s.delta_loss, rho * gn);
    assert!((s.norm - rho).abs() < 1e-6);
    // More steps can only find a larger increase, and stay in the (per-layer, relative) balls.
    let cfg = SharpnessConfig { rho: 0.05, relative: true, per_layer: true, steps: 8, step_size: None };
    let s = sharpness(&m, &ds, &cfg, &Control::quiet()).unwrap();
    let w = m.params_flat();
    let (shapes, mut off) = (m.layer_shapes(), 0);
    for ((o, i), n) in shapes.into_iter().zip(&s.layer_norms) {
        let len = o * i + o;
        let wn = w[off..off + len].iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        assert!(*n <= 0.05 * wn * (1.0 + 1e-5), "layer norm {n} > {}", 0.05 * wn);
        off += len;
    }
    assert!(s.delta_loss > 0.0 && s.steps == 8);
}

#[test]
fn sam_attack_evaluates_the_loss_at_the_sam_point() {
    // Independently: w' = w + ρ·g/‖g‖ from weight_grad in PyTorch order, loss by Mlp::loss.
    let (m, ds) = trained_case();
    let labels = Targets::Labels(ds.label().unwrap());
    let (l0, g) = m.weight_grad(ds.x(), labels, None).unwrap();
    let gn = g.iter().map(|v| v * v).sum::<f32>().sqrt();
    let rho = 0.5f32;
    let mut shifted = m.clone();
    shifted
        .set_params_flat(&m.params_flat().iter().zip(&g).map(|(w, gi)| w + rho * gi / gn).collect::<Vec<_>>())
        .unwrap();
    let want = shifted.loss(ds.x(), labels, None).unwrap();
    let p = crate::model::WeightPerturbation::Sam { rho: f64::from(rho) };
    let a = weight_attack(&m, &ds, &p, 1, 0, &Control::quiet()).unwrap();
    assert!((a.clean_loss - l0).abs() < 1e-6);
    assert!((a.loss - want).abs() < 1e-5, "{} vs {want}", a.loss);
    assert!((a.norm - f64::from(rho)).abs() < 1e-5);
    assert!(a.loss > a.clean_loss && a.samples == 1);
}
