//! A systematics model prepared on a nominal dataset ([`Prepared`]): every σ, smearing draw
//! and up/down value read once; the varied columns at any θ (shared or per event) with
//! `dx/dθₖ` by forward mode through every effect, and the dataset rebuilt from them.

use super::derived::{derive_columns, flat, recompute, Columns, PerNuisance};
use super::effects::{column, plan, ColumnPlan, Step};
use super::nuisance::{Effect, Prior, Systematics, Target};
use super::vary::{check, draws, nominal, sigma_values, unknown};
use crate::data::Dataset;
use crate::error::{Error, Result};
use ndarray::ArrayView2;

const OP: &str = "vary";

/// θ of every event: one vector shared by the whole sample (coherent), or one row per event
/// (`n × K`, each event its own pulls). Object rows take the θ of their event.
#[derive(Clone, Copy, Debug)]
pub enum Theta<'a> {
    /// One θ per nuisance for every event.
    Shared(&'a [f64]),
    /// Row `i` is the θ of event `i`.
    PerEvent(ArrayView2<'a, f64>),
}

impl Theta<'_> {
    /// Errors unless there is one θ per nuisance (and one row per event), all finite.
    pub(super) fn check(&self, events: usize, nuisances: usize) -> Result<()> {
        let (rows, cols) = match self {
            Theta::Shared(t) => (events, t.len()),
            Theta::PerEvent(t) => t.dim(),
        };
        if cols != nuisances || rows != events {
            let (expected, got) = match self {
                Theta::Shared(_) => (format!("{nuisances} θ values (one per nuisance)"), format!("{cols}")),
                Theta::PerEvent(_) => (
                    format!("{events} × {nuisances} θ values (one row per event, one column per nuisance)"),
                    format!("{rows} × {cols}"),
                ),
            };
            return Err(Error::Shape { op: OP, expected, got });
        }
        let bad = match self {
            Theta::Shared(t) => t.iter().find(|t| !t.is_finite()).copied(),
            Theta::PerEvent(t) => t.iter().find(|t| !t.is_finite()).copied(),
        };
        match bad {
            Some(t) => Err(Error::arg(OP, format!("θ must be finite, got {t}"))),
            None => Ok(()),
        }
    }

    /// θ of nuisance `m` for event `e`.
    pub(super) fn at(&self, m: usize, e: usize) -> f64 {
        match self {
            Theta::Shared(t) => t[m],
            Theta::PerEvent(t) => t[[e, m]],
        }
    }
}

/// A systematics model prepared on a nominal dataset: every σ, smearing draw and up/down
/// value read once, so that the dataset at any θ (shared or per event) and `dx/dθ` of every
/// nuisance follow by arithmetic — what attacks in θ space evaluate at every step.
pub struct Prepared {
    ds: Dataset,
    syst: Systematics,
    /// The columns acted on directly, in first-touched order, with their nominal values and
    /// (object features) each row's event.
    pub(super) targets: Vec<Target>,
    nominal: Vec<Vec<f64>>,
    event_of: Vec<Option<Vec<usize>>>,
    /// `(nuisance, step)` in declaration order.
    steps: Vec<(usize, Step)>,
    /// The nominal weight, when an effect acts on it.
    w0: Option<Vec<f64>>,
}

/// The varied values and, for the tracked nuisances, their derivatives.
pub(super) struct Varied {
    /// Per target, its values.
    pub(super) x: Vec<Vec<f64>>,
    /// Per target, per tracked nuisance, `dx/dθ` per row (`None` until a step of that
    /// nuisance touches the target: 0).
    dx: Vec<Vec<Option<Vec<f64>>>>,
    /// The weight and its derivatives per tracked nuisance.
    pub(super) weight: Option<(Vec<f64>, PerNuisance)>,
}

/// The dataset at one θ with `dx/dθₖ` of every nuisance k.
#[derive(Clone, Debug)]
pub struct Point {
    /// The varied dataset, derived features recomputed.
    pub data: Dataset,
    /// Every column varied directly, then every derived feature (evaluation order), with
    /// `dx/dθₖ` per nuisance k (`None`: the column does not depend on θₖ).
    pub tangents: Vec<(Target, Vec<Option<Vec<f64>>>)>,
    /// `dw/dθₖ` of the event weight per nuisance, when an effect acts on the weight.
    pub weight_tangent: Option<Vec<Vec<f64>>>,
}

impl Prepared {
    /// Checks the model against `ds` and reads every σ, draw and up/down column.
    pub fn new(ds: &Dataset, syst: &Systematics) -> Result<Prepared> {
        check(ds, syst)?;
        let mut p = Prepared {
            ds: ds.clone(),
            syst: syst.clone(),
            targets: Vec::new(),
            nominal: Vec::new(),
            event_of: Vec::new(),
            steps: Vec::new(),
            w0: None,
        };
        for (m, n) in syst.nuisances().iter().enumerate() {
            for e in &n.effects {
                p.prepare(m, &n.name, n.prior, e)?;
            }
        }
        Ok(p)
    }

