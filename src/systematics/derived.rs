//! Derived features recomputed from the varied inputs in dependency order, with their
//! derivatives in θ by the chain rule through their expressions (vector mode,
//! `data::expr::Expr::eval_dual`).

use std::collections::HashMap;

use super::nuisance::{Derived, Systematics, Target};

use crate::data::expr::{Dual, Expr, Table};
use crate::data::Dataset;
use crate::error::{Error, Result};

const OP: &str = "vary";

/// Per tracked nuisance, a column's derivative per row (`None`: it does not depend on it).
pub(super) type PerNuisance = Vec<Option<Vec<f64>>>;

/// Where derivatives of derived features go: every column's derivatives so far (the derived
/// features are appended in evaluation order), and the number of tracked nuisances.
pub(super) type DerivedTangents<'a> = (&'a mut Vec<(Target, PerNuisance)>, usize);

/// The derived features recomputed in dependency order (with their derivatives when asked).
pub(super) fn recompute(
    mut ds: Dataset,
    syst: &Systematics,
    mut tangents: Option<DerivedTangents<'_>>,
) -> Result<Dataset> {
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

/// Event columns at θ held outside a dataset: the columns varied directly, then the derived
/// features in evaluation order, each with its values (rounded to f32 and back, as a dataset
/// holds them) and its derivatives per tracked nuisance.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// Per column, its name and values.
    pub values: Vec<(String, Vec<f64>)>,
    /// Per column (same order), its target and derivatives per tracked nuisance.
    pub tangents: Vec<(Target, PerNuisance)>,
}

impl Columns {
    /// The values of the column `name` (the last one of that name: derived features replace).
    pub fn value(&self, name: &str) -> Option<&[f64]> {
        self.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| &v[..])
    }
}

/// The nominal dataset with the columns of [`Columns`] laid over it, as an expression table.
struct Overlay<'a> {
    ds: &'a Dataset,
    cols: &'a Columns,
}

impl Overlay<'_> {
    /// Ids past the dataset's own (its features, label and weight) are overlay columns.
    fn base(&self) -> usize {
        self.ds.n_features() + 2
    }
}

impl Table for Overlay<'_> {
    fn rows(&self) -> usize {
        self.ds.len()
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        match self.cols.values.iter().rposition(|(n, _)| n == name) {
            Some(i) => Some(self.base() + i),
            None => (&self.ds).lookup(name),
        }
    }

    fn available(&self) -> Vec<String> {
        let mut a = (&self.ds).available();
        for (n, _) in &self.cols.values {
            if !a.contains(n) {
                a.push(n.clone());
            }
        }
        a
    }

    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64> {
        match id.checked_sub(self.base()) {
            Some(i) => self.cols.values[i].1[start..start + len].to_vec(),
            None => (&self.ds).fill(id, start, len),
        }
    }
}

/// Whether [`derive_columns`] can evaluate the derived features without a dataset: every one
/// is an event column and sums over no collection (object features would need the
/// collections rebuilt), and none reads the weight when an effect varies it.
pub(super) fn flat(syst: &Systematics, weight_varies: bool) -> bool {
    syst.derived().iter().all(|d| {
        matches!(d.target, Target::Column(_))
            && d.expr.object_columns().is_empty()
            && !(weight_varies && d.expr.columns().iter().any(|c| c == "weight"))
    })
}

/// Appends the derived features (values and derivatives along `k` tracked nuisances, one
/// vector-mode evaluation each) to `cols`, which holds the directly varied columns: what
/// [`recompute`] with tangents gives, without building a dataset. Only for models where
/// [`flat`] holds.
pub(super) fn derive_columns(ds: &Dataset, syst: &Systematics, cols: &mut Columns, k: usize) -> Result<()> {
    let nosum = |coll: &str, _: &Expr| -> Result<Dual> {
        Err(Error::arg(OP, format!("internal: a sum over '{coll}' outside a dataset")))
    };
    for d in syst.derived_in_order() {
        let name = match &d.target {
            Target::Column(name) => name.clone(),
            Target::Object { .. } => return Err(Error::arg(OP, "internal: an object feature outside a dataset")),
        };
        let Dual { value, tangents } = {
            let find = |n: &str| cols.tangents.iter().rev().find(|(t, _)| t.name() == n).map(|(_, per)| per.clone());
            d.expr.eval_dual(&Overlay { ds, cols }, k, &find, &nosum, OP)?
        };
        let value: Vec<f64> = value.into_iter().map(|v| f64::from(v as f32)).collect();
        if let Some(row) = value.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: format!("derived feature '{name}' = '{}'", d.expr),
                column: name.clone(),
                count: value.iter().filter(|v| !v.is_finite()).count(),
                row,
            });
        }
        cols.values.push((name, value));
        cols.tangents.push((d.target.clone(), tangents));
    }
    Ok(())
}
