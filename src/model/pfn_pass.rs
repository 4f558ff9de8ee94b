//! The PFN's fused forward and backward passes over one block of events.
//!
//! A block is a list of event rows. Loading it gathers the standardised features of its *real*
//! objects into one `N × f` matrix (`N` = Σ counts; padded slots are never read) with the
//! segment offsets of each event. Then:
//!
//! - Φ: one GEMM per layer over all `N` objects, bias and activation fused after it;
//! - pooling: a segment sum (× 1/k for the mean) into the first `L` columns of F's input, whose
//!   last `E` columns are the standardised event features;
//! - F: one GEMM per layer over the block's events.
//!
//! Backward from ∂/∂logits: F's layers (as [`Mlp`](super::Mlp)'s backward), which also gives
//! ∂/∂(pooled ⊕ event features); the pooled gradient broadcast to every object of the event
//! (× 1/k for the mean); Φ's layers. Parameter gradients are `Aᵀ·G` per layer; input gradients
//! are scattered back to the slots (divided by the scales), padded slots and the count entry
//! left at 0.

use std::cell::RefCell;

use ndarray::ArrayView2;

use super::activation::{add_bias, Activation};
use super::gemm::gemm;
use super::pfn::{Pfn, Pooling};

thread_local! {
    /// Block buffers kept per thread between calls (no allocation in the hot loops).
    static CACHE: RefCell<Vec<SetWorkspace>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's cached block buffers.
pub(crate) fn with_set_workspace<R>(f: impl FnOnce(&mut SetWorkspace) -> R) -> R {
    let mut ws = CACHE.with(|c| c.borrow_mut().pop()).unwrap_or_default();
    let r = f(&mut ws);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < 2 {
            c.push(ws);
        }
    });
    r
}

/// Buffers for one block of `b` events with `n` real objects; all row-major, grown on demand.
#[derive(Default)]
pub(crate) struct SetWorkspace {
    /// Events in the loaded block, and objects.
    pub b: usize,
    pub n: usize,
    /// Per event of the block: its first object in `xo` (`b + 1` entries).
    pub seg: Vec<usize>,
    /// Standardised object features, `n × f`.
    pub xo: Vec<f32>,
    /// Φ activations per layer, `n × width`, and f'(z) per layer.
    pub ho: Vec<Vec<f32>>,
    pub dobj: Vec<Vec<f32>>,
    /// Back-propagated object gradients, `n × widest Φ layer`, ping-pong.
    pub go: [Vec<f32>; 2],
    /// F's input: pooled latent ⊕ standardised event features, `b × (L + E)`.
    pub xf: Vec<f32>,
    /// F activations per layer (the last holds the logits) and f'(z) per hidden layer.
    pub hf: Vec<Vec<f32>>,
    pub df: Vec<Vec<f32>>,
    /// Back-propagated event gradients, `b × widest F layer`, ping-pong.
    pub gf: [Vec<f32>; 2],
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

fn grow_all(v: &mut Vec<Vec<f32>>, count: usize, len: impl Fn(usize) -> usize) {
    if v.len() < count {
        v.resize_with(count, Vec::new);
    }
    for (l, buf) in v.iter_mut().enumerate().take(count) {
        grow(buf, len(l));
    }
}

impl SetWorkspace {
    /// The logits of the loaded block after a forward pass, `b × k`.
    pub fn logits(&self, pfn: &Pfn) -> &[f32] {
        &self.hf[pfn.f_widths().len() - 2][..self.b * pfn.n_outputs()]
    }
}

/// One stack of dense layers (Φ or F) inside the flat parameter vector.
struct Stack<'a> {
    widths: &'a [usize],
    params: &'a [f32],
    /// Start of each layer of the stack in `params`.
    offsets: Vec<usize>,
    act: Activation,
    /// Whether the last layer is activated too (Φ) or linear (F).
    last_act: bool,
}

