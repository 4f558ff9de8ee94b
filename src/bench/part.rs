//! The ParT benchmark on the Pythia quark/gluon jets (`shared/guide/benchmarks.md`, "Jet
//! models"): ParT-small (embed (64, 128, 64), pair embedding (32, 32, 32) → 4 heads, 3
//! particle blocks, 1 class block, no hidden head layer, 2 softmax outputs); per constituent
//! log pT, log E, Δη, Δφ (wrapped), charge; pair features from (pT, η, φ, E); Adam 1e-3,
//! batch 128, cross-entropy, 3 epochs on the 80 % training jets of the reference split
//! (`qg_split.txt`); training jets/s = training jets / median time of epochs 2–3; test AUC on
//! the other 20 %. weaver-core (PyTorch, 2 threads): 183 jets/s training, AUC 0.850.
//!
//! Differences from the reference: no dropout and no random sequence trimming; the input
//! standardisation is fitted once before training (weaver's batch norms keep updating
//! theirs); the pair embedding has no batch norms (it is weaver's with them folded).
//! Memory: the peak resident set growth during training (`/proc/self/status` VmHWM minus
//! VmRSS before), and per batch the same divided by the 2 half-batches in flight.

use std::time::Instant;

use serde_json::{json, Value};

use super::pfn::{cpu_seconds, load_average, median, qg_jets};
use super::BenchConfig;
use crate::error::Result;
use crate::model::{Optimizer, Part, PartConfig, SetLayout, TrainConfig, Trainer};
use crate::optim::{Control, Solver};

const TORCH_TRAIN: f64 = 183.0;
const TORCH_AUC: f64 = 0.850;

/// A `/proc/self/status` entry in MB, or NaN.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `part_train`: ParT-small, 3 epochs, jets/s, test AUC, memory.
pub fn part_train(cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (ds, train, test) = qg_jets(cfg)?;
    let max = ds.collection("bench", "part")?.max_count();
    let feats = ["logpt", "logE", "deta", "dphi", "charge", "pt", "eta", "phi", "E"].map(String::from).to_vec();
    let layout = SetLayout::new(vec![], "part", feats.clone(), max)?;
    let (tr, te) = (ds.take_rows(&train), ds.take_rows(&test));
    let pcfg = PartConfig { seed: 1, ..PartConfig::part_small(feats[..5].to_vec(), feats[5..].to_vec()) };
    let model = Part::new(layout, &pcfg)?;
    let n_params = model.n_params();
    let tc =
        TrainConfig { epochs: 3, batch_size: 128, optimizer: Optimizer::adam(1e-3), seed: 1, ..Default::default() };
    let control = Control::default();
    let rss0 = status_mb("VmRSS:");
    let mut trainer = Trainer::new(&model, &tr, &tc, &control)?;
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    for epoch in 0..tc.epochs {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        trainer.step(epoch)?;
        times.push(t0.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c0);
    }
    let peak = status_mb("VmHWM:") - rss0;
    let jets_per_s = tr.len() as f64 / median(times[1..].to_vec());
    let jets_per_cpu_s = tr.len() as f64 / median(cpu[1..].to_vec());
    let trained = trainer.finish(crate::optim::Stop::MaxIters)?.model;
    let t0 = Instant::now();
    let auc = trained.evaluate(&te, false)?.auc.unwrap_or(f64::NAN);
    let inference = te.len() as f64 / t0.elapsed().as_secs_f64();
    Ok(vec![json!({
        "bench": "part_train",
        "jets_per_s": jets_per_s.round(),
        "test_auc": (auc * 1e4).round() / 1e4,
        "inference_jets_per_s": inference.round(),
        "n_params": n_params,
        "n_train": tr.len(),
        "n_test": te.len(),
        "epochs": tc.epochs,
        "epoch_seconds": times.iter().map(|t| (t * 1e3).round() / 1e3).collect::<Vec<_>>(),
        "peak_memory_growth_mb": (peak * 10.0).round() / 10.0,
        "memory_per_half_batch_mb": (peak / 2.0 * 10.0).round() / 10.0,
        "pytorch_jets_per_s": TORCH_TRAIN,
        "pytorch_test_auc": TORCH_AUC,
        "speedup": (jets_per_s / TORCH_TRAIN * 100.0).round() / 100.0,
        "jets_per_cpu_s": jets_per_cpu_s.round(),
        "load_average": load_average(),
    })])
}
