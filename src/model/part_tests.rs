//! ParT: gradients against central finite differences of the same network in f64 (candle's
//! autograd checked through attention with the padding mask and pair-feature biases, class
//! attention, LayerNorm, GELU), padded slots, permutation invariance, save/load, and the
//! accuracy of the finite-difference Hessian.
//!
//! Tolerances. Weight gradients: the f32 analytic gradients carry relative rounding errors
//! ~1e-6; the f64 central difference with h = 1e-4 has truncation error h²·|f'''|/6 ≲ 1e-8 for
//! these smooth O(1) functions; so 2e-4·(1 + |fd|) holds with margin while a wrong term (an
//! O(0.1) error) fails it. Input gradients: the inputs are f32 physical values (pT up to 30,
//! energies ≤ 10), so the step is h = 1e-3 and the block inputs are rounded to f32 after
//! standardisation (≲ 3e-7 absolute on O(3) values, ≲ 1.5e-4 relative to the step 2h, on
//! gradients ≲ 1); truncation h²·f'''/6 ≲ 1e-5; tolerance 2e-3·(1 + |fd|).

use candle_core::DType;
use ndarray::{Array2, ArrayView2};
use rand::Rng as _;

use super::*;
use crate::model::part_net::{forward, BlockInput, InputTensors};
use crate::model::{GradTarget, Model, Targets};

const OBJ: [&str; 6] = ["logpt", "deta", "pt", "eta", "phi", "E"];

/// One event feature `ht`; object features log pT, Δη and the kinematics (pT, η, φ, E); 4 slots.
fn layout() -> SetLayout {
    SetLayout::new(vec!["ht".into()], "part", OBJ.map(String::from).to_vec(), 4).unwrap()
}

fn config(pairs: bool, seed: u64) -> PartConfig {
    PartConfig {
        embed: vec![8, 8],
        pair_embed: vec![6],
        embed_inputs: vec![],
        pair_inputs: if pairs { ["pt", "eta", "phi", "E"].map(String::from).to_vec() } else { vec![] },
        heads: 2,
        blocks: 2,
        cls_blocks: 1,
        ffn_ratio: 2,
        fc: vec![5],
        n_outputs: 2,
        output: Output::Softmax,
        seed,
    }
}

/// A model with a standardisation that is not the identity and its LayerNorm/scale
/// parameters moved away from 1 and 0 (so every parameter's gradient is generic).
fn model(pairs: bool, seed: u64) -> Part {
    model_of(&config(pairs, seed))
}

/// [`model`] of any configuration.
fn model_of(cfg: &PartConfig) -> Part {
    let seed = cfg.seed;
    let mut m = Part::new(layout(), cfg).unwrap();
    let mut r = crate::rng::rng(seed + 100);
    let p: Vec<f32> = m.params().iter().map(|v| v + r.random_range(-0.1f32..0.1)).collect();
    m.set_params(&p).unwrap();
    m.set_standardization(
        (vec![100.0], vec![40.0]),
        (vec![2.0, 0.0, 8.0, 0.0, 0.0, 12.0], vec![1.0, 0.3, 6.0, 0.8, 1.8, 9.0]),
        (vec![-1.0, -1.5, -1.2, 1.0], vec![2.0, 0.8, 0.9, 2.5]),
    )
    .unwrap();
    m
}

/// Events with 0, 1, 2, 4, 3 real particles and one whose count entry says 7 (clamped to 4).
/// Particles: pT well apart (no ties in min(pT_a, pT_b)), heavy for their momentum (m ∈ [1, 2]
/// GeV at pT ≤ 9.5, |η| ≤ 0.35: ln m² of every pair far from its clamp and smooth on the step;
/// near-massless particles make ∂ ln m²/∂η ~ p²·sinh η/m² huge), ΔR ≥ 0.15 (ln Δ
/// unclamped); padded slots hold 0.
fn events(seed: u64) -> Array2<f32> {
    let l = layout();
    let counts = [0usize, 1, 2, 4, 3, 4];
    let mut r = crate::rng::rng(seed);
    let mut x = Array2::<f32>::zeros((counts.len(), l.width()));
    for (i, &k) in counts.iter().enumerate() {
        x[[i, 0]] = r.random_range(50.0..150.0);
        x[[i, 1]] = if i == 5 { 7.0 } else { k as f32 };
        for s in 0..k {
            let pt = 1.0 + 2.5 * s as f64 + r.random_range(0.0..1.0);
            let eta = -0.3 + 0.2 * s as f64 + r.random_range(0.0..0.05);
            let phi = r.random_range(-3.0..3.0);
            let m = r.random_range(1.0..2.0);
            let e = ((pt * eta.cosh()).powi(2) + m * m).sqrt();
            let v = [pt.ln(), eta - 0.1, pt, eta, phi, e];
            for (j, v) in v.iter().enumerate() {
                x[[i, l.slot_column(s, j)]] = *v as f32;
            }
        }
    }
    x
}

