//! Parquet: reading what pandas/pyarrow write, and writing tables.
//!
//! Reading projects only the used columns and decodes the row groups in parallel (rayon),
//! each straight into its block of the row-major feature matrix. Integer, boolean, f16/f64
//! and dictionary-encoded numeric columns are cast with `arrow_cast`; nulls become NaN and
//! are then handled like NaN. Any codec of the `parquet` crate (snappy, zstd, gzip, lz4,
//! brotli) and any number of row groups are fine.
//!
//! Writing uses snappy, no dictionary for float columns, and row groups of 131,072 rows so
//! that readers can decode them in parallel; the columns of each row group are encoded in
//! parallel too. The Arrow schema is embedded as `ArrowWriter` does, and the file goes
//! through [`atomic_write`].

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
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::parquet_lists;
use super::select::{finish_with, select, Kind, RawLabel, RawTable, Source};
use super::{check_table, Column, ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::io_guard;

/// Rows per row group when writing.
const ROW_GROUP_ROWS: usize = 131_072;
/// Rows per decoded batch when reading (a batch of 20 f32 features is 640 KiB).
const BATCH_ROWS: usize = 8192;

/// Reads a Parquet file into a dataset (see the [module rules](super)).
pub fn read_parquet(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    read_parquet_groups(path, opts, None)
}

/// The row count of each row group of a Parquet file and its columns, after the checks of
/// [`read_parquet`] on the metadata (for chains, which plan their chunks from it).
pub(crate) fn parquet_layout(path: &Path) -> Result<super::FileLayout> {
    let (file, len) = io_guard::open_regular(path)?;
    let meta = guarded(path, "reading the metadata", || ArrowReaderMetadata::load(&file, Default::default()))?
        .map_err(|e| Error::format(path, format!("not a readable Parquet file: {e}")))?;
    let units = check_metadata(path, meta.metadata(), len)?;
    let columns = meta
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), kind_of(f.data_type()), f.data_type().to_string()))
        .collect();
    Ok(super::FileLayout { units, columns })
}

/// Reads the row groups `only` (all with `None`) of a Parquet file, in file order: what
/// chains read one chunk at a time. Row numbers in errors count from the first row read.
pub(crate) fn read_parquet_groups(
    path: &Path,
    opts: &ReadOptions,
    only: Option<std::ops::Range<usize>>,
) -> Result<(Dataset, ReadReport)> {
    let src = Source { func: "read_parquet", path, noun: "column" };
    let (file, len) = io_guard::open_regular(path)?;
    let meta = guarded(path, "reading the metadata", || ArrowReaderMetadata::load(&file, Default::default()))?
        .map_err(|e| Error::format(path, format!("not a readable Parquet file: {e}")))?;
    let all_groups = check_metadata(path, meta.metadata(), len)?;
    let only = only.unwrap_or(0..all_groups.len());
    if only.start > only.end || only.end > all_groups.len() {
        return Err(Error::format(
            path,
            format!("row groups {}..{} asked for, the file has {}", only.start, only.end, all_groups.len()),
        ));
    }
    let groups = all_groups[only.clone()].to_vec();
    let cols: Vec<(String, Kind)> =
        meta.schema().fields().iter().map(|f| (f.name().clone(), kind_of(f.data_type()))).collect();
    let sel = select(src, &cols, opts)?;
    let plan = Plan::new(&sel, &cols);
    let n: usize = groups.iter().sum();
    // features f32, a label as f64 or i64 + validity, a weight f32
    let per_row = 4 * plan.features.len() as u64 + 9 * u64::from(plan.label.is_some()) + 4;
    io_guard::check_alloc(path, &format!("{n} rows"), (n as u64).saturating_mul(per_row))?;
    let mut out = Buffers::new(n, plan.features.len(), &plan);
    let parts = out.split(&groups);
    let mask = ProjectionMask::roots(meta.parquet_schema(), plan.used.iter().copied());
    // The row groups are read on rayon's threads, under the session's budget.
    let budget = crate::memory::current();
    parts.into_par_iter().enumerate().try_for_each(|(g, part)| {
        crate::memory::with(&budget, || {
            // the same file as `file`, with a position of its own
            let file = io_guard::reopen(&file, path)?;
            guarded(path, &format!("reading row group {g}"), || {
                let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
                    .with_row_groups(vec![only.start + g])
                    .with_projection(mask.clone())
                    .with_batch_size(BATCH_ROWS);
                fill_group(src, builder, &plan, part, opts)
            })?
        })
    })?;
    let names = plan.features.iter().map(|&i| cols[i].0.clone()).collect();
    let raw = out.into_raw(names, &plan, &cols);
    let (lists, used) = parquet_lists::read(src, &file, &meta, opts, n, only.collect())?;
    let ignored = sel.ignored.into_iter().filter(|c| !used.contains(c)).collect();
    finish_with(src, raw, lists, opts, ignored)
}

