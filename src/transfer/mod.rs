//! Transfer learning from a source domain (fast simulation) to a target domain (full
//! simulation): data-efficiency curves of fine-tuned against from-scratch models and the
//! efficiency factor N_scratch/N_pretrained at equal performance. No rhai here; the binding
//! is `bindings/transfer.rs`. The fine-tuning controls themselves are training options
//! (`model/finetune.rs`); the pair of simulations is `simulate`.

pub mod curves;
pub mod factor;

pub use curves::{data_efficiency, CurveConfig, Curves, Metric, Point, Summary};
pub use factor::Better;
