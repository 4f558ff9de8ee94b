//! Saving and loading models as safetensors, and importing PyTorch `nn.Sequential` MLPs.
//!
//! File layout (format version 1): tensors named as PyTorch's `nn.Sequential` state dict of
//! `Linear, act, Linear, act, …, Linear` — `net.0.weight` (out × in), `net.0.bias`,
//! `net.2.weight`, … — so `model.load_state_dict(safetensors.torch.load_file(p))` works in
//! Python. Everything else is in the safetensors `__metadata__` as JSON strings: `format`
//! ("nuisance-mlp"), `format_version`, `layers`, `activation`, `output`, `dropout`,
//! `feature_names` (absent when unknown), `mean`, `std`. Floats in the metadata are written
//! in Rust's shortest round-trip form and parsed straight to f32, so a loaded model is
//! bit-identical to the saved one. The file is written with its header keys sorted, so the
//! same model always gives the same bytes.
//!
//! Reading refuses what it cannot trust: files that are not regular or larger than the read
//! limit ([`crate::io_guard`]), metadata `layers` that need more weights than the file holds,
//! and (in [`import_torch`]) any tensor that is not part of a Linear weight/bias pair.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::activation::Activation;
use super::loss::Output;
use super::mlp::{Mlp, MlpConfig};
use crate::error::{Error, Result};
use crate::{fsutil, io_guard};

/// Most layers a saved model's metadata may list.
const MAX_LAYERS: usize = 10_000;

/// Version written into (and required from) the metadata of saved models.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "nuisance-mlp";

/// How to read a PyTorch MLP state dict saved as safetensors.
#[derive(Clone, Debug, Default)]
pub struct TorchImport {
    /// Expected widths (inputs first); `None` takes them from the weight shapes.
    pub layers: Option<Vec<usize>>,
    /// Hidden activation. A PyTorch state dict does not record it, so it is required unless
    /// the file was written by nuisance (its metadata has it) or the model has no hidden layer.
    pub activation: Option<Activation>,
    /// Output layer; default sigmoid.
    pub output: Option<Output>,
    /// `(weight, bias)` tensor names per layer; `None` takes every 2-D `*.weight` tensor in
    /// natural order (`net.2` before `net.10`) with its `*.bias`.
    pub tensor_names: Option<Vec<(String, String)>>,
    /// Feature names of the inputs.
    pub feature_names: Option<Vec<String>>,
    /// Standardisation the model was trained with (identity when `None`).
    pub mean: Option<Vec<f32>>,
    /// Standardisation scale (ones when `None`).
    pub std: Option<Vec<f32>>,
    /// The model was trained on the inputs as they are: no standardisation, and no warning
    /// about its absence.
    pub raw_inputs: bool,
}