/// The logits of all events in f64 (one block), from f64 parameters `p`.
fn logits64(m: &Part, x: ArrayView2<'_, f32>, p: &[f64]) -> Vec<Vec<f64>> {
    let rows: Vec<usize> = (0..x.nrows()).collect();
    let inp = BlockInput::new(m, x, &rows);
    let t = InputTensors::new(m, &inp, false, DType::F64).unwrap();
    let (w, _) = m.weights_as(Some(p), false, DType::F64).unwrap();
    forward(&w, &inp, &t).unwrap().to_vec2::<f64>().unwrap()
}

/// Mean softmax cross-entropy ln Σ e^z − z_y in f64.
fn mean_loss(z: &[Vec<f64>], y: &[i64]) -> f64 {
    let l: f64 = z
        .iter()
        .zip(y)
        .map(|(z, &y)| {
            let mx = z.iter().copied().fold(f64::MIN, f64::max);
            mx + z.iter().map(|v| (v - mx).exp()).sum::<f64>().ln() - z[y as usize]
        })
        .sum();
    l / z.len() as f64
}

const LABELS: [i64; 6] = [1, 0, 1, 0, 1, 0];

#[test]
fn weight_gradients_match_f64_central_differences() {
    for pairs in [true, false] {
        let m = model(pairs, 3);
        let x = events(5);
        let (loss, g) = m.weight_grad(x.view(), Targets::Labels(&LABELS), None).unwrap();
        let p: Vec<f64> = m.params().iter().map(|&v| f64::from(v)).collect();
        assert!((loss - mean_loss(&logits64(&m, x.view(), &p), &LABELS)).abs() < 1e-5);
        let h = 1e-4;
        // The first and the middle entry of every tensor.
        for s in m.tensor_specs() {
            for i in [s.offset, s.offset + s.len() / 2] {
                let (mut up, mut dn) = (p.clone(), p.clone());
                up[i] += h;
                dn[i] -= h;
                let fd = (mean_loss(&logits64(&m, x.view(), &up), &LABELS)
                    - mean_loss(&logits64(&m, x.view(), &dn), &LABELS))
                    / (2.0 * h);
                let a = f64::from(g[i]);
                assert!((a - fd).abs() <= 2e-4 * (1.0 + fd.abs()), "pairs {pairs}: {} [{i}]: {a} vs fd {fd}", s.name);
            }
        }
    }
}

#[test]
fn input_gradients_match_f64_central_differences_through_pair_features_and_masks() {
    let m = model(true, 4);
    let x = events(6);
    let p: Vec<f64> = m.params().iter().map(|&v| f64::from(v)).collect();
    let g = m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(&LABELS))).unwrap();
    let l = m.layout();
    let n = x.nrows() as f64;
    let h = 1e-3;
    for i in 0..x.nrows() {
        let k = l.count(x.row(i).as_slice().unwrap());
        // The event feature and every feature of every real slot.
        let cols: Vec<usize> =
            std::iter::once(0).chain((0..k).flat_map(|s| (0..6).map(move |j| l.slot_column(s, j)))).collect();
        for c in cols {
            let (mut up, mut dn) = (x.clone(), x.clone());
            up[[i, c]] += h as f32;
            dn[[i, c]] -= h as f32;
            let step = f64::from(up[[i, c]]) - f64::from(dn[[i, c]]);
            // The per-event loss (the mean's gradient times n).
            let fd = n
                * (mean_loss(&logits64(&m, up.view(), &p), &LABELS) - mean_loss(&logits64(&m, dn.view(), &p), &LABELS))
                / step;
            let a = f64::from(g.grad[[i, c]]);
            assert!(
                (a - fd).abs() <= 2e-3 * (1.0 + fd.abs()),
                "event {i} column {c} ({}): {a} vs fd {fd}",
                l.names()[c]
            );
        }
        // The count entry and padded slots get exactly zero.
        assert_eq!(g.grad[[i, l.count_column()]], 0.0);
        for c in l.slot_column(k, 0)..l.width() {
            assert_eq!(g.grad[[i, c]], 0.0, "padded column {c} of event {i}");
        }
    }
}

