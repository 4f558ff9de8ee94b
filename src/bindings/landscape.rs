//! Script functions for the loss landscape: Hessian-vector products, spectra (top
//! eigenvalues, trace, density, reduced Hessian), sharpness and weight-space attacks.

use rhai::plugin::*;

/// Registers the landscape functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(landscape_api).into());
}

/// Reads a weight-perturbation rule (`method` and its size options) from `o`; the
/// `weight_attack` option of `train` and the `weight_attack` function share it.
pub fn perturbation(o: &mut crate::bindings::options::Opts) -> crate::Result<crate::model::WeightPerturbation> {
    use crate::model::WeightPerturbation as P;
    let method = o.choice("method", &P::NAMES, "sam")?;
    let p = match method {
        "asam" => P::Asam { rho: o.f64("rho", 2.0)?, eta: o.f64("eta", 0.01)? },
        "awp" => P::Awp { gamma: o.f64("gamma", 0.005)? },
        "rwp" => P::Rwp { gamma: o.f64("gamma", 0.01)? },
        _ => P::Sam { rho: o.f64("rho", 0.05)? },
    };
    Ok(p)
}

mod helpers {
    use rhai::{Dynamic, Map};

    use crate::bindings::convert::{f64_array, map};
    use crate::bindings::options::Opts;
    use crate::bindings::RhaiResult;
    use crate::data::Dataset;
    use crate::landscape::ModelHessian;
    use crate::model::Model;

    /// The Hessian operator of `m` on `d` (optionally one layer's block).
    pub fn operator(m: &dyn Model, d: &Dataset, layer: Option<usize>) -> RhaiResult<ModelHessian> {
        Ok(ModelHessian::from_dataset(m, d, layer)?)
    }

    pub fn layer(o: &mut Opts) -> RhaiResult<Option<usize>> {
        Ok(o.usize_opt("layer")?)
    }

    /// Eigenvectors in PyTorch order as arrays.
    pub fn vectors(op: &ModelHessian, vs: &[Vec<f64>]) -> RhaiResult<rhai::Array> {
        vs.iter().map(|v| Ok(Dynamic::from_array(f64_array(op.to_torch_order(v)?)))).collect()
    }

    pub fn opt_float(v: Option<f64>) -> Dynamic {
        v.map_or(Dynamic::UNIT, Dynamic::from_float)
    }

    pub fn trace_map(t: &crate::landscape::TraceEstimate) -> Map {
        map([
            ("trace", t.trace.into()),
            ("stderr", t.stderr.into()),
            ("samples", (t.samples as i64).into()),
            ("stopped", t.stop.as_str().into()),
        ])
    }
}

#[export_module]
pub mod landscape_api {
    use super::helpers::*;
    use rhai::{Array, Map};

