//! Script functions that build set models (the Particle Flow Network): `pfn` and
//! `import_torch_pfn`. They return the one script type `model`; training, scores, gradients,
//! attacks, save and `load_model` are the functions every model has (`bindings/model.rs`).

use rhai::plugin::*;

/// Registers the set-model constructors.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(pfn_api).into());
}

pub(crate) mod helpers {
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

    use crate::bindings::model::helpers::{activation, output};
    use crate::bindings::options::{strings, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::error::Error;
    use crate::model::{Activation, Output, Pfn, PfnConfig, PfnImport, SharedModel};

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
    /// assert_eq(m.kind, "pfn");
    /// assert_eq(m.n_inputs, 1 + 100 * 4);   // the count, then 100 slots of 4 features
    /// assert_eq(m.param_groups.map(|g| g.name), ["phi.0", "phi.1", "phi.2", "f.0", "f.1", "f.2", "f.3"]);
    /// print(m);   // Pfn(part: 4 features × ≤ 100 objects, Φ 4→100→100→128, sum, F 128→100→100→100→1, …)
    ///
    /// // Training, scores, gradients, attacks, save and load_model as for every model:
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 });
    /// let x0 = d["x0"];
    /// let a = []; let b = [];
    /// for i in 0..d.len { a.push([x0[i], -x0[i]]); b.push([0.5, -0.5]); }
    /// let jets = d.with_objects("part", #{ a: a, b: b });
    /// let small = pfn("part", ["a", "b"], #{ phi: [8, 8], f: [8], max_objects: 2, seed: 1 });
    /// let r = train(small, jets, #{ epochs: 3, seed: 2 });
    /// assert(r.history[2].loss < r.history[0].loss);
    /// assert_eq(r.model.scores(jets).len(), 200);
    /// r.model.save("out/doc_pfn.safetensors");
    /// assert_eq(load_model("out/doc_pfn.safetensors").params(), r.model.params());
    /// ```
    #[rhai_fn(return_raw, name = "pfn")]
    pub fn pfn_opts(c: NativeCallContext, collection: &str, features: Array, options: Map) -> RhaiResult<SharedModel> {
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
        Ok(std::sync::Arc::new(Pfn::new(layout, &cfg)?))
    }

    /// Builds a PFN with the default options (energyflow's sizes, sum pooling, ReLU, sigmoid,
    /// 128 object slots, no event features).
    ///
    /// ```rhai
    /// assert_eq(pfn("part", ["pt", "eta"]).n_inputs, 1 + 128 * 2);
    /// ```
    #[rhai_fn(return_raw, name = "pfn")]
    pub fn pfn(c: NativeCallContext, collection: &str, features: Array) -> RhaiResult<SharedModel> {
        pfn_opts(c, collection, features, Map::new())
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
    /// assert_eq(m.kind, "pfn");
    /// assert_eq(m.n_inputs, 1 + 1 + 4 * 3);   // jet_pt, the count, 4 slots of 3 features
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_pfn")]
    pub fn import_torch_pfn_opts(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
        options: Map,
    ) -> RhaiResult<SharedModel> {
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
        Ok(std::sync::Arc::new(crate::model::import_torch_pfn(&file, &spec)?))
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
    pub fn import_torch_pfn(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
    ) -> RhaiResult<SharedModel> {
        import_torch_pfn_opts(c, path, collection, features, Map::new())
    }
}
