//! Script functions for RDSA (the marginal-preserving shuffle attack) and for the metrics
//! every attack's output can be judged by.

use rhai::plugin::*;

/// Registers `rdsa` and `attack_metrics`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(rdsa_api).into());
}

pub(crate) mod helpers {
    use rhai::{Dynamic, Map};

    use crate::attack::metrics::AttackMetrics;
    use crate::bindings::convert::map;
    use crate::bindings::RhaiResult;
    use crate::data::Dataset;
    use crate::error::Error;

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
        let (jmax, jarg) = m.max_jsd();
        map([
            ("fooling_ratio", opt(m.fooling.map(|f| f.ratio))),
            ("n_fooled", m.fooling.map_or(Dynamic::UNIT, |f| Dynamic::from_int(f.fooled as i64))),
            ("n_correct", m.fooling.map_or(Dynamic::UNIT, |f| Dynamic::from_int(f.correct as i64))),
            ("flip_fraction", Dynamic::from_float(m.flip_fraction)),
            ("clean_accuracy", opt(m.accuracy_clean)),
            ("adv_accuracy", opt(m.accuracy_adv)),
            ("clean_auc", opt(m.auc_clean)),
            ("adv_auc", opt(m.auc_adv)),
            // The old names, kept for one release (deprecated).
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
    use crate::attack::UncertaintyModel;
    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::SharedModel;

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
    pub fn rdsa(c: NativeCallContext, m: SharedModel, ds: Dataset, options: Map) -> RhaiResult<Map> {
        crate::bindings::attack::helpers::run_attack(&ctx(&c)?, "rdsa", &*m, &ds, None, &options)
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
    pub fn rdsa_default(c: NativeCallContext, m: SharedModel, ds: Dataset) -> RhaiResult<Map> {
        rdsa(c, m, ds, Map::new())
    }

    /// RDSA reporting each shuffle's χ² under the uncertainty model `u`, passed as for every
    /// other attack (the `uncertainty` option of the form without `u` does the same). Options
    /// as `rdsa`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1, seed: 1 }).model;
    /// let r = rdsa(m, d, uncertainty(d, #{ all: #{ abs: 1.0 } }), #{ steps: 10, seed: 2 });
    /// assert(r.table["chi2"].all(|c| c >= 0.0));
    /// ```
    #[rhai_fn(return_raw, name = "rdsa")]
    pub fn rdsa_unc(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        crate::bindings::attack::helpers::run_attack(&ctx(&c)?, "rdsa", &*m, &ds, Some(&u), &options)
    }

    /// RDSA with χ² under `u` and the default options.
    #[rhai_fn(return_raw, name = "rdsa")]
    pub fn rdsa_unc_default(c: NativeCallContext, m: SharedModel, ds: Dataset, u: UncertaintyModel) -> RhaiResult<Map> {
        rdsa_unc(c, m, ds, u, Map::new())
    }

    /// How an attack changed a set of events, for any attack: `adversarial` is the attack's
    /// result map (its `events`) or a Dataset of the perturbed events, row by row the
    /// `original` ones. Returns `#{ fooling_ratio, n_fooled, n_correct, flip_fraction,
    /// clean_accuracy, adv_accuracy, clean_auc, adv_auc, jsd, max_jsd, max_jsd_feature,
    /// mean_abs_change, correlation_change }` (`accuracy_clean`, `accuracy`, `auc_clean` and
    /// `auc` are the old names of the accuracies and AUCs, kept for one release): the fooling ratio counts only events the model
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
    /// assert(s.fooling_ratio > 0.0 && s.adv_accuracy < s.clean_accuracy);
    /// assert(s.max_jsd < 0.1 && s.correlation_change > 0.05);
    /// ```
    #[rhai_fn(return_raw, name = "attack_metrics")]
    pub fn attack_metrics_opts(
        m: SharedModel,
        original: Dataset,
        adversarial: Dynamic,
        options: Map,
    ) -> RhaiResult<Map> {
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
        let (x0, x1) = (m.inputs(&original)?, m.inputs(&adv)?);
        let w = if weighted { original.weight() } else { None };
        let r = crate::attack::metrics::attack_metrics(&*m, x0.view(), x1.view(), original.label(), w, bins)?;
        Ok(helpers::metrics_map(&m.input_names(), &r))
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
    pub fn attack_metrics(m: SharedModel, original: Dataset, adversarial: Dynamic) -> RhaiResult<Map> {
        attack_metrics_opts(m, original, adversarial, Map::new())
    }
}
