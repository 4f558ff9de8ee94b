//! Speed measurements of the model kernels on the reference task, for `nuisance bench` and
//! `cargo bench --bench train`. Each function returns a JSON line in the benchmark format of
//! the guide (`{"bench": …, "events_per_s": …, …}`). Speed is measured here, never asserted
//! in tests.

use std::time::Instant;

use ndarray::{s, Axis};

use crate::attack::gradient::sign;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{train, CandleAdam, CandleMlp, GradTarget, Mlp, MlpConfig, Targets, TrainConfig};
use crate::optim::Control;

/// The reference task's events: label ~ Bernoulli(½); class 0 ~ N(0, Σ), class 1 ~
/// N(0.5·1, Σ), Σᵢⱼ = 0.5^|i−j| (AR(1) chain xᵢ = 0.5·xᵢ₋₁ + √0.75·zᵢ); features `x0…`.
pub fn reference_gaussians(n: usize, d: usize, seed: u64) -> Result<Dataset> {
    let cfg =
        crate::data::synthetic::GaussiansConfig { n, d, seed, ..crate::data::synthetic::GaussiansConfig::default() };
    crate::data::synthetic::gaussians_with(&cfg)
}

/// The reference architecture 20→64→64→64→1, ReLU, sigmoid.
pub fn reference_model(seed: u64) -> Result<Mlp> {
    Mlp::new(&[20, 64, 64, 64, 1], MlpConfig { seed, ..MlpConfig::default() })
}

/// Fused training: BCE, Adam 1e-3, `batch` events per step, `epochs` over `train`.
/// Events/s = epochs·n / wall time of `train` (standardisation fit included).
pub fn train_fused(train_ds: &Dataset, test: Option<&Dataset>, epochs: usize, batch: usize) -> Result<String> {
    let m = reference_model(1)?;
    let cfg = TrainConfig { epochs, batch_size: batch, seed: 2, ..TrainConfig::default() };
    let t0 = Instant::now();
    let r = train(&m, train_ds, &cfg, &Control::quiet())?;
    let secs = t0.elapsed().as_secs_f64();
    let auc = match test {
        Some(t) => r.model.evaluate(t, false)?.auc.unwrap_or(f64::NAN),
        None => f64::NAN,
    };
    let eps = (epochs * train_ds.len()) as f64 / secs;
    Ok(format!(
        r#"{{"bench": "train", "path": "fused", "events_per_s": {eps:.0}, "batch": {batch}, "epochs": {epochs}, "n": {}, "seconds": {secs:.3}, "test_auc": {auc:.4}}}"#,
        train_ds.len()
    ))
}

