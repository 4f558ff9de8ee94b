//! Row and column operations on [`Dataset`]: select, drop, filter, split, sample, concat,
//! add/rename columns.
//!
//! Every operation returns a new dataset (datasets are immutable handles); labels and
//! weights follow their rows. Statistics live in [`super::stats`], standardisation in
//! [`super::standardize`].
//!
//! ```
//! use nuisance::data::synthetic::gaussians;
//! let ds = gaussians(1000, 7);
//! let (train, test) = ds.split(0.8, 1).unwrap();
//! assert_eq!((train.len(), test.len()), (800, 200));
//! let sr = ds.filter_expr("x0 > 0 && abs(x1) < 1").unwrap();
//! assert!(sr.len() < ds.len());
//! ```

use ndarray::{concatenate, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng as _;

use super::collection::{self, Collection};
use super::expr::Expr;
use super::Dataset;
use crate::error::{Error, Result};
use crate::rng;

impl Dataset {
    /// The named features, in the order given (labels and weights kept).
    pub fn select(&self, cols: &[String]) -> Result<Dataset> {
        let idx = cols.iter().map(|c| self.index_of("select", c)).collect::<Result<Vec<_>>>()?;
        let x = self.x().select(Axis(1), &idx);
        Dataset::new_unchecked_finite(
            cols.to_vec(),
            x,
            self.label().map(<[i64]>::to_vec),
            self.weight().map(<[f32]>::to_vec),
        )
        .map(|d| d.carry(self))
    }

    /// All features except the named ones.
    pub fn drop_columns(&self, cols: &[String]) -> Result<Dataset> {
        for c in cols {
            self.index_of("drop_columns", c)?;
        }
        let keep: Vec<String> = self.names().iter().filter(|n| !cols.contains(n)).cloned().collect();
        self.select(&keep)
    }

    /// The rows where `mask` is true; an error when the mask length differs or no row is kept.
    pub fn filter_mask(&self, mask: &[bool]) -> Result<Dataset> {
        if mask.len() != self.len() {
            return Err(Error::Shape {
                op: "filter",
                expected: format!("a mask of {} values (one per row)", self.len()),
                got: format!("{} values", mask.len()),
            });
        }
        let idx: Vec<usize> = mask.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i).collect();
        if idx.is_empty() {
            return Err(Error::Empty { op: "filter", what: "the selection (the mask has no true entry)".into() });
        }
        Ok(self.take_rows(&idx))
    }

    /// The rows where the expression is true (see [`super::expr`] for the syntax).
    ///
    /// ```
    /// let ds = nuisance::data::synthetic::gaussians(100, 1);
    /// let e = ds.filter_expr("x0 > 1e9").unwrap_err();
    /// assert_eq!(e.to_string(), "filter: the selection 'x0 > 1e9' is empty");
    /// ```
    pub fn filter_expr(&self, expr: &str) -> Result<Dataset> {
        let mask = Expr::parse(expr)?.eval_mask(self)?;
        if !mask.contains(&true) {
            return Err(Error::Empty { op: "filter", what: format!("the selection '{expr}'") });
        }
        self.filter_mask(&mask)
    }

    /// Adds a feature computed from an expression (replacing a feature of that name).
    ///
    /// ```
    /// let ds = nuisance::data::synthetic::gaussians(10, 1).derive("r", "hypot(x0, x1)").unwrap();
    /// assert_eq!(ds.names().last().unwrap(), "r");
    /// ```
    pub fn derive(&self, name: &str, expr: &str) -> Result<Dataset> {
        let v = Expr::parse(expr)?.eval(self)?;
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        if let Some(row) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                op: format!("derive '{name}' = '{expr}'"),
                column: name.to_string(),
                count: v.iter().filter(|x| !x.is_finite()).count(),
                row,
            });
        }
        self.with_column(name, v)
    }

    /// Splits the rows, shuffled with `seed`, into a first part of round(fraction·n) rows
    /// and a second part with the rest. Both parts keep the shuffled order.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let k = split_size(fraction, self.len(), "split")?;
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut rng::rng(seed));
        Ok((self.take_rows(&idx[..k]), self.take_rows(&idx[k..])))
    }

    /// Like [`Dataset::split`] but per label value: each class contributes
    /// round(fraction·n_class) rows to the first part, so class fractions are preserved.
    pub fn split_stratified(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let label =
            self.label().ok_or_else(|| Error::arg("split_stratified", "the dataset has no label to stratify by"))?;
        split_size(fraction, self.len(), "split_stratified")?;
        let mut classes: Vec<i64> = label.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let mut r = rng::rng(seed);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for c in classes {
            let mut idx: Vec<usize> = (0..label.len()).filter(|&i| label[i] == c).collect();
            idx.shuffle(&mut r);
            let k = ((fraction * idx.len() as f64).round() as usize).min(idx.len());
            first.extend_from_slice(&idx[..k]);
            second.extend_from_slice(&idx[k..]);
        }
        if first.is_empty() || second.is_empty() {
            return Err(Error::arg(
                "split_stratified",
                format!("fraction {fraction} of {} rows leaves a part empty", self.len()),
            ));
        }
        first.shuffle(&mut r);
        second.shuffle(&mut r);
        Ok((self.take_rows(&first), self.take_rows(&second)))
    }

    /// The first `n` rows (all rows when there are fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.take_rows(&idx)
    }

    /// `n` rows drawn at random with `seed`, with or without replacement.
    pub fn sample(&self, n: usize, seed: u64, replace: bool) -> Result<Dataset> {
        if n == 0 {
            return Err(Error::arg("sample", "n must be at least 1, got 0"));
        }
        if self.is_empty() {
            return Err(Error::Empty { op: "sample", what: "the dataset".into() });
        }
        crate::limits::check("sample", "n", n, crate::limits::EVENTS)?;
        let bytes = super::dataset_bytes(n, self.n_features(), self.label().is_some(), self.weight().is_some());
        // The row indices and the rows themselves.
        crate::memory::check(bytes.saturating_add(crate::memory::bytes(n, 8)), &format!("sample: {n} events"))?;
        let mut r = rng::rng(seed);
        let idx: Vec<usize> = if replace {
            (0..n).map(|_| r.random_range(0..self.len())).collect()
        } else {
            if n > self.len() {
                return Err(Error::arg(
                    "sample",
                    format!("cannot draw {n} rows without replacement from {} rows; pass replace = true", self.len()),
                ));
            }
            rand::seq::index::sample(&mut r, self.len(), n).into_vec()
        };
        Ok(self.take_rows(&idx))
    }

    /// A copy with feature `name` set to `values` (replaced in place if it exists, else appended).
    pub fn with_column(&self, name: &str, values: Vec<f32>) -> Result<Dataset> {
        if values.len() != self.len() {
            return Err(Error::Shape {
                op: "with_column",
                expected: format!("{} values for column '{name}' (one per row)", self.len()),
                got: format!("{} values", values.len()),
            });
        }
        if let Some(row) = values.iter().position(|v| !v.is_finite()) {
            let count = values.iter().filter(|v| !v.is_finite()).count();
            return Err(Error::NonFinite { op: "with_column".into(), column: name.into(), count, row });
        }
        let col = ndarray::Array1::from(values).insert_axis(Axis(1));
        let mut names = self.names().to_vec();
        let x = match names.iter().position(|n| n == name) {
            Some(j) => {
                let mut x = self.x().to_owned();
                x.column_mut(j).assign(&col.column(0));
                x
            }
            None => {
                names.push(name.to_string());
                concatenate(Axis(1), &[self.x(), col.view()]).map_err(|e| Error::arg("with_column", e.to_string()))?
            }
        };
        Dataset::new_unchecked_finite(names, x, self.label().map(<[i64]>::to_vec), self.weight().map(<[f32]>::to_vec))
            .map(|d| d.carry(self))
    }

    /// A copy with feature `from` renamed to `to` (an error if `to` already names another feature).
    pub fn rename(&self, from: &str, to: &str) -> Result<Dataset> {
        let j = self.index_of("rename", from)?;
        if from != to && self.names().iter().any(|n| n == to) {
            return Err(Error::arg(
                "rename",
                format!("cannot rename '{from}' to '{to}': a column '{to}' already exists"),
            ));
        }
        let mut names = self.names().to_vec();
        names[j] = to.to_string();
        Dataset::new_unchecked_finite(
            names,
            self.x().to_owned(),
            self.label().map(<[i64]>::to_vec),
            self.weight().map(<[f32]>::to_vec),
        )
        .map(|d| d.carry(self))
    }
}

