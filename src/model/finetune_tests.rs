//! Fine-tuning controls: frozen and lr-0 groups bit-identical, per-group rates applied,
//! re-initialised groups, warm-up and the standardisation choice.

use super::*;
use crate::data::Dataset;
use crate::model::{train, Mlp, MlpConfig, Optimizer, Pfn, PfnConfig, SetLayout, TrainConfig};
use crate::optim::Control;

fn gaussians(n: usize, seed: u64) -> Dataset {
    let cfg = crate::data::synthetic::GaussiansConfig { n, d: 4, seed, ..Default::default() };
    crate::data::synthetic::gaussians_with(&cfg).unwrap()
}

fn mlp() -> Mlp {
    Mlp::new(&[4, 8, 6, 1], MlpConfig { seed: 2, ..MlpConfig::default() }).unwrap()
}

/// The same features shifted by `shift` (another "domain").
fn shifted(ds: &Dataset, shift: f32) -> Dataset {
    ds.with_x(ds.x().mapv(|v| 2.0 * v + shift)).unwrap()
}

#[test]
fn frozen_and_zero_rate_groups_stay_bit_identical_on_mlp_and_pfn() {
    let ds = gaussians(600, 1);
    let m = mlp();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 100,
        optimizer: Optimizer::adam(1e-2),
        freeze: vec![GroupRef::Index(-1)],
        group_lr: vec![("layer0".into(), 0.0)],
        ..TrainConfig::default()
    };
    let r = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
    let (before, after) = (m.params_flat(), r.model.params_flat());
    let g = m.param_groups();
    assert_eq!(before[g[0].range.clone()], after[g[0].range.clone()], "lr-0 group moved");
    assert_eq!(before[g[2].range.clone()], after[g[2].range.clone()], "frozen head moved");
    assert_ne!(before[g[1].range.clone()], after[g[1].range.clone()], "the free group did not train");

    // A PFN: its Φ frozen by name, F trained.
    let layout = SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 3).unwrap();
    let p = Pfn::new(layout, &PfnConfig { phi: vec![6, 4], f: vec![5], seed: 1, ..Default::default() }).unwrap();
    let jets = toy_jets(300, 3);
    let cfg = TrainConfig { epochs: 2, batch_size: 64, freeze: vec!["phi.0".into(), "phi.1".into()], ..cfg };
    let cfg = TrainConfig { group_lr: Vec::new(), ..cfg };
    let r = train(&p, &jets, &cfg, &Control::quiet()).unwrap();
    let (before, after) = (crate::model::Model::params_flat(&p), r.model.params_flat());
    let phi_end = crate::model::Model::param_groups(&p)[1].range.end;
    assert_eq!(before[..phi_end], after[..phi_end]);
    assert_ne!(before[phi_end..], after[phi_end..]);
}

#[test]
fn a_group_rate_scales_its_step() {
    // One SGD step without momentum on the whole set (batch = n): Δθ = −lr·g with the same g
    // at the same start for both runs, so layer 1's step at rate 0.2 is twice the step at the
    // base rate 0.1 (exactly in real arithmetic; f32 rounding of p − lr·g bounds the
    // difference by a few ulps of |p| ≲ 1, far below 1e-6), while layer 0 and 2 move alike.
    let ds = gaussians(200, 4);
    let m = mlp();
    let base = TrainConfig {
        epochs: 1,
        batch_size: 200,
        optimizer: Optimizer::Sgd { lr: 0.1, momentum: 0.0 },
        ..TrainConfig::default()
    };
    let a = train(&m, &ds, &base, &Control::quiet()).unwrap().model.params_flat();
    let faster = TrainConfig { group_lr: vec![(GroupRef::Index(1), 0.2)], ..base.clone() };
    let b = train(&m, &ds, &faster, &Control::quiet()).unwrap().model.params_flat();
    let p0 = m.params_flat();
    let g = m.param_groups();
    let mut moved = 0.0f32;
    for i in g[1].range.clone() {
        let (da, db) = (a[i] - p0[i], b[i] - p0[i]);
        assert!((db - 2.0 * da).abs() < 1e-6, "param {i}: {db} vs 2 × {da}");
        moved = moved.max(da.abs());
    }
    assert!(moved > 1e-4, "layer 1 hardly moved: {moved}");
    assert_eq!(a[g[0].range.clone()], b[g[0].range.clone()]);
}

