//! The curve runner: every training done once, paired events, deterministic across thread
//! counts, the metrics, and its errors.

use super::*;
use crate::model::{Mlp, MlpConfig, Optimizer};

fn gaussians(n: usize, seed: u64, shift: f32) -> Dataset {
    let cfg = crate::data::synthetic::GaussiansConfig { n, d: 4, seed, ..Default::default() };
    let ds = crate::data::synthetic::gaussians_with(&cfg).unwrap();
    ds.with_x(ds.x().mapv(|v| v * 1.2 + shift)).unwrap()
}

fn setup() -> (Box<dyn Model>, Mlp, Dataset, Dataset, CurveConfig) {
    let arch = Mlp::new(&[4, 8, 1], MlpConfig { seed: 1, ..MlpConfig::default() }).unwrap();
    let base = TrainConfig { epochs: 2, batch_size: 32, optimizer: Optimizer::adam(1e-2), ..TrainConfig::default() };
    let pre = crate::model::train(&arch, &gaussians(2000, 1, 0.0), &base, &Control::quiet()).unwrap().model;
    let cfg = CurveConfig {
        sizes: vec![40, 160],
        seeds: vec![3, 4],
        scratch: base.clone(),
        finetune: TrainConfig { optimizer: Optimizer::adam(1e-3), ..base },
        metric: Metric::Auc,
    };
    (pre, arch, gaussians(400, 2, 0.3), gaussians(1000, 3, 0.3), cfg)
}

#[test]
fn curves_are_complete_and_do_not_depend_on_the_thread_count() {
    let (pre, arch, pool, test, cfg) = setup();
    let a = data_efficiency(&*pre, &arch, &pool, &test, &cfg, &Control::quiet()).unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = one.install(|| data_efficiency(&*pre, &arch, &pool, &test, &cfg, &Control::quiet()).unwrap());
    assert_eq!(a.points, b.points);
    assert_eq!(a.points.len(), 8);
    assert_eq!((a.scratch.len(), a.finetuned.len(), a.factors.len(), a.seed_factors.len()), (2, 2, 2, 2));
    assert!(a.points.iter().all(|p| (0.5..=1.0).contains(&p.value)), "{:?}", a.points);
    // The summary is the mean and sample std of the seeds' values.
    let v: Vec<f64> = a.points.iter().filter(|p| p.n == 40 && !p.finetuned).map(|p| p.value).collect();
    assert!((a.scratch[0].mean - (v[0] + v[1]) / 2.0).abs() < 1e-15);
    assert!((a.scratch[0].std - (v[0] - v[1]).abs() / 2f64.sqrt()).abs() < 1e-12);
    // Another seed list gives other subsets and other numbers.
    let c = data_efficiency(&*pre, &arch, &pool, &test, &CurveConfig { seeds: vec![5, 6], ..cfg }, &Control::quiet())
        .unwrap();
    assert_ne!(a.points[0].value, c.points[0].value);
}

#[test]
fn rejection_interpolates_the_roc_curve() {
    // A ROC curve through (fpr, tpr) = (0, 0), (0.1, 0.5), (0.4, 0.9), (1, 1): at ε_S = 0.7
    // the fpr is 0.1 + (0.2/0.4)·0.3 = 0.25, rejection 4; at 0.5 exactly 1/0.1 = 10.
    let curve = [(0.0, 0.0, 1.0), (0.1, 0.5, 0.8), (0.4, 0.9, 0.5), (1.0, 1.0, 0.0)];
    assert!((rejection(&curve, 0.7) - 4.0).abs() < 1e-12);
    assert!((rejection(&curve, 0.5) - 10.0).abs() < 1e-12);
}

#[test]
fn bad_settings_are_named() {
    let (pre, arch, pool, test, cfg) = setup();
    let run =
        |c: CurveConfig| data_efficiency(&*pre, &arch, &pool, &test, &c, &Control::quiet()).unwrap_err().to_string();
    assert_eq!(
        run(CurveConfig { sizes: vec![100, 1000], ..cfg.clone() }),
        "data_efficiency: option 'sizes' asks for 1000 events, more than the 400 target-domain events"
    );
    assert!(run(CurveConfig { sizes: vec![100, 50], ..cfg.clone() }).contains("positive and increasing"));
    assert!(run(CurveConfig { metric: Metric::Resolution, ..cfg }).contains("regression target"));
}