#[test]
fn padded_slots_and_block_composition_never_change_outputs() {
    let m = model(true, 7);
    let x = events(8);
    let z = m.logits(x.view()).unwrap();
    let l = m.layout();
    let mut junk = x.clone();
    for i in 0..x.nrows() {
        let k = l.count(x.row(i).as_slice().unwrap());
        for c in l.slot_column(k, 0)..l.width() {
            junk[[i, c]] = if c % 2 == 0 { f32::NAN } else { 1e6 };
        }
    }
    let zj = m.logits(junk.view()).unwrap();
    assert_eq!(z, zj, "padded slots changed an output");
    // Each event alone (padded to its own count) equals the event inside the batch (padded to
    // 4): the extra padding changes nothing beyond f32 summation order.
    for i in 0..x.nrows() {
        let zi = m.logits(x.slice(ndarray::s![i..i + 1, ..])).unwrap();
        for (a, b) in zi.row(0).iter().zip(z.row(i)) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "event {i}: {a} vs {b}");
        }
    }
    assert!(z.iter().all(|v| v.is_finite()), "an event without particles must have finite logits: {z:?}");
}

#[test]
fn logits_are_invariant_under_permutations_of_the_particles() {
    for pairs in [true, false] {
        let m = model(pairs, 9);
        let x = events(10);
        let l = m.layout();
        let z = m.logits(x.view()).unwrap();
        // Event 3 has 4 particles: reverse them, and rotate them.
        for perm in [[3usize, 2, 1, 0], [1, 2, 3, 0]] {
            let mut y = x.clone();
            for (to, &from) in perm.iter().enumerate() {
                for j in 0..6 {
                    y[[3, l.slot_column(to, j)]] = x[[3, l.slot_column(from, j)]];
                }
            }
            let zp = m.logits(y.view()).unwrap();
            for (a, b) in zp.row(3).iter().zip(z.row(3)) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "pairs {pairs}, {perm:?}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn save_load_round_trip_is_bit_identical() {
    let tmp = |n: &str| std::env::temp_dir().join(format!("nuisance_part_{}_{n}", std::process::id()));
    let path = tmp("a.safetensors");
    let m = model(true, 11);
    m.save(&path).unwrap();
    let back = crate::model::load_model(&path).unwrap();
    assert_eq!(back.kind(), "part");
    assert_eq!(back.params(), m.params().to_vec());
    let x = events(12);
    assert_eq!(back.logits(x.view()).unwrap(), m.logits(x.view()).unwrap());
    // The same model gives the same bytes.
    let again = tmp("b.safetensors");
    back.save(&again).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&again).unwrap());
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&again));
}

#[test]
fn parameter_groups_cover_every_parameter_once_in_order() {
    let m = model(true, 1);
    let g = Model::param_groups(&m);
    let names: Vec<&str> = g.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["embed", "pair_embed", "blocks.0", "blocks.1", "cls_blocks.0", "norm", "fc", "cls_token"]);
    assert_eq!(g[0].range.start, 0);
    for w in g.windows(2) {
        assert_eq!(w[0].range.end, w[1].range.start);
    }
    assert_eq!(g[g.len() - 1].range.end, m.n_params());
}

