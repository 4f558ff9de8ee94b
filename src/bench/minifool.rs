//! Timing kernel behind `nuisance bench minifool` (protocol of `shared/guide/benchmarks.md`),
//! MiniFool looked up in the registry and configured as a script would.

use std::time::Instant;

use serde_json::{json, Value as Json};

use crate::attack::{configure, FeatureSigma, Purpose, Setup, UncertaintyModel, Value, Values};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Mlp;
use crate::optim::Control;

/// MiniFool on every test event: minimise (f(x+δ) − t)² + λ·Σ(δᵢ/σᵢ)², t = 1 − clean class,
/// σᵢ = 0.25·(1 + i mod 4). In MiniFool's terms α·χ²/N with α = λ·N, β = 1, g = 1. `extra`
/// holds further options (the minimiser and its settings).
pub fn minifool_bench(model: &Mlp, test: &Dataset, lambda: f32, extra: &[(&'static str, Value)]) -> Result<Json> {
    let d = test.n_features();
    let specs = (0..d).map(|i| FeatureSigma::absolute(0.25 * (1 + i % 4) as f32)).collect();
    let unc = UncertaintyModel::new(test.names().to_vec(), specs)?;
    let setup = Setup { model, events: test, unc: Some(&unc), purpose: Purpose::Script };
    let mut values = Values::new("minifool")
        .with("alpha", Value::Float(f64::from(lambda * d as f32)))
        .with("beta", Value::Float(1.0));
    for (k, v) in extra {
        values = values.with(k, v.clone());
    }
    let minimizer = match extra.iter().find(|(k, _)| *k == "minimizer") {
        Some((_, Value::Str(m))) => m.clone(),
        _ => "lbfgs".to_string(),
    };
    let attack = configure("minifool", &setup, values)?;
    let t0 = Instant::now();
    let r = attack.run(model, test.x(), None, &Control::quiet())?;
    let secs = t0.elapsed().as_secs_f64();
    let n = test.len() as f64;
    let mean_iters = r.attack.iters.iter().map(|&i| i as f64).sum::<f64>() / n;
    Ok(json!({
        "bench": "minifool", "lambda": lambda, "minimizer": minimizer,
        "events_per_s": n / secs, "flip_rate": r.attack.flip_fraction(), "n": test.len(),
        "mean_iterations": mean_iters,
        "evaluations_per_event": r.evaluations.unwrap_or(0) as f64 / n,
        "reasons": r.attack.reason_counts(),
    }))
}
