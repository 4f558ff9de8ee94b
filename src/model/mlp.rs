//! The multilayer perceptron: architecture, parameters, input standardisation, forward pass.
//!
//! **Parameter layout.** All weights and biases live in one flat `f32` vector so that an
//! optimizer step is a single fused loop. Layer `l` (fan-in `a`, fan-out `b`) occupies
//! `a·b + b` consecutive values: its weight as an **`a × b` row-major matrix (in × out, the
//! transpose of PyTorch's out × in)**, then its bias. With events as rows of a row-major
//! `n × a` matrix `X`, a layer is the GEMM `X · W + b` with unit-stride inner loops and no
//! transposition. [`Mlp::params_flat`] and [`Mlp::set_params_flat`] convert to and from
//! PyTorch's order (`parameters_to_vector`: per layer, weight out × in row-major, then bias).
//!
//! **Standardisation is part of the model.** Forward passes compute `(x − mean) / std` per
//! feature first, so callers and attacks work in physical units, and input gradients are
//! chained through it (they are ∂/∂x in physical units).

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng as _;
use rayon::prelude::*;

use super::activation::Activation;
use super::loss::Output;
use super::workspace::{with_workspace, Pass, Workspace};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::{limits, memory, rng};

/// Events per chunk for parallel inference: big enough to amortise GEMM packing, small
/// enough that a chunk's activations stay in the core's L2 cache.
pub(crate) const INFER_CHUNK: usize = 256;

/// How to build an [`Mlp`].
#[derive(Clone, Debug)]
pub struct MlpConfig {
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Output layer and its loss.
    pub output: Output,
    /// Dropout probability after every hidden activation, applied in training only.
    pub dropout: f32,
    /// Seed of the weight initialisation.
    pub seed: u64,
    /// Names of the input features (checked against datasets); `None` checks only the count
    /// until the model is fitted to a dataset.
    pub feature_names: Option<Vec<String>>,
}

impl Default for MlpConfig {
    /// ReLU, sigmoid output, no dropout, seed 0, unnamed features.
    fn default() -> Self {
        MlpConfig { activation: Activation::Relu, output: Output::Sigmoid, dropout: 0.0, seed: 0, feature_names: None }
    }
}

/// A fully connected network `d → h₁ → … → k` with one activation between layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<usize>,
    activation: Activation,
    output: Output,
    dropout: f32,
    params: Vec<f32>,
    offsets: Vec<usize>,
    feature_names: Option<Vec<String>>,
    mean: Vec<f32>,
    std: Vec<f32>,
    memory: Held,
}

/// The weights' bytes counted against the session memory budget while the model lives
/// ([`memory::Reservation`]). Cloning a model copies its weights, so the clone counts them
/// again ([`memory::Reservation::duplicate`]); not part of a model's value (equality ignores
/// it).
#[derive(Debug, Default)]
pub(crate) struct Held(pub(crate) memory::Reservation);

impl Clone for Held {
    fn clone(&self) -> Self {
        Held(self.0.duplicate())
    }
}

