//! Script functions that build ParticleNet models: `particlenet` and
//! `import_torch_particlenet`. They return the one script type `model`; training, scores,
//! gradients, attacks, save and `load_model` are the functions every model has.

use rhai::plugin::*;

/// Registers the ParticleNet constructors.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(particlenet_api).into());
}

mod helpers {
    use rhai::{Array, Dynamic};

    use crate::bindings::options::Opts;
    use crate::bindings::RhaiResult;
    use crate::error::Error;
    use crate::model::{ParticleNetConfig, SetLayout};

    fn int(func: &str, what: &str, v: &Dynamic) -> RhaiResult<usize> {
        let i = v.as_int().map_err(|_| Error::arg(func, format!("{what} must be an integer")))?;
        usize::try_from(i).map_err(|_| Error::arg(func, format!("{what} must not be negative, got {i}")).into())
    }

    /// `conv: [[k, [c, …]], …]`, `fc: [w, …]`, `points: [feature, …]`, `fusion`.
    pub fn config(func: &str, o: &mut Opts, features: &[String]) -> RhaiResult<ParticleNetConfig> {
        let mut cfg = ParticleNetConfig::lite();
        if let Some(v) = o.raw("conv") {
            let blocks =
                v.try_cast::<Array>().ok_or_else(|| Error::arg(func, "conv must be an array of [k, [channels]]"))?;
            cfg.conv = blocks
                .iter()
                .map(|b| {
                    let pair = b.clone().try_cast::<Array>().filter(|p| p.len() == 2);
                    let pair = pair.ok_or_else(|| Error::arg(func, "each conv entry must be [k, [channels]]"))?;
                    let ch = pair[1]
                        .clone()
                        .try_cast::<Array>()
                        .ok_or_else(|| Error::arg(func, "conv channels must be an array"))?;
                    let ch = ch.iter().map(|c| int(func, "a channel count", c)).collect::<RhaiResult<Vec<_>>>()?;
                    Ok((int(func, "k", &pair[0])?, ch))
                })
                .collect::<RhaiResult<Vec<_>>>()?;
        }
        if let Some(v) = o.raw("fc") {
            let a = v.try_cast::<Array>().ok_or_else(|| Error::arg(func, "fc must be an array of widths"))?;
            cfg.fc = a.iter().map(|w| Ok((int(func, "an fc width", w)?, 0.0))).collect::<RhaiResult<Vec<_>>>()?;
        }
        let points = o.strings_opt("points")?.unwrap_or_else(|| features.iter().take(2).cloned().collect());
        cfg.points = points
            .iter()
            .map(|p| {
                features.iter().position(|f| f == p).ok_or_else(|| {
                    Error::arg(
                        func,
                        format!("points: '{p}' is not one of the object features [{}]", features.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        cfg.fusion = o.bool("fusion", false)?;
        cfg.n_outputs = o.usize("outputs", 2)?;
        Ok(cfg)
    }

    pub fn layout(o: &mut Opts, collection: &str, features: Vec<String>) -> RhaiResult<SetLayout> {
        let max = o.usize("max_objects", 128)?;
        Ok(SetLayout::new(vec![], collection, features, max)?)
    }
}

#[export_module]
pub mod particlenet_api {
    use super::helpers::*;
    use rhai::{Array, Map};

    use crate::bindings::options::{strings, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::model::{Output, ParticleNetImport, SharedModel};

    /// Builds a ParticleNet (weaver-core's layout): EdgeConv blocks on the k nearest
    /// neighbours of every object of `collection` — in the `points` features (physical units,
    /// e.g. Δη and Δφ) for the first block, in the learned features after — each an edge MLP
    /// (1×1 convolution, batch norm, ReLU per layer) averaged over the neighbours plus a
    /// shortcut; mean pooling over the real objects; a fully connected head. The defaults are
    /// ParticleNet-Lite; weaver's full ParticleNet is `conv: [[16, [64, 64, 64]], [16, [128,
    /// 128, 128]], [16, [256, 256, 256]]], fc: [256], fusion: true`. Training runs in PyTorch's
    /// training mode (batch norms on batch statistics, updating their running statistics;
    /// dropout 0.1 in the default head, none after widths given with `fc`); everything else
    /// uses the running statistics and no dropout.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `conv` | array | [[7, [32, 32, 32]], [7, [64, 64, 64]]] | per EdgeConv block: [k, channels] |
    /// | `fc` | array | [128] | hidden widths of the head |
    /// | `points` | array of strings | the first two features | coordinates of the first kNN |
    /// | `fusion` | bool | false | weaver's fusion block (concatenated block outputs) |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `output` | string | "softmax" | softmax (classes), sigmoid (then `outputs: 1`), linear |
    /// | `outputs` | int | 2 | number of logits |
    /// | `seed` | int | from the session seed | weight initialisation |
    ///
    /// ```rhai
    /// let m = particlenet("part", ["deta", "dphi", "logpt", "logE", "charge"], #{ max_objects: 50, seed: 1 });
    /// assert_eq(m.kind, "particlenet");
    /// assert_eq(m.n_params, 26220);   // weaver's ParticleNet-Lite
    /// let small = particlenet("part", ["a", "b"], #{ conv: [[2, [4]]], fc: [4], max_objects: 3, seed: 1 });
    /// assert_eq(small.n_inputs, 1 + 3 * 2);
    /// ```
    #[rhai_fn(return_raw, name = "particlenet")]
    pub fn particlenet_opts(
        c: NativeCallContext,
        collection: &str,
        features: Array,
        options: Map,
    ) -> RhaiResult<SharedModel> {
        let mut o = Opts::new("particlenet", &options);
        let feats = strings("particlenet", "features", &features)?;
        let mut cfg = config("particlenet", &mut o, &feats)?;
        let layout = layout(&mut o, collection, feats)?;
        let output = Output::parse(&o.string("output", "softmax")?)?;
        cfg.seed = ctx(&c)?.seed_or_next(o.seed()?);
        o.finish()?;
        Ok(std::sync::Arc::new(crate::model::particlenet(layout, &cfg, output)?))
    }

    /// Builds a ParticleNet-Lite with the default options.
    ///
    /// ```rhai
    /// assert_eq(particlenet("part", ["deta", "dphi", "logpt"]).n_inputs, 1 + 128 * 3);
    /// ```
    #[rhai_fn(return_raw, name = "particlenet")]
    pub fn particlenet(c: NativeCallContext, collection: &str, features: Array) -> RhaiResult<SharedModel> {
        particlenet_opts(c, collection, features, Map::new())
    }

    /// Imports a PyTorch (weaver-core) ParticleNet whose `state_dict` was saved with
    /// safetensors (`scripts/export_particlenet.py` shows the names). Give the architecture
    /// it was trained with (`conv`, `fc`, `fusion`, `points`, as for `particlenet`) and its
    /// object features in weaver's order; the model reads them unstandardised (weaver's
    /// input batch norm scales them).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `conv` | array | [[7, [32, 32, 32]], [7, [64, 64, 64]]] | per EdgeConv block: [k, channels] |
    /// | `fc` | array | [128] | hidden widths of the head |
    /// | `points` | array of strings | the first two features | coordinates of the first kNN |
    /// | `fusion` | bool | false | weaver's fusion block |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `output` | string | "softmax" | output layer |
    /// | `outputs` | int | 2 | number of logits |
    ///
    /// ```rhai
    /// let m = import_torch_particlenet("tests/data/particlenet_fixture.safetensors", "part",
    ///     ["deta", "dphi", "logpt"], #{ conv: [[3, [8, 6]], [2, [6]]], fc: [5], fusion: true, max_objects: 6 });
    /// assert_eq(m.kind, "particlenet");
    /// assert_eq(m.n_params, 2693);
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_particlenet")]
    pub fn import_torch_particlenet(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
        options: Map,
    ) -> RhaiResult<SharedModel> {
        let func = "import_torch_particlenet";
        let mut o = Opts::new(func, &options);
        let feats = strings(func, "features", &features)?;
        let config = config(func, &mut o, &feats)?;
        let layout = layout(&mut o, collection, feats)?;
        let output = Output::parse(&o.string("output", "softmax")?)?;
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_read(path)?;
        let spec = ParticleNetImport { layout, config, output };
        Ok(std::sync::Arc::new(crate::model::import_torch_particlenet(&file, &spec)?))
    }

    /// Imports a PyTorch (weaver-core) ParticleNet with the default options (weaver's
    /// ParticleNet-Lite blocks, fc [128], softmax over 2 logits, 128 slots).
    ///
    /// ```rhai
    /// try {
    ///     // the fixture is a smaller network: its tensors do not fit the default blocks
    ///     import_torch_particlenet("tests/data/particlenet_fixture.safetensors", "part", ["deta", "dphi", "logpt"]);
    /// } catch (e) {
    ///     assert(e.message.contains("is not part of a ParticleNet with this configuration"));
    /// }
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_particlenet")]
    pub fn import_torch_particlenet_defaults(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
    ) -> RhaiResult<SharedModel> {
        import_torch_particlenet(c, path, collection, features, Map::new())
    }
}
