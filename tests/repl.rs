//! REPL transcripts, driven through `repl::handle_line` without a terminal.

mod common;

use nuisance::repl::{handle_line, is_incomplete};

#[test]
fn variables_and_functions_persist_across_entries() {
    let mut s = common::session(None);
    assert_eq!(handle_line(&mut s, "let d = dataset(\"gaussians\", #{ n: 2000, seed: 1 });").text, "");
    assert_eq!(handle_line(&mut s, "fn twice(x) { x * 2 }").text, "");
    assert_eq!(handle_line(&mut s, "twice(d.len)").text, "4000\n");
    assert_eq!(handle_line(&mut s, "d").text, "Dataset(n=2000, features=20, label)\n");
}

#[test]
fn errors_keep_the_session() {
    let mut s = common::session(None);
    handle_line(&mut s, "let a = 5;");
    let out = handle_line(&mut s, "a.column(\"x\")");
    assert!(out.error);
    assert_eq!(handle_line(&mut s, "a + 1").text, "6\n");
}

#[test]
fn commands_vars_reset_help_quit() {
    let mut s = common::session(None);
    handle_line(&mut s, "let k = 3;");
    assert!(handle_line(&mut s, ":vars").text.contains("let k = 3"));
    let help = handle_line(&mut s, ":help histogram").text;
    assert!(help.contains("histogram(") && help.contains("| `bins` |"), "{help}");
    assert!(handle_line(&mut s, ":help histogrm").text.contains("did you mean 'histogram'"));
    assert!(handle_line(&mut s, ":funcs").text.contains("read_parquet("));
    handle_line(&mut s, ":reset");
    assert!(handle_line(&mut s, "k").error);
    assert!(handle_line(&mut s, ":quit").quit);
    assert!(handle_line(&mut s, ":nope").error);
}

#[test]
fn print_output_comes_back() {
    let mut s = common::session(None);
    assert_eq!(handle_line(&mut s, "print(\"hi\"); 1 + 1").text, "hi\n2\n");
}

#[test]
fn open_input_continues() {
    let e = rhai::Engine::new_raw();
    assert!(is_incomplete(&e, "fn f(x) {"));
    assert!(is_incomplete(&e, "let x = 1 +"));
    assert!(is_incomplete(&e, "let s = \"abc"));
    assert!(!is_incomplete(&e, "let x = 1;"));
    assert!(!is_incomplete(&e, "let x = );"));
}

#[test]
fn interrupt_stops_a_runaway_loop_and_keeps_the_session() {
    let mut s = common::session(None);
    handle_line(&mut s, "let kept = 42;");
    let flag = s.control().interrupt.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let out = handle_line(&mut s, "let i = 0; loop { i += 1; }");
    t.join().unwrap();
    assert!(out.error && out.text.contains("interrupted"), "{}", out.text);
    assert_eq!(handle_line(&mut s, "kept").text, "42\n");
}
