//! Timing kernel behind `nuisance bench rdsa` (protocol of `shared/guide/benchmarks.md`): every
//! test event gets 10 tries; a try replaces a uniformly random 3-subset of the features, each
//! by that feature's value in an independent uniformly random event of the same set; an event
//! flips if any try flips.

use std::time::Instant;

use ndarray::Array2;
use serde_json::{json, Value as Json};

use super::median_seconds;
use crate::attack::{configure, Purpose, Setup, Value, Values};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Mlp;
use crate::optim::Control;
use crate::rng::Stream;

/// The protocol as RDSA options: every feature may be drawn, 3 per try, 10 tries, all
/// evaluated, empirical draws, seed 0.
pub fn protocol(test: &Dataset) -> Values {
    Values::new("rdsa")
        .with("continuous", Value::Strs(test.names().to_vec()))
        .with("k", Value::Int(3))
        .with("steps", Value::Int(10))
        .with("sampling", Value::Str("empirical".into()))
        .with("subset", Value::Str("try".into()))
        .with("stop_at_flip", Value::Bool(false))
        .with("seed", Value::Int(0))
}

/// The batched attack on every test event, median of `repeats` timings (preparation of the
/// marginals and the clean forward pass included), plus the original code's per-event loop
/// shape, written in Rust (so far faster than the Python original), on the first
/// `loop_events` events.
pub fn rdsa_bench(model: &Mlp, test: &Dataset, repeats: usize, loop_events: usize) -> Result<Json> {
    let setup = Setup { model, events: test, unc: None, purpose: Purpose::Script };
    let mut last = None;
    let secs = median_seconds(repeats, || {
        let attack = configure("rdsa", &setup, protocol(test))?;
        last = Some(attack.run(model, test.x(), None, &Control::quiet())?);
        Ok(())
    })?;
    let r = last.ok_or_else(|| crate::Error::arg("bench", "internal: no run"))?;
    let n = test.len() as f64;
    let try_flip_rate = r.summary.iter().find(|(k, _)| *k == "try_flip_fraction").map(|(_, v)| v.clone());
    let try_flip_rate = match try_flip_rate {
        Some(crate::attack::Summary::Float(f)) => f,
        _ => f64::NAN,
    };
    let per_event = per_event_loop(model, test, loop_events.min(test.len()), 0)?;
    Ok(json!({
        "bench": "rdsa",
        "events_per_s": n / secs,
        "event_flip_rate": r.attack.flip_fraction(),
        "try_flip_rate": try_flip_rate,
        "n": test.len(),
        "tries": 10,
        "k": 3,
        "rust_per_event_loop_events_per_s": per_event,
        "speedup_vs_rust_per_event_loop": n / secs / per_event,
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
