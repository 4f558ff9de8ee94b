//! Parquet write and read speed: 1,000,000 × 20 float32 features (plus nothing else),
//! written to a temporary file and read back. Prints one JSON line per benchmark with the
//! median of 3 runs: `{"bench":"parquet_write","seconds":…,"n":1000000}`.

use std::sync::Arc;
use std::time::Instant;

use ndarray::Array2;
use nuisance::data::io::{read_parquet, write_parquet, ReadOptions};
use nuisance::Dataset;
use rand::Rng;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes `ds` with `ArrowWriter` defaults (one row group up to 1,048,576 rows).
fn write_one_group(path: &std::path::Path, ds: &Dataset) -> Result<(), Box<dyn std::error::Error>> {
    use arrow_array::{ArrayRef, Float32Array, RecordBatch};
    let cols = ds.names().iter().enumerate().map(|(j, name)| {
        let a: ArrayRef = Arc::new(Float32Array::from(ds.x().column(j).to_vec()));
        (name.clone(), a)
    });
    let batch = RecordBatch::try_from_iter(cols)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path)?, batch.schema(), None)?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, d) = (1_000_000, 20);
    let mut r = nuisance::rng::rng(1);
    let x = Array2::from_shape_fn((n, d), |_| r.random::<f32>());
    let names = (0..d).map(|j| format!("x{j}")).collect();
    let ds = Dataset::new(names, x, None, None)?;
    let dir = std::env::temp_dir().join(format!("nuisance_bench_pq_{}", std::process::id()));
    let path = dir.join("bench.parquet");
    let (mut w, mut rd) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        write_parquet(&path, &ds)?;
        w.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (back, _) = read_parquet(&path, &ReadOptions::default())?;
        rd.push(t.elapsed().as_secs_f64());
        assert_eq!(back.len(), n);
    }
    // The same table as one row group of 1,000,000 rows, as pyarrow writes by default.
    let one = dir.join("one_group.parquet");
    write_one_group(&one, &ds)?;
    let mut rd1 = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let (back, _) = read_parquet(&one, &ReadOptions::default())?;
        rd1.push(t.elapsed().as_secs_f64());
        assert_eq!(back.len(), n);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{{\"bench\":\"parquet_write\",\"seconds\":{:.4},\"n\":{n}}}", median(w));
    println!("{{\"bench\":\"parquet_read\",\"seconds\":{:.4},\"n\":{n}}}", median(rd));
    println!("{{\"bench\":\"parquet_read_one_row_group\",\"seconds\":{:.4},\"n\":{n}}}", median(rd1));
    Ok(())
}