#[test]
fn part_small_has_weavers_parameter_count_minus_the_folded_batch_norms() {
    // weaver's ParT-small on 5 particle features: 223,066 parameters, of which 208 are batch
    // norm affines of the pair embedding (2·4 input + 2·(32 + 32 + 32 + 4) after the
    // convolutions), folded here.
    let feats = ["logpt", "logE", "deta", "dphi", "charge", "pt", "eta", "phi", "E"];
    let l = SetLayout::new(vec![], "part", feats.map(String::from).to_vec(), 8).unwrap();
    let cfg = PartConfig::part_small(
        feats[..5].iter().map(|s| s.to_string()).collect(),
        feats[5..].iter().map(|s| s.to_string()).collect(),
    );
    let m = Part::new(l, &cfg).unwrap();
    assert_eq!(m.n_params(), 223_066 - 208);
}

#[test]
fn bad_configurations_are_refused_with_the_option_named() {
    let bad = |c: PartConfig| Part::new(layout(), &c).unwrap_err().to_string();
    assert!(bad(PartConfig { heads: 3, ..config(true, 0) }).contains("heads"));
    assert!(bad(PartConfig { embed: vec![], ..config(true, 0) }).contains("embed"));
    let e =
        bad(PartConfig { pair_inputs: ["pt", "eta", "phi", "energy"].map(String::from).to_vec(), ..config(true, 0) });
    assert!(e.contains("'energy'") && e.contains("logpt"), "{e}");
    assert!(bad(PartConfig { pair_inputs: vec!["pt".into()], ..config(true, 0) }).contains("pair_inputs"));
}

