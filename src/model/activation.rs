//! Hidden-layer activation functions, applied in place with their derivatives fused.

use crate::error::{Error, Result};

/// Slope of [`Activation::LeakyRelu`] for negative inputs (PyTorch's default, 0.01).
pub const LEAKY_SLOPE: f32 = 0.01;

/// The nonlinearity between hidden layers.
///
/// | name | f(z) | matches |
/// |---|---|---|
/// | `relu` | max(z, 0) | `torch.nn.ReLU` |
/// | `tanh` | tanh z | `torch.nn.Tanh` |
/// | `gelu` | z·Φ(z) = ½z(1 + erf(z/√2)), the **exact erf form** | `torch.nn.GELU()` (default `approximate='none'`) |
/// | `silu` | z·σ(z) | `torch.nn.SiLU` |
/// | `leaky_relu` | z if z > 0 else 0.01·z | `torch.nn.LeakyReLU()` |
///
/// The derivative at the kink of ReLU / leaky ReLU (z = 0) is taken from the left (0 and 0.01),
/// as PyTorch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// max(z, 0).
    Relu,
    /// tanh z.
    Tanh,
    /// z·Φ(z) with the exact error function.
    Gelu,
    /// z·σ(z) (swish).
    Silu,
    /// z for z > 0, 0.01·z otherwise.
    LeakyRelu,
}

impl Activation {
    /// Every valid name, as accepted by [`Activation::parse`].
    pub const NAMES: [&'static str; 5] = ["relu", "tanh", "gelu", "silu", "leaky_relu"];

    /// Parses a name (case-insensitive; `leakyrelu` and `swish` are accepted as aliases).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            "gelu" => Ok(Activation::Gelu),
            "silu" | "swish" => Ok(Activation::Silu),
            "leaky_relu" | "leakyrelu" => Ok(Activation::LeakyRelu),
            _ => {
                Err(Error::arg("activation", format!("unknown activation '{name}'; valid: {}", Self::NAMES.join(", "))))
            }
        }
    }

    /// The canonical name (an element of [`Activation::NAMES`]).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::LeakyRelu => "leaky_relu",
        }
    }

    /// Applies the activation to one value.
    #[inline]
    pub fn f(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Gelu => 0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::Silu => z * sigmoid(z),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_SLOPE * z
                }
            }
        }
    }

    /// The value and the derivative at `z`.
    #[inline]
    pub fn f_df(self, z: f32) -> (f32, f32) {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    (z, 1.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                (t, 1.0 - t * t)
            }
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
                // φ(z) = exp(−z²/2)/√(2π); 1/√(2π) = 0.398 942 28.
                let pdf = (-0.5 * z * z).exp() * 0.398_942_3;
                (z * cdf, cdf + z * pdf)
            }
            Activation::Silu => {
                let s = sigmoid(z);
                (z * s, s * (1.0 + z * (1.0 - s)))
            }
            Activation::LeakyRelu => {
                if z > 0.0 {
                    (z, 1.0)
                } else {
                    (LEAKY_SLOPE * z, LEAKY_SLOPE)
                }
            }
        }
    }

    /// The second derivative f''(z) (0 for the piecewise-linear relu and leaky_relu, whose
    /// kink has measure zero): tanh −2t(1−t²); gelu φ(z)(2 − z²); silu σ(1−σ)(2 + z(1−2σ)).
    #[inline]
    pub fn d2f(self, z: f32) -> f32 {
        match self {
            Activation::Relu | Activation::LeakyRelu => 0.0,
            Activation::Tanh => {
                let t = z.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Activation::Gelu => (-0.5 * z * z).exp() * 0.398_942_3 * (2.0 - z * z),
            Activation::Silu => {
                let s = sigmoid(z);
                s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
            }
        }
    }

    /// True when f'' is zero almost everywhere (relu, leaky_relu).
    pub fn is_piecewise_linear(self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu)
    }

    /// In place, per row of `h` (rows of `bias.len()` values): `h ← f(h + bias)`.
    pub(crate) fn apply_biased(self, h: &mut [f32], bias: &[f32]) {
        for row in h.chunks_exact_mut(bias.len()) {
            match self {
                // Branch-free forms that the compiler vectorises.
                Activation::Relu => row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0)),
                _ => row.iter_mut().zip(bias).for_each(|(v, b)| *v = self.f(*v + b)),
            }
        }
    }

    /// In place, per row: `h ← f(h + bias)` and `d ← f'(h + bias)`, one pass.
    pub(crate) fn apply_biased_with_grad(self, h: &mut [f32], bias: &[f32], d: &mut [f32]) {
        let rows = h.chunks_exact_mut(bias.len()).zip(d.chunks_exact_mut(bias.len()));
        for (row, drow) in rows {
            let cells = row.iter_mut().zip(drow.iter_mut()).zip(bias);
            match self {
                Activation::Relu => cells.for_each(|((v, dv), b)| {
                    let z = *v + b;
                    *dv = if z > 0.0 { 1.0 } else { 0.0 };
                    *v = z.max(0.0);
                }),
                _ => cells.for_each(|((v, dv), b)| {
                    let (a, da) = self.f_df(*v + b);
                    *v = a;
                    *dv = da;
                }),
            }
        }
    }
}

