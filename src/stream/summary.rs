//! The summary of a streamed attack: integer counts and exact sums of weights, so summaries of
//! chunks or shards merge into exactly the summary of one run.

use serde_json::{json, Map, Value};

use super::exact::ExactSum;
use crate::attack::Outcome;
use crate::data::Dataset;
use crate::error::{Error, Result};

/// Counts and weight sums of a streamed attack. The flip fraction is over all events, as for
/// the in-memory attacks; "correct" events are those whose class before the attack is their
/// label (every event when the chain has no label), and `flip_fraction_correct` is over them.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackSummary {
    /// The attack's name.
    pub attack: String,
    /// Whether the events had labels.
    pub labelled: bool,
    /// Events attacked.
    pub events: u64,
    /// Events classified correctly before the attack.
    pub correct: u64,
    /// Events whose class changed.
    pub flipped: u64,
    /// Correct events whose class changed.
    pub flipped_correct: u64,
    /// Sums of event weights (1 without a weight column): all, correct, flipped, both.
    pub weight: ExactSum,
    pub weight_correct: ExactSum,
    pub weight_flipped: ExactSum,
    pub weight_flipped_correct: ExactSum,
}

/// The exact sums, by their names in the summary file.
const SUMS: [&str; 4] = ["sum_weights", "sum_weights_correct", "sum_weights_flipped", "sum_weights_flipped_correct"];

impl AttackSummary {
    /// The summary of no events.
    pub fn new(attack: &str) -> Self {
        AttackSummary {
            attack: attack.to_string(),
            labelled: false,
            events: 0,
            correct: 0,
            flipped: 0,
            flipped_correct: 0,
            weight: ExactSum::new(),
            weight_correct: ExactSum::new(),
            weight_flipped: ExactSum::new(),
            weight_flipped_correct: ExactSum::new(),
        }
    }

    /// The summary of one chunk's outcome.
    pub fn of_chunk(attack: &str, ds: &Dataset, out: &Outcome) -> Self {
        let r = &out.attack;
        let mut s = AttackSummary::new(attack);
        s.labelled = ds.label().is_some();
        for i in 0..ds.len() {
            let w = ds.weight().map_or(1.0, |w| w[i]);
            let correct = ds.label().is_none_or(|l| l[i] == r.class_before[i]);
            let flipped = r.class_before[i] != r.class_after[i];
            s.events += 1;
            s.weight.add(w);
            if correct {
                s.correct += 1;
                s.weight_correct.add(w);
            }
            if flipped {
                s.flipped += 1;
                s.weight_flipped.add(w);
            }
            if correct && flipped {
                s.flipped_correct += 1;
                s.weight_flipped_correct.add(w);
            }
        }
        s
    }

    fn sums(&self) -> [&ExactSum; 4] {
        [&self.weight, &self.weight_correct, &self.weight_flipped, &self.weight_flipped_correct]
    }

    /// Adds another part's summary (of the same attack, on events labelled alike; an empty
    /// summary takes the other's labelling).
    pub fn merge(&mut self, other: &AttackSummary) -> Result<()> {
        if other.attack != self.attack {
            return Err(Error::arg(
                "merge",
                format!("cannot merge summaries of '{}' and '{}'", self.attack, other.attack),
            ));
        }
        if self.events == 0 {
            self.labelled = other.labelled;
        } else if other.events > 0 && other.labelled != self.labelled {
            return Err(Error::arg("merge", "cannot merge a summary of labelled events with one of unlabelled events"));
        }
        self.events += other.events;
        self.correct += other.correct;
        self.flipped += other.flipped;
        self.flipped_correct += other.flipped_correct;
        self.weight.merge(&other.weight);
        self.weight_correct.merge(&other.weight_correct);
        self.weight_flipped.merge(&other.weight_flipped);
        self.weight_flipped_correct.merge(&other.weight_flipped_correct);
        Ok(())
    }

    /// Events flipped, over all events (NaN for no events).
    pub fn flip_fraction(&self) -> f64 {
        self.flipped as f64 / self.events as f64
    }

    /// Correct events flipped, over correct events (NaN when none is correct).
    pub fn flip_fraction_correct(&self) -> f64 {
        self.flipped_correct as f64 / self.correct as f64
    }

    /// The weight of the flipped events over the weight of all events.
    pub fn weighted_flip_fraction(&self) -> f64 {
        self.weight_flipped.value() / self.weight.value()
    }

    /// The summary file: the numbers, and the exact sums' digits under `exact` (what
    /// [`AttackSummary::from_json`] and merging read).
    pub fn to_json(&self) -> Value {
        let mut exact = Map::new();
        for (name, s) in SUMS.iter().zip(self.sums()) {
            exact.insert(name.to_string(), json!(s.digits()));
        }
        let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        let mut m = Map::new();
        m.insert("attack".into(), json!(self.attack));
        m.insert("labelled".into(), json!(self.labelled));
        m.insert("events".into(), json!(self.events));
        m.insert("correct".into(), json!(self.correct));
        m.insert("flipped".into(), json!(self.flipped));
        m.insert("flipped_correct".into(), json!(self.flipped_correct));
        m.insert("flip_fraction".into(), num(self.flip_fraction()));
        m.insert("flip_fraction_correct".into(), num(self.flip_fraction_correct()));
        m.insert("weighted_flip_fraction".into(), num(self.weighted_flip_fraction()));
        for (name, s) in SUMS.iter().zip(self.sums()) {
            m.insert(name.to_string(), json!(s.value()));
        }
        m.insert("exact".into(), Value::Object(exact));
        Value::Object(m)
    }

    /// Reads a summary file's JSON (`file` names it in errors).
    pub fn from_json(file: &str, v: &Value) -> Result<Self> {
        let bad = |what: &str| Error::arg("merge", format!("{file}: not a streamed-attack summary ({what})"));
        let count = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(&format!("no count '{k}'")));
        let sum = |k: &str| {
            let d: Option<Vec<i64>> = v
                .get("exact")
                .and_then(|e| e.get(k))
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_i64).collect());
            d.and_then(|d| ExactSum::from_digits(&d)).ok_or_else(|| bad(&format!("no exact sum '{k}'")))
        };
        Ok(AttackSummary {
            attack: v.get("attack").and_then(Value::as_str).ok_or_else(|| bad("no 'attack'"))?.to_string(),
            labelled: v.get("labelled").and_then(Value::as_bool).ok_or_else(|| bad("no 'labelled'"))?,
            events: count("events")?,
            correct: count("correct")?,
            flipped: count("flipped")?,
            flipped_correct: count("flipped_correct")?,
            weight: sum(SUMS[0])?,
            weight_correct: sum(SUMS[1])?,
            weight_flipped: sum(SUMS[2])?,
            weight_flipped_correct: sum(SUMS[3])?,
        })
    }
}
