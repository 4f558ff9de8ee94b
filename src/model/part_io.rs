//! Saving and loading ParT models, and importing a weaver-core `ParticleTransformer`
//! state dict.
//!
//! File layout (the [`Mlp`](super::Mlp) file family, `io.rs`): safetensors holding the tensors
//! of [`Part::tensor_specs`] under their names (weaver's state-dict names, the pair embedding
//! folded as `pair_embed.layers.{l}`), and `__metadata__` (JSON strings): `format`
//! ("nuisance-part"), `kind` ("part"), `format_version`, `config` (the [`PartConfig`] widths
//! and counts), the layout (`event_features`, `collection`, `object_features`,
//! `max_objects`), and the standardisation (`event_mean`, …, `pair_std`). Floats are written
//! in shortest round-trip form, so a loaded model is bit-identical.
//!
//! **Import** ([`import_torch_part`]) reads `safetensors.torch.save_file(model.state_dict())`
//! of weaver's module (`scripts/export_part.py`): the sizes come from the tensor shapes, the
//! batch norms (eval mode: running statistics, ε = 10⁻⁵) are folded — the particle input batch
//! norm's statistics into the object standardisation (its affine stays as
//! `embed.input_bn.weight/bias`), the pair input batch norm into the pair standardisation and
//! the first pair layer, each 1×1 convolution's batch norm into that convolution.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use safetensors::SafeTensors;
use serde_json::json;

use super::io::{
    le_bytes, natural_key, not_safetensors, parse, parse_f32_list, read_tensor, serialize, FORMAT_VERSION,
};
use super::layout::SetLayout;
use super::loss::Output;
use super::part::{Part, PartConfig};
use crate::error::{Error, Result};
use crate::{fsutil, io_guard};

const FORMAT_NAME: &str = "nuisance-part";
/// Batch norm ε (PyTorch's default).
const BN_EPS: f64 = 1e-5;

/// How to read a weaver `ParticleTransformer` state dict.
#[derive(Clone, Debug)]
pub struct PartImport {
    /// Which inputs the network reads.
    pub layout: SetLayout,
    /// The object features in the order of weaver's `x` (empty: all of the layout's).
    pub embed_inputs: Vec<String>,
    /// The object features holding `(pT, η, φ, E)` of each particle (weaver's `v` is built
    /// from them as (px, py, pz, E)); required when the file has a pair embedding.
    pub pair_inputs: Vec<String>,
    /// Output layer (weaver trains a softmax over its classes).
    pub output: Output,
    /// `(mean, std)` per embedded feature of the preprocessing applied before weaver's input
    /// (its data config's `(x − center) · scale` is mean = center, std = 1/scale); `None` for
    /// raw inputs.
    pub standardization: Option<(Vec<f32>, Vec<f32>)>,
}

