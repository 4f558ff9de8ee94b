//! Attacks on a set model (a small PFN): the uncertainty model expanded over the set layout,
//! per-event degrees of freedom, and the properties every attack must keep — the object count
//! and the padded slots bit for bit, objects beyond the model's view untouched.

use ndarray::{Array2, ArrayView2};
use rand::Rng as _;

use crate::attack::{
    configure, pgd, s_scan, FeatureSigma, Goal, Norm, PgdConfig, Projection, Purpose, Rule, Setup, UncertaintyModel,
    Value, Values,
};
use crate::data::collection::Collection;
use crate::data::Dataset;
use crate::model::{Activation, Model, Output, Pfn, PfnConfig, SetLayout};
use crate::optim::Control;

/// One event feature `ht`, object features `a`, `b`, 3 slots.
fn layout() -> SetLayout {
    SetLayout::new(vec!["ht".into()], "part", vec!["a".into(), "b".into()], 3).unwrap()
}

/// An untrained (seeded) tanh PFN: scores near 0.5, so attacks flip events easily.
fn pfn() -> Pfn {
    let cfg = PfnConfig {
        phi: vec![8, 6],
        f: vec![8],
        activation: Activation::Tanh,
        output: Output::Sigmoid,
        seed: 7,
        ..Default::default()
    };
    Pfn::new(layout(), &cfg).unwrap()
}

/// 40 events with 0, 1, 2, 3, 4 objects in turn (4 is one beyond the model's 3 slots); a, b
/// uniform in (−1, 1), ht in (0, 5); two extra event columns the model does not read.
fn jets() -> Dataset {
    let mut r = crate::rng::rng(11);
    let (mut off, mut a, mut b, mut x, mut labels) = (vec![0usize], vec![], vec![], vec![], vec![]);
    for i in 0..40usize {
        for _ in 0..i % 5 {
            a.push(r.random_range(-1.0f32..1.0));
            b.push(r.random_range(-1.0f32..1.0));
        }
        off.push(a.len());
        x.extend([r.random_range(0.0f32..5.0), 1.0, i as f32]);
        labels.push((i % 2) as i64);
    }
    let c = Collection::new("part", off, vec!["a".into(), "b".into()], vec![a, b]).unwrap();
    let x = Array2::from_shape_vec((40, 3), x).unwrap();
    Dataset::new(vec!["ht".into(), "flag".into(), "id".into()], x, Some(labels), None)
        .unwrap()
        .with_collection(c)
        .unwrap()
}

/// σ(ht) = 0.5, σ(flag) frozen, σ(id) = 1; part.a relative 20 %, part.b absolute 0.3.
fn budget(ds: &Dataset) -> UncertaintyModel {
    let specs = vec![FeatureSigma::absolute(0.5), FeatureSigma::frozen(), FeatureSigma::absolute(1.0)];
    UncertaintyModel::new(ds.names().to_vec(), specs)
        .unwrap()
        .with_object_sigma("part.a", FeatureSigma::relative(0.2))
        .unwrap()
        .with_object_sigma("part.b", FeatureSigma::absolute(0.3))
        .unwrap()
}

/// Every property a set-model attack keeps, event by event: the count entry and every padded
/// slot are bit-unchanged; the dataset rebuilt from the attacked inputs has the same object
/// counts and, for events with more objects than slots, the objects beyond unchanged.
fn assert_objects_kept(m: &Pfn, ds: &Dataset, x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>) {
    let l = m.layout();
    for i in 0..x0.nrows() {
        assert_eq!(x[[i, l.count_column()]].to_bits(), x0[[i, l.count_column()]].to_bits(), "count of event {i}");
        let k = l.count(x0.row(i).as_slice().unwrap());
        for c in l.slot_column(k, 0)..l.width() {
            assert_eq!(x[[i, c]].to_bits(), x0[[i, c]].to_bits(), "padded column {c} of event {i} (k = {k})");
        }
    }
    let back = m.with_inputs(ds, x.to_owned()).unwrap();
    let (c0, c1) = (ds.collection("t", "part").unwrap(), back.collection("t", "part").unwrap());
    assert_eq!(c0.counts(), c1.counts());
    for i in (4..ds.len()).step_by(5) {
        // Event i has 4 objects; the 4th is outside the model's view.
        for f in ["a", "b"] {
            assert_eq!(c0.event(f, i).unwrap()[3].to_bits(), c1.event(f, i).unwrap()[3].to_bits());
        }
    }
}

/// Moved real entries (some attack must move something, or the properties hold vacuously).
fn moved(x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>) -> usize {
    x0.iter().zip(x.iter()).filter(|(a, b)| a != b).count()
}

