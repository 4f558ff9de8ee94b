//! Script functions for models: build, train, evaluate, gradients, save, load, import.
//!
//! Scripts see one type, `model` (a [`SharedModel`]: any [`crate::model::Model`] behind an
//! `Arc`, so copies in scripts share the weights); every function taking a model takes any
//! implementation.

use rhai::plugin::*;

use crate::model::SharedModel;

/// Registers the `model` type and the model functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<SharedModel>("model");
    engine.register_global_module(exported_module!(model_api).into());
}

pub(crate) mod helpers {
    use rhai::{Array, Dynamic, Map};

    use crate::bindings::convert::{check_array, f32_array, f64_array, map};
    use crate::bindings::options::Opts;
    use crate::bindings::{Ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::model::{Activation, Model, Optimizer, Output, Schedule, SharedModel, TrainConfig, TrainResult};

    pub fn activation(o: &mut Opts) -> RhaiResult<Activation> {
        Ok(Activation::parse(&o.string("activation", "relu")?)?)
    }

    pub fn output(o: &mut Opts) -> RhaiResult<Output> {
        Ok(Output::parse(&o.string("output", "sigmoid")?)?)
    }

    pub fn optimizer(o: &mut Opts) -> RhaiResult<Optimizer> {
        let kind = o.choice("optimizer", &["adam", "adamw", "sgd"], "adam")?;
        let lr = o.positive("lr", 1e-3)?;
        let (beta1, beta2, eps) = (o.f64("beta1", 0.9)?, o.f64("beta2", 0.999)?, o.f64("adam_eps", 1e-8)?);
        let weight_decay = o.f64("weight_decay", 1e-2)?;
        let momentum = o.f64("momentum", 0.9)?;
        Ok(match kind {
            "adamw" => Optimizer::AdamW { lr, beta1, beta2, eps, weight_decay },
            "sgd" => Optimizer::Sgd { lr, momentum },
            _ => Optimizer::Adam { lr, beta1, beta2, eps },
        })
    }

    pub fn schedule(o: &mut Opts) -> RhaiResult<Schedule> {
        let kind = o.choice("schedule", &["constant", "step", "cosine"], "constant")?;
        let every = o.usize("step_every", 10)?;
        let gamma = o.f64("gamma", 0.1)?;
        let min_lr = o.f64("min_lr", 0.0)?;
        Ok(match kind {
            "step" => Schedule::Step { every, gamma },
            "cosine" => Schedule::Cosine { min_lr },
            _ => Schedule::Constant,
        })
    }

    /// Largest parameter count a script may ask for (≈ 4 GB of f32 weights).
    pub const MAX_PARAMS: usize = 1_000_000_000;

    /// Layer widths from script numbers: positive integers, with a bounded parameter count.
    pub fn widths(func: &str, v: Vec<f64>) -> RhaiResult<Vec<usize>> {
        let w: Vec<usize> = v
            .into_iter()
            .map(|w| {
                if w >= 1.0 && w.fract() == 0.0 && w <= 1e8 {
                    Ok(w as usize)
                } else {
                    Err(crate::Error::arg(func, format!("layer widths must be positive integers up to 1e8, got {w}")))
                }
            })
            .collect::<Result<_, _>>()?;
        let params: usize =
            w.windows(2).map(|p| p[0].saturating_mul(p[1]).saturating_add(p[1])).fold(0, usize::saturating_add);
        if params > MAX_PARAMS {
            return Err(
                crate::Error::arg(func, format!("{params} parameters is more than the {MAX_PARAMS} allowed")).into()
            );
        }
        Ok(w)
    }

    /// The training options, and the `adversarial` options map if given.
    pub fn train_config(cx: &Ctx, options: &Map) -> RhaiResult<(TrainConfig, Option<Map>)> {
        let mut o = Opts::new("train", options);
        let d = TrainConfig::default();
        let cfg = TrainConfig {
            epochs: o.usize("epochs", d.epochs)?,
            batch_size: o.usize("batch_size", d.batch_size)?,
            optimizer: optimizer(&mut o)?,
            schedule: schedule(&mut o)?,
            class_weights: o.floats_opt("class_weights")?.map(|v| v.into_iter().map(|x| x as f32).collect()),
            use_event_weights: o.bool("event_weights", d.use_event_weights)?,
            validation: o.custom_opt::<Dataset>("validation", "a Dataset")?,
            validation_fraction: o.f64("validation_fraction", f64::from(d.validation_fraction))? as f32,
            patience: o.usize_opt("patience")?,
            standardize: crate::bindings::finetune::standardize(&mut o)?,
            seed: cx.seed_or_next(o.seed()?),
            target: o.string_opt("target")?,
            weight_attack: match o.map_opt("weight_attack")? {
                None => None,
                Some(m) => {
                    let mut wo = Opts::new("train (weight_attack)", &m);
                    let p = crate::bindings::landscape::perturbation(&mut wo)?;
                    wo.finish()?;
                    Some(p)
                }
            },
            freeze: crate::bindings::finetune::groups(&mut o, "freeze")?,
            group_lr: crate::bindings::finetune::group_lr(&mut o)?,
            reinit: crate::bindings::finetune::groups(&mut o, "reinit")?,
            warmup: o.usize("warmup", d.warmup)?,
            l1: o.f64("l1", d.l1)?,
            l1_output: o.bool("l1_output", d.l1_output)?,
        };
        let adversarial = o.map_opt("adversarial")?;
        o.finish()?;
        Ok((cfg, adversarial))
    }

    pub fn train_result(r: TrainResult) -> Map {
        let history: Array = r
            .history
            .iter()
            .map(|e| {
                let opt = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
                Dynamic::from_map(map([
                    ("epoch", (e.epoch as i64).into()),
                    ("loss", e.loss.into()),
                    ("val_loss", opt(e.val_loss)),
                    ("val_auc", opt(e.val_auc)),
                    ("val_accuracy", opt(e.val_accuracy)),
                    ("lr", e.lr.into()),
                ]))
            })
            .collect();
        map([
            ("model", Dynamic::from(SharedModel::from(r.model))),
            ("history", history.into()),
            ("stopped", r.stop.as_str().into()),
            ("best_epoch", r.best_epoch.map_or(Dynamic::UNIT, |b| (b as i64).into())),
        ])
    }

    /// The fused MLP behind a script model, for what only an MLP has (`what`).
    pub fn mlp_of<'a>(m: &'a SharedModel, what: &str) -> RhaiResult<&'a crate::model::Mlp> {
        m.as_mlp().ok_or_else(|| {
            crate::Error::arg(what, format!("only an MLP has {what}; this model is a {}", m.kind())).into()
        })
    }

    /// Scores as a script value: one float per event for single-output models, an array
    /// of per-class probabilities per event otherwise.
    pub fn scores_value(m: &dyn Model, d: &Dataset) -> RhaiResult<Array> {
        m.check_features(d)?;
        // Each event's class probabilities are an array: one element more per event.
        check_array("scores", d.len().saturating_mul(m.n_outputs().max(1) + usize::from(m.n_outputs() > 1)))?;
        let s = m.scores(m.inputs(d)?.view())?;
        Ok(if s.ncols() == 1 {
            f32_array(s.column(0).iter().copied())
        } else {
            s.rows().into_iter().map(|r| Dynamic::from_array(f32_array(r.iter().copied()))).collect()
        })
    }

    /// The ROC curve of a binary model on a labelled dataset.
    pub fn roc(m: &dyn Model, d: &Dataset) -> RhaiResult<Map> {
        let x = m.inputs(d)?;
        let labels = d.label().ok_or_else(|| crate::Error::arg("roc", "the dataset has no label"))?;
        let s = m.scores(x.view())?;
        if s.ncols() != 1 {
            return Err(crate::Error::arg("roc", "needs a single-output (sigmoid) model").into());
        }
        let scores: Vec<f32> = s.column(0).to_vec();
        crate::metrics::check_scores("roc", &scores)?;
        let curve = crate::metrics::roc_curve(&scores, labels, d.weight())?;
        let auc = crate::metrics::auc_of_curve(&curve);
        Ok(map([
            ("fpr", f64_array(curve.iter().map(|p| p.0)).into()),
            ("tpr", f64_array(curve.iter().map(|p| p.1)).into()),
            ("auc", auc.into()),
        ]))
    }
}

