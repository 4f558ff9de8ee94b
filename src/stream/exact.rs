//! An exact sum of f32 values: a fixed-point integer wide enough for any sum of finite f32
//! (least significant bit 2⁻¹⁴⁹, the smallest subnormal), so the total does not depend on the
//! order of the additions, and two partial sums merge into exactly the sum of all values. Its
//! value as f64 is a function of the exact total alone: a chain summed in one run, in chunks,
//! or in shards merged afterwards gives the same bits.

/// 32-bit digits (held in i64 so carries can wait); digit `k` weighs 2^(32k − 149).
const DIGITS: usize = 10;
/// Additions before the carries are propagated (each moves a digit by less than 2³²).
const PENDING: u32 = 1 << 30;

/// An exact running sum of f32 values.
#[derive(Clone, Debug, Default)]
pub struct ExactSum {
    digits: [i64; DIGITS],
    pending: u32,
}

/// Equal exact totals, however they were reached.
impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        self.digits() == other.digits()
    }
}

impl Eq for ExactSum {}

impl ExactSum {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `v` (finite; non-finite values are the caller's error to report).
    pub fn add(&mut self, v: f32) {
        let bits = v.to_bits();
        let exp = (bits >> 23) & 0xff;
        let frac = u64::from(bits & 0x7f_ffff);
        if exp == 0xff {
            return;
        }
        // normal: (2²³ + frac)·2^(exp − 150) = m·2^((exp − 1) − 149); subnormal: frac·2⁻¹⁴⁹
        let (m, shift) = if exp == 0 { (frac, 0) } else { (frac | 0x80_0000, exp - 1) };
        if m == 0 {
            return;
        }
        let (k, r) = ((shift / 32) as usize, shift % 32);
        let w = m << r;
        let (lo, hi) = ((w & 0xffff_ffff) as i64, (w >> 32) as i64);
        if bits >> 31 == 1 {
            self.digits[k] -= lo;
            self.digits[k + 1] -= hi;
        } else {
            self.digits[k] += lo;
            self.digits[k + 1] += hi;
        }
        self.pending += 1;
        if self.pending >= PENDING {
            self.normalize();
        }
    }

    /// Adds another partial sum.
    pub fn merge(&mut self, other: &ExactSum) {
        let mut o = other.clone();
        o.normalize();
        self.normalize();
        for (a, b) in self.digits.iter_mut().zip(o.digits) {
            *a += b;
        }
        self.normalize();
    }

    /// Propagates the carries: every digit but the top one in [0, 2³²), the top one signed.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        for d in &mut self.digits[..DIGITS - 1] {
            let v = *d + carry;
            *d = v.rem_euclid(1 << 32);
            carry = v.div_euclid(1 << 32);
        }
        self.digits[DIGITS - 1] += carry;
        self.pending = 0;
    }

    /// The canonical digits (for a summary file), least significant first.
    pub fn digits(&self) -> Vec<i64> {
        let mut c = self.clone();
        c.normalize();
        c.digits.to_vec()
    }

    /// The sum from its digits, as [`ExactSum::digits`] gave them; `None` for a wrong count.
    pub fn from_digits(d: &[i64]) -> Option<Self> {
        let digits: [i64; DIGITS] = d.try_into().ok()?;
        let mut s = ExactSum { digits, pending: 0 };
        s.normalize();
        Some(s)
    }

    /// The total as f64 (a function of the exact total only).
    pub fn value(&self) -> f64 {
        let mut c = self.clone();
        c.normalize();
        let mut acc = 0.0f64;
        for (k, &d) in c.digits.iter().enumerate().rev() {
            acc += d as f64 * 2f64.powi(32 * k as i32 - 149);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_and_independent_of_order_and_grouping() {
        // 1e8 + 1 − 1e8 in f32 arithmetic loses the 1 (f32 has 24 bits); the exact sum keeps it.
        let mut s = ExactSum::new();
        for v in [1e8f32, 1.0, -1e8] {
            s.add(v);
        }
        assert_eq!(s.value(), 1.0);
        // extremes: the largest f32 and the smallest subnormal, then both removed
        let mut t = ExactSum::new();
        for v in [f32::MAX, f32::from_bits(1), 3.5, -f32::MAX, -f32::from_bits(1)] {
            t.add(v);
        }
        assert_eq!(t.value(), 3.5);
        // a seeded sample summed forwards, backwards, and as three merged parts: same digits
        let mut g = crate::rng::Stream::new(7, 0);
        let v: Vec<f32> =
            (0..10_000).map(|_| ((g.uniform() - 0.3) * 1e3f64.powf(g.uniform() * 4.0 - 2.0)) as f32).collect();
        let (mut fwd, mut bwd) = (ExactSum::new(), ExactSum::new());
        v.iter().for_each(|&x| fwd.add(x));
        v.iter().rev().for_each(|&x| bwd.add(x));
        let mut parts = ExactSum::new();
        for c in v.chunks(3333) {
            let mut p = ExactSum::new();
            c.iter().for_each(|&x| p.add(x));
            parts.merge(&p);
        }
        assert_eq!(fwd.digits(), bwd.digits());
        assert_eq!(fwd.digits(), parts.digits());
        assert_eq!(fwd.value().to_bits(), parts.value().to_bits());
        // and within f64 rounding of an f64 sum (each f32 is exact in f64; 10⁴ additions)
        let f: f64 = v.iter().map(|&x| f64::from(x)).sum();
        assert!((fwd.value() - f).abs() <= 1e-9 * v.iter().map(|&x| f64::from(x).abs()).sum::<f64>());
        assert_eq!(
            ExactSum::from_digits(&fwd.digits()),
            Some({
                let mut c = fwd.clone();
                c.normalize();
                c
            })
        );
        assert!(ExactSum::from_digits(&[1, 2]).is_none());
    }
}
