//! Applying θ to a dataset: every effect of every nuisance (see [`super::nuisance`]) on the
//! targeted columns, weights and object features, then the derived features recomputed from
//! the varied inputs in dependency order.
//!
//! [`vary_with_tangent`] also returns `dx/dθₖ` of every directly varied column (forward mode:
//! each effect maps `(x, dx)` to its new value and derivative), for attacks in θ space.
//!
//! ```
//! use nuisance::data::Dataset;
//! use nuisance::systematics::{vary, Effect, Nuisance, Prior, Sigma, Systematics, Target};
//! let ds = Dataset::new(vec!["pt".into()], ndarray::array![[50.0f32], [20.0]], None, None).unwrap();
//! let jes = Effect::Scale { targets: vec![Target::parse("pt").unwrap()], sigma: Sigma::Const(0.02), relative: true };
//! let s = Systematics::new(vec![Nuisance::new("JES", Prior::Gaussian, vec![jes]).unwrap()], vec![]).unwrap();
//! let up = vary(&ds, &s, &[1.0]).unwrap();
//! assert_eq!(up.column("pt").unwrap().to_vec(), vec![51.0, 20.4]);
//! ```

use std::collections::HashMap;
use std::f64::consts::TAU;

use super::nuisance::{Derived, Effect, Prior, Sigma, Systematics, Target};
use crate::data::expr::{Dual, Expr};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::{substream, Stream};
use ndarray::ArrayView2;

const OP: &str = "vary";

/// `dx/dθₖ` of every column a variation acts on directly, and of every derived feature (by
/// the chain rule through its expression, `data::expr::Expr::eval_dual`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tangent {
    /// Each varied target with its derivative per row (event or object, storage order).
    pub columns: Vec<(Target, Vec<f64>)>,
    /// Each derived feature with its derivative per row, in evaluation order.
    pub derived: Vec<(Target, Vec<f64>)>,
    /// The derivative of the event weight, when a weight effect of θₖ acts.
    pub weight: Option<Vec<f64>>,
}

/// The dataset at θ (one value per nuisance, in model order), derived features recomputed.
pub fn vary(ds: &Dataset, syst: &Systematics, theta: &[f64]) -> Result<Dataset> {
    Ok(apply(ds, syst, theta, None)?.0)
}

/// [`vary`] and the derivative of the directly varied columns with respect to θ of nuisance
/// `k`.
pub fn vary_with_tangent(ds: &Dataset, syst: &Systematics, theta: &[f64], k: usize) -> Result<(Dataset, Tangent)> {
    if k >= syst.nuisances().len() {
        return Err(Error::arg(OP, format!("no nuisance number {k} (the model has {})", syst.nuisances().len())));
    }
    let (d, t) = apply(ds, syst, theta, Some(k))?;
    Ok((d, t.unwrap_or(Tangent { columns: Vec::new(), derived: Vec::new(), weight: None })))
}

/// Checks every name the model reads against `ds`: targets, alternative and weight columns,
/// and the columns of the derived features (the dataset's, or derived earlier).
pub fn check(ds: &Dataset, syst: &Systematics) -> Result<()> {
    let derived: Vec<String> = syst.derived().iter().map(|d| d.target.name()).collect();
    for n in syst.nuisances() {
        for e in &n.effects {
            let targets: Vec<&Target> = match e {
                Effect::Scale { targets, .. } | Effect::Smear { targets, .. } => targets.iter().collect(),
                Effect::Alternative { nominal, up, down, .. } => nominal.iter().chain(up).chain(down).collect(),
                Effect::Weight { up, down, .. } => {
                    ds.index_of(OP, up)?;
                    if let Some(d) = down {
                        ds.index_of(OP, d)?;
                    }
                    Vec::new()
                }
                Effect::Norm { .. } => Vec::new(),
            };
            for t in targets {
                if derived.contains(&t.name()) {
                    return Err(Error::arg(
                        OP,
                        format!(
                            "nuisance '{}' varies '{}', a derived feature: vary its inputs, it is recomputed",
                            n.name,
                            t.name()
                        ),
                    ));
                }
                nominal(ds, t)?;
            }
        }
    }
    let mut known: Vec<String> = Vec::new();
    for d in syst.derived_in_order() {
        for name in reads(d) {
            let found = known.contains(&name) || resolves(ds, &name);
            if !found {
                let mut avail = (&ds).available_names();
                avail.extend(known.iter().cloned());
                return Err(Error::UnknownColumn { op: OP, name, available: avail.join(", ") });
            }
        }
        known.push(d.target.name());
    }
    Ok(())
}

/// The names a derived feature reads: event columns, and `coll.feature` for object features
/// (an object expression's name may also be an event column, so it is read as either).
fn reads(d: &Derived) -> Vec<String> {
    match &d.target {
        Target::Column(_) => {
            let mut r = d.expr.columns();
            r.extend(d.expr.object_columns());
            r
        }
        Target::Object { coll, .. } => d.expr.columns().into_iter().map(|c| format!("{coll}.{c}")).collect(),
    }
}