impl PartialEq for Held {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Mlp {
    /// A new network with widths `layers` (inputs first, outputs last), initialised like
    /// `torch.nn.Linear`: every weight and bias of a layer with fan-in `a` uniform in
    /// (−1/√a, 1/√a) (Kaiming-uniform with a = √5), drawn from `cfg.seed` in PyTorch parameter
    /// order. Standardisation starts as the identity (mean 0, std 1).
    pub fn new(layers: &[usize], cfg: MlpConfig) -> Result<Mlp> {
        if layers.len() < 2 {
            return Err(Error::arg("mlp", format!("needs at least an input and an output width, got {layers:?}")));
        }
        limits::check("mlp", "number of layers", layers.len(), limits::LAYERS)?;
        if let Some(i) = layers.iter().position(|&w| w == 0) {
            return Err(Error::arg("mlp", format!("layer {i} has width 0 in {layers:?}")));
        }
        for &w in layers {
            limits::check("mlp", "layer width", w, limits::LAYER_WIDTH)?;
        }
        let params =
            layers.windows(2).map(|p| p[0].saturating_mul(p[1]).saturating_add(p[1])).fold(0, usize::saturating_add);
        limits::check("mlp", "parameter count", params, limits::PARAMS)?;
        // The weights and the copy in PyTorch order made while initialising them must fit;
        // the weights then count while the model lives.
        let what = format!("mlp: a network of {params} parameters");
        memory::check(memory::bytes(params, 8), &what)?;
        let held = memory::reserve(memory::bytes(params, 4), &what)?;
        cfg.output.check_width(layers[layers.len() - 1])?;
        if !(0.0..1.0).contains(&cfg.dropout) {
            return Err(Error::arg("mlp", format!("dropout must be in [0, 1), got {}", cfg.dropout)));
        }
        if let Some(names) = &cfg.feature_names {
            if names.len() != layers[0] {
                return Err(Error::Shape {
                    op: "mlp",
                    expected: format!("{} feature names for {} inputs", layers[0], layers[0]),
                    got: format!("{}", names.len()),
                });
            }
        }
        let mut offsets = Vec::with_capacity(layers.len());
        let mut total = 0;
        for w in layers.windows(2) {
            offsets.push(total);
            total += w[0] * w[1] + w[1];
        }
        offsets.push(total);
        let d = layers[0];
        let mut mlp = Mlp {
            layers: layers.to_vec(),
            activation: cfg.activation,
            output: cfg.output,
            dropout: cfg.dropout,
            params: vec![0.0; total],
            offsets,
            feature_names: cfg.feature_names,
            mean: vec![0.0; d],
            std: vec![1.0; d],
            memory: Held(held),
        };
        mlp.init_params(cfg.seed);
        Ok(mlp)
    }

    fn init_params(&mut self, seed: u64) {
        let mut r = rng::rng(seed);
        let mut torch = Vec::with_capacity(self.params.len());
        for w in self.layers.windows(2) {
            let bound = 1.0 / (w[0] as f32).sqrt();
            torch.extend((0..w[0] * w[1] + w[1]).map(|_| r.random_range(-bound..bound)));
        }
        self.load_torch_order(&torch);
    }

    // === Architecture ===

    /// Layer widths, inputs first.
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }

    /// Number of input features.
    pub fn n_inputs(&self) -> usize {
        self.layers[0]
    }

