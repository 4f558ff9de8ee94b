//! The [`Part`]'s batched logits, input gradients and weight gradients (the contracts of
//! [`Model`](super::Model)), over blocks of events.
//!
//! Events are taken in fixed chunks of [`CHUNK`] consecutive rows; inside a chunk they are
//! ordered by particle count and cut into blocks of [`BLOCK`], each padded only to its own
//! largest count (jets have 10–120 constituents, so this halves the padded work). Chunks run
//! in parallel (rayon); the blocks of a chunk and the parts of a weight gradient
//! (`backward::summed_over_parts`) are fixed by the row order, so results do not depend on
//! the thread count.
//!
//! Every objective is the candle expression Σᵢ zᵢ·gᵢ with gᵢ = ∂objectiveᵢ/∂zᵢ computed by the
//! shared row functions (`objective_row`, `loss_grad_row`) and held constant, so candle's
//! backward gives exactly the vector–Jacobian products. Input gradients reach the physical
//! inputs through the standardisation and, for pair features, the exact Jacobian of
//! `part_pairs.rs`.

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::backward::{check_weights, objective_row, standard_targets, summed_over_parts, GradTarget, InputGrad};
use super::eval::class_of_row;
use super::interface::Model;
use super::loss::{loss_grad_row, Output, Targets};
use super::part::Part;
use super::part_net::{forward, BlockInput, InputTensors, Weights};
use crate::error::{Error, Result};

/// Consecutive rows per chunk (the unit of parallel work).
pub(crate) const CHUNK: usize = 64;
/// Events per padded block inside a chunk.
pub(crate) const BLOCK: usize = 16;

fn ce(e: candle_core::Error) -> Error {
    Error::Tensor(e.to_string())
}

impl Part {
    /// The weights as candle tensors (variables when `vars`, for weight gradients).
    pub(crate) fn weights(&self, vars: bool) -> Result<(Weights<'_>, Vec<Var>)> {
        self.weights_as(None, vars, DType::F32)
    }

    /// The weights as candle tensors of `dtype`, from `params` (f64, flat order) instead of the
    /// model's when given (the f64 finite differences of the tests).
    pub(crate) fn weights_as(
        &self,
        params: Option<&[f64]>,
        vars: bool,
        dtype: DType,
    ) -> Result<(Weights<'_>, Vec<Var>)> {
        let dev = Device::Cpu;
        let mut t = Vec::new();
        let mut v = Vec::new();
        for s in self.tensor_specs() {
            let x = match params {
                Some(p) => Tensor::from_slice(&p[s.range()], s.shape.as_slice(), &dev),
                None => Tensor::from_slice(&self.params()[s.range()], s.shape.as_slice(), &dev),
            }
            .and_then(|x| x.to_dtype(dtype))
            .map_err(ce)?;
            if vars {
                let var = Var::from_tensor(&x).map_err(ce)?;
                t.push(var.as_tensor().clone());
                v.push(var);
            } else {
                t.push(x);
            }
        }
        Ok((Weights { m: self, t }, v))
    }

    /// The blocks of the chunk of rows `rows`: row indices ordered by count, cut in [`BLOCK`]s.
    fn blocks_of(&self, x: ArrayView2<'_, f32>, rows: &[usize]) -> Vec<Vec<usize>> {
        let l = self.layout();
        let mut order = rows.to_vec();
        order.sort_by_key(|&i| l.count_of(x[[i, l.count_column()]]));
        order.chunks(BLOCK).map(<[usize]>::to_vec).collect()
    }

    /// Errors (before anything is allocated) unless a block's tensors fit the memory budget on
    /// every rayon thread. Per event and slot the graph keeps about `(12 + 3·ffn_ratio)·E`
    /// values per block and `6·H·p` attention values per particle block, plus the pair
    /// embedding's widths per pair; the estimate uses the layout's `max_objects`.
    pub(crate) fn check_block_memory(&self, op: &'static str) -> Result<()> {
        let c = self.config();
        let p = self.layout().max_objects;
        let dim = self.dim();
        let per_slot = (12 + 3 * c.ffn_ratio)
            .saturating_mul(dim)
            .saturating_mul(c.blocks + c.cls_blocks)
            .saturating_add(6usize.saturating_mul(c.heads).saturating_mul(p).saturating_mul(c.blocks.max(1)))
            .saturating_add(c.embed.iter().sum::<usize>() * 3);
        let pair = if self.pair_idx().is_some() {
            p.saturating_mul(c.pair_embed.iter().sum::<usize>().saturating_add(c.heads) * 3)
        } else {
            0
        };
        let one = BLOCK.saturating_mul(p).saturating_mul(per_slot.saturating_add(pair));
        let threads = rayon::current_num_threads().max(1);
        crate::memory::check(
            crate::memory::bytes(one.saturating_mul(threads), 4),
            &format!("{op}: ParT blocks of {BLOCK} events × {p} particles on {threads} threads"),
        )
    }

