//! The effects of [`super::Prepared`] applied at θ: every effect on one column (or on the
//! event weight) in declaration order, row by row with forward-mode derivatives — each effect
//! maps `(x, dx/dθ)` of a row to its new value and derivative. Rows are independent, so they
//! are processed in parallel blocks; each row's arithmetic is the same whatever the threads.

use rayon::prelude::*;

use super::derived::PerNuisance;
use super::nuisance::Prior;
use super::prepared::Theta;
use crate::error::{Error, Result};

const OP: &str = "vary";

/// Rows per parallel task.
const ROWS: usize = 4096;

/// What one effect does, with everything it reads from the nominal dataset computed once.
pub(super) enum Step {
    /// `x·(1 + θ·σ)`.
    Scale { col: usize, sigma: Vec<f64> },
    /// `x + θ·a` (an absolute scale: a = σ; a smearing: a = z·width).
    Shift { col: usize, per_unit: Vec<f64> },
    /// An interpolated alternative of the column's nominal.
    Alternative { col: usize, up: Vec<f64>, down: Vec<f64>, code: super::Code, what: String },
    /// An interpolated alternative of the event weight.
    Weight { up: Vec<f64>, down: Vec<f64>, code: super::Code },
    /// A normalisation factor on the weight.
    Norm { size: f64, prior: Prior },
}

impl Step {
    /// The column it acts on (`None`: the event weight).
    fn col(&self) -> Option<usize> {
        match self {
            Step::Scale { col, .. } | Step::Shift { col, .. } | Step::Alternative { col, .. } => Some(*col),
            Step::Weight { .. } | Step::Norm { .. } => None,
        }
    }
}

/// A block of rows: its first row, its values and its tracked derivatives (`None`: not live).
type Block<'a> = (usize, &'a mut [f64], Vec<Option<&'a mut [f64]>>);

/// One effect as applied to a row: its nuisance and name, the tracked derivative it adds to,
/// and which tracked derivatives exist before it (an earlier effect on the column added to
/// them; the others are exactly 0 and stay untouched).
struct Planned<'a> {
    m: usize,
    name: &'a str,
    step: &'a Step,
    slot: Option<usize>,
    live: Vec<bool>,
}

/// The column `col` (`None`: the weight) at θ with its derivatives for the nuisances in
/// `tracked`: the effects of `steps` on it (in order) applied to its nominal values `x0`;
/// `event_of` gives each row's event (object rows), `names` the nuisances' names. A tracked
/// derivative no effect adds to is `None`.
pub(super) fn column(
    steps: &[(usize, Step)],
    names: &[&str],
    theta: &Theta<'_>,
    tracked: &[usize],
    col: Option<usize>,
    x0: &[f64],
    event_of: Option<&[usize]>,
) -> Result<(Vec<f64>, PerNuisance)> {
    let ColumnPlan { plan, live } = plan(steps, names, tracked, col);
    let rows = x0.len();
    let mut x = x0.to_vec();
    if plan.is_empty() {
        return Ok((x, vec![None; tracked.len()]));
    }
    let mut dx: Vec<Vec<f64>> = live.iter().map(|&l| if l { vec![0.0; rows] } else { Vec::new() }).collect();
    let mut parts: Vec<Block<'_>> =
        x.chunks_mut(ROWS).enumerate().map(|(b, c)| (b * ROWS, c, Vec::with_capacity(dx.len()))).collect();
    for d in dx.iter_mut() {
        if d.is_empty() {
            parts.iter_mut().for_each(|p| p.2.push(None));
        } else {
            parts.iter_mut().zip(d.chunks_mut(ROWS)).for_each(|(p, c)| p.2.push(Some(c)));
        }
    }
    let done: Vec<Result<()>> = parts
        .into_par_iter()
        .map(|(start, xc, mut dc)| apply_rows(&plan, theta, x0, event_of, start, xc, &mut dc))
        .collect();
    // The first failing block in row order: the same error whatever the threads.
    done.into_iter().collect::<Result<()>>()?;
    let dx = dx.into_iter().zip(&live).map(|(d, &l)| l.then_some(d)).collect();
    Ok((x, dx))
}

/// The effects of [`Step`]s on one column (or the weight), planned once for any number of
/// row blocks.
pub(super) struct ColumnPlan<'a> {
    plan: Vec<Planned<'a>>,
    /// Per tracked nuisance, whether an effect adds to its derivative (else it is 0).
    pub(super) live: Vec<bool>,
}

/// The effects of `steps` on `col` (`None`: the weight) in order, with derivatives for the
/// nuisances in `tracked`.
pub(super) fn plan<'a>(
    steps: &'a [(usize, Step)],
    names: &[&'a str],
    tracked: &[usize],
    col: Option<usize>,
) -> ColumnPlan<'a> {
    let mut live = vec![false; tracked.len()];
    let mut plan = Vec::new();
    for (m, step) in steps.iter().filter(|(_, s)| s.col() == col) {
        let slot = tracked.iter().position(|t| t == m);
        plan.push(Planned { m: *m, name: names[*m], step, slot, live: live.clone() });
        if let Some(j) = slot {
            live[j] = true;
        }
    }
    ColumnPlan { plan, live }
}

