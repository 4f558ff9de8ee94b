//! Two-sample Kolmogorov–Smirnov test, event-weighted.
//!
//! Convention: the statistic is `D = sup_x |F₁(x) − F₂(x)|` over the weighted empirical CDFs
//! `F(x) = Σ_{xᵢ ≤ x} wᵢ / Σ wᵢ` (ties step together). The p-value:
//! - unweighted and `n₁·n₂ ≤` [`EXACT_MAX_PRODUCT`]: exact, `P(D ≥ d)` under H₀ by counting
//!   lattice paths (scipy's `ks_2samp(method='exact')`, which assumes no ties);
//! - otherwise asymptotic: the Kolmogorov distribution `Q_KS(√n_e · D)` with
//!   `n_e = n₁n₂/(n₁+n₂)` of the effective sizes `n_eff = (Σw)²/Σw²` (Kish), which equal the
//!   counts without weights (scipy's `kstwobign.sf(sqrt(n_e) * d)`).
//!
//! ```
//! let r = nuisance::stats::ks::ks_2samp(&[1.0, 2.0, 3.0], None, &[4.0, 5.0, 6.0], None).unwrap();
//! assert_eq!(r.statistic, 1.0);
//! assert!((r.p_value - 0.1).abs() < 1e-12); // 2 of the C(6,3) = 20 orderings reach D = 1
//! ```

use crate::error::{Error, Result};

/// Largest `n₁·n₂` for which an unweighted p-value is computed exactly (O(n₁n₂) work).
pub const EXACT_MAX_PRODUCT: usize = 1_000_000;

/// Result of [`ks_2samp`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsResult {
    /// `sup |F₁ − F₂|`.
    pub statistic: f64,
    /// `P(D ≥ statistic)` under the hypothesis of one parent distribution.
    pub p_value: f64,
    /// Whether the p-value is exact (else asymptotic with effective sizes).
    pub exact: bool,
    /// Effective size `(Σw)²/Σw²` of the first sample.
    pub n_eff1: f64,
    /// Effective size of the second sample.
    pub n_eff2: f64,
}

/// Sorted `(value, weight)` pairs, Σw and Σw².
type Prepared = (Vec<(f64, f64)>, f64, f64);

/// The sample sorted by value with its weights, Σw and Σw².
fn prepare(op: &'static str, x: &[f32], w: Option<&[f32]>) -> Result<Prepared> {
    if let Some(w) = w {
        if w.len() != x.len() {
            return Err(Error::Shape {
                op,
                expected: format!("{} weights (one per value)", x.len()),
                got: format!("{}", w.len()),
            });
        }
    }
    let mut v: Vec<(f64, f64)> =
        x.iter().enumerate().map(|(i, &a)| (f64::from(a), w.map_or(1.0, |w| f64::from(w[i])))).collect();
    if let Some(row) = v.iter().position(|(a, w)| !a.is_finite() || !w.is_finite()) {
        let count = v.iter().filter(|(a, w)| !a.is_finite() || !w.is_finite()).count();
        return Err(Error::NonFinite { op: op.into(), column: "values or weights".into(), count, row });
    }
    v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let sw: f64 = v.iter().map(|p| p.1).sum();
    let sw2: f64 = v.iter().map(|p| p.1 * p.1).sum();
    if sw.is_nan() || sw <= 0.0 {
        return Err(Error::arg(op, format!("a sample has total weight {sw}; it must be positive")));
    }
    Ok((v, sw, sw2))
}

/// Weighted two-sample KS test of `a` (weights `wa`) against `b` (weights `wb`).
pub fn ks_2samp(a: &[f32], wa: Option<&[f32]>, b: &[f32], wb: Option<&[f32]>) -> Result<KsResult> {
    const OP: &str = "ks";
    let (va, sa, sa2) = prepare(OP, a, wa)?;
    let (vb, sb, sb2) = prepare(OP, b, wb)?;
    let d = statistic(&va, sa, &vb, sb);
    let (n1, n2) = (sa * sa / sa2, sb * sb / sb2);
    let unweighted = wa.is_none() && wb.is_none();
    if unweighted && a.len().saturating_mul(b.len()) <= EXACT_MAX_PRODUCT {
        return Ok(KsResult {
            statistic: d,
            p_value: exact_p(a.len(), b.len(), d),
            exact: true,
            n_eff1: n1,
            n_eff2: n2,
        });
    }
    let ne = n1 * n2 / (n1 + n2);
    Ok(KsResult { statistic: d, p_value: kolmogorov_sf(ne.sqrt() * d), exact: false, n_eff1: n1, n_eff2: n2 })
}

