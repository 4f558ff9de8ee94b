//! Script functions that build Particle Transformers (ParT): `part` and `import_torch_part`.
//! They return the one script type `model`; training, scores, gradients, attacks, save and
//! `load_model` are the functions every model has (`bindings/model.rs`).

use rhai::plugin::*;

/// Registers the ParT constructors.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(part_api).into());
}

mod helpers {
    use rhai::Array;

    use crate::bindings::options::Opts;
    use crate::bindings::pfn::helpers::widths;
    use crate::bindings::RhaiResult;
    use crate::error::Error;
    use crate::model::PartConfig;

    /// The kinematics the pair features read when `pairs: true` names none.
    const PAIR_DEFAULT: [&str; 4] = ["pt", "eta", "phi", "E"];

    fn width_list(func: &str, o: &mut Opts, key: &'static str, default: Vec<usize>) -> RhaiResult<Vec<usize>> {
        match o.raw(key) {
            Some(v) => {
                let a = v.try_cast::<Array>().ok_or_else(|| Error::arg(func, format!("{key} must be an array")))?;
                widths(func, key, &a)
            }
            None => Ok(default),
        }
    }

    /// `pairs` / `pair_inputs`: the `(pT, η, φ, E)` features of the pair features, or none.
    pub fn pair_inputs(func: &str, o: &mut Opts) -> RhaiResult<Vec<String>> {
        let names = o.strings_opt("pair_inputs")?;
        let on = o.bool("pairs", names.is_some())?;
        match (on, names) {
            (false, Some(_)) => {
                Err(Error::arg(func, "pairs: false with pair_inputs given; drop one of the two").into())
            }
            (false, None) => Ok(Vec::new()),
            (true, Some(n)) => Ok(n),
            (true, None) => Ok(PAIR_DEFAULT.map(String::from).to_vec()),
        }
    }

    /// The sizes and inputs of `part` (everything but the seed and the output).
    pub fn config(func: &str, o: &mut Opts) -> RhaiResult<PartConfig> {
        let d = PartConfig::default();
        Ok(PartConfig {
            embed: width_list(func, o, "embed", d.embed)?,
            pair_embed: width_list(func, o, "pair_embed", d.pair_embed)?,
            embed_inputs: o.strings_opt("embed_inputs")?.unwrap_or_default(),
            pair_inputs: pair_inputs(func, o)?,
            heads: o.usize("heads", d.heads)?,
            blocks: o.usize("blocks", d.blocks)?,
            cls_blocks: o.usize("cls_blocks", d.cls_blocks)?,
            ffn_ratio: o.usize("ffn_ratio", d.ffn_ratio)?,
            fc: width_list(func, o, "fc", d.fc)?,
            ..d
        })
    }
}

#[export_module]
pub mod part_api {
    use super::helpers::*;
    use rhai::{Array, Map};

    use crate::bindings::options::{strings, Opts};
    use crate::bindings::pfn::helpers::layout;
    use crate::bindings::{ctx, RhaiResult};
    use crate::model::{Output, Part, PartImport, SharedModel};

