//! CSV (comma-separated) and TSV (tab-separated, by the `.tsv` extension) tables.
//!
//! The first row must be a header of column names. CSV has no column types, so a column
//! counts as numeric (and is treated as floating point, hence a feature by default) when its
//! cell in the first data row is empty or parses as a number; otherwise it is text: ignored
//! by default and an error if listed. In a numeric column an empty cell is a missing value
//! (handled like NaN), `nan`/`inf` are accepted, and any other text is an error naming the
//! file, line and column.

use std::io::BufReader;
use std::path::Path;

use ndarray::Array2;

use super::select::{finish, select, Kind, RawLabel, RawTable, Selection, Source};
use super::{check_table, Column, ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::io_guard;

/// The field separator for `path`: tab for `.tsv`, comma otherwise.
fn delimiter(path: &Path) -> u8 {
    let tsv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    if tsv {
        b'\t'
    } else {
        b','
    }
}

/// Records read between two checks of the interrupt flag and the read limit.
const CHUNK: usize = 4096;

/// Reads a CSV/TSV file with a header row into a dataset (see the [module rules](super)).
///
/// Linear in the size of the file, however wide the header.
pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    let src = Source { func: "read_csv", path, noun: "column" };
    let (file, _) = io_guard::open_regular(path)?;
    let mut rdr =
        ::csv::ReaderBuilder::new().delimiter(delimiter(path)).has_headers(true).from_reader(BufReader::new(file));
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::format(path, format!("reading the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(Error::format(path, "expected a header row of column names, found none"));
    }
    let mut records = rdr.into_records();
    let first = records.next().transpose().map_err(|e| csv_error(path, &e))?;
    let cols: Vec<(String, Kind)> =
        header.iter().enumerate().map(|(j, h)| (h.clone(), infer(first.as_ref(), j))).collect();
    let sel = select(src, &cols, opts)?;
    let used = used_columns(&sel);
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); used.len()];
    // each row: its parsed values (f64) and the f32 features they become
    let row_bytes = 12 * used.len().max(1) as u64;
    let max_rows = io_guard::read_limit() / row_bytes;
    for (r, rec) in first.into_iter().map(Ok).chain(records).enumerate() {
        if r % CHUNK == 0 {
            opts.check_interrupt()?;
        }
        if r as u64 >= max_rows {
            io_guard::check_alloc(path, &format!("more than {r} rows"), (r as u64 + 1).saturating_mul(row_bytes))?;
        }
        let rec = rec.map_err(|e| csv_error(path, &e))?;
        let line = rec.position().map_or(0, |p| p.line());
        for (k, &j) in used.iter().enumerate() {
            values[k].push(parse_cell(path, line, &header[j], rec.get(j).unwrap_or(""))?);
        }
    }
    let raw = raw_table(&cols, &sel, &used, values);
    finish(src, raw, opts, sel.ignored)
}

/// Numeric unless the first data row holds text that is not a number.
fn infer(first: Option<&::csv::StringRecord>, j: usize) -> Kind {
    let cell = first.and_then(|r| r.get(j)).unwrap_or("").trim();
    if cell.is_empty() || cell.parse::<f64>().is_ok() {
        Kind::Float
    } else {
        Kind::Unusable(format!("is not numeric (text such as '{cell}' on the first data row)"))
    }
}

/// File columns that are read: features, label, weight (each once, ascending).
fn used_columns(sel: &Selection) -> Vec<usize> {
    let mut used = sel.features.clone();
    used.extend(sel.label);
    used.extend(sel.weight);
    used.sort_unstable();
    used.dedup();
    used
}

fn parse_cell(path: &Path, line: u64, column: &str, cell: &str) -> Result<f64> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(f64::NAN);
    }
    cell.parse::<f64>()
        .map_err(|_| Error::format(path, format!("line {line}, column '{column}': expected a number, found '{cell}'")))
}

fn csv_error(path: &Path, e: &::csv::Error) -> Error {
    Error::format(path, format!("reading CSV: {e}"))
}

