//! HistFactory's interpolation codes: a value `x(θ)` from its nominal `x⁰` and its ±1σ
//! alternatives `x⁺`, `x⁻`, with the derivative `dx/dθ` of each.
//!
//! Additive codes (0 and 2) interpolate the value itself; multiplicative codes (1 and 4)
//! interpolate the factor `η(θ) = x(θ)/x⁰` from `η± = x±/x⁰` and return `x⁰·η(θ)`.
//!
//! * **code 0**, piecewise linear: `x⁰ + θ·(x⁺ − x⁰)` for θ ≥ 0, `x⁰ + θ·(x⁰ − x⁻)` for θ < 0.
//!   The derivative jumps at θ = 0; there the up slope is returned.
//! * **code 1**, exponential: `η(θ) = (η⁺)^θ` for θ ≥ 0, `(η⁻)^(−θ)` for θ < 0.
//! * **code 2**, quadratic inside |θ| ≤ 1, linear outside: `x⁰ + a·θ² + b·θ` with
//!   `a = ½(x⁺ + x⁻) − x⁰`, `b = ½(x⁺ − x⁻)`; for |θ| > 1 the line through `x(±1)` with the
//!   slope `b ± 2a` there.
//! * **code 4**, polynomial inside |θ| < 1, exponential outside: code 1 for |θ| ≥ 1; inside,
//!   `η(θ) = 1 + Σᵢ₌₁..₆ aᵢ θⁱ`, the aᵢ fixed by matching η, η′ and η″ of code 1 at θ = ±1.
//!   With `b₁ = η⁺ − 1`, `b₂ = η⁻ − 1`, `b₃ = η⁺ ln η⁺`, `b₄ = −η⁻ ln η⁻`, `b₅ = η⁺ (ln η⁺)²`,
//!   `b₆ = η⁻ (ln η⁻)²` (the values, slopes and curvatures at +1 and −1), the odd and even
//!   coefficients separate: with `D = (b₁−b₂)/2`, `P = (b₃+b₄)/2`, `Q = (b₅−b₆)/2`:
//!   `a₅ = (Q − 3(P − D))/8`, `a₃ = (P − D)/2 − 2a₅`, `a₁ = D − a₃ − a₅`; with
//!   `S = (b₁+b₂)/2`, `R = (b₃−b₄)/2`, `T = (b₅+b₆)/2`: `a₆ = (T − 5R + 8S)/8`,
//!   `a₄ = (R − 2S)/2 − 2a₆`, `a₂ = S − a₄ − a₆` (the same polynomial as pyhf's `code4`).
//!
//! A multiplicative code needs `η± > 0`; a nominal `x⁰ = 0` stays 0 (η is undefined there).
//!
//! ```
//! use nuisance::systematics::Code;
//! // x⁰ = 10, x⁺ = 12, x⁻ = 9: code 0 at θ = 0.5 gives 11, at θ = −1 gives 9.
//! assert_eq!(Code::Linear.value(0.5, 10.0, 12.0, 9.0).unwrap(), 11.0);
//! assert_eq!(Code::Linear.value(-1.0, 10.0, 12.0, 9.0).unwrap(), 9.0);
//! // code 1 at θ = 2: 10 · 1.2² = 14.4
//! assert!((Code::Exponential.value(2.0, 10.0, 12.0, 9.0).unwrap() - 14.4).abs() < 1e-12);
//! ```

use crate::error::{Error, Result};

/// An interpolation code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Code 0: piecewise linear (additive).
    Linear,
    /// Code 1: piecewise exponential (multiplicative).
    Exponential,
    /// Code 2: quadratic inside ±1, linear outside (additive).
    Quadratic,
    /// Code 4: 6th-order polynomial inside ±1, exponential outside (multiplicative).
    PolyExp,
}

