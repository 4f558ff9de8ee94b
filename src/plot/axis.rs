//! One plot axis: its range, linear or logarithmic mapping, tick positions and tick labels.
//!
//! plotters' own log axis puts no tick at all on a range that holds no power of ten, and
//! formats labels with `Debug` (`0.30000000000000004`). This axis picks "nice" ticks itself
//! (1, 2, 2.5, 5 × 10ⁿ on linear axes; powers of ten, or 1-2-5 within a decade, on log axes)
//! and writes labels a reader expects (`0.3`, `10⁻³`, `2×10⁵`).

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// Most ticks an axis will ever carry, whatever it is asked for.
const MAX_TICKS: usize = 50;

/// A plot axis from `lo` to `hi` (`lo < hi`; both positive when `log`).
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    major: Vec<f64>,
    minor: Vec<f64>,
    labels: LabelStyle,
}

/// How tick labels are written.
#[derive(Clone, Debug, PartialEq)]
enum LabelStyle {
    /// Fixed number of decimals.
    Fixed(usize),
    /// `m×10ᵉ` with a fixed number of decimals in the mantissa.
    Scientific(usize),
    /// Shortest plain decimal (log axes within 0.01–10⁴).
    Plain,
    /// Powers of ten as `10ᵉ`, others as `m×10ᵉ` (log axes).
    Powers,
    /// Named categories: the name of the category at the nearest integer position.
    Names(Vec<String>),
}

impl Axis {
    /// An axis over `[lo, hi]` with at most about `max_ticks` labelled ticks.
    ///
    /// The caller guarantees `lo < hi`, both finite, and both positive when `log`.
    pub(crate) fn new(lo: f64, hi: f64, log: bool, max_ticks: usize) -> Self {
        let max_ticks = max_ticks.clamp(2, MAX_TICKS);
        let (major, minor, labels) = if log { log_ticks(lo, hi, max_ticks) } else { linear_ticks(lo, hi, max_ticks) };
        Axis { lo, hi, log, major, minor, labels }
    }

    /// A categorical axis: `names[0]` at the far end (the top of a y axis), the last at
    /// position 0; one labelled tick per name, half a step of room at either end, and the
    /// fraction `top` (0–0.6) of the length kept free beyond the first name (for a legend).
    pub(crate) fn categories(names: &[String], top: f64) -> Self {
        let n = names.len().max(1) as f64;
        let (lo, hi) = (-0.5, n - 0.5);
        let hi = lo + (hi - lo) / (1.0 - top.clamp(0.0, 0.6));
        let major = (0..names.len()).map(|i| i as f64).collect();
        Axis { lo, hi, log: false, major, minor: Vec::new(), labels: LabelStyle::Names(names.to_vec()) }
    }

    /// Lower end of the axis.
    pub(crate) fn lo(&self) -> f64 {
        self.lo
    }

    /// Upper end of the axis.
    pub(crate) fn hi(&self) -> f64 {
        self.hi
    }

    /// Whether the axis is logarithmic.
    pub(crate) fn is_log(&self) -> bool {
        self.log
    }

    /// The labelled tick positions.
    pub(crate) fn major(&self) -> &[f64] {
        &self.major
    }

