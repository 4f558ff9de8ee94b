//! Feasibility projections shared by every attack: what a perturbed event may look like.
//!
//! Rules are applied in order, per event, comparing the perturbed event with its original:
//! clip a feature to a range, keep a feature integral, keep sentinel values (e.g. −999 or 0
//! meaning "object absent") untouched, keep a feature fixed.
//!
//! Rules may also name object features (`coll.feature`, after the dataset's features): for a
//! set model [`Projection::over_inputs`] repeats such a rule on every slot of that feature,
//! and a rule on a slot applies only where the slot holds a real object of the event (padded
//! slots are never touched: a clip to [1, ∞) leaves their 0 alone).
//!
//! ```
//! use nuisance::attack::{Projection, Rule};
//! use ndarray::array;
//! let p = Projection::new(vec!["pt".into(), "njets".into()], vec![
//!     Rule::Clip { feature: 0, lo: 0.0, hi: f32::INFINITY },
//!     Rule::Integer { feature: 1 },
//! ]).unwrap();
//! let x0 = array![[10.0f32, 2.0]];
//! let mut x = array![[-1.0f32, 2.7]];
//! p.apply(x0.view(), x.view_mut());
//! assert_eq!(x, array![[0.0f32, 3.0]]);
//! ```

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};

use crate::error::{Error, Result};
use crate::model::{Model, SetLayout};

/// One feasibility rule on one feature (by column index).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Clamp to `[lo, hi]` (either may be infinite).
    Clip {
        /// Column.
        feature: usize,
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// Round to the nearest integer.
    Integer {
        /// Column.
        feature: usize,
    },
    /// Events whose original value equals `value` keep it.
    Sentinel {
        /// Column.
        feature: usize,
        /// The sentinel value.
        value: f32,
    },
    /// The feature never changes.
    Frozen {
        /// Column.
        feature: usize,
    },
}

impl Rule {
    /// One clip rule per feature: each to its range in `x` (rows = events).
    pub fn clip_to_data(x: ndarray::ArrayView2<'_, f32>) -> Vec<Rule> {
        x.axis_iter(ndarray::Axis(1))
            .enumerate()
            .map(|(feature, c)| {
                let lo = c.iter().cloned().fold(f32::INFINITY, f32::min);
                let hi = c.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                Rule::Clip { feature, lo, hi }
            })
            .collect()
    }

    /// The same rule on column `feature`.
    fn on(&self, feature: usize) -> Rule {
        match *self {
            Rule::Clip { lo, hi, .. } => Rule::Clip { feature, lo, hi },
            Rule::Integer { .. } => Rule::Integer { feature },
            Rule::Sentinel { value, .. } => Rule::Sentinel { feature, value },
            Rule::Frozen { .. } => Rule::Frozen { feature },
        }
    }

    /// The column the rule acts on.
    pub fn feature(&self) -> usize {
        match *self {
            Rule::Clip { feature, .. }
            | Rule::Integer { feature }
            | Rule::Sentinel { feature, .. }
            | Rule::Frozen { feature } => feature,
        }
    }

    /// Applies the rule to one event.
    #[inline]
    fn apply_row(&self, x0: &[f32], x: &mut [f32]) {
        match *self {
            Rule::Clip { feature, lo, hi } => x[feature] = x[feature].clamp(lo, hi),
            Rule::Integer { feature } => x[feature] = x[feature].round(),
            Rule::Sentinel { feature, value } => {
                if x0[feature] == value {
                    x[feature] = value
                }
            }
            Rule::Frozen { feature } => x[feature] = x0[feature],
        }
    }

