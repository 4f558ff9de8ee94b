//! Parquet: reading what pandas/pyarrow write, and writing tables.
//!
//! Reading projects only the used columns and decodes the row groups in parallel (rayon),
//! each straight into its block of the row-major feature matrix. Integer, boolean, f16/f64
//! and dictionary-encoded numeric columns are cast with `arrow_cast`; nulls become NaN and
//! are then handled like NaN. Any codec of the `parquet` crate (snappy, zstd, gzip, lz4,
//! brotli) and any number of row groups are fine.
//!
//! Writing uses snappy, no dictionary for float columns, and row groups of 131,072 rows so
//! that readers can decode them in parallel; it goes through [`atomic_write`].

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array};
use arrow_array::{RecordBatch, StringArray};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Field, Schema};
use ndarray::Array2;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::select::{finish, select, Kind, RawLabel, RawTable, Source};
use super::{check_table, Column, ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;

/// Rows per row group when writing.
const ROW_GROUP_ROWS: usize = 131_072;
/// Rows per decoded batch when reading (a batch of 20 f32 features is 640 KiB).
const BATCH_ROWS: usize = 8192;

/// Reads a Parquet file into a dataset (see the [module rules](super)).
pub fn read_parquet(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    let src = Source { func: "read_parquet", path, noun: "column" };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, Default::default())
        .map_err(|e| Error::format(path, format!("not a readable Parquet file: {e}")))?;
    let cols: Vec<(String, Kind)> =
        meta.schema().fields().iter().map(|f| (f.name().clone(), kind_of(f.data_type()))).collect();
    let sel = select(src, &cols, opts)?;
    let plan = Plan::new(&sel, &cols);
    let groups: Vec<usize> =
        meta.metadata().row_groups().iter().map(|g| g.num_rows().max(0) as usize).collect();
    let n: usize = groups.iter().sum();
    let mut out = Buffers::new(n, plan.features.len(), &plan);
    let parts = out.split(&groups);
    let mask = ProjectionMask::roots(meta.parquet_schema(), plan.used.iter().copied());
    parts.into_par_iter().enumerate().try_for_each(|(g, part)| {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_row_groups(vec![g])
            .with_projection(mask.clone())
            .with_batch_size(BATCH_ROWS);
        fill_group(src, builder, &plan, part)
    })?;
    let names = plan.features.iter().map(|&i| cols[i].0.clone()).collect();
    let raw = out.into_raw(names, &plan, &cols);
    finish(src, raw, opts, sel.ignored)
}

/// Where each used file column goes, by position in the projected batches.
struct Plan {
    /// Used file columns, ascending (the order of the projected batch).
    used: Vec<usize>,
    /// File index of each feature, in dataset order.
    features: Vec<usize>,
    /// Batch position of each feature.
    feature_pos: Vec<usize>,
    /// Batch position of the label, and whether it is read as float (then checked).
    label: Option<(usize, usize, bool)>,
    /// File index and batch position of the weight.
    weight: Option<(usize, usize)>,
}

impl Plan {
    fn new(sel: &super::select::Selection, cols: &[(String, Kind)]) -> Self {
        let mut used: Vec<usize> = sel.features.clone();
        used.extend(sel.label);
        used.extend(sel.weight);
        used.sort_unstable();
        used.dedup();
        let pos = |i: usize| used.iter().position(|&u| u == i).unwrap_or(0);
        Plan {
            feature_pos: sel.features.iter().map(|&i| pos(i)).collect(),
            features: sel.features.clone(),
            label: sel.label.map(|i| (i, pos(i), cols[i].1 == Kind::Float)),
            weight: sel.weight.map(|i| (i, pos(i))),
            used,
        }
    }
}

/// Output arrays for the whole file.
struct Buffers {
    x: Array2<f32>,
    label_f: Vec<f64>,
    label_i: Vec<i64>,
    label_ok: Vec<bool>,
    weight: Vec<f32>,
}

