//! Script functions for datasets: generating, selecting, filtering,
//! splitting, standardizing, describing, histograms and correlations.

use rhai::plugin::*;

use crate::data::standardize::Standardizer;
use crate::data::stats::Histogram;
use crate::data::Dataset;

/// Registers the `Dataset` and `Standardizer` types and the dataset functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Dataset>("Dataset");
    engine.register_type_with_name::<Standardizer>("Standardizer");
    engine.register_global_module(exported_module!(data_api).into());
}

/// A histogram as a script map: `#{ edges, counts, errors, underflow, overflow }`.
pub fn histogram_map(h: &Histogram) -> rhai::Map {
    use crate::bindings::convert::{f64_array, map};
    map([
        ("edges", f64_array(h.edges.iter().copied()).into()),
        ("counts", f64_array(h.counts.iter().copied()).into()),
        ("errors", f64_array(h.sumw2.iter().map(|v| v.sqrt())).into()),
        ("underflow", h.underflow.into()),
        ("overflow", h.overflow.into()),
    ])
}

mod helpers {
    /// One value per event, or an error naming the function and both lengths.
    pub fn check_len(func: &'static str, what: &str, got: usize, n: usize) -> crate::Result<()> {
        if got == n {
            Ok(())
        } else {
            Err(crate::Error::Shape { op: func, expected: format!("{n} {what} (one per event)"), got: got.to_string() })
        }
    }
}

#[export_module]
pub mod data_api {
    use super::helpers::*;

    use rhai::{Array, Map};

    use crate::bindings::convert::{check_array, f32_array, f64_array, int_array, map, matrix, string_array};
    use crate::bindings::options::{floats, strings, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::standardize::Standardizer;
    use crate::data::{synthetic, Dataset};
    use crate::error::Error;

    /// Generates a seeded synthetic dataset: `"gaussians"` (the 20-feature reference task)
    /// or `"collider"` (a toy resonance search: two objects, their mass and ΔR, MET, jets).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `n` | int | 10000 | number of events |
    /// | `seed` | int | from the session seed | random seed |
    ///
    /// The collider's features and their default experimental uncertainties (σ = √(abs² +
    /// (rel·x)²)):
    ///
    /// | feature | unit | meaning | absolute σ | relative σ | frozen |
    /// | --- | --- | --- | --- | --- | --- |
    /// | pt1, pt2 | GeV | transverse momenta, pt1 ≥ pt2 | 0 | 2 % | no |
    /// | eta1, eta2 | – | pseudorapidities | 0.01 | 0 | no |
    /// | phi1, phi2 | rad | azimuths in [−π, π) | 0.01 | 0 | no |
    /// | m12 | GeV | invariant mass of the pair | 0 | 2 % | no |
    /// | dr12 | – | ΔR between the objects | 0.014 | 0 | no |
    /// | met | GeV | missing transverse momentum | 2 | 5 % | no |
    /// | njets | – | number of extra jets (integer) | 0 | 0 | yes |
    /// | ht | GeV | pt1 + pt2 + Σ jet pT | 0 | 3 % | no |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 200, seed: 1 });
    /// assert_eq(d.len, 200);
    /// assert(d.features.contains("m12"));
    /// ```
    #[rhai_fn(return_raw, name = "dataset")]
    pub fn dataset_opts(c: NativeCallContext, name: &str, options: Map) -> RhaiResult<Dataset> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("dataset", &options);
        let n = o.usize("n", 10_000)?;
        let seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        Ok(synthetic::generate(name, n, seed)?)
    }

    /// Generates 10,000 events of a synthetic dataset with a seed from the session.
    ///
    /// ```rhai
    /// assert_eq(dataset("gaussians").n_features, 20);
    /// ```
    #[rhai_fn(return_raw, name = "dataset")]
    pub fn dataset(c: NativeCallContext, name: &str) -> RhaiResult<Dataset> {
        dataset_opts(c, name, Map::new())
    }

    /// Number of events.
    #[rhai_fn(get = "len", pure)]
    pub fn len(d: &mut Dataset) -> i64 {
        d.len() as i64
    }

