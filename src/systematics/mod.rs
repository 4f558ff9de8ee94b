//! Systematic uncertainties as nuisance parameters (HistFactory conventions): named θₖ with
//! priors, each acting coherently on a dataset — scales and shifts of features and object
//! features, resolution smearing, up/down alternative columns and event weights interpolated
//! with HistFactory's codes, normalisations — with derived features recomputed from the varied
//! inputs.
//!
//! `nuisance.rs`: priors, targets, effects, the [`Systematics`] model. `interp.rs`: the
//! interpolation codes with their derivatives. `vary.rs`: θ applied to a dataset (and
//! `dx/dθ`); `prepared.rs`: the model prepared on a nominal dataset, the varied columns at any
//! θ with their derivatives (`effects.rs`: the effects applied row by row); `derived.rs`: derived features recomputed with theirs; `fused.rs`: a per-event θ gradient of an MLP block by block, end to end. `json.rs`: save and load. `variations.rs`: the effect of each nuisance at ±1σ on
//! yields, efficiencies and histograms, and the envelope table. `quantity.rs`: one quantity
//! with a score (a yield above a cut, an efficiency, a mean score) on any sample.
//!
//! **Relation to the per-feature uncertainty model** (`attack::UncertaintyModel`): a feature
//! with absolute σ `a` and relative σ `r` is, for one event, the nuisance `x → x + θ·σ(x)`
//! with `σ(x) = √(a² + (r·x)²)` — one *linear* nuisance per feature and per event, the θ of
//! different events independent (χ² = Σ θ² over features). A [`Systematics`] nuisance instead
//! shares one θ across every event and every feature it names (coherent), and recomputes the
//! derived features. [`Systematics::from_uncertainty`] builds the per-feature model as
//! absolute-shift nuisances (one θ per feature, shared by the events), so both can be compared
//! on the same data.

mod attack;
mod derived;
mod effects;
mod fused;
mod interp;
mod json;
mod nuisance;
mod prepared;
mod quantity;
mod theta_grad;
mod variations;
mod vary;

pub use attack::{theta_attack, CoherentAttack, EventAttack, Method, Mode, ThetaAttack, ThetaAttackConfig};
pub use derived::Columns;
pub use interp::Code;
pub use json::{from_json, load, save, to_json};
pub use nuisance::{Binned, Derived, Effect, Nuisance, Prior, Sigma, Systematics, Target};
pub use prepared::{Point, Prepared, Theta};
pub use quantity::{Quantity, QuantityKind};
pub use theta_grad::{EventValue, Population, PopulationValue, ThetaSpace};
pub use variations::{model_scores, value_range, variations, Envelope, Quantities, ScoreFn, Variation};
pub use vary::{check, vary, vary_with_tangent, Tangent};