impl Part {
    /// Writes the model to `path` (safetensors, atomically, same bytes for the same model).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = self
            .tensor_specs()
            .iter()
            .map(|s| (s.name.clone(), s.shape.clone(), le_bytes(&self.params()[s.range()])))
            .collect();
        fsutil::atomic_write_bytes(path, &serialize(tensors, &self.metadata()))
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        let floats = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(", "));
        let c = self.config();
        let l = self.layout();
        let config = json!({
            "embed": c.embed, "pair_embed": c.pair_embed, "embed_inputs": c.embed_inputs, "pair_inputs": c.pair_inputs, "heads": c.heads,
            "blocks": c.blocks, "cls_blocks": c.cls_blocks, "ffn_ratio": c.ffn_ratio, "fc": c.fc,
            "n_outputs": c.n_outputs, "output": c.output.name(),
        });
        let mut m = BTreeMap::new();
        m.insert("format".into(), FORMAT_NAME.into());
        m.insert("kind".into(), "part".into());
        m.insert("format_version".into(), FORMAT_VERSION.to_string());
        m.insert("config".into(), config.to_string());
        m.insert("event_features".into(), serde_json::to_string(&l.event_features).unwrap_or_default());
        m.insert("collection".into(), l.collection.clone());
        m.insert("object_features".into(), serde_json::to_string(&l.object_features).unwrap_or_default());
        m.insert("max_objects".into(), l.max_objects.to_string());
        for (k, v) in [
            ("event_mean", &self.event_mean),
            ("event_std", &self.event_std),
            ("object_mean", &self.object_mean),
            ("object_std", &self.object_std),
            ("pair_mean", &self.pair_mean),
            ("pair_std", &self.pair_std),
        ] {
            m.insert(k.into(), floats(v));
        }
        m
    }

    /// Reads a model written by [`Part::save`].
    pub fn load(path: &Path) -> Result<Part> {
        let data = io_guard::read_regular(path)?;
        let st = parse(path, &data)?;
        let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
        let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k).map(String::as_str).ok_or_else(|| {
                Error::format(
                    path,
                    format!("metadata has no '{k}' (not a nuisance ParT? use import_torch_part for PyTorch files)"),
                )
            })
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
        let bad = |k: &str, e: &dyn std::fmt::Display| Error::format(path, format!("{k}: {e}"));
        let c: serde_json::Value = serde_json::from_str(get("config")?).map_err(|e| bad("config", &e))?;
        let field = |k: &str| c.get(k).cloned().ok_or_else(|| Error::format(path, format!("config has no '{k}'")));
        let widths = |k: &str| -> Result<Vec<usize>> { serde_json::from_value(field(k)?).map_err(|e| bad(k, &e)) };
        let count = |k: &str| -> Result<usize> { serde_json::from_value(field(k)?).map_err(|e| bad(k, &e)) };
        let strings = |k: &str| -> Result<Vec<String>> { serde_json::from_str(get(k)?).map_err(|e| bad(k, &e)) };
        let cfg = PartConfig {
            embed: widths("embed")?,
            pair_embed: widths("pair_embed")?,
            embed_inputs: serde_json::from_value(field("embed_inputs")?).map_err(|e| bad("embed_inputs", &e))?,
            pair_inputs: serde_json::from_value(field("pair_inputs")?).map_err(|e| bad("pair_inputs", &e))?,
            heads: count("heads")?,
            blocks: count("blocks")?,
            cls_blocks: count("cls_blocks")?,
            ffn_ratio: count("ffn_ratio")?,
            fc: widths("fc")?,
            n_outputs: count("n_outputs")?,
            output: Output::parse(field("output")?.as_str().unwrap_or(""))?,
            seed: 0,
        };
        let max_objects: usize =
            get("max_objects")?.parse().map_err(|_| Error::format(path, "max_objects is not a number"))?;
        let layout =
            SetLayout::new(strings("event_features")?, get("collection")?, strings("object_features")?, max_objects)
                .map_err(|e| Error::format(path, e.to_string()))?;
        // No more parameters than the file's bytes can hold, before building (a rough bound
        // of the largest tensors: blocks × (4 + 2·ffn_ratio) E²).
        let dim = cfg.embed.last().copied().unwrap_or(0);
        let rough = dim
            .checked_mul(dim)
            .and_then(|d2| d2.checked_mul(cfg.blocks.saturating_add(cfg.cls_blocks)))
            .and_then(|v| v.checked_mul(4 + 2 * cfg.ffn_ratio.min(64)));
        if rough.is_none_or(|n| n > data.len() / 4) {
            return Err(Error::format(path, "metadata sizes need more weights than the file holds"));
        }
        let mut m = Part::new(layout, &cfg).map_err(|e| Error::format(path, e.to_string()))?;
        let mut flat = Vec::with_capacity(m.n_params());
        for s in m.tensor_specs() {
            flat.extend(read_tensor(path, &st, &s.name, &s.shape)?);
        }
        m.set_params(&flat)?;
        let fl = |k: &str| parse_f32_list(path, k, get(k)?);
        m.set_standardization(
            (fl("event_mean")?, fl("event_std")?),
            (fl("object_mean")?, fl("object_std")?),
            (fl("pair_mean")?, fl("pair_std")?),
        )
        .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(m)
    }
}

/// The shape of tensor `name`, if the file has it.
fn shape_of(st: &SafeTensors<'_>, name: &str) -> Option<Vec<usize>> {
    st.tensor(name).ok().map(|t| t.shape().to_vec())
}

/// Counts `prefix.{i}.` modules present as `prefix.{i}.{probe}`.
fn count_modules(st: &SafeTensors<'_>, prefix: &str, probe: &str) -> usize {
    (0..).take_while(|i| shape_of(st, &format!("{prefix}.{i}.{probe}")).is_some()).count()
}

/// A batch norm's eval-mode affine `(scale, shift)`: y = scale·x + shift.
fn batch_norm(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    n: usize,
    used: &mut HashSet<String>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut read = |k: &str| -> Result<Vec<f64>> {
        let full = format!("{name}.{k}");
        let v = read_tensor(path, st, &full, &[n])?;
        used.insert(full);
        Ok(v.into_iter().map(f64::from).collect())
    };
    let (g, b, rm, rv) = (read("weight")?, read("bias")?, read("running_mean")?, read("running_var")?);
    used.insert(format!("{name}.num_batches_tracked"));
    if let Some(i) = rv.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(Error::format(path, format!("'{name}.running_var' entry {i} is {}", rv[i])));
    }
    let scale: Vec<f64> = g.iter().zip(&rv).map(|(g, v)| g / (v + BN_EPS).sqrt()).collect();
    let shift = b.iter().zip(&rm).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    Ok((scale, shift))
}