    /// Number of events (method form).
    ///
    /// ```rhai
    /// assert_eq(dataset("gaussians", #{ n: 5 }).len(), 5);
    /// ```
    #[rhai_fn(name = "len", pure)]
    pub fn len_fn(d: &mut Dataset) -> i64 {
        d.len() as i64
    }

    /// Number of features.
    #[rhai_fn(get = "n_features", pure)]
    pub fn n_features(d: &mut Dataset) -> i64 {
        d.n_features() as i64
    }

    /// Feature names, in column order.
    #[rhai_fn(get = "features", pure)]
    pub fn features(d: &mut Dataset) -> Array {
        string_array(d.names())
    }

    /// True when the dataset has a label.
    #[rhai_fn(get = "has_label", pure)]
    pub fn has_label(d: &mut Dataset) -> bool {
        d.label().is_some()
    }

    /// True when the dataset has event weights.
    #[rhai_fn(get = "has_weight", pure)]
    pub fn has_weight(d: &mut Dataset) -> bool {
        d.weight().is_some()
    }

    /// The dataset's one-line summary.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(d: &mut Dataset) -> String {
        d.summary()
    }

    /// The dataset's one-line summary (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(d: &mut Dataset) -> String {
        d.summary()
    }

    /// One feature column as an array of floats.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 });
    /// assert_eq(d.column("x0").len(), 3);
    /// assert_eq(d["x0"], d.column("x0"));
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn column(d: &mut Dataset, name: &str) -> RhaiResult<Array> {
        let c = d.column(name)?;
        check_array("column", c.len())?;
        Ok(f32_array(c.iter().copied()))
    }

    /// `d["name"]` is the column `name`.
    #[rhai_fn(index_get, return_raw, pure)]
    pub fn index_column(d: &mut Dataset, name: &str) -> RhaiResult<Array> {
        column(d, name)
    }

    /// The labels as integers (error when the dataset has none).
    ///
    /// ```rhai
    /// let y = dataset("gaussians", #{ n: 4, seed: 1 }).labels();
    /// assert_eq(y.len(), 4);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn labels(d: &mut Dataset) -> RhaiResult<Array> {
        let l = d.label().ok_or_else(|| Error::arg("labels", "the dataset has no label"))?;
        check_array("labels", l.len())?;
        Ok(int_array(l.iter().copied()))
    }

    /// The event weights (all 1.0 when the dataset has none).
    ///
    /// ```rhai
    /// assert_eq(dataset("gaussians", #{ n: 2, seed: 1 }).weights(), [1.0, 1.0]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn weights(d: &mut Dataset) -> RhaiResult<Array> {
        check_array("weights", d.len())?;
        Ok(f32_array(d.weights_or_ones()))
    }

    /// The dataset with its labels replaced: one integer class per event (`()` removes them).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 4, seed: 1 });
    /// let e = d.with_labels([1, 0, 1, 1]);
    /// assert_eq(e.labels(), [1, 0, 1, 1]);
    /// assert(!d.with_labels(()).has_label);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn with_labels(d: &mut Dataset, labels: Dynamic) -> RhaiResult<Dataset> {
        if labels.is_unit() {
            return Ok(d.with_label(None)?);
        }
        let a = labels
            .try_cast::<Array>()
            .ok_or_else(|| Error::arg("with_labels", "labels must be an array of integers or ()"))?;
        let l = a
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_int().map_err(|_| Error::arg("with_labels", format!("labels[{i}] must be an integer"))))
            .collect::<Result<Vec<i64>, _>>()?;
        check_len("with_labels", "labels", l.len(), d.len())?;
        Ok(d.with_label(Some(l))?)
    }

    /// The dataset with its event weights replaced: one finite number per event (`()` removes
    /// them).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 }).with_weights([1, 2.5, 0.5]);
    /// assert_eq(d.weights(), [1.0, 2.5, 0.5]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn with_weights(d: &mut Dataset, weights: Dynamic) -> RhaiResult<Dataset> {
        if weights.is_unit() {
            return Ok(d.with_weight(None)?);
        }
        let a = weights
            .try_cast::<Array>()
            .ok_or_else(|| Error::arg("with_weights", "weights must be an array of numbers or ()"))?;
        let w: Vec<f32> = floats("with_weights", "weights", &a)?.into_iter().map(|v| v as f32).collect();
        check_len("with_weights", "weights", w.len(), d.len())?;
        Ok(d.with_weight(Some(w))?)
    }

    /// The rows at the given indices (0-based), in that order, with their labels and weights;
    /// an index may repeat.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 10, seed: 1 });
    /// let t = d.take([9, 0, 0]);
    /// assert_eq(t.len, 3);
    /// assert_eq(t["x0"][1], d["x0"][0]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn take(d: &mut Dataset, indices: Array) -> RhaiResult<Dataset> {
        let n = d.len();
        let idx = indices
            .iter()
            .enumerate()
            .map(|(k, v)| match v.as_int() {
                Ok(i) if i >= 0 && (i as usize) < n => Ok(i as usize),
                Ok(i) => Err(Error::arg("take", format!("index {i} at position {k} is outside 0..{n}"))),
                Err(_) => Err(Error::arg("take", format!("indices[{k}] must be an integer"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(d.take_rows(&idx))
    }

    /// Keeps the listed feature columns, in the given order.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 5, seed: 1 }).select(["x3", "x1"]);
    /// assert_eq(d.features, ["x3", "x1"]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn select(d: &mut Dataset, columns: Array) -> RhaiResult<Dataset> {
        Ok(d.select(&strings("select", "columns", &columns)?)?)
    }

    /// Removes the listed feature columns.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 5, seed: 1 }).drop(["x0"]);
    /// assert_eq(d.n_features, 19);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn drop(d: &mut Dataset, columns: Array) -> RhaiResult<Dataset> {
        Ok(d.drop_columns(&strings("drop", "columns", &columns)?)?)
    }

    /// Keeps the rows where a cut expression on named columns is true — how control regions
    /// are defined. Operators: `+ - * /`, comparisons, `&&`, `||`, `!`, parentheses;
    /// functions `abs sqrt exp log sin cos tanh min max pow atan2 hypot`; `label` and
    /// `weight` refer to the label and weight.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 500, seed: 1 });
    /// let sr = d.filter("abs(m12 - 125) < 10 && njets >= 1");
    /// assert(sr.len < d.len);
    /// ```
    #[rhai_fn(return_raw, pure, name = "filter")]
    pub fn filter_expr(d: &mut Dataset, expression: &str) -> RhaiResult<Dataset> {
        Ok(d.filter_expr(expression)?)
    }

    /// Keeps the rows where `mask` (an array of booleans, one per row) is true.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 });
    /// assert_eq(d.filter([true, false, true]).len, 2);
    /// ```
    #[rhai_fn(return_raw, pure, name = "filter")]
    pub fn filter_mask(d: &mut Dataset, mask: Array) -> RhaiResult<Dataset> {
        let m: Vec<bool> = mask
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_bool().map_err(|_| {
                    Error::arg(
                        "filter",
                        format!("mask[{i}] must be true or false, got {}", crate::bindings::options::type_name(v)),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(d.filter_mask(&m)?)
    }

    /// Evaluates an expression on every row (same language as `filter`) as an array.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 });
    /// let s = d.compute("x0 + x1");
    /// assert_close(s[0], d["x0"][0] + d["x1"][0], 1e-5);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn compute(d: &mut Dataset, expression: &str) -> RhaiResult<Array> {
        let e = crate::data::expr::Expr::parse(expression)?;
        check_array("compute", d.len())?;
        Ok(f64_array(e.eval(d)?))
    }

    /// Adds (or replaces) a feature computed from an expression.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 10, seed: 1 }).derive("pt_sum", "pt1 + pt2");
    /// assert(d.features.contains("pt_sum"));
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn derive(d: &mut Dataset, name: &str, expression: &str) -> RhaiResult<Dataset> {
        Ok(d.derive(name, expression)?)
    }

    /// Adds (or replaces) a feature from an array of numbers (one per row).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_column("z", [1, 2.5]);
    /// assert_eq(d["z"], [1.0, 2.5]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn with_column(d: &mut Dataset, name: &str, values: Array) -> RhaiResult<Dataset> {
        let v: Vec<f32> = floats("with_column", "values", &values)?.into_iter().map(|x| x as f32).collect();
        Ok(d.with_column(name, v)?)
    }

    /// Renames a feature.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).rename("x0", "first");
    /// assert_eq(d.features[0], "first");
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn rename(d: &mut Dataset, from: &str, to: &str) -> RhaiResult<Dataset> {
        Ok(d.rename(from, to)?)
    }

    /// Splits into `#{ train, test }` after shuffling: `train` gets `fraction` of the rows.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `seed` | int | from the session seed | shuffling seed |
    ///
    /// ```rhai
    /// let p = dataset("gaussians", #{ n: 100, seed: 1 }).split(0.8, #{ seed: 4 });
    /// assert_eq(p.train.len, 80);
    /// assert_eq(p.test.len, 20);
    /// ```
    #[rhai_fn(return_raw, pure, name = "split")]
    pub fn split_opts(c: NativeCallContext, d: &mut Dataset, fraction: f64, options: Map) -> RhaiResult<Map> {
        let mut o = Opts::new("split", &options);
        let seed = ctx(&c)?.seed_or_next(o.seed()?);
        o.finish()?;
        let (a, b) = d.split(fraction, seed)?;
        Ok(map([("train", Dynamic::from(a)), ("test", Dynamic::from(b))]))
    }

    /// Splits into `#{ train, test }` with a seed from the session.
    ///
    /// ```rhai
    /// let p = dataset("gaussians", #{ n: 10, seed: 1 }).split(0.5);
    /// assert_eq(p.train.len + p.test.len, 10);
    /// ```
    #[rhai_fn(return_raw, pure, name = "split")]
    pub fn split(c: NativeCallContext, d: &mut Dataset, fraction: f64) -> RhaiResult<Map> {
        split_opts(c, d, fraction, Map::new())
    }

    /// The first `n` rows.
    ///
    /// ```rhai
    /// assert_eq(dataset("gaussians", #{ n: 10, seed: 1 }).head(3).len, 3);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn head(d: &mut Dataset, n: i64) -> RhaiResult<Dataset> {
        let n = usize::try_from(n).map_err(|_| Error::arg("head", format!("n must be >= 0, got {n}")))?;
        Ok(d.head(n))
    }

    /// `n` random rows.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `seed` | int | from the session seed | random seed |
    /// | `replace` | bool | false | sample with replacement (bootstrap) |
    ///
    /// ```rhai
    /// let s = dataset("gaussians", #{ n: 50, seed: 1 }).sample(10, #{ seed: 2 });
    /// assert_eq(s.len, 10);
    /// ```
    #[rhai_fn(return_raw, pure, name = "sample")]
    pub fn sample_opts(c: NativeCallContext, d: &mut Dataset, n: i64, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("sample", &options);
        let seed = ctx(&c)?.seed_or_next(o.seed()?);
        let replace = o.bool("replace", false)?;
        o.finish()?;
        let n = usize::try_from(n).map_err(|_| Error::arg("sample", format!("n must be >= 0, got {n}")))?;
        Ok(d.sample(n, seed, replace)?)
    }

    /// `n` random rows without replacement, seeded from the session.
    ///
    /// ```rhai
    /// assert_eq(dataset("gaussians", #{ n: 50, seed: 1 }).sample(5).len, 5);
    /// ```
    #[rhai_fn(return_raw, pure, name = "sample")]
    pub fn sample(c: NativeCallContext, d: &mut Dataset, n: i64) -> RhaiResult<Dataset> {
        sample_opts(c, d, n, Map::new())
    }

    /// Stacks datasets with the same features (and all or none with label and weight).
    ///
    /// ```rhai
    /// let a = dataset("gaussians", #{ n: 3, seed: 1 });
    /// assert_eq(concat([a, a]).len, 6);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn concat(parts: Array) -> RhaiResult<Dataset> {
        let ds: Vec<Dataset> = parts
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.try_cast::<Dataset>().ok_or_else(|| Error::arg("concat", format!("parts[{i}] is not a Dataset")))
            })
            .collect::<Result<_, _>>()?;
        Ok(crate::data::ops::concat(&ds)?)
    }

    /// Per-feature statistics: an array of `#{ name, count, mean, std, min, q25, median, q75,
    /// max }`, weighted with the event weights like `histogram` and `correlation` (a dataset
    /// without weights gives the plain numbers). `std` is the sample standard deviation:
    /// divisor n − 1 unweighted, V₁ − V₂/V₁ weighted (V₁ = Σw, V₂ = Σw²; reliability weights,
    /// equal to n − 1 for equal weights); quartiles interpolate linearly (numpy's rule; weighted,
    /// at positions (Sᵢ − wᵢ)/(S − wᵢ) of the cumulative weight over events with w > 0).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `weighted` | bool | true | use the event weights (if any) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1000, seed: 1 });
    /// let s = d.describe(#{ weighted: false });
    /// assert_eq(s[0].name, "x0");
    /// assert(s[0].std > 0.5);
    /// let w = d.with_weights(d["x1"].map(|v| if v > 0.0 { 2.0 } else { 1.0 })).describe();
    /// assert(w[1].mean > s[1].mean);    // events with x1 > 0 count twice
    /// ```
    #[rhai_fn(return_raw, pure, name = "describe")]
    pub fn describe_opts(d: &mut Dataset, options: Map) -> RhaiResult<Array> {
        let mut o = Opts::new("describe", &options);
        let weighted = o.bool("weighted", true)?;
        o.finish()?;
        Ok(describe_array(if weighted { d.describe_weighted() } else { d.describe() }))
    }

    /// Per-feature statistics, weighted when the dataset has event weights (see the form
    /// with options).
    ///
    /// ```rhai
    /// let s = dataset("gaussians", #{ n: 1000, seed: 1 }).describe();
    /// assert_eq(s[0].name, "x0");
    /// assert(s[0].std > 0.5);
    /// ```
    #[rhai_fn(pure)]
    pub fn describe(d: &mut Dataset) -> Array {
        describe_array(d.describe_weighted())
    }

    fn describe_array(stats: Vec<crate::data::stats::ColumnStats>) -> Array {
        stats
            .into_iter()
            .map(|s| {
                Dynamic::from_map(map([
                    ("name", s.name.into()),
                    ("count", (s.count as i64).into()),
                    ("mean", s.mean.into()),
                    ("std", s.std.into()),
                    ("min", s.min.into()),
                    ("q25", s.q25.into()),
                    ("median", s.q50.into()),
                    ("q75", s.q75.into()),
                    ("max", s.max.into()),
                ]))
            })
            .collect()
    }

    /// A (weighted) histogram of one column: `#{ edges, counts, errors, underflow, overflow }`
    /// (errors = √Σw² per bin). `"part.pt"` names the object feature `pt` of the collection
    /// `part`: one entry per object, weighted with its event's weight.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `bins` | int | 50 | number of equal-width bins |
    /// | `range` | [lo, hi] | column min..max | histogram range |
    /// | `weighted` | bool | true | use the event weights (if any) |
    ///
    /// ```rhai
    /// let h = dataset("gaussians", #{ n: 1000, seed: 1 }).histogram("x0", #{ bins: 10, range: [-5, 5] });
    /// assert_eq(h.counts.len(), 10);
    /// assert_eq(h.edges.len(), 11);
    /// ```
    #[rhai_fn(return_raw, pure, name = "histogram")]
    pub fn histogram_opts(d: &mut Dataset, column: &str, options: Map) -> RhaiResult<Map> {
        let mut o = Opts::new("histogram", &options);
        let bins = o.usize("bins", 50)?;
        let range = o.range_opt("range")?;
        let weighted = o.bool("weighted", true)?;
        o.finish()?;
        Ok(super::histogram_map(&d.histogram_any(column, bins, range, weighted)?))
    }

    /// A 50-bin histogram of one column over its range.
    ///
    /// ```rhai
    /// let h = dataset("gaussians", #{ n: 100, seed: 1 }).histogram("x1");
    /// assert_eq(h.counts.len(), 50);
    /// ```
    #[rhai_fn(return_raw, pure, name = "histogram")]
    pub fn histogram(d: &mut Dataset, column: &str) -> RhaiResult<Map> {
        histogram_opts(d, column, Map::new())
    }

    /// The Pearson correlation matrix of the features (an array of rows). A constant column
    /// has no correlation: its row and column are NaN, and a warning names it.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `weighted` | bool | true | use the event weights (if any) |
    ///
    /// ```rhai
    /// let c = dataset("gaussians", #{ n: 5000, seed: 1 }).correlation(#{});
    /// assert_close(c[0][0], 1.0, 1e-9);
    /// assert_close(c[0][1], 0.5, 0.05); // Σ01 = 0.5 for the reference task
    /// ```
    #[rhai_fn(return_raw, pure, name = "correlation")]
    pub fn correlation_opts(d: &mut Dataset, options: Map) -> RhaiResult<Array> {
        let mut o = Opts::new("correlation", &options);
        let weighted = o.bool("weighted", true)?;
        o.finish()?;
        let c = d.correlation(weighted);
        let constant: Vec<&str> =
            (0..c.nrows()).filter(|&j| c[[j, j]].is_nan()).map(|j| d.names()[j].as_str()).collect();
        if !constant.is_empty() && !d.is_empty() {
            crate::bindings::warn(&format!(
                "correlation: {} {} no spread (constant, or zero total weight): {} rows and columns are NaN",
                constant.join(", "),
                if constant.len() == 1 { "has" } else { "have" },
                if constant.len() == 1 { "its" } else { "their" }
            ));
        }
        Ok(matrix(c.rows().into_iter().map(|r| r.to_vec())))
    }

    /// The (weighted) Pearson correlation matrix of the features.
    ///
    /// ```rhai
    /// let c = dataset("gaussians", #{ n: 100, seed: 1 }).correlation();
    /// assert_eq(c.len(), 20);
    /// ```
    #[rhai_fn(return_raw, pure, name = "correlation")]
    pub fn correlation(d: &mut Dataset) -> RhaiResult<Array> {
        correlation_opts(d, Map::new())
    }

    /// Standardizes every feature to mean 0 and std 1: returns `#{ data, transform }`; the
    /// transform applies the same shift and scale to another dataset, or inverts it.
    ///
    /// ```rhai
    /// let p = dataset("collider", #{ n: 500, seed: 1 }).split(0.5, #{ seed: 1 });
    /// let s = p.train.standardize();
    /// let test = s.transform.apply(p.test);
    /// let back = s.transform.invert(test);
    /// assert_close(back["m12"][0], p.test["m12"][0], 1e-3);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn standardize(d: &mut Dataset) -> RhaiResult<Map> {
        let t = Standardizer::fit(d, true)?;
        let data = t.apply(d)?;
        Ok(map([("data", Dynamic::from(data)), ("transform", Dynamic::from(t))]))
    }

    /// Applies a fitted standardization to a dataset with the same features.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 });
    /// let t = d.standardize().transform;
    /// let z = t.apply(dataset("gaussians", #{ n: 100, seed: 2 }));
    /// assert_eq(z.len, 100);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn apply(t: &mut Standardizer, d: Dataset) -> RhaiResult<Dataset> {
        Ok(t.apply(&d)?)
    }

    /// Undoes a fitted standardization.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let s = d.standardize();
    /// assert_close(s.transform.invert(s.data)["met"][0], d["met"][0], 1e-3);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn invert(t: &mut Standardizer, d: Dataset) -> RhaiResult<Dataset> {
        Ok(t.invert(&d)?)
    }

    /// The fitted means, one per feature.
    #[rhai_fn(get = "mean", pure)]
    pub fn standardizer_mean(t: &mut Standardizer) -> Array {
        f64_array(t.mean.iter().copied())
    }

    /// The fitted standard deviations, one per feature.
    #[rhai_fn(get = "std", pure)]
    pub fn standardizer_std(t: &mut Standardizer) -> Array {
        f64_array(t.std.iter().copied())
    }

    /// `Standardizer(features=N)`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn standardizer_string(t: &mut Standardizer) -> String {
        format!("Standardizer(features={})", t.names.len())
    }

    /// `Standardizer(features=N)` (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn standardizer_debug(t: &mut Standardizer) -> String {
        standardizer_string(t)
    }
}
