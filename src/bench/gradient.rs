//! Timing kernels behind `nuisance bench fgsm | pgd` (protocols of `shared/guide/benchmarks.md`).
//! The attacks are looked up in the registry and configured as a script would.

use std::time::Instant;

use serde_json::{json, Value as Json};

use crate::attack::{configure, FeatureSigma, Purpose, Setup, UncertaintyModel, Value, Values};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Mlp;
use crate::optim::Control;

/// σ = 1 on every feature: the guide's budgets are in standardized units.
pub fn unit_sigma(ds: &Dataset) -> Result<UncertaintyModel> {
    UncertaintyModel::new(ds.names().to_vec(), vec![FeatureSigma::absolute(1.0); ds.n_features()])
}

/// FGSM (`steps = 1`) or PGD on every test event: labels = the clean predicted class, L∞ budget
/// ε = 0.1, step `step`; the clean forward pass is part of the timed work.
pub fn gradient_attack(model: &Mlp, test: &Dataset, steps: usize, step: f32) -> Result<Json> {
    let unc = unit_sigma(test)?;
    let setup = Setup { model, events: test, unc: Some(&unc), purpose: Purpose::Script };
    let name = if steps == 1 { "fgsm" } else { "pgd" };
    let mut values = Values::new(name).with("eps", Value::Float(0.1));
    if steps > 1 {
        values = values.with("steps", Value::Int(steps as i64)).with("step", Value::Float(f64::from(step)));
    }
    let attack = configure(name, &setup, values)?;
    let t0 = Instant::now();
    let r = attack.run(model, test.x(), None, &Control::quiet())?;
    let secs = t0.elapsed().as_secs_f64();
    let n = test.len() as f64;
    Ok(
        json!({ "bench": name, "events_per_s": n / secs, "flip_rate": r.attack.flip_fraction(), "n": test.len(), "steps": steps }),
    )
}
