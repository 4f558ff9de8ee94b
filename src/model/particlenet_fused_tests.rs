//! The hand-written ParticleNet pass (`particlenet_fused.rs`): in inference mode the same
//! function as the candle forward; in training mode (batch statistics, dropout) its gradient
//! against finite differences of the same training-mode loss; the running statistics after a
//! step; identical results for any thread count.

use ndarray::Array2;
use rand::Rng as _;

use super::fused::Host;
use super::tests::{check_fd, jets, small_with};
use super::*;
use crate::model::{Model, Targets};

/// The batch and standardised rows of all events of `x` (what `SetModel` hands the net).
fn batch_of(m: &SetModel<ParticleNet>, x: &Array2<f32>) -> (SetBatch, Vec<f32>) {
    let (f, l) = (m.layout().n_object(), m.layout());
    let (_, _, om, os) = m.standardization();
    let (mut counts, mut raw) = (Vec::new(), Vec::new());
    for row in x.rows() {
        let k = l.count_of(row[l.count_column()]);
        counts.push(k);
        for s in 0..k {
            raw.extend((0..f).map(|j| row[l.slot_column(s, j)]));
        }
    }
    let std = raw.iter().enumerate().map(|(i, v)| (v - om[i % f]) / os[i % f]).collect();
    let ev = SetBatch::zeros(&[x.nrows(), 0]).unwrap();
    (SetBatch::new(counts, raw, f, ev).unwrap(), std)
}

/// Mean softmax cross-entropy of logits `z` (`B × 2`) for `labels`, in f64.
fn mean_ce(z: &[f32], labels: &[i64]) -> f64 {
    let mut s = 0.0;
    for (i, &y) in labels.iter().enumerate() {
        let (a, b) = (f64::from(z[2 * i]), f64::from(z[2 * i + 1]));
        let m = a.max(b);
        let lse = m + ((a - m).exp() + (b - m).exp()).ln();
        s += lse - if y == 0 { a } else { b };
    }
    s / labels.len() as f64
}

/// ∂ mean CE / ∂z: (softmax − onehot)/B.
fn ce_grad(z: &[f32], labels: &[i64]) -> Vec<f32> {
    let n = labels.len() as f32;
    let mut g = vec![0.0f32; z.len()];
    for (i, &y) in labels.iter().enumerate() {
        let (a, b) = (z[2 * i], z[2 * i + 1]);
        let m = a.max(b);
        let (ea, eb) = ((a - m).exp(), (b - m).exp());
        g[2 * i] = (ea / (ea + eb) - if y == 0 { 1.0 } else { 0.0 }) / n;
        g[2 * i + 1] = (eb / (ea + eb) - if y == 1 { 1.0 } else { 0.0 }) / n;
    }
    g
}

/// Inference mode (running statistics, no dropout although the head has p = 0.3) computes
/// the candle forward's logits, with and without fusion: the same sums in another order, so
/// agreement to f32 rounding of O(1) logits (1e-5) — a wrong term is off by O(0.1).
#[test]
fn inference_mode_matches_the_candle_forward() {
    for fusion in [false, true] {
        let m = small_with(fusion, 0.3);
        let x = jets(7);
        let want = m.logits(x.view()).unwrap();
        let (batch, std) = batch_of(&m, &x);
        let h = Host::of(m.net()).unwrap();
        let z = m.net().fused_forward(&h, &batch, &std, false, 5).z;
        for i in 0..x.nrows() {
            for j in 0..2 {
                let (a, b) = (z[2 * i + j], want[[i, j]]);
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "fusion {fusion} jet {i} logit {j}: {a} vs {b}");
            }
        }
    }
}

