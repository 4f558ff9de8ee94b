//! Model scores streamed over a chain: every event's outputs written as a per-event table
//! (`event`, `label` and `weight` when the chain has them, `score` or `score_0`, `score_1`, …),
//! and a weighted histogram of one output with fixed edges, in total and per class, folded
//! exactly (`Hist`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array};
use serde_json::{json, Map, Value};

use super::driver::{each_chunk, table};
use super::exact::ExactSum;
use super::hist::Hist;
use crate::data::chain::Chain;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::Control;

/// Events, Σw and the histograms of a streamed scoring.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSummary {
    /// The output histogrammed.
    pub output: usize,
    pub events: u64,
    pub weight: ExactSum,
    /// All events, and per label class.
    pub hist: Hist,
    pub classes: BTreeMap<i64, Hist>,
}

impl ScoreSummary {
    /// `#{ output, events, sum_weights, histogram, classes: #{ "0": histogram, … } }`.
    pub fn to_json(&self) -> Value {
        let classes: Map<String, Value> = self.classes.iter().map(|(l, h)| (l.to_string(), h.to_json())).collect();
        json!({
            "output": self.output,
            "events": self.events,
            "sum_weights": self.weight.value(),
            "histogram": self.hist.to_json(),
            "classes": classes,
            "exact": { "sum_weights": self.weight.digits() },
        })
    }
}

/// Scores every event of `chain` with `model` in chunks of at most `chunk` events, filling
/// `empty` (a histogram with the edges wanted) with output `output` (default: the last).
pub fn scores_chain(
    chain: &Chain,
    model: &dyn Model,
    chunk: usize,
    out: Option<&Path>,
    empty: Hist,
    output: Option<usize>,
    control: &Control,
) -> Result<ScoreSummary> {
    let k = model.n_outputs().max(1);
    let output = output.unwrap_or(k - 1);
    if output >= k {
        return Err(Error::arg(
            "stream_scores",
            format!("output {output} asked for; the model has {k} (0 to {})", k - 1),
        ));
    }
    let mut s =
        ScoreSummary { output, events: 0, weight: ExactSum::new(), hist: empty.clone(), classes: BTreeMap::new() };
    each_chunk("stream_scores", "stream_scores", chain, chunk, out, control, &mut |c, ds| {
        model.check_features(ds)?;
        ds.check_finite("stream_scores")?;
        let scores = model.scores(model.inputs(ds)?.view())?;
        for i in 0..ds.len() {
            let w = ds.weight().map_or(1.0, |w| w[i]);
            let v = f64::from(scores[[i, output]]);
            s.events += 1;
            s.weight.add(w);
            s.hist.fill(v, w);
            if let Some(l) = ds.label() {
                s.classes.entry(l[i]).or_insert_with(|| empty.clone()).fill(v, w);
            }
        }
        let mut cols: Vec<(String, ArrayRef)> = vec![(
            "event".into(),
            Arc::new(Int64Array::from_iter_values((0..ds.len()).map(|i| (c.first_event + i) as i64))),
        )];
        if let Some(l) = ds.label() {
            cols.push(("label".into(), Arc::new(Int64Array::from(l.to_vec()))));
        }
        if let Some(w) = ds.weight() {
            cols.push(("weight".into(), Arc::new(Float32Array::from(w.to_vec()))));
        }
        for j in 0..scores.ncols() {
            let name = if scores.ncols() == 1 { "score".to_string() } else { format!("score_{j}") };
            cols.push((name, Arc::new(Float32Array::from_iter_values(scores.column(j).iter().copied()))));
        }
        table("stream_scores", cols)
    })?;
    Ok(s)
}