/// The slices of [`Buffers`] that belong to one row group.
struct Part<'a> {
    rows: usize,
    x: &'a mut [f32],
    label_f: &'a mut [f64],
    label_i: &'a mut [i64],
    label_ok: &'a mut [bool],
    weight: &'a mut [f32],
}

impl Buffers {
    fn new(n: usize, d: usize, plan: &Plan) -> Self {
        let (lf, li) = match plan.label {
            Some((_, _, true)) => (n, 0),
            Some((_, _, false)) => (0, n),
            None => (0, 0),
        };
        Buffers {
            x: Array2::zeros((n, d)),
            label_f: vec![0.0; lf],
            label_i: vec![0; li],
            label_ok: vec![true; li],
            weight: vec![0.0; if plan.weight.is_some() { n } else { 0 }],
        }
    }

    /// Disjoint slices, one per row group of `groups[g]` rows.
    fn split(&mut self, groups: &[usize]) -> Vec<Part<'_>> {
        let d = self.x.ncols();
        let mut x = self.x.as_slice_mut().map(|s| &mut s[..]).unwrap_or(&mut []);
        let (mut lf, mut li) = (&mut self.label_f[..], &mut self.label_i[..]);
        let (mut lo, mut w) = (&mut self.label_ok[..], &mut self.weight[..]);
        let mut parts = Vec::with_capacity(groups.len());
        for &m in groups {
            let (xa, xb) = std::mem::take(&mut x).split_at_mut(m * d);
            let (lfa, lfb) = std::mem::take(&mut lf).split_at_mut(m.min(lf.len()));
            let (lia, lib) = std::mem::take(&mut li).split_at_mut(m.min(li.len()));
            let (loa, lob) = std::mem::take(&mut lo).split_at_mut(m.min(lo.len()));
            let (wa, wb) = std::mem::take(&mut w).split_at_mut(m.min(w.len()));
            parts.push(Part { rows: m, x: xa, label_f: lfa, label_i: lia, label_ok: loa, weight: wa });
            (x, lf, li, lo, w) = (xb, lfb, lib, lob, wb);
        }
        parts
    }

    fn into_raw(self, names: Vec<String>, plan: &Plan, cols: &[(String, Kind)]) -> RawTable {
        let label = plan.label.map(|(i, _, is_float)| {
            let raw = if is_float {
                RawLabel::Float(self.label_f)
            } else {
                RawLabel::Int { values: self.label_i, valid: Some(self.label_ok) }
            };
            (cols[i].0.clone(), raw)
        });
        let weight = plan.weight.map(|(i, _)| (cols[i].0.clone(), self.weight));
        RawTable { names, x: self.x, label, weight }
    }
}

/// Decodes one row group into its part of the buffers.
fn fill_group(
    src: Source<'_>,
    builder: ParquetRecordBatchReaderBuilder<File>,
    plan: &Plan,
    part: Part<'_>,
) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| Error::format(src.path, format!("reading Parquet data: {e}"));
    let reader = builder.build().map_err(|e| bad(&e))?;
    let d = plan.features.len();
    let rows = part.rows;
    let mut r0 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let m = batch.num_rows();
        if r0 + m > rows {
            return Err(bad(&"row group holds more rows than its metadata says"));
        }
        for (j, &p) in plan.feature_pos.iter().enumerate() {
            let a = to_f32(src, batch.column(p))?;
            scatter(&a, &mut part.x[r0 * d..(r0 + m) * d], j, d);
        }
        if let Some((_, p, is_float)) = plan.label {
            if is_float {
                let a = cast(src, batch.column(p), &DataType::Float64)?;
                copy_f64(a.as_primitive::<Float64Type>(), &mut part.label_f[r0..r0 + m]);
            } else {
                let a = cast(src, batch.column(p), &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                part.label_i[r0..r0 + m].copy_from_slice(a.values());
                for (i, ok) in part.label_ok[r0..r0 + m].iter_mut().enumerate() {
                    *ok = a.is_valid(i);
                }
            }
        }
        if let Some((_, p)) = plan.weight {
            let a = to_f32(src, batch.column(p))?;
            scatter(&a, &mut part.weight[r0..r0 + m], 0, 1);
        }
        r0 += m;
    }
    if r0 != rows {
        return Err(bad(&format!("row group holds {r0} rows, its metadata says {rows}")));
    }
    Ok(())
}