    /// Number of outputs (logits).
    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1]
    }

    /// Number of linear layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len() - 1
    }

    /// Hidden-layer activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Output layer type.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Training-time dropout probability.
    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    /// Sets the training-time dropout probability (in [0, 1)).
    pub fn set_dropout(&mut self, p: f32) -> Result<()> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg("mlp", format!("dropout must be in [0, 1), got {p}")));
        }
        self.dropout = p;
        Ok(())
    }

    // === Parameters ===

    /// Total number of weights and biases.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Weight shapes in PyTorch's convention, `(out, in)` per layer (`weight.shape`).
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        self.layers.windows(2).map(|w| (w[1], w[0])).collect()
    }

    /// All parameters in PyTorch order: per layer the weight (out × in, row-major), then the
    /// bias — comparable with `torch.nn.utils.parameters_to_vector(model.parameters())`.
    pub fn params_flat(&self) -> Vec<f32> {
        self.to_torch_order(&self.params)
    }

    /// Replaces all parameters from a vector in PyTorch order (see [`Mlp::params_flat`]).
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

    /// Splits a PyTorch-order flat vector (parameters or gradients) into per-layer
    /// `(weight out × in, bias)` views.
    pub fn split_layers<'a>(&self, flat: &'a [f32]) -> Result<Vec<(ArrayView2<'a, f32>, ArrayView1<'a, f32>)>> {
        if flat.len() != self.params.len() {
            return Err(Error::Shape {
                op: "split_layers",
                expected: format!("{} values", self.params.len()),
                got: format!("{}", flat.len()),
            });
        }
        let mut out = Vec::with_capacity(self.n_layers());
        for (l, w) in self.layers.windows(2).enumerate() {
            let (a, b) = (w[0], w[1]);
            let o = self.offsets[l];
            let wv = ArrayView2::from_shape((b, a), &flat[o..o + a * b]).map_err(|e| Error::Tensor(e.to_string()))?;
            let bv = ArrayView1::from(&flat[o + a * b..o + a * b + b]);
            out.push((wv, bv));
        }
        Ok(out)
    }

    /// The internal flat parameters (per layer: weight in × out row-major, then bias).
    pub(crate) fn params(&self) -> &[f32] {
        &self.params
    }

    /// Mutable internal flat parameters.
    pub(crate) fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Offset of layer `l` in the flat vector (the same in both orders).
    pub(crate) fn offset(&self, l: usize) -> usize {
        self.offsets[l]
    }

    /// Layer `l`'s weight, in × out row-major.
    pub(crate) fn weight(&self, l: usize) -> &[f32] {
        let o = self.offsets[l];
        &self.params[o..o + self.layers[l] * self.layers[l + 1]]
    }

    /// Layer `l`'s bias.
    pub(crate) fn bias(&self, l: usize) -> &[f32] {
        let o = self.offsets[l] + self.layers[l] * self.layers[l + 1];
        &self.params[o..self.offsets[l + 1]]
    }

    /// Converts an internal-layout vector (parameters or gradients) to PyTorch order.
    pub(crate) fn to_torch_order(&self, internal: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; internal.len()];
        for (l, w) in self.layers.windows(2).enumerate() {
            let (a, b, o) = (w[0], w[1], self.offsets[l]);
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
        for (l, w) in self.layers.windows(2).enumerate() {
            let (a, b, o) = (w[0], w[1], self.offsets[l]);
            for i in 0..a {
                for j in 0..b {
                    self.params[o + i * b + j] = torch[o + j * a + i];
                }
            }
            self.params[o + a * b..o + a * b + b].copy_from_slice(&torch[o + a * b..o + a * b + b]);
        }
    }

    // === Standardisation and features ===

    /// Feature names the model expects, if known.
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// Sets (or clears) the expected feature names.
    pub fn set_feature_names(&mut self, names: Option<Vec<String>>) -> Result<()> {
        if let Some(n) = &names {
            if n.len() != self.n_inputs() {
                return Err(Error::Shape {
                    op: "set_feature_names",
                    expected: format!("{} names", self.n_inputs()),
                    got: format!("{}", n.len()),
                });
            }
        }
        self.feature_names = names;
        Ok(())
    }

    /// Per-feature mean subtracted before the first layer.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Per-feature scale divided by before the first layer.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Sets the standardisation; every std must be finite and > 0.
    pub fn set_standardization(&mut self, mean: Vec<f32>, std: Vec<f32>) -> Result<()> {
        let d = self.n_inputs();
        if mean.len() != d || std.len() != d {
            return Err(Error::Shape {
                op: "set_standardization",
                expected: format!("{d} means and {d} stds"),
                got: format!("{} and {}", mean.len(), std.len()),
            });
        }
        if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
            return Err(Error::arg("set_standardization", format!("mean of feature {i} is {}", mean[i])));
        }
        if let Some(i) = std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::arg("set_standardization", format!("std of feature {i} is {}, must be > 0", std[i])));
        }
        self.mean = mean;
        self.std = std;
        Ok(())
    }

    /// Fits mean and std (population, ÷n, computed in f64) to the dataset's features and takes
    /// its feature names. A constant feature gets std 1 (it is only centred).
    pub fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        if ds.n_features() != self.n_inputs() {
            return Err(self.feature_error("classifier", ds.names()));
        }
        if ds.is_empty() {
            return Err(Error::Empty { op: "fit_standardization", what: "dataset".into() });
        }
        ds.check_finite("fit_standardization")?;
        let x = ds.x();
        let n = x.nrows() as f64;
        let mut mean = Vec::with_capacity(x.ncols());
        let mut std = Vec::with_capacity(x.ncols());
        for col in x.axis_iter(Axis(1)) {
            let m = col.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = col.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / n;
            let s = var.sqrt() as f32;
            mean.push(m as f32);
            std.push(if s > 0.0 && s.is_finite() { s } else { 1.0 });
        }
        self.mean = mean;
        self.std = std;
        self.feature_names = Some(ds.names().to_vec());
        Ok(())
    }

    /// Errors unless the dataset has the model's feature count and (if the model knows them)
    /// the same feature names in the same order; the message lists both.
    pub fn check_features(&self, ds: &Dataset) -> Result<()> {
        let same = match &self.feature_names {
            Some(names) => names.as_slice() == ds.names(),
            None => ds.n_features() == self.n_inputs(),
        };
        if same {
            Ok(())
        } else {
            Err(self.feature_error("classifier", ds.names()))
        }
    }

    /// The model's and the data's features, and which differ (missing from the data, not in
    /// the model, or the same names in another order).
    fn feature_error(&self, op: &'static str, got: &[String]) -> Error {
        let (expected, diff) = match &self.feature_names {
            Some(n) => {
                let missing: Vec<&str> = n.iter().filter(|f| !got.contains(f)).map(String::as_str).collect();
                let extra: Vec<&str> = got.iter().filter(|f| !n.contains(f)).map(String::as_str).collect();
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    parts.push(format!("not in the model: {}", extra.join(", ")));
                }
                if parts.is_empty() {
                    parts.push("the same features in another order".to_string());
                }
                (format!("{} features [{}]", n.len(), n.join(", ")), format!(" ({})", parts.join("; ")))
            }
            None => (format!("{} features", self.n_inputs()), String::new()),
        };
        Error::Shape { op, expected, got: format!("{} features [{}]{diff}", got.len(), got.join(", ")) }
    }

    /// Errors unless `x` has one column per model input.
    pub(crate) fn check_input(&self, op: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
        if x.ncols() != self.n_inputs() {
            return Err(Error::Shape {
                op,
                expected: format!("{} feature columns", self.n_inputs()),
                got: format!("{}", x.ncols()),
            });
        }
        Ok(())
    }

    // === Forward ===

    /// Logits (last-layer values before sigmoid/softmax), `n × k`, for events in physical
    /// units. Batched in chunks of 256 events across the rayon pool; one GEMM per layer per
    /// chunk with the bias and the activation fused into the same buffer.
    pub fn forward_logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_input("forward", x)?;
        let k = self.n_outputs();
        let mut out = Array2::<f32>::zeros((x.nrows(), k));
        out.axis_chunks_iter_mut(Axis(0), INFER_CHUNK)
            .into_par_iter()
            .zip(x.axis_chunks_iter(Axis(0), INFER_CHUNK))
            .for_each(|(mut o, xc)| {
                with_workspace(self, INFER_CHUNK, |ws| {
                    let r = self.load_rows(ws, xc, None);
                    self.forward_ws(ws, r, Pass::Infer);
                    for (dst, src) in o.iter_mut().zip(ws.logits(self, r)) {
                        *dst = *src;
                    }
                })
            });
        Ok(out)
    }

    /// Logits of `n` events that `fill(first, rows)` writes on the fly (physical units,
    /// row-major: `rows` holds events `first..first + rows.len()/d`), in chunks of 256 across
    /// the rayon pool, so no `n × d` input matrix is ever built: for attacks that generate many
    /// candidate events (RDSA's tries). `fill` must write every value.
    pub fn forward_with(&self, n: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Array2<f32> {
        let (d, k) = (self.n_inputs(), self.n_outputs());
        let (mean, std) = (&self.mean[..d], &self.std[..d]);
        let mut out = Array2::<f32>::zeros((n, k));
        out.axis_chunks_iter_mut(Axis(0), INFER_CHUNK).into_par_iter().enumerate().for_each(|(c, mut o)| {
            with_workspace(self, INFER_CHUNK, |ws| {
                let r = o.nrows();
                ws.ensure_rows(self, r);
                let rows = &mut ws.x[..r * d];
                fill(c * INFER_CHUNK, rows);
                for row in rows.chunks_exact_mut(d) {
                    for j in 0..d {
                        row[j] = (row[j] - mean[j]) / std[j];
                    }
                }
                self.forward_ws(ws, r, Pass::Infer);
                for (dst, src) in o.iter_mut().zip(ws.logits(self, r)) {
                    *dst = *src;
                }
            })
        });
        out
    }

    /// Copies rows (all, or those at `idx`) of `x` into the workspace, standardised.
    /// Returns the number of rows loaded.
    pub(crate) fn load_rows(&self, ws: &mut Workspace, x: ArrayView2<'_, f32>, idx: Option<&[usize]>) -> usize {
        let d = self.n_inputs();
        let r = idx.map_or(x.nrows(), <[usize]>::len);
        ws.ensure_rows(self, r);
        let (mean, std) = (&self.mean[..d], &self.std[..d]);
        for (i, dst) in ws.x[..r * d].chunks_exact_mut(d).enumerate() {
            let row = x.row(idx.map_or(i, |ix| ix[i]));
            match row.as_slice() {
                // Contiguous rows (the usual case): plain slices, which vectorise.
                Some(src) => {
                    for j in 0..d {
                        dst[j] = (src[j] - mean[j]) / std[j];
                    }
                }
                None => {
                    for (((v, s), m), sd) in dst.iter_mut().zip(row).zip(mean).zip(std) {
                        *v = (s - m) / sd;
                    }
                }
            }
        }
        r
    }

    /// Runs the first `r` loaded rows through every layer. With [`Pass::Grad`] or
    /// [`Pass::Train`] each hidden layer also stores f'(z) (times the dropout mask in training)
    /// for the backward pass.
    pub(crate) fn forward_ws(&self, ws: &mut Workspace, r: usize, mut pass: Pass<'_>) {
        let nl = self.n_layers();
        for l in 0..nl {
            let (a, b) = (self.layers[l], self.layers[l + 1]);
            let (before, rest) = ws.h.split_at_mut(l);
            let prev: &[f32] = if l == 0 { &ws.x } else { &before[l - 1] };
            let cur = &mut rest[0][..r * b];
            let bias = self.bias(l);
            super::gemm::gemm(r, a, b, prev, false, self.weight(l), false, 0.0, cur);
            if l + 1 == nl {
                super::activation::add_bias(cur, bias);
                break;
            }
            match &mut pass {
                Pass::Infer => self.activation.apply_biased(cur, bias),
                Pass::Grad => self.activation.apply_biased_with_grad(cur, bias, &mut ws.d[l][..r * b]),
                Pass::Train(rng) => {
                    let d = &mut ws.d[l][..r * b];
                    self.activation.apply_biased_with_grad(cur, bias, d);
                    if self.dropout > 0.0 {
                        apply_dropout(self.dropout, cur, d, rng);
                    }
                }
            }
        }
    }
}

