//! The pairwise interaction features of the Particle Transformer (Qu, Li, Qian, ICML 2022,
//! eq. 3; weaver-core's `pairwise_lv_fts` with 4 outputs), with their exact Jacobian.
//!
//! For particles a, b with four-momenta built from `(pT, η, φ, E)` as
//! `p = (pT cos φ, pT sin φ, pT sinh η, E)`, weaver recomputes `pT = √(px² + py²)`, the
//! rapidity `y = ½ ln(1 + 2pz / max(E − pz, 10⁻²⁰))` and `φ = atan2(py, px)`, then
//!
//! - `ln Δ  = ln max(Δ, ε)`, `Δ = √((y_a − y_b)² + Δφ²)`, Δφ wrapped to [−π, π);
//! - `ln kT = ln max(min(pT_a, pT_b)·Δ, ε)`;
//! - `ln z  = ln max(min(pT_a, pT_b) / max(pT_a + pT_b, ε), ε)`;
//! - `ln m² = ln max((p_a + p_b)², ε)`,  ε = 10⁻⁸,
//!
//! in that order (ln kT, ln z, ln Δ, ln m²). Weaver computes them without gradient (they are
//! inputs there); here they are part of the model's function of its inputs, so input gradients
//! (attacks) flow through them: [`pair_features`] returns ∂feature/∂(pT, η, φ, E) of both
//! particles, zero where a clamp is active. Everything is computed in f64 from the f32 inputs
//! (the invariant mass of a nearly collinear or massless pair cancels catastrophically in
//! f32). One deviation: weaver's rapidity is NaN when `1 + 2pz/(E − pz) ≤ 0` (an unphysical
//! `E < |pz|` after a perturbation); here the argument is clamped to ≥ 10⁻²⁰.

/// The clamp ε of weaver's pair features.
pub const EPS: f64 = 1e-8;

/// Number of pair features.
pub const N_PAIR: usize = 4;

/// Names of the pair features, in order.
pub const PAIR_NAMES: [&str; N_PAIR] = ["ln_kt", "ln_z", "ln_delta", "ln_m2"];

/// A particle's kinematics with derivatives with respect to its inputs `(pT, η, φ, E)`.
#[derive(Clone, Copy, Debug)]
pub struct Kin {
    /// `(px, py, pz, E)`.
    pub p: [f64; 4],
    /// ∂p/∂input (`dp[c][k]` = ∂p_c/∂input_k).
    pub dp: [[f64; 4]; 4],
    pt: f64,
    dpt: [f64; 4],
    rap: f64,
    drap: [f64; 4],
    phi: f64,
    dphi: [f64; 4],
}

fn lin(a: &[f64; 4], s: f64, b: &[f64; 4], t: f64) -> [f64; 4] {
    [a[0] * s + b[0] * t, a[1] * s + b[1] * t, a[2] * s + b[2] * t, a[3] * s + b[3] * t]
}

