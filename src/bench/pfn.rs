//! The PFN benchmarks on the Pythia quark/gluon jets (`shared/guide/benchmarks.md`, "PFN"):
//! Φ 4→100→100→128, masked sum, F 128→100→100→100→1, ReLU; per constituent log pT,
//! η − η_jet, Δφ wrapped to (−π, π], charge; Adam 1e-3, batch 256, 6 epochs on the 80 %
//! training jets of the reference split (`qg_split.txt`, the numpy permutation the PyTorch
//! reference used); training jets/s = median of epochs 2–6, test AUC on the other 20 %.
//! PyTorch (2 threads): 3,684 jets/s training at AUC 0.824; forward + input gradient at batch
//! 4096: 2,524 jets/s (forward alone 4,726).
//!
//! Differences from the reference, both in the model's favour only through speed: inputs are
//! standardised (the standardisation is stored in the model; PyTorch trained on raw inputs),
//! and Φ runs on the real constituents only (PyTorch pads each batch to its longest jet).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{s, Array2, Axis};
use serde_json::{json, Value};

use super::BenchConfig;
use crate::data::io::{read_parquet, ReadOptions};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Optimizer, Pfn, PfnConfig, SetLayout, Targets, TrainConfig, Trainer};
use crate::optim::{Control, Solver};

const DATA: &str = "pythia_qg_jets.parquet";
const SPLIT: &str = include_str!("qg_split.txt");

/// PyTorch's figures (benchmarks.md).
const TORCH_TRAIN: f64 = 3684.0;
const TORCH_AUC: f64 = 0.824;
const TORCH_GRAD: f64 = 2524.0;
const TORCH_FORWARD: f64 = 4726.0;

