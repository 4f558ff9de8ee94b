//! A session: one Rhai engine with everything registered, its scope, the functions defined so
//! far (for the REPL), the sandbox, the seed and the interrupt flag.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, Scope, AST};

use crate::bindings::{self, Ctx};
use crate::error::{Error, Result};
use crate::limits::engine as limits;
use crate::memory::{self, Budget};
use crate::optim::Control;
use crate::render::{Report, Sources};
use crate::sandbox::Sandbox;
use crate::stdlib::{self, Resolver};

/// How a session is set up.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Session seed: every unseeded random call draws its own stream from it.
    pub seed: u64,
    /// The folder of the script being run (readable).
    pub script_dir: Option<PathBuf>,
    /// Extra readable paths.
    pub allow_read: Vec<PathBuf>,
    /// Writable paths (default: `out/` in the current folder).
    pub allow_write: Vec<PathBuf>,
    /// Arguments after `--`, visible to scripts as `ARGS`.
    pub args: Vec<String>,
    /// Shrink example sizes (`smoke()` returns true).
    pub smoke: bool,
    /// Capture `print` output instead of writing to stdout (tests).
    pub capture: bool,
    /// Show progress bars.
    pub progress: bool,
    /// Override the operation limit.
    pub max_operations: Option<u64>,
    /// Override the array and map size limits (tests use small ones).
    pub max_array_size: Option<usize>,
    /// See `max_array_size`.
    pub max_map_size: Option<usize>,
    /// The session memory budget in bytes (default: half the physical memory, see
    /// [`crate::memory`]).
    pub max_memory: Option<u64>,
    /// Wall-clock limit of one run (`run_file`, or one REPL entry): the script and any Rust
    /// computation it started are stopped when it passes.
    pub timeout: Option<Duration>,
    /// The shard of a sharded run (`nuisance run --shard I/N`): chains read only its share
    /// and written files get its tag (see [`crate::data::chain::shard`]); `None` runs whole.
    pub shard: Option<crate::data::chain::Shard>,
}

/// A script error, rendered and taken apart.
#[derive(Debug)]
pub struct ScriptError {
    pub report: Box<Report>,
    pub rendered: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rendered)
    }
}

/// An engine plus state that persists between entries.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    functions: AST,
    ctx: Ctx,
    output: Rc<RefCell<String>>,
    main_name: String,
    main_text: Rc<RefCell<String>>,
    config: Config,
    budget: Arc<Budget>,
    timed_out: Arc<AtomicBool>,
    warnings: Rc<dyn Fn(&str)>,
}

impl Session {
    /// A new session with the given configuration.
    pub fn new(config: Config) -> Result<Self> {
        let shard = config.shard.unwrap_or_default();
        let sandbox =
            Sandbox::new(config.script_dir.as_deref(), &config.allow_read, &config.allow_write)?.with_shard(shard);
        let control = Control { progress: config.progress, ..Control::default() };
        let mut ctx = Ctx::new(sandbox, control, config.seed, config.smoke);
        ctx.shard = shard;
        let output = Rc::new(RefCell::new(String::new()));
        let timed_out = Arc::new(AtomicBool::new(false));
        let engine = build_engine(&ctx, &config, output.clone(), timed_out.clone());
        let budget = Budget::new(config.max_memory.unwrap_or_else(memory::default_limit));
        let warnings = warning_sink(config.capture, output.clone());
        let mut s = Session {
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            ctx,
            output,
            main_name: "<repl>".into(),
            main_text: Rc::new(RefCell::new(String::new())),
            config,
            budget,
            timed_out,
            warnings,
        };
        s.reset_scope();
        Ok(s)
    }

    /// Clears variables and functions (the REPL's `:reset`).
    pub fn reset_scope(&mut self) {
        self.scope = Scope::new();
        self.functions = AST::empty();
        let args: rhai::Array = self.config.args.iter().map(|a| Dynamic::from(a.clone())).collect();
        self.scope.push_constant("ARGS", args);
        self.ctx.reset_counter();
    }

