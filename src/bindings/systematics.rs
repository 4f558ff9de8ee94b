//! Script functions for systematic uncertainties as nuisance parameters (`systematics`): the
//! `Systematics` model, `vary`, `variations` with its `Envelope` table, `plot_ratio`, and
//! `quantity` (one yield, efficiency or mean score of a sample).

use rhai::plugin::*;

/// Registers the `Systematics` and `Envelope` types and their functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<crate::systematics::Systematics>("Systematics");
    engine.register_type_with_name::<crate::systematics::Envelope>("Envelope");
    engine.register_global_module(exported_module!(systematics_api).into());
}

mod helpers {
    use rhai::{Array, Dynamic, Map};
    use serde_json::Value;

    use crate::bindings::options::{type_name, Opts};
    use crate::bindings::RhaiResult;
    use crate::data::expr::Expr;
    use crate::data::Dataset;
    use crate::error::{Error, Result};
    use crate::model::Model;
    use crate::systematics::{self as syst, Envelope, Quantities, Systematics};

    /// A script value as JSON (maps, arrays, strings, numbers, booleans, `()` as null).
    pub fn to_json(func: &str, v: &Dynamic) -> Result<Value> {
        if v.is_unit() {
            return Ok(Value::Null);
        }
        if let Ok(b) = v.as_bool() {
            return Ok(Value::Bool(b));
        }
        if let Ok(i) = v.as_int() {
            return Ok(Value::from(i));
        }
        if let Ok(f) = v.as_float() {
            return serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| Error::arg(func, format!("numbers must be finite, got {f}")));
        }
        if v.is_string() {
            return Ok(Value::String(v.to_string()));
        }
        if let Some(a) = v.read_lock::<Array>() {
            return a.iter().map(|e| to_json(func, e)).collect::<Result<Vec<_>>>().map(Value::Array);
        }
        if let Some(m) = v.read_lock::<Map>() {
            return m
                .iter()
                .map(|(k, e)| Ok((k.to_string(), to_json(func, e)?)))
                .collect::<Result<serde_json::Map<_, _>>>()
                .map(Value::Object);
        }
        Err(Error::arg(func, format!("expected maps, lists, strings and numbers, got {}", type_name(v))))
    }

    pub fn run_variations(
        data: &Dataset,
        s: &Systematics,
        model: Option<&dyn Model>,
        options: &Map,
    ) -> RhaiResult<Envelope> {
        let mut o = Opts::new("variations", options);
        let thetas = o.floats_opt("thetas")?.unwrap_or_else(|| vec![1.0, -1.0]);
        let mut regions = Vec::new();
        for (name, cut) in o.map_opt("regions")?.unwrap_or_default() {
            let cut = cut.clone().into_immutable_string().map_err(|_| Error::BadOption {
                func: "variations".into(),
                key: "regions".into(),
                problem: format!("must map names to cut strings, got {} for '{name}'", type_name(&cut)),
            })?;
            regions.push((name.to_string(), Expr::parse(&cut)?));
        }
        let working_point = o.f64_opt("working_point")?;
        let of = o.string_opt("histogram")?;
        let bins = o.usize("bins", 20)?;
        let range = o.range_opt("range")?;
        o.finish()?;
        let histogram = match of {
            None => None,
            Some(h) if h == "score" => Some((None, bins, range.unwrap_or((0.0, 1.0)))),
            Some(h) => {
                let e = Expr::parse(&h)?;
                let r = match range {
                    Some(r) => r,
                    None => syst::value_range(data, &e)?,
                };
                Some((Some(e), bins, r))
            }
        };
        let score = model.map(|m| move |d: &Dataset| syst::model_scores(m, d));
        let q = Quantities { regions, score: score.as_ref().map(|f| f as syst::ScoreFn<'_>), working_point, histogram };
        Ok(syst::variations(data, s, &thetas, &q)?)
    }

    pub fn values_map(e: &Envelope, v: &[f64]) -> Map {
        e.quantities.iter().zip(v).map(|(q, x)| (q.as_str().into(), Dynamic::from_float(*x))).collect()
    }

    /// `nuisance_attack`: reads the options, runs the attack in θ space, builds the result map.
    pub fn run_theta_attack(
        c: &crate::bindings::Ctx,
        model: &dyn Model,
        data: &Dataset,
        s: &Systematics,
        options: &Map,
    ) -> crate::bindings::RhaiResult<Map> {
        use crate::attack::{MiniFoolConfig, Minimizer, Target};
        use crate::bindings::convert::{bool_array, check_array, f64_array, map, matrix, string_array};
        use crate::systematics::{theta_attack, Method, Mode, Population, ThetaAttack, ThetaAttackConfig, ThetaSpace};
        const F: &str = "nuisance_attack";
        let mut o = Opts::new(F, options);
        let method = match o.choice("method", &["pgd", "minifool"], "pgd")? {
            "pgd" => Method::Pgd,
            _ => Method::MiniFool,
        };
        let mode = match o.choice("mode", &["event", "coherent"], "event")? {
            "event" => Mode::Event,
            _ => Mode::Coherent,
        };
        let search = mode == Mode::Coherent && method == Method::MiniFool;
        let chi2 = o.f64("chi2", if search { 25.0 } else { 1.0 })?;
        let steps = o.usize("steps", 20)?;
        let step = o.f64_opt("step")?;
        let names: Vec<String> = s.nuisances().iter().map(|n| n.name.clone()).collect();
        let free = match o.strings_opt("nuisances")? {
            None => vec![true; names.len()],
            Some(list) => {
                let mut f = vec![false; names.len()];
                for n in &list {
                    f[s.index_of(n)?] = true;
                }
                f
            }
        };
        let d = MiniFoolConfig::default();
        let minimizer = Minimizer::parse(&o.string("minimizer", "lbfgs")?)?;
        let minifool = MiniFoolConfig {
            alpha: o.f64("alpha", f64::from(d.alpha))? as f32,
            beta: o.f64("beta", f64::from(d.beta))? as f32,
            target: Target::Flip { margin: o.f64("margin", 0.5)? as f32 },
            minimizer,
            max_iters: o.usize("max_iters", d.max_iters)?,
            ..d
        };
        let kind = o.string("quantity", "yield")?;
        let (region, threshold) = (o.string_opt("region")?, o.f64_opt("threshold")?);
        let population =
            Population { quantity: quantity_of(&kind, region, threshold)?, temperature: o.f64("temperature", 0.05)? };
        let direction = if o.choice("direction", &["up", "down"], "up")? == "up" { 1.0 } else { -1.0 };
        let target = o.f64("target", 0.1)?;
        let tolerance = o.f64("tolerance", 1e-3)?;
        o.finish()?;
        let cfg = ThetaAttackConfig {
            method,
            mode,
            chi2,
            steps,
            step,
            free,
            minifool,
            population,
            direction,
            target,
            tolerance,
        };
        let space = ThetaSpace::new(model, data, s)?;
        let head = |m: &mut Map| {
            m.insert("method".into(), Dynamic::from(if method == Method::Pgd { "pgd" } else { "minifool" }));
            m.insert("mode".into(), Dynamic::from(if mode == Mode::Event { "event" } else { "coherent" }));
            m.insert("nuisances".into(), Dynamic::from_array(string_array(&names)));
        };
        let out = match theta_attack(&space, &cfg, &c.control)? {
            ThetaAttack::Event(r) => {
                let r = *r;
                let n = r.class.len();
                check_array(F, n.saturating_mul(names.len() + 6))?;
                let own = |sc: &ndarray::Array2<f32>| -> Vec<f64> {
                    (0..n)
                        .map(|i| {
                            let c = r.clean_class[i];
                            if sc.ncols() == 1 {
                                let p = f64::from(sc[[i, 0]]);
                                if c == 1 {
                                    p
                                } else {
                                    1.0 - p
                                }
                            } else {
                                f64::from(sc[[i, c as usize]])
                            }
                        })
                        .collect()
                };
                let mean_chi2 = r.chi2.iter().sum::<f64>() / n.max(1) as f64;
                let mut m = map([
                    ("theta", Dynamic::from_array(matrix(r.theta.rows().into_iter().map(|row| row.to_vec())))),
                    ("chi2", Dynamic::from_array(f64_array(r.chi2.iter().copied()))),
                    ("p_value", Dynamic::from_array(f64_array(r.p_value.iter().copied()))),
                    ("score_clean", Dynamic::from_array(f64_array(own(&r.clean_scores)))),
                    ("score", Dynamic::from_array(f64_array(own(&r.scores)))),
                    (
                        "flipped",
                        Dynamic::from_array(bool_array(r.class.iter().zip(&r.clean_class).map(|(a, b)| a != b))),
                    ),
                    ("flip_fraction", Dynamic::from_float(r.flip_fraction())),
                    ("mean_chi2", Dynamic::from_float(mean_chi2)),
                    ("data", Dynamic::from(r.data.clone())),
                    ("stopped", Dynamic::from(r.stop.as_str())),
                ]);
                if let Some((a, b)) = &r.cost {
                    m.insert("cost_start".into(), Dynamic::from_array(f64_array(a.iter().copied())));
                    m.insert("cost_end".into(), Dynamic::from_array(f64_array(b.iter().copied())));
                }
                m
            }
            ThetaAttack::Coherent(r) => {
                let pulls: Map =
                    names.iter().zip(&r.theta).map(|(n, t)| (n.as_str().into(), Dynamic::from_float(*t))).collect();
                let mut m = map([
                    ("quantity", Dynamic::from(kind.clone())),
                    ("pulls", Dynamic::from_map(pulls)),
                    ("chi2", Dynamic::from_float(r.chi2)),
                    ("p_value", Dynamic::from_float(r.p_value)),
                    ("nominal", Dynamic::from_float(r.nominal)),
                    ("value", Dynamic::from_float(r.value)),
                    ("change", Dynamic::from_float(r.value - r.nominal)),
                    ("relative_change", Dynamic::from_float(r.relative_change())),
                    ("runs", Dynamic::from_int(r.runs as i64)),
                    ("data", Dynamic::from(r.data.clone())),
                    ("stopped", Dynamic::from(r.stop.as_str())),
                ]);
                if let Some(reached) = r.reached {
                    m.insert("reached".into(), Dynamic::from_bool(reached));
                }
                m
            }
        };
        let mut out = out;
        head(&mut out);
        Ok(out)
    }

    /// A quantity from its script spelling (`quantity` and `nuisance_attack` read it alike):
    /// the threshold defaults to 0.5 for a yield or an efficiency; a mean score takes none.
    pub fn quantity_of(kind: &str, region: Option<String>, threshold: Option<f64>) -> Result<syst::Quantity> {
        let kind = syst::QuantityKind::parse(kind)?;
        let threshold = match kind {
            syst::QuantityKind::MeanScore => threshold,
            _ => Some(threshold.unwrap_or(0.5)),
        };
        let region = region.map(|r| Expr::parse(&r)).transpose()?;
        syst::Quantity::new(kind, region, threshold)
    }
}

#[export_module]
pub mod systematics_api {
    use rhai::{Array, Dynamic, Map};

    use super::helpers::{quantity_of, run_variations, to_json, values_map};
    use crate::attack::UncertaintyModel;
    use crate::bindings::convert::{f64_array, map, string_array};
    use crate::bindings::options::{type_name, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::SharedModel;
    use crate::systematics::{self as syst, Envelope, Systematics};

    /// A systematics model: named nuisance parameters θ (prior N(0, 1)), each a map with
    /// `name`, optional `prior` (`"gaussian"`, or `"lognormal"`, the default when every effect
    /// is a `norm`) and either `effects` (a list of effect maps) or one effect's keys inline.
    /// An effect map has a `kind`:
    ///
    /// - `"scale"`: `targets` (columns, or `coll.feature` for every object of a collection),
    ///   `sigma`, `relative` (false): `x → x·(1 + θσ)` relative, `x + θσ` absolute;
    /// - `"smear"`: `targets`, `sigma`, `relative`, `seed` (0): `x → x + θ·z·σ` with one fixed
    ///   N(0, 1) draw z per event (per object), the same for any thread count;
    /// - `"alternative"`: `nominal`, `up`, `down` (lists of columns), `code` (0): ±1σ columns
    ///   interpolated with HistFactory code 0 (linear), 1 (exponential), 2 (quadratic) or 4
    ///   (polynomial-exponential);
    /// - `"weight"`: `up`, `down` (weight columns; without `down` the variation is symmetrised),
    ///   `code` (4): the event weight interpolated;
    /// - `"norm"`: `size`: the weight × `(1 + size)^θ` (log-normal) or `1 + θ·size` (Gaussian).
    ///
    /// `sigma` is a number, an expression of the target's row (`"0.02 + 0.01*abs(eta)"`; for
    /// object targets over the object's features and its event's columns) or a binned table
    /// `#{ vars: ["pt", "abs(eta)"], edges: [[…], […]], values: […] }`. Every σ is evaluated on
    /// the nominal data. Derived features (`derived`, name → expression; `coll.name` for an
    /// object feature) are recomputed after every variation, in dependency order; cycles are
    /// errors. Unknown keys, σ ≤ 0 and missing columns are errors.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `derived` | map | #{} | derived features recomputed from the varied inputs, name → expression |
    ///
    /// ```rhai
    /// let s = systematics([
    ///     #{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: "0.02 + 0.01*abs(eta1)", relative: true },
    ///     #{ name: "JER", kind: "smear", targets: ["pt1"], sigma: 0.05, relative: true, seed: 1 },
    ///     #{ name: "lumi", kind: "norm", size: 0.02 },
    /// ], #{ derived: #{ m12: "sqrt(2*pt1*pt2*(cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))" } });
    /// assert_eq(s.nuisances, ["JES", "JER", "lumi"]);
    /// ```
    #[rhai_fn(return_raw, name = "systematics")]
    pub fn systematics(nuisances: Array, options: Map) -> RhaiResult<Systematics> {
        let mut o = Opts::new("systematics", &options);
        let derived = o.map_opt("derived")?;
        o.finish()?;
        let mut spec = serde_json::Map::new();
        spec.insert("nuisances".into(), to_json("systematics", &Dynamic::from_array(nuisances))?);
        if let Some(d) = derived {
            spec.insert("derived".into(), to_json("systematics", &Dynamic::from_map(d))?);
        }
        Ok(syst::from_json(&serde_json::Value::Object(spec))?)
    }

    /// A systematics model without derived features.
    ///
    /// ```rhai
    /// let s = systematics([#{ name: "shift", kind: "scale", targets: ["x0"], sigma: 0.5 }]);
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 });
    /// assert_eq(vary(d, s, #{ shift: 2 })["x0"][0], d["x0"][0] + 1.0);
    /// ```
    #[rhai_fn(return_raw, name = "systematics")]
    pub fn systematics_default(nuisances: Array) -> RhaiResult<Systematics> {
        systematics(nuisances, Map::new())
    }

    /// The per-feature uncertainty model as nuisances: one absolute shift per non-frozen
    /// feature with the feature's σ, `x → x + θ·σ(x⁰)`, one θ per feature shared by every
    /// event (the per-feature model draws an independent shift per event; correlations are
    /// not carried over).
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 50, seed: 1 });
    /// let s = systematics(uncertainty(d, #{ preset: "collider" }));
    /// assert_eq(s.nuisances.len(), 10); // njets is frozen
    /// ```
    #[rhai_fn(return_raw, name = "systematics")]
    pub fn systematics_from_uncertainty(u: UncertaintyModel) -> RhaiResult<Systematics> {
        Ok(Systematics::from_uncertainty(&u)?)
    }

    /// The names of the nuisance parameters, in order.
    #[rhai_fn(get = "nuisances", pure)]
    pub fn nuisances(s: &mut Systematics) -> Array {
        string_array(s.nuisances().iter().map(|n| n.name.as_str()))
    }

    /// The model as pretty JSON (the layout `save` writes).
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(s: &mut Systematics) -> String {
        serde_json::to_string_pretty(&syst::to_json(s)).unwrap_or_default()
    }

    /// The model as pretty JSON.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(s: &mut Systematics) -> String {
        to_string(s)
    }

    /// Saves the systematics model as JSON, atomically.
    ///
    /// ```rhai
    /// let s = systematics([#{ name: "lumi", kind: "norm", size: 0.02 }], #{ derived: #{ r: "x0 / x1" } });
    /// s.save("out/doc_syst.json");
    /// assert_eq(load_systematics("out/doc_syst.json").nuisances, ["lumi"]);
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn save(c: NativeCallContext, s: &mut Systematics, path: &str) -> RhaiResult<()> {
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(syst::save(s, &file)?)
    }

    /// Loads a systematics model saved by `save` (or written by hand in the same layout).
    ///
    /// ```rhai
    /// systematics([#{ name: "w", kind: "norm", size: 0.1 }]).save("out/doc_syst_load.json");
    /// assert_eq(load_systematics("out/doc_syst_load.json").nuisances.len(), 1);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_systematics(c: NativeCallContext, path: &str) -> RhaiResult<Systematics> {
        let file = ctx(&c)?.sandbox.check_read(path)?;
        Ok(syst::load(&file)?)
    }

    /// The dataset at θ (`#{ name: value }`; the nuisances not named stay at 0), with the
    /// derived features recomputed from the varied inputs.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: 0.02, relative: true }],
    ///     #{ derived: #{ m12: "sqrt(2*pt1*pt2*(cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))" } });
    /// let up = vary(d, s, #{ JES: 1 });
    /// // m12 ∝ √(pt1·pt2): +2 % on both gives +2 % on m12
    /// assert(abs(up["m12"][0] / vary(d, s, #{})["m12"][0] - 1.02) < 1e-4);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn vary(data: Dataset, s: Systematics, theta: Map) -> RhaiResult<Dataset> {
        let values = theta
            .iter()
            .map(|(k, v)| {
                crate::bindings::options::as_f64(v)
                    .map(|x| (k.to_string(), x))
                    .ok_or_else(|| Error::arg("vary", format!("θ of '{k}' must be a number, got {}", type_name(v))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(syst::vary(&data, &s, &s.theta(&values)?)?)
    }

    /// Each nuisance at each θ in `thetas` (the others at 0) and its effect on weighted yields
    /// in `regions` (name → cut; one region `all` when none), and with a model on the
    /// efficiency of `score > working_point` in each region and on score histograms. Returns
    /// an `Envelope`: `print` it for the table (each quantity with its change from the
    /// nominal, and the totals added in quadrature); its fields are `quantities`, `nominal`
    /// (a map quantity → value), `rows` (one map per variation: `nuisance`, `theta`, and each
    /// quantity), `envelope` (per nuisance: `nuisance`, `up` and `down` maps of the largest
    /// increase and decrease), `total` (`up` and `down` maps) and `table`; `plot_ratio` draws
    /// its histograms.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `thetas` | array | [1, -1] | the θ values of each nuisance |
    /// | `regions` | map | #{} | name → cut expression (as `filter`) |
    /// | `working_point` | float | none | score cut of the efficiencies (needs a model) |
    /// | `histogram` | string | none | expression to histogram, or `"score"` (needs a model) |
    /// | `bins` | int | 20 | bins of the histogram |
    /// | `range` | [lo, hi] | [0, 1] for the score, else the nominal range | histogram range |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 400, seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1"], sigma: 0.05, relative: true }]);
    /// let e = variations(d, s, #{ regions: #{ hard: "pt1 > 60" }, histogram: "pt1", bins: 10 });
    /// print(e);
    /// assert(e.rows[0]["yield[hard]"] > e.nominal["yield[hard]"]); // θ = +1 moves events up
    /// ```
    #[rhai_fn(return_raw, name = "variations")]
    pub fn variations(data: Dataset, s: Systematics, options: Map) -> RhaiResult<Envelope> {
        run_variations(&data, &s, None, &options)
    }

    /// An attack in nuisance space: the pulls θ of `s`'s nuisance parameters that change the
    /// classifier the most for the χ² its priors set (`χ² = Σθ²`; every prior is N(0, 1) in θ,
    /// a log-normal normalisation being `(1 + size)^θ`), with gradients through every effect
    /// and the derived features. Smearings are attacked through their fixed, seeded draws (θ
    /// scales them); weight effects change no score but move a coherent yield.
    ///
    /// `mode: "event"` gives every event its own θ, attacked for its own class: `method:
    /// "pgd"` raises the other class's logit in the ball `Σθ² ≤ chi2`; `method: "minifool"`
    /// minimises MiniFool's cost `α·Σθ²/N + β·(f_t − 0.5 − margin)²` (N attacked nuisances).
    /// `mode: "coherent"` uses one θ for the whole sample and a population `quantity` of a
    /// single-output classifier — `"yield"` (Σw over score > `threshold`, as `quantity` counts), `"efficiency"`
    /// (that over Σw) or `"mean_score"`, inside an optional `region` cut on the varied events:
    /// `"pgd"` moves it the most (`direction`) within `chi2`; `"minifool"` finds the smallest
    /// χ² whose PGD reaches a relative change `target` (bisection on √χ², up to `chi2`). The
    /// gradient of `[score > threshold]` is taken of `σ((score − threshold)/temperature)`;
    /// every reported value uses the hard cut.
    ///
    /// Per event the result has `theta` (one array per event), `chi2`, `p_value` (χ² tail with
    /// one degree of freedom per attacked nuisance), `score_clean` and `score` (of the clean
    /// class), `flipped`, `flip_fraction`, `mean_chi2` (MiniFool adds `cost_start`,
    /// `cost_end`); coherently `pulls` (name → θ), `chi2`, `p_value`, `nominal`, `value`,
    /// `change`, `relative_change` (MiniFool adds `reached`) and `runs`. Both have `data` (the
    /// events at their θ), `nuisances`, `method`, `mode` and `stopped`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `method` | string | "pgd" | `"pgd"` or `"minifool"` |
    /// | `mode` | string | "event" | `"event"` (θ per event) or `"coherent"` (one θ) |
    /// | `chi2` | float | 1 (coherent MiniFool 25) | PGD's budget Σθ² ≤ chi2; the largest χ² a coherent MiniFool searches |
    /// | `steps` | int | 20 | PGD steps (coherent MiniFool: per bisection point) |
    /// | `step` | float | 2.5·√chi2/steps | PGD step length in θ |
    /// | `nuisances` | array | all | the nuisances attacked; the others stay at 0 |
    /// | `alpha` | float | 1 | per-event MiniFool: weight of Σθ²/N |
    /// | `beta` | float | 1 | per-event MiniFool: weight of the score term |
    /// | `margin` | float | 0.5 | per-event MiniFool: target score 0.5 + margin of the other class |
    /// | `minimizer` | string | "lbfgs" | per-event MiniFool: `"lbfgs"` or `"adam"` |
    /// | `max_iters` | int | 100 | per-event MiniFool: iterations |
    /// | `quantity` | string | "yield" | coherent: `"yield"`, `"efficiency"` or `"mean_score"` |
    /// | `threshold` | float | 0.5 | coherent: the score cut `score > threshold` of yield and efficiency (a mean score takes none) |
    /// | `region` | string | all events | coherent: a cut on the varied events |
    /// | `temperature` | float | 0.05 | coherent: τ of the sigmoid surrogate of the cut |
    /// | `direction` | string | "up" | coherent PGD: `"up"` or `"down"` |
    /// | `target` | float | 0.1 | coherent MiniFool: the relative change to reach (sign = direction) |
    /// | `tolerance` | float | 0.001 | coherent MiniFool: relative precision of √χ² |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 200, seed: 1 }).derive("jets_ht", "ht - pt1 - pt2");
    /// let m = mlp([11, 8, 1], #{ features: d.features.filter(|f| f != "jets_ht"), seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1", "pt2", "jets_ht"], sigma: 0.03, relative: true }],
    ///                     #{ derived: #{ ht: "pt1 + pt2 + jets_ht" } });
    /// let r = nuisance_attack(m, d, s, #{ chi2: 4.0, steps: 5 });
    /// assert(r.chi2.all(|c| c <= 4.0 + 1e-9));
    /// let c = nuisance_attack(m, d, s, #{ mode: "coherent", quantity: "mean_score", chi2: 1.0 });
    /// assert(c.chi2 <= 1.0 + 1e-9 && c.value >= c.nominal);
    /// ```
    #[rhai_fn(return_raw, name = "nuisance_attack")]
    pub fn nuisance_attack(
        c: NativeCallContext,
        model: SharedModel,
        data: Dataset,
        s: Systematics,
        options: Map,
    ) -> RhaiResult<Map> {
        super::helpers::run_theta_attack(&ctx(&c)?, &*model, &data, &s, &options)
    }

    /// The per-event PGD in nuisance space with the default options (χ² ≤ 1, 20 steps).
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let m = mlp([11, 8, 1], #{ features: d.features, seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: 0.03, relative: true }]);
    /// let r = nuisance_attack(m, d, s);
    /// assert_eq(r.theta.len(), 100);
    /// ```
    #[rhai_fn(return_raw, name = "nuisance_attack")]
    pub fn nuisance_attack_default(
        c: NativeCallContext,
        model: SharedModel,
        data: Dataset,
        s: Systematics,
    ) -> RhaiResult<Map> {
        nuisance_attack(c, model, data, s, Map::new())
    }

    /// The variations without options: yields of all events at θ = ±1.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let e = variations(d, systematics([#{ name: "lumi", kind: "norm", size: 0.1 }]));
    /// assert(abs(e.rows[0]["yield[all]"] - 110.0) < 1e-3);
    /// ```
    #[rhai_fn(return_raw, name = "variations")]
    pub fn variations_default(data: Dataset, s: Systematics) -> RhaiResult<Envelope> {
        variations(data, s, Map::new())
    }

    /// The variations with a classifier: adds efficiencies at `working_point` and score
    /// histograms (`histogram: "score"`). Options as the form without a model.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 300, seed: 1 });
    /// let m = mlp([11, 8, 1], #{ features: d.features, seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: 0.03, relative: true }]);
    /// let e = variations(d, s, m, #{ working_point: 0.5, histogram: "score", bins: 5 });
    /// assert_eq(e.quantities, ["yield[all]", "eff[all]"]);
    /// ```
    #[rhai_fn(return_raw, name = "variations")]
    pub fn variations_model(data: Dataset, s: Systematics, model: SharedModel, options: Map) -> RhaiResult<Envelope> {
        run_variations(&data, &s, Some(&*model), &options)
    }

    /// The variations with a classifier and the default options.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let m = mlp([11, 4, 1], #{ features: d.features, seed: 1 });
    /// let e = variations(d, systematics([#{ name: "lumi", kind: "norm", size: 0.1 }]), m);
    /// assert_eq(e.rows.len(), 2);
    /// ```
    #[rhai_fn(return_raw, name = "variations")]
    pub fn variations_model_default(data: Dataset, s: Systematics, model: SharedModel) -> RhaiResult<Envelope> {
        variations_model(data, s, model, Map::new())
    }

    /// One physics quantity of `data` with the model's score (single-output classifiers):
    /// `kind: "yield"` — the weighted yield `Σ wᵢ` of the events in `region` with score >
    /// `threshold`; `"efficiency"` — that yield over the region's weighted yield;
    /// `"mean_score"` — the weighted mean score in the region (no threshold). Weights are the
    /// dataset's (1 without). The number the hidden-systematics report (`std/hidden_systematics`)
    /// compares between the clean sample, perturbed samples and the ±1σ variations. An
    /// efficiency or mean score of a region without weight is an error; a yield there is 0.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `kind` | string | — | `"yield"`, `"efficiency"` or `"mean_score"` |
    /// | `region` | string | all events | cut expression of the region (as `filter`) |
    /// | `threshold` | float | 0.5 for yields and efficiencies | the score cut `score > threshold` |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 400, seed: 1 });
    /// let m = mlp([11, 8, 1], #{ features: d.features, seed: 1 });
    /// let y = quantity(m, d, #{ kind: "yield", region: "abs(m12 - 125) < 10", threshold: 0.5 });
    /// // the same by hand: count the window's events above the cut
    /// let s = scores(m, d);
    /// let m12 = d["m12"];
    /// let n = 0;
    /// for i in 0..d.len { if abs(m12[i] - 125.0) < 10.0 && s[i] > 0.5 { n += 1; } }
    /// assert_eq(y, n.to_float());
    /// assert(quantity(m, d, #{ kind: "mean_score" }) > 0.0);
    /// ```
    #[rhai_fn(return_raw, name = "quantity")]
    pub fn quantity(model: SharedModel, data: Dataset, spec: Map) -> RhaiResult<f64> {
        let mut o = Opts::new("quantity", &spec);
        let kind = o.string_opt("kind")?.ok_or_else(|| Error::BadOption {
            func: "quantity".into(),
            key: "kind".into(),
            problem: "is required: \"yield\", \"efficiency\" or \"mean_score\"".into(),
        })?;
        let region = o.string_opt("region")?;
        let threshold = o.f64_opt("threshold")?;
        o.finish()?;
        let q = quantity_of(&kind, region, threshold)?;
        Ok(q.measure(&data, &syst::model_scores(&*model, &data)?)?)
    }

    /// The quantity names: `yield[region]`, then `eff[region]` with a working point.
    #[rhai_fn(get = "quantities", pure)]
    pub fn quantities(e: &mut Envelope) -> Array {
        string_array(&e.quantities)
    }

    /// The nominal quantities, a map quantity → value.
    #[rhai_fn(get = "nominal", pure)]
    pub fn nominal(e: &mut Envelope) -> Map {
        values_map(e, &e.nominal.values)
    }

    /// One map per variation: `nuisance`, `theta` and each quantity.
    #[rhai_fn(get = "rows", pure)]
    pub fn rows(e: &mut Envelope) -> Array {
        e.rows
            .iter()
            .map(|r| {
                let mut m = values_map(e, &r.values);
                m.insert("nuisance".into(), r.nuisance.clone().into());
                m.insert("theta".into(), Dynamic::from_float(r.theta));
                if let Some(h) = &r.hist {
                    m.insert("histogram".into(), f64_array(h.iter().copied()).into());
                }
                Dynamic::from_map(m)
            })
            .collect()
    }

    /// Per nuisance: `nuisance`, `up` and `down` (maps quantity → largest increase and
    /// decrease from the nominal over its θ values).
    #[rhai_fn(get = "envelope", pure)]
    pub fn envelope(e: &mut Envelope) -> Array {
        e.per_nuisance()
            .into_iter()
            .map(|(n, env)| {
                let up: Vec<f64> = env.iter().map(|p| p.0).collect();
                let down: Vec<f64> = env.iter().map(|p| p.1).collect();
                Dynamic::from_map(map([
                    ("nuisance", n.into()),
                    ("up", values_map(e, &up).into()),
                    ("down", values_map(e, &down).into()),
                ]))
            })
            .collect()
    }

    /// The total increase and decrease per quantity, added in quadrature over nuisances:
    /// `#{ up, down }` (maps quantity → change).
    #[rhai_fn(get = "total", pure)]
    pub fn total(e: &mut Envelope) -> Map {
        let t = e.total();
        let up: Vec<f64> = t.iter().map(|p| p.0).collect();
        let down: Vec<f64> = t.iter().map(|p| p.1).collect();
        map([("up", values_map(e, &up).into()), ("down", values_map(e, &down).into())])
    }

    /// The printable envelope table.
    #[rhai_fn(get = "table", pure)]
    pub fn table(e: &mut Envelope) -> String {
        e.to_string()
    }

    /// The printable envelope table.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn envelope_to_string(e: &mut Envelope) -> String {
        e.to_string()
    }

    /// The printable envelope table.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn envelope_to_debug(e: &mut Envelope) -> String {
        e.to_string()
    }

    /// A ratio plot of the variations' histograms (from `variations` with `histogram`): the
    /// nominal and each nuisance's up (largest θ > 0) and down (most negative θ) histograms in
    /// a main panel, their ratios to the nominal below with the envelope as a grey band;
    /// PNG or SVG by the extension.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label of the main panel |
    /// | `width` | int | 800 | image width in pixels |
    /// | `height` | int | 600 | image height in pixels |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 300, seed: 1 });
    /// let s = systematics([#{ name: "JES", kind: "scale", targets: ["pt1"], sigma: 0.05, relative: true }]);
    /// let e = variations(d, s, #{ histogram: "pt1", bins: 10, range: [30, 130] });
    /// plot_ratio("out/doc_ratio.svg", e, #{ xlabel: "pt1 [GeV]", ylabel: "events" });
    /// ```
    #[rhai_fn(return_raw, name = "plot_ratio")]
    pub fn plot_ratio(c: NativeCallContext, path: &str, e: Envelope, options: Map) -> RhaiResult<()> {
        let mut o = Opts::new("plot_ratio", &options);
        let opts = crate::bindings::plot::helpers::frame_options("plot_ratio", &mut o)?;
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(crate::plot::plot_ratio(&file, &e.ratio_series()?, &opts)?)
    }

    /// A ratio plot with the default options.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 200, seed: 1 });
    /// let s = systematics([#{ name: "lumi", kind: "norm", size: 0.05 }]);
    /// plot_ratio("out/doc_ratio.png", variations(d, s, #{ histogram: "m12", bins: 8 }));
    /// ```
    #[rhai_fn(return_raw, name = "plot_ratio")]
    pub fn plot_ratio_default(c: NativeCallContext, path: &str, e: Envelope) -> RhaiResult<()> {
        plot_ratio(c, path, e, Map::new())
    }
}
