//! The correction model `T(x) = x + σ ⊙ m ⊙ r(x)` on the [`Model`] interface.
//!
//! `r` is an [`Mlp`] (all features in, one output per feature, linear) whose outputs are in
//! units of each feature's σ; `m` is 1 for the features the correction moves and 0 for frozen
//! and derived features. The last layer starts at zero, so a new correction is the identity.
//! Its "logits" are the corrected events `T(x)` (`n × D`, physical units), so every consumer of
//! models (saving, loading, input gradients) takes it. [`Correction::apply`] corrects a
//! dataset: the moved features replaced, the declared derived features recomputed from them.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, ArrayView2};

use crate::data::expr::Expr;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::backward::{check_weights, objective_row, standard_targets, GradTarget, InputGrad};
use crate::model::eval::class_of_row;
use crate::model::loss::{loss_grad_row, Output, Targets};
use crate::model::{Activation, Mlp, MlpConfig, Model, ParamGroup};

/// A learned correction of simulated events (see the module documentation).
#[derive(Clone, Debug)]
pub struct Correction {
    net: Mlp,
    features: Vec<String>,
    sigma: Vec<f32>,
    moves: Vec<bool>,
    /// Derived features (name, expression), in evaluation order.
    derived: Vec<(String, String)>,
}

impl Correction {
    /// The identity correction of `features` with residual network widths `hidden`, σ per
    /// feature, which features move, derived features (name, expression) and seed. Derived
    /// features never move (they are recomputed).
    pub fn new(
        features: Vec<String>,
        hidden: &[usize],
        activation: Activation,
        sigma: Vec<f32>,
        moves: Vec<bool>,
        derived: Vec<(String, String)>,
        seed: u64,
    ) -> Result<Correction> {
        let d = features.len();
        if d == 0 {
            return Err(Error::arg("correct", "there are no features to correct"));
        }
        if sigma.len() != d || moves.len() != d {
            return Err(Error::Shape {
                op: "correct",
                expected: format!("{d} σ and flags"),
                got: sigma.len().to_string(),
            });
        }
        if let Some(j) = sigma.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::arg(
                "correct",
                format!("σ of '{}' is {}; it must be finite and > 0", features[j], sigma[j]),
            ));
        }
        for (name, expr) in &derived {
            Expr::parse(expr)?;
            if !features.contains(name) {
                return Err(Error::arg("correct", format!("derived feature '{name}' is not one of the features")));
            }
        }
        let mut widths = vec![d];
        widths.extend_from_slice(hidden);
        widths.push(d);
        let cfg =
            MlpConfig { activation, output: Output::Linear, dropout: 0.0, seed, feature_names: Some(features.clone()) };
        let mut net = Mlp::new(&widths, cfg)?;
        let last = net.n_layers() - 1;
        let o = net.offset(last);
        net.params_mut()[o..].fill(0.0);
        let moves = moves.iter().zip(&features).map(|(&m, f)| m && !derived.iter().any(|(n, _)| n == f)).collect();
        Ok(Correction { net, features, sigma, moves, derived })
    }

    /// The residual network (outputs in σ units).
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// Replaces the residual network (same widths at both ends).
    pub fn set_net(&mut self, net: Mlp) -> Result<()> {
        if net.n_inputs() != self.features.len() || net.n_outputs() != self.features.len() {
            return Err(Error::arg("correct", "the residual network's widths do not match the features"));
        }
        self.net = net;
        Ok(())
    }

    /// The corrected features.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// σ per feature (the unit of the residual and of the closeness term).
    pub fn sigma(&self) -> &[f32] {
        &self.sigma
    }

    /// Whether each feature moves.
    pub fn moves(&self) -> &[bool] {
        &self.moves
    }

    /// The derived features (name, expression) in evaluation order.
    pub fn derived(&self) -> &[(String, String)] {
        &self.derived
    }

    /// σⱼ·mⱼ: the factor from a residual output to a shift.
    pub fn step(&self) -> Vec<f32> {
        self.sigma.iter().zip(&self.moves).map(|(&s, &m)| if m { s } else { 0.0 }).collect()
    }

    /// The corrected rows `T(x)` of `x` (`n × D`, the features in order).
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut z = self.net.forward_logits(x)?;
        let step = self.step();
        for (mut row, xr) in z.rows_mut().into_iter().zip(x.rows()) {
            for ((v, s), xv) in row.iter_mut().zip(&step).zip(xr) {
                *v = xv + s * *v;
            }
        }
        Ok(z)
    }

    /// The dataset corrected: its copies of the features replaced by `T(x)` (other columns,
    /// labels and weights kept), then the derived features recomputed in order.
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        let missing: Vec<&String> = self.features.iter().filter(|f| !ds.names().contains(f)).collect();
        if !missing.is_empty() {
            return Err(Error::arg(
                "apply_correction",
                format!(
                    "the dataset lacks feature(s) {} that the correction was trained on ({})",
                    missing.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "),
                    self.features.join(", ")
                ),
            ));
        }
        let x = ds.select(&self.features)?;
        x.check_finite("apply_correction")?;
        let t = self.transform(x.x())?;
        let mut out = ds.clone();
        for (j, f) in self.features.iter().enumerate() {
            if self.moves[j] {
                out = out.with_column(f, t.column(j).to_vec())?;
            }
        }
        for (name, expr) in &self.derived {
            out = out.derive(name, expr)?;
        }
        Ok(out)
    }

    /// Reads a correction written by [`Model::save`].
    pub fn load(path: &Path) -> Result<Correction> {
        let net = Mlp::load(path)?;
        let meta = crate::model::io::saved_metadata(path)?;
        let get = |k: &str| meta.get(k).ok_or_else(|| Error::format(path, format!("metadata has no '{k}'")));
        let sigma: Vec<f32> =
            serde_json::from_str(get("correction_sigma")?).map_err(|e| Error::format(path, format!("sigma: {e}")))?;
        let moves: Vec<bool> =
            serde_json::from_str(get("correction_moves")?).map_err(|e| Error::format(path, format!("moves: {e}")))?;
        let derived: Vec<(String, String)> = serde_json::from_str(get("correction_derived")?)
            .map_err(|e| Error::format(path, format!("derived: {e}")))?;
        let features = net
            .feature_names()
            .map(<[String]>::to_vec)
            .ok_or_else(|| Error::format(path, "a correction must name its features"))?;
        let d = features.len();
        if net.n_outputs() != d || sigma.len() != d || moves.len() != d {
            return Err(Error::format(path, format!("a correction of {d} features needs {d} outputs, σ and flags")));
        }
        if sigma.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::format(path, "σ must be finite and > 0"));
        }
        for (name, expr) in &derived {
            Expr::parse(expr).map_err(|e| Error::format(path, format!("derived '{name}': {e}")))?;
        }
        Ok(Correction { net, features, sigma, moves, derived })
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("correction_sigma".into(), serde_json::to_string(&self.sigma).unwrap_or_default());
        m.insert("correction_moves".into(), serde_json::to_string(&self.moves).unwrap_or_default());
        m.insert("correction_derived".into(), serde_json::to_string(&self.derived).unwrap_or_default());
        m
    }

    fn check_class(&self, class: usize) -> Result<()> {
        if class >= self.features.len() {
            return Err(Error::arg("input_grad", format!("output {class} is out of range 0..{}", self.features.len())));
        }
        Ok(())
    }
}