impl Mlp {
    /// Writes the model to `path` (safetensors, atomically). The same model gives the same
    /// bytes: tensors and metadata keys are written in sorted order.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_as(path, "mlp")
    }

    /// [`Mlp::save`] with `kind` (the [`super::Model::kind`] that [`super::load_model`]
    /// rebuilds) in the metadata.
    pub(crate) fn save_as(&self, path: &Path, kind: &str) -> Result<()> {
        self.save_with(path, kind, &BTreeMap::new())
    }

    /// [`Mlp::save_as`] with `extra` metadata keys (a model that wraps an MLP stores its own
    /// settings there; read them back with [`saved_metadata`]).
    pub(crate) fn save_with(&self, path: &Path, kind: &str, extra: &BTreeMap<String, String>) -> Result<()> {
        let torch = self.params_flat();
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (l, (out, inp)) in self.layer_shapes().into_iter().enumerate() {
            let o = self.offset(l);
            let w = &torch[o..o + out * inp];
            let b = &torch[o + out * inp..o + out * inp + out];
            tensors.push((format!("net.{}.weight", 2 * l), vec![out, inp], le_bytes(w)));
            tensors.push((format!("net.{}.bias", 2 * l), vec![out], le_bytes(b)));
        }
        let mut meta = self.metadata();
        meta.insert("kind".into(), kind.into());
        meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        fsutil::atomic_write_bytes(path, &serialize(tensors, &meta))
    }

    /// Reads a model written by [`Mlp::save`].
    pub fn load(path: &Path) -> Result<Mlp> {
        let data = io_guard::read_regular(path)?;
        let st = parse(path, &data)?;
        let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k).ok_or_else(|| {
                Error::format(
                    path,
                    format!("metadata has no '{k}' (not a nuisance model? use import_torch for PyTorch files)"),
                )
            })
        };
        if get("format")? != FORMAT_NAME {
            return Err(Error::format(
                path,
                format!("metadata format is '{}', expected '{FORMAT_NAME}'", get("format")?),
            ));
        }
        let version: u32 =
            get("format_version")?.parse().map_err(|_| Error::format(path, "format_version is not a number"))?;
        if version != FORMAT_VERSION {
            return Err(Error::format(
                path,
                format!("format version {version} is not supported (this build reads {FORMAT_VERSION})"),
            ));
        }
        let layers: Vec<usize> =
            serde_json::from_str(get("layers")?).map_err(|e| Error::format(path, format!("layers: {e}")))?;
        check_layers(path, &layers, data.len())?;
        let feature_names: Option<Vec<String>> = match meta.get("feature_names") {
            Some(s) => Some(serde_json::from_str(s).map_err(|e| Error::format(path, format!("feature_names: {e}")))?),
            None => None,
        };
        let cfg = MlpConfig {
            activation: Activation::parse(get("activation")?)?,
            output: Output::parse(get("output")?)?,
            dropout: parse_f32(path, "dropout", get("dropout")?)?,
            seed: 0,
            feature_names,
        };
        let mut m = Mlp::new(&layers, cfg)?;
        let names: Vec<(String, String)> =
            (0..m.n_layers()).map(|l| (format!("net.{}.weight", 2 * l), format!("net.{}.bias", 2 * l))).collect();
        m.set_params_flat(&read_params(path, &st, &names, &m.layer_shapes())?)?;
        let mean = parse_f32_list(path, "mean", get("mean")?)?;
        let std = parse_f32_list(path, "std", get("std")?)?;
        m.set_standardization(mean, std).map_err(|e| Error::format(path, e.to_string()))?;
        Ok(m)
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        let floats = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(", "));
        let mut m = BTreeMap::new();
        m.insert("format".into(), FORMAT_NAME.into());
        m.insert("format_version".into(), FORMAT_VERSION.to_string());
        m.insert("layers".into(), serde_json::to_string(self.layers()).unwrap_or_default());
        m.insert("activation".into(), self.activation().name().into());
        m.insert("output".into(), self.output().name().into());
        m.insert("dropout".into(), format!("{:e}", self.dropout()));
        if let Some(n) = self.feature_names() {
            m.insert("feature_names".into(), serde_json::to_string(n).unwrap_or_default());
        }
        m.insert("mean".into(), floats(self.mean()));
        m.insert("std".into(), floats(self.std()));
        m
    }
}

