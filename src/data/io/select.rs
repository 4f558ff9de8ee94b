//! The format-independent half of reading: which columns play which role, and turning the
//! raw columns into a checked [`Dataset`] (label integrality, non-finite rows, emptiness).

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::jagged::RawCollection;
use super::{ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// The value type of a column in the file, as far as column selection cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// f16/f32/f64: a feature by default.
    Float,
    /// Any integer width: a feature only when listed.
    Int,
    /// Boolean: a feature only when listed.
    Bool,
    /// Unusable; the text completes "column 'x' …", e.g. "is not numeric (utf8)".
    Unusable(String),
}

/// Which file and reader the errors should name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    /// The reader, e.g. `read_parquet`.
    pub func: &'static str,
    /// The file being read.
    pub path: &'a Path,
    /// What the format calls a column ("column" or "branch").
    pub noun: &'static str,
}

/// The result of column selection: indices into the file's column list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    pub features: Vec<usize>,
    pub label: Option<usize>,
    pub weight: Option<usize>,
    pub ignored: Vec<String>,
}

/// Applies the rules of the module documentation to the file's `(name, kind)` list.
///
/// Linear in the number of columns (a file may have hundreds of thousands).
pub(crate) fn select(src: Source<'_>, cols: &[(String, Kind)], opts: &ReadOptions) -> Result<Selection> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(cols.len());
    for (i, (n, _)) in cols.iter().enumerate() {
        index.entry(n.as_str()).or_insert(i);
    }
    let find = Find { src, cols, index };
    let label = find.role(opts.label.as_deref(), "label", opts.no_label)?;
    let weight = find.role(opts.weight.as_deref(), "weight", opts.no_weight)?;
    let features = match &opts.features {
        Some(list) => list.iter().map(|n| find.usable(n)).collect::<Result<Vec<_>>>()?,
        None => (0..cols.len())
            .filter(|&i| cols[i].1 == Kind::Float && Some(i) != label && Some(i) != weight)
            .filter(|&i| !is_pandas_index(&cols[i].0))
            .collect(),
    };
    if features.is_empty() {
        let why = if opts.features.is_some() { "the list is empty" } else { "no float columns" };
        return Err(Error::Empty {
            op: src.func,
            what: format!("the feature selection of {} ({why})", src.path.display()),
        });
    }
    let mut used = vec![false; cols.len()];
    for &i in features.iter().chain(&label).chain(&weight) {
        used[i] = true;
    }
    let ignored = (0..cols.len()).filter(|&i| !used[i]).map(|i| cols[i].0.clone()).collect();
    Ok(Selection { features, label, weight, ignored })
}

/// Columns named in an unknown-column error (a file may have hundreds of thousands).
const LISTED: usize = 100;

/// Column lookup by name (first column of that name).
struct Find<'a> {
    src: Source<'a>,
    cols: &'a [(String, Kind)],
    index: HashMap<&'a str, usize>,
}

impl Find<'_> {
    /// The label or weight column: named explicitly, or picked up by its default name.
    fn role(&self, explicit: Option<&str>, default: &str, disabled: bool) -> Result<Option<usize>> {
        match explicit {
            Some(name) => self.usable(name).map(Some),
            None if disabled => Ok(None),
            None if self.index.contains_key(default) => self.usable(default).map(Some),
            None => Ok(None),
        }
    }

    /// Index of a column that may be read, or an error naming it.
    fn usable(&self, name: &str) -> Result<usize> {
        let Some(&i) = self.index.get(name) else {
            let mut available: Vec<&str> = self.cols.iter().take(LISTED).map(|(n, _)| n.as_str()).collect();
            let more = self.cols.len().saturating_sub(LISTED);
            let more = format!("… ({more} more)");
            if self.cols.len() > LISTED {
                available.push(&more);
            }
            return Err(Error::UnknownColumn {
                op: self.src.func,
                name: name.to_string(),
                available: available.join(", "),
            });
        };
        match &self.cols[i].1 {
            Kind::Unusable(why) => Err(Error::arg(self.src.func, format!("{} '{name}' {why}", self.src.noun))),
            _ => Ok(i),
        }
    }
}

fn is_pandas_index(name: &str) -> bool {
    name.starts_with("__index_level_") && name.ends_with("__")
}

/// Label values as read, before the integrality check.
#[derive(Clone, Debug)]
pub(crate) enum RawLabel {
    /// Integers; `valid[i] == false` marks a null.
    Int { values: Vec<i64>, valid: Option<Vec<bool>> },
    /// Floats; NaN marks a null.
    Float(Vec<f64>),
}

/// Columns as read from a file, before the checks.
#[derive(Clone, Debug)]
pub(crate) struct RawTable {
    /// Feature names, in column order of `x`.
    pub names: Vec<String>,
    /// `n × d` features, row-major, NaN where the file has null.
    pub x: Array2<f32>,
    /// Label column name and values.
    pub label: Option<(String, RawLabel)>,
    /// Weight column name and values (NaN for null).
    pub weight: Option<(String, Vec<f32>)>,
}

