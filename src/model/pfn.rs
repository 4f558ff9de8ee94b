//! The Particle Flow Network (Deep Sets; Komiske, Metodiev, Thaler, JHEP 01 (2019) 121):
//! `f(x) = F(pool_i Φ(p_i) ⊕ e)` — a per-object network Φ applied to every real object, a
//! masked sum (or mean) over the objects of an event, and a network F on the pooled vector
//! concatenated with the event's flat features `e` (possibly none).
//!
//! **Inputs** are the flat `n × D` rows of a [`SetLayout`] in physical units: event features,
//! a count entry, then `max_objects` object slots. The model reads the count entry (rounded,
//! clamped to `[0, max_objects]`) as the mask: padded slots never influence the output and
//! get zero gradient, and the count entry itself gets zero gradient.
//!
//! **Standardisation is part of the model**: per event feature and per object feature a mean
//! and a scale, applied before Φ and F; input gradients are ∂/∂x in physical units.
//!
//! **Architecture.** Φ: `f → φ₁ → … → L`, the activation after *every* layer (energyflow's
//! convention: the latent vectors are activated before pooling). F: `L + E → h₁ → … → k`, the
//! activation after every layer but the last (logits). `k` is 1 for a sigmoid output.
//!
//! **Parameters.** One flat vector: Φ's layers, then F's, each layer a weight and a bias. The
//! public order ([`Pfn::params_flat`]) is PyTorch's: per layer the weight out × in row-major,
//! then the bias, in the groups `phi.0, phi.1, …, f.0, f.1, …` ([`Pfn::param_groups`]) — the
//! `parameters_to_vector` order of `scripts/export_pfn.py`'s module, whose state-dict names
//! are `phi.{2l}.weight` / `f.{2l}.weight` (Linear layers at even positions of
//! `nn.Sequential`). Internally each weight is stored in × out for the fused GEMMs (see
//! [`Mlp`](super::Mlp)).
//!
//! **Why not candle.** Φ and F are plain MLPs, so the PFN runs on the same fused kernels as
//! [`Mlp`](super::Mlp) (`gemm.rs`, bias and activation fused after each GEMM): Φ on all real
//! objects of a block of events as one GEMM per layer (no padded slots are ever computed),
//! the pooling as a segment sum, and its backward a broadcast. See `pfn_pass.rs`.

use ndarray::ArrayView2;
use rand::Rng as _;

use super::activation::Activation;
use super::layout::SetLayout;
use super::loss::Output;
use super::mlp::Held;
#[cfg(test)]
use super::pfn_io::{import_torch_pfn, PfnImport};
use crate::error::{Error, Result};
use crate::{limits, memory, rng};

/// How a PFN pools the Φ outputs of an event's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Σᵢ Φ(pᵢ) (energyflow's PFN).
    Sum,
    /// (1/k) Σᵢ Φ(pᵢ), 0 for an event without objects.
    Mean,
}

impl Pooling {
    /// Parses "sum" or "mean".
    pub fn parse(name: &str) -> Result<Pooling> {
        match name {
            "sum" => Ok(Pooling::Sum),
            "mean" => Ok(Pooling::Mean),
            other => Err(Error::BadOption {
                func: "pfn".into(),
                key: "pooling".into(),
                problem: format!("'{other}' is not a pooling; use \"sum\" or \"mean\""),
            }),
        }
    }

    /// "sum" or "mean".
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Sum => "sum",
            Pooling::Mean => "mean",
        }
    }
}

/// How to build a [`Pfn`] (besides its [`SetLayout`]).
#[derive(Clone, Debug)]
pub struct PfnConfig {
    /// Widths of Φ's layers after the input; the last is the latent size `L`.
    pub phi: Vec<usize>,
    /// Widths of F's hidden layers (F's input is `L + E`, its output the logits).
    pub f: Vec<usize>,
    /// Number of outputs (logits); 1 for a sigmoid output.
    pub n_outputs: usize,
    /// Pooling over objects.
    pub pooling: Pooling,
    /// Nonlinearity after every Φ layer and every hidden F layer.
    pub activation: Activation,
    /// Output layer and its loss.
    pub output: Output,
    /// Seed of the weight initialisation.
    pub seed: u64,
}