/// The metadata of a model file written by nuisance.
pub(crate) fn saved_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let data = io_guard::read_regular(path)?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
    Ok(header.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// The `kind` in the metadata of a model file written by nuisance (`None` for files written
/// before models had kinds: those are fused MLPs).
pub(crate) fn saved_kind(path: &Path) -> Result<Option<String>> {
    let data = io_guard::read_regular(path)?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
    Ok(header.metadata().as_ref().and_then(|m| m.get("kind").cloned()))
}

/// Builds an [`Mlp`] from a PyTorch MLP state dict saved with `safetensors.torch.save_file`.
///
/// Weights are stored out × in (as `torch.nn.Linear`); F32 and F64 tensors are accepted.
/// Errors name the missing tensor, or the tensor whose shape differs with both shapes. Every
/// tensor of the file must belong to a Linear weight/bias pair: normalisation layers,
/// convolutions or anything else would make the imported model compute something else, so
/// they are refused with their names. See [`import_torch_with_warnings`] for the warnings.
pub fn import_torch(path: &Path, spec: &TorchImport) -> Result<Mlp> {
    import_torch_with_warnings(path, spec).map(|(m, _)| m)
}

/// [`import_torch`], with warnings for the user: no standardisation given (the model will
/// see the inputs as they are, which is wrong for a model trained on standardised inputs)
/// unless `spec.raw_inputs` says that is intended.
pub fn import_torch_with_warnings(path: &Path, spec: &TorchImport) -> Result<(Mlp, Vec<String>)> {
    let data = io_guard::read_regular(path)?;
    let st = parse(path, &data)?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
    // A file nuisance wrote records what PyTorch does not.
    let ours: HashMap<String, String> =
        header.metadata().clone().filter(|m| m.get("format").is_some_and(|f| f == FORMAT_NAME)).unwrap_or_default();
    let names = match &spec.tensor_names {
        Some(n) => n.clone(),
        None => infer_names(path, &st)?,
    };
    if names.is_empty() {
        return Err(Error::format(path, "no '*.weight' tensors found"));
    }
    let mut layers = Vec::with_capacity(names.len() + 1);
    for (i, (w, b)) in names.iter().enumerate() {
        st.tensor(b).map_err(|_| missing(path, b, &st))?;
        let t = st.tensor(w).map_err(|_| missing(path, w, &st))?;
        let &[out, inp] = t.shape() else {
            return Err(Error::format(
                path,
                format!("tensor '{w}' has shape {:?}, expected a 2-D weight (out × in)", t.shape()),
            ));
        };
        if i == 0 {
            layers.push(inp);
        }
        layers.push(out);
    }
    if let Some(want) = &spec.layers {
        if *want != layers {
            return Err(Error::format(
                path,
                format!("layers {want:?} were requested but the weights have widths {layers:?}"),
            ));
        }
    }
    let activation = match (spec.activation, ours.get("activation")) {
        (Some(a), _) => a,
        (None, Some(a)) => Activation::parse(a)?,
        // No hidden layer: the activation is never applied.
        (None, None) if layers.len() == 2 => Activation::Relu,
        (None, None) => {
            return Err(Error::BadOption {
                func: "import_torch".into(),
                key: "activation".into(),
                problem: "is needed: a PyTorch state dict does not record the hidden activation; \
                          pass the one the model was trained with, e.g. #{ activation: \"relu\" }"
                    .into(),
            })
        }
    };
    let output = match (spec.output, ours.get("output")) {
        (Some(o), _) => o,
        (None, Some(o)) => Output::parse(o)?,
        (None, None) => Output::Sigmoid,
    };
    let cfg = MlpConfig { activation, output, dropout: 0.0, seed: 0, feature_names: spec.feature_names.clone() };
    let mut m = Mlp::new(&layers, cfg)?;
    m.set_params_flat(&read_params(path, &st, &names, &m.layer_shapes())?)?;
    refuse_unused(path, &st, &names)?;
    let d = m.n_inputs();
    let stored = |k: &str| ours.get(k).map(|s| parse_f32_list(path, k, s)).transpose();
    let mean = spec.mean.clone().or(stored("mean")?);
    let std = spec.std.clone().or(stored("std")?);
    let mut warnings = Vec::new();
    if mean.is_none() && std.is_none() && !spec.raw_inputs {
        warnings.push(format!(
            "import_torch: no standardization given for '{}', so the model sees the inputs as they \
             are; if it was trained on standardized inputs, pass #{{ mean: …, std: … }} from its training \
             data (or #{{ raw_inputs: true }} to say it was not)",
            path.display()
        ));
    }
    m.set_standardization(mean.unwrap_or_else(|| vec![0.0; d]), std.unwrap_or_else(|| vec![1.0; d]))?;
    Ok((m, warnings))
}

/// Refuses tensors that are not among the weight/bias pairs being read.
fn refuse_unused(path: &Path, st: &SafeTensors<'_>, names: &[(String, String)]) -> Result<()> {
    let used: std::collections::HashSet<&str> = names.iter().flat_map(|(w, b)| [w.as_str(), b.as_str()]).collect();
    let mut other: Vec<String> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !used.contains(n.as_str()))
        .map(|(n, t)| format!("{n} {:?}", t.shape()))
        .collect();
    if other.is_empty() {
        return Ok(());
    }
    other.sort_by_key(|n| natural_key(n));
    Err(Error::format(
        path,
        format!(
            "import_torch reads a stack of Linear layers only; these tensors are not Linear weight/bias pairs: {} \
             (normalisation layers, convolutions and other layers are not supported)",
            other.join(", ")
        ),
    ))
}

/// Checks a saved model's `layers` before building it: a sane count, positive widths, and
/// no more parameters than the file's `len` bytes can hold (4 bytes each).
fn check_layers(path: &Path, layers: &[usize], len: usize) -> Result<()> {
    if layers.len() < 2 || layers.len() > MAX_LAYERS || layers.contains(&0) {
        return Err(Error::format(
            path,
            format!("metadata 'layers' must list 2 to {MAX_LAYERS} positive widths, got {} widths", layers.len()),
        ));
    }
    let params = layers.windows(2).try_fold(0usize, |acc, p| {
        p[0].checked_mul(p[1]).and_then(|w| w.checked_add(p[1])).and_then(|n| acc.checked_add(n))
    });
    match params {
        Some(n) if n <= len / 4 => Ok(()),
        _ => Err(Error::format(
            path,
            format!("metadata 'layers' {layers:?} needs more weights than the file's {len} bytes hold"),
        )),
    }
}

