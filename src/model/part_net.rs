//! The [`Part`]'s forward pass on candle-core tensors over one block of events, padded to the
//! block's largest real particle count (weaver's trimming at inference): the inputs of the
//! block ([`BlockInput`], built from the flat rows in f32/f64 on the CPU), and the network
//! ([`forward`]) as candle operations, so that candle's autograd gives weight and input
//! gradients.
//!
//! Masking: the key padding mask is an additive −10⁹ on the attention logits of padded keys
//! (softmax gives them exactly 0, and an event without particles gets finite values, unlike
//! −∞), and the embedded particles are zeroed at padded slots; the pair biases of pairs with
//! a padded particle are 0. So padded slots never reach a real particle or the class token.

use candle_core::{DType, Device, Tensor, D};
use ndarray::ArrayView2;

use super::part::Part;
use super::part_pairs::{pair_features, Kin, N_PAIR};

/// Additive attention logit of a padded key.
const MASKED: f32 = -1e9;
/// LayerNorm's ε (PyTorch's default).
const LN_EPS: f64 = 1e-5;

/// One block's inputs, standardised, with what the input gradient's chain rule needs.
#[derive(Debug)]
pub(crate) struct BlockInput {
    /// Events in the block.
    pub b: usize,
    /// Slots per event in the block (≥ 1): the largest real count.
    pub p: usize,
    /// Real particles per event.
    pub counts: Vec<usize>,
    /// `b × p × f` standardised object features (0 at padded slots).
    pub obj: Vec<f32>,
    /// `b × E` standardised event features.
    pub event: Vec<f32>,
    /// `n_pairs × 4` standardised pair features of the pairs i ≥ j of real particles.
    pub pairs: Vec<f32>,
    /// Per pair: (event in block, slot a, slot b, ∂features/∂(a's, b's (pT, η, φ, E))).
    pub pair_of: Vec<(usize, usize, usize, [[f64; 8]; N_PAIR])>,
    /// `b·p·p` row of each (event, query, key) in the pair table (`n_pairs` = the zero row).
    pub pair_index: Vec<u32>,
}

impl BlockInput {
    /// The inputs of events `idx` of `x` (rows of the model's layout).
    pub fn new(m: &Part, x: ArrayView2<'_, f32>, idx: &[usize]) -> BlockInput {
        let l = m.layout();
        let (f, e) = (m.embed_idx().len(), l.n_event());
        let counts: Vec<usize> = idx.iter().map(|&i| l.count_of(x[[i, l.count_column()]])).collect();
        let b = idx.len();
        let p = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut obj = vec![0.0f32; b * p * f];
        let mut event = vec![0.0f32; b * e];
        let mut pairs = Vec::new();
        let mut pair_of = Vec::new();
        let mut pair_index = vec![0u32; if m.pair_idx().is_some() { b * p * p } else { 0 }];
        for (ev, (&i, &k)) in idx.iter().zip(&counts).enumerate() {
            for j in 0..e {
                event[ev * e + j] = (x[[i, j]] - m.event_mean[j]) / m.event_std[j];
            }
            for s in 0..k {
                for (jj, &j) in m.embed_idx().iter().enumerate() {
                    obj[(ev * p + s) * f + jj] = (x[[i, l.slot_column(s, j)]] - m.object_mean[j]) / m.object_std[j];
                }
            }
            if let Some(pi) = m.pair_idx() {
                let kins: Vec<Kin> = (0..k).map(|s| Kin::new(pi.map(|j| x[[i, l.slot_column(s, j)]]))).collect();
                pair_index[ev * p * p..(ev + 1) * p * p].fill(u32::MAX);
                for a in 0..k {
                    for c in 0..=a {
                        let (fv, jac) = pair_features(&kins[a], &kins[c]);
                        let row = (pair_of.len()) as u32;
                        for (t, v) in fv.iter().enumerate() {
                            pairs.push(((*v - f64::from(m.pair_mean[t])) / f64::from(m.pair_std[t])) as f32);
                        }
                        pair_of.push((ev, a, c, jac));
                        pair_index[(ev * p + a) * p + c] = row;
                        pair_index[(ev * p + c) * p + a] = row;
                    }
                }
            }
        }
        let zero_row = pair_of.len() as u32;
        pair_index.iter_mut().filter(|v| **v == u32::MAX).for_each(|v| *v = zero_row);
        // Events with no particle never wrote their block: the zero row.
        for (ev, &k) in counts.iter().enumerate() {
            if k == 0 && m.pair_idx().is_some() {
                pair_index[ev * p * p..(ev + 1) * p * p].fill(zero_row);
            }
        }
        BlockInput { b, p, counts, obj, event, pairs, pair_of, pair_index }
    }

