//! The flat input layout of a set model: which dataset values a set network sees, and where.
//!
//! A set model (the [`Pfn`](super::Pfn)) takes, like every model, a row-major `n × D` f32
//! matrix in physical units. Its `D` entries are, per event:
//!
//! 1. the flat event features `event_features` (dataset columns, possibly none), in order;
//! 2. one object block of the collection `collection`: a **count entry** (the number of real
//!    objects, as f32), then `max_objects` slots of the `object_features`, slot-major
//!    (slot 0's features, then slot 1's, …). Real objects fill the first `k` slots in the
//!    collection's order; padded slots hold 0.
//!
//! **Objects beyond `max_objects` are dropped from the model's view**: the leading
//! `max_objects` objects in stored order are kept, so sort the collection first (e.g. by pT,
//! `sort_objects`) if the leading ones should be the hardest. [`SetLayout::scatter`] leaves
//! those dropped objects unchanged.

use ndarray::{Array2, ArrayView2};

use crate::data::collection::Collection;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::limits;

/// Largest `max_objects` a set layout accepts.
pub const MAX_OBJECTS: usize = 100_000;

/// Which event features and which objects of which collection a set model reads.
#[derive(Clone, Debug, PartialEq)]
pub struct SetLayout {
    /// Flat event features (dataset columns), first in the input row.
    pub event_features: Vec<String>,
    /// Name of the object collection.
    pub collection: String,
    /// Per-object features, in slot order.
    pub object_features: Vec<String>,
    /// Number of object slots.
    pub max_objects: usize,
}

impl SetLayout {
    /// A layout, checked: a collection name, at least one object feature, no duplicate
    /// names, 1 ≤ `max_objects` ≤ [`MAX_OBJECTS`], and an input row within the limits.
    pub fn new(
        event_features: Vec<String>,
        collection: &str,
        object_features: Vec<String>,
        max_objects: usize,
    ) -> Result<SetLayout> {
        let op = "pfn";
        if collection.is_empty() {
            return Err(Error::arg(op, "needs the name of an object collection"));
        }
        if object_features.is_empty() {
            return Err(Error::arg(op, "needs at least one object feature"));
        }
        for (what, names) in [("event feature", &event_features), ("object feature", &object_features)] {
            for (i, a) in names.iter().enumerate() {
                if names[..i].contains(a) {
                    return Err(Error::arg(op, format!("{what} '{a}' is listed twice")));
                }
            }
        }
        if max_objects == 0 {
            return Err(Error::arg(op, "max_objects must be at least 1"));
        }
        limits::check(op, "max_objects", max_objects, MAX_OBJECTS)?;
        let layout = SetLayout { event_features, collection: collection.to_string(), object_features, max_objects };
        limits::check(op, "input width", layout.width(), limits::LAYER_WIDTH.saturating_mul(100))?;
        Ok(layout)
    }

    /// Number of flat event features `E`.
    pub fn n_event(&self) -> usize {
        self.event_features.len()
    }

    /// Number of features per object `f`.
    pub fn n_object(&self) -> usize {
        self.object_features.len()
    }

    /// Column of the count entry (= `E`).
    pub fn count_column(&self) -> usize {
        self.n_event()
    }

    /// Column of feature `j` of slot `s`.
    pub fn slot_column(&self, s: usize, j: usize) -> usize {
        self.n_event() + 1 + s * self.n_object() + j
    }

    /// Entries per event: `E + 1 + max_objects · f`.
    pub fn width(&self) -> usize {
        self.n_event().saturating_add(1).saturating_add(self.max_objects.saturating_mul(self.n_object()))
    }

    /// The real objects of an input row: its count entry rounded and clamped to
    /// `[0, max_objects]` (NaN counts as 0).
    pub fn count(&self, row: &[f32]) -> usize {
        self.count_of(row[self.count_column()])
    }

    /// The real objects a count entry `c` stands for (as [`SetLayout::count`]).
    pub fn count_of(&self, c: f32) -> usize {
        if c.is_nan() {
            0
        } else {
            c.round().clamp(0.0, self.max_objects as f32) as usize
        }
    }

    /// The slot of input column `col` (`None` for event features, the count and columns
    /// beyond the layout).
    pub fn slot_of(&self, col: usize) -> Option<usize> {
        let first = self.count_column() + 1;
        (col >= first && col < self.width()).then(|| (col - first) / self.n_object())
    }

