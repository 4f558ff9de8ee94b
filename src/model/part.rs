//! The Particle Transformer (ParT; Qu, Li, Qian, "Particle Transformer for Jet Tagging",
//! ICML 2022), following weaver-core's `ParticleTransformer` module layer for layer, on
//! candle-core autograd.
//!
//! **Inputs** are the flat `n × D` rows of a [`SetLayout`] in physical units (event features,
//! a count entry, `max_objects` object slots), like the [`Pfn`](super::Pfn): the count entry
//! is the padding mask, padded slots never influence the output and get zero gradient.
//! Optionally four of the object features name each particle's `(pT, η, φ, E)`
//! (`pair_inputs`), from which the pairwise features ln kT, ln z, ln ΔR, ln m² of every pair
//! are computed (`part_pairs.rs`) and embedded into per-head attention biases.
//!
//! **Architecture** (weaver's names):
//! 1. `embed`: per particle, the standardised features times a per-feature affine
//!    (`input_bn`, the affine of weaver's input batch norm, whose running statistics are the
//!    standardisation), then for each width of `embed`: LayerNorm, Linear, GELU; padded
//!    particles are zeroed.
//! 2. `pair_embed`: the standardised pair features through Linear, GELU, …, Linear to one
//!    bias per head (weaver's 1×1 convolutions with their batch norms folded in), symmetric in
//!    the pair, for the pairs i ≥ j of real particles.
//! 3. `blocks`: pre-norm self-attention blocks (LayerNorm, multi-head attention with the pair
//!    biases and the key padding mask, per-head scale `c_attn`, LayerNorm, residual; then
//!    LayerNorm, Linear, GELU, LayerNorm, Linear, plus `w_resid` ⊙ residual).
//! 4. `cls_blocks`: class-attention blocks (CaiT): a learned class token attends to itself and
//!    the particles (the query is the un-normalised token, keys and values the LayerNorm of
//!    token and particles).
//! 5. `norm` (LayerNorm of the token), concatenated with the standardised event features (none
//!    in weaver), then `fc`: hidden Linear + ReLU layers and a Linear to the logits.
//!
//! Not reproduced from weaver's training: dropout (none; training is deterministic), the
//! random sequence trimming, and batch norm statistics (the standardisation is fitted once,
//! before training, and stored in the model).
//!
//! **Parameters**: one flat vector in the order of the tensors of [`Part::tensor_specs`]
//! (weaver's state-dict order and names, except the pair embedding, which is stored folded as
//! `pair_embed.layers.{l}.weight/bias`). Groups: `embed`, `pair_embed`, `blocks.{i}`,
//! `cls_blocks.{i}`, `norm`, `fc`, `cls_token`.

use ndarray::ArrayView2;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};

use super::layout::SetLayout;
use super::loss::Output;
use super::mlp::Held;
use super::part_pairs::{pair_features, Kin, N_PAIR};
use crate::error::{Error, Result};
use crate::{limits, memory, rng};

/// How to build a [`Part`] (besides its [`SetLayout`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PartConfig {
    /// Widths of the particle embedding; the last is the model width `E`.
    pub embed: Vec<usize>,
    /// Hidden widths of the pair embedding (its output is one bias per head).
    pub pair_embed: Vec<usize>,
    /// The object features the particle embedding reads, in order; empty for all of them.
    pub embed_inputs: Vec<String>,
    /// The object features holding each particle's `(pT, η, φ, E)`, in that order; empty for
    /// no pair features.
    pub pair_inputs: Vec<String>,
    /// Attention heads (must divide `E`).
    pub heads: usize,
    /// Particle self-attention blocks.
    pub blocks: usize,
    /// Class-attention blocks.
    pub cls_blocks: usize,
    /// Feed-forward width = `ffn_ratio · E`.
    pub ffn_ratio: usize,
    /// Hidden widths of the head (Linear + ReLU each).
    pub fc: Vec<usize>,
    /// Number of logits.
    pub n_outputs: usize,
    /// Output layer and loss.
    pub output: Output,
    /// Seed of the initialisation.
    pub seed: u64,
}

impl Default for PartConfig {
    /// A small ParT that trains on 2 cores: embed (32, 32), pair embedding (16, 16), 4 heads,
    /// 2 particle blocks, 1 class block, no hidden head layer, 2 softmax outputs; no pair
    /// features unless `pair_inputs` is set.
    fn default() -> Self {
        PartConfig {
            embed: vec![32, 32],
            pair_embed: vec![16, 16],
            embed_inputs: Vec::new(),
            pair_inputs: Vec::new(),
            heads: 4,
            blocks: 2,
            cls_blocks: 1,
            ffn_ratio: 4,
            fc: Vec::new(),
            n_outputs: 2,
            output: Output::Softmax,
            seed: 0,
        }
    }
}

