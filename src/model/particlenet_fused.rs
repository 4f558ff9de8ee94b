//! The hand-written ParticleNet pass on host f32 buffers, used for training: the same network
//! as the candle forward of `particlenet.rs`, without candle's per-op overhead (profiled: most
//! of a training step went to candle's thread-pool barriers and small elementwise kernels,
//! ≈ 6 % to the GEMMs), and in PyTorch's **training mode**:
//! - every batch norm normalises with the statistics of the batch (mean and biased variance
//!   over the batch's real constituents, or over their R·k edges for the edge convolutions),
//!   and its running statistics move by momentum 0.1 towards the batch's mean and unbiased
//!   variance (as `torch.nn.BatchNorm`);
//! - the fully connected head applies dropout after each hidden ReLU (weaver's `fc_params`
//!   probabilities; inverted dropout, kept units scaled by 1/(1 − p)), the masks drawn from
//!   the step's seed in event order.
//!
//! In inference mode (running statistics, no dropout) the pass computes the candle forward's
//! function; the tests check the two against each other and the training-mode gradient
//! against finite differences. Rows are processed in fixed chunks (`rows.rs`) and the kNN
//! per event, in parallel with rayon, with results independent of the thread count.
//!
//! The backward pass returns the gradient with respect to every parameter (flat order); the
//! gradient with respect to the inputs is not formed (attacks take the candle path).

use rayon::prelude::*;

use super::{Block, Bn, ParticleNet};
use crate::error::Result;
use crate::model::rows::{
    batch_norm, batch_norm_back, matmul_back_input, matmul_back_weight, matmul_wt, relu_back, BnTape,
};
use crate::model::set_net::SetBatch;

/// Host copies of the parameters (flat order, with the start of every parameter) and of the
/// buffers.
pub(super) struct Host {
    vals: Vec<f32>,
    off: Vec<usize>,
    bufs: Vec<Vec<f32>>,
}

impl Host {
    pub(super) fn of(net: &ParticleNet) -> Result<Host> {
        let s = &net.store;
        let mut off = vec![0];
        for p in s.params() {
            off.push(off[off.len() - 1] + p.shape.iter().product::<usize>());
        }
        let bufs = (0..s.buffers().len()).map(|i| s.buffer_values(i)).collect::<Result<_>>()?;
        Ok(Host { vals: s.flat()?, off, bufs })
    }

    fn p(&self, i: usize) -> &[f32] {
        &self.vals[self.off[i]..self.off[i + 1]]
    }

    fn g<'a>(&self, grad: &'a mut [f32], i: usize) -> &'a mut [f32] {
        &mut grad[self.off[i]..self.off[i + 1]]
    }

    pub(super) fn n_params(&self) -> usize {
        self.vals.len()
    }
}

/// A batch norm's saved state: x̂ (`n × c`), its output y (after the ReLU if any).
struct BnLayer {
    bn: Bn,
    c: usize,
    xhat: Vec<f32>,
    y: Vec<f32>,
    tape: BnTape,
}

struct BlockTape {
    /// The block's input rows (`R × c_in`).
    x: Vec<f32>,
    nbr: Vec<u32>,
    /// `W_a − W_b` and `W_b` of the first edge convolution (`o₀ × c_in` each).
    wd: Vec<f32>,
    wb: Vec<f32>,
    layers: Vec<BnLayer>,
    sc: Option<BnLayer>,
    /// The block's output (`R × c_out`).
    out: Vec<f32>,
}

struct FcLayer {
    input: Vec<f32>,
    /// Output after ReLU and dropout (hidden layers) or the logits.
    out: Vec<f32>,
    mask: Option<Vec<f32>>,
}

/// Everything the backward pass needs.
pub(super) struct Tape {
    fts: Option<BnLayer>,
    blocks: Vec<BlockTape>,
    fusion: Option<(Vec<f32>, BnLayer)>,
    fc: Vec<FcLayer>,
    /// The logits, `B × n_outputs`.
    pub z: Vec<f32>,
}

