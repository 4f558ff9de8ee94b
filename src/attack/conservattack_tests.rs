//! CONSERVAttack: incremental histograms against full recomputation, the reference's fooling
//! ratios on the donut fixture, strict mode's guarantee, frozen events and projections.

use std::path::Path;

use crate::attack::conservattack::{ConservAttack, ConservConfig, Mode, Tally};
use crate::attack::metrics::js_distance;
use crate::attack::Projection;
use crate::attack::Rule;
use crate::data::io::{read_parquet, ReadOptions};
use crate::data::Dataset;
use crate::model::{import_torch, Activation, Mlp, TorchImport};
use crate::optim::Control;
use crate::rng::Stream;
use crate::stats::checks::{checks, ChecksConfig};

/// The donut fixture: 5,000 correctly classified background events and the classifier.
pub(crate) fn donut() -> (Mlp, Dataset) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conservattack");
    let (ds, _) = read_parquet(&dir.join("attacked_clean.parquet"), &ReadOptions::default()).unwrap();
    let spec = TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..Default::default() };
    let m = import_torch(&dir.join("donut_mlp.safetensors"), &spec).unwrap();
    (m, ds)
}

/// The reference demo's settings (`Attack/RunAttack.py`) with the reference's float64 ranges.
pub(crate) fn demo(mode: Mode, seed: u64) -> ConservConfig {
    ConservConfig {
        mode,
        iterations: 10,
        bins: 70,
        min_change: 0.001,
        step: 0.001,
        alpha: 6.0,
        beta: 1.0,
        max_jsd_single_change: 0.005,
        max_frob_single_change: 0.05,
        use_no_change: true,
        randomize_step: true,
        random_step_frac: 0.5,
        num_candidates: Some(150),
        feature_chunks: 1,
        min_values: Some(vec![-3.115752338015221, -3.3643518359787383]),
        max_values: Some(vec![3.316359706686143, 3.233148802420074]),
        seed,
        ..Default::default()
    }
}

#[test]
fn same_result_with_one_and_two_threads() {
    let (m, ds) = donut();
    let x = ds.x().slice(ndarray::s![..1500, ..]).to_owned();
    let l = &ds.label().unwrap()[..1500];
    for mode in [Mode::Faithful, Mode::Strict] {
        let cfg = ConservConfig { iterations: 3, ..demo(mode, 4) };
        let a = ConservAttack::new(cfg, Projection::default()).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| a.attack(&m, x.view(), Some(l), &Control::quiet()).unwrap())
        };
        let (r1, r2) = (run(1), run(2));
        assert_eq!(r1.attack.x, r2.attack.x, "{mode:?}");
        assert_eq!(r1.iterations, r2.iterations);
        assert!(r1.iterations.last().unwrap().fooling_ratio > 0.0);
    }
}

/// The reference's JSD of two count vectors, written out: densities count / (n · width)
/// floored at 1e-10, normalised, M floored at 1e-10, base 2.
fn reference_jsd(clean: &[f64], cur: &[f64], width: f64) -> f64 {
    let dens = |c: &[f64]| -> Vec<f64> {
        let n: f64 = c.iter().sum();
        let f: Vec<f64> = c.iter().map(|v| (v / (n * width)).max(1e-10)).collect();
        let t: f64 = f.iter().sum();
        f.into_iter().map(|v| v / t).collect()
    };
    let (p, q) = (dens(cur), dens(clean));
    let mut s = 0.0;
    for (a, b) in p.iter().zip(&q) {
        let m = ((a + b) / 2.0).max(1e-10);
        s += a * (a / m).log2() + b * (b / m).log2();
    }
    (s / 2.0).max(0.0).sqrt()
}