    /// The engine (for metadata, completion and docs).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The variables defined so far.
    pub fn scope(&self) -> &Scope<'static> {
        &self.scope
    }

    /// Script functions defined so far (REPL).
    pub fn functions(&self) -> &AST {
        &self.functions
    }

    /// The interrupt control shared with Ctrl-C handlers.
    pub fn control(&self) -> &Control {
        &self.ctx.control
    }

    /// The session memory budget (datasets and large buffers count against it).
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Output captured from `print` (when `capture` is set); clears the buffer.
    pub fn take_output(&self) -> String {
        std::mem::take(&mut self.output.borrow_mut())
    }

    /// Runs a script file.
    pub fn run_file(&mut self, path: &Path) -> std::result::Result<(), ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| self.plain_error(Error::io(path, e)))?;
        self.main_name = path.display().to_string();
        self.eval_source(&text).map(|_| ())
    }

    /// Compiles and runs `text` in the persistent scope; functions it defines stay callable.
    pub fn eval_source(&mut self, text: &str) -> std::result::Result<Dynamic, ScriptError> {
        *self.main_text.borrow_mut() = text.to_string();
        self.ctx.control.interrupt.store(false, Ordering::Relaxed);
        self.timed_out.store(false, Ordering::Relaxed);
        let _budget = memory::enter(self.budget.clone());
        let _checked = crate::io_guard::checked_paths();
        let _watchdog = self.config.timeout.map(|t| Watchdog::start(t, &self.ctx.control, &self.timed_out));
        let _route = bindings::route_warnings(self.warnings.clone());
        let ast = self.engine.compile_with_scope(&self.scope, text).map_err(|e| self.render(Report::from_parse(&e)))?;
        let merged = self.functions.merge(&ast);
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged);
        let mut keep = merged;
        keep.clear_statements();
        self.functions = keep;
        result.map_err(|e| self.render(Report::from_eval(&e)))
    }

    /// Every syntax error in `text` (Rhai stops at the first; after each, the offending line
    /// is blanked and parsing resumes, so later independent errors are found too).
    pub fn check_source(&self, text: &str) -> Vec<ScriptError> {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut errors: Vec<ScriptError> = Vec::new();
        *self.main_text.borrow_mut() = text.to_string();
        for _ in 0..50 {
            let src = lines.join("\n");
            let Err(e) = self.engine.compile(&src) else { break };
            let report = Report::from_parse(&e);
            let line = report.at.as_ref().map(|a| a.1);
            let repeat = errors.iter().any(|x| *x.report == report);
            if !repeat {
                errors.push(self.render(report));
            }
            match line {
                Some(l) if l >= 1 && l <= lines.len() && !repeat && !lines[l - 1].trim().is_empty() => {
                    lines[l - 1].clear()
                }
                _ => break,
            }
        }
        errors
    }

    /// How a value reads for people: the registered `to_string` of custom types (so a Dataset
    /// shows as `Dataset(n=…, features=…)`), strings quoted, everything else as Rhai prints it.
    pub fn display(&self, v: &Dynamic) -> String {
        if v.is_string() {
            return format!("{:?}", v.to_string());
        }
        let mut scope = Scope::new();
        scope.push("__value", v.clone());
        self.engine
            .eval_expression_with_scope::<String>(&mut scope, "to_string(__value)")
            .unwrap_or_else(|_| v.to_string())
    }

    /// Sets the name shown for the main source in error messages.
    pub fn set_main_name(&mut self, name: &str) {
        self.main_name = name.to_string();
    }

    fn plain_error(&self, e: Error) -> ScriptError {
        let report = Report { kind: e.kind().into(), message: e.to_string(), hint: e.hint(), at: None, frames: vec![] };
        self.render(report)
    }

    fn render(&self, mut report: Report) -> ScriptError {
        if report.kind == "interrupted" && self.timed_out.load(Ordering::Relaxed) {
            let secs = self.config.timeout.map_or(0.0, |t| t.as_secs_f64());
            report.kind = "timeout".into();
            report.message = format!("timeout: the run took longer than {secs} s");
            report.hint = "raise it with --timeout SECONDS".into();
        }
        if report.kind == "function_not_found" {
            self.explain_missing_function(&mut report);
        }
        let sources = SessionSources { main_name: &self.main_name, main_text: &self.main_text.borrow() };
        let rendered = report.render(&sources);
        ScriptError { report: Box::new(report), rendered }
    }
}