/// `sup |F₁ − F₂|` of sorted weighted samples, evaluated after each group of equal values.
fn statistic(a: &[(f64, f64)], sa: f64, b: &[(f64, f64)], sb: f64) -> f64 {
    let (mut i, mut j) = (0, 0);
    let (mut fa, mut fb, mut d) = (0.0f64, 0.0f64, 0.0f64);
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < a.len() && a[i].0 == x {
            fa += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 == x {
            fb += b[j].1;
            j += 1;
        }
        d = d.max((fa / sa - fb / sb).abs());
    }
    d.min(1.0)
}

/// Exact `P(D ≥ d)` for sizes m, n without ties: the probability that a uniformly random
/// lattice path from (0, 0) to (m, n) touches `|i/m − j/n| ≥ d`. Probability mass flows
/// through the grid (a step in i from (i, j) has probability (m − i)/(m + n − i − j)); mass
/// that reaches the boundary is summed, so small p-values keep their relative accuracy.
fn exact_p(m: usize, n: usize, d: f64) -> f64 {
    // D·m·n is an integer h (D is a multiple of 1/lcm(m, n)); inside ⇔ |i·n − j·m| < h.
    let h = (d * (m * n) as f64).round() as i64;
    if h <= 0 {
        return 1.0;
    }
    let inside = |i: usize, j: usize| ((i * n) as i64 - (j * m) as i64).abs() < h;
    let mut row = vec![0.0f64; n + 1]; // mass at (i, ·) still inside
    let mut out = 0.0;
    row[0] = 1.0;
    for i in 0..=m {
        let mut next = vec![0.0f64; n + 1];
        for j in 0..=n {
            let p = row[j];
            if p == 0.0 {
                continue;
            }
            let left = (m - i + n - j) as f64;
            if i < m {
                let q = p * (m - i) as f64 / left;
                if inside(i + 1, j) {
                    next[j] += q;
                } else {
                    out += q;
                }
            }
            if j < n {
                let q = p * (n - j) as f64 / left;
                if inside(i, j + 1) {
                    row[j + 1] += q;
                } else {
                    out += q;
                }
            }
        }
        row = next;
    }
    out.clamp(0.0, 1.0)
}

