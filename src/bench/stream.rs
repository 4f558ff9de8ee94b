//! Timing kernel behind `nuisance bench stream_pgd`: PGD-20 streamed over a chain of 10
//! Parquet files of the reference task (2 M events) in chunks of 100k, next to the in-memory
//! `pgd` figure, with the peak resident memory of the streamed run against the dataset's size.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::{json, Value as Json};

use super::gradient::{gradient_attack, unit_sigma};
use crate::attack::{configure, Purpose, Setup, Value, Values};
use crate::data::chain::Chain;
use crate::data::io::ReadOptions;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::optim::Control;
use crate::stream::{attack_chain, rss};

/// Files in the chain, events per file, events per chunk (and per row group).
const FILES: usize = 10;
const PER_FILE: usize = 200_000;
const CHUNK: usize = 100_000;

/// Writes `parts` (features and label, concatenated) to `path` in row groups of [`CHUNK`].
fn write_file(path: &Path, parts: &[&Dataset]) -> Result<()> {
    let io = |e: String| Error::arg("bench", format!("writing {}: {e}", path.display()));
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for (j, name) in parts[0].names().iter().enumerate() {
        let v = parts.iter().flat_map(|d| d.x().column(j).to_vec());
        cols.push((name.clone(), Arc::new(Float32Array::from_iter_values(v))));
    }
    let labels = parts.iter().flat_map(|d| d.label().map(|l| l.to_vec()).unwrap_or_else(|| vec![0; d.len()]));
    cols.push(("label".into(), Arc::new(Int64Array::from_iter_values(labels))));
    let batch = RecordBatch::try_from_iter(cols).map_err(|e| io(e.to_string()))?;
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(CHUNK)).build();
    let f = File::create(path).map_err(|e| io(e.to_string()))?;
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).map_err(|e| io(e.to_string()))?;
    w.write(&batch).map_err(|e| io(e.to_string()))?;
    w.close().map_err(|e| io(e.to_string()))?;
    Ok(())
}

/// The chain's files in `dir`: with `--fixtures` the reference test events repeated (20 × 100k),
/// else fresh reference-task events (seeds 100 to 109).
fn write_chain(dir: &Path, test: &Dataset, fixtures: bool) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(FILES);
    for k in 0..FILES {
        let p = dir.join(format!("part{k:02}.parquet"));
        if fixtures {
            let copies: Vec<&Dataset> = std::iter::repeat_n(test, PER_FILE / test.len().max(1)).collect();
            write_file(&p, &copies)?;
        } else {
            write_file(&p, &[&crate::data::synthetic::gaussians(PER_FILE, 100 + k as u64)])?;
        }
        paths.push(p);
    }
    Ok(paths)
}

/// PGD-20 (ε = 0.1, steps of 0.01, σ = 1) over the chain, per-event table written to `out`;
/// the seconds taken and the flip fraction.
fn stream_once(model: &Mlp, chain: &Chain, out: &Path) -> Result<(f64, f64)> {
    let mut cfg = |ds: &Dataset| {
        let unc = unit_sigma(ds)?;
        let setup = Setup { model, events: ds, unc: Some(&unc), purpose: Purpose::Script };
        let values = Values::new("pgd")
            .with("eps", Value::Float(0.1))
            .with("steps", Value::Int(20))
            .with("step", Value::Float(0.01));
        configure("pgd", &setup, values)
    };
    let t0 = Instant::now();
    let s = attack_chain("pgd", chain, model, CHUNK, Some(out), &Control::quiet(), &mut cfg)?;
    Ok((t0.elapsed().as_secs_f64(), s.flip_fraction()))
}

/// `stream_pgd`: events/s of the streamed PGD-20 next to the in-memory `pgd` on the test
/// events, and the streamed run's peak resident memory against the chain's size.
pub fn stream_pgd(model: &Mlp, test: &Dataset, fixtures: bool, repeats: usize) -> Result<Vec<Json>> {
    let dir = std::env::temp_dir().join(format!("nuisance_bench_stream_{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let result = (|| {
        let paths = write_chain(&dir, test, fixtures)?;
        let disk: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        let chain = Chain::open(&paths, &ReadOptions::default())?;
        let events = chain.events();
        // the chain as one in-memory Dataset: float32 features and an i64 label per event
        let bytes = events as u64 * (chain.names().len() as u64 * 4 + 8);
        // in memory: the `pgd` benchmark's run (after a warm-up, as there)
        gradient_attack(model, test, 20, 0.01)?;
        let mut in_memory = Vec::new();
        for _ in 0..repeats.max(1) {
            in_memory.push(gradient_attack(model, test, 20, 0.01)?["events_per_s"].as_f64().unwrap_or(f64::NAN));
        }
        in_memory.sort_by(f64::total_cmp);
        let in_memory = in_memory[in_memory.len() / 2];
        // streamed: the peak is measured from the resident size just before the run
        let out = dir.join("result.parquet");
        let reset = rss::reset_peak();
        let base = rss::current();
        let mut runs = Vec::new();
        for _ in 0..repeats.max(1) {
            runs.push(stream_once(model, &chain, &out)?);
        }
        let peak = rss::peak();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (secs, flip) = runs[runs.len() / 2];
        let rate = events as f64 / secs;
        let mb = |b: u64| b as f64 / (1u64 << 20) as f64;
        let growth = match (peak, base) {
            (Some(p), Some(b)) if reset => Some(p.saturating_sub(b)),
            _ => None,
        };
        Ok(vec![json!({
            "bench": "stream_pgd",
            "events_per_s": rate,
            "in_memory_pgd_events_per_s": in_memory,
            "ratio_to_in_memory": rate / in_memory,
            "flip_rate": flip,
            "n": events,
            "files": FILES,
            "chunk": CHUNK,
            "steps": 20,
            "dataset_mb": mb(bytes),
            "dataset_disk_mb": mb(disk),
            "rss_before_mb": base.map(mb),
            "peak_rss_mb": peak.map(mb),
            "peak_growth_mb": growth.map(mb),
            "peak_growth_over_dataset": growth.map(|g| g as f64 / bytes as f64),
            "peak_rss_over_dataset": peak.map(|p| p as f64 / bytes as f64),
        })])
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
