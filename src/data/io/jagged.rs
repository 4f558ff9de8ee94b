//! The format-independent half of reading object collections: which list columns (Parquet)
//! or jagged branches (ROOT) form which collection, and the checks on what was read.
//!
//! **Grouping.** By default ([`CollectionSpec::Auto`]) every numeric list column is grouped by
//! its prefix up to the first `_`: `part_pt`, `part_eta`, … form the collection `part` with
//! features `pt`, `eta`, …; a name without `_` is a collection of one feature of that name. A
//! Parquet list of records (`list<struct<pt, eta>>`, as awkward writes `ak.zip`) is one
//! collection named after the column, its record fields the features. A Parquet file written
//! by nuisance records its grouping in the schema metadata (key `nuisance_collections`), and
//! the default reading follows it. [`CollectionSpec::Explicit`] names collections and their
//! columns; [`CollectionSpec::Off`] reads none.
//!
//! **Checks.** All columns of one collection must have the same length in every event; the
//! first event where two differ is an error naming both columns and their lengths. A null
//! list or a NaN/Inf/null value in an object counts against the event like a non-finite flat
//! value (an error, or the event is dropped with `drop_nonfinite`).

use std::path::Path;

use crate::data::Collection;
use crate::error::{Error, Result};

/// Named collections, each with its `(feature, column)` pairs in order.
pub type Grouping = Vec<(String, Vec<(String, String)>)>;

/// How list columns become collections.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum CollectionSpec {
    /// Group numeric list columns by their prefix up to the first `_` (or by the grouping a
    /// nuisance-written Parquet file records).
    #[default]
    Auto,
    /// Read no collections (list columns are ignored).
    Off,
    /// These collections: a name and its `(feature, column)` pairs, in order.
    Explicit(Grouping),
}

/// A readable list column ("leaf") of the file: a list column, or one field of a list of
/// records (named `column.field`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Leaf {
    /// The name a user writes (`part_pt`, `cand.pt`).
    pub name: String,
    /// The collection and feature of the default grouping.
    pub auto: (String, String),
}

impl Leaf {
    /// A plain list column: collection = prefix up to the first `_`, feature = the rest.
    pub fn plain(name: &str) -> Leaf {
        let auto = match name.split_once('_') {
            Some((c, f)) if !c.is_empty() && !f.is_empty() => (c.to_string(), f.to_string()),
            _ => (name.to_string(), name.to_string()),
        };
        Leaf { name: name.to_string(), auto }
    }

    /// A field of a list of records: collection = the column, feature = the field.
    pub fn record_field(column: &str, field: &str) -> Leaf {
        Leaf { name: format!("{column}.{field}"), auto: (column.to_string(), field.to_string()) }
    }
}

/// A planned collection: its name, and per feature its name and leaf index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Group {
    pub name: String,
    pub members: Vec<(String, usize)>,
}

/// The collections to read from `leaves` under `spec`; `recorded` is a grouping stored in the
/// file (used by `Auto` when all its columns exist).
pub(crate) fn plan(
    func: &'static str,
    leaves: &[Leaf],
    spec: &CollectionSpec,
    recorded: Option<&Grouping>,
) -> Result<Vec<Group>> {
    let explicit = |list: &[(String, Vec<(String, String)>)]| -> Result<Vec<Group>> {
        let mut used = std::collections::HashMap::new();
        let mut groups = Vec::new();
        for (name, cols) in list {
            if cols.is_empty() {
                return Err(Error::BadOption {
                    func: func.into(),
                    key: "collections".into(),
                    problem: format!("collection '{name}' lists no columns"),
                });
            }
            let mut members = Vec::new();
            for (feature, col) in cols {
                let Some(k) = leaves.iter().position(|l| &l.name == col) else {
                    let names: Vec<&str> = leaves.iter().map(|l| l.name.as_str()).collect();
                    return Err(Error::UnknownColumn {
                        op: func,
                        name: col.clone(),
                        available: if names.is_empty() { "(no list columns)".into() } else { names.join(", ") },
                    });
                };
                if let Some(other) = used.insert(k, name.clone()) {
                    return Err(Error::BadOption {
                        func: func.into(),
                        key: "collections".into(),
                        problem: format!("column '{col}' is listed in both '{other}' and '{name}'"),
                    });
                }
                members.push((feature.clone(), k));
            }
            groups.push(Group { name: name.clone(), members });
        }
        Ok(groups)
    };
    match spec {
        CollectionSpec::Off => Ok(Vec::new()),
        CollectionSpec::Explicit(list) => explicit(list),
        CollectionSpec::Auto => {
            if let Some(rec) = recorded {
                if rec.iter().flat_map(|(_, c)| c).all(|(_, col)| leaves.iter().any(|l| &l.name == col)) {
                    return explicit(rec);
                }
            }
            let mut groups: Vec<Group> = Vec::new();
            for (k, leaf) in leaves.iter().enumerate() {
                let (c, f) = &leaf.auto;
                match groups.iter_mut().find(|g| &g.name == c) {
                    Some(g) => g.members.push((f.clone(), k)),
                    None => groups.push(Group { name: c.clone(), members: vec![(f.clone(), k)] }),
                }
            }
            Ok(groups)
        }
    }
}