#[test]
fn warmup_ramps_the_rate() {
    let ds = gaussians(100, 5);
    let cfg = TrainConfig { epochs: 4, warmup: 2, optimizer: Optimizer::adam(0.3), ..TrainConfig::default() };
    let r = train(&mlp(), &ds, &cfg, &Control::quiet()).unwrap();
    let lrs: Vec<f64> = r.history.iter().map(|h| h.lr).collect();
    // (e+1)/(w+1) of 0.3 for e < 2: 0.1, 0.2, then 0.3.
    let want = [0.1, 0.2, 0.3, 0.3];
    assert!(lrs.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{lrs:?}");
}

#[test]
fn reinit_redraws_only_the_named_group_within_the_torch_bound() {
    let m = mlp();
    let mut a: Box<dyn Model> = Box::new(m.clone());
    reinit(&mut *a, &[GroupRef::Index(-1)], 7).unwrap();
    let mut b: Box<dyn Model> = Box::new(m.clone());
    reinit(&mut *b, &["layer2".into()], 7).unwrap();
    assert_eq!(a.params_flat(), b.params_flat(), "index −1 and the name of the head differ, or not seeded");
    let g = m.param_groups();
    let (p0, p1) = (m.params_flat(), a.params_flat());
    assert_eq!(p0[..g[2].range.start], p1[..g[2].range.start]);
    assert_ne!(p0[g[2].range.clone()], p1[g[2].range.clone()]);
    // layer 2 has fan-in 6: every value in (−1/√6, 1/√6).
    let bound = 1.0 / 6f32.sqrt();
    assert!(p1[g[2].range.clone()].iter().all(|v| v.abs() < bound));
    // Through training: `reinit` uses the training seed; the other groups train from the
    // pretrained values.
    let ds = gaussians(200, 6);
    let cfg = TrainConfig { epochs: 1, reinit: vec![GroupRef::Index(-1)], seed: 3, ..TrainConfig::default() };
    let r1 = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
    let r2 = train(&m, &ds, &cfg, &Control::quiet()).unwrap();
    assert_eq!(r1.model.params_flat(), r2.model.params_flat());
    let e = reinit(&mut *a, &[GroupRef::Index(3)], 1).unwrap_err().to_string();
    assert_eq!(
        e,
        "train: option 'reinit' group index 3 is out of range: the model has 3 groups (layer0, layer1, layer2)"
    );
}

#[test]
fn standardisation_is_fitted_for_a_new_model_and_kept_when_fine_tuning() {
    let source = gaussians(2000, 8);
    let target = shifted(&gaussians(500, 9), 5.0);
    let cfg = TrainConfig { epochs: 1, ..TrainConfig::default() };
    let pre = train(&mlp(), &source, &cfg, &Control::quiet()).unwrap().model;
    let pre_mlp = pre.as_mlp().unwrap();
    // Auto on a new model fits it: the source means are near ½·P(y=1) = 0.25.
    assert!(pre.standardization_fitted());
    assert!(pre_mlp.mean().iter().all(|m| (m - 0.25).abs() < 0.1), "{:?}", pre_mlp.mean());
    // Auto on a trained model keeps it bit for bit.
    let kept = train(&*pre, &target, &cfg, &Control::quiet()).unwrap().model;
    assert_eq!(kept.as_mlp().unwrap().mean(), pre_mlp.mean());
    assert_eq!(kept.as_mlp().unwrap().std(), pre_mlp.std());
    // Refit takes the target's: means 2·0.25 + 5 = 5.5.
    let refit = TrainConfig { standardize: Standardize::Refit, ..cfg.clone() };
    let r = train(&*pre, &target, &refit, &Control::quiet()).unwrap().model;
    assert!(r.as_mlp().unwrap().mean().iter().all(|m| (m - 5.5).abs() < 0.2), "{:?}", r.as_mlp().unwrap().mean());
    // Keep on a new model trains on the identity standardisation.
    let keep = TrainConfig { standardize: Standardize::Keep, ..cfg };
    let k = train(&mlp(), &source, &keep, &Control::quiet()).unwrap().model;
    assert!(!k.standardization_fitted());
    assert_eq!(Standardize::parse("refit").unwrap(), Standardize::Refit);
    assert!(Standardize::parse("yes").is_err());
}

#[test]
fn the_plain_step_is_one_range_and_adjacent_rates_merge() {
    let m = mlp();
    let n = m.n_params();
    assert_eq!(step_plan(&m, &[], &[], 1e-3).unwrap(), vec![(0..n, 1.0)]);
    let g = m.param_groups();
    let plan = step_plan(&m, &[GroupRef::Index(0)], &[(GroupRef::Index(1), 1e-3)], 1e-3).unwrap();
    assert_eq!(plan, vec![(g[1].range.start..n, 1.0)]);
    let e = step_plan(&m, &[], &[("layer1".into(), -1.0)], 1e-3).unwrap_err().to_string();
    assert!(e.contains("the learning rate of group 'layer1' is -1"), "{e}");
}

/// Jets of 1–3 objects with features `a`, `b`, labelled by the sign of Σa, and an event
/// feature `ht`.
fn toy_jets(n: usize, seed: u64) -> Dataset {
    use rand::Rng as _;
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
    let c = crate::data::collection::Collection::new("part", off, vec!["a".into(), "b".into()], vec![a, b]).unwrap();
    let x = ndarray::Array2::from_shape_vec((n, 1), ht).unwrap();
    Dataset::new(vec!["ht".into()], x, Some(labels), None).unwrap().with_collection(c).unwrap()
}

/// The body (every group but the last) and the standardisation of `old` are in `new` bit for
/// bit; the head has the new shape (fan-in × `k` weights + `k` biases) and lies inside
/// torch.nn.Linear's bound 1/√fan-in; with the old head copied back, `new` gives `old`'s logits
/// exactly on `x` (so nothing else changed).
fn check_replaced(old: &dyn Model, new: &dyn Model, k: usize, x: ndarray::ArrayView2<'_, f32>) {
    let (go, gn) = (old.param_groups(), new.param_groups());
    let (po, pn) = (old.params(), new.params());
    let last = go.len() - 1;
    for (a, b) in go[..last].iter().zip(&gn[..last]) {
        assert_eq!(po[a.range.clone()], pn[b.range.clone()], "body group {} changed", a.name);
    }
    let head = &pn[gn[last].range.clone()];
    let fan_in = (go[last].range.len() / old.n_outputs()) - 1;
    assert_eq!(head.len(), fan_in * k + k);
    let bound = 1.0 / (fan_in as f32).sqrt();
    assert!(head.iter().all(|v| v.abs() < bound) && head.iter().any(|&v| v != 0.0));
    assert_eq!(new.n_outputs(), k);
    let mut same = old.replace_head(old.n_outputs(), old.output(), 3).unwrap();
    let mut p = same.params();
    p[go[last].range.clone()].copy_from_slice(&po[go[last].range.clone()]);
    same.set_params(&p).unwrap();
    assert_eq!(same.logits(x).unwrap(), old.logits(x).unwrap());
}

#[test]
fn replace_head_keeps_the_body_and_standardisation_and_draws_a_new_head() {
    use crate::model::Output;
    // A trained MLP classifier (standardisation fitted) gets a 3-class softmax head.
    let ds = shifted(&gaussians(300, 1), 1.0);
    let cfg = TrainConfig { epochs: 1, batch_size: 100, ..TrainConfig::default() };
    let m = train(&mlp(), &ds, &cfg, &Control::quiet()).unwrap().model;
    assert!(m.standardization_fitted());
    let r = m.replace_head(3, Output::Softmax, 7).unwrap();
    assert_eq!(r.output(), Output::Softmax);
    assert!(r.standardization_fitted());
    check_replaced(&*m, &*r, 3, ds.x().view());
    // Seeded: the same seed draws the same head, another seed another one.
    assert_eq!(m.replace_head(3, Output::Softmax, 7).unwrap().params(), r.params());
    assert_ne!(m.replace_head(3, Output::Softmax, 8).unwrap().params(), r.params());

    // The candle MLP goes through the fused one and keeps the same body.
    let c = crate::model::CandleMlp::from_mlp(m.as_mlp().unwrap()).unwrap();
    let rc = Model::replace_head(&c, 3, Output::Softmax, 7).unwrap();
    assert_eq!(rc.kind(), "candle_mlp");
    check_replaced(&c, &*rc, 3, ds.x().view());

    // A PFN classifier becomes a regression network (one linear output).
    let layout = SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 3).unwrap();
    let p = Pfn::new(layout, &PfnConfig { phi: vec![6, 4], f: vec![5], seed: 1, ..Default::default() }).unwrap();
    let jets = toy_jets(200, 3);
    let p = train(&p, &jets, &cfg, &Control::quiet()).unwrap().model;
    let r = p.replace_head(1, Output::Linear, 2).unwrap();
    assert_eq!((r.kind(), r.output()), ("pfn", Output::Linear));
    check_replaced(&*p, &*r, 1, p.inputs(&jets).unwrap().view());

    // A width the output cannot take is the constructor's clear error.
    let e = m.replace_head(2, Output::Sigmoid, 1).unwrap_err().to_string();
    assert!(e.contains("exactly 1 output"), "{e}");
}

