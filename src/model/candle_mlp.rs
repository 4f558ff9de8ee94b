//! The same MLP on candle-core tensors with autograd: the general path (other architectures,
//! double backward for Hessian-vector products later) and an independent cross-check of the
//! fused kernels. It is several times slower for dense MLPs (op-by-op dispatch, see
//! `bench`), so [`Mlp`] is the default path.

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array2, ArrayView2};

use super::activation::{Activation, LEAKY_SLOPE};
use super::backward::{check_weights, GradTarget, InputGrad};
use super::eval::class_of_row;
use super::interface::{Model, ParamGroup};
use super::loss::{Output, Targets};
use super::mlp::{Mlp, MlpConfig};
use crate::error::{Error, Result};

/// Converts a candle error into the crate's.
fn ce(e: candle_core::Error) -> Error {
    Error::Tensor(e.to_string())
}

/// An [`Mlp`] as candle variables (weights in × out, as in [`Mlp`]), with its feature names
/// and standardisation. As a [`Model`] its working layout is the flat (PyTorch) order, it has
/// no dropout and no exact Hessian (spectra take finite differences of its gradients).
#[derive(Clone)]
pub struct CandleMlp {
    layers: Vec<usize>,
    activation: Activation,
    output: Output,
    weights: Vec<Var>,
    biases: Vec<Var>,
    mean: Tensor,
    std: Tensor,
    /// The parameters in PyTorch order, kept equal to the variables.
    flat: Vec<f32>,
    mean_v: Vec<f32>,
    std_v: Vec<f32>,
    feature_names: Option<Vec<String>>,
}

impl std::fmt::Debug for CandleMlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleMlp").field("layers", &self.layers).field("output", &self.output).finish()
    }
}

impl CandleMlp {
    /// Copies the parameters, standardisation and feature names of `m` into candle variables
    /// on the CPU.
    pub fn from_mlp(m: &Mlp) -> Result<Self> {
        let dev = Device::Cpu;
        let d = m.n_inputs();
        let mut c = CandleMlp {
            layers: m.layers().to_vec(),
            activation: m.activation(),
            output: m.output(),
            weights: Vec::new(),
            biases: Vec::new(),
            mean: Tensor::from_slice(m.mean(), (1, d), &dev).map_err(ce)?,
            std: Tensor::from_slice(m.std(), (1, d), &dev).map_err(ce)?,
            flat: Vec::new(),
            mean_v: m.mean().to_vec(),
            std_v: m.std().to_vec(),
            feature_names: m.feature_names().map(<[String]>::to_vec),
        };
        c.load_flat(m.params_flat())?;
        Ok(c)
    }

    /// The same network as a fused [`Mlp`] (for saving; no dropout).
    pub fn to_mlp(&self) -> Result<Mlp> {
        let cfg = MlpConfig {
            activation: self.activation,
            output: self.output,
            dropout: 0.0,
            seed: 0,
            feature_names: self.feature_names.clone(),
        };
        let mut m = Mlp::new(&self.layers, cfg)?;
        m.set_params_flat(&self.flat)?;
        m.set_standardization(self.mean_v.clone(), self.std_v.clone())?;
        Ok(m)
    }

    /// Rebuilds the variables from parameters in PyTorch order.
    fn load_flat(&mut self, flat: Vec<f32>) -> Result<()> {
        let dev = Device::Cpu;
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        let mut o = 0;
        for w in self.layers.windows(2) {
            let (a, b) = (w[0], w[1]);
            let wt =
                Tensor::from_slice(&flat[o..o + a * b], (b, a), &dev).and_then(|t| t.t()?.contiguous()).map_err(ce)?;
            weights.push(Var::from_tensor(&wt).map_err(ce)?);
            biases.push(Var::from_slice(&flat[o + a * b..o + a * b + b], (1, b), &dev).map_err(ce)?);
            o += a * b + b;
        }
        self.weights = weights;
        self.biases = biases;
        self.flat = flat;
        Ok(())
    }

    /// All parameters in PyTorch order (weight out × in, then bias, per layer), read from the
    /// variables.
    pub fn params_flat(&self) -> Result<Vec<f32>> {
        self.flatten(|v| Ok(v.as_tensor().clone()))
    }

    /// The variables (weight, bias) of every layer, for optimizers.
    pub fn vars(&self) -> Vec<&Var> {
        self.weights.iter().zip(&self.biases).flat_map(|(w, b)| [w, b]).collect()
    }

