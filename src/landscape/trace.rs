//! The Hessian trace by Hutchinson's estimator: tr(H) = E[vᵀHv] for Rademacher v (±1
//! entries), averaged over samples, with its standard error s/√m. One step is one sample,
//! one [`LinearOp::quadratic_form`] (for the MLP Hessian about half the cost of `H·v`).

use super::op::{rademacher, LinearOp};
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng::{self, Rng};

/// Settings of [`hutchinson`].
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Number of Rademacher vectors at most.
    pub samples: usize,
    /// Stop early once the standard error is below `tol`·|estimate| (0: never).
    pub tol: f64,
    /// Seed of the random vectors.
    pub seed: u64,
}

impl Default for TraceConfig {
    /// 100 samples, no early stop, seed 0.
    fn default() -> Self {
        TraceConfig { samples: 100, tol: 0.0, seed: 0 }
    }
}

/// A trace estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEstimate {
    /// Mean of vᵀHv.
    pub trace: f64,
    /// Standard error of the mean (NaN with fewer than two samples).
    pub stderr: f64,
    /// Samples taken (= quadratic forms vᵀHv).
    pub samples: usize,
    /// Why the run ended.
    pub stop: Stop,
}

/// Hutchinson's trace estimate of `op`.
pub fn hutchinson<O: LinearOp + ?Sized>(op: &O, cfg: &TraceConfig, control: &Control) -> Result<TraceEstimate> {
    let mut s = Hutchinson::new(op, cfg)?;
    let run = control.executor(cfg.samples).run(&mut s)?;
    Ok(s.finish(run.stop))
}

/// The trace solver (Welford running mean and variance of the samples).
pub struct Hutchinson<'a, O: LinearOp + ?Sized> {
    op: &'a O,
    tol: f64,
    rng: Rng,
    n: usize,
    mean: f64,
    m2: f64,
}

impl<'a, O: LinearOp + ?Sized> Hutchinson<'a, O> {
    /// Checks the settings.
    pub fn new(op: &'a O, cfg: &TraceConfig) -> Result<Self> {
        if cfg.samples == 0 {
            return Err(Error::BadOption {
                func: "hessian_trace".into(),
                key: "samples".into(),
                problem: "must be at least 1".into(),
            });
        }
        crate::limits::check("hessian_trace", "samples", cfg.samples, crate::limits::TRACE_SAMPLES)?;
        if !(cfg.tol.is_finite() && cfg.tol >= 0.0) {
            return Err(Error::BadOption {
                func: "hessian_trace".into(),
                key: "tol".into(),
                problem: format!("must be ≥ 0, got {}", cfg.tol),
            });
        }
        Ok(Hutchinson { op, tol: cfg.tol, rng: rng::rng(cfg.seed), n: 0, mean: 0.0, m2: 0.0 })
    }

    fn stderr(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            (self.m2 / (self.n - 1) as f64 / self.n as f64).sqrt()
        }
    }

    /// The estimate so far.
    pub fn finish(self, stop: Stop) -> TraceEstimate {
        let trace = if self.n == 0 { f64::NAN } else { self.mean };
        TraceEstimate { trace, stderr: self.stderr(), samples: self.n, stop }
    }
}

impl<O: LinearOp + ?Sized> Solver for Hutchinson<'_, O> {
    fn name(&self) -> &'static str {
        "trace"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let v = rademacher(self.op.dim(), &mut self.rng);
        let x = self.op.quadratic_form(&v)?;
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        Ok(vec![("trace", self.mean), ("stderr", self.stderr())])
    }

    fn stop(&self) -> Option<Stop> {
        (self.tol > 0.0 && self.n >= 2 && self.stderr() <= self.tol * self.mean.abs()).then_some(Stop::Converged)
    }
}
