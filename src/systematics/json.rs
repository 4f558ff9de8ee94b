//! A systematics model as JSON, read strictly (an unknown key is an error naming the nearest
//! valid one). The same layout is what scripts write as maps:
//!
//! ```json
//! { "nuisances": [
//!     { "name": "JES", "prior": "gaussian", "effects": [
//!         { "kind": "scale", "targets": ["jets.pt"], "sigma": "0.02 + 0.01*abs(eta)", "relative": true } ] },
//!     { "name": "JER", "kind": "smear", "targets": ["pt1"], "sigma": 0.05, "relative": true, "seed": 7 },
//!     { "name": "JES2", "kind": "alternative", "nominal": ["pt"], "up": ["pt_up"], "down": ["pt_down"], "code": 4 },
//!     { "name": "btag", "kind": "weight", "up": "w_btag_up", "down": "w_btag_down", "code": 4 },
//!     { "name": "lumi", "kind": "norm", "size": 0.02 } ],
//!   "derived": { "ht": "pt1 + pt2 + sum(jets.pt)" } }
//! ```
//!
//! A nuisance has either `effects` (a list) or one effect's keys inline. `sigma` is a number,
//! an expression, or a binned table `{ "vars": ["pt", "abs(eta)"], "edges": [[…], […]],
//! "values": […] }`. Defaults: `prior` `gaussian` (`lognormal` when every effect is a `norm`),
//! `relative` false, `code` 0 for columns and 4 for weights, `seed` 0.
//!
//! ```
//! use nuisance::systematics::{from_json, to_json};
//! let v = serde_json::json!({ "nuisances": [{ "name": "lumi", "kind": "norm", "size": 0.02 }] });
//! let s = from_json(&v).unwrap();
//! assert_eq!(from_json(&to_json(&s)).unwrap(), s);
//! ```

use std::path::Path;

use serde_json::{json, Map, Value};

use super::interp::Code;
use super::nuisance::{Binned, Derived, Effect, Nuisance, Prior, Sigma, Systematics, Target};
use crate::data::expr::Expr;
use crate::error::{Error, Result};

const OP: &str = "systematics";

/// The keys of the top level, of a nuisance and of a binned σ (an effect's depend on its kind).
pub const TOP_KEYS: &[&str] = &["nuisances", "derived"];
pub const NUISANCE_KEYS: &[&str] = &["name", "prior", "effects"];
pub const BINNED_KEYS: &[&str] = &["vars", "edges", "values"];

fn err(msg: impl Into<String>) -> Error {
    Error::arg(OP, msg)
}

/// Refuses keys outside `valid`, naming the nearest.
fn strict(m: &Map<String, Value>, valid: &[&str], what: &str) -> Result<()> {
    for k in m.keys() {
        if !valid.contains(&k.as_str()) {
            let hint = crate::error::nearest(k, valid.iter().copied())
                .map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
            return Err(err(format!("unknown key '{k}' in {what}{hint}; valid keys: {}", valid.join(", "))));
        }
    }
    Ok(())
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| err(format!("{what} must be a map, got {v}")))
}

fn string(m: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(err(format!("{what}: '{key}' must be a string, got {v}"))),
    }
}

fn number(m: &Map<String, Value>, key: &str, what: &str) -> Result<Option<f64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| err(format!("{what}: '{key}' must be a number, got {v}"))),
    }
}

fn strings(m: &Map<String, Value>, key: &str, what: &str) -> Result<Option<Vec<String>>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| err(format!("{what}: '{key}' must be a list of names"))),
        Some(v) => Err(err(format!("{what}: '{key}' must be a list of names, got {v}"))),
    }
}

fn targets(m: &Map<String, Value>, key: &str, what: &str) -> Result<Vec<Target>> {
    strings(m, key, what)?
        .ok_or_else(|| err(format!("{what} needs '{key}'")))?
        .iter()
        .map(|s| Target::parse(s))
        .collect()
}

fn floats(v: &Value, what: &str) -> Result<Vec<f64>> {
    v.as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
        .ok_or_else(|| err(format!("{what} must be a list of numbers, got {v}")))
}