/// In place, per row of `h`: `h ← h + bias`.
pub(crate) fn add_bias(h: &mut [f32], bias: &[f32]) {
    for row in h.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

impl Activation {
    /// The activation in f64 from its textbook closed form (exact erf for GELU): the
    /// independent reference the gradient tests difference.
    #[cfg(test)]
    pub(crate) fn reference_f64(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Gelu => 0.5 * z * (1.0 + statrs::function::erf::erf(z / 2f64.sqrt())),
            Activation::Silu => z / (1.0 + (-z).exp()),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    0.01 * z
                }
            }
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The logistic function 1/(1 + e^−z), without overflow for large |z|.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The error function in f32: the rational minimax approximation used by Eigen and XLA
/// (`generic_fast_erf_float`), accurate to a few ulp; exactly ±1 beyond |x| = 4, where
/// 1 − erf(4) ≈ 1.5e−8 is below half an ulp of 1.
#[inline]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_6e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_names_and_lists_them_on_error() {
        for n in Activation::NAMES {
            assert_eq!(Activation::parse(n).unwrap().name(), n);
        }
        assert_eq!(Activation::parse("ReLU").unwrap(), Activation::Relu);
        let e = Activation::parse("sigmoidal").unwrap_err().to_string();
        assert_eq!(e, "activation: unknown activation 'sigmoidal'; valid: relu, tanh, gelu, silu, leaky_relu");
    }

    #[test]
    fn erf_matches_statrs_to_f32_precision() {
        // statrs' erf is a double-precision implementation (Boost's rational fits), an
        // independent reference. 4e-7 absolute ≈ 3–4 ulp of values near 1, f32's resolution.
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f32 * 1e-3;
            let want = statrs::function::erf::erf(f64::from(x));
            worst = worst.max((f64::from(erf(x)) - want).abs());
        }
        assert!(worst < 4e-7, "max |erf error| {worst}");
    }

    #[test]
    fn derivatives_match_central_differences() {
        // f64 central differences of the f32 function with h = 1e-2 would be too coarse; instead
        // difference f at ±h in f64 arithmetic on the closed forms below (independent of f_df).
        let reference = |a: Activation, z: f64| a.reference_f64(z);
        let h = 1e-6;
        for a in Activation::NAMES.map(|n| Activation::parse(n).unwrap()) {
            // Points away from the kink at 0 (FD across a kink is meaningless).
            for z in [-3.1f32, -1.2, -0.3, 0.25, 0.9, 2.7] {
                let (v, d) = a.f_df(z);
                let zf = f64::from(z);
                let fd = (reference(a, zf + h) - reference(a, zf - h)) / (2.0 * h);
                // f32 values: relative error a few 1e-7; 1e-5 leaves a wide margin.
                assert!((f64::from(v) - reference(a, zf)).abs() < 1e-5 * (1.0 + zf.abs()), "{a} f({z})");
                assert!((f64::from(d) - fd).abs() < 1e-5, "{a} f'({z}) = {d}, fd {fd}");
                assert_eq!(a.f(z), v, "{a}: f and f_df disagree at {z}");
                // f'' against a second difference with h₂ = 1e-3 (truncation h₂²·|f''''|/12 ≲
                // 1e-7, rounding 1e-16/h₂² = 1e-10); away from the kink relu's f'' is 0.
                let h2 = 1e-3;
                let fd2 = (reference(a, zf + h2) - 2.0 * reference(a, zf) + reference(a, zf - h2)) / (h2 * h2);
                assert!((f64::from(a.d2f(z)) - fd2).abs() < 1e-4, "{a} f''({z}) = {}, fd {fd2}", a.d2f(z));
            }
        }
    }
}
