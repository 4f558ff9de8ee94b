//! Detector response of particle jets: generator-level constituents (a collection with the
//! features `pt`, `eta`, `phi`, `E`, `charge`, `pid`, as in `pythia_qg_jets.parquet`) to
//! detector-level ones with the same features.
//!
//! Per jet, from its own random stream:
//!
//! 1. **Tracks.** Each charged constituent is found with probability `tracking_efficiency`
//!    (else lost). A found one keeps its direction; its energy and pT are multiplied by
//!    `scale·(1 + σ(E)·z)` with the `em` resolution for electrons (|pid| 11) and the `track`
//!    resolution otherwise (hadrons, muons). Tracks below `track_pt_min` are dropped.
//! 2. **Soft extra particles** (pile-up, noise, underlying event): Poisson(`soft_mean`) of
//!    them, uniform in a disc of radius `soft_radius` around the generator-level jet axis,
//!    pT exponential with mean `soft_pt`, half photons, half neutral hadrons.
//! 3. **Calorimeter.** Neutral constituents and the soft particles deposit their energy in
//!    cells of Δη × Δφ = `em_cell`² (photons) or `hadron_cell`² (neutral hadrons); the
//!    deposits in one cell merge into one massless particle at the cell centre (pid 22 or
//!    130, charge 0); a cell size of 0 keeps every particle (no merging). Each cell's energy
//!    is multiplied by `scale·(1 + σ(E)·z)` of its calorimeter (`em` or `hadron`), and cells
//!    below `neutral_pt_min` are dropped.
//!
//! σ(E)/… is the relative resolution `√((a/√E)² + b² + (c/E)² + (d·E)²)` ([`Resolution`]:
//! stochastic a, constant b, noise c, linear d, E in GeV), z the double Gaussian of its
//! [`Tails`]; a non-positive response drops the particle. The constituents come out sorted by
//! pT (descending), and the event columns `jet_pt`, `jet_eta`, `jet_phi`, `jet_mass` and
//! `n_constituents` (those present) are recomputed from them. Other collection features
//! (derived ones) are refused: derive them after the response.
//!
//! | parameter | `fast` | `full` |
//! | --- | --- | --- |
//! | track σ/E | 0.5 % ⊕ 5·10⁻⁵·E | 1 % ⊕ 10⁻⁴·E, tails 2 % × 5 |
//! | photon σ/E | 5 %/√E ⊕ 0.5 % | 10 %/√E ⊕ 1 % ⊕ 0.2/E, tails 5 % × 3 |
//! | neutral hadron σ/E | 50 %/√E ⊕ 5 % | 100 %/√E ⊕ 10 % ⊕ 1/E, scale 0.85, tails 5 % × 3 |
//! | tracking efficiency | 0.98 | 0.90 |
//! | cells (photons / neutral hadrons) | 0.02 / 0.05 | 0.05 / 0.1 |
//! | soft extra particles | none | Poisson(5), mean pT 1 GeV, R 0.4 |
//! | thresholds (tracks / neutral) | 0.3 / 0.5 GeV | 0.5 / 1 GeV |

use std::collections::BTreeMap;
use std::f64::consts::PI;

use rand::Rng as _;
use rayon::prelude::*;

use super::response::{check_probability, poisson, Tails};
use crate::data::collection::Collection;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::{self, Rng};

/// The collection features the response reads and writes, in this order.
pub const FEATURES: [&str; 6] = ["pt", "eta", "phi", "E", "charge", "pid"];

/// Largest mean number of soft extra particles per jet.
const MAX_SOFT: f64 = 1000.0;

/// A relative energy resolution and response (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resolution {
    /// a in a/√E.
    pub stochastic: f64,
    /// b.
    pub constant: f64,
    /// c in c/E.
    pub noise: f64,
    /// d in d·E (a tracker's curvature term).
    pub linear: f64,
    /// Mean response.
    pub scale: f64,
    /// Non-Gaussian tails.
    pub tails: Tails,
}

