//! Script functions for RDSA (the marginal-preserving shuffle attack) and for the metrics
//! every attack's output can be judged by.

use rhai::plugin::*;

/// Registers `rdsa` and `attack_metrics`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(rdsa_api).into());
}

pub(crate) mod helpers {
    use ndarray::Array2;
    use rhai::{Dynamic, Map};

    use crate::attack::metrics::AttackMetrics;
    use crate::attack::{Projection, Rdsa, RdsaConfig, RdsaResult, Sampling, SubsetDraw, UncertaintyModel};
    use crate::bindings::attack::helpers::{index, project_opt, result_map};
    use crate::bindings::convert::{map, string_array};
    use crate::bindings::options::Opts;
    use crate::bindings::{Ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;

    /// Everything the `rdsa` options say, before the marginals are built.
    #[derive(Clone)]
    pub struct RdsaSpec {
        pub cfg: RdsaConfig,
        pub reference: Option<Dataset>,
        pub proj: Projection,
        pub unc: Option<UncertaintyModel>,
    }

    fn columns(func: &str, ds: &Dataset, names: Vec<String>) -> RhaiResult<Vec<usize>> {
        names.iter().map(|n| index(func, ds.names(), n)).collect()
    }

    /// Reads the RDSA options (all but `uncertainty` when `with_unc` is false) for events `ds`.
    pub fn spec(o: &mut Opts, ds: &Dataset, cx: &Ctx, with_unc: bool) -> RhaiResult<RdsaSpec> {
        let d = RdsaConfig::default();
        let func = "rdsa";
        let features = o.strings_opt("features")?.map(|f| columns(func, ds, f)).transpose()?;
        let k = o.usize_opt("k")?;
        if features.is_some() && k.is_some() {
            return Err(Error::BadOption {
                func: func.into(),
                key: "k".into(),
                problem: "and 'features' exclude each other: give a random subset size or a list".into(),
            }
            .into());
        }
        let cfg = RdsaConfig {
            k: k.unwrap_or(d.k),
            features,
            steps: o.usize("steps", d.steps)?,
            bins: o.usize("bins", d.bins)?,
            unique_threshold: o.usize("unique_threshold", d.unique_threshold)?,
            continuous: o.strings_opt("continuous")?.map(|f| columns(func, ds, f)).transpose()?,
            frozen: columns(func, ds, o.strings_opt("frozen")?.unwrap_or_default())?,
            sampling: Sampling::parse(o.choice("sampling", &["histogram", "empirical"], "histogram")?)?,
            per_class: o.choice("marginals", &["pooled", "per_class"], "pooled")? == "per_class",
            subset: match o.choice("subset", &["event", "try"], "event")? {
                "try" => SubsetDraw::PerTry,
                _ => SubsetDraw::PerEvent,
            },
            stop_at_flip: o.bool("stop_at_flip", d.stop_at_flip)?,
            seed: cx.seed_or_next(o.seed()?),
        };
        let reference = o.custom_opt::<Dataset>("reference", "a Dataset")?;
        if let Some(r) = &reference {
            if r.names() != ds.names() {
                return Err(Error::BadOption {
                    func: func.into(),
                    key: "reference".into(),
                    problem: format!(
                        "has features [{}] but the attacked events have [{}]",
                        r.names().join(", "),
                        ds.names().join(", ")
                    ),
                }
                .into());
            }
        }
        let proj = project_opt(o, ds)?;
        let unc = if with_unc { o.custom_opt::<UncertaintyModel>("uncertainty", "an Uncertainty")? } else { None };
        if let Some(u) = &unc {
            u.check_dataset(func, ds)?;
        }
        Ok(RdsaSpec { cfg, reference, proj, unc })
    }

    /// The prepared attack: marginals from the reference set (default: `ds`).
    pub fn prepare(spec: &RdsaSpec, ds: &Dataset) -> RhaiResult<Rdsa> {
        let r = spec.reference.as_ref().unwrap_or(ds);
        r.check_finite("rdsa")?;
        Ok(Rdsa::new(ds.names(), r.x(), r.label(), &spec.cfg, &spec.proj)?)
    }

    /// The attack result map plus RDSA's own numbers and per-feature `changed_*` columns.
    pub fn rdsa_map(ds: &Dataset, r: &RdsaResult) -> RhaiResult<Map> {
        let mut m = result_map(ds, &r.attack, None)?;
        let table = m.get("table").and_then(|t| t.clone().try_cast::<Dataset>()).ok_or("internal: no table")?;
        let x0 = ds.x();
        let changed: Vec<Vec<f32>> = r
            .shuffled
            .iter()
            .map(|&j| x0.column(j).iter().zip(r.attack.x.column(j)).map(|(a, b)| f32::from(u8::from(a != b))).collect())
            .collect();
        let n_changed: Vec<f32> = (0..ds.len()).map(|i| changed.iter().map(|c| c[i]).sum()).collect();
        let mut extra: Vec<(String, Vec<f32>)> = vec![("n_changed".into(), n_changed)];
        for (&j, c) in r.shuffled.iter().zip(changed) {
            extra.push((format!("changed_{}", ds.names()[j]), c));
        }
        m.insert("table".into(), Dynamic::from(append_columns(&table, extra)?));
        let n = r.attack.len() as f64;
        let mean_tries = r.attack.iters.iter().map(|&t| f64::from(t)).sum::<f64>() / n;
        let shuffled: Vec<&str> = r.shuffled.iter().map(|&j| ds.names()[j].as_str()).collect();
        m.insert("tries".into(), Dynamic::from_int(r.tries as i64));
        m.insert("mean_tries".into(), Dynamic::from_float(mean_tries));
        m.insert("try_flip_fraction".into(), Dynamic::from_float(r.try_flip_fraction()));
        m.insert("shuffled".into(), Dynamic::from_array(string_array(shuffled)));
        Ok(m)
    }

    /// `table` with more columns, built in one copy.
    fn append_columns(table: &Dataset, extra: Vec<(String, Vec<f32>)>) -> RhaiResult<Dataset> {
        let (n, d) = table.x().dim();
        let mut names = table.names().to_vec();
        let mut x = Array2::<f32>::zeros((n, d + extra.len()));
        x.slice_mut(ndarray::s![.., ..d]).assign(&table.x());
        for (c, (name, v)) in extra.into_iter().enumerate() {
            x.column_mut(d + c).assign(&ndarray::ArrayView1::from(&v[..]));
            names.push(name);
        }
        let (label, weight) = (table.label().map(<[i64]>::to_vec), table.weight().map(<[f32]>::to_vec));
        Ok(Dataset::new_unchecked_finite(names, x, label, weight)?)
    }

    /// The adversarial events of a script value: a Dataset, or an attack result map's `events`.
    pub fn adversarial_events(v: &Dynamic) -> RhaiResult<Dataset> {
        if let Some(d) = v.clone().try_cast::<Dataset>() {
            return Ok(d);
        }
        v.read_lock::<Map>().and_then(|m| m.get("events").and_then(|e| e.clone().try_cast::<Dataset>())).ok_or_else(
            || {
                Error::arg(
                    "attack_metrics",
                    format!(
                        "adversarial must be a Dataset or an attack result (a map with 'events'), got {}",
                        crate::bindings::options::type_name(v)
                    ),
                )
                .into()
            },
        )
    }

    /// The metrics as a script map (per-feature numbers as maps feature → value).
    pub fn metrics_map(names: &[String], m: &AttackMetrics) -> Map {
        let opt = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
        let per = |v: &[f64]| -> Dynamic {
            Dynamic::from_map(names.iter().zip(v).map(|(n, &x)| (n.as_str().into(), Dynamic::from_float(x))).collect())
        };
        let (jmax, jarg) = m
            .jsd
            .iter()
            .enumerate()
            .fold((f64::NEG_INFINITY, 0), |(b, bj), (j, &v)| if v > b { (v, j) } else { (b, bj) });
        map([
            ("fooling_ratio", opt(m.fooling.map(|f| f.ratio))),
            ("n_fooled", m.fooling.map_or(Dynamic::UNIT, |f| Dynamic::from_int(f.fooled as i64))),
            ("n_correct", m.fooling.map_or(Dynamic::UNIT, |f| Dynamic::from_int(f.correct as i64))),
            ("flip_fraction", Dynamic::from_float(m.flip_fraction)),
            ("accuracy_clean", opt(m.accuracy_clean)),
            ("accuracy", opt(m.accuracy_adv)),
            ("auc_clean", opt(m.auc_clean)),
            ("auc", opt(m.auc_adv)),
            ("jsd", per(&m.jsd)),
            ("max_jsd", Dynamic::from_float(jmax)),
            ("max_jsd_feature", Dynamic::from(names.get(jarg).cloned().unwrap_or_default())),
            ("mean_abs_change", per(&m.mean_abs_change)),
            ("correlation_change", Dynamic::from_float(m.correlation_change)),
        ])
    }
}

#[export_module]
pub mod rdsa_api {
    use rhai::{Dynamic, Map};