    /// Position of `v` along the axis: 0 at `lo`, 1 at `hi`.
    fn fraction(&self, v: f64) -> f64 {
        let t = if self.log {
            if v > 0.0 {
                (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
            } else {
                f64::NEG_INFINITY
            }
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        // Keep wild values near the plot so pixel arithmetic never overflows.
        if t.is_nan() {
            0.0
        } else {
            t.clamp(-1.0, 2.0)
        }
    }

    /// The tick label for `v`.
    pub(crate) fn label(&self, v: f64) -> String {
        match &self.labels {
            LabelStyle::Fixed(d) => {
                let d = *d;
                let s = format!("{v:.d$}");
                if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                    format!("{:.d$}", 0.0)
                } else {
                    s
                }
            }
            LabelStyle::Scientific(d) => scientific(v, *d, false),
            LabelStyle::Plain => plain(v),
            LabelStyle::Powers => scientific(v, 0, true),
            LabelStyle::Names(names) => {
                let r = v.round();
                if r >= 0.0 && (r as usize) < names.len() {
                    names[names.len() - 1 - r as usize].clone()
                } else {
                    String::new()
                }
            }
        }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = self.fraction(*value);
        (f64::from(limit.0) + t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        plain(*value)
    }

    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

/// The axis range `[lo, hi]` for data spanning `[dlo, dhi]`.
///
/// `pad` is the fraction of the span added below and above (in log space on log axes);
/// `top` is the fraction of the plot height kept free above the data (for the legend).
/// With `from_zero` a linear axis starts at 0 (or below, for negative data) with no pad.
pub(crate) fn fit(dlo: f64, dhi: f64, log: bool, pad: f64, top: f64, from_zero: bool) -> (f64, f64) {
    let top = top.clamp(0.0, 0.6);
    if log {
        let (mut a, mut b) = (dlo.log10(), dhi.log10());
        if b - a < 1e-9 {
            a -= 0.5;
            b += 0.5;
        }
        let span = b - a;
        let a = a - pad * span;
        let b = b + pad * span;
        let b = a + (b - a) / (1.0 - top);
        (10f64.powf(a), 10f64.powf(b))
    } else {
        let (mut a, mut b) = if from_zero { (dlo.min(0.0), dhi.max(0.0)) } else { (dlo, dhi) };
        if b - a <= f64::EPSILON * a.abs().max(b.abs()).max(1.0) {
            a -= 0.5;
            b += 0.5;
        }
        let span = b - a;
        if !(from_zero && a == 0.0) {
            a -= pad * span;
        }
        b += pad * span;
        let b = a + (b - a) / (1.0 - top);
        (a, b)
    }
}

/// The smallest "nice" step (1, 2, 2.5 or 5 × 10ⁿ) that covers `span` in `max_ticks` steps.
fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span / (max_ticks.max(2) - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * mag)
}

/// Multiples of `step` within `[lo, hi]`.
fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > MAX_TICKS as f64 * 10.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut k = first;
    while k <= last {
        out.push(k * step);
        k += 1.0;
    }
    out
}

/// Number of decimals needed to write multiples of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..=15)
        .find(|d| {
            let scaled = step * 10f64.powi(*d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(15)
}

fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, Vec<f64>, LabelStyle) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (Vec::new(), Vec::new(), LabelStyle::Plain);
    }
    let step = nice_step(span, max_ticks);
    let major = multiples(lo, hi, step);
    let biggest = lo.abs().max(hi.abs());
    let labels = if !(1e-2..1e5).contains(&biggest) {
        let exp = step.abs().log10().floor();
        LabelStyle::Scientific(decimals(step / 10f64.powf(exp)))
    } else {
        LabelStyle::Fixed(decimals(step))
    };
    (major, Vec::new(), labels)
}

fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, Vec<f64>, LabelStyle) {
    let a = (lo.log10() - 1e-9).ceil() as i32;
    let b = (hi.log10() + 1e-9).floor() as i32;
    let mut major = Vec::new();
    let mut minor = Vec::new();
    if b - a + 1 >= 3 {
        // Powers of ten, every `stride`-th one when there are too many decades.
        let decades = (b - a + 1) as usize;
        let stride = decades.div_ceil(max_ticks).max(1) as i32;
        let mut k = a;
        while k <= b {
            major.push(10f64.powi(k));
            k += stride;
        }
        // Faint lines at 2…9 × 10ⁿ help reading values, but clutter many decades.
        if stride == 1 && decades <= 4 {
            for k in (a - 1)..=b {
                for m in 2..=9 {
                    let v = f64::from(m) * 10f64.powi(k);
                    if v > lo && v < hi {
                        minor.push(v);
                    }
                }
            }
        }
    } else {
        // Less than about two decades: label 1, 2 and 5 × 10ⁿ.
        for k in (a - 2)..=(b + 1) {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(k);
                if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                    major.push(v);
                }
            }
        }
        if major.len() < 2 {
            let (lin, _, _) = linear_ticks(lo, hi, max_ticks.min(5));
            major = lin.into_iter().filter(|v| *v > 0.0).collect();
        }
    }
    let readable = major.iter().all(|v| (1e-2..1e4).contains(v));
    let labels = if readable { LabelStyle::Plain } else { LabelStyle::Powers };
    (major, minor, labels)
}

/// Shortest plain decimal for a tick value (at most 10 decimals).
fn plain(v: f64) -> String {
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// `m×10ᵉ` with `d` mantissa decimals; with `bare_powers`, `10ᵉ` when the mantissa is 1.
fn scientific(v: f64, d: usize, bare_powers: bool) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut exp = v.abs().log10().floor() as i32;
    let mut mant = v / 10f64.powi(exp);
    // Rounding the mantissa can carry it to 10 (9.99 → "10.0").
    if format!("{:.d$}", mant.abs()).starts_with("10") {
        exp += 1;
        mant /= 10.0;
    }
    let power = format!("10{}", superscript(exp));
    let m = if bare_powers { plain(mant) } else { format!("{mant:.d$}") };
    match m.as_str() {
        "1" if bare_powers => power,
        "-1" if bare_powers => format!("-{power}"),
        _ => format!("{m}×{power}"),
    }
}

