//! PFN gradients against central finite differences of an independent f64 forward, masks,
//! permutation invariance and thread-count independence.
//!
//! Tolerance (as `backward_tests.rs`): the f32 analytic gradients of these small layers
//! (fan-in ≤ 6) carry relative rounding errors around 1e-6; the f64 central difference with
//! h = 1e-4 has truncation error h²·|f'''|/6 ≲ 1e-8 for these smooth (tanh, GELU) O(1)
//! functions. So |analytic − fd| ≤ 2e-5·(1 + |fd|) holds with a wide margin while any wrong
//! term (an O(0.1) error) fails it.

use ndarray::Array2;
use rand::Rng as _;

use super::*;
use crate::model::{Activation, GradTarget, Output, Targets};

const H: f64 = 1e-4;
const TOL: f64 = 2e-5;

/// One event feature, 2 object features, 3 slots.
fn layout() -> SetLayout {
    SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 3).unwrap()
}

fn model(act: Activation, output: Output, k: usize, pooling: Pooling, seed: u64) -> Pfn {
    let cfg = PfnConfig { phi: vec![5, 4], f: vec![6], n_outputs: k, pooling, activation: act, output, seed };
    let mut m = Pfn::new(layout(), &cfg).unwrap();
    // A standardisation that is not the identity, so the chain rule through it is tested.
    m.set_standardization(vec![1.5], vec![2.0], vec![0.3, -0.2], vec![0.7, 1.3]).unwrap();
    m
}

/// Events with 0, 1, 2, 3 and (clamped) 3 objects; padded slots hold 0; the last event's
/// count entry says 7 (clamped to 3).
fn events(seed: u64) -> Array2<f32> {
    let mut r = crate::rng::rng(seed);
    let mut x = Array2::<f32>::zeros((5, 8));
    for (i, k) in [0usize, 1, 2, 3, 3].into_iter().enumerate() {
        x[[i, 0]] = r.random_range(-1.0..4.0);
        x[[i, 1]] = if i == 4 { 7.0 } else { k as f32 };
        for c in 2..2 + 2 * k {
            x[[i, c]] = r.random_range(-1.5..1.5);
        }
    }
    x
}

/// Independent f64 forward of one event from public-order parameters `theta`.
fn ref_logits(m: &Pfn, theta: &[f64], x: &[f64]) -> Vec<f64> {
    let l = m.layout();
    let k = (x[1].round().clamp(0.0, l.max_objects as f64)) as usize;
    let (em, es) = m.event_standardization();
    let (om, os) = m.object_standardization();
    let act = |z: f64| m.activation().reference_f64(z);
    let groups = m.param_groups();
    let shapes = m.shapes();
    let dense = |g: usize, a: &[f64], activated: bool| -> Vec<f64> {
        let (inp, out) = shapes[g];
        let o = groups[g].1;
        let w = &theta[o..o + out * inp];
        let b = &theta[o + out * inp..o + out * inp + out];
        (0..out)
            .map(|j| {
                let z = b[j] + (0..inp).map(|i| w[j * inp + i] * a[i]).sum::<f64>();
                if activated {
                    act(z)
                } else {
                    z
                }
            })
            .collect()
    };
    let n_phi = m.n_phi();
    let mut pooled = vec![0.0; m.latent()];
    for s in 0..k {
        let mut a: Vec<f64> = (0..2).map(|j| (x[2 + 2 * s + j] - f64::from(om[j])) / f64::from(os[j])).collect();
        for g in 0..n_phi {
            a = dense(g, &a, true);
        }
        pooled.iter_mut().zip(&a).for_each(|(p, v)| *p += v);
    }
    if m.pooling() == Pooling::Mean && k > 0 {
        pooled.iter_mut().for_each(|p| *p /= k as f64);
    }
    let mut a = pooled;
    a.push((x[0] - f64::from(em[0])) / f64::from(es[0]));
    let n_f = shapes.len() - n_phi;
    for g in 0..n_f {
        a = dense(n_phi + g, &a, g + 1 < n_f);
    }
    a
}

