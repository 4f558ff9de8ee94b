//! The glue between a set network written on candle-core tensors and the [`Model`] interface:
//! any network over the objects of a collection (ParticleNet, a particle transformer) defines
//! its parameters in a [`ParamStore`] and its forward pass on a [`SetBatch`] by implementing
//! [`SetNet`]; [`SetModel`] turns it into a [`Model`] (inputs in a [`SetLayout`], padding mask
//! from the count entry, standardisation, logits, input and weight gradients by candle's
//! autograd, flat parameters with named groups, safetensors save/load in `set_io.rs`).
//!
//! **Batches without padding.** A [`SetBatch`] holds the *real* objects of a block of events
//! only, one row each (`R × f`, events in order, objects in slot order), so no padded slot is
//! ever computed and nothing can leak from one: per-object layers are GEMMs over `R` rows;
//! [`SetBatch::pool_mean`] / [`SetBatch::pool_sum`] pool them per event; a network that needs
//! a dense `B × P × C` block (attention) takes [`SetBatch::padded`] and [`SetBatch::mask`]
//! and returns to rows with [`SetBatch::unpad`]. Empty events pool to zeros.
//!
//! **Gradients.** Logits come back to the host; each event's ∂objective/∂z is computed there
//! by the same per-row functions as for the MLPs (`objective_row`, `loss_grad_row`), and one
//! backward pass of the surrogate `Σ z ⊙ g` gives the input gradient (the rows of the input
//! variable, divided by the standardisation scale, in physical units; zero on padded slots
//! and on the count) and the weight gradient (per [`Param`], flat order). The network's
//! forward is the inference forward (batch norms with their running statistics, no dropout),
//! so gradients and attacks see the same function; training uses it too unless the network
//! has a training mode ([`SetNet::train_grad`]: batch statistics, dropout).
//!
//! **Parameters.** The flat order is the order in which the network adds its [`Param`]s to
//! the store, each tensor row-major in its PyTorch shape, so a PyTorch state dict maps onto
//! it by name; the working layout is the flat order. Groups are contiguous runs of params
//! with the same group name. Buffers (batch-norm running statistics) are saved but are not
//! parameters.
//!
//! [`Model`]: super::Model
//! [`SetLayout`]: super::SetLayout
//! [`SetModel`]: super::SetModel

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use super::interface::ParamGroup;
use crate::error::{Error, Result};

/// Converts a candle error into the crate's.
pub(crate) fn ce(e: candle_core::Error) -> Error {
    Error::Tensor(e.to_string())
}

/// One trainable tensor of a set network.
#[derive(Debug)]
pub struct Param {
    /// Its state-dict name (`edge_convs.0.convs.0.weight`).
    pub name: String,
    /// Its parameter group (contiguous in the flat order).
    pub group: String,
    /// Its PyTorch shape.
    pub shape: Vec<usize>,
    /// The values.
    pub var: Var,
}

/// A non-trainable tensor (batch-norm running statistics), saved with the model.
#[derive(Debug)]
pub struct Buffer {
    /// Its state-dict name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The values.
    pub tensor: Tensor,
}

/// The parameters and buffers of a set network, in flat order. Cloning copies the values (a
/// clone never shares weights with the original).
#[derive(Debug, Default)]
pub struct ParamStore {
    params: Vec<Param>,
    buffers: Vec<Buffer>,
}

impl Clone for ParamStore {
    fn clone(&self) -> Self {
        let copy = |t: &Tensor| t.copy().unwrap_or_else(|_| t.clone());
        ParamStore {
            params: self
                .params
                .iter()
                .map(|p| Param {
                    name: p.name.clone(),
                    group: p.group.clone(),
                    shape: p.shape.clone(),
                    var: Var::from_tensor(&copy(p.var.as_tensor())).unwrap_or_else(|_| p.var.clone()),
                })
                .collect(),
            buffers: self
                .buffers
                .iter()
                .map(|b| Buffer { name: b.name.clone(), shape: b.shape.clone(), tensor: copy(&b.tensor) })
                .collect(),
        }
    }
}

