//! The `nuisance` binary: exit codes, `check`, `doc`, script arguments and the sandbox.

mod common;

use std::process::Command;

fn nuisance(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nuisance"))
        .args(args)
        .current_dir(common::root())
        .env_remove("NUISANCE_SMOKE")
        .output()
        .expect("run nuisance");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn script(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("nuisance_cli_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn run_passes_arguments_and_exits_zero() {
    let f = script("args.rhai", "print(ARGS.len()); print(ARGS[1]);");
    let (code, out, err) = nuisance(&["run", &f, "--", "a", "b"]);
    assert_eq!((code, out.as_str()), (0, "2\nb\n"), "{err}");
}

#[test]
fn script_error_exits_one_with_rendered_error() {
    let f = script("bad.rhai", "let d = dataset(\"gaussians\", #{ stpes: 1 });");
    let (code, _, err) = nuisance(&["run", &f]);
    assert_eq!(code, 1);
    assert!(err.contains("error: dataset: unknown option 'stpes'") && err.contains("bad.rhai:1:9"), "{err}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(nuisance(&["run"]).0, 2);
    assert_eq!(nuisance(&["frobnicate"]).0, 2);
    assert_eq!(nuisance(&["run", "does/not/exist.rhai"]).0, 2);
}

#[test]
fn check_reports_every_syntax_error() {
    let f = script("syntax.rhai", "let a = 1;\nlet b = (2 + ;\nlet c = 3;\nlet d = [1, 2;\n");
    let (code, _, err) = nuisance(&["check", &f]);
    assert_eq!(code, 1);
    assert!(err.contains("syntax.rhai:2:") && err.contains("syntax.rhai:4:"), "{err}");
    assert!(err.contains("2 syntax error(s)"), "{err}");
    let ok = script("fine.rhai", "let a = 1;");
    assert_eq!(nuisance(&["check", &ok]).0, 0);
}

#[test]
fn doc_shows_one_function_and_json() {
    let (code, out, _) = nuisance(&["doc", "histogram"]);
    assert_eq!(code, 0);
    assert!(out.contains("histogram(") && out.contains("`bins`"), "{out}");
    let (code, out, _) = nuisance(&["doc", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert!(v.as_array().is_some_and(|a| a.len() > 20));
    assert_eq!(nuisance(&["doc", "no_such_function"]).0, 1);
}

#[test]
fn allow_write_extends_the_sandbox() {
    let dir = std::env::temp_dir().join(format!("nuisance_cli_w_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("d.parquet");
    let src = format!("dataset(\"gaussians\", #{{ n: 5, seed: 1 }}).write_parquet(\"{}\");", target.display());
    let f = script("write.rhai", &src);
    assert_eq!(nuisance(&["run", &f]).0, 1, "writing outside out/ must fail by default");
    assert!(!target.exists());
    let (code, _, err) = nuisance(&["run", &f, "--allow-write", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(target.exists());
}

#[test]
fn a_file_larger_than_the_budget_is_refused_before_decoding() {
    let dir = std::env::temp_dir().join(format!("nuisance_cli_budget_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("big.parquet");
    let src = format!("dataset(\"gaussians\", #{{ n: 100000, seed: 1 }}).write_parquet(\"{}\");", target.display());
    let f = script("write_big.rhai", &src);
    let (code, _, err) = nuisance(&["run", &f, "--allow-write", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Decoding 100,000 rows of 20 f32 features, a label (9 bytes with its validity) and a weight
    // (4) needs 100000·(80 + 9 + 4) = 9,300,000 bytes = 8.9 MiB, more than a 4 MiB budget,
    // although the file is far below the 8 GiB read limit: refused by the reader's size check,
    // before any column is decoded.
    let f = script("read_big.rhai", &format!("let d = read_parquet(\"{}\");", target.display()));
    let (code, _, err) = nuisance(&["run", &f, "--allow-read", dir.to_str().unwrap(), "--max-memory", "4M"]);
    assert_eq!(code, 1, "{err}");
    let expected = format!(
        "error: {}: 100000 rows: needs 8.9 MiB, but the session memory budget of 4.0 MiB has 4.0 MiB left (0 B in use)\n",
        target.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    let (code, _, err) = nuisance(&["run", &f, "--allow-read", dir.to_str().unwrap(), "--max-memory", "32M"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    // `nuisance run x.rhai | head -0`: the reader goes away before the script is done.
    use std::process::Stdio;
    let f = script("many.rhai", "for i in 0..200000 { print(i); }");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nuisance"))
        .args(["run", &f])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nuisance");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "expected no output on stderr, got: {err}");
    // Ended by SIGPIPE, as `yes | head` is (a shell reports 141).
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13; // Linux and the BSDs
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}", out.status);
}

#[test]
fn check_and_run_refuse_a_named_pipe() {
    let dir = std::env::temp_dir().join(format!("nuisance_cli_fifo_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("script.rhai");
    let _ = std::fs::remove_file(&p);
    assert!(Command::new("mkfifo").arg(&p).status().unwrap().success());
    let p = p.display().to_string();
    // No writer ever opens the pipe: reading it would block forever.
    let (code, _, err) = nuisance(&["check", &p]);
    assert_eq!(code, 2);
    assert!(err.contains("is a named pipe, not a regular file"), "{err}");
    assert_eq!(nuisance(&["run", &p]).0, 2);
}

#[test]
fn out_linking_outside_the_current_folder_is_not_a_write_root() {
    let base = std::env::temp_dir().join(format!("nuisance_cli_outlink_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (cwd, outside) = (base.join("work"), base.join("outside"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, cwd.join("out")).unwrap();
    let f = script("outlink.rhai", "dataset(\"gaussians\", #{ n: 5, seed: 1 }).write_parquet(\"out/d.parquet\");");
    let out = Command::new(env!("CARGO_BIN_EXE_nuisance")).args(["run", &f]).current_dir(&cwd).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: access denied: writing 'out/d.parquet' is outside the allowed write paths (none: "),
        "{err}"
    );
    assert!(err.contains("out is a symbolic link to ") && err.contains("outside the current folder)"), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn max_memory_and_timeout_flags() {
    // 100,000 gaussians events hold 100000·20·4 + 100000·8 = 8.8 MB, more than 1 MiB.
    let f = script("budget.rhai", "let d = dataset(\"gaussians\", #{ n: 100000, seed: 1 });");
    let (code, _, err) = nuisance(&["run", &f, "--max-memory", "1M"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: dataset: 100000 gaussians events × 20 features: needs 8.4 MiB, but the session memory budget of 1.0 MiB has 1.0 MiB left (0 B in use)\n"), "{err}");
    assert_eq!(nuisance(&["run", &f, "--max-memory", "64M"]).0, 0);
    let (code, _, err) = nuisance(&["run", &f, "--max-memory", "4X"]);
    assert_eq!(code, 2);
    assert!(err.contains("'4X' has an unknown unit 'X' (use K, M, G or T)"), "{err}");
    let f = script("forever.rhai", "let i = 0;\nloop { i += 1; }");
    let (code, _, err) = nuisance(&["run", &f, "--timeout", "0.3"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: timeout: the run took longer than 0.3 s\n"), "{err}");
    assert_eq!(nuisance(&["run", &f, "--timeout", "-1"]).0, 2);
}