    /// The nominal dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    /// The systematics model.
    pub fn systematics(&self) -> &Systematics {
        &self.syst
    }

    fn col(&mut self, t: &Target) -> Result<usize> {
        if let Some(i) = self.targets.iter().position(|c| c == t) {
            return Ok(i);
        }
        let x = nominal(&self.ds, t)?;
        let ev = match t {
            Target::Column(_) => None,
            Target::Object { coll, .. } => Some(self.ds.collection(OP, coll)?.event_index()),
        };
        self.targets.push(t.clone());
        self.nominal.push(x);
        self.event_of.push(ev);
        Ok(self.targets.len() - 1)
    }

    fn weight0(&mut self) -> Vec<f64> {
        self.w0.get_or_insert_with(|| self.ds.weights_or_ones().iter().map(|&v| f64::from(v)).collect()).clone()
    }

    fn prepare(&mut self, m: usize, name: &str, prior: Prior, e: &Effect) -> Result<()> {
        let ds = self.ds.clone();
        match e {
            Effect::Scale { targets, sigma, relative } => {
                for t in targets {
                    let col = self.col(t)?;
                    let s = sigma_values(&ds, name, t, sigma, self.nominal[col].len())?;
                    let step = if *relative { Step::Scale { col, sigma: s } } else { Step::Shift { col, per_unit: s } };
                    self.steps.push((m, step));
                }
            }
            Effect::Smear { targets, sigma, relative, seed } => {
                for (ti, t) in targets.iter().enumerate() {
                    let col = self.col(t)?;
                    let x0 = &self.nominal[col];
                    let s = sigma_values(&ds, name, t, sigma, x0.len())?;
                    let z = draws(&ds, t, *seed, ti, x0.len())?;
                    let per_unit =
                        (0..x0.len()).map(|i| z[i] * if *relative { s[i] * x0[i].abs() } else { s[i] }).collect();
                    self.steps.push((m, Step::Shift { col, per_unit }));
                }
            }
            Effect::Alternative { nominal: nom, up, down, code } => {
                for ((t, u), d) in nom.iter().zip(up).zip(down) {
                    let col = self.col(t)?;
                    let (up, down) = (nominal(&ds, u)?, nominal(&ds, d)?);
                    self.steps.push((m, Step::Alternative { col, up, down, code: *code, what: t.name() }));
                }
            }
            Effect::Weight { up, down, code } => {
                let w0 = self.weight0();
                let wu: Vec<f64> = ds.column(up).map_err(|_| unknown(&ds, up))?.iter().map(|&v| f64::from(v)).collect();
                let wd: Vec<f64> = match down {
                    Some(d) => ds.column(d).map_err(|_| unknown(&ds, d))?.iter().map(|&v| f64::from(v)).collect(),
                    None if code.multiplicative() => {
                        w0.iter().zip(&wu).map(|(w, u)| if *u == 0.0 { *w } else { w * w / u }).collect()
                    }
                    None => w0.iter().zip(&wu).map(|(w, u)| 2.0 * w - u).collect(),
                };
                self.steps.push((m, Step::Weight { up: wu, down: wd, code: *code }));
            }
            Effect::Norm { size } => {
                self.weight0();
                self.steps.push((m, Step::Norm { size: *size, prior }));
            }
        }
        Ok(())
    }

    /// The varied values at `theta`, with derivatives for the nuisances in `tracked`.
    pub(super) fn run(&self, theta: &Theta<'_>, tracked: &[usize]) -> Result<Varied> {
        theta.check(self.ds.len(), self.syst.nuisances().len())?;
        let names: Vec<&str> = self.syst.nuisances().iter().map(|n| n.name.as_str()).collect();
        let mut x = Vec::with_capacity(self.targets.len());
        let mut dx = Vec::with_capacity(self.targets.len());
        for (c, (x0, ev)) in self.nominal.iter().zip(&self.event_of).enumerate() {
            let (v, d) = column(&self.steps, &names, theta, tracked, Some(c), x0, ev.as_deref())?;
            x.push(v);
            dx.push(d);
        }
        let weight = match &self.w0 {
            Some(w0) => Some(column(&self.steps, &names, theta, tracked, None, w0, None)?),
            None => None,
        };
        Ok(Varied { x, dx, weight })
    }

    /// Per directly varied target (in [`Prepared::columns`] order): its effects planned for
    /// the nuisances in `tracked`, and its nominal values — what [`super::fused`] applies
    /// block by block.
    pub(super) fn plans(&self, tracked: &[usize]) -> Vec<(ColumnPlan<'_>, &[f64])> {
        let names: Vec<&str> = self.syst.nuisances().iter().map(|n| n.name.as_str()).collect();
        (0..self.targets.len()).map(|c| (plan(&self.steps, &names, tracked, Some(c)), &self.nominal[c][..])).collect()
    }

