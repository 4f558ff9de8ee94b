//! The standard library of `.rhai` modules, embedded in the binary, and the module resolver
//! that serves it (`import "std/NAME" as x;`) and sandboxed user files (`import "helpers"`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope};

/// A compiled module as the resolver hands it out.
type SharedModule = std::rc::Rc<Module>;

use crate::sandbox::Sandbox;

/// Every embedded module: (import name, source text).
pub const MODULES: &[(&str, &str)] = &[
    ("std/report", include_str!("../stdlib/report.rhai")),
    ("std/robustness", include_str!("../stdlib/robustness.rhai")),
    ("std/hidden_systematics", include_str!("../stdlib/hidden_systematics.rhai")),
];

/// The source of an embedded module, by import name.
pub fn source(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Resolves `std/…` to the embedded modules and anything else to a `.rhai` file checked
/// against the sandbox's read roots. Modules are compiled once per session. A module that
/// imports itself, directly or through others, is an error naming the cycle (evaluating it
/// would recurse until the stack overflows).
pub struct Resolver {
    sandbox: Arc<Sandbox>,
    cache: RefCell<HashMap<String, SharedModule>>,
    /// The modules being loaded, outermost first.
    loading: RefCell<Vec<String>>,
}

impl Resolver {
    /// A resolver reading user modules within `sandbox`.
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Resolver { sandbox, cache: RefCell::new(HashMap::new()), loading: RefCell::new(Vec::new()) }
    }

    fn file_path(&self, source: Option<&str>, path: &str) -> Result<PathBuf, Box<EvalAltResult>> {
        let mut p = PathBuf::from(path);
        if p.extension().is_none() {
            p.set_extension("rhai");
        }
        // Relative imports are relative to the importing file's folder when it is a file.
        if p.is_relative() {
            if let Some(dir) = source.map(Path::new).and_then(Path::parent).filter(|d| d.is_dir()) {
                p = dir.join(p);
            }
        }
        let text = p.to_string_lossy().into_owned();
        Ok(self.sandbox.check_read(&text)?)
    }

    fn compile(
        &self,
        engine: &Engine,
        name: &str,
        text: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let mut ast =
            engine.compile(text).map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.into(), e.into(), pos)))?;
        ast.set_source(name);
        let m = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.into(), e, pos)))?;
        Ok(m.into())
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        // Cached by what the import resolves to, so the same relative name imported from two
        // folders gives two modules.
        let key = if path.starts_with("std/") {
            path.to_string()
        } else {
            self.file_path(source, path)?.to_string_lossy().into_owned()
        };
        if let Some(m) = self.cache.borrow().get(&key) {
            return Ok(m.clone());
        }
        if let Some(start) = self.loading.borrow().iter().position(|k| *k == key) {
            let loading = self.loading.borrow();
            let mut cycle: Vec<&str> = loading[start..].iter().map(|k| display_name(k)).collect();
            cycle.push(display_name(&key));
            let what = if cycle.len() == 2 { "imports itself" } else { "is part of an import cycle" };
            return Err(crate::Error::arg(
                "import",
                format!("module '{}' {what}: {}", display_name(&key), cycle.join(" → ")),
            )
            .into());
        }
        self.loading.borrow_mut().push(key.clone());
        let module = if path.starts_with("std/") {
            source_or_not_found(path, pos).and_then(|text| self.compile(engine, path, text, pos))
        } else {
            // only a regular file: a named pipe would block the session
            crate::io_guard::read_regular(Path::new(&key))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))
                .and_then(|text| self.compile(engine, &key, &text, pos))
        };
        self.loading.borrow_mut().pop();
        let module = module?;
        self.cache.borrow_mut().insert(key, module.clone());
        Ok(module)
    }
}

/// A module's file name without its folder (the full path is in the error's location).
fn display_name(key: &str) -> &str {
    Path::new(key).file_name().and_then(|n| n.to_str()).unwrap_or(key)
}

fn source_or_not_found(path: &str, pos: Position) -> Result<&'static str, Box<EvalAltResult>> {
    source(path).ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))
}
