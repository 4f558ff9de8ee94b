//! Detector response: a seeded, documented map from generator-level inputs to what a
//! detector records, with a `fast` and a `full`-like preset of the same physics (the pair of
//! simulations transfer learning goes from and to). No rhai here; the bindings are
//! `bindings/simulate.rs`.
//!
//! * [`jets`]: per-constituent response of particle jets (energy resolution by particle type,
//!   tracking efficiency, calorimeter cells that merge neutral particles, non-Gaussian tails,
//!   soft extra particles, thresholds), the jet's four-vector recomputed from the result.
//! * [`events`]: per-feature response of event-level features (resolution, scale,
//!   non-Gaussian tails, object-finding efficiencies of counts, an event efficiency), with the
//!   derived features recomputed afterwards.
//!
//! **Response model.** A quantity x with relative resolution σ(x)/x is measured as
//! `x' = scale·x·(1 + σ·z)` (jets) or `x' = scale·x + σ·z` (event features), with z a double
//! Gaussian: N(0, 1) with probability 1 − f, N(0, w²) with probability f (the tail fraction f
//! and width w). **Determinism:** every event draws from its own stream
//! `rng::substream(seed, event)`, so results do not depend on the thread count or on batching.

pub mod events;
pub mod jets;
mod response;

pub use events::{EventResponse, FeatureResponse};
pub use jets::{JetResponse, Resolution};
pub use response::Tails;
