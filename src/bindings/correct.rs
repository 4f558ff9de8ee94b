//! Script functions for minimal-deviation corrections (`correct`): targets, training, applying,
//! saving and loading a correction, the two baselines and the validation report with its plots.

use rhai::plugin::*;

/// Registers the `Target`, `Correction` and `CorrectionReport` types and their functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<crate::correct::Target>("Target");
    engine.register_type_with_name::<helpers::Fit>("Correction");
    engine.register_type_with_name::<crate::correct::Report>("CorrectionReport");
    engine.register_global_module(exported_module!(correct_api).into());
}

pub mod helpers {
    use std::sync::Arc;

    use rhai::{Array, Dynamic, Map};

    use crate::bindings::options::{type_name, Opts};
    use crate::correct::{Distance, Fitted, Target, TargetSpec};
    use crate::error::{Error, Result};

    /// A trained correction as scripts hold it (shared).
    #[derive(Clone, Debug)]
    pub struct Fit(pub Arc<Fitted>);

    /// The distance terms of a `distance` value: a name, a map `#{ name, weight, smoothing,
    /// bandwidth }`, or an array of those (combined with their weights).
    pub fn distances(v: &Dynamic) -> Result<Vec<(Distance, f64)>> {
        let one = |v: &Dynamic| -> Result<(Distance, f64)> {
            if let Ok(s) = v.clone().into_immutable_string() {
                return Ok((Distance::by_name(&s, None, None)?, 1.0));
            }
            let Some(m) = v.clone().try_cast::<Map>() else {
                return Err(Error::BadOption {
                    func: "correct".into(),
                    key: "distance".into(),
                    problem: format!("must be a name, a map or an array of them, got {}", type_name(v)),
                });
            };
            let mut o = Opts::new("correct (distance)", &m);
            let name = o.string("name", "wasserstein")?;
            let weight = o.f64("weight", 1.0)?;
            let smoothing = o.f64_opt("smoothing")?;
            let bandwidth = o.f64_opt("bandwidth")?;
            o.finish()?;
            Ok((Distance::by_name(&name, smoothing, bandwidth)?, weight))
        };
        match v.clone().try_cast::<Array>() {
            Some(a) if a.is_empty() => Err(Error::BadOption {
                func: "correct".into(),
                key: "distance".into(),
                problem: "is an empty array".into(),
            }),
            Some(a) => a.iter().map(one).collect(),
            None => Ok(vec![one(v)?]),
        }
    }

    /// Targets from a script array of `Target` values.
    pub fn targets(func: &str, a: &Array) -> Result<Vec<Target>> {
        if a.is_empty() {
            return Err(Error::arg(func, "no targets given"));
        }
        a.iter()
            .enumerate()
            .map(|(i, v)| {
                v.clone().try_cast::<Target>().ok_or_else(|| {
                    Error::arg(
                        func,
                        format!(
                            "target {i} is {}, not a Target (make one with `target` or `target_histogram`)",
                            type_name(v)
                        ),
                    )
                })
            })
            .collect()
    }

    /// Each target with every distance term.
    pub fn specs(targets: &[Target], terms: &[(Distance, f64)]) -> Vec<TargetSpec> {
        targets
            .iter()
            .flat_map(|t| terms.iter().map(move |(d, w)| TargetSpec { target: t.clone(), distance: *d, weight: *w }))
            .collect()
    }
}

#[export_module]
pub mod correct_api {
    use std::sync::Arc;

    use rhai::{Array, Dynamic, Map};

    use super::helpers::{distances, specs, targets, Fit};
    use crate::bindings::convert::{f64_array, map, matrix, string_array};
    use crate::bindings::options::{floats, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::correct::{CorrectConfig, Report, Shape, Target, ValidateConfig};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::{Activation, Convergence, Optimizer};
    use crate::stats::c2st::C2stConfig;

    /// The target of one feature from a sample: the values of `feature` in `data` (with its
    /// event weights, if any).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// let t = target(d, "x0");
    /// assert_eq(t.feature, "x0");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn target(data: Dataset, feature: &str) -> RhaiResult<Target> {
        let values = data.column(feature)?.to_vec();
        let t = Target {
            feature: feature.into(),
            shape: Shape::Samples { values, weights: data.weight().map(<[f32]>::to_vec) },
        };
        t.prepare()?;
        Ok(t)
    }

