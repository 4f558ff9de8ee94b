//! Shared test helpers: a capturing session rooted at the crate folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nuisance::session::{Config, Session};

/// The crate root (tests run with it as the current folder).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A session that captures `print`, in smoke mode, seed 0, reading `script_dir`.
pub fn session(script_dir: Option<&Path>) -> Session {
    session_with(script_dir, Vec::new())
}

/// Like [`session`] with extra readable paths.
pub fn session_with(script_dir: Option<&Path>, allow_read: Vec<PathBuf>) -> Session {
    let config = Config {
        script_dir: script_dir.map(Path::to_path_buf),
        allow_read,
        smoke: true,
        capture: true,
        progress: false,
        ..Config::default()
    };
    Session::new(config).expect("session")
}

/// Runs `src` in a fresh session and returns the captured output or the rendered error.
pub fn run(src: &str) -> Result<String, String> {
    let mut s = session(None);
    s.set_main_name("test.rhai");
    match s.eval_source(src) {
        Ok(_) => Ok(s.take_output()),
        Err(e) => Err(e.rendered),
    }
}

/// The shared data folder next to the repository, if present.
pub fn shared_data() -> Option<PathBuf> {
    let p = root().join("../shared/data");
    p.is_dir().then(|| p.canonicalize().ok()).flatten()
}

/// Like [`run`] with a session configured by `configure` (e.g. a small memory budget).
pub fn run_with(configure: impl FnOnce(&mut Config), src: &str) -> Result<String, String> {
    let mut config = Config { smoke: true, capture: true, progress: false, ..Config::default() };
    configure(&mut config);
    let mut s = Session::new(config).expect("session");
    s.set_main_name("test.rhai");
    match s.eval_source(src) {
        Ok(_) => Ok(s.take_output()),
        Err(e) => Err(e.rendered),
    }
}