impl Stack<'_> {
    fn n(&self) -> usize {
        self.widths.len() - 1
    }

    fn weight(&self, l: usize) -> &[f32] {
        let o = self.offsets[l];
        &self.params[o..o + self.widths[l] * self.widths[l + 1]]
    }

    fn bias(&self, l: usize) -> &[f32] {
        let o = self.offsets[l] + self.widths[l] * self.widths[l + 1];
        &self.params[o..o + self.widths[l + 1]]
    }

    fn activated(&self, l: usize) -> bool {
        l + 1 < self.n() || self.last_act
    }

    /// `r` rows of `x` through every layer into `h`; with `d`, f'(z) of activated layers.
    fn forward(&self, x: &[f32], r: usize, h: &mut [Vec<f32>], mut d: Option<&mut [Vec<f32>]>) {
        for l in 0..self.n() {
            let (a, b) = (self.widths[l], self.widths[l + 1]);
            let (before, rest) = h.split_at_mut(l);
            let prev: &[f32] = if l == 0 { x } else { &before[l - 1] };
            let cur = &mut rest[0][..r * b];
            gemm(r, a, b, prev, false, self.weight(l), false, 0.0, cur);
            if !self.activated(l) {
                add_bias(cur, self.bias(l));
            } else if let Some(d) = d.as_deref_mut() {
                self.act.apply_biased_with_grad(cur, self.bias(l), &mut d[l][..r * b]);
            } else {
                self.act.apply_biased(cur, self.bias(l));
            }
        }
    }

    /// Back-propagates `g[0]` (∂/∂ the stack's output, `r` rows; post-activation for an
    /// activated last layer) through every layer. With `grad`, writes (or accumulates) the
    /// parameter gradient into the stack's slots of the flat internal-layout `grad`; with
    /// `want_input`, ∂/∂x ends in `g[returned index]`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        x: &[f32],
        h: &[Vec<f32>],
        d: &[Vec<f32>],
        r: usize,
        g: &mut [Vec<f32>; 2],
        mut grad: Option<(&mut [f32], bool)>,
        want_input: bool,
    ) -> usize {
        let nl = self.n();
        if self.last_act {
            let b = self.widths[nl];
            g[0][..r * b].iter_mut().zip(&d[nl - 1][..r * b]).for_each(|(v, dv)| *v *= dv);
        }
        let mut cur = 0;
        for l in (0..nl).rev() {
            let (a, b) = (self.widths[l], self.widths[l + 1]);
            let [g0, g1] = g;
            let (gc, gn) = if cur == 0 { (g0, g1) } else { (g1, g0) };
            let gcur = &gc[..r * b];
            if let Some((gr, acc)) = grad.as_mut() {
                let o = self.offsets[l];
                let dw = &mut gr[o..o + a * b];
                if r == 0 {
                    if !*acc {
                        dw.fill(0.0);
                    }
                } else {
                    let prev: &[f32] = if l == 0 { x } else { &h[l - 1] };
                    gemm(a, r, b, prev, true, gcur, false, if *acc { 1.0 } else { 0.0 }, dw);
                }
                let db = &mut gr[o + a * b..o + a * b + b];
                if !*acc {
                    db.fill(0.0);
                }
                for row in gcur.chunks_exact(b) {
                    db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
            }
            if l > 0 || want_input {
                let gnext = &mut gn[..r * a];
                gemm(r, b, a, gcur, false, self.weight(l), true, 0.0, gnext);
                if l > 0 {
                    gnext.iter_mut().zip(&d[l - 1][..r * a]).for_each(|(v, dv)| *v *= dv);
                }
                cur = 1 - cur;
            }
        }
        cur
    }
}

