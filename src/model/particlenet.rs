//! ParticleNet (Qu & Gouskos, Phys. Rev. D 101, 056019 (2020)) as a [`SetNet`], following
//! weaver-core's `ParticleNet` module (`weaver/nn/model/ParticleNet.py`) layer for layer, so a
//! PyTorch state dict of the same configuration loads by name.
//!
//! **Forward** (inference form) on the real objects of each event, with `x` the standardised
//! object features:
//! 1. `bn_fts`: a batch norm of the input features.
//! 2. EdgeConv blocks. Block b finds, for every object i, its `k` nearest other objects of the
//!    same event — in the coordinates `points` (object features in physical units, e.g.
//!    Δη, Δφ) for the first block, in the block's input features after — and applies the edge
//!    MLP to `[x_i, x_j − x_i]` for each neighbour j: per layer a 1×1 convolution without
//!    bias, a batch norm and a ReLU. The block's output is
//!    `ReLU(shortcut(x_i) + mean_j edge(x_i, x_j))`, the shortcut a 1×1 convolution and a
//!    batch norm (or the identity when the widths agree). As in weaver, an object with fewer
//!    than `k` other objects takes zero-feature neighbours for the missing ones (weaver's
//!    padded slots, whose features are masked to 0).
//! 3. Optional fusion (weaver's `use_fusion`): the outputs of all blocks concatenated, a 1×1
//!    convolution to `clip(⌊C/128⌋·128, 128, 1024)` channels, batch norm, ReLU.
//! 4. Global mean pooling over the real objects (0 for an event without any).
//! 5. Fully connected head: `Linear + ReLU (+ dropout in training)` per `fc` entry, then
//!    `Linear` to the logits.
//!
//! **Training mode and inference form.** Training ([`Model::train_grad`], through
//! [`SetNet::train_grad`]) runs the hand-written pass of `particlenet_fused.rs` in PyTorch's
//! training mode: batch norms normalise with the batch's statistics over the real
//! constituents (over their R·k edges in the edge convolutions) and update their running
//! statistics (momentum 0.1, unbiased variance), and the head applies its dropout. Everything
//! else — logits, evaluation, input and weight gradients, attacks, Hessians — uses the
//! inference form below (running statistics, no dropout), deterministic.
//!
//! **Batch norms are folded** in the inference form (candle): each batch norm is the affine
//! map `y = s ⊙ x + t` with
//! `s = γ / √(running_var + 1e-5)` and `t = β − s ⊙ running_mean`; the scale is folded into
//! the preceding convolution's weights (`W' = diag(s) W`, computed from the parameters on every
//! pass, so gradients reach γ, β and W). The first edge convolution on `[x_i, x_j − x_i]` is
//! computed as `(W_a − W_b) x_i + W_b x_j` per object (W = [W_a | W_b]), then gathered per
//! edge: k times fewer products than on the edge features.
//!
//! **kNN is piecewise constant** in the coordinates: gradients flow through the features
//! only (as in PyTorch, where `topk` has no gradient). Ties are broken by object order.
//!
//! weaver's defaults (`ParticleNet(input_dims, num_classes)`): `conv_params =
//! [(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))]`, `fc_params =
//! [(256, 0.1)]`, `use_fusion = True`, `use_fts_bn = True`, `use_counts = True`.
//! ParticleNet-Lite (the benchmark): `conv_params = [(7, (32, 32, 32)), (7, (64, 64, 64))]`,
//! `fc_params = [(128, 0.1)]`, no fusion: 26,220 parameters for 5 input features and 2
//! classes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor, D};
use rand::Rng as _;

use super::io::{parse, read_tensor};
use super::layout::SetLayout;
use super::loss::Output;
use super::set_model::SetModel;
use super::set_net::{ParamStore, SetBatch, SetNet};
#[cfg(doc)]
use super::Model;
use crate::error::{Error, Result};
use crate::{io_guard, limits};

/// Batch-norm ε (PyTorch's default).
const BN_EPS: f64 = 1e-5;

