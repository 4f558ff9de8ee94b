use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::*;
use crate::data::io::testutil::{fixture, tmpdir};

/// Writes a Parquet file of `n` rows in row groups of `rg` rows: features `a` (f32) and `b`
/// (f64 or, with `b_f32`, f32), label `label`; row `i` holds `a = offset + i`.
fn write(path: &Path, n: usize, rg: usize, offset: usize, b_f32: bool, extra: bool) {
    let a: ArrayRef = Arc::new(Float32Array::from_iter_values((0..n).map(|i| (offset + i) as f32)));
    let b: ArrayRef = if b_f32 {
        Arc::new(Float32Array::from_iter_values((0..n).map(|i| -(i as f32))))
    } else {
        Arc::new(Float64Array::from_iter_values((0..n).map(|i| 0.5 * i as f64)))
    };
    let label: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i % 2) as i64)));
    let mut cols = vec![("a", a), ("b", b), ("label", label)];
    if extra {
        cols.push(("c", Arc::new(Float32Array::from_iter_values((0..n).map(|_| 1.0f32))) as ArrayRef));
    }
    let batch = RecordBatch::try_from_iter(cols.into_iter().map(|(n, a)| (n.to_string(), a))).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(rg)).build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Three files of 20, 0 and 15 rows in row groups of 7: a chain of 35 events whose feature
/// `a` counts 0..35 in chain order.
fn three(tag: &str) -> Vec<PathBuf> {
    let d = tmpdir(tag);
    let paths: Vec<PathBuf> = (0..3).map(|k| d.join(format!("part{k}.parquet"))).collect();
    write(&paths[0], 20, 7, 0, false, false);
    write(&paths[1], 0, 7, 20, false, false);
    write(&paths[2], 15, 7, 20, false, false);
    paths
}

#[test]
fn chunks_cover_the_chain_in_order_whatever_their_size() {
    let chain = Chain::open(&three("order"), &ReadOptions::default()).unwrap();
    assert_eq!(chain.events(), 35);
    assert_eq!(chain.names(), ["a", "b"]);
    // Row groups of 7, 7, 6 (file 0) and 7, 7, 1 (file 2): chunks of at most 14 events join
    // the first two groups of each file; the empty file gives no chunk.
    let chunks = chain.chunks(14).unwrap();
    let got: Vec<(usize, Range<usize>, usize, usize)> =
        chunks.iter().map(|c| (c.file, c.units.clone(), c.first_event, c.events)).collect();
    assert_eq!(got, vec![(0, 0..2, 0, 14), (0, 2..3, 14, 6), (2, 0..2, 20, 14), (2, 2..3, 34, 1)]);
    for size in [1, 7, 14, 1000] {
        let mut seen = Vec::new();
        for c in chain.chunks(size).unwrap() {
            let ds = chain.read(&c).unwrap();
            assert!(ds.len() <= size.max(7));
            // `a` is the event's position in the chain; the label alternates within each file
            for (i, row) in ds.x().rows().into_iter().enumerate() {
                assert_eq!(row[0] as usize, c.first_event + i);
            }
            seen.extend(ds.x().column(0).iter().map(|&v| v as usize));
            assert!(ds.label().is_some());
        }
        assert_eq!(seen, (0..35).collect::<Vec<_>>(), "chunk size {size}");
    }
    let all = chain.read_all().unwrap();
    assert_eq!(all.len(), 35);
    assert_eq!(all.label().unwrap()[20], 0); // first row of the third file
    assert!(chain.chunks(0).is_err());
}

#[test]
fn a_missing_column_an_extra_one_or_another_type_names_the_file() {
    let d = tmpdir("mismatch");
    let good = d.join("good.parquet");
    write(&good, 10, 5, 0, false, false);
    let other_type = d.join("f32.parquet");
    write(&other_type, 10, 5, 0, true, false);
    let e = Chain::open(&[good.clone(), other_type.clone()], &ReadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), "format");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}: column 'b' is Float32 here but Float64", other_type.display())), "{msg}");
    assert!(msg.contains("good.parquet"), "{msg}");
    let extra = d.join("extra.parquet");
    write(&extra, 10, 5, 0, false, true);
    // good then extra: a column the first file lacks; extra then good: a missing column
    let e = Chain::open(&[good.clone(), extra.clone()], &ReadOptions::default()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: has a column 'c'", extra.display())), "{e}");
    let e = Chain::open(&[extra.clone(), good.clone()], &ReadOptions::default()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: has no column 'c'", good.display())), "{e}");
}

#[test]
fn formats_options_and_unreadable_files_are_checked_when_opening() {
    let d = tmpdir("formats");
    let good = d.join("good.parquet");
    write(&good, 10, 5, 0, false, false);
    let root = fixture("uproot-HZZ.root");
    let e = Chain::open(&[good.clone(), root], &ReadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("a chain holds files of one format"), "{e}");
    let e = Chain::open(&[good.clone(), d.join("x.csv")], &ReadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("x.csv' is not a Parquet or ROOT file"), "{e}");
    let missing = d.join("missing.parquet");
    let e = Chain::open(&[good.clone(), missing.clone()], &ReadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), "io");
    assert!(e.to_string().contains("missing.parquet"));
    let o = ReadOptions { drop_nonfinite: true, ..Default::default() };
    assert!(Chain::open(std::slice::from_ref(&good), &o).unwrap_err().to_string().contains("drop_nonfinite"));
    assert_eq!(Chain::open(&[], &ReadOptions::default()).unwrap_err().kind(), "empty");
    // roles are resolved once: an explicit feature list keeps its order in every chunk
    let o = ReadOptions { features: Some(vec!["b".into(), "a".into()]), no_label: true, ..Default::default() };
    let chain = Chain::open(&[good.clone(), good], &o).unwrap();
    let c = &chain.chunks(5).unwrap()[3];
    let ds = chain.read(c).unwrap();
    assert_eq!((ds.names(), ds.label().is_none(), c.first_event), (&["b".to_string(), "a".to_string()][..], true, 15));
    // row 0 of the second group of the second file: b = 0.5·5, a = 5
    assert_eq!((ds.x()[[0, 0]], ds.x()[[0, 1]]), (2.5, 5.0));
}

#[test]
fn root_files_chain_one_chunk_per_file() {
    let p = fixture("uproot-HZZ.root");
    let (single, _) = io::read_root(&p, &ReadOptions::default()).unwrap();
    let chain = Chain::open(&[p.clone(), p], &ReadOptions::default()).unwrap();
    assert_eq!(chain.format(), Format::Root);
    assert_eq!(chain.events(), 2 * single.len());
    let chunks = chain.chunks(100).unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1].first_event, single.len());
    let second = chain.read(&chunks[1]).unwrap();
    assert_eq!(second.x(), single.x());
    assert_eq!(second.names(), single.names());
}
