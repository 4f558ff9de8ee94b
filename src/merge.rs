//! `nuisance merge`: the files of a sharded run joined into the files of one run.
//!
//! Two kinds of file merge, chosen by the output's extension:
//! - **Parquet per-event tables** (`stream_attack`'s `out`): the inputs must have the same
//!   schema and an `event` column (the event's position in the chain). They are written in
//!   event order, one row group of the output per row group of the inputs, reading one row
//!   group at a time; events must not repeat across the inputs (an error names both files).
//! - **Summary JSON files** (`stream_attack`'s `summary`): merged with the exact merge of
//!   [`AttackSummary`] (integer counts, exact sums of weights), so the result equals the
//!   summary of one run bit for bit.
//!
//! The output is written atomically. [`merge_shards`] finds, under a folder, every group of
//! files that shards wrote (`NAME.shard-I-of-N.EXT`) and merges each into `NAME.EXT`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::data::chain::Shard;
use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, atomic_write_bytes};
use crate::stream::AttackSummary;

/// The kinds of file that merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Parquet per-event table.
    Table,
    /// A streamed attack's summary (JSON).
    Summary,
}

impl Kind {
    /// The kind of `path`, by its extension.
    pub fn of(path: &Path) -> Result<Kind> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "parquet" | "pq" => Ok(Kind::Table),
            "json" => Ok(Kind::Summary),
            _ => Err(Error::arg(
                "merge",
                format!(
                    "'{}': only Parquet per-event tables (.parquet) and summary files (.json) merge",
                    path.display()
                ),
            )),
        }
    }
}

/// Merges `inputs` into `out` (the kind given by `out`'s extension; every input must have it).
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    if inputs.is_empty() {
        return Err(Error::Empty { op: "merge", what: "the list of input files".into() });
    }
    let kind = Kind::of(out)?;
    for p in inputs {
        if Kind::of(p)? != kind {
            return Err(Error::arg(
                "merge",
                format!("'{}' is not of the output's kind ('{}')", p.display(), out.display()),
            ));
        }
        if p == out {
            return Err(Error::arg("merge", format!("'{}' is both an input and the output", p.display())));
        }
    }
    match kind {
        Kind::Table => merge_tables(out, inputs),
        Kind::Summary => merge_summaries(out, inputs),
    }
}

/// The merged summary of summary files.
pub fn merged_summary(inputs: &[PathBuf]) -> Result<AttackSummary> {
    let mut total: Option<(AttackSummary, &Path)> = None;
    for p in inputs {
        let bytes = crate::io_guard::read_regular(p)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::format(p, format!("not JSON: {e}")))?;
        let s = AttackSummary::from_json(&p.display().to_string(), &v)?;
        match &mut total {
            None => total = Some((s, p)),
            Some((t, first)) => t.merge(&s).map_err(|e| {
                Error::arg("merge", format!("'{}' does not merge with '{}': {e}", p.display(), first.display()))
            })?,
        }
    }
    total.map(|(t, _)| t).ok_or_else(|| Error::Empty { op: "merge", what: "the list of input files".into() })
}

fn merge_summaries(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let s = merged_summary(inputs)?;
    let bytes = serde_json::to_vec_pretty(&s.to_json()).map_err(|e| Error::io(out, e))?;
    atomic_write_bytes(out, &bytes)
}

/// One input table: its schema, row groups and first event.
struct Table {
    path: PathBuf,
    schema: SchemaRef,
    groups: usize,
    first: Option<i64>,
}

fn open_table(p: &Path) -> Result<(ParquetRecordBatchReaderBuilder<File>, SchemaRef)> {
    let (f, _) = crate::io_guard::open_regular(p)?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| Error::format(p, format!("not a Parquet file: {e}")))?;
    let schema = b.schema().clone();
    Ok((b, schema))
}

/// The `event` column of row group `g` of `p`, and the group as a batch.
fn read_group(p: &Path, g: usize) -> Result<arrow_array::RecordBatch> {
    let (b, _) = open_table(p)?;
    let rows = b.metadata().row_group(g).num_rows().max(1) as usize;
    let mut reader =
        b.with_row_groups(vec![g]).with_batch_size(rows).build().map_err(|e| Error::format(p, e.to_string()))?;
    let batch = reader.next().transpose().map_err(|e| Error::format(p, e.to_string()))?;
    batch.ok_or_else(|| Error::format(p, format!("row group {g} is empty")))
}