/// Whether `name` (`met`, `jets.pt`, or `jets.met` for an event column seen from objects)
/// resolves in `ds`.
fn resolves(ds: &Dataset, name: &str) -> bool {
    use crate::data::expr::Table;
    if (&ds).lookup(name).is_some() {
        return true;
    }
    match name.split_once('.') {
        Some((c, f)) => {
            ds.collection(OP, c).is_ok_and(|c| c.features().iter().any(|x| x == f)) || (&ds).lookup(f).is_some()
        }
        None => false,
    }
}

trait Names {
    fn available_names(&self) -> Vec<String>;
}

impl Names for &Dataset {
    fn available_names(&self) -> Vec<String> {
        use crate::data::expr::Table;
        let mut a = self.available();
        for c in self.collections() {
            a.extend(c.features().iter().map(|f| format!("{}.{f}", c.name())));
        }
        a
    }
}

/// The derived features in an order where each comes after the ones it reads; a cycle is an
/// error naming it.
pub(crate) fn derived_order(derived: &[Derived]) -> Result<Vec<usize>> {
    let names: Vec<String> = derived.iter().map(|d| d.target.name()).collect();
    let deps: Vec<Vec<usize>> = derived
        .iter()
        .map(|d| {
            let r = reads(d);
            (0..derived.len()).filter(|&j| r.contains(&names[j])).collect()
        })
        .collect();
    // Depth-first search; state 1 = on the current path, 2 = done.
    let mut state = vec![0u8; derived.len()];
    let mut order = Vec::with_capacity(derived.len());
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
        names: &[String],
    ) -> Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].iter().map(|&p| names[p].as_str()).collect();
                cycle.push(&names[i]);
                return Err(Error::arg("systematics", format!("circular derived features: {}", cycle.join(" → "))));
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for &j in &deps[i] {
            visit(j, deps, state, path, order, names)?;
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..derived.len() {
        visit(i, &deps, &mut state, &mut Vec::new(), &mut order, &names)?;
    }
    Ok(order)
}

/// The nominal values of a target (f64, storage order).
fn nominal(ds: &Dataset, t: &Target) -> Result<Vec<f64>> {
    match t {
        Target::Column(c) => Ok(ds.column(c).map_err(|_| unknown(ds, c))?.iter().map(|&v| f64::from(v)).collect()),
        Target::Object { coll, feature } => {
            let c = ds.collection(OP, coll)?;
            let j = c.index_of(OP, feature)?;
            Ok(c.values_at(j).iter().map(|&v| f64::from(v)).collect())
        }
    }
}

fn unknown(ds: &Dataset, name: &str) -> Error {
    Error::UnknownColumn { op: OP, name: name.to_string(), available: (&ds).available_names().join(", ") }
}

/// σ per row of a target, from the nominal dataset; negative or non-finite σ is an error.
fn sigma_values(ds: &Dataset, nuisance: &str, t: &Target, sigma: &Sigma, rows: usize) -> Result<Vec<f64>> {
    let eval = |e: &Expr| -> Result<Vec<f64>> {
        match t {
            Target::Column(_) => e.eval_table(&ds, OP),
            Target::Object { coll, .. } => ds.eval_objects_expr(OP, coll, e),
        }
    };
    let s = match sigma {
        Sigma::Const(c) => vec![*c; rows],
        Sigma::Expr(e) => eval(e)?,
        Sigma::Binned(b) => {
            let vars = b.vars.iter().map(eval).collect::<Result<Vec<_>>>()?;
            (0..rows).map(|i| b.lookup(&vars.iter().map(|v| v[i]).collect::<Vec<_>>())).collect()
        }
    };
    if let Some(i) = s.iter().position(|v| !(*v >= 0.0 && v.is_finite())) {
        return Err(Error::arg(
            OP,
            format!("nuisance '{nuisance}': σ of '{}' must be ≥ 0 and finite, got {} at row {i}", t.name(), s[i]),
        ));
    }
    Ok(s)
}

/// A standard normal from a stream (Box–Muller, 1 − u ∈ (0, 1] so the log is finite).
fn normal(s: &mut Stream) -> f64 {
    let (u1, u2) = (s.uniform(), s.uniform());
    (-2.0 * (1.0 - u1).ln()).sqrt() * (TAU * u2).cos()
}

/// One N(0, 1) draw per row of target number `t` of a smearing: per event from stream
/// (seed, t) at the event's index, per object in order inside its event; independent of
/// threads and of the other targets.
fn draws(ds: &Dataset, target: &Target, seed: u64, t: usize, rows: usize) -> Result<Vec<f64>> {
    let seed = substream(seed, t as u64);
    match target {
        Target::Column(_) => Ok((0..rows).map(|i| normal(&mut Stream::new(seed, i as u64))).collect()),
        Target::Object { coll, .. } => {
            let c = ds.collection(OP, coll)?;
            let mut z = Vec::with_capacity(rows);
            for (i, w) in c.offsets().windows(2).enumerate() {
                let mut s = Stream::new(seed, i as u64);
                z.extend((w[0]..w[1]).map(|_| normal(&mut s)));
            }
            Ok(z)
        }
    }
}
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
    fn check(&self, events: usize, nuisances: usize) -> Result<()> {
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

    /// θ of nuisance `m` for every row (`event_of`: each row's event; `None`: rows are events).
    fn rows(&self, m: usize, event_of: Option<&[usize]>, rows: usize) -> Vec<f64> {
        match (self, event_of) {
            (Theta::Shared(t), _) => vec![t[m]; rows],
            (Theta::PerEvent(t), None) => t.column(m).to_vec(),
            (Theta::PerEvent(t), Some(ev)) => ev.iter().map(|&e| t[[e, m]]).collect(),
        }
    }
}

