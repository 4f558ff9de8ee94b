use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::test_support::setup;
use super::*;
use crate::attack::{configure, Purpose, Setup, UncertaintyModel, Value, Values};
use crate::data::io::ReadOptions;
use crate::model::Mlp;

fn values(name: &'static str) -> Values {
    match name {
        "fgsm" => Values::new("fgsm").with("eps", Value::Float(0.3)),
        "pgd" => Values::new("pgd").with("eps", Value::Float(0.3)).with("steps", Value::Int(5)),
        _ => Values::new("minifool").with("steps", Value::Int(8)),
    }
}

fn run(
    name: &'static str,
    m: &Mlp,
    chain: &Chain,
    unc: &UncertaintyModel,
    chunk: usize,
    out: Option<&Path>,
) -> AttackSummary {
    let mut cfg = |ds: &Dataset| {
        let s = Setup { model: m, events: ds, unc: Some(unc), purpose: Purpose::Script };
        configure(name, &s, values(name))
    };
    attack_chain(name, chain, m, chunk, out, &Control::quiet(), &mut cfg).unwrap()
}

/// The per-event table of a result file, one batch of all rows, and its row-group count.
fn read_table(p: &Path) -> (RecordBatch, usize) {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap();
    let groups = b.metadata().num_row_groups();
    let batches: Vec<RecordBatch> = b.with_batch_size(1 << 20).build().unwrap().map(|r| r.unwrap()).collect();
    (arrow_select_concat(&batches), groups)
}

fn arrow_select_concat(b: &[RecordBatch]) -> RecordBatch {
    let schema = b[0].schema();
    let cols = (0..schema.fields().len())
        .map(|j| {
            let parts: Vec<&dyn arrow_array::Array> = b.iter().map(|x| x.column(j).as_ref()).collect();
            arrow_concat(&parts)
        })
        .collect();
    RecordBatch::try_new(schema, cols).unwrap()
}