fn cast(src: Source<'_>, a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let opts = CastOptions { safe: false, ..Default::default() };
    cast_with_options(a, to, &opts).map_err(|e| {
        Error::format(src.path, format!("cannot convert {} to {to}: {e}", a.data_type()))
    })
}

fn to_f32(src: Source<'_>, a: &ArrayRef) -> Result<Float32Array> {
    Ok(cast(src, a, &DataType::Float32)?.as_primitive::<Float32Type>().clone())
}

/// Writes column `a` into column `j` of the row-major block `out` (`d` columns), NaN for null.
fn scatter(a: &Float32Array, out: &mut [f32], j: usize, d: usize) {
    let vals = a.values();
    for (i, row) in out.chunks_exact_mut(d).enumerate() {
        row[j] = vals[i];
    }
    if a.null_count() > 0 {
        for (i, row) in out.chunks_exact_mut(d).enumerate() {
            if a.is_null(i) {
                row[j] = f32::NAN;
            }
        }
    }
}

fn copy_f64(a: &Float64Array, out: &mut [f64]) {
    out.copy_from_slice(a.values());
    for (i, v) in out.iter_mut().enumerate() {
        if a.is_null(i) {
            *v = f64::NAN;
        }
    }
}

/// The selection kind of an Arrow type; dictionaries count as their value type.
fn kind_of(t: &DataType) -> Kind {
    match t {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Kind::Int,
        DataType::Boolean => Kind::Bool,
        DataType::Dictionary(_, v) => kind_of(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Kind::Unusable("is not numeric (utf8)".into())
        }
        other => Kind::Unusable(format!("is not numeric ({other})")),
    }
}

/// Writes named columns as one Parquet table (snappy), atomically.
pub fn write_table(path: &Path, columns: &[(String, Column)]) -> Result<()> {
    check_table("write_table", columns)?;
    let arrays: Vec<ArrayRef> = columns.par_iter().map(|(_, c)| to_array(c)).collect();
    let fields: Vec<Field> = columns
        .iter()
        .zip(&arrays)
        .map(|((name, _), a)| Field::new(name, a.data_type().clone(), false))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| Error::arg("write_table", format!("cannot build the table: {e}")))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for (name, c) in columns {
        if matches!(c, Column::F32(_) | Column::F64(_)) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name.as_str()), false);
        }
    }
    let props = props.build();
    atomic_write(path, |w| {
        let mut writer = ArrowWriter::try_new(w, schema, Some(props))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    })
}

fn to_array(c: &Column) -> ArrayRef {
    match c {
        Column::F32(v) => Arc::new(Float32Array::from(v.clone())),
        Column::F64(v) => Arc::new(Float64Array::from(v.clone())),
        Column::I64(v) => Arc::new(Int64Array::from(v.clone())),
        Column::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
        Column::Str(v) => Arc::new(StringArray::from(v.clone())),
    }
}

/// The dataset as columns: the features (f32, by name), then `label` (i64) and `weight`
/// (f32) when present. Append per-event result columns and pass it to [`write_table`].
pub fn dataset_columns(ds: &Dataset) -> Vec<(String, Column)> {
    let x = ds.x();
    let mut cols: Vec<(String, Column)> = (0..ds.n_features())
        .into_par_iter()
        .map(|j| (ds.names()[j].clone(), Column::F32(x.column(j).to_vec())))
        .collect();
    if let Some(l) = ds.label() {
        cols.push(("label".into(), Column::I64(l.to_vec())));
    }
    if let Some(w) = ds.weight() {
        cols.push(("weight".into(), Column::F32(w.to_vec())));
    }
    cols
}

/// Writes a dataset as Parquet: features float32, `label` int64, `weight` float32.
pub fn write_parquet(path: &Path, ds: &Dataset) -> Result<()> {
    write_table(path, &dataset_columns(ds))
}
