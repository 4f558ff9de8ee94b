//! The layering rule of ARCHITECTURE.md, checked on the sources: domain code never imports
//! rhai (only the bindings, the session, the REPL, the standard library resolver, the error
//! renderer and the docs do), so the numerics cannot move into the script layer by accident.

use std::path::{Path, PathBuf};

/// Folders and files of domain code (relative to `src/`).
const DOMAIN: [&str; 16] = [
    "attack",
    "bench",
    "data",
    "landscape",
    "model",
    "optim",
    "plot",
    "stats",
    "error.rs",
    "fsutil.rs",
    "io_guard.rs",
    "limits.rs",
    "memory.rs",
    "metrics.rs",
    "rng.rs",
    "sandbox.rs",
];

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            rust_files(&e.unwrap().path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

#[test]
fn domain_code_never_imports_rhai() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for d in DOMAIN {
        rust_files(&src.join(d), &mut files);
    }
    // attack/, data/, model/ … each hold many files; a wrong path would make this vacuous.
    assert!(files.len() > 60, "only {} domain files found", files.len());
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains("rhai::") || code.trim_start().starts_with("use rhai")
            })
        })
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(offenders.is_empty(), "domain files using rhai: {offenders:?}");
}
