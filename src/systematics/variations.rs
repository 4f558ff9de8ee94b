//! Nominal variations: each nuisance at ±1σ (or at given θ values), all others at 0, and the
//! effect on chosen quantities — weighted yields in regions defined by cuts, the efficiency of
//! a score working point in each region, a histogram — with the envelope table.
//!
//! The envelope of a quantity: per nuisance the largest increase and the largest decrease
//! over its θ values, and the totals `√Σₖ (Δₖ⁺)²` and `√Σₖ (Δₖ⁻)²` (nuisances uncorrelated).

use std::fmt;

use super::nuisance::Systematics;
use super::vary::vary;
use crate::data::expr::Expr;
use crate::data::stats::histogram_values;
use crate::data::Dataset;
use crate::error::{Error, Result};

const OP: &str = "variations";

/// A score function of a dataset (one value per event), e.g. a classifier's.
pub type ScoreFn<'a> = &'a (dyn Fn(&Dataset) -> Result<Vec<f64>> + Sync);

/// What to measure on every varied dataset.
pub struct Quantities<'a> {
    /// Named regions (cuts); empty means one region `all`.
    pub regions: Vec<(String, Expr)>,
    /// The score, for efficiencies and score histograms.
    pub score: Option<ScoreFn<'a>>,
    /// Efficiency of `score > working_point` within each region (needs `score`).
    pub working_point: Option<f64>,
    /// A weighted histogram of an expression, or of the score when `None`: (of, bins, range).
    pub histogram: Option<(Option<Expr>, usize, (f64, f64))>,
}

/// One varied dataset's quantities.
#[derive(Clone, Debug, PartialEq)]
pub struct Variation {
    /// The nuisance varied (`nominal` for θ = 0 everywhere).
    pub nuisance: String,
    /// Its θ.
    pub theta: f64,
    /// The quantities, in [`Envelope::quantities`] order.
    pub values: Vec<f64>,
    /// The histogram's bin contents, when a histogram was asked for.
    pub hist: Option<Vec<f64>>,
}

/// Every variation's quantities, with the nominal.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Quantity names: `yield[region]`, `eff[region]`.
    pub quantities: Vec<String>,
    /// The nominal (every θ = 0).
    pub nominal: Variation,
    /// One per nuisance and θ value.
    pub rows: Vec<Variation>,
    /// The histogram's bin edges, when asked for.
    pub edges: Option<Vec<f64>>,
}

/// The varied datasets' quantities for each nuisance at each of `thetas` (others at 0).
pub fn variations(ds: &Dataset, syst: &Systematics, thetas: &[f64], q: &Quantities<'_>) -> Result<Envelope> {
    if thetas.is_empty() || thetas.iter().any(|t| !t.is_finite()) {
        return Err(Error::arg(OP, format!("θ values must be a non-empty list of finite numbers, got {thetas:?}")));
    }
    if q.working_point.is_some() && q.score.is_none() {
        return Err(Error::arg(OP, "a working point needs a model (the score to cut on)"));
    }
    if matches!(q.histogram, Some((None, ..))) && q.score.is_none() {
        return Err(Error::arg(OP, "a score histogram needs a model"));
    }
    super::vary::check(ds, syst)?;
    let regions: Vec<(String, Expr)> =
        if q.regions.is_empty() { vec![("all".into(), Expr::parse("1")?)] } else { q.regions.clone() };
    let mut names: Vec<String> = regions.iter().map(|(r, _)| format!("yield[{r}]")).collect();
    if q.working_point.is_some() {
        names.extend(regions.iter().map(|(r, _)| format!("eff[{r}]")));
    }
    let zero = vec![0.0; syst.nuisances().len()];
    let (nominal, edges) = measure(&vary(ds, syst, &zero)?, &regions, q, "nominal", 0.0)?;
    let mut rows = Vec::new();
    for (k, n) in syst.nuisances().iter().enumerate() {
        for &t in thetas {
            let mut theta = zero.clone();
            theta[k] = t;
            rows.push(measure(&vary(ds, syst, &theta)?, &regions, q, &n.name, t)?.0);
        }
    }
    Ok(Envelope { quantities: names, nominal, rows, edges })
}

fn measure(
    ds: &Dataset,
    regions: &[(String, Expr)],
    q: &Quantities<'_>,
    nuisance: &str,
    theta: f64,
) -> Result<(Variation, Option<Vec<f64>>)> {
    let w = ds.weights_or_ones();
    let score = q.score.map(|f| f(ds)).transpose()?;
    if let Some(s) = &score {
        if s.len() != ds.len() {
            return Err(Error::Shape { op: OP, expected: format!("{} scores", ds.len()), got: s.len().to_string() });
        }
    }
    let masks = regions.iter().map(|(_, e)| e.eval_mask(ds)).collect::<Result<Vec<_>>>()?;
    let yield_of = |m: &[bool], extra: &dyn Fn(usize) -> bool| -> f64 {
        m.iter().enumerate().filter(|(i, &pass)| pass && extra(*i)).map(|(i, _)| f64::from(w[i])).sum()
    };
    let mut values: Vec<f64> = masks.iter().map(|m| yield_of(m, &|_| true)).collect();
    if let (Some(wp), Some(s)) = (q.working_point, &score) {
        for (m, total) in masks.iter().zip(values.clone()) {
            let pass = yield_of(m, &|i| s[i] > wp);
            values.push(if total != 0.0 { pass / total } else { f64::NAN });
        }
    }
    let (hist, edges) = match &q.histogram {
        None => (None, None),
        Some((of, bins, range)) => {
            let v: Vec<f32> = match of {
                Some(e) => e.eval(ds)?.into_iter().map(|v| v as f32).collect(),
                None => score.as_deref().unwrap_or(&[]).iter().map(|&v| v as f32).collect(),
            };
            let h = histogram_values(&v, Some(&w), *bins, Some(*range))?;
            (Some(h.counts), Some(h.edges))
        }
    };
    Ok((Variation { nuisance: nuisance.to_string(), theta, values, hist }, edges))
}

