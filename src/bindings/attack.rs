//! Script functions for uncertainty models, projections and attacks (FGSM, PGD, MiniFool,
//! s-scans).

use rhai::plugin::*;

use crate::attack::{Projection, UncertaintyModel};

/// Registers the `Uncertainty` and `Projection` types and the attack functions.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<UncertaintyModel>("Uncertainty");
    engine.register_type_with_name::<Projection>("Projection");
    engine.register_global_module(exported_module!(attack_api).into());
}

pub(crate) mod helpers {
    use ndarray::Array2;
    use rhai::{Array, Dynamic, Map};

    use crate::attack::{
        collider_model, column_std, split_covariance, FeatureSigma, Outcome, Projection, Purpose, Rule, Scan, Setup,
        Summary, UncertaintyModel,
    };
    use crate::bindings::convert::f64_array;
    use crate::bindings::options::{as_f64, floats, type_name, Opts, ScriptOptions};
    use crate::bindings::{Ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::model::Model;

    fn bad(func: &str, problem: String) -> Box<rhai::EvalAltResult> {
        Error::arg(func, problem).into()
    }

    /// One feature's σ from `#{ abs, rel, floor, frozen, std_fraction }`.
    fn sigma_spec(map: &Map, std: f32, base: FeatureSigma) -> RhaiResult<FeatureSigma> {
        let mut o = Opts::new("uncertainty (feature)", map);
        let frozen = o.bool("frozen", base.frozen)?;
        let mut s = FeatureSigma {
            absolute: o.f64("abs", f64::from(base.absolute))? as f32,
            relative: o.f64("rel", f64::from(base.relative))? as f32,
            floor: o.f64("floor", f64::from(base.floor))? as f32,
            frozen,
        };
        if let Some(f) = o.f64_opt("std_fraction")? {
            s.absolute = (f as f32) * std;
        }
        o.finish()?;
        Ok(s)
    }

    /// The column of feature `name`; the error suggests the nearest name and lists them all.
    pub(crate) fn index(func: &str, names: &[String], name: &str) -> RhaiResult<usize> {
        names.iter().position(|n| n == name).ok_or_else(|| {
            let near = crate::error::nearest(name, names.iter().map(String::as_str));
            let hint = near.map_or(String::new(), |m| format!(" (did you mean '{m}'?)"));
            bad(func, format!("unknown feature '{name}'{hint}; the dataset has: {}", names.join(", ")))
        })
    }

    /// The values of object feature `name` (`coll.feature`) of `ds`, when it names one.
    pub(crate) fn object_values<'a>(ds: &'a Dataset, name: &str) -> Option<&'a [f32]> {
        let (c, f) = name.split_once('.')?;
        ds.collections().iter().find(|x| x.name() == c)?.values(f).ok()
    }

    /// The column of feature `name`, or an error that explains object features have no
    /// correlations (they are uncorrelated by construction).
    fn corr_index(ds: &Dataset, names: &[String], name: &str) -> RhaiResult<usize> {
        if object_values(ds, name).is_some() {
            return Err(bad(
                "uncertainty",
                format!("'{name}' is an object feature; object features are uncorrelated (correlations are among the dataset's event features only)"),
            ));
        }
        index("uncertainty", names, name)
    }

    fn matrix(func: &str, what: &str, a: &Array, d: usize) -> RhaiResult<Vec<Vec<f64>>> {
        if a.len() != d {
            return Err(bad(func, format!("{what} must have {d} rows (one per listed feature), got {}", a.len())));
        }
        a.iter()
            .map(|row| match row.read_lock::<Array>() {
                Some(r) if r.len() == d => Ok(floats(func, what, &r)?),
                _ => Err(bad(func, format!("{what} must be a {d} × {d} array of arrays of numbers"))),
            })
            .collect()
    }

    /// The full correlation matrix from `correlation`, `groups` and `covariance` entries.
    fn correlation(
        o: &mut Opts,
        ds: &Dataset,
        names: &[String],
        specs: &mut [FeatureSigma],
    ) -> RhaiResult<Option<Array2<f64>>> {
        let d = names.len();
        let mut rho = Array2::<f64>::eye(d);
        let mut any = false;
        let set_block = |feats: &[String], m: &[Vec<f64>], rho: &mut Array2<f64>| -> RhaiResult<()> {
            let idx: Vec<usize> = feats.iter().map(|f| corr_index(ds, names, f)).collect::<RhaiResult<_>>()?;
            for (a, &i) in idx.iter().enumerate() {
                for (b, &j) in idx.iter().enumerate() {
                    rho[[i, j]] = m[a][b];
                }
            }
            Ok(())
        };
        if let Some(c) = o.map_opt("correlation")? {
            let mut co = Opts::new("uncertainty correlation", &c);
            let feats = co.strings_opt("features")?.unwrap_or_default();
            let m = co.custom_opt::<Array>("matrix", "an array of rows")?.unwrap_or_default();
            co.finish()?;
            let m = matrix("uncertainty", "correlation matrix", &m, feats.len())?;
            set_block(&feats, &m, &mut rho)?;
            any = true;
        }
        if let Some(c) = o.map_opt("covariance")? {
            let mut co = Opts::new("uncertainty covariance", &c);
            let feats = co.strings_opt("features")?.unwrap_or_default();
            let m = co.custom_opt::<Array>("matrix", "an array of rows")?.unwrap_or_default();
            co.finish()?;
            let m = matrix("uncertainty", "covariance matrix", &m, feats.len())?;
            let cov = Array2::from_shape_fn((feats.len(), feats.len()), |(i, j)| m[i][j]);
            let (sd, r) = split_covariance(&feats, &cov, &vec![false; feats.len()])?;
            let r: Vec<Vec<f64>> = r.rows().into_iter().map(|row| row.to_vec()).collect();
            for (f, v) in feats.iter().zip(&sd) {
                let i = corr_index(ds, names, f)?;
                specs[i] = FeatureSigma::absolute(*v as f32);
            }
            set_block(&feats, &r, &mut rho)?;
            any = true;
        }
        if let Some(groups) = o.raw("groups") {
            let groups = groups
                .try_cast::<Array>()
                .ok_or_else(|| bad("uncertainty", "groups must be an array of #{ features: [...], rho: r }".into()))?;
            for g in groups {
                let gm = g
                    .try_cast::<Map>()
                    .ok_or_else(|| bad("uncertainty", "each group must be #{ features: [...], rho: r }".into()))?;
                let mut go = Opts::new("uncertainty group", &gm);
                let feats = go.strings_opt("features")?.unwrap_or_default();
                let r = go.f64("rho", 0.0)?;
                go.finish()?;
                let m: Vec<Vec<f64>> = (0..feats.len())
                    .map(|i| (0..feats.len()).map(|j| if i == j { 1.0 } else { r }).collect())
                    .collect();
                set_block(&feats, &m, &mut rho)?;
                any = true;
            }
        }
        Ok(any.then_some(rho))
    }

    /// An uncertainty model from a dataset's features and a spec map. `features` and `frozen`
    /// may also name object features `coll.feature` (σ for set models); `all` and the preset
    /// cover the dataset's event features only.
    pub fn uncertainty(ds: &Dataset, spec: &Map) -> RhaiResult<UncertaintyModel> {
        let names = ds.names().to_vec();
        let mut o = Opts::new("uncertainty", spec);
        let std = column_std(ds);
        let mut specs: Vec<FeatureSigma> = match o.string_opt("preset")?.as_deref() {
            Some("collider") => collider_model(&names)?.specs().to_vec(),
            Some(p) => return Err(bad("uncertainty", format!("unknown preset \"{p}\"; available: \"collider\""))),
            None => vec![FeatureSigma::absolute(0.0); names.len()],
        };
        if let Some(def) = o.map_opt("all")? {
            for (s, &sd) in specs.iter_mut().zip(&std) {
                *s = sigma_spec(&def, sd, *s)?;
            }
        }
        // Object features (`coll.feature`): their σ, in the order given.
        let mut objects: Vec<(String, FeatureSigma)> = Vec::new();
        if let Some(per) = o.map_opt("features")? {
            for (name, v) in per {
                let obj = object_values(ds, name.as_str()).filter(|_| !names.iter().any(|n| n == name.as_str()));
                let (std_i, base) = match obj {
                    Some(values) => (object_std(values), FeatureSigma::absolute(0.0)),
                    None => {
                        let i = index("uncertainty", &names, name.as_str())?;
                        (std[i], specs[i])
                    }
                };
                let m = v.clone().try_cast::<Map>();
                let spec = match (m, as_f64(&v)) {
                    (Some(m), _) => sigma_spec(&m, std_i, base)?,
                    (None, Some(a)) => FeatureSigma::absolute(a as f32),
                    _ => {
                        return Err(bad(
                            "uncertainty",
                            format!("feature '{name}': expected a number (absolute σ) or a map, got {}", type_name(&v)),
                        ))
                    }
                };
                match obj {
                    Some(_) => objects.push((name.to_string(), spec)),
                    None => specs[index("uncertainty", &names, name.as_str())?] = spec,
                }
            }
        }
        for f in o.strings_opt("frozen")?.unwrap_or_default() {
            if object_values(ds, &f).is_some() && !names.contains(&f) {
                objects.push((f, FeatureSigma::frozen()));
            } else {
                specs[index("uncertainty", &names, &f)?] = FeatureSigma::frozen();
            }
        }
        let rho = correlation(&mut o, ds, &names, &mut specs)?;
        let scale = o.f64("scale", 1.0)?;
        o.finish()?;
        let mut m = UncertaintyModel::new(names, specs)?;
        if let Some(rho) = rho {
            m = m.with_correlation(rho)?;
        }
        for (name, spec) in objects {
            m = m.with_object_sigma(&name, spec)?;
        }
        Ok(m.with_scale(scale)?)
    }

    /// Standard deviation of object feature values (for `std_fraction`).
    fn object_std(v: &[f32]) -> f32 {
        if v.is_empty() {
            return 0.0;
        }
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt() as f32
    }

    /// A projection from `#{ clip, clip_to_data, integer, sentinel, frozen }`. Rules may name
    /// object features `coll.feature` (for set models: applied to each real object).
    pub fn projection(ds: &Dataset, spec: &Map) -> RhaiResult<Projection> {
        let mut names = ds.names().to_vec();
        let events = names.len();
        // An object feature named by a rule gets a name after the event features.
        let at = |names: &mut Vec<String>, name: &str| -> RhaiResult<usize> {
            if let Some(i) = names.iter().position(|n| n == name) {
                return Ok(i);
            }
            if object_values(ds, name).is_some() {
                names.push(name.to_string());
                return Ok(names.len() - 1);
            }
            index("projection", &names[..events], name)
        };
        let mut o = Opts::new("projection", spec);
        let mut rules = Vec::new();
        if o.bool("clip_to_data", false)? {
            rules.extend(Rule::clip_to_data(ds.x()));
        }
        if let Some(clip) = o.map_opt("clip")? {
            for (name, v) in clip {
                let feature = at(&mut names, name.as_str())?;
                let pair = v.clone().try_cast::<Array>().filter(|a| a.len() == 2).ok_or_else(|| {
                    bad("projection", format!("clip of '{name}' must be [min, max] (() for no bound)"))
                })?;
                let bound = |d: &Dynamic, inf: f32| if d.is_unit() { Some(inf) } else { as_f64(d).map(|v| v as f32) };
                match (bound(&pair[0], f32::NEG_INFINITY), bound(&pair[1], f32::INFINITY)) {
                    (Some(lo), Some(hi)) => rules.push(Rule::Clip { feature, lo, hi }),
                    _ => return Err(bad("projection", format!("clip of '{name}' must be numbers or ()"))),
                }
            }
        }
        for f in o.strings_opt("integer")?.unwrap_or_default() {
            rules.push(Rule::Integer { feature: at(&mut names, &f)? });
        }
        if let Some(sent) = o.map_opt("sentinel")? {
            for (name, v) in sent {
                let feature = at(&mut names, name.as_str())?;
                let value =
                    as_f64(&v).ok_or_else(|| bad("projection", format!("sentinel of '{name}' must be a number")))?;
                rules.push(Rule::Sentinel { feature, value: value as f32 });
            }
        }
        for f in o.strings_opt("frozen")?.unwrap_or_default() {
            rules.push(Rule::Frozen { feature: at(&mut names, &f)? });
        }
        o.finish()?;
        Ok(Projection::with_objects(names, events, rules)?)
    }

    /// Checks model, dataset and uncertainty agree.
    pub fn check(op: &'static str, m: &dyn Model, ds: &Dataset, u: &UncertaintyModel) -> RhaiResult<()> {
        u.check_dataset(op, ds)?;
        m.check_features(ds)?;
        ds.check_finite(op)?;
        Ok(())
    }

    /// Runs the registered attack `name` on `ds` for a script call: checks, options (through
    /// the attack's own reader), the run, and the result map.
    pub fn run_attack(
        cx: &Ctx,
        name: &'static str,
        m: &dyn Model,
        ds: &Dataset,
        u: Option<&UncertaintyModel>,
        options: &Map,
    ) -> RhaiResult<Map> {
        let entry = crate::attack::lookup(name).ok_or_else(|| Error::arg(name, "not a registered attack"))?;
        if let Some(u) = u {
            u.check_dataset(name, ds)?;
        }
        let x = m.inputs(ds)?;
        ds.check_finite(name)?;
        let mut o = Opts::new(name, options);
        let setup = Setup { model: m, events: ds, unc: u, purpose: Purpose::Script };
        let attack = (entry.configure)(&mut ScriptOptions { opts: &mut o, ctx: cx }, &setup)?;
        o.finish()?;
        let out = attack.run(m, x.view(), ds.label(), &cx.control)?;
        outcome_map(m, ds, &out)
    }

    /// The script result of an attack: perturbed events, a table with per-event outputs (and
    /// the attack's own columns), and summary numbers (and the attack's own).
    pub fn outcome_map(m: &dyn Model, ds: &Dataset, out: &Outcome) -> RhaiResult<Map> {
        let r = &out.attack;
        let events = m.with_inputs(ds, r.x.clone())?;
        let mut names = events.names().to_vec();
        let mut cols: Vec<Vec<f32>> = Vec::new();
        let k = r.score_before.ncols();
        for (tag, s) in [("score_before", &r.score_before), ("score_after", &r.score_after)] {
            for j in 0..k {
                names.push(if k == 1 { tag.to_string() } else { format!("{tag}_{j}") });
                cols.push(s.column(j).to_vec());
            }
        }
        let flipped = r.flipped();
        names.extend(["class_before", "class_after", "flipped"].map(String::from));
        cols.push(r.class_before.iter().map(|&c| c as f32).collect());
        cols.push(r.class_after.iter().map(|&c| c as f32).collect());
        cols.push(flipped.iter().map(|&f| f32::from(u8::from(f))).collect());
        // Attacks without an uncertainty model (RDSA) have no χ²: no columns for it.
        if r.chi2.iter().any(|c| c.is_finite()) {
            names.extend(["chi2", "p_value"].map(String::from));
            cols.push(r.chi2.iter().map(|&c| c as f32).collect());
            cols.push(r.p_value.iter().map(|&c| c as f32).collect());
            // A set model's χ² has its own degrees of freedom per event (real objects only).
            if m.set_layout().is_some() {
                names.push("dof".into());
                cols.push(r.dof.iter().map(|&k| k as f32).collect());
            }
        }
        names.push("iterations".into());
        cols.push(r.iters.iter().map(|&c| c as f32).collect());
        for (name, col) in &out.columns {
            names.push(name.clone());
            cols.push(col.clone());
        }
        let n = r.len();
        if let Some((name, c)) = names[events.n_features()..].iter().zip(&cols).find(|(_, c)| c.len() != n) {
            return Err(Error::Shape {
                op: "attack",
                expected: format!("{n} values in column '{name}'"),
                got: format!("{}", c.len()),
            }
            .into());
        }
        let d0 = events.n_features();
        let ex = events.x();
        let x = Array2::from_shape_fn((n, names.len()), |(i, j)| if j < d0 { ex[[i, j]] } else { cols[j - d0][i] });
        let table = Dataset::new(names, x, ds.label().map(|l| l.to_vec()), ds.weight().map(|w| w.to_vec()))?;
        let n_flipped = flipped.iter().filter(|f| **f).count();
        let mut reason_map = Map::new();
        for (k, v) in r.reason_counts() {
            reason_map.insert(k.into(), Dynamic::from_int(v as i64));
        }
        let mut m = Map::new();
        m.insert("events".into(), Dynamic::from(events));
        m.insert("table".into(), Dynamic::from(table));
        m.insert("flip_fraction".into(), Dynamic::from_float(r.flip_fraction()));
        m.insert("n_flipped".into(), Dynamic::from_int(n_flipped as i64));
        m.insert("stopped".into(), Dynamic::from(r.stop.as_str().to_string()));
        m.insert("reasons".into(), Dynamic::from_map(reason_map));
        m.insert("median_chi2_flipped".into(), Dynamic::from_float(r.median_chi2_flipped()));
        for (key, v) in &out.summary {
            let v = match v {
                Summary::Int(i) => Dynamic::from_int(*i),
                Summary::Float(f) => Dynamic::from_float(*f),
                Summary::Names(n) => Dynamic::from_array(crate::bindings::convert::string_array(n)),
                Summary::Floats(v) => Dynamic::from_array(f64_array(v.iter().copied())),
                Summary::Table(names, rows) => {
                    if let Some(r) = rows.iter().find(|r| r.len() != names.len()) {
                        return Err(Error::Shape {
                            op: "attack",
                            expected: format!("rows of {} values in the '{key}' table", names.len()),
                            got: format!("{}", r.len()),
                        }
                        .into());
                    }
                    let x = Array2::from_shape_fn((rows.len(), names.len()), |(i, j)| rows[i][j] as f32);
                    Dynamic::from(Dataset::new_unchecked_finite(names.clone(), x, None, None)?)
                }
            };
            m.insert((*key).into(), v);
        }
        Ok(m)
    }

    /// The scan table as a Dataset (one row per s) plus s_flip.
    pub fn scan_map(scan: &Scan) -> RhaiResult<Map> {
        let mut names: Vec<String> = ["s", "flip_fraction", "flip_fraction_err", "n", "median_chi2_flipped", "stalled"]
            .map(String::from)
            .to_vec();
        let labelled = scan.rows.first().is_some_and(|r| r.correct.is_some());
        let k = scan.rows.first().map_or(0, |r| r.by_class.len());
        if labelled {
            names.extend(
                [
                    "flip_fraction_correct",
                    "flip_fraction_correct_err",
                    "n_correct",
                    "flip_fraction_incorrect",
                    "flip_fraction_incorrect_err",
                    "n_incorrect",
                ]
                .map(String::from),
            );
            for c in 0..k {
                names.extend([format!("flip_fraction_class{c}"), format!("flip_fraction_class{c}_err")]);
            }
        }
        let rows: Vec<Vec<f32>> = scan
            .rows
            .iter()
            .map(|r| {
                let mut v = vec![
                    r.s as f32,
                    r.all.p as f32,
                    r.all.err as f32,
                    r.all.n as f32,
                    r.median_chi2_flipped as f32,
                    r.stalled as f32,
                ];
                if let (Some(c), Some(i)) = (r.correct, r.incorrect) {
                    v.extend([c.p, c.err, c.n as f64, i.p, i.err, i.n as f64].map(|x| x as f32));
                    for f in &r.by_class {
                        v.extend([f.p as f32, f.err as f32]);
                    }
                }
                v
            })
            .collect();
        let x = Array2::from_shape_fn((rows.len(), names.len()), |(i, j)| rows[i].get(j).copied().unwrap_or(f32::NAN));
        let table = Dataset::new_unchecked_finite(names, x, None, None)?;
        let mut m = Map::new();
        m.insert("table".into(), Dynamic::from(table));
        m.insert("s".into(), Dynamic::from_array(f64_array(scan.rows.iter().map(|r| r.s))));
        m.insert("flip_fraction".into(), Dynamic::from_array(f64_array(scan.rows.iter().map(|r| r.all.p))));
        m.insert("flip_fraction_err".into(), Dynamic::from_array(f64_array(scan.rows.iter().map(|r| r.all.err))));
        let stalled = scan.rows.iter().map(|r| Dynamic::from_int(r.stalled as i64)).collect();
        m.insert("stalled".into(), Dynamic::from_array(stalled));
        if labelled {
            let get = |f: fn(&crate::attack::ScanRow) -> Option<crate::attack::Fraction>| {
                f64_array(scan.rows.iter().map(move |r| f(r).map_or(f64::NAN, |x| x.p)))
            };
            let err = |f: fn(&crate::attack::ScanRow) -> Option<crate::attack::Fraction>| {
                f64_array(scan.rows.iter().map(move |r| f(r).map_or(f64::NAN, |x| x.err)))
            };
            m.insert("flip_fraction_correct".into(), Dynamic::from_array(get(|r| r.correct)));
            m.insert("flip_fraction_correct_err".into(), Dynamic::from_array(err(|r| r.correct)));
            m.insert("flip_fraction_incorrect".into(), Dynamic::from_array(get(|r| r.incorrect)));
            m.insert("flip_fraction_incorrect_err".into(), Dynamic::from_array(err(|r| r.incorrect)));
        }
        // The old names, kept for one release (deprecated).
        for (old, new) in [
            ("flip", "flip_fraction"),
            ("flip_err", "flip_fraction_err"),
            ("flip_correct", "flip_fraction_correct"),
            ("flip_correct_err", "flip_fraction_correct_err"),
            ("flip_incorrect", "flip_fraction_incorrect"),
            ("flip_incorrect_err", "flip_fraction_incorrect_err"),
        ] {
            if let Some(v) = m.get(new).cloned() {
                m.insert(old.into(), v);
            }
        }
        m.insert("s_flip".into(), Dynamic::from_array(f64_array(scan.s_flip.iter().copied())));
        Ok(m)
    }
}

