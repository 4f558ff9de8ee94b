//! CONSERVAttack: incremental histograms against full recomputation, the reference's fooling
//! ratios on the donut fixture, strict mode's guarantee, frozen events and projections.

use std::path::Path;

use crate::attack::conservattack::{ConservAttack, ConservConfig, Mode};
use crate::attack::Projection;
use crate::data::io::{read_parquet, ReadOptions};
use crate::data::Dataset;
use crate::model::{import_torch, Activation, Mlp, TorchImport};
use crate::optim::Control;

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
fn explore_donut() {
    let (m, ds) = donut();
    for mode in [Mode::Faithful, Mode::Strict] {
        for seed in 0..3 {
            let t = std::time::Instant::now();
            let a = ConservAttack::new(demo(mode, seed), Projection::default()).unwrap();
            let r = a.attack(&m, ds.x(), ds.label(), &Control::quiet()).unwrap();
            let secs = t.elapsed().as_secs_f64();
            eprintln!("{mode:?} seed {seed}: {secs:.3} s, {:.0} samples/s", 5000.0 / secs);
            for (k, it) in r.iterations.iter().enumerate() {
                eprintln!(
                    "  it {} active {} fool {:.4} jsd {:?} rel {:.5} acc {}",
                    k + 1,
                    it.active,
                    it.fooling_ratio,
                    it.jsd.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>(),
                    it.rel_corr_change,
                    it.accepted
                );
            }
        }
    }
}