fn sigma(m: &Map<String, Value>, what: &str) -> Result<Sigma> {
    match m.get("sigma") {
        None | Some(Value::Null) => Err(err(format!("{what} needs 'sigma'"))),
        Some(Value::String(s)) => Ok(Sigma::Expr(Expr::parse(s)?)),
        Some(Value::Object(b)) => {
            let w = format!("{what}: the binned sigma");
            strict(b, BINNED_KEYS, &w)?;
            let vars = strings(b, "vars", &w)?.ok_or_else(|| err(format!("{w} needs 'vars'")))?;
            let vars = vars.iter().map(|s| Expr::parse(s)).collect::<Result<Vec<_>>>()?;
            let edges = match b.get("edges") {
                Some(Value::Array(a)) => {
                    a.iter().map(|e| floats(e, &format!("{w}: each list of edges"))).collect::<Result<Vec<_>>>()?
                }
                _ => return Err(err(format!("{w} needs 'edges', a list of lists of numbers"))),
            };
            let values = floats(b.get("values").unwrap_or(&Value::Null), &format!("{w}: 'values'"))?;
            Ok(Sigma::Binned(Binned::new(vars, edges, values).map_err(|e| err(format!("{what}: {}", strip(&e))))?))
        }
        Some(v) => v
            .as_f64()
            .map(Sigma::Const)
            .ok_or_else(|| err(format!("{what}: 'sigma' must be a number, an expression or a binned table, got {v}"))),
    }
}

/// An error's message without its `systematics: ` prefix (for adding context).
fn strip(e: &Error) -> String {
    e.to_string().trim_start_matches("systematics: ").to_string()
}

fn code(m: &Map<String, Value>, default: Code, what: &str) -> Result<Code> {
    match m.get("code") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_i64() {
            Some(n) => Code::from_number(n).map_err(|e| err(format!("{what}: {}", strip(&e)))),
            None => Err(err(format!("{what}: 'code' must be 0, 1, 2 or 4, got {v}"))),
        },
    }
}

/// Keys that only some kinds take: an effect of another kind giving them is an error.
const KIND_KEYS: &[(&str, &[&str])] = &[
    ("scale", &["targets", "sigma", "relative"]),
    ("smear", &["targets", "sigma", "relative", "seed"]),
    ("alternative", &["nominal", "up", "down", "code"]),
    ("weight", &["up", "down", "code"]),
    ("norm", &["size"]),
];

fn effect(m: &Map<String, Value>, what: &str) -> Result<Effect> {
    let kind = string(m, "kind", what)?
        .ok_or_else(|| err(format!("{what} needs 'kind': one of scale, smear, alternative, weight, norm")))?;
    let Some((_, keys)) = KIND_KEYS.iter().find(|(k, _)| *k == kind) else {
        let hint = crate::error::nearest(&kind, KIND_KEYS.iter().map(|(k, _)| *k))
            .map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
        return Err(err(format!(
            "{what}: unknown kind '{kind}'{hint}; kinds: scale, smear, alternative, weight, norm"
        )));
    };
    let mut valid = vec!["kind", "name", "prior", "effects"];
    valid.extend_from_slice(keys);
    strict(m, &valid, &format!("{what} (a {kind} effect)"))?;
    let relative = match m.get("relative") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(err(format!("{what}: 'relative' must be true or false, got {v}"))),
    };
    Ok(match kind.as_str() {
        "scale" => Effect::Scale { targets: targets(m, "targets", what)?, sigma: sigma(m, what)?, relative },
        "smear" => {
            let seed = match m.get("seed") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_u64().ok_or_else(|| err(format!("{what}: 'seed' must be an integer ≥ 0, got {v}")))?,
            };
            Effect::Smear { targets: targets(m, "targets", what)?, sigma: sigma(m, what)?, relative, seed }
        }
        "alternative" => Effect::Alternative {
            nominal: targets(m, "nominal", what)?,
            up: targets(m, "up", what)?,
            down: targets(m, "down", what)?,
            code: code(m, Code::Linear, what)?,
        },
        "weight" => Effect::Weight {
            up: string(m, "up", what)?
                .ok_or_else(|| err(format!("{what} needs 'up', the up-variation weight column")))?,
            down: string(m, "down", what)?,
            code: code(m, Code::PolyExp, what)?,
        },
        _ => Effect::Norm { size: number(m, "size", what)?.ok_or_else(|| err(format!("{what} needs 'size'")))? },
    })
}