impl Resolution {
    /// Relative resolution at energy `e` (GeV).
    pub fn sigma(&self, e: f64) -> f64 {
        let e = e.max(1e-6);
        ((self.stochastic.powi(2) / e) + self.constant.powi(2) + (self.noise / e).powi(2) + (self.linear * e).powi(2))
            .sqrt()
    }

    /// The response factor `scale·(1 + σ(e)·z)` for one particle.
    fn factor(&self, e: f64, r: &mut Rng) -> f64 {
        self.scale * (1.0 + self.sigma(e) * self.tails.draw(r))
    }

    fn check(&self, what: &str) -> Result<()> {
        let op = "jet_response";
        for (k, v) in [
            ("stochastic", self.stochastic),
            ("constant", self.constant),
            ("noise", self.noise),
            ("linear", self.linear),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::arg(op, format!("{what}: {k} term must be finite and ≥ 0, got {v}")));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::arg(op, format!("{what}: scale must be finite and > 0, got {}", self.scale)));
        }
        self.tails.check(op, what)
    }
}

/// The jet response (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct JetResponse {
    /// The constituents' collection.
    pub collection: String,
    /// Charged hadrons and muons.
    pub track: Resolution,
    /// Photons and electrons.
    pub em: Resolution,
    /// Neutral hadrons.
    pub hadron: Resolution,
    /// Probability that a charged constituent's track is found.
    pub tracking_efficiency: f64,
    /// Cell size (Δη = Δφ) of the photon calorimeter; 0 for no merging.
    pub em_cell: f64,
    /// Cell size of the hadron calorimeter; 0 for no merging.
    pub hadron_cell: f64,
    /// Mean number of soft extra particles per jet.
    pub soft_mean: f64,
    /// Their mean pT (GeV).
    pub soft_pt: f64,
    /// Radius of the disc they fall in around the jet axis.
    pub soft_radius: f64,
    /// Tracks below this pT (GeV) are dropped.
    pub track_pt_min: f64,
    /// Calorimeter particles below this pT (GeV) are dropped.
    pub neutral_pt_min: f64,
    /// Seed.
    pub seed: u64,
}

const fn res(stochastic: f64, constant: f64, noise: f64, linear: f64) -> Resolution {
    Resolution { stochastic, constant, noise, linear, scale: 1.0, tails: Tails::NONE }
}

impl JetResponse {
    /// The preset `fast` or `full` (the module table) on collection `collection`.
    pub fn preset(name: &str, collection: &str, seed: u64) -> Result<JetResponse> {
        let t = |fraction, width| Tails { fraction, width };
        let r = match name {
            "fast" => JetResponse {
                collection: collection.into(),
                track: res(0.0, 0.005, 0.0, 5e-5),
                em: res(0.05, 0.005, 0.0, 0.0),
                hadron: res(0.5, 0.05, 0.0, 0.0),
                tracking_efficiency: 0.98,
                em_cell: 0.02,
                hadron_cell: 0.05,
                soft_mean: 0.0,
                soft_pt: 1.0,
                soft_radius: 0.4,
                track_pt_min: 0.3,
                neutral_pt_min: 0.5,
                seed,
            },
            "full" => JetResponse {
                collection: collection.into(),
                track: Resolution { tails: t(0.02, 5.0), ..res(0.0, 0.01, 0.0, 1e-4) },
                em: Resolution { tails: t(0.05, 3.0), ..res(0.10, 0.01, 0.2, 0.0) },
                hadron: Resolution { scale: 0.85, tails: t(0.05, 3.0), ..res(1.0, 0.10, 1.0, 0.0) },
                tracking_efficiency: 0.90,
                em_cell: 0.05,
                hadron_cell: 0.1,
                soft_mean: 5.0,
                soft_pt: 1.0,
                soft_radius: 0.4,
                track_pt_min: 0.5,
                neutral_pt_min: 1.0,
                seed,
            },
            other => {
                return Err(Error::BadOption {
                    func: "jet_response".into(),
                    key: "preset".into(),
                    problem: format!("must be \"fast\" or \"full\", got '{other}'"),
                })
            }
        };
        Ok(r)
    }

