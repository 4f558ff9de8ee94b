//! Script functions for object collections (particle-level data): listing and building
//! collections, per-object cuts, sorting, derived object features, multiplicities, and the
//! `collections` read option.

use rhai::plugin::*;

use crate::data::Collection;

/// Registers the `Collection` type and the collection functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Collection>("Collection");
    engine.register_global_module(exported_module!(collections_api).into());
}

/// The `collections` read option: `true` (default: group list columns by prefix), `false`
/// (none), or a map `#{ name: [columns…] }` / `#{ name: #{ feature: column } }`.
pub(crate) fn collection_spec(
    func: &'static str,
    v: Option<Dynamic>,
) -> crate::Result<crate::data::io::CollectionSpec> {
    use crate::bindings::options::{strings, type_name};
    use crate::data::io::CollectionSpec;
    use crate::error::Error;
    let bad = |problem: String| Error::BadOption { func: func.into(), key: "collections".into(), problem };
    let Some(v) = v else { return Ok(CollectionSpec::Auto) };
    if let Ok(b) = v.as_bool() {
        return Ok(if b { CollectionSpec::Auto } else { CollectionSpec::Off });
    }
    let Some(m) = v.read_lock::<rhai::Map>().map(|m| m.clone()) else {
        return Err(bad(format!("must be true, false or a map of collections, got {}", type_name(&v))));
    };
    let mut out = Vec::new();
    for (name, cols) in m {
        let name = name.to_string();
        let pairs: Vec<(String, String)> = if let Some(a) = cols.read_lock::<rhai::Array>() {
            let prefix = format!("{name}_");
            strings(func, "collections", &a)?
                .into_iter()
                .map(|c| (c.strip_prefix(&prefix).filter(|f| !f.is_empty()).unwrap_or(&c).to_string(), c.clone()))
                .collect()
        } else if let Some(fm) = cols.read_lock::<rhai::Map>() {
            fm.iter()
                .map(|(f, c)| {
                    c.clone().into_string().map(|c| (f.to_string(), c)).map_err(|t| {
                        bad(format!("collection '{name}': feature '{f}' must name a column (a string), got {t}"))
                    })
                })
                .collect::<Result<_, _>>()?
        } else {
            return Err(bad(format!(
                "collection '{name}' must be an array of column names or a map feature → column, got {}",
                type_name(&cols)
            )));
        };
        out.push((name, pairs));
    }
    Ok(CollectionSpec::Explicit(out))
}

#[export_module]
pub mod collections_api {
    use rhai::{Array, Map};

    use crate::bindings::convert::{check_array, f32_array, int_array, string_array};
    use crate::bindings::options::{floats, type_name, Opts};
    use crate::bindings::RhaiResult;
    use crate::data::{Collection, Dataset};
    use crate::error::Error;

    /// Names of the dataset's object collections.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[1.0], []] });
    /// assert_eq(d.collections, ["part"]);
    /// ```
    #[rhai_fn(get = "collections", pure)]
    pub fn collections(d: &mut Dataset) -> Array {
        string_array(d.collections().iter().map(Collection::name))
    }

