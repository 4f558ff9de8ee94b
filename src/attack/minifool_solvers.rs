//! MiniFool's two batched minimisers as optimizer-framework solvers (one step = one iteration
//! over the events still running): L-BFGS with a per-event line search, and Adam; plus the
//! per-event state they share.

use ndarray::{Array1, Array2, Axis, Zip};
use rayon::prelude::*;

use super::{gather_rows, BatchCost, MiniFoolConfig};
use crate::error::Result;
use crate::optim::{Kv, Solver, Stop};

/// Row-wise dot products of two `n × d` matrices.
fn row_dots(a: &Array2<f32>, b: &Array2<f32>) -> Array1<f32> {
    let mut out = Array1::<f32>::zeros(a.nrows());
    Zip::from(&mut out).and(a.rows()).and(b.rows()).par_for_each(|o, ar, br| *o = ar.dot(&br));
    out
}

/// What a minimiser hands back: points u, iterations, reasons, start and end costs, stop.
pub(crate) type Finished = (Array2<f32>, Vec<u32>, Vec<&'static str>, Vec<f64>, Vec<f64>, Stop);

/// Cost above which an event that never moved from δ = 0 did not converge but stalled: the
/// score term β·(f − g)² is still clearly positive while its gradient vanished, as happens
/// when the score is saturated (a huge logit: f = 0 or 1 in f32, so ∂f/∂x underflows to 0).
/// An event already at its target has cost ≈ 0 (below f32 resolution, ~1e-14).
const STALLED_COST: f64 = 1e-10;

/// State shared by both minimisers: per event the point, cost, gradient, status.
struct Events {
    u: Array2<f32>,
    cost: Vec<f64>,
    grad: Array2<f32>,
    cost_start: Vec<f64>,
    iters: Vec<u32>,
    reason: Vec<&'static str>,
    active: Vec<bool>,
}

impl Events {
    /// Every event at u = 0 (δ = 0, projected when there is a projection), with those whose
    /// gradient is already below `gtol` converged.
    fn start(p: &dyn BatchCost, gtol: f64) -> Result<Self> {
        let (n, d) = p.dim();
        let all: Vec<usize> = (0..n).collect();
        let u = Array2::<f32>::zeros((n, d));
        let (cost, grad) = p.eval(&all, u.view())?;
        let mut ev = Events {
            u,
            cost_start: cost.clone(),
            cost,
            grad,
            iters: vec![0; n],
            reason: vec!["running"; n],
            active: vec![true; n],
        };
        ev.check_gradients(&all, gtol);
        Ok(ev)
    }

    fn active_idx(&self) -> Vec<usize> {
        self.active.iter().enumerate().filter(|(_, a)| **a).map(|(i, _)| i).collect()
    }

    /// Marks the events `idx` whose gradient is below `gtol` as converged.
    fn check_gradients(&mut self, idx: &[usize], gtol: f64) {
        for &i in idx {
            if self.active[i] && self.grad.row(i).iter().all(|v| (f64::from(*v)).abs() <= gtol) {
                self.active[i] = false;
                self.reason[i] = "converged";
            }
        }
    }

    /// The result; an event that stopped as converged without moving from its start while its
    /// cost is not zero is `stalled` (see [`STALLED_COST`]).
    fn finish(self, stop: Stop) -> Finished {
        let reason = self
            .reason
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                "running" => stop.as_str(),
                "converged" if self.cost[i] > STALLED_COST && self.u.row(i).iter().all(|v| *v == 0.0) => "stalled",
                r => r,
            })
            .collect();
        (self.u, self.iters, reason, self.cost_start, self.cost, stop)
    }

    fn progress(&self) -> Kv {
        let n = self.cost.len() as f64;
        let active = self.active.iter().filter(|a| **a).count() as f64;
        vec![("cost", self.cost.iter().sum::<f64>() / n), ("active", active)]
    }
}

/// Batched L-BFGS: a ring of `m` (s, y, ρ) pairs shared by slot; ρ = 0 marks a skipped pair.
pub(super) struct Lbfgs<'a> {
    p: &'a dyn BatchCost,
    ev: Events,
    s: Vec<Array2<f32>>,
    y: Vec<Array2<f32>>,
    rho: Vec<Array1<f32>>,
    gamma: Array1<f32>,
    stored: usize,
    gtol: f64,
    ftol: f64,
}

