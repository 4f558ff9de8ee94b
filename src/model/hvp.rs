//! Exact Hessian-vector products of the training loss with respect to the weights, by
//! Pearlmutter's R-operator on the fused path.
//!
//! For a direction `v = (V_l, vb_l)` the R-operator `R(·) = d/dt (·)(θ + t·v)|₀` of the
//! forward and backward passes gives `H·v` exactly (no step size, no truncation error):
//!
//! ```text
//! forward   z_l = a_l W_l + b_l,  a_{l+1} = f(z_l)
//! R-forward R(z_l) = R(a_l) W_l + a_l V_l + vb_l,  R(a_{l+1}) = f'(z_l) ⊙ R(z_l),  R(a_0) = 0
//! backward  g_L = c·∂ℓ/∂z_L,  δa_l = g_l W_lᵀ,  g_{l−1} = δa_l ⊙ f'(z_{l−1})
//! R-back    R(g_L) = c·∂²ℓ/∂z² · R(z_L)
//!           R(δa_l) = R(g_l) W_lᵀ + g_l V_lᵀ
//!           R(g_{l−1}) = R(δa_l) ⊙ f'(z_{l−1}) + δa_l ⊙ f''(z_{l−1}) ⊙ R(z_{l−1})
//! H·v       (Hv)_W_l = R(a_l)ᵀ g_l + a_lᵀ R(g_l),  (Hv)_b_l = Σ_events R(g_l)
//! ```
//!
//! with `c = wᵢ/Σw` the event's share of the weighted mean loss.
//!
//! The quadratic form `vᵀHv = d²L(θ + t·v)/dt²|₀` alone (all Hutchinson's trace needs) takes
//! only the R-forward pass: with the second-order forward terms pushed to the loss through the
//! cached adjoints `g_l = ∂L/∂z_l` and `δa_l`,
//!
//! ```text
//! vᵀHv = Σ_events [ c·R(z_L)ᵀ ∂²ℓ R(z_L) + Σ_l 2⟨g_l, R(a_l) V_l⟩ + Σ_hidden ⟨δa_{l+1} ⊙ f''(z_l), R(z_l)²⟩ ]
//! ```
//!
//! (from `R²(z_l) = R²(a_l) W_l + 2 R(a_l) V_l` and `R²(a_{l+1}) = f'(z_l) ⊙ R²(z_l) +
//! f''(z_l) ⊙ R(z_l)²`): three GEMMs per layer instead of the product's six.
//!
//! Everything that does not
//! depend on `v` (activations, f', f''·δa, the loss gradient and curvature) is computed once
//! and cached per block of events, so one product costs about 5.5 forward passes of GEMMs.
//! The products are accurate to f32 rounding (relative ≈ 1e-6 on the test models, checked
//! against a dense f64 finite-difference Hessian in `landscape`'s tests).
//!
//! Dropout is off (the Hessian of the evaluation-mode loss). For ReLU networks f'' = 0 almost
//! everywhere, as in autograd's double backward.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::activation::add_bias;
use super::gemm::gemm;
use super::loss::{loss_grad_row, Output, Targets};
use super::mlp::Mlp;
use crate::error::{Error, Result};

/// Events per block: 64, 256 and 512 were no faster on the reference model.
const CHUNK: usize = 128;

/// Fixed number of groups of blocks summed separately, so results do not depend on the
/// thread count.
const PARTS: usize = 16;

/// Largest cache of per-event forward/backward values kept between products (bytes); above
/// it, each product recomputes them block by block (about 1.5× slower).
const CACHE_BYTES: usize = 1 << 30;

/// Targets owned by a [`LossHessian`].
#[derive(Clone, Debug)]
enum OwnedTargets {
    Labels(Vec<i64>),
    Values(Array2<f32>),
}

impl OwnedTargets {
    fn view(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Labels(l) => Targets::Labels(l),
            OwnedTargets::Values(v) => Targets::Values(v.view()),
        }
    }
}

