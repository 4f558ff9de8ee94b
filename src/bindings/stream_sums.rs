//! `stream_scores`, `stream_histogram` and `stream_cut`: per-event scores, fixed-edge
//! histograms and cuts over a chain, chunk by chunk (`crate::stream`); the result tables and
//! summary files go through the sandbox.

use rhai::plugin::*;

/// Registers the streamed scores, histograms and cuts.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(stream_sums_api).into());
}

mod helpers {
    use rhai::{Array, Dynamic, Map};
    use serde_json::Value;

    use crate::bindings::options::Opts;
    use crate::bindings::{Ctx, RhaiResult};
    use crate::error::Error;
    use crate::fsutil::atomic_write_bytes;
    use crate::stream::hist::Hist;

    /// A JSON summary as a script map (counts as ints, sums as floats, nulls as NaN; the exact
    /// sums' digits, for merging summary files, are left out).
    pub fn to_dynamic(v: &Value) -> Dynamic {
        match v {
            Value::Bool(b) => (*b).into(),
            Value::String(s) => s.clone().into(),
            Value::Number(n) if n.is_u64() => i64::try_from(n.as_u64().unwrap_or(0)).unwrap_or(i64::MAX).into(),
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN).into(),
            Value::Null => f64::NAN.into(),
            Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic).collect::<Array>()),
            Value::Object(o) => Dynamic::from_map(
                o.iter().filter(|(k, _)| *k != "exact").map(|(k, v)| (k.into(), to_dynamic(v))).collect::<Map>(),
            ),
        }
    }

    /// The chunk size, result table and summary file options every streamed function has.
    pub struct Common {
        pub chunk: usize,
        pub out: Option<std::path::PathBuf>,
        pub summary: Option<std::path::PathBuf>,
    }

    pub fn common(op: &str, cx: &Ctx, o: &mut Opts) -> RhaiResult<Common> {
        let chunk = o.usize("chunk", 100_000)?;
        if chunk == 0 {
            return Err(Error::BadOption {
                func: op.into(),
                key: "chunk".into(),
                problem: "must be at least 1".into(),
            }
            .into());
        }
        let out = o.string_opt("out")?.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        let summary = o.string_opt("summary")?.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        Ok(Common { chunk, out, summary })
    }

    /// A histogram from `edges`, or `bins` over `range` (`default_range` when given).
    pub fn hist(op: &str, o: &mut Opts, default_range: Option<(f64, f64)>) -> RhaiResult<Hist> {
        let edges = o.floats_opt("edges")?;
        let bins = o.usize_opt("bins")?;
        let range = o.range_opt("range")?;
        Ok(match edges {
            Some(e) => {
                if bins.is_some() || range.is_some() {
                    return Err(Error::arg(op, "give either `edges` or `bins` and `range`, not both").into());
                }
                Hist::new(op, e)?
            }
            None => {
                let (lo, hi) = range.or(default_range).ok_or_else(|| {
                    Error::arg(
                        op,
                        "a streamed histogram needs fixed edges: give `range: [lo, hi]` (with `bins`) or `edges`",
                    )
                })?;
                Hist::uniform(op, bins.unwrap_or(50), lo, hi)?
            }
        })
    }

    /// Writes the summary file (when asked) and returns the summary as a map.
    pub fn finish(summary: Option<&std::path::Path>, json: &Value) -> RhaiResult<Map> {
        if let Some(p) = summary {
            let bytes = serde_json::to_vec_pretty(json).map_err(|e| Error::io(p, e))?;
            atomic_write_bytes(p, &bytes)?;
        }
        Ok(to_dynamic(json).try_cast::<Map>().unwrap_or_default())
    }
}

#[export_module]
pub mod stream_sums_api {
    use rhai::Map;

    use super::helpers::*;
    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::chain::Chain;
    use crate::data::expr::Expr;
    use crate::model::SharedModel;
    use crate::stream::cut::cut_chain;
    use crate::stream::scores::scores_chain;

