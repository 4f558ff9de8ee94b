//! Streamed scores, histograms and cuts equal the same computed on the whole chain in memory,
//! for any chunk size, and their summaries merge exactly.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::cut::cut_chain;
use super::hist::Hist;
use super::histogram::histogram_chain;
use super::scores::scores_chain;
use super::test_support::setup;
use super::yields::Yields;
use crate::data::chain::Chain;
use crate::data::expr::Expr;
use crate::data::io::ReadOptions;
use crate::model::Model;
use crate::optim::Control;

fn column(p: &Path, name: &str) -> Vec<f32> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap().build().unwrap();
    b.flat_map(|r| r.unwrap().column_by_name(name).unwrap().as_primitive::<Float32Type>().values().to_vec()).collect()
}

#[test]
fn streamed_cuts_equal_the_in_memory_selection_and_merge_exactly() {
    let (_, chain, _, dir) = setup("sums_cut", 3, true);
    let all = chain.read_all().unwrap();
    let cut = Expr::parse("x0 > 0.3 && x1 < 1").unwrap();
    // the selection on the whole chain, counted directly
    let mask = cut.eval_mask(&all).unwrap();
    let mut want = Yields::default();
    for (i, &p) in mask.iter().enumerate() {
        want.add(Some(all.label().unwrap()[i]), all.weight().unwrap()[i], p);
    }
    assert!(want.total.passed > 100 && want.total.passed < 2900, "a cut that selects some: {}", want.total.passed);
    let a = cut_chain(&chain, &cut, 250, Some(&dir.join("a.parquet")), &Control::quiet()).unwrap();
    let b = cut_chain(&chain, &cut, 1, None, &Control::quiet()).unwrap();
    assert_eq!(a.yields, want);
    assert_eq!(b.yields, want);
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(Yields::from_json("y.json", &a.to_json()).unwrap(), want);
    // the pass flags, in event order
    let t = ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join("a.parquet")).unwrap()).unwrap();
    assert_eq!(t.metadata().num_row_groups(), 15, "one row group per chunk of 200");
    let flags: Vec<bool> = t
        .build()
        .unwrap()
        .flat_map(|r| {
            r.unwrap().column_by_name("pass").unwrap().as_boolean().iter().map(|v| v.unwrap()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(flags, mask);
    // a file alone and the other two: merged yields are the whole chain's
    let part = |k: std::ops::Range<usize>| {
        let f: Vec<PathBuf> = chain.files()[k].iter().map(|f| f.path.clone()).collect();
        cut_chain(&Chain::open(&f, &ReadOptions::default()).unwrap(), &cut, 300, None, &Control::quiet()).unwrap()
    };
    let mut merged = part(0..1).yields;
    merged.merge(&part(1..3).yields);
    assert_eq!(merged, want);
}

#[test]
fn streamed_scores_and_histograms_equal_the_in_memory_ones() {
    let (m, chain, _, dir) = setup("sums_scores", 3, true);
    let all = chain.read_all().unwrap();
    let scores = m.scores(m.inputs(&all).unwrap().view()).unwrap();
    let empty = Hist::uniform("t", 20, 0.0, 1.0).unwrap();
    let mut want = empty.clone();
    for i in 0..all.len() {
        want.fill(f64::from(scores[[i, 0]]), all.weight().unwrap()[i]);
    }
    let out = dir.join("s.parquet");
    let s = scores_chain(&chain, &m, 250, Some(&out), empty.clone(), None, &Control::quiet()).unwrap();
    let t = scores_chain(&chain, &m, 1, None, empty.clone(), None, &Control::quiet()).unwrap();
    assert_eq!(s.hist, want);
    assert_eq!(s, t);
    assert_eq!(s.events, 3000);
    // the per-class histograms add up to the whole (each bin count)
    let sum: Vec<u64> = (0..20).map(|b| s.classes.values().map(|h| h.counts[b]).sum()).collect();
    assert_eq!(sum, want.counts);
    assert_eq!(column(&out, "score"), scores.column(0).to_vec(), "scores bit for bit, in event order");
    assert!(scores_chain(&chain, &m, 250, None, empty, Some(1), &Control::quiet()).is_err());
    // a histogram of a column: counted independently, each x0 with its bin ⌊(x0 + 3)/0.5⌋ over [−3, 3)
    let h = histogram_chain(
        &chain,
        &Expr::parse("x0").unwrap(),
        170,
        Hist::uniform("t", 12, -3.0, 3.0).unwrap(),
        &Control::quiet(),
    )
    .unwrap();
    let mut counts = [0u64; 12];
    let (mut under, mut over) = (0, 0);
    for &x in all.x().column(0) {
        let v = f64::from(x);
        if v < -3.0 {
            under += 1;
        } else if v >= 3.0 {
            over += 1;
        } else {
            counts[(((v + 3.0) / 0.5).floor() as usize).min(11)] += 1;
        }
    }
    assert_eq!(h.counts, counts.to_vec());
    assert_eq!((h.underflow, h.overflow), (under, over));
    // weighted: Σw over all bins and flows is Σ(0.5 + 0.001·i) ≈ 5998.5 (f32 weights)
    let total: f64 =
        h.weights.iter().map(|w| w.value()).sum::<f64>() + h.weight_underflow.value() + h.weight_overflow.value();
    assert!((total - 5998.5).abs() < 1e-2, "{total}");
}
