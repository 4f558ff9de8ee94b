//! s-scans: an attack run over a list of scales s, and each event's flip threshold s_flip.
//!
//! At every s the attack runs with every σ multiplied by s; the table holds the flip fraction
//! with its binomial standard error `√(p(1−p)/n)`, split (when labels exist) into initially
//! correctly and incorrectly classified events and by true class. `s_flip` is the smallest s of
//! the grid that flips the event (∞ if none), refined for MiniFool by bisection between the
//! last grid point that did not flip and the first that did (per-event scales, all events in
//! one batched run per bisection step). Nothing here needs labels except the split. Each row
//! also counts the events the attack left `stalled` (a saturated score that cannot move), so
//! a flip fraction that stays low because of them can be told from a robust model.

use ndarray::ArrayView2;

use super::result::AttackResult;
use super::uncertainty::UncertaintyModel;
use super::Attack;
use crate::error::{Error, Result};
use crate::model::{Model, Output};
use crate::optim::Control;

/// A flip fraction with its count and standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction {
    /// Events in the group.
    pub n: usize,
    /// Flipped fraction (0 for an empty group).
    pub p: f64,
    /// Binomial standard error √(p(1−p)/n).
    pub err: f64,
}

impl Fraction {
    fn of(flags: impl Iterator<Item = bool>) -> Self {
        let (mut n, mut k) = (0usize, 0usize);
        for f in flags {
            n += 1;
            k += usize::from(f);
        }
        let p = if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let err = if n == 0 { 0.0 } else { (p * (1.0 - p) / n as f64).sqrt() };
        Fraction { n, p, err }
    }
}

/// One row of the scan table.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanRow {
    /// The scale.
    pub s: f64,
    /// All events.
    pub all: Fraction,
    /// Initially correctly classified events (with labels).
    pub correct: Option<Fraction>,
    /// Initially misclassified events (with labels).
    pub incorrect: Option<Fraction>,
    /// Per true class (with labels).
    pub by_class: Vec<Fraction>,
    /// Median χ² of the flipped events (NaN when none flipped).
    pub median_chi2_flipped: f64,
    /// Events the attack left `stalled` (MiniFool: a saturated score that could not move).
    pub stalled: usize,
}

/// A whole scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    /// One row per s, in the order given.
    pub rows: Vec<ScanRow>,
    /// Per event: the smallest s that flips it (∞ when none does).
    pub s_flip: Vec<f64>,
    /// Per event: initially correctly classified (with labels).
    pub correct: Option<Vec<bool>>,
}

/// Runs `attack` at every s of `s_values` (relative to its uncertainty model's own scale) on
/// the events `x0`, with optional true `labels`; `bisect` extra runs refine s_flip for attacks
/// with per-event scales (MiniFool).
pub fn s_scan(
    model: &dyn Model,
    x0: ArrayView2<'_, f32>,
    labels: Option<&[i64]>,
    attack: &dyn Attack,
    s_values: &[f64],
    bisect: usize,
    control: &Control,
) -> Result<Scan> {
    check_s(s_values)?;
    crate::limits::check("s_scan", "number of s values", s_values.len(), crate::limits::SCAN_POINTS)?;
    crate::limits::check("s_scan", "bisect", bisect, crate::limits::SCAN_BISECT)?;
    let unc = attack.budget().ok_or_else(|| {
        Error::arg(
            "s_scan",
            format!(
                "{} has no uncertainty budget to scale; scan {}",
                attack.name(),
                super::attack_names(true).join(", ")
            ),
        )
    })?;
    let n = x0.nrows();
    if n == 0 {
        return Err(Error::Empty { op: "s_scan", what: "the dataset".into() });
    }
    if model.output() == Output::Linear {
        return Err(Error::BadArgument {
            func: "s_scan".into(),
            problem: "flip fractions need a classifier (sigmoid or softmax output), not a regression model".into(),
        });
    }
    let clean = model.predict_class(x0)?;
    let correct: Option<Vec<bool>> = labels.map(|l| l.iter().zip(&clean).map(|(a, b)| a == b).collect());
    let mut order: Vec<usize> = (0..s_values.len()).collect();
    order.sort_by(|&a, &b| s_values[a].total_cmp(&s_values[b]));
    let mut rows = vec![None; s_values.len()];
    let mut s_flip = vec![f64::INFINITY; n];
    let mut below = vec![0.0f64; n];
    for &k in &order {
        let s = s_values[k];
        let scaled = unc.with_scale(unc.scale() * s)?;
        let r = attack.at_budget(model, &scaled, x0, &clean, control)?;
        let stalled = r.reason.iter().filter(|r| **r == "stalled").count();
        let (flipped, chi2) = (r.flipped(), r.chi2);
        for i in 0..n {
            if flipped[i] && s_flip[i].is_infinite() {
                s_flip[i] = s;
            } else if !flipped[i] && s_flip[i].is_infinite() {
                below[i] = s;
            }
        }
        rows[k] = Some(ScanRow { stalled, ..row(s, &flipped, &chi2, labels, correct.as_deref()) });
    }
    refine(model, unc, x0, attack, bisect, control, &mut s_flip, &mut below)?;
    let rows = rows.into_iter().flatten().collect();
    Ok(Scan { rows, s_flip, correct })
}