impl PartConfig {
    /// ParT-small of the benchmark (`shared/guide/benchmarks.md`): embed (64, 128, 64), pair
    /// embedding (32, 32, 32), 4 heads, 3 particle blocks, 1 class block, no hidden head
    /// layer, 2 softmax outputs. weaver counts 223,066 parameters for 5 particle features;
    /// this model has 208 fewer (the pair embedding's batch norms are folded).
    pub fn part_small(embed_inputs: Vec<String>, pair_inputs: Vec<String>) -> PartConfig {
        PartConfig {
            embed: vec![64, 128, 64],
            pair_embed: vec![32, 32, 32],
            embed_inputs,
            pair_inputs,
            heads: 4,
            blocks: 3,
            cls_blocks: 1,
            ..PartConfig::default()
        }
    }
}

/// One named tensor of the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// State-dict name.
    pub name: String,
    /// Shape (PyTorch's).
    pub shape: Vec<usize>,
    /// First index in the flat vector.
    pub offset: usize,
    /// Whether it is a Linear weight (for L1).
    pub kernel: bool,
}

impl TensorSpec {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no value (a zero-sized dimension).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flat range.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A Particle Transformer over the inputs of a [`SetLayout`].
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    layout: SetLayout,
    cfg: PartConfig,
    /// Indices of `(pT, η, φ, E)` among the object features.
    pair_idx: Option<[usize; 4]>,
    /// Indices of the embedding's inputs among the object features.
    embed_idx: Vec<usize>,
    specs: Vec<TensorSpec>,
    params: Vec<f32>,
    pub(crate) event_mean: Vec<f32>,
    pub(crate) event_std: Vec<f32>,
    pub(crate) object_mean: Vec<f32>,
    pub(crate) object_std: Vec<f32>,
    pub(crate) pair_mean: Vec<f32>,
    pub(crate) pair_std: Vec<f32>,
    memory: Held,
}

/// Builds the tensor list of a configuration (`f` object and `e` event features).
fn specs_of(cfg: &PartConfig, f: usize, e: usize, pairs: bool) -> Vec<TensorSpec> {
    let mut out: Vec<TensorSpec> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, kernel: bool| {
        let offset = out.last().map_or(0, |s| s.offset + s.len());
        out.push(TensorSpec { name, shape, offset, kernel });
    };
    add("embed.input_bn.weight".into(), vec![f], false);
    add("embed.input_bn.bias".into(), vec![f], false);
    let mut inp = f;
    for (l, &w) in cfg.embed.iter().enumerate() {
        add(format!("embed.embed.{}.weight", 3 * l), vec![inp], false);
        add(format!("embed.embed.{}.bias", 3 * l), vec![inp], false);
        add(format!("embed.embed.{}.weight", 3 * l + 1), vec![w, inp], true);
        add(format!("embed.embed.{}.bias", 3 * l + 1), vec![w], false);
        inp = w;
    }
    let dim = inp;
    if pairs {
        let mut a = N_PAIR;
        for (l, &w) in cfg.pair_embed.iter().chain(std::iter::once(&cfg.heads)).enumerate() {
            add(format!("pair_embed.layers.{l}.weight"), vec![w, a], true);
            add(format!("pair_embed.layers.{l}.bias"), vec![w], false);
            a = w;
        }
    }
    let ffn = cfg.ffn_ratio * dim;
    for (stack, n) in [("blocks", cfg.blocks), ("cls_blocks", cfg.cls_blocks)] {
        for b in 0..n {
            let p = format!("{stack}.{b}");
            add(format!("{p}.pre_attn_norm.weight"), vec![dim], false);
            add(format!("{p}.pre_attn_norm.bias"), vec![dim], false);
            add(format!("{p}.attn.in_proj_weight"), vec![3 * dim, dim], true);
            add(format!("{p}.attn.in_proj_bias"), vec![3 * dim], false);
            add(format!("{p}.attn.out_proj.weight"), vec![dim, dim], true);
            add(format!("{p}.attn.out_proj.bias"), vec![dim], false);
            add(format!("{p}.post_attn_norm.weight"), vec![dim], false);
            add(format!("{p}.post_attn_norm.bias"), vec![dim], false);
            add(format!("{p}.pre_fc_norm.weight"), vec![dim], false);
            add(format!("{p}.pre_fc_norm.bias"), vec![dim], false);
            add(format!("{p}.fc1.weight"), vec![ffn, dim], true);
            add(format!("{p}.fc1.bias"), vec![ffn], false);
            add(format!("{p}.post_fc_norm.weight"), vec![ffn], false);
            add(format!("{p}.post_fc_norm.bias"), vec![ffn], false);
            add(format!("{p}.fc2.weight"), vec![dim, ffn], true);
            add(format!("{p}.fc2.bias"), vec![dim], false);
            add(format!("{p}.c_attn"), vec![cfg.heads], false);
            add(format!("{p}.w_resid"), vec![dim], false);
        }
    }
    add("norm.weight".into(), vec![dim], false);
    add("norm.bias".into(), vec![dim], false);
    let mut a = dim + e;
    for (l, &w) in cfg.fc.iter().enumerate() {
        add(format!("fc.{l}.0.weight"), vec![w, a], true);
        add(format!("fc.{l}.0.bias"), vec![w], false);
        a = w;
    }
    let last = cfg.fc.len();
    add(format!("fc.{last}.weight"), vec![cfg.n_outputs, a], true);
    add(format!("fc.{last}.bias"), vec![cfg.n_outputs], false);
    add("cls_token".into(), vec![1, 1, dim], false);
    out
}

