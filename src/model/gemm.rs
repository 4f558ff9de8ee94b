//! A safe, bounds-checked wrapper around `matrixmultiply::sgemm` for row-major buffers.
//!
//! Every matrix the model touches is a dense row-major `f32` slice; transposes are expressed
//! through strides, never materialised. The length checks below make the `unsafe` call sound
//! whatever the caller passes (a wrong size is an internal bug and panics loudly instead of
//! reading out of bounds).

/// `C (m × n) = A' · B' + beta · C`, all row-major, where `A'` is `A` (stored `m × k`) or,
/// with `a_t`, the transpose of `A` (stored `k × m`); likewise `B'` is `B` (stored `k × n`)
/// or, with `b_t`, the transpose of `B` (stored `n × k`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool, beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm: buffer too small");
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = if a_t { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if b_t { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the assert above guarantees that every index the strides can reach,
    // (m-1)·rs + (k-1)·cs etc., lies inside the slices; `c` is exclusively borrowed.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_transpose_cases_match_naive_product() {
        // A is 2×3 = [[1,2,3],[4,5,6]], B is 3×2 = [[7,8],[9,10],[11,12]].
        // A·B = [[58, 64], [139, 154]] (1·7+2·9+3·11 = 58, …), exact in f32.
        let a = [1., 2., 3., 4., 5., 6.];
        let at = [1., 4., 2., 5., 3., 6.];
        let b = [7., 8., 9., 10., 11., 12.];
        let bt = [7., 9., 11., 8., 10., 12.];
        let want = [58., 64., 139., 154.];
        for (aa, a_t) in [(&a, false), (&at, true)] {
            for (bb, b_t) in [(&b, false), (&bt, true)] {
                let mut c = [1.0f32; 4];
                gemm(2, 3, 2, aa, a_t, bb, b_t, 0.0, &mut c);
                assert_eq!(c, want, "a_t={a_t} b_t={b_t}");
            }
        }
        // beta = 1 accumulates: C = 1 + A·B.
        let mut c = [1.0f32; 4];
        gemm(2, 3, 2, &a, false, &b, false, 1.0, &mut c);
        assert_eq!(c, [59., 65., 140., 155.]);
    }
}
