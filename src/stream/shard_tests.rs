//! Shards of a streamed attack: per-event random streams keyed by position make the union of
//! the shards' tables, and the merge of their summaries, equal to one run's.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::test_support::setup;
use super::*;
use crate::attack::kinds::rdsa::RdsaAttack;
use crate::attack::project::Projection;
use crate::attack::rdsa::{Rdsa, RdsaConfig};
use crate::attack::{configure, Purpose, Setup, UncertaintyModel, Value, Values};
use crate::data::chain::Shard;
use crate::model::Mlp;

const ATTACKS: [&str; 4] = ["fgsm", "pgd", "minifool", "rdsa"];

/// The attack `name` for events `ds`: PGD with a random start, RDSA with its marginals from
/// the fixed sample `reference` (both seeded).
fn attack_for(name: &str, m: &Mlp, unc: &UncertaintyModel, ds: &Dataset, reference: &Dataset) -> Box<dyn Attack> {
    let s = Setup { model: m, events: ds, unc: Some(unc), purpose: Purpose::Script };
    match name {
        "fgsm" => configure("fgsm", &s, Values::new("fgsm").with("eps", Value::Float(0.3))).unwrap(),
        "pgd" => configure(
            "pgd",
            &s,
            Values::new("pgd")
                .with("eps", Value::Float(0.3))
                .with("steps", Value::Int(3))
                .with("step", Value::Float(0.1))
                .with("random_start", Value::Bool(true))
                .with("seed", Value::Int(7)),
        )
        .unwrap(),
        "minifool" => configure("minifool", &s, Values::new("minifool").with("steps", Value::Int(6))).unwrap(),
        _ => {
            let cfg = RdsaConfig { k: 2, steps: 20, seed: 11, ..RdsaConfig::default() };
            let r = Rdsa::new(reference.names(), reference.x(), None, &cfg, &Projection::default()).unwrap();
            Box::new(RdsaAttack::prepared(r, reference.names()))
        }
    }
}

fn stream(
    name: &str,
    m: &Mlp,
    chain: &Chain,
    unc: &UncertaintyModel,
    reference: &Dataset,
    out: &Path,
) -> AttackSummary {
    let mut cfg = |ds: &Dataset| Ok(attack_for(name, m, unc, ds, reference));
    attack_chain(name, chain, m, 250, Some(out), &Control::quiet(), &mut cfg).unwrap()
}

/// Every column of a table file, by name, as arrays of all its rows.
fn columns(p: &Path) -> Vec<(String, Vec<ArrayRef>)> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap();
    let batches: Vec<RecordBatch> = b.with_batch_size(1 << 20).build().unwrap().map(|r| r.unwrap()).collect();
    let schema = batches[0].schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(j, f)| (f.name().clone(), batches.iter().map(|b| b.column(j).clone()).collect()))
        .collect()
}

fn f32s(parts: &[ArrayRef]) -> Vec<u32> {
    use arrow_array::cast::AsArray;
    parts
        .iter()
        .flat_map(|a| a.as_primitive::<arrow_array::types::Float32Type>().values().iter().map(|v| v.to_bits()))
        .collect()
}

fn i64s(parts: &[ArrayRef]) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    parts.iter().flat_map(|a| a.as_primitive::<arrow_array::types::Int64Type>().values().to_vec()).collect()
}

#[test]
fn shards_partition_the_chain_by_position_whatever_the_chunk_size() {
    let (_m, chain, _unc, _dir) = setup("shard_split", 2, false);
    // 20 row groups of 100 events in 3 shards: group at p goes to ⌊3p/2000⌋, so groups
    // 0–6 (p < 666.7), 7–13 (p < 1333.3) and 14–19: 700, 700 and 600 events
    let shares: Vec<usize> = (0..3).map(|i| chain.clone().sharded(Shard::new(i, 3).unwrap()).events()).collect();
    assert_eq!(shares, [700, 700, 600]);
    for size in [1, 250, 5000] {
        let mut firsts = Vec::new();
        for (i, &share) in shares.iter().enumerate() {
            let c = chain.clone().sharded(Shard::new(i, 3).unwrap());
            let chunks = c.chunks(size).unwrap();
            assert_eq!(chunks.iter().map(|k| k.events).sum::<usize>(), share, "size {size}");
            firsts.extend(chunks.iter().map(|k| (k.first_event, k.events)));
        }
        // the shards' chunks, in shard order, tile the chain without gap or overlap
        let mut next = 0;
        for (first, n) in firsts {
            assert_eq!(first, next, "size {size}");
            next += n;
        }
        assert_eq!(next, 2000);
    }
    // a shard's read() holds its share only
    assert_eq!(chain.clone().sharded(Shard::new(2, 3).unwrap()).read_all().unwrap().len(), 600);
}

