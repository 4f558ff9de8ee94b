use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};

use super::*;
use crate::data::io::testutil::tmpdir;
use crate::stream::ExactSum;

/// A table with `event` = `events` and a float column `name` = 0.5·event.
fn table(p: &Path, events: &[i64], name: &str) {
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("event", Arc::new(Int64Array::from(events.to_vec()))),
        (name, Arc::new(Float32Array::from_iter_values(events.iter().map(|&e| 0.5 * e as f32)))),
    ];
    let b = RecordBatch::try_from_iter(cols).unwrap();
    let mut w = ArrowWriter::try_new(File::create(p).unwrap(), b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
}

fn events_of(p: &Path) -> Vec<i64> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap();
    b.build().unwrap().flat_map(|r| events(p, &r.unwrap()).unwrap()).collect()
}

fn summary(attack: &str, events: u64, w: f32) -> AttackSummary {
    let mut s = AttackSummary::new(attack);
    s.events = events;
    s.correct = events;
    let mut sum = ExactSum::new();
    for _ in 0..events {
        sum.add(w);
    }
    s.weight = sum.clone();
    s.weight_correct = sum;
    s
}

#[test]
fn tables_join_in_event_order_and_refuse_overlaps_and_other_columns() {
    let dir = tmpdir("merge_tables");
    let (a, b, c) = (dir.join("a.parquet"), dir.join("b.parquet"), dir.join("c.parquet"));
    table(&a, &[4, 5, 6], "x");
    table(&b, &[0, 1, 2, 3], "x");
    let out = dir.join("all.parquet");
    merge(&out, &[a.clone(), b.clone()]).unwrap();
    assert_eq!(events_of(&out), [0, 1, 2, 3, 4, 5, 6]);
    // overlapping events: an error naming both files, and no output
    table(&c, &[3, 7], "x");
    let out2 = dir.join("bad.parquet");
    let e = merge(&out2, &[a.clone(), b.clone(), c.clone()]).unwrap_err().to_string();
    assert!(e.contains("event 3 comes after event 3") && e.contains("b.parquet") && e.contains("c.parquet"), "{e}");
    assert!(!out2.exists());
    // other columns
    table(&c, &[7, 8], "y");
    let e = merge(&out2, &[a.clone(), c.clone()]).unwrap_err().to_string();
    assert!(e.contains("has other columns than") && e.contains("c.parquet"), "{e}");
    // other kinds
    let e = merge(&dir.join("x.json"), std::slice::from_ref(&a)).unwrap_err().to_string();
    assert!(e.contains("is not of the output's kind"), "{e}");
    let e = merge(&dir.join("x.png"), &[a]).unwrap_err().to_string();
    assert!(e.contains("only Parquet per-event tables"), "{e}");
}

#[test]
fn summaries_merge_exactly_and_shard_groups_are_found() {
    let dir = tmpdir("merge_summaries");
    let write = |name: &str, s: &AttackSummary| {
        std::fs::write(dir.join(name), serde_json::to_vec(&s.to_json()).unwrap()).unwrap();
    };
    // 0.1f32 is not 0.1: three shards of 1, 2 and 3 events of weight 0.1f32 sum exactly to
    // 6 × 0.1f32 (one run over the six events)
    write("s.shard-0-of-3.json", &summary("fgsm", 1, 0.1));
    write("s.shard-1-of-3.json", &summary("fgsm", 2, 0.1));
    write("s.shard-2-of-3.json", &summary("fgsm", 3, 0.1));
    table(&dir.join("t.shard-0-of-3.parquet"), &[0], "x");
    table(&dir.join("t.shard-1-of-3.parquet"), &[1, 2], "x");
    table(&dir.join("t.shard-2-of-3.parquet"), &[3], "x");
    std::fs::write(dir.join("plot.shard-0-of-3.png"), b"png").unwrap();
    let (merged, skipped) = merge_shards(&dir, 3).unwrap();
    assert_eq!(merged.len(), 2);
    assert_eq!(skipped, [dir.join("plot.shard-0-of-3.png")]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("s.json")).unwrap()).unwrap();
    assert_eq!(AttackSummary::from_json("s", &v).unwrap(), summary("fgsm", 6, 0.1));
    assert_eq!(events_of(&dir.join("t.parquet")), [0, 1, 2, 3]);
    // a missing shard, and summaries of different attacks, are errors
    std::fs::remove_file(dir.join("t.shard-1-of-3.parquet")).unwrap();
    let e = merge_shards(&dir, 3).unwrap_err().to_string();
    assert!(e.contains("shard(s) 1 of 3 are missing"), "{e}");
    write("u.json", &summary("pgd", 1, 1.0));
    let e = merge(&dir.join("m.json"), &[dir.join("s.json"), dir.join("u.json")]).unwrap_err().to_string();
    assert!(e.contains("does not merge with") && e.contains("'fgsm' and 'pgd'"), "{e}");
    let e = merge_shards(&dir, 5).unwrap_err().to_string();
    assert!(e.contains("no files of 5 shards"), "{e}");
}
