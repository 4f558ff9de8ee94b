//! Every `examples/*.rhai` and `scripts/*.rhai` runs in smoke mode and its printed output is
//! compared with the `.out` file next to it. Regenerate with `UPDATE_EXPECT=1 cargo test`.

mod common;

use std::fs;
use std::path::Path;

fn check_folder(folder: &str) {
    let dir = common::root().join(folder);
    let mut scripts: Vec<_> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "rhai")).collect()
        })
        .unwrap_or_default();
    scripts.sort();
    let mut failures = Vec::new();
    for script in &scripts {
        if let Err(f) = check_one(script) {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{} of {} scripts failed:\n{}", failures.len(), scripts.len(), failures.join("\n"));
}

/// Paths a script declares with `// requires: PATH` (relative to the crate root) that are
/// missing: such a script is skipped with a note (only the shared data beside the repository
/// is declared this way).
fn missing_requirements(script: &Path) -> Vec<String> {
    let text = fs::read_to_string(script).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("// requires:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !common::root().join(p).exists())
        .collect()
}

fn check_one(script: &Path) -> Result<(), String> {
    let missing = missing_requirements(script);
    if !missing.is_empty() {
        eprintln!("skipping {}: missing {}", script.display(), missing.join(", "));
        return Ok(());
    }
    let extra = common::shared_data().into_iter().collect();
    let mut s = common::session_with(script.parent(), extra);
    let name = script.strip_prefix(common::root()).unwrap_or(script).display().to_string();
    s.set_main_name(&name);
    let out = match s.run_file(script) {
        Ok(()) => s.take_output(),
        Err(e) => return Err(format!("--- {name} failed:\n{}{}", s.take_output(), e.rendered)),
    };
    let golden = script.with_extension("out");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(&golden, &out).map_err(|e| format!("{name}: cannot write golden: {e}"))?;
        return Ok(());
    }
    let expected = fs::read_to_string(&golden)
        .map_err(|_| format!("--- {name}: no golden file {} (run with UPDATE_EXPECT=1)", golden.display()))?;
    if expected != out {
        return Err(format!(
            "--- {name}: output differs from {}\n--- expected:\n{expected}--- got:\n{out}",
            golden.display()
        ));
    }
    Ok(())
}

#[test]
fn examples_match_their_golden_output() {
    check_folder("examples");
}

#[test]
fn scripts_match_their_golden_output() {
    check_folder("scripts");
}
