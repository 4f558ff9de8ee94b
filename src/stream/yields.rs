//! Event counts and exact sums of weights, in total and per class: the yields a streamed cut
//! or score summary folds chunk by chunk and merges exactly (integers and [`ExactSum`]s).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::exact::ExactSum;
use crate::error::{Error, Result};

/// Events and Σw of some events, and of those that passed a selection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Yield {
    pub events: u64,
    pub passed: u64,
    pub weight: ExactSum,
    pub weight_passed: ExactSum,
}

impl Yield {
    /// Counts one event of weight `w`, passing or not.
    pub fn add(&mut self, w: f32, pass: bool) {
        self.events += 1;
        self.weight.add(w);
        if pass {
            self.passed += 1;
            self.weight_passed.add(w);
        }
    }

    /// Adds another part's yield.
    pub fn merge(&mut self, o: &Yield) {
        self.events += o.events;
        self.passed += o.passed;
        self.weight.merge(&o.weight);
        self.weight_passed.merge(&o.weight_passed);
    }

    /// `#{ events, passed, sum_weights, sum_weights_passed, efficiency, weighted_efficiency }`
    /// and the exact sums' digits under `exact`.
    pub fn to_json(&self) -> Value {
        let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({
            "events": self.events,
            "passed": self.passed,
            "sum_weights": self.weight.value(),
            "sum_weights_passed": self.weight_passed.value(),
            "efficiency": num(self.passed as f64 / self.events as f64),
            "weighted_efficiency": num(self.weight_passed.value() / self.weight.value()),
            "exact": { "sum_weights": self.weight.digits(), "sum_weights_passed": self.weight_passed.digits() },
        })
    }

    /// Reads [`Yield::to_json`]'s output (`file` names it in errors).
    pub fn from_json(file: &str, v: &Value) -> Result<Yield> {
        let bad = |what: &str| Error::arg("merge", format!("{file}: not a streamed yield ({what})"));
        let count = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(k));
        let sum = |k: &str| {
            let d: Option<Vec<i64>> = v
                .get("exact")
                .and_then(|e| e.get(k))
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_i64).collect());
            d.and_then(|d| ExactSum::from_digits(&d)).ok_or_else(|| bad(k))
        };
        Ok(Yield {
            events: count("events")?,
            passed: count("passed")?,
            weight: sum("sum_weights")?,
            weight_passed: sum("sum_weights_passed")?,
        })
    }
}

/// Yields in total and per label class (no classes without a label column).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Yields {
    pub total: Yield,
    pub classes: BTreeMap<i64, Yield>,
}

impl Yields {
    /// Counts one event (`label` when the events have labels).
    pub fn add(&mut self, label: Option<i64>, w: f32, pass: bool) {
        self.total.add(w, pass);
        if let Some(l) = label {
            self.classes.entry(l).or_default().add(w, pass);
        }
    }

    /// Adds another part's yields.
    pub fn merge(&mut self, o: &Yields) {
        self.total.merge(&o.total);
        for (l, y) in &o.classes {
            self.classes.entry(*l).or_default().merge(y);
        }
    }

    /// The total's fields, and `classes: #{ "0": …, "1": … }` per label.
    pub fn to_json(&self) -> Value {
        let mut m = match self.total.to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let classes: Map<String, Value> = self.classes.iter().map(|(l, y)| (l.to_string(), y.to_json())).collect();
        m.insert("classes".into(), Value::Object(classes));
        Value::Object(m)
    }

    /// Reads [`Yields::to_json`]'s output.
    pub fn from_json(file: &str, v: &Value) -> Result<Yields> {
        let mut classes = BTreeMap::new();
        if let Some(c) = v.get("classes").and_then(Value::as_object) {
            for (k, y) in c {
                let l: i64 =
                    k.parse().map_err(|_| Error::arg("merge", format!("{file}: class '{k}' is not an integer")))?;
                classes.insert(l, Yield::from_json(file, y)?);
            }
        }
        Ok(Yields { total: Yield::from_json(file, v)?, classes })
    }
}
