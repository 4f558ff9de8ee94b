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

use std::f64::consts::TAU;

use super::nuisance::{Derived, Effect, Sigma, Systematics, Target};
use super::prepared::{Prepared, Theta};
use crate::data::expr::Expr;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::{substream, Stream};

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
pub(super) fn reads(d: &Derived) -> Vec<String> {
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
pub(super) fn nominal(ds: &Dataset, t: &Target) -> Result<Vec<f64>> {
    match t {
        Target::Column(c) => Ok(ds.column(c).map_err(|_| unknown(ds, c))?.iter().map(|&v| f64::from(v)).collect()),
        Target::Object { coll, feature } => {
            let c = ds.collection(OP, coll)?;
            let j = c.index_of(OP, feature)?;
            Ok(c.values_at(j).iter().map(|&v| f64::from(v)).collect())
        }
    }
}

pub(super) fn unknown(ds: &Dataset, name: &str) -> Error {
    Error::UnknownColumn { op: OP, name: name.to_string(), available: (&ds).available_names().join(", ") }
}

/// σ per row of a target, from the nominal dataset; negative or non-finite σ is an error.
pub(super) fn sigma_values(ds: &Dataset, nuisance: &str, t: &Target, sigma: &Sigma, rows: usize) -> Result<Vec<f64>> {
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
pub(super) fn draws(ds: &Dataset, target: &Target, seed: u64, t: usize, rows: usize) -> Result<Vec<f64>> {
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

#[cfg(test)]
#[path = "vary_tests.rs"]
mod tests;
