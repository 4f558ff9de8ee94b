//! Streaming: per-event attacks over a [`Chain`] one chunk at a time, in bounded memory.
//!
//! [`attack_chain`] reads a chunk, configures the attack on it (per-event goals such as the
//! labels belong to the chunk's events), runs it, appends the chunk's per-event results to a
//! Parquet file as one row group, and folds the chunk's counts and sums into an
//! [`AttackSummary`]; only one chunk (and its row group) is in memory at a time. The file is
//! written through [`atomic_write`]: it appears, complete, only when the last chunk is done.
//! Counts are integers and sums of weights are [`ExactSum`]s, so summaries of chunks (or of
//! shards) merge into exactly the summary of one run, whatever the chunk size.
//!
//! An attack streams when its result for an event depends on that event alone: FGSM, PGD
//! (its random start drawn from the event's own stream, keyed by the seed and the event's
//! position in the chain: [`crate::attack::Attack::place`]), MiniFool, and RDSA with its
//! marginals from a fixed `reference` sample (its tries keyed by position too). RDSA without
//! a reference (marginals of each chunk) and CONSERVAttack (the whole sample's histograms)
//! are refused by the caller ([`streamable`]).

pub mod cut;
mod driver;
pub mod exact;
pub mod hist;
pub mod histogram;
pub mod rss;
pub mod scores;
mod summary;
pub mod yields;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch};

pub use self::exact::ExactSum;
pub use self::summary::AttackSummary;
use crate::attack::{Attack, Outcome};
use crate::data::chain::Chain;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::Control;

/// Whether attack `name` with these option values can stream (see the module documentation);
/// `Err` says why not.
pub fn streamable(name: &str, has_reference: bool, per_event_labels: bool) -> std::result::Result<(), String> {
    match name {
        "rdsa" if !has_reference => Err("RDSA draws from the marginals of a sample; streamed, each chunk would have \
                                         its own. Give the sample as `options: #{ reference: … }` (a Dataset that \
                                         fits in memory, e.g. `c.read_chunk(0, 100000)`)"
            .into()),
        "conservattack" => Err("CONSERVAttack needs the whole sample (its histograms and correlations); \
                                read the chain with `read()` when it fits in memory"
            .into()),
        _ if per_event_labels => Err("`labels` lists one class per event of one dataset; a streamed attack takes \
                                      the chain's label column"
            .into()),
        _ => Ok(()),
    }
}

/// Runs a per-event attack over `chain` in chunks of at most `chunk` events, writing the
/// per-event table to `out` (when given) and returning the summary. `configure` builds the
/// attack for a chunk's events.
pub fn attack_chain(
    name: &str,
    chain: &Chain,
    model: &dyn Model,
    chunk: usize,
    out: Option<&Path>,
    control: &Control,
    configure: &mut dyn FnMut(&Dataset) -> Result<Box<dyn Attack>>,
) -> Result<AttackSummary> {
    // Each chunk's attack runs without a bar of its own; the interrupt flag is shared.
    let quiet = Control { progress: false, ..control.clone() };
    let mut summary = AttackSummary::new(name);
    driver::each_chunk("stream_attack", name, chain, chunk, out, control, &mut |c, ds| {
        model.check_features(ds)?;
        ds.check_finite("stream_attack")?;
        let mut attack = configure(ds)?;
        attack.place(c.first_event as u64);
        let x = model.inputs(ds)?;
        let outcome = attack.run(model, x.view(), ds.label(), &quiet)?;
        summary.merge(&AttackSummary::of_chunk(name, ds, &outcome))?;
        table(model, c.first_event, ds, &outcome).map(Some)
    })?;
    Ok(summary)
}

/// The per-event table of one chunk: the event's position in the chain, its label and weight
/// (when the chain has them), the perturbed inputs, scores and classes before and after,
/// `flipped`, χ², and the attack's own columns.
fn table(model: &dyn Model, first: usize, ds: &Dataset, out: &Outcome) -> Result<RecordBatch> {
    let r = &out.attack;
    let n = ds.len();
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    cols.push(("event".into(), Arc::new(Int64Array::from_iter_values((0..n).map(|i| (first + i) as i64)))));
    if let Some(l) = ds.label() {
        cols.push(("label".into(), Arc::new(Int64Array::from(l.to_vec()))));
    }
    if let Some(w) = ds.weight() {
        cols.push(("weight".into(), Arc::new(Float32Array::from(w.to_vec()))));
    }
    for (j, name) in model.input_names().into_iter().enumerate() {
        cols.push((name, Arc::new(Float32Array::from_iter_values(r.x.column(j).iter().copied()))));
    }
    let k = r.score_before.ncols();
    for (tag, s) in [("score_before", &r.score_before), ("score_after", &r.score_after)] {
        for j in 0..k {
            let name = if k == 1 { tag.to_string() } else { format!("{tag}_{j}") };
            cols.push((name, Arc::new(Float32Array::from_iter_values(s.column(j).iter().copied()))));
        }
    }
    cols.push(("class_before".into(), Arc::new(Int64Array::from(r.class_before.clone()))));
    cols.push(("class_after".into(), Arc::new(Int64Array::from(r.class_after.clone()))));
    cols.push(("flipped".into(), Arc::new(BooleanArray::from(r.flipped()))));
    cols.push(("chi2".into(), Arc::new(Float64Array::from(r.chi2.clone()))));
    for (name, v) in &out.columns {
        cols.push((name.clone(), Arc::new(Float32Array::from(v.clone()))));
    }
    RecordBatch::try_from_iter(cols).map_err(|e| Error::arg("stream_attack", format!("building the result table: {e}")))
}

#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod sums_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