#[test]
fn incremental_histograms_equal_full_recomputation_after_random_moves() {
    // 400 values in [0, 1), 12 bins; seeded random moves, also into empty bins and out of
    // nearly empty ones (the floor's normalisation changes there).
    let mut r = Stream::new(21, 0);
    let clean: Vec<f64> = (0..400).map(|_| f64::from((r.uniform() * r.uniform()) as f32)).collect();
    let clean32: Vec<f32> = clean.iter().map(|&v| v as f32).collect();
    let mut cur = clean.clone();
    let (lo, hi) = (0.0, clean.iter().copied().fold(0.0, f64::max));
    let mut faithful = Tally::faithful(lo, hi, 12, &clean, &clean);
    let mut strict = Tally::strict(&clean32, 12).unwrap();
    let reference_f = faithful.counts().to_vec();
    let reference_s = strict.counts().to_vec();
    let width = (hi - lo) / 12.0;
    let mut empty_seen = 0;
    for step in 0..3000 {
        let i = r.below(cur.len());
        // Mostly into the lower half: the upper bins empty and refill.
        let u = if r.below(10) == 0 { r.uniform() } else { 0.5 * r.uniform() };
        let to = f64::from((lo - 0.05 + (hi - lo + 0.1) * u) as f32);
        for (t, reference, is_strict) in [(&mut faithful, &reference_f, false), (&mut strict, &reference_s, true)] {
            let (a, b) = (t.slot(cur[i]), t.slot(to));
            let predicted = t.jsd_if_moved(a, b);
            t.apply(a, b);
            assert!((predicted - t.jsd()).abs() < 1e-12, "step {step}");
            // Full recomputation from the current values (f64).
            let mut counts = vec![0.0; reference.len()];
            for (k, &v) in cur.iter().enumerate() {
                counts[t.slot(if k == i { to } else { v })] += 1.0;
            }
            assert_eq!(t.counts(), &counts[..]);
            let want =
                if is_strict { js_distance(reference, &counts) } else { reference_jsd(reference, &counts, width) };
            assert!((t.jsd() - want).abs() < 1e-12, "step {step}: {} vs {want}", t.jsd());
        }
        cur[i] = to;
        empty_seen += usize::from(faithful.counts().contains(&0.0));
    }
    assert!(strict.jsd() > 0.1 && faithful.jsd() > 0.1, "the moves changed the distribution");
    assert!(empty_seen > 100, "bins emptied and refilled: {empty_seen} steps with an empty bin");
}

#[test]
fn faithful_histograms_drop_clean_values_outside_the_given_range() {
    // The reference's float32 quirk: float64 bounds, float32 data. Values below lo are left out
    // of the clean histogram but counted (clipped into the first bin) in the current one.
    let clean = [-1.0 - 1e-9, 0.25, 0.5, 0.75, 1.0];
    let t = Tally::faithful(-1.0, 1.0, 4, &clean, &clean);
    assert_eq!(t.counts(), &[1.0, 0.0, 1.0, 3.0]);
    let want = reference_jsd(&[0.0, 0.0, 1.0, 3.0], t.counts(), 0.5);
    assert!((t.jsd() - want).abs() < 1e-15 && want > 0.1);
}

#[test]
fn faithful_mode_reproduces_the_reference_fooling_ratios_on_the_donut() {
    // Reference run (shared/fixtures/conservattack/reference_results.json), demo settings.
    let reference = [0.0064, 0.009, 0.0528, 0.1566, 0.2072, 0.2498, 0.2818, 0.3028, 0.3202, 0.3332];
    let (m, ds) = donut();
    let runs: Vec<Vec<f64>> = (0..3)
        .map(|seed| {
            let a = ConservAttack::new(demo(Mode::Faithful, seed), Projection::default()).unwrap();
            let r = a.attack(&m, ds.x(), ds.label(), &Control::quiet()).unwrap();
            // Quirk 1: x2's no-change JSD (0.0100) is over the cap, so x2 never moves.
            assert_eq!(r.attack.x.column(1), ds.x().column(1));
            assert!(r.iterations.iter().all(|it| it.jsd[1] == 0.0 && it.max_jsd() < 0.0075));
            r.iterations.iter().map(|it| it.fooling_ratio).collect()
        })
        .collect();
    for (k, &want) in reference.iter().enumerate() {
        let v: Vec<f64> = runs.iter().map(|r| r[k]).collect();
        let mean = v.iter().sum::<f64>() / 3.0;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        // Tolerance: 3 × the run-to-run spread of our seeds, and at least 3 binomial standard
        // errors of a ratio over 5,000 events (the reference is a single seeded run).
        let tol = (3.0 * sd).max(3.0 * (mean * (1.0 - mean) / 5000.0).sqrt());
        assert!((mean - want).abs() <= tol, "iteration {}: {v:?} vs reference {want} (tolerance {tol})", k + 1);
    }
}

