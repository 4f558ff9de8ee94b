//! One error enum for the whole crate.
//!
//! Every message names the operation, what was expected and what was found; `hint()` says
//! what to do next. Errors cross into Rhai in exactly one place (`bindings::to_rhai`), where
//! they become a catchable map `#{ kind, message, hint }`.

use std::path::PathBuf;

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in nuisance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // === Files ===
    /// A file could not be opened, read or written.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// A file was read but its contents are not what was expected.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A script tried to touch a path outside the sandbox.
    #[error("access denied: {action} '{path}' is outside the allowed {which} paths ({allowed})")]
    Sandbox { action: &'static str, path: PathBuf, which: &'static str, allowed: String },

    // === Data ===
    /// A column name that does not exist.
    #[error("{op}: unknown column '{name}'; available: {available}")]
    UnknownColumn { op: &'static str, name: String, available: String },
    /// NaN or infinite values where finite numbers are required.
    #[error("{op}: {count} non-finite value(s) (NaN or Inf) in column '{column}', first at row {row}")]
    NonFinite { op: String, column: String, count: usize, row: usize },
    /// Shapes or sizes that do not agree.
    #[error("{op}: expected {expected}, got {got}")]
    Shape { op: &'static str, expected: String, got: String },
    /// A result with no rows (or no columns) where some are needed.
    #[error("{op}: {what} is empty")]
    Empty { op: &'static str, what: String },

    // === Options and arguments ===
    /// An option key that the function does not know; `suggestion` (when set) replaces the
    /// nearest-key guess in the hint (an old name, or an option of another function).
    #[error("{func}: unknown option '{key}'")]
    UnknownOption { func: String, key: String, valid: Vec<String>, suggestion: Option<String> },
    /// An option or argument with a wrong type or value.
    #[error("{func}: option '{key}' {problem}")]
    BadOption { func: String, key: String, problem: String },
    /// A positional argument with a wrong value.
    #[error("{func}: {problem}")]
    BadArgument { func: String, problem: String },

    // === Numerics ===
    /// A matrix that must be positive definite is not.
    #[error("{op}: matrix is not positive definite ({detail})")]
    NotPositiveDefinite { op: &'static str, detail: String },
    /// An iterative method did not reach its tolerance.
    #[error("{what} did not converge in {iters} iterations (residual {residual:.2e})")]
    NotConverged { what: &'static str, iters: usize, residual: f64 },
    /// An error from the tensor backend.
    #[error("tensor backend: {0}")]
    Tensor(String),

    // === Limits ===
    /// A size above one of the limits of `crate::limits`.
    #[error("{func}: {what} {value} is over the limit of {limit}")]
    Limit { func: String, what: String, value: String, limit: usize },
    /// A request that does not fit in the session memory budget (`crate::memory`).
    #[error(
        "{what}: needs {}, but the session memory budget of {} has {} left ({} in use)",
        crate::memory::fmt_bytes(*requested),
        crate::memory::fmt_bytes(*budget),
        crate::memory::fmt_bytes(budget.saturating_sub(*used)),
        crate::memory::fmt_bytes(*used)
    )]
    Memory { what: String, requested: u64, used: u64, budget: u64 },
    /// Model outputs (scores) that are NaN or infinite, where a metric needs numbers.
    #[error("{op}: {count} of {n} events have a NaN or infinite score (first: event {first})")]
    NonFiniteScores { op: String, count: usize, n: usize, first: usize },

    // === Control ===
    /// The user interrupted a computation (Ctrl-C).
    #[error("interrupted")]
    Interrupted,

    // === Build ===
    /// A function that needs an optional cargo feature this build was made without.
    #[error("{what} needs the `{feature}` cargo feature: cargo build --release --features {feature} ({requires})")]
    FeatureMissing { what: &'static str, feature: &'static str, requires: &'static str },
}

impl Error {
    /// A stable machine-readable kind, for `try { … } catch (e) { e.kind }` in scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Format { .. } => "format",
            Error::Sandbox { .. } => "sandbox",
            Error::UnknownColumn { .. } => "unknown_column",
            Error::NonFinite { .. } => "non_finite",
            Error::Shape { .. } => "shape",
            Error::Empty { .. } => "empty",
            Error::UnknownOption { .. } => "unknown_option",
            Error::BadOption { .. } => "bad_option",
            Error::BadArgument { .. } => "bad_argument",
            Error::NotPositiveDefinite { .. } => "not_positive_definite",
            Error::NotConverged { .. } => "not_converged",
            Error::Tensor(_) => "tensor",
            Error::Limit { .. } => "limit",
            Error::Memory { .. } => "memory",
            Error::NonFiniteScores { .. } => "non_finite",
            Error::Interrupted => "interrupted",
            Error::FeatureMissing { .. } => "feature_missing",
        }
    }

    /// What the user can do about it; empty when there is nothing useful to say.
    pub fn hint(&self) -> String {
        match self {
            Error::UnknownOption { key, valid, suggestion, .. } => {
                let near = nearest(key, valid.iter().map(String::as_str));
                let list = valid.join(", ");
                match (suggestion, near) {
                    (Some(s), _) => format!("{s}; valid options: {list}"),
                    (None, Some(n)) => format!("did you mean '{n}'? valid options: {list}"),
                    (None, None) => format!("valid options: {list}"),
                }
            }
            Error::UnknownColumn { name, available, .. } => match nearest(name, available.split(", ")) {
                Some(n) => format!("did you mean '{n}'?"),
                None => String::new(),
            },
            Error::NonFinite { .. } => "pass #{ drop_nonfinite: true } when reading to drop those rows".into(),
            Error::Sandbox { which, .. } => {
                format!("run with --allow-{} PATH to allow it", if *which == "write" { "write" } else { "read" })
            }
            Error::NotPositiveDefinite { .. } => {
                "check the covariance for a zero variance or a correlation of ±1".into()
            }
            Error::Limit { .. } => "the limits are listed in the README, section 'Limits'".into(),
            Error::Memory { .. } => {
                "raise the budget with --max-memory SIZE (e.g. 8G) or set_memory_limit(\"8G\") in the script, or keep fewer datasets alive".into()
            }
            Error::NonFiniteScores { .. } => {
                "the model's weights or the events contain NaN or Inf (a diverged training, a bad file)".into()
            }
            Error::Interrupted => "the computation was stopped by Ctrl-C".into(),
            Error::FeatureMissing { .. } => {
                "optional features are listed in the README, section 'Optional features'".into()
            }
            _ => String::new(),
        }
    }

    /// Shorthand for a bad positional argument.
    pub fn arg(func: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::BadArgument { func: func.into(), problem: problem.into() }
    }

    /// Shorthand for an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Error::Io { path: path.into(), message: err.to_string() }
    }

    /// Shorthand for a file whose contents are wrong.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), message: message.into() }
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        // kitten → sitting: k→s, e→i, +g = 3 edits (the textbook example).
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn nearest_finds_typos_only() {
        let keys = ["steps", "eps", "seed"];
        assert_eq!(nearest("stpes", keys), Some("steps"));
        assert_eq!(nearest("completely_else", keys), None);
    }

    #[test]
    fn unknown_option_hint_lists_keys() {
        let e = Error::UnknownOption {
            func: "pgd".into(),
            key: "stpes".into(),
            valid: vec!["eps".into(), "steps".into()],
            suggestion: None,
        };
        assert_eq!(e.to_string(), "pgd: unknown option 'stpes'");
        assert_eq!(e.hint(), "did you mean 'steps'? valid options: eps, steps");
        assert_eq!(e.kind(), "unknown_option");
    }
}
