//! Weight-space perturbations ε(w, g): the rules of SAM, ASAM, AWP and RWP
//! (`shared/guide/methods.md` §5), used to attack a trained model (`landscape::weight_attack`)
//! and to train flatter minima (`TrainConfig::weight_attack`: the gradient is taken at w + ε,
//! then ε is removed before the optimizer step).
//!
//! `w` and `g` are flat parameter vectors and `layers` the parameter ranges of each layer
//! (weight and bias together), in any consistent order.

use std::ops::Range;

use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// A weight-perturbation rule.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightPerturbation {
    /// SAM: ε = ρ·g/‖g‖₂ (Foret et al. 2021; ρ = 0.05).
    Sam {
        /// Radius of the ball.
        rho: f64,
    },
    /// ASAM: ε = ρ·T²g/‖Tg‖₂ with T = diag(|w| + η) (Kwon et al. 2021; ρ ≈ 2, η = 0.01).
    Asam {
        /// Radius of the ball in the rescaled coordinates.
        rho: f64,
        /// Offset keeping T invertible where w = 0.
        eta: f64,
    },
    /// AWP: per layer ε_l = γ·‖w_l‖·g_l/‖g_l‖ (one normalised ascent step, Wu et al. 2020).
    Awp {
        /// Size relative to each layer's norm.
        gamma: f64,
    },
    /// RWP: per layer ε_l ~ N(0, σ_l²) with σ_l = γ·‖w_l‖/√n_l, so E‖ε_l‖² = γ²‖w_l‖².
    Rwp {
        /// Size relative to each layer's norm.
        gamma: f64,
    },
}

impl WeightPerturbation {
    /// Every method name.
    pub const NAMES: [&'static str; 4] = ["sam", "asam", "awp", "rwp"];

    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            WeightPerturbation::Sam { .. } => "sam",
            WeightPerturbation::Asam { .. } => "asam",
            WeightPerturbation::Awp { .. } => "awp",
            WeightPerturbation::Rwp { .. } => "rwp",
        }
    }

    /// Errors unless the sizes are finite and ≥ 0 (η > 0 is not required).
    pub fn check(&self, func: &str) -> Result<()> {
        let (key, v) = match *self {
            WeightPerturbation::Sam { rho } => ("rho", rho),
            WeightPerturbation::Asam { rho, eta } => {
                if !(eta.is_finite() && eta >= 0.0) {
                    return Err(Error::BadOption {
                        func: func.into(),
                        key: "eta".into(),
                        problem: format!("must be ≥ 0, got {eta}"),
                    });
                }
                ("rho", rho)
            }
            WeightPerturbation::Awp { gamma } | WeightPerturbation::Rwp { gamma } => ("gamma", gamma),
        };
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::BadOption {
                func: func.into(),
                key: key.into(),
                problem: format!("must be ≥ 0, got {v}"),
            });
        }
        Ok(())
    }

    /// Whether ε depends on the gradient (all but RWP).
    pub fn needs_gradient(&self) -> bool {
        !matches!(self, WeightPerturbation::Rwp { .. })
    }

    /// The perturbation ε for weights `w` with loss gradient `g` (ignored by RWP, which draws
    /// from `rng`). A zero gradient gives ε = 0.
    pub fn epsilon(&self, w: &[f32], g: &[f32], layers: &[Range<usize>], rng: &mut Rng) -> Vec<f32> {
        let mut eps = vec![0.0f32; w.len()];
        match *self {
            WeightPerturbation::Sam { rho } => {
                let gn = norm(g);
                if gn > 0.0 {
                    let c = (rho / gn) as f32;
                    eps.iter_mut().zip(g).for_each(|(e, gi)| *e = c * gi);
                }
            }
            WeightPerturbation::Asam { rho, eta } => {
                let t: Vec<f64> = w.iter().map(|&x| f64::from(x).abs() + eta).collect();
                let tg = t.iter().zip(g).map(|(ti, gi)| (ti * f64::from(*gi)).powi(2)).sum::<f64>().sqrt();
                if tg > 0.0 {
                    for ((e, ti), gi) in eps.iter_mut().zip(&t).zip(g) {
                        *e = (rho * ti * ti * f64::from(*gi) / tg) as f32;
                    }
                }
            }
            WeightPerturbation::Awp { gamma } => {
                for r in layers {
                    let (wn, gn) = (norm(&w[r.clone()]), norm(&g[r.clone()]));
                    if gn > 0.0 {
                        let c = (gamma * wn / gn) as f32;
                        eps[r.clone()].iter_mut().zip(&g[r.clone()]).for_each(|(e, gi)| *e = c * gi);
                    }
                }
            }
            WeightPerturbation::Rwp { gamma } => {
                for r in layers {
                    let sigma = gamma * norm(&w[r.clone()]) / (r.len().max(1) as f64).sqrt();
                    for e in &mut eps[r.clone()] {
                        let z: f64 = StandardNormal.sample(rng);
                        *e = (sigma * z) as f32;
                    }
                }
            }
        }
        eps
    }
}

