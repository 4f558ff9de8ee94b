//! [`SetModel`]: any [`SetNet`] as a [`Model`] over the inputs of a [`SetLayout`] (see
//! `set_net.rs` for the batching, mask and gradient conventions).
//!
//! Standardisation is part of the model, as for the PFN: a mean and a scale per event feature
//! and per object feature (identity until [`Model::fit_standardization`]); input gradients
//! are in physical units. No exact Hessian product: spectra take central differences of the
//! exact gradients (`landscape::ModelHessian`).
//!
//! Files: safetensors whose tensors are the network's state dict (parameters and buffers by
//! their PyTorch names) and whose `__metadata__` holds `format` ("nuisance-setnet"), `kind`,
//! `format_version`, the layout (`event_features`, `collection`, `object_features`,
//! `max_objects`), `output`, the standardisation (`event_mean`, `event_std`, `object_mean`,
//! `object_std`) and the network's own config keys.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use ndarray::{Array2, ArrayView2};
use safetensors::SafeTensors;

use super::backward::{check_weights, objective_row, standard_targets, GradTarget, InputGrad};
use super::eval::class_of_row;
use super::interface::{Model, ParamGroup};
use super::io::{le_bytes, not_safetensors, parse, parse_f32_list, read_tensor, serialize, FORMAT_VERSION};
use super::layout::SetLayout;
use super::loss::{loss_grad_row, Output, Targets};
use super::set_net::{ce, SetBatch, SetNet};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::{fsutil, io_guard};

const FORMAT_NAME: &str = "nuisance-setnet";

/// Events per forward/backward block.
const BLOCK: usize = 256;

/// A [`SetNet`] with its input layout, output and standardisation: a [`Model`].
#[derive(Clone, Debug)]
pub struct SetModel<N: SetNet> {
    layout: SetLayout,
    output: Output,
    net: N,
    event_mean: Vec<f32>,
    event_std: Vec<f32>,
    object_mean: Vec<f32>,
    object_std: Vec<f32>,
}

/// Logits (host, `B × k` row-major) and the input variables of one block.
struct Pass {
    z: Vec<f32>,
    zt: Tensor,
    x: Var,
    ev: Option<Var>,
    batch: SetBatch,
}

impl<N: SetNet> SetModel<N> {
    /// A model of network `net` over `layout`, with identity standardisation; errors unless
    /// the output fits the network's width.
    pub fn new(layout: SetLayout, output: Output, net: N) -> Result<Self> {
        output.check_width(net.n_outputs())?;
        let (e, f) = (layout.n_event(), layout.n_object());
        Ok(SetModel {
            layout,
            output,
            net,
            event_mean: vec![0.0; e],
            event_std: vec![1.0; e],
            object_mean: vec![0.0; f],
            object_std: vec![1.0; f],
        })
    }

    /// The network.
    pub fn net(&self) -> &N {
        &self.net
    }

    /// The network, mutably.
    pub fn net_mut(&mut self) -> &mut N {
        &mut self.net
    }

    /// The input layout.
    pub fn layout(&self) -> &SetLayout {
        &self.layout
    }

    /// `(event mean, event std, object mean, object std)`.
    pub fn standardization(&self) -> (&[f32], &[f32], &[f32], &[f32]) {
        (&self.event_mean, &self.event_std, &self.object_mean, &self.object_std)
    }