impl Part {
    /// A new network initialised as PyTorch initialises weaver's module: Linear weights and
    /// biases U(±1/√fan-in), LayerNorm and the per-head/residual scales 1 and 0, attention
    /// input projection Xavier-uniform with zero biases, the class token N(0, 0.02²) truncated
    /// at ±2 (absolute, as timm's `trunc_normal_`), all drawn from `cfg.seed`. Standardisation
    /// starts as the identity.
    pub fn new(layout: SetLayout, cfg: &PartConfig) -> Result<Part> {
        let op = "part";
        let bad = |key: &str, problem: String| Error::BadOption { func: op.into(), key: key.into(), problem };
        if cfg.embed.is_empty() {
            return Err(bad("embed", "needs at least one width".into()));
        }
        for (key, w) in [("embed", &cfg.embed), ("pair_embed", &cfg.pair_embed), ("fc", &cfg.fc)] {
            limits::check(op, "number of layers", w.len(), limits::LAYERS)?;
            if let Some(i) = w.iter().position(|&v| v == 0) {
                return Err(bad(key, format!("layer {i} has width 0")));
            }
            for &v in w {
                limits::check(op, "layer width", v, 1 << 16)?;
            }
        }
        let dim = cfg.embed[cfg.embed.len() - 1];
        if cfg.heads == 0 || dim % cfg.heads != 0 {
            return Err(bad("heads", format!("{} heads do not divide the model width {dim}", cfg.heads)));
        }
        if cfg.ffn_ratio == 0 || cfg.ffn_ratio > 64 {
            return Err(bad("ffn_ratio", format!("{} is not in 1..=64", cfg.ffn_ratio)));
        }
        limits::check(op, "number of blocks", cfg.blocks.saturating_add(cfg.cls_blocks), limits::LAYERS)?;
        if cfg.cls_blocks == 0 {
            return Err(bad("cls_blocks", "needs at least one class-attention block".into()));
        }
        cfg.output.check_width(cfg.n_outputs)?;
        let pair_idx = match cfg.pair_inputs.len() {
            0 => None,
            4 => {
                let mut idx = [0usize; 4];
                for (k, name) in cfg.pair_inputs.iter().enumerate() {
                    idx[k] = layout.object_features.iter().position(|f| f == name).ok_or_else(|| {
                        bad(
                            "pair_inputs",
                            format!(
                                "'{name}' is not an object feature of the model (they are {})",
                                layout.object_features.join(", ")
                            ),
                        )
                    })?;
                }
                Some(idx)
            }
            n => return Err(bad("pair_inputs", format!("needs the 4 features (pT, η, φ, E), got {n}"))),
        };
        let find = |key: &str, name: &String| {
            layout.object_features.iter().position(|f| f == name).ok_or_else(|| {
                bad(
                    key,
                    format!(
                        "'{name}' is not an object feature of the model (they are {})",
                        layout.object_features.join(", ")
                    ),
                )
            })
        };
        let embed_idx: Vec<usize> = if cfg.embed_inputs.is_empty() {
            (0..layout.n_object()).collect()
        } else {
            cfg.embed_inputs.iter().map(|n| find("embed_inputs", n)).collect::<Result<_>>()?
        };
        let (f, e) = (layout.n_object(), layout.n_event());
        let specs = specs_of(cfg, embed_idx.len(), e, pair_idx.is_some());
        let total = specs.last().map_or(0, |s| s.offset + s.len());
        limits::check(op, "parameter count", total, limits::PARAMS)?;
        let what = format!("part: a network of {total} parameters");
        memory::check(memory::bytes(total, 8), &what)?;
        let held = memory::reserve(memory::bytes(total, 4), &what)?;
        let mut params = vec![0.0f32; total];
        let mut r = rng::rng(cfg.seed);
        let normal = Normal::new(0.0f32, 0.02).map_err(|e| Error::arg(op, e.to_string()))?;
        for s in &specs {
            let n = s.name.as_str();
            let weight_of_bias = n.strip_suffix("bias").map(|p| format!("{p}weight"));
            let linear = weight_of_bias.as_ref().and_then(|w| specs.iter().find(|k| k.kernel && &k.name == w));
            let v = &mut params[s.range()];
            if n.ends_with("in_proj_weight") {
                // xavier_uniform_ of the (3E × E) matrix: fan_in + fan_out = E + 3E.
                let bound = (6.0 / (s.shape[0] + s.shape[1]) as f32).sqrt();
                v.iter_mut().for_each(|x| *x = r.random_range(-bound..bound));
            } else if n.ends_with("in_proj_bias") || n.ends_with("out_proj.bias") {
                v.fill(0.0);
            } else if s.kernel || linear.is_some() {
                // Linear / 1×1-convolution weights and biases: U(±1/√fan-in).
                let fan_in = if s.kernel { s.shape[1] } else { linear.map_or(1, |k| k.shape[1]) };
                let bound = 1.0 / (fan_in as f32).sqrt();
                v.iter_mut().for_each(|x| *x = r.random_range(-bound..bound));
            } else if n == "cls_token" {
                v.iter_mut().for_each(|x| *x = normal.sample(&mut r).clamp(-2.0, 2.0));
            } else if n.ends_with("weight") || n.ends_with("c_attn") || n.ends_with("w_resid") {
                // LayerNorm and input affine scales, per-head and residual scales.
                v.fill(1.0);
            } else {
                // LayerNorm and input affine shifts.
                v.fill(0.0);
            }
        }
        Ok(Part {
            layout,
            cfg: cfg.clone(),
            pair_idx,
            embed_idx,
            specs,
            params,
            event_mean: vec![0.0; e],
            event_std: vec![1.0; e],
            object_mean: vec![0.0; f],
            object_std: vec![1.0; f],
            pair_mean: vec![0.0; N_PAIR],
            pair_std: vec![1.0; N_PAIR],
            memory: Held(held),
        })
    }

