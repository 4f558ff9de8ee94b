//! A toy collider sample: a narrow resonance decaying to two objects (signal, label 1) over a
//! falling continuum of object pairs (background, label 0), after detector smearing and an
//! acceptance selection.
//!
//! # Physics
//!
//! * **Signal**: a resonance of mass `mass` (default 125 GeV) is produced with transverse
//!   momentum pT ~ Gamma(2, 15 GeV), rapidity y ~ N(0, 1.0), φ uniform, and decays
//!   isotropically in its rest frame to two massless objects (think H → γγ). In 15 % of
//!   events one object loses a fraction f = min(Exp(mean 0.08), 0.5) of its momentum
//!   (final-state radiation / leakage), giving the mass peak its low tail.
//! * **Background**: the pair mass follows a falling exponential, m ~ Exp(scale 0.25·mass)
//!   truncated to [0.8·mass, 1.6·mass]; the pair has pT ~ Gamma(2, 10 GeV), y ~ N(0, 1.4) and
//!   a decay angle with density ∝ 1 + 2cos²θ* (more forward, as t-channel QCD production).
//!   In 10 % of background events a neutrino (heavy-flavour decay) adds real missing
//!   momentum, |p| ~ Exp(mean 25 GeV).
//! * **Detector**: object pT is smeared by a relative Gaussian resolution √2·width/mass, so
//!   the reconstructed m12 peak has a resolution ≈ `width` (m ∝ √(pT1·pT2)); η and φ by
//!   0.002 absolute. Missing momentum is minus the vector sum of the object mismeasurements
//!   plus a soft term N(0, (0.6·√HT)²) per transverse component, HT in GeV.
//! * **Jets**: njets ~ Poisson(λ) recoil jets with λ = 0.5 + pT/40 GeV (signal) or
//!   0.8 + pT/30 GeV (background), each with pT = 30 GeV + Exp(mean 25 GeV), capped at 15.
//! * **Selection**: pT1 > 0.28·mass, pT2 > 0.2·mass (35 and 25 GeV at 125), |η| < 2.5;
//!   rejected events are regenerated, so exactly `n` events come out.
//!
//! Derived features are computed from the smeared 4-vectors of massless objects:
//! m12² = 2·pT1·pT2·(cosh Δη − cos Δφ), ΔR = √(Δη² + Δφ²) with Δφ wrapped to [−π, π).
//! The classes overlap through the background under the peak and the signal's tail: the
//! m12-only score −|m12 − mass| reaches an ROC AUC of about 0.92 and a naive-Bayes
//! combination of all features about 0.93 (measured on 200k events).
//!
//! # Features and default uncertainties
//!
//! σ(x) = √(absolute² + (relative·|x|)²); frozen features are never perturbed.
//!
//! | feature | unit | meaning | absolute | relative | frozen |
//! | --- | --- | --- | --- | --- | --- |
//! | `pt1`, `pt2` | GeV | transverse momenta, pt1 ≥ pt2 | 0 | 2 % | no |
//! | `eta1`, `eta2` | – | pseudorapidities | 0.01 | 0 | no |
//! | `phi1`, `phi2` | rad | azimuths in [−π, π) | 0.01 | 0 | no |
//! | `m12` | GeV | invariant mass of the pair | 0 | 2 % | no |
//! | `dr12` | – | ΔR between the objects | 0.014 | 0 | no |
//! | `met` | GeV | missing transverse momentum | 2 | 5 % | no |
//! | `njets` | – | number of extra jets (integer) | 0 | 0 | yes |
//! | `ht` | GeV | pt1 + pt2 + Σ jet pT | 0 | 3 % | no |

use std::f64::consts::PI;

use rand::Rng as _;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::{self, Rng};

/// Feature names of the collider sample, in column order.
pub const COLLIDER_FEATURES: [&str; 11] =
    ["pt1", "eta1", "phi1", "pt2", "eta2", "phi2", "m12", "dr12", "met", "njets", "ht"];