fn check_s(s_values: &[f64]) -> Result<()> {
    if s_values.is_empty() {
        return Err(Error::Empty { op: "s_scan", what: "the list of s values".into() });
    }
    if let Some(s) = s_values.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::BadOption {
            func: "s_scan".into(),
            key: "s".into(),
            problem: format!("must hold only finite numbers > 0, got {s}"),
        });
    }
    Ok(())
}

fn row(s: f64, flipped: &[bool], chi2: &[f64], labels: Option<&[i64]>, correct: Option<&[bool]>) -> ScanRow {
    let all = Fraction::of(flipped.iter().copied());
    let pick =
        |want: bool| correct.map(|c| Fraction::of(flipped.iter().zip(c).filter(|(_, c)| **c == want).map(|(f, _)| *f)));
    let by_class = match labels {
        Some(l) => {
            let k = l.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
            (0..k)
                .map(|c| Fraction::of(flipped.iter().zip(l).filter(|(_, y)| **y == c as i64).map(|(f, _)| *f)))
                .collect()
        }
        None => Vec::new(),
    };
    let median_chi2_flipped = AttackResult::median_of_flipped(chi2, flipped);
    ScanRow { s, all, correct: pick(true), incorrect: pick(false), by_class, median_chi2_flipped, stalled: 0 }
}

