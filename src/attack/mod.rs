//! Attacks whose budget is the experiment's own uncertainty model.
//!
//! - [`uncertainty`]: per-feature σ (absolute, relative, frozen), correlations, the scale s,
//!   χ² and p-values, Gaussian variations; [`chi2_tail`]: the χ² upper tail (p-values).
//! - [`project`]: feasibility rules every attack applies (clip, integer, sentinel, frozen).
//! - [`gradient`]: FGSM and PGD in σ units (L∞ box, χ²/Mahalanobis ball).
//! - [`minifool`]: the χ² + target-score minimiser, batched over events (L-BFGS or Adam).
//! - [`rdsa`]: RDSA, the black-box shuffle attack that keeps every marginal and breaks the
//!   correlations.
//! - [`conservattack`]: CONSERVAttack, the greedy population attack that keeps every feature's
//!   histogram and the correlation matrix (faithful to the reference, or strict).
//! - [`scan`]: s-scans (flip fraction vs s, split by correctness and class) and s_flip.
//! - [`metrics`]: fooling ratio, accuracy/AUC on adversaries, per-feature JSD and mean |Δx|,
//!   correlation change — for any attack's output.
//! - [`augment`]: the attacks as augmenters for adversarial training.
//! - [`result`]: the per-event outcome every attack returns.
//! - [`Attack`] and [`ATTACKS`]: the one registry of attacks (`kinds/`, one file per attack)
//!   that scripts, adversarial training, s-scans and benchmarks look attacks up in; an
//!   attack's options are read through [`options::AttackOptions`].
//!
//! Adding an attack: write its algorithm in its own file, its [`Attack`] implementation and
//! option reader in `kinds/`, add its entry to [`ATTACKS`], and give it a documented script
//! function in `bindings/attack.rs` (a one-line call of the shared runner).

pub mod augment;
pub mod chi2_tail;
pub mod conservattack;
pub mod detector;
pub mod gradient;
pub mod kinds;
pub mod metrics;
pub mod minifool;
pub mod options;
pub mod project;
pub mod rdsa;
pub mod result;
pub mod scan;
pub mod uncertainty;

#[cfg(test)]
mod augment_tests;
#[cfg(test)]
mod conservattack_tests;
#[cfg(test)]
mod detector_tests;
#[cfg(test)]
mod sets_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use augment::AttackAugmenter;
pub use conservattack::{ConservAttack, ConservConfig, ConservResult, IterationMetrics, Mode};
pub use gradient::{pgd, Goal, Norm, PgdConfig};
pub use minifool::{minifool, minifool_scaled, MiniFoolConfig, MiniFoolResult, Minimizer, Target};
pub use options::{AttackOptions, Number, Value, Values};
pub use project::{Projection, Rule};
pub use rdsa::{continuous_features, Marginal, Rdsa, RdsaConfig, RdsaResult, Sampling, SubsetDraw};
pub use result::{outputs, AttackResult, Ending, Known};
pub use scan::{s_scan, Fraction, Scan, ScanRow};
pub use uncertainty::{collider_model, column_std, p_values, split_covariance, Chi2, FeatureSigma, UncertaintyModel};

use ndarray::{Array2, ArrayView2};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::Control;

/// An attack configured for a set of events: what scripts run, adversarial training mixes in,
/// s-scans repeat at growing budgets and benchmarks time.
pub trait Attack: std::fmt::Debug + Send + Sync {
    /// The name scripts use.
    fn name(&self) -> &'static str;