    /// Builds a Particle Transformer (weaver-core's `ParticleTransformer`, Qu, Li, Qian 2022)
    /// on the objects of `collection` (its `features`, in this order, physical units): a
    /// per-particle embedding (LayerNorm, Linear, GELU per width), self-attention blocks with
    /// the padding mask and — with `pairs` — attention biases embedded from the pair features
    /// ln kT, ln z, ln ΔR, ln m² of every two particles (from their `pair_inputs` pT, η, φ,
    /// E), class-attention blocks on a learned class token, and a head (`fc` hidden ReLU
    /// layers, then the logits). `train` fits and stores the standardisation (event, particle
    /// and pair features). Dropout is not applied; training is deterministic.
    ///
    /// The defaults are a small ParT that trains on 2 cores (40,674 parameters for 5 features,
    /// no pairs). weaver's defaults are `embed: [128, 512, 128], pair_embed: [64, 64, 64],
    /// heads: 8, blocks: 8, cls_blocks: 2`; the benchmark's ParT-small is `embed: [64, 128,
    /// 64], pair_embed: [32, 32, 32], heads: 4, blocks: 3, cls_blocks: 1` (weaver counts
    /// 223,066 parameters for 5 features; 208 fewer here, the pair batch norms are folded).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `embed` | array | [32, 32] | particle embedding widths; the last is the model width |
    /// | `pair_embed` | array | [16, 16] | hidden widths of the pair embedding (its output: one bias per head) |
    /// | `heads` | int | 4 | attention heads (must divide the model width) |
    /// | `blocks` | int | 2 | particle self-attention blocks |
    /// | `cls_blocks` | int | 1 | class-attention blocks (at least 1) |
    /// | `ffn_ratio` | int | 4 | feed-forward width / model width |
    /// | `fc` | array | [] | hidden widths of the head |
    /// | `embed_inputs` | array of strings | all features | the features the embedding reads |
    /// | `pairs` | bool | true if `pair_inputs` given | pair-feature attention biases on/off |
    /// | `pair_inputs` | array of 4 strings | ["pt", "eta", "phi", "E"] with `pairs` | each particle's pT, η, φ, E |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `event_features` | array of strings | none | flat event columns fed to the head with the class token |
    /// | `output` | string | "softmax" | softmax (classes), sigmoid (then `outputs: 1`), linear |
    /// | `outputs` | int | 2 | number of logits |
    /// | `seed` | int | from the session seed | weight initialisation |
    ///
    /// ```rhai
    /// let m = part("part", ["deta", "dphi", "logpt", "logE", "charge"], #{ max_objects: 50, seed: 1 });
    /// assert_eq(m.kind, "part");
    /// assert_eq(m.n_params, 40674);
    /// // pair features from the particles' kinematics, which the embedding does not read
    /// let p = part("part", ["deta", "dphi", "logpt", "logE", "charge", "pt", "eta", "phi", "E"],
    ///     #{ embed_inputs: ["deta", "dphi", "logpt", "logE", "charge"], pairs: true, max_objects: 50, seed: 1 });
    /// assert_eq(p.n_params, 40674 + 420);   // pair embedding 4→16→16→4
    ///
    /// // Training, scores, gradients, attacks, save and load_model as for every model:
    /// let d = dataset("gaussians", #{ n: 120, seed: 1 });
    /// let x0 = d["x0"];
    /// let a = []; let b = [];
    /// for i in 0..d.len { a.push([x0[i], -x0[i]]); b.push([0.5, -0.5]); }
    /// let jets = d.with_objects("part", #{ a: a, b: b });
    /// let small = part("part", ["a", "b"], #{ embed: [8], heads: 2, blocks: 1, ffn_ratio: 1,
    ///     output: "sigmoid", outputs: 1, max_objects: 2, seed: 1 });
    /// let r = train(small, jets, #{ epochs: 3, seed: 2 });
    /// assert(r.history[2].loss < r.history[0].loss);
    /// r.model.save("out/doc_part.safetensors");
    /// assert_eq(load_model("out/doc_part.safetensors").scores(jets), r.model.scores(jets));
    /// ```
    #[rhai_fn(return_raw, name = "part")]
    pub fn part_opts(c: NativeCallContext, collection: &str, features: Array, options: Map) -> RhaiResult<SharedModel> {
        let func = "part";
        let mut o = Opts::new(func, &options);
        let feats = strings(func, "features", &features)?;
        let mut cfg = config(func, &mut o)?;
        let layout = layout(&mut o, collection, feats)?;
        cfg.output = Output::parse(&o.string("output", "softmax")?)?;
        cfg.n_outputs = o.usize("outputs", 2)?;
        cfg.seed = ctx(&c)?.seed_or_next(o.seed()?);
        o.finish()?;
        Ok(std::sync::Arc::new(Part::new(layout, &cfg)?))
    }

    /// Builds the small default ParT (embedding [32, 32], 4 heads, 2 + 1 blocks, no pair
    /// features, softmax over 2 logits, 128 object slots).
    ///
    /// ```rhai
    /// let m = part("part", ["deta", "dphi", "logpt"]);
    /// assert_eq(m.n_inputs, 1 + 128 * 3);
    /// assert_eq(m.param_groups.map(|g| g.name), ["embed", "blocks.0", "blocks.1", "cls_blocks.0", "norm", "fc", "cls_token"]);
    /// ```
    #[rhai_fn(return_raw, name = "part")]
    pub fn part(c: NativeCallContext, collection: &str, features: Array) -> RhaiResult<SharedModel> {
        part_opts(c, collection, features, Map::new())
    }