    use super::helpers;
    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::Mlp;

    /// RDSA, the Random Distribution Shuffle Attack (Saala, Flek, Jung et al., arXiv
    /// 2501.05588): per event, up to `steps` tries that redraw a random subset of `k`
    /// continuous features from their marginal distributions; the first try that changes the
    /// predicted class stops the event. Marginals are kept, correlations are broken. Returns
    /// the map of `pgd` (`events`, `table`, `flip_fraction`, `n_flipped`, `reasons`, …) plus
    /// `tries`, `mean_tries`, `try_flip_fraction` and `shuffled` (the features that may be
    /// redrawn); `table` adds `n_changed` and a `changed_<feature>` flag per shuffled feature.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `k` | int | 3 | features redrawn per event (a random subset of the shuffled ones) |
    /// | `features` | array | — | instead of `k`: redraw exactly these features in every event |
    /// | `steps` | int | 100 | tries per event (≥ 1) |
    /// | `bins` | int | 100 | histogram bins of each marginal |
    /// | `unique_threshold` | int | 100 | a feature is continuous (shuffled) with more distinct values |
    /// | `continuous` | array | — | the shuffled features, replacing the detection |
    /// | `frozen` | array | [] | features never shuffled |
    /// | `sampling` | string | "histogram" | `"histogram"`: a bin by its probability, then uniform in it; `"empirical"`: the value of a random reference event |
    /// | `marginals` | string | "pooled" | `"per_class"`: each event draws from its own class's marginals (needs labels) |
    /// | `subset` | string | "event" | `"event"`: one subset per event; `"try"`: a new subset per try |
    /// | `stop_at_flip` | bool | true | false: evaluate every try (for `try_flip_fraction`) |
    /// | `reference` | Dataset | the events | where the marginals come from (e.g. data instead of simulation) |
    /// | `project` | Projection | — | feasibility rules applied after each draw (its frozen features are never shuffled; a sentinel stays where it was and is never drawn elsewhere) |
    /// | `uncertainty` | Uncertainty | — | report the χ² of each shuffle under this model |
    /// | `seed` | int | session | seed of every draw |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2, seed: 1 }).model;
    /// let r = rdsa(m, d, #{ k: 3, steps: 20, seed: 5 });
    /// assert(r.flip_fraction > 0.05);
    /// assert(r.table["n_changed"].all(|c| c <= 3));
    /// assert_eq(r.shuffled.len, 20);
    /// ```
    ///
    /// # Reference
    /// `shared/guide/methods.md` §4.
    #[rhai_fn(return_raw, name = "rdsa")]
    pub fn rdsa(c: NativeCallContext, m: Mlp, ds: Dataset, options: Map) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("rdsa", &options);
        let spec = helpers::spec(&mut o, &ds, &cx, true)?;
        o.finish()?;
        m.check_features(&ds)?;
        ds.check_finite("rdsa")?;
        let prepared = helpers::prepare(&spec, &ds)?;
        let r = prepared.attack(&m, ds.x(), ds.label(), spec.unc.as_ref(), &cx.control)?;
        helpers::rdsa_map(&ds, &r)
    }