/// Loss of one event from f64 logits (BCE on the logit, CE, MSE).
fn ref_loss(out: Output, z: &[f64], label: i64) -> f64 {
    match out {
        Output::Sigmoid => {
            let y = label as f64;
            z[0].max(0.0) - y * z[0] + (-z[0].abs()).exp().ln_1p()
        }
        Output::Softmax => {
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            lse - z[label as usize]
        }
        Output::Linear => z.iter().map(|v| (v - label as f64).powi(2)).sum::<f64>() / z.len() as f64,
    }
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn close(a: f64, fd: f64) -> bool {
    (a - fd).abs() <= TOL * (1.0 + fd.abs())
}

fn cases() -> Vec<Pfn> {
    vec![
        model(Activation::Tanh, Output::Sigmoid, 1, Pooling::Sum, 1),
        model(Activation::Gelu, Output::Softmax, 3, Pooling::Mean, 2),
        model(Activation::Tanh, Output::Linear, 1, Pooling::Mean, 3),
    ]
}

#[test]
fn input_gradients_match_finite_differences_and_vanish_on_padding_and_count() {
    for m in cases() {
        let x = events(7);
        let labels = [1i64, 0, 1, 0, 1];
        let labels: Vec<i64> = labels.iter().map(|&l| if m.output() == Output::Softmax { l + 1 } else { l }).collect();
        let theta = to64(&m.params_flat());
        let g = m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(&labels))).unwrap();
        for (i, &label) in labels.iter().enumerate() {
            let row = to64(x.row(i).as_slice().unwrap());
            let k = (row[1].round().clamp(0.0, 3.0)) as usize;
            let z = ref_logits(&m, &theta, &row);
            assert!((f64::from(g.value[i]) - ref_loss(m.output(), &z, label)).abs() < 1e-5);
            for c in 0..x.ncols() {
                let real = c == 0 || (c >= 2 && c < 2 + 2 * k);
                if !real {
                    assert_eq!(g.grad[[i, c]], 0.0, "event {i} column {c} is padding or the count");
                    continue;
                }
                let f = |d: f64| {
                    let mut r = row.clone();
                    r[c] += d;
                    ref_loss(m.output(), &ref_logits(&m, &theta, &r), label)
                };
                let fd = (f(H) - f(-H)) / (2.0 * H);
                let a = f64::from(g.grad[[i, c]]);
                assert!(close(a, fd), "{:?} event {i} column {c}: analytic {a} fd {fd}", m.output());
            }
        }
    }
}

#[test]
fn every_grad_target_matches_its_objective() {
    let m = model(Activation::Tanh, Output::Softmax, 3, Pooling::Sum, 4);
    let x = events(8);
    let theta = to64(&m.params_flat());
    let custom = |_: usize, z: &[f32], g: &mut [f32]| {
        // objective z0·z1 + z2, gradient (z1, z0, 1)
        g.copy_from_slice(&[z[1], z[0], 1.0]);
        z[0] * z[1] + z[2]
    };
    type Objective = Box<dyn Fn(&[f64], &[f64]) -> f64>;
    let objs: Vec<(GradTarget<'_>, Objective)> = vec![
        (GradTarget::Logit { class: 2 }, Box::new(|z: &[f64], _: &[f64]| z[2])),
        (
            GradTarget::Score { class: 1 },
            Box::new(|z: &[f64], _: &[f64]| {
                let s: f64 = z.iter().map(|v| v.exp()).sum();
                z[1].exp() / s
            }),
        ),
        (GradTarget::Custom(&custom), Box::new(|z: &[f64], _: &[f64]| z[0] * z[1] + z[2])),
    ];
    for (target, f) in objs {
        let g = m.input_grad_and_scores(x.view(), target).unwrap();
        for i in 0..x.nrows() {
            let row = to64(x.row(i).as_slice().unwrap());
            for c in [0usize, 2, 3, 5] {
                let h = |d: f64| {
                    let mut r = row.clone();
                    r[c] += d;
                    f(&ref_logits(&m, &theta, &r), &r)
                };
                let fd = (h(H) - h(-H)) / (2.0 * H);
                let k = (row[1].round().clamp(0.0, 3.0)) as usize;
                let want = if c == 0 || c < 2 + 2 * k { fd } else { 0.0 };
                assert!(
                    close(f64::from(g.grad[[i, c]]), want),
                    "{target:?} event {i} col {c}: {} vs {want}",
                    g.grad[[i, c]]
                );
            }
        }
    }
    // LossOfPredicted: the loss with the predicted class as label.
    let g = m.input_grad_and_scores(x.view(), GradTarget::LossOfPredicted).unwrap();
    let l = m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(&g.classes))).unwrap();
    assert_eq!(g.grad, l.grad);
}