fn nuisance(v: &Value, i: usize) -> Result<Nuisance> {
    let m = obj(v, &format!("nuisance {i}"))?;
    let name =
        string(m, "name", &format!("nuisance {i}"))?.ok_or_else(|| err(format!("nuisance {i} needs a 'name'")))?;
    let what = format!("nuisance '{name}'");
    let effects = match m.get("effects") {
        Some(Value::Array(a)) => {
            let mut valid = NUISANCE_KEYS.to_vec();
            valid.push("kind");
            if m.contains_key("kind") {
                return Err(err(format!("{what}: give either 'effects' or one effect's keys ('kind', …), not both")));
            }
            strict(m, NUISANCE_KEYS, &what)?;
            a.iter()
                .enumerate()
                .map(|(j, e)| effect(obj(e, &format!("{what}, effect {j}"))?, &format!("{what}, effect {j}")))
                .collect::<Result<Vec<_>>>()?
        }
        Some(v) => return Err(err(format!("{what}: 'effects' must be a list of maps, got {v}"))),
        None => vec![effect(m, &what)?],
    };
    let all_norm = effects.iter().all(|e| matches!(e, Effect::Norm { .. }));
    let prior = match string(m, "prior", &what)? {
        Some(p) => Prior::from_name(&p).map_err(|e| err(format!("{what}: {}", strip(&e))))?,
        None if all_norm => Prior::LogNormal,
        None => Prior::Gaussian,
    };
    Nuisance::new(&name, prior, effects)
}

/// A model from its JSON value (or a script's map converted to JSON).
pub fn from_json(v: &Value) -> Result<Systematics> {
    let m = obj(v, "a systematics model")?;
    strict(m, TOP_KEYS, "a systematics model")?;
    let nuisances = match m.get("nuisances") {
        Some(Value::Array(a)) => a.iter().enumerate().map(|(i, n)| nuisance(n, i)).collect::<Result<Vec<_>>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(v) => return Err(err(format!("'nuisances' must be a list of maps, got {v}"))),
    };
    let derived = match m.get("derived") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(d)) => d
            .iter()
            .map(|(name, e)| {
                let src = e.as_str().ok_or_else(|| {
                    err(format!("derived feature '{name}' must be an expression (a string), got {e}"))
                })?;
                Ok(Derived { target: Target::parse(name)?, expr: Expr::parse(src)? })
            })
            .collect::<Result<Vec<_>>>()?,
        Some(v) => return Err(err(format!("'derived' must be a map of name → expression, got {v}"))),
    };
    Systematics::new(nuisances, derived)
}

fn names(t: &[Target]) -> Value {
    Value::Array(t.iter().map(|t| Value::String(t.name())).collect())
}

fn sigma_json(s: &Sigma) -> Value {
    match s {
        Sigma::Const(c) => json!(c),
        Sigma::Expr(e) => json!(e.source()),
        Sigma::Binned(b) => json!({
            "vars": b.vars.iter().map(|v| v.source()).collect::<Vec<_>>(),
            "edges": b.edges,
            "values": b.values,
        }),
    }
}

fn effect_json(e: &Effect) -> Value {
    let mut v = match e {
        Effect::Scale { targets, sigma, relative } => {
            json!({ "targets": names(targets), "sigma": sigma_json(sigma), "relative": relative })
        }
        Effect::Smear { targets, sigma, relative, seed } => {
            json!({ "targets": names(targets), "sigma": sigma_json(sigma), "relative": relative, "seed": seed })
        }
        Effect::Alternative { nominal, up, down, code } => {
            json!({ "nominal": names(nominal), "up": names(up), "down": names(down), "code": code.number() })
        }
        Effect::Weight { up, down, code } => json!({ "up": up, "down": down, "code": code.number() }),
        Effect::Norm { size } => json!({ "size": size }),
    };
    v["kind"] = json!(e.kind());
    v
}

/// The model as JSON (the layout [`from_json`] reads).
pub fn to_json(s: &Systematics) -> Value {
    let nuisances: Vec<Value> = s
        .nuisances()
        .iter()
        .map(|n| {
            json!({ "name": n.name, "prior": n.prior.name(), "effects": n.effects.iter().map(effect_json).collect::<Vec<_>>() })
        })
        .collect();
    let derived: Map<String, Value> =
        s.derived().iter().map(|d| (d.target.name(), Value::String(d.expr.source().to_string()))).collect();
    json!({ "nuisances": nuisances, "derived": derived })
}