    /// One object collection by name.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 })
    ///     .with_objects("part", #{ pt: [[5.0, 2.0], [], [1.0]], eta: [[0.1, -0.2], [], [1.5]] });
    /// let c = d.collection("part");
    /// assert_eq(c.features, ["eta", "pt"]);
    /// assert_eq(c.counts(), [2, 0, 1]);
    /// assert_eq(c.n_objects, 3);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn collection(d: &mut Dataset, name: &str) -> RhaiResult<Collection> {
        Ok(d.collection("collection", name)?.clone())
    }

    /// Adds (or replaces) an object collection built from per-event lists: a map from
    /// feature name to an array (one per event) of arrays (one number per object). Features
    /// are stored in name order; all must have the same number of objects in every event.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 })
    ///     .with_objects("mu", #{ pt: [[30.0, 12.5], [8.0]], q: [[1, -1], [1]] });
    /// assert_eq(d.collection("mu").values("pt"), [[30.0, 12.5], [8.0]]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn with_objects(d: &mut Dataset, name: &str, features: Map) -> RhaiResult<Dataset> {
        let mut cols = Vec::with_capacity(features.len());
        for (f, lists) in features {
            let Some(a) = lists.read_lock::<Array>().map(|a| a.clone()) else {
                let p = format!("feature '{f}' must be an array (one per event) of arrays, got {}", type_name(&lists));
                return Err(Error::arg("with_objects", p).into());
            };
            let mut events = Vec::with_capacity(a.len());
            for (i, e) in a.iter().enumerate() {
                let Some(objs) = e.read_lock::<Array>() else {
                    let p = format!("{f}[{i}] must be an array of numbers (the event's objects), got {}", type_name(e));
                    return Err(Error::arg("with_objects", p).into());
                };
                let what = format!("{f}[{i}]");
                events.push(floats("with_objects", &what, &objs)?.into_iter().map(|v| v as f32).collect());
            }
            cols.push((f.to_string(), events));
        }
        Ok(d.with_collection(Collection::from_lists(name, cols)?)?)
    }

    /// Removes an object collection.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1, seed: 1 }).with_objects("part", #{ pt: [[1.0]] });
    /// assert_eq(d.drop_collection("part").collections, []);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn drop_collection(d: &mut Dataset, name: &str) -> RhaiResult<Dataset> {
        Ok(d.without_collection(name)?)
    }

    /// Keeps the objects of a collection where an expression is true; every event stays,
    /// possibly with no objects. The expression language is `filter`'s: names are object
    /// features, then event columns (broadcast to the event's objects), `label` and `weight`;
    /// `dphi(a, b)` is a − b wrapped into [−π, π).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 })
    ///     .with_objects("part", #{ pt: [[5.0, 0.5, 2.0], [0.2]] });
    /// let hard = d.filter_objects("part", "pt > 1");
    /// assert_eq(hard.collection("part").values("pt"), [[5.0, 2.0], []]);
    /// assert_eq(hard.len, 2);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn filter_objects(d: &mut Dataset, collection: &str, expression: &str) -> RhaiResult<Dataset> {
        Ok(d.filter_objects(collection, expression)?)
    }

    /// Orders the objects of every event by a feature and keeps the leading ones.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `descending` | bool | true | largest first |
    /// | `keep` | int | all | objects kept per event |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 })
    ///     .with_objects("part", #{ pt: [[1.0, 7.0, 3.0], [2.0]] });
    /// let s = d.sort_objects("part", "pt", #{ descending: true, keep: 2 });
    /// assert_eq(s.collection("part").values("pt"), [[7.0, 3.0], [2.0]]);
    /// ```
    #[rhai_fn(return_raw, pure, name = "sort_objects")]
    pub fn sort_objects_opts(d: &mut Dataset, collection: &str, feature: &str, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("sort_objects", &options);
        let descending = o.bool("descending", true)?;
        let keep = o.usize_opt("keep")?;
        o.finish()?;
        Ok(d.sort_objects(collection, feature, descending, keep)?)
    }

    /// Orders the objects of every event by a feature, largest first.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1, seed: 1 }).with_objects("part", #{ pt: [[1.0, 7.0]] });
    /// assert_eq(d.sort_objects("part", "pt").collection("part").values("pt"), [[7.0, 1.0]]);
    /// ```
    #[rhai_fn(return_raw, pure, name = "sort_objects")]
    pub fn sort_objects(d: &mut Dataset, collection: &str, feature: &str) -> RhaiResult<Dataset> {
        Ok(d.sort_objects(collection, feature, true, None)?)
    }

    /// Adds (or replaces) an object feature computed from an expression over object features
    /// and event columns (see `filter_objects`): Δη and Δφ to the jet axis, log pT, pT
    /// fraction, …
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 })
    ///     .with_column("jet_phi", [3.0, 0.0]).with_column("jet_pt", [10.0, 4.0])
    ///     .with_objects("part", #{ pt: [[4.0, 6.0], [1.0]], phi: [[-3.0, 2.9], [0.5]] });
    /// let d = d.derive_objects("part", "dphi", "dphi(phi, jet_phi)")
    ///          .derive_objects("part", "frac", "pt / jet_pt")
    ///          .derive_objects("part", "logpt", "log(pt)");
    /// let dphi = d.collection("part").values("dphi");
    /// assert_close(dphi[0][0], 2 * PI() - 6.0, 1e-6);   // -3 - 3 = -6, wrapped
    /// assert_close(d.collection("part").values("frac")[0][1], 0.6, 1e-6);   // 6 / 10
    /// assert_eq(d.collection("part").values("frac")[1], [0.25]);             // 1 / 4
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn derive_objects(d: &mut Dataset, collection: &str, name: &str, expression: &str) -> RhaiResult<Dataset> {
        Ok(d.derive_objects(collection, name, expression)?)
    }

    /// Adds the number of objects per event as an event feature (`n_<collection>` unless
    /// named), optionally counting only the objects that pass a cut.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `name` | string | `"n_" + collection` | the new feature's name |
    /// | `where` | string | all objects | object expression an object must pass to count |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 })
    ///     .with_objects("part", #{ pt: [[5.0, 0.5], []], q: [[1, 0], []] });
    /// let d = d.multiplicity("part", #{ name: "n_charged", where: "q != 0" });
    /// assert_eq(d["n_charged"], [1.0, 0.0]);
    /// ```
    #[rhai_fn(return_raw, pure, name = "multiplicity")]
    pub fn multiplicity_opts(d: &mut Dataset, collection: &str, options: Map) -> RhaiResult<Dataset> {
        let mut o = Opts::new("multiplicity", &options);
        let name = o.string("name", &format!("n_{collection}"))?;
        let cut = o.string_opt("where")?;
        o.finish()?;
        Ok(d.multiplicity(collection, &name, cut.as_deref())?)
    }

    /// Adds the number of objects per event as the event feature `n_<collection>`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 }).with_objects("part", #{ pt: [[5.0, 0.5], [], [1.0]] });
    /// assert_eq(d.multiplicity("part")["n_part"], [2.0, 0.0, 1.0]);
    /// ```
    #[rhai_fn(return_raw, pure, name = "multiplicity")]
    pub fn multiplicity(d: &mut Dataset, collection: &str) -> RhaiResult<Dataset> {
        Ok(d.multiplicity(collection, &format!("n_{collection}"), None)?)
    }

    /// The collection's name.
    #[rhai_fn(get = "name", pure)]
    pub fn name(c: &mut Collection) -> String {
        c.name().to_string()
    }

    /// The object feature names.
    #[rhai_fn(get = "features", pure)]
    pub fn features(c: &mut Collection) -> Array {
        string_array(c.features())
    }

    /// Number of events.
    #[rhai_fn(get = "len", pure)]
    pub fn len(c: &mut Collection) -> i64 {
        c.n_events() as i64
    }

    /// Number of objects in all events together.
    #[rhai_fn(get = "n_objects", pure)]
    pub fn n_objects(c: &mut Collection) -> i64 {
        c.n_objects() as i64
    }

    /// Objects per event.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[1.0], []] });
    /// assert_eq(d.collection("part").counts(), [1, 0]);
    /// ```
    #[rhai_fn(pure)]
    pub fn counts(c: &mut Collection) -> Array {
        int_array(c.counts().into_iter().map(|n| n as i64))
    }

    /// One object feature per event: an array (one per event) of arrays (one per object).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[1.0, 2.0], []] });
    /// assert_eq(d.collection("part").values("pt"), [[1.0, 2.0], []]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn values(c: &mut Collection, feature: &str) -> RhaiResult<Array> {
        let v = c.values(feature)?;
        // One array per event and one element per object.
        check_array("values", v.len().saturating_add(c.offsets().len()))?;
        Ok(c.offsets().windows(2).map(|w| Dynamic::from_array(f32_array(v[w[0]..w[1]].iter().copied()))).collect())
    }

    /// One object feature of every object of every event, flat (storage order).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).with_objects("part", #{ pt: [[1.0, 2.0], [3.0]] });
    /// assert_eq(d.collection("part").flat("pt"), [1.0, 2.0, 3.0]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn flat(c: &mut Collection, feature: &str) -> RhaiResult<Array> {
        let v = c.values(feature)?;
        check_array("flat", v.len())?;
        Ok(f32_array(v.iter().copied()))
    }

    /// `Collection(part: 10166 events, 341210 objects, features pt, eta, …)`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(c: &mut Collection) -> String {
        format!(
            "Collection({}: {} events, {} objects, features {})",
            c.name(),
            c.n_events(),
            c.n_objects(),
            c.features().join(", ")
        )
    }

    /// The collection's summary (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(c: &mut Collection) -> String {
        to_string(c)
    }
}
