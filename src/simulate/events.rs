//! Detector response of event-level features (the toy collider's, or any table's).
//!
//! Per feature, in the order given, each event's value x becomes
//!
//! * `x' = scale·x + σ(x)·z`, σ(x) = √(absolute² + (relative·x)² + stochastic²·|ref|), z the
//!   double Gaussian of the feature's [`Tails`], `ref` the generator-level value of the
//!   `reference` column (the feature itself by default: σ/x = stochastic/√x, a calorimeter's
//!   term; `reference: "ht"` for a missing-momentum resolution growing as √HT);
//!   then clipped below at `min` (if set) and wrapped into [−π, π) when `periodic` (angles);
//! * or, for a count with an `efficiency` ε (object multiplicities), `x' ~ Binomial(x, ε)`:
//!   each object is found with probability ε.
//!
//! The whole event is kept with probability `efficiency` (trigger and reconstruction). Columns
//! listed in `truth` are copied to `<name>_true` before the response (regression targets), and
//! the `derived` features are recomputed afterwards from the responded ones (expressions of
//! `data::expr`, in order), so m12 and ΔR follow from the smeared momenta.
//!
//! The collider presets ([`EventResponse::collider`]) treat the generator's output as the
//! generator level (its own 2.5 GeV mass resolution included) and add:
//!
//! | feature | `fast` | `full` |
//! | --- | --- | --- |
//! | `pt1`, `pt2` | 1 % | 2 %, scale 0.99, tails 5 % × 3 |
//! | `eta1`, `eta2` | 0.005 | 0.01 |
//! | `phi1`, `phi2` | 0.005 (periodic) | 0.01 (periodic) |
//! | `met` | 1 GeV ⊕ 0.3·√HT, ≥ 0 | 3 GeV ⊕ 0.5·√HT, tails 5 % × 3, ≥ 0 |
//! | `njets` | ε = 0.98 | ε = 0.90 |
//! | `ht` | 2 % | 5 %, scale 0.97, tails 5 % × 2 |
//! | event efficiency | 1 | 0.95 |
//!
//! and recompute `m12 = √(2·pt1·pt2·(cosh Δη − cos Δφ))` and `dr12 = √(Δη² + Δφ²)`.

use std::f64::consts::PI;

use rand::Rng as _;
use rayon::prelude::*;

use super::response::{check_probability, Tails};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng;

/// Largest count a binomial efficiency thins (one draw per object).
const MAX_COUNT: f64 = 1.0e6;

/// The response of one feature (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureResponse {
    /// The column.
    pub name: String,
    /// Absolute resolution, in the feature's unit.
    pub absolute: f64,
    /// Relative resolution (0.02 = 2 %).
    pub relative: f64,
    /// Stochastic term: σ² gains stochastic²·|ref|.
    pub stochastic: f64,
    /// The column whose generator-level value is `ref`; `None` for the feature itself.
    pub reference: Option<String>,
    /// Mean response (1 = unbiased).
    pub scale: f64,
    /// Non-Gaussian tails.
    pub tails: Tails,
    /// For counts: each object found with this probability (instead of the smearing).
    pub efficiency: Option<f64>,
    /// Lower clip of the measured value.
    pub min: Option<f64>,
    /// Wrap into [−π, π) (azimuths).
    pub periodic: bool,
}

impl FeatureResponse {
    /// An unbiased Gaussian response with relative resolution `relative` and nothing else.
    pub fn relative(name: &str, relative: f64) -> Self {
        FeatureResponse {
            name: name.into(),
            absolute: 0.0,
            relative,
            stochastic: 0.0,
            reference: None,
            scale: 1.0,
            tails: Tails::NONE,
            efficiency: None,
            min: None,
            periodic: false,
        }
    }

    /// An absolute resolution `absolute` and nothing else.
    pub fn absolute(name: &str, absolute: f64) -> Self {
        FeatureResponse { absolute, relative: 0.0, ..Self::relative(name, 0.0) }
    }

    /// A count thinned with efficiency `eff`.
    pub fn count(name: &str, eff: f64) -> Self {
        FeatureResponse { efficiency: Some(eff), ..Self::relative(name, 0.0) }
    }

    /// σ at generator-level value `x` with reference value `rf`.
    pub fn sigma(&self, x: f64, rf: f64) -> f64 {
        (self.absolute.powi(2) + (self.relative * x).powi(2) + self.stochastic.powi(2) * rf.abs()).sqrt()
    }

    fn check(&self) -> Result<()> {
        let op = "event_response";
        let what = format!("feature '{}'", self.name);
        for (k, v) in [("absolute", self.absolute), ("relative", self.relative), ("stochastic", self.stochastic)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::arg(op, format!("{what}: {k} resolution must be finite and ≥ 0, got {v}")));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::arg(op, format!("{what}: scale must be finite and > 0, got {}", self.scale)));
        }
        self.tails.check(op, &what)?;
        if let Some(e) = self.efficiency {
            check_probability(op, &format!("{what}: efficiency"), e)?;
        }
        Ok(())
    }
}

/// The response of a table's event-level features (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct EventResponse {
    /// Per-feature responses, applied in this order.
    pub features: Vec<FeatureResponse>,
    /// Probability that an event is recorded at all.
    pub efficiency: f64,
    /// Columns copied to `<name>_true` before the response.
    pub truth: Vec<String>,
    /// `(column, expression)` recomputed after the response, in order.
    pub derived: Vec<(String, String)>,
    /// Seed of every draw.
    pub seed: u64,
}

