//! A histogram of an expression of a chain's columns, streamed chunk by chunk into a
//! fixed-edge [`Hist`] (weighted with the chain's weights; exact merge).

use super::driver::each_chunk;
use super::hist::Hist;
use crate::data::chain::Chain;
use crate::data::expr::Expr;
use crate::error::Result;
use crate::optim::Control;

/// Fills `empty` with `expr` of every event of `chain`, in chunks of at most `chunk` events.
pub fn histogram_chain(chain: &Chain, expr: &Expr, chunk: usize, empty: Hist, control: &Control) -> Result<Hist> {
    let mut h = empty;
    each_chunk("stream_histogram", "stream_histogram", chain, chunk, None, control, &mut |_, ds| {
        let v = expr.eval_table(&ds, "stream_histogram")?;
        for (i, &x) in v.iter().enumerate() {
            h.fill(x, ds.weight().map_or(1.0, |w| w[i]));
        }
        Ok(None)
    })?;
    Ok(h)
}

/// The smallest and largest finite value of `expr` over `chain` (a first pass, for a histogram
/// whose range is not given); `None` when no value is finite.
pub fn range_chain(chain: &Chain, expr: &Expr, chunk: usize, control: &Control) -> Result<Option<(f64, f64)>> {
    let mut r: Option<(f64, f64)> = None;
    each_chunk("stream_histogram", "stream_histogram", chain, chunk, None, control, &mut |_, ds| {
        for x in expr.eval_table(&ds, "stream_histogram")?.into_iter().filter(|x| x.is_finite()) {
            r = Some(r.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
        }
        Ok(None)
    })?;
    Ok(r)
}