/// The range of an expression's values on a dataset (for a histogram), widened by one when
/// all values are equal.
pub fn value_range(ds: &Dataset, e: &Expr) -> Result<(f64, f64)> {
    let v = e.eval(ds)?;
    let (lo, hi) =
        v.iter().filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
    if !lo.is_finite() {
        return Err(Error::arg(OP, format!("'{e}' has no finite value to histogram")));
    }
    Ok(if hi > lo { (lo, hi) } else { (lo, lo + 1.0) })
}

/// A classifier's score per event (single-output models). An event-level model with feature
/// names takes its features from the dataset by name; any other model reads its inputs
/// through [`Model::inputs`](crate::model::Model::inputs).
pub fn model_scores(m: &dyn crate::model::Model, ds: &Dataset) -> Result<Vec<f64>> {
    let x = match (m.as_mlp(), m.feature_names()) {
        (Some(_), Some(names)) => m.inputs(&ds.select(&names)?)?,
        _ => m.inputs(ds)?,
    };
    let s = m.scores(x.view())?;
    if s.ncols() != 1 {
        return Err(Error::arg(
            OP,
            format!("needs a single-output model (one score per event), got {} outputs", s.ncols()),
        ));
    }
    Ok(s.column(0).iter().map(|&v| f64::from(v)).collect())
}

impl Envelope {
    /// The histograms for a ratio plot: per nuisance its variation at the largest θ > 0 (up)
    /// and the most negative θ < 0 (down; the nominal when there is none).
    pub fn ratio_series(&self) -> Result<crate::plot::RatioSeries> {
        let (Some(edges), Some(nominal)) = (&self.edges, &self.nominal.hist) else {
            return Err(Error::arg("plot_ratio", "the variations have no histogram: give `histogram` to variations"));
        };
        let mut out: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut best: Vec<(f64, f64)> = Vec::new();
        for r in &self.rows {
            let Some(h) = &r.hist else { continue };
            if out.last().is_none_or(|(n, _, _)| *n != r.nuisance) {
                out.push((r.nuisance.clone(), nominal.clone(), nominal.clone()));
                best.push((0.0, 0.0));
            }
            let (Some(o), Some(b)) = (out.last_mut(), best.last_mut()) else { continue };
            if r.theta > b.0 {
                (o.1, b.0) = (h.clone(), r.theta);
            } else if r.theta < b.1 {
                (o.2, b.1) = (h.clone(), r.theta);
            }
        }
        Ok(crate::plot::RatioSeries { edges: edges.clone(), nominal: nominal.clone(), variations: out })
    }

    /// Per quantity: (largest increase, largest decrease) of each nuisance over its θ values,
    /// in nuisance order; each ≥ 0 and ≤ 0.
    pub fn per_nuisance(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in &self.rows {
            if out.last().is_none_or(|(n, _)| *n != r.nuisance) {
                out.push((r.nuisance.clone(), vec![(0.0, 0.0); self.quantities.len()]));
            }
            let Some((_, env)) = out.last_mut() else { continue };
            for (j, (v, v0)) in r.values.iter().zip(&self.nominal.values).enumerate() {
                let d = v - v0;
                if d.is_finite() {
                    env[j].0 = env[j].0.max(d);
                    env[j].1 = env[j].1.min(d);
                }
            }
        }
        out
    }

    /// Per quantity: the total increase and decrease, added in quadrature over nuisances.
    pub fn total(&self) -> Vec<(f64, f64)> {
        let per = self.per_nuisance();
        (0..self.quantities.len())
            .map(|j| {
                let up: f64 = per.iter().map(|(_, e)| e[j].0 * e[j].0).sum();
                let dn: f64 = per.iter().map(|(_, e)| e[j].1 * e[j].1).sum();
                (up.sqrt(), -dn.sqrt())
            })
            .collect()
    }
}

/// A value with enough digits for yields and efficiencies.
fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// A relative change in percent with its sign.
fn pct(d: f64, v0: f64) -> String {
    if v0 == 0.0 || !d.is_finite() {
        "-".into()
    } else {
        format!("{:+.2}%", 100.0 * d / v0)
    }
}

impl fmt::Display for Envelope {
    /// The envelope table: one row per variation with each quantity and its change from the
    /// nominal, then the per-quantity totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut head = vec!["variation".to_string()];
        head.extend(self.quantities.iter().cloned());
        rows.push(head);
        let mut nom = vec!["nominal".to_string()];
        nom.extend(self.nominal.values.iter().map(|v| num(*v)));
        rows.push(nom);
        for r in &self.rows {
            let mut row = vec![format!("{} {:+}", r.nuisance, r.theta)];
            row.extend(
                r.values.iter().zip(&self.nominal.values).map(|(v, v0)| format!("{} ({})", num(*v), pct(v - v0, *v0))),
            );
            rows.push(row);
        }
        let mut tot = vec!["total (quadrature)".to_string()];
        tot.extend(
            self.total()
                .iter()
                .zip(&self.nominal.values)
                .map(|((u, d), v0)| format!("{} {}", pct(*u, *v0), pct(*d, *v0))),
        );
        rows.push(tot);
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|j| rows.iter().map(|r| r[j].chars().count()).max().unwrap_or(0)).collect();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(j, (c, w))| if j == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())?;
        }
        Ok(())
    }
}