impl Default for PfnConfig {
    /// energyflow's PFN defaults: Φ (100, 100, 128), F (100, 100, 100), sum, ReLU, one
    /// sigmoid output, seed 0.
    fn default() -> Self {
        PfnConfig {
            phi: vec![100, 100, 128],
            f: vec![100, 100, 100],
            n_outputs: 1,
            pooling: Pooling::Sum,
            activation: Activation::Relu,
            output: Output::Sigmoid,
            seed: 0,
        }
    }
}

/// A Particle Flow Network over the inputs of a [`SetLayout`].
#[derive(Clone, Debug, PartialEq)]
pub struct Pfn {
    layout: SetLayout,
    pooling: Pooling,
    activation: Activation,
    output: Output,
    /// Φ's widths, input `f` first, latent `L` last.
    phi: Vec<usize>,
    /// F's widths, input `L + E` first, `k` last.
    f: Vec<usize>,
    /// Internal layout: per layer (Φ then F) the weight in × out row-major, then the bias.
    params: Vec<f32>,
    /// Start of each layer in `params`, plus the total.
    offsets: Vec<usize>,
    event_mean: Vec<f32>,
    event_std: Vec<f32>,
    object_mean: Vec<f32>,
    object_std: Vec<f32>,
    memory: Held,
}

impl Pfn {
    /// A new network, initialised like `torch.nn.Linear` (every weight and bias of a layer
    /// with fan-in `a` uniform in (−1/√a, 1/√a)), drawn from `cfg.seed` in the public
    /// parameter order. Standardisation starts as the identity.
    pub fn new(layout: SetLayout, cfg: &PfnConfig) -> Result<Pfn> {
        let op = "pfn";
        if cfg.phi.is_empty() {
            return Err(Error::BadOption {
                func: op.into(),
                key: "phi".into(),
                problem: "needs at least one width".into(),
            });
        }
        let e = layout.n_event();
        let latent = cfg.phi[cfg.phi.len() - 1];
        let mut phi = vec![layout.n_object()];
        phi.extend(&cfg.phi);
        let mut f = vec![latent.saturating_add(e)];
        f.extend(&cfg.f);
        f.push(cfg.n_outputs);
        for (key, w) in [("phi", &phi), ("f", &f)] {
            limits::check(op, "number of layers", w.len(), limits::LAYERS)?;
            if let Some(i) = w.iter().position(|&v| v == 0) {
                return Err(Error::BadOption {
                    func: op.into(),
                    key: key.into(),
                    problem: format!("layer {i} has width 0"),
                });
            }
            for &v in w {
                limits::check(op, "layer width", v, limits::LAYER_WIDTH)?;
            }
        }
        cfg.output.check_width(cfg.n_outputs)?;
        let mut offsets = vec![0usize];
        for w in phi.windows(2).chain(f.windows(2)) {
            let n = w[0].saturating_mul(w[1]).saturating_add(w[1]);
            offsets.push(offsets[offsets.len() - 1].saturating_add(n));
        }
        let total = offsets[offsets.len() - 1];
        limits::check(op, "parameter count", total, limits::PARAMS)?;
        let what = format!("pfn: a network of {total} parameters");
        memory::check(memory::bytes(total, 8), &what)?;
        let held = memory::reserve(memory::bytes(total, 4), &what)?;
        let (no, ne) = (layout.n_object(), e);
        let mut pfn = Pfn {
            layout,
            pooling: cfg.pooling,
            activation: cfg.activation,
            output: cfg.output,
            phi,
            f,
            params: vec![0.0; total],
            offsets,
            event_mean: vec![0.0; ne],
            event_std: vec![1.0; ne],
            object_mean: vec![0.0; no],
            object_std: vec![1.0; no],
            memory: Held(held),
        };
        let mut r = rng::rng(cfg.seed);
        let mut torch = Vec::with_capacity(total);
        for (a, b) in pfn.shapes() {
            let bound = 1.0 / (a as f32).sqrt();
            torch.extend((0..a * b + b).map(|_| r.random_range(-bound..bound)));
        }
        pfn.load_torch_order(&torch);
        Ok(pfn)
    }

