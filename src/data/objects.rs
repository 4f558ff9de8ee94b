//! Per-object operations on a dataset's collections: cuts, sorting, derived object features,
//! multiplicities and object histograms.
//!
//! Object expressions use the cut/derive language of [`super::expr`]; a name is an object
//! feature of the collection first, then an event column (feature, `label`, `weight`) whose
//! value is broadcast to every object of the event. So `dphi(phi, jet_phi)` is the azimuthal
//! distance of each constituent to its jet axis, and `pt / jet_pt` its pT fraction.
//!
//! ```
//! use nuisance::data::{Collection, Dataset};
//! let x = ndarray::array![[10.0f32], [20.0]];
//! let ds = Dataset::new(vec!["jet_pt".into()], x, None, None).unwrap();
//! // event 0 has objects with pt 4 and 6, event 1 one object with pt 5
//! let c = Collection::new("part", vec![0, 2, 3], vec!["pt".into()], vec![vec![4.0, 6.0, 5.0]]).unwrap();
//! let ds = ds.with_collection(c).unwrap().derive_objects("part", "frac", "pt / jet_pt").unwrap();
//! assert_eq!(ds.collection("test", "part").unwrap().values("frac").unwrap(), &[0.4, 0.6, 0.25]);
//! ```

use super::collection::Collection;
use super::expr::{dataset_value, Expr, Table};
use super::stats::{histogram_values, Histogram};
use super::Dataset;
use crate::error::{Error, Result};

/// The objects of one collection as expression rows, with the event columns broadcast.
struct ObjectTable<'a> {
    ds: &'a Dataset,
    c: &'a Collection,
    event: Vec<usize>,
}

impl ObjectTable<'_> {
    fn new<'a>(ds: &'a Dataset, c: &'a Collection) -> ObjectTable<'a> {
        ObjectTable { ds, c, event: c.event_index() }
    }
}

impl Table for ObjectTable<'_> {
    fn rows(&self) -> usize {
        self.c.n_objects()
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        let f = self.c.features().len();
        match self.c.features().iter().position(|n| n == name) {
            Some(j) => Some(j),
            None => (&self.ds).lookup(name).map(|id| f + id),
        }
    }

    fn available(&self) -> Vec<String> {
        let mut a = self.c.features().to_vec();
        a.extend((&self.ds).available());
        a
    }

    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64> {
        let f = self.c.features().len();
        if id < f {
            return self.c.values_at(id)[start..start + len].iter().map(|&v| f64::from(v)).collect();
        }
        self.event[start..start + len].iter().map(|&i| dataset_value(self.ds, id - f, i)).collect()
    }
}

impl Dataset {
    /// Per event, the sum of the object expression `expr` over the objects of `coll` (0 for an
    /// event without objects).
    pub(crate) fn sum_objects(&self, op: &'static str, coll: &str, expr: &Expr) -> Result<Vec<f64>> {
        let c = self.collection(op, coll)?;
        let v = expr.eval_table(&ObjectTable::new(self, c), op)?;
        Ok(c.offsets().windows(2).map(|w| v[w[0]..w[1]].iter().sum()).collect())
    }

    /// Evaluates a parsed object expression on every object of collection `coll`.
    pub(crate) fn eval_objects_expr(&self, op: &'static str, coll: &str, expr: &Expr) -> Result<Vec<f64>> {
        let c = self.collection(op, coll)?;
        expr.eval_table(&ObjectTable::new(self, c), op)
    }

    /// An object expression's values and derivatives along `k` directions on every object of
    /// `coll`, given the derivatives of each name it reads (object features first, then event
    /// columns, as [`Dataset::eval_objects`] resolves them; `tangent` receives the bare name).
    pub(crate) fn eval_objects_dual(
        &self,
        op: &'static str,
        coll: &str,
        expr: &Expr,
        k: usize,
        tangent: super::expr::TangentOf<'_>,
    ) -> Result<super::expr::Dual> {
        let c = self.collection(op, coll)?;
        let nested = |_: &str, _: &Expr| -> Result<super::expr::Dual> {
            Err(Error::arg(op, format!("in '{expr}': a sum over objects inside an object expression")))
        };
        expr.eval_dual(&ObjectTable::new(self, c), k, tangent, &nested, op)
    }

    /// Evaluates an object expression on every object of collection `coll`, in storage order.
    pub fn eval_objects(&self, op: &'static str, coll: &str, expr: &str) -> Result<Vec<f64>> {
        let c = self.collection(op, coll)?;
        Expr::parse(expr)?.eval_table(&ObjectTable::new(self, c), op)
    }

    /// Keeps the objects of `coll` where the expression is true; every event stays (and may
    /// be left with no objects).
    pub fn filter_objects(&self, coll: &str, expr: &str) -> Result<Dataset> {
        let keep: Vec<bool> =
            self.eval_objects("filter_objects", coll, expr)?.into_iter().map(|v| v != 0.0 && !v.is_nan()).collect();
        let c = self.collection("filter_objects", coll)?.filter_objects(&keep)?;
        self.with_collection(c)
    }