    /// The object feature (index into `object_features`) of input column `col`, when `col` is
    /// a slot column.
    pub fn object_feature_of(&self, col: usize) -> Option<usize> {
        let first = self.count_column() + 1;
        (col >= first && col < self.width()).then(|| (col - first) % self.n_object())
    }

    /// Whether input column `col` is a padded slot of an event whose count entry is `count`
    /// (a slot at or beyond the event's real objects).
    #[inline]
    pub fn is_padded(&self, col: usize, count: f32) -> bool {
        self.slot_of(col).is_some_and(|s| s >= self.count_of(count))
    }

    /// The logical feature names of a set model: the event features, then `coll.feature` for
    /// each object feature (the names uncertainty models, projections and RDSA use).
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.event_features.clone();
        names.extend(self.object_features.iter().map(|f| format!("{}.{f}", self.collection)));
        names
    }

    /// Names of the `D` entries: the event features, `coll.n`, then `coll[s].feature` per
    /// slot and feature.
    pub fn names(&self) -> Vec<String> {
        let mut out = self.event_features.clone();
        out.push(format!("{}.n", self.collection));
        for s in 0..self.max_objects {
            for f in &self.object_features {
                out.push(format!("{}[{s}].{f}", self.collection));
            }
        }
        out
    }

    /// The dataset's collection, checked to have the layout's object features.
    fn collection_of<'a>(&self, op: &'static str, ds: &'a Dataset) -> Result<(&'a Collection, Vec<usize>)> {
        let c = ds.collection(op, &self.collection)?;
        let idx = self.object_features.iter().map(|f| c.index_of(op, f)).collect::<Result<Vec<_>>>()?;
        Ok((c, idx))
    }

    /// Errors unless the dataset has the layout's event features, its collection and the
    /// collection's object features (the error names what is missing).
    pub fn check(&self, ds: &Dataset) -> Result<()> {
        let op = "pfn";
        for f in &self.event_features {
            ds.index_of(op, f)?;
        }
        self.collection_of(op, ds).map(|_| ())
    }

    /// The `n × D` input matrix of a dataset (physical units), in the layout above.
    pub fn gather(&self, ds: &Dataset) -> Result<Array2<f32>> {
        let op = "pfn";
        let ev = self.event_features.iter().map(|f| ds.index_of(op, f)).collect::<Result<Vec<_>>>()?;
        let (c, idx) = self.collection_of(op, ds)?;
        let (n, d, f) = (ds.len(), self.width(), self.n_object());
        let what = format!("{op}: the {n} × {d} input matrix of the set model");
        crate::memory::check(crate::memory::bytes(n.saturating_mul(d), 4), &what)?;
        let mut x = Array2::<f32>::zeros((n, d));
        let (dx, off) = (ds.x(), c.offsets());
        let cols: Vec<&[f32]> = idx.iter().map(|&j| c.values_at(j)).collect();
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let Some(row) = row.as_slice_mut() else { continue };
            for (e, &j) in ev.iter().enumerate() {
                row[e] = dx[[i, j]];
            }
            let k = (off[i + 1] - off[i]).min(self.max_objects);
            row[self.count_column()] = k as f32;
            for s in 0..k {
                for (j, col) in cols.iter().enumerate() {
                    row[self.slot_column(s, j)] = col[off[i] + s];
                }
            }
            debug_assert!(f == cols.len());
        }
        Ok(x)
    }

    /// `ds` with the values of `x` (`n × D`, e.g. perturbed inputs) put back: the event
    /// features into their columns, the slots of the first `k` objects of each event into the
    /// collection (`k` is the event's real object count, at most `max_objects`; the count entry
    /// of `x` is ignored — scatter never adds or removes objects). Objects beyond
    /// `max_objects` and every other column and collection stay unchanged.
    pub fn scatter(&self, ds: &Dataset, x: ArrayView2<'_, f32>) -> Result<Dataset> {
        let op = "pfn";
        if x.dim() != (ds.len(), self.width()) {
            return Err(Error::Shape {
                op,
                expected: format!("{} × {} inputs (events × layout width)", ds.len(), self.width()),
                got: format!("{} × {}", x.nrows(), x.ncols()),
            });
        }
        let ev = self.event_features.iter().map(|f| ds.index_of(op, f)).collect::<Result<Vec<_>>>()?;
        let (c, idx) = self.collection_of(op, ds)?;
        let mut dx = ds.x().to_owned();
        for (e, &j) in ev.iter().enumerate() {
            dx.column_mut(j).assign(&x.column(e));
        }
        let off = c.offsets();
        let mut values: Vec<Vec<f32>> = (0..c.features().len()).map(|j| c.values_at(j).to_vec()).collect();
        for i in 0..ds.len() {
            let k = (off[i + 1] - off[i]).min(self.max_objects);
            for s in 0..k {
                for (j, &cj) in idx.iter().enumerate() {
                    values[cj][off[i] + s] = x[[i, self.slot_column(s, j)]];
                }
            }
        }
        let coll = Collection::new(c.name(), off.to_vec(), c.features().to_vec(), values)?;
        let out = if ev.is_empty() { ds.clone() } else { ds.with_x(dx)? };
        out.with_collection(coll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two events: jet_pt 100, 50; objects (pt, eta): e0 = (3, 0.5), (9, -1), (2, 2); e1 = ().
    fn sample() -> Dataset {
        let c = Collection::new(
            "part",
            vec![0, 3, 3],
            vec!["pt".into(), "eta".into()],
            vec![vec![3.0, 9.0, 2.0], vec![0.5, -1.0, 2.0]],
        )
        .unwrap();
        let x = Array2::from_shape_vec((2, 2), vec![100.0, 1.0, 50.0, 2.0]).unwrap();
        Dataset::new(vec!["jet_pt".into(), "other".into()], x, Some(vec![1, 0]), None)
            .unwrap()
            .with_collection(c)
            .unwrap()
    }

    #[test]
    fn gather_fills_count_and_leading_slots_and_scatter_puts_them_back() {
        let ds = sample();
        let l = SetLayout::new(vec!["jet_pt".into()], "part", vec!["eta".into(), "pt".into()], 2).unwrap();
        assert_eq!(l.width(), 1 + 1 + 2 * 2);
        assert_eq!(l.names(), ["jet_pt", "part.n", "part[0].eta", "part[0].pt", "part[1].eta", "part[1].pt"]);
        let x = l.gather(&ds).unwrap();
        // Event 0 keeps its first 2 of 3 objects (eta before pt); event 1 has none.
        assert_eq!(x.row(0).to_vec(), [100.0, 2.0, 0.5, 3.0, -1.0, 9.0]);
        assert_eq!(x.row(1).to_vec(), [50.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let mut y = x.clone();
        y[[0, 0]] = 101.0;
        y[[0, 4]] = -1.5;
        y[[1, 2]] = 7.0; // a padded slot: no object to receive it
        let back = l.scatter(&ds, y.view()).unwrap();
        assert_eq!(back.column("jet_pt").unwrap().to_vec(), [101.0, 50.0]);
        assert_eq!(back.column("other").unwrap().to_vec(), [1.0, 2.0]);
        let c = back.collection("t", "part").unwrap();
        // The third object of event 0 (beyond max_objects) is unchanged.
        assert_eq!(c.values("eta").unwrap(), &[0.5, -1.5, 2.0]);
        assert_eq!(c.values("pt").unwrap(), &[3.0, 9.0, 2.0]);
        assert_eq!(c.counts(), [3, 0]);
    }

    #[test]
    fn count_entry_is_rounded_and_clamped() {
        let l = SetLayout::new(vec![], "part", vec!["pt".into()], 3).unwrap();
        for (c, k) in [(2.4, 2), (2.6, 3), (-1.0, 0), (9.0, 3), (f32::NAN, 0), (f32::INFINITY, 3)] {
            assert_eq!(l.count(&[c, 0.0, 0.0, 0.0]), k, "count entry {c}");
        }
    }

    #[test]
    fn bad_layouts_and_datasets_are_refused_with_names() {
        assert!(SetLayout::new(vec![], "part", vec![], 3).unwrap_err().to_string().contains("object feature"));
        assert!(SetLayout::new(vec![], "part", vec!["pt".into()], 0).unwrap_err().to_string().contains("max_objects"));
        let l = SetLayout::new(vec![], "part", vec!["phi".into()], 3).unwrap();
        assert!(l.gather(&sample()).unwrap_err().to_string().contains("phi"));
        let l = SetLayout::new(vec![], "jets", vec!["pt".into()], 3).unwrap();
        assert!(l.gather(&sample()).unwrap_err().to_string().contains("jets"));
    }
}