    use crate::bindings::convert::{bool_array, f64_array, map};
    use crate::bindings::options::{floats, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::landscape::{self, Basis, LanczosConfig, PowerConfig, SharpnessConfig, SlqConfig, TraceConfig};
    use crate::model::SharedModel;

    /// The Hessian of the training loss (event-weighted mean over `data`) times the vector
    /// `v`: exact for an MLP (R-operator, f32), by central differences of exact gradients for
    /// models without an exact product (step 10⁻³·max(1, ‖θ‖) along v). `v` and the result are
    /// flat in the model's flat order (PyTorch order for an MLP), as `params()`; with `layer`,
    /// both hold that parameter group's values only (an MLP's layer: its weights and bias; the
    /// diagonal block of the Hessian).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `layer` | int | all weights | restrict to this layer (0 = first) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 });
    /// let m = mlp([20, 8, 1], #{ features: d.features, seed: 1 });
    /// let hv = m.hvp(d, m.params().map(|p| 0.01), #{});
    /// assert_eq(hv.len(), m.n_params);
    /// let last = m.hvp(d, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], #{ layer: 1 }); // 8 weights + 1 bias
    /// assert_eq(last.len(), 9);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn hvp(m: &mut SharedModel, data: Dataset, v: Array, options: Map) -> RhaiResult<Array> {
        let mut o = Opts::new("hvp", &options);
        let layer = layer(&mut o)?;
        o.finish()?;
        m.check_features(&data)?;
        data.label().ok_or_else(|| Error::arg("hvp", "the dataset has no label column"))?;
        let op = operator(&**m, &data, layer)?;
        let v: Vec<f64> = floats("hvp", "v", &v)?.into_iter().map(|x| f64::from(x as f32)).collect();
        let n = landscape::LinearOp::dim(&op);
        if v.len() != n {
            return Err(Error::Shape {
                op: "hvp",
                expected: format!("a vector of {n} values"),
                got: v.len().to_string(),
            }
            .into());
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::arg("hvp", "the vector has non-finite entries").into());
        }
        // `v` is given in the model's flat (PyTorch) order; the operator works in its own.
        let working = op.from_torch_order(&v)?;
        let mut out = vec![0.0; n];
        landscape::LinearOp::apply(&op, &working, &mut out)?;
        Ok(f64_array(op.to_torch_order(&out)?))
    }

    /// The Hessian-vector product with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, pure, name = "hvp")]
    pub fn hvp_default(m: &mut SharedModel, data: Dataset, v: Array) -> RhaiResult<Array> {
        hvp(m, data, v, Map::new())
    }

    /// Top-k eigenvalues of the training-loss Hessian (largest magnitude first), by power
    /// iteration with deflation (PyHessian's method and defaults) or Lanczos with full
    /// re-orthogonalisation (far fewer products for k > 1). Returns `#{ eigenvalues,
    /// converged, hvps, stopped }` plus `eigenvectors` (PyTorch order) with `vectors: true`.
    /// Ctrl-C returns the estimates so far with `stopped: "interrupted"`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `k` | int | 1 | number of eigenvalues |
    /// | `method` | string | "power" | power, lanczos |
    /// | `steps` | int | 100 | iteration limit: power, products per eigenvalue; lanczos, Lanczos steps (old name `max_iter`, deprecated) |
    /// | `tol` | float | 1e-3 | power: relative change of λ; lanczos: residual relative to λ |
    /// | `layer` | int | all weights | the Hessian block of this layer |
    /// | `vectors` | bool | false | also return the eigenvectors |
    /// | `seed` | int | from the session seed | start vectors |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let top = hessian_top(m, d, #{ k: 2, method: "lanczos", seed: 3 });
    /// assert(top.eigenvalues[0] >= top.eigenvalues[1]);
    /// assert_eq(top.stopped, "converged");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hessian_top(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("hessian_top", &options);
        let k = o.usize("k", 1)?;
        let method = o.choice("method", &["power", "lanczos"], "power")?;
        let max_iter = o.usize("steps", 100)?;
        let tol = o.f64("tol", 1e-3)?;
        let layer = layer(&mut o)?;
        let want_vectors = o.bool("vectors", false)?;
        let seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        let op = operator(&*model, &data, layer)?;
        let s = if method == "lanczos" {
            landscape::lanczos(&op, &LanczosConfig { k, max_iter, tol, seed }, &cx.control)?
        } else {
            landscape::power_iteration(&op, &PowerConfig { k, max_iter, tol, seed }, &cx.control)?
        };
        let mut out = map([
            ("eigenvalues", f64_array(s.eigenvalues.iter().copied()).into()),
            ("converged", bool_array(s.converged.iter().copied()).into()),
            ("hvps", (s.hvps as i64).into()),
            ("stopped", s.stop.as_str().into()),
        ]);
        if want_vectors {
            out.insert("eigenvectors".into(), vectors(&op, &s.eigenvectors)?.into());
        }
        Ok(out)
    }

    /// The top Hessian eigenvalues with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "hessian_top")]
    pub fn hessian_top_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        hessian_top(c, model, data, Map::new())
    }

    /// The trace of the training-loss Hessian by Hutchinson's estimator (mean of vᵀHv over
    /// Rademacher vectors v) with its standard error: `#{ trace, stderr, samples, stopped }`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `samples` | int | 100 | random vectors at most |
    /// | `tol` | float | 0 | stop once stderr ≤ tol·|trace| (0: never) |
    /// | `layer` | int | all weights | the trace of this layer's block |
    /// | `seed` | int | from the session seed | random vectors |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let t = hessian_trace(m, d, #{ samples: 20, seed: 2 });
    /// assert(t.trace > 0.0 && t.stderr > 0.0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hessian_trace(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("hessian_trace", &options);
        let samples = o.usize("samples", 100)?;
        let tol = o.f64("tol", 0.0)?;
        let layer = layer(&mut o)?;
        let seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        let op = operator(&*model, &data, layer)?;
        let t = landscape::hutchinson(&op, &TraceConfig { samples, tol, seed }, &cx.control)?;
        Ok(trace_map(&t))
    }

    /// The Hessian trace estimate with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "hessian_trace")]
    pub fn hessian_trace_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        hessian_trace(c, model, data, Map::new())
    }

    /// The spectral density of the training-loss Hessian by stochastic Lanczos quadrature:
    /// `#{ nodes, weights, x, density, mean, runs, hvps, stopped }`. `nodes`/`weights` are the
    /// quadrature (weights sum to 1; `mean` = Σ w·node ≈ tr(H)/n), `x`/`density` the density
    /// smoothed by Gaussians on a grid, ready for `plot_lines` (use `logy: true`).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `steps` | int | 100 | Lanczos steps per run (old name `iters`, deprecated) |
    /// | `runs` | int | 1 | random start vectors |
    /// | `points` | int | 400 | grid points of `density` |
    /// | `sigma` | float | PyHessian's √(1e-5·range), at least 2 grid steps | Gaussian width |
    /// | `layer` | int | all weights | the density of this layer's block |
    /// | `seed` | int | from the session seed | start vectors |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let m = mlp([20, 6, 1], #{ features: d.features, seed: 1 });
    /// let s = hessian_density(m, d, #{ steps: 20, runs: 2, seed: 1 });
    /// assert(abs(s.weights.reduce(|a, w| a + w, 0.0) - 1.0) < 1e-9);
    /// plot_lines("out/doc_density.png", [#{ label: "init", x: s.x, y: s.density }], #{ logy: true });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hessian_density(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("hessian_density", &options);
        let iters = o.usize("steps", 100)?;
        let runs = o.usize("runs", 1)?;
        let points = o.usize("points", 400)?;
        let sigma = o.f64_opt("sigma")?;
        let layer = layer(&mut o)?;
        let seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        let op = operator(&*model, &data, layer)?;
        let d = landscape::slq(&op, &SlqConfig { iters, runs, seed }, &cx.control)?;
        let (x, y) = landscape::density_on_grid(&d, points, sigma)?;
        Ok(map([
            ("nodes", f64_array(d.nodes.iter().copied()).into()),
            ("weights", f64_array(d.weights.iter().copied()).into()),
            ("x", f64_array(x).into()),
            ("density", f64_array(y).into()),
            ("mean", d.mean().into()),
            ("runs", (d.runs as i64).into()),
            ("hvps", (d.hvps as i64).into()),
            ("stopped", d.stop.as_str().into()),
        ]))
    }

    /// The Hessian spectral density with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "hessian_density")]
    pub fn hessian_density_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        hessian_density(c, model, data, Map::new())
    }

    /// The reduced Hessian: the training-loss Hessian restricted to a subspace, formed densely
    /// from k products and fully diagonalised (nalgebra; LAPACK in builds with the `lapack`
    /// feature). The subspace is a layer's parameters (`layer` alone), k random directions
    /// (`subspace: "random"`), or the span of the top-k eigenvectors (`subspace: "top"`, found
    /// by Lanczos), within the whole network or within `layer`. Returns `#{ eigenvalues
    /// (descending), dim, hvps, backend, stopped }`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `layer` | int | all weights | restrict to this layer |
    /// | `subspace` | string | "layer" with `layer`, else "random" | layer, random, top |
    /// | `k` | int | 10 | subspace dimension (random, top) |
    /// | `seed` | int | from the session seed | random directions / Lanczos start |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let m = mlp([20, 4, 1], #{ features: d.features, seed: 1 });
    /// let r = reduced_hessian(m, d, #{ layer: 1 });
    /// assert_eq(r.dim, 5);
    /// let s = reduced_hessian(m, d, #{ subspace: "random", k: 3, seed: 2 });
    /// assert_eq(s.eigenvalues.len(), 3);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn reduced_hessian(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("reduced_hessian", &options);
        let layer = layer(&mut o)?;
        let default = if layer.is_some() { "layer" } else { "random" };
        let subspace = o.choice("subspace", &["layer", "random", "top"], default)?;
        let k = o.usize("k", 10)?;
        let seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        if subspace == "layer" && layer.is_none() {
            return Err(Error::BadOption {
                func: "reduced_hessian".into(),
                key: "subspace".into(),
                problem: "is 'layer', which needs the layer option (e.g. #{ layer: 0 })".into(),
            }
            .into());
        }
        let op = operator(&*model, &data, layer)?;
        let mut hvps = 0;
        let basis = match subspace {
            "layer" => Basis::Identity,
            "random" => Basis::Random { k, seed },
            _ => {
                let max_iter = k.saturating_mul(3).max(40);
                let s = landscape::lanczos(&op, &LanczosConfig { k, max_iter, tol: 1e-3, seed }, &cx.control)?;
                hvps += s.hvps;
                Basis::Vectors(s.eigenvectors)
            }
        };
        let r = landscape::reduced_hessian(&op, basis, &cx.control)?;
        Ok(map([
            ("eigenvalues", f64_array(r.eigenvalues.iter().copied()).into()),
            ("dim", (r.dim as i64).into()),
            ("hvps", ((hvps + r.hvps) as i64).into()),
            ("backend", landscape::eig::backend().into()),
            ("stopped", r.stop.as_str().into()),
        ]))
    }

    /// The reduced Hessian with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "reduced_hessian")]
    pub fn reduced_hessian_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        reduced_hessian(c, model, data, Map::new())
    }

    /// Sharpness by projected gradient ascent: the largest increase of the training loss
    /// within a ball of radius ρ around the weights (absolute, or relative to ‖w‖; one global
    /// ball or one per layer), found by `steps` normalised ascent steps:
    /// `#{ delta_loss, loss, perturbed_loss, norm, layer_norms, steps, stopped }`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `rho` | float | 0.05 | radius |
    /// | `relative` | bool | false | radius ρ·‖w‖ (per layer: ρ·‖w_l‖) |
    /// | `per_layer` | bool | false | one ball per layer |
    /// | `steps` | int | 10 | ascent steps |
    /// | `step` | float | 2.5/steps | step length as a fraction of the radius (old name `step_size`, deprecated) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let s = sharpness(m, d, #{ rho: 0.05, steps: 5 });
    /// assert(s.delta_loss > 0.0 && s.norm <= 0.05 + 1e-6);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sharpness(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("sharpness", &options);
        let d = SharpnessConfig::default();
        let cfg = SharpnessConfig {
            rho: o.f64("rho", d.rho)?,
            relative: o.bool("relative", d.relative)?,
            per_layer: o.bool("per_layer", d.per_layer)?,
            steps: o.usize("steps", d.steps)?,
            step_size: o.f64_opt("step")?,
        };
        o.finish()?;
        let r = landscape::sharpness(&*model, &data, &cfg, &cx.control)?;
        Ok(map([
            ("delta_loss", r.delta_loss.into()),
            ("loss", r.loss.into()),
            ("perturbed_loss", r.perturbed_loss.into()),
            ("norm", r.norm.into()),
            ("layer_norms", f64_array(r.layer_norms).into()),
            ("steps", (r.steps as i64).into()),
            ("stopped", r.stop.as_str().into()),
        ]))
    }

    /// Sharpness with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "sharpness")]
    pub fn sharpness_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        sharpness(c, model, data, Map::new())
    }

    /// A weight-space attack: the loss and accuracy of the model after one weight
    /// perturbation — SAM (ε = ρ·g/‖g‖), ASAM (ε = ρ·T²g/‖Tg‖, T = |w| + η), AWP (per layer
    /// ε_l = γ·‖w_l‖·g_l/‖g_l‖) or RWP (Gaussian, per layer of relative size γ, averaged over
    /// `samples` draws), with g the loss gradient on `data`. Returns `#{ method, clean_loss,
    /// clean_accuracy, loss, loss_std, accuracy, delta_loss, norm, relative_norm, samples }`.
    /// The same options train flatter models: `train(m, d, #{ weight_attack: #{ method: "sam" } })`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `method` | string | "sam" | sam, asam, awp, rwp |
    /// | `rho` | float | 0.05 (sam), 2.0 (asam) | radius (sam, asam) |
    /// | `eta` | float | 0.01 | asam: offset of T = |w| + η |
    /// | `gamma` | float | 0.005 (awp), 0.01 (rwp) | size relative to each layer's norm (awp, rwp) |
    /// | `samples` | int | 10 | rwp: random draws averaged |
    /// | `seed` | int | from the session seed | rwp draws |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let a = weight_attack(m, d, #{ method: "awp", gamma: 0.05 });
    /// assert(a.loss > a.clean_loss);
    /// let r = weight_attack(m, d, #{ method: "rwp", gamma: 0.05, samples: 3, seed: 1 });
    /// assert_eq(r.samples, 3);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn weight_attack(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("weight_attack", &options);
        let p = super::perturbation(&mut o)?;
        let samples = if p.needs_gradient() { 1 } else { o.usize("samples", 10)? };
        let seed = if p.needs_gradient() { 0 } else { cx.seed_or_next(o.seed()?) };
        o.finish()?;
        let r = landscape::weight_attack(&*model, &data, &p, samples, seed, &cx.control)?;
        Ok(map([
            ("method", p.name().into()),
            ("clean_loss", r.clean_loss.into()),
            ("clean_accuracy", opt_float(r.clean_accuracy)),
            ("loss", r.loss.into()),
            ("loss_std", r.loss_std.into()),
            ("accuracy", opt_float(r.accuracy)),
            ("delta_loss", (r.loss - r.clean_loss).into()),
            ("norm", r.norm.into()),
            ("relative_norm", r.relative_norm.into()),
            ("samples", (r.samples as i64).into()),
        ]))
    }

    /// The weight attack with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "weight_attack")]
    pub fn weight_attack_default(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        weight_attack(c, model, data, Map::new())
    }
}