/// Candle training with the same task: forward, BCE, autograd backward and an op-by-op Adam
/// per minibatch (unshuffled — shuffling would only add cost). Inputs pre-standardised.
pub fn train_candle(train_ds: &Dataset, epochs: usize, batch: usize) -> Result<String> {
    let mut m = reference_model(1)?;
    m.fit_standardization(train_ds)?;
    let mut c = CandleMlp::from_mlp(&m)?;
    let mut adam = CandleAdam::new(&c, 1e-3)?;
    let labels = train_ds.label().unwrap_or(&[]);
    let n = train_ds.len();
    let t0 = Instant::now();
    for _ in 0..epochs {
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let xb = train_ds.x().slice_move(s![start..end, ..]);
            let loss = c.mean_loss(xb, Targets::Labels(&labels[start..end]), None)?;
            adam.step(&mut c, &loss)?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let eps = (epochs * n) as f64 / secs;
    Ok(format!(
        r#"{{"bench": "train", "path": "candle", "events_per_s": {eps:.0}, "batch": {batch}, "epochs": {epochs}, "n": {n}, "seconds": {secs:.3}}}"#
    ))
}

/// FGSM as in the guide, fused path: per batch the clean predicted class (forward), the
/// BCE input gradient against it (forward + backward), x' = x + ε·sign(∇), and the
/// adversarial class (forward). Also reports forward+input-gradient alone.
pub fn fgsm_fused(model: &Mlp, test: &Dataset, batch: usize, eps: f32) -> Result<String> {
    let x = test.x();
    let t0 = Instant::now();
    let mut flips = 0usize;
    for xb in x.axis_chunks_iter(Axis(0), batch) {
        let y = model.predict_class(xb)?;
        let g = model.input_grad(xb, GradTarget::Loss(Targets::Labels(&y)))?;
        let adv = &xb + &g.mapv(|v| eps * sign(v));
        let y2 = model.predict_class(adv.view())?;
        flips += y.iter().zip(&y2).filter(|(a, b)| a != b).count();
    }
    let secs = t0.elapsed().as_secs_f64();
    let (one_pass_secs, one_pass_flips) = fgsm_one_pass(model, test, batch, eps)?;
    let t1 = Instant::now();
    for xb in x.axis_chunks_iter(Axis(0), batch) {
        model.input_grad_and_scores(xb, GradTarget::Logit { class: 1 })?;
    }
    let grad_secs = t1.elapsed().as_secs_f64();
    let n = x.nrows() as f64;
    Ok(format!(
        r#"{{"bench": "fgsm_batch_loop", "path": "fused", "events_per_s": {:.0}, "flip_rate": {:.5}, "n": {n}, "batch": {batch}, "one_pass_events_per_s": {:.0}, "one_pass_flip_rate": {:.5}, "forward_input_grad_events_per_s": {:.0}}}"#,
        n / secs,
        flips as f64 / n,
        n / one_pass_secs,
        one_pass_flips as f64 / n,
        n / grad_secs
    ))
}

/// FGSM with one forward+backward and one forward per batch: the gradient of the logit
/// gives the clean class (z > 0) and ∇ₓBCE = (σ(z) − y)·∇ₓz, whose sign is −sign(∇ₓz) for
/// y = 1 and +sign(∇ₓz) for y = 0. Returns (seconds, flips).
fn fgsm_one_pass(model: &Mlp, test: &Dataset, batch: usize, eps: f32) -> Result<(f64, usize)> {
    let t0 = Instant::now();
    let mut flips = 0usize;
    for xb in test.x().axis_chunks_iter(Axis(0), batch) {
        let r = model.input_grad_and_scores(xb, GradTarget::Logit { class: 1 })?;
        let y: Vec<bool> = r.value.iter().map(|&z| z > 0.0).collect();
        let mut adv = xb.to_owned();
        for ((mut row, g), &yi) in adv.rows_mut().into_iter().zip(r.grad.rows()).zip(&y) {
            let s = if yi { -eps } else { eps };
            row.iter_mut().zip(g).for_each(|(v, gv)| *v += s * sign(*gv));
        }
        let y2 = model.classes_from_logits(&model.forward_logits(adv.view())?);
        flips += y.iter().zip(&y2).filter(|(a, b)| i64::from(**a) != **b).count();
    }
    Ok((t0.elapsed().as_secs_f64(), flips))
}

/// FGSM on the candle path (same steps as [`fgsm_fused`]).
pub fn fgsm_candle(model: &Mlp, test: &Dataset, batch: usize, eps: f32) -> Result<String> {
    let c = CandleMlp::from_mlp(model)?;
    let x = test.x();
    let t0 = Instant::now();
    let mut flips = 0usize;
    for xb in x.axis_chunks_iter(Axis(0), batch) {
        let y = model.classes_from_logits(&c.forward_logits(xb)?);
        let g = c.input_grad(xb, GradTarget::Loss(Targets::Labels(&y)))?;
        let adv = &xb + &g.mapv(|v| eps * sign(v));
        let y2 = model.classes_from_logits(&c.forward_logits(adv.view())?);
        flips += y.iter().zip(&y2).filter(|(a, b)| a != b).count();
    }
    let secs = t0.elapsed().as_secs_f64();
    let n = x.nrows() as f64;
    Ok(format!(
        r#"{{"bench": "fgsm_batch_loop", "path": "candle", "events_per_s": {:.0}, "flip_rate": {:.5}, "n": {n}, "batch": {batch}}}"#,
        n / secs,
        flips as f64 / n
    ))
}

/// Forward-only throughput (logits) at `batch` events per call.
pub fn forward_fused(model: &Mlp, test: &Dataset, batch: usize) -> Result<String> {
    let t0 = Instant::now();
    for xb in test.x().axis_chunks_iter(Axis(0), batch) {
        model.forward_logits(xb)?;
    }
    let n = test.len() as f64;
    Ok(format!(
        r#"{{"bench": "forward", "path": "fused", "events_per_s": {:.0}, "batch": {batch}}}"#,
        n / t0.elapsed().as_secs_f64()
    ))
}