/// The architecture of a [`ParticleNet`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParticleNetConfig {
    /// Per EdgeConv block: `(k, channels of its edge MLP)`.
    pub conv: Vec<(usize, Vec<usize>)>,
    /// Per hidden fully connected layer: `(width, dropout)` (dropout applied in training).
    pub fc: Vec<(usize, f32)>,
    /// Object features (indices) that are the first block's kNN coordinates.
    pub points: Vec<usize>,
    /// weaver's `use_fusion`.
    pub fusion: bool,
    /// Number of logits.
    pub n_outputs: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl ParticleNetConfig {
    /// ParticleNet-Lite with the first two object features as coordinates, 2 outputs.
    pub fn lite() -> Self {
        ParticleNetConfig {
            conv: vec![(7, vec![32, 32, 32]), (7, vec![64, 64, 64])],
            fc: vec![(128, 0.1)],
            points: vec![0, 1],
            fusion: false,
            n_outputs: 2,
            seed: 0,
        }
    }
}

/// Indices into the [`ParamStore`] of one batch norm: γ, β (params), mean, var (buffers).
#[derive(Clone, Copy, Debug)]
struct Bn {
    w: usize,
    b: usize,
    mean: usize,
    var: usize,
}

#[derive(Clone, Debug)]
struct Block {
    k: usize,
    convs: Vec<usize>,
    bns: Vec<Bn>,
    sc: Option<(usize, Bn)>,
    c_in: usize,
}

/// The ParticleNet network (see the module documentation).
#[derive(Clone, Debug)]
pub struct ParticleNet {
    cfg: ParticleNetConfig,
    store: ParamStore,
    bn_fts: Bn,
    blocks: Vec<Block>,
    fusion: Option<(usize, Bn)>,
    /// (weight, bias) of every Linear of the head, the last one the output layer.
    fc: Vec<(usize, usize)>,
    kernels: Vec<std::ops::Range<usize>>,
}

struct Init<'a> {
    store: &'a mut ParamStore,
    rng: crate::rng::Rng,
    offset: usize,
    kernels: Vec<std::ops::Range<usize>>,
}

impl Init<'_> {
    /// A weight with PyTorch's default initialisation (uniform ±1/√fan_in).
    fn weight(&mut self, name: &str, group: &str, shape: &[usize]) -> Result<usize> {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape[1..].iter().product();
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let v = (0..n).map(|_| self.rng.random_range(-bound..bound)).collect();
        self.kernels.push(self.offset..self.offset + n);
        self.offset += n;
        self.store.add(name, group, shape, v)
    }

    fn bias(&mut self, name: &str, group: &str, n: usize, fan_in: usize) -> Result<usize> {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let v = (0..n).map(|_| self.rng.random_range(-bound..bound)).collect();
        self.offset += n;
        self.store.add(name, group, &[n], v)
    }

    fn bn(&mut self, name: &str, group: &str, n: usize) -> Result<Bn> {
        let w = self.store.add(&format!("{name}.weight"), group, &[n], vec![1.0; n])?;
        let b = self.store.add(&format!("{name}.bias"), group, &[n], vec![0.0; n])?;
        self.offset += 2 * n;
        let mean = self.store.add_buffer(&format!("{name}.running_mean"), &[n], vec![0.0; n])?;
        let var = self.store.add_buffer(&format!("{name}.running_var"), &[n], vec![1.0; n])?;
        Ok(Bn { w, b, mean, var })
    }
}

