//! Differentiable one-dimensional distances between a weighted batch of values and a target,
//! each with its gradient with respect to every value (f64; checked against finite
//! differences in the tests).
//!
//! All distances work in units of a scale `s` (the feature's σ), so terms of different
//! features are comparable:
//! - **Wasserstein** (squared 2-Wasserstein by sorting): values sorted, each value `tᵢ` at
//!   cumulative weight `uᵢ = (Σ_{k<i} w_k + wᵢ/2)/W` matched to the target quantile `Q(uᵢ)`:
//!   `D = Σ wᵢ ((tᵢ − Q(uᵢ))/s)² / W`; `∂D/∂tᵢ = 2wᵢ(tᵢ − Q(uᵢ))/(s²W)` (the order is locally
//!   constant).
//! - **Soft-binned χ²**: each value spread over the target's bins by a Gaussian of width
//!   `h = smoothing × mean bin width`: `pᵦ = Σ wᵢ [Φ((e_{b+1} − tᵢ)/h) − Φ((e_b − tᵢ)/h)] / W`,
//!   `D = (1/B) Σᵦ (pᵦ − fᵦ)²/δᵦ²` against the target fractions `fᵦ` and their errors `δᵦ`.
//! - **MMD** with a Gaussian kernel `k(a, b) = exp(−(a − b)²/(2h²))`, `h = bandwidth × s`,
//!   against the target's [`MMD_POINTS`](super::target::MMD_POINTS) quantiles `y`:
//!   `D = Σᵢⱼ wᵢwⱼk(tᵢ,tⱼ)/W² − 2Σᵢₘ wᵢk(tᵢ,yₘ)/(WM) + Σₘₙ k(yₘ,yₙ)/M²` (≥ 0).

use super::target::Prepared;
use crate::error::{Error, Result};

/// A distance between a batch's values and a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distance {
    /// Squared 2-Wasserstein by sorting.
    Wasserstein,
    /// Soft-binned χ² with Gaussian smoothing `smoothing` × the mean bin width.
    Chi2 {
        /// Smoothing width in bin widths.
        smoothing: f64,
    },
    /// Gaussian-kernel MMD² with bandwidth `bandwidth` × σ.
    Mmd {
        /// Kernel width in σ.
        bandwidth: f64,
    },
}

/// The names scripts use, in order.
pub const NAMES: &[&str] = &["wasserstein", "chi2", "mmd"];

impl Distance {
    /// The distance called `name` with its options (`smoothing` for `chi2`, default 0.5;
    /// `bandwidth` for `mmd`, default 0.5); an unknown name is an error with the nearest.
    pub fn by_name(name: &str, smoothing: Option<f64>, bandwidth: Option<f64>) -> Result<Distance> {
        let d = match name {
            "wasserstein" => Distance::Wasserstein,
            "chi2" => Distance::Chi2 { smoothing: smoothing.unwrap_or(0.5) },
            "mmd" => Distance::Mmd { bandwidth: bandwidth.unwrap_or(0.5) },
            _ => {
                let near = crate::error::nearest(name, NAMES.iter().copied());
                return Err(Error::BadOption {
                    func: "correct".into(),
                    key: "distance".into(),
                    problem: format!(
                        "'{name}' is not a distance (known: {}){}",
                        NAMES.join(", "),
                        near.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default()
                    ),
                });
            }
        };
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<()> {
        let (key, v) = match *self {
            Distance::Wasserstein => return Ok(()),
            Distance::Chi2 { smoothing } => ("smoothing", smoothing),
            Distance::Mmd { bandwidth } => ("bandwidth", bandwidth),
        };
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(Error::BadOption { func: "correct".into(), key: key.into(), problem: format!("must be > 0, got {v}") })
        }
    }

    /// The name scripts use.
    pub fn name(&self) -> &'static str {
        match self {
            Distance::Wasserstein => "wasserstein",
            Distance::Chi2 { .. } => "chi2",
            Distance::Mmd { .. } => "mmd",
        }
    }

    /// `D` of values `t` with weights `w` (≥ 0, positive sum) against `target`, in units of
    /// `scale`; writes `∂D/∂tᵢ` into `grad`.
    pub fn eval(&self, t: &[f64], w: &[f64], target: &Prepared, scale: f64, grad: &mut [f64]) -> f64 {
        let total: f64 = w.iter().sum();
        grad.iter_mut().for_each(|g| *g = 0.0);
        if total <= 0.0 {
            return 0.0;
        }
        match *self {
            Distance::Wasserstein => wasserstein(t, w, total, target, scale, grad),
            Distance::Chi2 { smoothing } => soft_chi2(t, w, total, target, smoothing, grad),
            Distance::Mmd { bandwidth } => mmd(t, w, total, target, bandwidth * scale, grad),
        }
    }
}