impl Code {
    /// The code for its HistFactory number (0, 1, 2 or 4).
    pub fn from_number(n: i64) -> Result<Code> {
        match n {
            0 => Ok(Code::Linear),
            1 => Ok(Code::Exponential),
            2 => Ok(Code::Quadratic),
            4 => Ok(Code::PolyExp),
            _ => Err(Error::arg("systematics", format!("interpolation code must be 0, 1, 2 or 4, got {n}"))),
        }
    }

    /// The HistFactory number of the code.
    pub fn number(self) -> i64 {
        match self {
            Code::Linear => 0,
            Code::Exponential => 1,
            Code::Quadratic => 2,
            Code::PolyExp => 4,
        }
    }

    /// Whether the code interpolates a factor (1, 4) rather than the value (0, 2).
    pub fn multiplicative(self) -> bool {
        matches!(self, Code::Exponential | Code::PolyExp)
    }

    /// `x(θ)` from the nominal and the ±1σ values.
    pub fn value(self, theta: f64, x0: f64, up: f64, down: f64) -> Result<f64> {
        Ok(self.value_and_slope(theta, x0, up, down)?.0)
    }

    /// `x(θ)` and `dx/dθ`.
    pub fn value_and_slope(self, theta: f64, x0: f64, up: f64, down: f64) -> Result<(f64, f64)> {
        match self {
            Code::Linear => Ok(linear(theta, x0, up, down)),
            Code::Quadratic => Ok(quadratic(theta, x0, up, down)),
            Code::Exponential | Code::PolyExp => {
                if x0 == 0.0 {
                    return Ok((0.0, 0.0));
                }
                let (eu, ed) = (up / x0, down / x0);
                if !(eu > 0.0 && ed > 0.0 && eu.is_finite() && ed.is_finite()) {
                    return Err(Error::arg(
                        "systematics",
                        format!(
                            "interpolation code {} needs up/nominal and down/nominal > 0, got {eu} and {ed} \
                             (nominal {x0}, up {up}, down {down})",
                            self.number()
                        ),
                    ));
                }
                let (f, df) = if self == Code::Exponential || theta.abs() >= 1.0 {
                    exponential(theta, eu, ed)
                } else {
                    poly6(theta, eu, ed)
                };
                Ok((x0 * f, x0 * df))
            }
        }
    }
}

fn linear(t: f64, x0: f64, up: f64, down: f64) -> (f64, f64) {
    let slope = if t >= 0.0 { up - x0 } else { x0 - down };
    (x0 + t * slope, slope)
}

fn quadratic(t: f64, x0: f64, up: f64, down: f64) -> (f64, f64) {
    let a = 0.5 * (up + down) - x0;
    let b = 0.5 * (up - down);
    if t > 1.0 {
        let s = b + 2.0 * a;
        (x0 + a + b + (t - 1.0) * s, s)
    } else if t < -1.0 {
        let s = b - 2.0 * a;
        (x0 + a - b + (t + 1.0) * s, s)
    } else {
        (x0 + a * t * t + b * t, 2.0 * a * t + b)
    }
}

/// The factor η(θ) of code 1 and its derivative.
fn exponential(t: f64, eu: f64, ed: f64) -> (f64, f64) {
    if t >= 0.0 {
        let f = eu.powf(t);
        (f, f * eu.ln())
    } else {
        let f = ed.powf(-t);
        (f, -f * ed.ln())
    }
}

/// The coefficients a₁..a₆ of code 4's polynomial (see the module documentation).
pub(crate) fn poly6_coefficients(eu: f64, ed: f64) -> [f64; 6] {
    let (lu, ld) = (eu.ln(), ed.ln());
    let b = [eu - 1.0, ed - 1.0, eu * lu, -ed * ld, eu * lu * lu, ed * ld * ld];
    let (d, p, q) = ((b[0] - b[1]) / 2.0, (b[2] + b[3]) / 2.0, (b[4] - b[5]) / 2.0);
    let a5 = (q - 3.0 * (p - d)) / 8.0;
    let a3 = (p - d) / 2.0 - 2.0 * a5;
    let a1 = d - a3 - a5;
    let (s, r, tt) = ((b[0] + b[1]) / 2.0, (b[2] - b[3]) / 2.0, (b[4] + b[5]) / 2.0);
    let a6 = (tt - 5.0 * r + 8.0 * s) / 8.0;
    let a4 = (r - 2.0 * s) / 2.0 - 2.0 * a6;
    let a2 = s - a4 - a6;
    [a1, a2, a3, a4, a5, a6]
}

