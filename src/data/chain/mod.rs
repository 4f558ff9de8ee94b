//! Chains: one dataset over many Parquet or ROOT files with the same columns, read lazily.
//!
//! [`Chain::open`] reads only each file's metadata (Parquet footers; a ROOT file's checked
//! header, keys and TTree), checks that every file has exactly the columns of the first — the
//! same names with the same types, in any order — and resolves the column roles (features,
//! label, weight) once, from the first file, so every chunk is read the same way. The events
//! are then read a [`Chunk`] at a time: consecutive Parquet row groups of one file holding at
//! most the chunk size (a larger row group is a chunk alone), or one whole ROOT file (ROOT
//! files are not split). Chunks follow the files in chain order and the row groups in file
//! order, and an event's *position* in the chain (`first_event` of its chunk plus its row in
//! it) never depends on the chunk size.
//!
//! Every event keeps its position, so `drop_nonfinite` is refused: a non-finite value is an
//! error naming the file, the column and the row within the chunk.

pub mod glob;
pub mod shard;
mod whole;

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::data::io::select::{select, Kind, Source};
use crate::data::io::{self, FileLayout, ReadOptions};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::limits;

pub use self::shard::Shard;

/// The file format of a chain (all its files have one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.parquet` / `.pq`: chunks are row-group ranges.
    Parquet,
    /// `.root`: chunks are whole files.
    Root,
}

/// One file of a chain.
#[derive(Clone, Debug)]
pub struct ChainFile {
    /// The file (resolved by the sandbox).
    pub path: PathBuf,
    /// Rows of each unit that can be read alone: Parquet row groups, or the ROOT file's entries.
    pub units: Vec<usize>,
    /// Position in the chain of the file's first event.
    pub first_event: usize,
}

impl ChainFile {
    /// Events in the file.
    pub fn events(&self) -> usize {
        self.units.iter().sum()
    }
}

/// A piece of a chain read at once: units `units` of file `file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the file in the chain.
    pub file: usize,
    /// The units (row groups) of that file.
    pub units: Range<usize>,
    /// Position in the chain of the chunk's first event.
    pub first_event: usize,
    /// Events in the chunk.
    pub events: usize,
}

/// A dataset over many files, read a chunk at a time.
#[derive(Clone, Debug)]
pub struct Chain {
    format: Format,
    files: Vec<ChainFile>,
    opts: ReadOptions,
    names: Vec<String>,
    /// Events of this chain's share (all of them unless [`Chain::sharded`]).
    events: usize,
    /// Events in all files.
    total_events: usize,
    /// The share read ([`shard`]).
    shard: Shard,
}

impl Chain {
    /// Opens the files (at least one, one format) and checks their columns against the
    /// first file's; `opts` are the read options of `read_parquet` / `read_root`.
    pub fn open(paths: &[PathBuf], opts: &ReadOptions) -> Result<Chain> {
        let Some(first) = paths.first() else {
            return Err(Error::Empty { op: "chain", what: "the list of files".into() });
        };
        limits::check("chain", "files", paths.len(), limits::CHAIN_FILES)?;
        if opts.drop_nonfinite {
            return Err(Error::BadOption {
                func: "chain".into(),
                key: "drop_nonfinite".into(),
                problem: "is not available for chains: every event keeps its position in the chain \
                          (filter the chunks after reading instead)"
                    .into(),
            });
        }
        let format = format_of(first)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut reference: Option<FileLayout> = None;
        let mut events: usize = 0;
        for p in paths {
            opts.check_interrupt()?;
            if format_of(p)? != format {
                return Err(Error::format(
                    p,
                    format!("a chain holds files of one format; '{}' is {format:?}", first.display()),
                ));
            }
            let layout = match format {
                Format::Parquet => io::parquet_layout(p)?,
                Format::Root => io::root_layout(p, opts.tree.as_deref())?,
            };
            match &reference {
                Some(r) => same_columns(first, r, p, &layout)?,
                None => reference = Some(layout.clone()),
            }
            let n: usize = layout.units.iter().sum();
            files.push(ChainFile { path: p.clone(), units: layout.units, first_event: events });
            events = events.checked_add(n).ok_or_else(|| Error::format(p, "the chain's event count overflows"))?;
        }
        let reference = reference.ok_or_else(|| Error::Empty { op: "chain", what: "the list of files".into() })?;
        let (opts, names) = resolve_roles(first, format, &reference, opts)?;
        Ok(Chain { format, files, opts, names, events, total_events: events, shard: Shard::WHOLE })
    }

    /// The files' format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The files, in chain order.
    pub fn files(&self) -> &[ChainFile] {
        &self.files
    }

    /// Events in all files (of this chain's share, when [`Chain::sharded`]).
    pub fn events(&self) -> usize {
        self.events
    }

