//! Script function for the population-level checks (`stats::checks`): one call compares a
//! candidate sample with a reference per feature, for correlations and with a classifier
//! two-sample test, inside control regions, and returns a printable `Checks` value.

use rhai::plugin::*;

/// Registers `checks` and the `Checks` result type.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<crate::stats::CheckReport>("Checks");
    engine.register_global_module(exported_module!(checks_api).into());
}

#[export_module]
pub mod checks_api {
    use rhai::{Array, Dynamic, Map};

    use crate::bindings::convert::map;
    use crate::bindings::options::{type_name, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::stats::c2st::C2stConfig;
    use crate::stats::{CheckReport, ChecksConfig, Thresholds};

    /// Population-level checks of `candidate` (e.g. adversarial or corrected events) against
    /// `reference`: per feature the event-weighted two-sample KS test (exact p-value without
    /// weights for up to 10⁶ event pairs, else the Kolmogorov limit with effective sizes
    /// (Σw)²/Σw²), the χ² and the Jensen–Shannon distance (base 2) of histograms with `bins`
    /// bins over the reference range plus underflow/overflow bins (events that leave the range
    /// count); the relative Frobenius change and max |Δρ| of the correlation matrix; optionally
    /// a classifier two-sample test (held-out AUC of a small MLP). All of it for every event
    /// (region `all`) and inside each control region. Returns a `Checks` value: `print` it for
    /// the table; its fields are `passed`, `features` (one map per region and feature: `region`,
    /// `feature`, `ks_d`, `ks_p`, `ks_exact`, `chi2`, `ndf`, `chi2_p`, `jsd`, `passed`),
    /// `correlation` (per region: `region`, `relative`, `max_abs_delta`, `passed`), `regions`
    /// (per region: `name`, `cut`, `n_reference`, `n_candidate`, `c2st_auc`, `c2st_p`,
    /// `passed`), `failures` (every failed test as text), `max_jsd`, `c2st_auc` (region `all`,
    /// or `()`) and `table` (the text).
    ///
    /// Verdict: JSD < `jsd`, relative correlation change < `corr`, KS and χ² p-values ≥ `ks_p`
    /// and `chi2_p`, C2ST AUC ≤ `c2st_auc`; thresholds that are not given are not applied.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `features` | array | all of the reference | features to compare (the candidate must have them) |
    /// | `bins` | int | 100 | in-range bins of the χ² and JSD histograms |
    /// | `regions` | map | #{} | control regions, name → cut expression (as `filter`) |
    /// | `thresholds` | map | #{ jsd: 0.06, corr: 0.006 } | keys `jsd`, `corr`, `ks_p`, `chi2_p`, `c2st_auc` |
    /// | `weighted` | bool | true | use the event weights of the samples |
    /// | `c2st` | bool | false | run the classifier two-sample test |
    /// | `c2st_epochs` | int | 20 | training epochs of the C2ST classifier (2 hidden layers of 32) |
    /// | `seed` | int | session | seed of the C2ST split and training |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 4000, seed: 1 });
    /// let p = d.split(0.5, #{ seed: 2 });
    /// let r = checks(p.train, p.test, #{ features: ["x0", "x1", "x2"], bins: 20,
    ///                                   regions: #{ central: "abs(x0) < 1" }, c2st: true,
    ///                                   c2st_epochs: 3, thresholds: #{ jsd: 0.1, corr: 0.2 }, seed: 3 });
    /// print(r);
    /// assert(r.passed);
    /// assert_eq(r.features.len, 6);
    /// assert(r.c2st_auc < 0.6);
    /// let shifted = d.derive("x0", "x0 + 2");
    /// let c = checks(d, shifted, #{ features: ["x0"] });
    /// assert(!c.passed);
    /// assert(c.failures[0].starts_with("all/x0: JSD"));
    /// ```
    #[rhai_fn(return_raw, name = "checks")]
    pub fn checks(
        c: NativeCallContext,
        reference: Dataset,
        candidate: Dataset,
        options: Map,
    ) -> RhaiResult<CheckReport> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("checks", &options);
        let d = ChecksConfig::default();
        let features = o.strings_opt("features")?;
        let bins = o.usize("bins", d.bins)?;
        let mut regions = Vec::new();
        for (name, cut) in o.map_opt("regions")?.unwrap_or_default() {
            let cut = cut.clone().into_immutable_string().map_err(|_| Error::BadOption {
                func: "checks".into(),
                key: "regions".into(),
                problem: format!("must map names to cut strings, got {} for '{name}'", type_name(&cut)),
            })?;
            regions.push((name.to_string(), cut.to_string()));
        }
        let thresholds = match o.map_opt("thresholds")? {
            None => Thresholds::default(),
            Some(m) => {
                let t = Thresholds::default();
                let mut to = Opts::new("checks (thresholds)", &m);
                let th = Thresholds {
                    jsd: Some(to.f64("jsd", t.jsd.unwrap_or(0.06))?),
                    corr: Some(to.f64("corr", t.corr.unwrap_or(0.006))?),
                    ks_p: to.f64_opt("ks_p")?,
                    chi2_p: to.f64_opt("chi2_p")?,
                    c2st_auc: to.f64_opt("c2st_auc")?,
                };
                to.finish()?;
                th
            }
        };
        let weighted = o.bool("weighted", d.weighted)?;
        let run_c2st = o.bool("c2st", false)?;
        let epochs = o.usize("c2st_epochs", C2stConfig::default().epochs)?;
        let seed = o.seed()?;
        o.finish()?;
        let c2st = run_c2st.then(|| C2stConfig { epochs, seed: cx.seed_or_next(seed), ..C2stConfig::default() });
        let cfg = ChecksConfig { features, bins, regions, thresholds, c2st, weighted };
        Ok(crate::stats::checks(&reference, &candidate, &cfg, &cx.control)?)
    }