/// Writes the model as pretty JSON, atomically.
pub fn save(s: &Systematics, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(&to_json(s)).map_err(|e| err(e.to_string()))?;
    crate::fsutil::atomic_write_bytes(path, text.as_bytes())
}

/// Reads a model written by [`save`] (or by hand).
pub fn load(path: &Path) -> Result<Systematics> {
    let bytes = crate::io_guard::read_regular(path)?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| err(format!("'{}' is not valid JSON: {e}", path.display())))?;
    from_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_json() {
        let v = json!({
            "nuisances": [
                { "name": "JES", "effects": [
                    { "kind": "scale", "targets": ["jets.pt", "pt1"], "sigma": "0.02 + 0.01*abs(eta)", "relative": true },
                    { "kind": "scale", "targets": ["met"], "sigma": { "vars": ["pt1", "abs(eta1)"], "edges": [[0, 50, 1000], [0, 1.5, 5]], "values": [0.1, 0.2, 0.3, 0.4] } } ] },
                { "name": "JER", "kind": "smear", "targets": ["pt1"], "sigma": 0.05, "relative": true, "seed": 7 },
                { "name": "alt", "kind": "alternative", "nominal": ["pt1"], "up": ["pt1_up"], "down": ["pt1_dn"], "code": 2 },
                { "name": "w", "kind": "weight", "up": "w_up" },
                { "name": "lumi", "kind": "norm", "size": 0.02 } ],
            "derived": { "ht": "pt1 + sum(jets.pt)", "jets.px": "pt * cos(phi)" }
        });
        let s = from_json(&v).unwrap();
        assert_eq!(s.nuisances()[4].prior, Prior::LogNormal); // norm-only: log-normal by default
        assert_eq!(s.nuisances()[0].prior, Prior::Gaussian);
        assert!(matches!(s.nuisances()[3].effects[0], Effect::Weight { code: Code::PolyExp, down: None, .. }));
        let back = from_json(&to_json(&s)).unwrap();
        assert_eq!(back, s);
        let dir = std::env::temp_dir().join(format!("nuisance-syst-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.json");
        save(&s, &p).unwrap();
        assert_eq!(load(&p).unwrap(), s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_definitions_name_the_problem() {
        let e = |v: Value| from_json(&v).unwrap_err().to_string();
        assert_eq!(
            e(
                json!({ "nuisances": [{ "name": "JES", "kind": "scale", "targets": ["pt"], "sigma": 0.1, "relativ": true }] })
            ),
            "systematics: unknown key 'relativ' in nuisance 'JES' (a scale effect) (did you mean 'relative'?); \
             valid keys: kind, name, prior, effects, targets, sigma, relative"
        );
        assert!(e(json!({ "nuisances": [{ "name": "a", "kind": "sclae" }] }))
            .contains("unknown kind 'sclae' (did you mean 'scale'?)"));
        assert!(e(json!({ "nuisances": [{ "name": "a", "kind": "scale", "targets": ["pt"], "sigma": -1 }] }))
            .contains("σ must be > 0, got -1"));
        assert!(e(json!({ "nuisances": [{ "name": "a", "kind": "alternative", "nominal": ["pt"], "up": ["u"] }] }))
            .contains("needs 'down'"));
        assert!(e(json!({ "nuisances": [{ "name": "a", "kind": "weight", "up": "u", "code": 3 }] }))
            .contains("must be 0, 1, 2 or 4, got 3"));
        assert!(e(json!({ "derived": { "a": "b + 1", "b": "c * 2", "c": "a" } }))
            .contains("circular derived features: a → b → c → a"));
        assert!(e(json!({ "derived": { "a": "a + 1" } })).contains("circular derived features: a → a"));
        assert!(e(json!({ "nuisances": [{ "name": "a", "kind": "scale", "targets": ["pt"], "sigma": { "vars": ["pt"], "edges": [[0, 1]], "values": [0] } }] })).contains("σ must be > 0, got 0"));
    }
}