/// The fixture of `scripts/export_part.py`: a weaver-layout ParT state dict (batch norms with
/// non-trivial statistics) and its PyTorch logits (float64 forward of the float32 weights) on
/// 6 jets with 1–4 constituents.
#[test]
fn import_reproduces_the_pytorch_fixture_outputs() {
    use crate::model::{import_torch_part, PartImport};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("part_fixture.json")).unwrap()).unwrap();
    let strings = |k: &str| -> Vec<String> { serde_json::from_value(fx[k].clone()).unwrap() };
    let floats = |k: &str| -> Vec<f32> { serde_json::from_value(fx[k].clone()).unwrap() };
    let layout =
        SetLayout::new(vec![], "part", strings("object_features"), fx["max_objects"].as_u64().unwrap() as usize)
            .unwrap();
    let spec = PartImport {
        layout,
        embed_inputs: strings("embed_inputs"),
        pair_inputs: strings("pair_inputs"),
        output: Output::Softmax,
        standardization: Some((floats("mean"), floats("std"))),
    };
    let path = dir.join("part_fixture.safetensors");
    let m = import_torch_part(&path, &spec).unwrap();
    assert_eq!(m.config().embed, [8, 8]);
    assert_eq!(m.config().pair_embed, [6]);
    assert_eq!((m.config().heads, m.config().blocks, m.config().cls_blocks), (2, 1, 1));
    let rows: Vec<Vec<f32>> = serde_json::from_value(fx["inputs"].clone()).unwrap();
    let want: Vec<Vec<f64>> = serde_json::from_value(fx["logits"].clone()).unwrap();
    let x = Array2::from_shape_vec((rows.len(), rows[0].len()), rows.concat()).unwrap();
    let z = m.logits(x.view()).unwrap();
    for (a, b) in z.iter().zip(want.concat()) {
        // f32 network (pair features in f64) against PyTorch's f64 forward of the same
        // weights and inputs: f32 rounding through a few layers of O(1) values.
        assert!((f64::from(*a) - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // Without pair inputs the import refuses a file with a pair embedding, naming the option.
    let e = import_torch_part(&path, &PartImport { pair_inputs: vec![], ..spec.clone() }).unwrap_err().to_string();
    assert!(e.contains("pair_inputs"), "{e}");
    // Embedding inputs that do not match the file's width are refused with both counts.
    let e =
        import_torch_part(&path, &PartImport { embed_inputs: vec!["logpt".into()], ..spec }).unwrap_err().to_string();
    assert!(e.contains("3 particle features") && e.contains("1 are named"), "{e}");
}

/// Hessian spectra of a ParT take central differences of its exact f32 weight gradients
/// (`landscape::fd_hessian`: the weights move by 10⁻³·max(1, ‖θ‖) along v; no exact product,
/// the forward is not written for candle's double backward). Checked here against an
/// independent f64 reference: the mixed second difference of the f64 loss,
/// uᵀHv ≈ [L(θ+hu+hv) − L(θ+hu−hv) − L(θ−hu+hv) + L(θ−hu−hv)] / 4h² with h = 10⁻³ on unit
/// u, v (truncation O(h²·L⁗) ~ 10⁻⁷, rounding 10⁻¹⁶·L/h² ~ 10⁻¹⁰), for random u, v and for
/// u = v, and the symmetry uᵀHv = vᵀHu of the two FD products. The network is smooth (GELU,
/// LayerNorm, softmax; the test model has no ReLU head layer, weaver's default), so the FD
/// product's error is its truncation O(ε²·L‴) plus the f32 gradient rounding ~ 10⁻⁷·‖∇L‖/ε.
/// Measured: relative errors of the bilinear forms 2.6e-3 to 4.4e-3 with pair features,
/// 1.2e-4 to 6.1e-4 without (printed with --nocapture); the tolerance 1 % of |uᵀHv| + 10⁻³ of
/// the curvature scale fails on a wrong product (a missing factor 2, a sign). With ReLU head
/// layers (`fc`) the product is wrong for a step that crosses a kink: on the model with
/// `fc: [5]` and no pair features, uᵀHv came out 0.18 against 0.0035.
#[test]
fn finite_difference_hessian_matches_an_f64_reference_and_is_symmetric() {
    use crate::landscape::fd_hessian::FiniteDifferenceHessian;
    use crate::model::HessianProduct as _;
    for pairs in [true, false] {
        // A smooth ParT: no ReLU head layer (weaver's default `fc_params = []`).
        let m = model_of(&PartConfig { fc: vec![], ..config(pairs, 21) });
        let x = events(22);
        assert!((&m as &dyn Model).loss_hessian(x.view(), Targets::Labels(&LABELS), None).is_none());
        let hess = FiniteDifferenceHessian::new(&m, x.view(), Targets::Labels(&LABELS), None).unwrap();
        let p: Vec<f64> = m.params().iter().map(|&v| f64::from(v)).collect();
        let n = p.len();
        let mut r = crate::rng::rng(23);
        let mut unit = || {
            let v: Vec<f64> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.into_iter().map(|a| a / norm).collect::<Vec<f64>>()
        };
        let loss_at = |a: f64, u: &[f64], b: f64, v: &[f64]| {
            let q: Vec<f64> = p.iter().zip(u).zip(v).map(|((w, du), dv)| w + a * du + b * dv).collect();
            mean_loss(&logits64(&m, x.view(), &q), &LABELS)
        };
        let h = 1e-3;
        let reference = |u: &[f64], v: &[f64]| {
            (loss_at(h, u, h, v) - loss_at(h, u, -h, v) - loss_at(-h, u, h, v) + loss_at(-h, u, -h, v)) / (4.0 * h * h)
        };
        let dot = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(p, q)| f64::from(*p) * q).sum::<f64>();
        let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (u, v) = (unit(), unit());
        let (hu, hv) = (hess.apply(&f32s(&u), None).unwrap(), hess.apply(&f32s(&v), None).unwrap());
        // The scale of H along these directions, for the absolute part of the tolerance.
        let scale = reference(&u, &u).abs().max(reference(&v, &v).abs());
        for (what, fd, want) in [
            ("uᵀHv", dot(&hv, &u), reference(&u, &v)),
            ("vᵀHu", dot(&hu, &v), reference(&u, &v)),
            ("uᵀHu", dot(&hu, &u), reference(&u, &u)),
            ("vᵀHv", dot(&hv, &v), reference(&v, &v)),
        ] {
            println!(
                "pairs {pairs}: {what} = {fd:.6e}, f64 reference {want:.6e}, rel. error {:.1e}",
                (fd - want).abs() / want.abs()
            );
            assert!((fd - want).abs() <= 0.01 * want.abs() + 1e-3 * scale, "pairs {pairs}: {what} {fd} vs f64 {want}");
        }
        let (a, b) = (dot(&hv, &u), dot(&hu, &v));
        assert!((a - b).abs() <= 0.01 * (a.abs() + b.abs()) + 1e-3 * scale, "uᵀHv {a} vs vᵀHu {b}");
    }
}
