//! Kernels on row-major `n × c` f32 buffers for the hand-written set networks (the fused
//! ParticleNet training pass, `particlenet_train.rs`): 1×1 convolutions as GEMMs, batch norm
//! with batch or running statistics, and their backward passes.
//!
//! **Parallel and reproducible.** Rows are split into fixed chunks of [`CHUNK`] rows,
//! independent of the thread count; each chunk runs on one rayon task; every reduction over
//! rows (weight gradients, batch statistics, γ/β gradients) sums per-chunk partials in chunk
//! order (statistics in f64). Results are therefore bit-identical for any number of threads.

use rayon::prelude::*;

use super::gemm::gemm;

/// Rows per parallel task.
pub(crate) const CHUNK: usize = 512;

/// Batch-norm ε (PyTorch's default).
pub(crate) const BN_EPS: f32 = 1e-5;

/// Momentum of the running statistics (PyTorch's default 0.1).
pub(crate) const BN_MOMENTUM: f32 = 0.1;

/// `y (n × o) = x (n × c) · wᵀ`, `w` being `o × c` (a 1×1 convolution without bias).
pub(crate) fn matmul_wt(x: &[f32], c: usize, w: &[f32], o: usize, y: &mut [f32]) {
    if c == 0 {
        y.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    y.par_chunks_mut(CHUNK * o).zip(x.par_chunks(CHUNK * c)).for_each(|(yc, xc)| {
        gemm(xc.len() / c, c, o, xc, false, w, true, 0.0, yc);
    });
}

/// `dx (n × c) += dy (n × o) · w` (`w` `o × c`): the input gradient of [`matmul_wt`].
pub(crate) fn matmul_back_input(dy: &[f32], o: usize, w: &[f32], c: usize, dx: &mut [f32]) {
    if c == 0 {
        return;
    }
    dx.par_chunks_mut(CHUNK * c).zip(dy.par_chunks(CHUNK * o)).for_each(|(xc, yc)| {
        gemm(yc.len() / o, o, c, yc, false, w, false, 1.0, xc);
    });
}

/// `dw (o × c) += dyᵀ · x`: the weight gradient of [`matmul_wt`].
pub(crate) fn matmul_back_weight(dy: &[f32], o: usize, x: &[f32], c: usize, dw: &mut [f32]) {
    if c == 0 {
        return;
    }
    let parts: Vec<Vec<f32>> = dy
        .par_chunks(CHUNK * o)
        .zip(x.par_chunks(CHUNK * c))
        .map(|(yc, xc)| {
            let mut p = vec![0.0f32; o * c];
            gemm(o, yc.len() / o, c, yc, true, xc, false, 0.0, &mut p);
            p
        })
        .collect();
    for p in parts {
        dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
}

/// Σ over rows of `f(row)` per channel (f64, per-chunk partials summed in order).
fn channel_sums(x: &[f32], c: usize, f: impl Fn(usize, f32) -> f64 + Sync) -> Vec<f64> {
    let parts: Vec<Vec<f64>> = x
        .par_chunks(CHUNK * c)
        .map(|xc| {
            let mut s = vec![0.0f64; c];
            for row in xc.chunks_exact(c) {
                for (j, (a, &v)) in s.iter_mut().zip(row).enumerate() {
                    *a += f(j, v);
                }
            }
            s
        })
        .collect();
    let mut s = vec![0.0f64; c];
    for p in parts {
        s.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    s
}

/// What a batch norm keeps for its backward pass.
pub(crate) struct BnTape {
    /// `1/√(var + ε)` per channel (batch variance in training, running variance otherwise).
    pub inv_std: Vec<f32>,
    /// Whether the statistics were the batch's (their gradient then enters the backward).
    pub batch_stats: bool,
    /// Batch mean and unbiased batch variance (for the running statistics; training only).
    pub mean: Vec<f32>,
    pub var_unbiased: Vec<f32>,
}

/// Batch norm in place on `x` (`n × c`): `x̂ = (x − μ)/√(σ² + ε)` is written into `x` (kept
/// for the backward pass) and `y = γ x̂ + β` (then `max(y, 0)` with `relu`) into `y`. With
/// `running = Some((mean, var))` the statistics are those (inference); otherwise the batch's
/// mean and biased variance over the `n` rows (training, as PyTorch).
pub(crate) fn batch_norm(
    x: &mut [f32],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    running: Option<(&[f32], &[f32])>,
    relu: bool,
    y: &mut [f32],
) -> BnTape {
    let n = x.len() / c.max(1);
    let (mean, var, var_unbiased) = match running {
        Some((m, v)) => (m.to_vec(), v.to_vec(), Vec::new()),
        None if n == 0 => (vec![0.0; c], vec![1.0; c], vec![1.0; c]),
        None => {
            let mean64: Vec<f64> = channel_sums(x, c, |_, v| f64::from(v)).iter().map(|s| s / n as f64).collect();
            let sq = channel_sums(x, c, |j, v| (f64::from(v) - mean64[j]).powi(2));
            let var: Vec<f32> = sq.iter().map(|s| (s / n as f64) as f32).collect();
            let vu = sq.iter().map(|s| (s / (n.max(2) - 1) as f64) as f32).collect();
            (mean64.iter().map(|&m| m as f32).collect(), var, vu)
        }
    };
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
    x.par_chunks_mut(CHUNK * c).zip(y.par_chunks_mut(CHUNK * c)).for_each(|(xc, yc)| {
        for (xr, yr) in xc.chunks_exact_mut(c).zip(yc.chunks_exact_mut(c)) {
            for j in 0..c {
                let h = (xr[j] - mean[j]) * inv_std[j];
                xr[j] = h;
                let v = gamma[j] * h + beta[j];
                yr[j] = if relu { v.max(0.0) } else { v };
            }
        }
    });
    let batch_stats = running.is_none();
    BnTape { inv_std, batch_stats, mean: if batch_stats { mean } else { Vec::new() }, var_unbiased }
}

/// Backward of [`batch_norm`]: `dy` (`n × c`, already through the ReLU) becomes the gradient
/// with respect to the pre-norm input, in place; `dgamma`, `dbeta` receive Σ dy·x̂ and Σ dy.
/// With batch statistics `dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))`, else `dx = γ/σ · dy`.
pub(crate) fn batch_norm_back(
    dy: &mut [f32],
    xhat: &[f32],
    c: usize,
    gamma: &[f32],
    tape: &BnTape,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = dy.len() / c.max(1);
    if n == 0 {
        return;
    }
    let sdy = channel_sums(dy, c, |_, v| f64::from(v));
    let parts: Vec<Vec<f64>> = dy
        .par_chunks(CHUNK * c)
        .zip(xhat.par_chunks(CHUNK * c))
        .map(|(dc, hc)| {
            let mut s = vec![0.0f64; c];
            for (dr, hr) in dc.chunks_exact(c).zip(hc.chunks_exact(c)) {
                for j in 0..c {
                    s[j] += f64::from(dr[j]) * f64::from(hr[j]);
                }
            }
            s
        })
        .collect();
    let mut sdyx = vec![0.0f64; c];
    for p in parts {
        sdyx.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    for j in 0..c {
        dgamma[j] += sdyx[j] as f32;
        dbeta[j] += sdy[j] as f32;
    }
    let scale: Vec<f32> = (0..c).map(|j| gamma[j] * tape.inv_std[j]).collect();
    let (m_dy, m_dyx): (Vec<f32>, Vec<f32>) = if tape.batch_stats {
        (sdy.iter().map(|s| (s / n as f64) as f32).collect(), sdyx.iter().map(|s| (s / n as f64) as f32).collect())
    } else {
        (vec![0.0; c], vec![0.0; c])
    };
    dy.par_chunks_mut(CHUNK * c).zip(xhat.par_chunks(CHUNK * c)).for_each(|(dc, hc)| {
        for (dr, hr) in dc.chunks_exact_mut(c).zip(hc.chunks_exact(c)) {
            for j in 0..c {
                dr[j] = scale[j] * (dr[j] - m_dy[j] - hr[j] * m_dyx[j]);
            }
        }
    });
}

/// `dy ⊙ [y > 0]` in place (backward of a ReLU whose output is `y`).
pub(crate) fn relu_back(dy: &mut [f32], y: &[f32]) {
    dy.par_chunks_mut(CHUNK * 8).zip(y.par_chunks(CHUNK * 8)).for_each(|(d, v)| {
        for (a, &b) in d.iter_mut().zip(v) {
            if b <= 0.0 {
                *a = 0.0;
            }
        }
    });
}

/// The running statistics after one training batch: `(1 − m)·old + m·batch` (PyTorch, with
/// the unbiased batch variance).
pub(crate) fn update_running(mean: &mut [f32], var: &mut [f32], tape: &BnTape) {
    for j in 0..mean.len() {
        mean[j] = (1.0 - BN_MOMENTUM) * mean[j] + BN_MOMENTUM * tape.mean[j];
        var[j] = (1.0 - BN_MOMENTUM) * var[j] + BN_MOMENTUM * tape.var_unbiased[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch statistics by hand: column [1, 2, 3, 6] has mean 3 and biased variance
    /// (4 + 1 + 0 + 9)/4 = 3.5 (unbiased 14/3); x̂ = (x − 3)/√3.50001.
    #[test]
    fn batch_norm_uses_the_batch_statistics() {
        let mut x = vec![1.0f32, 2.0, 3.0, 6.0];
        let mut y = vec![0.0f32; 4];
        let t = batch_norm(&mut x, 1, &[2.0], &[0.5], None, false, &mut y);
        let s = (3.5f32 + BN_EPS).sqrt();
        for (i, v) in [1.0f32, 2.0, 3.0, 6.0].iter().enumerate() {
            assert!((x[i] - (v - 3.0) / s).abs() < 1e-6);
            assert!((y[i] - (2.0 * (v - 3.0) / s + 0.5)).abs() < 1e-6);
        }
        assert!((t.mean[0] - 3.0).abs() < 1e-6 && (t.var_unbiased[0] - 14.0 / 3.0).abs() < 1e-5);
        let (mut m, mut v) = (vec![0.0f32], vec![1.0f32]);
        update_running(&mut m, &mut v, &t);
        // 0.9·0 + 0.1·3 = 0.3; 0.9·1 + 0.1·14/3 = 1.36667.
        assert!((m[0] - 0.3).abs() < 1e-6 && (v[0] - 1.366_666_7).abs() < 1e-5);
    }

    /// The backward pass against central differences of L = Σ r ⊙ BN(x) (smooth: no ReLU),
    /// in f64-accurate terms: the f32 loss of O(10) over h = 1e-2 has noise ≲ 1e-4.
    #[test]
    fn batch_norm_backward_matches_finite_differences() {
        let (n, c) = (7, 3);
        let x0: Vec<f32> = (0..n * c).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3).collect();
        let r: Vec<f32> = (0..n * c).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
        let (g, b) = (vec![1.5f32, -0.7, 0.9], vec![0.1f32, 0.2, -0.3]);
        for train in [true, false] {
            let stats = ([0.2f32, -0.1, 0.3], [0.8f32, 1.3, 2.0]);
            let running = if train { None } else { Some((&stats.0[..], &stats.1[..])) };
            let loss = |x: &[f32]| -> f64 {
                let mut xx = x.to_vec();
                let mut y = vec![0.0; n * c];
                batch_norm(&mut xx, c, &g, &b, running, false, &mut y);
                y.iter().zip(&r).map(|(a, b)| f64::from(a * b)).sum()
            };
            let mut xh = x0.clone();
            let mut y = vec![0.0; n * c];
            let tape = batch_norm(&mut xh, c, &g, &b, running, false, &mut y);
            let mut d = r.clone();
            let (mut dg, mut db) = (vec![0.0; c], vec![0.0; c]);
            batch_norm_back(&mut d, &xh, c, &g, &tape, &mut dg, &mut db);
            let h = 1e-2f32;
            for i in 0..n * c {
                let (mut p, mut m) = (x0.clone(), x0.clone());
                p[i] += h;
                m[i] -= h;
                let fd = (loss(&p) - loss(&m)) / (2.0 * f64::from(h));
                assert!(
                    (f64::from(d[i]) - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "train {train} x[{i}]: {} vs {fd}",
                    d[i]
                );
            }
            // dβ = Σ r per channel; dγ = Σ r·x̂.
            for j in 0..c {
                let sb: f32 = (0..n).map(|i| r[i * c + j]).sum();
                let sg: f32 = (0..n).map(|i| r[i * c + j] * xh[i * c + j]).sum();
                assert!((db[j] - sb).abs() < 1e-5 && (dg[j] - sg).abs() < 1e-4);
            }
        }
    }

    /// The GEMM helpers against a naive product, over more than one chunk.
    #[test]
    fn matmul_helpers_match_naive_products() {
        let (n, c, o) = (CHUNK + 37, 5, 3);
        let x: Vec<f32> = (0..n * c).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
        let w: Vec<f32> = (0..o * c).map(|i| ((i * 5 % 9) as f32 - 4.0) / 4.0).collect();
        let dy: Vec<f32> = (0..n * o).map(|i| ((i * 3 % 11) as f32 - 5.0) / 16.0).collect();
        let mut y = vec![0.0; n * o];
        matmul_wt(&x, c, &w, o, &mut y);
        let mut dx = vec![1.0; n * c];
        matmul_back_input(&dy, o, &w, c, &mut dx);
        let mut dw = vec![0.0; o * c];
        matmul_back_weight(&dy, o, &x, c, &mut dw);
        for i in 0..n {
            for a in 0..o {
                let want: f32 = (0..c).map(|j| x[i * c + j] * w[a * c + j]).sum();
                assert!((y[i * o + a] - want).abs() < 1e-5);
            }
            for j in 0..c {
                let want: f32 = 1.0 + (0..o).map(|a| dy[i * o + a] * w[a * c + j]).sum::<f32>();
                assert!((dx[i * c + j] - want).abs() < 1e-5);
            }
        }
        for a in 0..o {
            for j in 0..c {
                let want: f64 = (0..n).map(|i| f64::from(dy[i * o + a]) * f64::from(x[i * c + j])).sum();
                assert!((f64::from(dw[a * c + j]) - want).abs() < 1e-3);
            }
        }
    }
}