#[test]
fn weight_gradients_match_finite_differences_with_event_weights() {
    // All five events, and event 0 alone (no objects at all: Φ's gradient is exactly 0).
    let all = events(9);
    let empty = all.slice(ndarray::s![0..1, ..]).to_owned();
    for (m, x) in cases().into_iter().flat_map(|m| [(m.clone(), all.clone()), (m, empty.clone())]) {
        let labels: Vec<i64> = vec![0, 1, 1, 0, 1][..x.nrows()].to_vec();
        let w = &[0.5f32, 2.0, 1.0, -0.25, 1.5][..x.nrows()];
        let (loss, g) = m.weight_grad(x.view(), Targets::Labels(&labels), Some(w)).unwrap();
        if x.nrows() == 1 {
            let phi_params = m.param_groups()[m.n_phi()].1;
            assert!(g[..phi_params].iter().all(|&v| v == 0.0));
        }
        let theta = to64(&m.params_flat());
        let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| to64(r.as_slice().unwrap())).collect();
        let wsum: f64 = w.iter().map(|&v| f64::from(v)).sum();
        let mean_loss = |t: &[f64]| -> f64 {
            rows.iter()
                .zip(&labels)
                .zip(w)
                .map(|((r, &l), &wi)| f64::from(wi) * ref_loss(m.output(), &ref_logits(&m, t, r), l))
                .sum::<f64>()
                / wsum
        };
        assert!((loss - mean_loss(&theta)).abs() < 1e-5, "loss {loss} vs {}", mean_loss(&theta));
        for p in 0..theta.len() {
            let f = |d: f64| {
                let mut t = theta.clone();
                t[p] += d;
                mean_loss(&t)
            };
            let fd = (f(H) - f(-H)) / (2.0 * H);
            assert!(close(f64::from(g[p]), fd), "{:?} parameter {p}: analytic {} fd {fd}", m.output(), g[p]);
        }
    }
}

#[test]
fn permuting_the_constituents_leaves_the_output_unchanged() {
    // Sum pooling: Σ over objects does not depend on their order (up to f32 rounding of
    // the sum, a few ulp of the O(1) pooled values), for ReLU (energyflow's choice) too.
    for act in [Activation::Relu, Activation::Tanh] {
        let m = model(act, Output::Sigmoid, 1, Pooling::Sum, 5);
        let x = events(10);
        let mut y = x.clone();
        // Event 3 (3 objects): order (2, 0, 1); event 2: swap its two objects.
        for (i, perm) in [(3usize, vec![2usize, 0, 1]), (2, vec![1, 0])] {
            for (s, &from) in perm.iter().enumerate() {
                for j in 0..2 {
                    y[[i, 2 + 2 * s + j]] = x[[i, 2 + 2 * from + j]];
                }
            }
        }
        assert_ne!(x, y);
        let (a, b) = (m.logits(x.view()).unwrap(), m.logits(y.view()).unwrap());
        for (p, q) in a.iter().zip(b.iter()) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{act:?}: {p} vs {q}");
        }
    }
}