    fn check(&self) -> Result<()> {
        let op = "jet_response";
        self.track.check("track")?;
        self.em.check("em")?;
        self.hadron.check("hadron")?;
        check_probability(op, "tracking_efficiency", self.tracking_efficiency)?;
        let nonneg = [
            ("em_cell", self.em_cell),
            ("hadron_cell", self.hadron_cell),
            ("soft_pt", self.soft_pt),
            ("soft_radius", self.soft_radius),
            ("track_pt_min", self.track_pt_min),
            ("neutral_pt_min", self.neutral_pt_min),
        ];
        for (k, v) in nonneg {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::arg(op, format!("{k} must be finite and ≥ 0, got {v}")));
            }
        }
        for (k, v) in [("em_cell", self.em_cell), ("hadron_cell", self.hadron_cell)] {
            if v > PI {
                return Err(Error::arg(op, format!("{k} must be at most π, got {v}")));
            }
        }
        if !(self.soft_mean.is_finite() && (0.0..=MAX_SOFT).contains(&self.soft_mean)) {
            return Err(Error::arg(op, format!("soft_mean must be in [0, {MAX_SOFT}], got {}", self.soft_mean)));
        }
        Ok(())
    }

    /// The detector-level jets (see the module documentation).
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        self.check()?;
        let op = "jet_response";
        let c = ds.collection(op, &self.collection)?;
        let extra: Vec<&str> = c.features().iter().map(String::as_str).filter(|f| !FEATURES.contains(f)).collect();
        if !extra.is_empty() {
            return Err(Error::arg(
                op,
                format!(
                    "collection '{}' has features the response cannot carry: {}; derive them after the response",
                    self.collection,
                    extra.join(", ")
                ),
            ));
        }
        let cols: Vec<&[f32]> = FEATURES.iter().map(|f| c.values(f)).collect::<Result<_>>()?;
        let off = c.offsets();
        let jets: Vec<Vec<Particle>> = (0..c.n_events())
            .into_par_iter()
            .map(|i| {
                let gen: Vec<Particle> = (off[i]..off[i + 1]).map(|k| Particle::read(&cols, k)).collect();
                self.jet(&gen, &mut rng::rng(rng::substream(self.seed, i as u64)))
            })
            .collect();
        let mut offsets = Vec::with_capacity(jets.len() + 1);
        offsets.push(0usize);
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); FEATURES.len()];
        for j in &jets {
            for p in j {
                for (v, x) in values.iter_mut().zip(p.write()) {
                    v.push(x);
                }
            }
            offsets.push(values[0].len());
        }
        let names = FEATURES.iter().map(|s| s.to_string()).collect();
        let mut out = ds.with_collection(Collection::new(&self.collection, offsets, names, values)?)?;
        let sums: Vec<[f64; 5]> = jets.iter().map(|j| jet_vector(j)).collect();
        for (k, name) in ["jet_pt", "jet_eta", "jet_phi", "jet_mass", "n_constituents"].iter().enumerate() {
            if ds.index_of(op, name).is_ok() {
                out = out.with_column(name, sums.iter().map(|s| s[k] as f32).collect())?;
            }
        }
        Ok(out)
    }

    /// One jet's detector-level particles from its generator-level ones.
    fn jet(&self, gen: &[Particle], r: &mut Rng) -> Vec<Particle> {
        let mut out = Vec::with_capacity(gen.len());
        let mut deposits: Vec<(bool, Particle)> = Vec::new(); // (em?, particle)
        for p in gen {
            if p.charge != 0.0 {
                if r.random::<f64>() >= self.tracking_efficiency {
                    continue;
                }
                let res = if p.pid.abs() == 11.0 { &self.em } else { &self.track };
                let f = res.factor(p.e, r);
                if f > 0.0 && p.pt * f >= self.track_pt_min {
                    out.push(Particle { pt: p.pt * f, e: p.e * f, ..*p });
                }
            } else {
                deposits.push((p.pid == 22.0, *p));
            }
        }
        let k = poisson(r, self.soft_mean, 10 * MAX_SOFT as usize);
        if k > 0 {
            let [_, eta0, phi0, _, _] = jet_vector(gen);
            for _ in 0..k {
                let rad = self.soft_radius * r.random::<f64>().sqrt();
                let ang = r.random_range(-PI..PI);
                let pt = -self.soft_pt * (1.0 - r.random::<f64>()).ln();
                let eta = eta0 + rad * ang.cos();
                let phi = wrap(phi0 + rad * ang.sin());
                let em = r.random_bool(0.5);
                let pid = if em { 22.0 } else { 130.0 };
                deposits.push((em, Particle { pt, eta, phi, e: pt * eta.cosh(), charge: 0.0, pid }));
            }
        }
        for (em, cell) in self.cells(deposits) {
            let res = if em { &self.em } else { &self.hadron };
            let f = res.factor(cell.e, r);
            if f > 0.0 && cell.pt * f >= self.neutral_pt_min {
                out.push(Particle { pt: cell.pt * f, e: cell.e * f, ..cell });
            }
        }
        out.sort_by(|a, b| b.pt.total_cmp(&a.pt));
        out
    }

    /// Deposits merged into cells per calorimeter (a cell size of 0 keeps them apart), in a
    /// fixed order.
    fn cells(&self, deposits: Vec<(bool, Particle)>) -> Vec<(bool, Particle)> {
        let mut merged: BTreeMap<(bool, i64, i64), f64> = BTreeMap::new();
        let mut out = Vec::new();
        for (em, p) in deposits {
            let size = if em { self.em_cell } else { self.hadron_cell };
            if size == 0.0 {
                out.push((em, p));
                continue;
            }
            let n_phi = (2.0 * PI / size).round().max(1.0);
            let ieta = (p.eta / size).floor() as i64;
            let iphi = (((p.phi + PI) / (2.0 * PI) * n_phi).floor()).rem_euclid(n_phi) as i64;
            *merged.entry((em, ieta, iphi)).or_insert(0.0) += p.e;
        }
        for ((em, ieta, iphi), e) in merged {
            let size = if em { self.em_cell } else { self.hadron_cell };
            let n_phi = (2.0 * PI / size).round().max(1.0);
            let eta = (ieta as f64 + 0.5) * size;
            let phi = -PI + (iphi as f64 + 0.5) * 2.0 * PI / n_phi;
            let pid = if em { 22.0 } else { 130.0 };
            out.push((em, Particle { pt: e / eta.cosh(), eta, phi, e, charge: 0.0, pid }));
        }
        out
    }
}