/// ‖x‖₂ accumulated in f64.
pub(crate) fn norm(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The hand-computed case: two "layers" of two parameters each,
    //   w = (3, −4 | 0, 1),  g = (1, 2 | 2, 0).
    // ‖g‖ = √(1 + 4 + 4) = 3.
    const W: [f32; 4] = [3.0, -4.0, 0.0, 1.0];
    const G: [f32; 4] = [1.0, 2.0, 2.0, 0.0];

    fn layers() -> Vec<Range<usize>> {
        vec![0..2, 2..4]
    }

    fn eps(p: &WeightPerturbation) -> Vec<f32> {
        p.epsilon(&W, &G, &layers(), &mut crate::rng::rng(1))
    }

    fn close(a: &[f32], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((f64::from(*x) - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn sam_is_rho_times_the_unit_gradient() {
        // ε = 0.3·g/3 = 0.1·g = (0.1, 0.2, 0.2, 0).
        close(&eps(&WeightPerturbation::Sam { rho: 0.3 }), &[0.1, 0.2, 0.2, 0.0]);
    }

    #[test]
    fn asam_scales_by_the_weight_magnitudes() {
        // η = 0: T = (3, 4, 0, 1); Tg = (3, 8, 0, 0), ‖Tg‖ = √73;
        // ε = ρ·T²g/‖Tg‖ = 2·(9, 32, 0, 0)/√73.
        let s = 2.0 / 73f64.sqrt();
        close(&eps(&WeightPerturbation::Asam { rho: 2.0, eta: 0.0 }), &[9.0 * s, 32.0 * s, 0.0, 0.0]);
        // η = 1: T = (4, 5, 1, 2); Tg = (4, 10, 2, 0), ‖Tg‖ = √120;
        // ε = 2·(16·1, 25·2, 1·2, 0)/√120 = 2·(16, 50, 2, 0)/√120.
        let s = 2.0 / 120f64.sqrt();
        close(&eps(&WeightPerturbation::Asam { rho: 2.0, eta: 1.0 }), &[16.0 * s, 50.0 * s, 2.0 * s, 0.0]);
    }

    #[test]
    fn awp_is_relative_to_each_layer() {
        // Layer 1: ‖w₁‖ = 5, g₁ = (1, 2), ‖g₁‖ = √5: ε₁ = 0.1·5·(1, 2)/√5 = (√5/10)·(1, 2).
        // Layer 2: ‖w₂‖ = 1, g₂ = (2, 0), ‖g₂‖ = 2: ε₂ = 0.1·1·(2, 0)/2 = (0.1, 0).
        let a = 5f64.sqrt() / 10.0;
        close(&eps(&WeightPerturbation::Awp { gamma: 0.1 }), &[a, 2.0 * a, 0.1, 0.0]);
    }

    #[test]
    fn rwp_has_the_requested_relative_size_on_average() {
        // E‖ε_l‖² = γ²‖w_l‖²: with one layer of 10⁵ unit weights (‖w‖² = 10⁵) and γ = 0.1,
        // ‖ε‖² averages 10³ with relative spread √(2/n) ≈ 0.45 %.
        let w = vec![1.0f32; 100_000];
        let all = [Range { start: 0, end: 100_000 }];
        let e = WeightPerturbation::Rwp { gamma: 0.1 }.epsilon(&w, &[], &all, &mut crate::rng::rng(3));
        let n2 = norm(&e).powi(2);
        assert!((n2 / 1000.0 - 1.0).abs() < 0.03, "{n2}");
    }

    #[test]
    fn zero_gradient_gives_zero_perturbation_and_bad_sizes_are_errors() {
        let z = [0.0f32; 4];
        for p in [
            WeightPerturbation::Sam { rho: 1.0 },
            WeightPerturbation::Asam { rho: 1.0, eta: 0.0 },
            WeightPerturbation::Awp { gamma: 1.0 },
        ] {
            assert!(p.epsilon(&W, &z, &layers(), &mut crate::rng::rng(1)).iter().all(|&e| e == 0.0));
        }
        let e = WeightPerturbation::Sam { rho: -1.0 }.check("train").unwrap_err();
        assert_eq!(e.to_string(), "train: option 'rho' must be ≥ 0, got -1");
    }
}
