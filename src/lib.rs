//! nuisance: probe neural-network classifiers with perturbations that stay inside the
//! experiment's uncertainties, from short Rhai scripts.
//!
//! ```
//! use nuisance::session::{Config, Session};
//! let mut s = Session::new(Config { capture: true, ..Config::default() }).unwrap();
//! s.eval_source("print(fmt(1.0 / 3.0, 3));").unwrap();
//! assert_eq!(s.take_output(), "0.333\n");
//! ```

pub mod attack;
pub mod bench;
pub mod bindings;
pub mod correct;
pub mod data;
pub mod docs;
pub mod error;
pub mod fsutil;
pub mod io_guard;
pub mod landscape;
pub mod limits;
pub mod memory;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod render;
pub mod repl;
pub mod rng;
pub mod sandbox;
pub mod session;
pub mod simulate;
pub mod stats;
pub mod stdlib;
pub mod stream;
pub mod submit;
pub mod systematics;
pub mod transfer;

pub use data::Dataset;
pub use error::{Error, Result};