fn arrow_concat(parts: &[&dyn arrow_array::Array]) -> ArrayRef {
    // the tables hold Int64, Float32, Float64 and Boolean columns only
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int64Type};
    use arrow_schema::DataType;
    match parts[0].data_type() {
        DataType::Int64 => Arc::new(Int64Array::from_iter_values(
            parts.iter().flat_map(|p| p.as_primitive::<Int64Type>().values().to_vec()),
        )),
        DataType::Float32 => Arc::new(Float32Array::from_iter_values(
            parts.iter().flat_map(|p| p.as_primitive::<Float32Type>().values().to_vec()),
        )),
        DataType::Float64 => Arc::new(arrow_array::Float64Array::from_iter_values(
            parts.iter().flat_map(|p| p.as_primitive::<Float64Type>().values().to_vec()),
        )),
        DataType::Boolean => Arc::new(arrow_array::BooleanArray::from(
            parts
                .iter()
                .flat_map(|p| p.as_boolean().iter().map(|v| v.unwrap()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        )),
        t => panic!("unexpected column type {t}"),
    }
}

#[test]
fn streamed_attacks_equal_the_in_memory_run_for_any_chunk_size() {
    let (m, chain, unc, dir) = setup("stream_eq", 3, true);
    let all = chain.read_all().unwrap();
    for name in ["fgsm", "pgd", "minifool"] {
        // the in-memory attack on the whole chain at once
        let s = Setup { model: &m, events: &all, unc: Some(&unc), purpose: Purpose::Script };
        let whole =
            configure(name, &s, values(name)).unwrap().run(&m, all.x(), all.label(), &Control::quiet()).unwrap();
        let expected = AttackSummary::of_chunk(name, &all, &whole);
        // chunks of 250 events join row groups of 100 into chunks of 200 (10 per file... 5 per
        // file: 200 × 5); chunks of 1 event read one row group (100) each: 30 chunks
        let (a, b) = (dir.join(format!("{name}_a.parquet")), dir.join(format!("{name}_b.parquet")));
        let sa = run(name, &m, &chain, &unc, 250, Some(&a));
        let sb = run(name, &m, &chain, &unc, 1, Some(&b));
        assert_eq!(sa, expected, "{name}");
        assert_eq!(sb, expected, "{name}");
        assert_eq!(sa.to_json(), sb.to_json());
        let (ta, ga) = read_table(&a);
        let (tb, gb) = read_table(&b);
        assert_eq!((ga, gb), (15, 30), "{name}: one row group per chunk");
        assert_eq!(ta, tb, "{name}");
        // every perturbed input and score equals the whole run's, bit for bit, in event order
        let col = |t: &RecordBatch, n: &str| t.column_by_name(n).unwrap().clone();
        let events: Vec<i64> = (0..3000).collect();
        assert_eq!(col(&ta, "event").as_ref(), &Int64Array::from(events) as &dyn arrow_array::Array);
        for (j, f) in all.names().iter().enumerate() {
            let want = Float32Array::from_iter_values(whole.attack.x.column(j).iter().copied());
            assert_eq!(col(&ta, f).as_ref(), &want as &dyn arrow_array::Array, "{name} {f}");
        }
        let after = Float32Array::from_iter_values(whole.attack.score_after.column(0).iter().copied());
        assert_eq!(col(&ta, "score_after").as_ref(), &after as &dyn arrow_array::Array, "{name}");
        assert!(expected.flipped > 0, "{name} flips nothing; the comparison would be weak");
        // a summary file reads back to the same summary
        assert_eq!(AttackSummary::from_json("s.json", &sa.to_json()).unwrap(), sa);
    }
}

#[test]
fn summaries_of_parts_merge_into_the_whole_and_refuse_mismatches() {
    let (m, chain, unc, _dir) = setup("stream_merge", 3, true);
    let whole = run("fgsm", &m, &chain, &unc, 1000, None);
    // the first file alone and the last two files: their merged summary is the whole one
    let p = |k: std::ops::Range<usize>| {
        let files: Vec<PathBuf> = chain.files()[k].iter().map(|f| f.path.clone()).collect();
        Chain::open(&files, &ReadOptions::default()).unwrap()
    };
    let mut merged = run("fgsm", &m, &p(0..1), &unc, 300, None);
    merged.merge(&run("fgsm", &m, &p(1..3), &unc, 700, None)).unwrap();
    assert_eq!(merged, whole);
    assert_eq!(merged.weight.value().to_bits(), whole.weight.value().to_bits());
    // weights 0.5 + 0.001·i over i < 3000: Σ = 1500 + 0.001·(2999·3000/2) ≈ 5998.5 (the f32
    // weights are not exactly these decimals, hence the tolerance)
    assert!((whole.weight.value() - 5998.5).abs() < 1e-3, "{}", whole.weight.value());
    assert_eq!(whole.events, 3000);
    let e = merged.merge(&AttackSummary::new("pgd")).unwrap_err().to_string();
    assert!(e.contains("cannot merge summaries of 'fgsm' and 'pgd'"), "{e}");
}

#[test]
fn a_failing_chunk_leaves_no_result_file() {
    let (m, chain, unc, dir) = setup("stream_fail", 3, true);
    let out = dir.join("never.parquet");
    let mut k = 0;
    let mut cfg = |ds: &Dataset| {
        k += 1;
        if k == 3 {
            return Err(Error::Interrupted);
        }
        let s = Setup { model: &m, events: ds, unc: Some(&unc), purpose: Purpose::Script };
        configure("fgsm", &s, values("fgsm"))
    };
    let e = attack_chain("fgsm", &chain, &m, 100, Some(&out), &Control::quiet(), &mut cfg).unwrap_err();
    assert_eq!(e.kind(), "interrupted");
    assert!(!out.exists());
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("never"))
        .count();
    assert_eq!(leftovers, 0);
    assert!(streamable("rdsa", false, false).is_err());
    assert!(streamable("rdsa", true, false).is_ok());
    assert!(streamable("pgd", false, false).is_ok());
}