/// Events per independently seeded chunk. Changing it changes the generated numbers.
const CHUNK: usize = 4096;
/// Rejection-sampling attempts per event before giving up (acceptance is ~50 %).
const MAX_TRIES: usize = 10_000;

/// Parameters of the toy collider sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ColliderConfig {
    /// Number of events.
    pub n: usize,
    /// Random seed.
    pub seed: u64,
    /// Probability that an event is signal (default 0.5).
    pub signal_fraction: f64,
    /// Resonance mass in GeV (default 125).
    pub mass: f64,
    /// Mass resolution in GeV (default 2.5).
    pub width: f64,
}

impl Default for ColliderConfig {
    /// n = 10 000, seed 0, signal fraction 0.5, mass 125 GeV, width 2.5 GeV.
    fn default() -> Self {
        ColliderConfig { n: 10_000, seed: 0, signal_fraction: 0.5, mass: 125.0, width: 2.5 }
    }
}

impl ColliderConfig {
    /// The default sample with `n` events and `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        ColliderConfig { n, seed, ..Default::default() }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::arg("collider", what));
        if !(0.0..=1.0).contains(&self.signal_fraction) {
            return bad(format!("signal_fraction must be in [0, 1], got {}", self.signal_fraction));
        }
        if !(self.mass.is_finite() && self.mass >= 1.0) {
            return bad(format!("mass must be a finite number ≥ 1 GeV, got {}", self.mass));
        }
        if !(self.width > 0.0 && self.width <= 0.2 * self.mass) {
            return bad(format!("width must be in (0, 0.2·mass] = (0, {}] GeV, got {}", 0.2 * self.mass, self.width));
        }
        Ok(())
    }
}

/// The default experimental uncertainty of one feature: σ(x) = √(absolute² + (relative·x)²).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureUncertainty {
    /// Feature name.
    pub name: String,
    /// Absolute uncertainty, in the feature's unit.
    pub absolute: f64,
    /// Relative uncertainty (0.02 = 2 %).
    pub relative: f64,
    /// True when the feature must not be perturbed (e.g. integer multiplicities).
    pub frozen: bool,
}

impl FeatureUncertainty {
    /// σ at value `x`: 0 when frozen, else absolute and relative parts in quadrature.
    pub fn sigma(&self, x: f64) -> f64 {
        if self.frozen {
            0.0
        } else {
            self.absolute.hypot(self.relative * x.abs())
        }
    }
}

/// The documented default uncertainties of the collider features (see the module table).
///
/// ```
/// let u = nuisance::data::synthetic::collider_uncertainties();
/// let pt1 = u.iter().find(|f| f.name == "pt1").unwrap();
/// assert!((pt1.sigma(50.0) - 1.0).abs() < 1e-12); // 2 % of 50 GeV
/// ```
pub fn collider_uncertainties() -> Vec<FeatureUncertainty> {
    let u = |name: &str, absolute: f64, relative: f64, frozen: bool| FeatureUncertainty {
        name: name.to_string(),
        absolute,
        relative,
        frozen,
    };
    vec![
        u("pt1", 0.0, 0.02, false),
        u("eta1", 0.01, 0.0, false),
        u("phi1", 0.01, 0.0, false),
        u("pt2", 0.0, 0.02, false),
        u("eta2", 0.01, 0.0, false),
        u("phi2", 0.01, 0.0, false),
        u("m12", 0.0, 0.02, false),
        u("dr12", 0.014, 0.0, false),
        u("met", 2.0, 0.05, false),
        u("njets", 0.0, 0.0, true),
        u("ht", 0.0, 0.03, false),
    ]
}