/// What a block of events contributes to every product, independent of the direction.
struct Block {
    /// Events in the block.
    r: usize,
    /// `a[l]`: input of layer `l` (standardised events for l = 0), r × width.
    a: Vec<Vec<f32>>,
    /// `d[l]`: f'(z_l) of hidden layer `l`.
    d: Vec<Vec<f32>>,
    /// `e[l]`: δa_{l+1} ⊙ f''(z_l) of hidden layer `l` (empty for piecewise-linear f).
    e: Vec<Vec<f32>>,
    /// `g[l]`: ∂L/∂z_l (the event's loss share included), r × width of layer l's output.
    g: Vec<Vec<f32>>,
    /// Loss curvature per event and output: σ(1−σ) (sigmoid), p (softmax), 2/k (linear).
    curv: Vec<f32>,
    /// Per event: c = wᵢ/Σw, times Σt for soft softmax targets.
    scale: Vec<f32>,
}

/// The training loss of a model on fixed events, ready for Hessian-vector products.
///
/// Vectors are in the model's internal parameter layout (per layer: the weight as an in × out
/// row-major matrix, then the bias — see [`Mlp`]); [`LossHessian::hvp`] takes and returns
/// PyTorch order instead.
pub struct LossHessian {
    model: Mlp,
    x: Array2<f32>,
    targets: OwnedTargets,
    coef: Vec<f32>,
    loss: f64,
    cache: Option<Vec<Block>>,
}

impl Mlp {
    /// The event-weighted mean loss on `x` as an operator for Hessian-vector products (see
    /// [`LossHessian`]). Errors as [`Mlp::weight_grad`].
    pub fn loss_hessian(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<LossHessian> {
        self.check_input("hessian", x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(Error::Empty { op: "hessian", what: "the event set".into() });
        }
        targets.validate("hessian", self.output(), n, self.n_outputs())?;
        let wsum = super::backward::check_weights("hessian", weights, n)?;
        let coef: Vec<f32> = match weights {
            Some(w) => w.iter().map(|&v| (f64::from(v) / wsum) as f32).collect(),
            None => vec![(1.0 / wsum) as f32; n],
        };
        let targets = match targets {
            Targets::Labels(l) => OwnedTargets::Labels(l.to_vec()),
            Targets::Values(v) => OwnedTargets::Values(v.as_standard_layout().into_owned()),
        };
        let mut h = LossHessian { model: self.clone(), x: x.to_owned(), targets, coef, loss: 0.0, cache: None };
        let per_event: usize = self.layers().iter().sum::<usize>() * 4 + 2 * self.n_outputs();
        let cached = n.saturating_mul(per_event).saturating_mul(4) <= CACHE_BYTES;
        let blocks: Vec<(Block, f64)> =
            (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| h.block(c * CHUNK, (c * CHUNK + CHUNK).min(n))).collect();
        h.loss = blocks.iter().map(|(_, l)| l).sum();
        if cached {
            h.cache = Some(blocks.into_iter().map(|(b, _)| b).collect());
        }
        Ok(h)
    }
}

impl LossHessian {
    /// The model (a copy).
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// The event-weighted mean loss at the model's weights.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// Number of events.
    pub fn n_events(&self) -> usize {
        self.x.nrows()
    }

    /// Parameter indices of layer `l` (weight and bias; the same range in both orders).
    pub fn layer_range(&self, l: usize) -> Result<Range<usize>> {
        let nl = self.model.n_layers();
        if l >= nl {
            return Err(Error::arg("hessian", format!("layer {l} does not exist; the model has layers 0..{}", nl - 1)));
        }
        Ok(self.model.offset(l)..self.model.offset(l + 1))
    }

    /// Dimension of the operator: all parameters, or those of one layer.
    pub fn dim(&self, layer: Option<usize>) -> Result<usize> {
        Ok(match layer {
            Some(l) => self.layer_range(l)?.len(),
            None => self.model.n_params(),
        })
    }

