//! Seeded random numbers. Every random choice in nuisance goes through here, so the same
//! script and seed give the same numbers on every machine.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator type used everywhere.
pub type Rng = ChaCha8Rng;

/// A generator for `seed`.
pub fn rng(seed: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// An independent seed for sub-stream `stream` of `seed` (e.g. one per rayon chunk or per
/// epoch), so parallel work stays deterministic whatever the thread count.
pub fn substream(seed: u64, stream: u64) -> u64 {
    // SplitMix64 finaliser over the pair: a fixed, well-mixed bijection.
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of the event at `position` (its place in the whole sample: a dataset's row,
/// or an event's position in a chain) for `seed`. Attacks that draw per event (PGD's random
/// start, RDSA's tries) key their draws by position, so an event gets the same numbers
/// whether it is attacked in memory, in a chunk of a chain or in one shard of many.
pub fn event_rng(seed: u64, position: u64) -> Rng {
    rng(substream(seed, position))
}

/// A small counter-based stream (SplitMix64) for the many short, independent per-event
/// sequences of a batched attack: 8 bytes of state, a few nanoseconds per number, and the
/// same numbers for the same `(seed, stream)` whatever the batching or thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    state: u64,
}

impl Stream {
    /// Stream number `stream` of `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        Stream { state: substream(seed, stream) }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2⁻³²
    /// for the sizes used here, n < 2³²).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn same_seed_same_numbers() {
        let a: Vec<u32> = (0..5).map(|_| 0).scan(rng(7), |r, _: u32| Some(r.random())).collect();
        let b: Vec<u32> = (0..5).map(|_| 0).scan(rng(7), |r, _: u32| Some(r.random())).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn stream_is_uniform_and_reproducible() {
        let mut a = Stream::new(5, 1);
        let mut b = Stream::new(5, 1);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Stream::new(5, 1).next_u64(), Stream::new(5, 2).next_u64());
        // 100k draws of below(10): each count ~ 10k ± 95 (binomial sd); 5 sd = 475.
        let mut counts = [0usize; 10];
        let mut s = Stream::new(1, 0);
        let mut mean = 0.0;
        for _ in 0..100_000 {
            counts[s.below(10)] += 1;
            mean += s.uniform();
        }
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 475), "{counts:?}");
        // mean of 100k U(0,1): sd 0.29/316 = 0.0009; 5 sd = 0.0046.
        assert!((mean / 100_000.0 - 0.5).abs() < 0.0046);
    }

    #[test]
    fn substreams_differ() {
        assert_ne!(substream(1, 0), substream(1, 1));
        assert_ne!(substream(1, 0), substream(2, 0));
        assert_eq!(substream(3, 4), substream(3, 4));
    }
}
