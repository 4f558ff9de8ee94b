//! Script functions for set models (the Particle Flow Network): build, train, evaluate,
//! scores, gradients, save, load, import. Training, evaluation and scores are overloads of the
//! classifier functions of the same names (`train`, `evaluate`, `scores`, …) on a `Pfn`.

use rhai::plugin::*;

use crate::model::Pfn;

/// Registers the `Pfn` type and its functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Pfn>("Pfn");
    engine.register_global_module(exported_module!(pfn_api).into());
}

mod helpers {
    use rhai::Array;

    use crate::bindings::options::{floats, Opts};
    use crate::bindings::RhaiResult;
    use crate::error::Error;
    use crate::model::{Pooling, SetLayout};

    /// Layer widths from a script array: positive integers within the width limit.
    pub fn widths(func: &str, key: &str, a: &Array) -> RhaiResult<Vec<usize>> {
        Ok(floats(func, key, a)?
            .into_iter()
            .map(|w| {
                crate::limits::check_f64(func, "layer width", w, crate::limits::LAYER_WIDTH)?;
                if w >= 1.0 && w.fract() == 0.0 {
                    Ok(w as usize)
                } else {
                    Err(Error::arg(func, format!("{key} widths must be positive integers, got {w}")))
                }
            })
            .collect::<Result<_, _>>()?)
    }

    /// The layout from the positional collection and object features and the
    /// `event_features` / `max_objects` options.
    pub fn layout(o: &mut Opts, collection: &str, features: Vec<String>) -> RhaiResult<SetLayout> {
        let event = o.strings_opt("event_features")?.unwrap_or_default();
        let max = o.usize("max_objects", 128)?;
        Ok(SetLayout::new(event, collection, features, max)?)
    }

    pub fn pooling(o: &mut Opts) -> RhaiResult<Pooling> {
        Ok(Pooling::parse(o.choice("pooling", &["sum", "mean"], "sum")?)?)
    }
}

#[export_module]
pub mod pfn_api {
    use super::helpers::*;
    use rhai::{Array, Map};