    /// Logits of the standardised-on-the-fly events `x` (a tensor n × d, physical units).
    pub fn forward_t(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        let nl = self.weights.len();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            if l + 1 < nl {
                h = match self.activation {
                    Activation::Relu => h.relu()?,
                    Activation::Tanh => h.tanh()?,
                    Activation::Gelu => h.gelu_erf()?,
                    Activation::Silu => h.silu()?,
                    Activation::LeakyRelu => h.maximum(&h.affine(f64::from(LEAKY_SLOPE), 0.0)?)?,
                };
            }
        }
        Ok(h)
    }

    /// Logits `n × k` for events in physical units.
    pub fn forward_logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let z = self.forward_t(&self.input(x)?).map_err(ce)?;
        to_array(&z)
    }

    /// ∂objective/∂x per event by candle's autograd (the same objectives as
    /// [`Mlp::input_grad`]).
    pub fn input_grad(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<Array2<f32>> {
        Ok(self.grad_and_scores(x, target)?.grad)
    }

    /// The input gradient with the scores, objective values and classes of the same pass. The
    /// built-in objectives are candle expressions differentiated by autograd; a `Custom`
    /// objective gives ∂objective/∂z per event, and the input gradient is the vector–Jacobian
    /// product of the logits with it (the gradient of Σᵢ zᵢ·gᵢ with g held constant).
    fn grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        let (n, k) = (x.nrows(), self.k());
        if let GradTarget::Score { class } | GradTarget::Logit { class } = target {
            (self as &dyn Model).check_class("input_grad", class)?;
        }
        let xv = Var::from_tensor(&self.input(x)?).map_err(ce)?;
        let z = self.forward_t(xv.as_tensor()).map_err(ce)?;
        let za = to_array(&z)?;
        let classes: Vec<i64> = za.rows().into_iter().map(|r| class_of_row(self.output, &r.to_vec())).collect();
        let mut scores = za.clone();
        for mut row in scores.rows_mut() {
            if let Some(r) = row.as_slice_mut() {
                self.output.scores_row(r);
            }
        }
        let mut custom = None;
        let obj = match target {
            GradTarget::Loss(t) => {
                t.validate("input_grad", self.output, n, k)?;
                self.event_loss(&z, &self.target_tensor(t)?).map_err(ce)?
            }
            GradTarget::Score { class } => self.score(&z, class).map_err(ce)?,
            GradTarget::Logit { class } => self.logit(&z, class).map_err(ce)?,
            GradTarget::LossOfPredicted if self.output == Output::Linear => {
                return Err(Error::BadArgument {
                    func: "input_grad".into(),
                    problem: "a regression (linear) model has no predicted class to take the loss of".into(),
                })
            }
            GradTarget::LossOfPredicted => {
                self.event_loss(&z, &self.target_tensor(Targets::Labels(&classes))?).map_err(ce)?
            }
            GradTarget::Custom(f) => {
                let mut g = Array2::<f32>::zeros((n, k));
                let mut values = vec![0.0f32; n];
                for (i, (zr, mut gr)) in za.rows().into_iter().zip(g.rows_mut()).enumerate() {
                    let mut gbuf = vec![0.0f32; k];
                    values[i] = f(i, &zr.to_vec(), &mut gbuf);
                    gr.assign(&ndarray::ArrayView1::from(&gbuf));
                }
                custom = Some(values);
                z.mul(&self.input_like(g)?).and_then(|t| t.sum(1)).map_err(ce)?
            }
        };
        let value = match custom {
            Some(v) => v,
            None => obj.to_dtype(DType::F32).and_then(|t| t.to_vec1::<f32>()).map_err(ce)?,
        };
        let grads = obj.sum_all().and_then(|s| s.backward()).map_err(ce)?;
        let g = grads.get(xv.as_tensor()).ok_or_else(|| Error::Tensor("no gradient for the input".into()))?;
        Ok(InputGrad { grad: to_array(g)?, scores, value, classes })
    }

    /// The event-weighted mean loss and its gradient in PyTorch order (as
    /// [`Mlp::weight_grad`]).
    pub fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        let loss = self.mean_loss(x, targets, weights)?;
        let grads = loss.backward().map_err(ce)?;
        let g = self.flatten(|v| {
            grads.get(v.as_tensor()).cloned().ok_or_else(|| Error::Tensor("missing parameter gradient".into()))
        })?;
        let value = loss.to_scalar::<f32>().map_err(ce)?;
        Ok((f64::from(value), g))
    }

    /// The event-weighted mean loss as a scalar tensor, for autograd.
    pub fn mean_loss(&self, x: ArrayView2<'_, f32>, targets: Targets<'_>, weights: Option<&[f32]>) -> Result<Tensor> {
        let n = x.nrows();
        targets.validate("weight_grad", self.output, n, self.k())?;
        let wsum = check_weights("weight_grad", weights, n)?;
        let z = self.forward_t(&self.input(x)?).map_err(ce)?;
        let l = self.event_loss(&z, &self.target_tensor(targets)?).map_err(ce)?;
        let l = match weights {
            Some(w) => l.mul(&Tensor::from_slice(w, n, &Device::Cpu).map_err(ce)?).map_err(ce)?,
            None => l,
        };
        l.sum_all().and_then(|s| s.affine(1.0 / wsum, 0.0)).map_err(ce)
    }

    fn k(&self) -> usize {
        self.layers[self.layers.len() - 1]
    }

    fn input(&self, x: ArrayView2<'_, f32>) -> Result<Tensor> {
        if x.ncols() != self.layers[0] {
            return Err(Error::Shape {
                op: "forward",
                expected: format!("{} feature columns", self.layers[0]),
                got: format!("{}", x.ncols()),
            });
        }
        let data: Vec<f32> = x.iter().copied().collect();
        Tensor::from_vec(data, x.dim(), &Device::Cpu).map_err(ce)
    }

    /// Targets as an n × k tensor: the label (sigmoid, linear), a one-hot row (softmax), or
    /// the values.
    fn target_tensor(&self, t: Targets<'_>) -> Result<Tensor> {
        let k = self.k();
        let dense: Array2<f32> = match t {
            Targets::Labels(l) if self.output == Output::Softmax => {
                Array2::from_shape_fn((l.len(), k), |(i, j)| f32::from(u8::from(l[i] == j as i64)))
            }
            Targets::Labels(l) => Array2::from_shape_fn((l.len(), 1), |(i, _)| l[i] as f32),
            Targets::Values(v) => v.to_owned(),
        };
        self.input_like(dense)
    }

    fn input_like(&self, a: Array2<f32>) -> Result<Tensor> {
        let dim = a.dim();
        Tensor::from_vec(a.into_iter().collect(), dim, &Device::Cpu).map_err(ce)
    }

    /// Per-event loss (n,) from logits z (n × k) and dense targets t (n × k).
    fn event_loss(&self, z: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        match self.output {
            Output::Sigmoid => {
                // max(z,0) − y·z + ln(1 + e^−|z|)
                let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
                (z.relu()? - z.mul(t)?)?.add(&soft)?.squeeze(1)
            }
            Output::Softmax => {
                let lse = z.log_sum_exp(1)?;
                let tz = z.mul(t)?.sum(1)?;
                lse.mul(&t.sum(1)?)?.sub(&tz)
            }
            Output::Linear => (z - t)?.sqr()?.mean(1),
        }
    }

    fn score(&self, z: &Tensor, class: usize) -> candle_core::Result<Tensor> {
        match self.output {
            Output::Sigmoid => {
                let s = z.neg()?.exp()?.affine(1.0, 1.0)?.recip()?.squeeze(1)?;
                if class == 1 {
                    Ok(s)
                } else {
                    s.affine(-1.0, 1.0)
                }
            }
            Output::Softmax => {
                let lse = z.log_sum_exp(1)?;
                z.narrow(1, class, 1)?.squeeze(1)?.sub(&lse)?.exp()
            }
            Output::Linear => z.narrow(1, class, 1)?.squeeze(1),
        }
    }

    fn logit(&self, z: &Tensor, class: usize) -> candle_core::Result<Tensor> {
        match self.output {
            Output::Sigmoid if class == 0 => z.neg()?.squeeze(1),
            Output::Sigmoid => z.squeeze(1),
            _ => z.narrow(1, class, 1)?.squeeze(1),
        }
    }

    /// Applies `f` to every variable and flattens the results in PyTorch order.
    fn flatten(&self, f: impl Fn(&Var) -> Result<Tensor>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (w, b) in self.weights.iter().zip(&self.biases) {
            let wt = f(w)?.t().and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
            out.extend(wt);
            out.extend(f(b)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?);
        }
        Ok(out)
    }
}