/// A call into the parquet crate, its panics turned into format errors.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    io_guard::guarded(path, "Parquet reader", what, f)
}

/// The rows of each row group, after checking the sizes in the metadata: row counts not
/// negative and not overflowing, every column chunk inside the file (`len` bytes) and its
/// decoded size within the read limit.
fn check_metadata(path: &Path, meta: &ParquetMetaData, len: u64) -> Result<Vec<usize>> {
    let bad = |m: String| Error::format(path, format!("not a readable Parquet file: {m}"));
    let mut total: usize = 0;
    let mut groups = Vec::with_capacity(meta.num_row_groups());
    for (g, rg) in meta.row_groups().iter().enumerate() {
        let rows = usize::try_from(rg.num_rows())
            .map_err(|_| bad(format!("row group {g} has a negative row count ({})", rg.num_rows())))?;
        total = total.checked_add(rows).ok_or_else(|| bad("the row counts overflow".into()))?;
        for c in rg.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let (size, full) = (c.compressed_size(), c.uncompressed_size());
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(size).ok())
                .and_then(|(a, b)| a.checked_add(b))
                .is_some_and(|end| end <= len);
            if !inside {
                return Err(bad(format!(
                    "column '{}' of row group {g} claims {size} bytes at offset {start}, outside the file's {len} bytes",
                    c.column_path().string()
                )));
            }
            let full = u64::try_from(full).map_err(|_| {
                bad(format!("column '{}' of row group {g} has a negative size", c.column_path().string()))
            })?;
            io_guard::check_alloc(path, &format!("column '{}' of row group {g}", c.column_path().string()), full)?;
        }
        groups.push(rows);
    }
    Ok(groups)
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
        let slot: std::collections::HashMap<usize, usize> = used.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let pos = |i: usize| slot.get(&i).copied().unwrap_or(0);
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
            let (lfa, lfb) = take_front(&mut lf, m);
            let (lia, lib) = take_front(&mut li, m);
            let (loa, lob) = take_front(&mut lo, m);
            let (wa, wb) = take_front(&mut w, m);
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

/// Splits off the first `m` values of `s` (all of an empty, unused buffer).
fn take_front<'a, T>(s: &mut &'a mut [T], m: usize) -> (&'a mut [T], &'a mut [T]) {
    let all = std::mem::take(s);
    let k = m.min(all.len());
    all.split_at_mut(k)
}