impl Tape {
    /// Every batch norm that used batch statistics, with them.
    pub(super) fn batch_stats(&self) -> Vec<(Bn, &BnTape)> {
        let layers = self.fts.iter().chain(self.blocks.iter().flat_map(|b| b.layers.iter().chain(b.sc.iter())));
        layers
            .chain(self.fusion.iter().map(|(_, l)| l))
            .filter(|l| l.tape.batch_stats)
            .map(|l| (l.bn, &l.tape))
            .collect()
    }
}

/// `y += bias` per row.
fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(a, b)| *a += b);
    }
}

impl ParticleNet {
    fn bn_layer(&self, h: &Host, bn: Bn, mut pre: Vec<f32>, c: usize, train: bool, relu: bool) -> BnLayer {
        let mut y = vec![0.0f32; pre.len()];
        let running = (!train).then(|| (h.bufs[bn.mean].as_slice(), h.bufs[bn.var].as_slice()));
        let tape = batch_norm(&mut pre, c, h.p(bn.w), h.p(bn.b), running, relu, &mut y);
        BnLayer { bn, c, xhat: pre, y, tape }
    }

    /// Backward of a [`BnLayer`]: `d` (gradient of its output) becomes the gradient of its
    /// input; γ, β gradients into `grad`.
    fn bn_layer_back(&self, h: &Host, l: &BnLayer, relu: bool, d: &mut [f32], grad: &mut [f32]) {
        if relu {
            relu_back(d, &l.y);
        }
        let (mut dg, mut db) = (vec![0.0f32; l.c], vec![0.0f32; l.c]);
        batch_norm_back(d, &l.xhat, l.c, h.p(l.bn.w), &l.tape, &mut dg, &mut db);
        h.g(grad, l.bn.w).iter_mut().zip(&dg).for_each(|(a, b)| *a += b);
        h.g(grad, l.bn.b).iter_mut().zip(&db).for_each(|(a, b)| *a += b);
    }

    #[allow(clippy::too_many_arguments)]
    fn block_forward(
        &self,
        h: &Host,
        blk: &Block,
        batch: &SetBatch,
        x: Vec<f32>,
        coords: &[f32],
        cc: usize,
        train: bool,
    ) -> BlockTape {
        let (r, k, c) = (batch.rows(), blk.k, blk.c_in);
        let nbr = Self::knn(batch, coords, cc, k);
        // First layer: W = [W_a | W_b] on [x_i, x_j − x_i] = (W_a − W_b) x_i + W_b x_j.
        let w0 = h.p(blk.convs[0]);
        let o0 = w0.len() / (2 * c);
        let (mut wd, mut wb) = (vec![0.0f32; o0 * c], vec![0.0f32; o0 * c]);
        for a in 0..o0 {
            for j in 0..c {
                wb[a * c + j] = w0[a * 2 * c + c + j];
                wd[a * c + j] = w0[a * 2 * c + j] - wb[a * c + j];
            }
        }
        let (mut u, mut v) = (vec![0.0f32; r * o0], vec![0.0f32; r * o0]);
        matmul_wt(&x, c, &wd, o0, &mut u);
        matmul_wt(&x, c, &wb, o0, &mut v);
        let mut pre = vec![0.0f32; r * k * o0];
        const ROWS: usize = 64;
        pre.par_chunks_mut(ROWS * k * o0).enumerate().for_each(|(t, pc)| {
            for (q, edge) in pc.chunks_exact_mut(o0).enumerate() {
                let e = t * ROWS * k + q;
                let i = e / k;
                edge.copy_from_slice(&u[i * o0..(i + 1) * o0]);
                let n = nbr[e] as usize;
                if n < r {
                    edge.iter_mut().zip(&v[n * o0..(n + 1) * o0]).for_each(|(a, b)| *a += b);
                }
            }
        });
        let mut layers = vec![self.bn_layer(h, blk.bns[0], pre, o0, train, true)];
        let mut cp = o0;
        for l in 1..blk.convs.len() {
            let w = h.p(blk.convs[l]);
            let o = w.len() / cp;
            let mut pre = vec![0.0f32; r * k * o];
            matmul_wt(&layers[l - 1].y, cp, w, o, &mut pre);
            layers.push(self.bn_layer(h, blk.bns[l], pre, o, train, true));
            cp = o;
        }
        let sc = blk.sc.map(|(w, bn)| {
            let mut pre = vec![0.0f32; r * cp];
            matmul_wt(&x, c, h.p(w), cp, &mut pre);
            self.bn_layer(h, bn, pre, cp, train, false)
        });
        let last = &layers[layers.len() - 1].y;
        let short = sc.as_ref().map_or(&x, |l| &l.y);
        let mut out = vec![0.0f32; r * cp];
        let inv_k = 1.0 / k as f32;
        out.par_chunks_mut(cp).enumerate().for_each(|(i, o)| {
            for j in 0..k {
                o.iter_mut().zip(&last[(i * k + j) * cp..(i * k + j + 1) * cp]).for_each(|(a, b)| *a += b);
            }
            for (a, s) in o.iter_mut().zip(&short[i * cp..(i + 1) * cp]) {
                *a = (*a * inv_k + s).max(0.0);
            }
        });
        BlockTape { x, nbr, wd, wb, layers, sc, out }
    }

