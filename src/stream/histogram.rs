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
    each_chunk("stream_histogram", chain, chunk, None, control, &mut |_, ds| {
        let v = expr.eval_table(&ds, "stream_histogram")?;
        for (i, &x) in v.iter().enumerate() {
            h.fill(x, ds.weight().map_or(1.0, |w| w[i]));
        }
        Ok(None)
    })?;
    Ok(h)
}
