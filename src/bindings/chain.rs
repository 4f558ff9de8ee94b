//! Script functions for chains: a dataset over many Parquet or ROOT files (a list of paths or
//! glob patterns), read one chunk at a time (`data::chain`); every path and every match of a
//! pattern goes through the sandbox.

use rhai::plugin::*;

use crate::data::chain::Chain;

/// Registers the `Chain` type and its functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Chain>("Chain");
    engine.register_global_module(exported_module!(chain_api).into());
}

mod helpers {
    use rhai::{Map, NativeCallContext};

    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::chain::{glob, Chain, Chunk};
    use crate::data::io::ReadOptions;
    use crate::error::Error;

    /// Opens a chain over the files the patterns name, in order (each pattern's matches sorted).
    pub fn open(c: &NativeCallContext, patterns: &[String], o: &Map) -> RhaiResult<Chain> {
        let mut r = Opts::new("chain", o);
        let mut opts = ReadOptions {
            features: r.strings_opt("features")?,
            label: r.string_opt("label")?,
            weight: r.string_opt("weight")?,
            no_label: r.bool("no_label", false)?,
            no_weight: r.bool("no_weight", false)?,
            drop_nonfinite: false,
            tree: r.string_opt("tree")?,
            interrupt: None,
            collections: crate::bindings::collections::collection_spec("chain", r.raw("collections"))?,
        };
        r.finish()?;
        let cx = ctx(c)?;
        opts.interrupt = Some(cx.control.interrupt.clone());
        let mut files = Vec::new();
        for p in patterns {
            files.extend(glob::expand(&cx.sandbox, p)?);
            crate::limits::check("chain", "files", files.len(), crate::limits::CHAIN_FILES)?;
        }
        Ok(Chain::open(&files, &opts)?.sharded(cx.shard))
    }

    /// Chunk `k` of chunks of at most `size` events, or an error giving the count.
    pub fn chunk(ch: &Chain, k: i64, size: i64) -> RhaiResult<Chunk> {
        let chunks = ch.chunks(chunk_size(size)?)?;
        let n = chunks.len();
        usize::try_from(k).ok().and_then(|k| chunks.into_iter().nth(k)).ok_or_else(|| {
            Error::arg("read_chunk", format!("chunk {k} asked for; the chain has {n} (0 to {})", n as i64 - 1)).into()
        })
    }

    /// A chunk size from a script: a positive integer.
    pub fn chunk_size(size: i64) -> RhaiResult<usize> {
        usize::try_from(size).ok().filter(|&s| s > 0).ok_or_else(|| {
            Error::arg("chain", format!("the chunk size must be a positive number of events, got {size}")).into()
        })
    }
}

#[export_module]
pub mod chain_api {
    use super::helpers::*;

    use rhai::{Array, Map};

    use crate::bindings::convert::string_array;
    use crate::bindings::options::strings;
    use crate::bindings::RhaiResult;
    use crate::data::chain::{Chain, Format};
    use crate::data::Dataset;

    /// A chain: one dataset over many Parquet or ROOT files with the same columns, read a
    /// chunk at a time. `files` is a path or a glob pattern (`*`, `?`, `[a-z]` in any path
    /// component; the matches in byte order of their paths). Every file must have exactly
    /// the columns of the first, with the same types (otherwise an error names the file);
    /// only the files' metadata is read here. The column roles are chosen on the first file
    /// with the rules of `read_parquet` / `read_root` and kept for every chunk.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array of strings | all float columns | the feature columns, in order |
    /// | `label` | string | `"label"` if present | integer class column |
    /// | `weight` | string | `"weight"` if present | event weight column |
    /// | `no_label` | bool | false | do not pick up a `label` column |
    /// | `no_weight` | bool | false | do not pick up a `weight` column |
    /// | `tree` | string | the only TTree | ROOT: the TTree to read |
    /// | `collections` | bool or map | true | list columns → object collections, as for `read_parquet` |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// d.write_parquet("out/doc_chain_a.parquet");
    /// d.write_parquet("out/doc_chain_b.parquet");
    /// let c = chain("out/doc_chain_[ab].parquet", #{ features: ["x1", "x0"] });
    /// assert_eq(c.len, 200);
    /// assert_eq(c.features, ["x1", "x0"]);
    /// ```
    #[rhai_fn(return_raw, name = "chain")]
    pub fn chain_opts(c: NativeCallContext, files: &str, options: Map) -> RhaiResult<Chain> {
        open(&c, &[files.to_string()], &options)
    }

    /// A chain over a path or glob pattern with the default column rules.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain1_0.parquet");
    /// dataset("gaussians", #{ n: 20, seed: 2 }).write_parquet("out/doc_chain1_1.parquet");
    /// assert_eq(chain("out/doc_chain1_*.parquet").len, 50);
    /// ```
    #[rhai_fn(return_raw, name = "chain")]
    pub fn chain_default(c: NativeCallContext, files: &str) -> RhaiResult<Chain> {
        open(&c, &[files.to_string()], &Map::new())
    }

    /// A chain over a list of paths or glob patterns, in that order (options as for the
    /// one-pattern form).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain2_a.parquet");
    /// dataset("gaussians", #{ n: 20, seed: 2 }).write_parquet("out/doc_chain2_b.parquet");
    /// let c = chain(["out/doc_chain2_b.parquet", "out/doc_chain2_a.parquet"], #{ no_weight: true });
    /// assert_eq(c.n_files, 2);
    /// assert_eq(c.read_chunk(0, 1000).len, 20);
    /// ```
    #[rhai_fn(return_raw, name = "chain")]
    pub fn chain_list_opts(c: NativeCallContext, files: Array, options: Map) -> RhaiResult<Chain> {
        open(&c, &strings("chain", "files", &files)?, &options)
    }