    /// `b × 1 × 1 × (extra + p)` additive key mask (0 real, [`MASKED`] padded), `extra`
    /// leading unmasked keys (the class token).
    fn key_mask(&self, extra: usize, dev: &Device) -> candle_core::Result<Tensor> {
        let w = extra + self.p;
        let mut v = vec![0.0f32; self.b * w];
        for (ev, &k) in self.counts.iter().enumerate() {
            v[ev * w + extra + k..(ev + 1) * w].fill(MASKED);
        }
        Tensor::from_vec(v, (self.b, 1, 1, w), dev)
    }

    /// `b × p × 1`: 1 at real slots, 0 at padded ones.
    fn real_mask(&self, dev: &Device) -> candle_core::Result<Tensor> {
        let mut v = vec![0.0f32; self.b * self.p];
        for (ev, &k) in self.counts.iter().enumerate() {
            v[ev * self.p..ev * self.p + k].fill(1.0);
        }
        Tensor::from_vec(v, (self.b, self.p, 1), dev)
    }
}

/// The weights as candle tensors, in the order of [`Part::tensor_specs`].
pub(crate) struct Weights<'a> {
    pub m: &'a Part,
    pub t: Vec<Tensor>,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> candle_core::Result<&Tensor> {
        let i = self.m.tensor_specs().iter().position(|s| s.name == name);
        i.map(|i| &self.t[i]).ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))
    }
}

/// `x · Wᵀ + b` over the last dimension (any leading shape).
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let inp = dims[dims.len() - 1];
    let rows = x.elem_count() / inp;
    let y = x.reshape((rows, inp))?.matmul(&w.t()?)?.broadcast_add(b)?;
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = w.dims()[0];
    y.reshape(out)
}

/// LayerNorm over the last dimension with weight and bias.
fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + LN_EPS)?.sqrt()?)?.broadcast_mul(w)?.broadcast_add(b)
}

fn ln(w: &Weights<'_>, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
    layer_norm(x, w.get(&format!("{name}.weight"))?, w.get(&format!("{name}.bias"))?)
}

fn lin(w: &Weights<'_>, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
    linear(x, w.get(&format!("{name}.weight"))?, w.get(&format!("{name}.bias"))?)
}

/// Softmax over the last dimension (the max subtracted without gradient: the softmax does not
/// depend on it).
fn softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// `nn.MultiheadAttention` (batch first here) followed by weaver's per-head scale:
/// query `q_in` (`b × t × E`), keys and values `kv` (`b × s × E`), additive `bias`
/// broadcastable to `b × H × t × s`; `self_attn` projects q, k, v from `kv` in one GEMM.
fn attention(
    w: &Weights<'_>,
    pre: &str,
    q_in: &Tensor,
    kv: &Tensor,
    bias: &Tensor,
    self_attn: bool,
) -> candle_core::Result<Tensor> {
    let dim = w.m.dim();
    let h = w.m.config().heads;
    let hd = dim / h;
    let (b, t, _) = q_in.dims3()?;
    let s = kv.dim(1)?;
    let win = w.get(&format!("{pre}.attn.in_proj_weight"))?;
    let bin = w.get(&format!("{pre}.attn.in_proj_bias"))?;
    let (q, k, v) = if self_attn {
        let qkv = linear(kv, win, bin)?;
        (qkv.narrow(2, 0, dim)?, qkv.narrow(2, dim, dim)?, qkv.narrow(2, 2 * dim, dim)?)
    } else {
        let q = linear(q_in, &win.narrow(0, 0, dim)?, &bin.narrow(0, 0, dim)?)?;
        let kvp = linear(kv, &win.narrow(0, dim, 2 * dim)?, &bin.narrow(0, dim, 2 * dim)?)?;
        (q, kvp.narrow(2, 0, dim)?, kvp.narrow(2, dim, dim)?)
    };
    let heads = |x: Tensor, n: usize| x.reshape((b, n, h, hd))?.transpose(1, 2)?.contiguous();
    let q = (heads(q, t)? * (1.0 / (hd as f64).sqrt()))?;
    let k = heads(k, s)?;
    let v = heads(v, s)?;
    let logits = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(bias)?;
    let att = softmax(&logits)?;
    let o = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, dim))?;
    let o = lin(w, &o, &format!("{pre}.attn.out_proj"))?;
    // weaver: einsum('tbhd,h->tbdh', x, c_attn), i.e. each head scaled and the output
    // reordered head-minor (entry d·H + h).
    let c = w.get(&format!("{pre}.c_attn"))?.reshape((h, 1))?;
    o.reshape((b, t, h, hd))?.broadcast_mul(&c)?.transpose(2, 3)?.reshape((b, t, dim))
}

/// The feed-forward half of a block, with the residual.
fn feed_forward(w: &Weights<'_>, pre: &str, x: &Tensor) -> candle_core::Result<Tensor> {
    let y = ln(w, x, &format!("{pre}.pre_fc_norm"))?;
    let y = lin(w, &y, &format!("{pre}.fc1"))?.gelu_erf()?;
    let y = ln(w, &y, &format!("{pre}.post_fc_norm"))?;
    let y = lin(w, &y, &format!("{pre}.fc2"))?;
    y + x.broadcast_mul(w.get(&format!("{pre}.w_resid"))?)?
}

