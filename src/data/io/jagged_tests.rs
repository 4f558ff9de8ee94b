//! Reading object collections from Parquet list columns and ROOT jagged branches, checked
//! against the values pyarrow and uproot read from the same files
//! (`tests/data/jagged_expected.json`, written by scripts/make_particle_fixtures.py), and the
//! Parquet round trip.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::testutil::{fixture, shared, tmpdir};
use super::{read_parquet, read_root, write_parquet, CollectionSpec, ReadOptions};
use crate::data::Dataset;

/// The expected columns of one fixture file, as pyarrow/uproot read them.
fn expected(file: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixture("jagged_expected.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[file].as_object().unwrap().clone()
}

/// A jagged column of the expectation as f32 lists (f32 values were widened exactly).
fn lists(exp: &serde_json::Map<String, Value>, col: &str) -> Vec<Vec<f32>> {
    exp[col]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect()
}

/// The collection's feature as per-event lists.
fn got(ds: &Dataset, coll: &str, feature: &str) -> Vec<Vec<f32>> {
    let c = ds.collection("test", coll).unwrap();
    (0..c.n_events()).map(|i| c.event(feature, i).unwrap().to_vec()).collect()
}

fn check(ds: &Dataset, exp: &serde_json::Map<String, Value>, pairs: &[(&str, &str, &str)]) {
    for (coll, feature, col) in pairs {
        assert_eq!(got(ds, coll, feature), lists(exp, col), "{coll}.{feature} vs {col}");
    }
}

fn coll_names(ds: &Dataset) -> Vec<(String, Vec<String>)> {
    ds.collections().iter().map(|c| (c.name().to_string(), c.features().to_vec())).collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn pyarrow_list_columns_equal_pyarrow_values() {
    let exp = expected("pyarrow_lists.parquet");
    let (ds, rep) = read_parquet(&fixture("pyarrow_lists.parquet"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.names(), &["jet_pt"]);
    assert_eq!(ds.label().unwrap(), &[0, 1, 0, 1, 0, 1]);
    assert!(rep.ignored_columns.is_empty(), "{:?}", rep.ignored_columns);
    assert_eq!(coll_names(&ds), vec![("part".into(), s(&["pt", "eta", "pid"])), ("trk".into(), s(&["d0"]))]);
    check(&ds, &exp, &[("part", "pt", "part_pt"), ("part", "eta", "part_eta"), ("part", "pid", "part_pid")]);
    check(&ds, &exp, &[("trk", "d0", "trk_d0")]);
    // event 1 has no particles, events 2, 4 and 5 no tracks
    assert_eq!(ds.collection("t", "part").unwrap().counts(), vec![3, 0, 1, 2, 4, 1]);
}

#[test]
fn awkward_large_lists_and_record_lists_equal_pyarrow_values() {
    let exp = expected("awkward_lists.parquet");
    let (ds, _) = read_parquet(&fixture("awkward_lists.parquet"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.names(), &["jet_pt"]);
    assert_eq!(coll_names(&ds), vec![("part".into(), s(&["pt", "eta"])), ("cand".into(), s(&["pt", "eta"]))]);
    check(&ds, &exp, &[("part", "pt", "part_pt"), ("part", "eta", "part_eta")]);
    check(&ds, &exp, &[("cand", "pt", "cand_pt"), ("cand", "eta", "cand_eta")]);
}

#[test]
fn counted_root_arrays_equal_uproot_values() {
    let exp = expected("uproot_jagged.root");
    let (ds, rep) = read_root(&fixture("uproot_jagged.root"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.names(), &["jet_pt"]);
    assert_eq!(rep.ignored_columns, vec!["npart", "ntrk_d0"]);
    assert_eq!(coll_names(&ds), vec![("part".into(), s(&["pt", "eta", "q"])), ("trk".into(), s(&["d0"]))]);
    check(&ds, &exp, &[("part", "pt", "part_pt"), ("part", "eta", "part_eta"), ("part", "q", "part_q")]);
    check(&ds, &exp, &[("trk", "d0", "trk_d0")]);
    // the counter branch equals the multiplicity
    let counts: Vec<f32> = ds.collection("t", "part").unwrap().counts().into_iter().map(|n| n as f32).collect();
    let npart: Vec<f32> = exp["npart"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(counts, npart);
}

#[test]
fn std_vector_branches_equal_uproot_values() {
    let exp = expected("oxyroot_vector.root");
    let types = expected("oxyroot_vector.root#typenames");
    assert_eq!(types["part_pt"], "std::vector<float>");
    let (ds, _) = read_root(&fixture("oxyroot_vector.root"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.column("jet_pt").unwrap().to_vec(), vec![1.5, 2.5, 3.5, 4.5]);
    assert_eq!(coll_names(&ds), vec![("part".into(), s(&["pt", "eta"]))]);
    check(&ds, &exp, &[("part", "pt", "part_pt"), ("part", "eta", "part_eta")]);
}

#[test]
fn explicit_grouping_off_and_mismatched_lengths() {
    let p = fixture("pyarrow_lists.parquet");
    let spec = CollectionSpec::Explicit(vec![(
        "hadrons".into(),
        vec![("pt".into(), "part_pt".into()), ("id".into(), "part_pid".into())],
    )]);
    let (ds, rep) = read_parquet(&p, &ReadOptions { collections: spec, ..Default::default() }).unwrap();
    assert_eq!(coll_names(&ds), vec![("hadrons".into(), s(&["pt", "id"]))]);
    assert_eq!(rep.ignored_columns, vec!["part_eta", "trk_d0"]);
    let (ds, rep) = read_parquet(&p, &ReadOptions { collections: CollectionSpec::Off, ..Default::default() }).unwrap();
    assert!(ds.collections().is_empty());
    assert_eq!(rep.ignored_columns, vec!["part_pt", "part_eta", "part_pid", "trk_d0"]);
    // part lengths 3, 0, … and trk lengths 1, 1, …: they differ at event 0.
    let bad = CollectionSpec::Explicit(vec![(
        "x".into(),
        vec![("a".into(), "part_pt".into()), ("b".into(), "trk_d0".into())],
    )]);
    let e = read_parquet(&p, &ReadOptions { collections: bad, ..Default::default() }).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: list columns 'part_pt' and 'trk_d0' of collection 'x' differ in length at event 0 (3 and 1 \
             objects); name each collection's columns with the `collections` option",
            p.display()
        )
    );
    // ROOT: part lengths 2, 0, … and trk lengths 0, 1, …
    let r = fixture("uproot_jagged.root");
    let bad = CollectionSpec::Explicit(vec![(
        "x".into(),
        vec![("a".into(), "part_pt".into()), ("b".into(), "trk_d0".into())],
    )]);
    let e = read_root(&r, &ReadOptions { collections: bad, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("differ in length at event 0 (2 and 0 objects)"), "{e}");
    // a list column listed as a feature says what to do instead
    let o = ReadOptions { features: Some(s(&["part_pt"])), ..Default::default() };
    let e = read_parquet(&p, &o).unwrap_err().to_string();
    assert!(e.contains("'part_pt' holds lists") && e.contains("option `collections`"), "{e}");
}

#[test]
fn parquet_round_trip_keeps_collections_and_root_converts() {
    let dir = tmpdir("jagged_rt");
    let (root, _) = read_root(&fixture("uproot_jagged.root"), &ReadOptions::default()).unwrap();
    let p = dir.join("conv.parquet");
    write_parquet(&p, &root).unwrap();
    let (back, rep) = read_parquet(&p, &ReadOptions::default()).unwrap();
    assert!(rep.ignored_columns.is_empty());
    assert_eq!(back.names(), root.names());
    assert_eq!(back.collections(), root.collections());
    // a name with '_' is kept by the grouping recorded in the file, not split at the prefix
    let c = root.collection("t", "part").unwrap().renamed("my_part").unwrap();
    let ds = root.without_collection("part").unwrap().with_collection(c).unwrap();
    write_parquet(&p, &ds).unwrap();
    let (back, _) = read_parquet(&p, &ReadOptions::default()).unwrap();
    assert_eq!(coll_names(&back), vec![("trk".into(), s(&["d0"])), ("my_part".into(), s(&["pt", "eta", "q"]))]);
    // the list columns are list<element: float not null>, the layout pyarrow writes
    let meta =
        parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&File::open(&p).unwrap(), Default::default()).unwrap();
    match meta.schema().field_with_name("my_part_pt").unwrap().data_type() {
        arrow_schema::DataType::List(item) => {
            assert_eq!((item.name().as_str(), item.data_type()), ("element", &arrow_schema::DataType::Float32));
        }
        t => panic!("expected a list, got {t}"),
    }
}

/// Writes `x` (flat) and `part_pt` (lists; `None` = null list, NaN inside) with arrow-rs.
fn write_with_bad_lists(path: &Path) {
    let mut b = ListBuilder::new(Float32Builder::new());
    for e in [Some(vec![1.0, 2.0]), None, Some(vec![3.0, f32::NAN]), Some(vec![])] {
        match e {
            Some(v) => {
                b.values().append_slice(&v);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    let cols: Vec<(&str, ArrayRef)> =
        vec![("x", Arc::new(Float32Array::from(vec![0.0f32, 1.0, 2.0, 3.0]))), ("part_pt", Arc::new(b.finish()))];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn null_lists_and_nan_objects_error_or_drop_their_events() {
    let p = tmpdir("jagged_bad").join("bad.parquet");
    write_with_bad_lists(&p);
    let e = read_parquet(&p, &ReadOptions::default()).unwrap_err();
    // event 1 is a null list, event 2 holds a NaN: 2 bad events, the first is 1
    assert_eq!(
        e.to_string(),
        format!("{}: 2 non-finite value(s) (NaN or Inf) in column 'part_pt', first at row 1", p.display())
    );
    let (ds, rep) = read_parquet(&p, &ReadOptions { drop_nonfinite: true, ..Default::default() }).unwrap();
    assert_eq!(rep.dropped_nonfinite, 2);
    assert_eq!(ds.column("x").unwrap().to_vec(), vec![0.0, 3.0]);
    assert_eq!(got(&ds, "part", "pt"), vec![vec![1.0, 2.0], vec![]]);
}

#[test]
fn pythia_jets_parquet_and_root_agree() {
    let (Some(pq), Some(root)) = (shared("pythia_qg_jets.parquet"), shared("pythia_qg_jets.root")) else {
        return;
    };
    let o = ReadOptions { features: Some(s(&["jet_pt", "jet_eta", "n_constituents"])), ..Default::default() };
    let (a, _) = read_parquet(&pq, &o).unwrap();
    let (b, _) = read_root(&root, &o).unwrap();
    // shared/data/README.md: 10,166 jets; six part_* columns counted by n_constituents.
    assert_eq!((a.len(), b.len()), (10166, 10166));
    let feats = s(&["pt", "eta", "phi", "E", "charge", "pid"]);
    assert_eq!(coll_names(&a), vec![("part".into(), feats.clone())]);
    assert_eq!(coll_names(&b), vec![("part".into(), feats)]);
    assert_eq!(a.x(), b.x());
    assert_eq!(a.label(), b.label());
    let (ca, cb) = (a.collection("t", "part").unwrap(), b.collection("t", "part").unwrap());
    assert_eq!(ca, cb);
    let n: Vec<usize> = a.column("n_constituents").unwrap().iter().map(|&v| v as usize).collect();
    assert_eq!(ca.counts(), n);
    // README sanity numbers: mean constituents 33.5 (quark, label 1) and 53.5 (gluon, label 0)
    let l = a.label().unwrap();
    for (class, want) in [(1, 33.5), (0, 53.5)] {
        let c: Vec<usize> = n.iter().zip(l).filter(|(_, &y)| y == class).map(|(k, _)| *k).collect();
        let mean = c.iter().sum::<usize>() as f64 / c.len() as f64;
        assert!((mean - want).abs() < 0.05, "class {class}: {mean}");
    }
    // constituents are sorted by pT, descending, in the file
    let pt = ca.values("pt").unwrap();
    assert!(ca.offsets().windows(2).all(|w| pt[w[0]..w[1]].windows(2).all(|p| p[0] >= p[1])));
}
