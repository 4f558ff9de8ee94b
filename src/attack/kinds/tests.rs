//! The registry: every attack is reachable by name, configured from options as the direct call
//! would be, and serves scripts, adversarial training and s-scans through one trait.

use crate::attack::test_support::{bench_sigma, trained};
use crate::attack::{
    attack_names, configure, lookup, minifool, pgd, s_scan, Goal, MiniFoolConfig, Norm, PgdConfig, Projection, Purpose,
    Setup, Value, Values, ATTACKS,
};
use crate::model::Output;
use crate::optim::Control;

#[test]
fn every_attack_is_registered_once_and_found_by_name() {
    let names: Vec<&str> = ATTACKS.iter().map(|e| e.name).collect();
    assert_eq!(names, ["rdsa", "fgsm", "pgd", "minifool", "conservattack"]);
    for n in &names {
        assert_eq!(lookup(n).map(|e| e.name), Some(*n));
    }
    assert!(lookup("pdg").is_none());
    // Only attacks bounded by the uncertainty model can be scanned in s.
    assert_eq!(attack_names(true), ["fgsm", "pgd", "minifool"]);
}

#[test]
fn registry_runs_equal_the_direct_calls_bit_for_bit() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let unc = bench_sigma(&ds);
    let q = Control::quiet();
    let setup = Setup { model: &m, events: &ds, unc: Some(&unc), purpose: Purpose::Script };
    // PGD: 5 steps of 0.05 in the L∞ ball of 0.2, the clean class's loss ascended.
    let values =
        Values::new("pgd").with("eps", Value::Float(0.2)).with("steps", Value::Int(5)).with("step", Value::Float(0.05));
    let via = configure("pgd", &setup, values).unwrap().run(&m, ds.x(), None, &q).unwrap();
    let cfg =
        PgdConfig { eps: 0.2, step: 0.05, steps: 5, norm: Norm::Linf, random_start: false, seed: 0, first_event: 0 };
    let direct = pgd(&m, &unc, ds.x(), &Goal::UntargetedClean, &cfg, &Projection::default(), &q).unwrap();
    assert_eq!(via.attack.x, direct.x);
    assert!(via.attack.flip_fraction() > 0.0);
    // MiniFool: its cost columns come with the outcome.
    let mf = configure("minifool", &setup, Values::new("minifool").with("steps", Value::Int(10))).unwrap();
    let via = mf.run(&m, ds.x(), None, &q).unwrap();
    let cfg = MiniFoolConfig { max_iters: 10, ..Default::default() };
    let direct = minifool(&m, &unc, ds.x(), &cfg, &Projection::default(), &q).unwrap();
    assert_eq!(via.attack.x, direct.attack.x);
    let names: Vec<&str> = via.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cost_start", "cost_end"]);
    assert_eq!(via.evaluations, Some(direct.evaluations));
}

#[test]
fn rdsa_counts_the_features_each_event_changed() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let setup = Setup { model: &m, events: &ds, unc: None, purpose: Purpose::Script };
    let values = Values::new("rdsa")
        .with("features", Value::Strs(vec!["x0".into(), "x3".into()]))
        .with("steps", Value::Int(5))
        .with("seed", Value::Int(3));
    let out = configure("rdsa", &setup, values).unwrap().run(&m, ds.x(), ds.label(), &Control::quiet()).unwrap();
    let col = |name: &str| &out.columns.iter().find(|(n, _)| n == name).unwrap().1;
    let x = &out.attack.x;
    for i in 0..ds.len() {
        // A flag per shuffled feature, by direct comparison; n_changed is their sum.
        let c0 = f32::from(u8::from(x[[i, 0]] != ds.x()[[i, 0]]));
        let c3 = f32::from(u8::from(x[[i, 3]] != ds.x()[[i, 3]]));
        assert_eq!((col("changed_x0")[i], col("changed_x3")[i], col("n_changed")[i]), (c0, c3, c0 + c3));
    }
    assert!(col("n_changed").iter().any(|&c| c > 0.0));
}

#[test]
fn scans_and_unknown_names_and_keys_are_errors_naming_the_choices() {
    let (m, ds) = trained(5, Output::Sigmoid);
    let setup = Setup { model: &m, events: &ds, unc: None, purpose: Purpose::Scan };
    let rdsa = configure("rdsa", &setup, Values::new("rdsa")).unwrap();
    let e = s_scan(&m, ds.x(), None, rdsa.as_ref(), &[1.0], 0, &Control::quiet()).unwrap_err();
    assert_eq!(e.to_string(), "s_scan: rdsa has no uncertainty budget to scale; scan fgsm, pgd, minifool");
    let e = configure("pdg", &setup, Values::new("pdg")).unwrap_err();
    assert_eq!(e.to_string(), "attack: unknown attack 'pdg'; available: rdsa, fgsm, pgd, minifool, conservattack");
    let unc = bench_sigma(&ds);
    let setup = Setup { unc: Some(&unc), ..setup };
    let e = configure("fgsm", &setup, Values::new("fgsm").with("steps", Value::Int(3))).unwrap_err();
    assert_eq!(e.to_string(), "fgsm: unknown option 'steps'");
}
