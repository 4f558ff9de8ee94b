//! Models: the interface every attack, scan, metric, training loop and spectrum works
//! through, and its implementations.
//!
//! - [`Model`] (`interface.rs`): the object-safe model trait (logits, input vector–Jacobian
//!   products for every [`GradTarget`], weight gradients, flat parameters with named groups,
//!   save/load through [`load_model`], an optional exact Hessian-vector product), used as
//!   `&dyn Model` and, in scripts, as [`SharedModel`].
//! - [`Mlp`]: architecture, parameters (flat, GEMM-friendly layout; PyTorch order on the
//!   outside), input standardisation stored in the model, batched fused forward pass.
//! - Gradients with respect to inputs ([`Mlp::input_grad`]) and weights
//!   ([`Mlp::weight_grad`]), batched over events.
//! - [`LossHessian`]: exact Hessian-vector products of the training loss (R-operator).
//! - [`train`]: an [`crate::optim::Solver`] with Adam/AdamW/SGD, schedules, early stopping;
//!   fine-tuning controls (`finetune.rs`: frozen groups, per-group learning rates,
//!   re-initialised groups, warm-up, [`Standardize`]).
//! - [`ObjectiveTrainer`]: training on a batch objective (a loss of a whole minibatch, e.g. a
//!   distance between distributions), objectives combined with weights ([`Weighted`]).
//! - [`adversarial_train`]: training with adversarial events from any [`Augmenter`] mixed in.
//! - Persistence: [`Mlp::save`] / [`Mlp::load`] (safetensors with PyTorch tensor names) and
//!   [`import_torch`] for `nn.Sequential` state dicts; [`import_onnx`] (`onnx.rs`, cargo
//!   feature `onnx`) for MLPs exported to ONNX.
//! - [`CandleMlp`]: the same network on candle-core autograd, the general (slower) path and
//!   an independent cross-check; a second [`Model`] implementation.
//! - [`SetNet`] / [`SetModel`] (`set_net.rs`, `set_model.rs`): the glue that makes any set
//!   network written on candle tensors (ParticleNet, …) a [`Model`] over a [`SetLayout`]:
//!   unpadded object batches, standardisation, autograd input and weight gradients, flat
//!   parameters by PyTorch names, safetensors save/load.
//! - [`ParticleNet`] (`particlenet.rs`): weaver-core's ParticleNet (EdgeConv on kNN graphs)
//!   as a [`SetNet`], with [`import_torch_particlenet`] for weaver state dicts.
//!
//! Architecture invariant: nothing here imports rhai.

mod activation;
mod adversarial;
pub(crate) mod backward;
mod candle_mlp;
pub(crate) mod eval;
mod finetune;
mod gemm;
mod hvp;
mod interface;
pub(crate) mod io;
mod l1;
mod layout;
pub(crate) mod loss;
mod mlp;
mod mlp_model;
pub(crate) mod objective;
mod onnx;
mod part;
mod part_grad;
mod part_io;
mod part_model;
mod part_net;
mod part_pairs;
mod particlenet;
mod perturb;
mod pfn;
mod pfn_grad;
mod pfn_io;
mod pfn_model;
mod pfn_pass;
mod rows;
mod set_model;
mod set_net;
mod train;
mod workspace;

pub use activation::{erf, sigmoid, Activation, LEAKY_SLOPE};
pub use adversarial::{adversarial_train, AdversarialConfig, AdversarialRecord, AdversarialResult, Augmenter, Every};
pub use backward::{GradTarget, InputGrad};
pub use candle_mlp::{CandleAdam, CandleMlp};
pub use eval::Evaluation;
pub use finetune::{reinit, warmup_factor, GroupRef, Standardize};
pub use hvp::LossHessian;
pub(crate) use mlp::INFER_CHUNK;
/// A model as scripts hold it: any implementation, shared (copies share the weights).
pub type SharedModel = std::sync::Arc<dyn Model>;

pub use interface::{from_flat, group_to_flat, load_model, to_flat, HessianProduct, Model, ParamGroup};
pub use io::{import_torch, import_torch_with_warnings, TorchImport, FORMAT_VERSION};
pub use l1::L1;
pub use layout::SetLayout;
pub use loss::{Output, Targets};
pub use mlp::{Mlp, MlpConfig};
pub use objective::{BatchObjective, Convergence, ObjectiveRecord, ObjectiveTrainer, Weighted};
pub use onnx::{import_onnx, OnnxImport};
pub use part::{Part, PartConfig, TensorSpec};
pub use part_io::{import_torch_part, PartImport};
pub use part_pairs::{pair_features, Kin, PAIR_NAMES};
pub use particlenet::{import_torch_particlenet, particlenet, ParticleNet, ParticleNetConfig, ParticleNetImport};
pub use perturb::WeightPerturbation;
pub use pfn::{Pfn, PfnConfig, Pooling};
pub use pfn_io::{import_torch_pfn, PfnImport, Standardization};
pub use set_model::SetModel;
pub use set_net::{Buffer, Param, ParamStore, SetBatch, SetNet};
pub use train::{train, BatchHook, EpochRecord, Optimizer, Schedule, TrainConfig, TrainResult, Trainer};

#[cfg(test)]
#[path = "thread_tests.rs"]
mod thread_tests;