fn check_config(cfg: &ParticleNetConfig, n_features: usize) -> Result<()> {
    let op = "particlenet";
    if cfg.conv.is_empty() {
        return Err(Error::arg(op, "needs at least one EdgeConv block"));
    }
    for (b, (k, ch)) in cfg.conv.iter().enumerate() {
        if *k == 0 {
            return Err(Error::arg(op, format!("EdgeConv block {b} has k = 0; k must be at least 1")));
        }
        limits::check(op, "k", *k, 100_000)?;
        if ch.is_empty() || ch.contains(&0) {
            return Err(Error::arg(op, format!("EdgeConv block {b} needs at least one channel count, each ≥ 1")));
        }
        for &c in ch {
            limits::check(op, "channels", c, limits::LAYER_WIDTH)?;
        }
    }
    for &(w, p) in &cfg.fc {
        if w == 0 {
            return Err(Error::arg(op, "fully connected widths must be at least 1"));
        }
        limits::check(op, "fc width", w, limits::LAYER_WIDTH)?;
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg(op, format!("dropout {p} must be in [0, 1)")));
        }
    }
    if cfg.points.is_empty() {
        return Err(Error::arg(op, "needs at least one coordinate feature (points) for the first kNN"));
    }
    if let Some(&p) = cfg.points.iter().find(|&&p| p >= n_features) {
        return Err(Error::arg(
            op,
            format!("coordinate feature {p} does not exist; the objects have {n_features} features"),
        ));
    }
    if cfg.n_outputs == 0 {
        return Err(Error::arg(op, "needs at least one output"));
    }
    // Parameters, counted before allocating (saturating, so absurd sizes fail here).
    let mut n = 0usize;
    let mut c_in = n_features;
    for (_, ch) in &cfg.conv {
        let mut c = c_in.saturating_mul(2);
        for &o in ch {
            n = n.saturating_add(c.saturating_mul(o)).saturating_add(2 * o);
            c = o;
        }
        n = n.saturating_add(c_in.saturating_mul(c));
        c_in = c;
    }
    for &(w, _) in &cfg.fc {
        n = n.saturating_add(c_in.saturating_mul(w)).saturating_add(w);
        c_in = w;
    }
    limits::check(op, "parameters", n, limits::PARAMS)
}

/// `clip(⌊c/128⌋·128, 128, 1024)`: weaver's fusion width.
fn fusion_width(c: usize) -> usize {
    ((c / 128) * 128).clamp(128, 1024)
}

impl ParticleNet {
    /// A network with PyTorch's default initialisation for `n_features` object features.
    pub fn new(cfg: &ParticleNetConfig, n_features: usize) -> Result<ParticleNet> {
        check_config(cfg, n_features)?;
        let mut store = ParamStore::new();
        let mut init = Init { store: &mut store, rng: crate::rng::rng(cfg.seed), offset: 0, kernels: Vec::new() };
        let bn_fts = init.bn("bn_fts", "bn_fts", n_features)?;
        let mut blocks = Vec::new();
        let mut c_in = n_features;
        for (b, (k, ch)) in cfg.conv.iter().enumerate() {
            let g = format!("edge_conv.{b}");
            let mut convs = Vec::new();
            let mut c = 2 * c_in;
            for (j, &o) in ch.iter().enumerate() {
                convs.push(init.weight(&format!("edge_convs.{b}.convs.{j}.weight"), &g, &[o, c, 1, 1])?);
                c = o;
            }
            let mut bns = Vec::new();
            for (j, &o) in ch.iter().enumerate() {
                bns.push(init.bn(&format!("edge_convs.{b}.bns.{j}"), &g, o)?);
            }
            let sc = if c_in == c {
                None
            } else {
                let w = init.weight(&format!("edge_convs.{b}.sc.weight"), &g, &[c, c_in, 1])?;
                Some((w, init.bn(&format!("edge_convs.{b}.sc_bn"), &g, c)?))
            };
            blocks.push(Block { k: *k, convs, bns, sc, c_in });
            c_in = c;
        }
        let fusion = if cfg.fusion {
            let c: usize = cfg.conv.iter().map(|(_, ch)| ch[ch.len() - 1]).sum();
            let o = fusion_width(c);
            let w = init.weight("fusion_block.0.weight", "fusion", &[o, c, 1])?;
            c_in = o;
            Some((w, init.bn("fusion_block.1", "fusion", o)?))
        } else {
            None
        };
        let mut fc = Vec::new();
        for (i, &(w, _)) in cfg.fc.iter().enumerate() {
            let g = format!("fc.{i}");
            let wi = init.weight(&format!("fc.{i}.0.weight"), &g, &[w, c_in])?;
            fc.push((wi, init.bias(&format!("fc.{i}.0.bias"), &g, w, c_in)?));
            c_in = w;
        }
        let i = cfg.fc.len();
        let g = format!("fc.{i}");
        let wi = init.weight(&format!("fc.{i}.weight"), &g, &[cfg.n_outputs, c_in])?;
        fc.push((wi, init.bias(&format!("fc.{i}.bias"), &g, cfg.n_outputs, c_in)?));
        let kernels = init.kernels;
        Ok(ParticleNet { cfg: cfg.clone(), store, bn_fts, blocks, fusion, fc, kernels })
    }

