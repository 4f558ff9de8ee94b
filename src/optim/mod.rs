//! The optimizer framework every iterative computation runs through (argmin-shaped).
//!
//! A [`Solver`] owns its state and knows how to take one step; the [`Executor`] owns the loop:
//! iteration limit, timeout, the shared interrupt flag, observers (progress bar, script
//! callbacks) and the history. Every run ends with a [`Stop`] reason that is returned, never
//! printed, so an interrupted attack still hands back its best result so far.
//!
//! ```
//! use nuisance::optim::{Control, Kv, Solver, Stop};
//! // Halve x until it is below 1e-3.
//! struct Halve { x: f64 }
//! impl Solver for Halve {
//!     fn name(&self) -> &'static str { "halve" }
//!     fn step(&mut self, _iter: usize) -> nuisance::Result<Kv> {
//!         self.x /= 2.0;
//!         Ok(vec![("x", self.x)])
//!     }
//!     fn stop(&self) -> Option<Stop> { (self.x < 1e-3).then_some(Stop::Converged) }
//! }
//! let mut s = Halve { x: 1.0 };
//! let run = Control::quiet().executor(100).run(&mut s).unwrap();
//! assert_eq!(run.stop, Stop::Converged);
//! assert_eq!(run.iters, 10); // 2^-10 < 1e-3 < 2^-9
//! ```

mod executor;
mod observe;

pub use executor::{Control, Executor, Run};
pub use observe::{Action, Observe, Progress};

use crate::error::Result;

/// Key-value numbers a solver reports after each step (loss, accuracy, …).
pub type Kv = Vec<(&'static str, f64)>;

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The iteration limit was reached.
    MaxIters,
    /// The solver's own convergence rule was met.
    Converged,
    /// A target (e.g. every event flipped) was reached.
    TargetReached,
    /// The user pressed Ctrl-C.
    Interrupted,
    /// The time limit passed.
    Timeout,
    /// An observer (e.g. a script callback) asked to stop.
    Callback,
    /// A validation metric stopped improving (early stopping).
    EarlyStopped,
}

impl Stop {
    /// The name scripts see in `result.stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::MaxIters => "max_iters",
            Stop::Converged => "converged",
            Stop::TargetReached => "target_reached",
            Stop::Interrupted => "interrupted",
            Stop::Timeout => "timeout",
            Stop::Callback => "callback",
            Stop::EarlyStopped => "early_stopped",
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One iterative method. The solver owns its state; read the result from it after the run.
pub trait Solver {
    /// Short name shown on the progress bar.
    fn name(&self) -> &'static str;
    /// Called once before the first step.
    fn init(&mut self) -> Result<Kv> {
        Ok(Kv::new())
    }
    /// Takes step number `iter` (0-based) and reports numbers for observers and the history.
    fn step(&mut self, iter: usize) -> Result<Kv>;
    /// The solver's own stopping rule, checked after every step.
    fn stop(&self) -> Option<Stop> {
        None
    }
}
