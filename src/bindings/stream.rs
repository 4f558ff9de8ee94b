//! `stream_attack`: a per-event attack over a chain, chunk by chunk (`crate::stream`); the
//! result table and the summary file go through the sandbox.

use rhai::plugin::*;

/// Registers `stream_attack`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(stream_api).into());
}

#[export_module]
pub mod stream_api {
    use rhai::Map;

    use crate::attack::{Purpose, Setup, UncertaintyModel};
    use crate::bindings::options::{declared, Opts, ScriptOptions};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::chain::Chain;
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::fsutil::atomic_write_bytes;
    use crate::model::SharedModel;
    use crate::stream::{attack_chain, streamable};

    /// Runs a per-event attack (`"fgsm"`, `"pgd"`, `"minifool"` or `"rdsa"`) over a chain one chunk at
    /// a time, in bounded memory: each chunk is read, attacked, appended to the result table
    /// `out` as one Parquet row group, and counted into the summary; only one chunk is held
    /// at a time. Every event's result equals the in-memory attack's on the whole chain,
    /// whatever the chunk size, and the counts and weight sums are exact (a summary file of
    /// several runs merges into exactly the summary of one). The table has `event` (the
    /// event's position in the chain), `label` and `weight` when the chain has them, the
    /// perturbed inputs, `score_before`, `score_after`, `class_before`, `class_after`,
    /// `flipped`, `chi2` and the attack's own columns; it appears only once complete.
    /// Returns `#{ events, correct, flipped, flipped_correct, flip_fraction,
    /// flip_fraction_correct, weighted_flip_fraction, sum_weights, … }` (`flip_fraction` over
    /// all events, as `fgsm` gives it). Random draws (PGD's `random_start`, RDSA's tries) come
    /// from each event's own stream, keyed by the seed and the event's position in the chain,
    /// so they equal the in-memory attack's on `c.read()` with the same seed, in any chunking
    /// and in any shard (`nuisance run --shard`). RDSA streams with its marginals from a fixed
    /// sample, `options: #{ reference: d }`; per-event `labels` and CONSERVAttack do not
    /// stream (an error says why). In a sharded run only the shard's chunks are attacked and
    /// `out` and `summary` get the shard's suffix (see `shard()`).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `attack` | string | "pgd" | `"fgsm"`, `"pgd"`, `"minifool"` or `"rdsa"` |
    /// | `options` | map | #{} | the attack's own options (as `fgsm` / `pgd` / `minifool`) |
    /// | `chunk` | int | 100000 | events per chunk (at most; a larger row group is one chunk) |
    /// | `out` | string | none | the per-event result table (Parquet) |
    /// | `summary` | string | none | the summary (JSON, with the exact sums for merging) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 600, seed: 1 });
    /// d.write_parquet("out/doc_stream_a.parquet");
    /// d.write_parquet("out/doc_stream_b.parquet");
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 } });
    /// let c = chain("out/doc_stream_*.parquet");
    /// let s = stream_attack(c, m, u, #{ attack: "fgsm", options: #{ eps: 0.5 }, chunk: 500,
    ///                                   out: "out/doc_stream.parquet" });
    /// assert_eq(s.events, 1200);
    /// assert_eq(s.flip_fraction, fgsm(m, c.read(), u, #{ eps: 0.5 }).flip_fraction);
    /// assert_eq(read_parquet("out/doc_stream.parquet", #{ features: ["event"] }).len, 1200);
    /// ```
    #[rhai_fn(return_raw, name = "stream_attack")]
    pub fn stream_attack(
        c: NativeCallContext,
        chain: Chain,
        m: SharedModel,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("stream_attack", &options);
        let kind = o.choice("attack", &crate::attack::attack_names(false), "pgd")?;
        let mut sub = o.map_opt("options")?.unwrap_or_default();
        let chunk = o.usize("chunk", 100_000)?;
        let out = o.string_opt("out")?;
        let summary_path = o.string_opt("summary")?;
        o.finish()?;
        if chunk == 0 {
            return Err(Error::BadOption {
                func: "stream_attack".into(),
                key: "chunk".into(),
                problem: "must be at least 1".into(),
            }
            .into());
        }
        streamable(kind, sub.contains_key("reference"), sub.contains_key("labels"))
            .map_err(|why| Error::arg("stream_attack", format!("{kind}: {why}")))?;
        // One seed for the whole chain (each chunk's configuration would otherwise take the next).
        if declared(kind).is_some_and(|keys| keys.contains(&"seed")) && !sub.contains_key("seed") {
            sub.insert("seed".into(), (cx.seed_or_next(None) as i64).into());
        }
        let out = out.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        let summary_path = summary_path.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        let entry =
            crate::attack::lookup(kind).ok_or_else(|| Error::arg("stream_attack", "not a registered attack"))?;
        let mut configure = |ds: &Dataset| {
            u.check_dataset("stream_attack", ds)?;
            let mut so = Opts::new(kind, &sub);
            let setup = Setup { model: &*m, events: ds, unc: Some(&u), purpose: Purpose::Script };
            let attack = (entry.configure)(&mut ScriptOptions { opts: &mut so, ctx: &cx }, &setup)?;
            so.finish()?;
            Ok(attack)
        };
        let s = attack_chain(kind, &chain, &*m, chunk, out.as_deref(), &cx.control, &mut configure)?;
        let json = s.to_json();
        if let Some(p) = summary_path {
            let bytes = serde_json::to_vec_pretty(&json).map_err(|e| Error::io(&p, e))?;
            atomic_write_bytes(&p, &bytes)?;
        }
        let mut map = Map::new();
        if let serde_json::Value::Object(fields) = json {
            for (k, v) in fields {
                let d: Dynamic = match v {
                    serde_json::Value::Bool(b) => b.into(),
                    serde_json::Value::String(s) => s.into(),
                    serde_json::Value::Number(n) if n.is_u64() => (n.as_u64().unwrap_or(0) as i64).into(),
                    serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN).into(),
                    serde_json::Value::Null => f64::NAN.into(),
                    _ => continue,
                };
                map.insert(k.into(), d);
            }
        }
        Ok(map)
    }

    /// `stream_attack` with the default options (PGD, chunks of 100,000 events, no files).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 300, seed: 1 });
    /// d.write_parquet("out/doc_stream1.parquet");
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 } });
    /// assert_eq(stream_attack(chain("out/doc_stream1.parquet"), m, u).events, 300);
    /// ```
    #[rhai_fn(return_raw, name = "stream_attack")]
    pub fn stream_attack_default(
        c: NativeCallContext,
        chain: Chain,
        m: SharedModel,
        u: UncertaintyModel,
    ) -> RhaiResult<Map> {
        stream_attack(c, chain, m, u, Map::new())
    }
}