    /// A chain over a list of paths or glob patterns with the default column rules.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain3.parquet");
    /// assert_eq(chain(["out/doc_chain3.parquet", "out/doc_chain3.parquet"]).len, 60);
    /// ```
    #[rhai_fn(return_raw, name = "chain")]
    pub fn chain_list(c: NativeCallContext, files: Array) -> RhaiResult<Chain> {
        open(&c, &strings("chain", "files", &files)?, &Map::new())
    }

    /// The shard this run works on: `#{ index, count }` (`nuisance run --shard I/N` gives
    /// `#{ index: I, count: N }`; an unsharded run `#{ index: 0, count: 1 }`). In a sharded
    /// run every chain reads only the shard's share of its files and row groups (contiguous
    /// ranges of the chain, chosen by position, never by chunk size), every event keeps its
    /// position in the whole chain, and every file the script writes gets the shard's tag
    /// before its extension (`out/flips.parquet` → `out/flips.shard-1-of-4.parquet`; reading
    /// that path back in the same run reads the shard's copy). `nuisance merge` joins the
    /// shards' files.
    ///
    /// ```rhai
    /// let s = shard();
    /// assert_eq(s.count, 1);
    /// assert_eq(s.index, 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn shard(c: NativeCallContext) -> crate::bindings::RhaiResult<Map> {
        let cx = crate::bindings::ctx(&c)?;
        let mut m = Map::new();
        m.insert("index".into(), (cx.shard.index as i64).into());
        m.insert("count".into(), (cx.shard.count as i64).into());
        Ok(m)
    }

    /// Events in all files of the chain (in a sharded run: in the shard's share).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_len.parquet");
    /// assert_eq(chain("out/doc_chain_len.parquet").len, 30);
    /// ```
    #[rhai_fn(get = "len", pure)]
    pub fn len(ch: &mut Chain) -> i64 {
        ch.events() as i64
    }

    /// Number of files in the chain.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_nf.parquet");
    /// assert_eq(chain(["out/doc_chain_nf.parquet"]).n_files, 1);
    /// ```
    #[rhai_fn(get = "n_files", pure)]
    pub fn n_files(ch: &mut Chain) -> i64 {
        ch.files().len() as i64
    }

    /// The chain's files (resolved paths), in chain order.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_files.parquet");
    /// let f = chain("out/doc_chain_files.parquet").files;
    /// assert(f[0].ends_with("doc_chain_files.parquet"));
    /// ```
    #[rhai_fn(get = "files", pure)]
    pub fn files(ch: &mut Chain) -> Array {
        string_array(ch.files().iter().map(|f| f.path.display().to_string()))
    }

    /// The feature names every chunk has.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_feat.parquet");
    /// assert(chain("out/doc_chain_feat.parquet").features.contains("x0"));
    /// ```
    #[rhai_fn(get = "features", pure)]
    pub fn features(ch: &mut Chain) -> Array {
        string_array(ch.names())
    }

    /// The files' format: `"parquet"` or `"root"`.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_fmt.parquet");
    /// assert_eq(chain("out/doc_chain_fmt.parquet").format, "parquet");
    /// ```
    #[rhai_fn(get = "format", pure)]
    pub fn format(ch: &mut Chain) -> String {
        match ch.format() {
            Format::Parquet => "parquet".into(),
            Format::Root => "root".into(),
        }
    }

    /// Number of chunks of at most `size` events: consecutive Parquet row groups of one file
    /// (a larger row group is a chunk alone; files written by nuisance have row groups of
    /// 131,072 rows), or one whole ROOT file.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_nc.parquet");
    /// let c = chain(["out/doc_chain_nc.parquet", "out/doc_chain_nc.parquet"]);
    /// assert_eq(c.n_chunks(1000), 2);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn n_chunks(ch: &mut Chain, size: i64) -> RhaiResult<i64> {
        Ok(ch.chunks(chunk_size(size)?)?.len() as i64)
    }

    /// Reads chunk `k` (from 0) of the chunks of at most `size` events, as a Dataset; only
    /// that chunk's row groups are read.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_rc.parquet");
    /// let c = chain(["out/doc_chain_rc.parquet", "out/doc_chain_rc.parquet"]);
    /// let total = 0;
    /// for k in 0..c.n_chunks(1000) { total += c.read_chunk(k, 1000).len; }
    /// assert_eq(total, c.len);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn read_chunk(ch: &mut Chain, k: i64, size: i64) -> RhaiResult<Dataset> {
        let chunk = chunk(ch, k, size)?;
        Ok(ch.read(&chunk)?)
    }

    /// Position in the chain of the first event of chunk `k` of at most `size` events.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_fe.parquet");
    /// let c = chain(["out/doc_chain_fe.parquet", "out/doc_chain_fe.parquet"]);
    /// assert_eq(c.first_event(1, 1000), 30);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn first_event(ch: &mut Chain, k: i64, size: i64) -> RhaiResult<i64> {
        Ok(chunk(ch, k, size)?.first_event as i64)
    }

    /// Reads the whole chain into one Dataset (it must fit in the memory budget).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 30, seed: 1 }).write_parquet("out/doc_chain_all.parquet");
    /// let d = chain(["out/doc_chain_all.parquet", "out/doc_chain_all.parquet"]).read();
    /// assert_eq(d.len, 60);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn read(ch: &mut Chain) -> RhaiResult<Dataset> {
        Ok(ch.read_all()?)
    }
}
