//! Observers: things that watch a run (progress bars, script callbacks) without owning it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Kv, Stop};

/// What an observer wants after seeing a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Stop,
}

/// Watches a run. Every method has a no-op default.
pub trait Observe {
    /// Before the first step.
    fn init(&mut self, _name: &str, _max_iters: usize, _kv: &Kv) {}
    /// After step `iter` (1-based count of steps taken).
    fn iter(&mut self, _iter: usize, _kv: &Kv) -> Action {
        Action::Continue
    }
    /// After the last step.
    fn done(&mut self, _stop: Stop, _iters: usize) {}
}

/// A progress bar on stderr; draws nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        Progress { bar: None }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Observe for Progress {
    fn init(&mut self, name: &str, max_iters: usize, _kv: &Kv) {
        let bar = ProgressBar::with_draw_target(Some(max_iters as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>10} {bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        self.bar = Some(bar);
    }

    fn iter(&mut self, iter: usize, kv: &Kv) -> Action {
        if let Some(bar) = &self.bar {
            bar.set_position(iter as u64);
            let msg: Vec<String> = kv.iter().take(4).map(|(k, v)| format!("{k} {v:.4}")).collect();
            bar.set_message(msg.join("  "));
        }
        Action::Continue
    }

    fn done(&mut self, _stop: Stop, _iters: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