fn tensor_of(values: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    if values.len() != n {
        return Err(Error::Shape { op: "set network", expected: format!("{n} values"), got: values.len().to_string() });
    }
    Tensor::from_vec(values, shape, &Device::Cpu).map_err(ce)
}

/// One saved tensor: its name, shape and values in row-major order.
pub type NamedValues = (String, Vec<usize>, Vec<f32>);

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter with initial values (row-major in `shape`); returns its index.
    pub fn add(&mut self, name: &str, group: &str, shape: &[usize], values: Vec<f32>) -> Result<usize> {
        let var = Var::from_tensor(&tensor_of(values, shape)?).map_err(ce)?;
        self.params.push(Param { name: name.into(), group: group.into(), shape: shape.to_vec(), var });
        Ok(self.params.len() - 1)
    }

    /// Adds a buffer; returns its index.
    pub fn add_buffer(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<usize> {
        let tensor = tensor_of(values, shape)?;
        self.buffers.push(Buffer { name: name.into(), shape: shape.to_vec(), tensor });
        Ok(self.buffers.len() - 1)
    }

    /// Parameter `i` as a tensor of the autograd graph.
    pub fn p(&self, i: usize) -> &Tensor {
        self.params[i].var.as_tensor()
    }

    /// Buffer `i`.
    pub fn b(&self, i: usize) -> &Tensor {
        &self.buffers[i].tensor
    }

    /// Buffer `i` as host values.
    pub fn buffer_values(&self, i: usize) -> Result<Vec<f32>> {
        self.buffers[i].tensor.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)
    }

    /// Replaces buffer `i` (same shape).
    pub fn set_buffer(&mut self, i: usize, values: Vec<f32>) -> Result<()> {
        let b = &mut self.buffers[i];
        b.tensor = tensor_of(values, &b.shape)?;
        Ok(())
    }

    /// The parameters, in flat order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The buffers.
    pub fn buffers(&self) -> &[Buffer] {
        &self.buffers
    }

    /// Number of parameter values.
    pub fn n_params(&self) -> usize {
        self.params.iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }

    /// All parameter values in flat order.
    pub fn flat(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.n_params());
        for p in &self.params {
            out.extend(p.var.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?);
        }
        Ok(out)
    }

    /// Replaces all parameter values (flat order); errors on a wrong length or a non-finite
    /// value.
    pub fn set_flat(&mut self, flat: &[f32]) -> Result<()> {
        if flat.len() != self.n_params() {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", self.n_params()),
                got: flat.len().to_string(),
            });
        }
        if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
            return Err(Error::arg("set_params", format!("parameter {i} is not finite ({})", flat[i])));
        }
        let mut o = 0;
        for p in &self.params {
            let n: usize = p.shape.iter().product();
            let t = tensor_of(flat[o..o + n].to_vec(), &p.shape)?;
            p.var.set(&t).map_err(ce)?;
            o += n;
        }
        Ok(())
    }

    /// The groups: contiguous runs of parameters with the same group name.
    pub fn groups(&self) -> Vec<ParamGroup> {
        let mut out: Vec<ParamGroup> = Vec::new();
        let mut o = 0;
        for p in &self.params {
            let n: usize = p.shape.iter().product();
            match out.last_mut() {
                Some(g) if g.name == p.group => g.range.end = o + n,
                _ => out.push(ParamGroup { name: p.group.clone(), range: o..o + n }),
            }
            o += n;
        }
        out
    }

    /// The flat gradient from a backward pass (zeros for parameters the graph did not reach).
    pub fn grad_flat(&self, grads: &candle_core::backprop::GradStore) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.n_params());
        for p in &self.params {
            match grads.get(p.var.as_tensor()) {
                Some(g) => out.extend(g.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?),
                None => out.extend(std::iter::repeat_n(0.0f32, p.shape.iter().product())),
            }
        }
        Ok(out)
    }

    /// Every parameter and buffer as `(name, shape, values)`, for saving.
    pub fn named_values(&self) -> Result<Vec<NamedValues>> {
        let mut out = Vec::new();
        for p in &self.params {
            let v = p.var.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
            out.push((p.name.clone(), p.shape.clone(), v));
        }
        for (i, b) in self.buffers.iter().enumerate() {
            out.push((b.name.clone(), b.shape.clone(), self.buffer_values(i)?));
        }
        Ok(out)
    }

    /// Sets every parameter and buffer from `read(name, shape)`, shapes checked by the reader.
    pub fn load_named(&mut self, mut read: impl FnMut(&str, &[usize]) -> Result<Vec<f32>>) -> Result<()> {
        let mut flat = Vec::with_capacity(self.n_params());
        for p in &self.params {
            flat.extend(read(&p.name, &p.shape)?);
        }
        self.set_flat(&flat)?;
        for i in 0..self.buffers.len() {
            let (name, shape) = (self.buffers[i].name.clone(), self.buffers[i].shape.clone());
            let v = read(&name, &shape)?;
            if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::arg("load", format!("{name}[{j}] is not finite")));
            }
            self.set_buffer(i, v)?;
        }
        Ok(())
    }

    /// Whether the store has a parameter or buffer of this name.
    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name) || self.buffers.iter().any(|b| b.name == name)
    }
}