#[test]
fn expanded_budget_freezes_count_and_padding_and_counts_real_objects_only() {
    let ds = jets();
    let m = pfn();
    let u = budget(&ds).over_inputs(&m).unwrap();
    let x0 = m.inputs(&ds).unwrap();
    assert_eq!(u.names(), m.input_names().as_slice());
    // Event 2 (2 objects): σ(ht) = 0.5; count frozen; slot 0/1: σ(a) = 0.2·|a|, σ(b) = 0.3;
    // slot 2 padded: 0.
    let sig = u.sigma(x0.view());
    let row = x0.row(2);
    let want = [0.5, 0.0, 0.2 * row[2].abs(), 0.3, 0.2 * row[4].abs(), 0.3, 0.0, 0.0];
    for (c, w) in want.iter().enumerate() {
        assert!((sig[[2, c]] - w).abs() < 1e-7, "column {c}: {} vs {w}", sig[[2, c]]);
    }
    // dof = 1 free event feature the model reads (ht) + k real objects × 2 free object
    // features, k = min(i mod 5, 3): 1, 3, 5, 7, 7 (flag and id are not inputs).
    let dofs = u.dofs(x0.view());
    assert_eq!(dofs[..5], [1, 3, 5, 7, 7]);
    // χ² of event 2 moved by 1 σ in ht and in slot 0's b, and by 5 in its padded slot 2
    // (σ = 0 there: no contribution) is 1 + 1 = 2 with dof 5, so
    // p = Q(5/2, 1) = erfc(1) + e⁻¹·(1/Γ(3/2) + 1/Γ(5/2))
    //   = 0.157299207 + 0.367879441·(1.128379167 + 0.752252778) = 0.849145036.
    let mut x = x0.clone();
    x[[2, 0]] += 0.5;
    x[[2, 3]] += 0.3;
    x[[2, 6]] += 5.0;
    let c = u.chi2(x0.view(), x.view(), true).unwrap();
    assert!((c.chi2[2] - 2.0).abs() < 1e-5, "{}", c.chi2[2]);
    assert_eq!(c.dof[2], 5);
    assert!((c.p_value[2] - 0.849145036).abs() < 1e-6, "{}", c.p_value[2]);
    // Freezing part.b removes one dof per real object: 1 + k.
    let fb = budget(&ds).with_object_sigma("part.b", FeatureSigma::frozen()).unwrap().over_inputs(&m).unwrap();
    assert_eq!(fb.dofs(x0.view())[..5], [1, 2, 3, 4, 4]);
}

#[test]
fn a_set_model_needs_sigma_for_every_object_feature_it_reads() {
    let ds = jets();
    let specs = vec![FeatureSigma::absolute(0.5), FeatureSigma::frozen(), FeatureSigma::absolute(1.0)];
    let u = UncertaintyModel::new(ds.names().to_vec(), specs).unwrap();
    let u = u.with_object_sigma("part.a", FeatureSigma::relative(0.2)).unwrap();
    let e = u.over_inputs(&pfn()).unwrap_err().to_string();
    assert!(e.contains("'part.b'") && e.contains("frozen"), "{e}");
    assert!(u.with_object_sigma("parta", FeatureSigma::absolute(1.0)).is_err());
}

#[test]
fn gradient_attacks_and_minifool_keep_counts_and_padded_slots_and_count_real_dof() {
    let ds = jets();
    let m = pfn();
    let unc = budget(&ds);
    let x0 = m.inputs(&ds).unwrap();
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Script };
    let expanded = unc.over_inputs(&m).unwrap();
    let q = Control::quiet();
    let runs = [
        ("fgsm", Values::new("fgsm").with("eps", Value::Float(2.0))),
        ("pgd", Values::new("pgd").with("eps", Value::Float(2.0)).with("steps", Value::Int(5))),
        (
            "pgd",
            Values::new("pgd")
                .with("eps", Value::Float(2.0))
                .with("norm", Value::Str("l2".into()))
                .with("random_start", Value::Bool(true))
                .with("seed", Value::Int(3)),
        ),
        ("minifool", Values::new("minifool").with("steps", Value::Int(20))),
    ];
    for (name, v) in runs {
        let out = configure(name, &setup, v).unwrap().run(&m, x0.view(), ds.label(), &q).unwrap();
        let x = out.attack.x.view();
        assert_objects_kept(&m, &ds, x0.view(), x);
        assert!(moved(x0.view(), x) > 0, "{name} moved nothing");
        // The reported χ² and its dof are those of the expanded model (real objects only).
        let c = expanded.chi2(x0.view(), x, true).unwrap();
        assert_eq!(out.attack.dof, c.dof, "{name}");
        assert_eq!(out.attack.dof, expanded.dofs(x0.view()));
        for (a, b) in out.attack.chi2.iter().zip(&c.chi2) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + b), "{name}: χ² {a} vs {b}");
        }
    }
}