    /// Logits `n × k` for inputs in physical units.
    pub fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_input("forward", x)?;
        self.check_block_memory("forward")?;
        let k = self.n_outputs();
        let mut out = Array2::<f32>::zeros((x.nrows(), k));
        let (w, _) = self.weights(false)?;
        out.axis_chunks_iter_mut(Axis(0), CHUNK).into_par_iter().enumerate().try_for_each(|(c, mut o)| {
            let rows: Vec<usize> = (c * CHUNK..c * CHUNK + o.nrows()).collect();
            for block in self.blocks_of(x, &rows) {
                let inp = BlockInput::new(self, x, &block);
                let t = InputTensors::new(self, &inp, false, DType::F32).map_err(ce)?;
                let z = forward(&w, &inp, &t).and_then(|z| z.to_vec2::<f32>()).map_err(ce)?;
                for (&i, zr) in block.iter().zip(z) {
                    o.row_mut(i - c * CHUNK).iter_mut().zip(zr).for_each(|(d, v)| *d = v);
                }
            }
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    /// ∂objective/∂x per event (`n × D`, physical units; 0 for the count entry and padded
    /// slots), with the scores, objective values and classes of the same pass.
    pub fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        self.check_input("input_grad", x)?;
        self.check_block_memory("input_grad")?;
        let (n, d, k) = (x.nrows(), self.n_inputs(), self.n_outputs());
        let owned;
        let target = match target {
            GradTarget::Loss(t) => {
                t.validate("input_grad", self.output(), n, k)?;
                owned = standard_targets(t);
                GradTarget::Loss(match &owned {
                    Some(a) => Targets::Values(a.view()),
                    None => t.reborrow(),
                })
            }
            GradTarget::Score { class } => {
                <dyn Model>::check_class(self, "input_grad", class)?;
                GradTarget::Score { class }
            }
            GradTarget::Logit { class } => {
                <dyn Model>::check_class(self, "input_grad", class)?;
                GradTarget::Logit { class }
            }
            GradTarget::LossOfPredicted if self.output() == Output::Linear => {
                return Err(Error::arg(
                    "input_grad",
                    "a regression (linear) model has no predicted class to take the loss of",
                ))
            }
            GradTarget::LossOfPredicted => GradTarget::LossOfPredicted,
            GradTarget::Custom(f) => GradTarget::Custom(f),
        };
        let mut grad = Array2::<f32>::zeros((n, d));
        let mut scores = Array2::<f32>::zeros((n, k));
        let mut value = vec![0.0f32; n];
        let mut classes = vec![0i64; n];
        let (w, _) = self.weights(false)?;
        let output = self.output();
        grad.axis_chunks_iter_mut(Axis(0), CHUNK)
            .into_par_iter()
            .zip(scores.axis_chunks_iter_mut(Axis(0), CHUNK))
            .zip(value.par_chunks_mut(CHUNK).zip(classes.par_chunks_mut(CHUNK)))
            .enumerate()
            .try_for_each(|(c, ((mut gc, mut sc), (vc, cc)))| {
                let row0 = c * CHUNK;
                let rows: Vec<usize> = (row0..row0 + vc.len()).collect();
                for block in self.blocks_of(x, &rows) {
                    let inp = BlockInput::new(self, x, &block);
                    let t = InputTensors::new(self, &inp, true, DType::F32).map_err(ce)?;
                    let z = forward(&w, &inp, &t).map_err(ce)?;
                    let zv = z.to_vec2::<f32>().map_err(ce)?;
                    let mut g = vec![0.0f32; block.len() * k];
                    for (e, (&i, zr)) in block.iter().zip(&zv).enumerate() {
                        let local = i - row0;
                        vc[local] = objective_row(output, zr, &target, i, &mut g[e * k..(e + 1) * k]);
                        cc[local] = class_of_row(output, zr);
                        let mut s = zr.clone();
                        output.scores_row(&mut s);
                        sc.row_mut(local).iter_mut().zip(s).for_each(|(d, v)| *d = v);
                    }
                    let gt = Tensor::from_vec(g, (block.len(), k), &Device::Cpu).map_err(ce)?;
                    let grads = (z * gt).and_then(|o| o.sum_all()).and_then(|o| o.backward()).map_err(ce)?;
                    self.scatter_input_grad(&inp, &t, &grads, &block, row0, &mut gc)?;
                }
                Ok::<(), Error>(())
            })?;
        Ok(InputGrad { grad, scores, value, classes })
    }

    /// Chains the gradients of a block's standardised inputs to the physical inputs of rows
    /// `block` (offset by `row0` in `gc`).
    fn scatter_input_grad(
        &self,
        inp: &BlockInput,
        t: &InputTensors,
        grads: &candle_core::backprop::GradStore,
        block: &[usize],
        row0: usize,
        gc: &mut ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let l = self.layout();
        let (f, e, p) = (self.embed_idx().len(), l.n_event(), inp.p);
        let get = |x: &Tensor| -> Result<Vec<f32>> {
            match grads.get(x) {
                Some(g) => g.flatten_all().and_then(|g| g.to_vec1::<f32>()).map_err(ce),
                None => Ok(vec![0.0; x.elem_count()]),
            }
        };
        let go = get(&t.obj)?;
        for (ev, (&i, &kc)) in block.iter().zip(&inp.counts).enumerate() {
            let mut row = gc.row_mut(i - row0);
            for s in 0..kc {
                for (jj, &j) in self.embed_idx().iter().enumerate() {
                    row[l.slot_column(s, j)] = go[(ev * p + s) * f + jj] / self.object_std[j];
                }
            }
        }
        if let Some(ev_t) = &t.event {
            let g = get(ev_t)?;
            for (ev, &i) in block.iter().enumerate() {
                for j in 0..e {
                    gc[[i - row0, j]] = g[ev * e + j] / self.event_std[j];
                }
            }
        }
        if let (Some(pt), Some(pi)) = (&t.pairs, self.pair_idx()) {
            let g = get(pt)?;
            for (r, (ev, a, b, jac)) in inp.pair_of.iter().enumerate() {
                let gs: Vec<f64> = (0..4).map(|q| f64::from(g[r * 4 + q]) / f64::from(self.pair_std[q])).collect();
                let row = block[*ev] - row0;
                for (kk, &feat) in pi.iter().enumerate() {
                    let (mut da, mut db) = (0.0f64, 0.0f64);
                    for q in 0..4 {
                        da += gs[q] * jac[q][kk];
                        db += gs[q] * jac[q][4 + kk];
                    }
                    gc[[row, l.slot_column(*a, feat)]] += da as f32;
                    gc[[row, l.slot_column(*b, feat)]] += db as f32;
                }
            }
        }
        Ok(())
    }

    /// The event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ and its gradient (flat order).
    pub fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        self.check_input("weight_grad", x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(Error::Empty { op: "weight_grad", what: "the event set".into() });
        }
        targets.validate("weight_grad", self.output(), n, self.n_outputs())?;
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let wsum = check_weights("weight_grad", weights, n)?;
        self.check_block_memory("weight_grad")?;
        let failure = std::sync::Mutex::new(None);
        let (loss, total) = summed_over_parts(n, CHUNK, self.n_params(), |chunks, grad| {
            let mut loss = 0.0;
            for rows in chunks {
                match self.chunk_grad(x, &rows, targets, weights, 1.0 / wsum, grad) {
                    Ok(l) => loss += l,
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                }
            }
            loss
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        Ok((loss, total))
    }

    /// Adds Σ norm·wᵢ ∂ℓᵢ/∂θ over rows `rows` into `grad`; returns Σ norm·wᵢℓᵢ.
    fn chunk_grad(
        &self,
        x: ArrayView2<'_, f32>,
        rows: &[usize],
        targets: Targets<'_>,
        weights: Option<&[f32]>,
        norm: f64,
        grad: &mut [f32],
    ) -> Result<f64> {
        let k = self.n_outputs();
        let (w, vars) = self.weights(true)?;
        let mut loss = 0.0;
        for block in self.blocks_of(x, rows) {
            let inp = BlockInput::new(self, x, &block);
            let t = InputTensors::new(self, &inp, false, DType::F32).map_err(ce)?;
            let z = forward(&w, &inp, &t).map_err(ce)?;
            let zv = z.to_vec2::<f32>().map_err(ce)?;
            let mut g = vec![0.0f32; block.len() * k];
            for (e, (&i, zr)) in block.iter().zip(&zv).enumerate() {
                let wi = norm * weights.map_or(1.0, |w| f64::from(w[i]));
                loss += wi * loss_grad_row(self.output(), zr, targets.row(i), wi as f32, &mut g[e * k..(e + 1) * k]);
            }
            let gt = Tensor::from_vec(g, (block.len(), k), &Device::Cpu).map_err(ce)?;
            let grads = (z * gt).and_then(|o| o.sum_all()).and_then(|o| o.backward()).map_err(ce)?;
            for (s, v) in self.tensor_specs().iter().zip(&vars) {
                if let Some(gv) = grads.get(v.as_tensor()) {
                    let gv = gv
                        .flatten_all()
                        .and_then(|g| g.to_dtype(DType::F32))
                        .and_then(|g| g.to_vec1::<f32>())
                        .map_err(ce)?;
                    grad[s.range()].iter_mut().zip(gv).for_each(|(a, b)| *a += b);
                }
            }
        }
        Ok(loss)
    }
}