    /// Scores every event of a chain one chunk at a time, in bounded memory: the per-event
    /// table `out` (Parquet, one row group per chunk: `event`, `label` and `weight` when the
    /// chain has them, `score` or `score_0`, `score_1`, …) and a weighted histogram of one
    /// output with fixed edges, over all events and per class. Counts are integers and sums of
    /// weights exact, so the summary equals the in-memory one whatever the chunk size. Returns
    /// `#{ output, events, sum_weights, histogram: #{ edges, counts, sum_weights, errors,
    /// underflow, overflow, nan }, classes: #{ "0": histogram, … } }`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `chunk` | int | 100000 | events per chunk (at most; a larger row group is one chunk) |
    /// | `out` | string | none | the per-event score table (Parquet) |
    /// | `summary` | string | none | the summary (JSON, with the exact sums for merging) |
    /// | `output` | int | the last | the output histogrammed |
    /// | `bins` | int | 50 | equal-width bins over `range` |
    /// | `range` | [lo, hi] | [0, 1] | the histogram's range |
    /// | `edges` | array | — | the bin edges instead of `bins` and `range` |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 400, seed: 1 });
    /// d.write_parquet("out/doc_sscores_a.parquet");
    /// d.write_parquet("out/doc_sscores_b.parquet");
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// let s = stream_scores(chain("out/doc_sscores_*.parquet"), m, #{ chunk: 300, bins: 10,
    ///                                                              out: "out/doc_sscores.parquet" });
    /// assert_eq(s.events, 800);
    /// assert_eq(s.histogram.counts.reduce(|a, c| a + c, 0), 800);
    /// assert_eq(s.classes["0"].counts.reduce(|a, c| a + c, 0) + s.classes["1"].counts.reduce(|a, c| a + c, 0), 800);
    /// assert_eq(read_parquet("out/doc_sscores.parquet", #{ features: ["score"] }).len, 800);
    /// ```
    #[rhai_fn(return_raw, name = "stream_scores")]
    pub fn stream_scores(c: NativeCallContext, chain: Chain, m: SharedModel, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("stream_scores", &options);
        let common = common("stream_scores", &cx, &mut o)?;
        let output = o.usize_opt("output")?;
        let hist = hist("stream_scores", &mut o, Some((0.0, 1.0)))?;
        o.finish()?;
        let s = scores_chain(&chain, &*m, common.chunk, common.out.as_deref(), hist, output, &cx.control)?;
        finish(common.summary.as_deref(), &s.to_json())
    }

    /// `stream_scores` with the default options (chunks of 100,000 events, 50 bins over [0, 1],
    /// no files).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 });
    /// d.write_parquet("out/doc_sscores1.parquet");
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// assert_eq(stream_scores(chain("out/doc_sscores1.parquet"), m).histogram.counts.len, 50);
    /// ```
    #[rhai_fn(return_raw, name = "stream_scores")]
    pub fn stream_scores_default(c: NativeCallContext, chain: Chain, m: SharedModel) -> RhaiResult<Map> {
        stream_scores(c, chain, m, Map::new())
    }

    /// A weighted histogram of an expression of the chain's columns (a column name, or as
    /// `filter`'s expressions: `"x0 + 2 * x1"`) with fixed edges, one chunk at a time, in
    /// bounded memory; counts are integers and weight sums exact (histograms of parts merge
    /// into exactly the whole's). Returns `#{ edges, counts, sum_weights, errors (√Σw²),
    /// underflow, overflow, nan }`. The edges must be given: a stream cannot look at the data's
    /// range first.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `bins` | int | 50 | equal-width bins over `range` |
    /// | `range` | [lo, hi] | required without `edges` | the histogram's range |
    /// | `edges` | array | — | the bin edges instead of `bins` and `range` |
    /// | `chunk` | int | 100000 | events per chunk |
    /// | `summary` | string | none | the histogram (JSON, with the exact sums for merging) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// d.write_parquet("out/doc_shist.parquet");
    /// let h = stream_histogram(chain("out/doc_shist.parquet"), "x0", #{ bins: 10, range: [-5, 5], chunk: 128 });
    /// let whole = d.histogram("x0", #{ bins: 10, range: [-5, 5] });
    /// assert_eq(h.counts.len, 10);
    /// assert_eq(h.counts.reduce(|a, c| a + c, 0) + h.underflow + h.overflow, 500);
    /// ```
    #[rhai_fn(return_raw, name = "stream_histogram")]
    pub fn stream_histogram(c: NativeCallContext, chain: Chain, expression: &str, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("stream_histogram", &options);
        let chunk = o.usize("chunk", 100_000)?;
        let summary = o.string_opt("summary")?.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        let empty = hist("stream_histogram", &mut o, None)?;
        o.finish()?;
        let h =
            crate::stream::histogram::histogram_chain(&chain, &Expr::parse(expression)?, chunk, empty, &cx.control)?;
        finish(summary.as_deref(), &h.to_json())
    }