    /// `H·v` in the internal layout: of the whole Hessian, or with `layer` of its diagonal
    /// block for that layer (then `v` and the result hold that layer's parameters only).
    pub fn apply(&self, v: &[f32], layer: Option<usize>) -> Result<Vec<f32>> {
        let (full, span) = self.padded(v, layer)?;
        let hv = self.product(&full, span.clone());
        Ok(match layer {
            None => hv,
            Some(_) => hv[self.model.offset(span.start)..self.model.offset(span.end)].to_vec(),
        })
    }

    /// `v` (all parameters, or `layer`'s) as a full-length vector, zero outside the layer, and
    /// the layers it spans; errors unless `v` has the operator's dimension.
    fn padded(&self, v: &[f32], layer: Option<usize>) -> Result<(Vec<f32>, Range<usize>)> {
        let want = self.dim(layer)?;
        if v.len() != want {
            return Err(Error::Shape {
                op: "hvp",
                expected: format!("a vector of {want} values"),
                got: v.len().to_string(),
            });
        }
        Ok(match layer {
            None => (v.to_vec(), 0..self.model.n_layers()),
            Some(l) => {
                let range = self.layer_range(l)?;
                let mut full = vec![0.0f32; self.model.n_params()];
                full[range].copy_from_slice(v);
                (full, l..l + 1)
            }
        })
    }

    /// `vᵀHv` in the internal layout (of the whole Hessian, or with `layer` of its diagonal
    /// block, `v` then holding that layer's parameters only), in about half the time of
    /// [`LossHessian::apply`] (see the module doc). Summed in f64 in a fixed order.
    pub fn quadratic_form(&self, v: &[f32], layer: Option<usize>) -> Result<f64> {
        let (full, span) = self.padded(v, layer)?;
        Ok(self.sweep(|b| self.block_quad(b, &full, &span)))
    }

    /// `H·v` of the whole Hessian with `v` and the result in PyTorch order (as
    /// [`Mlp::params_flat`]).
    pub fn hvp(&self, v: &[f32]) -> Result<Vec<f32>> {
        let np = self.model.n_params();
        if v.len() != np {
            return Err(Error::Shape {
                op: "hvp",
                expected: format!("a vector of {np} values"),
                got: v.len().to_string(),
            });
        }
        let mut m = self.model.clone();
        m.set_params_flat(v).map_err(|_| Error::arg("hvp", "the vector has non-finite entries"))?;
        let out = self.product(m.params(), 0..self.model.n_layers());
        Ok(self.model.to_torch_order(&out))
    }

    /// A vector in the internal layout (all parameters, or one layer's) in PyTorch order.
    pub fn to_torch_order(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        self.permute(v, layer, true)
    }

    /// A vector in PyTorch order (all parameters, or one layer's) in the internal layout.
    pub fn from_torch_order(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        self.permute(v, layer, false)
    }

    /// Transposes every weight block between in × out (internal) and out × in (PyTorch).
    fn permute(&self, v: &[f64], layer: Option<usize>, to_torch: bool) -> Result<Vec<f64>> {
        let range = match layer {
            Some(l) => self.layer_range(l)?,
            None => 0..self.model.n_params(),
        };
        if v.len() != range.len() {
            return Err(Error::Shape {
                op: "hessian",
                expected: format!("{} values", range.len()),
                got: v.len().to_string(),
            });
        }
        let layers = self.model.layers();
        let mut out = vec![0.0; v.len()];
        for l in 0..self.model.n_layers() {
            let r = self.model.offset(l)..self.model.offset(l + 1);
            if r.start < range.start || r.end > range.end {
                continue;
            }
            let (a, b, o) = (layers[l], layers[l + 1], r.start - range.start);
            for i in 0..a {
                for j in 0..b {
                    let (internal, torch) = (o + i * b + j, o + j * a + i);
                    if to_torch {
                        out[torch] = v[internal];
                    } else {
                        out[internal] = v[torch];
                    }
                }
            }
            out[o + a * b..o + a * b + b].copy_from_slice(&v[o + a * b..o + a * b + b]);
        }
        Ok(out)
    }

