//! Array sorting that cannot panic, replacing Rhai's built-in `sort`.
//!
//! Rhai's `sort(comparer)` accepts only an integer (or boolean) from the comparer and hands
//! the result to `slice::sort_by`, which panics when the order is not total (a float result
//! is ignored and the elements compare by type instead; NaN floats in a plain `sort()` compare
//! equal to everything). Rhai catches the panic, but the Rust panic message and backtrace
//! still reach the terminal. Here the comparer may return any number (so `|a, b| a - b`
//! sorts floats), a NaN or a non-number is a script error naming the pair, and the merge sort
//! never panics whatever the comparer does.

use std::cmp::Ordering;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult};

use crate::error::{Error, Result};

/// Registers `sort` (with and without a comparer).
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(sort_api).into());
}

/// A stable merge sort of `v` with a fallible comparison; the first error ends it.
pub fn merge_sort<T: Clone>(
    v: &mut [T],
    cmp: &mut dyn FnMut(&T, &T) -> Result<Ordering, EvalBox>,
) -> Result<(), EvalBox> {
    if v.len() <= 1 {
        return Ok(());
    }
    let mid = v.len() / 2;
    merge_sort(&mut v[..mid], cmp)?;
    merge_sort(&mut v[mid..], cmp)?;
    let left = v[..mid].to_vec();
    let right = v[mid..].to_vec();
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < left.len() && j < right.len() {
        // Take from the right only when strictly smaller: equal elements keep their order.
        if cmp(&right[j], &left[i])? == Ordering::Less {
            v[k] = right[j].clone();
            j += 1;
        } else {
            v[k] = left[i].clone();
            i += 1;
        }
        k += 1;
    }
    for x in left[i..].iter().chain(&right[j..]) {
        v[k] = x.clone();
        k += 1;
    }
    Ok(())
}

/// Boxed script error (what the comparer's call returns).
pub type EvalBox = Box<EvalAltResult>;

/// The order a comparer's result means: the sign of a number; `true` puts `a` first.
fn ordering(v: &Dynamic, a: &Dynamic, b: &Dynamic) -> Result<Ordering> {
    if let Ok(i) = v.as_int() {
        return Ok(i.cmp(&0));
    }
    if let Ok(f) = v.as_float() {
        return f.partial_cmp(&0.0).ok_or_else(|| {
            Error::arg("sort", format!("the comparer returned NaN for ({a}, {b}); it must return a number"))
        });
    }
    if let Ok(t) = v.as_bool() {
        return Ok(if t { Ordering::Less } else { Ordering::Greater });
    }
    Err(Error::arg(
        "sort",
        format!(
            "the comparer must return a number (negative: a first, positive: b first), got {} for ({a}, {b})",
            crate::bindings::options::type_name(v)
        ),
    ))
}

/// The natural order of two elements of a plain `sort()`.
fn natural(a: &Dynamic, b: &Dynamic) -> Result<Ordering> {
    let num = |v: &Dynamic| v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64));
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return Ok(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        // A total order: NaN (of either sign) after +∞.
        return Ok(x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan())));
    }
    if a.is_string() && b.is_string() {
        return Ok(a.to_string().cmp(&b.to_string()));
    }
    if let (Ok(x), Ok(y)) = (a.as_char(), b.as_char()) {
        return Ok(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return Ok(x.cmp(&y));
    }
    Err(Error::arg(
        "sort",
        format!(
            "cannot order {} and {} without a comparer; pass one, e.g. sort(|a, b| …)",
            crate::bindings::options::type_name(a),
            crate::bindings::options::type_name(b)
        ),
    ))
}

#[export_module]
pub mod sort_api {
    use std::cmp::Ordering;

    use rhai::{Array, Dynamic, FnPtr};

    use crate::bindings::RhaiResult;

    /// Sorts the array in place with `comparer(a, b)`, which returns a number: negative when
    /// `a` comes first, positive when `b` does, 0 when they tie — an integer or a float, so
    /// `|a, b| a - b` sorts floats (`true`/`false` are accepted as "a first"/"b first"). The
    /// sort is stable. A NaN or a result that is not a number is an error naming the pair.
    ///
    /// ```rhai
    /// let a = [3.0, 1.0, 2.0];
    /// a.sort(|x, y| x - y);
    /// assert_eq(a, [1.0, 2.0, 3.0]);
    /// let b = [#{ s: 0.7 }, #{ s: 0.2 }];
    /// b.sort(|x, y| y.s - x.s);             // descending by a float field
    /// assert_eq(b[0].s, 0.7);
    /// ```
    #[rhai_fn(return_raw, name = "sort")]
    pub fn sort_by(c: NativeCallContext, array: &mut Array, comparer: FnPtr) -> RhaiResult<()> {
        let mut cmp = |a: &Dynamic, b: &Dynamic| -> RhaiResult<Ordering> {
            let v = comparer.call_raw(&c, None, [a.clone(), b.clone()])?;
            Ok(super::ordering(&v, a, b)?)
        };
        super::merge_sort(array.as_mut_slice(), &mut cmp)
    }

    /// Sorts numbers (NaN last), strings, characters or booleans in ascending order; integers
    /// and floats may be mixed.
    ///
    /// ```rhai
    /// let a = [3, 1.5, 2];
    /// a.sort();
    /// assert_eq(a[0], 1.5);
    /// let s = ["b", "a"];
    /// s.sort();
    /// assert_eq(s, ["a", "b"]);
    /// ```
    #[rhai_fn(return_raw, name = "sort")]
    pub fn sort_natural(array: &mut Array) -> RhaiResult<()> {
        let mut cmp = |a: &Dynamic, b: &Dynamic| -> RhaiResult<Ordering> { Ok(super::natural(a, b)?) };
        super::merge_sort(array.as_mut_slice(), &mut cmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sort_is_stable_and_survives_inconsistent_comparers() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        merge_sort(&mut v, &mut |a, b| Ok(a.0.cmp(&b.0))).unwrap();
        assert_eq!(v, vec![(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
        // A comparer that is not an order at all (always "less") still ends, with a permutation.
        let mut w: Vec<i32> = (0..100).rev().collect();
        merge_sort(&mut w, &mut |_, _| Ok(Ordering::Less)).unwrap();
        let mut sorted = w.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
