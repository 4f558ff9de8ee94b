//! Parquet list columns ↔ object collections.
//!
//! Reading takes the layouts pyarrow and awkward write: `list<T>` (32-bit offsets, nullable
//! items, pyarrow's default), `large_list<T not null>` (awkward), and lists of records
//! (`large_list<struct<pt, eta, …>>`, awkward's `ak.zip`), for any numeric `T` (cast to f32).
//! Writing stores each object feature as `list<element: float not null>` named
//! `collection_feature` and records the grouping in the schema metadata
//! (`nuisance_collections`), so a file written here reads back into the same collections.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, Float32Array, GenericListArray, ListArray, OffsetSizeTrait};
use arrow_buffer::OffsetBuffer;
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::jagged::{assemble, parse_recorded, plan, recorded_json, Leaf, LeafData, RawCollection};
use super::select::Source;
use super::ReadOptions;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io_guard;

/// Schema metadata key holding the grouping of a nuisance-written file.
pub(super) const META_KEY: &str = "nuisance_collections";

/// A readable list leaf: the file column and, for a list of records, the field.
struct ListLeaf {
    leaf: Leaf,
    col: usize,
    field: Option<usize>,
}

fn numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// The element type of a list column (`list` or `large_list`), if it is one.
fn list_item(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => Some(f.data_type()),
        _ => None,
    }
}

/// True for a list of numbers or of records with numeric fields: read as a collection.
pub(super) fn is_object_list(t: &DataType) -> bool {
    match list_item(t) {
        Some(DataType::Struct(fields)) => fields.iter().any(|f| numeric(f.data_type())),
        Some(item) => numeric(item),
        None => false,
    }
}

fn leaves(schema: &Schema) -> Vec<ListLeaf> {
    let mut out = Vec::new();
    for (col, f) in schema.fields().iter().enumerate() {
        match list_item(f.data_type()) {
            Some(DataType::Struct(fields)) => {
                for (k, sf) in fields.iter().enumerate() {
                    if numeric(sf.data_type()) {
                        out.push(ListLeaf { leaf: Leaf::record_field(f.name(), sf.name()), col, field: Some(k) });
                    }
                }
            }
            Some(item) if numeric(item) => out.push(ListLeaf { leaf: Leaf::plain(f.name()), col, field: None }),
            _ => {}
        }
    }
    out
}

/// Reads the collections of the row groups `row_groups` of a Parquet file (`n` rows, open as
/// `file`); returns them and the file columns used.
pub(super) fn read(
    src: Source<'_>,
    file: &std::fs::File,
    meta: &ArrowReaderMetadata,
    opts: &ReadOptions,
    n: usize,
    row_groups: Vec<usize>,
) -> Result<(Vec<RawCollection>, Vec<String>)> {
    let path = src.path;
    let schema = meta.schema();
    let all = leaves(schema);
    let plain: Vec<Leaf> = all.iter().map(|l| l.leaf.clone()).collect();
    let recorded = schema.metadata().get(META_KEY).and_then(|j| parse_recorded(j));
    let groups = plan(src.func, &plain, &opts.collections, recorded.as_ref())?;
    if groups.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let used: Vec<usize> = groups.iter().flat_map(|g| g.members.iter().map(|m| m.1)).collect();
    let mut cols: Vec<usize> = used.iter().map(|&k| all[k].col).collect();
    cols.sort_unstable();
    cols.dedup();
    let mut data: Vec<LeafData> = (0..all.len()).map(|_| LeafData::with_capacity(n)).collect();
    let bad = |e: &dyn std::fmt::Display| Error::format(path, format!("reading Parquet list data: {e}"));
    let file = io_guard::reopen(file, path)?;
    let reader = io_guard::guarded(path, "Parquet reader", "opening the list columns", || {
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_projection(ProjectionMask::roots(meta.parquet_schema(), cols.iter().copied()))
            .with_row_groups(row_groups)
            .with_batch_size(8192)
            .build()
    })?;
    let mut reader = reader.map_err(|e| bad(&e))?;
    let mut values: u64 = 0;
    loop {
        opts.check_interrupt()?;
        let Some(batch) = io_guard::guarded(path, "Parquet reader", "reading the list columns", || reader.next())?
        else {
            break;
        };
        let batch = batch.map_err(|e| bad(&e))?;
        for &k in &used {
            let pos = cols.iter().position(|&c| c == all[k].col).unwrap_or(0);
            let before = data[k].values.len();
            append(src, &mut data[k], batch.column(pos), all[k].field, &all[k].leaf.name)?;
            values += (data[k].values.len() - before) as u64;
        }
        // Decoded object values (f32, plus as much again while collections are assembled).
        io_guard::check_alloc(path, "the list columns", values.saturating_mul(8))?;
    }
    for &k in &used {
        let got = data[k].offsets.len() - 1;
        if got != n {
            return Err(bad(&format!("column '{}' holds {got} rows, the file's metadata says {n}", all[k].leaf.name)));
        }
    }
    let names = cols.iter().map(|&c| schema.field(c).name().clone()).collect();
    Ok((assemble(path, &groups, &plain, data)?, names))
}

