//! Timing kernel behind `nuisance bench correction`: a minimal-deviation correction of 200k
//! simulated events (10 correlated Gaussian features) to 10 one-dimensional targets from a
//! distorted copy, with the default residual network (10→64→64→10, tanh), Wasserstein terms,
//! λ = 0.1, batches of 2048, Adam 3e-3. `scripts/correction_torch.py` is the same training in
//! plain PyTorch.

use std::time::Instant;

use serde_json::{json, Value as Json};

use super::BenchConfig;
use crate::correct::{fit, CorrectConfig, Distance, Shape, Target, TargetSpec};
use crate::data::synthetic::{gaussians_with, GaussiansConfig};
use crate::error::Result;
use crate::optim::Control;

/// Events of the simulation and of the pseudo-data.
pub const EVENTS: usize = 200_000;

/// Features (and targets).
pub const FEATURES: usize = 10;

/// The pseudo-data distortion of feature j of an event (x₀ is the event's first feature):
/// features 0–4 get a scale 1 + 0.05·(1 + x₀/4) correlated through x₀ plus a shift of 0.2,
/// features 5–9 a resolution change (×1.2 around the mean). Written out again in the PyTorch
/// script.
pub fn distort(j: usize, x: f32, x0: f32) -> f32 {
    if j < 5 {
        x * (1.0 + 0.05 * (1.0 + x0 / 4.0)) + 0.2
    } else {
        1.2 * x
    }
}

/// Simulation and targets of the bench.
pub fn problem() -> Result<(crate::data::Dataset, Vec<TargetSpec>)> {
    let g = |seed| gaussians_with(&GaussiansConfig { n: EVENTS, d: FEATURES, shift: 0.5, rho: 0.5, seed });
    let sim = g(11)?;
    let truth = g(12)?;
    let x = truth.x();
    let mut specs = Vec::new();
    for j in 0..FEATURES {
        let values: Vec<f32> = x.rows().into_iter().map(|r| distort(j, r[j], r[0])).collect();
        let target = Target { feature: format!("x{j}"), shape: Shape::Samples { values, weights: None } };
        specs.push(TargetSpec { target, distance: Distance::Wasserstein, weight: 1.0 });
    }
    Ok((sim, specs))
}

/// Seconds to convergence (the default rule) and events·epochs/s of the training loop.
pub fn correction(cfg: &BenchConfig) -> Result<Vec<Json>> {
    let (sim, specs) = problem()?;
    let mut runs = Vec::new();
    for _ in 0..cfg.repeats.max(1) {
        let c = CorrectConfig {
            train: crate::model::TrainConfig { seed: 1, ..CorrectConfig::default().train },
            ..CorrectConfig::default()
        };
        let t0 = Instant::now();
        let f = fit(&sim, &specs, &c, &Control::quiet())?;
        let secs = t0.elapsed().as_secs_f64();
        let epochs = f.history.len();
        let last = f.history.last().map_or(f64::NAN, |r| r.objective);
        runs.push((secs, epochs, last, f.stop.as_str()));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (secs, epochs, objective, stop) = runs[runs.len() / 2];
    Ok(vec![json!({
        "bench": "correction",
        "seconds_to_convergence": secs,
        "epochs": epochs,
        "events_epochs_per_s": (EVENTS * epochs) as f64 / secs,
        "final_objective": objective,
        "stopped": stop,
        "events": EVENTS,
        "features": FEATURES,
        "targets": FEATURES,
    })])
}