    /// The dataset at `theta` (shared or per event), derived features recomputed.
    pub fn vary(&self, theta: Theta<'_>) -> Result<Dataset> {
        let v = self.run(&theta, &[])?;
        recompute(rebuild(&self.ds, &self.targets, &v)?, &self.syst, None)
    }

    /// Whether [`Prepared::columns`] applies: every varied target is an event column, and
    /// the derived features are event columns that sum over no collection (nor read a varied
    /// weight).
    pub fn flat(&self) -> bool {
        self.targets.iter().all(|t| matches!(t, Target::Column(_))) && flat(&self.syst, self.w0.is_some())
    }

    /// The event columns [`Prepared::point`] varies and derives, with the same values and
    /// `dx/dθₖ` of every nuisance k, without building a dataset (what a per-event attack step
    /// needs: the model's inputs and their tangents); `None` unless [`Prepared::flat`].
    pub fn columns(&self, theta: Theta<'_>) -> Result<Option<Columns>> {
        let all: Vec<usize> = (0..self.syst.nuisances().len()).collect();
        self.columns_for(theta, &all)
    }

    /// [`Prepared::columns`] with derivatives for the nuisances in `tracked` only.
    pub fn columns_for(&self, theta: Theta<'_>, tracked: &[usize]) -> Result<Option<Columns>> {
        if !self.flat() {
            return Ok(None);
        }
        let v = self.run(&theta, tracked)?;
        let mut cols = Columns::default();
        for ((t, x), d) in self.targets.iter().zip(&v.x).zip(v.dx) {
            let x = stored(t, x)?.into_iter().map(f64::from).collect();
            cols.values.push((t.name(), x));
            cols.tangents.push((t.clone(), d.into_iter().map(|d| d.filter(|d| d.iter().any(|v| *v != 0.0))).collect()));
        }
        derive_columns(&self.ds, &self.syst, &mut cols, tracked.len())?;
        Ok(Some(cols))
    }

    /// The dataset at `theta` with `dx/dθₖ` of every nuisance k, for the varied columns, the
    /// derived features (chain rule through their expressions) and the weight.
    pub fn point(&self, theta: Theta<'_>) -> Result<Point> {
        let all: Vec<usize> = (0..self.syst.nuisances().len()).collect();
        self.point_for(theta, &all)
    }

    pub(super) fn point_for(&self, theta: Theta<'_>, tracked: &[usize]) -> Result<Point> {
        let v = self.run(&theta, tracked)?;
        let out = rebuild(&self.ds, &self.targets, &v)?;
        // Per tracked nuisance, the derivatives (columns it does not move left out).
        let mut tangents: Vec<(Target, PerNuisance)> = self
            .targets
            .iter()
            .zip(v.dx)
            .map(|(t, d)| (t.clone(), d.into_iter().map(|d| d.filter(|d| d.iter().any(|v| *v != 0.0))).collect()))
            .collect();
        let data = recompute(out, &self.syst, Some((&mut tangents, tracked.len())))?;
        let zero = |d: Option<Vec<f64>>| d.unwrap_or_else(|| vec![0.0; self.ds.len()]);
        Ok(Point { data, tangents, weight_tangent: v.weight.map(|w| w.1.into_iter().map(zero).collect()) })
    }
}

/// A varied column as a dataset stores it (f32); a non-finite value is an error naming it.
fn stored(target: &Target, c: &[f64]) -> Result<Vec<f32>> {
    let v: Vec<f32> = c.iter().map(|&v| v as f32).collect();
    match v.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(Error::NonFinite {
            op: "vary".into(),
            column: target.name(),
            count: v.iter().filter(|v| !v.is_finite()).count(),
            row,
        }),
        None => Ok(v),
    }
}

/// The dataset with the varied columns, object features and weight written back.
fn rebuild(ds: &Dataset, targets: &[Target], v: &Varied) -> Result<Dataset> {
    let mut out = ds.clone();
    let mut x = None;
    for (target, c) in targets.iter().zip(&v.x) {
        let v = stored(target, c)?;
        match target {
            Target::Column(name) => {
                let j = ds.index_of(OP, name)?;
                let x = x.get_or_insert_with(|| ds.x().to_owned());
                x.column_mut(j).assign(&ndarray::ArrayView1::from(&v));
            }
            Target::Object { coll, feature } => {
                let col = out.collection(OP, coll)?.with_feature(feature, v)?;
                out = out.with_collection(col)?;
            }
        }
    }
    if let Some(x) = x {
        out = out.with_x(x)?;
    }
    if let Some((w, _)) = &v.weight {
        out = out.with_weight(Some(w.iter().map(|&v| v as f32).collect()))?;
    }
    Ok(out)
}