    /// Replaces the standardisation; errors on wrong lengths, non-finite values or a scale
    /// that is not positive.
    pub fn set_standardization(&mut self, em: Vec<f32>, es: Vec<f32>, om: Vec<f32>, os: Vec<f32>) -> Result<()> {
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        if em.len() != e || es.len() != e || om.len() != f || os.len() != f {
            return Err(Error::arg(
                "standardization",
                format!(
                    "needs {e} event and {f} object means and scales (got {}, {}, {}, {})",
                    em.len(),
                    es.len(),
                    om.len(),
                    os.len()
                ),
            ));
        }
        if em.iter().chain(&om).any(|v| !v.is_finite()) || es.iter().chain(&os).any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::arg("standardization", "means must be finite and scales finite and positive"));
        }
        (self.event_mean, self.event_std, self.object_mean, self.object_std) = (em, es, om, os);
        Ok(())
    }

    fn check_input(&self, op: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
        if x.ncols() != self.layout.width() {
            return Err(Error::Shape {
                op,
                expected: format!(
                    "{} input columns ({} event features, 1 count, {} slots × {} object features)",
                    self.layout.width(),
                    self.layout.n_event(),
                    self.layout.max_objects,
                    self.layout.n_object()
                ),
                got: x.ncols().to_string(),
            });
        }
        Ok(())
    }

    /// The events `rows` of `x` as a batch: the batch (raw rows), the standardised object
    /// rows (`R × f`) and the standardised event features (`B × E`).
    fn host_batch(
        &self,
        x: ArrayView2<'_, f32>,
        rows: std::ops::Range<usize>,
    ) -> (Vec<usize>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let mut counts = Vec::with_capacity(rows.len());
        let mut raw = Vec::new();
        let mut ev = Vec::with_capacity(rows.len() * e);
        for i in rows.clone() {
            let row = x.row(i);
            for j in 0..e {
                ev.push((row[j] - self.event_mean[j]) / self.event_std[j]);
            }
            let k = self.layout.count_of(row[self.layout.count_column()]);
            counts.push(k);
            for s in 0..k {
                for j in 0..f {
                    raw.push(row[self.layout.slot_column(s, j)]);
                }
            }
        }
        let std: Vec<f32> =
            raw.iter().enumerate().map(|(i, v)| (v - self.object_mean[i % f]) / self.object_std[i % f]).collect();
        (counts, raw, std, ev)
    }

    /// Forward pass of events `rows` of `x` with the inputs as variables.
    fn pass(&self, x: ArrayView2<'_, f32>, rows: std::ops::Range<usize>) -> Result<Pass> {
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let (counts, raw, std, ev) = self.host_batch(x, rows.clone());
        let r = std.len() / f;
        let xv = Var::from_tensor(&Tensor::from_vec(std, (r, f), &Device::Cpu).map_err(ce)?).map_err(ce)?;
        let evv = if e > 0 {
            Some(Var::from_tensor(&Tensor::from_vec(ev, (rows.len(), e), &Device::Cpu).map_err(ce)?).map_err(ce)?)
        } else {
            None
        };
        let evt = match &evv {
            Some(v) => v.as_tensor().clone(),
            None => SetBatch::zeros(&[rows.len(), 0]).map_err(ce)?,
        };
        let batch = SetBatch::new(counts, raw, f, evt)?;
        let zt = self.net.forward(&batch, xv.as_tensor()).map_err(ce)?;
        let z = zt.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
        if z.len() != rows.len() * self.net.n_outputs() {
            return Err(Error::Tensor(format!("the network returned {} logits for {} events", z.len(), rows.len())));
        }
        Ok(Pass { z, zt, x: xv, ev: evv, batch })
    }

    /// Backward of `Σ z ⊙ g` (g host, `B × k`).
    fn backward(&self, p: &Pass, g: Vec<f32>) -> Result<candle_core::backprop::GradStore> {
        let gt = Tensor::from_vec(g, p.zt.shape(), &Device::Cpu).map_err(ce)?;
        p.zt.mul(&gt).and_then(|t| t.sum_all()).and_then(|t| t.backward()).map_err(ce)
    }
}