/// Decodes one row group into its part of the buffers.
fn fill_group(
    src: Source<'_>,
    builder: ParquetRecordBatchReaderBuilder<File>,
    plan: &Plan,
    part: Part<'_>,
    opts: &ReadOptions,
) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| Error::format(src.path, format!("reading Parquet data: {e}"));
    let reader = builder.build().map_err(|e| bad(&e))?;
    let d = plan.features.len();
    let rows = part.rows;
    let mut r0 = 0;
    for batch in reader {
        opts.check_interrupt()?;
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
    cast_with_options(a, to, &opts)
        .map_err(|e| Error::format(src.path, format!("cannot convert {} to {to}: {e}", a.data_type())))
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
pub(super) fn kind_of(t: &DataType) -> Kind {
    match t {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Kind::Int,
        DataType::Boolean => Kind::Bool,
        DataType::Dictionary(_, v) => kind_of(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Unusable("is not numeric (utf8)".into()),
        t if parquet_lists::is_object_list(t) => Kind::Unusable(
            "holds lists (variable length per event); list columns are read as object collections \
             (option `collections`)"
                .into(),
        ),
        other => Kind::Unusable(format!("is not numeric ({other})")),
    }
}

/// Writes named columns as one Parquet table (snappy), atomically.
pub fn write_table(path: &Path, columns: &[(String, Column)]) -> Result<()> {
    check_table("write_table", columns)?;
    write_owned(path, columns.to_vec())
}

/// [`write_table`] on owned columns: their buffers become the Arrow arrays without a copy.
fn write_owned(path: &Path, columns: Vec<(String, Column)>) -> Result<()> {
    write_with_lists(path, columns, Vec::new(), None)
}

/// Writes flat columns, then list columns (with the schema metadata recording collections).
fn write_with_lists(
    path: &Path,
    columns: Vec<(String, Column)>,
    lists: Vec<(Field, ArrayRef)>,
    collections_meta: Option<String>,
) -> Result<()> {
    check_table("write_table", &columns)?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for (name, c) in &columns {
        if matches!(c, Column::F32(_) | Column::F64(_)) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name.as_str()), false);
        }
    }
    for (f, _) in &lists {
        let leaf = ColumnPath::new(vec![f.name().clone(), "list".into(), "element".into()]);
        props = props.set_column_dictionary_enabled(leaf, false);
    }
    let (names, arrays): (Vec<String>, Vec<ArrayRef>) =
        columns.into_iter().map(|(name, c)| (name, to_array(c))).unzip();
    let mut fields: Vec<Field> =
        names.iter().zip(&arrays).map(|(name, a)| Field::new(name, a.data_type().clone(), false)).collect();
    let mut arrays = arrays;
    for (f, a) in lists {
        fields.push(f);
        arrays.push(a);
    }
    let mut schema = Schema::new(fields);
    if let Some(m) = collections_meta {
        let meta: std::collections::HashMap<String, String> = [(parquet_lists::META_KEY.to_string(), m)].into();
        schema = schema.with_metadata(meta);
    }
    let batch = RecordBatch::try_new(Arc::new(schema), arrays)
        .map_err(|e| Error::arg("write_table", format!("cannot build the table: {e}")))?;
    let props = props.build();
    atomic_write(path, |w| Ok(encode_parallel(w, &batch, props)?))
}

/// Encodes `batch` row group by row group, the columns of each group in parallel (rayon),
/// with the Arrow schema embedded as `ArrowWriter` does.
fn encode_parallel<W: std::io::Write + Send>(
    w: W,
    batch: &RecordBatch,
    mut props: WriterProperties,
) -> parquet::errors::Result<()> {
    let schema = batch.schema();
    add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let props = Arc::new(props);
    let descr = ArrowSchemaConverter::new().with_coerce_types(props.coerce_types()).convert(&schema)?;
    let mut writer = SerializedFileWriter::new(w, descr.root_schema_ptr(), props)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
    let n = batch.num_rows();
    for (g, start) in (0..n).step_by(ROW_GROUP_ROWS).enumerate() {
        let len = ROW_GROUP_ROWS.min(n - start);
        let chunks = factory
            .create_column_writers(g)?
            .into_par_iter()
            .enumerate()
            .map(|(j, mut cw)| {
                let part = batch.column(j).slice(start, len);
                for leaf in compute_leaves(schema.field(j), &part)? {
                    cw.write(&leaf)?;
                }
                cw.close()
            })
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        let mut rg = writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
    }
    writer.close()?;
    Ok(())
}

fn to_array(c: Column) -> ArrayRef {
    match c {
        Column::F32(v) => Arc::new(Float32Array::from(v)),
        Column::F64(v) => Arc::new(Float64Array::from(v)),
        Column::I64(v) => Arc::new(Int64Array::from(v)),
        Column::Bool(v) => Arc::new(BooleanArray::from(v)),
        Column::Str(v) => Arc::new(StringArray::from(v)),
    }
}

/// The dataset as columns: the features (f32, by name), then `label` (i64) and `weight`
/// (f32) when present. Append per-event result columns and pass it to [`write_table`].
pub fn dataset_columns(ds: &Dataset) -> Vec<(String, Column)> {
    let mut cols: Vec<(String, Column)> =
        ds.names().iter().cloned().zip(transpose(ds)).map(|(name, v)| (name, Column::F32(v))).collect();
    if let Some(l) = ds.label() {
        cols.push(("label".into(), Column::I64(l.to_vec())));
    }
    if let Some(w) = ds.weight() {
        cols.push(("weight".into(), Column::F32(w.to_vec())));
    }
    cols
}

