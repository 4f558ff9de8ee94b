//! Saving and loading models as safetensors, and importing PyTorch `nn.Sequential` MLPs.
//!
//! File layout (format version 1): tensors named as PyTorch's `nn.Sequential` state dict of
//! `Linear, act, Linear, act, …, Linear` — `net.0.weight` (out × in), `net.0.bias`,
//! `net.2.weight`, … — so `model.load_state_dict(safetensors.torch.load_file(p))` works in
//! Python. Everything else is in the safetensors `__metadata__` as JSON strings: `format`
//! ("nuisance-mlp"), `format_version`, `layers`, `activation`, `output`, `dropout`,
//! `feature_names` (absent when unknown), `mean`, `std`. Floats in the metadata are written
//! in Rust's shortest round-trip form and parsed straight to f32, so a loaded model is
//! bit-identical to the saved one.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::activation::Activation;
use super::loss::Output;
use super::mlp::{Mlp, MlpConfig};
use crate::error::{Error, Result};
use crate::fsutil;

/// Version written into (and required from) the metadata of saved models.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "nuisance-mlp";

/// How to read a PyTorch MLP state dict saved as safetensors.
#[derive(Clone, Debug, Default)]
pub struct TorchImport {
    /// Expected widths (inputs first); `None` takes them from the weight shapes.
    pub layers: Option<Vec<usize>>,
    /// Hidden activation (the state dict does not record it); default ReLU.
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
}

impl Mlp {
    /// Writes the model to `path` (safetensors, atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let torch = self.params_flat();
        let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (l, (out, inp)) in self.layer_shapes().into_iter().enumerate() {
            let o = self.offset(l);
            let w = &torch[o..o + out * inp];
            let b = &torch[o + out * inp..o + out * inp + out];
            bytes.push((format!("net.{}.weight", 2 * l), vec![out, inp], le_bytes(w)));
            bytes.push((format!("net.{}.bias", 2 * l), vec![out], le_bytes(b)));
        }
        let views = bytes
            .iter()
            .map(|(n, shape, b)| {
                let v = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                    .map_err(|e| Error::io(path, e))?;
                Ok((n.clone(), v))
            })
            .collect::<Result<Vec<_>>>()?;
        let data = safetensors::serialize(views, Some(self.metadata())).map_err(|e| Error::io(path, e))?;
        fsutil::atomic_write_bytes(path, &data)
    }

    /// Reads a model written by [`Mlp::save`].
    pub fn load(path: &Path) -> Result<Mlp> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
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

    fn metadata(&self) -> HashMap<String, String> {
        let floats = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(", "));
        let mut m = HashMap::new();
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

/// Builds an [`Mlp`] from a PyTorch MLP state dict saved with `safetensors.torch.save_file`.
///
/// Weights are stored out × in (as `torch.nn.Linear`); F32 and F64 tensors are accepted.
/// Errors name the missing tensor, or the tensor whose shape differs with both shapes.
pub fn import_torch(path: &Path, spec: &TorchImport) -> Result<Mlp> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = parse(path, &data)?;
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
    let cfg = MlpConfig {
        activation: spec.activation.unwrap_or(Activation::Relu),
        output: spec.output.unwrap_or(Output::Sigmoid),
        dropout: 0.0,
        seed: 0,
        feature_names: spec.feature_names.clone(),
    };
    let mut m = Mlp::new(&layers, cfg)?;
    m.set_params_flat(&read_params(path, &st, &names, &m.layer_shapes())?)?;
    let d = m.n_inputs();
    let mean = spec.mean.clone().unwrap_or_else(|| vec![0.0; d]);
    let std = spec.std.clone().unwrap_or_else(|| vec![1.0; d]);
    m.set_standardization(mean, std)?;
    Ok(m)
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
fn natural_key(s: &str) -> Vec<(u64, String)> {
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

fn read_tensor(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
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

fn parse<'a>(path: &Path, data: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(data).map_err(|e| not_safetensors(path, e))
}

fn not_safetensors(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("not a safetensors file ({e})"))
}

fn missing(path: &Path, name: &str, st: &SafeTensors<'_>) -> Error {
    let mut names = st.names();
    names.sort_by_key(|n| natural_key(n));
    Error::format(path, format!("missing tensor '{name}'; the file has: {}", names.join(", ")))
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn parse_f32(path: &Path, key: &str, s: &str) -> Result<f32> {
    s.trim().parse::<f32>().map_err(|_| Error::format(path, format!("metadata '{key}': '{s}' is not a number")))
}

/// Parses "[a, b, …]" straight to f32 (no detour through f64, so no double rounding).
fn parse_f32_list(path: &Path, key: &str, s: &str) -> Result<Vec<f32>> {
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