/// The jets file: next to the fixtures (`DIR/../data`) with `--fixtures DIR`, else
/// `../shared/data` (the layout of the worktrees).
fn data_path(cfg: &BenchConfig) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(f) = &cfg.fixtures {
        candidates.push(f.join("..").join("data").join(DATA));
    }
    candidates.push(Path::new("..").join("shared").join("data").join(DATA));
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::arg(
            "bench",
            format!(
                "the PFN benchmarks need {DATA}; looked at {} (pass --fixtures DIR with DIR/../data holding it)",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

/// The quark/gluon jets with log pT, log E, Δη and Δφ derived per constituent, and the
/// reference split (`qg_split.txt`) as training and test row indices: the data of every jet
/// benchmark (PFN, ParticleNet, ParT).
pub(super) fn qg_jets(cfg: &BenchConfig) -> Result<(Dataset, Vec<usize>, Vec<usize>)> {
    let (ds, _) = read_parquet(&data_path(cfg)?, &ReadOptions::default())?;
    let ds = ds
        .derive_objects("part", "logpt", "log(pt)")?
        .derive_objects("part", "logE", "log(E)")?
        .derive_objects("part", "deta", "eta - jet_eta")?
        .derive_objects("part", "dphi", "dphi(phi, jet_phi)")?;
    let mut is_test = vec![false; ds.len()];
    for tok in SPLIT.lines().filter(|l| !l.starts_with('#')).flat_map(str::split_whitespace) {
        let i: usize = tok.parse().map_err(|_| Error::arg("bench", format!("qg_split.txt: bad index {tok}")))?;
        if i >= ds.len() {
            return Err(Error::arg("bench", format!("qg_split.txt: index {i} beyond the {} jets", ds.len())));
        }
        is_test[i] = true;
    }
    let train = (0..ds.len()).filter(|&i| !is_test[i]).collect();
    let test = (0..ds.len()).filter(|&i| is_test[i]).collect();
    Ok((ds, train, test))
}

/// The jets, the PFN's layout (log pT, Δη, Δφ and charge per constituent), and the split.
fn jets(cfg: &BenchConfig) -> Result<(Dataset, SetLayout, Vec<usize>, Vec<usize>)> {
    let (ds, train, test) = qg_jets(cfg)?;
    let max = ds.collection("bench", "part")?.max_count();
    let feats = ["logpt", "deta", "dphi", "charge"].map(String::from).to_vec();
    let layout = SetLayout::new(vec![], "part", feats, max)?;
    Ok((ds, layout, train, test))
}

fn anchor_model(layout: SetLayout) -> Result<Pfn> {
    Pfn::new(layout, &PfnConfig { seed: 1, ..PfnConfig::default() })
}

/// CPU seconds this process has used (user + system, from `/proc/self/stat` in USER_HZ = 100
/// ticks), or NaN where unavailable: on shared machines the wall time includes waiting for
/// other processes, so the benchmark also reports the work itself.
pub(super) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|r| r.1) else { return f64::NAN };
    let f: Vec<&str> = rest.split_whitespace().collect();
    match (f.get(11).and_then(|v| v.parse::<f64>().ok()), f.get(12).and_then(|v| v.parse::<f64>().ok())) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// The 1-minute load average, or NaN.
pub(super) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `pfn_train`: 6 epochs, jets/s = training jets / median epoch time of epochs 2–6, test AUC.
pub fn pfn_train(cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (ds, layout, train, test) = jets(cfg)?;
    let (tr, te) = (ds.take_rows(&train), ds.take_rows(&test));
    let model = anchor_model(layout)?;
    let tc =
        TrainConfig { epochs: 6, batch_size: 256, optimizer: Optimizer::adam(1e-3), seed: 1, ..Default::default() };
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
    let trained = trainer.finish(crate::optim::Stop::MaxIters)?.model;
    let auc = trained.evaluate(&te, false)?.auc.unwrap_or(f64::NAN);
    Ok(vec![json!({
        "bench": "pfn_train",
        "jets_per_s": jets_per_s.round(),
        "test_auc": (auc * 1e4).round() / 1e4,
        "n_train": tr.len(),
        "n_test": te.len(),
        "epochs": tc.epochs,
        "epoch_seconds": times.iter().map(|t| (t * 1e3).round() / 1e3).collect::<Vec<_>>(),
        "pytorch_jets_per_s": TORCH_TRAIN,
        "pytorch_test_auc": TORCH_AUC,
        "speedup": (jets_per_s / TORCH_TRAIN * 100.0).round() / 100.0,
        "jets_per_cpu_s": jets_per_cpu_s.round(),
        "load_average": load_average(),
    })])
}

/// `pfn_fgsm`: forward, and forward + input gradient of the loss (FGSM's cost), at batch
/// 4096 over all jets, median of the repeats; also the FGSM flip rate at ε = 0.05 on the
/// standardised-scale features of a model trained for 2 epochs (shown for information).
pub fn pfn_fgsm(cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (ds, layout, train, _) = jets(cfg)?;
    let tr = ds.take_rows(&train);
    // The standardisation is fitted here (as `train` would) so the FGSM step below can read it.
    let mut model = anchor_model(layout.clone())?;
    crate::model::Model::fit_standardization(&mut model, &tr)?;
    let tc = TrainConfig {
        epochs: 2,
        batch_size: 256,
        optimizer: Optimizer::adam(1e-3),
        seed: 1,
        standardize: crate::model::Standardize::Keep,
        ..Default::default()
    };
    let trained = crate::model::train(&model, &tr, &tc, &Control::default())?.model;
    model.set_params_flat(&trained.params_flat())?;
    let x = layout.gather(&ds)?;
    let labels = ds.label().unwrap_or(&[]).to_vec();
    let n = x.nrows();
    let batches = |f: &mut dyn FnMut(ndarray::ArrayView2<'_, f32>, usize) -> Result<()>| -> Result<()> {
        for (b, chunk) in x.axis_chunks_iter(Axis(0), 4096).enumerate() {
            f(chunk, b * 4096)?;
        }
        Ok(())
    };
    let repeats = cfg.repeats.max(3);
    let forward = super::median_seconds(repeats, || batches(&mut |c, _| model.logits(c).map(|_| ())))?;
    let mut grad = Array2::<f32>::zeros((0, 0));
    let c0 = cpu_seconds();
    let grad_s = super::median_seconds(repeats, || {
        let mut parts = Vec::new();
        batches(&mut |c, r0| {
            let l = &labels[r0..r0 + c.nrows()];
            parts.push(model.input_grad_and_scores(c, GradTarget::Loss(Targets::Labels(l)))?.grad);
            Ok(())
        })?;
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        grad = ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Tensor(e.to_string()))?;
        Ok(())
    })?;
    let grad_cpu = (cpu_seconds() - c0) / repeats as f64;
    // One FGSM step on log pT, Δη, Δφ (not the charge): ε times each feature's scale.
    let (_, std) = model.object_standardization();
    let mut adv = x.clone();
    let f = layout.n_object();
    for s in 0..layout.max_objects {
        for (j, sd) in std.iter().enumerate().take(3) {
            let c = layout.slot_column(s, j);
            let eps = 0.05 * sd;
            let (mut col, g) = (adv.slice_mut(s![.., c]), grad.slice(s![.., c]));
            col.iter_mut().zip(g).for_each(|(v, gv)| *v += eps * gv.signum() * f32::from(*gv != 0.0));
        }
    }
    debug_assert_eq!(f, 4);
    let m: &dyn crate::model::Model = &model;
    let before = m.predict_class(x.view())?;
    let after = m.predict_class(adv.view())?;
    let flipped = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    Ok(vec![json!({
        "bench": "pfn_fgsm",
        "jets_per_s": (n as f64 / grad_s).round(),
        "forward_jets_per_s": (n as f64 / forward).round(),
        "flip_rate": (flipped as f64 / n as f64 * 1e5).round() / 1e5,
        "n": n,
        "pytorch_jets_per_s": TORCH_GRAD,
        "pytorch_forward_jets_per_s": TORCH_FORWARD,
        "speedup": (n as f64 / grad_s / TORCH_GRAD * 100.0).round() / 100.0,
        "jets_per_cpu_s": (n as f64 / grad_cpu).round(),
        "load_average": load_average(),
    })])
}