/// Appends the lists of one batch column to `out`.
fn append(src: Source<'_>, out: &mut LeafData, a: &ArrayRef, field: Option<usize>, name: &str) -> Result<()> {
    match a.data_type() {
        DataType::List(_) => append_lists(src, out, a.as_list::<i32>(), field, name),
        DataType::LargeList(_) => append_lists(src, out, a.as_list::<i64>(), field, name),
        other => Err(Error::format(src.path, format!("column '{name}' is {other}, not a list"))),
    }
}

fn append_lists<O: OffsetSizeTrait>(
    src: Source<'_>,
    out: &mut LeafData,
    l: &GenericListArray<O>,
    field: Option<usize>,
    name: &str,
) -> Result<()> {
    let (child, record_nulls) = match field {
        Some(f) => {
            let s = l
                .values()
                .as_struct_opt()
                .ok_or_else(|| Error::format(src.path, format!("column '{name}': expected a list of records")))?;
            let c = s
                .columns()
                .get(f)
                .cloned()
                .ok_or_else(|| Error::format(src.path, format!("column '{name}': the record has no field {f}")))?;
            (c, s.nulls().cloned())
        }
        None => (l.values().clone(), None),
    };
    let opts = CastOptions { safe: false, ..Default::default() };
    let vals = cast_with_options(&child, &DataType::Float32, &opts)
        .map_err(|e| Error::format(src.path, format!("cannot convert list column '{name}' to float: {e}")))?;
    let vals: &Float32Array = vals.as_primitive::<Float32Type>();
    let off = l.value_offsets();
    for i in 0..l.len() {
        if l.is_null(i) {
            out.push_null();
            continue;
        }
        let (a, b) = (off[i].as_usize(), off[i + 1].as_usize());
        if a > b || b > vals.len() {
            return Err(Error::format(src.path, format!("column '{name}': list offsets out of range at row {i}")));
        }
        let item_null = |k: usize| vals.is_null(k) || record_nulls.as_ref().is_some_and(|n| n.is_null(k));
        out.push((a..b).map(|k| if item_null(k) { f32::NAN } else { vals.value(k) }));
    }
    Ok(())
}

/// List columns to write (field, array) and the schema metadata recording the grouping.
pub(super) type ListColumns = (Vec<(Field, ArrayRef)>, Option<String>);

/// The dataset's collections as Parquet list columns (`collection_feature`, list<float>),
/// and the schema metadata recording the grouping; an error if a name clashes with a flat
/// column.
pub(super) fn list_columns(ds: &Dataset, flat: &[String]) -> Result<ListColumns> {
    if ds.collections().is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut out = Vec::new();
    for c in ds.collections() {
        let offsets: Vec<i32> =
            c.offsets().iter().map(|&o| i32::try_from(o)).collect::<std::result::Result<_, _>>().map_err(|_| {
                Error::arg("write_parquet", format!("collection '{}' has more than 2^31 objects", c.name()))
            })?;
        let item = Arc::new(Field::new("element", DataType::Float32, false));
        for (j, f) in c.features().iter().enumerate() {
            let name = format!("{}_{f}", c.name());
            if flat.contains(&name) || out.iter().any(|(fl, _): &(Field, ArrayRef)| fl.name() == &name) {
                return Err(Error::arg(
                    "write_parquet",
                    format!("the list column '{name}' of collection '{}' clashes with another column", c.name()),
                ));
            }
            let values: ArrayRef = Arc::new(Float32Array::from(c.values_at(j).to_vec()));
            let list = ListArray::try_new(item.clone(), OffsetBuffer::new(offsets.clone().into()), values, None)
                .map_err(|e| Error::arg("write_parquet", format!("cannot build list column '{name}': {e}")))?;
            out.push((Field::new(&name, list.data_type().clone(), false), Arc::new(list) as ArrayRef));
        }
    }
    Ok((out, Some(recorded_json(ds.collections()))))
}
