//! The strict option reader: a Rhai object map in, typed values out.
//!
//! Every script-visible function that takes options reads them through [`Opts`]: an unknown key
//! is an error naming the function, the key, the valid keys and the nearest match; an integer
//! is accepted where a float is expected; a wrong type names the option and the type found.

use rhai::{Array, Dynamic, FnPtr, ImmutableString, Map};

use crate::error::{Error, Result};

/// Reads one options map for one function. Call [`Opts::finish`] last.
pub struct Opts<'a> {
    func: &'static str,
    map: &'a Map,
    known: Vec<&'static str>,
}

impl<'a> Opts<'a> {
    /// A reader for `func`'s options.
    pub fn new(func: &'static str, map: &'a Map) -> Self {
        Opts { func, map, known: Vec::new() }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Dynamic> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn bad(&self, key: &str, problem: String) -> Error {
        Error::BadOption { func: self.func.to_string(), key: key.to_string(), problem }
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &Dynamic) -> Error {
        self.bad(key, format!("must be {expected}, got {} ({v})", type_name(v)))
    }

    /// A float (an integer is accepted); `default` when absent.
    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        Ok(self.f64_opt(key)?.unwrap_or(default))
    }

    /// A float if present.
    pub fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_f64(v).map(Some).ok_or_else(|| self.wrong_type(key, "a number", v)),
        }
    }

    /// A float that must be > 0.
    pub fn positive(&mut self, key: &'static str, default: f64) -> Result<f64> {
        let v = self.f64(key, default)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(self.bad(key, format!("must be > 0, got {v}")))
        }
    }

    /// A non-negative integer; `default` when absent.
    pub fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.usize_opt(key)?.unwrap_or(default))
    }

    /// A non-negative integer if present.
    pub fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Ok(i) if i >= 0 => Ok(Some(i as usize)),
                Ok(i) => Err(self.bad(key, format!("must be >= 0, got {i}"))),
                Err(_) => Err(self.wrong_type(key, "an integer", v)),
            },
        }
    }

    /// A seed (non-negative integer) if present.
    pub fn seed(&mut self) -> Result<Option<u64>> {
        Ok(self.usize_opt("seed")?.map(|s| s as u64))
    }

    /// A boolean; `default` when absent.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|_| self.wrong_type(key, "true or false", v)),
        }
    }

    /// A string if present.
    pub fn string_opt(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.clone().into_immutable_string() {
                Ok(s) => Ok(Some(s.to_string())),
                Err(_) => Err(self.wrong_type(key, "a string", v)),
            },
        }
    }

    /// A string; `default` when absent.
    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        Ok(self.string_opt(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// One of `choices`; `default` when absent. The error lists the valid values.
    pub fn choice(
        &mut self,
        key: &'static str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str> {
        let Some(s) = self.string_opt(key)? else { return Ok(default) };
        choices.iter().copied().find(|c| *c == s).ok_or_else(|| {
            let near = crate::error::nearest(&s, choices.iter().copied());
            let hint = near.map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
            self.bad(key, format!("must be one of {}, got '{s}'{hint}", choices.join(", ")))
        })
    }

    /// A list of strings if present (a single string counts as a list of one).
    pub fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(vec![v.to_string()])),
            Some(v) => match v.read_lock::<Array>() {
                Some(a) => a
                    .iter()
                    .map(|e| e.clone().into_immutable_string().map(|s| s.to_string()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(Some)
                    .map_err(|_| self.wrong_type(key, "an array of strings", v)),
                None => Err(self.wrong_type(key, "an array of strings", v)),
            },
        }
    }

    /// A list of numbers if present.
    pub fn floats_opt(&mut self, key: &'static str) -> Result<Option<Vec<f64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.read_lock::<Array>() {
                Some(a) => a
                    .iter()
                    .map(as_f64)
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| self.wrong_type(key, "an array of numbers", v)),
                None => Err(self.wrong_type(key, "an array of numbers", v)),
            },
        }
    }

    /// A `[lo, hi]` pair with lo < hi, if present.
    pub fn range_opt(&mut self, key: &'static str) -> Result<Option<(f64, f64)>> {
        match self.floats_opt(key)? {
            None => Ok(None),
            Some(v) if v.len() == 2 && v[0] < v[1] => Ok(Some((v[0], v[1]))),
            Some(v) => Err(self.bad(key, format!("must be [lo, hi] with lo < hi, got {v:?}"))),
        }
    }

    /// A nested map if present.
    pub fn map_opt(&mut self, key: &'static str) -> Result<Option<Map>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.read_lock::<Map>().map(|m| Some(m.clone())).ok_or_else(|| self.wrong_type(key, "a map", v)),
        }
    }

    /// A function pointer or closure if present.
    pub fn fn_ptr_opt(&mut self, key: &'static str) -> Result<Option<FnPtr>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| self.wrong_type(key, "a function", v)),
        }
    }

    /// A value of a custom type `T` if present.
    pub fn custom_opt<T: Clone + 'static>(&mut self, key: &'static str, type_label: &str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<T>().map(Some).ok_or_else(|| self.wrong_type(key, type_label, v)),
        }
    }

    /// Any value if present, unchecked (for the caller to interpret).
    pub fn raw(&mut self, key: &'static str) -> Option<Dynamic> {
        self.get(key).cloned()
    }

    /// Whether `key` was given (without reading it).
    pub fn given(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Errors on the first key that no getter asked for.
    pub fn finish(self) -> Result<()> {
        let mut keys: Vec<&str> = self.map.keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(k) = keys.into_iter().find(|k| !self.known.contains(k)) {
            let mut valid: Vec<String> = self.known.iter().map(|s| s.to_string()).collect();
            valid.sort();
            valid.dedup();
            return Err(Error::UnknownOption { func: self.func.to_string(), key: k.to_string(), valid });
        }
        Ok(())
    }
}