impl Session {
    /// Rewrites "function not found" in script terms and suggests the nearest function, or
    /// lists the forms that exist when only the argument types are wrong.
    fn explain_missing_function(&self, report: &mut Report) {
        report.message = report
            .message
            .replace("&str | ImmutableString | String", "string")
            .replace("i64", "int")
            .replace("f64", "float");
        let called = report
            .message
            .trim_start_matches("function not found: ")
            .split([' ', '('])
            .next()
            .unwrap_or("")
            .to_string();
        let docs = crate::docs::collect(&self.engine);
        let forms: Vec<&str> = docs.iter().filter(|d| d.name == called).map(|d| d.signature.as_str()).collect();
        report.hint = if !forms.is_empty() {
            format!("{called} takes: {}", forms.join("; "))
        } else {
            let mut names: Vec<&str> = docs.iter().filter(|d| !d.is_property()).map(|d| d.name.as_str()).collect();
            names.extend(self.functions.iter_functions().map(|f| f.name));
            match crate::error::nearest(&called, names) {
                Some(n) => format!("did you mean '{n}'?"),
                None => "`nuisance doc` lists every function".to_string(),
            }
        };
    }
}

struct SessionSources<'a> {
    main_name: &'a str,
    main_text: &'a str,
}

impl Sources for SessionSources<'_> {
    fn text(&self, source: Option<&str>) -> Option<String> {
        match source {
            None => Some(self.main_text.to_string()),
            Some(s) => stdlib::source(s).map(str::to_string).or_else(|| std::fs::read_to_string(s).ok()),
        }
    }
    fn name(&self, source: Option<&str>) -> String {
        source.unwrap_or(self.main_name).to_string()
    }
}

/// Where a session's warnings go: each distinct message once per session, as a
/// `warning: …` line in the captured output (tests) or on stderr.
fn warning_sink(capture: bool, output: Rc<RefCell<String>>) -> Rc<dyn Fn(&str)> {
    let seen = RefCell::new(std::collections::HashSet::<String>::new());
    Rc::new(move |m: &str| {
        if !seen.borrow_mut().insert(m.to_string()) {
            return;
        }
        if capture {
            let mut o = output.borrow_mut();
            o.push_str("warning: ");
            o.push_str(m);
            o.push('\n');
        } else {
            eprintln!("warning: {m}");
        }
    })
}

/// Stops a run when its time is up: sets the interrupt flag (so script loops and Rust
/// computations stop as on Ctrl-C) and `timed_out` (so the error says why). Dropping it
/// before the deadline ends its thread.
struct Watchdog {
    _cancel: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn start(timeout: Duration, control: &Control, timed_out: &Arc<AtomicBool>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (interrupt, timed_out) = (control.interrupt.clone(), timed_out.clone());
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                timed_out.store(true, Ordering::Relaxed);
                interrupt.store(true, Ordering::Relaxed);
            }
        });
        Watchdog { _cancel: tx }
    }
}

/// Values of a container examined for nested maps, how many levels down, and how often (at
/// every `NESTED_EVERY`-th use of a map or array variable; a variable's own size is checked at
/// every use).
const NESTED_WINDOW: usize = 16;
const NESTED_DEPTH: usize = 3;
const NESTED_EVERY: u32 = 8;

/// Where the next window of a variable's values starts (the key after the last one examined
/// of a map, the next index of an array), so successive uses cover a wide container.
#[derive(Default)]
struct Cursor {
    key: Option<String>,
    index: usize,
}

/// Whether a value held in `v`, `depth` levels down, is a map of more than `max` entries,
/// among the values examined: at the top a window of [`NESTED_WINDOW`] values starting at
/// `cursor` (advanced), below it the first values of each container. Cost: at most
/// `NESTED_WINDOW` values per level, whatever the container's size. So a map grown in a loop
/// through another value (`m.a[key] = v`) stops near the limit, not at the memory's end.
fn nested_too_large(v: &Dynamic, max: usize, depth: usize, cursor: Option<&mut Cursor>) -> bool {
    use std::ops::Bound;
    let check = |x: &Dynamic| {
        x.read_lock::<rhai::Map>().is_some_and(|m| m.len() > max) || nested_too_large(x, max, depth - 1, None)
    };
    if let Some(m) = v.read_lock::<rhai::Map>() {
        if depth == 0 || m.is_empty() {
            return false;
        }
        let Some(c) = cursor else {
            return m.values().take(NESTED_WINDOW).any(check);
        };
        let mut seen = 0;
        let mut last = None;
        if let Some(k) = &c.key {
            for (key, x) in m.range::<str, _>((Bound::Excluded(k.as_str()), Bound::Unbounded)).take(NESTED_WINDOW) {
                if check(x) {
                    return true;
                }
                seen += 1;
                last = Some(key);
            }
        }
        for (key, x) in m.iter().take(NESTED_WINDOW - seen) {
            if check(x) {
                return true;
            }
            last = Some(key);
        }
        c.key = last.map(|k| k.to_string());
        return false;
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        if depth == 0 || a.is_empty() {
            return false;
        }
        let start = cursor.as_ref().map_or(0, |c| c.index % a.len());
        let end = (start + NESTED_WINDOW).min(a.len());
        if let Some(c) = cursor {
            c.index = end;
        }
        return a[start..end].iter().any(check);
    }
    false
}