impl<'a> Lbfgs<'a> {
    pub(super) fn new(p: &'a dyn BatchCost, cfg: &MiniFoolConfig) -> Result<Self> {
        let (n, d) = p.dim();
        let ev = Events::start(p, cfg.gtol)?;
        // First step −g/‖g‖: one σ (‖u‖ = 1) along the steepest descent, as SciPy's L-BFGS-B
        // starts (a unit step in its coordinates). A shorter Newton-like first step of the χ²
        // term alone settles more events in the shallow minimum next to δ = 0 (flip rate 0.209
        // instead of 0.211 at λ = 0.1 on the benchmark); the line search shortens it as needed.
        let gamma = Array1::from_iter(ev.grad.rows().into_iter().map(|g| 1.0 / g.dot(&g).sqrt().max(1e-12)));
        let m = cfg.memory;
        // The (s, y) pairs of every event: 2·m·n·d floats, and ρ.
        let pairs = m.saturating_mul(n).saturating_mul(d.saturating_mul(2).saturating_add(1));
        crate::memory::check(
            crate::memory::bytes(pairs, 4),
            &format!("minifool: L-BFGS memory {m} for {n} events × {d} features"),
        )?;
        Ok(Lbfgs {
            p,
            ev,
            s: vec![Array2::zeros((n, d)); m],
            y: vec![Array2::zeros((n, d)); m],
            rho: vec![Array1::zeros(n); m],
            gamma,
            stored: 0,
            gtol: cfg.gtol,
            ftol: cfg.ftol,
        })
    }

    /// The two-loop recursion: the direction −H·g for the events `idx` (rows in that order),
    /// each event with its own (s, y, ρ) history, in parallel over events.
    fn direction(&self, idx: &[usize]) -> Array2<f32> {
        let m = self.s.len();
        let k = self.stored.min(m);
        let slots: Vec<usize> = (0..k).map(|j| (self.stored - 1 - j) % m).collect();
        let mut q = gather_rows(self.ev.grad.view(), idx).into_owned();
        Zip::from(q.rows_mut()).and(idx).par_for_each(|mut qr, &i| {
            let mut alphas = Vec::with_capacity(k);
            for &j in &slots {
                let a = self.s[j].row(i).dot(&qr) * self.rho[j][i];
                qr.scaled_add(-a, &self.y[j].row(i));
                alphas.push(a);
            }
            qr *= self.gamma[i];
            for (&j, &a) in slots.iter().zip(&alphas).rev() {
                let b = self.y[j].row(i).dot(&qr) * self.rho[j][i];
                qr.scaled_add(a - b, &self.s[j].row(i));
            }
            qr.mapv_inplace(|v| -v);
            // Fall back to steepest descent where the direction does not descend.
            let g = self.ev.grad.row(i);
            let d = g.dot(&qr);
            if d >= 0.0 || d.is_nan() {
                qr.assign(&g);
                qr *= -self.gamma[i];
            }
        });
        q
    }
}

impl Solver for Lbfgs<'_> {
    fn name(&self) -> &'static str {
        "minifool"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let idx = self.ev.active_idx();
        if idx.is_empty() {
            return Ok(self.ev.progress());
        }
        let mut step = self.direction(&idx);
        let u0 = gather_rows(self.ev.u.view(), &idx).into_owned();
        let g0 = gather_rows(self.ev.grad.view(), &idx).into_owned();
        let slope = row_dots(&g0, &step);
        let c0: Vec<f64> = idx.iter().map(|&i| self.ev.cost[i]).collect();
        let line = line_search(self.p, &idx, &u0, &step, &c0, &slope)?;
        // Compact (rows of idx): the step taken s = t·p and the gradient change y.
        Zip::from(step.rows_mut()).and(&line.t).par_for_each(|mut r, &t| r *= t);
        let yv = &line.grad - &g0;
        let (sy, yy) = (row_dots(&step, &yv), row_dots(&yv, &yv));
        // ρ = 0 retires the slot's old pair for every event; s and y rows are overwritten
        // below wherever a new pair is stored (with ρ = 0 their values are never used).
        let slot = self.stored % self.s.len();
        self.rho[slot].fill(0.0);
        for (r, &i) in idx.iter().enumerate() {
            self.ev.iters[i] += 1;
            match line.outcome[r] {
                LineOutcome::Accepted => {}
                LineOutcome::Flat => {
                    self.ev.active[i] = false;
                    self.ev.reason[i] = "converged";
                    continue;
                }
                LineOutcome::Failed => {
                    self.ev.active[i] = false;
                    self.ev.reason[i] = "line_search";
                    continue;
                }
            }
            self.ev.u.row_mut(i).scaled_add(1.0, &step.row(r));
            self.ev.grad.row_mut(i).assign(&line.grad.row(r));
            if sy[r] > 1e-10 * yy[r].max(1e-30).sqrt() && yy[r] > 0.0 {
                self.s[slot].row_mut(i).assign(&step.row(r));
                self.y[slot].row_mut(i).assign(&yv.row(r));
                self.rho[slot][i] = 1.0 / sy[r];
                self.gamma[i] = sy[r] / yy[r];
            }
            let cost = line.cost[r];
            let decrease = c0[r] - cost;
            self.ev.cost[i] = cost;
            if decrease <= self.ftol * cost.abs().max(1.0) {
                self.ev.active[i] = false;
                self.ev.reason[i] = "converged";
            }
        }
        self.stored += 1;
        self.ev.check_gradients(&idx, self.gtol);
        Ok(self.ev.progress())
    }

    fn stop(&self) -> Option<Stop> {
        (!self.ev.active.iter().any(|a| *a)).then_some(Stop::Converged)
    }
}