impl ColumnPlan<'_> {
    /// Rows `start..start + x.len()` of the column at θ, as [`column`] computes them: `x`
    /// gets the values, `dx[j]` (given for the live tracked nuisances only) the derivatives.
    pub(super) fn apply(
        &self,
        theta: &Theta<'_>,
        x0: &[f64],
        event_of: Option<&[usize]>,
        start: usize,
        x: &mut [f64],
        dx: &mut [Option<&mut [f64]>],
    ) -> Result<()> {
        x.copy_from_slice(&x0[start..start + x.len()]);
        for d in dx.iter_mut().flatten() {
            d.fill(0.0);
        }
        apply_rows(&self.plan, theta, x0, event_of, start, x, dx)
    }
}

/// The effects of `plan` on rows `start..start + x.len()` (`x` and the tracked derivatives
/// `dx` are those rows).
fn apply_rows(
    plan: &[Planned<'_>],
    theta: &Theta<'_>,
    x0: &[f64],
    event_of: Option<&[usize]>,
    start: usize,
    x: &mut [f64],
    dx: &mut [Option<&mut [f64]>],
) -> Result<()> {
    for r in 0..x.len() {
        let i = start + r;
        let e = event_of.map_or(i, |ev| ev[i]);
        for p in plan {
            let th = theta.at(p.m, e);
            match p.step {
                Step::Scale { sigma, .. } => {
                    let s = sigma[i];
                    let add = x[r] * s;
                    multiply(p, dx, r, 1.0 + th * s, add);
                    x[r] *= 1.0 + th * s;
                }
                Step::Shift { per_unit, .. } => {
                    let a = per_unit[i];
                    x[r] += th * a;
                    add_to(p, dx, r, a);
                }
                Step::Alternative { up, down, code, what, .. } => {
                    interpolate(p, x, dx, r, i, th, x0[i], up[i], down[i], *code, what)?;
                }
                Step::Weight { up, down, code } => {
                    interpolate(p, x, dx, r, i, th, x0[i], up[i], down[i], *code, "weight")?;
                }
                Step::Norm { size, prior } => {
                    let (f, df) = norm_factor(*prior, *size, th);
                    let add = x[r] * df;
                    multiply(p, dx, r, f, add);
                    x[r] *= f;
                }
            }
        }
    }
    Ok(())
}

/// Row `r` of `dx ← f·dx` for every tracked derivative that exists, and of `dx ← f·dx + add`
/// for the effect's own (from 0 when it is new).
fn multiply(p: &Planned<'_>, dx: &mut [Option<&mut [f64]>], r: usize, f: f64, add: f64) {
    for (j, d) in dx.iter_mut().enumerate() {
        if let Some(d) = d {
            if p.slot == Some(j) {
                d[r] = d[r] * f + add;
            } else if p.live[j] {
                d[r] *= f;
            }
        }
    }
}

/// Row `r` of the effect's own derivative `dx += a`.
fn add_to(p: &Planned<'_>, dx: &mut [Option<&mut [f64]>], r: usize, a: f64) {
    if let Some(Some(d)) = p.slot.map(|j| &mut dx[j]) {
        d[r] += a;
    }
}

/// One row of an interpolated alternative: additively for codes 0 and 2, multiplicatively
/// for codes 1 and 4 (factor `v/x⁰`, 1 where the nominal is 0); the slope goes to the
/// effect's derivative.
#[allow(clippy::too_many_arguments)]
fn interpolate(
    p: &Planned<'_>,
    x: &mut [f64],
    dx: &mut [Option<&mut [f64]>],
    r: usize,
    i: usize,
    th: f64,
    x0: f64,
    up: f64,
    down: f64,
    code: super::Code,
    what: &str,
) -> Result<()> {
    let (v, s) = code.value_and_slope(th, x0, up, down).map_err(|e| {
        Error::arg(
            OP,
            format!(
                "nuisance '{}', '{what}' at row {i}: {}",
                p.name,
                e.to_string().trim_start_matches("systematics: ")
            ),
        )
    })?;
    if code.multiplicative() {
        let (f, df) = if x0 == 0.0 { (1.0, 0.0) } else { (v / x0, s / x0) };
        let add = x[r] * df;
        multiply(p, dx, r, f, add);
        x[r] *= f;
    } else {
        x[r] += v - x0;
        add_to(p, dx, r, s);
    }
    Ok(())
}

/// A normalisation's factor and its derivative at θ.
fn norm_factor(prior: Prior, size: f64, th: f64) -> (f64, f64) {
    match prior {
        Prior::LogNormal => {
            let f = (1.0 + size).powf(th);
            (f, f * (1.0 + size).ln())
        }
        // A Gaussian normalisation cannot make weights negative: clamped at 0.
        Prior::Gaussian if 1.0 + th * size > 0.0 => (1.0 + th * size, size),
        Prior::Gaussian => (0.0, 0.0),
    }
}