/// An integer in Unicode superscript digits (`-3` → `⁻³`).
fn superscript(n: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut out = String::new();
    if n < 0 {
        out.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        out.push(c.to_digit(10).map_or(c, |d| DIGITS[d as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_read_top_down() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let a = Axis::categories(&names, 0.0);
        // The first name at the top (position 2), the last at 0; half a step of room.
        assert_eq!(labels(&a), ["c", "b", "a"]);
        assert_eq!((a.lo(), a.hi()), (-0.5, 2.5));
        assert_eq!(a.label(5.0), "");
        // A quarter kept free above: the length 3 becomes 4.
        assert_eq!(Axis::categories(&names, 0.25).hi(), 3.5);
    }

    fn labels(axis: &Axis) -> Vec<String> {
        axis.major().iter().map(|v| axis.label(*v)).collect()
    }

    #[test]
    fn linear_ticks_are_nice_and_inside() {
        let a = Axis::new(0.0, 1.0, false, 6);
        assert_eq!(labels(&a), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let a = Axis::new(-3.2, 7.9, false, 8);
        assert_eq!(labels(&a), ["-2", "0", "2", "4", "6"]);
        let a = Axis::new(0.0, 250.0, false, 6);
        assert_eq!(labels(&a), ["0", "50", "100", "150", "200", "250"]);
    }

    #[test]
    fn large_linear_values_use_powers_of_ten() {
        let a = Axis::new(0.0, 3e6, false, 4);
        assert_eq!(labels(&a), ["0", "1×10⁶", "2×10⁶", "3×10⁶"]);
    }

    #[test]
    fn log_ticks_over_decades_and_within_one() {
        let a = Axis::new(0.5, 2000.0, true, 10);
        assert_eq!(labels(&a), ["1", "10", "100", "1000"]);
        // Two powers of ten only: add 2 and 5.
        let a = Axis::new(0.06, 1.6, true, 10);
        assert_eq!(labels(&a), ["0.1", "0.2", "0.5", "1"]);
        let a = Axis::new(1e-6, 1.0, true, 10);
        assert_eq!(labels(&a)[0], "10⁻⁶");
        assert_eq!(labels(&a)[6], "10⁰");
        // No power of ten inside: 1-2-5 ticks instead of none at all.
        let a = Axis::new(0.15, 0.9, true, 10);
        assert_eq!(labels(&a), ["0.2", "0.5"]);
    }

    #[test]
    fn mapping_is_monotone_and_clamped() {
        let a = Axis::new(1.0, 100.0, true, 5);
        assert_eq!(a.map(&1.0, (0, 100)), 0);
        assert_eq!(a.map(&10.0, (0, 100)), 50);
        assert_eq!(a.map(&100.0, (0, 100)), 100);
        // Non-positive values on a log axis land below the axis, not at i32::MIN.
        assert_eq!(a.map(&0.0, (0, 100)), -100);
        let l = Axis::new(0.0, 1.0, false, 5);
        assert_eq!(l.map(&f64::NAN, (0, 100)), 0);
        assert_eq!(l.map(&1e300, (0, 100)), 200);
    }

    #[test]
    fn fit_keeps_room_for_the_legend() {
        let (lo, hi) = fit(0.0, 10.0, false, 0.05, 0.2, true);
        assert_eq!(lo, 0.0);
        // 10.5 must end 80 % of the way up.
        assert!((hi - 10.5 / 0.8).abs() < 1e-12);
        let (lo, hi) = fit(1.0, 100.0, true, 0.0, 0.5, false);
        assert!((lo - 1.0).abs() < 1e-12 && (hi - 1e4).abs() < 1e-6);
        let (lo, hi) = fit(3.0, 3.0, false, 0.0, 0.0, false);
        assert_eq!((lo, hi), (2.5, 3.5));
    }

    #[test]
    fn superscripts_and_plain_numbers() {
        assert_eq!(superscript(-12), "⁻¹²");
        assert_eq!(plain(0.1 * 3.0), "0.3");
        assert_eq!(plain(-0.0), "0");
        assert_eq!(scientific(9.996e4, 1, false), "1.0×10⁵");
        assert_eq!(scientific(2e-7, 0, true), "2×10⁻⁷");
    }
}
