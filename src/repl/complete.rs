//! Tab completion: function names, variables, `:commands` and option keys.

use crate::docs;
use crate::session::Session;

/// The words completion can offer, gathered from a session.
#[derive(Clone, Debug, Default)]
pub struct Completions {
    /// Registered (Rust and stdlib) function names: fixed for the binary's lifetime.
    functions: Vec<String>,
    /// Option keys from the documented options tables: fixed too.
    options: Vec<String>,
    /// Functions defined in this session.
    script_functions: Vec<String>,
    variables: Vec<String>,
}

impl Completions {
    /// Everything the session knows right now.
    pub fn from_session(s: &Session) -> Self {
        let docs = docs::collect(s.engine());
        let mut functions: Vec<String> = docs.iter().filter(|d| !d.is_property()).map(|d| d.name.clone()).collect();
        let mut options: Vec<String> = docs.iter().flat_map(|d| d.option_keys()).collect();
        for v in [&mut functions, &mut options] {
            v.sort();
            v.dedup();
        }
        let mut c = Completions { functions, options, ..Completions::default() };
        c.refresh(s);
        c
    }

    /// Re-reads what an entry can change (variables and script functions) without
    /// regenerating the registered functions' metadata.
    pub fn refresh(&mut self, s: &Session) {
        self.script_functions = s.functions().iter_functions().map(|f| f.name.to_string()).collect();
        self.variables = s.scope().iter().map(|(n, _, _)| n.to_string()).collect();
    }

    /// Candidates for the word ending at `pos` in `line`: (start of the word, candidates).
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let head = &line[..pos.min(line.len())];
        let start =
            head.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '/')).map_or(0, |i| i + 1);
        let word = &head[start..];
        if word.starts_with(':') && start == 0 {
            let cmds = super::COMMANDS.iter().map(|(c, _)| c.split(' ').next().unwrap_or(c).to_string());
            return (start, cmds.filter(|c| c.starts_with(word)).collect());
        }
        if word.is_empty() {
            return (start, Vec::new());
        }
        let pool: Vec<&String> = if in_open_map(head) {
            self.options.iter().chain(&self.variables).collect()
        } else {
            self.variables.iter().chain(&self.functions).chain(&self.script_functions).collect()
        };
        let mut out: Vec<String> = pool.into_iter().filter(|c| c.starts_with(word)).cloned().collect();
        out.sort();
        out.dedup();
        (start, out)
    }
}

/// True when the cursor sits inside an unclosed `#{ … }` (where option keys go).
fn in_open_map(head: &str) -> bool {
    let Some(open) = head.rfind("#{") else { return false };
    let after = &head[open..];
    after.matches('{').count() > after.matches('}').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp() -> Completions {
        Completions {
            functions: vec!["read_parquet".into(), "read_csv".into(), "histogram".into()],
            options: vec!["bins".into(), "range".into(), "features".into()],
            script_functions: vec!["read_all".into()],
            variables: vec!["data".into()],
        }
    }

    #[test]
    fn completes_function_names() {
        let (s, c) = comp().complete("let d = read_", 13);
        assert_eq!(s, 8);
        assert_eq!(c, vec!["read_all", "read_csv", "read_parquet"]);
    }

    #[test]
    fn completes_option_keys_inside_a_map() {
        let (_, c) = comp().complete("data.histogram(\"x\", #{ bi", 25);
        assert_eq!(c, vec!["bins"]);
    }

    #[test]
    fn completes_commands() {
        let (_, c) = comp().complete(":he", 3);
        assert_eq!(c, vec![":help"]);
    }
}
