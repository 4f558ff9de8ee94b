//! The rustyline shell around [`super::handle_line`]: history, multi-line input,
//! completion, and Ctrl-C that stops a computation instead of the session.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use super::{handle_line, is_incomplete, Completions};
use crate::session::Session;

struct ReplHelper {
    parser: rhai::Engine,
    completions: Completions,
}

impl Helper for ReplHelper {}
impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}
impl Hinter for ReplHelper {
    type Hint = String;
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.parser, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Completer for ReplHelper {
    type Candidate = String;
    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.completions.complete(line, pos))
    }
}

/// Where the history is kept: `$NUISANCE_HISTORY`, else `~/.nuisance_history`.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("NUISANCE_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".nuisance_history")))
}

/// Runs the interactive loop until `:quit` or Ctrl-D. Returns the process exit code.
pub fn run(session: &mut Session) -> i32 {
    let helper = ReplHelper { parser: rhai::Engine::new_raw(), completions: Completions::from_session(session) };
    let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return 2;
        }
    };
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("nuisance {} — :help for help, Ctrl-D to leave", env!("CARGO_PKG_VERSION"));
    loop {
        match editor.readline("nuisance> ") {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                session.control().interrupt.store(false, Ordering::Relaxed);
                let out = handle_line(session, &line);
                print!("{}", out.text);
                if out.quit {
                    break;
                }
                if let Some(h) = editor.helper_mut() {
                    h.completions.refresh(session);
                }
            }
            Err(ReadlineError::Interrupted) => println!("(Ctrl-C: input cleared; Ctrl-D or :quit leaves)"),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        // Written to a temporary name and renamed, like every file nuisance writes.
        let tmp = h.with_extension(format!("tmp-{}", std::process::id()));
        if editor.save_history(&tmp).is_ok() && std::fs::rename(&tmp, h).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    0
}