impl Lbfgs<'_> {
    pub(super) fn finish(self, stop: Stop) -> Finished {
        self.ev.finish(stop)
    }
}

/// How an event's line search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineOutcome {
    /// A step with sufficient decrease was found.
    Accepted,
    /// The decrease the step could still bring is below the f32 resolution of the cost: the
    /// event is at its minimum as far as the arithmetic can tell.
    Flat,
    /// 30 reductions found no sufficient decrease.
    Failed,
}

/// Per event (rows of `idx`): the outcome, the accepted step length, cost and gradient (the
/// gradient row is zero unless accepted).
struct Line {
    outcome: Vec<LineOutcome>,
    t: Vec<f32>,
    cost: Vec<f64>,
    grad: Array2<f32>,
}

/// Relative change of the cost below which f32 arithmetic cannot resolve a decrease (a few
/// ulps of the sum of the χ² and score terms).
const FLAT: f64 = 1e-6;

/// Line search along `pd` from `u0` for the events `idx`, each event on its own:
/// - backtracking: while the Armijo condition fails, to the minimum of the quadratic through
///   λ(0), λ'(0) and λ(t), kept within [0.1·t, 0.5·t]; stop as [`LineOutcome::Flat`] once the
///   first-order decrease t·|λ'(0)| is below [`FLAT`] relative to the cost;
/// - expansion: while an accepted step still descends steeply (λ'(t) < 0.9·λ'(0), the strong
///   curvature condition fails) the step doubles, up to 2¹⁰ times, as long as the cost keeps
///   falling; the best accepted step is kept. This lets an event cross a flat stretch of the
///   score term towards the other class instead of creeping.
fn line_search(
    p: &dyn BatchCost,
    idx: &[usize],
    u0: &Array2<f32>,
    pd: &Array2<f32>,
    c0: &[f64],
    slope: &Array1<f32>,
) -> Result<Line> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_EXPAND: u32 = 10;
    let n = idx.len();
    let mut line = Line {
        outcome: vec![LineOutcome::Failed; n],
        t: vec![1.0; n],
        cost: c0.to_vec(),
        grad: Array2::zeros(u0.raw_dim()),
    };
    // Trial step per event (the accepted one is line.t) and expansions so far.
    let mut trial_t = vec![1.0f32; n];
    let mut expanded = vec![0u32; n];
    let mut pending: Vec<usize> = (0..n).collect();
    for _ in 0..30 + MAX_EXPAND {
        pending.retain(|&r| {
            let searching = line.outcome[r] != LineOutcome::Accepted;
            let flat = searching && f64::from(trial_t[r]) * f64::from(slope[r]).abs() <= FLAT * c0[r].abs().max(1e-12);
            if flat {
                line.outcome[r] = LineOutcome::Flat;
            }
            !flat
        });
        if pending.is_empty() {
            break;
        }
        let sub: Vec<usize> = pending.iter().map(|&r| idx[r]).collect();
        let mut trial = u0.select(Axis(0), &pending);
        let dir = pd.select(Axis(0), &pending);
        let steps: Vec<f32> = pending.iter().map(|&r| trial_t[r]).collect();
        Zip::from(trial.rows_mut())
            .and(dir.rows())
            .and(&steps[..])
            .par_for_each(|mut tr, dr, &tv| tr.scaled_add(tv, &dr));
        let (cost, grad) = p.eval(&sub, trial.view())?;
        let mut still = Vec::new();
        for (k, &r) in pending.iter().enumerate() {
            let (tr, sl) = (f64::from(trial_t[r]), f64::from(slope[r]));
            let armijo = cost[k].is_finite() && cost[k] <= c0[r] + C1 * tr * sl;
            let improves = line.outcome[r] != LineOutcome::Accepted || cost[k] < line.cost[r];
            if armijo && improves {
                line.outcome[r] = LineOutcome::Accepted;
                line.t[r] = trial_t[r];
                line.cost[r] = cost[k];
                line.grad.row_mut(r).assign(&grad.row(k));
                let slope_t = f64::from(grad.row(k).dot(&dir.row(k)));
                if slope_t < C2 * sl && expanded[r] < MAX_EXPAND {
                    expanded[r] += 1;
                    trial_t[r] *= 2.0;
                    still.push(r);
                }
            } else if line.outcome[r] != LineOutcome::Accepted {
                // Minimum of q(τ) = c0 + sl·τ + a·τ², a = (λ(t) − c0 − sl·t)/t².
                let a = (cost[k] - c0[r] - sl * tr) / (tr * tr);
                let tq = if a.is_finite() && a > 0.0 { -sl / (2.0 * a) } else { 0.5 * tr };
                trial_t[r] = tq.clamp(0.1 * tr, 0.5 * tr) as f32;
                still.push(r);
            }
        }
        pending = still;
    }
    for (r, o) in line.outcome.iter().enumerate() {
        if *o != LineOutcome::Accepted {
            line.t[r] = 0.0;
        }
    }
    Ok(line)
}