    /// Backward of one block: `dout` is the gradient of its output; returns the gradient of
    /// its input rows.
    fn block_backward(&self, h: &Host, blk: &Block, t: &BlockTape, mut dout: Vec<f32>, grad: &mut [f32]) -> Vec<f32> {
        let (k, c) = (blk.k, blk.c_in);
        let r = t.x.len() / c;
        relu_back(&mut dout, &t.out);
        let cl = dout.len() / r.max(1);
        let mut dx = vec![0.0f32; r * c];
        match (blk.sc, &t.sc) {
            (Some((w, _)), Some(l)) => {
                let mut d = dout.clone();
                self.bn_layer_back(h, l, false, &mut d, grad);
                matmul_back_weight(&d, cl, &t.x, c, h.g(grad, w));
                matmul_back_input(&d, cl, h.p(w), c, &mut dx);
            }
            _ => dx.copy_from_slice(&dout),
        }
        let inv_k = 1.0 / k as f32;
        let mut dh = vec![0.0f32; r * k * cl];
        dh.par_chunks_mut(k * cl).enumerate().for_each(|(i, d)| {
            let src = &dout[i * cl..(i + 1) * cl];
            for e in d.chunks_exact_mut(cl) {
                e.iter_mut().zip(src).for_each(|(a, b)| *a = b * inv_k);
            }
        });
        for l in (0..t.layers.len()).rev() {
            let layer = &t.layers[l];
            self.bn_layer_back(h, layer, true, &mut dh, grad);
            if l > 0 {
                let prev = &t.layers[l - 1];
                matmul_back_weight(&dh, layer.c, &prev.y, prev.c, h.g(grad, blk.convs[l]));
                let mut dp = vec![0.0f32; r * k * prev.c];
                matmul_back_input(&dh, layer.c, h.p(blk.convs[l]), prev.c, &mut dp);
                dh = dp;
            } else {
                let o0 = layer.c;
                let (mut du, mut dv) = (vec![0.0f32; r * o0], vec![0.0f32; r * o0]);
                for i in 0..r {
                    for j in 0..k {
                        let e = &dh[(i * k + j) * o0..(i * k + j + 1) * o0];
                        du[i * o0..(i + 1) * o0].iter_mut().zip(e).for_each(|(a, b)| *a += b);
                        let n = t.nbr[i * k + j] as usize;
                        if n < r {
                            dv[n * o0..(n + 1) * o0].iter_mut().zip(e).for_each(|(a, b)| *a += b);
                        }
                    }
                }
                let (mut dwd, mut dwb) = (vec![0.0f32; o0 * c], vec![0.0f32; o0 * c]);
                matmul_back_weight(&du, o0, &t.x, c, &mut dwd);
                matmul_back_weight(&dv, o0, &t.x, c, &mut dwb);
                let g0 = h.g(grad, blk.convs[0]);
                for a in 0..o0 {
                    for j in 0..c {
                        g0[a * 2 * c + j] += dwd[a * c + j];
                        g0[a * 2 * c + c + j] += dwb[a * c + j] - dwd[a * c + j];
                    }
                }
                matmul_back_input(&du, o0, &t.wd, c, &mut dx);
                matmul_back_input(&dv, o0, &t.wb, c, &mut dx);
            }
        }
        dx
    }