/// One constituent, in f64.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Particle {
    pt: f64,
    eta: f64,
    phi: f64,
    e: f64,
    charge: f64,
    pid: f64,
}

impl Particle {
    fn read(cols: &[&[f32]], k: usize) -> Particle {
        let v = |j: usize| f64::from(cols[j][k]);
        Particle { pt: v(0), eta: v(1), phi: v(2), e: v(3), charge: v(4), pid: v(5) }
    }

    fn write(&self) -> [f32; 6] {
        [self.pt, self.eta, self.phi, self.e, self.charge, self.pid].map(|v| v as f32)
    }
}

/// The summed four-vector of `ps` as `[pt, eta, phi, mass, count]` (η and φ 0 for a jet
/// without transverse momentum).
fn jet_vector(ps: &[Particle]) -> [f64; 5] {
    let (mut px, mut py, mut pz, mut e) = (0.0, 0.0, 0.0, 0.0);
    for p in ps {
        px += p.pt * p.phi.cos();
        py += p.pt * p.phi.sin();
        pz += p.pt * p.eta.sinh();
        e += p.e;
    }
    let pt = px.hypot(py);
    let (eta, phi) = if pt > 0.0 { ((pz / pt).asinh(), py.atan2(px)) } else { (0.0, 0.0) };
    let m = (e * e - pt * pt - pz * pz).max(0.0).sqrt();
    [pt, eta, phi, m, ps.len() as f64]
}

fn wrap(phi: f64) -> f64 {
    (phi + PI).rem_euclid(2.0 * PI) - PI
}

#[cfg(test)]
#[path = "jets_tests.rs"]
mod tests;