/// Survival function of the Kolmogorov distribution, `P(K > λ)` (scipy's `kstwobign.sf`):
/// `2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}` for λ ≥ 1, else `1 − √(2π)/λ Σ_{k≥1} e^{−(2k−1)²π²/(8λ²)}`.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda >= 1.0 {
        let mut s = 0.0;
        for k in 1..=100 {
            let kf = f64::from(k);
            let t = (-2.0 * kf * kf * lambda * lambda).exp();
            s += if k % 2 == 1 { t } else { -t };
            if t < 1e-300 {
                break;
            }
        }
        (2.0 * s).clamp(0.0, 1.0)
    } else {
        let c = std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda);
        let mut s = 0.0;
        for k in 1..=100 {
            let o = f64::from(2 * k - 1);
            let t = (-o * o * c).exp();
            s += t;
            if t < 1e-300 {
                break;
            }
        }
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn exact_matches_scipy() {
        // scipy 1.17.1: ks_2samp(a, b, method='exact') → statistic 0.5, pvalue 0.19254079254079257;
        // ks_2samp(c, e, method='exact') → 0.26666666666666666, 0.6487316395783215.
        let a = [0.1f32, 0.5, 0.9, 1.3, 2.2, 2.5, 3.1];
        let b = [1.0f32, 1.7, 2.0, 2.8, 3.3, 3.9, 4.4, 5.0];
        let r = ks_2samp(&a, None, &b, None).unwrap();
        assert!(r.exact);
        close(r.statistic, 0.5, 1e-12);
        close(r.p_value, 0.192_540_792_540_792_57, 1e-9);
        let c = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0];
        let e = [0.5f32, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 20.0, 21.0];
        let r = ks_2samp(&c, None, &e, None).unwrap();
        close(r.statistic, 0.266_666_666_666_666_66, 1e-12);
        close(r.p_value, 0.648_731_639_578_321_5, 1e-9);
    }

    #[test]
    fn asymptotic_matches_kolmogorov_distribution() {
        // scipy 1.17.1: kstwobign.sf(0.5) = 0.9639452436648751, sf(1.0) = 0.26999967167735456,
        // sf(1.5) = 0.022217962616525127, sf(0.2) = 0.999999999999495.
        close(kolmogorov_sf(0.5), 0.963_945_243_664_875_1, 1e-10);
        close(kolmogorov_sf(1.0), 0.269_999_671_677_354_56, 1e-10);
        close(kolmogorov_sf(1.5), 0.022_217_962_616_525_127, 1e-10);
        close(kolmogorov_sf(0.2), 0.999_999_999_999_495, 1e-8);
        assert_eq!(kolmogorov_sf(0.0), 1.0);
    }

    #[test]
    fn unit_weights_give_the_unweighted_statistic_and_asymptotic_p() {
        let a: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..30).map(|i| (i as f32 * 0.23).cos() + 0.2).collect();
        let (wa, wb) = (vec![1.0f32; 40], vec![1.0f32; 30]);
        let u = ks_2samp(&a, None, &b, None).unwrap();
        let w = ks_2samp(&a, Some(&wa), &b, Some(&wb)).unwrap();
        assert_eq!(u.statistic, w.statistic);
        assert!(!w.exact);
        // n_e = 40·30/70; p = kstwobign.sf(√n_e · D).
        close(w.p_value, kolmogorov_sf((1200.0f64 / 70.0).sqrt() * u.statistic), 1e-12);
        assert_eq!((w.n_eff1, w.n_eff2), (40.0, 30.0));
    }

    #[test]
    fn weighted_matches_an_independent_numpy_computation() {
        // numpy/scipy 1.17.1, independently: weighted ECDFs on the pooled values,
        // D = max |Fa − Fb| = 0.49428571428571428, n_eff = (Σw)²/Σw² = 5.06198347107438 and
        // 4.310344827586206, p = kstwobign.sf(sqrt(n1·n2/(n1+n2)) · D) = 0.6201471827679272.
        let a = [0.3f32, 1.1, 1.9, 2.4, 3.0, 3.7];
        let wa = [0.5f32, 1.5, 1.0, 2.0, 0.7, 1.3];
        let b = [2.3f32, 2.9, 3.7, 4.4, 5.6];
        let wb = [1.2f32, 0.4, 1.0, 1.6, 0.8];
        let r = ks_2samp(&a, Some(&wa), &b, Some(&wb)).unwrap();
        // f32 weights differ from the f64 ones by ~1e-8 relative.
        close(r.statistic, 0.494_285_714_285_714_3, 1e-6);
        close(r.n_eff1, 5.061_983_471_074_38, 1e-6);
        close(r.n_eff2, 4.310_344_827_586_206, 1e-6);
        close(r.p_value, 0.620_147_182_767_927_2, 1e-6);
    }

    #[test]
    fn integer_weights_equal_duplicated_events() {
        // Weight 2 on an event = that event twice, for the statistic.
        let a = [0.0f32, 1.0, 2.0];
        let b = [0.5f32, 1.5];
        let w = ks_2samp(&a, Some(&[2.0, 1.0, 1.0]), &b, None).unwrap();
        let d = ks_2samp(&[0.0, 0.0, 1.0, 2.0], None, &b, None).unwrap();
        close(w.statistic, d.statistic, 1e-15);
        // n_eff = 4²/6 = 8/3.
        close(w.n_eff1, 8.0 / 3.0, 1e-15);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(ks_2samp(&[f32::NAN], None, &[1.0], None).unwrap_err().kind(), "non_finite");
        assert_eq!(ks_2samp(&[], None, &[1.0], None).unwrap_err().kind(), "bad_argument");
        assert_eq!(ks_2samp(&[1.0], Some(&[1.0, 2.0]), &[1.0], None).unwrap_err().kind(), "shape");
    }
}
