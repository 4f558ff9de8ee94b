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
        .filter(|d| d.name != "to_string" && d.name != "to_debug")
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
