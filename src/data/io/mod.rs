//! Reading datasets from Parquet, CSV and ROOT files, and writing tables back.
//!
//! Every reader returns a [`Dataset`] and a [`ReadReport`] and follows the same rules:
//!
//! * **Features.** With `features: None`, every floating-point column (f16/f32/f64) becomes
//!   a feature, in file order, except the label and weight columns and pandas'
//!   `__index_level_*__` index columns. Integer and boolean columns become features only when
//!   listed in `features` explicitly; otherwise they are reported in
//!   [`ReadReport::ignored_columns`], as are string and other non-numeric columns. Listing a
//!   non-numeric column is an error ("column 'x' is not numeric (utf8)"); listing a missing
//!   one is [`Error::UnknownColumn`], which lists the available columns. An explicit list
//!   keeps its order and may name any numeric column, even the label or weight.
//! * **Label.** `label: Some(name)` names it; otherwise a column called `label` is used when
//!   present, unless `no_label` is set. It must be integral: an integer or boolean column, or
//!   floats that are all whole numbers (the first non-integral value is named with its row).
//! * **Weight.** `weight: Some(name)` names it; otherwise a column called `weight` is used
//!   when present, unless `no_weight` is set. Any numeric column; stored as f32.
//! * **Non-finite values.** NaN, ±Inf or null (an empty CSV cell) in a used feature, the
//!   weight or the label is [`Error::NonFinite`] naming the file, the column, the count and
//!   the first row (0-based, counting data rows). With `drop_nonfinite`, those rows are dropped
//!   and counted in [`ReadReport::dropped_nonfinite`].
//! * **Failures.** A missing file is [`Error::Io`] naming the path; a file that is not of
//!   the expected format is [`Error::Format`]; no rows left is [`Error::Empty`].
//! * **Hostile files.** Only regular files are opened (a named pipe or a device is refused
//!   before it can block); sizes read from a file are checked against its length and against
//!   the read limit before anything is allocated, and panics inside the parquet and ROOT
//!   crates become [`Error::Format`] naming the file (all in [`crate::io_guard`]).
//! * **Ctrl-C.** With [`ReadOptions::interrupt`] set, the flag is checked between batches of
//!   Parquet rows, ROOT baskets and CSV records, and a set flag ends the read with
//!   [`Error::Interrupted`].
//!
//! * **Collections.** Parquet list columns and ROOT jagged branches are read as object
//!   collections (variable length per event), grouped as [`jagged`] describes; they are never
//!   features, and a list column listed in `features` is an error that says so.
//!
//! Format specifics are in [`parquet`], [`csv`] and [`root`]. [`read_any`] picks the reader
//! from the file extension.

pub mod csv;
pub mod jagged;
pub mod parquet;
mod parquet_lists;
pub mod root;
mod root_jagged;
mod root_objects;
mod root_scan;

pub(crate) mod select;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::data::Dataset;
use crate::error::{Error, Result};

pub use self::csv::{read_csv, write_csv_table};
pub use self::jagged::CollectionSpec;
pub use self::parquet::{dataset_columns, read_parquet, write_parquet, write_table};
pub(crate) use self::parquet::{parquet_layout, read_parquet_groups};
pub use self::root::read_root;
pub(crate) use self::root::root_layout;

/// Which columns to read and what to do with non-finite values. `Default` reads with the
/// rules of the module documentation.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Feature columns, in this order; `None` = every floating-point column.
    pub features: Option<Vec<String>>,
    /// Label column; `None` = a column named `label`, if present.
    pub label: Option<String>,
    /// Weight column; `None` = a column named `weight`, if present.
    pub weight: Option<String>,
    /// Do not pick up a column named `label` automatically.
    pub no_label: bool,
    /// Do not pick up a column named `weight` automatically.
    pub no_weight: bool,
    /// Drop rows with NaN/Inf/null in a used column instead of failing.
    pub drop_nonfinite: bool,
    /// ROOT only: the TTree to read; `None` = the only TTree in the file.
    pub tree: Option<String>,
    /// The session's Ctrl-C flag, checked while reading; `None` = not interruptible.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Parquet and ROOT: which list columns / jagged branches form object collections
    /// (see [`jagged`]).
    pub collections: CollectionSpec,
}