    use crate::bindings::convert::{check_array, f32_array, int_array, map, string_array};
    use crate::bindings::model::helpers::{activation, output, train_config};
    use crate::bindings::options::{floats, strings, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::{Activation, GradTarget, Output, Pfn, PfnConfig, PfnImport, Targets};

    /// Builds a Particle Flow Network (Deep Sets): a per-object network Φ applied to every
    /// object of `collection` (its `features`, in this order), a masked sum (or mean) over the
    /// objects of each event, and a network F on the pooled vector plus optional flat event
    /// features. Φ's every layer and F's hidden layers use `activation`; F's last layer gives
    /// the output. Inputs are in physical units; `train` fits and stores the standardization.
    ///
    /// The model sees the leading `max_objects` objects of each event in stored order; the
    /// rest are dropped from its view, so sort the collection first (`sort_objects`).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `phi` | array | [100, 100, 128] | Φ's layer widths; the last is the latent size |
    /// | `f` | array | [100, 100, 100] | F's hidden widths |
    /// | `pooling` | string | "sum" | sum or mean over the objects of an event |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `event_features` | array of strings | none | flat event columns fed to F with the pooled vector |
    /// | `activation` | string | "relu" | relu, tanh, gelu, silu, leaky_relu |
    /// | `output` | string | "sigmoid" | sigmoid (binary), softmax (classes), linear |
    /// | `outputs` | int | 1 | number of outputs (classes for softmax) |
    /// | `seed` | int | from the session seed | weight initialisation |
    ///
    /// ```rhai
    /// let m = pfn("part", ["logpt", "deta", "dphi", "charge"], #{ max_objects: 100, seed: 1 });
    /// assert_eq(m.phi, [4, 100, 100, 128]);
    /// assert_eq(m.f, [128, 100, 100, 100, 1]);
    /// assert_eq(m.n_inputs, 1 + 100 * 4);   // the count, then 100 slots of 4 features
    /// print(m);   // Pfn(Φ 4→100→100→128, sum, F 128→100→100→100→1, relu, sigmoid, 56729 params)
    /// ```
    #[rhai_fn(return_raw, name = "pfn")]
    pub fn pfn_opts(c: NativeCallContext, collection: &str, features: Array, options: Map) -> RhaiResult<Pfn> {
        let mut o = Opts::new("pfn", &options);
        let feats = strings("pfn", "features", &features)?;
        let layout = layout(&mut o, collection, feats)?;
        let d = PfnConfig::default();
        let phi = match o.raw("phi") {
            Some(v) => {
                widths("pfn", "phi", &v.try_cast::<Array>().ok_or_else(|| Error::arg("pfn", "phi must be an array"))?)?
            }
            None => d.phi,
        };
        let f = match o.raw("f") {
            Some(v) => {
                widths("pfn", "f", &v.try_cast::<Array>().ok_or_else(|| Error::arg("pfn", "f must be an array"))?)?
            }
            None => d.f,
        };
        let cfg = PfnConfig {
            phi,
            f,
            pooling: pooling(&mut o)?,
            activation: activation(&mut o)?,
            output: output(&mut o)?,
            n_outputs: o.usize("outputs", 1)?,
            seed: ctx(&c)?.seed_or_next(o.seed()?),
        };
        o.finish()?;
        Ok(Pfn::new(layout, &cfg)?)
    }

    /// Builds a PFN with the default options (energyflow's sizes, sum pooling, ReLU, sigmoid,
    /// 128 object slots, no event features).
    ///
    /// ```rhai
    /// assert_eq(pfn("part", ["pt", "eta"]).n_inputs, 1 + 128 * 2);
    /// ```
    #[rhai_fn(return_raw, name = "pfn")]
    pub fn pfn(c: NativeCallContext, collection: &str, features: Array) -> RhaiResult<Pfn> {
        pfn_opts(c, collection, features, Map::new())
    }

    /// Trains a copy of a PFN: the options of `train` for classifiers (epochs, batch size,
    /// optimizer, schedule, class and event weights, validation, early stopping, standardize,
    /// seed) except `target`, `weight_attack` and `adversarial`. Returns `#{ model, history,
    /// stopped, best_epoch }` as for classifiers.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 300, seed: 1 });
    /// let x0 = d["x0"];
    /// let x1 = d["x1"];
    /// let a = []; let b = [];
    /// for i in 0..d.len { a.push([x0[i], x1[i]]); b.push([0.5, -0.5]); }
    /// let jets = d.with_objects("part", #{ a: a, b: b });
    /// let m = pfn("part", ["a", "b"], #{ phi: [8, 8], f: [8], max_objects: 2, seed: 1 });
    /// let r = train(m, jets, #{ epochs: 3, seed: 2 });
    /// assert_eq(r.history.len(), 3);
    /// assert(r.history[2].loss < r.history[0].loss);
    /// ```
    #[rhai_fn(return_raw, name = "train")]
    pub fn train_opts(c: NativeCallContext, model: Pfn, data: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let (cfg, adversarial) = train_config(&cx, &options)?;
        if adversarial.is_some() {
            return Err(Error::BadOption {
                func: "train".into(),
                key: "adversarial".into(),
                problem: "is not supported for a pfn (set model)".into(),
            }
            .into());
        }
        let r = crate::model::train_pfn(&model, &data, &cfg, &cx.control)?;
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
        Ok(map([
            ("model", Dynamic::from(r.model)),
            ("history", history.into()),
            ("stopped", r.stop.as_str().into()),
            ("best_epoch", r.best_epoch.map_or(Dynamic::UNIT, |b| (b as i64).into())),
        ]))
    }

    /// Trains a PFN with the default options (10 epochs of Adam, lr 1e-3, batch 256).
    #[rhai_fn(return_raw, name = "train")]
    pub fn train(c: NativeCallContext, model: Pfn, data: Dataset) -> RhaiResult<Map> {
        train_opts(c, model, data, Map::new())
    }

    /// Scores per event of a PFN (as for classifiers: one float per event for one output, an
    /// array of class probabilities per event otherwise).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 }).with_objects("part", #{ pt: [[5.0, 2.0], [], [1.0]] });
    /// let s = pfn("part", ["pt"], #{ phi: [4], f: [4], max_objects: 4, seed: 1 }).scores(d);
    /// assert_eq(s.len(), 3);
    /// ```
    #[rhai_fn(return_raw, pure, name = "scores")]
    pub fn scores(m: &mut Pfn, data: Dataset) -> RhaiResult<Array> {
        check_array("scores", data.len().saturating_mul(m.n_outputs().max(1) + usize::from(m.n_outputs() > 1)))?;
        let s = m.scores(m.layout().gather(&data)?.view())?;
        Ok(if s.ncols() == 1 {
            f32_array(s.column(0).iter().copied())
        } else {
            s.rows().into_iter().map(|r| Dynamic::from_array(f32_array(r.iter().copied()))).collect()
        })
    }

    /// Predicted class per event of a PFN.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[5.0], [1.0, 2.0]] });
    /// let p = pfn("part", ["pt"], #{ max_objects: 4, seed: 1 }).predict(d);
    /// assert(p.all(|c| c == 0 || c == 1));
    /// ```
    #[rhai_fn(return_raw, pure, name = "predict")]
    pub fn predict(m: &mut Pfn, data: Dataset) -> RhaiResult<Array> {
        check_array("predict", data.len())?;
        Ok(int_array(m.predict_class(m.layout().gather(&data)?.view())?))
    }

    /// Loss, ROC AUC (binary) and accuracy of a PFN on a labelled dataset, weighted by the
    /// event weights: `#{ n, loss, auc, accuracy }`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 4, seed: 1 }).with_objects("part", #{ pt: [[5.0], [], [1.0, 2.0], [3.0]] });
    /// let e = pfn("part", ["pt"], #{ max_objects: 4, seed: 1 }).evaluate(d);
    /// assert_eq(e.n, 4);
    /// ```
    #[rhai_fn(return_raw, pure, name = "evaluate")]
    pub fn evaluate(m: &mut Pfn, data: Dataset) -> RhaiResult<Map> {
        let e = m.evaluate(&data, true)?;
        let opt = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
        Ok(map([
            ("n", (e.n as i64).into()),
            ("loss", e.loss.into()),
            ("auc", opt(e.auc)),
            ("accuracy", opt(e.accuracy)),
        ]))
    }

    /// The model's flat inputs of a dataset: a Dataset with one column per input (`n_inputs`
    /// of them: event features, the object count `coll.n`, then `coll[s].feature` per slot),
    /// the dataset's label and weight kept. Attacks and gradients work on these columns.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[5.0, 2.0, 1.0], []] });
    /// let x = pfn("part", ["pt"], #{ max_objects: 2 }).inputs(d);
    /// assert_eq(x.features, ["part.n", "part[0].pt", "part[1].pt"]);
    /// assert_eq(x["part.n"], [2.0, 0.0]);   // the third object is beyond max_objects
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn inputs(m: &mut Pfn, data: Dataset) -> RhaiResult<Dataset> {
        let x = m.layout().gather(&data)?;
        Ok(Dataset::new(m.layout().names(), x, data.label().map(<[i64]>::to_vec), data.weight().map(<[f32]>::to_vec))?)
    }

    /// ∂objective/∂x of a PFN per event, in physical units, as a Dataset with the columns of
    /// `inputs` (the count entry and padded slots are 0). Options as `input_grad` for
    /// classifiers (`objective`: loss, score or logit; `class`).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[5.0], [1.0, 2.0]] });
    /// let g = pfn("part", ["pt"], #{ max_objects: 3, seed: 1 }).input_grad(d, #{ objective: "score" });
    /// assert_eq(g["part[1].pt"][0], 0.0);   // event 0 has one object: slot 1 is padding
    /// assert(g["part[1].pt"][1] != 0.0);
    /// ```
    #[rhai_fn(return_raw, pure, name = "input_grad")]
    pub fn input_grad(m: &mut Pfn, data: Dataset, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("input_grad", &options);
        let objective = o.choice("objective", &["loss", "score", "logit"], "loss")?;
        let class = o.usize("class", 1)?;
        o.finish()?;
        let x = m.layout().gather(&data)?;
        let g = match objective {
            "score" => m.input_grad_and_scores(x.view(), GradTarget::Score { class })?,
            "logit" => m.input_grad_and_scores(x.view(), GradTarget::Logit { class })?,
            _ => {
                let l = data
                    .label()
                    .ok_or_else(|| Error::arg("input_grad", "objective 'loss' needs a labelled dataset"))?;
                m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(l)))?
            }
        };
        Ok(Dataset::new(m.layout().names(), g.grad, None, None)?)
    }

    /// ∂loss/∂x of a PFN per event (the default options).
    #[rhai_fn(return_raw, pure, name = "input_grad")]
    pub fn input_grad_default(m: &mut Pfn, data: Dataset) -> RhaiResult<Dataset> {
        input_grad(m, data, Map::new())
    }

    /// All parameters of a PFN as one flat array: Φ's layers then F's, per layer the weight
    /// (out × in, row-major) then the bias (PyTorch's `parameters_to_vector` order).
    ///
    /// ```rhai
    /// let m = pfn("part", ["pt"], #{ phi: [3], f: [2], max_objects: 4, seed: 1 });
    /// assert_eq(m.params().len(), 1 * 3 + 3 + 3 * 2 + 2 + 2 * 1 + 1);
    /// assert(m.with_params(m.params().map(|p| 0.0)).params().all(|p| p == 0.0));
    /// ```
    #[rhai_fn(return_raw, pure, name = "params")]
    pub fn params(m: &mut Pfn) -> RhaiResult<Array> {
        check_array("params", m.n_params())?;
        Ok(f32_array(m.params_flat()))
    }

    /// A copy of a PFN with the given flat parameter array (order of `params`).
    #[rhai_fn(return_raw, pure, name = "with_params")]
    pub fn with_params(m: &mut Pfn, params: Array) -> RhaiResult<Pfn> {
        let p: Vec<f32> = floats("with_params", "params", &params)?.into_iter().map(|x| x as f32).collect();
        let mut out = m.clone();
        out.set_params_flat(&p)?;
        Ok(out)
    }

    /// Number of trainable parameters.
    #[rhai_fn(get = "n_params", pure)]
    pub fn n_params(m: &mut Pfn) -> i64 {
        m.n_params() as i64
    }

    /// Number of flat inputs (event features, the count, the object slots).
    #[rhai_fn(get = "n_inputs", pure)]
    pub fn n_inputs(m: &mut Pfn) -> i64 {
        m.n_inputs() as i64
    }

    /// Φ's widths, the object features first.
    #[rhai_fn(get = "phi", pure)]
    pub fn phi(m: &mut Pfn) -> Array {
        int_array(m.phi_widths().iter().map(|&w| w as i64))
    }

    /// F's widths, latent plus event features first, the outputs last.
    #[rhai_fn(get = "f", pure)]
    pub fn f(m: &mut Pfn) -> Array {
        int_array(m.f_widths().iter().map(|&w| w as i64))
    }

    /// Names of the flat inputs (as the columns of `inputs`).
    #[rhai_fn(get = "features", pure)]
    pub fn features(m: &mut Pfn) -> Array {
        string_array(m.layout().names())
    }

    /// Saves a PFN (weights, architecture, layout and standardization) as safetensors with
    /// PyTorch state-dict names (`phi.0.weight`, …, `f.0.weight`, …), atomically.
    ///
    /// ```rhai
    /// let m = pfn("part", ["pt", "eta"], #{ phi: [4], f: [4], max_objects: 8, seed: 1 });
    /// m.save("out/doc_pfn.safetensors");
    /// assert_eq(load_pfn("out/doc_pfn.safetensors").params(), m.params());
    /// ```
    #[rhai_fn(return_raw, pure, name = "save")]
    pub fn save(c: NativeCallContext, m: &mut Pfn, path: &str) -> RhaiResult<()> {
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(m.save(&file)?)
    }

    /// Loads a PFN saved by `save`.
    ///
    /// ```rhai
    /// pfn("part", ["pt"], #{ phi: [2], f: [2], max_objects: 2, seed: 3 }).save("out/doc_load_pfn.safetensors");
    /// assert_eq(load_pfn("out/doc_load_pfn.safetensors").phi, [1, 2]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_pfn(c: NativeCallContext, path: &str) -> RhaiResult<Pfn> {
        let file = ctx(&c)?.sandbox.check_read(path)?;
        Ok(Pfn::load(&file)?)
    }

    /// Imports a PyTorch PFN whose `state_dict` was saved with safetensors in the layout of
    /// `scripts/export_pfn.py`: `phi.0.weight`, `phi.0.bias`, `phi.2.weight`, … (Φ's Linear
    /// layers, each followed by the activation) and `f.0.weight`, … (F's, the last linear).
    /// The widths come from the weights; `features` are the object features Φ reads, in the
    /// order it was trained with. Give the standardization the network was trained with
    /// (`event_mean`, `event_std`, `object_mean`, `object_std`), else it sees raw inputs.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `event_features` | array of strings | none | flat event columns F reads after the pooled vector |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `pooling` | string | "sum" | sum or mean |
    /// | `activation` | string | "relu" | the nonlinearity |
    /// | `output` | string | "sigmoid" | output layer |
    /// | `event_mean` | array | zeros | event feature means used in training |
    /// | `event_std` | array | ones | event feature scales |
    /// | `object_mean` | array | zeros | object feature means used in training |
    /// | `object_std` | array | ones | object feature scales |
    ///
    /// ```rhai
    /// let m = import_torch_pfn("tests/data/pfn_fixture.safetensors", "part", ["logpt", "deta", "dphi"],
    ///     #{ event_features: ["jet_pt"], max_objects: 4, object_std: [1.5, 0.2, 0.25] });
    /// assert_eq(m.phi, [3, 8, 6]);
    /// assert_eq(m.f, [7, 5, 1]);
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_pfn")]
    pub fn import_torch_pfn_opts(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
        options: Map,
    ) -> RhaiResult<Pfn> {
        let mut o = Opts::new("import_torch_pfn", &options);
        let feats = strings("import_torch_pfn", "features", &features)?;
        let layout = layout(&mut o, collection, feats)?;
        let (ne, nf) = (layout.n_event(), layout.n_object());
        let list = |o: &mut Opts, k: &'static str, n: usize, fill: f32| -> RhaiResult<Vec<f32>> {
            Ok(o.floats_opt(k)?.map_or_else(|| vec![fill; n], |v| v.into_iter().map(|x| x as f32).collect()))
        };
        let standardization = Some((
            list(&mut o, "event_mean", ne, 0.0)?,
            list(&mut o, "event_std", ne, 1.0)?,
            list(&mut o, "object_mean", nf, 0.0)?,
            list(&mut o, "object_std", nf, 1.0)?,
        ));
        let spec = PfnImport {
            layout,
            pooling: pooling(&mut o)?,
            activation: Activation::parse(&o.string("activation", "relu")?)?,
            output: Output::parse(&o.string("output", "sigmoid")?)?,
            standardization,
        };
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_read(path)?;
        Ok(crate::model::import_torch_pfn(&file, &spec)?)
    }

    /// Imports a PyTorch PFN with the default options (ReLU, sum pooling, sigmoid, 128 slots,
    /// no event features, raw inputs).
    ///
    /// ```rhai
    /// try {
    ///     import_torch_pfn("tests/data/pfn_fixture.safetensors", "part", ["logpt", "deta", "dphi"]);
    /// } catch (e) {
    ///     assert(e.message.contains("event features"));   // this network also reads jet_pt
    /// }
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_pfn")]
    pub fn import_torch_pfn(c: NativeCallContext, path: &str, collection: &str, features: Array) -> RhaiResult<Pfn> {
        import_torch_pfn_opts(c, path, collection, features, Map::new())
    }

    /// `Pfn(Φ 4→100→100→128, sum, F 128→100→100→100→1, relu, sigmoid, 56729 params)`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(m: &mut Pfn) -> String {
        let w = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("→");
        format!(
            "Pfn(Φ {}, {}, F {}, {}, {}, {} params)",
            w(m.phi_widths()),
            m.pooling().name(),
            w(m.f_widths()),
            m.activation(),
            m.output(),
            m.n_params()
        )
    }

    /// The PFN's summary (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(m: &mut Pfn) -> String {
        to_string(m)
    }
}
