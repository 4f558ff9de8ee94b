//! The data-efficiency factor: how many target-domain events a model trained from scratch
//! needs to reach the performance a fine-tuned model reaches with N.
//!
//! For each fine-tuned point (N, y), the scratch curve (its mean over seeds at each size) is
//! interpolated **linearly in (ln N, y)** between the first two neighbouring sizes whose values
//! bracket y; the factor is N_scratch(y)/N. A fine-tuned value outside the scratch curve's
//! range has no factor (`None`): below it, the fine-tuned model is no better than scratch at
//! the smallest size; above it, scratch never gets there within the sizes tried. The summary
//! factor is the geometric mean of the defined ones.

/// Whether larger metric values are better (AUC, rejection) or smaller (resolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Larger is better.
    Higher,
    /// Smaller is better.
    Lower,
}

/// The size at which the curve `(n, y)` (sizes increasing) first reaches `target`,
/// interpolated linearly in ln n; `None` when no pair of neighbouring points brackets it.
pub fn size_at(curve: &[(f64, f64)], target: f64, better: Better) -> Option<f64> {
    let sign = if better == Better::Higher { 1.0 } else { -1.0 };
    let t = sign * target;
    for w in curve.windows(2) {
        let ((n0, y0), (n1, y1)) = ((w[0].0, sign * w[0].1), (w[1].0, sign * w[1].1));
        if y0 == t {
            return Some(n0);
        }
        if y0 < t && t <= y1 {
            let f = (t - y0) / (y1 - y0);
            return Some((n0.ln() + f * (n1.ln() - n0.ln())).exp());
        }
    }
    match curve.last() {
        Some(&(n, y)) if sign * y == t => Some(n),
        _ => None,
    }
}

/// Per fine-tuned point, N_scratch/N at equal performance (see the module documentation).
pub fn factors(scratch: &[(f64, f64)], finetuned: &[(f64, f64)], better: Better) -> Vec<Option<f64>> {
    finetuned.iter().map(|&(n, y)| size_at(scratch, y, better).map(|s| s / n)).collect()
}

/// The geometric mean of the defined factors; `None` when none is.
pub fn summary(factors: &[Option<f64>]) -> Option<f64> {
    let logs: Vec<f64> = factors.iter().flatten().map(|f| f.ln()).collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_linear_in_log_n_gives_the_exact_factor() {
        // y = 0.6 + 0.05·ln N; the fine-tuned model reaches at N what scratch reaches at 2N:
        // y_ft(N) = 0.6 + 0.05·ln(2N). Linear interpolation in ln N is exact here, so every
        // fine-tuned point inside the scratch range has factor 2 (to rounding).
        let sizes = [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0];
        let scratch: Vec<(f64, f64)> = sizes.iter().map(|&n: &f64| (n, 0.6 + 0.05 * n.ln())).collect();
        let ft: Vec<(f64, f64)> = sizes.iter().map(|&n: &f64| (n, 0.6 + 0.05 * (2.0 * n).ln())).collect();
        let f = factors(&scratch, &ft, Better::Higher);
        // The last point (≙ scratch at 6400) is beyond the scratch curve.
        assert_eq!(f[5], None);
        for v in &f[..5] {
            assert!((v.unwrap() - 2.0).abs() < 1e-12, "{f:?}");
        }
        assert!((summary(&f).unwrap() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_resolution_curve_and_an_off_grid_factor() {
        // Resolution σ = 10/√N (smaller is better); fine-tuned σ_ft(N) = 10/√(3N), factor 3.
        // 3N falls between the grid points 2N and 4N (sizes 1000·2^k), where σ is convex in
        // ln N, so the chord overestimates the scratch size. Per unit 10/√N the scratch values
        // there are 1/√2 and 1/2 and the target 1/√3: the fraction along the octave is
        // f = (1/√2 − 1/√3)/(1/√2 − 1/2) = 0.626520, so N_s = 2N·2^f and the factor is
        // 2·2^f = 3.0876728 on every octave (the curve is self-similar), 2.9 % above 3.
        let sizes: Vec<f64> = (0..8).map(|k| 1000.0 * 2f64.powi(k)).collect();
        let scratch: Vec<(f64, f64)> = sizes.iter().map(|&n| (n, 10.0 / n.sqrt())).collect();
        let ft: Vec<(f64, f64)> = sizes.iter().map(|&n| (n, 10.0 / (3.0 * n).sqrt())).collect();
        let f = factors(&scratch, &ft, Better::Lower);
        let defined: Vec<f64> = f.iter().flatten().copied().collect();
        assert_eq!(defined.len(), 6, "{f:?}"); // 3N beyond 128 000 for the last two
        assert!(defined.iter().all(|v| (v - 3.087_672_764_697_6).abs() < 1e-9), "{defined:?}");
        // A point worse than scratch everywhere has no factor, and the interpolation is
        // monotone: a better fine-tuned value never needs fewer scratch events.
        assert_eq!(size_at(&scratch, 1.0, Better::Lower), None);
        assert!(size_at(&scratch, 0.1, Better::Lower).unwrap() < size_at(&scratch, 0.09, Better::Lower).unwrap());
        assert_eq!(size_at(&scratch, scratch[0].1, Better::Lower), Some(1000.0));
    }
}