/// A candle n × k f32 tensor as an ndarray.
fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    let (n, k) = t.dims2().map_err(ce)?;
    let v = t.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
    Array2::from_shape_vec((n, k), v).map_err(|e| Error::Tensor(e.to_string()))
}

impl Model for CandleMlp {
    fn kind(&self) -> &'static str {
        "candle_mlp"
    }

    /// `CandleMlp(20→64→1, relu, sigmoid, 1409 params)`.
    fn describe(&self) -> String {
        let widths: Vec<String> = self.layers.iter().map(ToString::to_string).collect();
        format!("CandleMlp({}, {}, {}, {} params)", widths.join("→"), self.activation, self.output, self.flat.len())
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn n_inputs(&self) -> usize {
        self.layers[0]
    }

    fn n_outputs(&self) -> usize {
        self.k()
    }

    fn output(&self) -> Output {
        self.output
    }

    fn feature_names(&self) -> Option<Vec<String>> {
        self.feature_names.clone()
    }

    fn check_features(&self, ds: &crate::data::Dataset) -> Result<()> {
        let same = match &self.feature_names {
            Some(names) => names.as_slice() == ds.names(),
            None => ds.n_features() == self.layers[0],
        };
        if same {
            return Ok(());
        }
        let expected = match &self.feature_names {
            Some(n) => format!("{} features [{}]", n.len(), n.join(", ")),
            None => format!("{} features", self.layers[0]),
        };
        Err(Error::Shape {
            op: "classifier",
            expected,
            got: format!("{} features [{}]", ds.n_features(), ds.names().join(", ")),
        })
    }

    fn fit_standardization(&mut self, ds: &crate::data::Dataset) -> Result<()> {
        let mut m = self.to_mlp()?;
        m.fit_standardization(ds)?;
        let d = self.layers[0];
        self.mean = Tensor::from_slice(m.mean(), (1, d), &Device::Cpu).map_err(ce)?;
        self.std = Tensor::from_slice(m.std(), (1, d), &Device::Cpu).map_err(ce)?;
        self.mean_v = m.mean().to_vec();
        self.std_v = m.std().to_vec();
        self.feature_names = m.feature_names().map(<[String]>::to_vec);
        Ok(())
    }

    /// Fitted unless every mean is 0 and every scale 1, as the fused MLP.
    fn standardization_fitted(&self) -> bool {
        self.mean_v.iter().any(|&m| m != 0.0) || self.std_v.iter().any(|&s| s != 1.0)
    }

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.forward_logits(x)
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        self.grad_and_scores(x, target)
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        if x.nrows() == 0 {
            return Err(Error::Empty { op: "weight_grad", what: "the event set".into() });
        }
        CandleMlp::weight_grad(self, x, targets, weights)
    }

    fn n_params(&self) -> usize {
        self.flat.len()
    }

    fn params(&self) -> Vec<f32> {
        self.flat.clone()
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        if p.len() != self.flat.len() {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", self.flat.len()),
                got: format!("{}", p.len()),
            });
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::arg("set_params", format!("parameter {i} is {}", p[i])));
        }
        self.load_flat(p.to_vec())
    }

    /// One group per layer (`layer0`, …), weight and bias, as the fused MLP.
    fn param_groups(&self) -> Vec<ParamGroup> {
        let mut o = 0;
        let mut out = Vec::new();
        for (l, w) in self.layers.windows(2).enumerate() {
            let len = w[0] * w[1] + w[1];
            out.push(ParamGroup { name: format!("layer{l}"), range: o..o + len });
            o += len;
        }
        out
    }

    /// Layer `group` as at construction (`torch.nn.Linear`'s uniform draw), as the fused MLP.
    /// Through the fused MLP: the same network with the new head, converted back.
    fn replace_head(&self, outputs: usize, output: Output, seed: u64) -> Result<Box<dyn Model>> {
        let m = self.to_mlp()?.replace_head(outputs, output, seed)?;
        let mlp =
            m.as_mlp().ok_or_else(|| Error::arg("replace_head", "the new head's network is not an mlp".to_string()))?;
        Ok(Box::new(CandleMlp::from_mlp(mlp)?))
    }

    fn reinit_group(&mut self, group: usize, seed: u64) -> Result<()> {
        let fan_in = self.layers.get(group).copied().unwrap_or(1);
        super::finetune::reinit_linear_group(self, group, fan_in, seed)
    }

    /// Per layer its weight before its bias, as the fused MLP.
    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        let mut o = 0;
        let mut out = Vec::new();
        for w in self.layers.windows(2) {
            out.push(o..o + w[0] * w[1]);
            o += w[0] * w[1] + w[1];
        }
        Some(out)
    }

    fn save(&self, path: &std::path::Path) -> Result<()> {
        self.to_mlp()?.save_as(path, "candle_mlp")
    }
}

