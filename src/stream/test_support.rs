//! What the streaming tests share: chains of Parquet files cut from the reference task.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::attack::test_support::{bench_sigma, trained};
use crate::attack::UncertaintyModel;
use crate::data::chain::Chain;
use crate::data::io::testutil::tmpdir;
use crate::data::io::ReadOptions;
use crate::data::Dataset;
use crate::model::{Mlp, Output};

/// Writes rows `rows` of `ds` (features, label and, when `weighted`, a weight 0.5 + 0.001·row)
/// to a Parquet file in row groups of `rg` rows.
pub(super) fn write_part(path: &Path, ds: &Dataset, rows: std::ops::Range<usize>, rg: usize, weighted: bool) {
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for (j, name) in ds.names().iter().enumerate() {
        let v: Vec<f32> = rows.clone().map(|i| ds.x()[[i, j]]).collect();
        cols.push((name.clone(), Arc::new(Float32Array::from(v))));
    }
    let l = ds.label().unwrap();
    cols.push(("label".into(), Arc::new(Int64Array::from_iter_values(rows.clone().map(|i| l[i])))));
    if weighted {
        cols.push(("weight".into(), Arc::new(Float32Array::from_iter_values(rows.map(|i| 0.5 + 0.001 * i as f32)))));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(rg)).build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A model trained on the reference task and a chain of its first `files` × 1000 events,
/// 1000 rows per file in row groups of 100 (weighted or not), with the task's σ and the
/// folder holding the files.
pub(super) fn setup(tag: &str, files: usize, weighted: bool) -> (Mlp, Chain, UncertaintyModel, PathBuf) {
    let (m, ds) = trained(5, Output::Sigmoid);
    let dir = tmpdir(tag);
    let paths: Vec<PathBuf> = (0..files).map(|k| dir.join(format!("p{k}.parquet"))).collect();
    for (k, p) in paths.iter().enumerate() {
        write_part(p, &ds, k * 1000..(k + 1) * 1000, 100, weighted);
    }
    let chain = Chain::open(&paths, &ReadOptions::default()).unwrap();
    let unc = bench_sigma(&ds);
    (m, chain, unc, dir)
}