#[export_module]
pub mod attack_api {
    use rhai::{Array, Dynamic, Map};

    use super::helpers;
    use crate::attack::{Projection, Purpose, Setup, UncertaintyModel};
    use crate::bindings::convert::{bool_array, f64_array, string_array};
    use crate::bindings::options::{floats, Opts, ScriptOptions};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::model::SharedModel;

    /// An uncertainty model over the features of `ds`. Every feature that is not frozen needs
    /// a σ > 0: give one for `all` and override per feature.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `all` | map | — | σ of every feature: `#{ abs, rel, floor, std_fraction, frozen }` |
    /// | `features` | map | — | per feature: a number (absolute σ) or a map as `all` |
    /// | `frozen` | array | [] | features never perturbed |
    /// | `correlation` | map | — | `#{ features: [...], matrix: [[...]] }` correlation of listed features |
    /// | `covariance` | map | — | `#{ features, matrix }` in the features' units (sets their absolute σ) |
    /// | `groups` | array | [] | `#{ features: [...], rho }`: pairwise correlation ρ within the group |
    /// | `preset` | string | — | `"collider"`: the toy collider's documented uncertainties |
    /// | `scale` | float | 1 | the scale s multiplying every σ |
    ///
    /// σᵢ(x) = max(√(absᵢ² + (relᵢ·xᵢ)²), floorᵢ); `std_fraction: f` sets abs = f·std(column).
    ///
    /// **Object features** (for set models such as `pfn`): `features` and `frozen` also take
    /// `coll.feature` names (`"part.logpt": 0.05`, `frozen: ["part.charge"]`); `all` and the
    /// preset cover the dataset's event features only. An attack on a set model gives every
    /// real object that σ (relative σ relative to each object's value), never moves the object
    /// count or the padded slots, and counts χ² degrees of freedom over the event's real
    /// objects only (a `dof` column per event). σ applies to the model's input features as they
    /// are: an absolute 0.05 on `log(pt)` is a 5 % relative pT uncertainty (δ log pT ≈ δpT/pT).
    /// Object features are uncorrelated; correlations are among event features.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 500, seed: 1 });
    /// let u = uncertainty(d, #{ all: #{ abs: 0.1 }, features: #{ x0: #{ rel: 0.05, abs: 0.01 } },
    ///                          frozen: ["x19"], groups: [#{ features: ["x1", "x2"], rho: 0.5 }] });
    /// assert_eq(u.dof, 19);
    /// ```
    #[rhai_fn(return_raw, name = "uncertainty")]
    pub fn uncertainty(ds: Dataset, spec: Map) -> RhaiResult<UncertaintyModel> {
        helpers::uncertainty(&ds, &spec)
    }

