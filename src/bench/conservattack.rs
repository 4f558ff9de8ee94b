//! Timing kernel behind `nuisance bench conservattack`: the reference's donut toy
//! (`shared/fixtures/conservattack/`: 5,000 correctly classified background events and the
//! 2→32→16→1 classifier) with the reference demo's settings, in faithful and strict mode,
//! configured through the registry as a script would. The reference ran the 10-iteration call
//! at 22.7–27.4 attacked samples/s on this machine kind (its fooling ratio after 10
//! iterations: 0.3332; its best iteration inside the default thresholds: 0.0528).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value as Json};

use crate::attack::{configure, Outcome, Purpose, Setup, Summary, Value, Values};
use crate::data::io::{read_parquet, ReadOptions};
use crate::error::Result;
use crate::model::{import_torch, Activation, TorchImport};
use crate::optim::Control;

/// The reference's per-iteration fooling ratios.
pub const REFERENCE_FOOLING: [f64; 10] =
    [0.0064, 0.009, 0.0528, 0.1566, 0.2072, 0.2498, 0.2818, 0.3028, 0.3202, 0.3332];

/// The fixture folder: `<fixtures>/conservattack`, else the copy in `tests/data/conservattack`.
fn folder(fixtures: Option<&Path>) -> PathBuf {
    match fixtures {
        Some(d) if d.join("conservattack").is_dir() => d.join("conservattack"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conservattack"),
    }
}

/// The demo's settings (`Attack/RunAttack.py`) with the reference's float64 feature ranges.
pub fn demo(mode: &str, seed: i64) -> Values {
    Values::new("conservattack")
        .with("mode", Value::Str(mode.into()))
        .with("steps", Value::Int(10))
        .with("bins", Value::Int(70))
        .with("min_change", Value::Float(0.001))
        .with("step", Value::Float(0.001))
        .with("alpha", Value::Float(6.0))
        .with("beta", Value::Float(1.0))
        .with("max_jsd_single_change", Value::Float(0.005))
        .with("max_frob_single_change", Value::Float(0.05))
        .with("use_no_change", Value::Bool(true))
        .with("randomize_step", Value::Bool(true))
        .with("random_step_frac", Value::Float(0.5))
        .with("num_candidates", Value::Int(150))
        .with("track_best_constraint_iter", Value::Bool(true))
        .with("min_values", Value::Floats(vec![-3.115752338015221, -3.3643518359787383]))
        .with("max_values", Value::Floats(vec![3.316359706686143, 3.233148802420074]))
        .with("seed", Value::Int(seed))
}

fn floats(o: &Outcome, key: &str) -> Vec<f64> {
    match o.summary.iter().find(|(k, _)| *k == key) {
        Some((_, Summary::Floats(v))) => v.clone(),
        _ => Vec::new(),
    }
}

fn float(o: &Outcome, key: &str) -> f64 {
    match o.summary.iter().find(|(k, _)| *k == key) {
        Some((_, Summary::Float(v))) => *v,
        _ => f64::NAN,
    }
}

/// CPU seconds used by the process so far (all threads; user + system), NaN where unknown.
fn cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
            return t(u.ru_utime) + t(u.ru_stime);
        }
    }
    f64::NAN
}

/// Medians over `repeats` runs of `f` of its wall time and of the CPU time it used (the
/// machine is shared: the CPU time tells the work done, the wall time what a user waits).
fn median_wall_and_cpu(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        f()?;
        wall.push(t0.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c0);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok((wall[wall.len() / 2], cpu[cpu.len() / 2]))
}

/// Faithful and strict runs on the donut: median wall and CPU time of the whole
/// 10-iteration call over `repeats`, attacked samples per second and per CPU-second, and the per-iteration fooling ratios.
pub fn conservattack_bench(fixtures: Option<&Path>, repeats: usize) -> Result<Vec<Json>> {
    let dir = folder(fixtures);
    let (ds, _) = read_parquet(&dir.join("attacked_clean.parquet"), &ReadOptions::default())?;
    let spec = TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..Default::default() };
    let model = import_torch(&dir.join("donut_mlp.safetensors"), &spec)?;
    let setup = Setup { model: &model, events: &ds, unc: None, purpose: Purpose::Script };
    let mut out = Vec::new();
    for mode in ["faithful", "strict"] {
        let mut last = None;
        let (secs, cpu) = median_wall_and_cpu(repeats, || {
            let attack = configure("conservattack", &setup, demo(mode, 0))?;
            last = Some(attack.run(&model, ds.x(), ds.label(), &Control::quiet())?);
            Ok(())
        })?;
        let r = last.ok_or_else(|| crate::Error::arg("bench", "internal: no run"))?;
        let fooling = floats(&r, "fooling_ratio_per_iteration");
        let n = ds.len() as f64;
        out.push(json!({
            "bench": "conservattack",
            "mode": mode,
            "n": ds.len(),
            "iterations": 10,
            "seconds": secs,
            "samples_per_s": n / secs,
            "speedup_vs_reference": n / secs / 27.4,
            "cpu_seconds": cpu,
            "samples_per_cpu_s": n / cpu,
            "fooling_ratio_per_iteration": fooling,
            "reference_fooling_ratio_per_iteration": REFERENCE_FOOLING,
            "max_jsd_per_iteration": floats(&r, "max_jsd_per_iteration"),
            "rel_corr_change_per_iteration": floats(&r, "rel_corr_change_per_iteration"),
            "best_constraint_fooling_ratio": float(&r, "best_constraint_fooling_ratio"),
        }));
    }
    Ok(out)
}