/// Adam on candle variables, op by op (what a candle training loop does), for comparison.
pub struct CandleAdam {
    lr: f64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: i32,
}

impl CandleAdam {
    /// Zero moments for every variable of `model`; β₁ 0.9, β₂ 0.999, ε 1e-8.
    pub fn new(model: &CandleMlp, lr: f64) -> Result<Self> {
        let zeros = |v: &&Var| v.as_tensor().zeros_like().map_err(ce);
        let m = model.vars().iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let v = model.vars().iter().map(zeros).collect::<Result<Vec<_>>>()?;
        Ok(CandleAdam { lr, m, v, t: 0 })
    }

    /// One step from the gradient of `loss`.
    pub fn step(&mut self, model: &mut CandleMlp, loss: &Tensor) -> Result<()> {
        let grads = loss.backward().map_err(ce)?;
        self.t += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let step = self.lr / (1.0 - b1.powi(self.t));
        let inv_bc2 = 1.0 / (1.0 - b2.powi(self.t)).sqrt();
        for (i, var) in model.vars().into_iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let r: candle_core::Result<()> = (|| {
                self.m[i] = (self.m[i].affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
                self.v[i] = (self.v[i].affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
                let denom = self.v[i].sqrt()?.affine(inv_bc2, eps)?;
                let upd = self.m[i].div(&denom)?.affine(step, 0.0)?;
                var.set(&var.as_tensor().sub(&upd)?)
            })();
            r.map_err(ce)?;
        }
        model.flat = model.params_flat()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MlpConfig;
    use rand::Rng as _;

    /// Fused and candle paths compute the same functions in f32 with different operation
    /// orders (and candle's own erf/exp); 1e-5 relative to the largest magnitude covers the
    /// accumulated rounding (~1e-6) with margin.
    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * scale, "{what}[{i}]: fused {x}, candle {y}");
        }
    }

    #[test]
    fn candle_path_agrees_with_fused_path() {
        for act in Activation::NAMES.map(|a| Activation::parse(a).unwrap()) {
            for (out, k) in [(Output::Sigmoid, 1), (Output::Softmax, 3), (Output::Linear, 2)] {
                let cfg = MlpConfig { activation: act, output: out, seed: 7, ..MlpConfig::default() };
                let mut m = Mlp::new(&[6, 16, 16, k], cfg).unwrap();
                m.set_standardization(vec![1.0; 6], vec![2.0; 6]).unwrap();
                let mut r = crate::rng::rng(3);
                let x = Array2::from_shape_fn((300, 6), |_| r.random_range(-3.0f32..5.0));
                let labels: Vec<i64> = (0..300).map(|i| (i % 2) as i64).collect();
                let vals = Array2::from_shape_fn((300, k), |_| r.random_range(-1.0f32..1.0));
                let t = if out == Output::Linear { Targets::Values(vals.view()) } else { Targets::Labels(&labels) };
                let c = CandleMlp::from_mlp(&m).unwrap();
                assert_eq!(c.params_flat().unwrap(), m.params_flat());
                let what = format!("{act}/{out}");
                let zf = m.forward_logits(x.view()).unwrap();
                let zc = c.forward_logits(x.view()).unwrap();
                assert_close(zf.as_slice().unwrap(), zc.as_slice().unwrap(), &format!("{what} logits"));
                for gt in [GradTarget::Loss(t), GradTarget::Score { class: 1 }, GradTarget::Logit { class: 0 }] {
                    let gf = m.input_grad(x.view(), gt).unwrap();
                    let gc = c.input_grad(x.view(), gt).unwrap();
                    assert_close(gf.as_slice().unwrap(), gc.as_slice().unwrap(), &format!("{what} input grad {gt:?}"));
                }
                if out != Output::Linear {
                    let gt = GradTarget::LossOfPredicted;
                    let gf = m.input_grad(x.view(), gt).unwrap();
                    let gc = c.input_grad(x.view(), gt).unwrap();
                    assert_close(gf.as_slice().unwrap(), gc.as_slice().unwrap(), &format!("{what} input grad {gt:?}"));
                } else {
                    assert!(m.input_grad(x.view(), GradTarget::LossOfPredicted).is_err());
                    assert!(c.input_grad(x.view(), GradTarget::LossOfPredicted).is_err());
                }
                let w: Vec<f32> = (0..300).map(|i| 0.5 + (i % 3) as f32).collect();
                let (lf, wf) = m.weight_grad(x.view(), t, Some(&w)).unwrap();
                let (lc, wc) = c.weight_grad(x.view(), t, Some(&w)).unwrap();
                assert!((lf - lc).abs() < 1e-5 * lf.abs().max(1.0), "{what} loss {lf} vs {lc}");
                assert_close(&wf, &wc, &format!("{what} weight grad"));
            }
        }
    }
}
