//! Timing kernels behind `nuisance bench fgsm | pgd | minifool` (protocols of
//! `shared/guide/benchmarks.md`). Each returns the JSON fields of one line.

use std::time::Instant;

use serde_json::{json, Value};

use super::{minifool, pgd, FeatureSigma, Goal, MiniFoolConfig, Norm, PgdConfig, Projection, UncertaintyModel};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Mlp;
use crate::optim::Control;

/// σ = 1 on every feature: the guide's budgets are in standardized units.
fn unit_sigma(ds: &Dataset) -> Result<UncertaintyModel> {
    UncertaintyModel::new(ds.names().to_vec(), vec![FeatureSigma::absolute(1.0); ds.n_features()])
}

/// FGSM (`steps = 1`) or PGD on every test event: labels = the clean predicted class, L∞ budget
/// ε = 0.1, step `step`; the clean forward pass is part of the timed work.
pub fn gradient_attack(model: &Mlp, test: &Dataset, steps: usize, step: f32) -> Result<Value> {
    let unc = unit_sigma(test)?;
    let cfg = PgdConfig { eps: 0.1, step, steps, norm: Norm::Linf, random_start: false, seed: 0 };
    let t0 = Instant::now();
    let r = pgd(model, &unc, test.x(), &Goal::UntargetedClean, &cfg, &Projection::default(), &Control::quiet())?;
    let secs = t0.elapsed().as_secs_f64();
    let n = test.len() as f64;
    let name = if steps == 1 { "fgsm" } else { "pgd" };
    Ok(
        json!({ "bench": name, "events_per_s": n / secs, "flip_rate": r.flip_fraction(), "n": test.len(), "steps": steps }),
    )
}

/// MiniFool on every test event: minimise (f(x+δ) − t)² + λ·Σ(δᵢ/σᵢ)², t = 1 − clean class,
/// σᵢ = 0.25·(1 + i mod 4). In MiniFool's terms α·χ²/N with α = λ·N, β = 1, g = 1.
pub fn minifool_bench(model: &Mlp, test: &Dataset, lambda: f32, cfg: &MiniFoolConfig) -> Result<Value> {
    let d = test.n_features();
    let specs = (0..d).map(|i| FeatureSigma::absolute(0.25 * (1 + i % 4) as f32)).collect();
    let unc = UncertaintyModel::new(test.names().to_vec(), specs)?;
    let cfg = MiniFoolConfig { alpha: lambda * d as f32, beta: 1.0, ..cfg.clone() };
    let t0 = Instant::now();
    let r = minifool(model, &unc, test.x(), &cfg, &Projection::default(), &Control::quiet())?;
    let secs = t0.elapsed().as_secs_f64();
    let n = test.len() as f64;
    let mean_iters = r.attack.iters.iter().map(|&i| i as f64).sum::<f64>() / n;
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    r.attack.reason.iter().for_each(|&why| *reasons.entry(why).or_default() += 1);
    Ok(json!({
        "bench": "minifool", "lambda": lambda, "minimizer": format!("{:?}", cfg.minimizer).to_lowercase(),
        "events_per_s": n / secs, "flip_rate": r.attack.flip_fraction(), "n": test.len(),
        "mean_iterations": mean_iters,
        "evaluations_per_event": r.evaluations as f64 / n,
        "reasons": reasons,
    }))
}