/// What one effect does, with everything it reads from the nominal dataset computed once.
enum Step {
    /// `x·(1 + θ·σ)`.
    Scale { col: usize, sigma: Vec<f64> },
    /// `x + θ·a` (an absolute scale: a = σ; a smearing: a = z·width).
    Shift { col: usize, per_unit: Vec<f64> },
    /// An interpolated alternative of the column's nominal.
    Alternative { col: usize, up: Vec<f64>, down: Vec<f64>, code: super::Code, what: String },
    /// An interpolated alternative of the event weight.
    Weight { up: Vec<f64>, down: Vec<f64>, code: super::Code },
    /// A normalisation factor on the weight.
    Norm { size: f64, prior: Prior },
}

/// A systematics model prepared on a nominal dataset: every σ, smearing draw and up/down
/// value read once, so that the dataset at any θ (shared or per event) and `dx/dθ` of every
/// nuisance follow by arithmetic — what attacks in θ space evaluate at every step.
pub struct Prepared {
    ds: Dataset,
    syst: Systematics,
    /// The columns acted on directly, in first-touched order, with their nominal values and
    /// (object features) each row's event.
    targets: Vec<Target>,
    nominal: Vec<Vec<f64>>,
    event_of: Vec<Option<Vec<usize>>>,
    /// `(nuisance, step)` in declaration order.
    steps: Vec<(usize, Step)>,
    /// The nominal weight, when an effect acts on it.
    w0: Option<Vec<f64>>,
}

/// The varied values and, for the tracked nuisances, their derivatives.
struct Varied {
    /// Per target, its values.
    x: Vec<Vec<f64>>,
    /// Per target, per tracked nuisance, `dx/dθ` per row (`None` until a step of that
    /// nuisance touches the target: 0).
    dx: Vec<Vec<Option<Vec<f64>>>>,
    /// The weight and its derivatives per tracked nuisance.
    weight: Option<(Vec<f64>, PerNuisance)>,
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
    fn run(&self, theta: &Theta<'_>, tracked: &[usize]) -> Result<Varied> {
        theta.check(self.ds.len(), self.syst.nuisances().len())?;
        let nt = tracked.len();
        let mut x = self.nominal.clone();
        let mut dx: Vec<Vec<Option<Vec<f64>>>> = vec![vec![None; nt]; x.len()];
        let mut weight = self.w0.as_ref().map(|w| (w.clone(), vec![None; nt]));
        for (m, step) in &self.steps {
            let slot = tracked.iter().position(|t| t == m);
            let name = &self.syst.nuisances()[*m].name;
            match step {
                Step::Scale { col, sigma } => {
                    let th = theta.rows(*m, self.event_of[*col].as_deref(), sigma.len());
                    let f: Vec<f64> = th.iter().zip(sigma).map(|(t, s)| 1.0 + t * s).collect();
                    let add: Vec<f64> = x[*col].iter().zip(sigma).map(|(x, s)| x * s).collect();
                    multiply(&mut x[*col], &mut dx[*col], &f, slot.map(|j| (j, &add[..])));
                }
                Step::Shift { col, per_unit } => {
                    let th = theta.rows(*m, self.event_of[*col].as_deref(), per_unit.len());
                    for ((x, t), a) in x[*col].iter_mut().zip(&th).zip(per_unit) {
                        *x += t * a;
                    }
                    if let Some(j) = slot {
                        let d = dx[*col][j].get_or_insert_with(|| vec![0.0; per_unit.len()]);
                        for (d, a) in d.iter_mut().zip(per_unit) {
                            *d += a;
                        }
                    }
                }
                Step::Alternative { col, up, down, code, what } => {
                    let th = theta.rows(*m, self.event_of[*col].as_deref(), up.len());
                    let (xc, dxc) = (&mut x[*col], &mut dx[*col]);
                    interpolate(xc, dxc, &self.nominal[*col], up, down, *code, &th, slot, name, what)?;
                }
                Step::Weight { up, down, code } => {
                    let (w, dw) = weight.as_mut().ok_or_else(|| Error::arg(OP, "no weight to vary"))?;
                    let th = theta.rows(*m, None, up.len());
                    let w0 = self.w0.as_deref().unwrap_or_default();
                    interpolate(w, dw, w0, up, down, *code, &th, slot, name, "weight")?;
                }
                Step::Norm { size, prior } => {
                    let (w, dw) = weight.as_mut().ok_or_else(|| Error::arg(OP, "no weight to vary"))?;
                    let th = theta.rows(*m, None, w.len());
                    let (f, df): (Vec<f64>, Vec<f64>) = th.iter().map(|&t| norm_factor(*prior, *size, t)).unzip();
                    let add: Vec<f64> = w.iter().zip(&df).map(|(w, d)| w * d).collect();
                    multiply(w, dw, &f, slot.map(|j| (j, &add[..])));
                }
            }
        }
        Ok(Varied { x, dx, weight })
    }

