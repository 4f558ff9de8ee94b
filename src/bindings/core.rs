//! Assertions, seeds and small utilities every script (and every example and test) uses.

use rhai::plugin::*;

/// Registers the core functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(core_api).into());
}

#[export_module]
pub mod core_api {
    use crate::bindings::{ctx, RhaiResult};
    use crate::error::Error;

    /// Fails the script with `message` unless `condition` is true.
    ///
    /// ```rhai
    /// assert(1 + 1 == 2, "arithmetic");
    /// ```
    #[rhai_fn(return_raw, name = "assert")]
    pub fn assert_msg(condition: bool, message: &str) -> RhaiResult<()> {
        if condition {
            Ok(())
        } else {
            Err(Error::arg("assert", format!("assertion failed: {message}")).into())
        }
    }

    /// Fails the script unless `condition` is true.
    ///
    /// ```rhai
    /// assert(true);
    /// ```
    #[rhai_fn(return_raw, name = "assert")]
    pub fn assert_plain(condition: bool) -> RhaiResult<()> {
        assert_msg(condition, "condition is false")
    }

    /// Fails the script unless `a == b` (same type and value).
    ///
    /// ```rhai
    /// assert_eq([1, 2].len(), 2);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn assert_eq(a: Dynamic, b: Dynamic) -> RhaiResult<()> {
        let same = a.type_id() == b.type_id() && a.to_string() == b.to_string();
        if same {
            Ok(())
        } else {
            Err(Error::arg("assert_eq", format!("assertion failed: {a} != {b}")).into())
        }
    }

    /// Fails the script unless |a − b| ≤ tol (numbers; integers are accepted).
    ///
    /// ```rhai
    /// assert_close(0.1 + 0.2, 0.3, 1e-12);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn assert_close(a: Dynamic, b: Dynamic, tol: Dynamic) -> RhaiResult<()> {
        use crate::bindings::options::as_f64;
        let (Some(x), Some(y), Some(t)) = (as_f64(&a), as_f64(&b), as_f64(&tol)) else {
            return Err(Error::arg("assert_close", "expects three numbers (a, b, tol)").into());
        };
        if (x - y).abs() <= t {
            Ok(())
        } else {
            Err(Error::arg("assert_close", format!("assertion failed: |{x} - {y}| = {} > {t}", (x - y).abs())).into())
        }
    }

    /// The session seed (`nuisance run --seed N`; 0 by default).
    ///
    /// ```rhai
    /// let s = session_seed();
    /// assert(s >= 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn session_seed(c: NativeCallContext) -> RhaiResult<i64> {
        Ok(ctx(&c)?.seed as i64)
    }

    /// True when running in smoke mode (tests shrink sizes with it).
    ///
    /// ```rhai
    /// let n = if smoke() { 500 } else { 100000 };
    /// assert(n > 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn smoke(c: NativeCallContext) -> RhaiResult<bool> {
        Ok(ctx(&c)?.smoke)
    }

    /// Formats a number with `digits` decimals (stable output for examples).
    ///
    /// ```rhai
    /// assert_eq(fmt(3.14159, 2), "3.14");
    /// ```
    #[rhai_fn(name = "fmt")]
    pub fn fmt_float(x: f64, digits: i64) -> String {
        format!("{x:.prec$}", prec = digits.clamp(0, 17) as usize)
    }

    /// Formats an integer (so `fmt` works on any number).
    ///
    /// ```rhai
    /// assert_eq(fmt(3, 2), "3.00");
    /// ```
    #[rhai_fn(name = "fmt")]
    pub fn fmt_int(x: i64, digits: i64) -> String {
        fmt_float(x as f64, digits)
    }
}