/// Batched Adam on u with a fixed learning rate; the best point per event is returned.
pub(super) struct Adam<'a> {
    p: &'a dyn BatchCost,
    ev: Events,
    /// Current (not best) point, its first and second moments.
    cur: Array2<f32>,
    m1: Array2<f32>,
    m2: Array2<f32>,
    cur_grad: Array2<f32>,
    lr: f32,
    gtol: f64,
    t: i32,
}

impl<'a> Adam<'a> {
    pub(super) fn new(p: &'a dyn BatchCost, cfg: &MiniFoolConfig) -> Result<Self> {
        let ev = Events::start(p, cfg.gtol)?;
        let dim = ev.u.raw_dim();
        let cur_grad = ev.grad.clone();
        Ok(Adam {
            p,
            ev,
            cur: Array2::zeros(dim),
            m1: Array2::zeros(dim),
            m2: Array2::zeros(dim),
            cur_grad,
            lr: cfg.lr,
            gtol: cfg.gtol,
            t: 0,
        })
    }

    pub(super) fn finish(self, stop: Stop) -> Finished {
        self.ev.finish(stop)
    }
}

impl Solver for Adam<'_> {
    fn name(&self) -> &'static str {
        "minifool"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let idx = self.ev.active_idx();
        if idx.is_empty() {
            return Ok(self.ev.progress());
        }
        self.t += 1;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let lr = self.lr;
        let rows = self.cur.axis_iter_mut(Axis(0)).into_par_iter();
        rows.zip(self.m1.axis_iter_mut(Axis(0)))
            .zip(self.m2.axis_iter_mut(Axis(0)))
            .zip(self.cur_grad.axis_iter(Axis(0)))
            .zip(self.ev.active.par_iter())
            .for_each(|((((mut u, mut m), mut v), g), &on)| {
                if !on {
                    return;
                }
                for (((u, m), v), &g) in u.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g.iter()) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *u -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            });
        let (cost, grad) = self.p.eval(&idx, gather_rows(self.cur.view(), &idx).view())?;
        for (r, &i) in idx.iter().enumerate() {
            self.ev.iters[i] += 1;
            self.cur_grad.row_mut(i).assign(&grad.row(r));
            if cost[r] < self.ev.cost[i] {
                self.ev.cost[i] = cost[r];
                self.ev.u.row_mut(i).assign(&self.cur.row(i));
                self.ev.grad.row_mut(i).assign(&grad.row(r));
            }
            if grad.row(r).iter().all(|v| f64::from(*v).abs() <= self.gtol) {
                self.ev.active[i] = false;
                self.ev.reason[i] = "converged";
            }
        }
        Ok(self.ev.progress())
    }

    fn stop(&self) -> Option<Stop> {
        (!self.ev.active.iter().any(|a| *a)).then_some(Stop::Converged)
    }
}
