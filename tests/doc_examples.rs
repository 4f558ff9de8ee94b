//! Every ```rhai block in the doc comment of a script-visible function (Rust or stdlib) runs
//! as a test (`rhai,no_run` blocks are only compiled), and every function has one.

mod common;

use nuisance::docs;

#[test]
fn every_documented_example_runs() {
    let s = common::session(None);
    let all = docs::collect(s.engine());
    assert!(all.len() > 20, "expected the registered functions, found {}", all.len());
    let mut failures = Vec::new();
    let mut ran = 0;
    for d in &all {
        for (code, run) in d.examples() {
            let mut session = common::session(None);
            session.set_main_name(&format!("doc of {}", d.name));
            let result = if run {
                ran += 1;
                session.eval_source(&code).map(|_| ())
            } else {
                match session.check_source(&code).into_iter().next() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            };
            if let Err(e) = result {
                failures.push(format!("{}:\n{code}{}", d.signature, e.rendered));
            }
        }
    }
    assert!(failures.is_empty(), "{} doc examples failed:\n{}", failures.len(), failures.join("\n"));
    assert!(ran > 20, "only {ran} examples ran");
}

#[test]
fn every_script_function_has_a_doc_and_an_example() {
    let s = common::session(None);
    let missing: Vec<String> = docs::collect(s.engine())
        .into_iter()
        .filter(|d| d.name != "to_string" && d.name != "to_debug" && !d.is_property())
        .filter(|d| d.examples().is_empty())
        .map(|d| d.signature)
        .collect();
    // Overloads share one example: a name is covered when any of its forms has one.
    let all = docs::collect(s.engine());
    let uncovered: Vec<&String> = missing
        .iter()
        .filter(|sig| {
            let name = sig.split('(').next().unwrap_or("");
            !all.iter().any(|d| d.name == name && !d.examples().is_empty())
        })
        .collect();
    assert!(uncovered.is_empty(), "functions without a ```rhai example: {uncovered:#?}");
}

/// Every function whose last parameter is an options map can be called without it: an
/// overload with one parameter fewer exists (issue 19 item 7: options maps are optional).
#[test]
fn every_options_map_is_optional() {
    let s = common::session(None);
    let all = docs::collect(s.engine());
    let params = |sig: &str| -> Vec<String> {
        let inner = sig.split_once('(').map(|(_, r)| r).unwrap_or("");
        let inner = inner.rsplit_once(')').map(|(l, _)| l).unwrap_or("");
        inner.split(", ").filter(|p| !p.is_empty()).map(str::to_string).collect()
    };
    let mut checked = 0;
    let mut missing = Vec::new();
    for d in &all {
        let p = params(&d.signature);
        if p.last().map(String::as_str) != Some("options: map") {
            continue;
        }
        checked += 1;
        let shorter = &p[..p.len() - 1];
        if !all.iter().any(|e| e.name == d.name && params(&e.signature) == shorter) {
            missing.push(d.signature.clone());
        }
    }
    assert!(checked > 30, "only {checked} functions with an options map found");
    assert!(missing.is_empty(), "options maps that cannot be left out: {missing:#?}");
}
