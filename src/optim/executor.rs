//! The loop that runs a [`Solver`]: limits, interrupt, observers, history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::observe::{Action, Observe, Progress};
use super::{Kv, Solver, Stop};
use crate::error::Result;

/// What a caller hands to long-running domain code: the interrupt flag and whether to show
/// progress. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Control {
    /// Set by Ctrl-C; checked between steps (and inside long steps via [`Control::check`]).
    pub interrupt: Arc<AtomicBool>,
    /// Draw progress bars (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Optional wall-clock limit for each run.
    pub timeout: Option<Duration>,
}

impl Default for Control {
    fn default() -> Self {
        Control { interrupt: Arc::new(AtomicBool::new(false)), progress: true, timeout: None }
    }
}

impl Control {
    /// No progress bars, a private interrupt flag: for tests and library use.
    pub fn quiet() -> Self {
        Control { progress: false, ..Control::default() }
    }

    /// True once Ctrl-C was pressed.
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once Ctrl-C was pressed: for loops inside one long step.
    pub fn check(&self) -> Result<()> {
        if self.interrupted() {
            Err(crate::Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// An executor with this control's interrupt, timeout and (if enabled) a progress bar.
    pub fn executor<'a>(&self, max_iters: usize) -> Executor<'a> {
        let mut ex = Executor::new(max_iters).interrupt(self.interrupt.clone());
        if let Some(t) = self.timeout {
            ex = ex.timeout(t);
        }
        if self.progress {
            ex = ex.observe(Box::new(Progress::new()));
        }
        ex
    }
}

/// The outcome of a run: why it stopped, how many steps, how long, and every step's numbers.
#[derive(Clone, Debug)]
pub struct Run {
    pub stop: Stop,
    pub iters: usize,
    pub elapsed: Duration,
    pub history: Vec<Kv>,
}

/// Owns the loop: check limits → step → record → observers → solver's rule → interrupt.
pub struct Executor<'a> {
    max_iters: usize,
    timeout: Option<Duration>,
    interrupt: Option<Arc<AtomicBool>>,
    observers: Vec<Box<dyn Observe + 'a>>,
}

impl<'a> Executor<'a> {
    /// An executor that stops after `max_iters` steps at the latest.
    pub fn new(max_iters: usize) -> Self {
        Executor { max_iters, timeout: None, interrupt: None, observers: Vec::new() }
    }

    /// Stop with [`Stop::Timeout`] once `t` has passed.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Stop with [`Stop::Interrupted`] once `flag` is set.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// Add an observer (progress bar, script callback, …).
    pub fn observe(mut self, obs: Box<dyn Observe + 'a>) -> Self {
        self.observers.push(obs);
        self
    }

    /// Runs `solver` to a stop. An error inside a step is returned as is, except
    /// [`crate::Error::Interrupted`], which ends the run with [`Stop::Interrupted`].
    pub fn run<S: Solver + ?Sized>(&mut self, solver: &mut S) -> Result<Run> {
        let start = Instant::now();
        let init = solver.init()?;
        for o in &mut self.observers {
            o.init(solver.name(), self.max_iters, &init);
        }
        let mut history = Vec::new();
        let mut iters = 0;
        let stop = loop {
            if let Some(s) = self.limit_reached(iters, start) {
                break s;
            }
            let kv = match solver.step(iters) {
                Ok(kv) => kv,
                Err(crate::Error::Interrupted) => break Stop::Interrupted,
                Err(e) => {
                    self.finish(Stop::Interrupted, iters);
                    return Err(e);
                }
            };
            iters += 1;
            let mut action = Action::Continue;
            for o in &mut self.observers {
                if o.iter(iters, &kv) == Action::Stop {
                    action = Action::Stop;
                }
            }
            history.push(kv);
            if action == Action::Stop {
                break Stop::Callback;
            }
            if let Some(s) = solver.stop() {
                break s;
            }
        };
        self.finish(stop, iters);
        Ok(Run { stop, iters, elapsed: start.elapsed(), history })
    }

    fn limit_reached(&self, iters: usize, start: Instant) -> Option<Stop> {
        if self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Some(Stop::Interrupted);
        }
        if iters >= self.max_iters {
            return Some(Stop::MaxIters);
        }
        if self.timeout.is_some_and(|t| start.elapsed() >= t) {
            return Some(Stop::Timeout);
        }
        None
    }

    fn finish(&mut self, stop: Stop, iters: usize) {
        for o in &mut self.observers {
            o.done(stop, iters);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Counts steps; optionally converges after `conv` steps or sets the interrupt at `intr`.
    struct Count {
        n: usize,
        conv: Option<usize>,
        intr: Option<(usize, Arc<AtomicBool>)>,
    }

    impl Solver for Count {
        fn name(&self) -> &'static str {
            "count"
        }
        fn step(&mut self, _iter: usize) -> Result<Kv> {
            self.n += 1;
            if let Some((at, flag)) = &self.intr {
                if self.n == *at {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            Ok(vec![("n", self.n as f64)])
        }
        fn stop(&self) -> Option<Stop> {
            (Some(self.n) == self.conv).then_some(Stop::Converged)
        }
    }

    #[test]
    fn stops_at_max_iters_and_records_history() {
        let mut s = Count { n: 0, conv: None, intr: None };
        let run = Executor::new(5).run(&mut s).unwrap();
        assert_eq!((run.stop, run.iters, s.n), (Stop::MaxIters, 5, 5));
        assert_eq!(run.history.len(), 5);
        assert_eq!(run.history[4], vec![("n", 5.0)]);
    }

    #[test]
    fn solver_rule_stops_early() {
        let mut s = Count { n: 0, conv: Some(3), intr: None };
        let run = Executor::new(100).run(&mut s).unwrap();
        assert_eq!((run.stop, run.iters), (Stop::Converged, 3));
    }

    #[test]
    fn interrupt_keeps_result_so_far() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut s = Count { n: 0, conv: None, intr: Some((4, flag.clone())) };
        let run = Executor::new(100).interrupt(flag).run(&mut s).unwrap();
        assert_eq!((run.stop, run.iters, s.n), (Stop::Interrupted, 4, 4));
    }

    #[test]
    fn observer_can_stop_and_sees_every_step() {
        struct StopAt(usize, Rc<RefCell<Vec<usize>>>);
        impl Observe for StopAt {
            fn iter(&mut self, iter: usize, _kv: &Kv) -> Action {
                self.1.borrow_mut().push(iter);
                if iter == self.0 {
                    Action::Stop
                } else {
                    Action::Continue
                }
            }
        }
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut s = Count { n: 0, conv: None, intr: None };
        let run = Executor::new(100).observe(Box::new(StopAt(2, seen.clone()))).run(&mut s).unwrap();
        assert_eq!((run.stop, run.iters), (Stop::Callback, 2));
        assert_eq!(*seen.borrow(), vec![1, 2]);
    }

    #[test]
    fn zero_timeout_stops_before_first_step() {
        let mut s = Count { n: 0, conv: None, intr: None };
        let run = Executor::new(100).timeout(Duration::ZERO).run(&mut s).unwrap();
        assert_eq!((run.stop, run.iters), (Stop::Timeout, 0));
    }
}
