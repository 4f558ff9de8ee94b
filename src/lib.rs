//! nuisance: probe neural-network classifiers with perturbations that stay inside the
//! experiment's uncertainties, from short Rhai scripts.

pub mod data;
pub mod error;
pub mod fsutil;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod rng;

pub use data::Dataset;
pub use error::{Error, Result};