#[test]
fn strict_outputs_pass_their_checks_at_every_iteration() {
    let (m, ds) = donut();
    let sub = ds.take_rows(&(0..2000).collect::<Vec<_>>());
    for (jsd, corr) in [(0.06, 0.006), (0.004, 0.0005)] {
        let cfg = ConservConfig {
            iterations: 4,
            constraint_jsd: jsd,
            constraint_rel_corr: corr,
            min_values: None,
            max_values: None,
            ..demo(Mode::Strict, 1)
        };
        let a = ConservAttack::new(cfg, Projection::default()).unwrap();
        let r = a.attack(&m, sub.x(), sub.label(), &Control::quiet()).unwrap();
        assert!(r.iterations.iter().all(|it| it.within_constraints && it.max_jsd() <= 0.005));
        assert!(r.iterations.last().unwrap().fooling_ratio > 0.0);
        // The checks primitive, recomputed from the output: same binning (70 bins).
        let adv = sub.with_x(r.attack.x.clone()).unwrap();
        let cc = ChecksConfig { bins: 70, ..Default::default() };
        let mut cc = cc;
        cc.thresholds.jsd = Some(jsd);
        cc.thresholds.corr = Some(corr);
        let rep = checks(&sub, &adv, &cc, &Control::quiet()).unwrap();
        assert!(rep.passed, "{jsd} {corr}: {rep:?}");
        let last = r.iterations.last().unwrap();
        assert!((rep.correlation[0].relative_frobenius - last.rel_corr_change).abs() < 1e-9);
        assert!((rep.max_jsd() - last.max_jsd()).abs() < 1e-12);
    }
}

#[test]
fn fooled_events_never_change_after_being_frozen_and_projections_hold() {
    let (m, ds) = donut();
    // x1 rounded to integers and kept integral; x2 frozen.
    let mut x = ds.x().slice(ndarray::s![..1500, ..]).to_owned();
    x.column_mut(0).mapv_inplace(f32::round);
    let l: Vec<i64> = m.predict_class(x.view()).unwrap();
    let names = ds.names().to_vec();
    let proj = Projection::new(names, vec![Rule::Integer { feature: 0 }, Rule::Frozen { feature: 1 }]).unwrap();
    for mode in [Mode::Faithful, Mode::Strict] {
        let cfg = |k: usize| ConservConfig {
            iterations: k,
            min_values: None,
            max_values: None,
            max_jsd_single_change: 0.1,
            constraint_jsd: 0.2,
            constraint_rel_corr: 0.1,
            ..demo(mode, 2)
        };
        let runs: Vec<_> = (1..=4)
            .map(|k| {
                let a = ConservAttack::new(cfg(k), proj.clone()).unwrap();
                a.attack(&m, x.view(), Some(&l), &Control::quiet()).unwrap()
            })
            .collect();
        let last = &runs[3];
        for r in &runs {
            assert!(proj.violations(x.view(), r.attack.x.view()).is_empty(), "{mode:?}");
        }
        assert!(last.attack.x.column(0) != x.column(0), "{mode:?}: x1 moved");
        // A run of k iterations is the first k iterations of a longer one (same streams), so an
        // event fooled at iteration t has the same values after t and after 4 iterations.
        let mut frozen = 0;
        for (i, &t) in last.fooled_at.iter().enumerate() {
            if t > 0 {
                assert_eq!(runs[t as usize - 1].attack.x.row(i), last.attack.x.row(i), "{mode:?} event {i}");
                assert_eq!(runs[t as usize - 1].fooled_at[i], t);
                frozen += 1;
            }
        }
        assert!(frozen > 10, "{mode:?}: {frozen} events fooled");
    }
}

#[test]
fn bad_settings_are_clear_errors() {
    let (m, ds) = donut();
    let x = ds.x().slice(ndarray::s![..100, ..]).to_owned();
    let run = |cfg: ConservConfig| {
        ConservAttack::new(cfg, Projection::default())
            .unwrap()
            .attack(&m, x.view(), None, &Control::quiet())
            .unwrap_err()
    };
    let e = run(ConservConfig { min_values: Some(vec![0.0]), ..Default::default() });
    assert_eq!(e.to_string(), "conservattack: min_values must have one number per feature (2), got 1");
    let e = run(ConservConfig { step: 1e-9, ..Default::default() });
    assert!(e.to_string().contains("raise step or set num_candidates"), "{e}");
    let e = run(ConservConfig { bins: 0, ..Default::default() });
    assert!(e.to_string().contains("bins must be in 1..="), "{e}");
}