/// One leaf as read: offsets (n + 1), f32 values (NaN for a null item), null-list events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LeafData {
    pub offsets: Vec<usize>,
    pub values: Vec<f32>,
    /// Events whose list is null (stored with length 0).
    pub null: Vec<usize>,
}

impl LeafData {
    /// Empty data for `n` events to be filled event by event.
    pub fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        LeafData { offsets, values: Vec::new(), null: Vec::new() }
    }

    /// Appends one event's objects.
    pub fn push(&mut self, values: impl IntoIterator<Item = f32>) {
        self.values.extend(values);
        self.offsets.push(self.values.len());
    }

    /// Appends a null list (no objects; the event is flagged).
    pub fn push_null(&mut self) {
        self.null.push(self.offsets.len() - 1);
        self.offsets.push(self.values.len());
    }
}

/// A collection as read, before the non-finite checks.
#[derive(Clone, Debug)]
pub(crate) struct RawCollection {
    pub name: String,
    /// File column of each feature (for messages).
    pub columns: Vec<String>,
    pub features: Vec<String>,
    pub offsets: Vec<usize>,
    pub values: Vec<Vec<f32>>,
    /// Per feature: the events with a null list.
    pub null: Vec<Vec<usize>>,
}

/// Joins the leaves of each group into a collection, checking that lengths agree per event.
pub(crate) fn assemble(
    path: &Path,
    groups: &[Group],
    leaves: &[Leaf],
    mut data: Vec<LeafData>,
) -> Result<Vec<RawCollection>> {
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let k0 = g.members[0].1;
        for &(_, k) in &g.members[1..] {
            let (a, b) = (&data[k0].offsets, &data[k].offsets);
            if a != b {
                let n = a.len().min(b.len()).saturating_sub(1);
                let i = (0..n).find(|&i| a[i + 1] - a[i] != b[i + 1] - b[i]).unwrap_or(n);
                let len = |o: &[usize]| if i + 1 < o.len() { o[i + 1] - o[i] } else { 0 };
                return Err(Error::format(
                    path,
                    format!(
                        "list columns '{}' and '{}' of collection '{}' differ in length at event {i} ({} and {} objects); \
                         name each collection's columns with the `collections` option",
                        leaves[k0].name,
                        leaves[k].name,
                        g.name,
                        len(a),
                        len(b)
                    ),
                ));
            }
        }
        let offsets = data[k0].offsets.clone();
        let mut values = Vec::with_capacity(g.members.len());
        let mut null = Vec::with_capacity(g.members.len());
        for &(_, k) in &g.members {
            let d = std::mem::take(&mut data[k]);
            values.push(d.values);
            null.push(d.null);
        }
        out.push(RawCollection {
            name: g.name.clone(),
            columns: g.members.iter().map(|(_, k)| leaves[*k].name.clone()).collect(),
            features: g.members.iter().map(|(f, _)| f.clone()).collect(),
            offsets,
            values,
            null,
        });
    }
    Ok(out)
}

impl RawCollection {
    /// Flags the events with a null list or a non-finite object value.
    pub fn mark_bad(&self, bad: &mut [bool]) {
        for (j, v) in self.values.iter().enumerate() {
            for &i in &self.null[j] {
                bad[i] = true;
            }
            for (i, w) in self.offsets.windows(2).enumerate() {
                if !bad[i] && v[w[0]..w[1]].iter().any(|x| !x.is_finite()) {
                    bad[i] = true;
                }
            }
        }
    }

    /// The first column with a bad event: (column, number of bad events, first bad event).
    pub fn first_bad(&self) -> Option<(String, usize, usize)> {
        (0..self.values.len()).find_map(|j| {
            let n = self.offsets.len() - 1;
            let mut bad = vec![false; n];
            for &i in &self.null[j] {
                bad[i] = true;
            }
            for (i, w) in self.offsets.windows(2).enumerate() {
                bad[i] |= self.values[j][w[0]..w[1]].iter().any(|x| !x.is_finite());
            }
            let first = bad.iter().position(|&b| b)?;
            Some((self.columns[j].clone(), bad.iter().filter(|&&b| b).count(), first))
        })
    }

    /// The checked collection (values are finite once bad events are gone).
    pub fn into_collection(self) -> Result<Collection> {
        Collection::new_unchecked_finite(&self.name, self.offsets, self.features, self.values)
    }
}