    /// RDSA with the reference defaults (k = 3, 100 steps, 100-bin histograms).
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 1000, seed: 1 });
    /// let m = train(mlp([11, 16, 1]), d, #{ epochs: 2, seed: 1 }).model;
    /// let r = rdsa(m, d);
    /// assert(!r.shuffled.contains("njets"));   // an integer multiplicity is not continuous
    /// ```
    #[rhai_fn(return_raw, name = "rdsa")]
    pub fn rdsa_default(c: NativeCallContext, m: Mlp, ds: Dataset) -> RhaiResult<Map> {
        rdsa(c, m, ds, Map::new())
    }

    /// How an attack changed a set of events, for any attack: `adversarial` is the attack's
    /// result map (its `events`) or a Dataset of the perturbed events, row by row the
    /// `original` ones. Returns `#{ fooling_ratio, n_fooled, n_correct, flip_fraction,
    /// accuracy, accuracy_clean, auc, auc_clean, jsd, max_jsd, max_jsd_feature,
    /// mean_abs_change, correlation_change }`: the fooling ratio counts only events the model
    /// classified correctly before (labels needed, else `()`); `jsd` is per feature the
    /// Jensen–Shannon distance (base 2) of the original and adversarial histograms over the
    /// original range; `correlation_change` = ‖C_adv − C‖_F / ‖C‖_F of the Pearson matrices.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `bins` | int | 100 | equal-width histogram bins for the JSD |
    /// | `weighted` | bool | false | weight accuracy and AUC by the event weights |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2, seed: 1 }).model;
    /// let r = rdsa(m, d, #{ steps: 20, seed: 2 });
    /// let s = attack_metrics(m, d, r, #{ bins: 50 });
    /// assert(s.fooling_ratio > 0.0 && s.accuracy < s.accuracy_clean);
    /// assert(s.max_jsd < 0.1 && s.correlation_change > 0.05);
    /// ```
    #[rhai_fn(return_raw, name = "attack_metrics")]
    pub fn attack_metrics_opts(m: Mlp, original: Dataset, adversarial: Dynamic, options: Map) -> RhaiResult<Map> {
        let mut o = Opts::new("attack_metrics", &options);
        let bins = o.usize("bins", 100)?;
        let weighted = o.bool("weighted", false)?;
        o.finish()?;
        let adv = helpers::adversarial_events(&adversarial)?;
        if adv.names() != original.names() || adv.len() != original.len() {
            return Err(Error::arg(
                "attack_metrics",
                format!(
                    "the adversarial set ({} events, features [{}]) must match the original ({} events, features [{}]) row by row",
                    adv.len(),
                    adv.names().join(", "),
                    original.len(),
                    original.names().join(", ")
                ),
            )
            .into());
        }
        m.check_features(&original)?;
        let w = if weighted { original.weight() } else { None };
        let r = crate::attack::metrics::attack_metrics(&m, original.x(), adv.x(), original.label(), w, bins)?;
        Ok(helpers::metrics_map(original.names(), &r))
    }

    /// `attack_metrics` with the default options (100 bins, unweighted).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// let s = attack_metrics(m, d, d);          // nothing changed
    /// assert_eq(s.fooling_ratio, 0.0);
    /// assert_eq(s.correlation_change, 0.0);
    /// // Any attack's result: here PGD within 0.3σ per feature.
    /// let p = attack_metrics(m, d, pgd(m, d, uncertainty(d, #{ all: #{ abs: 1.0 } }), #{ eps: 0.3 }));
    /// assert(p.fooling_ratio > 0.0 && p.mean_abs_change["x0"] <= 0.3 + 1e-6);
    /// ```
    #[rhai_fn(return_raw, name = "attack_metrics")]
    pub fn attack_metrics(m: Mlp, original: Dataset, adversarial: Dynamic) -> RhaiResult<Map> {
        attack_metrics_opts(m, original, adversarial, Map::new())
    }
}
