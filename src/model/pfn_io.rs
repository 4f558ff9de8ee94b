//! Saving and loading PFNs, and importing a PyTorch PFN state dict.
//!
//! File layout (the [`Mlp`](super::Mlp) file family, `io.rs`): safetensors whose tensors are
//! the state dict of `scripts/export_pfn.py`'s module — `phi.0.weight` (out × in),
//! `phi.0.bias`, `phi.2.weight`, … for Φ and `f.0.weight`, … for F (Linear layers at the even
//! positions of two `nn.Sequential`s) — so `load_state_dict(safetensors.torch.load_file(p))`
//! works in Python. The `__metadata__` (JSON strings) holds `format` ("nuisance-pfn"),
//! `kind` ("pfn"), `format_version`, `phi` and `f` (all widths), `pooling`, `activation`,
//! `output`, `event_features`, `collection`, `object_features`, `max_objects`, and
//! `event_mean`, `event_std`, `object_mean`, `object_std`. Floats are written in shortest
//! round-trip form and parsed straight to f32, so a loaded model is bit-identical; keys and
//! tensors are sorted, so the same model gives the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::SafeTensors;

use super::activation::Activation;
use super::io::{
    le_bytes, missing, natural_key, not_safetensors, parse, parse_f32_list, read_tensor, serialize, FORMAT_VERSION,
};
use super::layout::SetLayout;
use super::loss::Output;
use super::pfn::{Pfn, PfnConfig, Pooling};
use crate::error::{Error, Result};
use crate::{fsutil, io_guard};

const FORMAT_NAME: &str = "nuisance-pfn";

/// A PFN's standardisation: `(event mean, event std, object mean, object std)`.
pub type Standardization = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// How to read a PyTorch PFN state dict (`scripts/export_pfn.py`'s layout).
#[derive(Clone, Debug)]
pub struct PfnImport {
    /// Which inputs the network reads; Φ's input width must be its object feature count and
    /// F's input width the latent size plus its event feature count.
    pub layout: SetLayout,
    /// The nonlinearity (a state dict does not record it).
    pub activation: Activation,
    /// The pooling the network was trained with.
    pub pooling: Pooling,
    /// Output layer.
    pub output: Output,
    /// `(event mean, event std, object mean, object std)` the network was trained with;
    /// `None` for raw inputs.
    pub standardization: Option<Standardization>,
}

/// The state-dict names of layer `l` of stack `stack` ("phi" or "f").
fn names(stack: &str, l: usize) -> (String, String) {
    (format!("{stack}.{}.weight", 2 * l), format!("{stack}.{}.bias", 2 * l))
}

impl Pfn {
    /// Writes the model to `path` (safetensors, atomically, same bytes for the same model).
    pub fn save(&self, path: &Path) -> Result<()> {
        let torch = self.params_flat();
        let mut tensors = Vec::new();
        let n_phi = self.n_phi();
        for (l, (inp, out)) in self.shapes().into_iter().enumerate() {
            let o = self.offset(l);
            let (w, b) = if l < n_phi { names("phi", l) } else { names("f", l - n_phi) };
            tensors.push((w, vec![out, inp], le_bytes(&torch[o..o + out * inp])));
            tensors.push((b, vec![out], le_bytes(&torch[o + out * inp..o + out * inp + out])));
        }
        fsutil::atomic_write_bytes(path, &serialize(tensors, &self.metadata()))
    }

