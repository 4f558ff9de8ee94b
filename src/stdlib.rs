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
];

/// The source of an embedded module, by import name.
pub fn source(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Resolves `std/…` to the embedded modules and anything else to a `.rhai` file checked
/// against the sandbox's read roots. Modules are compiled once per session.
pub struct Resolver {
    sandbox: Arc<Sandbox>,
    cache: RefCell<HashMap<String, SharedModule>>,
}

impl Resolver {
    /// A resolver reading user modules within `sandbox`.
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Resolver { sandbox, cache: RefCell::new(HashMap::new()) }
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
        let module = if path.starts_with("std/") {
            let text = source_or_not_found(path, pos)?;
            self.compile(engine, path, text, pos)?
        } else {
            // only a regular file: a named pipe would block the session
            let text = crate::io_guard::read_regular(Path::new(&key))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
            self.compile(engine, &key, &text, pos)?
        };
        self.cache.borrow_mut().insert(key, module.clone());
        Ok(module)
    }
}

fn source_or_not_found(path: &str, pos: Position) -> Result<&'static str, Box<EvalAltResult>> {
    source(path).ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))
}
