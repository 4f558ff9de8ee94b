//! Forward-mode derivatives of an expression in vector mode: each column's value with its
//! derivatives along K directions (θ of each nuisance) carried together, so the values (and
//! every operator's slopes) are computed once whatever K.
//!
//! Comparisons, logic and the rounding-free steps of `min`/`max`/`abs`/`dphi` follow the
//! branch taken at the value (the derivative of a comparison is 0; `abs` has slope sign(x),
//! 0 at 0; `dphi` wraps without changing the slope). A direction along which a
//! sub-expression does not move is carried as `None` (an exact 0: no slope multiplies it).

use rayon::prelude::*;

use super::parse::{Bin, Node, Un};
use super::{Expr, Table};
use crate::error::{Error, Result};

/// A whole column's values with its derivatives along K directions.
#[derive(Clone, Debug, PartialEq)]
pub struct Dual {
    /// The value per row.
    pub value: Vec<f64>,
    /// Per direction, the derivative per row (`None`: 0 on every row).
    pub tangents: Vec<Option<Vec<f64>>>,
}

/// A column's derivatives by name, one entry per direction (`None` overall: the column
/// depends on no direction).
pub type TangentOf<'a> = &'a dyn Fn(&str) -> Option<Vec<Option<Vec<f64>>>>;

/// How a sum over objects is evaluated with derivatives: `(coll, body)` → per-row dual.
pub type SumOf<'a> = &'a dyn Fn(&str, &Expr) -> Result<Dual>;

/// Rows per parallel task of an elementwise pass.
const ROWS: usize = 4096;

impl Expr {
    /// The expression's values and derivatives along `k` directions for every row of
    /// `table`, given the derivatives of the columns it reads (`tangent`) and of its sums
    /// over objects (`sum`).
    pub fn eval_dual(
        &self,
        table: &dyn Table,
        k: usize,
        tangent: TangentOf<'_>,
        sum: SumOf<'_>,
        op: &'static str,
    ) -> Result<Dual> {
        let cx = Cx { src: &self.src, t: table, tangent, sum, op, n: table.rows(), k };
        eval(&self.root, &cx)
    }
}

/// What every node's evaluation reads.
struct Cx<'a> {
    src: &'a str,
    t: &'a dyn Table,
    tangent: TangentOf<'a>,
    sum: SumOf<'a>,
    op: &'static str,
    n: usize,
    k: usize,
}

fn eval(node: &Node, cx: &Cx<'_>) -> Result<Dual> {
    let (n, k) = (cx.n, cx.k);
    Ok(match node {
        Node::Num(v) => Dual { value: vec![*v; n], tangents: vec![None; k] },
        Node::Col(c) => {
            let id = cx.t.lookup(c).ok_or_else(|| Error::UnknownColumn {
                op: cx.op,
                name: c.clone(),
                available: cx.t.available().join(", "),
            })?;
            let mut tangents = (cx.tangent)(c).unwrap_or_default();
            tangents.resize(k, None);
            Dual { value: cx.t.fill(id, 0, n), tangents }
        }
        Node::Sum(_, coll, body) => (cx.sum)(coll, &Expr { src: cx.src.to_string(), root: (**body).clone() })?,
        Node::Unary(u, a) => {
            let x = eval(a, cx)?;
            match u {
                Un::Neg => unary(x, |x| (-x, -1.0)),
                Un::Not => unary(x, |x| (super::b2f(!super::truth(x)), 0.0)),
                Un::Abs => unary(x, |x| {
                    (
                        x.abs(),
                        if x > 0.0 {
                            1.0
                        } else if x < 0.0 {
                            -1.0
                        } else {
                            0.0
                        },
                    )
                }),
                Un::Sqrt => unary(x, |x| (x.sqrt(), 0.5 / x.sqrt())),
                Un::Exp => unary(x, |x| (x.exp(), x.exp())),
                Un::Log => unary(x, |x| (x.ln(), 1.0 / x)),
                Un::Sin => unary(x, |x| (x.sin(), x.cos())),
                Un::Cos => unary(x, |x| (x.cos(), -x.sin())),
                Un::Tan => unary(x, |x| (x.tan(), 1.0 / (x.cos() * x.cos()))),
                Un::Sinh => unary(x, |x| (x.sinh(), x.cosh())),
                Un::Cosh => unary(x, |x| (x.cosh(), x.sinh())),
                Un::Tanh => unary(x, |x| (x.tanh(), 1.0 - x.tanh() * x.tanh())),
            }
        }
        Node::Binary(b, a, c) => {
            let (x, y) = (eval(a, cx)?, eval(c, cx)?);
            // (value, ∂/∂x, ∂/∂y) of each operator.
            match b {
                Bin::Add => binary(x, y, |x, y| (x + y, 1.0, 1.0)),
                Bin::Sub => binary(x, y, |x, y| (x - y, 1.0, -1.0)),
                Bin::Mul => binary(x, y, |x, y| (x * y, y, x)),
                Bin::Div => binary(x, y, |x, y| (x / y, 1.0 / y, -x / (y * y))),
                Bin::Min => binary(x, y, |x, y| if x <= y { (x, 1.0, 0.0) } else { (y, 0.0, 1.0) }),
                Bin::Max => binary(x, y, |x, y| if x >= y { (x, 1.0, 0.0) } else { (y, 0.0, 1.0) }),
                Bin::Pow => binary(x, y, |x, y| {
                    let v = x.powf(y);
                    let dy = if x > 0.0 { v * x.ln() } else { 0.0 };
                    (v, y * x.powf(y - 1.0), dy)
                }),
                Bin::Atan2 => binary(x, y, |x, y| {
                    let r2 = x * x + y * y;
                    (x.atan2(y), y / r2, -x / r2)
                }),
                Bin::Hypot => binary(x, y, |x, y| {
                    let h = x.hypot(y);
                    (h, x / h, y / h)
                }),
                Bin::DeltaPhi => binary(x, y, |x, y| (super::wrap_dphi(x, y), 1.0, -1.0)),
                Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge | Bin::Eq | Bin::Ne | Bin::And | Bin::Or => {
                    Dual { value: binary_value(*b, &x.value, &y.value), tangents: vec![None; k] }
                }
            }
        }
    })
}