    // === Architecture ===

    /// The input layout.
    pub fn layout(&self) -> &SetLayout {
        &self.layout
    }

    /// Number of inputs `D` (the layout's width).
    pub fn n_inputs(&self) -> usize {
        self.layout.width()
    }

    /// Number of outputs (logits).
    pub fn n_outputs(&self) -> usize {
        self.f[self.f.len() - 1]
    }

    /// Output layer type.
    pub fn output(&self) -> Output {
        self.output
    }

    /// The nonlinearity.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The pooling.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Φ's widths, the object features first, the latent size last.
    pub fn phi_widths(&self) -> &[usize] {
        &self.phi
    }

    /// [`Model::replace_head`](super::Model::replace_head): F's output layer replaced by one of
    /// `outputs` units and output `output`, drawn from `seed`; Φ, F's hidden layers and the
    /// standardisation kept bit for bit.
    pub fn with_head(&self, outputs: usize, output: Output, seed: u64) -> Result<Pfn> {
        let cfg = PfnConfig {
            phi: self.phi[1..].to_vec(),
            f: self.f[1..self.f.len() - 1].to_vec(),
            n_outputs: outputs,
            pooling: self.pooling,
            activation: self.activation,
            output,
            seed,
        };
        let mut p = Pfn::new(self.layout.clone(), &cfg)?;
        p.set_standardization(
            self.event_mean.clone(),
            self.event_std.clone(),
            self.object_mean.clone(),
            self.object_std.clone(),
        )?;
        super::finetune::transplant_body(self, &mut p, seed)?;
        Ok(p)
    }

    /// F's widths, `L + E` first, the outputs last.
    pub fn f_widths(&self) -> &[usize] {
        &self.f
    }

    /// Latent size `L` (Φ's output width).
    pub fn latent(&self) -> usize {
        self.phi[self.phi.len() - 1]
    }

    /// Number of Φ layers.
    pub(crate) fn n_phi(&self) -> usize {
        self.phi.len() - 1
    }

    /// `(fan-in, fan-out)` of every layer, Φ's then F's.
    pub(crate) fn shapes(&self) -> Vec<(usize, usize)> {
        self.phi.windows(2).chain(self.f.windows(2)).map(|w| (w[0], w[1])).collect()
    }

    // === Parameters ===

    /// Total number of weights and biases.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// The named parameter groups in public order: `(name, offset, length)` per layer,
    /// `phi.0`, `phi.1`, …, `f.0`, …; each group is the layer's weight (out × in) then bias.
    pub fn param_groups(&self) -> Vec<(String, usize, usize)> {
        let n_phi = self.n_phi();
        (0..self.shapes().len())
            .map(|l| {
                let name = if l < n_phi { format!("phi.{l}") } else { format!("f.{}", l - n_phi) };
                (name, self.offsets[l], self.offsets[l + 1] - self.offsets[l])
            })
            .collect()
    }

    /// All parameters in public (PyTorch) order, see the module documentation.
    pub fn params_flat(&self) -> Vec<f32> {
        self.to_torch_order(&self.params)
    }