/// Checks label, non-finite values and emptiness; builds the dataset and the report.
pub(crate) fn finish(
    src: Source<'_>,
    raw: RawTable,
    opts: &ReadOptions,
    ignored: Vec<String>,
) -> Result<(Dataset, ReadReport)> {
    finish_with(src, raw, Vec::new(), opts, ignored)
}

/// [`finish`] for a table with object collections: an event with a null list or a non-finite
/// object value is bad like a non-finite flat value, and kept events keep their objects.
pub(crate) fn finish_with(
    src: Source<'_>,
    raw: RawTable,
    collections: Vec<RawCollection>,
    opts: &ReadOptions,
    ignored: Vec<String>,
) -> Result<(Dataset, ReadReport)> {
    let n = raw.x.nrows();
    let label = raw.label.map(|(name, l)| integral_label(src, &name, l).map(|v| (name, v)));
    let label = label.transpose()?;
    let mut bad = bad_rows(&raw.x, raw.weight.as_ref().map(|w| &w.1[..]), label.as_ref().map(|l| &l.1));
    let flat_bad = bad.contains(&true);
    for c in &collections {
        c.mark_bad(&mut bad);
    }
    let mut report = ReadReport { rows_read: n, dropped_nonfinite: 0, ignored_columns: ignored };
    let mut keep_events = None;
    let (x, label, weight) = if bad.iter().any(|&b| b) {
        if !opts.drop_nonfinite {
            // Flat columns are named first; otherwise the first collection column at fault.
            if !flat_bad {
                if let Some((column, count, row)) = collections.iter().find_map(RawCollection::first_bad) {
                    return Err(Error::NonFinite { op: src.path.display().to_string(), column, count, row });
                }
            }
            return Err(first_bad_column(src, &raw.names, &raw.x, &raw.weight, &label));
        }
        let keep: Vec<usize> = (0..n).filter(|&i| !bad[i]).collect();
        report.dropped_nonfinite = n - keep.len();
        let x = raw.x.select(Axis(0), &keep);
        let pick = |v: &[f32]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let label = label.map(|(_, (v, _))| keep.iter().map(|&i| v[i]).collect::<Vec<_>>());
        let weight = raw.weight.map(|(_, w)| pick(&w));
        keep_events = Some(keep);
        (x, label, weight)
    } else {
        (raw.x, label.map(|(_, (v, _))| v), raw.weight.map(|(_, w)| w))
    };
    if x.nrows() == 0 {
        let what = match report.dropped_nonfinite {
            0 => format!("{}", src.path.display()),
            k => format!("{} after dropping {k} non-finite row(s)", src.path.display()),
        };
        return Err(Error::Empty { op: src.func, what });
    }
    let mut ds = Dataset::new_unchecked_finite(raw.names, x, label, weight)?;
    for c in collections {
        let c = c.into_collection()?;
        let c = match &keep_events {
            Some(keep) => c.take_events(keep),
            None => c,
        };
        ds = ds.with_collection(c)?;
    }
    Ok((ds, report))
}

/// Label values and a per-row "missing" mask, after checking floats are whole numbers.
type Label = (Vec<i64>, Vec<bool>);

fn integral_label(src: Source<'_>, name: &str, raw: RawLabel) -> Result<Label> {
    match raw {
        RawLabel::Int { values, valid } => {
            let missing = match valid {
                Some(v) => v.iter().map(|ok| !ok).collect(),
                None => vec![false; values.len()],
            };
            Ok((values, missing))
        }
        RawLabel::Float(v) => {
            if let Some(i) = v.iter().position(|x| x.is_finite() && x.fract() != 0.0) {
                return Err(Error::format(
                    src.path,
                    format!("label {} '{name}' must hold whole numbers; found {} at row {i}", src.noun, v[i]),
                ));
            }
            Ok((v.iter().map(|&x| x as i64).collect(), v.iter().map(|x| !x.is_finite()).collect()))
        }
    }
}

/// Per row: true when any feature, the weight or the label is missing or non-finite.
fn bad_rows(x: &Array2<f32>, weight: Option<&[f32]>, label: Option<&Label>) -> Vec<bool> {
    let d = x.ncols().max(1);
    let mut bad: Vec<bool> = match x.as_slice() {
        Some(s) => s.par_chunks(d).map(|r| r.iter().any(|v| !v.is_finite())).collect(),
        None => x.rows().into_iter().map(|r| r.iter().any(|v| !v.is_finite())).collect(),
    };
    if let Some(w) = weight {
        bad.iter_mut().zip(w).for_each(|(b, v)| *b |= !v.is_finite());
    }
    if let Some((_, missing)) = label {
        bad.iter_mut().zip(missing).for_each(|(b, m)| *b |= *m);
    }
    bad
}