    /// The forward pass on the standardised rows `x` (`R × f`); `train` selects batch
    /// statistics and dropout (masks from `seed`).
    pub(super) fn fused_forward(&self, h: &Host, batch: &SetBatch, x: &[f32], train: bool, seed: u64) -> Tape {
        let (b, r, f) = (batch.n_events(), batch.rows(), batch.n_features);
        let (mut fts_layer, mut blocks, mut fusion) = (None, Vec::new(), None);
        let c_final = match (&self.fusion, self.cfg.conv.last()) {
            (Some((w, _)), _) => h.p(*w).len() / self.cfg.conv.iter().map(|(_, ch)| ch[ch.len() - 1]).sum::<usize>(),
            (None, Some((_, ch))) => ch[ch.len() - 1],
            (None, None) => 0,
        };
        let mut pooled = vec![0.0f32; b * c_final];
        if r > 0 {
            let l = self.bn_layer(h, self.bn_fts, x.to_vec(), f, train, false);
            let mut fts = l.y.clone();
            fts_layer = Some(l);
            let pts: Vec<f32> =
                batch.raw.chunks(f).flat_map(|row| self.cfg.points.iter().map(move |&p| row[p])).collect();
            for (i, blk) in self.blocks.iter().enumerate() {
                let t = if i == 0 {
                    self.block_forward(h, blk, batch, fts, &pts, self.cfg.points.len(), train)
                } else {
                    let coords = fts.clone();
                    self.block_forward(h, blk, batch, fts, &coords, blk.c_in, train)
                };
                fts = t.out.clone();
                blocks.push(t);
            }
            if let Some((w, bn)) = self.fusion {
                let widths: Vec<usize> = blocks.iter().map(|t| t.out.len() / r).collect();
                let cat_c: usize = widths.iter().sum();
                let mut cat = Vec::with_capacity(r * cat_c);
                for i in 0..r {
                    for (t, &wi) in blocks.iter().zip(&widths) {
                        cat.extend_from_slice(&t.out[i * wi..(i + 1) * wi]);
                    }
                }
                let mut pre = vec![0.0f32; r * c_final];
                matmul_wt(&cat, cat_c, h.p(w), c_final, &mut pre);
                let l = self.bn_layer(h, bn, pre, c_final, train, true);
                fts = l.y.clone();
                fusion = Some((cat, l));
            }
            for e in 0..b {
                let (lo, hi) = (batch.offsets[e], batch.offsets[e + 1]);
                let p = &mut pooled[e * c_final..(e + 1) * c_final];
                for i in lo..hi {
                    p.iter_mut().zip(&fts[i * c_final..(i + 1) * c_final]).for_each(|(a, v)| *a += v);
                }
                if hi > lo {
                    p.iter_mut().for_each(|a| *a /= (hi - lo) as f32);
                }
            }
        }
        let mut rng = crate::rng::rng(seed);
        let mut fc = Vec::new();
        let mut input = pooled;
        let mut c_in = c_final;
        for (i, &(w, bias)) in self.fc.iter().enumerate() {
            let o = h.p(bias).len();
            let mut out = vec![0.0f32; b * o];
            matmul_wt(&input, c_in, h.p(w), o, &mut out);
            add_bias(&mut out, h.p(bias));
            let mut mask = None;
            if i + 1 < self.fc.len() {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
                let p = self.cfg.fc[i].1;
                if train && p > 0.0 {
                    use rand::Rng as _;
                    let keep = 1.0 / (1.0 - p);
                    let m: Vec<f32> =
                        (0..out.len()).map(|_| if rng.random::<f32>() < p { 0.0 } else { keep }).collect();
                    out.iter_mut().zip(&m).for_each(|(a, s)| *a *= s);
                    mask = Some(m);
                }
            }
            let next = out.clone();
            fc.push(FcLayer { input, out, mask });
            input = next;
            c_in = o;
        }
        Tape { fts: fts_layer, blocks, fusion, fc, z: input }
    }