#[test]
fn padded_slot_values_have_no_influence() {
    let m = model(Activation::Gelu, Output::Softmax, 3, Pooling::Mean, 6);
    let x = events(11);
    let mut y = x.clone();
    // Garbage in every padded slot (events 0–2), including NaN and huge values, and the
    // count entry of the last event moved within its rounding/clamping range (7 → 3.4).
    y[[0, 2]] = f32::NAN;
    y[[0, 7]] = 1e30;
    y[[1, 4]] = -3.0;
    y[[2, 7]] = f32::INFINITY;
    y[[4, 1]] = 3.4;
    assert_eq!(m.logits(x.view()).unwrap(), m.logits(y.view()).unwrap());
    let t = GradTarget::Score { class: 0 };
    assert_eq!(m.input_grad_and_scores(x.view(), t).unwrap().grad, m.input_grad_and_scores(y.view(), t).unwrap().grad);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let m = Pfn::new(layout(), &PfnConfig { phi: vec![16, 8], f: vec![8], seed: 3, ..Default::default() }).unwrap();
    let mut r = crate::rng::rng(12);
    let n = 300;
    let mut x = Array2::<f32>::zeros((n, 8));
    for i in 0..n {
        let k = i % 4;
        x[[i, 0]] = r.random_range(0.0..2.0);
        x[[i, 1]] = k as f32;
        for c in 2..2 + 2 * k.min(3) {
            x[[i, c]] = r.random_range(-1.0..1.0);
        }
    }
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let run = || {
        let (l, g) = m.weight_grad(x.view(), Targets::Labels(&labels), None).unwrap();
        let ig = m.input_grad_and_scores(x.view(), GradTarget::Logit { class: 1 }).unwrap();
        (l, g, ig.grad, m.logits(x.view()).unwrap())
    };
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(run);
    let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(run);
    assert_eq!(one, three);
}

#[test]
fn public_parameter_order_round_trips_and_names_its_groups() {
    let m = model(Activation::Relu, Output::Sigmoid, 1, Pooling::Sum, 7);
    let names: Vec<String> = m.param_groups().into_iter().map(|g| g.0).collect();
    assert_eq!(names, ["phi.0", "phi.1", "f.0", "f.1"]);
    // phi.0: 2 → 5 (15), phi.1: 5 → 4 (24), f.0: 4 + 1 → 6 (36), f.1: 6 → 1 (7).
    assert_eq!(m.param_groups().iter().map(|g| g.2).collect::<Vec<_>>(), [15, 24, 36, 7]);
    assert_eq!(m.n_params(), 82);
    let flat = m.params_flat();
    let mut c = m.clone();
    let shifted: Vec<f32> = flat.iter().map(|v| v + 1.0).collect();
    c.set_params_flat(&shifted).unwrap();
    assert_eq!(c.params_flat(), shifted);
    assert!(c.set_params_flat(&flat[1..]).is_err());
}

#[test]
fn save_and_load_round_trip_bit_identically() {
    let tmp = |n: &str| std::env::temp_dir().join(format!("nuisance_pfn_{}_{n}", std::process::id()));
    let m = model(Activation::Gelu, Output::Softmax, 3, Pooling::Mean, 13);
    let (p, q) = (tmp("a.safetensors"), tmp("b.safetensors"));
    m.save(&p).unwrap();
    let back = Pfn::load(&p).unwrap();
    assert_eq!(back, m);
    let x = events(14);
    assert_eq!(back.logits(x.view()).unwrap(), m.logits(x.view()).unwrap());
    back.save(&q).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    // An MLP file is not a PFN, and the error says which format it is.
    let mlp = crate::model::Mlp::new(&[2, 1], Default::default()).unwrap();
    mlp.save(&q).unwrap();
    assert!(Pfn::load(&q).unwrap_err().to_string().contains("nuisance-mlp"));
    let _ = (std::fs::remove_file(&p), std::fs::remove_file(&q));
}