impl ReadOptions {
    /// `Err(Interrupted)` once the interrupt flag is set.
    pub(crate) fn check_interrupt(&self) -> Result<()> {
        match &self.interrupt {
            Some(f) if f.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }
}

/// What a reader did besides returning the dataset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Rows in the file (before dropping).
    pub rows_read: usize,
    /// Rows dropped because of NaN/Inf/null (only with `drop_nonfinite`).
    pub dropped_nonfinite: usize,
    /// Columns present in the file but used neither as feature, label nor weight.
    pub ignored_columns: Vec<String>,
}

/// What a chain needs to know of a file before reading it: the rows of each unit it can read
/// alone (Parquet row groups; a ROOT file is one unit) and its columns as `(name, selection
/// kind, type as the format names it)`.
#[derive(Clone, Debug)]
pub(crate) struct FileLayout {
    pub units: Vec<usize>,
    pub columns: Vec<(String, select::Kind, String)>,
}

/// One column of a table to write, in its own element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Text.
    Str(Vec<String>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    /// True when the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a dataset, choosing the format by extension: `.parquet`/`.pq`, `.csv`/`.tsv`
/// (tab-separated) or `.root` (case-insensitive).
pub fn read_any(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "parquet" | "pq" => read_parquet(path, opts),
        "csv" | "tsv" => read_csv(path, opts),
        "root" => read_root(path, opts),
        _ => Err(Error::arg(
            "read",
            format!(
                "cannot tell the format of '{}' from its extension ('{ext}'); known extensions: \
                 .parquet, .pq, .csv, .tsv, .root",
                path.display()
            ),
        )),
    }
}

/// Checks that all columns have one length and that names are unique; returns the length.
pub(crate) fn check_table(func: &str, columns: &[(String, Column)]) -> Result<usize> {
    let Some((_, first)) = columns.first() else {
        return Err(Error::arg(func, "expected at least one column, got none"));
    };
    let n = first.len();
    let mut seen = std::collections::HashSet::new();
    for (name, col) in columns {
        if col.len() != n {
            return Err(Error::arg(
                func,
                format!("column '{name}' has {} values, expected {n} like the first", col.len()),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::arg(func, format!("duplicate column name '{name}'")));
        }
    }
    Ok(n)
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod jagged_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_any_rejects_unknown_extension_listing_known() {
        let e = read_any(Path::new("events.h5"), &ReadOptions::default()).unwrap_err();
        assert_eq!(e.kind(), "bad_argument");
        let msg = e.to_string();
        assert!(msg.contains("events.h5") && msg.contains("'h5'"), "{msg}");
        assert!(msg.contains(".parquet, .pq, .csv, .tsv, .root"), "{msg}");
    }

    #[test]
    fn read_any_dispatches_by_extension() {
        // The committed fixture has 1,797 rows (data/README.md of the shared folder).
        let p = testutil::fixture("sklearn_digits.parquet");
        let (ds, _) = read_any(&p, &ReadOptions::default()).unwrap();
        assert_eq!(ds.len(), 1797);
        // A missing .root goes to the ROOT reader, which names the path in an Io error.
        let e = read_any(Path::new("/nonexistent/x.ROOT"), &ReadOptions::default()).unwrap_err();
        assert_eq!(e.kind(), "io");
        assert!(e.to_string().contains("/nonexistent/x.ROOT"));
    }

    #[test]
    fn check_table_rejects_ragged_and_duplicate_columns() {
        let ragged = vec![("a".to_string(), Column::F32(vec![1.0, 2.0])), ("b".to_string(), Column::I64(vec![1]))];
        let e = check_table("write_table", &ragged).unwrap_err();
        assert_eq!(e.to_string(), "write_table: column 'b' has 1 values, expected 2 like the first");
        let dup = vec![("a".to_string(), Column::F32(vec![1.0])), ("a".to_string(), Column::Bool(vec![true]))];
        assert!(check_table("write_table", &dup).unwrap_err().to_string().contains("duplicate"));
        assert!(check_table("write_table", &[]).is_err());
    }
}