/// Assembles parsed columns (`values[k]` for file column `used[k]`) into a raw table.
fn raw_table(cols: &[(String, Kind)], sel: &Selection, used: &[usize], values: Vec<Vec<f64>>) -> RawTable {
    let mut slot = vec![0; cols.len()];
    for (k, &i) in used.iter().enumerate() {
        slot[i] = k;
    }
    let col = |i: usize| &values[slot[i]];
    let n = values.first().map_or(0, Vec::len);
    let d = sel.features.len();
    let mut x = Array2::<f32>::zeros((n, d));
    for (j, &i) in sel.features.iter().enumerate() {
        for (dst, &v) in x.column_mut(j).iter_mut().zip(col(i)) {
            *dst = v as f32;
        }
    }
    let names = sel.features.iter().map(|&i| cols[i].0.clone()).collect();
    let label = sel.label.map(|i| (cols[i].0.clone(), RawLabel::Float(col(i).clone())));
    let weight = sel.weight.map(|i| (cols[i].0.clone(), col(i).iter().map(|&v| v as f32).collect()));
    RawTable { names, x, label, weight }
}

/// Writes named columns as CSV (TSV for a `.tsv` path), atomically. Floats are written in
/// their shortest exact form (`NaN`, `inf` for non-finite), booleans as `1`/`0`.
pub fn write_csv_table(path: &Path, columns: &[(String, Column)]) -> Result<()> {
    let n = check_table("write_csv_table", columns)?;
    let delim = delimiter(path);
    atomic_write(path, |w| {
        let mut out = ::csv::WriterBuilder::new().delimiter(delim).from_writer(w);
        out.write_record(columns.iter().map(|(name, _)| name.as_str()))?;
        let mut row: Vec<String> = vec![String::new(); columns.len()];
        for i in 0..n {
            for (cell, (_, col)) in row.iter_mut().zip(columns) {
                *cell = format_cell(col, i);
            }
            out.write_record(&row)?;
        }
        out.flush()?;
        Ok(())
    })
}

