//! Script functions that read and write dataset files: Parquet, CSV, ROOT (and `read`, which
//! picks the reader by extension), and `write_parquet`; every path goes through the sandbox.

use rhai::plugin::*;

/// Registers the file functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(files_api).into());
}

mod helpers {
    use std::path::Path;

    use rhai::{Map, NativeCallContext};

    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::io::{self, ReadOptions};
    use crate::data::Dataset;

    pub fn read_options(func: &'static str, o: &Map, root: bool) -> RhaiResult<ReadOptions> {
        let mut r = Opts::new(func, o);
        let opts = ReadOptions {
            features: r.strings_opt("features")?,
            label: r.string_opt("label")?,
            weight: r.string_opt("weight")?,
            no_label: r.bool("no_label", false)?,
            no_weight: r.bool("no_weight", false)?,
            drop_nonfinite: r.bool("drop_nonfinite", false)?,
            tree: if root { r.string_opt("tree")? } else { None },
            interrupt: None,
            collections: if func == "read_csv" {
                Default::default()
            } else {
                crate::bindings::collections::collection_spec(func, r.raw("collections"))?
            },
        };
        r.finish()?;
        Ok(opts)
    }

    pub fn read_with(
        c: &NativeCallContext,
        func: &'static str,
        path: &str,
        o: &Map,
        reader: fn(&Path, &ReadOptions) -> crate::Result<(Dataset, io::ReadReport)>,
    ) -> RhaiResult<Dataset> {
        let mut opts = read_options(func, o, func == "read_root" || func == "read")?;
        let cx = ctx(c)?;
        let file = cx.sandbox.check_read(path)?;
        opts.interrupt = Some(cx.control.interrupt.clone());
        let (ds, report) = reader(&file, &opts)?;
        if report.dropped_nonfinite > 0 {
            let note = format!("note: {func} dropped {} row(s) with NaN/Inf from '{path}'", report.dropped_nonfinite);
            c.call_native_fn::<()>("print", (note,))?;
        }
        Ok(ds)
    }
}

#[export_module]
pub mod files_api {
    use super::helpers::*;

    use rhai::Map;

    use crate::bindings::{ctx, RhaiResult};
    use crate::data::io;
    use crate::data::Dataset;

