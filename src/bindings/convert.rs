//! Conversions between Rust values and Rhai values (arrays, maps).

use rhai::{Array, Dynamic, Map};

/// What one element of a script array costs, the estimate counted against the session memory
/// budget: one `Dynamic` (16 bytes on 64-bit targets; a float, integer or bool is stored
/// inline). A dataset column of f32 costs 4 bytes an event, its script array 16.
pub const ELEMENT_BYTES: usize = std::mem::size_of::<Dynamic>();

/// Errors (`Error::Memory`) unless script arrays of `n` elements in all would fit in what is
/// left of the session memory budget now; called before building an array from
/// dataset-sized or model-sized data.
pub fn check_array(func: &str, n: usize) -> crate::Result<()> {
    crate::memory::check(crate::memory::bytes(n, ELEMENT_BYTES), &format!("{func}: an array of {n} values"))
}

/// f64 values as a Rhai array of floats.
pub fn f64_array(v: impl IntoIterator<Item = f64>) -> Array {
    v.into_iter().map(Dynamic::from_float).collect()
}

/// f32 values as a Rhai array of floats.
pub fn f32_array(v: impl IntoIterator<Item = f32>) -> Array {
    v.into_iter().map(|x| Dynamic::from_float(f64::from(x))).collect()
}

/// Integers as a Rhai array.
pub fn int_array(v: impl IntoIterator<Item = i64>) -> Array {
    v.into_iter().map(Dynamic::from_int).collect()
}

/// Booleans as a Rhai array.
pub fn bool_array(v: impl IntoIterator<Item = bool>) -> Array {
    v.into_iter().map(Dynamic::from_bool).collect()
}

/// Strings as a Rhai array.
pub fn string_array<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> Array {
    v.into_iter().map(|s| Dynamic::from(s.as_ref().to_string())).collect()
}

/// A matrix (rows of f64) as an array of arrays.
pub fn matrix(rows: impl IntoIterator<Item = Vec<f64>>) -> Array {
    rows.into_iter().map(|r| Dynamic::from_array(f64_array(r))).collect()
}

/// Builds a map from `(key, value)` pairs, in order.
pub fn map<const N: usize>(pairs: [(&str, Dynamic); N]) -> Map {
    pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()
}