    /// Replaces all parameters from a vector in public order; every value must be finite.
    pub fn set_params_flat(&mut self, flat: &[f32]) -> Result<()> {
        if flat.len() != self.params.len() {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", self.params.len()),
                got: format!("{}", flat.len()),
            });
        }
        if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
            return Err(Error::arg("set_params", format!("parameter {i} is {}", flat[i])));
        }
        self.load_torch_order(flat);
        Ok(())
    }

    /// Internal flat parameters.
    pub(crate) fn params(&self) -> &[f32] {
        &self.params
    }

    /// Start of global layer `l` (Φ's layers first) in the flat vector (both orders).
    pub(crate) fn offset(&self, l: usize) -> usize {
        self.offsets[l]
    }

    /// Converts an internal-layout vector (parameters or gradients) to public order.
    pub(crate) fn to_torch_order(&self, internal: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; internal.len()];
        for (l, (a, b)) in self.shapes().into_iter().enumerate() {
            let o = self.offsets[l];
            for i in 0..a {
                for j in 0..b {
                    out[o + j * a + i] = internal[o + i * b + j];
                }
            }
            out[o + a * b..o + a * b + b].copy_from_slice(&internal[o + a * b..o + a * b + b]);
        }
        out
    }

    fn load_torch_order(&mut self, torch: &[f32]) {
        for (l, (a, b)) in self.shapes().into_iter().enumerate() {
            let o = self.offsets[l];
            for i in 0..a {
                for j in 0..b {
                    self.params[o + i * b + j] = torch[o + j * a + i];
                }
            }
            self.params[o + a * b..o + a * b + b].copy_from_slice(&torch[o + a * b..o + a * b + b]);
        }
    }

    // === Standardisation ===

    /// Per event feature mean and scale.
    pub fn event_standardization(&self) -> (&[f32], &[f32]) {
        (&self.event_mean, &self.event_std)
    }

    /// Per object feature mean and scale.
    pub fn object_standardization(&self) -> (&[f32], &[f32]) {
        (&self.object_mean, &self.object_std)
    }

    /// Sets the standardisation: `E` event means and scales, `f` object means and scales;
    /// means finite, scales finite and > 0.
    pub fn set_standardization(
        &mut self,
        event_mean: Vec<f32>,
        event_std: Vec<f32>,
        object_mean: Vec<f32>,
        object_std: Vec<f32>,
    ) -> Result<()> {
        let op = "set_standardization";
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        if event_mean.len() != e || event_std.len() != e || object_mean.len() != f || object_std.len() != f {
            return Err(Error::Shape {
                op,
                expected: format!("{e} event and {f} object means and stds"),
                got: format!(
                    "{}/{} event and {}/{} object",
                    event_mean.len(),
                    event_std.len(),
                    object_mean.len(),
                    object_std.len()
                ),
            });
        }
        for (what, m, s) in [("event", &event_mean, &event_std), ("object", &object_mean, &object_std)] {
            if let Some(i) = m.iter().position(|v| !v.is_finite()) {
                return Err(Error::arg(op, format!("mean of {what} feature {i} is {}", m[i])));
            }
            if let Some(i) = s.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(Error::arg(op, format!("std of {what} feature {i} is {}, must be > 0", s[i])));
            }
        }
        (self.event_mean, self.event_std, self.object_mean, self.object_std) =
            (event_mean, event_std, object_mean, object_std);
        Ok(())
    }

    /// Fits the standardisation to inputs `x` (`n × D`, physical units): event features over
    /// the events, object features over all real objects (population mean and std in f64; a
    /// constant feature gets std 1).
    pub fn fit_standardization(&mut self, x: ArrayView2<'_, f32>) -> Result<()> {
        self.check_input("fit_standardization", x)?;
        if x.nrows() == 0 {
            return Err(Error::Empty { op: "fit_standardization", what: "the event set".into() });
        }
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let mut ev = vec![(0.0f64, 0.0f64); e];
        let mut ob = vec![(0.0f64, 0.0f64); f];
        let mut n_obj = 0usize;
        for row in x.rows() {
            let row = row.to_vec();
            for (acc, &v) in ev.iter_mut().zip(&row[..e]) {
                acc.0 += f64::from(v);
                acc.1 += f64::from(v) * f64::from(v);
            }
            let k = self.layout.count(&row);
            n_obj += k;
            for s in 0..k {
                for (j, acc) in ob.iter_mut().enumerate() {
                    let v = f64::from(row[self.layout.slot_column(s, j)]);
                    acc.0 += v;
                    acc.1 += v * v;
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
        let (em, es) = finish(&ev, x.nrows());
        let (om, os) = finish(&ob, n_obj);
        self.set_standardization(em, es, om, os)
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
#[path = "pfn_tests.rs"]
mod tests;