    /// Orders the objects of each event by `feature` (descending or ascending; ties keep
    /// their order), keeping at most `keep` leading objects per event.
    pub fn sort_objects(&self, coll: &str, feature: &str, descending: bool, keep: Option<usize>) -> Result<Dataset> {
        let c = self.collection("sort_objects", coll)?;
        c.index_of("sort_objects", feature)?;
        self.with_collection(c.sort_objects(feature, descending, keep)?)
    }

    /// Adds (or replaces) the object feature `name` of `coll`, computed from an expression.
    pub fn derive_objects(&self, coll: &str, name: &str, expr: &str) -> Result<Dataset> {
        let v = self.eval_objects("derive_objects", coll, expr)?;
        let c = self.collection("derive_objects", coll)?;
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                op: format!("derive_objects '{coll}.{name}' = '{expr}'"),
                column: format!("{coll}.{name}"),
                count: v.iter().filter(|x| !x.is_finite()).count(),
                row: c.event_of(k),
            });
        }
        self.with_collection(c.with_feature(name, v)?)
    }

    /// Objects per event of `coll` (only those passing `cut`, when given) as the event
    /// feature `name`.
    pub fn multiplicity(&self, coll: &str, name: &str, cut: Option<&str>) -> Result<Dataset> {
        let c = self.collection("multiplicity", coll)?;
        let counts: Vec<f32> = match cut {
            None => c.counts().into_iter().map(|n| n as f32).collect(),
            Some(expr) => {
                let pass = self.eval_objects("multiplicity", coll, expr)?;
                c.offsets()
                    .windows(2)
                    .map(|w| pass[w[0]..w[1]].iter().filter(|&&v| v != 0.0 && !v.is_nan()).count() as f32)
                    .collect()
            }
        };
        self.with_column(name, counts)
    }

    /// Histogram of an object feature over all objects; with `weighted`, each object counts
    /// with its event's weight.
    pub fn object_histogram(
        &self,
        coll: &str,
        feature: &str,
        bins: usize,
        range: Option<(f64, f64)>,
        weighted: bool,
    ) -> Result<Histogram> {
        let c = self.collection("histogram", coll)?;
        let values = c.values(feature)?;
        let w: Option<Vec<f32>> = match (weighted, self.weight()) {
            (true, Some(w)) => Some(c.event_index().into_iter().map(|i| w[i]).collect()),
            _ => None,
        };
        histogram_values(values, w.as_deref(), bins, range)
    }

    /// The histogram of a feature column, or of an object feature named `collection.feature`
    /// (a feature column of that exact name wins).
    pub fn histogram_any(
        &self,
        column: &str,
        bins: usize,
        range: Option<(f64, f64)>,
        weighted: bool,
    ) -> Result<Histogram> {
        if !self.names().iter().any(|n| n == column) {
            if let Some((coll, feature)) = column.split_once('.') {
                if self.collections().iter().any(|c| c.name() == coll) {
                    return self.object_histogram(coll, feature, bins, range, weighted);
                }
            }
        }
        self.histogram(column, bins, range, weighted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Two jets (jet_phi = 3.0 and 0.0, weights 2 and 1) with constituents
    /// e0: (pt 4, phi −3.0), (pt 6, phi 2.9); e1: (pt 1, phi 0.5), (pt 3, phi −0.5), (pt 0.5, phi 0).
    fn jets() -> Dataset {
        let x = array![[3.0f32, 10.0], [0.0, 4.5]];
        let ds =
            Dataset::new(vec!["jet_phi".into(), "jet_pt".into()], x, Some(vec![1, 0]), Some(vec![2.0, 1.0])).unwrap();
        let pt = vec![4.0, 6.0, 1.0, 3.0, 0.5];
        let phi = vec![-3.0, 2.9, 0.5, -0.5, 0.0];
        let c = Collection::new("part", vec![0, 2, 5], vec!["pt".into(), "phi".into()], vec![pt, phi]).unwrap();
        ds.with_collection(c).unwrap()
    }

    fn vals(d: &Dataset, f: &str) -> Vec<f32> {
        d.collection("t", "part").unwrap().values(f).unwrap().to_vec()
    }

    #[test]
    fn derive_broadcasts_event_columns_and_wraps_phi() {
        let d = jets().derive_objects("part", "dphi", "dphi(phi, jet_phi)").unwrap();
        // −3 − 3 = −6 → −6 + 2π = 0.2831853; 2.9 − 3 = −0.1; event 1: 0.5, −0.5, 0
        let want = [(2.0 * std::f64::consts::PI - 6.0) as f32, -0.1, 0.5, -0.5, 0.0];
        for (g, w) in vals(&d, "dphi").iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} {w}");
        }
        let d = d.derive_objects("part", "frac", "pt / jet_pt").unwrap();
        assert_eq!(vals(&d, "frac"), vec![0.4, 0.6, 1.0 / 4.5, 3.0 / 4.5, 0.5 / 4.5]);
        let d = d.derive_objects("part", "logpt", "log(pt) * (label + 1)").unwrap();
        // label 1 for event 0 (factor 2), 0 for event 1 (factor 1)
        assert_eq!(vals(&d, "logpt"), vec![2.0 * 4f32.ln(), 2.0 * 6f32.ln(), 0.0, 3f32.ln(), 0.5f32.ln()]);
        let e = jets().derive_objects("part", "bad", "log(pt - 1)").unwrap_err();
        // pt − 1 = 0 for the first object of event 1: log(0) = −inf
        assert_eq!(e.kind(), "non_finite");
        assert!(e.to_string().contains("first at row 1"), "{e}");
        let e = jets().derive_objects("part", "z", "ptt * 2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "derive_objects: unknown column 'ptt'; available: pt, phi, jet_phi, jet_pt, label, weight"
        );
    }

    #[test]
    fn cuts_sorting_and_multiplicity() {
        let j = jets();
        let d = j.filter_objects("part", "pt > 1").unwrap();
        assert_eq!(d.collection("t", "part").unwrap().counts(), vec![2, 1]);
        // an object operation shares the event matrix instead of copying it
        assert_eq!(d.x().as_ptr(), j.x().as_ptr());
        assert_eq!(vals(&d, "pt"), vec![4.0, 6.0, 3.0]);
        let d = jets().sort_objects("part", "pt", true, Some(2)).unwrap();
        assert_eq!(vals(&d, "pt"), vec![6.0, 4.0, 3.0, 1.0]);
        assert_eq!(vals(&d, "phi"), vec![2.9, -3.0, -0.5, 0.5]);
        let d = jets()
            .multiplicity("part", "n_part", None)
            .unwrap()
            .multiplicity("part", "n_hard", Some("pt >= 3"))
            .unwrap();
        assert_eq!(d.column("n_part").unwrap().to_vec(), vec![2.0, 3.0]);
        assert_eq!(d.column("n_hard").unwrap().to_vec(), vec![2.0, 1.0]);
        assert!(jets().sort_objects("part", "eta", true, None).unwrap_err().to_string().contains("part.eta"));
        let e = jets().filter_objects("jets", "pt > 1").unwrap_err();
        assert_eq!(e.to_string(), "filter_objects: unknown column 'jets'; available: part");
    }

    #[test]
    fn object_histogram_weights_each_object_by_its_event() {
        let d = jets();
        // bins [0, 5), [5, 10): event 0 (w 2): 4 → bin 0, 6 → bin 1; event 1 (w 1): 1, 3, 0.5 → bin 0
        let h = d.histogram_any("part.pt", 2, Some((0.0, 10.0)), true).unwrap();
        assert_eq!(h.counts, vec![2.0 + 3.0, 2.0]);
        let h = d.histogram_any("part.pt", 2, Some((0.0, 10.0)), false).unwrap();
        assert_eq!(h.counts, vec![4.0, 1.0]);
        assert_eq!(d.histogram_any("jet_pt", 1, None, false).unwrap().counts, vec![2.0]);
        assert_eq!(d.histogram_any("part.eta", 2, None, false).unwrap_err().kind(), "unknown_column");
    }

    #[test]
    fn flat_operations_keep_each_events_objects() {
        let d = jets();
        let f = d.filter_expr("jet_pt < 5").unwrap();
        assert_eq!(vals(&f, "pt"), vec![1.0, 3.0, 0.5]);
        let s = d.select(&["jet_pt".to_string()]).unwrap().derive("x", "jet_pt * 2").unwrap();
        assert_eq!(vals(&s, "pt"), vals(&d, "pt"));
        let (a, b) = crate::data::ops::concat(&[d.clone(), d.clone()]).unwrap().split(0.5, 3).unwrap();
        for part in [a, b] {
            // each event's objects follow it: event with jet_pt 10 has pt (4, 6), the other (1, 3, 0.5)
            let c = part.collection("t", "part").unwrap();
            for (i, pt) in part.column("jet_pt").unwrap().iter().enumerate() {
                let want: &[f32] = if *pt == 10.0 { &[4.0, 6.0] } else { &[1.0, 3.0, 0.5] };
                assert_eq!(c.event("pt", i).unwrap(), want);
            }
        }
        let w = d.with_label(None).unwrap().with_weight(None).unwrap().rename("jet_pt", "pt_j").unwrap();
        assert_eq!(w.collections().len(), 1);
        assert_eq!(d.sample(4, 1, true).unwrap().collections()[0].n_events(), 4);
        let e = crate::data::ops::concat(&[d.clone(), d.without_collection("part").unwrap()]).unwrap_err();
        assert_eq!(e.to_string(), "concat: expected the collections of part 0 [part], got [] in part 1");
        assert_eq!(d.summary(), "Dataset(n=2, features=2, label, weight, objects: part[2])");
    }
}
