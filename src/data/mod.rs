//! Datasets: named f32 feature columns with an optional integer label and f32 weight.
//!
//! A [`Dataset`] is a cheap-to-clone handle (`Arc` inside): Rhai copies values on every
//! assignment, so cloning must not copy the events. Features are held as one row-major
//! `n × d` matrix, the layout classifiers and attacks consume directly; per-column
//! operations read strided columns.
//!
//! Architecture invariant: nothing in `data/` imports rhai.

pub mod chain;
pub mod collection;
pub mod expr;
pub mod io;
pub mod objects;
pub mod ops;
pub mod standardize;
pub mod stats;
pub mod synthetic;

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::memory::{self, Reservation};

pub use collection::Collection;

/// A table of events: `n` rows, `d` named f32 features, optional label and weight, and
/// object collections (a variable number of objects per event, see [`collection`]).
#[derive(Clone, Debug)]
pub struct Dataset {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    names: Vec<String>,
    /// Shared, so that changing only the collections does not copy the matrix.
    x: Arc<Array2<f32>>,
    label: Option<Vec<i64>>,
    weight: Option<Vec<f32>>,
    collections: Vec<Collection>,
    /// The bytes above, counted against the session memory budget while any clone lives.
    _memory: Arc<Reservation>,
}

/// Bytes of the events of a dataset: features, label and weight.
pub fn dataset_bytes(n: usize, d: usize, label: bool, weight: bool) -> u64 {
    memory::bytes(n.saturating_mul(d), 4)
        .saturating_add(if label { memory::bytes(n, 8) } else { 0 })
        .saturating_add(if weight { memory::bytes(n, 4) } else { 0 })
}

impl Dataset {
    /// Builds a dataset, checking that names, rows, labels and weights agree and that
    /// every feature value and weight is finite.
    pub fn new(names: Vec<String>, x: Array2<f32>, label: Option<Vec<i64>>, weight: Option<Vec<f32>>) -> Result<Self> {
        let ds = Self::new_unchecked_finite(names, x, label, weight)?;
        ds.check_finite("dataset")?;
        Ok(ds)
    }

    /// Like [`Dataset::new`] but does not scan for NaN/Inf (the caller has done it).
    pub fn new_unchecked_finite(
        names: Vec<String>,
        x: Array2<f32>,
        label: Option<Vec<i64>>,
        weight: Option<Vec<f32>>,
    ) -> Result<Self> {
        let (n, d) = x.dim();
        if names.len() != d {
            return Err(Error::Shape {
                op: "dataset",
                expected: format!("{d} feature names for {d} columns"),
                got: format!("{} names", names.len()),
            });
        }
        check_unique(&names)?;
        if let Some(l) = &label {
            check_len("label", l.len(), n)?;
        }
        if let Some(w) = &weight {
            check_len("weight", w.len(), n)?;
        }
        let bytes = dataset_bytes(n, d, label.is_some(), weight.is_some());
        let _memory = memory::reserve(bytes, &format!("a dataset of {n} events × {d} features"))?;
        let x = if x.is_standard_layout() { x } else { x.as_standard_layout().to_owned() };
        Ok(Dataset::from_parts(names, x, label, weight, Vec::new(), _memory))
    }

    /// A dataset from parts that agree by construction (distinct names, one per column; one
    /// label and weight per row, finite values), counted against the memory budget without
    /// failing: for generators that checked the budget before allocating.
    pub(crate) fn from_trusted(
        names: Vec<String>,
        x: Array2<f32>,
        label: Option<Vec<i64>>,
        weight: Option<Vec<f32>>,
    ) -> Self {
        debug_assert_eq!(names.len(), x.ncols());
        Dataset::trusted_with(names, x, label, weight, Vec::new())
    }

    /// [`Dataset::from_trusted`] with object collections (one entry per row).
    fn trusted_with(
        names: Vec<String>,
        x: Array2<f32>,
        label: Option<Vec<i64>>,
        weight: Option<Vec<f32>>,
        collections: Vec<Collection>,
    ) -> Self {
        let (n, d) = x.dim();
        let memory = memory::account(dataset_bytes(n, d, label.is_some(), weight.is_some()));
        Dataset::from_parts(names, x, label, weight, collections, memory)
    }

    /// The one place a dataset is assembled from checked parts and their reservation.
    fn from_parts(
        names: Vec<String>,
        x: Array2<f32>,
        label: Option<Vec<i64>>,
        weight: Option<Vec<f32>>,
        collections: Vec<Collection>,
        memory: Reservation,
    ) -> Self {
        Dataset {
            inner: Arc::new(Inner { names, x: Arc::new(x), label, weight, collections, _memory: Arc::new(memory) }),
        }
    }