/// Generates the toy collider sample (features in [`COLLIDER_FEATURES`] order, label 1 =
/// signal). Deterministic in `cfg.seed` whatever the number of threads.
///
/// ```
/// use nuisance::data::synthetic::{collider, ColliderConfig};
/// let ds = collider(&ColliderConfig::new(500, 1)).unwrap();
/// assert_eq!(ds.names()[6], "m12");
/// ```
pub fn collider(cfg: &ColliderConfig) -> Result<Dataset> {
    cfg.check()?;
    let gen = Gen::new(cfg);
    let chunks: Vec<(Vec<f32>, Vec<i64>)> = (0..cfg.n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|k| {
            let rows = CHUNK.min(cfg.n - k * CHUNK);
            let mut r = rng::rng(rng::substream(cfg.seed, k as u64));
            let (mut x, mut l) = (Vec::with_capacity(rows * COLLIDER_FEATURES.len()), Vec::with_capacity(rows));
            for _ in 0..rows {
                let signal = r.random_bool(cfg.signal_fraction);
                x.extend_from_slice(&gen.event(&mut r, signal)?);
                l.push(i64::from(signal));
            }
            Ok((x, l))
        })
        .collect::<Result<_>>()?;
    let (mut x, mut label) = (Vec::new(), Vec::new());
    for (cx, cl) in chunks {
        x.extend(cx);
        label.extend(cl);
    }
    let x = ndarray::Array2::from_shape_vec((cfg.n, COLLIDER_FEATURES.len()), x)
        .map_err(|e| Error::arg("collider", e.to_string()))?;
    let names = COLLIDER_FEATURES.iter().map(|s| s.to_string()).collect();
    Dataset::new(names, x, Some(label), None)
}

/// A massless object in the lab: (pT, η, φ).
#[derive(Clone, Copy)]
struct Obj {
    pt: f64,
    eta: f64,
    phi: f64,
}

/// Constants derived from the configuration.
struct Gen {
    mass: f64,
    sigma_rel: f64,
    pt1_min: f64,
    pt2_min: f64,
    bkg_lo: f64,
    bkg_hi: f64,
    bkg_scale: f64,
}

fn wrap_phi(phi: f64) -> f64 {
    (phi + PI).rem_euclid(2.0 * PI) - PI
}

fn normal(r: &mut Rng) -> f64 {
    r.sample(StandardNormal)
}

/// Exponential with the given mean, by inversion.
fn expo(r: &mut Rng, mean: f64) -> f64 {
    -mean * (1.0 - r.random::<f64>()).ln()
}

/// Poisson(λ) by Knuth's product of uniforms (λ here is at most ~10), capped at `cap`.
fn poisson(r: &mut Rng, lambda: f64, cap: u32) -> u32 {
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0, r.random::<f64>());
    while p > limit && k < cap {
        k += 1;
        p *= r.random::<f64>();
    }
    k
}

impl Gen {
    fn new(cfg: &ColliderConfig) -> Self {
        Gen {
            mass: cfg.mass,
            sigma_rel: std::f64::consts::SQRT_2 * cfg.width / cfg.mass,
            pt1_min: 0.28 * cfg.mass,
            pt2_min: 0.2 * cfg.mass,
            bkg_lo: 0.8 * cfg.mass,
            bkg_hi: 1.6 * cfg.mass,
            bkg_scale: 0.25 * cfg.mass,
        }
    }

    /// One accepted event's features, regenerating rejected candidates.
    fn event(&self, r: &mut Rng, signal: bool) -> Result<[f32; 11]> {
        for _ in 0..MAX_TRIES {
            if let Some(e) = self.candidate(r, signal) {
                return Ok(e);
            }
        }
        Err(Error::arg(
            "collider",
            format!("no event passed the selection in {MAX_TRIES} attempts (mass {} GeV)", self.mass),
        ))
    }