#[test]
fn particle_models_report_a_fitted_standardisation_so_auto_keeps_it() {
    // `standardize: "auto"` refits only a model whose standardisation is still the identity;
    // ParticleNet and ParT must say when theirs has been fitted (else fine-tuning would
    // silently refit it on the target domain).
    use crate::model::{particlenet, Output, Part, PartConfig, ParticleNetConfig};
    let jets = toy_jets(200, 5);
    let layout = || SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 3).unwrap();
    let cfg = ParticleNetConfig {
        conv: vec![(2, vec![4])],
        fc: vec![(4, 0.0)],
        points: vec![0, 1],
        fusion: false,
        n_outputs: 2,
        seed: 1,
    };
    let mut pn = particlenet(layout(), &cfg, Output::Softmax).unwrap();
    let pcfg = PartConfig {
        embed: vec![4],
        pair_embed: vec![],
        embed_inputs: vec![],
        pair_inputs: vec![],
        heads: 1,
        blocks: 1,
        cls_blocks: 1,
        ffn_ratio: 1,
        fc: vec![],
        n_outputs: 2,
        output: Output::Softmax,
        seed: 1,
    };
    let mut pt = Part::new(layout(), &pcfg).unwrap();
    for m in [&mut pn as &mut dyn Model, &mut pt as &mut dyn Model] {
        assert!(!m.standardization_fitted(), "{}: a new network has none", m.kind());
        m.fit_standardization(&jets).unwrap();
        assert!(m.standardization_fitted(), "{}: fitted", m.kind());
        assert!(!Standardize::Auto.refits(m), "{}: auto keeps a fitted one", m.kind());
    }
}