/// The real objects of a block of events, ready for a set network (see the module docs).
#[derive(Debug)]
pub struct SetBatch {
    /// Real objects per event.
    pub counts: Vec<usize>,
    /// Row offsets of the events in the object rows (`counts.len() + 1` entries).
    pub offsets: Vec<usize>,
    /// The object rows in physical units, `R × f` row-major (for coordinates such as η–φ).
    pub raw: Vec<f32>,
    /// Object features per row.
    pub n_features: usize,
    /// The standardised event features, `B × E` (E may be 0).
    pub event: Tensor,
    /// Event index of every object row (u32, length R).
    event_of_row: Tensor,
}

impl SetBatch {
    /// A batch from the counts and the raw rows; `event` holds the standardised event
    /// features.
    pub fn new(counts: Vec<usize>, raw: Vec<f32>, n_features: usize, event: Tensor) -> Result<SetBatch> {
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        offsets.push(0);
        for &c in &counts {
            offsets.push(offsets[offsets.len() - 1] + c);
        }
        let rows = offsets[offsets.len() - 1];
        let ev: Vec<u32> = counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(i as u32, c)).collect();
        let event_of_row = Tensor::from_vec(ev, rows, &Device::Cpu).map_err(ce)?;
        Ok(SetBatch { counts, offsets, raw, n_features, event, event_of_row })
    }

    /// Number of events B.
    pub fn n_events(&self) -> usize {
        self.counts.len()
    }

    /// Number of object rows R.
    pub fn rows(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }

    /// Largest count in the batch.
    pub fn max_count(&self) -> usize {
        self.counts.iter().copied().max().unwrap_or(0)
    }

    /// Σ over each event's rows of `x` (`R × C` → `B × C`); zeros for an empty event.
    pub fn pool_sum(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        let zeros = Tensor::zeros((self.n_events(), c), x.dtype(), x.device())?;
        if self.rows() == 0 {
            return Ok(zeros);
        }
        zeros.index_add(&self.event_of_row, x, 0)
    }

    /// The mean over each event's rows of `x` (`R × C` → `B × C`); zeros for an empty event.
    pub fn pool_mean(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let inv: Vec<f32> = self.counts.iter().map(|&c| if c == 0 { 0.0 } else { 1.0 / c as f32 }).collect();
        let inv = Tensor::from_vec(inv, (self.n_events(), 1), x.device())?;
        self.pool_sum(x)?.broadcast_mul(&inv)
    }

    /// Row index into `[x; 0]` (the rows of `x` then one zero row) of every slot of the padded
    /// `B × P` block, P = [`SetBatch::max_count`].
    fn padded_index(&self) -> Vec<u32> {
        let (p, zero) = (self.max_count(), self.rows() as u32);
        let mut idx = Vec::with_capacity(self.n_events() * p);
        for (i, &c) in self.counts.iter().enumerate() {
            idx.extend((0..p).map(|s| if s < c { (self.offsets[i] + s) as u32 } else { zero }));
        }
        idx
    }

    /// The rows `x` (`R × C`) as a dense `B × P × C` block with zeros in padded slots.
    pub fn padded(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        let ext = Tensor::cat(&[x, &Tensor::zeros((1, c), x.dtype(), x.device())?], 0)?;
        let idx = self.padded_index();
        let n = idx.len();
        let idx = Tensor::from_vec(idx, n, x.device())?;
        ext.index_select(&idx, 0)?.reshape((self.n_events(), self.max_count(), c))
    }

    /// The padding mask `B × P`: 1 for real slots, 0 for padded ones.
    pub fn mask(&self) -> candle_core::Result<Tensor> {
        let p = self.max_count();
        let m: Vec<f32> =
            self.counts.iter().flat_map(|&c| (0..p).map(move |s| if s < c { 1.0 } else { 0.0 })).collect();
        Tensor::from_vec(m, (self.n_events(), p), &Device::Cpu)
    }

    /// The real slots of a dense `B × P × C` block as rows `R × C` (inverse of
    /// [`SetBatch::padded`]).
    pub fn unpad(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, p, c) = x.dims3()?;
        let flat = x.reshape((b * p, c))?;
        let idx: Vec<u32> =
            self.counts.iter().enumerate().flat_map(|(i, &k)| (0..k).map(move |s| (i * p + s) as u32)).collect();
        let n = idx.len();
        flat.index_select(&Tensor::from_vec(idx, n, &Device::Cpu)?, 0)
    }

    /// Zeros of the batch's dtype, `shape`.
    pub fn zeros(shape: &[usize]) -> candle_core::Result<Tensor> {
        Tensor::zeros(shape, DType::F32, &Device::Cpu)
    }
}