impl<N: SetNet> Model for SetModel<N> {
    fn kind(&self) -> &'static str {
        self.net.kind()
    }

    fn describe(&self) -> String {
        let l = &self.layout;
        let events =
            if l.event_features.is_empty() { String::new() } else { format!(" + {} event features", l.n_event()) };
        format!(
            "{}({}: {} features × ≤ {} objects{events}, {}, {}, {} params)",
            self.net.kind(),
            l.collection,
            l.n_object(),
            l.max_objects,
            self.net.describe(),
            self.output,
            self.n_params()
        )
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn n_inputs(&self) -> usize {
        self.layout.width()
    }

    fn n_outputs(&self) -> usize {
        self.net.n_outputs()
    }

    fn output(&self) -> Output {
        self.output
    }

    fn feature_names(&self) -> Option<Vec<String>> {
        let l = &self.layout;
        let mut names = l.event_features.clone();
        names.extend(l.object_features.iter().map(|f| format!("{}.{f}", l.collection)));
        Some(names)
    }

    fn input_names(&self) -> Vec<String> {
        self.layout.names()
    }

    fn check_features(&self, ds: &Dataset) -> Result<()> {
        self.layout.check(ds)
    }

    fn inputs_are_features(&self) -> bool {
        false
    }

    fn set_layout(&self) -> Option<&SetLayout> {
        Some(&self.layout)
    }

    fn inputs(&self, ds: &Dataset) -> Result<Array2<f32>> {
        self.layout.gather(ds)
    }

    fn with_inputs(&self, ds: &Dataset, x: Array2<f32>) -> Result<Dataset> {
        self.layout.scatter(ds, x.view())
    }

    /// Event features over the events, object features over all real objects (population
    /// mean and std in f64; a constant feature gets std 1).
    /// Fitted unless every mean is 0 and every scale 1 (a new network).
    fn standardization_fitted(&self) -> bool {
        let (m, s) = (self.event_mean.iter().chain(&self.object_mean), self.event_std.iter().chain(&self.object_std));
        m.copied().any(|v| v != 0.0) || s.copied().any(|v| v != 1.0)
    }

    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        let x = self.layout.gather(ds)?;
        if x.nrows() == 0 {
            return Err(Error::Empty { op: "fit_standardization", what: "the event set".into() });
        }
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let mut ev = vec![(0.0f64, 0.0f64); e];
        let mut ob = vec![(0.0f64, 0.0f64); f];
        let mut n_obj = 0usize;
        for row in x.rows() {
            for (j, acc) in ev.iter_mut().enumerate() {
                let v = f64::from(row[j]);
                *acc = (acc.0 + v, acc.1 + v * v);
            }
            let k = self.layout.count_of(row[self.layout.count_column()]);
            n_obj += k;
            for s in 0..k {
                for (j, acc) in ob.iter_mut().enumerate() {
                    let v = f64::from(row[self.layout.slot_column(s, j)]);
                    *acc = (acc.0 + v, acc.1 + v * v);
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

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_input("forward", x)?;
        let (n, k) = (x.nrows(), self.n_outputs());
        let mut out = Vec::with_capacity(n * k);
        for start in (0..n).step_by(BLOCK) {
            out.extend(self.pass(x, start..(start + BLOCK).min(n))?.z);
        }
        Array2::from_shape_vec((n, k), out).map_err(|e| Error::Tensor(e.to_string()))
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        self.check_input("input_grad", x)?;
        let (n, k, d) = (x.nrows(), self.n_outputs(), self.layout.width());
        let owned;
        let target = match target {
            GradTarget::Loss(t) => {
                t.validate("input_grad", self.output, n, k)?;
                owned = standard_targets(t);
                GradTarget::Loss(match &owned {
                    Some(a) => Targets::Values(a.view()),
                    None => t.reborrow(),
                })
            }
            GradTarget::Score { class } => {
                (self as &dyn Model).check_class("input_grad", class)?;
                GradTarget::Score { class }
            }
            GradTarget::Logit { class } => {
                (self as &dyn Model).check_class("input_grad", class)?;
                GradTarget::Logit { class }
            }
            GradTarget::LossOfPredicted if self.output == Output::Linear => {
                return Err(Error::arg(
                    "input_grad",
                    "a regression (linear) model has no predicted class to take the loss of",
                ))
            }
            GradTarget::LossOfPredicted => GradTarget::LossOfPredicted,
            GradTarget::Custom(f) => GradTarget::Custom(f),
        };
        let (e, f) = (self.layout.n_event(), self.layout.n_object());
        let mut grad = Array2::<f32>::zeros((n, d));
        let mut scores = Array2::<f32>::zeros((n, k));
        let mut value = vec![0.0f32; n];
        let mut classes = vec![0i64; n];
        for start in (0..n).step_by(BLOCK) {
            let rows = start..(start + BLOCK).min(n);
            let p = self.pass(x, rows.clone())?;
            let mut g = vec![0.0f32; p.z.len()];
            for (b, i) in rows.clone().enumerate() {
                let z = &p.z[b * k..(b + 1) * k];
                classes[i] = class_of_row(self.output, z);
                value[i] = objective_row(self.output, z, &target, i, &mut g[b * k..(b + 1) * k]);
                let mut s = z.to_vec();
                self.output.scores_row(&mut s);
                for (j, v) in s.into_iter().enumerate() {
                    scores[[i, j]] = v;
                }
            }
            let grads = self.backward(&p, g)?;
            if let Some(gx) = grads.get(p.x.as_tensor()) {
                let gx = gx.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
                for (b, i) in rows.clone().enumerate() {
                    let o = p.batch.offsets[b];
                    for s in 0..p.batch.counts[b] {
                        for j in 0..f {
                            grad[[i, self.layout.slot_column(s, j)]] = gx[(o + s) * f + j] / self.object_std[j];
                        }
                    }
                }
            }
            if let Some(gev) = p.ev.as_ref().and_then(|v| grads.get(v.as_tensor())) {
                let gev = gev.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
                for (b, i) in rows.enumerate() {
                    for j in 0..e {
                        grad[[i, j]] = gev[b * e + j] / self.event_std[j];
                    }
                }
            }
        }
        Ok(InputGrad { grad, scores, value, classes })
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        self.check_input("weight_grad", x)?;
        let (n, k) = (x.nrows(), self.n_outputs());
        if n == 0 {
            return Err(Error::Empty { op: "weight_grad", what: "the event set".into() });
        }
        targets.validate("weight_grad", self.output, n, k)?;
        let wsum = check_weights("weight_grad", weights, n)?;
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let mut total = 0.0f64;
        let mut grad = vec![0.0f32; self.n_params()];
        for start in (0..n).step_by(BLOCK) {
            let rows = start..(start + BLOCK).min(n);
            let p = self.pass(x, rows.clone())?;
            let mut g = vec![0.0f32; p.z.len()];
            for (b, i) in rows.enumerate() {
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                let scale = (w / wsum) as f32;
                let l = loss_grad_row(
                    self.output,
                    &p.z[b * k..(b + 1) * k],
                    targets.row(i),
                    scale,
                    &mut g[b * k..(b + 1) * k],
                );
                total += w * l;
            }
            let grads = self.backward(&p, g)?;
            for (a, b) in grad.iter_mut().zip(self.net.store().grad_flat(&grads)?) {
                *a += b;
            }
        }
        Ok((total / wsum, grad))
    }

    fn train_grad(
        &mut self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
        seed: u64,
    ) -> Option<Result<(f64, Vec<f32>)>> {
        let prepared = (|| {
            self.check_input("train", x)?;
            let (n, k) = (x.nrows(), self.n_outputs());
            if n == 0 {
                return Err(Error::Empty { op: "train", what: "the batch".into() });
            }
            targets.validate("train", self.output, n, k)?;
            let wsum = check_weights("train", weights, n)?;
            let (counts, raw, std, ev) = self.host_batch(x, 0..n);
            let e = self.layout.n_event();
            let evt = Tensor::from_vec(ev, (n, e), &Device::Cpu).map_err(ce)?;
            Ok((wsum, SetBatch::new(counts, raw, self.layout.n_object(), evt)?, std))
        })();
        let (wsum, batch, std) = match prepared {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let (k, output) = (self.n_outputs(), self.output);
        let mut total = 0.0f64;
        let mut dz = |z: &[f32]| -> Result<Vec<f32>> {
            let mut g = vec![0.0f32; z.len()];
            for i in 0..z.len() / k {
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                let l = loss_grad_row(
                    output,
                    &z[i * k..(i + 1) * k],
                    targets.row(i),
                    (w / wsum) as f32,
                    &mut g[i * k..(i + 1) * k],
                );
                total += w * l;
            }
            Ok(g)
        };
        let grad = self.net.train_grad(&batch, &std, seed, &mut dz)?;
        Some(grad.map(|g| (total / wsum, g)))
    }

    fn n_params(&self) -> usize {
        self.net.store().n_params()
    }

    fn params(&self) -> Vec<f32> {
        self.net.store().flat().unwrap_or_default()
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        self.net.store_mut().set_flat(p)
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        self.net.store().groups()
    }

    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        self.net.kernel_ranges()
    }

    fn save(&self, path: &Path) -> Result<()> {
        let tensors =
            self.net.store().named_values()?.into_iter().map(|(name, shape, v)| (name, shape, le_bytes(&v))).collect();
        fsutil::atomic_write_bytes(path, &serialize(tensors, &self.metadata()))
    }
}

impl<N: SetNet> SetModel<N> {
    fn metadata(&self) -> BTreeMap<String, String> {
        let floats = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(", "));
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
        let l = &self.layout;
        let mut m = self.net.config();
        m.insert("format".into(), FORMAT_NAME.into());
        m.insert("kind".into(), self.net.kind().into());
        m.insert("format_version".into(), FORMAT_VERSION.to_string());
        m.insert("output".into(), self.output.name().into());
        m.insert("event_features".into(), json(&l.event_features));
        m.insert("collection".into(), l.collection.clone());
        m.insert("object_features".into(), json(&l.object_features));
        m.insert("max_objects".into(), l.max_objects.to_string());
        m.insert("event_mean".into(), floats(&self.event_mean));
        m.insert("event_std".into(), floats(&self.event_std));
        m.insert("object_mean".into(), floats(&self.object_mean));
        m.insert("object_std".into(), floats(&self.object_std));
        m
    }

    /// Reads a model written by [`Model::save`] whose kind is this network's.
    pub fn load(path: &Path) -> Result<Self> {
        let data = io_guard::read_regular(path)?;
        let st = parse(path, &data)?;
        let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
        let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .map(String::as_str)
                .ok_or_else(|| Error::format(path, format!("metadata has no '{k}' (not a nuisance set network?)")))
        };
        if get("format")? != FORMAT_NAME {
            return Err(Error::format(
                path,
                format!("metadata format is '{}', expected '{FORMAT_NAME}'", get("format")?),
            ));
        }
        if get("format_version")? != FORMAT_VERSION.to_string() {
            return Err(Error::format(
                path,
                format!(
                    "format version {} is not supported (this build reads {FORMAT_VERSION})",
                    get("format_version")?
                ),
            ));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            serde_json::from_str(get(k)?).map_err(|e| Error::format(path, format!("{k}: {e}")))
        };
        let max_objects: usize =
            get("max_objects")?.parse().map_err(|_| Error::format(path, "max_objects is not a number"))?;
        let layout =
            SetLayout::new(strings("event_features")?, get("collection")?, strings("object_features")?, max_objects)
                .map_err(|e| Error::format(path, e.to_string()))?;
        let net = N::from_config(&meta, layout.n_object(), layout.n_event(), path)?;
        if net.kind() != get("kind")? {
            return Err(Error::format(path, format!("model kind '{}' is not '{}'", get("kind")?, net.kind())));
        }
        if net.store().n_params() > data.len() / 4 {
            return Err(Error::format(path, "the metadata's sizes need more weights than the file holds"));
        }
        let mut m = SetModel::new(layout, Output::parse(get("output")?)?, net)?;
        m.net.store_mut().load_named(|name, shape| read_tensor(path, &st, name, shape))?;
        let fl = |k: &str| parse_f32_list(path, k, get(k)?);
        m.set_standardization(fl("event_mean")?, fl("event_std")?, fl("object_mean")?, fl("object_std")?)
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(m)
    }
}