fn format_cell(col: &Column, i: usize) -> String {
    match col {
        Column::F32(v) => v[i].to_string(),
        Column::F64(v) => v[i].to_string(),
        Column::I64(v) => v[i].to_string(),
        Column::Bool(v) => u8::from(v[i]).to_string(),
        Column::Str(v) => v[i].clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::testutil::tmpdir;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).and_then(|mut f| f.write_all(text.as_bytes())).unwrap();
        p
    }

    #[test]
    fn reads_features_label_weight_and_ignores_text() {
        let dir = tmpdir("csv_basic");
        let p = write(&dir, "t.csv", "a,name,b,label,weight\n1.5,x,2,0,0.5\n-3,y,4e1,1,2\n");
        let (ds, rep) = read_csv(&p, &ReadOptions::default()).unwrap();
        assert_eq!(ds.names(), &["a", "b"]);
        // the cells as written: rows [1.5, 2] and [-3, 40]
        assert_eq!(ds.x().as_slice().unwrap(), &[1.5, 2.0, -3.0, 40.0]);
        assert_eq!(ds.label().unwrap(), &[0, 1]);
        assert_eq!(ds.weight().unwrap(), &[0.5, 2.0]);
        assert_eq!(rep.ignored_columns, vec!["name"]);
        let opts = ReadOptions { features: Some(vec!["name".into()]), ..Default::default() };
        let e = read_csv(&p, &opts).unwrap_err().to_string();
        assert!(e.starts_with("read_csv: column 'name' is not numeric"), "{e}");
    }

    #[test]
    fn bad_number_names_file_line_and_column() {
        let dir = tmpdir("csv_bad");
        let p = write(&dir, "t.csv", "a,b\n1,2\n3,4\n5,x7\n");
        let e = read_csv(&p, &ReadOptions::default()).unwrap_err();
        assert_eq!(e.kind(), "format");
        // header is line 1, so "5,x7" is line 4
        let want = format!("{}: line 4, column 'b': expected a number, found 'x7'", p.display());
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn empty_cell_is_nonfinite_and_droppable_tsv() {
        let dir = tmpdir("csv_empty");
        let p = write(&dir, "t.tsv", "a\tb\n1\t2\n3\t\n5\t6\n");
        let e = read_csv(&p, &ReadOptions::default()).unwrap_err();
        let want = format!("{}: 1 non-finite value(s) (NaN or Inf) in column 'b', first at row 1", p.display());
        assert_eq!(e.to_string(), want);
        let opts = ReadOptions { drop_nonfinite: true, ..Default::default() };
        let (ds, rep) = read_csv(&p, &opts).unwrap();
        assert_eq!(ds.x().as_slice().unwrap(), &[1.0, 2.0, 5.0, 6.0]);
        assert_eq!(rep.dropped_nonfinite, 1);
    }

    #[test]
    fn write_then_read_is_exact() {
        let dir = tmpdir("csv_rt");
        let p = dir.join("out.csv");
        // 0.1f32 and 1/3 are not short decimals; shortest round-trip printing must restore them.
        let cols = vec![
            ("a".to_string(), Column::F32(vec![0.1, 1.0 / 3.0, -2.5e-8])),
            ("s".to_string(), Column::Str(vec!["x,y".into(), "q\"".into(), "".into()])),
            ("flag".to_string(), Column::Bool(vec![true, false, true])),
            ("label".to_string(), Column::I64(vec![2, 0, 1])),
        ];
        write_csv_table(&p, &cols).unwrap();
        let (ds, rep) = read_csv(&p, &ReadOptions::default()).unwrap();
        let got: Vec<u32> = ds.column("a").unwrap().iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [0.1f32, 1.0 / 3.0, -2.5e-8].iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
        assert_eq!(ds.label().unwrap(), &[2, 0, 1]);
        // "flag" is numeric in CSV (1/0), so it is a float feature too; only "s" is text.
        assert_eq!(ds.names(), &["a", "flag"]);
        assert_eq!(rep.ignored_columns, vec!["s"]);
    }

    #[test]
    fn wide_header_reads_in_linear_time() {
        // 200,000 columns: any per-column search over all columns would be 4·10¹⁰ steps.
        let dir = tmpdir("csv_wide");
        let d = 200_000;
        let header: Vec<String> = (0..d).map(|j| format!("c{j}")).collect();
        let row: Vec<String> = (0..d).map(|j| (j % 7).to_string()).collect();
        let p = write(&dir, "wide.csv", &format!("{}\n{}\n", header.join(","), row.join(",")));
        let (ds, rep) = read_csv(&p, &ReadOptions::default()).unwrap();
        assert_eq!((ds.len(), ds.n_features(), rep.ignored_columns.len()), (1, d, 0));
        // column c123456 holds 123456 mod 7 = 4
        assert_eq!(ds.column("c123456").unwrap().to_vec(), vec![4.0]);
        // An explicit list of every column is linear too.
        let o = ReadOptions { features: Some(header.clone()), ..Default::default() };
        assert_eq!(read_csv(&p, &o).unwrap().0.n_features(), d);
        // A typo lists the first 100 columns, not all 200,000.
        let o = ReadOptions { features: Some(vec!["c1x".into()]), ..Default::default() };
        let e = read_csv(&p, &o).unwrap_err().to_string();
        assert!(e.starts_with("read_csv: unknown column 'c1x'; available: c0, c1, c2,"), "{e}");
        assert!(e.ends_with(", c98, c99, … (199900 more)"), "{e}");
    }

    #[test]
    fn named_pipe_is_refused_without_blocking() {
        let dir = tmpdir("csv_fifo");
        let p = dir.join("pipe.csv");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let e = read_csv(&p, &ReadOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: is a named pipe, not a regular file; only regular files are read", p.display())
        );
    }

    #[test]
    fn interrupt_flag_stops_the_read() {
        let dir = tmpdir("csv_int");
        let p = write(&dir, "t.csv", "a,b\n1,2\n3,4\n");
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let o = ReadOptions { interrupt: Some(flag), ..Default::default() };
        assert_eq!(read_csv(&p, &o).unwrap_err().kind(), "interrupted");
    }

    #[test]
    fn missing_file_and_header_only() {
        let e = read_csv(Path::new("/nonexistent/t.csv"), &ReadOptions::default()).unwrap_err();
        assert_eq!(e.kind(), "io");
        assert!(e.to_string().starts_with("/nonexistent/t.csv: "));
        let dir = tmpdir("csv_hdr");
        let p = write(&dir, "t.csv", "a,b\n");
        let e = read_csv(&p, &ReadOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), format!("read_csv: {} is empty", p.display()));
    }
}
