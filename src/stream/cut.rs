//! A cut streamed over a chain: the selection expression evaluated per event, the pass flags
//! written as a per-event table (`event`, `pass`, and `label`, `weight` when the chain has
//! them), and the counts and weighted yields (total and per class) folded exactly.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Int64Array};
use serde_json::{json, Value};

use super::driver::{each_chunk, table};
use super::yields::Yields;
use crate::data::chain::Chain;
use crate::data::expr::Expr;
use crate::error::Result;
use crate::optim::Control;

/// The yields of a cut.
#[derive(Clone, Debug, PartialEq)]
pub struct CutSummary {
    /// The selection's source text.
    pub cut: String,
    pub yields: Yields,
}

impl CutSummary {
    /// The summary file: `cut` and the yields' fields.
    pub fn to_json(&self) -> Value {
        let mut v = self.yields.to_json();
        v["cut"] = json!(self.cut);
        v
    }
}

/// Evaluates `cut` on every event of `chain`, in chunks of at most `chunk` events.
pub fn cut_chain(chain: &Chain, cut: &Expr, chunk: usize, out: Option<&Path>, control: &Control) -> Result<CutSummary> {
    let mut yields = Yields::default();
    each_chunk("stream_cut", "stream_cut", chain, chunk, out, control, &mut |c, ds| {
        let pass = cut.eval_mask(ds)?;
        let mut part = Yields::default();
        for (i, &p) in pass.iter().enumerate() {
            part.add(ds.label().map(|l| l[i]), ds.weight().map_or(1.0, |w| w[i]), p);
        }
        yields.merge(&part);
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
        cols.push(("pass".into(), Arc::new(BooleanArray::from(pass))));
        table("stream_cut", cols)
    })?;
    Ok(CutSummary { cut: cut.source().to_string(), yields })
}