    pub(super) fn metadata(&self) -> BTreeMap<String, String> {
        let floats = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(", "));
        let l = self.layout();
        let (em, es) = self.event_standardization();
        let (om, os) = self.object_standardization();
        let mut m = BTreeMap::new();
        m.insert("format".into(), FORMAT_NAME.into());
        m.insert("kind".into(), "pfn".into());
        m.insert("format_version".into(), FORMAT_VERSION.to_string());
        m.insert("phi".into(), serde_json::to_string(self.phi_widths()).unwrap_or_default());
        m.insert("f".into(), serde_json::to_string(self.f_widths()).unwrap_or_default());
        m.insert("pooling".into(), self.pooling().name().into());
        m.insert("activation".into(), self.activation().name().into());
        m.insert("output".into(), self.output().name().into());
        m.insert("event_features".into(), serde_json::to_string(&l.event_features).unwrap_or_default());
        m.insert("collection".into(), l.collection.clone());
        m.insert("object_features".into(), serde_json::to_string(&l.object_features).unwrap_or_default());
        m.insert("max_objects".into(), l.max_objects.to_string());
        m.insert("event_mean".into(), floats(em));
        m.insert("event_std".into(), floats(es));
        m.insert("object_mean".into(), floats(om));
        m.insert("object_std".into(), floats(os));
        m
    }

    /// Reads a model written by [`Pfn::save`].
    pub fn load(path: &Path) -> Result<Pfn> {
        let data = io_guard::read_regular(path)?;
        let st = parse(path, &data)?;
        let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| not_safetensors(path, e))?;
        let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k).map(String::as_str).ok_or_else(|| {
                Error::format(
                    path,
                    format!("metadata has no '{k}' (not a nuisance pfn? use import_torch_pfn for PyTorch files)"),
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
        let js = |k: &str| -> Result<serde_json::Value> {
            serde_json::from_str(get(k)?).map_err(|e| Error::format(path, format!("{k}: {e}")))
        };
        let widths = |k: &str| -> Result<Vec<usize>> {
            serde_json::from_value(js(k)?).map_err(|e| Error::format(path, format!("{k}: {e}")))
        };
        let strings = |k: &str| -> Result<Vec<String>> {
            serde_json::from_value(js(k)?).map_err(|e| Error::format(path, format!("{k}: {e}")))
        };
        let (phi, f) = (widths("phi")?, widths("f")?);
        if phi.len() < 2 || f.len() < 2 {
            return Err(Error::format(path, "metadata 'phi' and 'f' must list at least an input and an output width"));
        }
        // No more parameters than the file's bytes can hold (4 bytes each), before building.
        let params = phi.windows(2).chain(f.windows(2)).try_fold(0usize, |acc, p| {
            p[0].checked_mul(p[1]).and_then(|w| w.checked_add(p[1])).and_then(|n| acc.checked_add(n))
        });
        if params.is_none_or(|n| n > data.len() / 4) {
            return Err(Error::format(
                path,
                format!("metadata widths {phi:?} / {f:?} need more weights than the file holds"),
            ));
        }
        let max_objects: usize =
            get("max_objects")?.parse().map_err(|_| Error::format(path, "max_objects is not a number"))?;
        let layout =
            SetLayout::new(strings("event_features")?, get("collection")?, strings("object_features")?, max_objects)
                .map_err(|e| Error::format(path, e.to_string()))?;
        let cfg = PfnConfig {
            phi: phi[1..].to_vec(),
            f: f[1..f.len() - 1].to_vec(),
            n_outputs: f[f.len() - 1],
            pooling: Pooling::parse(get("pooling")?)?,
            activation: Activation::parse(get("activation")?)?,
            output: Output::parse(get("output")?)?,
            seed: 0,
        };
        let mut m = Pfn::new(layout, &cfg)?;
        if m.phi_widths() != phi || m.f_widths() != f {
            return Err(Error::format(path, format!("widths {phi:?} / {f:?} do not fit the layout's features")));
        }
        m.set_params_flat(&read_all(path, &st, &m)?)?;
        let fl = |k: &str| parse_f32_list(path, k, get(k)?);
        m.set_standardization(fl("event_mean")?, fl("event_std")?, fl("object_mean")?, fl("object_std")?)
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(m)
    }
}

/// Every layer's weight and bias in public order, shapes checked.
fn read_all(path: &Path, st: &SafeTensors<'_>, m: &Pfn) -> Result<Vec<f32>> {
    let n_phi = m.n_phi();
    let mut flat = Vec::with_capacity(m.n_params());
    for (l, (inp, out)) in m.shapes().into_iter().enumerate() {
        let (w, b) = if l < n_phi { names("phi", l) } else { names("f", l - n_phi) };
        flat.extend(read_tensor(path, st, &w, &[out, inp])?);
        flat.extend(read_tensor(path, st, &b, &[out])?);
    }
    Ok(flat)
}

/// Builds a [`Pfn`] from a PyTorch state dict saved with `safetensors.torch.save_file` in
/// `scripts/export_pfn.py`'s layout: `phi.{2l}.weight/bias` (Φ's Linear layers, each followed
/// by the activation) and `f.{2l}.weight/bias` (F's, the last one linear). The widths come
/// from the weight shapes and must fit the layout; any other tensor is refused by name.
pub fn import_torch_pfn(path: &Path, spec: &PfnImport) -> Result<Pfn> {
    let data = io_guard::read_regular(path)?;
    let st = parse(path, &data)?;
    let mut stacks: Vec<Vec<usize>> = Vec::new();
    let mut used = std::collections::HashSet::new();
    for stack in ["phi", "f"] {
        let mut weights: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{stack}.")) && n.ends_with(".weight"))
            .map(str::to_string)
            .collect();
        weights.sort_by_key(|n| natural_key(n));
        if weights.is_empty() {
            return Err(Error::format(
                path,
                format!("no '{stack}.*.weight' tensors (see scripts/export_pfn.py for the layout)"),
            ));
        }
        let mut widths = Vec::new();
        for (l, w) in weights.iter().enumerate() {
            let (want_w, want_b) = names(stack, l);
            if *w != want_w {
                return Err(missing(path, &want_w, &st));
            }
            let t = st.tensor(w).map_err(|_| missing(path, w, &st))?;
            let &[out, inp] = t.shape() else {
                return Err(Error::format(path, format!("tensor '{w}' has shape {:?}, expected out × in", t.shape())));
            };
            st.tensor(&want_b).map_err(|_| missing(path, &want_b, &st))?;
            if l == 0 {
                widths.push(inp);
            }
            widths.push(out);
            used.insert(want_w);
            used.insert(want_b);
        }
        stacks.push(widths);
    }
    let mut other: Vec<String> = st.names().into_iter().filter(|n| !used.contains(*n)).map(str::to_string).collect();
    if !other.is_empty() {
        other.sort_by_key(|n| natural_key(n));
        return Err(Error::format(
            path,
            format!("import_torch_pfn reads phi.* and f.* Linear layers only; other tensors: {}", other.join(", ")),
        ));
    }
    let (phi, f) = (&stacks[0], &stacks[1]);
    let l = &spec.layout;
    if phi[0] != l.n_object() || f[0] != phi[phi.len() - 1] + l.n_event() {
        return Err(Error::format(
            path,
            format!(
                "Φ takes {} features and F {} inputs, but the layout has {} object features and a latent of {} plus {} event features",
                phi[0],
                f[0],
                l.n_object(),
                phi[phi.len() - 1],
                l.n_event()
            ),
        ));
    }
    let cfg = PfnConfig {
        phi: phi[1..].to_vec(),
        f: f[1..f.len() - 1].to_vec(),
        n_outputs: f[f.len() - 1],
        pooling: spec.pooling,
        activation: spec.activation,
        output: spec.output,
        seed: 0,
    };
    let mut m = Pfn::new(l.clone(), &cfg)?;
    m.set_params_flat(&read_all(path, &st, &m)?)?;
    if let Some((em, es, om, os)) = spec.standardization.clone() {
        m.set_standardization(em, es, om, os)?;
    }
    Ok(m)
}