/// The weight-bias pairs in natural order of their names.
fn infer_names(path: &Path, st: &SafeTensors<'_>) -> Result<Vec<(String, String)>> {
    let mut weights: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".weight"))
        .filter(|n| st.tensor(n).is_ok_and(|t| t.shape().len() == 2))
        .collect();
    weights.sort_by_key(|n| natural_key(n));
    weights
        .into_iter()
        .map(|w| {
            let b = format!("{}.bias", &w[..w.len() - ".weight".len()]);
            if st.tensor(&b).is_err() {
                return Err(missing(path, &b, st));
            }
            Ok((w.to_string(), b))
        })
        .collect()
}

/// Sort key treating digit runs as numbers: `net.10` after `net.2`.
pub(super) fn natural_key(s: &str) -> Vec<(u64, String)> {
    s.split('.').map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_string())).collect()
}

/// All parameters in PyTorch order, checking each tensor's shape against `(out, in)`.
fn read_params(
    path: &Path,
    st: &SafeTensors<'_>,
    names: &[(String, String)],
    shapes: &[(usize, usize)],
) -> Result<Vec<f32>> {
    if names.len() != shapes.len() {
        return Err(Error::format(path, format!("{} tensor pairs for {} layers", names.len(), shapes.len())));
    }
    let mut flat = Vec::new();
    for ((w, b), &(out, inp)) in names.iter().zip(shapes) {
        flat.extend(read_tensor(path, st, w, &[out, inp])?);
        flat.extend(read_tensor(path, st, b, &[out])?);
    }
    Ok(flat)
}

pub(super) fn read_tensor(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st.tensor(name).map_err(|_| missing(path, name, st))?;
    if t.shape() != shape {
        return Err(Error::format(path, format!("tensor '{name}' has shape {:?}, expected {shape:?}", t.shape())));
    }
    match t.dtype() {
        Dtype::F32 => Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F64 => Ok(t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()),
        other => {
            Err(Error::format(path, format!("tensor '{name}' has dtype {other:?}; only F32 and F64 are supported")))
        }
    }
}

pub(super) fn parse<'a>(path: &Path, data: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(data).map_err(|e| not_safetensors(path, e))
}

pub(super) fn not_safetensors(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("not a safetensors file ({e})"))
}

/// A tensor the file lacks (a name of the `tensors` option, or a weight's bias), with the
/// file's tensors and the nearest of them.
pub(super) fn missing(path: &Path, name: &str, st: &SafeTensors<'_>) -> Error {
    let mut names = st.names();
    names.sort_by_key(|n| natural_key(n));
    // A guess only when one name is nearest ('net.3.bias' is as near 'net.0.bias' as 'net.2.bias').
    let dist = |n: &str| crate::error::levenshtein(&name.to_lowercase(), &n.to_lowercase());
    let guess = match crate::error::nearest(name, names.iter().copied()) {
        Some(n) if names.iter().filter(|m| dist(m) == dist(n)).count() == 1 => format!(" (did you mean '{n}'?)"),
        _ => String::new(),
    };
    Error::format(path, format!("missing tensor '{name}'{guess}; the file has: {}", names.join(", ")))
}

/// A safetensors file of F32 tensors with sorted metadata and tensors, so equal inputs give
/// equal bytes (the `safetensors` crate's writer takes the metadata as a `HashMap`, whose
/// order changes from run to run). Layout: header length (u64 LE), the JSON header padded
/// with spaces to a multiple of 8, the tensor data in header order.
pub(super) fn serialize(mut tensors: Vec<(String, Vec<usize>, Vec<u8>)>, meta: &BTreeMap<String, String>) -> Vec<u8> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut header = format!("{{\"__metadata__\":{}", serde_json::to_string(meta).unwrap_or_default());
    let mut offset = 0;
    for (name, shape, bytes) in &tensors {
        let end = offset + bytes.len();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{end}]}}",
            json(name)
        ));
        offset = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header.as_bytes());
    for (_, _, bytes) in &tensors {
        out.extend(bytes);
    }
    out
}

pub(super) fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn parse_f32(path: &Path, key: &str, s: &str) -> Result<f32> {
    s.trim().parse::<f32>().map_err(|_| Error::format(path, format!("metadata '{key}': '{s}' is not a number")))
}

/// Parses "[a, b, …]" straight to f32 (no detour through f64, so no double rounding).
pub(super) fn parse_f32_list(path: &Path, key: &str, s: &str) -> Result<Vec<f32>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| Error::format(path, format!("metadata '{key}' is not a list")))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|p| parse_f32(path, key, p)).collect()
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