    /// The configuration.
    pub fn config_ref(&self) -> &ParticleNetConfig {
        &self.cfg
    }

    /// `(s, t)` of a batch norm in inference form: `y = s ⊙ x + t`.
    fn affine(&self, bn: Bn) -> candle_core::Result<(Tensor, Tensor)> {
        let s = &self.store;
        let scale = s.p(bn.w).div(&s.b(bn.var).affine(1.0, BN_EPS)?.sqrt()?)?;
        let shift = s.p(bn.b).sub(&s.b(bn.mean).mul(&scale)?)?;
        Ok((scale, shift))
    }

    /// A 1×1 convolution (weight `out × in × …`) with its batch norm folded in: `(W'ᵀ, t)` so
    /// that the layer is `x · W'ᵀ + t`.
    fn folded(&self, w: usize, bn: Bn, c_in: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let (scale, shift) = self.affine(bn)?;
        let w = self.store.p(w);
        let o = w.dim(0)?;
        let wt = w.reshape((o, c_in))?.broadcast_mul(&scale.reshape((o, 1))?)?.t()?;
        Ok((wt, shift))
    }

    /// For every row, the rows of its k nearest other objects in the same event (coordinates
    /// `coords`, `R × c` row-major); missing neighbours point at row R (the zero row). Events
    /// run in parallel; the result does not depend on the thread count.
    fn knn(batch: &SetBatch, coords: &[f32], c: usize, k: usize) -> Vec<u32> {
        use rayon::prelude::*;
        let r = batch.rows();
        let per_event: Vec<Vec<u32>> = (0..batch.n_events())
            .into_par_iter()
            .map(|e| {
                let (a, b) = (batch.offsets[e], batch.offsets[e + 1]);
                let mut idx = Vec::with_capacity((b - a) * k);
                let mut cand: Vec<(f32, usize)> = Vec::with_capacity(b - a);
                for i in a..b {
                    let xi = &coords[i * c..(i + 1) * c];
                    cand.clear();
                    cand.extend((a..b).filter(|&j| j != i).map(|j| {
                        let d = xi.iter().zip(&coords[j * c..(j + 1) * c]).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
                        (d, j)
                    }));
                    let m = k.min(cand.len());
                    if m > 0 && m < cand.len() {
                        cand.select_nth_unstable_by(m - 1, |x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                    }
                    cand[..m].sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                    idx.extend(cand[..m].iter().map(|&(_, j)| j as u32));
                    idx.extend(std::iter::repeat_n(r as u32, k - m));
                }
                idx
            })
            .collect();
        per_event.concat()
    }

    /// One EdgeConv block on rows `x` (`R × c_in`) with kNN coordinates `coords`.
    fn edge_conv(
        &self,
        blk: &Block,
        batch: &SetBatch,
        x: &Tensor,
        coords: &[f32],
        c: usize,
    ) -> candle_core::Result<Tensor> {
        let (r, k, c_in) = (batch.rows(), blk.k, blk.c_in);
        let nbr = Self::knn(batch, coords, c, k);
        let nbr = Tensor::from_vec(nbr, r * k, &Device::Cpu)?;
        // First layer: W = [W_a | W_b] on [x_i, x_j − x_i] = (W_a − W_b) x_i + W_b x_j.
        let (scale, shift) = self.affine(blk.bns[0])?;
        let w0 = self.store.p(blk.convs[0]);
        let o = w0.dim(0)?;
        let w0 = w0.reshape((o, 2 * c_in))?.broadcast_mul(&scale.reshape((o, 1))?)?;
        let wa = w0.narrow(1, 0, c_in)?;
        let wb = w0.narrow(1, c_in, c_in)?;
        let u = x.matmul(&wa.sub(&wb)?.t()?)?.broadcast_add(&shift)?;
        let v = x.matmul(&wb.t()?)?;
        let v = Tensor::cat(&[&v, &Tensor::zeros((1, o), v.dtype(), v.device())?], 0)?;
        let vj = v.index_select(&nbr, 0)?.reshape((r, k, o))?;
        let mut h = vj.broadcast_add(&u.unsqueeze(1)?)?.relu()?.reshape((r * k, o))?;
        let mut c_prev = o;
        for j in 1..blk.convs.len() {
            let (wt, t) = self.folded(blk.convs[j], blk.bns[j], c_prev)?;
            h = h.matmul(&wt)?.broadcast_add(&t)?.relu()?;
            c_prev = wt.dim(1)?;
        }
        let mean = h.reshape((r, k, c_prev))?.mean(1)?;
        let sc = match blk.sc {
            Some((w, bn)) => {
                let (wt, t) = self.folded(w, bn, c_in)?;
                x.matmul(&wt)?.broadcast_add(&t)?
            }
            None => x.clone(),
        };
        sc.add(&mean)?.relu()
    }
}

impl SetNet for ParticleNet {
    fn kind(&self) -> &'static str {
        "particlenet"
    }