#[export_module]
pub mod model_api {
    use super::helpers::*;
    use rhai::{Array, Map};

    use crate::bindings::convert::{check_array, f32_array, f64_array, int_array, map};
    use crate::bindings::options::{floats, strings, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use std::sync::Arc;

    use crate::model::{
        to_flat, Activation, GradTarget, Mlp, MlpConfig, OnnxImport, Output, SharedModel, Targets, TorchImport,
    };

    /// Builds a fully connected network with the given layer widths (inputs first).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `activation` | string | "relu" | relu, tanh, gelu, silu, leaky_relu |
    /// | `output` | string | "sigmoid" | sigmoid (binary, last width 1), softmax (classes), linear (regression) |
    /// | `dropout` | float | 0 | dropout after each hidden layer, training only |
    /// | `seed` | int | from the session seed | weight initialisation |
    /// | `features` | array of strings | set at training | input feature names |
    ///
    /// ```rhai
    /// let m = mlp([20, 64, 64, 64, 1], #{ activation: "relu", seed: 1 });
    /// assert_eq(m.n_params, 9729);
    /// assert_eq(m.layer_shapes[0], [64, 20]);
    /// ```
    #[rhai_fn(return_raw, name = "mlp")]
    pub fn mlp_opts(c: NativeCallContext, layers: Array, options: Map) -> RhaiResult<SharedModel> {
        let mut o = Opts::new("mlp", &options);
        let cfg = MlpConfig {
            activation: activation(&mut o)?,
            output: output(&mut o)?,
            dropout: o.f64("dropout", 0.0)? as f32,
            seed: ctx(&c)?.seed_or_next(o.seed()?),
            feature_names: o.strings_opt("features")?,
        };
        o.finish()?;
        let widths: Vec<usize> = floats("mlp", "layers", &layers)?
            .into_iter()
            .map(|w| {
                crate::limits::check_f64("mlp", "layer width", w, crate::limits::LAYER_WIDTH)?;
                if w >= 1.0 && w.fract() == 0.0 {
                    Ok(w as usize)
                } else {
                    Err(Error::arg("mlp", format!("layer widths must be positive integers, got {w}")))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Mlp::new(&widths, cfg)?))
    }

    /// Builds a ReLU network with a sigmoid output.
    ///
    /// ```rhai
    /// let m = mlp([4, 8, 1]);
    /// assert_eq(m.layers, [4, 8, 1]);
    /// ```
    #[rhai_fn(return_raw, name = "mlp")]
    pub fn mlp(c: NativeCallContext, layers: Array) -> RhaiResult<SharedModel> {
        mlp_opts(c, layers, Map::new())
    }

    /// Trains a copy of the model; returns `#{ model, history, stopped, best_epoch }` where
    /// `history` holds one map per epoch (`epoch, loss, val_loss, val_auc, val_accuracy, lr`).
    /// The feature standardization is stored in the model: fitted on the training data for a
    /// new model, kept when fine-tuning a trained or loaded one (`standardize`).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `epochs` | int | 10 | passes over the data |
    /// | `batch_size` | int | 256 | events per step |
    /// | `optimizer` | string | "adam" | adam, adamw, sgd |
    /// | `lr` | float | 1e-3 | learning rate |
    /// | `beta1` | float | 0.9 | Adam β₁ |
    /// | `beta2` | float | 0.999 | Adam β₂ |
    /// | `adam_eps` | float | 1e-8 | Adam ε (old name `eps`, deprecated) |
    /// | `weight_decay` | float | 0.01 | AdamW decoupled weight decay |
    /// | `momentum` | float | 0.9 | SGD momentum |
    /// | `schedule` | string | "constant" | constant, step, cosine |
    /// | `step_every` | int | 10 | step schedule: epochs between decays |
    /// | `gamma` | float | 0.1 | step schedule: decay factor |
    /// | `min_lr` | float | 0 | cosine schedule: final rate |
    /// | `class_weights` | array | none | one weight per class |
    /// | `event_weights` | bool | true | use the dataset's event weights |
    /// | `validation` | Dataset | none | validation set |
    /// | `validation_fraction` | float | 0 | hold out this fraction instead |
    /// | `patience` | int | none | early stopping on the validation loss (best weights kept) |
    /// | `standardize` | string or bool | "auto" | the input standardization: "auto" fits it on the training data when the model has none (a new model) and keeps a fitted one (fine-tuning a trained or loaded model); "keep" (or false) never fits; "refit" (or true) always fits it on the training data |
    /// | `seed` | int | from the session seed | shuffling and dropout |
    /// | `target` | string | the label | regression: a column to fit with a linear output (removed from the inputs) |
    /// | `weight_attack` | map | none | sharpness-aware training: `#{ method: "sam"/"asam"/"awp"/"rwp", rho, gamma, eta }` as for `weight_attack` — each step's gradient is taken at the perturbed weights |
    /// | `adversarial` | map | none | adversarial training, see below |
    /// | `freeze` | array | none | parameter groups left unchanged, bit for bit: names from `model.param_groups` (`layer0`, … for an MLP, `phi.0`, …, `f.0`, … for a PFN) or indices (−1 the output layer) |
    /// | `group_lr` | map | none | a learning rate per group, `#{ layer0: 1e-5, "-1": 1e-3 }` (name, or index as a string); scaled by the schedule and warm-up like `lr`; 0 leaves the group unchanged |
    /// | `reinit` | array | none | groups re-drawn as a new layer (from `seed`) before training: a new head, `reinit: [-1]` |
    /// | `warmup` | int | 0 | linear warm-up: epoch e < warmup runs at (e+1)/(warmup+1) of the scheduled rate |
    /// | `l1` | float | 0 | L1 penalty λ·Σ\|W\| of the weight matrices (not the biases) added to each minibatch's loss, as Keras' `kernel_regularizer=L1(λ)` (MLPs; the reported losses and early stopping include it) |
    /// | `l1_output` | bool | true | the L1 penalty also covers the output layer |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let r = train(mlp([20, 16, 1], #{ seed: 1 }), d, #{ epochs: 3, seed: 2 });
    /// assert_eq(r.history.len(), 3);
    /// assert(r.history[2].loss < r.history[0].loss);
    /// ```
    ///
    /// **Adversarial training** (`adversarial: #{ attack, ratio, warmup, every, eval_events }`):
    /// each epoch (`every: "epoch"`, default) or each minibatch (`"batch"`) a random fraction
    /// `ratio` (0.5) of the events is replaced by adversarial versions made against the
    /// current weights, after `warmup` (1) clean epochs. `attack` is a map naming the method
    /// and its options as for that function — `#{ method: "rdsa", k: 3 }` (marginals from the
    /// training events), `#{ method: "fgsm" | "pgd", uncertainty: u, eps: 0.1, steps: 10 }`
    /// (ascending the loss of the true label), `#{ method: "minifool", uncertainty: u }` — or
    /// a function `|model, events| ...` returning the adversarial events (a Dataset or an
    /// attack result). Every history entry gains `clean_accuracy`, `adv_accuracy` (the same
    /// attack on the evaluation events), `mixed_accuracy` (both sets together) and
    /// `adversarial_events`; the evaluation events are the validation set, else at most
    /// `eval_events` (10,000) training events.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 2000, seed: 1 });
    /// let u = uncertainty(d, #{ preset: "collider" });
    /// let pgd_attack = #{ method: "pgd", uncertainty: u, eps: 2.0, steps: 5 };
    /// let r = train(mlp([11, 16, 1]), d, #{ epochs: 3, seed: 2, adversarial: #{ attack: pgd_attack } });
    /// assert(r.history[2].adv_accuracy < r.history[2].clean_accuracy);
    /// assert_eq(r.history[0].adversarial_events, 0);      // the warm-up epoch
    /// let mine = |m, events| rdsa(m, events, #{ steps: 10, reference: d });
    /// let s = train(mlp([11, 16, 1]), d, #{ epochs: 2, adversarial: #{ attack: mine, every: "batch", ratio: 0.25 } });
    /// assert_eq(s.history[1].adversarial_events, 500);  // ¼ of every batch of 256
    /// ```
    #[rhai_fn(return_raw, name = "train")]
    pub fn train_opts(c: NativeCallContext, model: SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let (cfg, adversarial) = train_config(&cx, &options)?;
        if let Some(adv) = adversarial {
            return crate::bindings::adversarial::train(&c, &cx, &*model, &data, &cfg, &adv);
        }
        let r = crate::model::train(&*model, &data, &cfg, &cx.control)?;
        Ok(train_result(r))
    }

    /// Trains with the default options (10 epochs of Adam, lr 1e-3, batch 256).
    ///
    /// ```rhai
    /// let r = train(mlp([20, 8, 1]), dataset("gaussians", #{ n: 500, seed: 1 }));
    /// assert_eq(r.stopped, "max_iters");
    /// ```
    #[rhai_fn(return_raw, name = "train")]
    pub fn train(c: NativeCallContext, model: SharedModel, data: Dataset) -> RhaiResult<Map> {
        train_opts(c, model, data, Map::new())
    }

    /// Scores per event: the sigmoid probability of class 1, the softmax probabilities (an
    /// array per event), or the linear outputs.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 10, seed: 1 });
    /// let s = mlp([20, 4, 1], #{ features: d.features }).scores(d);
    /// assert_eq(s.len(), 10);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn scores(m: &mut SharedModel, data: Dataset) -> RhaiResult<Array> {
        scores_value(&**m, &data)
    }

    /// Predicted class per event (threshold 0.5 for sigmoid, arg-max for softmax).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 10, seed: 1 });
    /// let p = mlp([20, 4, 1], #{ features: d.features }).predict(d);
    /// assert(p.all(|c| c == 0 || c == 1));
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn predict(m: &mut SharedModel, data: Dataset) -> RhaiResult<Array> {
        let x = m.inputs(&data)?;
        check_array("predict", data.len())?;
        Ok(int_array(m.predict_class(x.view())?))
    }

    /// Loss, ROC AUC (binary) and accuracy on a labelled dataset, weighted by the event
    /// weights: `#{ n, loss, auc, accuracy }`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3000, seed: 1 });
    /// let m = train(mlp([20, 16, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let e = m.evaluate(dataset("gaussians", #{ n: 2000, seed: 2 }));
    /// assert(e.auc > 0.7);
    /// ```
    #[rhai_fn(return_raw, pure, name = "evaluate")]
    pub fn evaluate(m: &mut SharedModel, data: Dataset) -> RhaiResult<Map> {
        let e = m.evaluate(&data, true)?;
        let opt = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
        Ok(map([
            ("n", (e.n as i64).into()),
            ("loss", e.loss.into()),
            ("auc", opt(e.auc)),
            ("accuracy", opt(e.accuracy)),
        ]))
    }

    /// Evaluates a regression model against a target column (as trained with
    /// `#{ target: … }`): `#{ n, mse, rmse, bias, resolution }` where bias is the weighted mean
    /// and resolution the weighted standard deviation of (prediction − target).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `target` | string | required | the target column |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 10000, seed: 1 }).derive("y", "2 * x0 - x1");
    /// let m = train(mlp([20, 16, 1], #{ output: "linear", seed: 1 }), d, #{ target: "y", epochs: 10, seed: 1 }).model;
    /// let e = m.evaluate(d, #{ target: "y" });
    /// assert(e.resolution < 0.5); // std of y is √3 ≈ 1.73 before fitting
    /// ```
    #[rhai_fn(return_raw, pure, name = "evaluate")]
    pub fn evaluate_target(m: &mut SharedModel, data: Dataset, options: Map) -> RhaiResult<Map> {
        let mut o = Opts::new("evaluate", &options);
        let target = o.string_opt("target")?;
        o.finish()?;
        let Some(target) = target else { return evaluate(m, data) };
        let truth: Vec<f32> = data.column(&target)?.to_vec();
        let inputs = data.drop_columns(std::slice::from_ref(&target))?;
        let pred = m.scores(m.inputs(&inputs)?.view())?;
        crate::metrics::check_output_rows("evaluate", pred.view())?;
        if pred.ncols() != 1 {
            return Err(Error::arg("evaluate", "a regression target needs a model with one output").into());
        }
        let r = crate::metrics::regression("evaluate", &pred.column(0).to_vec(), &truth, &inputs.weights_or_ones())?;
        Ok(map([
            ("n", (r.n as i64).into()),
            ("mse", r.mse.into()),
            ("rmse", r.rmse.into()),
            ("bias", r.bias.into()),
            ("resolution", r.resolution.into()),
        ]))
    }

    /// The ROC curve of a binary model: `#{ fpr, tpr, auc }` (plot it with `plot_lines`).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let r = mlp([20, 4, 1], #{ features: d.features, seed: 1 }).roc(d);
    /// assert_eq(r.fpr.len(), r.tpr.len());
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn roc(m: &mut SharedModel, data: Dataset) -> RhaiResult<Map> {
        super::helpers::roc(&**m, &data)
    }

    /// ∂objective/∂x per event, in physical units, as a Dataset with the same feature names.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `objective` | string | "loss" | what is differentiated: loss (per-event loss w.r.t. the label), score, or logit (old name `target`, deprecated) |
    /// | `class` | int | 1 | the class whose score or logit is differentiated |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 5, seed: 1 });
    /// let g = mlp([20, 4, 1], #{ features: d.features, seed: 1 }).input_grad(d, #{ objective: "score" });
    /// assert_eq(g.len, 5);
    /// assert_eq(g.features, d.features);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn input_grad(m: &mut SharedModel, data: Dataset, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("input_grad", &options);
        let target = o.choice("objective", &["loss", "score", "logit"], "loss")?;
        let class = o.usize("class", 1)?;
        o.finish()?;
        let x = m.inputs(&data)?;
        let t = match target {
            "score" => GradTarget::Score { class },
            "logit" => GradTarget::Logit { class },
            _ => {
                let l = data
                    .label()
                    .ok_or_else(|| Error::arg("input_grad", "objective 'loss' needs a labelled dataset"))?;
                let g = m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(l)))?.grad;
                return Ok(Dataset::new(m.input_names(), g, None, None)?);
            }
        };
        Ok(Dataset::new(m.input_names(), m.input_grad_and_scores(x.view(), t)?.grad, None, None)?)
    }

    /// ∂loss/∂x per event (the default options). Options as the form with an options map.
    #[rhai_fn(return_raw, pure, name = "input_grad")]
    pub fn input_grad_default(m: &mut SharedModel, data: Dataset) -> RhaiResult<Dataset> {
        input_grad(m, data, Map::new())
    }

    /// Mean training loss and its gradient with respect to every weight: `#{ loss, grad,
    /// layers }` — `grad` flat in the model's flat order (PyTorch order for an MLP), `layers`
    /// the same numbers per parameter group: `#{ weight, bias }` per layer of an MLP (weight
    /// flattened out × in, row-major), `#{ name, grad }` per group of other models.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 50, seed: 1 });
    /// let m = mlp([20, 4, 1], #{ features: d.features, seed: 1 });
    /// let g = m.weight_grad(d);
    /// assert_eq(g.grad.len(), m.n_params);
    /// assert_eq(g.layers[0].weight.len(), 80);
    /// assert_eq(g.layers[1].bias.len(), 1);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn weight_grad(m: &mut SharedModel, data: Dataset) -> RhaiResult<Map> {
        let x = m.inputs(&data)?;
        let l = data.label().ok_or_else(|| Error::arg("weight_grad", "needs a labelled dataset"))?;
        // `grad` and `layers` each hold every parameter once.
        check_array("weight_grad", m.n_params().saturating_mul(2))?;
        let (loss, grad) = m.weight_grad(x.view(), Targets::Labels(l), data.weight())?;
        let grad = to_flat(m.flat_order().as_deref(), &grad);
        let layers: Array = match m.as_mlp() {
            Some(mlp) => mlp
                .split_layers(&grad)?
                .into_iter()
                .map(|(w, b)| {
                    Dynamic::from_map(map([
                        ("weight", f32_array(w.iter().copied()).into()),
                        ("bias", f32_array(b.iter().copied()).into()),
                    ]))
                })
                .collect(),
            None => m
                .param_groups()
                .into_iter()
                .map(|g| {
                    Dynamic::from_map(map([
                        ("name", g.name.into()),
                        ("grad", f32_array(grad[g.range].iter().copied()).into()),
                    ]))
                })
                .collect(),
        };
        Ok(map([("loss", loss.into()), ("grad", f32_array(grad).into()), ("layers", layers.into())]))
    }

    /// Number of trainable parameters.
    #[rhai_fn(get = "n_params", pure)]
    pub fn n_params(m: &mut SharedModel) -> i64 {
        m.n_params() as i64
    }

    /// Number of input columns the model reads per event (`features.len()` for an MLP; for a
    /// set model the event features, the object count and the padded object slots).
    ///
    /// ```rhai
    /// assert_eq(mlp([3, 2, 1]).n_inputs, 3);
    /// ```
    #[rhai_fn(get = "n_inputs", pure)]
    pub fn n_inputs(m: &mut SharedModel) -> i64 {
        m.n_inputs() as i64
    }

    /// The model's input matrix of a dataset as a Dataset: one column per input (for an MLP
    /// its features; for a set model the event features, the object count `coll.n`, then
    /// `coll[s].feature` per slot, padded slots 0), the dataset's label and weight kept.
    /// Gradients (`input_grad`) have the same columns.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[5.0, 2.0, 1.0], []] });
    /// let x = pfn("part", ["pt"], #{ max_objects: 2 }).inputs(d);
    /// assert_eq(x.features, ["part.n", "part[0].pt", "part[1].pt"]);
    /// assert_eq(x["part.n"], [2.0, 0.0]);   // the third object is beyond max_objects
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn inputs(m: &mut SharedModel, data: Dataset) -> RhaiResult<Dataset> {
        let x = m.inputs(&data)?;
        Ok(Dataset::new(m.input_names(), x, data.label().map(<[i64]>::to_vec), data.weight().map(<[f32]>::to_vec))?)
    }

    /// The implementation: `mlp` (the fused network of `mlp(…)`), `candle_mlp`, ….
    ///
    /// ```rhai
    /// let m = mlp([2, 3, 1]);
    /// assert_eq(m.kind, "mlp");
    /// assert_eq(type_of(m), "model");   // one script type for every implementation
    /// ```
    #[rhai_fn(get = "kind", pure)]
    pub fn kind(m: &mut SharedModel) -> String {
        m.kind().to_string()
    }

    /// The named parameter groups, in flat order: `#{ name, start, end }` each (indices into
    /// `params()`, end exclusive); one per layer (`layer0`, `layer1`, …) for an MLP. Training
    /// can freeze groups by name (`train`'s `freeze` option).
    ///
    /// ```rhai
    /// let m = mlp([20, 3, 1], #{ seed: 1 });
    /// let g = m.param_groups;
    /// assert_eq(g[1].name, "layer1");
    /// assert_eq([g[1].start, g[1].end], [63, 67]);   // 20·3 + 3, then 3·1 + 1
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let t = train(m, d, #{ epochs: 1, seed: 2, freeze: ["layer0"] }).model;
    /// assert_eq(t.params().extract(0, 63), m.params().extract(0, 63));   // frozen
    /// assert(t.params().extract(63) != m.params().extract(63));
    /// ```
    #[rhai_fn(get = "param_groups", pure)]
    pub fn param_groups(m: &mut SharedModel) -> Array {
        m.param_groups()
            .into_iter()
            .map(|g| {
                Dynamic::from_map(map([
                    ("name", g.name.into()),
                    ("start", (g.range.start as i64).into()),
                    ("end", (g.range.end as i64).into()),
                ]))
            })
            .collect()
    }

    /// Layer widths, inputs first (MLPs only).
    #[rhai_fn(get = "layers", pure, return_raw)]
    pub fn layers(m: &mut SharedModel) -> RhaiResult<Array> {
        Ok(int_array(mlp_of(m, "layers")?.layers().iter().map(|&w| w as i64)))
    }

    /// Per-layer weight shapes `[out, in]` (MLPs only).
    #[rhai_fn(get = "layer_shapes", pure, return_raw)]
    pub fn layer_shapes(m: &mut SharedModel) -> RhaiResult<Array> {
        let shapes = mlp_of(m, "layer_shapes")?.layer_shapes();
        Ok(shapes.into_iter().map(|(o, i)| Dynamic::from_array(int_array([o as i64, i as i64]))).collect())
    }

    /// Input feature names (empty until set or trained).
    #[rhai_fn(get = "features", pure)]
    pub fn model_features(m: &mut SharedModel) -> Array {
        crate::bindings::convert::string_array(m.feature_names().unwrap_or_default())
    }

    /// All parameters as one flat array (PyTorch order: per layer, weight out×in then bias).
    ///
    /// ```rhai
    /// let m = mlp([2, 3, 1], #{ seed: 1 });
    /// assert_eq(m.params().len(), 13); // 2·3 + 3 + 3·1 + 1
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn params(m: &mut SharedModel) -> RhaiResult<Array> {
        check_array("params", m.n_params())?;
        Ok(f32_array(m.params_flat()))
    }

    /// A copy of the model with the given flat parameter array.
    ///
    /// ```rhai
    /// let m = mlp([2, 3, 1], #{ seed: 1 });
    /// let z = m.with_params(m.params().map(|p| 0.0));
    /// assert(z.params().all(|p| p == 0.0));
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn with_params(m: &mut SharedModel, params: Array) -> RhaiResult<SharedModel> {
        let p: Vec<f32> = floats("with_params", "params", &params)?.into_iter().map(|x| x as f32).collect();
        let mut out = m.box_clone();
        out.set_params_flat(&p)?;
        Ok(SharedModel::from(out))
    }

    /// Saves the model (weights, architecture, feature names and standardization) as
    /// safetensors, atomically.
    ///
    /// ```rhai
    /// let m = mlp([3, 4, 1], #{ seed: 1, features: ["a", "b", "c"] });
    /// m.save("out/doc_model.safetensors");
    /// assert_eq(load_model("out/doc_model.safetensors").params(), m.params());
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn save(c: NativeCallContext, m: &mut SharedModel, path: &str) -> RhaiResult<()> {
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(m.save(&file)?)
    }

    /// Loads a model saved by `save`, as the implementation it was saved from (its `kind`).
    ///
    /// ```rhai
    /// mlp([2, 2, 1], #{ seed: 3 }).save("out/doc_load.safetensors");
    /// assert_eq(load_model("out/doc_load.safetensors").n_params, 9);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_model(c: NativeCallContext, path: &str) -> RhaiResult<SharedModel> {
        let file = ctx(&c)?.sandbox.check_read(path)?;
        Ok(SharedModel::from(crate::model::load_model(&file)?))
    }

    /// Imports a PyTorch `nn.Sequential` MLP whose `state_dict` was saved with safetensors
    /// (tensor names like `net.0.weight`, `net.0.bias`, …).
    ///
    /// Every tensor must belong to a Linear weight/bias pair; a file with normalisation
    /// layers, convolutions or anything else is refused with the names of those tensors.
    /// PyTorch does not store the hidden activation, so `activation` is required (a file
    /// written by nuisance's `save` records it). Without `mean`/`std` the model sees the
    /// inputs as they are, and a warning is printed unless `raw_inputs: true`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `layers` | array | from the weight shapes | expected widths |
    /// | `activation` | string | required (from the file if nuisance wrote it) | hidden activation |
    /// | `output` | string | "sigmoid" | output layer |
    /// | `tensors` | array of [weight, bias] names | every `*.weight` in order | tensor names per layer |
    /// | `features` | array of strings | none | input feature names |
    /// | `mean` | array | zeros | input standardization mean used in training |
    /// | `std` | array | ones | input standardization scale |
    /// | `raw_inputs` | bool | false | the model was trained on unstandardized inputs (no warning) |
    ///
    /// ```rhai
    /// // trained by PyTorch on inputs that were already standardized
    /// let m = import_torch("tests/data/reference_mlp.safetensors",
    ///                      #{ layers: [20, 64, 64, 64, 1], activation: "relu", raw_inputs: true });
    /// assert_eq(m.n_params, 9729);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn import_torch(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<SharedModel> {
        let mut o = Opts::new("import_torch", &options);
        let layers = match o.floats_opt("layers")? {
            None => None,
            Some(v) => Some(widths("import_torch", v)?),
        };
        let activation = match o.string_opt("activation")? {
            None => None,
            Some(a) => Some(Activation::parse(&a)?),
        };
        let output = match o.string_opt("output")? {
            None => None,
            Some(s) => Some(Output::parse(&s)?),
        };
        let tensors = match o.raw("tensors") {
            None => None,
            Some(v) => {
                let outer = v.try_cast::<Array>().ok_or_else(|| {
                    Error::arg("import_torch", "tensors must be an array of [weight, bias] name pairs")
                })?;
                let pairs = outer
                    .iter()
                    .map(|p| {
                        let a = p
                            .clone()
                            .try_cast::<Array>()
                            .ok_or_else(|| Error::arg("import_torch", "each tensors entry must be [weight, bias]"))?;
                        let s = strings("import_torch", "tensors entry", &a)?;
                        match s.as_slice() {
                            [w, b] => Ok((w.clone(), b.clone())),
                            _ => Err(Error::arg("import_torch", "each tensors entry must be [weight, bias]")),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(pairs)
            }
        };
        let to32 = |v: Option<Vec<f64>>| v.map(|v| v.into_iter().map(|x| x as f32).collect());
        let spec = TorchImport {
            layers,
            activation,
            output,
            tensor_names: tensors,
            feature_names: o.strings_opt("features")?,
            mean: to32(o.floats_opt("mean")?),
            std: to32(o.floats_opt("std")?),
            raw_inputs: o.bool("raw_inputs", false)?,
        };
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_read(path)?;
        let (m, warnings) = crate::model::import_torch_with_warnings(&file, &spec)?;
        for w in warnings {
            crate::bindings::warn(&w);
        }
        Ok(Arc::new(m))
    }

    /// Imports a PyTorch MLP with the default options (the file must record its activation, as nuisance's `save` does). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "import_torch")]
    pub fn import_torch_default(c: NativeCallContext, path: &str) -> RhaiResult<SharedModel> {
        import_torch(c, path, Map::new())
    }

    /// Imports a dense MLP from an ONNX file (e.g. `torch.onnx.export` of an `nn.Sequential`
    /// of `Linear` and activation layers) into a native classifier: the weights are read once,
    /// and attacks run on the fused native path.
    ///
    /// Accepted: `Gemm`, or `MatMul` + `Add`; one hidden activation (`Relu`, `Tanh`, `Gelu`,
    /// `LeakyRelu` with slope 0.01, `Sigmoid`·`Mul` = SiLU); optionally `Sigmoid` or `Softmax`
    /// at the end. Any other op, a branch or external weights is an error naming the node.
    /// Needs nuisance built with the `onnx` cargo feature (`cargo build --release --features
    /// onnx`, which needs `protoc`); other builds raise an error of kind `feature_missing`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `layers` | array | from the graph | expected widths |
    /// | `output` | string | from the graph's last op; else sigmoid (1 output) or softmax | output layer |
    /// | `features` | array of strings | none | input feature names |
    /// | `mean` | array | zeros | input standardization mean used in training |
    /// | `std` | array | ones | input standardization scale |
    ///
    /// ```rhai
    /// // Built without `--features onnx`, the call raises a `feature_missing` error instead.
    /// try {
    ///     let m = import_onnx("tests/data/reference_mlp.onnx", #{ layers: [20, 64, 64, 64, 1] });
    ///     assert_eq(m.n_params, 9729);
    ///     print(m);   // Mlp(20→64→64→64→1, relu, sigmoid, 9729 params)
    /// } catch (e) {
    ///     assert_eq(e.kind, "feature_missing");
    /// }
    /// ```
    #[rhai_fn(return_raw, name = "import_onnx")]
    pub fn import_onnx_opts(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<SharedModel> {
        let mut o = Opts::new("import_onnx", &options);
        let layers = match o.floats_opt("layers")? {
            None => None,
            Some(v) => Some(widths("import_onnx", v)?),
        };
        let output = match o.string_opt("output")? {
            None => None,
            Some(s) => Some(Output::parse(&s)?),
        };
        let to32 = |v: Option<Vec<f64>>| v.map(|v| v.into_iter().map(|x| x as f32).collect());
        let spec = OnnxImport {
            layers,
            output,
            feature_names: o.strings_opt("features")?,
            mean: to32(o.floats_opt("mean")?),
            std: to32(o.floats_opt("std")?),
        };
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_read(path)?;
        Ok(Arc::new(crate::model::import_onnx(&file, &spec)?))
    }

    /// Imports a dense MLP from an ONNX file with the default options (see the form with options).
    ///
    /// ```rhai
    /// try {
    ///     assert_eq(import_onnx("tests/data/reference_mlp.onnx").layers, [20, 64, 64, 64, 1]);
    /// } catch (e) {
    ///     assert_eq(e.kind, "feature_missing");   // a build without `--features onnx`
    /// }
    /// ```
    #[rhai_fn(return_raw, name = "import_onnx")]
    pub fn import_onnx(c: NativeCallContext, path: &str) -> RhaiResult<SharedModel> {
        import_onnx_opts(c, path, Map::new())
    }

    /// The model's one-line summary: `Mlp(20→64→1, relu, sigmoid, 1409 params)`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(m: &mut SharedModel) -> String {
        m.describe()
    }

    /// The model's summary (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(m: &mut SharedModel) -> String {
        to_string(m)
    }

    /// Per-class ROC-style helper for multi-class models is `evaluate`; this returns the
    /// confusion matrix `[true][predicted]` (weighted counts).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// let cm = mlp([20, 4, 1], #{ features: d.features, seed: 1 }).confusion(d);
    /// assert_eq(cm.len(), 2);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn confusion(m: &mut SharedModel, data: Dataset) -> RhaiResult<Array> {
        let x = m.inputs(&data)?;
        let labels = data.label().ok_or_else(|| Error::arg("confusion", "the dataset has no label"))?;
        let z = m.logits(x.view())?;
        crate::metrics::check_output_rows("confusion", z.view())?;
        let pred = m.classes_from_logits(&z);
        let k = m.n_outputs().max(2);
        crate::memory::check(crate::memory::bytes(k.saturating_mul(k), 8), &format!("confusion: a {k} × {k} matrix"))?;
        let cm = crate::metrics::confusion("confusion", labels, &pred, &data.weights_or_ones(), k)?;
        Ok(cm.into_iter().map(|r| Dynamic::from_array(f64_array(r))).collect())
    }
}