    /// Imports a PyTorch (weaver-core) `ParticleTransformer` whose `state_dict` was saved with
    /// safetensors (`scripts/export_part.py` shows the layout). The sizes come from the
    /// tensors; batch norms are folded (eval mode). `features` are the model's object
    /// features: those weaver's `x` holds, in its order (`embed_inputs`, default all), and,
    /// for a network with a pair embedding, the particles' pT, η, φ, E (`pair_inputs`, from
    /// which weaver's 4-vectors `v` are built). Give the preprocessing of weaver's data config
    /// as `mean` (its center) and `std` (1 / its scale) per embedded feature, else the network
    /// sees raw inputs.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `embed_inputs` | array of strings | all features | the features of weaver's `x`, in order |
    /// | `pair_inputs` | array of 4 strings | none | each particle's pT, η, φ, E (needed for a pair embedding) |
    /// | `max_objects` | int | 128 | object slots per event |
    /// | `event_features` | array of strings | none | flat event columns (weaver has none) |
    /// | `output` | string | "softmax" | output layer |
    /// | `mean` | array | zeros | per embedded feature, subtracted before weaver's input |
    /// | `std` | array | ones | per embedded feature, divided after subtracting `mean` |
    ///
    /// ```rhai
    /// let m = import_torch_part("tests/data/part_fixture.safetensors", "part",
    ///     ["logpt", "deta", "dphi", "pt", "eta", "phi", "E"],
    ///     #{ embed_inputs: ["logpt", "deta", "dphi"], pair_inputs: ["pt", "eta", "phi", "E"],
    ///        mean: [1.5, 0.0, 0.0], std: [1.0, 0.25, 0.25], max_objects: 4 });
    /// assert_eq(m.kind, "part");
    /// assert_eq(m.n_inputs, 1 + 4 * 7);
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_part")]
    pub fn import_torch_part_opts(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
        options: Map,
    ) -> RhaiResult<SharedModel> {
        let func = "import_torch_part";
        let mut o = Opts::new(func, &options);
        let feats = strings(func, "features", &features)?;
        let embed_inputs = o.strings_opt("embed_inputs")?.unwrap_or_default();
        let pair_inputs = o.strings_opt("pair_inputs")?.unwrap_or_default();
        let layout = layout(&mut o, collection, feats)?;
        let output = Output::parse(&o.string("output", "softmax")?)?;
        let f32s = |v: Option<Vec<f64>>| v.map(|v| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>());
        let (mean, std) = (f32s(o.floats_opt("mean")?), f32s(o.floats_opt("std")?));
        o.finish()?;
        let n = if embed_inputs.is_empty() { layout.n_object() } else { embed_inputs.len() };
        let standardization = match (mean, std) {
            (None, None) => None,
            (m, s) => Some((m.unwrap_or_else(|| vec![0.0; n]), s.unwrap_or_else(|| vec![1.0; n]))),
        };
        let file = ctx(&c)?.sandbox.check_read(path)?;
        let spec = PartImport { layout, embed_inputs, pair_inputs, output, standardization };
        Ok(std::sync::Arc::new(crate::model::import_torch_part(&file, &spec)?))
    }

    /// Imports a PyTorch (weaver-core) `ParticleTransformer` with the default options (all
    /// features embedded, no pair features, softmax, 128 slots, raw inputs).
    ///
    /// ```rhai
    /// try {
    ///     // the fixture has a pair embedding: it needs pair_inputs
    ///     import_torch_part("tests/data/part_fixture.safetensors", "part", ["logpt", "deta", "dphi"]);
    /// } catch (e) {
    ///     assert(e.message.contains("pair_inputs"));
    /// }
    /// ```
    #[rhai_fn(return_raw, name = "import_torch_part")]
    pub fn import_torch_part(
        c: NativeCallContext,
        path: &str,
        collection: &str,
        features: Array,
    ) -> RhaiResult<SharedModel> {
        import_torch_part_opts(c, path, collection, features, Map::new())
    }
}