    /// The checks with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "checks")]
    pub fn checks_default(c: NativeCallContext, reference: Dataset, candidate: Dataset) -> RhaiResult<CheckReport> {
        checks(c, reference, candidate, Map::new())
    }

    /// True when every applied threshold holds in every region.
    #[rhai_fn(get = "passed", pure)]
    pub fn passed(r: &mut CheckReport) -> bool {
        r.passed
    }

    /// One map per (region, feature).
    #[rhai_fn(get = "features", pure)]
    pub fn features(r: &mut CheckReport) -> Array {
        r.features
            .iter()
            .map(|f| {
                Dynamic::from_map(map([
                    ("region", Dynamic::from(f.region.clone())),
                    ("feature", Dynamic::from(f.feature.clone())),
                    ("ks_d", Dynamic::from_float(f.ks.statistic)),
                    ("ks_p", Dynamic::from_float(f.ks.p_value)),
                    ("ks_exact", Dynamic::from_bool(f.ks.exact)),
                    ("chi2", Dynamic::from_float(f.chi2.chi2)),
                    ("ndf", Dynamic::from_int(f.chi2.ndf as i64)),
                    ("chi2_p", Dynamic::from_float(f.chi2.p_value)),
                    ("jsd", Dynamic::from_float(f.jsd)),
                    ("passed", Dynamic::from_bool(f.passed)),
                ]))
            })
            .collect()
    }

    /// One map per region: relative Frobenius change and max |Δρ| of the correlation matrix.
    #[rhai_fn(get = "correlation", pure)]
    pub fn correlation(r: &mut CheckReport) -> Array {
        r.correlation
            .iter()
            .map(|c| {
                Dynamic::from_map(map([
                    ("region", Dynamic::from(c.region.clone())),
                    ("relative", Dynamic::from_float(c.relative_frobenius)),
                    ("max_abs_delta", Dynamic::from_float(c.max_abs_delta)),
                    ("passed", Dynamic::from_bool(c.passed)),
                ]))
            })
            .collect()
    }

    /// One map per region: event counts and the C2ST.
    #[rhai_fn(get = "regions", pure)]
    pub fn regions(r: &mut CheckReport) -> Array {
        r.regions
            .iter()
            .map(|g| {
                Dynamic::from_map(map([
                    ("name", Dynamic::from(g.name.clone())),
                    ("cut", Dynamic::from(g.cut.clone())),
                    ("n_reference", Dynamic::from_int(g.n_reference as i64)),
                    ("n_candidate", Dynamic::from_int(g.n_candidate as i64)),
                    ("c2st_auc", g.c2st.map_or(Dynamic::UNIT, |c| Dynamic::from_float(c.auc))),
                    ("c2st_p", g.c2st.map_or(Dynamic::UNIT, |c| Dynamic::from_float(c.p_value))),
                    ("passed", Dynamic::from_bool(g.c2st_passed)),
                ]))
            })
            .collect()
    }

    /// Every failed test as a line of text (`all/m12: JSD 0.0812 ≥ 0.06`, `all: correlation
    /// change 0.0120 ≥ 0.006`, …); empty when the checks passed.
    #[rhai_fn(get = "failures", pure)]
    pub fn failures(r: &mut CheckReport) -> Array {
        crate::bindings::convert::string_array(r.failures())
    }

    /// Largest JSD over all rows.
    #[rhai_fn(get = "max_jsd", pure)]
    pub fn max_jsd(r: &mut CheckReport) -> f64 {
        r.max_jsd()
    }

    /// The C2ST AUC over all events, or `()` when the test was not run.
    #[rhai_fn(get = "c2st_auc", pure)]
    pub fn c2st_auc(r: &mut CheckReport) -> Dynamic {
        r.regions.first().and_then(|g| g.c2st).map_or(Dynamic::UNIT, |c| Dynamic::from_float(c.auc))
    }

    /// The printable table.
    #[rhai_fn(get = "table", pure)]
    pub fn table(r: &mut CheckReport) -> String {
        r.to_string()
    }

    /// The printable table.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(r: &mut CheckReport) -> String {
        r.to_string()
    }

    /// The printable table (debug form).
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(r: &mut CheckReport) -> String {
        r.to_string()
    }
}