/// Parses the grouping a nuisance-written Parquet file records:
/// `[["part", [["pt", "part_pt"], …]], …]`; `None` when absent or malformed.
pub(crate) fn parse_recorded(json: &str) -> Option<Grouping> {
    serde_json::from_str(json).ok()
}

/// The grouping of `collections` as written to a Parquet file: the column of feature `f` of
/// collection `c` is `c_f`.
pub(crate) fn recorded_json(collections: &[Collection]) -> String {
    let v: Grouping = collections
        .iter()
        .map(|c| {
            (c.name().to_string(), c.features().iter().map(|f| (f.clone(), format!("{}_{f}", c.name()))).collect())
        })
        .collect();
    serde_json::to_string(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(names: &[&str]) -> Vec<Leaf> {
        names.iter().map(|n| Leaf::plain(n)).collect()
    }

    #[test]
    fn auto_groups_by_prefix_in_file_order() {
        let l = leaves(&["part_pt", "trk_d0", "part_eta", "weights", "part_"]);
        let g = plan("read_test", &l, &CollectionSpec::Auto, None).unwrap();
        let names: Vec<(&str, Vec<(&str, usize)>)> =
            g.iter().map(|g| (g.name.as_str(), g.members.iter().map(|(f, k)| (f.as_str(), *k)).collect())).collect();
        assert_eq!(
            names,
            vec![
                ("part", vec![("pt", 0), ("eta", 2)]),
                ("trk", vec![("d0", 1)]),
                ("weights", vec![("weights", 3)]),
                ("part_", vec![("part_", 4)]),
            ]
        );
        assert!(plan("read_test", &l, &CollectionSpec::Off, None).unwrap().is_empty());
    }

    #[test]
    fn explicit_and_recorded_groupings() {
        let l = leaves(&["part_pt", "part_eta", "x"]);
        let spec = CollectionSpec::Explicit(vec![(
            "c".into(),
            vec![("eta".into(), "part_eta".into()), ("v".into(), "x".into())],
        )]);
        let g = plan("read_test", &l, &spec, None).unwrap();
        assert_eq!(g, vec![Group { name: "c".into(), members: vec![("eta".into(), 1), ("v".into(), 2)] }]);
        let bad = CollectionSpec::Explicit(vec![("c".into(), vec![("a".into(), "nope".into())])]);
        let e = plan("read_test", &l, &bad, None).unwrap_err();
        assert_eq!(e.to_string(), "read_test: unknown column 'nope'; available: part_pt, part_eta, x");
        let twice = CollectionSpec::Explicit(vec![
            ("a".into(), vec![("x".into(), "x".into())]),
            ("b".into(), vec![("x".into(), "x".into())]),
        ]);
        assert!(plan("read_test", &l, &twice, None).unwrap_err().to_string().contains("both 'a' and 'b'"));
        // A recorded grouping wins over prefixes when its columns exist, else prefixes apply.
        let rec = parse_recorded(r#"[["my_part", [["pt", "part_pt"]]]]"#).unwrap();
        let g = plan("read_test", &l, &CollectionSpec::Auto, Some(&rec)).unwrap();
        assert_eq!(g, vec![Group { name: "my_part".into(), members: vec![("pt".into(), 0)] }]);
        let rec = parse_recorded(r#"[["p", [["pt", "gone"]]]]"#).unwrap();
        assert_eq!(plan("read_test", &l, &CollectionSpec::Auto, Some(&rec)).unwrap().len(), 2);
    }

    #[test]
    fn lengths_must_agree_per_event() {
        let l = leaves(&["part_pt", "part_eta"]);
        let g = plan("read_test", &l, &CollectionSpec::Auto, None).unwrap();
        let mut a = LeafData::with_capacity(3);
        let mut b = LeafData::with_capacity(3);
        for (x, y) in [(2, 2), (0, 0), (3, 1)] {
            a.push(std::iter::repeat_n(1.0, x));
            b.push(std::iter::repeat_n(1.0, y));
        }
        let e = assemble(Path::new("f.parquet"), &g, &l, vec![a.clone(), b]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.parquet: list columns 'part_pt' and 'part_eta' of collection 'part' differ in length at event 2 \
             (3 and 1 objects); name each collection's columns with the `collections` option"
        );
        let mut c = a.clone();
        c.values[4] = f32::NAN; // object 4 is in event 2 (offsets 0, 2, 2, 5)
        let raw = assemble(Path::new("f.parquet"), &g, &l, vec![a, c]).unwrap();
        let mut bad = vec![false; 3];
        raw[0].mark_bad(&mut bad);
        assert_eq!(bad, vec![false, false, true]);
        assert_eq!(raw[0].first_bad(), Some(("part_eta".to_string(), 1, 2)));
    }
}