/// The feature matrix as one vector per column, in one pass over the rows (a strided copy
/// per column would read the whole matrix once per column).
fn transpose(ds: &Dataset) -> Vec<Vec<f32>> {
    let (n, d) = (ds.len(), ds.n_features());
    let mut cols: Vec<Vec<f32>> = (0..d).map(|_| Vec::with_capacity(n)).collect();
    for row in ds.x().rows() {
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(*v);
        }
    }
    cols
}

/// Writes a dataset as Parquet: features float32, `label` int64, `weight` float32, and each
/// object feature of each collection as a `list<float>` column `collection_feature`.
pub fn write_parquet(path: &Path, ds: &Dataset) -> Result<()> {
    let columns = dataset_columns(ds);
    let flat: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let (lists, meta) = parquet_lists::list_columns(ds, &flat)?;
    write_with_lists(path, columns, lists, meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::testutil::{fixture, shared, tmpdir};
    use arrow_array::{Int32Array, Int8Array};
    use parquet::arrow::ArrowWriter;

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    /// Writes `cols` with a chosen codec and row-group size, as other tools might.
    fn write_custom(path: &Path, cols: Vec<(&str, ArrayRef)>, codec: Compression, rg: usize) {
        let batch = RecordBatch::try_from_iter(cols.into_iter().map(|(n, a)| (n.to_string(), a))).unwrap();
        let props = WriterProperties::builder().set_compression(codec).set_max_row_group_row_count(Some(rg)).build();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn mean(v: impl Iterator<Item = f32>) -> f64 {
        let (s, n) = v.fold((0.0f64, 0usize), |(s, n), x| (s + f64::from(x), n + 1));
        s / n as f64
    }

    #[test]
    fn reads_cms_hzz_table() {
        let (ds, rep) = read_parquet(&fixture("cms_tutorial_hzz_events.parquet"), &opts()).unwrap();
        // data/README.md: 2,421 rows, 32 float32 features, weight from 0 to 0.0095, no label.
        assert_eq!((ds.len(), ds.n_features(), rep.rows_read), (2421, 32, 2421));
        assert!(ds.label().is_none() && rep.ignored_columns.is_empty());
        let w = ds.weight().unwrap();
        // pyarrow 26: weight max 0.009474806, min 0.0
        assert_eq!(w.iter().cloned().fold(f32::MIN, f32::max), 0.009474806);
        assert_eq!(w.iter().cloned().fold(f32::MAX, f32::min), 0.0);
        // README: muon multiplicity 0:59, 1:949, 2:1371, 3:34, 4:8
        let nm = ds.column("n_muon").unwrap();
        let counts: Vec<usize> = (0..5).map(|k| nm.iter().filter(|&&v| v == k as f32).count()).collect();
        assert_eq!(counts, vec![59, 949, 1371, 34, 8]);
        // numpy: pq.read_table(...)["met"].to_numpy().astype(float64).mean() = 31.8328124
        assert!((mean(ds.column("met").unwrap().iter().copied()) - 31.8328124).abs() < 1e-6);
    }

    #[test]
    fn reads_sklearn_digits_labels() {
        let (ds, _) = read_parquet(&fixture("sklearn_digits.parquet"), &opts()).unwrap();
        // README: 1,797 rows, pix0..pix63 float32, label int64 0-9
        assert_eq!((ds.len(), ds.n_features()), (1797, 64));
        let l = ds.label().unwrap();
        // numpy.unique(label, return_counts=True) on the same file
        let counts: Vec<usize> = (0..10).map(|k| l.iter().filter(|&&v| v == k).count()).collect();
        assert_eq!(counts, vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        // numpy: pix20 mean 7.09794101
        assert!((mean(ds.column("pix20").unwrap().iter().copied()) - 7.09794101).abs() < 1e-6);
    }

    #[test]
    fn reads_pyarrow_mixed_types() {
        // Values from scripts/make_io_fixtures.py (i = 0..5, 2 row groups, zstd).
        let p = fixture("pyarrow_mixed.parquet");
        let (ds, rep) = read_parquet(&p, &opts()).unwrap();
        assert_eq!(ds.names(), &["a", "b", "dfl"]);
        assert_eq!(ds.column("a").unwrap().to_vec(), vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
        assert_eq!(ds.column("b").unwrap().to_vec(), vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
        assert_eq!(ds.column("dfl").unwrap().to_vec(), vec![10.0, 20.0, 10.0, 20.0, 10.0, 20.0]);
        assert_eq!(ds.label().unwrap(), &[0, 1, 0, 1, 0, 1]);
        assert_eq!(ds.weight().unwrap(), &[1.0, 1.125, 1.25, 1.375, 1.5, 1.625]);
        assert_eq!(rep.ignored_columns, vec!["small", "big", "cat", "flag", "__index_level_0__"]);
        let cols = ["small", "big", "flag"].map(String::from).to_vec();
        let o = ReadOptions { features: Some(cols), no_weight: true, ..opts() };
        let (ds, _) = read_parquet(&p, &o).unwrap();
        // row 5: small = 2, big = 2^40 + 5 (rounds to 2^40 in f32), flag = (5 % 3 == 0) = 0
        assert_eq!(ds.x().row(5).to_vec(), vec![2.0, 1_099_511_627_776.0, 0.0]);
        assert_eq!(ds.x().row(0).to_vec(), vec![-3.0, 1_099_511_627_776.0, 1.0]);
        let o = ReadOptions { features: Some(vec!["cat".into()]), ..opts() };
        let e = read_parquet(&p, &o).unwrap_err();
        assert_eq!(e.to_string(), "read_parquet: column 'cat' is not numeric (utf8)");
    }

    #[test]
    fn reads_atlas_table_from_shared_data() {
        let Some(p) = shared("atlas_wt_dilepton_mc16a.parquet") else {
            return;
        };
        let (ds, rep) = read_parquet(&p, &opts()).unwrap();
        // README: 9,812 rows, 60 float32 features, label 6,435 ones / 3,377 zeros,
        // 11 int8 flags + 2 int64 bookkeeping columns not features.
        assert_eq!((ds.len(), ds.n_features()), (9812, 60));
        let ones = ds.label().unwrap().iter().filter(|&&l| l == 1).count();
        assert_eq!((ones, 9812 - ones), (6435, 3377));
        assert_eq!(rep.ignored_columns.len(), 13);
        let w = ds.weight().unwrap();
        // numpy: weight min 0.0, sum (f64) 384.174596; met mean 86.1066093
        assert!(w.iter().all(|&v| v >= 0.0));
        let wsum: f64 = w.iter().map(|&v| f64::from(v)).sum();
        assert!((wsum - 384.174596).abs() < 1e-4, "{wsum}");
        assert!((mean(ds.column("met").unwrap().iter().copied()) - 86.1066093).abs() < 1e-5);
    }

    fn mixed_file(dir: &Path, codec: Compression) -> std::path::PathBuf {
        let p = dir.join("mixed.parquet");
        let f64s: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.5),
            None,
            Some(2.5),
            Some(f64::NAN),
            Some(4.5),
            Some(5.5),
            Some(6.5),
        ]));
        let cols = vec![
            ("x", Arc::new(Float32Array::from(vec![1.0f32, 2., 3., 4., 5., 6., 7.])) as ArrayRef),
            ("y", f64s),
            ("i", Arc::new(Int32Array::from(vec![7, 6, 5, 4, 3, 2, 1])) as ArrayRef),
            ("k", Arc::new(Int8Array::from(vec![1i8, 0, 1, 0, 1, 0, 1])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["a"; 7])) as ArrayRef),
            ("f", Arc::new(BooleanArray::from(vec![true; 7])) as ArrayRef),
        ];
        write_custom(&p, cols, codec, 3);
        p
    }

    #[test]
    fn nulls_and_nan_error_or_drop_across_row_groups_and_codecs() {
        let dir = tmpdir("pq_mixed");
        let codecs = [
            Compression::SNAPPY,
            Compression::ZSTD(Default::default()),
            Compression::GZIP(Default::default()),
            Compression::LZ4_RAW,
            Compression::BROTLI(Default::default()),
        ];
        for codec in codecs {
            let p = mixed_file(&dir, codec);
            let e = read_parquet(&p, &opts()).unwrap_err();
            // y has a null at row 1 and NaN at row 3: count 2, first row 1
            let want = format!("{}: 2 non-finite value(s) (NaN or Inf) in column 'y', first at row 1", p.display());
            assert_eq!(e.to_string(), want);
            let o = ReadOptions { drop_nonfinite: true, label: Some("k".into()), ..opts() };
            let (ds, rep) = read_parquet(&p, &o).unwrap();
            assert_eq!((rep.rows_read, rep.dropped_nonfinite, ds.len()), (7, 2, 5));
            // kept rows 0, 2, 4, 5, 6 (3 row groups of 3, 3, 1 rows)
            assert_eq!(ds.column("x").unwrap().to_vec(), vec![1.0, 3.0, 5.0, 6.0, 7.0]);
            assert_eq!(ds.column("y").unwrap().to_vec(), vec![0.5, 2.5, 4.5, 5.5, 6.5]);
            assert_eq!(ds.label().unwrap(), &[1, 1, 1, 0, 1]);
            assert_eq!(rep.ignored_columns, vec!["i", "s", "f"]);
        }
    }

    #[test]
    fn float_label_must_be_whole() {
        let dir = tmpdir("pq_label");
        let p = dir.join("l.parquet");
        let x: ArrayRef = Arc::new(Float32Array::from(vec![1.0f32, 2.0, 3.0]));
        let ok: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 0.0, 2.0]));
        let bad: ArrayRef = Arc::new(Float32Array::from(vec![1.0f32, 0.0, 0.25]));
        write_custom(&p, vec![("x", x), ("label", ok), ("y", bad)], Compression::SNAPPY, 10);
        let (ds, _) = read_parquet(&p, &opts()).unwrap();
        assert_eq!(ds.label().unwrap(), &[1, 0, 2]);
        assert_eq!(ds.names(), &["x", "y"]);
        let e = read_parquet(&p, &ReadOptions { label: Some("y".into()), ..opts() }).unwrap_err();
        let want = format!("{}: label column 'y' must hold whole numbers; found 0.25 at row 2", p.display());
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn missing_corrupt_and_unknown_column() {
        let e = read_parquet(Path::new("/nonexistent/a.parquet"), &opts()).unwrap_err();
        assert_eq!(e.kind(), "io");
        assert!(e.to_string().starts_with("/nonexistent/a.parquet: "));
        let dir = tmpdir("pq_bad");
        let p = dir.join("bad.parquet");
        std::fs::write(&p, b"this is not parquet at all, just text").unwrap();
        let e = read_parquet(&p, &opts()).unwrap_err();
        assert_eq!(e.kind(), "format");
        assert!(e.to_string().starts_with(&format!("{}: not a readable Parquet file", p.display())));
        let o = ReadOptions { features: Some(vec!["pix99".into()]), ..opts() };
        let e = read_parquet(&fixture("sklearn_digits.parquet"), &o).unwrap_err();
        assert_eq!(e.kind(), "unknown_column");
        let msg = e.to_string();
        assert!(msg.starts_with("read_parquet: unknown column 'pix99'; available: pix0, pix1,"));
        assert!(msg.ends_with("pix63, label"), "{msg}");
    }

    #[test]
    fn sizes_in_the_metadata_are_checked_before_reading() {
        use parquet::file::metadata::{ColumnChunkMetaData, RowGroupMetaData};
        let p = fixture("sklearn_digits.parquet");
        let (file, len) = io_guard::open_regular(&p).unwrap();
        let meta = ArrowReaderMetadata::load(&file, Default::default()).unwrap();
        let meta = meta.metadata();
        assert_eq!(check_metadata(&p, meta, len).unwrap(), vec![1797]);
        let schema = meta.file_metadata().schema_descr_ptr();
        // One row group of the file rebuilt with a changed row count or first column chunk.
        let variant = |rows: i64, chunk: ColumnChunkMetaData| {
            let rg = &meta.row_groups()[0];
            let mut cols = rg.columns().to_vec();
            cols[0] = chunk;
            let rg = RowGroupMetaData::builder(schema.clone()).set_num_rows(rows).set_column_metadata(cols).build();
            ParquetMetaData::new(meta.file_metadata().clone(), vec![rg.unwrap()])
        };
        let first = meta.row_groups()[0].column(0).clone();
        let chunk = |offset: i64, size: i64, full: i64| {
            first
                .clone()
                .into_builder()
                .set_dictionary_page_offset(None)
                .set_data_page_offset(offset)
                .set_total_compressed_size(size)
                .set_total_uncompressed_size(full)
                .build()
                .unwrap()
        };
        let err = |m: &ParquetMetaData| check_metadata(&p, m, len).unwrap_err().to_string();
        let e = err(&variant(-5, first.clone()));
        assert!(e.ends_with("not a readable Parquet file: row group 0 has a negative row count (-5)"), "{e}");
        let e = err(&variant(1797, chunk(4, len as i64, 10)));
        let want =
            format!("column 'pix0' of row group 0 claims {len} bytes at offset 4, outside the file's {len} bytes");
        assert!(e.ends_with(&want), "{e}");
        assert!(err(&variant(1797, chunk(-1, 10, 10))).contains("outside the file's"));
        assert!(err(&variant(1797, chunk(4, 10, -1))).ends_with("column 'pix0' of row group 0 has a negative size"));
        // 2^40 bytes decoded is far above the 8 GiB read limit.
        let e = err(&variant(1797, chunk(4, 10, 1 << 40)));
        assert!(
            e.ends_with(
                "column 'pix0' of row group 0 would need 1.0 TiB of memory, more than the read limit of 8.0 GiB"
            ),
            "{e}"
        );
    }

    #[test]
    fn interrupt_flag_stops_the_read() {
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let o = ReadOptions { interrupt: Some(flag), ..opts() };
        assert_eq!(read_parquet(&fixture("sklearn_digits.parquet"), &o).unwrap_err().kind(), "interrupted");
    }

    #[test]
    fn write_read_round_trip_is_bit_identical() {
        use rand::Rng;
        // 300,000 rows span 3 row groups of 131,072 rows, so the parallel path is used.
        let (n, d) = (300_000, 3);
        let mut r = crate::rng::rng(7);
        let x = Array2::from_shape_fn((n, d), |_| f32::from_bits(r.random_range(0..0x7f00_0000)));
        let label: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
        let weight: Vec<f32> = (0..n).map(|i| 1.0 / (1 + i) as f32).collect();
        let names = vec!["a".into(), "b".into(), "c".into()];
        let ds = Dataset::new(names, x, Some(label), Some(weight)).unwrap();
        let p = tmpdir("pq_rt").join("ds.parquet");
        write_parquet(&p, &ds).unwrap();
        let (back, rep) = read_parquet(&p, &opts()).unwrap();
        assert_eq!(rep.rows_read, n);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(back.x().as_slice().unwrap()), bits(ds.x().as_slice().unwrap()));
        assert_eq!(back.label(), ds.label());
        assert_eq!(bits(back.weight().unwrap()), bits(ds.weight().unwrap()));
        assert_eq!(back.names(), ds.names());
    }

    #[test]
    fn write_table_keeps_types_for_extra_columns() {
        let p = tmpdir("pq_table").join("t.parquet");
        let cols = vec![
            ("f".to_string(), Column::F64(vec![0.1, 0.2])),
            ("n".to_string(), Column::I64(vec![-1, 5])),
            ("b".to_string(), Column::Bool(vec![true, false])),
            ("s".to_string(), Column::Str(vec!["p".into(), "q".into()])),
        ];
        write_table(&p, &cols).unwrap();
        let meta = ArrowReaderMetadata::load(&File::open(&p).unwrap(), Default::default()).unwrap();
        let types: Vec<String> = meta.schema().fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, vec!["Float64", "Int64", "Boolean", "Utf8"]);
        let o = ReadOptions { features: Some(vec!["f".into(), "n".into(), "b".into()]), ..opts() };
        let (ds, rep) = read_parquet(&p, &o).unwrap();
        // 0.1f64 as f32 is 0.1f32; -1, 5; true = 1, false = 0
        assert_eq!(ds.x().as_slice().unwrap(), &[0.1, -1.0, 1.0, 0.2, 5.0, 0.0]);
        assert_eq!(rep.ignored_columns, vec!["s"]);
    }
}