fn poly6(t: f64, eu: f64, ed: f64) -> (f64, f64) {
    let a = poly6_coefficients(eu, ed);
    let (mut f, mut df, mut pow) = (1.0, 0.0, 1.0); // pow = θ^(i−1)
    for (i, ai) in a.iter().enumerate() {
        df += (i + 1) as f64 * ai * pow;
        pow *= t;
        f += ai * pow;
    }
    (f, df)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODES: [Code; 4] = [Code::Linear, Code::Exponential, Code::Quadratic, Code::PolyExp];

    #[test]
    fn every_code_passes_through_the_three_points() {
        // x(−1) = x⁻, x(0) = x⁰, x(+1) = x⁺ for every code, by construction.
        for code in CODES {
            for (x0, up, down) in [(10.0, 12.0, 9.0), (5.0, 4.0, 5.5), (2.0, 2.0, 2.0), (-3.0, -3.6, -2.5)] {
                for (t, want) in [(-1.0, down), (0.0, x0), (1.0, up)] {
                    let got = code.value(t, x0, up, down).unwrap();
                    assert!((got - want).abs() < 1e-12, "{code:?} at {t}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn codes_match_their_formulas_in_between_and_beyond() {
        let (x0, up, down): (f64, f64, f64) = (10.0, 12.0, 9.0);
        // code 0: 10 + 0.3·2 = 10.6; 10 − 0.4·1 = 9.6; beyond: 10 + 2.5·2 = 15
        assert!((Code::Linear.value(0.3, x0, up, down).unwrap() - 10.6).abs() < 1e-12);
        assert!((Code::Linear.value(-0.4, x0, up, down).unwrap() - 9.6).abs() < 1e-12);
        assert!((Code::Linear.value(2.5, x0, up, down).unwrap() - 15.0).abs() < 1e-12);
        // code 1: 10·1.2^0.3; 10·0.9^0.4
        assert!((Code::Exponential.value(0.3, x0, up, down).unwrap() - 10.0 * 1.2f64.powf(0.3)).abs() < 1e-12);
        assert!((Code::Exponential.value(-0.4, x0, up, down).unwrap() - 10.0 * 0.9f64.powf(0.4)).abs() < 1e-12);
        // code 2: a = ½(12+9) − 10 = 0.5, b = ½(12−9) = 1.5: x(0.5) = 10 + 0.125 + 0.75 = 10.875;
        // x(2) = x(1) + 1·(b + 2a) = 12 + 2.5 = 14.5; x(−3) = x(−1) + (−2)(b − 2a) = 9 − 1 = 8
        assert!((Code::Quadratic.value(0.5, x0, up, down).unwrap() - 10.875).abs() < 1e-12);
        assert!((Code::Quadratic.value(2.0, x0, up, down).unwrap() - 14.5).abs() < 1e-12);
        assert!((Code::Quadratic.value(-3.0, x0, up, down).unwrap() - 8.0).abs() < 1e-12);
        // code 4 beyond ±1 is code 1: 10·1.2^1.5, 10·0.9^2
        assert!((Code::PolyExp.value(1.5, x0, up, down).unwrap() - 10.0 * 1.2f64.powf(1.5)).abs() < 1e-12);
        assert!((Code::PolyExp.value(-2.0, x0, up, down).unwrap() - 8.1).abs() < 1e-12);
        // code 4 inside: symmetric η⁺ = 1/η⁻ = κ makes η(θ) even-odd balanced; its value at 0.5
        // from the polynomial equals 1 + Σ aᵢ 0.5ⁱ with the aᵢ checked below.
        let a = poly6_coefficients(1.2, 0.9);
        let direct: f64 = 1.0 + (1..=6).map(|i| a[i - 1] * 0.5f64.powi(i as i32)).sum::<f64>();
        assert!((Code::PolyExp.value(0.5, x0, up, down).unwrap() - 10.0 * direct).abs() < 1e-12);
    }

    #[test]
    fn code4_polynomial_matches_value_slope_and_curvature_of_code1_at_the_edges() {
        // The defining conditions, checked with the polynomial evaluated term by term.
        for (eu, ed) in [(1.2, 0.9), (1.05, 0.97), (2.0, 0.3), (0.8, 1.1)] {
            let a = poly6_coefficients(eu, ed);
            let p = |t: f64| 1.0 + (1..=6).map(|i| a[i - 1] * t.powi(i as i32)).sum::<f64>();
            let dp = |t: f64| (1..=6).map(|i| i as f64 * a[i - 1] * t.powi(i as i32 - 1)).sum::<f64>();
            let ddp = |t: f64| (2..=6).map(|i| (i * (i - 1)) as f64 * a[i - 1] * t.powi(i as i32 - 2)).sum::<f64>();
            let (lu, ld) = (f64::ln(eu), f64::ln(ed));
            // η = η⁺^θ at +1: η = η⁺, η′ = η⁺ ln η⁺, η″ = η⁺ ln² η⁺; η = η⁻^(−θ) at −1:
            // η = η⁻, η′ = −η⁻ ln η⁻, η″ = η⁻ ln² η⁻.
            let checks = [
                (p(1.0), eu),
                (dp(1.0), eu * lu),
                (ddp(1.0), eu * lu * lu),
                (p(-1.0), ed),
                (dp(-1.0), -ed * ld),
                (ddp(-1.0), ed * ld * ld),
            ];
            for (k, (got, want)) in checks.iter().enumerate() {
                assert!((got - want).abs() < 1e-12, "({eu}, {ed}) condition {k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn slopes_match_central_finite_differences() {
        // Away from the kinks (θ = 0 for codes 0 and 1, where the one-sided slopes differ).
        let thetas = [-2.3, -1.0, -0.7, -0.2, 0.15, 0.5, 0.999, 1.0, 1.7];
        for code in CODES {
            for (x0, up, down) in [(10.0, 12.0, 9.0), (3.0, 2.5, 3.2)] {
                for &t in &thetas {
                    let h = 1e-6;
                    let fd = (code.value(t + h, x0, up, down).unwrap() - code.value(t - h, x0, up, down).unwrap())
                        / (2.0 * h);
                    let (_, s) = code.value_and_slope(t, x0, up, down).unwrap();
                    assert!((s - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{code:?} at {t}: slope {s} vs fd {fd}");
                }
            }
        }
    }

    #[test]
    fn code4_is_smooth_at_zero_and_codes_reject_bad_factors() {
        // code 4 is C² everywhere: its slope at 0 is a₁ from both sides.
        let (_, s) = Code::PolyExp.value_and_slope(0.0, 10.0, 12.0, 9.0).unwrap();
        let h = 1e-6;
        let fd = (Code::PolyExp.value(h, 10.0, 12.0, 9.0).unwrap() - Code::PolyExp.value(-h, 10.0, 12.0, 9.0).unwrap())
            / (2.0 * h);
        assert!((s - fd).abs() < 1e-6);
        let e = Code::PolyExp.value(0.5, 10.0, -1.0, 9.0).unwrap_err().to_string();
        assert!(e.contains("interpolation code 4 needs up/nominal and down/nominal > 0"), "{e}");
        assert_eq!(Code::Exponential.value(0.5, 0.0, 1.0, 1.0).unwrap(), 0.0);
        assert!(Code::from_number(3).unwrap_err().to_string().contains("must be 0, 1, 2 or 4"));
    }
}