    /// `EdgeConv k=7 (32,32,32) → k=7 (64,64,64), fc 128, mean pooling`.
    fn describe(&self) -> String {
        let convs: Vec<String> = self
            .cfg
            .conv
            .iter()
            .map(|(k, ch)| format!("k={k} ({})", ch.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")))
            .collect();
        let fc: Vec<String> = self.cfg.fc.iter().map(|(w, _)| w.to_string()).collect();
        let fusion = if self.cfg.fusion { ", fusion" } else { "" };
        format!("EdgeConv {}{fusion}, fc {}", convs.join(" → "), if fc.is_empty() { "-".into() } else { fc.join("→") })
    }

    fn n_outputs(&self) -> usize {
        self.cfg.n_outputs
    }

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn store_mut(&mut self) -> &mut ParamStore {
        &mut self.store
    }

    fn forward(&self, batch: &SetBatch, x: &Tensor) -> candle_core::Result<Tensor> {
        let b = batch.n_events();
        let pooled = if batch.rows() == 0 {
            let c = match (&self.fusion, self.cfg.conv.last()) {
                (Some((w, _)), _) => self.store.p(*w).dim(0)?,
                (None, Some((_, ch))) => ch[ch.len() - 1],
                (None, None) => 0,
            };
            Tensor::zeros((b, c), x.dtype(), x.device())?
        } else {
            let (s, t) = self.affine(self.bn_fts)?;
            let mut fts = x.broadcast_mul(&s)?.broadcast_add(&t)?;
            let f = batch.n_features;
            let pts: Vec<f32> =
                batch.raw.chunks(f).flat_map(|row| self.cfg.points.iter().map(move |&p| row[p])).collect();
            let mut outputs = Vec::new();
            for (i, blk) in self.blocks.iter().enumerate() {
                fts = if i == 0 {
                    self.edge_conv(blk, batch, &fts, &pts, self.cfg.points.len())?
                } else {
                    let c = fts.dim(1)?;
                    let coords = fts.flatten_all()?.to_vec1::<f32>()?;
                    self.edge_conv(blk, batch, &fts, &coords, c)?
                };
                outputs.push(fts.clone());
            }
            if let Some((w, bn)) = self.fusion {
                let cat = Tensor::cat(&outputs, D::Minus1)?;
                let (wt, t) = self.folded(w, bn, cat.dim(1)?)?;
                fts = cat.matmul(&wt)?.broadcast_add(&t)?.relu()?;
            }
            batch.pool_mean(&fts)?
        };
        let mut h = pooled;
        let last = self.fc.len() - 1;
        for (i, &(w, bias)) in self.fc.iter().enumerate() {
            h = h.matmul(&self.store.p(w).t()?)?.broadcast_add(self.store.p(bias))?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn config(&self) -> BTreeMap<String, String> {
        let j = |v: serde_json::Value| v.to_string();
        BTreeMap::from([
            ("pn_conv".to_string(), j(serde_json::json!(self.cfg.conv))),
            ("pn_fc".to_string(), j(serde_json::json!(self.cfg.fc))),
            ("pn_points".to_string(), j(serde_json::json!(self.cfg.points))),
            ("pn_fusion".to_string(), self.cfg.fusion.to_string()),
            ("pn_outputs".to_string(), self.cfg.n_outputs.to_string()),
        ])
    }

    fn from_config(meta: &HashMap<String, String>, n_features: usize, _n_event: usize, path: &Path) -> Result<Self> {
        let get = |k: &str| meta.get(k).ok_or_else(|| Error::format(path, format!("metadata has no '{k}'")));
        let bad = |k: &str, e: serde_json::Error| Error::format(path, format!("metadata '{k}': {e}"));
        let cfg = ParticleNetConfig {
            conv: serde_json::from_str(get("pn_conv")?).map_err(|e| bad("pn_conv", e))?,
            fc: serde_json::from_str(get("pn_fc")?).map_err(|e| bad("pn_fc", e))?,
            points: serde_json::from_str(get("pn_points")?).map_err(|e| bad("pn_points", e))?,
            fusion: serde_json::from_str(get("pn_fusion")?).map_err(|e| bad("pn_fusion", e))?,
            n_outputs: serde_json::from_str(get("pn_outputs")?).map_err(|e| bad("pn_outputs", e))?,
            seed: 0,
        };
        ParticleNet::new(&cfg, n_features).map_err(|e| Error::format(path, e.to_string()))
    }

    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        Some(self.kernels.clone())
    }

    /// The hand-written pass of `particlenet_fused.rs` in training mode; the batch norms'
    /// running statistics move towards the batch's (momentum 0.1).
    fn train_grad(
        &mut self,
        batch: &SetBatch,
        x: &[f32],
        seed: u64,
        dz: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
    ) -> Option<Result<Vec<f32>>> {
        Some((|| {
            let h = fused::Host::of(self)?;
            let tape = self.fused_forward(&h, batch, x, true, seed);
            let g = dz(&tape.z)?;
            let grad = self.fused_backward(&h, batch, &tape, &g);
            for (bn, t) in tape.batch_stats() {
                let (mut m, mut v) = (self.store.buffer_values(bn.mean)?, self.store.buffer_values(bn.var)?);
                crate::model::rows::update_running(&mut m, &mut v, t);
                self.store.set_buffer(bn.mean, m)?;
                self.store.set_buffer(bn.var, v)?;
            }
            Ok(grad)
        })())
    }
}

/// How to read a PyTorch ParticleNet state dict (`scripts/export_particlenet.py`, weaver's
/// names).
#[derive(Clone, Debug)]
pub struct ParticleNetImport {
    /// Which inputs the network reads (its object features in weaver's feature order).
    pub layout: SetLayout,
    /// The architecture the state dict was trained with (the seed is unused).
    pub config: ParticleNetConfig,
    /// Output layer (weaver: softmax over the classes).
    pub output: Output,
}

/// Builds a ParticleNet from a PyTorch state dict saved as safetensors with weaver's tensor
/// names (see [`ParticleNet`]); every parameter and batch-norm statistic must be present with
/// its shape, `num_batches_tracked` buffers are ignored and any other tensor is refused by
/// name. The model applies no standardisation (weaver's `bn_fts` scales the inputs).
pub fn import_torch_particlenet(path: &Path, spec: &ParticleNetImport) -> Result<SetModel<ParticleNet>> {
    let data = io_guard::read_regular(path)?;
    let st = parse(path, &data)?;
    let net = ParticleNet::new(&spec.config, spec.layout.n_object())?;
    for name in st.names() {
        if !net.store().has(name) && !name.ends_with("num_batches_tracked") {
            return Err(Error::format(
                path,
                format!("tensor '{name}' is not part of a ParticleNet with this configuration (conv, fc, fusion)"),
            ));
        }
    }
    let mut m = SetModel::new(spec.layout.clone(), spec.output, net)?;
    m.net_mut().store_mut().load_named(|name, shape| read_tensor(path, &st, name, shape))?;
    Ok(m)
}

/// A new ParticleNet model over `layout`.
pub fn particlenet(layout: SetLayout, cfg: &ParticleNetConfig, output: Output) -> Result<SetModel<ParticleNet>> {
    let net = ParticleNet::new(cfg, layout.n_object())?;
    SetModel::new(layout, output, net)
}

#[path = "particlenet_fused.rs"]
mod fused;

#[cfg(test)]
#[path = "particlenet_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "particlenet_fused_tests.rs"]
mod fused_tests;