    /// One candidate event, or `None` when it fails the selection.
    fn candidate(&self, r: &mut Rng, signal: bool) -> Option<[f32; 11]> {
        // Pair mass and production kinematics.
        let m = if signal {
            self.mass
        } else {
            let span = 1.0 - (-(self.bkg_hi - self.bkg_lo) / self.bkg_scale).exp();
            self.bkg_lo - self.bkg_scale * (1.0 - r.random::<f64>() * span).ln()
        };
        let pt_scale = if signal { 15.0 } else { 10.0 };
        let pt_sys = expo(r, pt_scale) + expo(r, pt_scale); // Gamma(2, scale)
        let y_sys = normal(r) * if signal { 1.0 } else { 1.4 };
        let phi_sys = r.random_range(-PI..PI);
        // Decay angle in the rest frame: isotropic, or ∝ 1 + 2cos²θ by rejection.
        let cos_t = loop {
            let c: f64 = r.random_range(-1.0..1.0);
            if signal || 3.0 * r.random::<f64>() < 1.0 + 2.0 * c * c {
                break c;
            }
        };
        let phi_star = r.random_range(-PI..PI);
        let (a, b) = decay(m, pt_sys, y_sys, phi_sys, cos_t, phi_star);
        let (mut a, mut b) = (to_obj(a)?, to_obj(b)?);
        if signal && r.random_bool(0.15) {
            let f = expo(r, 0.08).min(0.5);
            if r.random_bool(0.5) {
                a.pt *= 1.0 - f;
            } else {
                b.pt *= 1.0 - f;
            }
        }
        // Detector smearing; the mismeasurement feeds the missing momentum.
        let (mut mex, mut mey) = (0.0, 0.0);
        for o in [&mut a, &mut b] {
            let true_pt = o.pt;
            o.pt *= (1.0 + self.sigma_rel * normal(r)).max(0.01);
            o.eta += 0.002 * normal(r);
            o.phi = wrap_phi(o.phi + 0.002 * normal(r));
            mex -= (o.pt - true_pt) * o.phi.cos();
            mey -= (o.pt - true_pt) * o.phi.sin();
        }
        let (lead, sub) = if a.pt >= b.pt { (a, b) } else { (b, a) };
        if lead.pt < self.pt1_min || sub.pt < self.pt2_min || lead.eta.abs() > 2.5 || sub.eta.abs() > 2.5 {
            return None;
        }
        // Recoil jets, HT and the soft term of the missing momentum.
        let lambda = if signal { 0.5 + pt_sys / 40.0 } else { 0.8 + pt_sys / 30.0 };
        let njets = poisson(r, lambda, 15);
        let jets_ht: f64 = (0..njets).map(|_| 30.0 + expo(r, 25.0)).sum();
        let ht = lead.pt + sub.pt + jets_ht;
        let soft = 0.6 * ht.sqrt();
        mex += soft * normal(r);
        mey += soft * normal(r);
        if !signal && r.random_bool(0.1) {
            let (p, phi) = (expo(r, 25.0), r.random_range(-PI..PI));
            mex += p * phi.cos();
            mey += p * phi.sin();
        }
        let deta = lead.eta - sub.eta;
        let dphi = wrap_phi(lead.phi - sub.phi);
        let m12 = (2.0 * lead.pt * sub.pt * (deta.cosh() - dphi.cos())).max(0.0).sqrt();
        let dr12 = deta.hypot(dphi);
        let met = mex.hypot(mey);
        Some(
            [lead.pt, lead.eta, lead.phi, sub.pt, sub.eta, sub.phi, m12, dr12, met, f64::from(njets), ht]
                .map(|v| v as f32),
        )
    }
}

/// The two massless daughters (E, px, py, pz) of a system of mass `m`, transverse momentum
/// `pt`, rapidity `y` and azimuth `phi`, decaying at polar angle acos(`cos_t`) and azimuth
/// `phi_star` in its rest frame.
fn decay(m: f64, pt: f64, y: f64, phi: f64, cos_t: f64, phi_star: f64) -> ([f64; 4], [f64; 4]) {
    let mt = m.hypot(pt);
    let p_sys = [mt * y.cosh(), pt * phi.cos(), pt * phi.sin(), mt * y.sinh()];
    let half = m / 2.0;
    let sin_t = (1.0 - cos_t * cos_t).max(0.0).sqrt();
    let d = [half * sin_t * phi_star.cos(), half * sin_t * phi_star.sin(), half * cos_t];
    let boost = |s: f64| {
        let p = [s * d[0], s * d[1], s * d[2]];
        boost_to(p_sys, m, half, p)
    };
    (boost(1.0), boost(-1.0))
}

