//! The whole chain at once, for population-level methods (training, CONSERVAttack) that need
//! every event together: the chain's size in memory is known from the metadata, so a chain
//! larger than what the session's memory budget has left is refused before anything is read,
//! with an error that says the method needs the whole sample (per-event work streams instead).

use super::Chain;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::memory;

impl Chain {
    /// Bytes the chain takes as one Dataset: 4 per feature value, 8 per label and 4 per
    /// weight when the chain has them (object collections come on top).
    pub fn memory_bytes(&self) -> u64 {
        let per_event = self.names.len() as u64 * 4
            + if self.opts.label.is_some() { 8 } else { 0 }
            + if self.opts.weight.is_some() { 4 } else { 0 };
        (self.events as u64).saturating_mul(per_event)
    }

    /// Reads every event for `op`, a method that needs the whole sample in memory; a chain
    /// that does not fit in what the session's memory budget has left is an error saying so.
    pub fn read_whole(&self, op: &str) -> Result<Dataset> {
        let budget = memory::current();
        let need = self.memory_bytes();
        let used = budget.used();
        if used.saturating_add(need) > budget.limit() {
            return Err(Error::Memory {
                what: format!(
                    "{op} needs the whole sample in memory at once; the chain's {} events in {} files",
                    self.events,
                    self.files.len()
                ),
                requested: need,
                used,
                budget: budget.limit(),
            });
        }
        self.read_all()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::io::testutil::tmpdir;
    use crate::data::io::{write_parquet, ReadOptions};

    #[test]
    fn a_chain_over_the_budget_is_refused_before_reading_and_one_within_is_read() {
        let dir = tmpdir("chain_whole");
        let p = dir.join("g.parquet");
        write_parquet(&p, &crate::data::synthetic::gaussians(1000, 1)).unwrap();
        let chain = Chain::open(&[p.clone(), p], &ReadOptions::default()).unwrap();
        // 2000 events × (20 float32 features + an i64 label) = 176,000 bytes
        assert_eq!(chain.memory_bytes(), 176_000);
        let small = memory::Budget::new(100_000);
        let e = memory::with(&small, || chain.read_whole("train")).unwrap_err();
        assert_eq!(e.kind(), "memory");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "train needs the whole sample in memory at once; the chain's 2000 events in 2 files: needs 171.9 KiB"
            ),
            "{text}"
        );
        // nothing was read: the budget holds nothing
        assert_eq!(small.used(), 0);
        let large: Arc<memory::Budget> = memory::Budget::new(10_000_000);
        let all = memory::with(&large, || chain.read_whole("train")).unwrap();
        assert_eq!(all.len(), 2000);
    }
}