    /// Reads a Parquet file (as pandas/pyarrow write it) into a Dataset.
    ///
    /// By default every floating-point column is a feature, a column named `label` is the
    /// label and a column named `weight` the event weight; integer and boolean columns become
    /// features only when listed.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array of strings | all float columns | the feature columns, in order |
    /// | `label` | string | `"label"` if present | integer class column |
    /// | `weight` | string | `"weight"` if present | event weight column |
    /// | `no_label` | bool | false | do not pick up a `label` column |
    /// | `no_weight` | bool | false | do not pick up a `weight` column |
    /// | `drop_nonfinite` | bool | false | drop rows with NaN/Inf instead of failing |
    /// | `collections` | bool or map | true | list columns → object collections: `true` groups them by prefix (`part_pt`, `part_eta` → `part`), `false` reads none, `#{ part: ["part_pt", …] }` or `#{ part: #{ pt: "part_pt" } }` names them |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// d.write_parquet("out/doc_read.parquet");
    /// let back = read_parquet("out/doc_read.parquet", #{ features: ["x0", "x1"] });
    /// assert_eq(back.n_features, 2);
    /// assert_eq(back.len, 100);
    /// ```
    #[rhai_fn(return_raw, name = "read_parquet")]
    pub fn read_parquet_opts(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<Dataset> {
        read_with(&c, "read_parquet", path, &options, io::read_parquet)
    }

    /// Reads a Parquet file with the default column rules (see the options form).
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 50, seed: 1 }).write_parquet("out/doc_read2.parquet");
    /// assert_eq(read_parquet("out/doc_read2.parquet").len, 50);
    /// ```
    #[rhai_fn(return_raw, name = "read_parquet")]
    pub fn read_parquet(c: NativeCallContext, path: &str) -> RhaiResult<Dataset> {
        read_with(&c, "read_parquet", path, &Map::new(), io::read_parquet)
    }

    /// Reads a CSV file with a header row (options as for `read_parquet`).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array of strings | all float columns | the feature columns, in order |
    /// | `label` | string | `"label"` if present | integer class column |
    /// | `weight` | string | `"weight"` if present | event weight column |
    /// | `no_label` | bool | false | do not pick up a `label` column |
    /// | `no_weight` | bool | false | do not pick up a `weight` column |
    /// | `drop_nonfinite` | bool | false | drop rows with NaN/Inf instead of failing |
    ///
    /// ```rhai,no_run
    /// let d = read_csv("events.csv", #{ label: "is_signal" });
    /// ```
    #[rhai_fn(return_raw, name = "read_csv")]
    pub fn read_csv_opts(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<Dataset> {
        read_with(&c, "read_csv", path, &options, io::read_csv)
    }

    /// Reads a CSV file with a header row.
    ///
    /// ```rhai,no_run
    /// let d = read_csv("events.csv");
    /// ```
    #[rhai_fn(return_raw, name = "read_csv")]
    pub fn read_csv(c: NativeCallContext, path: &str) -> RhaiResult<Dataset> {
        read_with(&c, "read_csv", path, &Map::new(), io::read_csv)
    }

    /// Reads flat numeric branches of a ROOT TTree, and jagged ones (counted `float x[n]`
    /// arrays, `std::vector<T>`) as object collections. Options as for `read_parquet`, plus
    /// `tree` (the TTree name; required when the file holds several).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array of strings | all float columns | the feature columns, in order |
    /// | `label` | string | `"label"` if present | integer class column |
    /// | `weight` | string | `"weight"` if present | event weight column |
    /// | `no_label` | bool | false | do not pick up a `label` column |
    /// | `no_weight` | bool | false | do not pick up a `weight` column |
    /// | `drop_nonfinite` | bool | false | drop rows with NaN/Inf instead of failing |
    /// | `tree` | string | the only TTree | the TTree to read |
    /// | `collections` | bool or map | true | jagged branches → object collections, as in `read_parquet` (counted `x[n]` arrays and `std::vector` branches) |
    ///
    /// ```rhai,no_run
    /// let d = read_root("tests/data/uproot-HZZ.root", #{ features: ["MET_px", "MET_py"] });
    /// ```
    ///
    /// ```rhai
    /// let d = read_root("tests/data/uproot_jagged.root", #{ collections: #{ part: ["part_pt", "part_eta"] } });
    /// assert_eq(d.collections, ["part"]);
    /// assert_eq(d.collection("part").features, ["pt", "eta"]);
    /// assert_eq(d.collection("part").counts(), [2, 0, 3, 1, 0]);
    /// ```
    #[rhai_fn(return_raw, name = "read_root")]
    pub fn read_root_opts(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<Dataset> {
        read_with(&c, "read_root", path, &options, io::read_root)
    }

    /// Reads the flat numeric branches (and jagged ones, as collections) of the only TTree of
    /// a ROOT file.
    ///
    /// ```rhai,no_run
    /// let d = read_root("tests/data/uproot-HZZ.root");
    /// ```
    #[rhai_fn(return_raw, name = "read_root")]
    pub fn read_root(c: NativeCallContext, path: &str) -> RhaiResult<Dataset> {
        read_with(&c, "read_root", path, &Map::new(), io::read_root)
    }

    /// Reads Parquet, CSV or ROOT, chosen by the file extension (options as for each reader;
    /// `tree` only for ROOT).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array of strings | all float columns | the feature columns, in order |
    /// | `label` | string | `"label"` if present | integer class column |
    /// | `weight` | string | `"weight"` if present | event weight column |
    /// | `no_label` | bool | false | do not pick up a `label` column |
    /// | `no_weight` | bool | false | do not pick up a `weight` column |
    /// | `drop_nonfinite` | bool | false | drop rows with NaN/Inf instead of failing |
    /// | `tree` | string | the only TTree | ROOT: the TTree to read |
    /// | `collections` | bool or map | true | Parquet/ROOT: list columns or jagged branches → object collections, as in `read_parquet` |
    ///
    /// ```rhai
    /// dataset("gaussians", #{ n: 20, seed: 2 }).write_parquet("out/doc_any.parquet");
    /// assert_eq(read("out/doc_any.parquet", #{}).len, 20);
    /// ```
    #[rhai_fn(return_raw, name = "read")]
    pub fn read_any(c: NativeCallContext, path: &str, options: Map) -> RhaiResult<Dataset> {
        read_with(&c, "read", path, &options, io::read_any)
    }

    /// Reads a dataset, its format from the extension, with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "read")]
    pub fn read_any_default(c: NativeCallContext, path: &str) -> RhaiResult<Dataset> {
        read_any(c, path, Map::new())
    }

    /// Writes the dataset to Parquet (features float32, `label` int64, `weight` float32),
    /// atomically, under an allowed write path.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 10, seed: 3 });
    /// d.write_parquet("out/doc_write.parquet");
    /// assert_eq(read_parquet("out/doc_write.parquet").features, d.features);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn write_parquet(c: NativeCallContext, d: &mut Dataset, path: &str) -> RhaiResult<()> {
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(io::write_parquet(&file, d)?)
    }
}