    /// The same uncertainty model with scale `s` (every σ multiplied by s, s > 0).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// let u = uncertainty(d, #{ all: #{ abs: 0.1 } }).with_scale(2.0);
    /// assert_eq(u.scale, 2.0);
    /// ```
    #[rhai_fn(return_raw, name = "with_scale")]
    pub fn with_scale(u: &mut UncertaintyModel, s: f64) -> RhaiResult<UncertaintyModel> {
        Ok(u.with_scale(s)?)
    }

    /// The scale s.
    #[rhai_fn(get = "scale", pure)]
    pub fn scale(u: &mut UncertaintyModel) -> f64 {
        u.scale()
    }

    /// The χ² degrees of freedom (features that are not frozen).
    #[rhai_fn(get = "dof", pure)]
    pub fn dof(u: &mut UncertaintyModel) -> i64 {
        u.dof() as i64
    }

    /// Feature names.
    #[rhai_fn(get = "features", pure)]
    pub fn features(u: &mut UncertaintyModel) -> Array {
        string_array(u.names())
    }

    /// Which features are frozen.
    #[rhai_fn(get = "frozen", pure)]
    pub fn frozen(u: &mut UncertaintyModel) -> Array {
        bool_array(u.frozen())
    }

    /// The correlation matrix (identity when uncorrelated).
    #[rhai_fn(get = "correlation", pure)]
    pub fn correlation(u: &mut UncertaintyModel) -> Array {
        crate::bindings::convert::matrix(u.correlation().rows().into_iter().map(|r| r.to_vec()))
    }