/// The error for the first column (features, then weight, then label) with a bad value.
fn first_bad_column(
    src: Source<'_>,
    names: &[String],
    x: &Array2<f32>,
    weight: &Option<(String, Vec<f32>)>,
    label: &Option<(String, Label)>,
) -> Error {
    let mut masks: Vec<(String, Vec<bool>)> = Vec::new();
    for (j, name) in names.iter().enumerate() {
        masks.push((name.clone(), x.column(j).iter().map(|v| !v.is_finite()).collect()));
    }
    if let Some((name, w)) = weight {
        masks.push((name.clone(), w.iter().map(|v| !v.is_finite()).collect()));
    }
    if let Some((name, (_, missing))) = label {
        masks.push((name.clone(), missing.clone()));
    }
    for (column, mask) in masks {
        if let Some(row) = mask.iter().position(|&b| b) {
            let count = mask.iter().filter(|&&b| b).count();
            return Error::NonFinite { op: src.path.display().to_string(), column, count, row };
        }
    }
    Error::format(src.path, "internal: a non-finite row was flagged but not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn src() -> Source<'static> {
        Source { func: "read_test", path: Path::new("t.parquet"), noun: "column" }
    }

    fn cols() -> Vec<(String, Kind)> {
        [
            ("a", Kind::Float),
            ("n", Kind::Int),
            ("label", Kind::Int),
            ("weight", Kind::Float),
            ("s", Kind::Unusable("is not numeric (utf8)".into())),
            ("b", Kind::Float),
            ("__index_level_0__", Kind::Float),
        ]
        .into_iter()
        .map(|(n, k)| (n.to_string(), k))
        .collect()
    }

    #[test]
    fn default_rule_takes_floats_and_auto_roles() {
        let s = select(src(), &cols(), &ReadOptions::default()).unwrap();
        // floats a (0) and b (5); label 2 and weight 3 by name; the rest ignored.
        assert_eq!(s.features, vec![0, 5]);
        assert_eq!((s.label, s.weight), (Some(2), Some(3)));
        assert_eq!(s.ignored, vec!["n", "s", "__index_level_0__"]);
    }

    #[test]
    fn no_label_no_weight_turn_float_weight_into_feature() {
        let opts = ReadOptions { no_label: true, no_weight: true, ..Default::default() };
        let s = select(src(), &cols(), &opts).unwrap();
        assert_eq!(s.features, vec![0, 3, 5]);
        assert_eq!((s.label, s.weight), (None, None));
    }

    #[test]
    fn explicit_lists_keep_order_and_check_columns() {
        let opts = ReadOptions { features: Some(vec!["n".into(), "a".into()]), ..Default::default() };
        assert_eq!(select(src(), &cols(), &opts).unwrap().features, vec![1, 0]);
        let bad = ReadOptions { features: Some(vec!["s".into()]), ..Default::default() };
        let e = select(src(), &cols(), &bad).unwrap_err();
        assert_eq!(e.to_string(), "read_test: column 's' is not numeric (utf8)");
        let missing = ReadOptions { label: Some("y".into()), ..Default::default() };
        let e = select(src(), &cols(), &missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            "read_test: unknown column 'y'; available: a, n, label, weight, s, b, __index_level_0__"
        );
    }

    fn raw(x: Array2<f32>, label: RawLabel) -> RawTable {
        RawTable { names: vec!["a".into(), "b".into()], x, label: Some(("y".into(), label)), weight: None }
    }

    #[test]
    fn non_integral_label_names_value_and_row() {
        let r = raw(array![[1.0, 2.0], [3.0, 4.0]], RawLabel::Float(vec![1.0, 0.5]));
        let e = finish(src(), r, &ReadOptions::default(), vec![]).unwrap_err();
        assert_eq!(e.to_string(), "t.parquet: label column 'y' must hold whole numbers; found 0.5 at row 1");
    }

    #[test]
    fn nonfinite_is_error_or_dropped() {
        let x = array![[1.0, f32::NAN], [3.0, 4.0], [f32::INFINITY, f32::NAN]];
        let label = RawLabel::Int { values: vec![0, 1, 1], valid: None };
        let e = finish(src(), raw(x.clone(), label.clone()), &ReadOptions::default(), vec![]);
        // column a has 1 bad value (row 2), b has 2 (rows 0, 2); a comes first.
        assert_eq!(
            e.unwrap_err().to_string(),
            "t.parquet: 1 non-finite value(s) (NaN or Inf) in column 'a', first at row 2"
        );
        let opts = ReadOptions { drop_nonfinite: true, ..Default::default() };
        let (ds, rep) = finish(src(), raw(x, label), &opts, vec![]).unwrap();
        // rows 0 and 2 dropped; row 1 = [3, 4] with label 1 remains.
        assert_eq!((rep.rows_read, rep.dropped_nonfinite), (3, 2));
        assert_eq!(ds.x().row(0).to_vec(), vec![3.0, 4.0]);
        assert_eq!(ds.label().unwrap(), &[1]);
    }

    #[test]
    fn null_label_counts_and_all_dropped_is_empty() {
        let label = RawLabel::Int { values: vec![0, 0], valid: Some(vec![false, false]) };
        let r = raw(array![[1.0, 2.0], [3.0, 4.0]], label);
        let opts = ReadOptions { drop_nonfinite: true, ..Default::default() };
        let e = finish(src(), r, &opts, vec![]).unwrap_err();
        assert_eq!(e.to_string(), "read_test: t.parquet after dropping 2 non-finite row(s) is empty");
    }
}
