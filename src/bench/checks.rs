//! Timing kernels behind `nuisance bench checks`: the full checks of two samples (no C2ST), and
//! the incremental statistics CONSERVAttack needs per candidate move (tentative JSD with 100
//! bins, tentative relative correlation change with all features).

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};

use super::median_seconds;
use crate::data::Dataset;
use crate::error::Result;
use crate::optim::Control;
use crate::rng::Stream;
use crate::stats::binned::{Binning, FlowHist};
use crate::stats::checks::{checks, ChecksConfig};
use crate::stats::incremental::{CorrelationTracker, IncrementalJsd, RunningMoments};

/// `checks` of `test` against `train` (all features, 100 bins), median of `repeats`.
pub fn checks_bench(train: &Dataset, test: &Dataset, repeats: usize) -> Result<Value> {
    let cfg = ChecksConfig::default();
    let secs = median_seconds(repeats, || checks(train, test, &cfg, &Control::quiet()).map(|_| ()))?;
    let n = (train.len() + test.len()) as f64;
    Ok(json!({ "bench": "checks", "events_per_s": n / secs, "seconds": secs,
               "n_reference": train.len(), "n_candidate": test.len(), "features": train.n_features() }))
}

/// Tentative moves per second: JSD of feature 0 (100 bins) and the relative correlation change
/// (all features), each on `moves` random (event, value) pairs of `test`.
pub fn incremental_bench(test: &Dataset, moves: usize, repeats: usize) -> Result<Value> {
    let x = test.x();
    let col: Vec<f32> = x.column(0).to_vec();
    let b = Binning::of_reference(&col, 100)?;
    let h = FlowHist::fill(&b, &col, None);
    let inc = IncrementalJsd::new(b, &h.counts, &h.counts);
    let mut r = Stream::new(1, 0);
    let picks: Vec<(usize, usize, f64)> =
        (0..moves).map(|_| (r.below(x.nrows()), r.below(x.ncols()), r.uniform() * 6.0 - 3.0)).collect();
    let jsd_secs = median_seconds(repeats, || {
        let mut s = 0.0;
        for &(i, _, v) in &picks {
            s += inc.jsd_if_moved(f64::from(col[i]), v, 1.0);
        }
        black_box(s);
        Ok(())
    })?;
    let c0 = test.correlation(false);
    let mut tracker = CorrelationTracker::new(RunningMoments::new(x, None), c0);
    let mut row = vec![0.0; x.ncols()];
    let start = Instant::now();
    let mut s = 0.0;
    for &(i, j, v) in &picks {
        row.iter_mut().zip(x.row(i)).for_each(|(a, &b)| *a = f64::from(b));
        s += tracker.relative_change_if(&row, j, v, 1.0);
    }
    black_box(s);
    let corr_secs = start.elapsed().as_secs_f64();
    Ok(json!({ "bench": "incremental", "bins": 100, "features": x.ncols(),
               "jsd_moves_per_s": moves as f64 / jsd_secs, "corr_moves_per_s": moves as f64 / corr_secs }))
}