/// Zeroes each unit with probability `p` and scales survivors by 1/(1 − p) (inverted
/// dropout, as PyTorch), in both the activations and the stored derivatives.
fn apply_dropout(p: f32, h: &mut [f32], d: &mut [f32], rng: &mut rng::Rng) {
    let keep = 1.0 / (1.0 - p);
    for (v, dv) in h.iter_mut().zip(d.iter_mut()) {
        let f = if rng.random::<f32>() < p { 0.0 } else { keep };
        *v *= f;
        *dv *= f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_counts_its_weights_while_it_and_each_clone_live() {
        let b = memory::Budget::new(1 << 20);
        let _g = memory::enter(b.clone());
        // 3·4 + 4 + 4·1 + 1 = 21 parameters of 4 bytes.
        let m = Mlp::new(&[3, 4, 1], MlpConfig::default()).unwrap();
        assert_eq!(b.used(), 84);
        let c = m.clone();
        assert_eq!(b.used(), 168);
        assert_eq!(c, m);
        drop(m);
        assert_eq!(b.used(), 84);
        drop(c);
        assert_eq!(b.used(), 0);
        // 1000·1000 + 1000 = 1,001,000 parameters need 8 bytes each while being built: 8 MB.
        let e = Mlp::new(&[1000, 1000], MlpConfig { output: Output::Linear, ..Default::default() }).unwrap_err();
        assert_eq!(e.kind(), "memory");
        assert_eq!(b.used(), 0);
    }
}