#[test]
fn object_projections_apply_to_real_slots_only() {
    let ds = jets();
    let m = pfn();
    let x0 = m.inputs(&ds).unwrap();
    let unc = budget(&ds).over_inputs(&m).unwrap();
    // b ≥ 0.25 for every real object (PGD then clips); padded slots (0) must stay 0.
    let mut names = ds.names().to_vec();
    names.push("part.b".into());
    let p = Projection::with_objects(names, 3, vec![Rule::Clip { feature: 3, lo: 0.25, hi: f32::INFINITY }]).unwrap();
    let p = p.over_inputs(&m).unwrap();
    let cfg =
        PgdConfig { eps: 1.0, step: 0.5, steps: 3, norm: Norm::Linf, random_start: false, seed: 0, first_event: 0 };
    let r = pgd(&m, &unc, x0.view(), &Goal::UntargetedClean, &cfg, &p, &Control::quiet()).unwrap();
    assert_objects_kept(&m, &ds, x0.view(), r.x.view());
    let l = m.layout();
    for i in 0..ds.len() {
        for s in 0..l.count(x0.row(i).as_slice().unwrap()) {
            assert!(r.x[[i, l.slot_column(s, 1)]] >= 0.25, "event {i} slot {s}");
        }
    }
    assert!(p.violations(x0.view(), r.x.view()).is_empty());
    // The same rule on an event-level model is refused with the feature named.
    let mlp = crate::model::Mlp::new(&[3, 2, 1], crate::model::MlpConfig::default()).unwrap();
    let mut names = ds.names().to_vec();
    names.push("part.b".into());
    let q = Projection::with_objects(names, 3, vec![Rule::Clip { feature: 3, lo: 0.0, hi: 1.0 }]).unwrap();
    assert!(q.over_inputs(&mlp).unwrap_err().to_string().contains("'part.b'"));
}

#[test]
fn rdsa_redraws_real_objects_from_pooled_marginals_and_keeps_counts_and_padding() {
    let ds = jets();
    let m = pfn();
    let x0 = m.inputs(&ds).unwrap();
    let setup = Setup { model: &m, events: &ds, unc: None, purpose: Purpose::Script };
    let v = Values::new("rdsa")
        .with("features", Value::Strs(vec!["part.a".into()]))
        .with("steps", Value::Int(20))
        .with("sampling", Value::Str("empirical".into()))
        .with("seed", Value::Int(5));
    let out = configure("rdsa", &setup, v).unwrap().run(&m, x0.view(), ds.label(), &Control::quiet()).unwrap();
    let x = out.attack.x.view();
    assert_objects_kept(&m, &ds, x0.view(), x);
    assert!(moved(x0.view(), x) > 0);
    // Empirical draws come from the pooled real values of part.a (all objects in view, not
    // the padded zeros); only a moves, b and ht never.
    let l = m.layout();
    let mut pool = Vec::new();
    for i in 0..ds.len() {
        for s in 0..l.count(x0.row(i).as_slice().unwrap()) {
            pool.push(x0[[i, l.slot_column(s, 0)]]);
        }
    }
    for i in 0..ds.len() {
        assert_eq!(x[[i, 0]], x0[[i, 0]]);
        for s in 0..l.count(x0.row(i).as_slice().unwrap()) {
            assert!(pool.contains(&x[[i, l.slot_column(s, 0)]]), "event {i} slot {s}");
            assert_eq!(x[[i, l.slot_column(s, 1)]], x0[[i, l.slot_column(s, 1)]]);
        }
    }
    let changed = &out.columns.iter().find(|(n, _)| n == "changed_part.a").unwrap().1;
    // Events without objects have nothing to redraw.
    for i in (0..ds.len()).step_by(5) {
        assert_eq!(changed[i], 0.0);
    }
}

#[test]
fn minifool_s_scan_runs_on_a_set_model() {
    let ds = jets();
    let m = pfn();
    let unc = budget(&ds);
    let x0 = m.inputs(&ds).unwrap();
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Scan };
    let a = configure("minifool", &setup, Values::new("minifool").with("steps", Value::Int(20))).unwrap();
    let scan = s_scan(&m, x0.view(), ds.label(), a.as_ref(), &[0.25, 1.0, 4.0], 2, &Control::quiet()).unwrap();
    assert_eq!(scan.rows.len(), 3);
    // An event flipped at some grid s has a finite s_flip, at most that s.
    let last = &scan.rows[2];
    let finite = scan.s_flip.iter().filter(|s| s.is_finite()).count();
    assert!(finite >= (last.all.p * ds.len() as f64).round() as usize);
    assert!(scan.s_flip.iter().all(|&s| s.is_infinite() || s <= 4.0));
    assert!(last.all.p > 0.0);
}

#[test]
fn adversarial_training_versions_of_set_events_keep_counts_and_padding() {
    // Adversarial training asks each registered attack for `augment` on the training events'
    // input rows, with the budget checked against the training set and expanded as for scripts.
    let ds = jets();
    let m = pfn();
    let unc = budget(&ds);
    let x0 = m.inputs(&ds).unwrap();
    let labels = ds.label().unwrap();
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Training };
    let q = Control::quiet();
    for (name, v) in [
        ("pgd", Values::new("pgd").with("eps", Value::Float(2.0)).with("steps", Value::Int(3))),
        ("minifool", Values::new("minifool").with("steps", Value::Int(10))),
        ("rdsa", Values::new("rdsa").with("features", Value::Strs(vec!["part.b".into()])).with("steps", Value::Int(5))),
    ] {
        let x = configure(name, &setup, v).unwrap().augment(&m, x0.view(), labels, 9, &q).unwrap();
        assert_objects_kept(&m, &ds, x0.view(), x.view());
        assert!(moved(x0.view(), x.view()) > 0, "{name} moved nothing");
    }
}