    /// `stream_histogram` with 50 bins over the expression's range, found by a first pass
    /// over the chain (the largest value falls in the last bin).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 300, seed: 1 }).write_parquet("out/doc_shist1.parquet");
    /// let h = stream_histogram(chain("out/doc_shist1.parquet"), "x1");
    /// assert_eq(h.counts.reduce(|a, c| a + c, 0), 300);
    /// ```
    #[rhai_fn(return_raw, name = "stream_histogram")]
    pub fn stream_histogram_default(c: NativeCallContext, chain: Chain, expression: &str) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let e = Expr::parse(expression)?;
        let (lo, hi) = crate::stream::histogram::range_chain(&chain, &e, 100_000, &cx.control)?.unwrap_or((0.0, 1.0));
        // the top edge just above the largest value, so it is counted in the last bin
        let hi = if hi > lo { hi + (hi - lo) * 1e-9 } else { lo + 1.0 };
        let empty = crate::stream::hist::Hist::uniform("stream_histogram", 50, lo, hi)?;
        let h = crate::stream::histogram::histogram_chain(&chain, &e, 100_000, empty, &cx.control)?;
        finish(None, &h.to_json())
    }

    /// A cut over a chain, one chunk at a time: the selection (as `filter`'s expressions)
    /// evaluated per event, the pass flags written to `out` (`event`, `label`, `weight`,
    /// `pass`), and the counts and weighted yields, in total and per class, with exact sums.
    /// Returns `#{ cut, events, passed, sum_weights, sum_weights_passed, efficiency,
    /// weighted_efficiency, classes: #{ "0": …, "1": … } }`.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `chunk` | int | 100000 | events per chunk |
    /// | `out` | string | none | the per-event pass flags (Parquet) |
    /// | `summary` | string | none | the yields (JSON, with the exact sums for merging) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 400, seed: 1 });
    /// d.write_parquet("out/doc_scut.parquet");
    /// let y = stream_cut(chain(["out/doc_scut.parquet", "out/doc_scut.parquet"]), "x0 > 0.5", #{ chunk: 100 });
    /// assert_eq(y.events, 800);
    /// assert_eq(y.passed, 2 * d.filter("x0 > 0.5").len);
    /// assert_eq(y.classes["0"].passed + y.classes["1"].passed, y.passed);
    /// ```
    #[rhai_fn(return_raw, name = "stream_cut")]
    pub fn stream_cut(c: NativeCallContext, chain: Chain, expression: &str, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("stream_cut", &options);
        let common = common("stream_cut", &cx, &mut o)?;
        o.finish()?;
        let s = cut_chain(&chain, &Expr::parse(expression)?, common.chunk, common.out.as_deref(), &cx.control)?;
        finish(common.summary.as_deref(), &s.to_json())
    }

    /// `stream_cut` with the default options (chunks of 100,000 events, no files).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 100, seed: 1 }).write_parquet("out/doc_scut1.parquet");
    /// let y = stream_cut(chain("out/doc_scut1.parquet"), "x0 > 100");
    /// assert_eq(y.passed, 0);
    /// ```
    #[rhai_fn(return_raw, name = "stream_cut")]
    pub fn stream_cut_default(c: NativeCallContext, chain: Chain, expression: &str) -> RhaiResult<Map> {
        stream_cut(c, chain, expression, Map::new())
    }
}
