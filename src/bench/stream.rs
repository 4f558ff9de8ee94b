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

/// CPU seconds (user + system, all threads) the process has used, where known.
fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a rusage into the pointer it is given, which is valid.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: the call succeeded, so the struct is initialised.
        let u = unsafe { u.assume_init() };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
        Some(t(u.ru_utime) + t(u.ru_stime))
    }
    #[cfg(not(unix))]
    None
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64, Option<f64>)> {
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let v = f()?;
    let cpu = match (c0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok((v, t0.elapsed().as_secs_f64(), cpu))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `stream_pgd`: events/s of the streamed PGD-20 next to the in-memory `pgd` on the test
/// events (the two alternate, so a shared machine's load falls on both alike; rates per CPU
/// second too, which the load disturbs less), and the streamed run's peak resident memory
/// above the resident size before it, against the chain's size.
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
        let out = dir.join("result.parquet");
        // warm-up of the in-memory run, as the `pgd` benchmark does
        gradient_attack(model, test, 20, 0.01)?;
        let (mut mem_wall, mut mem_cpu, mut st_wall, mut st_cpu) = (vec![], vec![], vec![], vec![]);
        let (mut base, mut peak, mut growth, mut flip) = (None, None, None::<u64>, f64::NAN);
        for _ in 0..repeats.max(1) {
            let (_, w, c) = timed(|| gradient_attack(model, test, 20, 0.01))?;
            mem_wall.push(test.len() as f64 / w);
            mem_cpu.extend(c.map(|c| test.len() as f64 / c));
            let reset = rss::reset_peak();
            let b = rss::current();
            let ((_, f), w, c) = timed(|| stream_once(model, &chain, &out))?;
            flip = f;
            st_wall.push(events as f64 / w);
            st_cpu.extend(c.map(|c| events as f64 / c));
            if let (Some(p), Some(b), true) = (rss::peak(), b, reset) {
                if growth.is_none_or(|g| p.saturating_sub(b) > g) {
                    (base, peak, growth) = (Some(b), Some(p), Some(p.saturating_sub(b)));
                }
            }
        }
        let (rate, mem) = (median(st_wall), median(mem_wall));
        let (rate_cpu, mem_cpu) = (median(st_cpu), median(mem_cpu));
        let mb = |b: u64| b as f64 / (1u64 << 20) as f64;
        Ok(vec![json!({
            "bench": "stream_pgd",
            "events_per_s": rate,
            "in_memory_pgd_events_per_s": mem,
            "ratio_to_in_memory": rate / mem,
            "events_per_cpu_s": rate_cpu,
            "in_memory_pgd_events_per_cpu_s": mem_cpu,
            "ratio_to_in_memory_cpu": rate_cpu / mem_cpu,
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
