//! Rendering script errors for people: the message, the script line with a caret under the
//! position, a hint, and the chain of calls through script and stdlib functions.
//!
//! Shared by `nuisance run`, `nuisance check` and the REPL.

use rhai::{Dynamic, EvalAltResult, ParseError, Position};

/// Looks up the text of a source by name (`None` = the main script or REPL entry).
pub trait Sources {
    fn text(&self, source: Option<&str>) -> Option<String>;
    fn name(&self, source: Option<&str>) -> String;
}

/// A script error split into the parts people read and scripts catch.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub kind: String,
    pub message: String,
    pub hint: String,
    /// Innermost position: (source, line, column).
    pub at: Option<(Option<String>, usize, usize)>,
    /// Calls from the innermost outwards: (function, source, line, column).
    pub frames: Vec<(String, Option<String>, usize, usize)>,
}

impl Report {
    /// Takes apart a runtime error, walking the nested function-call errors.
    pub fn from_eval(err: &EvalAltResult) -> Self {
        let mut frames = Vec::new();
        let mut cur = err;
        let mut src: Option<String> = None;
        let mut outer_pos: Vec<(String, Option<String>, Position)> = Vec::new();
        loop {
            match cur {
                EvalAltResult::ErrorInFunctionCall(name, fsrc, inner, pos) => {
                    outer_pos.push((name.clone(), src.clone(), *pos));
                    src = (!fsrc.is_empty()).then(|| fsrc.clone());
                    cur = inner;
                }
                EvalAltResult::ErrorInModule(name, inner, pos) => {
                    outer_pos.push((format!("import \"{name}\""), src.clone(), *pos));
                    src = Some(name.clone());
                    cur = inner;
                }
                _ => break,
            }
        }
        // A frame's position is where the *outer* code called it.
        for (name, s, pos) in outer_pos.into_iter().rev() {
            if let (Some(l), Some(c)) = (pos.line(), pos.position()) {
                frames.push((name, s, l, c));
            }
        }
        let pos = cur.position();
        let at = pos.line().map(|l| (src, l, pos.position().unwrap_or(1)));
        let (kind, message, hint) = innermost(cur);
        Report { kind, message, hint, at, frames }
    }

    /// A parse (syntax) error.
    pub fn from_parse(err: &ParseError) -> Self {
        let pos = err.position();
        let msg = strip_position(&err.to_string(), pos);
        Report {
            kind: "syntax".into(),
            message: format!("syntax error: {msg}"),
            hint: String::new(),
            at: pos.line().map(|l| (None, l, pos.position().unwrap_or(1))),
            frames: Vec::new(),
        }
    }

    /// The text people read.
    pub fn render(&self, sources: &dyn Sources) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some((src, line, col)) = &self.at {
            out.push_str(&format!("  --> {}:{line}:{col}\n", sources.name(src.as_deref())));
            if let Some(text) = sources.text(src.as_deref()) {
                if let Some(code) = text.lines().nth(line.saturating_sub(1)) {
                    let w = line.to_string().len();
                    out.push_str(&format!(
                        "{:w$} |\n{line} | {code}\n{:w$} | {}^\n",
                        "",
                        "",
                        " ".repeat(col.saturating_sub(1))
                    ));
                }
            }
        }
        if !self.hint.is_empty() {
            out.push_str(&format!("  = hint: {}\n", self.hint));
        }
        for (name, src, line, col) in &self.frames {
            out.push_str(&format!("  = in call to {name} at {}:{line}:{col}\n", sources.name(src.as_deref())));
        }
        out
    }
}

fn innermost(err: &EvalAltResult) -> (String, String, String) {
    match err {
        EvalAltResult::ErrorRuntime(payload, _) => from_payload(payload),
        EvalAltResult::ErrorTerminated(..) => ("interrupted".into(), "interrupted (Ctrl-C)".into(), String::new()),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => (
            "function_not_found".into(),
            format!("function not found: {sig}"),
            "check the argument types and count; `nuisance doc NAME` shows the signatures".into(),
        ),
        EvalAltResult::ErrorModuleNotFound(name, _) => (
            "module_not_found".into(),
            format!("module not found: {name}"),
            format!(
                "standard modules: {}",
                crate::stdlib::MODULES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            use crate::limits::engine as l;
            (
                "limit".into(),
                format!("{what} is over the limit"),
                format!(
                    "arrays hold at most {} elements, object maps {} entries, strings {} MiB (README, section 'Limits')",
                    l::ARRAY_SIZE,
                    l::MAP_SIZE,
                    l::STRING_SIZE >> 20
                ),
            )
        }
        EvalAltResult::ErrorTooManyOperations(_) => (
            "limit".into(),
            "the script exceeded the operation limit".into(),
            "raise it with --max-operations N, or move the loop into a vectorised function".into(),
        ),
        other => ("script".into(), strip_position(&other.to_string(), other.position()), String::new()),
    }
}

fn from_payload(payload: &Dynamic) -> (String, String, String) {
    if let Some(m) = payload.read_lock::<rhai::Map>() {
        let get = |k: &str| m.get(k).map(|v| v.to_string()).unwrap_or_default();
        if m.contains_key("message") {
            return (get("kind"), get("message"), get("hint"));
        }
    }
    ("thrown".into(), payload.to_string(), String::new())
}

fn strip_position(text: &str, pos: Position) -> String {
    let suffix = format!(" ({pos})");
    text.strip_suffix(&suffix).unwrap_or(text).to_string()
}