    // === Architecture ===

    /// The input layout.
    pub fn layout(&self) -> &SetLayout {
        &self.layout
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &PartConfig {
        &self.cfg
    }

    /// Number of inputs `D`.
    pub fn n_inputs(&self) -> usize {
        self.layout.width()
    }

    /// Number of logits.
    pub fn n_outputs(&self) -> usize {
        self.cfg.n_outputs
    }

    /// Output layer.
    pub fn output(&self) -> Output {
        self.cfg.output
    }

    /// Model width `E`.
    pub fn dim(&self) -> usize {
        self.cfg.embed[self.cfg.embed.len() - 1]
    }

    /// Indices of `(pT, η, φ, E)` among the object features, when the model has pair features.
    pub fn pair_idx(&self) -> Option<[usize; 4]> {
        self.pair_idx
    }

    /// Indices of the embedding's inputs among the object features.
    pub fn embed_idx(&self) -> &[usize] {
        &self.embed_idx
    }

    /// The named tensors of the flat parameter vector, in order.
    pub fn tensor_specs(&self) -> &[TensorSpec] {
        &self.specs
    }

    /// The tensor called `name`.
    pub(crate) fn spec(&self, name: &str) -> Option<&TensorSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    // === Parameters ===

    /// Number of parameters.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// The flat parameters (see the module documentation).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Replaces the parameters; every value must be finite.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        if p.len() != self.params.len() {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", self.params.len()),
                got: p.len().to_string(),
            });
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::arg("set_params", format!("parameter {i} is {}", p[i])));
        }
        self.params.copy_from_slice(p);
        Ok(())
    }

    /// The parameter groups: `(name, range)` per top-level module, in flat order.
    pub fn groups(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut out: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        for s in &self.specs {
            let parts: Vec<&str> = s.name.split('.').collect();
            let g = match parts[0] {
                "blocks" | "cls_blocks" => format!("{}.{}", parts[0], parts[1]),
                other => other.to_string(),
            };
            match out.last_mut() {
                Some((name, r)) if *name == g => r.end = s.offset + s.len(),
                _ => out.push((g, s.range())),
            }
        }
        out
    }

    // === Standardisation ===

    /// Sets the standardisation: event, object and pair means and scales (scales > 0).
    #[allow(clippy::too_many_arguments)]
    pub fn set_standardization(
        &mut self,
        event: (Vec<f32>, Vec<f32>),
        object: (Vec<f32>, Vec<f32>),
        pair: (Vec<f32>, Vec<f32>),
    ) -> Result<()> {
        let op = "set_standardization";
        let want = [self.layout.n_event(), self.layout.n_object(), N_PAIR];
        for ((what, (m, s)), n) in [("event", &event), ("object", &object), ("pair", &pair)].into_iter().zip(want) {
            if m.len() != n || s.len() != n {
                return Err(Error::Shape {
                    op,
                    expected: format!("{n} {what} means and stds"),
                    got: format!("{} and {}", m.len(), s.len()),
                });
            }
            if let Some(i) = m.iter().position(|v| !v.is_finite()) {
                return Err(Error::arg(op, format!("mean of {what} feature {i} is {}", m[i])));
            }
            if let Some(i) = s.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(Error::arg(op, format!("std of {what} feature {i} is {}, must be > 0", s[i])));
            }
        }
        (self.event_mean, self.event_std) = event;
        (self.object_mean, self.object_std) = object;
        (self.pair_mean, self.pair_std) = pair;
        Ok(())
    }

    /// Fits the standardisation to inputs `x` (`n × D`): event features over events, object
    /// features over real objects, pair features over the pairs i ≥ j of real objects
    /// (population mean and std in f64; a constant feature gets std 1).
    pub fn fit_standardization(&mut self, x: ArrayView2<'_, f32>) -> Result<()> {
        self.check_input("fit_standardization", x)?;
        if x.nrows() == 0 {
            return Err(Error::Empty { op: "fit_standardization", what: "the event set".into() });
        }
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let mut ev = vec![(0.0f64, 0.0f64); e];
        let mut ob = vec![(0.0f64, 0.0f64); f];
        let mut pr = [(0.0f64, 0.0f64); N_PAIR];
        let (mut n_obj, mut n_pair) = (0usize, 0usize);
        let add = |acc: &mut (f64, f64), v: f64| {
            acc.0 += v;
            acc.1 += v * v;
        };
        for row in x.rows() {
            let row = row.to_vec();
            for (acc, &v) in ev.iter_mut().zip(&row[..e]) {
                add(acc, f64::from(v));
            }
            let k = self.layout.count(&row);
            n_obj += k;
            for s in 0..k {
                for (j, acc) in ob.iter_mut().enumerate() {
                    add(acc, f64::from(row[self.layout.slot_column(s, j)]));
                }
            }
            if let Some(idx) = self.pair_idx {
                let kins: Vec<Kin> =
                    (0..k).map(|s| Kin::new(idx.map(|j| row[self.layout.slot_column(s, j)]))).collect();
                for a in 0..k {
                    for b in 0..=a {
                        let (fv, _) = pair_features(&kins[a], &kins[b]);
                        for (acc, v) in pr.iter_mut().zip(fv) {
                            add(acc, v);
                        }
                        n_pair += 1;
                    }
                }
            }
        }
        let finish = |acc: &[(f64, f64)], n: usize| -> (Vec<f32>, Vec<f32>) {
            let n = n.max(1) as f64;
            acc.iter()
                .map(|&(s, s2)| {
                    let m = s / n;
                    let sd = (s2 / n - m * m).max(0.0).sqrt() as f32;
                    (m as f32, if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
                })
                .unzip()
        };
        let pair = if self.pair_idx.is_some() { finish(&pr, n_pair) } else { (vec![0.0; N_PAIR], vec![1.0; N_PAIR]) };
        self.set_standardization(finish(&ev, x.nrows()), finish(&ob, n_obj), pair)
    }

    /// Errors unless `x` has one column per model input.
    pub fn check_input(&self, op: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
        if x.ncols() != self.n_inputs() {
            return Err(Error::Shape {
                op,
                expected: format!(
                    "{} input columns ({} event features, 1 count, {} slots × {} object features)",
                    self.n_inputs(),
                    self.layout.n_event(),
                    self.layout.max_objects,
                    self.layout.n_object()
                ),
                got: format!("{}", x.ncols()),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "part_tests.rs"]
mod tests;