    /// Number of events (rows).
    pub fn len(&self) -> usize {
        self.inner.x.nrows()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of features (columns).
    pub fn n_features(&self) -> usize {
        self.inner.x.ncols()
    }

    /// Feature names, in column order.
    pub fn names(&self) -> &[String] {
        &self.inner.names
    }

    /// The `n × d` feature matrix (row-major).
    pub fn x(&self) -> ArrayView2<'_, f32> {
        self.inner.x.view()
    }

    /// The label per event, if any.
    pub fn label(&self) -> Option<&[i64]> {
        self.inner.label.as_deref()
    }

    /// The weight per event, if any.
    pub fn weight(&self) -> Option<&[f32]> {
        self.inner.weight.as_deref()
    }

    /// Weights, or all ones when the dataset has none.
    pub fn weights_or_ones(&self) -> Vec<f32> {
        match self.weight() {
            Some(w) => w.to_vec(),
            None => vec![1.0; self.len()],
        }
    }

    /// Index of a feature by name, or an error listing the available names.
    pub fn index_of(&self, op: &'static str, name: &str) -> Result<usize> {
        self.names().iter().position(|n| n == name).ok_or_else(|| Error::UnknownColumn {
            op,
            name: name.to_string(),
            available: self.names().join(", "),
        })
    }

