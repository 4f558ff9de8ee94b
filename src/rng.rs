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
    fn substreams_differ() {
        assert_ne!(substream(1, 0), substream(1, 1));
        assert_ne!(substream(1, 0), substream(2, 0));
        assert_eq!(substream(3, 4), substream(3, 4));
    }
}