    /// The dataset at `theta` (shared or per event), derived features recomputed.
    pub fn vary(&self, theta: Theta<'_>) -> Result<Dataset> {
        let v = self.run(&theta, &[])?;
        recompute(rebuild(&self.ds, &self.targets, &v)?, &self.syst, None)
    }

    /// The dataset at `theta` with `dx/dθₖ` of every nuisance k, for the varied columns, the
    /// derived features (chain rule through their expressions) and the weight.
    pub fn point(&self, theta: Theta<'_>) -> Result<Point> {
        let all: Vec<usize> = (0..self.syst.nuisances().len()).collect();
        self.point_for(theta, &all)
    }

    fn point_for(&self, theta: Theta<'_>, tracked: &[usize]) -> Result<Point> {
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

/// `x ← f·x` and `dx ← f·dx` for every tracked derivative, plus `add` on derivative `j`
/// (created, from 0, when no step touched it yet).
fn multiply(x: &mut [f64], dx: &mut [Option<Vec<f64>>], f: &[f64], add: Option<(usize, &[f64])>) {
    for (j, d) in dx.iter_mut().enumerate() {
        match (add, d) {
            (Some((k, a)), d) if k == j => {
                let d = d.get_or_insert_with(|| vec![0.0; a.len()]);
                for ((d, f), a) in d.iter_mut().zip(f).zip(a) {
                    *d = *d * f + a;
                }
            }
            (_, Some(d)) => {
                for (d, f) in d.iter_mut().zip(f) {
                    *d *= f;
                }
            }
            (_, None) => {}
        }
    }
    for (x, f) in x.iter_mut().zip(f) {
        *x *= f;
    }
}

/// A normalisation's factor and its derivative at θ.
fn norm_factor(prior: Prior, size: f64, th: f64) -> (f64, f64) {
    match prior {
        Prior::LogNormal => {
            let f = (1.0 + size).powf(th);
            (f, f * (1.0 + size).ln())
        }
        // A Gaussian normalisation cannot make weights negative: clamped at 0.
        Prior::Gaussian if 1.0 + th * size > 0.0 => (1.0 + th * size, size),
        Prior::Gaussian => (0.0, 0.0),
    }
}

/// The dataset at θ (shared), through [`Prepared`].
fn apply(ds: &Dataset, syst: &Systematics, theta: &[f64], k: Option<usize>) -> Result<(Dataset, Option<Tangent>)> {
    Theta::Shared(theta).check(ds.len(), syst.nuisances().len())?;
    let p = Prepared::new(ds, syst)?;
    match k {
        None => Ok((p.vary(Theta::Shared(theta))?, None)),
        Some(k) => {
            let pt = p.point_for(Theta::Shared(theta), &[k])?;
            let n_cols = p.targets.len();
            let take = |(t, mut d): (Target, Vec<Option<Vec<f64>>>)| -> (Target, Vec<f64>) {
                let rows = match &t {
                    Target::Column(_) => ds.len(),
                    Target::Object { coll, .. } => {
                        ds.collection(OP, coll).map_or(0, |c| c.offsets().last().copied().unwrap_or(0))
                    }
                };
                let v = d.pop().flatten().unwrap_or_else(|| vec![0.0; rows]);
                (t, v)
            };
            let mut all = pt.tangents.into_iter();
            let columns: Vec<_> = all.by_ref().take(n_cols).map(take).collect();
            let derived: Vec<_> = all.map(take).collect();
            let weight = pt.weight_tangent.map(|mut w| w.pop().unwrap_or_default());
            Ok((pt.data, Some(Tangent { columns, derived, weight })))
        }
    }
}
/// Per tracked nuisance, the derivative of a derived feature's expression on `ds` (vector
/// mode: the expression evaluated once), from the derivatives `known` by name (`met`,
/// `jets.pt`): the columns varied directly and the derived features before it.
fn derived_tangent(ds: &Dataset, d: &Derived, known: &[(Target, PerNuisance)], k: usize) -> Result<PerNuisance> {
    let find = |name: &str| known.iter().rev().find(|(t, _)| t.name() == name).map(|(_, per)| per.clone());
    // An object expression's name: the collection's feature, else an event column broadcast.
    let object = |coll: &str, name: &str| -> Result<Option<PerNuisance>> {
        let c = ds.collection(OP, coll)?;
        if c.features().iter().any(|f| f == name) {
            return Ok(find(&format!("{coll}.{name}")));
        }
        let broadcast = |t: Vec<f64>| c.event_index().iter().map(|&i| t[i]).collect();
        Ok(find(name).map(|per| per.into_iter().map(|t| t.map(broadcast)).collect()))
    };
    let object_dual = |coll: &str, e: &Expr| -> Result<Dual> {
        let mut cache: HashMap<String, Option<PerNuisance>> = HashMap::new();
        for name in e.columns() {
            cache.insert(name.clone(), object(coll, &name)?);
        }
        let lookup = |n: &str| cache.get(n).cloned().flatten();
        ds.eval_objects_dual(OP, coll, e, k, &lookup)
    };
    match &d.target {
        Target::Column(_) => {
            let sum = |coll: &str, body: &Expr| -> Result<Dual> {
                let Dual { value, tangents } = object_dual(coll, body)?;
                let off = ds.collection(OP, coll)?.offsets().to_vec();
                let reduce = |x: &[f64]| off.windows(2).map(|w| x[w[0]..w[1]].iter().sum()).collect::<Vec<f64>>();
                Ok(Dual {
                    value: reduce(&value),
                    tangents: tangents.iter().map(|t| t.as_deref().map(reduce)).collect(),
                })
            };
            Ok(d.expr.eval_dual(&ds, k, &find, &sum, OP)?.tangents)
        }
        Target::Object { coll, .. } => Ok(object_dual(coll, &d.expr)?.tangents),
    }
}
/// Applies one interpolated alternative to `(x, dx)` at θ per row: additively for codes 0 and
/// 2, multiplicatively for codes 1 and 4; the slope goes to tracked derivative `slot`.
#[allow(clippy::too_many_arguments)]
fn interpolate(
    x: &mut [f64],
    dx: &mut [Option<Vec<f64>>],
    x0: &[f64],
    up: &[f64],
    down: &[f64],
    code: super::Code,
    th: &[f64],
    slot: Option<usize>,
    name: &str,
    what: &str,
) -> Result<()> {
    let mut f = vec![1.0; x.len()];
    let mut add = vec![0.0; x.len()];
    for i in 0..x.len() {
        let (v, s) = code.value_and_slope(th[i], x0[i], up[i], down[i]).map_err(|e| {
            Error::arg(
                OP,
                format!(
                    "nuisance '{name}', '{what}' at row {i}: {}",
                    e.to_string().trim_start_matches("systematics: ")
                ),
            )
        })?;
        if code.multiplicative() {
            let (fi, dfi) = if x0[i] == 0.0 { (1.0, 0.0) } else { (v / x0[i], s / x0[i]) };
            f[i] = fi;
            add[i] = x[i] * dfi;
        } else {
            x[i] += v - x0[i];
            add[i] = s;
        }
    }
    if code.multiplicative() {
        multiply(x, dx, &f, slot.map(|j| (j, &add[..])));
    } else if let Some(j) = slot {
        let d = dx[j].get_or_insert_with(|| vec![0.0; add.len()]);
        for (d, a) in d.iter_mut().zip(&add) {
            *d += a;
        }
    }
    Ok(())
}

/// The dataset with the varied columns, object features and weight written back.
fn rebuild(ds: &Dataset, targets: &[Target], v: &Varied) -> Result<Dataset> {
    let mut out = ds.clone();
    let mut x = None;
    for (target, c) in targets.iter().zip(&v.x) {
        let v: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        if let Some(i) = v.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "vary".into(),
                column: target.name(),
                count: v.iter().filter(|v| !v.is_finite()).count(),
                row: i,
            });
        }
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

/// Per tracked nuisance, a column's derivative per row (`None`: it does not depend on it).
type PerNuisance = Vec<Option<Vec<f64>>>;

/// Where derivatives of derived features go: every column's derivatives so far (the derived
/// features are appended in evaluation order), and the number of tracked nuisances.
type DerivedTangents<'a> = (&'a mut Vec<(Target, PerNuisance)>, usize);

