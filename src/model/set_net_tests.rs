//! The set-network glue on a small Deep-Sets network written for these tests (per-object
//! Linear + tanh, mean over the real objects, the event features appended, Linear head):
//! gradients through the glue against central differences, padded slots, permutation
//! invariance, dense-block round trip, clones that do not share weights, save/load.
//!
//! Finite differences are of the model's own f32 logits with h = 1e-2: f32 rounding of the
//! O(1) logits (≈ 1e-7 absolute) gives an FD error ≈ 1e-7/h = 1e-5, the truncation error is
//! h²·|f'''|/6 ≈ 2e-5 for these tanh layers with O(1) weights, so |analytic − fd| ≤
//! 1e-3·(1 + |fd|) has a margin of 20× while a wrong term (e.g. a padded slot counted, a
//! missing 1/std) is an O(0.1) error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Tensor;
use ndarray::Array2;
use rand::Rng as _;

use super::*;
use crate::error::Result;
use crate::model::{GradTarget, Model, Output, SetLayout, SetModel, Targets};

const H: f32 = 1e-2;
const TOL: f32 = 1e-3;

#[derive(Clone, Debug)]
struct Toy {
    k: usize,
    store: ParamStore,
}

impl Toy {
    fn new(f: usize, e: usize, k: usize, seed: u64) -> Toy {
        let mut r = crate::rng::rng(seed);
        let mut v = |n: usize| (0..n).map(|_| r.random_range(-0.8f32..0.8)).collect::<Vec<_>>();
        let mut store = ParamStore::new();
        store.add("phi.weight", "phi", &[4, f], v(4 * f)).unwrap();
        store.add("phi.bias", "phi", &[4], v(4)).unwrap();
        store.add("head.weight", "head", &[k, 4 + e], v(k * (4 + e))).unwrap();
        store.add("head.bias", "head", &[k], v(k)).unwrap();
        store.add_buffer("unused.buffer", &[2], vec![0.5, 2.0]).unwrap();
        Toy { k, store }
    }
}

impl SetNet for Toy {
    fn kind(&self) -> &'static str {
        "toy"
    }
    fn describe(&self) -> String {
        "toy".into()
    }
    fn n_outputs(&self) -> usize {
        self.k
    }
    fn store(&self) -> &ParamStore {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ParamStore {
        &mut self.store
    }
    fn forward(&self, b: &SetBatch, x: &Tensor) -> candle_core::Result<Tensor> {
        let s = &self.store;
        let h = x.matmul(&s.p(0).t()?)?.broadcast_add(s.p(1))?.tanh()?;
        let pooled = Tensor::cat(&[&b.pool_mean(&h)?, &b.event], 1)?;
        pooled.matmul(&s.p(2).t()?)?.broadcast_add(s.p(3))
    }
    fn config(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("toy_k".to_string(), self.k.to_string())])
    }
    fn from_config(meta: &HashMap<String, String>, f: usize, e: usize, _path: &Path) -> Result<Self> {
        Ok(Toy::new(f, e, meta["toy_k"].parse().unwrap(), 0))
    }
}

/// One event feature, 2 object features, 4 slots.
fn model(output: Output, k: usize) -> SetModel<Toy> {
    let layout = SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 4).unwrap();
    let mut m = SetModel::new(layout, output, Toy::new(2, 1, k, 3)).unwrap();
    // Not the identity, so the chain rule through the standardisation is tested.
    m.set_standardization(vec![1.5], vec![2.0], vec![0.3, -0.2], vec![0.7, 1.3]).unwrap();
    m
}

/// Events with 0, 1, 3 and 4 objects and one whose count entry says 9 (clamped to 4);
/// padded slots hold garbage (they must not matter).
fn events(seed: u64) -> Array2<f32> {
    let mut r = crate::rng::rng(seed);
    let mut x = Array2::<f32>::zeros((5, 10));
    for (i, k) in [0usize, 1, 3, 4, 4].into_iter().enumerate() {
        x[[i, 0]] = r.random_range(-1.0..4.0);
        x[[i, 1]] = if i == 4 { 9.0 } else { k as f32 };
        for c in 2..10 {
            x[[i, c]] = if c < 2 + 2 * k { r.random_range(-1.5..1.5) } else { 77.0 };
        }
    }
    x
}

