//! Seeded synthetic datasets: the two-Gaussian reference task and a toy collider sample.
//!
//! Every generator is deterministic in its seed and independent of the thread count: rows
//! are produced in fixed-size chunks, chunk `k` from [`crate::rng::substream`]`(seed, k)`.
//!
//! ```
//! let g = nuisance::data::synthetic::generate("gaussians", 100, 1).unwrap();
//! let c = nuisance::data::synthetic::generate("collider", 100, 1).unwrap();
//! assert_eq!((g.n_features(), c.n_features()), (20, 11));
//! ```

pub mod collider;
pub mod gaussians;

pub use collider::{collider, collider_uncertainties, ColliderConfig, FeatureUncertainty, COLLIDER_FEATURES};
pub use gaussians::{gaussians, gaussians_discriminant, gaussians_with, GaussiansConfig};

use crate::data::Dataset;
use crate::error::{nearest, Error, Result};
use crate::{limits, memory};

/// Names accepted by [`generate`].
pub const GENERATORS: [&str; 2] = ["gaussians", "collider"];

/// Generates `n` events of the named sample with default parameters and `seed`; `n` is
/// bounded by [`limits::EVENTS`] and the events must fit in the memory budget.
pub fn generate(name: &str, n: usize, seed: u64) -> Result<Dataset> {
    let d = match name {
        "gaussians" => 20,
        "collider" => COLLIDER_FEATURES.len(),
        _ => {
            let hint = nearest(name, GENERATORS).map_or(String::new(), |c| format!(" (did you mean '{c}'?)"));
            return Err(Error::arg(
                "generate",
                format!("unknown generator '{name}'{hint}; valid: {}", GENERATORS.join(", ")),
            ));
        }
    };
    limits::check("dataset", "n", n, limits::EVENTS)?;
    memory::check(
        crate::data::dataset_bytes(n, d, true, false),
        &format!("dataset: {n} {name} events × {d} features"),
    )?;
    match name {
        "gaussians" => Ok(gaussians(n, seed)),
        _ => collider(&ColliderConfig::new(n, seed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_dispatches_and_lists_valid_names() {
        assert_eq!(generate("gaussians", 10, 1).unwrap().x(), gaussians(10, 1).x());
        assert_eq!(generate("collider", 10, 1).unwrap().names()[0], "pt1");
        let e = generate("gausians", 10, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "generate: unknown generator 'gausians' (did you mean 'gaussians'?); valid: gaussians, collider"
        );
    }
}
