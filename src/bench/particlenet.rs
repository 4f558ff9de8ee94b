//! The ParticleNet benchmark on the Pythia quark/gluon jets (`shared/guide/benchmarks.md`,
//! "Jet models"): ParticleNet-Lite (`conv_params [(7,(32,32,32)), (7,(64,64,64))]`,
//! `fc_params [(128,0.1)]`, no fusion, 26,220 parameters); per constituent log pT, log E,
//! Δη, Δφ (wrapped), charge; kNN of the first block in (Δη, Δφ); softmax over 2 classes;
//! Adam 1e-3, batch 128, 3 epochs on the 80 % training jets of the reference split; training
//! jets/s = median of epochs 2–3, test AUC on the other 20 %. weaver-core (PyTorch, 2 threads):
//! 424 jets/s training at AUC 0.846.
//!
//! Training runs the hand-written pass (`model/particlenet_fused.rs`) in PyTorch's training
//! mode: batch norms on the batch statistics of the real constituents (edges for the edge
//! convolutions), running statistics updated with momentum 0.1, dropout 0.1 in the head.
//! Differences from the reference: inputs are also standardised by the model (weaver only
//! scales them with its input batch norm), and the network runs on the real constituents only
//! (weaver pads every jet, and its batch statistics include the padded slots).
//!
//! Memory per batch: the activations the training pass keeps for the backward pass of one
//! batch of 128 jets, counted from the buffer sizes (4 bytes each): the input batch norm's x̂
//! and output (2 · R × f); per block its input (R × c_in), the neighbour indices (R·k), the
//! per-object products u, v of the first edge convolution (2 · R × c₁, transient), x̂ and the
//! output of every edge layer (2 · R·k × cⱼ), the shortcut's x̂ and output when it has one
//! (2 · R × c_out) and the block output (R × c_out); R is the batch's constituent count (the
//! mean over the batches of an epoch is reported with the largest).

use std::time::Instant;

use serde_json::{json, Value};

use super::pfn::{cpu_seconds, load_average, median, qg_jets};
use super::BenchConfig;
use crate::error::Result;
use crate::model::{particlenet, Optimizer, Output, ParticleNetConfig, SetLayout, TrainConfig, Trainer};
use crate::optim::{Control, Solver, Stop};

const TORCH_TRAIN: f64 = 424.0;
const TORCH_AUC: f64 = 0.846;
const BATCH: usize = 128;

/// Activation bytes of one batch with `r` constituents and `f` features (module docs).
fn activation_bytes(cfg: &ParticleNetConfig, r: usize, f: usize) -> usize {
    let mut floats = 2 * r * f;
    let mut c_in = f;
    for (k, ch) in &cfg.conv {
        let (edges, c_out) = (r * k, ch[ch.len() - 1]);
        floats += r * c_in + edges + 2 * r * ch[0];
        floats += ch.iter().map(|c| 2 * edges * c).sum::<usize>();
        floats += if c_in == c_out { r * c_out } else { 3 * r * c_out };
        c_in = c_out;
    }
    4 * floats
}

/// `particlenet_train`: 3 epochs, jets/s = training jets / median epoch time of epochs 2–3.
pub fn particlenet_train(cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (ds, train, test) = qg_jets(cfg)?;
    let max = ds.collection("bench", "part")?.max_count();
    let feats = ["deta", "dphi", "logpt", "logE", "charge"].map(String::from).to_vec();
    let layout = SetLayout::new(vec![], "part", feats, max)?;
    let (tr, te) = (ds.take_rows(&train), ds.take_rows(&test));
    let pcfg = ParticleNetConfig { seed: 1, ..ParticleNetConfig::lite() };
    let model = particlenet(layout.clone(), &pcfg, Output::Softmax)?;
    let counts: Vec<usize> = {
        let c = tr.collection("bench", "part")?;
        c.offsets().windows(2).map(|w| (w[1] - w[0]).min(max)).collect()
    };
    let per_batch: Vec<usize> = counts.chunks(BATCH).map(|c| activation_bytes(&pcfg, c.iter().sum(), 5)).collect();
    let mean_bytes = per_batch.iter().sum::<usize>() as f64 / per_batch.len().max(1) as f64;
    let max_bytes = per_batch.iter().copied().max().unwrap_or(0);
    let tc = TrainConfig {
        epochs: 3,
        batch_size: BATCH,
        optimizer: Optimizer::adam(1e-3),
        seed: 1,
        standardize: crate::model::Standardize::Refit,
        ..Default::default()
    };
    let control = Control::default();
    let mut trainer = Trainer::new(&model, &tr, &tc, &control)?;
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    for epoch in 0..tc.epochs {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        trainer.step(epoch)?;
        times.push(t0.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c0);
    }
    let jets_per_s = tr.len() as f64 / median(times[1..].to_vec());
    let jets_per_cpu_s = tr.len() as f64 / median(cpu[1..].to_vec());
    let trained = trainer.finish(Stop::MaxIters)?.model;
    let t0 = Instant::now();
    let auc = trained.evaluate(&te, false)?.auc.unwrap_or(f64::NAN);
    let infer = te.len() as f64 / t0.elapsed().as_secs_f64();
    Ok(vec![json!({
        "bench": "particlenet_train",
        "jets_per_s": jets_per_s.round(),
        "test_auc": (auc * 1e4).round() / 1e4,
        "inference_jets_per_s": infer.round(),
        "n_params": trained.n_params(),
        "n_train": tr.len(),
        "n_test": te.len(),
        "epochs": tc.epochs,
        "epoch_seconds": times.iter().map(|t| (t * 1e3).round() / 1e3).collect::<Vec<_>>(),
        "activation_mb_per_batch_mean": (mean_bytes / 1e6 * 10.0).round() / 10.0,
        "activation_mb_per_batch_max": (max_bytes as f64 / 1e6 * 10.0).round() / 10.0,
        "pytorch_jets_per_s": TORCH_TRAIN,
        "pytorch_test_auc": TORCH_AUC,
        "speedup": (jets_per_s / TORCH_TRAIN * 100.0).round() / 100.0,
        "jets_per_cpu_s": jets_per_cpu_s.round(),
        "load_average": load_average(),
    })])
}
