//! The draws every response shares: the double-Gaussian smearing factor, Poisson and
//! binomial counts.

use rand::Rng as _;
use rand_distr::StandardNormal;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Non-Gaussian tails: with probability `fraction` a measurement's Gaussian spread is `width`
/// times its resolution (a double Gaussian; the total variance is (1 − f + f·w²)·σ²).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tails {
    /// Probability f of the wide component, in [0, 1].
    pub fraction: f64,
    /// Width w of the wide component, in units of the resolution (≥ 1).
    pub width: f64,
}

impl Tails {
    /// No tails.
    pub const NONE: Tails = Tails { fraction: 0.0, width: 1.0 };

    /// Errors (naming `what` for function `op`) unless f ∈ [0, 1] and w ≥ 1 is finite.
    pub fn check(&self, op: &str, what: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(Error::arg(op, format!("{what}: tail fraction must be in [0, 1], got {}", self.fraction)));
        }
        if !(self.width.is_finite() && self.width >= 1.0) {
            return Err(Error::arg(op, format!("{what}: tail width must be a finite number ≥ 1, got {}", self.width)));
        }
        Ok(())
    }

    /// One standardised draw z: N(0, 1), or N(0, w²) with probability f. Always takes one
    /// uniform and one normal number from `r` (so the stream does not depend on f).
    pub fn draw(&self, r: &mut Rng) -> f64 {
        let u: f64 = r.random();
        let z: f64 = r.sample(StandardNormal);
        if u < self.fraction {
            z * self.width
        } else {
            z
        }
    }
}

/// Poisson(λ) by multiplication of uniforms (λ ≤ 30 here), capped at `cap`.
pub fn poisson(r: &mut Rng, lambda: f64, cap: usize) -> usize {
    if lambda <= 0.0 {
        return 0;
    }
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p: f64 = r.random();
    while p > limit && k < cap {
        k += 1;
        p *= r.random::<f64>();
    }
    k
}

/// Errors unless `v` (option `what` of `op`) is a probability.
pub fn check_probability(op: &str, what: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::arg(op, format!("{what} must be in [0, 1], got {v}")))
    }
}