/// Bisection of s_flip between `below` (no flip) and `s_flip` (flip) for events that flipped,
/// for attacks with per-event scales.
#[allow(clippy::too_many_arguments)]
fn refine(
    model: &dyn Model,
    unc: &UncertaintyModel,
    x0: ArrayView2<'_, f32>,
    attack: &dyn Attack,
    steps: usize,
    control: &Control,
    s_flip: &mut [f64],
    below: &mut [f64],
) -> Result<()> {
    let idx: Vec<usize> = (0..s_flip.len()).filter(|&i| s_flip[i].is_finite()).collect();
    if idx.is_empty() || steps == 0 {
        return Ok(());
    }
    let xs = x0.select(ndarray::Axis(0), &idx);
    for _ in 0..steps {
        let mid: Vec<f64> = idx.iter().map(|&i| 0.5 * (below[i] + s_flip[i])).collect();
        let scales: Vec<f32> = mid.iter().map(|&m| m as f32).collect();
        let Some(r) = attack.at_event_scales(model, unc, xs.view(), &scales, control)? else { return Ok(()) };
        for ((&i, &m), f) in idx.iter().zip(&mid).zip(r.flipped()) {
            if f {
                s_flip[i] = m;
            } else {
                below[i] = m;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::kinds::minifool::MiniFool;
    use crate::attack::test_support::{bench_sigma, trained};
    use crate::attack::{MiniFoolConfig, Projection};

    #[test]
    fn flip_fraction_grows_with_s_and_misclassified_events_flip_first() {
        let (m, ds) = trained(5, Output::Sigmoid);
        let unc = bench_sigma(&ds);
        let s_values = [0.25, 0.5, 1.0, 2.0, 4.0];
        let attack = MiniFool { cfg: MiniFoolConfig::default(), unc, proj: Projection::default() };
        let scan = s_scan(&m, ds.x(), ds.label(), &attack, &s_values, 4, &Control::quiet()).unwrap();
        let p: Vec<f64> = scan.rows.iter().map(|r| r.all.p).collect();
        assert!(p.windows(2).all(|w| w[1] >= w[0]), "{p:?}");
        assert!(p[4] > p[0]);
        // Errors are binomial: √(p(1−p)/n).
        let r = &scan.rows[2];
        assert!((r.all.err - (r.all.p * (1.0 - r.all.p) / r.all.n as f64).sqrt()).abs() < 1e-12);
        // The MiniFool paper's finding: misclassified events flip at smaller s.
        let correct = scan.correct.as_ref().unwrap();
        let median = |want: bool| {
            let mut v: Vec<f64> =
                scan.s_flip.iter().zip(correct).filter(|(_, c)| **c == want).map(|(s, _)| *s).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        assert!(median(false) < median(true), "{} vs {}", median(false), median(true));
        // Each refined s_flip lies in the scanned range and flips there.
        assert!(scan.s_flip.iter().all(|s| s.is_infinite() || (*s > 0.0 && *s <= 4.0)));
        // Label-free: no split, the same overall fractions.
        let free = s_scan(&m, ds.x(), None, &attack, &s_values, 0, &Control::quiet()).unwrap();
        assert!(free.rows[0].correct.is_none() && free.rows[0].by_class.is_empty());
        assert_eq!(free.rows[3].all, scan.rows[3].all);
    }

    #[test]
    fn the_table_counts_stalled_events() {
        // The saturated event of the MiniFool test (logit 100) stalls at every s; the other
        // (logit 0.1) flips at every s.
        let m = crate::attack::test_support::logistic(&[100.0, 0.0], 0.0);
        let specs = vec![crate::attack::FeatureSigma::absolute(1.0); 2];
        let unc = UncertaintyModel::new(vec!["a".into(), "b".into()], specs).unwrap();
        let x0 = ndarray::array![[1.0f32, 0.0], [0.001, 0.0]];
        let a = MiniFool { cfg: MiniFoolConfig::default(), unc: unc.clone(), proj: Projection::default() };
        let scan = s_scan(&m, x0.view(), None, &a, &[0.5, 2.0], 0, &Control::quiet()).unwrap();
        assert_eq!(scan.rows.iter().map(|r| (r.stalled, r.all.p)).collect::<Vec<_>>(), vec![(1, 0.5), (1, 0.5)]);
        // PGD has no stalled reason.
        let cfg = crate::attack::PgdConfig::fgsm(0.5, crate::attack::Norm::Linf);
        let pgd = crate::attack::kinds::pgd::Gradient::new("fgsm", cfg, unc, Projection::default());
        let scan = s_scan(&m, x0.view(), None, &pgd, &[1.0], 0, &Control::quiet()).unwrap();
        assert_eq!(scan.rows[0].stalled, 0);
    }

    #[test]
    fn absurd_grids_are_limit_errors() {
        let m = crate::attack::test_support::logistic(&[1.0], 0.0);
        let unc = UncertaintyModel::new(vec!["a".into()], vec![crate::attack::FeatureSigma::absolute(1.0)]).unwrap();
        let x0 = ndarray::array![[1.0f32]];
        let a = MiniFool { cfg: MiniFoolConfig::default(), unc: unc.clone(), proj: Projection::default() };
        let many = vec![1.0; crate::limits::SCAN_POINTS + 1];
        let e = s_scan(&m, x0.view(), None, &a, &many, 0, &Control::quiet()).unwrap_err();
        assert_eq!(e.to_string(), "s_scan: number of s values 10001 is over the limit of 10000");
        let e = s_scan(&m, x0.view(), None, &a, &[1.0], 65, &Control::quiet()).unwrap_err();
        assert_eq!(e.to_string(), "s_scan: bisect 65 is over the limit of 64");
        let cfg = MiniFoolConfig { memory: 1_000_000, ..MiniFoolConfig::default() };
        let e =
            crate::attack::minifool(&m, &unc, x0.view(), &cfg, &Projection::default(), &Control::quiet()).unwrap_err();
        assert_eq!(e.to_string(), "minifool: memory 1000000 is over the limit of 1000");
    }

    #[test]
    fn bad_scales_are_errors() {
        let (m, ds) = trained(5, Output::Sigmoid);
        let unc = bench_sigma(&ds);
        let a = MiniFool { cfg: MiniFoolConfig::default(), unc, proj: Projection::default() };
        for bad in [vec![], vec![1.0, 0.0], vec![-1.0], vec![f64::NAN]] {
            assert!(s_scan(&m, ds.x(), None, &a, &bad, 0, &Control::quiet()).is_err());
        }
    }
}