/// A network over the objects of a collection, written on candle tensors (see the module
/// documentation). Implementations: `ParticleNet` (`particlenet.rs`).
pub trait SetNet: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The model kind written into saved files (`particlenet`).
    fn kind(&self) -> &'static str;

    /// The architecture in one line, without the layout (`EdgeConv k=7 (32,32,32) …`).
    fn describe(&self) -> String;

    /// Number of logits.
    fn n_outputs(&self) -> usize;

    /// The parameters and buffers.
    fn store(&self) -> &ParamStore;

    /// The parameters and buffers, mutably.
    fn store_mut(&mut self) -> &mut ParamStore;

    /// Logits `B × k` of a batch; `x` holds the batch's standardised object rows (`R × f`).
    fn forward(&self, batch: &SetBatch, x: &Tensor) -> candle_core::Result<Tensor>;

    /// The architecture as metadata strings (JSON values), enough for [`SetNet::from_config`].
    fn config(&self) -> BTreeMap<String, String>;

    /// Rebuilds the architecture (parameters to be overwritten) from [`SetNet::config`]'s
    /// metadata, for `n_features` object features and `n_event` event features.
    fn from_config(meta: &HashMap<String, String>, n_features: usize, n_event: usize, path: &Path) -> Result<Self>;

    /// The ranges of the weight matrices in the flat order (L1 regularisation); `None` when
    /// the network does not say.
    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        None
    }

    /// The weight gradient of one training batch in the network's **training mode** (batch
    /// norms on batch statistics, updating their running statistics; dropout with masks from
    /// `seed`), for networks whose training pass differs from [`SetNet::forward`]: `x` holds
    /// the standardised object rows (`R × f`), `dz` maps the logits (`B × k`) to
    /// ∂objective/∂logits. `None` (the default) when training uses the inference forward.
    fn train_grad(
        &mut self,
        _batch: &SetBatch,
        _x: &[f32],
        _seed: u64,
        _dz: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
    ) -> Option<Result<Vec<f32>>> {
        None
    }
}

#[cfg(test)]
#[path = "set_net_tests.rs"]
mod tests;