    /// The target of one feature as a histogram: bin `edges` (increasing, one more than the
    /// bins), `counts` ≥ 0 and their `errors` > 0.
    ///
    /// ```rhai
    /// let t = target_histogram("x0", [-2.0, 0.0, 2.0], [40.0, 60.0], [6.3, 7.7]);
    /// assert_eq(t.feature, "x0");
    /// try { target_histogram("x0", [0.0, 1.0], [0.0], [1.0]); } catch (e) { assert(e.message.contains("empty")); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn target_histogram(feature: &str, edges: Array, counts: Array, errors: Array) -> RhaiResult<Target> {
        let f = "target_histogram";
        let t = Target {
            feature: feature.into(),
            shape: Shape::Histogram {
                edges: floats(f, "edges", &edges)?,
                counts: floats(f, "counts", &counts)?,
                errors: floats(f, "errors", &errors)?,
            },
        };
        t.prepare()?;
        Ok(t)
    }

    /// The feature a target describes.
    ///
    /// ```rhai
    /// assert_eq(target(dataset("gaussians", #{ n: 10 }), "x3").feature, "x3");
    /// ```
    #[rhai_fn(get = "feature", pure)]
    pub fn target_feature(t: &mut Target) -> String {
        t.feature.clone()
    }

    /// Learns a minimal-deviation correction `T(x) = x + σ ⊙ r(x)` of the simulation `sim`
    /// so that each targeted feature matches its 1-D target while events move as little as
    /// possible: minimises `Σⱼ cⱼ·Dⱼ(targetⱼ, T(x)ⱼ) + λ·mean_w ‖(T(x) − x) ⊘ σ‖²` with the
    /// simulation's event weights (≥ 0), over minibatches compared with the targets as a whole.
    /// `r` is a residual network (last layer zero: the identity at the start). Features
    /// without a target move only through the closeness term, or not at all when `frozen`;
    /// `derived` features never move and are recomputed by `apply`. A target may name a
    /// derived feature: it is recomputed from the corrected features of each minibatch and its
    /// distance acts on them through the expression (differences, sums and ratios of features
    /// carry what per-feature targets cannot: with those alone the optimum is per-feature
    /// quantile morphing).
    ///
    /// Distances (`distance`): `"wasserstein"` (squared 1-D Wasserstein in σ units, by
    /// sorting), `"chi2"` (soft-binned χ² against the target histogram and its errors;
    /// `smoothing` in bin widths, 0.5), `"mmd"` (Gaussian-kernel MMD², `bandwidth` in σ,
    /// 0.5); a map `#{ name, weight, smoothing, bandwidth }` or an array of them combines
    /// terms with weights, for every target.
    ///
    /// Returns a `Correction`: `apply` it, `save` it; its fields `history` (objective per
    /// epoch), `stopped`, `epochs`, `terms` (each term's value after training), `model`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array | all of `sim` | features the correction acts on |
    /// | `distance` | string, map or array | "wasserstein" | distance term(s), see above |
    /// | `lambda` | float | 0.1 | weight λ of the closeness term |
    /// | `sigma` | map | weighted std of `sim` | σ per feature (name → value) |
    /// | `frozen` | array | [] | features that never move |
    /// | `derived` | map | #{} | derived features, name → expression, recomputed after the transform; may have targets |
    /// | `hidden` | array | [64, 64] | hidden widths of the residual network |
    /// | `activation` | string | "tanh" | its activation |
    /// | `epochs` | int | 40 | most epochs |
    /// | `batch_size` | int | 2048 | events per minibatch |
    /// | `lr` | float | 0.003 | Adam learning rate |
    /// | `tol` | float | 0.005 | converged when the epoch objective falls by less than this fraction… |
    /// | `patience` | int | 3 | …for this many epochs in a row |
    /// | `freeze` | array | [] | parameter groups of the network left unchanged (`layer0`, …) |
    /// | `seed` | int | session | initialisation and shuffling |
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 2000, seed: 1 }).select(["x0", "x1", "x2"]);
    /// let data = dataset("gaussians", #{ n: 2000, seed: 2 }).derive("x0", "x0 + 0.5");
    /// let c = correct(sim, [target(data, "x0"), target(data, "x1")],
    ///                 #{ lambda: 0.01, hidden: [16], epochs: 15, batch_size: 500, lr: 0.01, seed: 1,
    ///                    distance: [#{ name: "wasserstein" }, #{ name: "chi2", weight: 0.1 }] });
    /// let out = c.apply(sim);
    /// let shift = out.describe()[0].mean - sim.describe()[0].mean;
    /// assert(abs(shift - 0.5) < 0.1);
    /// ```
    #[rhai_fn(return_raw, name = "correct")]
    pub fn correct(c: NativeCallContext, sim: Dataset, targets_: Array, options: Map) -> RhaiResult<Fit> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("correct", &options);
        let d = CorrectConfig::default();
        let terms = match o.raw("distance") {
            Some(v) => distances(&v)?,
            None => vec![(crate::correct::Distance::Wasserstein, 1.0)],
        };
        let mut sigma = Vec::new();
        for (k, v) in o.map_opt("sigma")?.unwrap_or_default() {
            let s = crate::bindings::options::as_f64(&v).ok_or_else(|| Error::BadOption {
                func: "correct".into(),
                key: "sigma".into(),
                problem: format!("must map feature names to numbers; '{k}' is not a number"),
            })?;
            sigma.push((k.to_string(), s));
        }
        let mut derived = Vec::new();
        for (k, v) in o.map_opt("derived")?.unwrap_or_default() {
            let e = v.into_immutable_string().map_err(|_| Error::BadOption {
                func: "correct".into(),
                key: "derived".into(),
                problem: format!("must map feature names to expressions; '{k}' is not a string"),
            })?;
            derived.push((k.to_string(), e.to_string()));
        }
        let hidden = match o.floats_opt("hidden")? {
            Some(h) => crate::bindings::model::helpers::widths("correct", h)?,
            None => d.hidden.clone(),
        };
        let mut train = d.train.clone();
        train.epochs = o.usize("epochs", train.epochs)?;
        train.batch_size = o.usize("batch_size", train.batch_size)?;
        train.optimizer = Optimizer::adam(o.positive("lr", train.optimizer.lr())?);
        train.freeze =
            o.strings_opt("freeze")?.unwrap_or_default().into_iter().map(crate::model::GroupRef::from).collect();
        let conv = d.converge.unwrap_or(Convergence { tol: 5e-3, patience: 3 });
        let converge =
            Some(Convergence { tol: o.f64("tol", conv.tol)?, patience: o.usize("patience", conv.patience)? });
        let cfg = CorrectConfig {
            features: o.strings_opt("features")?,
            hidden,
            activation: Activation::parse(&o.string("activation", "tanh")?)?,
            lambda: o.f64("lambda", d.lambda)?,
            sigma,
            frozen: o.strings_opt("frozen")?.unwrap_or_default(),
            derived,
            train: crate::model::TrainConfig { seed: cx.seed_or_next(o.seed()?), ..train },
            converge,
        };
        o.finish()?;
        let t = targets("correct", &targets_)?;
        let fitted = crate::correct::fit(&sim, &specs(&t, &terms), &cfg, &cx.control)?;
        Ok(Fit(Arc::new(fitted)))
    }

    /// A correction with the default options. Options as the form with an options map.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 500, seed: 1 }).select(["x0", "x1"]);
    /// let c = correct(sim, [target(dataset("gaussians", #{ n: 500, seed: 2 }), "x0")]);
    /// assert(c.epochs >= 1);
    /// ```
    #[rhai_fn(return_raw, name = "correct")]
    pub fn correct_default(c: NativeCallContext, sim: Dataset, targets_: Array) -> RhaiResult<Fit> {
        correct(c, sim, targets_, Map::new())
    }

    /// The dataset corrected: the correction's features replaced by `T(x)` (other columns,
    /// labels and weights kept), derived features recomputed. Any dataset with the features.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 }).select(["x0", "x1"]);
    /// let c = correct(sim, [target(sim, "x0")], #{ epochs: 1 });
    /// assert_eq(c.apply(dataset("gaussians", #{ n: 50, seed: 3 })).len, 50);
    /// ```
    #[rhai_fn(return_raw, name = "apply", pure)]
    pub fn apply(f: &mut Fit, data: Dataset) -> RhaiResult<Dataset> {
        Ok(f.0.correction.apply(&data)?)
    }

    /// Saves the correction (safetensors, atomically); `load_correction` or `load_model`
    /// read it back.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 }).select(["x0", "x1"]);
    /// let c = correct(sim, [target(sim, "x0")], #{ epochs: 1 });
    /// c.save("out/doc_correction.safetensors");
    /// let back = load_correction("out/doc_correction.safetensors");
    /// assert_eq(back.apply(sim).describe()[0].mean, c.apply(sim).describe()[0].mean);
    /// ```
    #[rhai_fn(return_raw, name = "save", pure)]
    pub fn save(c: NativeCallContext, f: &mut Fit, path: &str) -> RhaiResult<()> {
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(crate::model::Model::save(&f.0.correction, &file)?)
    }

    /// Loads a correction written by `save` (history empty).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0"]);
    /// correct(sim, [target(sim, "x0")], #{ epochs: 1 }).save("out/doc_load_correction.safetensors");
    /// assert_eq(load_correction("out/doc_load_correction.safetensors").model.kind, "correction");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_correction(c: NativeCallContext, path: &str) -> RhaiResult<Fit> {
        let file = ctx(&c)?.sandbox.check_read(path)?;
        let correction = crate::correct::Correction::load(&file)?;
        Ok(Fit(Arc::new(crate::correct::Fitted {
            correction,
            history: Vec::new(),
            stop: crate::optim::Stop::MaxIters,
            terms: Vec::new(),
        })))
    }

    /// The objective per epoch.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0"]);
    /// assert_eq(correct(sim, [target(sim, "x0")], #{ epochs: 2, tol: 0.0, patience: 5 }).history.len, 2);
    /// ```
    #[rhai_fn(get = "history", pure)]
    pub fn history(f: &mut Fit) -> Array {
        f64_array(f.0.history.iter().map(|r| r.objective))
    }

    /// Epochs run.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0"]);
    /// assert_eq(correct(sim, [target(sim, "x0")], #{ epochs: 1 }).epochs, 1);
    /// ```
    #[rhai_fn(get = "epochs", pure)]
    pub fn epochs(f: &mut Fit) -> i64 {
        f.0.history.len() as i64
    }

    /// Why training ended (`converged`, `max_iters`, `interrupted`, …).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0"]);
    /// assert_eq(correct(sim, [target(sim, "x0")], #{ epochs: 1 }).stopped, "max_iters");
    /// ```
    #[rhai_fn(get = "stopped", pure)]
    pub fn stopped(f: &mut Fit) -> String {
        f.0.stop.as_str().into()
    }

    /// Each objective term (`wasserstein(x0)`, …, `closeness`) after training, unweighted.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0"]);
    /// assert(correct(sim, [target(sim, "x0")], #{ epochs: 1 }).terms.contains("closeness"));
    /// ```
    #[rhai_fn(get = "terms", pure)]
    pub fn terms(f: &mut Fit) -> Map {
        f.0.terms.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from_float(*v))).collect()
    }

    /// The correction as a `model` (kind `correction`; its outputs are the corrected
    /// features), for every function that takes models.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0", "x1"]);
    /// assert_eq(correct(sim, [target(sim, "x0")], #{ epochs: 1 }).model.n_inputs, 2);
    /// ```
    #[rhai_fn(get = "model", pure)]
    pub fn model(f: &mut Fit) -> crate::model::SharedModel {
        crate::model::SharedModel::from(Box::new(f.0.correction.clone()) as Box<dyn crate::model::Model>)
    }

    /// One line about the correction.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn fit_to_string(f: &mut Fit) -> String {
        crate::model::Model::describe(&f.0.correction)
    }

    /// One line about the correction.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn fit_to_debug(f: &mut Fit) -> String {
        crate::model::Model::describe(&f.0.correction)
    }

    /// The simulation with each targeted feature morphed through `Q_target(F_sim(x))` (per
    /// feature quantile morphing, the baseline that ignores correlations).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 400, seed: 1 });
    /// let data = dataset("gaussians", #{ n: 400, seed: 2 }).derive("x0", "2 * x0");
    /// let m = quantile_morph(sim, [target(data, "x0")]);
    /// assert(abs(m.describe()[0].std - data.describe()[0].std) < 0.05);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn quantile_morph(sim: Dataset, targets_: Array) -> RhaiResult<Dataset> {
        let t = targets("quantile_morph", &targets_)?;
        Ok(crate::correct::quantile_morph(&sim, &t)?.apply(&sim)?)
    }

    /// The simulation with new event weights from iterative 1-D reweighting (raking): per
    /// sweep, each target's bins scale the weights of their events by target over current
    /// fraction; stops when every fraction is within `tol` or after `max_iter` sweeps (with a
    /// warning when not converged). Weights must be ≥ 0; their sum is kept.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `tol` | float | 0.0001 | largest |fraction − target fraction| to stop at |
    /// | `max_iter` | int | 100 | most sweeps |
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let data = dataset("gaussians", #{ n: 2000, seed: 2 }).derive("x0", "x0 + 0.3");
    /// let r = rake(sim, [target(data, "x0")], #{ tol: 0.001 });
    /// assert(abs(r.describe()[0].mean - data.describe()[0].mean) < 0.05);
    /// ```
    #[rhai_fn(return_raw, name = "rake")]
    pub fn rake(sim: Dataset, targets_: Array, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("rake", &options);
        let tol = o.f64("tol", 1e-4)?;
        let max_iter = o.usize("max_iter", 100)?;
        o.finish()?;
        let t = targets("rake", &targets_)?;
        let r = crate::correct::rake(&sim, &t, tol, max_iter)?;
        if !r.converged {
            crate::bindings::warn(&format!(
                "rake: not converged after {} sweeps (largest deviation {:.3e} ≥ tol {tol:e})",
                r.iterations, r.max_deviation
            ));
        }
        Ok(sim.with_weight(Some(r.weights))?)
    }

    /// Raking with the default options. Options as the form with an options map.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 500, seed: 1 });
    /// assert_eq(rake(sim, [target(sim, "x1")]).len, 500);
    /// ```
    #[rhai_fn(return_raw, name = "rake")]
    pub fn rake_default(sim: Dataset, targets_: Array) -> RhaiResult<Dataset> {
        rake(sim, targets_, Map::new())
    }

    /// The validation report of `corrected` (the events of `original` after a correction,
    /// morphing or raking) against the targets: per feature χ² (target and sample errors) and
    /// KS; the correlation matrix against the original's (and the truth's); with a `truth`
    /// sample and `c2st: true`, a classifier two-sample test of corrected against truth; the
    /// per-event shift ‖(x' − x) ⊘ σ‖. `print` it for the table; fields `features` (maps
    /// `feature`, `chi2`, `ndf`, `chi2_p`, `ks_d`, `ks_p`, `chi2_original`), `corr_change`,
    /// `corr_change_truth`, `max_abs_corr_change`, `c2st_auc`, `shift_mean`, `shift_q90`,
    /// `shift_max`, `corr_delta` (corrected − original, matrix), `names`, `table`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array | the targets' | features of the matrices, shifts and C2ST |
    /// | `truth` | Dataset | none | the true sample (pseudo-data studies) |
    /// | `c2st` | bool | false | run the classifier two-sample test against `truth` |
    /// | `c2st_epochs` | int | 20 | its training epochs |
    /// | `sigma` | array | weighted std of `original` | σ per feature for the shifts |
    /// | `seed` | int | session | C2ST split and training |
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 1000, seed: 1 });
    /// let data = dataset("gaussians", #{ n: 1000, seed: 2 }).derive("x0", "x0 + 0.5");
    /// let m = quantile_morph(sim, [target(data, "x0")]);
    /// let r = correction_report(sim, m, [target(data, "x0")], #{ features: ["x0", "x1"], truth: data,
    ///                                                           c2st: true, c2st_epochs: 2, seed: 1 });
    /// print(r);
    /// assert(r.features[0].chi2 < r.features[0].chi2_original);
    /// assert(r.c2st_auc < 0.6);
    /// ```
    #[rhai_fn(return_raw, name = "correction_report")]
    pub fn correction_report(
        c: NativeCallContext,
        original: Dataset,
        corrected: Dataset,
        targets_: Array,
        options: Map,
    ) -> RhaiResult<Report> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("correction_report", &options);
        let features = o.strings_opt("features")?;
        let truth = o.custom_opt::<Dataset>("truth", "a Dataset")?;
        let run_c2st = o.bool("c2st", false)?;
        let epochs = o.usize("c2st_epochs", C2stConfig::default().epochs)?;
        let sigma = o.floats_opt("sigma")?.map(|v| v.into_iter().map(|x| x as f32).collect());
        let seed = o.seed()?;
        o.finish()?;
        let c2st = run_c2st.then(|| C2stConfig { epochs, seed: cx.seed_or_next(seed), ..C2stConfig::default() });
        if c2st.is_some() && truth.is_none() {
            return Err(Error::BadOption {
                func: "correction_report".into(),
                key: "c2st".into(),
                problem: "needs a `truth` sample to test against".into(),
            }
            .into());
        }
        let t = targets("correction_report", &targets_)?;
        let cfg = ValidateConfig { features, sigma, c2st };
        Ok(crate::correct::validate(&original, &corrected, &t, truth.as_ref(), &cfg, &cx.control)?)
    }

    /// The report with the default options. Options as the form with an options map.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let r = correction_report(sim, sim, [target(sim, "x0")]);
    /// assert_eq(r.shift_max, 0.0);
    /// ```
    #[rhai_fn(return_raw, name = "correction_report")]
    pub fn correction_report_default(
        c: NativeCallContext,
        original: Dataset,
        corrected: Dataset,
        targets_: Array,
    ) -> RhaiResult<Report> {
        correction_report(c, original, corrected, targets_, Map::new())
    }

    /// Per target: `feature`, `chi2`, `ndf`, `chi2_p`, `ks_d`, `ks_p`, `chi2_original`.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).features[0].feature, "x0");
    /// ```
    #[rhai_fn(get = "features", pure)]
    pub fn report_features(r: &mut Report) -> Array {
        r.features
            .iter()
            .map(|f| {
                Dynamic::from_map(map([
                    ("feature", f.feature.clone().into()),
                    ("chi2", f.chi2.into()),
                    ("ndf", (f.ndf as i64).into()),
                    ("chi2_p", f.chi2_p.into()),
                    ("ks_d", f.ks_d.into()),
                    ("ks_p", f.ks_p.into()),
                    ("chi2_original", f.chi2_original.into()),
                ]))
            })
            .collect()
    }

    /// Relative Frobenius change of the correlation matrix against the original.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")], #{ features: ["x0", "x1"] }).corr_change, 0.0);
    /// ```
    #[rhai_fn(get = "corr_change", pure)]
    pub fn corr_change(r: &mut Report) -> f64 {
        r.corr_change.0
    }

    /// Largest |Δρ| against the original.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).max_abs_corr_change, 0.0);
    /// ```
    #[rhai_fn(get = "max_abs_corr_change", pure)]
    pub fn max_abs_corr_change(r: &mut Report) -> f64 {
        r.corr_change.1
    }

    /// Relative Frobenius change of the corrected correlation matrix against the truth's
    /// (`()` without a truth).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")], #{ truth: sim }).corr_change_truth, 0.0);
    /// ```
    #[rhai_fn(get = "corr_change_truth", pure)]
    pub fn corr_change_truth(r: &mut Report) -> Dynamic {
        r.corr_change_truth.map_or(Dynamic::UNIT, |c| c.0.into())
    }

    /// The C2ST AUC of corrected against truth (`()` when not run).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).c2st_auc, ());
    /// ```
    #[rhai_fn(get = "c2st_auc", pure)]
    pub fn c2st_auc(r: &mut Report) -> Dynamic {
        r.c2st_auc.map_or(Dynamic::UNIT, Dynamic::from_float)
    }

    /// Mean per-event shift in σ.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).shift_mean, 0.0);
    /// ```
    #[rhai_fn(get = "shift_mean", pure)]
    pub fn shift_mean(r: &mut Report) -> f64 {
        r.shift_summary()[0]
    }

    /// 90 % quantile of the per-event shifts in σ.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).shift_q90, 0.0);
    /// ```
    #[rhai_fn(get = "shift_q90", pure)]
    pub fn shift_q90(r: &mut Report) -> f64 {
        r.shift_summary()[2]
    }

    /// Largest per-event shift in σ.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).shift_max, 0.0);
    /// ```
    #[rhai_fn(get = "shift_max", pure)]
    pub fn shift_max(r: &mut Report) -> f64 {
        r.shift_summary()[4]
    }

    /// The features of the matrices.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")]).names, ["x0"]);
    /// ```
    #[rhai_fn(get = "names", pure)]
    pub fn names(r: &mut Report) -> Array {
        string_array(&r.names)
    }

    /// Corrected minus original correlation matrix (rows of `names`).
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert_eq(correction_report(sim, sim, [target(sim, "x0")], #{ features: ["x0", "x1"] }).corr_delta[0][1], 0.0);
    /// ```
    #[rhai_fn(get = "corr_delta", pure)]
    pub fn corr_delta(r: &mut Report) -> Array {
        let d = &r.corr_corrected - &r.corr_original;
        matrix(d.rows().into_iter().map(|row| row.to_vec()))
    }

    /// The report table as text.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// assert(correction_report(sim, sim, [target(sim, "x0")]).table.contains("chi2"));
    /// ```
    #[rhai_fn(get = "table", pure)]
    pub fn table(r: &mut Report) -> String {
        r.to_string()
    }

    /// The report table.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn report_to_string(r: &mut Report) -> String {
        r.to_string()
    }

    /// The report table.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn report_to_debug(r: &mut Report) -> String {
        r.to_string()
    }

    /// A marginal plot: the target's histogram and each named sample (a map name → Dataset)
    /// normalised on the target's bins, with their ratios to the target below; PNG or SVG by
    /// the extension.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label of the main panel |
    /// | `width` | int | 800 | image width in pixels |
    /// | `height` | int | 600 | image height in pixels |
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let data = dataset("gaussians", #{ n: 300, seed: 2 }).derive("x0", "x0 + 0.5");
    /// plot_marginal("out/doc_marginal.svg", target(data, "x0"),
    ///               #{ simulation: sim, morphed: quantile_morph(sim, [target(data, "x0")]) }, #{ xlabel: "x0" });
    /// ```
    #[rhai_fn(return_raw, name = "plot_marginal")]
    pub fn plot_marginal(
        c: NativeCallContext,
        path: &str,
        target: Target,
        samples: Map,
        options: Map,
    ) -> RhaiResult<()> {
        let mut o = Opts::new("plot_marginal", &options);
        let opts = crate::bindings::plot::helpers::frame_options("plot_marginal", &mut o)?;
        o.finish()?;
        let mut named = Vec::new();
        for (k, v) in samples {
            let ds = v.try_cast::<Dataset>().ok_or_else(|| {
                Error::arg("plot_marginal", format!("sample '{k}' is not a Dataset; give a map of name → Dataset"))
            })?;
            named.push((k.to_string(), ds));
        }
        let s = crate::correct::validate::marginal_series(&target, &named)?;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(crate::plot::plot_ratio(&file, &s, &opts)?)
    }

    /// A marginal plot with the default options.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 });
    /// plot_marginal("out/doc_marginal.png", target(sim, "x1"), #{ simulation: sim });
    /// ```
    #[rhai_fn(return_raw, name = "plot_marginal")]
    pub fn plot_marginal_default(c: NativeCallContext, path: &str, target: Target, samples: Map) -> RhaiResult<()> {
        plot_marginal(c, path, target, samples, Map::new())
    }

    /// A heat map of the correlation change (corrected − original) of a report, ±1 on a
    /// blue–white–red scale; PNG or SVG by the extension.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label |
    /// | `width` | int | 800 | image width in pixels |
    /// | `height` | int | 600 | image height in pixels |
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let m = quantile_morph(sim, [target(sim.derive("x0", "x0 * x0"), "x0")]);
    /// let r = correction_report(sim, m, [target(sim, "x0")], #{ features: ["x0", "x1", "x2"] });
    /// plot_correlation_change("out/doc_corr_change.svg", r, #{ title: "Δρ" });
    /// ```
    #[rhai_fn(return_raw, name = "plot_correlation_change")]
    pub fn plot_correlation_change(c: NativeCallContext, path: &str, r: Report, options: Map) -> RhaiResult<()> {
        let mut o = Opts::new("plot_correlation_change", &options);
        let opts = crate::bindings::plot::helpers::frame_options("plot_correlation_change", &mut o)?;
        o.finish()?;
        let d = &r.corr_corrected - &r.corr_original;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(crate::plot::plot_heatmap(&file, &r.names, &d, &opts)?)
    }

    /// The heat map with the default options.
    ///
    /// ```rhai
    /// let sim = dataset("gaussians", #{ n: 200, seed: 1 });
    /// plot_correlation_change("out/doc_corr_change.png", correction_report(sim, sim, [target(sim, "x0")]));
    /// ```
    #[rhai_fn(return_raw, name = "plot_correlation_change")]
    pub fn plot_correlation_change_default(c: NativeCallContext, path: &str, r: Report) -> RhaiResult<()> {
        plot_correlation_change(c, path, r, Map::new())
    }
}
