//! Population-level methods given a chain (`train`, `conservattack`): they need the whole
//! sample in memory, so the chain is read whole (`Chain::read_whole`) when it fits in what the
//! session's memory limit has left, and refused with an error saying so when it does not.

use rhai::plugin::*;

/// Registers the chain forms of the population-level methods.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(whole_api).into());
}

#[export_module]
pub mod whole_api {
    use rhai::Map;

    use crate::bindings::RhaiResult;
    use crate::data::chain::Chain;
    use crate::model::SharedModel;

    /// Trains on every event of a chain (options as `train` on a Dataset). Training needs the
    /// whole sample in memory: a chain larger than what the memory limit (`set_memory_limit`,
    /// `--max-memory`) has left is refused with an error saying so.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 300, seed: 1 }).write_parquet("out/doc_train_chain.parquet");
    /// let c = chain(["out/doc_train_chain.parquet", "out/doc_train_chain.parquet"]);
    /// let r = train(mlp([20, 8, 1]), c, #{ epochs: 1, seed: 1 });
    /// assert_eq(r.history.len, 1);
    /// ```
    #[rhai_fn(return_raw, name = "train")]
    pub fn train_chain_opts(c: NativeCallContext, model: SharedModel, data: Chain, options: Map) -> RhaiResult<Map> {
        let ds = data.read_whole("train")?;
        crate::bindings::model::model_api::train_opts(c, model, ds, options)
    }

    /// Trains on every event of a chain with the default options.
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 300, seed: 1 }).write_parquet("out/doc_train_chain1.parquet");
    /// let r = train(mlp([20, 8, 1]), chain("out/doc_train_chain1.parquet"));
    /// assert_eq(r.stopped, "max_iters");
    /// ```
    #[rhai_fn(return_raw, name = "train")]
    pub fn train_chain(c: NativeCallContext, model: SharedModel, data: Chain) -> RhaiResult<Map> {
        train_chain_opts(c, model, data, Map::new())
    }

    /// CONSERVAttack on every event of a chain (options as `conservattack` on a Dataset). It
    /// needs the whole sample (its histograms and correlations): a chain larger than what the
    /// memory limit has left is refused with an error saying so.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 400, seed: 1 }).select(["x0", "x1", "x2"]);
    /// d.write_parquet("out/doc_ca_chain.parquet");
    /// let m = train(mlp([3, 8, 1]), d, #{ epochs: 2, seed: 1 }).model;
    /// let r = conservattack(m, chain("out/doc_ca_chain.parquet"), #{ steps: 2, num_candidates: 10, seed: 2 });
    /// assert_eq(r.iterations.len, 2);
    /// ```
    #[rhai_fn(return_raw, name = "conservattack")]
    pub fn conservattack_chain_opts(
        c: NativeCallContext,
        m: SharedModel,
        data: Chain,
        options: Map,
    ) -> RhaiResult<Map> {
        let ds = data.read_whole("conservattack")?;
        crate::bindings::attack::attack_api::conservattack(c, m, ds, options)
    }

    /// CONSERVAttack on every event of a chain with the default options.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0", "x1"]);
    /// d.write_parquet("out/doc_ca_chain1.parquet");
    /// let m = train(mlp([2, 4, 1]), d, #{ epochs: 1, seed: 1 }).model;
    /// assert(conservattack(m, chain("out/doc_ca_chain1.parquet")).fooling_ratio >= 0.0);
    /// ```
    #[rhai_fn(return_raw, name = "conservattack")]
    pub fn conservattack_chain(c: NativeCallContext, m: SharedModel, data: Chain) -> RhaiResult<Map> {
        conservattack_chain_opts(c, m, data, Map::new())
    }
}