/// Stacks datasets row-wise. All must have the same feature names in the same order, the
/// same collections (names and object features), and labels and weights must be present in
/// all parts or in none.
pub fn concat(parts: &[Dataset]) -> Result<Dataset> {
    let first = parts.first().ok_or_else(|| Error::Empty { op: "concat", what: "the list of datasets".into() })?;
    let coll_names = |d: &Dataset| d.collections().iter().map(|c| c.name().to_string()).collect::<Vec<_>>();
    for (k, p) in parts.iter().enumerate().skip(1) {
        if coll_names(p) != coll_names(first) {
            return Err(Error::Shape {
                op: "concat",
                expected: format!("the collections of part 0 [{}]", coll_names(first).join(", ")),
                got: format!("[{}] in part {k}", coll_names(p).join(", ")),
            });
        }
        if p.names() != first.names() {
            return Err(Error::Shape {
                op: "concat",
                expected: format!("the feature names of part 0 [{}]", first.names().join(", ")),
                got: format!("[{}] in part {k}", p.names().join(", ")),
            });
        }
        for (what, a, b) in [
            ("label", first.label().is_some(), p.label().is_some()),
            ("weight", first.weight().is_some(), p.weight().is_some()),
        ] {
            if a != b {
                let has = |x: bool| if x { "has" } else { "has no" };
                return Err(Error::arg("concat", format!("part 0 {} {what} but part {k} {} {what}", has(a), has(b))));
            }
        }
    }
    let views: Vec<ArrayView2<'_, f32>> = parts.iter().map(Dataset::x).collect();
    let x: Array2<f32> = concatenate(Axis(0), &views).map_err(|e| Error::arg("concat", e.to_string()))?;
    let label = first.label().map(|_| parts.iter().flat_map(|p| p.label().unwrap_or(&[]).iter().copied()).collect());
    let weight = first.weight().map(|_| parts.iter().flat_map(|p| p.weight().unwrap_or(&[]).iter().copied()).collect());
    let mut out = Dataset::new_unchecked_finite(first.names().to_vec(), x, label, weight)?;
    for c in first.collections() {
        let same: Vec<&Collection> =
            parts.iter().map(|p| p.collection("concat", c.name())).collect::<Result<Vec<_>>>()?;
        out = out.with_collection(collection::concat(&same)?)?;
    }
    Ok(out)
}