    /// [`Rule::apply_row`] that also zeroes `jac[feature]` when the rule pins the value (a
    /// bound, the original, the sentinel). Rounding leaves it: a straight-through gradient.
    #[inline]
    fn apply_row_jac(&self, x0: &[f32], x: &mut [f32], jac: &mut [f32]) {
        let pinned = match *self {
            // A single-point range pins the feature even when it sits on it.
            Rule::Clip { feature, lo, hi } => lo == hi || !(lo..=hi).contains(&x[feature]),
            Rule::Integer { .. } => false,
            Rule::Sentinel { feature, value } => x0[feature] == value,
            Rule::Frozen { .. } => true,
        };
        self.apply_row(x0, x);
        if pinned {
            jac[self.feature()] = 0.0;
        }
    }
}

/// An ordered list of [`Rule`]s over named features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Projection {
    names: Vec<String>,
    rules: Vec<Rule>,
    /// How many leading `names` are dataset (event) features; the rest are object features.
    events: usize,
    /// The set layout the rules were expanded over: rules on padded slots are skipped.
    slots: Option<SetLayout>,
}

impl Projection {
    /// Rules over the features `names` (checked: columns in range, `lo ≤ hi`, no NaN).
    pub fn new(names: Vec<String>, rules: Vec<Rule>) -> Result<Self> {
        let events = names.len();
        Projection::with_objects(names, events, rules)
    }

    /// Rules over the dataset features `names[..events]` and the object features
    /// `names[events..]` (named `coll.feature`).
    pub fn with_objects(names: Vec<String>, events: usize, rules: Vec<Rule>) -> Result<Self> {
        let events = events.min(names.len());
        for r in &rules {
            if r.feature() >= names.len() {
                return Err(Error::BadArgument {
                    func: "projection".into(),
                    problem: format!("rule {r:?} names column {} of {}", r.feature(), names.len()),
                });
            }
            match *r {
                Rule::Clip { feature, lo, hi } if lo.is_nan() || hi.is_nan() || lo > hi => {
                    return Err(Error::BadArgument {
                        func: "projection".into(),
                        problem: format!("clip range of '{}' must have min ≤ max, got [{lo}, {hi}]", names[feature]),
                    })
                }
                Rule::Sentinel { feature, value } if value.is_nan() => {
                    return Err(Error::BadArgument {
                        func: "projection".into(),
                        problem: format!("sentinel of '{}' must be a number, got NaN", names[feature]),
                    })
                }
                _ => {}
            }
        }
        Ok(Projection { names, rules, events, slots: None })
    }

    /// Feature names the rules refer to.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The dataset (event) features among [`Projection::names`].
    pub fn event_names(&self) -> &[String] {
        &self.names[..self.events]
    }

    /// The projection over `model`'s input columns. For an event-level model: the rules on
    /// the dataset's features (a rule on an object feature is an error). For a set model:
    /// rules on its event features moved to their input columns (rules on features it does
    /// not read dropped), a rule on an object feature repeated on each slot, and rules on
    /// slots skipped for padded slots of each event.
    pub fn over_inputs(&self, model: &dyn Model) -> Result<Projection> {
        let Some(l) = model.set_layout() else {
            if let Some(r) = self.rules.iter().find(|r| r.feature() >= self.events) {
                return Err(Error::arg(
                    "projection",
                    format!(
                        "the rule on object feature '{}' needs a set model; this {} model reads the dataset's features",
                        self.names[r.feature()],
                        model.kind()
                    ),
                ));
            }
            let mut p = self.clone();
            p.names.truncate(self.events);
            return Ok(p);
        };
        if self.slots.as_ref() == Some(l) {
            return Ok(self.clone());
        }
        let mut rules = Vec::new();
        for r in &self.rules {
            let name = &self.names[r.feature()];
            if r.feature() < self.events {
                if let Some(e) = l.event_features.iter().position(|f| f == name) {
                    rules.push(r.on(e));
                }
            } else if let Some(j) = l.feature_names()[l.n_event()..].iter().position(|f| f == name) {
                rules.extend((0..l.max_objects).map(|s| r.on(l.slot_column(s, j))));
            }
        }
        let names = l.names();
        let mut p = Projection::new(names, rules)?;
        p.slots = Some(l.clone());
        Ok(p)
    }