    /// Attacks every event of `x` (physical units; the events it was configured for), with
    /// their true `labels` when known.
    fn run(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<Outcome>;

    /// Adversarial versions of training events for adversarial training: aimed at their true
    /// `labels` (or their predicted class, for attacks that flip it), randomness from `seed`.
    fn augment(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>>;

    /// The uncertainty model bounding the attack; `None` for attacks without a budget (they
    /// cannot be scanned in s).
    fn budget(&self) -> Option<&UncertaintyModel>;

    /// One point of an s-scan: the attack under `unc` (its budget rescaled), aimed away from
    /// the clean classes `clean`.
    fn at_budget(
        &self,
        model: &dyn Model,
        unc: &UncertaintyModel,
        x: ArrayView2<'_, f32>,
        clean: &[i64],
        control: &Control,
    ) -> Result<AttackResult>;

    /// Places the configured events in a larger sample: the first of them is at `position`
    /// (a chunk of a chain). Attacks that draw random numbers per event key them by position
    /// ([`crate::rng::event_rng`]), so every event of a chain gets the numbers it gets in one
    /// run over the whole chain, whatever the chunking or sharding; the default does nothing
    /// (the attack draws nothing per event).
    fn place(&mut self, _position: u64) {}

    /// The attack with a per-event factor on the scale of `unc` (the s_flip bisection), for
    /// attacks that support it; `None` otherwise.
    fn at_event_scales(
        &self,
        _model: &dyn Model,
        _unc: &UncertaintyModel,
        _x: ArrayView2<'_, f32>,
        _scales: &[f32],
        _control: &Control,
    ) -> Result<Option<AttackResult>> {
        Ok(None)
    }
}

/// What one run of an attack produced: the common per-event result, plus what the attack
/// adds (per-event columns of the result table, summary values, and the work done).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Perturbed events, scores, classes, χ², iterations and reasons.
    pub attack: AttackResult,
    /// Extra per-event columns, in order (MiniFool: costs; RDSA: changed features).
    pub columns: Vec<(String, Vec<f32>)>,
    /// Extra summary values (RDSA: tries, shuffled features).
    pub summary: Vec<(&'static str, Summary)>,
    /// Forward+backward evaluations, where the attack counts them (MiniFool).
    pub evaluations: Option<usize>,
}

impl Outcome {
    /// An outcome with nothing beyond the common result.
    pub fn plain(attack: AttackResult) -> Self {
        Outcome { attack, columns: Vec::new(), summary: Vec::new(), evaluations: None }
    }
}

/// One extra summary value of an [`Outcome`].
#[derive(Clone, Debug, PartialEq)]
pub enum Summary {
    /// A count.
    Int(i64),
    /// A number.
    Float(f64),
    /// A list of feature names.
    Names(Vec<String>),
    /// A list of numbers (CONSERVAttack: one per iteration).
    Floats(Vec<f64>),
    /// A table: column names and rows (CONSERVAttack: one row per iteration).
    Table(Vec<String>, Vec<Vec<f64>>),
}

/// Who asks for the attack: what its options may contain and how it is aimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A script call: every option, including the goal (labels, target, direction).
    Script,
    /// Adversarial training: aimed at each batch's true labels, the budget given as an option.
    Training,
    /// An s-scan: aimed away from the clean class, at every scale of the budget.
    Scan,
}

/// What an attack is configured against.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// The attacked model.
    pub model: &'a dyn Model,
    /// The events (for adversarial training: the training events).
    pub events: &'a Dataset,
    /// The uncertainty model (the budget of FGSM, PGD, MiniFool; RDSA reports χ² under it).
    pub unc: Option<&'a UncertaintyModel>,
    /// Who asks.
    pub purpose: Purpose,
}

impl Setup<'_> {
    /// The budget of attack `name`: the uncertainty model, which must be given, over the
    /// model's input columns ([`UncertaintyModel::over_inputs`]: for a set model, σ per
    /// object slot, the count and padded slots frozen per event).
    pub fn budget(&self, name: &'static str) -> Result<UncertaintyModel> {
        let u = self.unc.ok_or_else(|| Error::BadOption {
            func: name.into(),
            key: "uncertainty".into(),
            problem: "is needed in adversarial training (the attack's budget)".into(),
        })?;
        if self.purpose == Purpose::Training {
            u.check_dataset(name, self.events)?;
        }
        u.over_inputs(self.model)
    }

    /// Errors unless the model's inputs are the events' features (attack `name` keeps
    /// population statistics of input columns, which a set model's padded slots and varying
    /// object counts do not have: `why`).
    pub fn event_level(&self, name: &'static str, why: &str) -> Result<()> {
        if self.model.inputs_are_features() {
            return Ok(());
        }
        Err(Error::arg(
            name,
            format!(
                "works on event-level models (inputs = the dataset's features), not on a {} model: {why}",
                self.model.kind()
            ),
        ))
    }

    /// The `project` option, checked against the events' features, over the model's input
    /// columns ([`Projection::over_inputs`]).
    pub fn projection(&self, name: &'static str, o: &mut dyn AttackOptions) -> Result<Projection> {
        let p = o.projection("project")?.unwrap_or_default();
        if !p.is_empty() && p.event_names() != self.events.names() {
            return Err(Error::arg(name, "the projection was built for a dataset with other features"));
        }
        p.over_inputs(self.model)
    }
}

/// A registered attack: its name, a one-line description, whether it has an uncertainty
/// budget (s-scans need one), and its configuration from options.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The name scripts use (`fgsm`, `#{ method: "pgd" }`, `s_scan(…, #{ attack: "minifool" })`).
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// Whether its budget is the uncertainty model (so it can be scanned in s).
    pub budgeted: bool,
    /// Reads the options and prepares the attack.
    pub configure: fn(&mut dyn AttackOptions, &Setup) -> Result<Box<dyn Attack>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).field("budgeted", &self.budgeted).finish()
    }
}

/// Every attack, in the order they are listed to users.
pub const ATTACKS: &[Entry] =
    &[kinds::rdsa::ENTRY, kinds::fgsm::ENTRY, kinds::pgd::ENTRY, kinds::minifool::ENTRY, kinds::conservattack::ENTRY];

/// The registered attack called `name`.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ATTACKS.iter().find(|e| e.name == name)
}

/// The names of the registered attacks (those with a budget when `budgeted`).
pub fn attack_names(budgeted: bool) -> Vec<&'static str> {
    ATTACKS.iter().filter(|e| e.budgeted || !budgeted).map(|e| e.name).collect()
}

/// Configures the registered attack `name` from Rust values (benchmarks, tests): unknown
/// names and keys are errors.
pub fn configure(name: &str, setup: &Setup, values: Values) -> Result<Box<dyn Attack>> {
    let entry = lookup(name).ok_or_else(|| {
        Error::arg("attack", format!("unknown attack '{name}'; available: {}", attack_names(false).join(", ")))
    })?;
    let mut values = values;
    let attack = (entry.configure)(&mut values, setup)?;
    values.finish()?;
    Ok(attack)
}