impl Pfn {
    fn phi_stack(&self) -> Stack<'_> {
        let n = self.n_phi();
        Stack {
            widths: self.phi_widths(),
            params: self.params(),
            offsets: (0..n).map(|l| self.offset(l)).collect(),
            act: self.activation(),
            last_act: true,
        }
    }

    fn f_stack(&self) -> Stack<'_> {
        let (p, n) = (self.n_phi(), self.f_widths().len() - 1);
        Stack {
            widths: self.f_widths(),
            params: self.params(),
            offsets: (0..n).map(|l| self.offset(p + l)).collect(),
            act: self.activation(),
            last_act: false,
        }
    }

    /// Loads the events `idx` of `x` into `ws` (standardised real objects and event
    /// features), sizing every buffer for the block.
    pub(crate) fn load_block(&self, ws: &mut SetWorkspace, x: ArrayView2<'_, f32>, idx: &[usize]) {
        let layout = self.layout();
        let (e, f, lat) = (layout.n_event(), layout.n_object(), self.latent());
        let (ev_mean, ev_std) = self.event_standardization();
        let (ob_mean, ob_std) = self.object_standardization();
        let fin = lat + e;
        ws.seg.clear();
        ws.seg.push(0);
        for &i in idx {
            let row = x.row(i);
            let k = layout.count_of(row[layout.count_column()]);
            ws.seg.push(ws.seg[ws.seg.len() - 1] + k);
        }
        let (b, n) = (idx.len(), ws.seg[idx.len()]);
        ws.b = b;
        ws.n = n;
        let phi = self.phi_widths();
        let fw = self.f_widths();
        let widest_phi = phi.iter().copied().max().unwrap_or(1);
        let widest_f = fw.iter().copied().max().unwrap_or(1);
        grow(&mut ws.xo, n * f);
        grow_all(&mut ws.ho, phi.len() - 1, |l| n * phi[l + 1]);
        grow_all(&mut ws.dobj, phi.len() - 1, |l| n * phi[l + 1]);
        grow(&mut ws.xf, b * fin);
        grow_all(&mut ws.hf, fw.len() - 1, |l| b * fw[l + 1]);
        grow_all(&mut ws.df, fw.len() - 1, |l| b * fw[l + 1]);
        for g in &mut ws.go {
            grow(g, n * widest_phi);
        }
        for g in &mut ws.gf {
            grow(g, b * widest_f);
        }
        for (bi, &i) in idx.iter().enumerate() {
            let row = x.row(i);
            let k = ws.seg[bi + 1] - ws.seg[bi];
            let dst = &mut ws.xf[bi * fin + lat..(bi + 1) * fin];
            for (j, v) in dst.iter_mut().enumerate() {
                *v = (row[j] - ev_mean[j]) / ev_std[j];
            }
            let start = layout.slot_column(0, 0);
            let objs = &mut ws.xo[ws.seg[bi] * f..(ws.seg[bi] + k) * f];
            match row.as_slice() {
                Some(s) => {
                    for (o, src) in objs.chunks_exact_mut(f).zip(s[start..start + k * f].chunks_exact(f)) {
                        for j in 0..f {
                            o[j] = (src[j] - ob_mean[j]) / ob_std[j];
                        }
                    }
                }
                None => {
                    for (t, v) in objs.iter_mut().enumerate() {
                        *v = (row[start + t] - ob_mean[t % f]) / ob_std[t % f];
                    }
                }
            }
        }
    }

    /// Forward pass over the loaded block; with `keep`, f'(z) is stored for a backward pass.
    pub(crate) fn forward_block(&self, ws: &mut SetWorkspace, keep: bool) {
        let (b, n, lat) = (ws.b, ws.n, self.latent());
        let fin = self.f_widths()[0];
        let phi = self.phi_stack();
        phi.forward(&ws.xo, n, &mut ws.ho, keep.then_some(&mut ws.dobj[..]));
        let pooled = &ws.ho[phi.n() - 1];
        for bi in 0..b {
            let dst = &mut ws.xf[bi * fin..bi * fin + lat];
            dst.fill(0.0);
            let (s, t) = (ws.seg[bi], ws.seg[bi + 1]);
            for obj in pooled[s * lat..t * lat].chunks_exact(lat) {
                dst.iter_mut().zip(obj).for_each(|(a, v)| *a += v);
            }
            if self.pooling() == Pooling::Mean && t > s {
                let inv = 1.0 / (t - s) as f32;
                dst.iter_mut().for_each(|a| *a *= inv);
            }
        }
        self.f_stack().forward(&ws.xf, b, &mut ws.hf, keep.then_some(&mut ws.df[..]));
    }

    /// Back-propagates `ws.gf[0]` (∂/∂logits, `b × k`) after [`Pfn::forward_block`] with
    /// `keep`. With `grad`, writes (or accumulates) the parameter gradient (internal layout);
    /// with `want_input`, returns which `ws.go` buffer holds ∂/∂(standardised objects) and
    /// which `ws.gf` buffer holds ∂/∂(F input): `(object, event)` indices.
    pub(crate) fn backward_block(
        &self,
        ws: &mut SetWorkspace,
        mut grad: Option<(&mut [f32], bool)>,
        want_input: bool,
    ) -> (usize, usize) {
        let (b, n, lat) = (ws.b, ws.n, self.latent());
        let fin = self.f_widths()[0];
        let fs = self.f_stack();
        let gi = fs.backward(&ws.xf, &ws.hf, &ws.df, b, &mut ws.gf, grad.as_mut().map(|(g, a)| (&mut **g, *a)), true);
        let gin = &ws.gf[gi];
        let go = &mut ws.go[0];
        for bi in 0..b {
            let (s, t) = (ws.seg[bi], ws.seg[bi + 1]);
            let scale = if self.pooling() == Pooling::Mean && t > s { 1.0 / (t - s) as f32 } else { 1.0 };
            let src = &gin[bi * fin..bi * fin + lat];
            for obj in go[s * lat..t * lat].chunks_exact_mut(lat) {
                obj.iter_mut().zip(src).for_each(|(v, g)| *v = g * scale);
            }
        }
        let ps = self.phi_stack();
        let oi = ps.backward(&ws.xo, &ws.ho, &ws.dobj, n, &mut ws.go, grad, want_input);
        (oi, gi)
    }

    /// Writes ∂/∂x in physical units for the loaded block into `out` (`b` rows of `D`) after
    /// [`Pfn::backward_block`] with `want_input` returned `(oi, gi)`: event features and real
    /// slots divided by their scales, the count entry and padded slots 0.
    pub(crate) fn scatter_input_grad(
        &self,
        ws: &SetWorkspace,
        (oi, gi): (usize, usize),
        mut out: ndarray::ArrayViewMut2<'_, f32>,
    ) {
        let layout = self.layout();
        let (e, f, lat) = (layout.n_event(), layout.n_object(), self.latent());
        let fin = self.f_widths()[0];
        let (_, ev_std) = self.event_standardization();
        let (_, ob_std) = self.object_standardization();
        let start = layout.slot_column(0, 0);
        for (bi, mut row) in out.rows_mut().into_iter().enumerate() {
            row.fill(0.0);
            for j in 0..e {
                row[j] = ws.gf[gi][bi * fin + lat + j] / ev_std[j];
            }
            let (s, t) = (ws.seg[bi], ws.seg[bi + 1]);
            for (q, v) in ws.go[oi][s * f..t * f].iter().enumerate() {
                row[start + q] = v / ob_std[q % f];
            }
        }
    }
}