    /// Whether `rule` acts on a padded slot of the event `x0` (then it is skipped).
    #[inline]
    fn padded(&self, rule: &Rule, x0: &[f32]) -> bool {
        self.slots.as_ref().is_some_and(|l| l.is_padded(rule.feature(), x0[l.count_column()]))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The same projection followed by `more` rules.
    pub fn then(&self, more: &[Rule]) -> Result<Self> {
        let mut rules = self.rules.clone();
        rules.extend_from_slice(more);
        let mut p = Projection::with_objects(self.names.clone(), self.events, rules)?;
        p.slots = self.slots.clone();
        Ok(p)
    }

    /// A human-readable list of the rules.
    pub fn describe(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| match *r {
                Rule::Clip { feature, lo, hi } => format!("clip {} to [{lo}, {hi}]", self.names[feature]),
                Rule::Integer { feature } => format!("{} integral", self.names[feature]),
                Rule::Sentinel { feature, value } => format!("{} keeps sentinel {value}", self.names[feature]),
                Rule::Frozen { feature } => format!("{} frozen", self.names[feature]),
            })
            .collect()
    }

    /// Projects one perturbed event `x` (in place) given its original `x0`.
    #[inline]
    pub fn apply_row(&self, x0: &[f32], x: &mut [f32]) {
        for rule in &self.rules {
            if !self.padded(rule, x0) {
                rule.apply_row(x0, x);
            }
        }
    }

    /// Projects every perturbed event `x` (in place) given its original `x0`.
    pub fn apply(&self, x0: ArrayView2<'_, f32>, mut x: ArrayViewMut2<'_, f32>) {
        if self.rules.is_empty() {
            return;
        }
        Zip::from(x.rows_mut()).and(x0.rows()).par_for_each(|mut row, r0| {
            if let (Some(xs), Some(x0s)) = (row.as_slice_mut(), r0.as_slice()) {
                self.apply_row(x0s, xs);
            } else {
                let (x0v, mut xv) = (r0.to_vec(), row.to_vec());
                self.apply_row(&x0v, &mut xv);
                row.iter_mut().zip(xv).for_each(|(d, v)| *d = v);
            }
        });
    }

    /// [`Projection::apply`] that also returns the diagonal of ∂x'/∂x per event and feature
    /// (the rules act feature by feature): 0 where a rule pinned the value (clipped at a bound,
    /// a single-point clip range, frozen, a sentinel kept), else 1 — rounding to an integer
    /// passes the gradient straight through. Attacks that minimise a cost at the projected
    /// events chain their gradients through it.
    pub fn apply_with_jacobian(&self, x0: ArrayView2<'_, f32>, mut x: ArrayViewMut2<'_, f32>) -> Array2<f32> {
        let mut jac = Array2::<f32>::ones(x.raw_dim());
        Zip::from(x.rows_mut()).and(x0.rows()).and(jac.rows_mut()).par_for_each(|mut row, r0, mut j| {
            if let (Some(xs), Some(x0s), Some(js)) = (row.as_slice_mut(), r0.as_slice(), j.as_slice_mut()) {
                for rule in self.rules.iter().filter(|r| !self.padded(r, x0s)) {
                    rule.apply_row_jac(x0s, xs, js);
                }
            } else {
                let (mut xv, x0v, mut jv) = (row.to_vec(), r0.to_vec(), j.to_vec());
                for rule in self.rules.iter().filter(|r| !self.padded(r, &x0v)) {
                    rule.apply_row_jac(&x0v, &mut xv, &mut jv);
                }
                row.iter_mut().zip(xv).for_each(|(d, v)| *d = v);
                j.iter_mut().zip(jv).for_each(|(d, v)| *d = v);
            }
        });
        jac
    }