    /// Σ over blocks of the block products, summed in a fixed order. `v` is full-length and
    /// zero outside the layers `span`; the result is exact on the layers ≥ `span.start`
    /// (lower layers are left zero when `span` is a single layer).
    fn product(&self, v: &[f32], span: Range<usize>) -> Vec<f32> {
        let np = self.model.n_params();
        let out_layers = if span.len() == 1 { span.clone() } else { 0..self.model.n_layers() };
        let parts = self.fold_blocks(|| vec![0.0f32; np], |acc, b| self.block_product(b, v, &span, &out_layers, acc));
        let mut total = vec![0.0f32; np];
        for part in parts {
            total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
        }
        total
    }

    /// Σ over blocks of `f(block)`, in f64 and a fixed order (independent of the thread count).
    fn sweep(&self, f: impl Fn(&Block) -> f64 + Sync) -> f64 {
        self.fold_blocks(|| 0.0f64, |acc, b| *acc += f(b)).iter().sum()
    }

    /// Folds `add` over the blocks of events (cached, or recomputed one at a time) in a fixed
    /// number of groups run in parallel; returns each group's accumulator, in order, so the
    /// caller's sum does not depend on the thread count.
    fn fold_blocks<T: Send>(&self, init: impl Fn() -> T + Sync, add: impl Fn(&mut T, &Block) + Sync) -> Vec<T> {
        let n = self.x.nrows();
        let nblocks = n.div_ceil(CHUNK);
        let per_part = nblocks.div_ceil(PARTS);
        (0..nblocks.div_ceil(per_part))
            .into_par_iter()
            .map(|p| {
                let mut acc = init();
                for c in p * per_part..((p + 1) * per_part).min(nblocks) {
                    match &self.cache {
                        Some(blocks) => add(&mut acc, &blocks[c]),
                        None => add(&mut acc, &self.block(c * CHUNK, (c * CHUNK + CHUNK).min(n)).0),
                    }
                }
                acc
            })
            .collect()
    }

    /// Forward and backward over events `start..end`: everything the products need, and
    /// the block's share of the loss.
    fn block(&self, start: usize, end: usize) -> (Block, f64) {
        let m = &self.model;
        let (layers, nl, r) = (m.layers(), m.n_layers(), end - start);
        let act = m.activation();
        let pl = act.is_piecewise_linear();
        let d0 = layers[0];
        let mut a0 = vec![0.0f32; r * d0];
        for (i, dst) in a0.chunks_exact_mut(d0).enumerate() {
            let row = self.x.row(start + i);
            for (j, v) in dst.iter_mut().enumerate() {
                *v = (row[j] - m.mean()[j]) / m.std()[j];
            }
        }
        let mut a = vec![a0];
        let (mut d, mut e) = (Vec::new(), Vec::new());
        let mut logits = Vec::new();
        for l in 0..nl {
            let (fan_in, fan_out) = (layers[l], layers[l + 1]);
            let mut z = vec![0.0f32; r * fan_out];
            gemm(r, fan_in, fan_out, &a[l], false, m.weight(l), false, 0.0, &mut z);
            if l + 1 == nl {
                add_bias(&mut z, m.bias(l));
                logits = z;
                break;
            }
            let f2: Vec<f32> = if pl {
                Vec::new()
            } else {
                z.chunks_exact(fan_out)
                    .flat_map(|row| row.iter().zip(m.bias(l)).map(|(&v, b)| act.d2f(v + b)))
                    .collect()
            };
            let mut df = vec![0.0f32; r * fan_out];
            act.apply_biased_with_grad(&mut z, m.bias(l), &mut df);
            a.push(z);
            d.push(df);
            e.push(f2);
        }
        let (curv, scale, g_last, loss) = self.loss_terms(&logits, start, r);
        let mut g = vec![Vec::new(); nl];
        g[nl - 1] = g_last;
        for l in (1..nl).rev() {
            let (fan_in, fan_out) = (layers[l], layers[l + 1]);
            let mut delta = vec![0.0f32; r * fan_in];
            gemm(r, fan_out, fan_in, &g[l], false, m.weight(l), true, 0.0, &mut delta);
            if !pl {
                e[l - 1].iter_mut().zip(&delta).for_each(|(ev, dv)| *ev *= dv);
            }
            delta.iter_mut().zip(&d[l - 1]).for_each(|(v, dv)| *v *= dv);
            g[l - 1] = delta;
        }
        (Block { r, a, d, e, g, curv, scale }, loss)
    }