    /// The feature names every chunk has.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The chunks of at most `max_events` events (a larger row group or ROOT file is one
    /// chunk), in chain order; files without events give none. A sharded chain gives only
    /// its share's chunks (a chunk never spans two shards).
    pub fn chunks(&self, max_events: usize) -> Result<Vec<Chunk>> {
        if max_events == 0 {
            return Err(Error::arg("chain", "the chunk size must be at least 1 event"));
        }
        let mut out = Vec::new();
        for (f, file) in self.files.iter().enumerate() {
            let mut start = 0;
            let mut first = file.first_event;
            while start < file.units.len() {
                let mut end = start + 1;
                let mut n = file.units[start];
                let mine = self.in_share(first);
                while end < file.units.len()
                    && n.saturating_add(file.units[end]) <= max_events
                    && self.in_share(first + n) == mine
                {
                    n += file.units[end];
                    end += 1;
                }
                if n > 0 && mine {
                    out.push(Chunk { file: f, units: start..end, first_event: first, events: n });
                }
                first += n;
                start = end;
            }
        }
        Ok(out)
    }

    /// Reads one chunk (its events in chain order).
    pub fn read(&self, chunk: &Chunk) -> Result<Dataset> {
        let file = self.files.get(chunk.file).ok_or_else(|| {
            Error::arg("chain", format!("file {} asked for, the chain has {}", chunk.file, self.files.len()))
        })?;
        let (ds, _) = match self.format {
            Format::Parquet => io::read_parquet_groups(&file.path, &self.opts, Some(chunk.units.clone()))?,
            Format::Root => io::read_root(&file.path, &self.opts)?,
        };
        if ds.len() != chunk.events {
            return Err(Error::format(
                &file.path,
                format!("read {} events where the metadata promised {}", ds.len(), chunk.events),
            ));
        }
        Ok(ds)
    }

    /// Reads every event into one dataset (counted against the memory budget like any).
    pub fn read_all(&self) -> Result<Dataset> {
        let parts = self.chunks(usize::MAX)?.iter().map(|c| self.read(c)).collect::<Result<Vec<_>>>()?;
        if parts.is_empty() {
            return Err(Error::Empty { op: "chain", what: "the chain (no events in any file)".into() });
        }
        crate::data::ops::concat(&parts)
    }
}

/// The format a file's extension names (Parquet or ROOT).
fn format_of(p: &Path) -> Result<Format> {
    let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "parquet" | "pq" => Ok(Format::Parquet),
        "root" => Ok(Format::Root),
        _ => Err(Error::arg(
            "chain",
            format!(
                "'{}' is not a Parquet or ROOT file (by its extension '{ext}'); chains hold .parquet, .pq or .root files",
                p.display()
            ),
        )),
    }
}

/// Every file of a chain has exactly the first file's columns with the same types.
fn same_columns(first: &Path, a: &FileLayout, path: &Path, b: &FileLayout) -> Result<()> {
    let theirs: std::collections::HashMap<&str, &str> =
        b.columns.iter().map(|(n, _, t)| (n.as_str(), t.as_str())).collect();
    for (name, _, ty) in &a.columns {
        match theirs.get(name.as_str()) {
            None => {
                return Err(Error::format(
                    path,
                    format!(
                        "has no column '{name}', which the chain's first file {} has; every file of a chain \
                         must have the same columns",
                        first.display()
                    ),
                ))
            }
            Some(t) if t != ty => {
                return Err(Error::format(
                    path,
                    format!(
                        "column '{name}' is {t} here but {ty} in the chain's first file {}; every file of a \
                         chain must have the same column types",
                        first.display()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let ours: std::collections::HashSet<&str> = a.columns.iter().map(|(n, _, _)| n.as_str()).collect();
    if let Some((extra, _, _)) = b.columns.iter().find(|(n, _, _)| !ours.contains(n.as_str())) {
        return Err(Error::format(
            path,
            format!(
                "has a column '{extra}' that the chain's first file {} lacks; every file of a chain must have \
                 the same columns",
                first.display()
            ),
        ));
    }
    Ok(())
}

/// The read options every chunk is read with: the roles chosen on the first file, by name.
fn resolve_roles(
    first: &Path,
    format: Format,
    layout: &FileLayout,
    opts: &ReadOptions,
) -> Result<(ReadOptions, Vec<String>)> {
    let (func, noun) = match format {
        Format::Parquet => ("read_parquet", "column"),
        Format::Root => ("read_root", "branch"),
    };
    let cols: Vec<(String, Kind)> = layout.columns.iter().map(|(n, k, _)| (n.clone(), k.clone())).collect();
    let sel = select(Source { func, path: first, noun }, &cols, opts)?;
    let names: Vec<String> = sel.features.iter().map(|&i| cols[i].0.clone()).collect();
    let mut fixed = opts.clone();
    fixed.features = Some(names.clone());
    fixed.label = sel.label.map(|i| cols[i].0.clone());
    fixed.weight = sel.weight.map(|i| cols[i].0.clone());
    fixed.no_label = fixed.label.is_none();
    fixed.no_weight = fixed.weight.is_none();
    Ok((fixed, names))
}

#[cfg(test)]
mod tests;
