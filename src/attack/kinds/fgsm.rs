//! FGSM: one step of size ε, the [`Gradient`] attack with one step. Its options are PGD's
//! without `steps`, `step`, `random_start` and `seed`.

use super::pgd::Gradient;
use crate::attack::Entry;

/// The registry entry.
pub const ENTRY: Entry = Entry {
    name: "fgsm",
    about: "one gradient-sign step of ε σ-units (L∞) or along the whitened gradient (χ² ball)",
    budgeted: true,
    configure: |o, s| Gradient::configure("fgsm", o, s),
};