impl Model for Correction {
    fn kind(&self) -> &'static str {
        "correction"
    }

    fn describe(&self) -> String {
        let moved = self.moves.iter().filter(|&&m| m).count();
        format!("Correction({} features, {moved} moved, residual {})", self.features.len(), self.net.describe())
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn n_inputs(&self) -> usize {
        self.features.len()
    }

    fn n_outputs(&self) -> usize {
        self.features.len()
    }

    fn output(&self) -> Output {
        Output::Linear
    }

    fn feature_names(&self) -> Option<Vec<String>> {
        Some(self.features.clone())
    }

    fn check_features(&self, ds: &Dataset) -> Result<()> {
        Model::check_features(&self.net, ds)
    }

    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        self.net.check_features(ds)?;
        Mlp::fit_standardization(&mut self.net, ds)
    }

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.transform(x)
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        let (n, d) = (x.nrows(), self.features.len());
        self.net.check_input("input_grad", x)?;
        let owned;
        let target = match target {
            GradTarget::Loss(t) => {
                t.validate("input_grad", Output::Linear, n, d)?;
                owned = standard_targets(t);
                GradTarget::Loss(match &owned {
                    Some(a) => Targets::Values(a.view()),
                    None => t.reborrow(),
                })
            }
            GradTarget::Score { class } => {
                self.check_class(class)?;
                GradTarget::Score { class }
            }
            GradTarget::Logit { class } => {
                self.check_class(class)?;
                GradTarget::Logit { class }
            }
            GradTarget::LossOfPredicted => {
                return Err(Error::arg("input_grad", "a correction has no predicted class to take the loss of"));
            }
            GradTarget::Custom(f) => GradTarget::Custom(f),
        };
        let step = self.step();
        // ∂v/∂x = ∂v/∂T·(I + diag(step)·∂r/∂x): the network part through a custom objective of
        // its outputs, the identity part added after.
        let inner = |i: usize, z: &[f32], g: &mut [f32]| -> f32 {
            let t: Vec<f32> = x.row(i).iter().zip(z).zip(&step).map(|((a, b), s)| a + s * b).collect();
            let v = objective_row(Output::Linear, &t, &target, i, g);
            g.iter_mut().zip(&step).for_each(|(g, s)| *g *= s);
            v
        };
        let mut r = self.net.input_grad_and_scores(x, GradTarget::Custom(&inner))?;
        let mut gt = vec![0.0f32; d];
        for (i, (mut srow, mut grow)) in r.scores.rows_mut().into_iter().zip(r.grad.rows_mut()).enumerate() {
            let t: Vec<f32> = x.row(i).iter().zip(srow.iter()).zip(&step).map(|((a, b), s)| a + s * b).collect();
            objective_row(Output::Linear, &t, &target, i, &mut gt);
            grow.iter_mut().zip(&gt).for_each(|(g, a)| *g += a);
            srow.iter_mut().zip(&t).for_each(|(s, v)| *s = *v);
            r.classes[i] = class_of_row(Output::Linear, &t);
        }
        Ok(r)
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        let (n, d) = (x.nrows(), self.features.len());
        if n == 0 {
            return Err(Error::Empty { op: "weight_grad", what: "the event set".into() });
        }
        targets.validate("weight_grad", Output::Linear, n, d)?;
        let wsum = check_weights("weight_grad", weights, n)?;
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let t = self.transform(x)?;
        let step = self.step();
        let mut cot = Array2::<f32>::zeros((n, d));
        let mut loss = 0.0;
        let mut g = vec![0.0f32; d];
        for (i, (trow, mut crow)) in t.rows().into_iter().zip(cot.rows_mut()).enumerate() {
            let w = weights.map_or(1.0, |w| f64::from(w[i])) / wsum;
            let tv = trow.to_vec();
            loss += w * loss_grad_row(Output::Linear, &tv, targets.row(i), w as f32, &mut g);
            crow.iter_mut().zip(&g).zip(&step).for_each(|((c, g), s)| *c = g * s);
        }
        Ok((loss, crate::model::objective::mlp_output_vjp(&self.net, x, cot.view())?))
    }

    fn output_vjp(&self, x: ArrayView2<'_, f32>, cot: ArrayView2<'_, f32>) -> Result<Vec<f32>> {
        let step = self.step();
        let mut c = cot.to_owned();
        for mut row in c.rows_mut() {
            row.iter_mut().zip(&step).for_each(|(v, s)| *v *= s);
        }
        crate::model::objective::mlp_output_vjp(&self.net, x, c.view())
    }

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn params(&self) -> Vec<f32> {
        self.net.params().to_vec()
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        Model::set_params(&mut self.net, p)
    }

    fn flat_order(&self) -> Option<Vec<usize>> {
        Model::flat_order(&self.net)
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        Model::param_groups(&self.net)
    }

    fn save(&self, path: &Path) -> Result<()> {
        self.net.save_with(path, "correction", &self.metadata())
    }
}