/// Builds a [`Part`] from a weaver `ParticleTransformer` state dict saved with
/// `safetensors.torch.save_file` (see the module documentation and `scripts/export_part.py`).
/// Sizes are read from the shapes and must fit the layout; a tensor the import does not read
/// is refused by name.
pub fn import_torch_part(path: &Path, spec: &PartImport) -> Result<Part> {
    let data = io_guard::read_regular(path)?;
    let st = parse(path, &data)?;
    let l = &spec.layout;
    let f = if spec.embed_inputs.is_empty() { l.n_object() } else { spec.embed_inputs.len() };
    let fmt = |msg: String| Error::format(path, msg);
    // Sizes.
    let mut embed = Vec::new();
    while let Some(s) = shape_of(&st, &format!("embed.embed.{}.weight", 3 * embed.len() + 1)) {
        embed.push(s.first().copied().unwrap_or(0));
    }
    if embed.is_empty() {
        return Err(fmt("no 'embed.embed.1.weight' (see scripts/export_part.py for the layout)".into()));
    }
    let in_dim = shape_of(&st, "embed.embed.1.weight").map_or(0, |s| s.get(1).copied().unwrap_or(0));
    if in_dim != f {
        return Err(fmt(format!("the embedding takes {in_dim} particle features but {f} are named")));
    }
    let blocks = count_modules(&st, "blocks", "c_attn");
    let cls_blocks = count_modules(&st, "cls_blocks", "c_attn");
    let heads = shape_of(&st, "cls_blocks.0.c_attn").map_or(0, |s| s[0]);
    let dim = embed[embed.len() - 1];
    let ffn_ratio = shape_of(&st, "cls_blocks.0.fc1.weight").map_or(0, |s| s[0] / dim.max(1));
    let mut convs = Vec::new();
    let mut i = 1;
    while let Some(s) = shape_of(&st, &format!("pair_embed.embed.{i}.weight")) {
        convs.push(s);
        i += 3;
    }
    let has_pairs = !convs.is_empty();
    if has_pairs && spec.pair_inputs.len() != 4 {
        return Err(fmt("the file has a pair embedding: name the (pT, η, φ, E) object features (pair_inputs)".into()));
    }
    let mut fc = Vec::new();
    let mut last = None;
    for j in 0.. {
        if let Some(s) = shape_of(&st, &format!("fc.{j}.0.weight")) {
            fc.push(s[0]);
        } else if let Some(s) = shape_of(&st, &format!("fc.{j}.weight")) {
            last = Some(s[0]);
            break;
        } else {
            break;
        }
    }
    let n_outputs =
        last.ok_or_else(|| fmt("no final 'fc.{n}.weight' (weaver's fc_params = [] gives 'fc.0.weight')".into()))?;
    let cfg = PartConfig {
        embed,
        pair_embed: convs.iter().take(convs.len().saturating_sub(1)).map(|s| s[0]).collect(),
        embed_inputs: spec.embed_inputs.clone(),
        pair_inputs: if has_pairs { spec.pair_inputs.clone() } else { Vec::new() },
        heads,
        blocks,
        cls_blocks,
        ffn_ratio,
        fc,
        n_outputs,
        output: spec.output,
        seed: 0,
    };
    let mut m = Part::new(l.clone(), &cfg).map_err(|e| fmt(format!("the file's sizes do not make a ParT: {e}")))?;
    if has_pairs && convs.last().map(|s| s[0]) != Some(heads) {
        return Err(fmt(format!(
            "the pair embedding ends with {:?} outputs, expected one per head ({heads})",
            convs.last()
        )));
    }
    let mut used = HashSet::new();
    let mut flat = m.params().to_vec();
    // Every tensor with a weaver name of the same shape.
    for s in m.tensor_specs().to_vec() {
        if s.name.starts_with("pair_embed.") {
            continue;
        }
        flat[s.range()].copy_from_slice(&read_tensor(path, &st, &s.name, &s.shape)?);
        used.insert(s.name.clone());
    }
    // Particle input batch norm → standardisation (its affine is embed.input_bn.*).
    let (m_u, s_u) = spec.standardization.clone().unwrap_or((vec![0.0; f], vec![1.0; f]));
    if m_u.len() != f || s_u.len() != f {
        return Err(Error::arg("import_torch_part", format!("standardization needs {f} means and stds")));
    }
    let mut read_vec = |name: &str, n: usize| -> Result<Vec<f64>> {
        used.insert(name.to_string());
        Ok(read_tensor(path, &st, name, &[n])?.into_iter().map(f64::from).collect())
    };
    let rm = read_vec("embed.input_bn.running_mean", f)?;
    let rv = read_vec("embed.input_bn.running_var", f)?;
    used.insert("embed.input_bn.num_batches_tracked".into());
    let (mut obj_mean, mut obj_std) = (vec![0.0f32; l.n_object()], vec![1.0f32; l.n_object()]);
    for (jj, &j) in m.embed_idx().to_vec().iter().enumerate() {
        obj_mean[j] = (f64::from(m_u[jj]) + rm[jj] * f64::from(s_u[jj])) as f32;
        obj_std[j] = (f64::from(s_u[jj]) * (rv[jj] + BN_EPS).sqrt()) as f32;
    }
    let (mut pair_mean, mut pair_std) = (vec![0.0f32; 4], vec![1.0f32; 4]);
    if has_pairs {
        // Input BN: u_bn = γ0 (u − μ)/σ + β0 → standardisation (μ, σ), then γ0, β0 into layer 0.
        let mut g0 = Vec::new();
        let mut b0 = Vec::new();
        for k in ["weight", "bias", "running_mean", "running_var"] {
            let v = read_tensor(path, &st, &format!("pair_embed.embed.0.{k}"), &[4])?;
            used.insert(format!("pair_embed.embed.0.{k}"));
            match k {
                "weight" => g0 = v.iter().map(|x| f64::from(*x)).collect(),
                "bias" => b0 = v.iter().map(|x| f64::from(*x)).collect(),
                "running_mean" => pair_mean = v,
                _ => pair_std = v.iter().map(|x| ((f64::from(*x) + BN_EPS).sqrt()) as f32).collect(),
            }
        }
        used.insert("pair_embed.embed.0.num_batches_tracked".into());
        let mut a = 4;
        for (li, shape) in convs.iter().enumerate() {
            let out = shape[0];
            if shape.as_slice() != [out, a, 1] {
                return Err(fmt(format!(
                    "'pair_embed.embed.{}.weight' has shape {shape:?}, expected [{out}, {a}, 1]",
                    1 + 3 * li
                )));
            }
            let wname = format!("pair_embed.embed.{}.weight", 1 + 3 * li);
            let bname = format!("pair_embed.embed.{}.bias", 1 + 3 * li);
            let mut w: Vec<f64> = read_tensor(path, &st, &wname, &[out, a, 1])?.into_iter().map(f64::from).collect();
            let mut b: Vec<f64> = read_tensor(path, &st, &bname, &[out])?.into_iter().map(f64::from).collect();
            used.insert(wname);
            used.insert(bname);
            if li == 0 {
                // W (γ0 ⊙ s + β0) + b.
                for o in 0..out {
                    b[o] += (0..a).map(|q| w[o * a + q] * b0[q]).sum::<f64>();
                    for q in 0..a {
                        w[o * a + q] *= g0[q];
                    }
                }
            }
            let (scale, shift) = batch_norm(path, &st, &format!("pair_embed.embed.{}", 2 + 3 * li), out, &mut used)?;
            for o in 0..out {
                for q in 0..a {
                    w[o * a + q] *= scale[o];
                }
                b[o] = b[o] * scale[o] + shift[o];
            }
            let ws = m.spec(&format!("pair_embed.layers.{li}.weight")).map(|s| s.range());
            let bs = m.spec(&format!("pair_embed.layers.{li}.bias")).map(|s| s.range());
            let (Some(ws), Some(bs)) = (ws, bs) else {
                return Err(fmt(format!("pair layer {li} does not fit the configuration")));
            };
            flat[ws].iter_mut().zip(&w).for_each(|(d, v)| *d = *v as f32);
            flat[bs].iter_mut().zip(&b).for_each(|(d, v)| *d = *v as f32);
            a = out;
        }
    }
    let mut other: Vec<String> = st.names().into_iter().filter(|n| !used.contains(*n)).map(str::to_string).collect();
    if !other.is_empty() {
        other.sort_by_key(|n| natural_key(n));
        return Err(fmt(format!("import_torch_part does not read these tensors: {}", other.join(", "))));
    }
    m.set_params(&flat)?;
    let e = l.n_event();
    m.set_standardization((vec![0.0; e], vec![1.0; e]), (obj_mean, obj_std), (pair_mean, pair_std))?;
    Ok(m)
}
