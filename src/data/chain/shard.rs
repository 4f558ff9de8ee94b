//! Shards: a deterministic share of a chain's events for one of `N` jobs (`nuisance run
//! --shard I/N`).
//!
//! A chain's events are split by whole units (Parquet row groups, ROOT files) into `N`
//! contiguous ranges of the chain: the unit whose first event is at position `p` of a chain
//! of `E` events belongs to shard `⌊p·N/E⌋`. The share depends only on the files (their order
//! and row groups), never on the chunk size; the shards are disjoint, cover the chain, and
//! follow each other in chain order, so concatenating their per-event results in shard order
//! gives the events in chain order. Every event keeps its position in the whole chain (the
//! `event` column of a result table, and the key of its random streams), so a shard's events
//! get exactly the results of one run over the whole chain.

use std::fmt;

use super::Chain;
use crate::error::{Error, Result};

/// Shard `index` of `count` (from 0); `0/1` is the whole chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Most shards of one run (a Slurm job array is usually capped well below).
pub const MAX_SHARDS: usize = 100_000;

impl Shard {
    /// The whole chain: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, checked.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || count > MAX_SHARDS {
            return Err(Error::arg("shard", format!("the number of shards must be 1 to {MAX_SHARDS}, got {count}")));
        }
        if index >= count {
            return Err(Error::arg(
                "shard",
                format!("shard {index} of {count} asked for; shards are numbered 0 to {}", count - 1),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N` (e.g. `2/8`, shards numbered from 0).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::arg("shard", format!("'{s}' is not a shard; write I/N with 0 ≤ I < N, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: usize = i.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }

    /// Whether this is the whole chain (no sharding).
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// The shard owning the unit whose first event is at `position` of a chain of `total`
    /// events.
    pub fn owner(position: usize, total: usize, count: usize) -> usize {
        if total == 0 {
            return 0;
        }
        ((position as u128 * count as u128) / total as u128) as usize
    }

    /// Whether this shard owns the unit whose first event is at `position` of `total`.
    pub fn owns(&self, position: usize, total: usize) -> bool {
        Shard::owner(position, total, self.count) == self.index
    }

    /// The tag a sharded run puts into the names of the files it writes: `.shard-I-of-N`
    /// (empty for the whole chain).
    pub fn tag(&self) -> String {
        if self.is_whole() {
            String::new()
        } else {
            format!(".shard-{}-of-{}", self.index, self.count)
        }
    }

    /// `name` with the shard's tag before its extension: `flips.parquet` →
    /// `flips.shard-1-of-4.parquet`.
    pub fn file_name(&self, name: &str) -> String {
        let tag = self.tag();
        match name.rfind('.') {
            Some(dot) if dot > 0 => format!("{}{tag}{}", &name[..dot], &name[dot..]),
            _ => format!("{name}{tag}"),
        }
    }

    /// The file name `name` would have without a shard tag, and that shard, when `name` has
    /// one (`flips.shard-1-of-4.parquet` → `flips.parquet`, 1/4).
    pub fn untag(name: &str) -> Option<(String, Shard)> {
        let at = name.rfind(".shard-")?;
        let rest = &name[at + ".shard-".len()..];
        let (spec, ext) = match rest.find('.') {
            Some(d) => (&rest[..d], &rest[d..]),
            None => (rest, ""),
        };
        let (i, n) = spec.split_once("-of-")?;
        let shard = Shard::new(i.parse().ok()?, n.parse().ok()?).ok()?;
        Some((format!("{}{ext}", &name[..at]), shard))
    }
}

impl Chain {
    /// The chain restricted to `shard`'s share of the units (see the module documentation);
    /// positions stay those of the whole chain.
    pub fn sharded(mut self, shard: Shard) -> Chain {
        let total = self.total_events;
        let mut share = 0usize;
        for file in &self.files {
            let mut p = file.first_event;
            for &n in &file.units {
                if shard.owns(p, total) {
                    share += n;
                }
                p += n;
            }
        }
        self.shard = shard;
        self.events = share;
        self
    }

    /// The share this chain reads (the whole chain, 0/1, unless [`Chain::sharded`]).
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Events in the whole chain (all shards).
    pub fn total_events(&self) -> usize {
        self.total_events
    }

    /// Whether the unit starting at chain position `position` belongs to this chain's share.
    pub(super) fn in_share(&self, position: usize) -> bool {
        self.shard.owns(position, self.total_events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_names() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard { index: 2, count: 8 });
        assert!(Shard::parse("8/8").unwrap_err().to_string().contains("numbered 0 to 7"));
        assert!(Shard::parse("x").unwrap_err().to_string().contains("write I/N"));
        assert!(Shard::parse("0/0").is_err());
        let s = Shard::new(1, 4).unwrap();
        assert_eq!(s.file_name("flips.parquet"), "flips.shard-1-of-4.parquet");
        assert_eq!(s.file_name("a.b.json"), "a.b.shard-1-of-4.json");
        assert_eq!(s.file_name("noext"), "noext.shard-1-of-4");
        assert_eq!(Shard::WHOLE.file_name("flips.parquet"), "flips.parquet");
        assert_eq!(Shard::untag("a.b.shard-1-of-4.json"), Some(("a.b.json".into(), s)));
        assert_eq!(Shard::untag("noext.shard-1-of-4"), Some(("noext".into(), s)));
        assert_eq!(Shard::untag("flips.parquet"), None);
        assert_eq!(Shard::untag("x.shard-4-of-4.json"), None);
    }

    #[test]
    fn owners_are_contiguous_and_cover_every_shard() {
        // 10 units of 100 events in 4 shards: ⌊p·4/1000⌋ for p = 0, 100, …, 900 gives
        // 0 0 0 1 1 2 2 2 3 3
        let owners: Vec<usize> = (0..10).map(|u| Shard::owner(u * 100, 1000, 4)).collect();
        assert_eq!(owners, [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]);
        // never past the last shard, even at huge positions
        assert_eq!(Shard::owner(usize::MAX - 1, usize::MAX, 7), 6);
    }
}