    /// One feature column by name.
    pub fn column(&self, name: &str) -> Result<ArrayView1<'_, f32>> {
        let j = self.index_of("column", name)?;
        Ok(self.inner.x.column(j))
    }

    /// Number of distinct label values present (0 when unlabelled).
    pub fn n_classes(&self) -> usize {
        self.label().map_or(0, |l| l.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize))
    }

    /// A new dataset with the same names, label and weight but other features.
    pub fn with_x(&self, x: Array2<f32>) -> Result<Self> {
        Dataset::new(self.names().to_vec(), x, self.inner.label.clone(), self.inner.weight.clone())
            .map(|d| d.carry(self))
    }

    /// A new dataset with the label replaced (or removed with `None`).
    pub fn with_label(&self, label: Option<Vec<i64>>) -> Result<Self> {
        Dataset::new_unchecked_finite(self.names().to_vec(), (*self.inner.x).clone(), label, self.inner.weight.clone())
            .map(|d| d.carry(self))
    }

    /// A new dataset with the weight replaced (or removed with `None`).
    pub fn with_weight(&self, weight: Option<Vec<f32>>) -> Result<Self> {
        if let Some(w) = &weight {
            if let Some(i) = w.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    op: "weight".into(),
                    column: "weight".into(),
                    count: w.iter().filter(|v| !v.is_finite()).count(),
                    row: i,
                });
            }
        }
        Dataset::new_unchecked_finite(self.names().to_vec(), (*self.inner.x).clone(), self.inner.label.clone(), weight)
            .map(|d| d.carry(self))
    }

    /// The rows at `idx`, in that order (with labels and weights).
    pub fn take_rows(&self, idx: &[usize]) -> Self {
        let x = self.inner.x.select(Axis(0), idx);
        let label = self.label().map(|l| idx.iter().map(|&i| l[i]).collect());
        let weight = self.weight().map(|w| idx.iter().map(|&i| w[i]).collect());
        let collections = self.inner.collections.iter().map(|c| c.take_events(idx)).collect();
        Dataset::trusted_with(self.names().to_vec(), x, label, weight, collections)
    }

    /// The object collections, in the order they were added.
    pub fn collections(&self) -> &[Collection] {
        &self.inner.collections
    }

    /// One collection by name, or an error listing the collections.
    pub fn collection(&self, op: &'static str, name: &str) -> Result<&Collection> {
        self.inner.collections.iter().find(|c| c.name() == name).ok_or_else(|| {
            let names: Vec<&str> = self.inner.collections.iter().map(Collection::name).collect();
            Error::UnknownColumn {
                op,
                name: name.to_string(),
                available: if names.is_empty() { "(no collections)".into() } else { names.join(", ") },
            }
        })
    }

    /// A copy with collection `c` added, or replacing the collection of the same name; it
    /// must have one entry per event.
    pub fn with_collection(&self, c: Collection) -> Result<Self> {
        if c.n_events() != self.len() {
            return Err(Error::Shape {
                op: "collection",
                expected: format!("{} events in collection '{}' (one per row)", self.len(), c.name()),
                got: format!("{} events", c.n_events()),
            });
        }
        let mut cols = self.inner.collections.clone();
        match cols.iter().position(|o| o.name() == c.name()) {
            Some(k) => cols[k] = c,
            None => cols.push(c),
        }
        Ok(self.replace_collections(cols))
    }

    /// A copy without the named collection (an error if there is none of that name).
    pub fn without_collection(&self, name: &str) -> Result<Self> {
        self.collection("drop_collection", name)?;
        let cols = self.inner.collections.iter().filter(|c| c.name() != name).cloned().collect();
        Ok(self.replace_collections(cols))
    }

    /// `self` (same events) with the collections of `from`, which has the same rows.
    pub(crate) fn carry(self, from: &Dataset) -> Dataset {
        if from.inner.collections.is_empty() {
            return self;
        }
        self.replace_collections(from.inner.collections.clone())
    }

    /// A copy with other collections (the feature matrix is shared, not copied).
    fn replace_collections(&self, collections: Vec<Collection>) -> Dataset {
        let i = &self.inner;
        let inner = Inner {
            names: i.names.clone(),
            x: Arc::clone(&i.x),
            label: i.label.clone(),
            weight: i.weight.clone(),
            collections,
            _memory: Arc::clone(&i._memory),
        };
        Dataset { inner: Arc::new(inner) }
    }

    /// Column means (unweighted), as f64.
    pub fn column_means(&self) -> Array1<f64> {
        let n = self.len().max(1) as f64;
        let mut m = Array1::<f64>::zeros(self.n_features());
        for row in self.inner.x.rows() {
            for (acc, v) in m.iter_mut().zip(row) {
                *acc += f64::from(*v);
            }
        }
        m / n
    }

    /// Errors if any feature value or weight is NaN or infinite.
    pub fn check_finite(&self, op: &str) -> Result<()> {
        if let Some((row, col)) = first_nonfinite(self.x()) {
            let count = self.inner.x.iter().filter(|v| !v.is_finite()).count();
            return Err(Error::NonFinite { op: op.to_string(), column: self.names()[col].clone(), count, row });
        }
        if let Some(w) = self.weight() {
            if let Some(row) = w.iter().position(|v| !v.is_finite()) {
                let count = w.iter().filter(|v| !v.is_finite()).count();
                return Err(Error::NonFinite { op: op.to_string(), column: "weight".into(), count, row });
            }
        }
        Ok(())
    }

    /// One-line summary, as the REPL prints it: `Dataset(n=2000, features=20, label, weight)`,
    /// and `, objects: part[6]` (collection name and number of object features) when the
    /// dataset has collections.
    pub fn summary(&self) -> String {
        let mut s = format!("Dataset(n={}, features={}", self.len(), self.n_features());
        if self.label().is_some() {
            s.push_str(", label");
        }
        if self.weight().is_some() {
            s.push_str(", weight");
        }
        if !self.collections().is_empty() {
            let parts: Vec<String> =
                self.collections().iter().map(|c| format!("{}[{}]", c.name(), c.features().len())).collect();
            s.push_str(&format!(", objects: {}", parts.join(" ")));
        }
        s.push(')');
        s
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// (row, column) of the first NaN/Inf in `x`, scanning row by row.
pub fn first_nonfinite(x: ArrayView2<'_, f32>) -> Option<(usize, usize)> {
    x.rows().into_iter().enumerate().find_map(|(i, r)| r.iter().position(|v| !v.is_finite()).map(|j| (i, j)))
}

fn check_len(what: &str, got: usize, n: usize) -> Result<()> {
    if got != n {
        return Err(Error::Shape {
            op: "dataset",
            expected: format!("{n} {what} values (one per row)"),
            got: got.to_string(),
        });
    }
    Ok(())
}

fn check_unique(names: &[String]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(Error::arg("dataset", format!("duplicate column name '{n}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn small() -> Dataset {
        let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        Dataset::new(vec!["a".into(), "b".into()], x, Some(vec![0, 1, 1]), None).unwrap()
    }

    #[test]
    fn summary_names_parts() {
        assert_eq!(small().summary(), "Dataset(n=3, features=2, label)");
    }

    #[test]
    fn rejects_nan_with_position() {
        let x = array![[1.0f32, f32::NAN], [3.0, 4.0]];
        let e = Dataset::new(vec!["a".into(), "b".into()], x, None, None).unwrap_err();
        assert_eq!(e.to_string(), "dataset: 1 non-finite value(s) (NaN or Inf) in column 'b', first at row 0");
    }

    #[test]
    fn unknown_column_lists_available() {
        let e = small().column("c").unwrap_err();
        assert_eq!(e.to_string(), "column: unknown column 'c'; available: a, b");
    }

    #[test]
    fn take_rows_keeps_labels() {
        let t = small().take_rows(&[2, 0]);
        assert_eq!(t.label().unwrap(), &[1, 0]);
        assert_eq!(t.x()[[0, 1]], 6.0);
    }

    #[test]
    fn means_are_column_means() {
        // (1+3+5)/3 = 3, (2+4+6)/3 = 4
        let m = small().column_means();
        assert_eq!(m.to_vec(), vec![3.0, 4.0]);
    }
}