/// The derived features recomputed in dependency order (with their derivatives when asked).
fn recompute(mut ds: Dataset, syst: &Systematics, mut tangents: Option<DerivedTangents<'_>>) -> Result<Dataset> {
    for d in syst.derived_in_order() {
        if let Some((out, k)) = tangents.as_mut() {
            let per = derived_tangent(&ds, d, out, *k)?;
            out.push((d.target.clone(), per));
        }
        let context = |e: Error| match e {
            Error::NonFinite { column, count, row, .. } => Error::NonFinite {
                op: format!("derived feature '{}' = '{}'", d.target.name(), d.expr),
                column,
                count,
                row,
            },
            e => e,
        };
        ds = match &d.target {
            Target::Column(name) => {
                let v: Vec<f32> = d.expr.eval_table(&&ds, OP)?.into_iter().map(|v| v as f32).collect();
                ds.with_column(name, v).map_err(context)?
            }
            Target::Object { coll, feature } => ds.derive_objects(coll, feature, d.expr.source()).map_err(context)?,
        };
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Collection;
    use crate::systematics::{from_json, Code};
    use ndarray::array;
    use serde_json::json;

    /// Two events: pt1, eta1, phi1, pt2, eta2, phi2, and up/down columns of pt1; jets with
    /// pt and phi (2 jets, then 1).
    fn events() -> Dataset {
        let x =
            array![[50.0f32, 0.5, 0.1, 40.0, -1.0, 2.0, 52.0, 49.0], [80.0, -1.5, -2.0, 30.0, 0.2, 1.0, 83.0, 78.0]];
        let names = ["pt1", "eta1", "phi1", "pt2", "eta2", "phi2", "pt1_up", "pt1_dn"];
        let ds = Dataset::new(names.iter().map(|s| s.to_string()).collect(), x, Some(vec![0, 1]), Some(vec![1.0, 2.0]))
            .unwrap();
        let c = Collection::new(
            "jets",
            vec![0, 2, 3],
            vec!["pt".into(), "phi".into()],
            vec![vec![30.0, 45.0, 60.0], vec![0.3, -1.2, 2.5]],
        )
        .unwrap();
        ds.with_collection(c).unwrap()
    }

    fn model(v: serde_json::Value) -> Systematics {
        from_json(&v).unwrap()
    }

    fn col(ds: &Dataset, c: &str) -> Vec<f64> {
        ds.column(c).unwrap().iter().map(|&v| f64::from(v)).collect()
    }

    #[test]
    fn linear_nuisance_at_plus_minus_one_sigma_is_the_analytic_shift() {
        // relative σ(η) = 0.02 + 0.01·|η|: pt1 = 50 at η 0.5 → σ = 0.025 → ±1.25; pt1 = 80 at
        // η −1.5 → σ = 0.035 → ±2.8. Absolute shift of met-like pt2 by 3: ±3.
        let s = model(json!({ "nuisances": [
            { "name": "JES", "kind": "scale", "targets": ["pt1"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
            { "name": "shift", "kind": "scale", "targets": ["pt2"], "sigma": 3 } ] }));
        let ds = events();
        let up = vary(&ds, &s, &[1.0, 1.0]).unwrap();
        let dn = vary(&ds, &s, &[-1.0, -1.0]).unwrap();
        let close = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(col(&up, "pt1"), vec![51.25, 82.8]), "{:?}", col(&up, "pt1"));
        assert!(close(col(&dn, "pt1"), vec![48.75, 77.2]));
        assert!(close(col(&up, "pt2"), vec![43.0, 33.0]));
        assert!(close(col(&dn, "pt2"), vec![37.0, 27.0]));
        // the other columns, labels and weights are untouched
        assert_eq!(col(&up, "eta1"), col(&ds, "eta1"));
        assert_eq!(up.weight(), ds.weight());
        assert_eq!(vary(&ds, &s, &[0.0, 0.0]).unwrap().x(), ds.x());
    }

    #[test]
    fn uncertainty_model_is_one_linear_nuisance_per_feature() {
        use crate::attack::{FeatureSigma, UncertaintyModel};
        let ds = events();
        let spec = FeatureSigma { absolute: 1.0, relative: 0.1, floor: 0.0, frozen: false };
        let u = UncertaintyModel::new(ds.names().to_vec(), vec![spec; 8]).unwrap();
        let s = Systematics::from_uncertainty(&u).unwrap();
        assert_eq!(s.nuisances().len(), 8);
        // θ(pt2) = 1: pt2 moves by σ(pt2) of the per-feature model, √(1 + (0.1·x)²)
        let theta = s.theta(&[("pt2".into(), 1.0)]).unwrap();
        let v = vary(&ds, &s, &theta).unwrap();
        let sigma = u.sigma(ds.x());
        for i in 0..2 {
            let got = f64::from(v.x()[[i, 3]] - ds.x()[[i, 3]]);
            assert!((got - f64::from(sigma[[i, 3]])).abs() < 1e-4, "{got} vs {}", sigma[[i, 3]]);
        }
    }

    #[test]
    fn derived_features_equal_a_direct_recomputation_from_the_varied_inputs() {
        let s = model(json!({
            "nuisances": [
                { "name": "JES", "effects": [
                    { "kind": "scale", "targets": ["pt1", "pt2", "jets.pt"], "sigma": 0.03, "relative": true } ] },
                { "name": "JER", "kind": "smear", "targets": ["pt2"], "sigma": 0.1, "relative": true, "seed": 4 } ],
            "derived": {
                "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
                "ht": "pt1 + pt2 + sum(jets.pt)",
                "mex": "-(pt1 * cos(phi1) + pt2 * cos(phi2) + sum(jets.px))",
                "jets.px": "pt * cos(phi)",
                "r": "m12 / ht" } }));
        let ds = events();
        let v = vary(&ds, &s, &[0.7, -1.3]).unwrap();
        // Recompute by hand from the varied inputs.
        let (pt1, pt2) = (col(&v, "pt1"), col(&v, "pt2"));
        let (e1, e2, p1, p2) = (col(&ds, "eta1"), col(&ds, "eta2"), col(&ds, "phi1"), col(&ds, "phi2"));
        let jets = v.collection("t", "jets").unwrap();
        let jpt: Vec<f64> = jets.values("pt").unwrap().iter().map(|&x| f64::from(x)).collect();
        let jphi: Vec<f64> = jets.values("phi").unwrap().iter().map(|&x| f64::from(x)).collect();
        // jets.pt scaled by 1 + 0.7·0.03 = 1.021 (JES only: JER acts on pt2)
        assert!((jpt[0] - 30.0 * 1.021).abs() < 1e-4);
        let off = [0usize, 2, 3];
        for i in 0..2 {
            let dphi = p1[i] - p2[i];
            let m12 = (2.0 * pt1[i] * pt2[i] * ((e1[i] - e2[i]).cosh() - dphi.cos())).sqrt();
            let jets_ht: f64 = jpt[off[i]..off[i + 1]].iter().sum();
            let jets_px: f64 = (off[i]..off[i + 1]).map(|k| jpt[k] * jphi[k].cos()).sum();
            let mex = -(pt1[i] * p1[i].cos() + pt2[i] * p2[i].cos() + jets_px);
            let ht = pt1[i] + pt2[i] + jets_ht;
            for (name, want) in [("m12", m12), ("ht", ht), ("mex", mex), ("r", m12 / ht)] {
                let got = col(&v, name)[i];
                assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{name}[{i}]: {got} vs {want}");
            }
        }
        // pt2 is smeared: it moved, and the same seed gives the same numbers
        assert_ne!(col(&v, "pt2")[0] as f32, 40.0 * 1.021);
        assert_eq!(vary(&ds, &s, &[0.7, -1.3]).unwrap().x(), v.x());
    }

    #[test]
    fn smearing_is_seeded_per_event_and_independent_of_threads() {
        // 5000 events: the draws z = (x(θ=1) − x⁰)/(σ·x⁰) have mean ≈ 0 and variance ≈ 1.
        let n = 5000;
        let x = ndarray::Array2::from_shape_fn((n, 1), |(i, _)| 10.0 + i as f32 * 0.01);
        let ds = Dataset::new(vec!["pt".into()], x, None, None).unwrap();
        let s = model(
            json!({ "nuisances": [{ "name": "JER", "kind": "smear", "targets": ["pt"], "sigma": 0.1, "relative": true, "seed": 9 }] }),
        );
        let a = vary(&ds, &s, &[1.0]).unwrap();
        let b =
            rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| vary(&ds, &s, &[1.0]).unwrap());
        assert_eq!(a.x(), b.x());
        let z: Vec<f64> =
            (0..n).map(|i| f64::from(a.x()[[i, 0]] - ds.x()[[i, 0]]) / (0.1 * f64::from(ds.x()[[i, 0]]))).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        // 5σ bounds: mean ± 5/√5000 = 0.07, variance ± 5·√(2/5000) = 0.1
        assert!(mean.abs() < 0.07 && (var - 1.0).abs() < 0.1, "mean {mean} var {var}");
        // θ = 2 doubles the same shift
        let c = vary(&ds, &s, &[2.0]).unwrap();
        let d0 = f64::from(a.x()[[7, 0]] - ds.x()[[7, 0]]);
        assert!((f64::from(c.x()[[7, 0]] - ds.x()[[7, 0]]) - 2.0 * d0).abs() < 1e-4);
    }

    #[test]
    fn alternatives_and_weights_follow_their_codes() {
        let s = model(json!({ "nuisances": [
            { "name": "alt", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 0 },
            { "name": "w", "kind": "weight", "up": "pt1_up", "down": "pt1_dn", "code": 1 },
            { "name": "lumi", "kind": "norm", "size": 0.1 } ] }));
        let ds = events();
        // code 0 at θ = 0.5: 50 + 0.5·2 = 51; 80 + 0.5·3 = 81.5
        let v = vary(&ds, &s, &[0.5, 0.0, 0.0]).unwrap();
        assert_eq!(col(&v, "pt1"), vec![51.0, 81.5]);
        // weights are 1, 2: as nominal w⁰ with up/down columns pt1_up/pt1_dn, code 1 at θ = −1
        // gives the down column exactly: 49, 78; times the log-normal norm 1.1^2 at θ = 2.
        let v = vary(&ds, &s, &[0.0, -1.0, 2.0]).unwrap();
        let w = v.weight().unwrap();
        assert!((f64::from(w[0]) - 49.0 * 1.21).abs() < 1e-3 && (f64::from(w[1]) - 78.0 * 1.21).abs() < 1e-3, "{w:?}");
        assert_eq!(Code::from_number(1).unwrap(), Code::Exponential);
    }

    #[test]
    fn tangents_match_finite_differences() {
        let s = model(json!({ "nuisances": [
            { "name": "JES", "effects": [
                { "kind": "scale", "targets": ["pt1", "jets.pt"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
                { "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 4 } ] },
            { "name": "JER", "kind": "smear", "targets": ["pt1"], "sigma": 0.1, "relative": true, "seed": 2 },
            { "name": "alt", "kind": "alternative", "nominal": ["pt2"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 2 },
            { "name": "w", "kind": "weight", "up": "pt1_up", "down": "pt1_dn", "code": 4 },
            { "name": "lumi", "kind": "norm", "size": 0.05, "prior": "gaussian" } ] }));
        let ds = events();
        let theta = [0.4, -0.6, 0.3, 0.7, -0.5];
        for k in 0..theta.len() {
            let (_, tan) = vary_with_tangent(&ds, &s, &theta, k).unwrap();
            let h = 1e-3;
            let (mut tp, mut tm) = (theta, theta);
            tp[k] += h;
            tm[k] -= h;
            // f64 values before the f32 rounding of the dataset: recompute through the tangent
            // API's own values at θ ± h (its columns are the same targets in the same order).
            let at = |t: &[f64]| {
                let v = Prepared::new(&ds, &s).unwrap().run(&Theta::Shared(t), &[]).unwrap();
                (v.x, v.weight.map(|w| w.0))
            };
            let ((cp, wp), (cm, wm)) = (at(&tp), at(&tm));
            for (j, (target, d)) in tan.columns.iter().enumerate() {
                for i in 0..d.len() {
                    let fd = (cp[j][i] - cm[j][i]) / (2.0 * h);
                    assert!(
                        (d[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                        "θ{k} {}[{i}]: {} vs {fd}",
                        target.name(),
                        d[i]
                    );
                }
            }
            if let (Some(d), Some(wp), Some(wm)) = (&tan.weight, wp, wm) {
                for i in 0..d.len() {
                    let fd = (wp[i] - wm[i]) / (2.0 * h);
                    assert!((d[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()), "θ{k} weight[{i}]: {} vs {fd}", d[i]);
                }
            }
        }
    }

    #[test]
    fn derived_feature_tangents_match_finite_differences() {
        let s = model(json!({
            "nuisances": [
                { "name": "JES", "kind": "scale", "targets": ["pt1", "pt2", "jets.pt"], "sigma": "0.02 + 0.01*abs(eta1)", "relative": true },
                { "name": "phi", "kind": "scale", "targets": ["phi1", "jets.phi"], "sigma": 0.3 } ],
            "derived": {
                "m12": "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))",
                "ht": "pt1 + pt2 + sum(jets.pt)",
                "jets.px": "pt * cos(phi) + 0 * pt1",
                "mex": "-(pt1 * cos(phi1) + sum(jets.px))",
                "r": "m12 / ht + atan2(mex, ht)" } }));
        let ds = events();
        let theta = [0.6, -0.4];
        for k in 0..2 {
            let (_, tan) = vary_with_tangent(&ds, &s, &theta, k).unwrap();
            assert_eq!(tan.derived.len(), 5);
            // f32-stored inputs: h = 1e-2, relative tolerance 2e-3 (the functions are smooth here).
            let h = 1e-2;
            let (mut tp, mut tm) = (theta, theta);
            tp[k] += h;
            tm[k] -= h;
            let (vp, vm) = (vary(&ds, &s, &tp).unwrap(), vary(&ds, &s, &tm).unwrap());
            for (target, d) in &tan.derived {
                let (p, m): (Vec<f64>, Vec<f64>) = match target {
                    Target::Column(c) => (col(&vp, c), col(&vm, c)),
                    Target::Object { coll, feature } => {
                        let f = |v: &Dataset| {
                            v.collection("t", coll)
                                .unwrap()
                                .values(feature)
                                .unwrap()
                                .iter()
                                .map(|&x| f64::from(x))
                                .collect()
                        };
                        (f(&vp), f(&vm))
                    }
                };
                for i in 0..d.len() {
                    let fd = (p[i] - m[i]) / (2.0 * h);
                    assert!(
                        (d[i] - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                        "θ{k} {}[{i}]: {} vs fd {fd}",
                        target.name(),
                        d[i]
                    );
                }
                assert!(k != 0 || target.name() != "m12" || d.iter().all(|v| v.abs() > 0.1), "JES moves m12: {d:?}");
            }
        }
    }

    #[test]
    fn bad_definitions_against_the_data_are_clear_errors() {
        let ds = events();
        let msg = |v: serde_json::Value| {
            vary(&ds, &model(v.clone()), &vec![0.0; v["nuisances"].as_array().map_or(0, |a| a.len())])
                .unwrap_err()
                .to_string()
        };
        let e = msg(json!({ "nuisances": [{ "name": "JES", "kind": "scale", "targets": ["pt3"], "sigma": 0.1 }] }));
        assert!(e.starts_with("vary: unknown column 'pt3'; available: pt1, eta1"), "{e}");
        let e = msg(
            json!({ "nuisances": [{ "name": "a", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_JES_up"], "down": ["pt1_dn"] }] }),
        );
        assert!(e.starts_with("vary: unknown column 'pt1_JES_up'"), "{e}");
        let e = msg(json!({ "nuisances": [{ "name": "w", "kind": "weight", "up": "w_up" }] }));
        assert!(e.starts_with("vary: unknown column 'w_up'"), "{e}");
        let e = msg(json!({ "nuisances": [{ "name": "j", "kind": "scale", "targets": ["jets.eta"], "sigma": 0.1 }] }));
        assert!(e.contains("unknown column 'jets.eta'"), "{e}");
        let e = msg(json!({ "derived": { "m12": "pt1 * ptt2" } }));
        assert!(e.starts_with("vary: unknown column 'ptt2'"), "{e}");
        let e = msg(json!({ "nuisances": [{ "name": "n", "kind": "scale", "targets": ["pt1"], "sigma": "eta1" }] }));
        assert!(e.contains("σ of 'pt1' must be ≥ 0 and finite, got -1.5 at row 1"), "{e}");
        let e = msg(
            json!({ "nuisances": [{ "name": "n", "kind": "scale", "targets": ["m"], "sigma": 1 }], "derived": { "m": "pt1" } }),
        );
        assert!(e.contains("varies 'm', a derived feature"), "{e}");
    }
}