    /// Per event of a block: the loss curvature, its scale, c·∂ℓ/∂z and Σ c·ℓ.
    fn loss_terms(&self, logits: &[f32], start: usize, r: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, f64) {
        let out = self.model.output();
        let k = self.model.n_outputs();
        let targets = self.targets.view();
        let mut curv = vec![0.0f32; r * k];
        let mut scale = vec![0.0f32; r];
        let mut g = vec![0.0f32; r * k];
        let mut loss = 0.0;
        for i in 0..r {
            let c = self.coef[start + i];
            let z = &logits[i * k..(i + 1) * k];
            let t = targets.row(start + i);
            loss += f64::from(c) * loss_grad_row(out, z, t, c, &mut g[i * k..(i + 1) * k]);
            let cv = &mut curv[i * k..(i + 1) * k];
            scale[i] = c;
            match out {
                Output::Sigmoid => {
                    let s = super::activation::sigmoid(z[0]);
                    cv[0] = s * (1.0 - s);
                }
                Output::Softmax => {
                    cv.copy_from_slice(z);
                    out.scores_row(cv);
                    // ∂²/∂z² of −Σ tⱼ ln pⱼ is (Σt)(diag p − p pᵀ).
                    if let super::loss::RowTarget::Values(tv) = t {
                        scale[i] = c * tv.iter().sum::<f32>();
                    }
                }
                Output::Linear => cv.fill(2.0 / k as f32),
            }
        }
        (curv, scale, g, loss)
    }

    /// `R(g_L) = c·∂²ℓ/∂z² · R(z_L)` per event of a block, from `rz` = R(z_L) (r × k).
    fn output_curvature(&self, b: &Block, rz: &[f32]) -> Vec<f32> {
        let k = self.model.n_outputs();
        let softmax = self.model.output() == Output::Softmax;
        let mut rg = vec![0.0f32; b.r * k];
        let rows = rg.chunks_exact_mut(k).zip(rz.chunks_exact(k)).zip(b.curv.chunks_exact(k).zip(&b.scale));
        for ((dst, z), (cv, &s)) in rows {
            if softmax {
                let pz: f32 = cv.iter().zip(z).map(|(p, x)| p * x).sum();
                dst.iter_mut().zip(cv.iter().zip(z)).for_each(|(o, (p, x))| *o = s * p * (x - pz));
            } else {
                dst.iter_mut().zip(cv.iter().zip(z)).for_each(|(o, (c, x))| *o = s * c * x);
            }
        }
        rg
    }

    /// `R(z_l) = R(a_l) W_l + a_l V_l + vb_l` of one block (the direction's terms only inside
    /// `span`; `ra` = R(a_l) is empty for l ≤ span.start, where it is zero).
    fn r_forward_layer(&self, b: &Block, v: &[f32], span: &Range<usize>, l: usize, ra: &[f32]) -> Vec<f32> {
        let m = &self.model;
        let (fan_in, fan_out, r) = (m.layers()[l], m.layers()[l + 1], b.r);
        let o = m.offset(l);
        let mut z = vec![0.0f32; r * fan_out];
        if span.contains(&l) {
            let (vw, vb) = (&v[o..o + fan_in * fan_out], &v[o + fan_in * fan_out..m.offset(l + 1)]);
            z.chunks_exact_mut(fan_out).for_each(|row| row.copy_from_slice(vb));
            gemm(r, fan_in, fan_out, &b.a[l], false, vw, false, 1.0, &mut z);
        }
        if l > span.start {
            gemm(r, fan_in, fan_out, ra, false, m.weight(l), false, 1.0, &mut z);
        }
        z
    }