impl EventResponse {
    /// The collider preset `fast` or `full` (the module table).
    pub fn collider(preset: &str, seed: u64) -> Result<EventResponse> {
        let full = match preset {
            "fast" => false,
            "full" => true,
            other => {
                return Err(Error::BadOption {
                    func: "event_response".into(),
                    key: "preset".into(),
                    problem: format!("must be \"fast\" or \"full\", got '{other}'"),
                })
            }
        };
        let (pt, ang) = if full { (0.02, 0.01) } else { (0.01, 0.005) };
        let tails = |f: f64, w: f64| if full { Tails { fraction: f, width: w } } else { Tails::NONE };
        let mut features = Vec::new();
        for i in ["1", "2"] {
            let scale = if full { 0.99 } else { 1.0 };
            features.push(FeatureResponse {
                scale,
                tails: tails(0.05, 3.0),
                min: Some(0.0),
                ..FeatureResponse::relative(&format!("pt{i}"), pt)
            });
            features.push(FeatureResponse::absolute(&format!("eta{i}"), ang));
            features.push(FeatureResponse { periodic: true, ..FeatureResponse::absolute(&format!("phi{i}"), ang) });
        }
        features.push(FeatureResponse {
            absolute: if full { 3.0 } else { 1.0 },
            stochastic: if full { 0.5 } else { 0.3 },
            reference: Some("ht".into()),
            tails: tails(0.05, 3.0),
            min: Some(0.0),
            ..FeatureResponse::relative("met", 0.0)
        });
        features.push(FeatureResponse::count("njets", if full { 0.90 } else { 0.98 }));
        features.push(FeatureResponse {
            scale: if full { 0.97 } else { 1.0 },
            tails: tails(0.05, 2.0),
            min: Some(0.0),
            ..FeatureResponse::relative("ht", if full { 0.05 } else { 0.02 })
        });
        Ok(EventResponse {
            features,
            efficiency: if full { 0.95 } else { 1.0 },
            truth: Vec::new(),
            derived: vec![
                ("m12".into(), "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))".into()),
                ("dr12".into(), "hypot(eta1 - eta2, dphi(phi1, phi2))".into()),
            ],
            seed,
        })
    }

    /// The detector-level dataset: events responded, the unrecorded ones removed (labels,
    /// weights and collections follow), truth copies added, derived features recomputed.
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        let op = "event_response";
        check_probability(op, "efficiency", self.efficiency)?;
        let mut cols = Vec::with_capacity(self.features.len());
        for f in &self.features {
            f.check()?;
            let j = ds.index_of(op, &f.name)?;
            let rf = f.reference.as_deref().map(|r| ds.index_of(op, r)).transpose()?.unwrap_or(j);
            cols.push((f, j, rf));
        }
        let mut ds = ds.clone();
        for t in &self.truth {
            let v = ds.column(t)?.to_vec();
            ds = ds.with_column(&format!("{t}_true"), v)?;
        }
        let d = ds.n_features();
        let truth = ds.x();
        let mut x = truth.to_owned();
        let Some(flat) = x.as_slice_mut() else { return Err(Error::Tensor("non-contiguous features".into())) };
        let kept: Vec<bool> = flat
            .par_chunks_mut(d.max(1))
            .enumerate()
            .map(|(i, row)| {
                let mut r = rng::rng(rng::substream(self.seed, i as u64));
                let keep = r.random::<f64>() < self.efficiency;
                let gen = truth.row(i);
                for &(f, j, rf) in &cols {
                    row[j] = respond(f, f64::from(gen[j]), f64::from(gen[rf]), &mut r)? as f32;
                }
                Ok(keep)
            })
            .collect::<Result<_>>()?;
        let mut out = ds.with_x(x)?;
        if kept.iter().any(|k| !k) {
            let idx: Vec<usize> = (0..kept.len()).filter(|&i| kept[i]).collect();
            if idx.is_empty() {
                return Err(Error::Empty { op, what: "the recorded events (the efficiency kept none)".into() });
            }
            out = out.take_rows(&idx);
        }
        for (name, expr) in &self.derived {
            out = out.derive(name, expr)?;
        }
        Ok(out)
    }
}

/// One feature's measured value from its generator-level value `x` (reference value `rf`).
fn respond(f: &FeatureResponse, x: f64, rf: f64, r: &mut rng::Rng) -> Result<f64> {
    if let Some(eff) = f.efficiency {
        if !((0.0..=MAX_COUNT).contains(&x) && x.fract() == 0.0) {
            return Err(Error::arg(
                "event_response",
                format!("feature '{}' has an efficiency, so it must hold counts 0..=1e6, got {x}", f.name),
            ));
        }
        return Ok((0..x as usize).filter(|_| r.random::<f64>() < eff).count() as f64);
    }
    let mut v = f.scale * x + f.sigma(x, rf) * f.tails.draw(r);
    if let Some(m) = f.min {
        v = v.max(m);
    }
    if f.periodic {
        v = (v + PI).rem_euclid(2.0 * PI) - PI;
    }
    Ok(v)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