    /// Per-event χ² of `perturbed` relative to `original` (σ at the original), its degrees of
    /// freedom and p-values `1 − CDF_χ²`. Mahalanobis when the model has correlations.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 });
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 } });
    /// let moved = d.with_column("x0", d["x0"].map(|v| v + 1.0));
    /// let c = chi2(u, d, moved);
    /// // δ/σ = 2 on one feature: χ² = 4.
    /// assert(abs(c.chi2[0] - 4.0) < 1e-4);
    /// assert_eq(c.dof, 20);
    /// ```
    #[rhai_fn(return_raw, name = "chi2")]
    pub fn chi2(u: &mut UncertaintyModel, original: Dataset, perturbed: Dataset) -> RhaiResult<Map> {
        chi2_opts(u, original, perturbed, Map::new())
    }

    /// `chi2` with options.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `form` | string | "mahalanobis" | `"mahalanobis"`, or `"diagonal"` (ignore correlations) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 3, seed: 1 });
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 }, groups: [#{ features: ["x0", "x1"], rho: 0.5 }] });
    /// let moved = d.with_column("x0", d["x0"].map(|v| v + 0.5));
    /// let c = chi2(u, d, moved, #{ form: "diagonal" });
    /// assert(abs(c.chi2[0] - 1.0) < 1e-4);
    /// ```
    #[rhai_fn(return_raw, name = "chi2")]
    pub fn chi2_opts(u: &mut UncertaintyModel, original: Dataset, perturbed: Dataset, options: Map) -> RhaiResult<Map> {
        let mut o = Opts::new("chi2", &options);
        let form = o.choice("form", &["mahalanobis", "diagonal"], "mahalanobis")?;
        o.finish()?;
        u.check_dataset("chi2", &original)?;
        u.check_dataset("chi2", &perturbed)?;
        let c = u.chi2(original.x(), perturbed.x(), form == "mahalanobis")?;
        let mut m = Map::new();
        m.insert("chi2".into(), Dynamic::from_array(f64_array(c.chi2)));
        m.insert("p_value".into(), Dynamic::from_array(f64_array(c.p_value)));
        m.insert("dof".into(), Dynamic::from_int(u.dof() as i64));
        Ok(m)
    }

    /// `ds` with every event varied by a Gaussian draw from the model (nominal ± σ variations).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1000, seed: 1 });
    /// let u = uncertainty(d, #{ all: #{ abs: 0.1 } });
    /// let v = smear(u, d, 7);
    /// assert(v.len == d.len);
    /// ```
    #[rhai_fn(return_raw, name = "smear")]
    pub fn smear(c: NativeCallContext, u: &mut UncertaintyModel, ds: Dataset, seed: i64) -> RhaiResult<Dataset> {
        let seed = ctx(&c)?.seed_or_next(Some(seed as u64));
        Ok(u.smear(&ds, seed)?)
    }

    /// Feasibility rules applied by every attack after each step (MiniFool evaluates its cost
    /// at the projected events), in this order:
    ///
    /// | key | type | meaning |
    /// |---|---|---|
    /// | `clip_to_data` | bool | clip each feature to its range in `ds` |
    /// | `clip` | map | `#{ name: [min, max] }` (`()` for no bound) |
    /// | `integer` | array | features rounded to integers |
    /// | `sentinel` | map | `#{ name: value }`: events with that original value keep it |
    /// | `frozen` | array | features never changed |
    ///
    /// Rules may name object features `coll.feature` (for set models): they apply to every real
    /// object of an event, never to padded slots.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 200, seed: 1 });
    /// let p = projection(d, #{ clip: #{ met: [0.0, ()] }, integer: ["njets"], frozen: ["eta1"] });
    /// assert_eq(p.rules.len, 3);
    /// ```
    #[rhai_fn(return_raw, name = "projection")]
    pub fn projection(ds: Dataset, spec: Map) -> RhaiResult<Projection> {
        helpers::projection(&ds, &spec)
    }

    /// Two projections over the same features composed: `a + b` applies a's rules, then b's.
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 100, seed: 1 });
    /// let physical = projection(d, #{ clip: #{ met: [0.0, ()] } });
    /// let p = physical + projection(d, #{ integer: ["njets"], frozen: ["eta1"] });
    /// assert_eq(p.rules, ["clip met to [0, inf]", "njets integral", "eta1 frozen"]);
    /// ```
    #[rhai_fn(return_raw, name = "+")]
    pub fn compose(a: Projection, b: Projection) -> RhaiResult<Projection> {
        if !a.is_empty() && !b.is_empty() && a.names() != b.names() {
            return Err(crate::Error::arg(
                "projection",
                format!(
                    "cannot compose projections over different features: [{}] and [{}]",
                    a.names().join(", "),
                    b.names().join(", ")
                ),
            )
            .into());
        }
        if a.is_empty() {
            return Ok(b);
        }
        Ok(a.then(b.rules())?)
    }

    /// The rules of a projection, as text.
    #[rhai_fn(get = "rules", pure)]
    pub fn rules(p: &mut Projection) -> Array {
        string_array(p.describe())
    }

    /// FGSM: one step of ε σ-units along the sign of the loss gradient (L∞) or along the
    /// whitened gradient (`norm: "l2"`, the χ² ball): PGD with one step of size ε (for more
    /// steps or a random start use `pgd`). Returns `#{ events, table, flip_fraction, n_flipped,
    /// median_chi2_flipped, stopped, reasons }`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `eps` | float | 1 | budget and step: \|δᵢ\| ≤ ε·s·σᵢ (L∞) or χ² ≤ ε² (L2) |
    /// | `norm` | string | "linf" | `"linf"` or `"l2"` (χ²; Mahalanobis with correlations) |
    /// | `labels` | string | "predicted" | untargeted: ascend the loss of the `"predicted"` or `"true"` class |
    /// | `target` | int or float | — | targeted: a class (int), or a sigmoid score (float) |
    /// | `direction` | string | "both" | regression: push the output `"up"`, `"down"` or the larger of `"both"` |
    /// | `project` | Projection | — | feasibility rules |
    /// | `uncertainty` | Uncertainty | — | only in `train`'s adversarial attack map: the budget (scripts pass it as the third argument) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2 }).model;
    /// let r = fgsm(m, d, uncertainty(d, #{ all: #{ abs: 1.0 } }), #{ eps: 0.1 });
    /// assert(r.flip_fraction > 0.0);
    /// ```
    #[rhai_fn(return_raw, name = "fgsm")]
    pub fn fgsm(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        helpers::run_attack(&ctx(&c)?, "fgsm", &*m, &ds, Some(&u), &options)
    }

    /// FGSM with the default options (ε = 1, L∞). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "fgsm")]
    pub fn fgsm_default(c: NativeCallContext, m: SharedModel, ds: Dataset, u: UncertaintyModel) -> RhaiResult<Map> {
        fgsm(c, m, ds, u, Map::new())
    }

    /// PGD with the budget in σ units of the uncertainty model.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `eps` | float | 1 | budget: \|δᵢ\| ≤ ε·s·σᵢ (L∞) or χ² ≤ ε² (L2) |
    /// | `norm` | string | "linf" | `"linf"` or `"l2"` (χ²; Mahalanobis with correlations) |
    /// | `steps` | int | 10 | iterations |
    /// | `step` | float | 2.5·ε/steps | step size in σ units |
    /// | `random_start` | bool | false | start at a random point of the ball (each event from its own stream of `seed` and its row, as `stream_attack` does with its chain position) |
    /// | `seed` | int | session | seed of the random start |
    /// | `labels` | string | "predicted" | untargeted: ascend the loss of the `"predicted"` or `"true"` class |
    /// | `target` | int or float | — | targeted: a class (int), or a sigmoid score (float) |
    /// | `direction` | string | "both" | regression: push the output `"up"`, `"down"` or the larger of `"both"` |
    /// | `project` | Projection | — | feasibility rules |
    /// | `uncertainty` | Uncertainty | — | only in `train`'s adversarial attack map: the budget (scripts pass it as the third argument) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2 }).model;
    /// let u = uncertainty(d, #{ all: #{ abs: 1.0 } });
    /// let r = pgd(m, d, u, #{ eps: 0.1, steps: 20, step: 0.01 });
    /// assert(r.flip_fraction >= fgsm(m, d, u, #{ eps: 0.1 }).flip_fraction - 0.01);
    /// write_parquet(r.table, "out/doc_pgd.parquet");
    /// ```
    #[rhai_fn(return_raw, name = "pgd")]
    pub fn pgd(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        helpers::run_attack(&ctx(&c)?, "pgd", &*m, &ds, Some(&u), &options)
    }

    /// PGD with the default options (ε = 1, 10 steps, L∞). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "pgd")]
    pub fn pgd_default(c: NativeCallContext, m: SharedModel, ds: Dataset, u: UncertaintyModel) -> RhaiResult<Map> {
        pgd(c, m, ds, u, Map::new())
    }

    /// MiniFool: per event, minimise α·χ²/N + β·(f_target − g)² over perturbations in σ units,
    /// all events at once. Returns the same map as `pgd`; its `table` adds `cost_start`/`cost_end`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `alpha` | float | 1 | weight of η = χ²/N |
    /// | `beta` | float | 1 | weight of the score term |
    /// | `margin` | float | 0.5 | target score g = 0.5 + margin of the other class |
    /// | `target` | int or float | — | a target class (classifier) or output value (regression) |
    /// | `shift` | float | — | regression: target = clean output + shift |
    /// | `minimizer` | string | "lbfgs" | `"lbfgs"` or `"adam"` |
    /// | `steps` | int | 100 | iteration limit (old name `max_iters`, deprecated) |
    /// | `gtol` | float | 1e-5 | per-event gradient tolerance |
    /// | `ftol` | float | 1e-9 | per-event relative cost-change tolerance |
    /// | `memory` | int | 10 | L-BFGS memory |
    /// | `lr` | float | 0.05 | Adam learning rate (σ units) |
    /// | `project` | Projection | — | feasibility rules: the cost is minimised at the projected events (pinned features get no gradient, integers pass it through) |
    /// | `uncertainty` | Uncertainty | — | only in `train`'s adversarial attack map: the budget (scripts pass it as the third argument) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2 }).model;
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 } });
    /// let r = minifool(m, d, u, #{ alpha: 1.0 });
    /// assert(r.flip_fraction > 0.0);
    /// assert_eq(r.table["flipped"].len, 1000);
    /// ```
    #[rhai_fn(return_raw, name = "minifool")]
    pub fn minifool(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        helpers::run_attack(&ctx(&c)?, "minifool", &*m, &ds, Some(&u), &options)
    }

    /// MiniFool with the default options (α = β = 1, L-BFGS). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "minifool")]
    pub fn minifool_default(c: NativeCallContext, m: SharedModel, ds: Dataset, u: UncertaintyModel) -> RhaiResult<Map> {
        minifool(c, m, ds, u, Map::new())
    }

    /// CONSERVAttack (Bechtle, Flek, Jung et al., arXiv 2603.13970): fools the classifier while
    /// the sample keeps every feature's histogram and its correlation matrix. Per iteration,
    /// every event not yet fooled takes per feature the sign of its cross-entropy gradient and
    /// candidate changes in that direction (a grid `min_change, +step, …` up to the feature's
    /// bound, or `num_candidates` random magnitudes), clipped to the feature's `[min, max]`;
    /// per feature the admissible candidate of lowest `alpha·JSD + beta·corr` is taken.
    /// Events are scored and changed one after the other in event order against the current
    /// sample (the candidates and gradients are computed in parallel; results do not depend
    /// on the thread count). After each pass fooled events are frozen. Events the model
    /// misclassifies before the attack are left as they are; without labels the clean class
    /// is the label.
    ///
    /// `mode: "strict"` (default): a change is admissible only if afterwards the feature's
    /// Jensen–Shannon distance to the clean histogram (`bins` bins over the clean range plus
    /// flow bins, as `checks`) is ≤ `max_jsd_single_change` and < `constraint_jsd`, and the
    /// correlation change ‖C − C₀‖_F is ≤ `max_frob_single_change` with ‖C − C₀‖_F/‖C₀‖_F <
    /// `constraint_rel_corr`: the output passes `checks(clean, r.events, #{ bins })`.
    /// `mode: "faithful"`: the reference code's behaviour (TSaala/CONSERVAttack), quirks
    /// included: its correlation score is an approximate change against the *current* sample
    /// (the total drift is unbounded), every feature's choice is applied together, the clean
    /// histograms drop values outside `[min_values, max_values]`, and without `use_no_change`
    /// the first candidate is applied when none is admissible.
    ///
    /// Returns the map of `pgd` (`events`, `table` with a `fooled_at` column — the iteration an
    /// event was fooled at, 0 if never —, `flip_fraction`, …) plus `fooling_ratio` (among the
    /// events correct before), `n_correct`, `jsd` (per feature), `max_jsd`, `rel_corr_change`,
    /// their values per iteration (`fooling_ratio_per_iteration`, `max_jsd_per_iteration`,
    /// `rel_corr_change_per_iteration`, `accepted_per_iteration`) and `iterations`, a table
    /// with one row per iteration (`iteration`, `active`, `fooling_ratio`, `jsd_<feature>`,
    /// `max_jsd`, `rel_corr_change`, `accepted` values changed, `within_constraints`). With
    /// `track_best_constraint_iter`: `best_constraint_iteration` (1-based, 0 if none),
    /// `best_constraint_fooling_ratio`, `best_constraint_max_jsd`,
    /// `best_constraint_rel_corr_change`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `mode` | string | "strict" | `"strict"` or `"faithful"` (see above) |
    /// | `steps` | int | 10 | iterations (reference `n_iterations`) |
    /// | `bins` | int | 100 | histogram bins per feature (reference `num_bins`) |
    /// | `min_change` | float | 0.003 | smallest candidate magnitude |
    /// | `step` | float | 0.01 | grid step of the candidate magnitudes |
    /// | `alpha` | float | 1 | weight of the JSD in the cost |
    /// | `beta` | float | 1 | weight of the correlation score in the cost |
    /// | `max_jsd_single_change` | float | 0.005 | JSD to the clean histogram a change may leave |
    /// | `max_frob_single_change` | float | 0.005 | correlation score a change may have |
    /// | `use_no_change` | bool | false | a "no change" fallback candidate |
    /// | `track_best_constraint_iter` | bool | false | report the best iteration inside the constraints |
    /// | `constraint_jsd` | float | 0.06 | largest JSD of an accepted result (`within_constraints`) |
    /// | `constraint_rel_corr` | float | 0.006 | largest relative correlation change of an accepted result |
    /// | `optimize_already_fooled` | bool | false | after each pass, move fooled events within ±5 steps where they stay fooled and both measures drop |
    /// | `randomize_step` | bool | false | jitter `step` and `min_change` per event and feature (grid only) |
    /// | `random_step_frac` | float | 0.2 | the jitter, ± this fraction |
    /// | `num_candidates` | int | — | uniform random magnitudes in `[min_change, max − x]` instead of the grid |
    /// | `feature_chunks` | int | 4 | faithful, more than 2 features: the reference's `n_gpus` feature chunks (the correlation score sees its chunk only) |
    /// | `min_values` | array | the events' minima | per-feature lower bound (histogram range and clip) |
    /// | `max_values` | array | the events' maxima | per-feature upper bound |
    /// | `project` | Projection | — | feasibility rules applied to every candidate |
    /// | `seed` | int | session | seed of the candidate draws |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1000, seed: 1 }).select(["x0", "x1", "x2"]);
    /// let m = train(mlp([3, 16, 1]), d, #{ epochs: 3, seed: 1 }).model;
    /// let r = conservattack(m, d, #{ steps: 3, num_candidates: 30, seed: 2 });
    /// assert(r.fooling_ratio > 0.0);
    /// assert_eq(r.iterations.len, 3);
    /// assert(checks(d, r.events).passed);   // strict mode: inside the default thresholds
    /// ```
    ///
    /// # Reference
    /// `shared/guide/methods.md` §2; the reference's behaviour on a toy:
    /// `shared/fixtures/conservattack/README.md`.
    #[rhai_fn(return_raw, name = "conservattack")]
    pub fn conservattack(c: NativeCallContext, m: SharedModel, ds: Dataset, options: Map) -> RhaiResult<Map> {
        helpers::run_attack(&ctx(&c)?, "conservattack", &*m, &ds, None, &options)
    }

    /// CONSERVAttack with the default options (strict, 10 iterations, 100 bins). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "conservattack")]
    pub fn conservattack_default(c: NativeCallContext, m: SharedModel, ds: Dataset) -> RhaiResult<Map> {
        conservattack(c, m, ds, Map::new())
    }

    /// An s-scan: runs `attack` (`"minifool"`, default, `"pgd"` or `"fgsm"`: the attacks bounded
    /// by the uncertainty model) at every scale in `s` (relative to the model's own scale) and
    /// returns `#{ table, s, flip_fraction, flip_fraction_err, flip_fraction_correct,
    /// flip_fraction_incorrect (+ _err), stalled, s_flip }` (`stalled`: per s, the events
    /// MiniFool could not move because their score is saturated). With labels the flip fractions are split
    /// into initially correct and incorrect events and by class (columns of `table`:
    /// `flip_fraction`, `flip_fraction_err`, `flip_fraction_correct`, …, `flip_fraction_class0`,
    /// …). The keys `flip`, `flip_err`, `flip_correct`,
    /// `flip_incorrect` (+ `_err`) are the old names of the `flip_fraction…` keys, kept for one
    /// release.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `s` | array | [0.5, 1, 2, 4] | scales |
    /// | `attack` | string | "minifool" | `"minifool"`, `"pgd"` or `"fgsm"` |
    /// | `options` | map | #{} | the attack's own options (as `minifool` / `pgd` / `fgsm`) |
    /// | `bisect` | int | 4 | MiniFool bisection steps refining each event's s_flip |
    /// | `split` | bool | true | split by correctness and class when the dataset has labels (old name `labels`, deprecated) |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 1000, seed: 1 });
    /// let m = train(mlp([20, 16, 1]), d, #{ epochs: 2 }).model;
    /// let u = uncertainty(d, #{ all: #{ abs: 0.5 } });
    /// let sc = s_scan(m, d, u, #{ s: [0.5, 1.0, 2.0] });
    /// assert(sc.flip_fraction[2] >= sc.flip_fraction[0]);
    /// assert(sc.table.len == 3);
    /// ```
    #[rhai_fn(return_raw, name = "s_scan")]
    pub fn s_scan(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        options: Map,
    ) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("s_scan", &options);
        let s = match o.raw("s") {
            Some(v) => floats(
                "s_scan",
                "s",
                &v.try_cast::<Array>().ok_or_else(|| crate::Error::arg("s_scan", "s must be an array of numbers"))?,
            )?,
            None => vec![0.5, 1.0, 2.0, 4.0],
        };
        let kind = o.choice("attack", &crate::attack::attack_names(true), "minifool")?;
        let sub = o.map_opt("options")?.unwrap_or_default();
        let bisect = o.usize("bisect", 4)?;
        let use_labels = o.bool("split", true)?;
        o.finish()?;
        helpers::check("s_scan", &*m, &ds, &u)?;
        let entry =
            crate::attack::lookup(kind).ok_or_else(|| crate::Error::arg("s_scan", "not a registered attack"))?;
        let mut so = Opts::new(kind, &sub);
        let setup = Setup { model: &*m, events: &ds, unc: Some(&u), purpose: Purpose::Scan };
        let attack = (entry.configure)(&mut ScriptOptions { opts: &mut so, ctx: &cx }, &setup)?;
        so.finish()?;
        let labels = if use_labels { ds.label() } else { None };
        let x = m.inputs(&ds)?;
        let scan = crate::attack::s_scan(&*m, x.view(), labels, attack.as_ref(), &s, bisect, &cx.control)?;
        helpers::scan_map(&scan)
    }

    /// An s-scan with the default options (MiniFool at s = 0.5, 1, 2, 4). Options as the form with an options map.
    #[rhai_fn(return_raw, name = "s_scan")]
    pub fn s_scan_default(c: NativeCallContext, m: SharedModel, ds: Dataset, u: UncertaintyModel) -> RhaiResult<Map> {
        s_scan(c, m, ds, u, Map::new())
    }

    /// An s-scan at the scales `s` with the other options at their defaults: `s_scan(m, d, u, s)`
    /// is `s_scan(m, d, u, #{ s: s })`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 200, seed: 1 });
    /// let m = train(mlp([20, 8, 1]), d, #{ epochs: 1 }).model;
    /// let sc = s_scan(m, d, uncertainty(d, #{ all: #{ abs: 0.5 } }), [1.0, 2.0]);
    /// assert_eq(sc.s, [1.0, 2.0]);
    /// ```
    #[rhai_fn(return_raw, name = "s_scan")]
    pub fn s_scan_at(
        c: NativeCallContext,
        m: SharedModel,
        ds: Dataset,
        u: UncertaintyModel,
        s: Array,
    ) -> RhaiResult<Map> {
        s_scan(c, m, ds, u, Map::from_iter([("s".into(), Dynamic::from_array(s))]))
    }
}