/// The block's standardised inputs as tensors (candle variables when `vars`, for input
/// gradients): objects `b × p × f`, pairs `n_pairs × 4` (`None` without pair features),
/// event features `b × E` (`None` without).
pub(crate) struct InputTensors {
    pub obj: Tensor,
    pub pairs: Option<Tensor>,
    pub event: Option<Tensor>,
}

impl InputTensors {
    pub fn new(m: &Part, inp: &BlockInput, vars: bool, dtype: DType) -> candle_core::Result<InputTensors> {
        let dev = Device::Cpu;
        let mk = |v: &[f32], shape: &[usize]| -> candle_core::Result<Tensor> {
            let t = Tensor::from_slice(v, shape, &dev)?.to_dtype(dtype)?;
            if vars {
                Ok(candle_core::Var::from_tensor(&t)?.as_tensor().clone())
            } else {
                Ok(t)
            }
        };
        let f = m.embed_idx().len();
        let obj = mk(&inp.obj, &[inp.b, inp.p, f])?;
        let pairs = if m.pair_idx().is_some() { Some(mk(&inp.pairs, &[inp.pair_of.len(), N_PAIR])?) } else { None };
        let e = m.layout().n_event();
        let event = if e > 0 { Some(mk(&inp.event, &[inp.b, e])?) } else { None };
        Ok(InputTensors { obj, pairs, event })
    }
}

/// Logits `b × k` of a block.
pub(crate) fn forward(w: &Weights<'_>, inp: &BlockInput, t: &InputTensors) -> candle_core::Result<Tensor> {
    let (obj, pairs) = (&t.obj, t.pairs.as_ref());
    let dev = Device::Cpu;
    let m = w.m;
    let cfg = m.config();
    let (b, p) = (inp.b, inp.p);
    // 1. Particle embedding.
    let mut x = obj.broadcast_mul(w.get("embed.input_bn.weight")?)?.broadcast_add(w.get("embed.input_bn.bias")?)?;
    for l in 0..cfg.embed.len() {
        x = ln(w, &x, &format!("embed.embed.{}", 3 * l))?;
        x = lin(w, &x, &format!("embed.embed.{}", 3 * l + 1))?.gelu_erf()?;
    }
    let dt = obj.dtype();
    x = x.broadcast_mul(&inp.real_mask(&dev)?.to_dtype(dt)?)?;
    // 2. Attention biases: pair embedding (if any) plus the key mask.
    let key_mask = inp.key_mask(0, &dev)?.to_dtype(dt)?;
    let bias = match pairs {
        Some(pf) if m.pair_idx().is_some() => {
            let n_layers = cfg.pair_embed.len() + 1;
            let mut y = pf.clone();
            for l in 0..n_layers {
                y = lin(w, &y, &format!("pair_embed.layers.{l}"))?;
                if l + 1 < n_layers {
                    y = y.gelu_erf()?;
                }
            }
            let table = Tensor::cat(&[&y, &Tensor::zeros((1, cfg.heads), dt, &dev)?], 0)?;
            let idx = Tensor::from_slice(&inp.pair_index, b * p * p, &dev)?;
            let full = table.index_select(&idx, 0)?.reshape((b, p, p, cfg.heads))?.permute((0, 3, 1, 2))?;
            full.broadcast_add(&key_mask)?
        }
        _ => key_mask,
    };
    // 3. Particle blocks.
    for blk in 0..cfg.blocks {
        let pre = format!("blocks.{blk}");
        let u = ln(w, &x, &format!("{pre}.pre_attn_norm"))?;
        let a = attention(w, &pre, &u, &u, &bias, true)?;
        let a = ln(w, &a, &format!("{pre}.post_attn_norm"))?;
        x = (a + &x)?;
        x = feed_forward(w, &pre, &x)?;
    }
    // 4. Class-attention blocks.
    let dim = m.dim();
    let mut cls = w.get("cls_token")?.broadcast_as((b, 1, dim))?.contiguous()?;
    let cls_mask = inp.key_mask(1, &dev)?.to_dtype(dt)?;
    for blk in 0..cfg.cls_blocks {
        let pre = format!("cls_blocks.{blk}");
        let u = ln(w, &Tensor::cat(&[&cls, &x], 1)?, &format!("{pre}.pre_attn_norm"))?;
        let a = attention(w, &pre, &cls, &u, &cls_mask, false)?;
        let a = ln(w, &a, &format!("{pre}.post_attn_norm"))?;
        cls = (a + &cls)?;
        cls = feed_forward(w, &pre, &cls)?;
    }
    // 5. Head.
    let mut z = ln(w, &cls.reshape((b, dim))?, "norm")?;
    if let Some(ev) = &t.event {
        z = Tensor::cat(&[&z, ev], 1)?;
    }
    for l in 0..cfg.fc.len() {
        z = lin(w, &z, &format!("fc.{l}.0"))?.relu()?;
    }
    lin(w, &z, &format!("fc.{}", cfg.fc.len()))
}
