//! What an attack's settings are read from, without knowing where they come from: a script's
//! options map (the bindings implement [`AttackOptions`] over their strict option reader) or
//! values given in Rust ([`Values`], for benchmarks and tests). Each attack reads its own keys
//! with its own defaults in its `configure` function, so a default is written once.

use std::collections::BTreeMap;

use super::project::Projection;
use super::uncertainty::UncertaintyModel;
use crate::data::Dataset;
use crate::error::{Error, Result};

/// A number option that may be an integer (a class) or a float (a score or an output value).
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Something else: its type name, for the error.
    Other(String),
}

/// A typed reader of one attack's options. Every getter records the key as valid; the caller
/// rejects the keys nobody asked for once the attack is configured.
pub trait AttackOptions {
    /// A float (an integer is accepted); `default` when absent.
    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64>;
    /// A float if present.
    fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>>;
    /// A finite float > 0; `default` when absent.
    fn positive(&mut self, key: &'static str, default: f64) -> Result<f64>;
    /// A non-negative integer; `default` when absent.
    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize>;
    /// A non-negative integer if present.
    fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>>;
    /// A boolean; `default` when absent.
    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool>;
    /// One of `choices`; `default` when absent.
    fn choice(&mut self, key: &'static str, choices: &[&'static str], default: &'static str) -> Result<&'static str>;
    /// A string; `default` when absent.
    fn string(&mut self, key: &'static str, default: &str) -> Result<String>;
    /// A list of strings if present.
    fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>>;
    /// A list of numbers if present.
    fn floats_opt(&mut self, key: &'static str) -> Result<Option<Vec<f64>>>;
    /// An integer or a float if present.
    fn number(&mut self, key: &'static str) -> Result<Option<Number>>;
    /// The `seed` option, else the caller's next deterministic stream.
    fn seed(&mut self) -> Result<u64>;
    /// A projection if present.
    fn projection(&mut self, key: &'static str) -> Result<Option<Projection>>;
    /// An uncertainty model if present.
    fn uncertainty(&mut self, key: &'static str) -> Result<Option<UncertaintyModel>>;
    /// A dataset if present.
    fn dataset(&mut self, key: &'static str) -> Result<Option<Dataset>>;
    /// Whether `key` was given (without reading it).
    fn given(&self, key: &str) -> bool;
}

/// One option value given from Rust.
#[derive(Clone, Debug)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A list of strings.
    Strs(Vec<String>),
    /// A list of numbers.
    Floats(Vec<f64>),
}

/// Options given from Rust (benchmarks, tests): a key → value table. Absent keys take the
/// attack's defaults; a key of the wrong type is an error; [`Values::finish`] rejects keys the
/// attack did not read.
#[derive(Clone, Debug, Default)]
pub struct Values {
    func: &'static str,
    map: BTreeMap<&'static str, Value>,
    read: Vec<&'static str>,
}

impl Values {
    /// An empty table for attack `func`.
    pub fn new(func: &'static str) -> Self {
        Values { func, ..Default::default() }
    }

    /// The table with `key` set.
    pub fn with(mut self, key: &'static str, v: Value) -> Self {
        self.map.insert(key, v);
        self
    }

    /// Errors on a key no getter asked for.
    pub fn finish(&self) -> Result<()> {
        match self.map.keys().find(|k| !self.read.contains(k)) {
            Some(k) => Err(Error::UnknownOption {
                func: self.func.into(),
                key: k.to_string(),
                valid: self.read.iter().map(|s| s.to_string()).collect(),
                suggestion: None,
            }),
            None => Ok(()),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<Value> {
        self.read.push(key);
        self.map.get(key).cloned()
    }

    fn wrong(&self, key: &str, want: &str) -> Error {
        Error::BadOption { func: self.func.into(), key: key.into(), problem: format!("must be {want}") }
    }
}

impl AttackOptions for Values {
    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        Ok(self.f64_opt(key)?.unwrap_or(default))
    }

    fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Float(v)) => Ok(Some(v)),
            Some(Value::Int(v)) => Ok(Some(v as f64)),
            Some(_) => Err(self.wrong(key, "a number")),
        }
    }

    fn positive(&mut self, key: &'static str, default: f64) -> Result<f64> {
        let v = self.f64(key, default)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(self.wrong(key, "> 0"))
        }
    }

    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.usize_opt(key)?.unwrap_or(default))
    }

    fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(v)) if v >= 0 => Ok(Some(v as usize)),
            Some(_) => Err(self.wrong(key, "an integer >= 0")),
        }
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn choice(&mut self, key: &'static str, choices: &[&'static str], default: &'static str) -> Result<&'static str> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Str(s)) => {
                choices.iter().copied().find(|c| *c == s).ok_or_else(|| self.wrong(key, &choices.join(" or ")))
            }
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::Str(s)) => Ok(s),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Strs(v)) => Ok(Some(v)),
            Some(Value::Str(s)) => Ok(Some(vec![s])),
            Some(_) => Err(self.wrong(key, "a list of strings")),
        }
    }

    fn floats_opt(&mut self, key: &'static str) -> Result<Option<Vec<f64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Floats(v)) => Ok(Some(v)),
            Some(_) => Err(self.wrong(key, "a list of numbers")),
        }
    }

    fn number(&mut self, key: &'static str) -> Result<Option<Number>> {
        Ok(match self.get(key) {
            None => None,
            Some(Value::Int(v)) => Some(Number::Int(v)),
            Some(Value::Float(v)) => Some(Number::Float(v)),
            Some(other) => Some(Number::Other(format!("{other:?}"))),
        })
    }

    fn seed(&mut self) -> Result<u64> {
        Ok(self.usize_opt("seed")?.unwrap_or(0) as u64)
    }

    fn projection(&mut self, key: &'static str) -> Result<Option<Projection>> {
        self.absent(key)
    }

    fn uncertainty(&mut self, key: &'static str) -> Result<Option<UncertaintyModel>> {
        self.absent(key)
    }

    fn dataset(&mut self, key: &'static str) -> Result<Option<Dataset>> {
        self.absent(key)
    }

    fn given(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
}

impl Values {
    /// Typed values (projections, models, datasets) are not given through a [`Values`] table.
    fn absent<T>(&mut self, key: &'static str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => Err(self.wrong(key, "given through the attack's Rust API")),
        }
    }
}
