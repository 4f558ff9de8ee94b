//! The thin layer between Rhai and the domain modules: the only code (with `session`,
//! `stdlib`, `render` and `repl`) that imports rhai.
//!
//! Each file registers one domain area as a `#[export_module]` module, so every function
//! carries its parameter names and doc comment into Rhai's metadata (used by `nuisance doc`,
//! `:help` and completion). Functions read options with [`options::Opts`], call the domain
//! code and convert results back; they do no numerics themselves.

pub mod adversarial;
pub mod attack;
pub mod chain;
pub mod checks;
pub mod collections;
pub mod convert;
pub mod core;
pub mod correct;
pub mod data;
pub mod detector;
pub mod files;
pub mod finetune;
pub mod landscape;
pub mod memory;
pub mod model;
pub mod options;
pub mod part;
pub mod particlenet;
pub mod pfn;
pub mod plot;
pub mod rdsa;
pub mod simulate;
pub mod sort;
pub mod stream;
pub mod stream_sums;
pub mod systematics;
pub mod transfer;
pub mod whole;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Map, NativeCallContext, Position};

use crate::error::Error;
use crate::optim::Control;
use crate::sandbox::Sandbox;

/// Result type of every registered function.
pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The one place where crate errors become script errors: a runtime error whose payload is
/// the map `#{ kind, message, hint }`, so scripts can `try { … } catch (e) { e.kind }`.
impl From<Error> for Box<EvalAltResult> {
    fn from(e: Error) -> Self {
        let mut m = Map::new();
        m.insert("kind".into(), e.kind().into());
        m.insert("message".into(), e.to_string().into());
        m.insert("hint".into(), e.hint().into());
        Box::new(EvalAltResult::ErrorRuntime(m.into(), Position::NONE))
    }
}

/// Per-session state that registered functions need: the sandbox, progress/interrupt
/// control, the session seed and a counter that gives each unseeded random call its own
/// deterministic stream. Carried in the engine's default tag.
#[derive(Clone)]
pub struct Ctx {
    pub sandbox: Arc<Sandbox>,
    pub control: Control,
    pub seed: u64,
    pub smoke: bool,
    /// The shard of a sharded run (`nuisance run --shard I/N`; 0/1 otherwise): chains
    /// opened by the script read only its share.
    pub shard: crate::data::chain::Shard,
    counter: Rc<Cell<u64>>,
}

impl Ctx {
    /// A context with the given sandbox, control and session seed.
    pub fn new(sandbox: Sandbox, control: Control, seed: u64, smoke: bool) -> Self {
        Ctx {
            sandbox: Arc::new(sandbox),
            control,
            seed,
            smoke,
            shard: crate::data::chain::Shard::WHOLE,
            counter: Rc::new(Cell::new(0)),
        }
    }

    /// `explicit` if given, else the next deterministic stream of the session seed.
    pub fn seed_or_next(&self, explicit: Option<u64>) -> u64 {
        explicit.unwrap_or_else(|| {
            let k = self.counter.get();
            self.counter.set(k + 1);
            crate::rng::substream(self.seed, k)
        })
    }

    /// Restarts the stream counter (a new script run with the same seed repeats its numbers).
    pub fn reset_counter(&self) {
        self.counter.set(0);
    }
}

/// The session context of a call.
pub fn ctx(c: &NativeCallContext) -> RhaiResult<Ctx> {
    c.tag()
        .and_then(|t| t.read_lock::<Ctx>().map(|g| g.clone()))
        .ok_or_else(|| "internal error: no nuisance session attached to this engine".into())
}

/// Where warnings go: a function of the message.
pub type WarningSink = Rc<dyn Fn(&str)>;

thread_local! {
    static WARNINGS: RefCell<Option<WarningSink>> = RefCell::new(None);
}

/// Tells the user about something that is not an error (a deprecated option name, a
/// constant column): through the running session's warning sink (`Session::eval_source`
/// routes it; the session prints each distinct warning once), else on stderr.
pub fn warn(message: &str) {
    let sink = WARNINGS.with(|w| w.borrow().clone());
    match sink {
        Some(f) => f(message),
        None => eprintln!("warning: {message}"),
    }
}

/// Routes [`warn`] to `sink` on this thread until the returned guard is dropped.
pub fn route_warnings(sink: WarningSink) -> WarningRoute {
    WarningRoute(WARNINGS.with(|w| w.borrow_mut().replace(sink)))
}

/// Restores the previous warning sink when dropped.
pub struct WarningRoute(Option<WarningSink>);

impl Drop for WarningRoute {
    fn drop(&mut self) {
        let prev = self.0.take();
        WARNINGS.with(|w| *w.borrow_mut() = prev);
    }
}

/// Registers every type and function of nuisance into `engine`.
pub fn register(engine: &mut Engine) {
    core::register(engine);
    data::register(engine);
    files::register(engine);
    chain::register(engine);
    collections::register(engine);
    model::register(engine);
    pfn::register(engine);
    particlenet::register(engine);
    part::register(engine);
    landscape::register(engine);
    plot::register(engine);
    attack::register(engine);
    rdsa::register(engine);
    sort::register(engine);
    stream::register(engine);
    stream_sums::register(engine);
    memory::register(engine);
    whole::register(engine);
    checks::register(engine);
    detector::register(engine);
    systematics::register(engine);
    correct::register(engine);
    simulate::register(engine);
    transfer::register(engine);
}
