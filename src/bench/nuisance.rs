//! Timing kernel behind `nuisance bench nuisance_pgd`: per-event PGD in θ space on the toy
//! collider (5 nuisances, m12 and HT recomputed at every step) against plain feature-space PGD
//! on the same events and model.

use std::time::Instant;

use serde_json::{json, Value as Json};

use super::{gradient, median_seconds, BenchConfig};
use crate::attack::MiniFoolConfig;
use crate::data::synthetic::{collider, ColliderConfig, COLLIDER_FEATURES};
use crate::error::Result;
use crate::model::{train, Mlp, MlpConfig, TrainConfig};
use crate::optim::Control;
use crate::systematics::{
    from_json, theta_attack, Method, Mode, Population, Quantity, QuantityKind, ThetaAttack, ThetaAttackConfig,
    ThetaSpace,
};

/// The bench's nuisances: JES (σ(η)), JER and MET soft-term smearings, an η scale and the
/// luminosity; m12 and HT recomputed from the varied inputs.
fn systematics() -> Result<crate::systematics::Systematics> {
    from_json(&json!({
        "nuisances": [
            { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets_ht"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
            { "name": "JER", "kind": "smear", "targets": ["pt1", "pt2"], "sigma": 0.02, "relative": true, "seed": 5 },
            { "name": "MET_soft", "kind": "smear", "targets": ["met"], "sigma": "0.3 * sqrt(ht)", "seed": 6 },
            { "name": "eta_scale", "kind": "scale", "targets": ["eta1", "eta2"], "sigma": 0.01 },
            { "name": "lumi", "kind": "norm", "size": 0.02 } ],
        "derived": {
            "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
            "ht": "pt1 + pt2 + jets_ht" } }))
}

/// 100k collider test events and the reference-task MLP 11→64→64→1 trained one epoch on 50k
/// other events (training not timed). θ-space PGD: χ² ≤ 1, 20 steps; plain PGD: the `pgd`
/// bench's L∞ ball of 0.1 in σ = 1 units, 20 steps of 0.01.
pub fn nuisance_pgd(cfg: &BenchConfig) -> Result<Vec<Json>> {
    let names: Vec<String> = COLLIDER_FEATURES.iter().map(|s| s.to_string()).collect();
    let tr = collider(&ColliderConfig::new(50_000, 1))?.select(&names)?;
    let m = Mlp::new(&[11, 64, 64, 1], MlpConfig { seed: 3, ..MlpConfig::default() })?;
    let tc = TrainConfig { epochs: 1, seed: 4, ..TrainConfig::default() };
    let model = train(&m, &tr, &tc, &Control::quiet())?.model;
    let model = model.as_mlp().cloned().ok_or_else(|| crate::Error::arg("bench", "training gave another model"))?;
    let te = collider(&ColliderConfig::new(100_000, 2))?.derive("jets_ht", "ht - pt1 - pt2")?;
    let syst = systematics()?;
    let space = ThetaSpace::new(&model, &te, &syst)?;
    let k = syst.nuisances().len();
    let tcfg = ThetaAttackConfig {
        method: Method::Pgd,
        mode: Mode::Event,
        chi2: 1.0,
        steps: 20,
        step: None,
        free: vec![true; k],
        minifool: MiniFoolConfig::default(),
        population: Population { quantity: Quantity::new(QuantityKind::Yield, None, Some(0.5))?, temperature: 0.05 },
        direction: 1.0,
        target: 0.1,
        tolerance: 1e-3,
    };
    let n = te.len() as f64;
    let mut flip = 0.0;
    let secs = median_seconds(cfg.repeats.max(1), || {
        if let ThetaAttack::Event(r) = theta_attack(&space, &tcfg, &Control::quiet())? {
            flip = r.flip_fraction();
        }
        Ok(())
    })?;
    let plain_events = te.select(&names)?;
    gradient::gradient_attack(&model, &plain_events, 20, 0.01)?;
    let t0 = Instant::now();
    let plain = gradient::gradient_attack(&model, &plain_events, 20, 0.01)?;
    let plain_secs = t0.elapsed().as_secs_f64();
    Ok(vec![
        json!({ "bench": "nuisance_pgd", "events_per_s": n / secs, "flip_rate": flip, "n": te.len(), "steps": 20, "nuisances": k, "chi2": 1.0 }),
        json!({ "bench": "nuisance_pgd_plain", "events_per_s": n / plain_secs, "flip_rate": plain["flip_rate"], "n": te.len(), "steps": 20 }),
    ])
}
