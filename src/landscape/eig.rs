//! Eigenvalues of a small dense symmetric matrix: nalgebra's `SymmetricEigen` (pure Rust, the
//! default) or, with the `lapack` cargo feature, LAPACK through ndarray-linalg (faster for
//! large matrices; needs a system OpenBLAS).

use crate::error::{Error, Result};

/// Eigenvalues (ascending) of the symmetric `n × n` row-major matrix `a`, by the build's
/// backend (LAPACK with the `lapack` feature, nalgebra otherwise).
pub fn symmetric_eigenvalues(n: usize, a: &[f64]) -> Result<Vec<f64>> {
    #[cfg(feature = "lapack")]
    {
        eigenvalues_lapack(n, a)
    }
    #[cfg(not(feature = "lapack"))]
    {
        eigenvalues_nalgebra(n, a)
    }
}

/// The name of the backend [`symmetric_eigenvalues`] uses.
pub fn backend() -> &'static str {
    if cfg!(feature = "lapack") {
        "lapack"
    } else {
        "nalgebra"
    }
}

fn check(n: usize, a: &[f64]) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::Shape {
            op: "eigenvalues",
            expected: format!("{} entries", n * n),
            got: a.len().to_string(),
        });
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::arg("eigenvalues", "the matrix has non-finite entries"));
    }
    Ok(())
}

/// Eigenvalues (ascending) by nalgebra's symmetric QR.
pub fn eigenvalues_nalgebra(n: usize, a: &[f64]) -> Result<Vec<f64>> {
    check(n, a)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let m = nalgebra::DMatrix::from_row_slice(n, n, a);
    let mut v: Vec<f64> = m.symmetric_eigenvalues().iter().copied().collect();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Eigenvalues (ascending) by LAPACK (`eigvalsh`, lower triangle).
#[cfg(feature = "lapack")]
pub fn eigenvalues_lapack(n: usize, a: &[f64]) -> Result<Vec<f64>> {
    use ndarray_linalg::{EigValsh, UPLO};
    check(n, a)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let m = ndarray::Array2::from_shape_vec((n, n), a.to_vec()).map_err(|e| Error::Tensor(e.to_string()))?;
    let v = m.eigvalsh(UPLO::Lower).map_err(|e| Error::Tensor(format!("LAPACK eigvalsh: {e}")))?;
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}
