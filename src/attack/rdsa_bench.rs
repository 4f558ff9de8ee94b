//! Timing kernel behind `nuisance bench rdsa` (protocol of `shared/guide/benchmarks.md`): every
//! test event gets 10 tries; a try replaces a uniformly random 3-subset of the features, each
//! by that feature's value in an independent uniformly random event of the same set; an event
//! flips if any try flips.

use std::time::Instant;

use ndarray::Array2;
use serde_json::{json, Value};

use super::rdsa::{Rdsa, RdsaConfig, Sampling, SubsetDraw};
use super::Projection;
use crate::bench::median_seconds;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Mlp;
use crate::optim::Control;
use crate::rng::Stream;

/// The protocol as an [`RdsaConfig`]: every feature may be drawn, 3 per try, 10 tries, all
/// evaluated, empirical draws.
pub fn protocol() -> RdsaConfig {
    RdsaConfig {
        k: 3,
        steps: 10,
        sampling: Sampling::Empirical,
        subset: SubsetDraw::PerTry,
        stop_at_flip: false,
        ..RdsaConfig::default()
    }
}

/// The batched attack on every test event, median of `repeats` timings (preparation of the
/// marginals included), plus the per-event loop on the first `loop_events` events.
pub fn rdsa_bench(model: &Mlp, test: &Dataset, repeats: usize, loop_events: usize) -> Result<Value> {
    let cfg = RdsaConfig { continuous: Some((0..test.n_features()).collect()), ..protocol() };
    let mut last = None;
    let secs = median_seconds(repeats, || {
        let r = Rdsa::new(test.names(), test.x(), None, &cfg, &Projection::default())?;
        last = Some(r.attack(model, test.x(), None, None, &Control::quiet())?);
        Ok(())
    })?;
    let r = last.ok_or_else(|| crate::Error::arg("bench", "internal: no run"))?;
    let n = test.len() as f64;
    let per_event = per_event_loop(model, test, loop_events.min(test.len()), cfg.seed)?;
    Ok(json!({
        "bench": "rdsa",
        "events_per_s": n / secs,
        "event_flip_rate": r.attack.flip_fraction(),
        "try_flip_rate": r.try_flip_fraction(),
        "n": test.len(),
        "tries": 10,
        "k": 3,
        "per_event_loop_events_per_s": per_event,
        "speedup_vs_per_event_loop": n / secs / per_event,
    }))
}

/// The reference code's shape: one event and one try at a time, one forward pass per try.
/// Returns events per second.
fn per_event_loop(model: &Mlp, test: &Dataset, events: usize, seed: u64) -> Result<f64> {
    let (n, d) = test.x().dim();
    let x = test.x();
    let t0 = Instant::now();
    let mut flips = 0usize;
    for i in 0..events {
        let row = x.row(i).to_owned().insert_axis(ndarray::Axis(0));
        let clean = model.predict_class(row.view())?[0];
        let mut s = Stream::new(seed, i as u64);
        for _ in 0..10 {
            let mut t: Array2<f32> = row.clone();
            let mut pool: Vec<usize> = (0..d).collect();
            for a in 0..3 {
                let b = a + s.below(d - a);
                pool.swap(a, b);
                t[[0, pool[a]]] = x[[s.below(n), pool[a]]];
            }
            flips += usize::from(model.predict_class(t.view())?[0] != clean);
        }
    }
    std::hint::black_box(flips);
    Ok(events as f64 / t0.elapsed().as_secs_f64())
}