/// `g(x) = (value, slope)` on every row; each direction's derivative times the slope.
fn unary(x: Dual, g: impl Fn(f64) -> (f64, f64) + Sync) -> Dual {
    let Dual { mut value, mut tangents } = x;
    if tangents.iter().all(Option::is_none) {
        value.par_iter_mut().with_min_len(ROWS).for_each(|x| *x = g(*x).0);
        return Dual { value, tangents };
    }
    let mut slope = vec![0.0; value.len()];
    value.par_iter_mut().zip(&mut slope).with_min_len(ROWS).for_each(|(x, s)| (*x, *s) = g(*x));
    for d in tangents.iter_mut().flatten() {
        d.par_iter_mut().zip(&slope).with_min_len(ROWS).for_each(|(d, s)| *d *= s);
    }
    Dual { value, tangents }
}

/// `g(x, y) = (value, ∂/∂x, ∂/∂y)` on every row; each direction's derivative by the chain
/// rule (a side that does not move along it contributes nothing).
fn binary(x: Dual, y: Dual, g: impl Fn(f64, f64) -> (f64, f64, f64) + Sync) -> Dual {
    let (Dual { mut value, tangents: tx }, Dual { value: yv, tangents: ty }) = (x, y);
    if tx.iter().chain(&ty).all(Option::is_none) {
        value.par_iter_mut().zip(&yv).with_min_len(ROWS).for_each(|(x, y)| *x = g(*x, *y).0);
        return Dual { value, tangents: tx };
    }
    let (mut gx, mut gy) = (vec![0.0; value.len()], vec![0.0; value.len()]);
    value.par_iter_mut().zip(&yv).zip(gx.par_iter_mut().zip(&mut gy)).with_min_len(ROWS).for_each(
        |((x, y), (a, b))| {
            let (v, da, db) = g(*x, *y);
            (*x, *a, *b) = (v, da, db);
        },
    );
    let tangents = tx
        .into_iter()
        .zip(ty)
        .map(|(dx, dy)| match (dx, dy) {
            (Some(mut dx), Some(dy)) => {
                dx.par_iter_mut()
                    .zip(&dy)
                    .zip(gx.par_iter().zip(&gy))
                    .with_min_len(ROWS)
                    .for_each(|((d, dy), (a, b))| *d = a * *d + b * dy);
                Some(dx)
            }
            (Some(mut d), None) => {
                d.par_iter_mut().zip(&gx).with_min_len(ROWS).for_each(|(d, a)| *d *= a);
                Some(d)
            }
            (None, Some(mut d)) => {
                d.par_iter_mut().zip(&gy).with_min_len(ROWS).for_each(|(d, b)| *d *= b);
                Some(d)
            }
            (None, None) => None,
        })
        .collect();
    Dual { value, tangents }
}