    /// Events (row indices) that violate a rule — for tests and checks.
    pub fn violations(&self, x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>) -> Vec<usize> {
        let mut bad = Vec::new();
        for (i, (r0, r)) in x0.rows().into_iter().zip(x.rows()).enumerate() {
            let row0 = r0.to_vec();
            let ok = self.rules.iter().filter(|rule| !self.padded(rule, &row0)).all(|rule| match *rule {
                Rule::Clip { feature, lo, hi } => r[feature] >= lo && r[feature] <= hi,
                Rule::Integer { feature } => r[feature].fract() == 0.0,
                Rule::Sentinel { feature, value } => r0[feature] != value || r[feature] == value,
                Rule::Frozen { feature } => r[feature] == r0[feature],
            });
            if !ok {
                bad.push(i);
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Clip a to [−1, 1], b integral, c keeps sentinel −999, d frozen.
    fn one_of_each() -> Projection {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let rules = vec![
            Rule::Clip { feature: 0, lo: -1.0, hi: 1.0 },
            Rule::Integer { feature: 1 },
            Rule::Sentinel { feature: 2, value: -999.0 },
            Rule::Frozen { feature: 3 },
        ];
        Projection::new(names, rules).unwrap()
    }

    #[test]
    fn rules_apply_in_order_and_leave_no_violation() {
        let p = one_of_each();
        let x0 = array![[0.0f32, 1.0, -999.0, 5.0], [0.0, 1.0, 3.0, 5.0]];
        let mut x = array![[2.5f32, 1.4, -998.0, 6.0], [-3.0, 1.6, 3.5, 4.0]];
        assert_eq!(p.violations(x0.view(), x.view()), vec![0, 1]);
        p.apply(x0.view(), x.view_mut());
        assert_eq!(x, array![[1.0f32, 1.0, -999.0, 5.0], [-1.0, 2.0, 3.5, 5.0]]);
        assert!(p.violations(x0.view(), x.view()).is_empty());
    }

    #[test]
    fn jacobian_is_zero_exactly_where_a_rule_pins_the_value() {
        // Row 0: a clipped (2.5 > 1), b rounded (straight through), c keeps its sentinel,
        // d frozen. Row 1: a inside the range, c not a sentinel event: only d is pinned.
        let p = one_of_each();
        let x0 = array![[0.0f32, 1.0, -999.0, 5.0], [0.0, 1.0, 3.0, 5.0]];
        let mut x = array![[2.5f32, 1.4, -998.0, 6.0], [0.5, 1.6, 3.5, 4.0]];
        let mut y = x.clone();
        let jac = p.apply_with_jacobian(x0.view(), x.view_mut());
        p.apply(x0.view(), y.view_mut());
        assert_eq!(x, y);
        assert_eq!(jac, array![[0.0f32, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]]);
        // A single-point range (a constant column under clip_to_data) pins the feature even
        // when the event sits on it; a non-contiguous view gives the same result.
        let q =
            Projection::new(vec!["a".into(), "b".into()], vec![Rule::Clip { feature: 0, lo: 0.0, hi: 0.0 }]).unwrap();
        let x0 = array![[0.0f32, 1.0], [0.0, 2.0]];
        let mut x = array![[0.0f32, 1.5], [0.0, 2.5]];
        assert_eq!(q.apply_with_jacobian(x0.view(), x.view_mut()), array![[0.0f32, 1.0], [0.0, 1.0]]);
        let mut xt = array![[0.0f32, 0.0], [1.5, 2.5]];
        let x0t = array![[0.0f32, 0.0], [1.0, 2.0]];
        let jt = q.apply_with_jacobian(x0t.t(), xt.view_mut().reversed_axes());
        assert_eq!(jt, array![[0.0f32, 1.0], [0.0, 1.0]]);
    }

    #[test]
    fn bad_rules_are_errors() {
        let names = vec!["a".to_string()];
        assert!(Projection::new(names.clone(), vec![Rule::Integer { feature: 1 }]).is_err());
        let e = Projection::new(names, vec![Rule::Clip { feature: 0, lo: 2.0, hi: 1.0 }]).unwrap_err();
        assert!(e.to_string().contains("'a'"), "{e}");
    }
}