/// An attack's options read from a script's map, with the session's seed streams: what the
/// attack registry's `configure` functions read through.
pub struct ScriptOptions<'a, 'm> {
    pub opts: &'a mut Opts<'m>,
    pub ctx: &'a crate::bindings::Ctx,
}

impl crate::attack::AttackOptions for ScriptOptions<'_, '_> {
    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.opts.f64(key, default)
    }

    fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>> {
        self.opts.f64_opt(key)
    }

    fn positive(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.opts.positive(key, default)
    }

    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        self.opts.usize(key, default)
    }

    fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>> {
        self.opts.usize_opt(key)
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        self.opts.bool(key, default)
    }

    fn choice(&mut self, key: &'static str, choices: &[&'static str], default: &'static str) -> Result<&'static str> {
        self.opts.choice(key, choices, default)
    }

    fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        self.opts.string(key, default)
    }

    fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        self.opts.strings_opt(key)
    }

    fn number(&mut self, key: &'static str) -> Result<Option<crate::attack::Number>> {
        use crate::attack::Number;
        Ok(self.opts.raw(key).map(|v| match (v.as_int(), as_f64(&v)) {
            (Ok(i), _) => Number::Int(i),
            (_, Some(f)) => Number::Float(f),
            _ => Number::Other(type_name(&v)),
        }))
    }

    fn seed(&mut self) -> Result<u64> {
        Ok(self.ctx.seed_or_next(self.opts.seed()?))
    }

    fn projection(&mut self, key: &'static str) -> Result<Option<crate::attack::Projection>> {
        self.opts.custom_opt(key, "a Projection")
    }

    fn uncertainty(&mut self, key: &'static str) -> Result<Option<crate::attack::UncertaintyModel>> {
        self.opts.custom_opt(key, "an Uncertainty")
    }

    fn dataset(&mut self, key: &'static str) -> Result<Option<crate::data::Dataset>> {
        self.opts.custom_opt(key, "a Dataset")
    }

    fn given(&self, key: &str) -> bool {
        self.opts.given(key)
    }
}

/// A number as f64 (ints and floats).
pub fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// The script-facing name of a value's type.
pub fn type_name(v: &Dynamic) -> String {
    match v.type_name() {
        "i64" => "an integer".into(),
        "f64" => "a float".into(),
        "bool" => "a boolean".into(),
        "string" | "ImmutableString" => "a string".into(),
        "array" => "an array".into(),
        "map" => "a map".into(),
        "()" => "nothing".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

/// Converts an array of numbers into f64s, naming `what` in the error.
pub fn floats(func: &str, what: &str, a: &Array) -> Result<Vec<f64>> {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            as_f64(v).ok_or_else(|| Error::arg(func, format!("{what}[{i}] must be a number, got {}", type_name(v))))
        })
        .collect()
}

/// Converts an array of strings, naming `what` in the error.
pub fn strings(func: &str, what: &str, a: &Array) -> Result<Vec<String>> {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            v.clone()
                .into_immutable_string()
                .map(|s: ImmutableString| s.to_string())
                .map_err(|_| Error::arg(func, format!("{what}[{i}] must be a string, got {}", type_name(v))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(src: &str) -> Map {
        rhai::Engine::new().eval::<Map>(src).unwrap()
    }

    #[test]
    fn int_accepted_for_float_and_defaults_apply() {
        let m = map("#{ eps: 1 }");
        let mut o = Opts::new("pgd", &m);
        assert_eq!(o.f64("eps", 0.1).unwrap(), 1.0);
        assert_eq!(o.usize("steps", 10).unwrap(), 10);
        o.finish().unwrap();
    }

    #[test]
    fn unknown_key_names_function_key_and_nearest() {
        let m = map("#{ stpes: 3 }");
        let mut o = Opts::new("pgd", &m);
        o.usize("steps", 10).unwrap();
        o.f64("eps", 0.1).unwrap();
        let e = o.finish().unwrap_err();
        assert_eq!(e.to_string(), "pgd: unknown option 'stpes'");
        assert_eq!(e.hint(), "did you mean 'steps'? valid options: eps, steps");
    }

    #[test]
    fn wrong_type_names_the_option() {
        let m = map(r#"#{ steps: "ten" }"#);
        let e = Opts::new("pgd", &m).usize("steps", 10).unwrap_err();
        assert_eq!(e.to_string(), "pgd: option 'steps' must be an integer, got a string (ten)");
    }

    #[test]
    fn choice_lists_valid_values() {
        let m = map(r#"#{ method: "lanczoss" }"#);
        let e = Opts::new("spectrum", &m).choice("method", &["power", "lanczos"], "power").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spectrum: option 'method' must be one of power, lanczos, got 'lanczoss' (did you mean 'lanczos'?)"
        );
    }

    #[test]
    fn negative_integer_rejected() {
        let m = map("#{ n: -3 }");
        let e = Opts::new("head", &m).usize("n", 1).unwrap_err();
        assert_eq!(e.to_string(), "head: option 'n' must be >= 0, got -3");
    }
}