#[test]
fn union_of_shards_equals_the_single_run_for_every_per_event_attack() {
    let (m, chain, unc, dir) = setup("shard_union", 2, false);
    let all = chain.read_all().unwrap();
    // RDSA's marginals come from a fixed sample: the first 500 events
    let reference = chain.read(&chain.chunks(500).unwrap()[0]).unwrap();
    for name in ATTACKS {
        // the in-memory attack on the whole chain: the reference of every event's result
        let whole =
            attack_for(name, &m, &unc, &all, &reference).run(&m, all.x(), all.label(), &Control::quiet()).unwrap();
        let single_path = dir.join(format!("{name}.parquet"));
        let single = stream(name, &m, &chain, &unc, &reference, &single_path);
        assert_eq!(single, AttackSummary::of_chunk(name, &all, &whole), "{name}");
        assert!(single.flipped > 0, "{name} flips nothing; the comparison would be weak");
        let mut parts = Vec::new();
        let mut summaries = Vec::new();
        let mut merged = AttackSummary::new(name);
        for i in 0..4 {
            let shard = Shard::new(i, 4).unwrap();
            let out = dir.join(shard.file_name(&format!("{name}.parquet")));
            let s = stream(name, &m, &chain.clone().sharded(shard), &unc, &reference, &out);
            merged.merge(&s).unwrap();
            let js = dir.join(shard.file_name(&format!("{name}.json")));
            std::fs::write(&js, serde_json::to_vec(&s.to_json()).unwrap()).unwrap();
            parts.push(out);
            summaries.push(js);
        }
        assert_eq!(merged, single, "{name}: merged summaries");
        // `nuisance merge`, given the shards in reverse order, writes the single run's table
        parts.reverse();
        let joined = dir.join(format!("{name}_merged.parquet"));
        crate::merge::merge(&joined, &parts).unwrap();
        let (a, b) = (columns(&single_path), columns(&joined));
        assert_eq!(a.len(), b.len());
        for ((na, ca), (nb, cb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            match ca[0].data_type() {
                arrow_schema::DataType::Float32 => assert_eq!(f32s(ca), f32s(cb), "{name} {na}"),
                arrow_schema::DataType::Int64 => assert_eq!(i64s(ca), i64s(cb), "{name} {na}"),
                _ => {
                    let flat = |c: &[ArrayRef]| c.iter().map(|x| x.to_data()).collect::<Vec<_>>();
                    let (fa, fb) = (flat(ca), flat(cb));
                    let sa: usize = fa.iter().map(|d| d.len()).sum();
                    let sb: usize = fb.iter().map(|d| d.len()).sum();
                    assert_eq!(sa, sb, "{name} {na}");
                }
            }
        }
        assert_eq!(i64s(&a[0].1), (0..2000).collect::<Vec<i64>>(), "{name}: events in order");
        // every perturbed input is the in-memory run's, bit for bit (the random start and
        // RDSA's tries are keyed by position, not by shard or chunk)
        for (j, f) in all.names().iter().enumerate() {
            let col = &b.iter().find(|(n, _)| n == f).unwrap().1;
            let want: Vec<u32> = whole.attack.x.column(j).iter().map(|v| v.to_bits()).collect();
            assert_eq!(f32s(col), want, "{name} {f}");
        }
        let flipped: Vec<bool> = {
            use arrow_array::cast::AsArray;
            let col = &b.iter().find(|(n, _)| n == "flipped").unwrap().1;
            col.iter().flat_map(|a| a.as_boolean().iter().map(|v| v.unwrap()).collect::<Vec<_>>()).collect()
        };
        assert_eq!(flipped, whole.attack.flipped(), "{name}: flips");
        // the summary files merge exactly into the single run's summary
        let js = dir.join(format!("{name}_merged.json"));
        crate::merge::merge(&js, &summaries).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
        assert_eq!(v, single.to_json(), "{name}: merged summary file");
    }
}

#[test]
fn the_random_start_is_per_event_and_moves_the_start() {
    // PGD with a random start over the chain: an event's start depends on its position only,
    // so the first 100 events attacked alone equal the first 100 of the whole run; with
    // another seed they differ (the start is random, and it matters: 3 steps of 0.1σ cannot
    // reach the same corner of the ±0.3σ box from every start).
    let (m, chain, unc, _dir) = setup("shard_start", 2, false);
    let all = chain.read_all().unwrap();
    let head = chain.read(&chain.chunks(100).unwrap()[0]).unwrap();
    let whole = attack_for("pgd", &m, &unc, &all, &all).run(&m, all.x(), None, &Control::quiet()).unwrap();
    let part = attack_for("pgd", &m, &unc, &head, &head).run(&m, head.x(), None, &Control::quiet()).unwrap();
    assert_eq!(part.attack.x, whole.attack.x.slice(ndarray::s![0..100, ..]));
    // placed at position 100, the second chunk's events get the whole run's rows 100..200
    let second = chain.read(&chain.chunks(100).unwrap()[1]).unwrap();
    let mut a = attack_for("pgd", &m, &unc, &second, &second);
    a.place(100);
    let r = a.run(&m, second.x(), None, &Control::quiet()).unwrap();
    assert_eq!(r.attack.x, whole.attack.x.slice(ndarray::s![100..200, ..]));
    let s = Setup { model: &m, events: &head, unc: Some(&unc), purpose: Purpose::Script };
    let other = configure(
        "pgd",
        &s,
        Values::new("pgd")
            .with("eps", Value::Float(0.3))
            .with("steps", Value::Int(3))
            .with("step", Value::Float(0.1))
            .with("random_start", Value::Bool(true))
            .with("seed", Value::Int(8)),
    )
    .unwrap()
    .run(&m, head.x(), None, &Control::quiet())
    .unwrap();
    assert_ne!(other.attack.x, part.attack.x);
}