impl Kin {
    /// The kinematics of a particle with `(pT, η, φ, E)`.
    pub fn new(v: [f32; 4]) -> Kin {
        let [pt_in, eta, phi_in, e] = v.map(f64::from);
        let (s, c) = phi_in.sin_cos();
        let p = [pt_in * c, pt_in * s, pt_in * eta.sinh(), e];
        let dp = [
            [c, 0.0, -pt_in * s, 0.0],
            [s, 0.0, pt_in * c, 0.0],
            [eta.sinh(), pt_in * eta.cosh(), 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let pt2 = p[0] * p[0] + p[1] * p[1];
        let pt = pt2.sqrt();
        let dpt = if pt > 0.0 { lin(&dp[0], p[0] / pt, &dp[1], p[1] / pt) } else { [0.0; 4] };
        // y = ½ ln a, a = 1 + 2 pz / max(E − pz, 1e-20), a clamped to ≥ 1e-20.
        let den = p[3] - p[2];
        let (a, da) = if den > 1e-20 {
            let a = 1.0 + 2.0 * p[2] / den;
            // ∂a/∂pz = 2/den + 2pz/den², ∂a/∂E = −2pz/den².
            let (apz, ae) = (2.0 / den + 2.0 * p[2] / (den * den), -2.0 * p[2] / (den * den));
            (a, lin(&dp[2], apz, &dp[3], ae))
        } else {
            (1.0 + 2.0 * p[2] / 1e-20, dp[2].map(|v| v * 2.0 / 1e-20))
        };
        let (rap, drap) =
            if a > 1e-20 { (0.5 * a.ln(), da.map(|v| 0.5 * v / a)) } else { (0.5 * 1e-20f64.ln(), [0.0; 4]) };
        let phi = p[1].atan2(p[0]);
        let dphi = if pt2 > 0.0 { lin(&dp[1], p[0] / pt2, &dp[0], -p[1] / pt2) } else { [0.0; 4] };
        Kin { p, dp, pt, dpt, rap, drap, phi, dphi }
    }
}

/// Δφ wrapped to [−π, π), as torch's `(a − b + π) % 2π − π`.
pub fn delta_phi(a: f64, b: f64) -> f64 {
    use std::f64::consts::PI;
    (a - b + PI).rem_euclid(2.0 * PI) - PI
}

/// The 4 pair features of particles `a` and `b` and their Jacobian: `jac[f][k]` is
/// ∂feature_f/∂input_k for `k < 4` (a's `(pT, η, φ, E)`) and `k ≥ 4` (b's).
pub fn pair_features(a: &Kin, b: &Kin) -> ([f64; N_PAIR], [[f64; 8]; N_PAIR]) {
    let mut jac = [[0.0f64; 8]; N_PAIR];
    let put = |row: &mut [f64; 8], da: &[f64; 4], sa: f64, db: &[f64; 4], sb: f64| {
        for k in 0..4 {
            row[k] += da[k] * sa;
            row[4 + k] += db[k] * sb;
        }
    };
    // ln Δ.
    let dy = a.rap - b.rap;
    let dphi = delta_phi(a.phi, b.phi);
    let d2 = dy * dy + dphi * dphi;
    let delta = d2.sqrt();
    // ∂Δ/∂· = (dy (∂y_a − ∂y_b) + Δφ (∂φ_a − ∂φ_b)) / Δ; stored as ∂ ln Δ = that / Δ.
    let mut dlndelta = [0.0f64; 8];
    if delta > 0.0 {
        put(&mut dlndelta, &a.drap, dy / d2, &b.drap, -dy / d2);
        put(&mut dlndelta, &a.dphi, dphi / d2, &b.dphi, -dphi / d2);
    }
    let ln_delta = delta.max(EPS).ln();
    if delta > EPS {
        jac[2] = dlndelta;
    }
    // ptmin: torch.minimum, a's on ties.
    let (ptmin, a_min) = if a.pt <= b.pt { (a.pt, true) } else { (b.pt, false) };
    let mut dlnptmin = [0.0f64; 8];
    if ptmin > 0.0 {
        if a_min {
            put(&mut dlnptmin, &a.dpt, 1.0 / ptmin, &[0.0; 4], 0.0);
        } else {
            put(&mut dlnptmin, &[0.0; 4], 0.0, &b.dpt, 1.0 / ptmin);
        }
    }
    // ln kT.
    let kt = ptmin * delta;
    let ln_kt = kt.max(EPS).ln();
    if kt > EPS {
        for k in 0..8 {
            jac[0][k] = dlnptmin[k] + dlndelta[k];
        }
    }
    // ln z.
    let sum = a.pt + b.pt;
    let z = ptmin / sum.max(EPS);
    let ln_z = z.max(EPS).ln();
    if z > EPS {
        let mut row = dlnptmin;
        if sum > EPS {
            put(&mut row, &a.dpt, -1.0 / sum, &b.dpt, -1.0 / sum);
        }
        jac[1] = row;
    }
    // ln m² of the sum.
    let s: [f64; 4] = std::array::from_fn(|c| a.p[c] + b.p[c]);
    let m2 = s[3] * s[3] - s[0] * s[0] - s[1] * s[1] - s[2] * s[2];
    let ln_m2 = m2.max(EPS).ln();
    if m2 > EPS {
        // ∂m² = 2E ∂E − 2px ∂px − …, through each particle's ∂p.
        let coef = [-2.0 * s[0] / m2, -2.0 * s[1] / m2, -2.0 * s[2] / m2, 2.0 * s[3] / m2];
        for (c, &w) in coef.iter().enumerate() {
            put(&mut jac[3], &a.dp[c], w, &b.dp[c], w);
        }
    }
    ([ln_kt, ln_z, ln_delta, ln_m2], jac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features as a function of the 8 inputs in f64 (the same formulas, so the Jacobian
    /// is tested against central differences of the values).
    fn feats(v: &[f64; 8]) -> [f64; 4] {
        let k = |o: usize| Kin::new([v[o] as f32, v[o + 1] as f32, v[o + 2] as f32, v[o + 3] as f32]);
        pair_features(&k(0), &k(4)).0
    }

    #[test]
    fn values_match_a_hand_computation() {
        // a: pT 10, η 0, φ 0, E 10.5 (massive: m² = 10.5² − 10² = 10.25);
        // b: pT 5, η 0.3, φ 0.4, E = 5 cosh 0.3 + 1 (so E > |p|).
        let a = Kin::new([10.0, 0.0, 0.0, 10.5]);
        let eb = 5.0 * 0.3f64.cosh() + 1.0;
        let b = Kin::new([5.0, 0.3, 0.4, eb as f32]);
        let (f, _) = pair_features(&a, &b);
        // Rapidities: y_a = 0 (pz = 0); y_b = ½ ln((E + pz)/(E − pz)), pz = 5 sinh 0.3.
        let pz = 5.0 * 0.3f64.sinh();
        let e = f64::from(eb as f32);
        let yb = 0.5 * ((e + pz) / (e - pz)).ln();
        let delta = (yb * yb + 0.4f64.powi(2)).sqrt();
        let m2 = (10.5 + e).powi(2)
            - (10.0 + 5.0 * f64::from(0.4f32).cos()).powi(2)
            - (5.0 * f64::from(0.4f32).sin()).powi(2)
            - pz.powi(2);
        let want = [(5.0 * delta).ln(), (5.0f64 / 15.0).ln(), delta.ln(), m2.ln()];
        for (g, w) in f.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{f:?} vs {want:?}");
        }
    }

    #[test]
    fn delta_phi_wraps_like_torch() {
        use std::f64::consts::PI;
        assert!((delta_phi(3.0, -3.0) - (6.0 - 2.0 * PI)).abs() < 1e-12);
        assert!((delta_phi(-3.0, 3.0) - (2.0 * PI - 6.0)).abs() < 1e-12);
        assert!((delta_phi(0.5, 0.2) - 0.3).abs() < 1e-12);
    }

    /// Jacobian against f64 central differences, away from the clamps and the min's tie:
    /// massive particles (E > |p| by ≥ 0.5 GeV), ΔR ≥ 0.1, pT differing by ≥ 1 GeV. The
    /// inputs pass through f32, so the step is 1e-2 in units where every input is O(1–30):
    /// f32 rounding of the inputs (~1e-6 relative) over 2h gives ≲ 1e-4 relative noise, and
    /// the truncation error h²·f'''/6 ≲ 1e-4 for these smooth functions.
    #[test]
    fn jacobian_matches_central_differences() {
        let cases: [[f64; 8]; 4] = [
            [20.0, 0.1, 0.2, 25.0, 8.0, -0.2, 0.5, 9.0],
            [3.0, 1.2, -2.9, 6.0, 6.5, 1.0, 2.9, 11.0],
            [12.0, -0.5, 1.0, 14.0, 30.0, -0.3, 1.4, 33.0],
            [4.0, 0.0, 0.0, 4.6, 1.5, 0.4, -0.3, 2.2],
        ];
        let h = 1e-2;
        for v in cases {
            let k = |o: usize| Kin::new([v[o] as f32, v[o + 1] as f32, v[o + 2] as f32, v[o + 3] as f32]);
            let (_, jac) = pair_features(&k(0), &k(4));
            for i in 0..8 {
                let (mut up, mut dn) = (v, v);
                up[i] += h;
                dn[i] -= h;
                let (fu, fd) = (feats(&up), feats(&dn));
                for f in 0..4 {
                    let fdv = (fu[f] - fd[f]) / (2.0 * h);
                    assert!(
                        (jac[f][i] - fdv).abs() <= 2e-3 * (1.0 + fdv.abs()),
                        "case {v:?}: ∂{}/∂input {i}: analytic {} vs fd {fdv}",
                        PAIR_NAMES[f],
                        jac[f][i]
                    );
                }
            }
        }
    }

    #[test]
    fn self_pair_of_a_massless_particle_is_clamped_with_zero_gradient() {
        // Δ = 0 and m² = 4(E² − p²) = 0 ⇒ ln Δ = ln kT = ln m² = ln ε, gradient 0; ln z = ln ½.
        let a = Kin::new([4.0, 0.0, 0.0, 4.0]);
        let (f, jac) = pair_features(&a, &a);
        assert!((f[0] - EPS.ln()).abs() < 1e-12 && (f[2] - EPS.ln()).abs() < 1e-12 && (f[3] - EPS.ln()).abs() < 1e-12);
        assert!((f[1] - 0.5f64.ln()).abs() < 1e-12);
        for f in [0, 2, 3] {
            assert!(jac[f].iter().all(|v| *v == 0.0), "{:?}", jac[f]);
        }
    }
}