/// Boosts a rest-frame 4-vector (e, p) into the frame where the parent (mass `m`) has
/// 4-momentum `parent`: p' = p + [γ²/(γ+1)·(β·p) + γe]·β, e' = γ(e + β·p).
fn boost_to(parent: [f64; 4], m: f64, e: f64, p: [f64; 3]) -> [f64; 4] {
    let gamma = parent[0] / m;
    let beta = [parent[1] / parent[0], parent[2] / parent[0], parent[3] / parent[0]];
    let bp = beta[0] * p[0] + beta[1] * p[1] + beta[2] * p[2];
    let k = gamma * gamma / (gamma + 1.0) * bp + gamma * e;
    [gamma * (e + bp), p[0] + k * beta[0], p[1] + k * beta[1], p[2] + k * beta[2]]
}

/// (pT, η, φ) of a massless 4-vector; `None` for a vector along the beam.
fn to_obj(v: [f64; 4]) -> Option<Obj> {
    let pt = v[1].hypot(v[2]);
    (pt > 1e-9).then(|| Obj { pt, eta: (v[3] / pt).asinh(), phi: v[2].atan2(v[1]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, seed: u64) -> Dataset {
        collider(&ColliderConfig::new(n, seed)).unwrap()
    }

    fn col(ds: &Dataset, name: &str) -> Vec<f64> {
        ds.column(name).unwrap().iter().map(|&v| f64::from(v)).collect()
    }

    #[test]
    fn deterministic_in_the_seed() {
        let (a, b, c) = (sample(5000, 1), sample(5000, 1), sample(5000, 2));
        assert_eq!(a.x(), b.x());
        assert_eq!(a.label(), b.label());
        assert_ne!(a.x(), c.x());
        // Independent of the thread count: 2 chunks of 4096 events on one thread vs the pool.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let one = pool.install(|| sample(5000, 1));
        assert_eq!(one.x(), a.x());
    }

    #[test]
    fn kinematics_are_physical() {
        let ds = sample(20_000, 4);
        let (pt1, pt2) = (col(&ds, "pt1"), col(&ds, "pt2"));
        assert!(pt1.iter().zip(&pt2).all(|(a, b)| a >= b), "pt ordering");
        // Selection: pt1 > 0.28·125 = 35, pt2 > 0.2·125 = 25, |η| < 2.5.
        assert!(pt2.iter().all(|&p| p > 25.0) && pt1.iter().all(|&p| p > 35.0));
        for c in ["eta1", "eta2"] {
            assert!(col(&ds, c).iter().all(|e| e.abs() < 2.5));
        }
        for c in ["phi1", "phi2"] {
            assert!(col(&ds, c).iter().all(|p| p.abs() <= PI));
        }
        assert!(col(&ds, "dr12").iter().all(|&r| r >= 0.0));
        assert!(col(&ds, "met").iter().all(|&m| m >= 0.0));
        assert!(col(&ds, "njets").iter().all(|&n| n.fract() == 0.0 && (0.0..=15.0).contains(&n)));
        // HT ≥ pt1 + pt2 (jets only add); f32 rounding allowed.
        let ht = col(&ds, "ht");
        assert!(ht.iter().zip(pt1.iter().zip(&pt2)).all(|(h, (a, b))| *h >= (a + b) * (1.0 - 1e-6)));
    }

    #[test]
    fn m12_and_dr12_follow_from_the_stored_objects() {
        // Recompute m² = 2 pT1 pT2 (cosh Δη − cos Δφ) and ΔR from the stored columns (f32 inputs).
        let ds = sample(2000, 8);
        let c = |n| col(&ds, n);
        let (pt1, eta1, phi1, pt2, eta2, phi2) = (c("pt1"), c("eta1"), c("phi1"), c("pt2"), c("eta2"), c("phi2"));
        for (i, (m, dr)) in c("m12").iter().zip(c("dr12")).enumerate() {
            let deta = eta1[i] - eta2[i];
            let dphi = wrap_phi(phi1[i] - phi2[i]);
            let m2 = 2.0 * pt1[i] * pt2[i] * (deta.cosh() - dphi.cos());
            assert!((m2.sqrt() - m).abs() < 1e-3 * m, "row {i}: m12 {m} vs {}", m2.sqrt());
            assert!((deta.hypot(dphi) - dr).abs() < 1e-4, "row {i}: dr12");
        }
    }

    #[test]
    fn signal_peaks_at_the_mass_and_background_falls() {
        let ds = sample(20_000, 5);
        let l = ds.label().unwrap();
        let m = col(&ds, "m12");
        let mut sig: Vec<f64> = (0..m.len()).filter(|&i| l[i] == 1).map(|i| m[i]).collect();
        sig.sort_by(f64::total_cmp);
        let med = crate::data::stats::quantile_sorted(&sig, 0.5);
        // The median of the smeared peak (tail on the low side) lies within one width of 125.
        assert!((med - 125.0).abs() < 2.5, "signal median m12 {med}");
        // Background: more events in [100, 120) than in [130, 150) (falling spectrum).
        let bkg = |lo: f64, hi: f64| (0..m.len()).filter(|&i| l[i] == 0 && m[i] >= lo && m[i] < hi).count();
        assert!(bkg(100.0, 120.0) > bkg(130.0, 150.0));
        // Signal fraction 0.5: 4σ of a binomial fraction at n = 2e4 is 4·0.0035 = 0.014.
        let frac = sig.len() as f64 / m.len() as f64;
        assert!((frac - 0.5).abs() < 0.014, "signal fraction {frac}");
    }

    #[test]
    fn classes_overlap_but_separate() {
        let ds = sample(20_000, 6);
        let score: Vec<f32> = ds.column("m12").unwrap().iter().map(|&m| -(m - 125.0).abs()).collect();
        let auc = crate::metrics::roc_auc(&score, ds.label().unwrap(), None).unwrap();
        assert!(auc > 0.7 && auc < 0.99, "m12-closeness AUC {auc}");
    }

    #[test]
    fn uncertainties_cover_every_feature() {
        let u = collider_uncertainties();
        let names: Vec<&str> = u.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, COLLIDER_FEATURES);
        let nj = &u[9];
        assert!(nj.frozen && nj.sigma(3.0) == 0.0);
        // met: √(2² + (0.05·40)²) = √8
        assert!((u[8].sigma(40.0) - 8f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn config_is_checked() {
        let bad = |c: ColliderConfig| collider(&c).unwrap_err().to_string();
        assert!(bad(ColliderConfig { signal_fraction: 1.5, ..Default::default() }).contains("signal_fraction"));
        assert!(bad(ColliderConfig { width: 0.0, ..Default::default() }).contains("width"));
        assert!(bad(ColliderConfig { mass: f64::NAN, ..Default::default() }).contains("mass"));
        let other = collider(&ColliderConfig { n: 3000, mass: 500.0, width: 10.0, ..Default::default() }).unwrap();
        assert_eq!(other.len(), 3000);
    }

    #[test]
    fn boost_preserves_mass() {
        // Two daughters of a boosted 91 GeV system: their summed 4-vector has mass 91.
        let (a, b) = decay(91.0, 40.0, 1.2, 0.3, 0.6, -2.0);
        let s: Vec<f64> = (0..4).map(|k| a[k] + b[k]).collect();
        let m2 = s[0] * s[0] - s[1] * s[1] - s[2] * s[2] - s[3] * s[3];
        assert!((m2.sqrt() - 91.0).abs() < 1e-9);
        // Each daughter is massless.
        assert!((a[0] * a[0] - a[1] * a[1] - a[2] * a[2] - a[3] * a[3]).abs() < 1e-8);
    }
}