/// Rows in the first part of a split, or an error naming the problem.
fn split_size(fraction: f64, n: usize, op: &str) -> Result<usize> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::arg(op, format!("fraction must be in (0, 1), got {fraction}")));
    }
    let k = (fraction * n as f64).round() as usize;
    if k == 0 || k >= n {
        return Err(Error::arg(
            op,
            format!("fraction {fraction} of {n} rows leaves a part empty ({k} and {} rows)", n.saturating_sub(k)),
        ));
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ds() -> Dataset {
        let x = array![[1.0f32, 10.0, 100.0], [2.0, 20.0, 200.0], [3.0, 30.0, 300.0], [4.0, 40.0, 400.0]];
        let names = vec!["a".into(), "b".into(), "c".into()];
        Dataset::new(names, x, Some(vec![0, 1, 0, 1]), Some(vec![1.0, 2.0, 3.0, 4.0])).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn select_reorders_and_drop_removes() {
        let d = ds().select(&s(&["c", "a"])).unwrap();
        assert_eq!(d.names(), &["c", "a"]);
        assert_eq!(d.x().row(1).to_vec(), vec![200.0, 2.0]);
        assert_eq!(d.label().unwrap(), &[0, 1, 0, 1]);
        let d = ds().drop_columns(&s(&["b"])).unwrap();
        assert_eq!(d.names(), &["a", "c"]);
        let e = ds().select(&s(&["a", "cc"])).unwrap_err();
        assert_eq!(e.to_string(), "select: unknown column 'cc'; available: a, b, c");
        assert_eq!(ds().drop_columns(&s(&["z"])).unwrap_err().kind(), "unknown_column");
    }

    #[test]
    fn filters_keep_rows_with_labels_and_weights() {
        let d = ds().filter_mask(&[true, false, false, true]).unwrap();
        assert_eq!(d.weight().unwrap(), &[1.0, 4.0]);
        let d = ds().filter_expr("b >= 20 && label == 0").unwrap();
        assert_eq!(d.x().row(0).to_vec(), vec![3.0, 30.0, 300.0]);
        assert_eq!(d.len(), 1);
        let e = ds().filter_mask(&[true]).unwrap_err();
        assert_eq!(e.to_string(), "filter: expected a mask of 4 values (one per row), got 1 values");
        let e = ds().filter_expr("a > 1e9").unwrap_err();
        assert_eq!(e.to_string(), "filter: the selection 'a > 1e9' is empty");
    }

    #[test]
    fn split_sizes_and_determinism() {
        let n = 101;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f32);
        let d = Dataset::new(vec!["i".into()], x, None, None).unwrap();
        let (a, b) = d.split(0.3, 5).unwrap();
        // round(0.3·101) = round(30.3) = 30
        assert_eq!((a.len(), b.len()), (30, 71));
        let (a2, _) = d.split(0.3, 5).unwrap();
        assert_eq!(a.x(), a2.x());
        let (a3, _) = d.split(0.3, 6).unwrap();
        assert_ne!(a.x(), a3.x());
        // The two parts partition the rows: the sum of all ids is 0+…+100 = 5050.
        let sum: f32 = a.x().sum() + b.x().sum();
        assert_eq!(sum, 5050.0);
        assert!(d.split(1.0, 1).is_err());
        assert!(d.split(0.001, 1).unwrap_err().to_string().contains("leaves a part empty"));
    }

    #[test]
    fn stratified_split_keeps_class_fractions() {
        // 80 of class 0, 20 of class 1; fraction 0.5 → 40 + 10 in the first part.
        let x = Array2::zeros((100, 1));
        let label: Vec<i64> = (0..100).map(|i| i64::from(i >= 80)).collect();
        let d = Dataset::new(vec!["z".into()], x, Some(label), None).unwrap();
        let (a, b) = d.split_stratified(0.5, 3).unwrap();
        let ones = |d: &Dataset| d.label().unwrap().iter().filter(|&&l| l == 1).count();
        assert_eq!((a.len(), ones(&a), b.len(), ones(&b)), (50, 10, 50, 10));
        let unl = Dataset::new(vec!["z".into()], Array2::zeros((4, 1)), None, None).unwrap();
        assert!(unl.split_stratified(0.5, 1).is_err());
    }

    #[test]
    fn head_and_sample() {
        assert_eq!(ds().head(2).x().column(0).to_vec(), vec![1.0, 2.0]);
        assert_eq!(ds().head(99).len(), 4);
        let d = ds().sample(4, 9, false).unwrap();
        // Without replacement all 4 rows appear once: sum of column a is 1+2+3+4 = 10.
        assert_eq!(d.x().column(0).sum(), 10.0);
        assert_eq!(ds().sample(50, 9, true).unwrap().len(), 50);
        assert_eq!(ds().sample(3, 2, true).unwrap().x(), ds().sample(3, 2, true).unwrap().x());
        assert!(ds().sample(5, 9, false).unwrap_err().to_string().contains("replace = true"));
        assert!(ds().sample(0, 9, true).is_err());
    }

    #[test]
    fn concat_checks_names_and_parts() {
        let c = concat(&[ds(), ds().head(1)]).unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c.label().unwrap(), &[0, 1, 0, 1, 0]);
        assert_eq!(c.weight().unwrap()[4], 1.0);
        let other = ds().rename("c", "d").unwrap();
        let e = concat(&[ds(), other]).unwrap_err();
        assert_eq!(e.to_string(), "concat: expected the feature names of part 0 [a, b, c], got [a, b, d] in part 1");
        let nolabel = ds().with_label(None).unwrap();
        let e = concat(&[ds(), nolabel]).unwrap_err();
        assert_eq!(e.to_string(), "concat: part 0 has label but part 1 has no label");
        assert_eq!(concat(&[]).unwrap_err().kind(), "empty");
    }

    #[test]
    fn with_column_rename_and_derive() {
        let d = ds().with_column("b", vec![0.0; 4]).unwrap();
        assert_eq!(d.names(), &["a", "b", "c"]);
        assert_eq!(d.x().column(1).sum(), 0.0);
        let d = ds().with_column("e", vec![5.0; 4]).unwrap();
        assert_eq!(d.names().last().unwrap(), "e");
        assert!(ds().with_column("e", vec![5.0; 3]).is_err());
        assert!(ds().with_column("e", vec![f32::NAN; 4]).is_err());
        assert!(ds().rename("a", "b").is_err());
        assert_eq!(ds().rename("a", "z").unwrap().names(), &["z", "b", "c"]);
        // a·b + c: 1·10+100 = 110, 2·20+200 = 240, …
        let d = ds().derive("s", "a * b + c").unwrap();
        assert_eq!(d.column("s").unwrap().to_vec(), vec![110.0, 240.0, 390.0, 560.0]);
        let e = ds().derive("l", "log(a - 1)").unwrap_err();
        assert_eq!(e.kind(), "non_finite"); // log(0) = -inf in row 0
    }
}