fn build_engine(ctx: &Ctx, config: &Config, output: Rc<RefCell<String>>, timed_out: Arc<AtomicBool>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(limits::CALL_LEVELS)
        .set_max_operations(config.max_operations.unwrap_or(limits::OPERATIONS))
        .set_max_string_size(limits::STRING_SIZE)
        .set_max_array_size(config.max_array_size.unwrap_or(limits::ARRAY_SIZE))
        .set_max_map_size(config.max_map_size.unwrap_or(limits::MAP_SIZE))
        .set_max_modules(limits::MODULES)
        .set_max_expr_depths(limits::EXPR_DEPTHS.0, limits::EXPR_DEPTHS.1);
    // Rhai checks a map's size when a function changes it, but not when `m[key] = v` adds a
    // key, so a loop doing that would grow the map without bound: check the map variables
    // before every use instead, and the maps nested in them (`m.a[key] = v`) through a
    // rotating window of their values (`nested_too_large`).
    // (`on_var` is marked deprecated only as "volatile"; it costs ~10 % on a bare `i += 1` loop.)
    let max_map = config.max_map_size.unwrap_or(limits::MAP_SIZE);
    let cursors: RefCell<std::collections::HashMap<String, Cursor>> = RefCell::default();
    let uses = std::cell::Cell::new(0u32);
    #[allow(deprecated)]
    engine.on_var(move |name, _, context| {
        let too_large = context.scope().get(name).filter(|v| v.is_map() || v.is_array()).is_some_and(|v| {
            if v.read_lock::<rhai::Map>().is_some_and(|m| m.len() > max_map) {
                return true;
            }
            uses.set(uses.get().wrapping_add(1));
            if uses.get() % NESTED_EVERY != 0 {
                return false;
            }
            let mut cursors = cursors.borrow_mut();
            let cursor = match cursors.get_mut(name) {
                Some(c) => c,
                None => cursors.entry(name.to_string()).or_default(),
            };
            nested_too_large(v, max_map, NESTED_DEPTH, Some(cursor))
        });
        if too_large {
            return Err(
                rhai::EvalAltResult::ErrorDataTooLarge("Size of object map".into(), rhai::Position::NONE).into()
            );
        }
        Ok(None)
    });
    engine.set_default_tag(Dynamic::from(ctx.clone()));
    engine.set_module_resolver(Resolver::new(ctx.sandbox.clone()));
    let flag = ctx.control.interrupt.clone();
    engine.on_progress(move |_| {
        flag.load(Ordering::Relaxed)
            .then(|| Dynamic::from(if timed_out.load(Ordering::Relaxed) { "timeout" } else { "interrupted" }))
    });
    if config.capture {
        let out = output.clone();
        engine.on_print(move |s| {
            let mut o = out.borrow_mut();
            o.push_str(s);
            o.push('\n');
        });
        engine.on_debug(move |s, _, _| {
            let mut o = output.borrow_mut();
            o.push_str(s);
            o.push('\n');
        });
    } else {
        engine.on_print(|s| println!("{s}"));
        engine.on_debug(|s, src, pos| eprintln!("[{}{pos}] {s}", src.map(|s| format!("{s} ")).unwrap_or_default()));
    }
    bindings::register(&mut engine);
    engine
}

/// Shares one session's sandbox for tools that need it (kept for the bench command).
pub fn sandbox_of(s: &Session) -> Arc<Sandbox> {
    s.ctx.sandbox.clone()
}
