//! Preallocated buffers for one batch of events, reused across batches so that the hot loops
//! of inference, gradients and training never allocate.

use std::cell::RefCell;

use super::mlp::Mlp;
use crate::rng::Rng;

thread_local! {
    /// Workspaces kept per thread between calls: fresh buffers would cost an allocation and,
    /// worse, page faults on first touch for every chunk.
    static CACHE: RefCell<Vec<Workspace>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a workspace for `rows` events of `mlp`, reusing this thread's cached one.
pub(crate) fn with_workspace<R>(mlp: &Mlp, rows: usize, f: impl FnOnce(&mut Workspace) -> R) -> R {
    let mut ws = CACHE.with(|c| c.borrow_mut().pop()).unwrap_or_else(|| Workspace::new(mlp, rows));
    ws.ensure_rows(mlp, rows);
    let r = f(&mut ws);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < 2 {
            c.push(ws);
        }
    });
    r
}

/// What a forward pass must keep for later.
pub(crate) enum Pass<'a> {
    /// Values only.
    Infer,
    /// Also f'(z) of every hidden layer, for a backward pass.
    Grad,
    /// Like `Grad`, plus dropout drawn from this generator.
    Train(&'a mut Rng),
}

/// Buffers for up to `rows` events of one model: all row-major.
pub(crate) struct Workspace {
    rows: usize,
    layers: Vec<usize>,
    /// Standardised inputs, rows × d.
    pub x: Vec<f32>,
    /// Per layer: activations (hidden layers) or logits (last layer), rows × width.
    pub h: Vec<Vec<f32>>,
    /// Per hidden layer: f'(z) times the dropout scale, rows × width.
    pub d: Vec<Vec<f32>>,
    /// Two ping-pong buffers for back-propagated gradients, rows × widest layer.
    pub g: [Vec<f32>; 2],
}

impl Workspace {
    /// Buffers for `rows` events of `mlp`.
    pub fn new(mlp: &Mlp, rows: usize) -> Self {
        let mut ws = Workspace {
            rows: 0,
            layers: Vec::new(),
            x: Vec::new(),
            h: Vec::new(),
            d: Vec::new(),
            g: [Vec::new(), Vec::new()],
        };
        ws.ensure_rows(mlp, rows);
        ws
    }

    /// Bytes of a workspace for `rows` events of `mlp` (what [`Workspace::new`] allocates).
    pub fn bytes(mlp: &Mlp, rows: usize) -> u64 {
        let layers = mlp.layers();
        let widest = layers.iter().copied().max().unwrap_or(1);
        let per_row =
            layers.iter().fold(0usize, |a, &w| a.saturating_add(w.saturating_mul(2))).saturating_add(2 * widest);
        crate::memory::bytes(rows.saturating_mul(per_row), 4)
    }

    /// Grows the buffers to hold `rows` events (never shrinks).
    pub fn ensure_rows(&mut self, mlp: &Mlp, rows: usize) {
        let same = self.layers == mlp.layers();
        if rows <= self.rows && same {
            return;
        }
        let rows = if same { rows.max(self.rows) } else { rows };
        self.layers = mlp.layers().to_vec();
        let layers = mlp.layers();
        let widest = layers.iter().copied().max().unwrap_or(1);
        self.x = vec![0.0; rows * layers[0]];
        self.h = layers[1..].iter().map(|&w| vec![0.0; rows * w]).collect();
        self.d = layers[1..layers.len() - 1].iter().map(|&w| vec![0.0; rows * w]).collect();
        self.g = [vec![0.0; rows * widest], vec![0.0; rows * widest]];
        self.rows = rows;
    }

    /// The logits of the first `r` events after a forward pass.
    pub fn logits(&self, mlp: &Mlp, r: usize) -> &[f32] {
        let k = mlp.n_outputs();
        &self.h[mlp.n_layers() - 1][..r * k]
    }
}