fn events(p: &Path, b: &arrow_array::RecordBatch) -> Result<Vec<i64>> {
    let col = b.column_by_name("event").ok_or_else(|| no_event(p))?;
    let a = col.as_primitive_opt::<Int64Type>().ok_or_else(|| no_event(p))?;
    Ok(a.values().to_vec())
}

fn no_event(p: &Path) -> Error {
    Error::format(p, "has no integer 'event' column: not a per-event result table of stream_attack")
}

fn merge_tables(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let mut tables: Vec<Table> = Vec::with_capacity(inputs.len());
    for p in inputs {
        let (b, schema) = open_table(p)?;
        if schema.column_with_name("event").is_none() {
            return Err(no_event(p));
        }
        let groups = b.metadata().num_row_groups();
        let first = if groups > 0 && b.metadata().file_metadata().num_rows() > 0 {
            events(p, &read_group(p, 0)?)?.first().copied()
        } else {
            None
        };
        if let Some(t) = tables.first() {
            if t.schema.fields() != schema.fields() {
                return Err(Error::format(
                    p,
                    format!(
                        "has other columns than '{}' ({} against {}); only tables of the same study merge",
                        t.path.display(),
                        names(&schema),
                        names(&t.schema)
                    ),
                ));
            }
        }
        tables.push(Table { path: p.clone(), schema, groups, first });
    }
    // Shards are contiguous ranges of the chain: in order of their first events, the tables
    // follow each other.
    tables.sort_by_key(|t| t.first.unwrap_or(i64::MAX));
    let schema = tables[0].schema.clone();
    let mut failure: Option<Error> = None;
    let written = atomic_write(out, |w| {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(usize::MAX))
            .build();
        let mut writer = ArrowWriter::try_new(w, schema.clone(), Some(props))?;
        let mut last: Option<(i64, &Path)> = None;
        for t in &tables {
            for g in 0..t.groups {
                let step = read_group(&t.path, g).and_then(|b| {
                    for e in events(&t.path, &b)? {
                        if let Some((prev, from)) = last {
                            if e <= prev {
                                return Err(Error::format(
                                    &t.path,
                                    format!(
                                        "event {e} comes after event {prev} of '{}': the tables overlap or are \
                                         not in event order (were they written by shards of one run?)",
                                        from.display()
                                    ),
                                ));
                            }
                        }
                        last = Some((e, &t.path));
                    }
                    Ok(b)
                });
                match step {
                    Ok(b) => {
                        writer.write(&b)?;
                        writer.flush()?;
                    }
                    Err(e) => {
                        failure = Some(e);
                        return Err("stopped".into());
                    }
                }
            }
        }
        writer.close()?;
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    written
}

fn names(s: &SchemaRef) -> String {
    s.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
}

/// What [`merge_shards`] merged: each output and its inputs.
pub type Merged = Vec<(PathBuf, Vec<PathBuf>)>;

/// Finds under `dir` (recursively) the files of shards of `count` (`NAME.shard-I-of-N.EXT`)
/// and merges every group into `NAME.EXT` next to them. Every group must have all `count`
/// shards; files of other kinds than tables and summaries are left alone (returned second).
pub fn merge_shards(dir: &Path, count: usize) -> Result<(Merged, Vec<PathBuf>)> {
    let mut groups: BTreeMap<PathBuf, BTreeMap<usize, PathBuf>> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let ty = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            if ty.is_dir() {
                stack.push(e.path());
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            if let Some((base, shard)) = Shard::untag(&name) {
                if shard.count == count {
                    groups.entry(d.join(base)).or_default().insert(shard.index, e.path());
                }
            }
        }
    }
    if groups.is_empty() {
        return Err(Error::arg(
            "merge",
            format!("no files of {count} shards (NAME.shard-I-of-{count}.EXT) under '{}'", dir.display()),
        ));
    }
    let mut merged = Vec::new();
    let mut skipped = Vec::new();
    for (out, parts) in groups {
        if Kind::of(&out).is_err() {
            skipped.extend(parts.into_values());
            continue;
        }
        if parts.len() != count {
            let missing: Vec<String> = (0..count).filter(|i| !parts.contains_key(i)).map(|i| i.to_string()).collect();
            return Err(Error::arg(
                "merge",
                format!(
                    "'{}': the files of shard(s) {} of {count} are missing (did those jobs fail?)",
                    out.display(),
                    missing.join(", ")
                ),
            ));
        }
        let inputs: Vec<PathBuf> = parts.into_values().collect();
        merge(&out, &inputs)?;
        merged.push((out, inputs));
    }
    Ok((merged, skipped))
}

#[cfg(test)]
mod tests;