    /// The backward pass from `dz` (∂objective/∂logits, `B × n_outputs`): the gradient with
    /// respect to every parameter, in flat order.
    pub(super) fn fused_backward(&self, h: &Host, batch: &SetBatch, t: &Tape, dz: &[f32]) -> Vec<f32> {
        let mut grad = vec![0.0f32; h.n_params()];
        let (b, r) = (batch.n_events(), batch.rows());
        let mut d = dz.to_vec();
        for (i, &(w, bias)) in self.fc.iter().enumerate().rev() {
            let l = &t.fc[i];
            let o = h.p(bias).len();
            let c_in = l.input.len() / b.max(1);
            if let Some(m) = &l.mask {
                d.iter_mut().zip(m).for_each(|(a, s)| *a *= s);
            }
            if i + 1 < self.fc.len() {
                relu_back(&mut d, &l.out);
            }
            let db = h.g(&mut grad, bias);
            for row in d.chunks_exact(o) {
                db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            matmul_back_weight(&d, o, &l.input, c_in, h.g(&mut grad, w));
            let mut dx = vec![0.0f32; b * c_in];
            matmul_back_input(&d, o, h.p(w), c_in, &mut dx);
            d = dx;
        }
        if r == 0 {
            return grad;
        }
        // Mean pooling: every row of event e gets dpooled[e] / count.
        let c_final = d.len() / b.max(1);
        let mut dfts = vec![0.0f32; r * c_final];
        for e in 0..b {
            let (lo, hi) = (batch.offsets[e], batch.offsets[e + 1]);
            for i in lo..hi {
                let inv = 1.0 / (hi - lo) as f32;
                dfts[i * c_final..(i + 1) * c_final]
                    .iter_mut()
                    .zip(&d[e * c_final..(e + 1) * c_final])
                    .for_each(|(a, v)| *a = v * inv);
            }
        }
        let nb = self.blocks.len();
        let mut douts: Vec<Vec<f32>> = t.blocks.iter().map(|bt| vec![0.0f32; bt.out.len()]).collect();
        match (&self.fusion, &t.fusion) {
            (Some((w, _)), Some((cat, l))) => {
                self.bn_layer_back(h, l, true, &mut dfts, &mut grad);
                let cat_c = cat.len() / r;
                matmul_back_weight(&dfts, l.c, cat, cat_c, h.g(&mut grad, *w));
                let mut dcat = vec![0.0f32; r * cat_c];
                matmul_back_input(&dfts, l.c, h.p(*w), cat_c, &mut dcat);
                let widths: Vec<usize> = t.blocks.iter().map(|bt| bt.out.len() / r).collect();
                for i in 0..r {
                    let mut o = i * cat_c;
                    for (dd, &wi) in douts.iter_mut().zip(&widths) {
                        dd[i * wi..(i + 1) * wi].copy_from_slice(&dcat[o..o + wi]);
                        o += wi;
                    }
                }
            }
            _ => douts[nb - 1] = dfts,
        }
        let mut dx = Vec::new();
        for i in (0..nb).rev() {
            let mut dout = std::mem::take(&mut douts[i]);
            if i + 1 < nb {
                dout.iter_mut().zip(&dx).for_each(|(a, v)| *a += v);
            }
            dx = self.block_backward(h, &self.blocks[i], &t.blocks[i], dout, &mut grad);
        }
        if let Some(l) = &t.fts {
            self.bn_layer_back(h, l, false, &mut dx, &mut grad);
        }
        grad
    }
}
