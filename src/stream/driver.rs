//! The chunk loop of all streamed per-event work (attacks, scores, histograms, cuts): read a chunk, let the work turn it into a per-event table and fold its sums, append
//! the table to the Parquet output as one row group, and count the events on one progress bar
//! over the whole chain. Only one chunk (and its row group) is in memory at a time; the output
//! file appears, complete, only when the last chunk is done.

use std::path::Path;

use arrow_array::RecordBatch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::data::chain::{Chain, Chunk};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::optim::Control;

/// Runs `work` on every chunk of at most `chunk` events of `chain`, in chain order; the
/// tables it returns (if any) are written to `out` (when given), one row group per chunk. `op` names
/// the work in errors, `label` on the progress bar.
pub fn each_chunk(
    op: &'static str,
    label: &str,
    chain: &Chain,
    chunk: usize,
    out: Option<&Path>,
    control: &Control,
    work: &mut dyn FnMut(&Chunk, &Dataset) -> Result<Option<RecordBatch>>,
) -> Result<()> {
    let chunks = chain.chunks(chunk)?;
    if chunks.is_empty() {
        return Err(Error::Empty { op, what: "the chain (no events in any file)".into() });
    }
    let bar = if control.progress {
        ProgressBar::with_draw_target(Some(chain.events() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{prefix:>10} {bar:30} {pos}/{len} events [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    let mut step = |c: &Chunk| -> Result<Option<RecordBatch>> {
        control.check()?;
        let ds = chain.read(c)?;
        let batch = work(c, &ds)?;
        bar.inc(c.events as u64);
        Ok(batch)
    };
    match out {
        None => {
            for c in &chunks {
                step(c)?;
            }
        }
        Some(path) => {
            let mut failure: Option<Error> = None;
            let written = atomic_write(path, |w| {
                let mut writer: Option<ArrowWriter<_>> = None;
                let mut w = Some(w);
                for c in &chunks {
                    let batch = match step(c) {
                        Ok(Some(b)) => b,
                        Ok(None) => continue,
                        Err(e) => {
                            failure = Some(e);
                            return Err("stopped".into());
                        }
                    };
                    if let Some(w) = w.take() {
                        let props = WriterProperties::builder()
                            .set_compression(Compression::SNAPPY)
                            .set_max_row_group_row_count(Some(usize::MAX))
                            .build();
                        writer = Some(ArrowWriter::try_new(w, batch.schema(), Some(props))?);
                    }
                    if let Some(wr) = writer.as_mut() {
                        wr.write(&batch)?;
                        wr.flush()?;
                    }
                }
                if let Some(wr) = writer {
                    wr.close()?;
                }
                Ok(())
            });
            if let Some(e) = failure {
                return Err(e);
            }
            written?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// A table from named columns (`op` names it in the error of a mismatch, which is a bug).
pub fn table(op: &str, cols: Vec<(String, arrow_array::ArrayRef)>) -> Result<Option<RecordBatch>> {
    let b = RecordBatch::try_from_iter(cols).map_err(|e| Error::arg(op, format!("building the result table: {e}")))?;
    Ok(Some(b))
}