    /// One block's share of `vᵀHv` by the R-forward pass alone (see the module doc); `v` is
    /// full-length and zero outside the layers `span`.
    fn block_quad(&self, b: &Block, v: &[f32], span: &Range<usize>) -> f64 {
        let m = &self.model;
        let (layers, nl, r) = (m.layers(), m.n_layers(), b.r);
        let lo = span.start;
        let pl = m.activation().is_piecewise_linear();
        let vw = |l: usize| &v[m.offset(l)..m.offset(l) + layers[l] * layers[l + 1]];
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| f64::from(a * b)).sum::<f64>();
        let mut q = 0.0f64;
        // ra = R(a_l): zero up to layer lo.
        let mut ra: Vec<f32> = Vec::new();
        for l in lo..nl {
            let (fan_in, fan_out) = (layers[l], layers[l + 1]);
            let z = self.r_forward_layer(b, v, span, l, &ra);
            if l > lo && span.contains(&l) {
                let mut rav = vec![0.0f32; r * fan_out];
                gemm(r, fan_in, fan_out, &ra, false, vw(l), false, 0.0, &mut rav);
                q += 2.0 * dot(&rav, &b.g[l]);
            }
            if l + 1 == nl {
                q += dot(&z, &self.output_curvature(b, &z));
                break;
            }
            if !pl {
                q += b.e[l].iter().zip(&z).map(|(e, x)| f64::from(e * x * x)).sum::<f64>();
            }
            ra = z.iter().zip(&b.d[l]).map(|(x, y)| x * y).collect();
        }
        q
    }

    /// Adds one block's share of `H·v` on `out_layers` to `acc` (see the module doc).
    fn block_product(&self, b: &Block, v: &[f32], span: &Range<usize>, out_layers: &Range<usize>, acc: &mut [f32]) {
        let m = &self.model;
        let (layers, nl, r) = (m.layers(), m.n_layers(), b.r);
        let lo = span.start;
        let pl = m.activation().is_piecewise_linear();
        let vw = |l: usize| &v[m.offset(l)..m.offset(l) + layers[l] * layers[l + 1]];
        // R-forward: rz[l] = R(z_l) for l ≥ lo, ra[l] = R(a_l) for l > lo.
        let mut rz: Vec<Vec<f32>> = vec![Vec::new(); nl];
        let mut ra: Vec<Vec<f32>> = vec![Vec::new(); nl];
        for l in lo..nl {
            let z = self.r_forward_layer(b, v, span, l, &ra[l]);
            if l + 1 < nl {
                ra[l + 1] = z.iter().zip(&b.d[l]).map(|(x, y)| x * y).collect();
            }
            rz[l] = z;
        }
        // R(g) at the logits.
        let mut rg = self.output_curvature(b, &rz[nl - 1]);
        // R-backward, accumulating (Hv)_l on the requested layers.
        for l in (out_layers.start..nl).rev() {
            let (fan_in, fan_out) = (layers[l], layers[l + 1]);
            if out_layers.contains(&l) {
                let o = m.offset(l);
                let dw = &mut acc[o..o + fan_in * fan_out];
                if l > lo {
                    gemm(fan_in, r, fan_out, &ra[l], true, &b.g[l], false, 1.0, dw);
                }
                gemm(fan_in, r, fan_out, &b.a[l], true, &rg, false, 1.0, dw);
                let db = &mut acc[o + fan_in * fan_out..o + fan_in * fan_out + fan_out];
                for row in rg.chunks_exact(fan_out) {
                    db.iter_mut().zip(row).for_each(|(s, x)| *s += x);
                }
            }
            if l == out_layers.start {
                break;
            }
            let mut rd = vec![0.0f32; r * fan_in];
            gemm(r, fan_out, fan_in, &rg, false, m.weight(l), true, 0.0, &mut rd);
            if span.contains(&l) {
                gemm(r, fan_out, fan_in, &b.g[l], false, vw(l), true, 1.0, &mut rd);
            }
            rd.iter_mut().zip(&b.d[l - 1]).for_each(|(x, y)| *x *= y);
            if !pl && l > lo {
                rd.iter_mut().zip(b.e[l - 1].iter().zip(&rz[l - 1])).for_each(|(x, (e, z))| *x += e * z);
            }
            rg = rd;
        }
    }
}