fn wasserstein(t: &[f64], w: &[f64], total: f64, target: &Prepared, s: f64, grad: &mut [f64]) -> f64 {
    let mut idx: Vec<usize> = (0..t.len()).collect();
    idx.sort_by(|&a, &b| t[a].total_cmp(&t[b]));
    let (mut c, mut d) = (0.0, 0.0);
    let s2 = s * s;
    for &i in &idx {
        let q = target.quantile((c + w[i] / 2.0) / total);
        c += w[i];
        let r = t[i] - q;
        d += w[i] * r * r / s2;
        grad[i] = 2.0 * w[i] * r / (s2 * total);
    }
    d / total
}

/// Φ and φ of the standard normal.
fn phi(x: f64) -> (f64, f64) {
    let cdf = 0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2);
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf, pdf)
}

fn soft_chi2(t: &[f64], w: &[f64], total: f64, target: &Prepared, smoothing: f64, grad: &mut [f64]) -> f64 {
    let e = &target.edges;
    let nb = e.len() - 1;
    let h = smoothing * (e[nb] - e[0]) / nb as f64;
    // Beyond 8 widths Φ is 0 or 1 to double precision and φ is 0.
    let reach = 8.0 * h;
    let mut p = vec![0.0; nb];
    let edge_range = |v: f64| (e.partition_point(|&x| x < v - reach), e.partition_point(|&x| x <= v + reach));
    for (i, &v) in t.iter().enumerate() {
        let (lo, hi) = edge_range(v);
        // Edges below lo have Φ = 1 − … ≈ 0 (far below v): bins entirely below v − reach
        // and above v + reach get nothing; bins straddling the window get Φ at their inner edge.
        let cdf_at = |k: usize| {
            if k < lo {
                0.0
            } else if k >= hi {
                1.0
            } else {
                phi((e[k] - v) / h).0
            }
        };
        let first = lo.saturating_sub(1);
        for (b, pb) in p.iter_mut().enumerate().take(hi.min(nb)).skip(first) {
            *pb += w[i] * (cdf_at(b + 1) - cdf_at(b)) / total;
        }
    }
    let mut d = 0.0;
    let mut coef = vec![0.0; nb];
    for b in 0..nb {
        let r = p[b] - target.fractions[b];
        let e2 = target.errors[b] * target.errors[b];
        d += r * r / e2;
        coef[b] = 2.0 * r / (e2 * nb as f64);
    }
    for (i, &v) in t.iter().enumerate() {
        let (lo, hi) = edge_range(v);
        // ∂pᵦ/∂tᵢ = wᵢ[φ(zᵦ) − φ(z_{b+1})]/(hW) with z = (e − tᵢ)/h.
        let mut g = 0.0;
        for k in lo..hi {
            let dens = phi((e[k] - v) / h).1;
            // edge k is the upper edge of bin k − 1 and the lower edge of bin k
            if k >= 1 {
                g -= coef[k - 1] * dens;
            }
            if k < nb {
                g += coef[k] * dens;
            }
        }
        grad[i] = g * w[i] / (h * total);
    }
    d / nb as f64
}

fn mmd(t: &[f64], w: &[f64], total: f64, target: &Prepared, h: f64, grad: &mut [f64]) -> f64 {
    let y = &target.points;
    let m = y.len() as f64;
    let inv = 1.0 / (2.0 * h * h);
    let mut xx = 0.0;
    let mut xy = 0.0;
    for (i, &a) in t.iter().enumerate() {
        let mut gi = 0.0;
        let mut row = 0.0;
        for (j, &b) in t.iter().enumerate() {
            let k = (-(a - b) * (a - b) * inv).exp();
            row += w[j] * k;
            gi += w[j] * k * (-(a - b) / (h * h));
        }
        xx += w[i] * row;
        let mut cross = 0.0;
        let mut gc = 0.0;
        for &b in y {
            let k = (-(a - b) * (a - b) * inv).exp();
            cross += k;
            gc += k * (-(a - b) / (h * h));
        }
        xy += w[i] * cross;
        grad[i] = 2.0 * w[i] * gi / (total * total) - 2.0 * w[i] * gc / (total * m);
    }
    let mut yy = 0.0;
    for &a in y {
        for &b in y {
            yy += (-(a - b) * (a - b) * inv).exp();
        }
    }
    xx / (total * total) - 2.0 * xy / (total * m) + yy / (m * m)
}