/// The fixture of `scripts/export_pfn.py`: a PFN state dict and its logits (computed in f64
/// by the script's own forward) on 6 jets with 0–4 constituents.
#[test]
fn import_reproduces_the_fixture_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pfn_fixture.json")).unwrap()).unwrap();
    let strings = |k: &str| -> Vec<String> { serde_json::from_value(fx[k].clone()).unwrap() };
    let floats = |k: &str| -> Vec<f32> { serde_json::from_value(fx[k].clone()).unwrap() };
    let layout = SetLayout::new(
        strings("event_features"),
        "part",
        strings("object_features"),
        fx["max_objects"].as_u64().unwrap() as usize,
    )
    .unwrap();
    let spec = PfnImport {
        layout,
        activation: Activation::Relu,
        pooling: Pooling::Sum,
        output: Output::Sigmoid,
        standardization: Some((floats("event_mean"), floats("event_std"), floats("object_mean"), floats("object_std"))),
    };
    let m = import_torch_pfn(&dir.join("pfn_fixture.safetensors"), &spec).unwrap();
    assert_eq!(m.phi_widths(), [3, 8, 6]);
    assert_eq!(m.f_widths(), [7, 5, 1]);
    let rows: Vec<Vec<f32>> = serde_json::from_value(fx["inputs"].clone()).unwrap();
    let want = floats("logits");
    let x = Array2::from_shape_vec((rows.len(), rows[0].len()), rows.concat()).unwrap();
    let z = m.logits(x.view()).unwrap();
    for (a, b) in z.iter().zip(&want) {
        // f32 against the script's f64 forward on the same f32 inputs: a few ulp of O(1).
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // A layout whose widths do not fit the weights is refused with both counts.
    let mut bad = spec.clone();
    bad.layout = SetLayout::new(vec![], "part", strings("object_features"), 4).unwrap();
    let e = import_torch_pfn(&dir.join("pfn_fixture.safetensors"), &bad).unwrap_err().to_string();
    assert!(e.contains("F 7 inputs") && e.contains("0 event features"), "{e}");
}

/// Jets whose label is whether their objects' `a` sum is positive (so the summed Φ can learn
/// it), 0–3 objects each, plus an uninformative event feature.
fn toy_jets(n: usize, seed: u64) -> crate::data::Dataset {
    use crate::data::collection::Collection;
    let mut r = crate::rng::rng(seed);
    let (mut off, mut a, mut b, mut labels, mut ht) = (vec![0usize], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let k = r.random_range(1..4usize);
        let mut s = 0.0;
        for _ in 0..k {
            let v: f32 = r.random_range(-1.0..1.0);
            s += v;
            a.push(v);
            b.push(r.random_range(-1.0..1.0));
        }
        off.push(a.len());
        labels.push(i64::from(s > 0.0));
        ht.push(r.random_range(0.0..5.0));
    }
    let c = Collection::new("part", off, vec!["a".into(), "b".into()], vec![a, b]).unwrap();
    let x = Array2::from_shape_vec((n, 1), ht).unwrap();
    crate::data::Dataset::new(vec!["ht".into()], x, Some(labels), None).unwrap().with_collection(c).unwrap()
}

