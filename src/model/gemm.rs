//! A safe, bounds-checked wrapper around the `gemm` crate's matrix product for row-major
//! `f32` buffers.
//!
//! Every matrix the model touches is a dense row-major slice; transposes are expressed through
//! strides, never materialised. The length checks below make the `unsafe` call sound whatever
//! the caller passes (a wrong size is an internal bug and panics loudly instead of reading out
//! of bounds). The product always runs on the calling thread (`Parallelism::None`): callers
//! parallelise over blocks of events with rayon, and a library starting its own threads inside
//! those tasks would only oversubscribe the cores. `gemm` picks its kernel at run time: AVX2+FMA
//! on the 2-core EPYC (Zen 3) this was measured on, AVX-512 where the CPU has it (the crate's
//! `x86-v4` feature; not exercised on that machine). At the model's shapes (blocks of 128–256
//! events × 64 × 64) it ran 20–30 % faster than matrixmultiply there.

use ::gemm::Parallelism;

/// `C (m × n) = A' · B' + beta · C`, all row-major, where `A'` is `A` (stored `m × k`) or,
/// with `a_t`, the transpose of `A` (stored `k × m`); likewise `B'` is `B` (stored `k × n`)
/// or, with `b_t`, the transpose of `B` (stored `n × k`). With `beta = 0` the old contents
/// of `C` are never read.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool, beta: f32, c: &mut [f32]) {
    let fits = |len: usize, r: usize, c: usize| r.checked_mul(c).is_some_and(|need| len >= need);
    assert!(fits(a.len(), m, k) && fits(b.len(), k, n) && fits(c.len(), m, n), "gemm: buffer too small");
    if m == 0 || n == 0 {
        return;
    }
    // Row and column strides of A' (m × k) and B' (k × n) inside their stored buffers.
    let (rsa, csa) = if a_t { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if b_t { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the assert above guarantees that every index the strides can reach,
    // (m-1)·rs + (k-1)·cs etc., lies inside the slices; `c` is exclusively borrowed, so it
    // aliases neither input. The crate computes dst = alpha·dst + beta·lhs·rhs, reading dst
    // only when `read_dst` is true.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            beta != 0.0,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
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
        // beta = 1 accumulates: C = 1 + A·B; beta = 0.5 halves C first: C = 0.5 + A·B.
        let mut c = [1.0f32; 4];
        gemm(2, 3, 2, &a, false, &b, false, 1.0, &mut c);
        assert_eq!(c, [59., 65., 140., 155.]);
        let mut c = [1.0f32; 4];
        gemm(2, 3, 2, &a, false, &b, false, 0.5, &mut c);
        assert_eq!(c, [58.5, 64.5, 139.5, 154.5]);
        // beta = 0 never reads C, so even NaN there is overwritten.
        let mut c = [f32::NAN; 4];
        gemm(2, 3, 2, &a, false, &b, false, 0.0, &mut c);
        assert_eq!(c, want);
    }
}