#[test]
fn input_gradient_matches_central_differences_and_is_zero_on_padding() {
    let m = model(Output::Softmax, 3);
    let x = events(1);
    let g = m.input_grad_and_scores(x.view(), GradTarget::Logit { class: 2 }).unwrap().grad;
    for i in 0..x.nrows() {
        for c in 0..x.ncols() {
            let mut xp = x.clone();
            xp[[i, c]] += H;
            let mut xm = x.clone();
            xm[[i, c]] -= H;
            let fd = (m.logits(xp.view()).unwrap()[[i, 2]] - m.logits(xm.view()).unwrap()[[i, 2]]) / (2.0 * H);
            let padded = c == 1 || c >= 2 + 2 * m.layout().count(x.row(i).as_slice().unwrap());
            if padded {
                // The count entry and padded slots: the output does not move and the gradient is 0.
                assert_eq!(g[[i, c]], 0.0, "event {i} column {c}");
                assert_eq!(fd, 0.0, "event {i} column {c}");
            } else {
                assert!((g[[i, c]] - fd).abs() <= TOL * (1.0 + fd.abs()), "event {i} col {c}: {} vs {fd}", g[[i, c]]);
            }
        }
    }
}

#[test]
fn weight_gradient_matches_central_differences() {
    let m = model(Output::Sigmoid, 1);
    let x = events(2);
    let labels = [0i64, 1, 1, 0, 1];
    let w = [1.0f32, 2.0, 0.5, 1.0, 3.0];
    let (loss, g) = m.weight_grad(x.view(), Targets::Labels(&labels), Some(&w)).unwrap();
    let base = (&m as &dyn Model).loss(x.view(), Targets::Labels(&labels), Some(&w)).unwrap();
    assert!((loss - base).abs() < 1e-6, "{loss} vs {base}");
    let p = m.params();
    for j in 0..p.len() {
        let f = |d: f32| {
            let mut q = p.clone();
            q[j] += d;
            let mut mm = m.clone();
            mm.set_params(&q).unwrap();
            (&mm as &dyn Model).loss(x.view(), Targets::Labels(&labels), Some(&w)).unwrap() as f32
        };
        let fd = (f(H) - f(-H)) / (2.0 * H);
        assert!((g[j] - fd).abs() <= TOL * (1.0 + fd.abs()), "param {j}: {} vs {fd}", g[j]);
    }
}

#[test]
fn permuting_real_objects_leaves_the_outputs_unchanged() {
    let m = model(Output::Softmax, 3);
    let x = events(3);
    let mut y = x.clone();
    // Event 3 has 4 objects (columns 2..10): reverse their order.
    for s in 0..4 {
        for j in 0..2 {
            y[[3, 2 + 2 * s + j]] = x[[3, 2 + 2 * (3 - s) + j]];
        }
    }
    let (a, b) = (m.logits(x.view()).unwrap(), m.logits(y.view()).unwrap());
    for j in 0..3 {
        assert!((a[[3, j]] - b[[3, j]]).abs() < 1e-6);
    }
}

#[test]
fn padded_block_round_trips_and_masks() {
    let raw: Vec<f32> = (0..5).map(|v| v as f32).collect();
    let b = SetBatch::new(vec![2, 0, 3], raw.clone(), 1, SetBatch::zeros(&[3, 0]).unwrap()).unwrap();
    let x = Tensor::from_vec(raw.clone(), (5, 1), &candle_core::Device::Cpu).unwrap();
    let p = b.padded(&x).unwrap();
    assert_eq!(p.dims(), &[3, 3, 1]);
    let flat = p.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 3.0, 4.0]);
    let mask = b.mask().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(mask, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(b.unpad(&p).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), raw);
    // Means over real rows: (0+1)/2, 0 for the empty event, (2+3+4)/3.
    let mean = b.pool_mean(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(mean, vec![0.5, 0.0, 3.0]);
}

#[test]
fn clones_do_not_share_weights_and_groups_cover_the_params() {
    let m = model(Output::Softmax, 3);
    let mut c = m.clone();
    let p = m.params();
    c.set_params(&vec![0.25; p.len()]).unwrap();
    assert_eq!(m.params(), p);
    let groups = m.param_groups();
    assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), vec!["phi", "head"]);
    assert_eq!(groups[0].range, 0..12);
    assert_eq!(groups[1].range, 12..12 + 3 * 5 + 3);
    assert!(c.set_params(&[1.0]).is_err());
}

#[test]
fn save_then_load_gives_the_same_model() {
    let m = model(Output::Softmax, 3);
    let path = std::env::temp_dir().join(format!("nuisance_setnet_{}.safetensors", std::process::id()));
    m.save(&path).unwrap();
    let l = SetModel::<Toy>::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(l.params(), m.params());
    assert_eq!(l.standardization(), m.standardization());
    assert_eq!(l.net().store().buffer_values(0).unwrap(), vec![0.5, 2.0]);
    let x = events(4);
    assert_eq!(l.logits(x.view()).unwrap(), m.logits(x.view()).unwrap());
}
