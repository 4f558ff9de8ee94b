//! The interactive REPL. All logic lives in [`handle_line`], which tests drive without a
//! terminal; `editor.rs` is the thin rustyline shell around it.

mod complete;
mod editor;

pub use complete::Completions;
pub use editor::run;

use crate::docs;
use crate::session::Session;

/// What one REPL entry produced.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// Text to show (printed output, the value, or an error).
    pub text: String,
    /// The entry failed.
    pub error: bool,
    /// The user asked to leave.
    pub quit: bool,
}

/// The REPL's commands, for `:help` and completion.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help NAME", "signature, options and example of a function"),
    (":vars", "the variables defined so far"),
    (":funcs", "every function, one line each"),
    (":reset", "forget all variables and functions"),
    (":quit", "leave (Ctrl-D works too)"),
];

/// Handles one complete entry: a `:command` or script code.
pub fn handle_line(session: &mut Session, line: &str) -> Output {
    let trimmed = line.trim();
    if let Some(cmd) = trimmed.strip_prefix(':') {
        return command(session, cmd);
    }
    if trimmed.is_empty() {
        return Output::default();
    }
    match session.eval_source(line) {
        Ok(value) => {
            let mut text = session.take_output();
            if !value.is_unit() {
                text.push_str(&session.display(&value));
                text.push('\n');
            }
            Output { text, ..Output::default() }
        }
        Err(e) => {
            let mut text = session.take_output();
            text.push_str(&e.rendered);
            Output { text, error: true, quit: false }
        }
    }
}

fn command(session: &mut Session, cmd: &str) -> Output {
    let mut parts = cmd.split_whitespace();
    let name = parts.next().unwrap_or("");
    let arg = parts.next();
    let text = match (name, arg) {
        ("q" | "quit" | "exit", _) => return Output { quit: true, ..Output::default() },
        ("help" | "h", Some(f)) => docs::help_text(&docs::collect(session.engine()), f),
        ("help" | "h", None) => general_help(),
        ("vars", _) => vars(session),
        ("funcs", _) => funcs(session),
        ("reset", _) => {
            session.reset_scope();
            "session reset\n".to_string()
        }
        _ => {
            let names = COMMANDS.iter().map(|(c, _)| c.split(' ').next().unwrap_or(c));
            return Output {
                text: format!("unknown command ':{name}'; commands: {}\n", names.collect::<Vec<_>>().join(" ")),
                error: true,
                quit: false,
            };
        }
    };
    Output { text, ..Output::default() }
}

fn general_help() -> String {
    let mut s =
        String::from("Enter Rhai code to run it; an open brace or a trailing operator continues on the next line.\n");
    for (c, what) in COMMANDS {
        s.push_str(&format!("  {c:<12} {what}\n"));
    }
    s.push_str("Tab completes functions, variables and option keys. Ctrl-C stops a running computation.\n");
    s
}

fn vars(session: &Session) -> String {
    let mut out = String::new();
    for (name, constant, value) in session.scope().iter() {
        let kind = if constant { "const" } else { "let" };
        out.push_str(&format!("{kind} {name} = {}\n", session.display(&value)));
    }
    if out.is_empty() {
        out.push_str("no variables yet\n");
    }
    out
}

fn funcs(session: &Session) -> String {
    let mut out = String::new();
    for d in docs::collect(session.engine()) {
        out.push_str(&format!("{:<50} {}\n", d.signature, d.summary()));
    }
    for f in session.functions().iter_functions() {
        out.push_str(&format!("{}({})  (defined in this session)\n", f.name, f.params.join(", ")));
    }
    out
}

/// True when `text` is an unfinished entry (open brace, trailing operator, open string), so
/// the REPL should read another line instead of reporting an error.
pub fn is_incomplete(parser: &rhai::Engine, text: &str) -> bool {
    use rhai::{LexError, ParseErrorType as P};
    match parser.compile(text) {
        Ok(_) => false,
        Err(e) => {
            matches!(e.err_type(), P::UnexpectedEOF | P::MissingToken(..) | P::BadInput(LexError::UnterminatedString))
                && e.position().line().is_none_or(|l| l >= text.lines().count())
        }
    }
}