/// Training mode: the gradient of the mean cross-entropy with batch statistics and a fixed
/// dropout mask (p = 0.3, seed 11) against finite differences of that same loss, for every
/// parameter (checked as in `particlenet_tests.rs`, kinks and kNN switches skipped but at
/// most a third). Dropout must really act: the training-mode logits differ from inference.
#[test]
fn training_mode_weight_gradient_matches_finite_differences() {
    for fusion in [false, true] {
        let m = small_with(fusion, 0.3);
        let x = jets(8);
        let labels = [0i64, 1, 1, 0, 1, 0];
        let (batch, std) = batch_of(&m, &x);
        let h = Host::of(m.net()).unwrap();
        let tape = m.net().fused_forward(&h, &batch, &std, true, 11);
        let inf = m.net().fused_forward(&h, &batch, &std, false, 11).z;
        assert!(tape.z.iter().zip(&inf).any(|(a, b)| (a - b).abs() > 1e-3), "training mode changed nothing");
        let g = m.net().fused_backward(&h, &batch, &tape, &ce_grad(&tape.z, &labels));
        let p = m.params();
        let (mut checked, mut skipped) = (0, 0);
        for j in 0..p.len() {
            let f = |d: f32| {
                let mut q = p.clone();
                q[j] += d;
                let mut mm = m.clone();
                mm.set_params(&q).unwrap();
                let h = Host::of(mm.net()).unwrap();
                mean_ce(&mm.net().fused_forward(&h, &batch, &std, true, 11).z, &labels) as f32
            };
            let (a, b) = check_fd(g[j], 1e-2, f, &format!("fusion {fusion} param {j}"));
            (checked, skipped) = (checked + a, skipped + b);
        }
        assert!(checked >= 2 * skipped, "checked {checked}, skipped {skipped}");
    }
}

/// Many jets, so that rows and edges span several chunks of `rows.rs`.
fn many_jets(n: usize, seed: u64) -> Array2<f32> {
    let mut r = crate::rng::rng(seed);
    let mut x = Array2::<f32>::zeros((n, 19));
    for i in 0..n {
        let k = r.random_range(0..=6usize);
        x[[i, 0]] = k as f32;
        for s in 0..k {
            x[[i, 1 + 3 * s]] = r.random_range(-0.4..0.4);
            x[[i, 2 + 3 * s]] = r.random_range(-0.4..0.4);
            x[[i, 3 + 3 * s]] = r.random_range(0.0..4.0);
        }
    }
    x
}

/// `Model::train_grad`: the loss is the training-mode mean cross-entropy; the running
/// statistics of `bn_fts` move to 0.9·old + 0.1·(batch mean, unbiased batch variance) of the
/// standardised inputs (computed here directly in f64); and loss, gradient and statistics are
/// bit-identical with 1 and 3 threads over a batch of several row chunks.
#[test]
fn train_grad_updates_running_statistics_the_same_for_any_thread_count() {
    let x = many_jets(400, 3);
    let labels: Vec<i64> = (0..400).map(|i| i % 2).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut m = small_with(true, 0.1);
            let (loss, g) = m.train_grad(x.view(), Targets::Labels(&labels), None, 21).unwrap().unwrap();
            let bufs = m.net().store().named_values().unwrap();
            (m, loss, g, bufs)
        })
    };
    let (m, loss, g, bufs) = run(1);
    let (_, loss3, g3, bufs3) = run(3);
    assert_eq!(loss.to_bits(), loss3.to_bits());
    assert!(g.iter().zip(&g3).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(bufs, bufs3);
    let before = small_with(true, 0.1);
    let (batch, std) = batch_of(&before, &x);
    let h = Host::of(before.net()).unwrap();
    let z = before.net().fused_forward(&h, &batch, &std, true, 21).z; // SetModel passes the seed through
    assert!((mean_ce(&z, &labels) - loss).abs() < 1e-5 * (1.0 + loss.abs()), "{loss}");
    let f = 3;
    let r = std.len() / f;
    let store = before.net().store();
    let idx = |name: &str| store.buffers().iter().position(|b| b.name == name).unwrap();
    let (m0, v0) = (
        store.buffer_values(idx("bn_fts.running_mean")).unwrap(),
        store.buffer_values(idx("bn_fts.running_var")).unwrap(),
    );
    let (m1, v1) = (
        m.net().store().buffer_values(idx("bn_fts.running_mean")).unwrap(),
        m.net().store().buffer_values(idx("bn_fts.running_var")).unwrap(),
    );
    for j in 0..f {
        let mean = (0..r).map(|i| f64::from(std[i * f + j])).sum::<f64>() / r as f64;
        let var = (0..r).map(|i| (f64::from(std[i * f + j]) - mean).powi(2)).sum::<f64>() / (r - 1) as f64;
        let (em, ev) = (0.9 * f64::from(m0[j]) + 0.1 * mean, 0.9 * f64::from(v0[j]) + 0.1 * var);
        assert!((f64::from(m1[j]) - em).abs() < 1e-5 && (f64::from(v1[j]) - ev).abs() < 1e-5, "channel {j}");
    }
}
