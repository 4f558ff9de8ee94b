//! The baselines a correction is compared with: per-feature quantile morphing (each feature
//! mapped through `Q_target(F_sim(x))`, correlations left to chance) and iterative 1-D
//! reweighting (raking: event weights scaled bin by bin, one feature after the other, until
//! every marginal matches its target histogram).

use super::target::{Prepared, Shape, Target};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// Per-feature quantile morphing, fitted on a simulation; applies to any dataset with the
/// features.
#[derive(Clone, Debug)]
pub struct QuantileMorph {
    /// Per feature: name, the simulation's and the target's distribution.
    maps: Vec<(String, Prepared, Prepared)>,
}

/// Fits quantile morphing of `sim` (event weights used when it has them) to `targets`.
pub fn quantile_morph(sim: &Dataset, targets: &[Target]) -> Result<QuantileMorph> {
    if sim.is_empty() {
        return Err(Error::Empty { op: "quantile_morph", what: "the simulation".into() });
    }
    let mut maps = Vec::new();
    for t in targets {
        let col = sim.column(&t.feature).map_err(|_| unknown("quantile_morph", sim, &t.feature))?.to_vec();
        let own = Target {
            feature: t.feature.clone(),
            shape: Shape::Samples { values: col, weights: sim.weight().map(<[f32]>::to_vec) },
        };
        maps.push((t.feature.clone(), own.prepare()?, t.prepare()?));
    }
    Ok(QuantileMorph { maps })
}

impl QuantileMorph {
    /// The dataset with every morphed feature replaced by `Q_target(F_sim(x))`.
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        let mut out = ds.clone();
        for (name, sim, target) in &self.maps {
            let col = ds.column(name).map_err(|_| unknown("quantile_morph", ds, name))?;
            let v: Vec<f32> = col.iter().map(|&x| target.quantile(sim.cdf(f64::from(x))) as f32).collect();
            out = out.with_column(name, v)?;
        }
        Ok(out)
    }
}

/// The outcome of [`rake`].
#[derive(Clone, Debug)]
pub struct Raking {
    /// New event weights (their sum is the simulation's).
    pub weights: Vec<f32>,
    /// Sweeps over the features done.
    pub iterations: usize,
    /// Largest |fraction − target fraction| over every bin of every target at the end.
    pub max_deviation: f64,
    /// Whether `max_deviation` fell below the tolerance.
    pub converged: bool,
}

/// Iterative proportional fitting of `sim`'s event weights to the targets' histograms (a
/// sample target is binned as for the χ², [`super::target::SAMPLE_BINS`] bins over its
/// range). Each sweep scales, feature after feature, the weight of every event in bin b by
/// `f_b / p_b` (target over current fraction among the events inside the target's range);
/// stops when every fraction is within `tol` of its target or after `max_iter` sweeps. Event
/// weights must be ≥ 0.
pub fn rake(sim: &Dataset, targets: &[Target], tol: f64, max_iter: usize) -> Result<Raking> {
    if sim.is_empty() {
        return Err(Error::Empty { op: "rake", what: "the simulation".into() });
    }
    if !(tol.is_finite() && tol > 0.0) || max_iter == 0 {
        return Err(Error::arg("rake", format!("needs tol > 0 and max_iter ≥ 1, got {tol} and {max_iter}")));
    }
    let mut w: Vec<f64> = sim.weights_or_ones().iter().map(|&v| f64::from(v)).collect();
    if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(Error::arg("rake", format!("event weight {i} is {}; raking needs weights ≥ 0", w[i])));
    }
    let total0: f64 = w.iter().sum();
    if total0 <= 0.0 {
        return Err(Error::arg("rake", "every event weight is 0"));
    }
    // Per target: the bin of every event (None outside the range) and the target fractions.
    let mut binned = Vec::new();
    for t in targets {
        let p = t.prepare()?;
        let col = sim.column(&t.feature).map_err(|_| unknown("rake", sim, &t.feature))?;
        let e = &p.edges;
        let bins: Vec<Option<usize>> = col
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                (x >= e[0] && x <= e[e.len() - 1]).then(|| e.partition_point(|&v| v <= x).clamp(1, e.len() - 1) - 1)
            })
            .collect();
        binned.push((bins, p.fractions.clone()));
    }
    let deviation = |w: &[f64]| -> f64 {
        let mut worst: f64 = 0.0;
        for (bins, f) in &binned {
            let p = fractions(bins, w, f.len());
            worst = p.iter().zip(f).map(|(a, b)| (a - b).abs()).fold(worst, f64::max);
        }
        worst
    };
    let mut iterations = 0;
    let mut dev = deviation(&w);
    while dev >= tol && iterations < max_iter {
        for (bins, f) in &binned {
            let p = fractions(bins, &w, f.len());
            for (wi, b) in w.iter_mut().zip(bins) {
                if let Some(b) = *b {
                    if p[b] > 0.0 {
                        *wi *= f[b] / p[b];
                    }
                }
            }
        }
        iterations += 1;
        dev = deviation(&w);
    }
    let total: f64 = w.iter().sum();
    let weights = w.iter().map(|v| (v * total0 / total) as f32).collect();
    Ok(Raking { weights, iterations, max_deviation: dev, converged: dev < tol })
}

/// Weighted fractions per bin among the events inside the range.
fn fractions(bins: &[Option<usize>], w: &[f64], n: usize) -> Vec<f64> {
    let mut p = vec![0.0; n];
    for (b, wi) in bins.iter().zip(w) {
        if let Some(b) = *b {
            p[b] += wi;
        }
    }
    let s: f64 = p.iter().sum();
    if s > 0.0 {
        p.iter_mut().for_each(|v| *v /= s);
    }
    p
}

fn unknown(op: &str, ds: &Dataset, name: &str) -> Error {
    Error::arg(
        op,
        format!("a target names feature '{name}', which the dataset does not have ({})", ds.names().join(", ")),
    )
}