#[test]
fn training_lowers_the_loss_and_is_reproducible() {
    let ds = toy_jets(400, 15);
    let m = Pfn::new(layout(), &PfnConfig { phi: vec![16, 8], f: vec![16], seed: 4, ..Default::default() }).unwrap();
    let cfg = crate::model::TrainConfig {
        epochs: 15,
        batch_size: 64,
        optimizer: crate::model::Optimizer::adam(1e-2),
        seed: 5,
        ..Default::default()
    };
    let control = crate::optim::Control::default();
    let before = (&m as &dyn crate::model::Model).evaluate(&ds, false).unwrap().loss;
    // Set models train through the one generic trainer (`Model::weight_grad` per half batch).
    let a = crate::model::train(&m, &ds, &cfg, &control).unwrap();
    let file = std::env::temp_dir().join(format!("nuisance_pfn_train_{}.safetensors", std::process::id()));
    a.model.save(&file).unwrap();
    let trained = Pfn::load(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let after = (&trained as &dyn crate::model::Model).evaluate(&ds, false).unwrap();
    // ln 2 ≈ 0.69 at chance; the task is separable by the sum, so 15 epochs get well below.
    assert!(after.loss < 0.8 * before && after.loss < 0.5, "loss {before} → {}", after.loss);
    assert!(after.auc.unwrap() > 0.9);
    // The standardisation was fitted and stored: object feature a has mean ≈ 0, std ≈ 1/√3.
    assert!((trained.object_standardization().1[0] - 0.577).abs() < 0.05);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = one.install(|| crate::model::train(&m, &ds, &cfg, &control).unwrap());
    assert_eq!(a.model.params_flat(), b.model.params_flat());
    assert_eq!(a.history, b.history);
}

#[test]
fn block_buffers_beyond_the_memory_budget_are_refused_before_allocating() {
    // The weights (0.4 MB) and 2 MB a thread: block buffers are checked once per rayon thread.
    let b = crate::memory::Budget::new((1 << 20) + (rayon::current_num_threads() as u64) * (2 << 20));
    let _g = crate::memory::enter(b.clone());
    let layout = SetLayout::new(vec![], "part", vec!["a".into(), "b".into()], 100).unwrap();
    // Φ 2 → 1000: 3000 parameters; F 1000 → 100 → 1: ≈ 100k; 0.4 MB of weights.
    let m = Pfn::new(layout, &PfnConfig { phi: vec![1000], f: vec![100], ..Default::default() }).unwrap();
    // 64 events × 100 objects: a block's Φ buffers need 6400 × ≈ 5000 floats ≈ 128 MB.
    let mut x = Array2::<f32>::zeros((64, m.n_inputs()));
    x.column_mut(0).fill(100.0);
    let e = m.logits(x.view()).unwrap_err();
    assert_eq!(e.kind(), "memory", "{e}");
    assert!(e.to_string().contains("6400 objects"), "{e}");
    // Events without objects need only F's buffers (64 × ≈ 4200 floats ≈ 1 MB a thread).
    x.column_mut(0).fill(0.0);
    assert_eq!(m.logits(x.view()).unwrap().nrows(), 64);
}

#[test]
fn hostile_pfn_files_give_clean_errors() {
    let path = std::env::temp_dir().join(format!("nuisance_pfn_{}_hostile.safetensors", std::process::id()));
    let m = model(Activation::Relu, Output::Sigmoid, 1, Pooling::Sum, 16);
    let load_with = |key: &str, value: &str| {
        let mut meta = m.metadata();
        meta.insert(key.into(), value.into());
        std::fs::write(&path, super::super::io::serialize(vec![], &meta)).unwrap();
        Pfn::load(&path).unwrap_err().to_string()
    };
    // Widths that would need 400 MB of weights in a file of a few hundred bytes.
    assert!(load_with("phi", "[2, 100000000]").contains("more weights than the file holds"));
    assert!(load_with("max_objects", "1e99").contains("max_objects is not a number"));
    assert!(load_with("max_objects", "100000000").contains("max_objects"));
    assert!(load_with("pooling", "max").contains("pooling"));
    assert!(load_with("format_version", "7").contains("format version 7"));
    // Right metadata (82 weights fit in the header's bytes), no tensors: the first one is named.
    let e = load_with("kind", "pfn");
    assert!(e.contains("missing tensor 'phi.0.weight'"), "{e}");
    // A truncated file.
    m.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(Pfn::load(&path).unwrap_err().to_string().contains("not a safetensors file"));
    let _ = std::fs::remove_file(&path);
}