/// The values of a comparison or logic operator (their derivative is 0).
fn binary_value(b: Bin, x: &[f64], y: &[f64]) -> Vec<f64> {
    use super::{b2f, truth};
    x.iter()
        .zip(y)
        .map(|(&x, &y)| {
            b2f(match b {
                Bin::Lt => (x as f32) < (y as f32),
                Bin::Le => (x as f32) <= (y as f32),
                Bin::Gt => (x as f32) > (y as f32),
                Bin::Ge => (x as f32) >= (y as f32),
                Bin::Eq => (x as f32) == (y as f32),
                Bin::Ne => (x as f32) != (y as f32),
                Bin::And => truth(x) && truth(y),
                _ => truth(x) || truth(y),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    /// Every function's derivative against central finite differences, with the input
    /// column `a` depending on θ as a(θ) = a⁰ + θ·t (t per row), b constant.
    #[test]
    fn derivatives_match_finite_differences() {
        let a0 = [0.7f64, 1.3, 2.1];
        let t = vec![1.0, -0.5, 2.0];
        let b = [0.4f32, -1.2, 3.0];
        let ds = |th: f64| {
            let x =
                ndarray::Array2::from_shape_fn((3, 2), |(i, j)| if j == 0 { (a0[i] + th * t[i]) as f32 } else { b[i] });
            Dataset::new(vec!["a".into(), "b".into()], x, None, None).unwrap()
        };
        let exprs = [
            "a * b + a / b - a",
            "sqrt(a) + exp(a) + log(a)",
            "sin(a) * cos(a) + tan(a)",
            "sinh(a) + cosh(a) * tanh(a)",
            "abs(a - 1) + min(a, b) + max(a, 1)",
            "pow(a, 2.5) + pow(2, a)",
            "atan2(a, b) + hypot(a, b) + dphi(a, b)",
            "(a > 1) * a + -a",
        ];
        for src in exprs {
            let e = Expr::parse(src).unwrap();
            let d0 = ds(0.0);
            let tan = |c: &str| (c == "a").then(|| vec![Some(t.clone())]);
            let nosum = |_: &str, _: &Expr| -> Result<Dual> { unreachable!() };
            let Dual { value: v, tangents } = e.eval_dual(&&d0, 1, &tan, &nosum, "test").unwrap();
            let d = tangents[0].clone().unwrap_or_else(|| vec![0.0; 3]);
            // f32 storage limits the finite difference: h = 1e-2, tolerance 1e-3 relative.
            let h = 1e-2;
            let (vp, vm) = (e.eval(&ds(h)).unwrap(), e.eval(&ds(-h)).unwrap());
            for i in 0..3 {
                assert!((v[i] - e.eval(&d0).unwrap()[i]).abs() < 1e-9, "{src}");
                let fd = (vp[i] - vm[i]) / (2.0 * h);
                assert!((d[i] - fd).abs() < 2e-3 * (1.0 + fd.abs()), "{src} row {i}: {} vs fd {fd}", d[i]);
            }
        }
    }

    /// Three directions at once (a moves along the first, b along the second, neither along
    /// the third) equal one direction at a time: the values and slopes are shared, each
    /// direction's chain rule is its own.
    #[test]
    fn directions_together_equal_one_at_a_time() {
        let x = ndarray::array![[0.7f32, 0.4], [1.3, -1.2], [2.1, 3.0]];
        let ds = Dataset::new(vec!["a".into(), "b".into()], x, None, None).unwrap();
        let (ta, tb) = (vec![1.0, -0.5, 2.0], vec![0.3, 0.8, -1.1]);
        let nosum = |_: &str, _: &Expr| -> Result<Dual> { unreachable!() };
        let e = Expr::parse("sqrt(2 * a * b * b + 5) * cosh(a - b) + min(a, b) / hypot(a, b) + (a > b)").unwrap();
        let both = |c: &str| match c {
            "a" => Some(vec![Some(ta.clone()), None, None]),
            _ => Some(vec![None, Some(tb.clone()), None]),
        };
        let all = e.eval_dual(&&ds, 3, &both, &nosum, "test").unwrap();
        assert_eq!(all.value, e.eval(&ds).unwrap());
        assert_eq!(all.tangents[2], None);
        for (j, (name, t)) in [("a", &ta), ("b", &tb)].into_iter().enumerate() {
            let one = |c: &str| (c == name).then(|| vec![Some(t.clone())]);
            let single = e.eval_dual(&&ds, 1, &one, &nosum, "test").unwrap();
            assert_eq!(all.tangents[j], single.tangents[0], "direction {j}");
            assert!(single.tangents[0].as_ref().is_some_and(|d| d.iter().all(|v| *v != 0.0)));
        }
    }
}
