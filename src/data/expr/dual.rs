//! Forward-mode derivatives of an expression: each column's value with its derivative with
//! respect to one parameter (θ of a nuisance), by the chain rule through every operator.
//!
//! Comparisons, logic and the rounding-free steps of `min`/`max`/`abs`/`dphi` follow the
//! branch taken at the value (the derivative of a comparison is 0; `abs` has slope sign(x),
//! 0 at 0; `dphi` wraps without changing the slope).

use super::parse::{Bin, Node, Un};
use super::{Expr, Table};
use crate::error::{Error, Result};

/// Values and derivatives of a whole column.
pub type Dual = (Vec<f64>, Vec<f64>);

/// A column's derivative by name (`None`: the column does not depend on the parameter).
pub type TangentOf<'a> = &'a dyn Fn(&str) -> Option<Vec<f64>>;

/// How a sum over objects is evaluated with derivatives: `(coll, body)` → per-row dual.
pub type SumOf<'a> = &'a dyn Fn(&str, &Expr) -> Result<Dual>;

impl Expr {
    /// The expression's values and derivatives for every row of `table`, given the
    /// derivatives of the columns it reads (`tangent`) and of its sums over objects (`sum`).
    pub fn eval_dual(
        &self,
        table: &dyn Table,
        tangent: TangentOf<'_>,
        sum: SumOf<'_>,
        op: &'static str,
    ) -> Result<Dual> {
        let n = table.rows();
        eval(&self.root, &self.src, table, tangent, sum, op, n)
    }
}

fn eval(
    node: &Node,
    src: &str,
    t: &dyn Table,
    tangent: TangentOf<'_>,
    sum: SumOf<'_>,
    op: &'static str,
    n: usize,
) -> Result<Dual> {
    let go = |a: &Node| eval(a, src, t, tangent, sum, op, n);
    Ok(match node {
        Node::Num(v) => (vec![*v; n], vec![0.0; n]),
        Node::Col(c) => {
            let id = t.lookup(c).ok_or_else(|| Error::UnknownColumn {
                op,
                name: c.clone(),
                available: t.available().join(", "),
            })?;
            let d = tangent(c).unwrap_or_else(|| vec![0.0; n]);
            (t.fill(id, 0, n), d)
        }
        Node::Sum(_, coll, body) => sum(coll, &Expr { src: src.to_string(), root: (**body).clone() })?,
        Node::Unary(u, a) => {
            let (x, dx) = go(a)?;
            let f = |g: &dyn Fn(f64) -> (f64, f64)| -> Dual {
                x.iter()
                    .zip(&dx)
                    .map(|(&x, &d)| {
                        let (v, s) = g(x);
                        (v, s * d)
                    })
                    .unzip()
            };
            match u {
                Un::Neg => f(&|x| (-x, -1.0)),
                Un::Not => f(&|x| (super::b2f(!super::truth(x)), 0.0)),
                Un::Abs => f(&|x| {
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
                Un::Sqrt => f(&|x| (x.sqrt(), 0.5 / x.sqrt())),
                Un::Exp => f(&|x| (x.exp(), x.exp())),
                Un::Log => f(&|x| (x.ln(), 1.0 / x)),
                Un::Sin => f(&|x| (x.sin(), x.cos())),
                Un::Cos => f(&|x| (x.cos(), -x.sin())),
                Un::Tan => f(&|x| (x.tan(), 1.0 / (x.cos() * x.cos()))),
                Un::Sinh => f(&|x| (x.sinh(), x.cosh())),
                Un::Cosh => f(&|x| (x.cosh(), x.sinh())),
                Un::Tanh => f(&|x| (x.tanh(), 1.0 - x.tanh() * x.tanh())),
            }
        }
        Node::Binary(b, a, c) => {
            let ((x, dx), (y, dy)) = (go(a)?, go(c)?);
            // (value, ∂/∂x, ∂/∂y) of each operator.
            let g: &dyn Fn(f64, f64) -> (f64, f64, f64) = match b {
                Bin::Add => &|x, y| (x + y, 1.0, 1.0),
                Bin::Sub => &|x, y| (x - y, 1.0, -1.0),
                Bin::Mul => &|x, y| (x * y, y, x),
                Bin::Div => &|x, y| (x / y, 1.0 / y, -x / (y * y)),
                Bin::Min => &|x, y| if x <= y { (x, 1.0, 0.0) } else { (y, 0.0, 1.0) },
                Bin::Max => &|x, y| if x >= y { (x, 1.0, 0.0) } else { (y, 0.0, 1.0) },
                Bin::Pow => &|x, y| {
                    let v = x.powf(y);
                    let dy = if x > 0.0 { v * x.ln() } else { 0.0 };
                    (v, y * x.powf(y - 1.0), dy)
                },
                Bin::Atan2 => &|x, y| {
                    let r2 = x * x + y * y;
                    (x.atan2(y), y / r2, -x / r2)
                },
                Bin::Hypot => &|x, y| {
                    let h = x.hypot(y);
                    (h, x / h, y / h)
                },
                Bin::DeltaPhi => &|x, y| (super::wrap_dphi(x, y), 1.0, -1.0),
                Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge | Bin::Eq | Bin::Ne | Bin::And | Bin::Or => {
                    return Ok((binary_value(*b, &x, &y), vec![0.0; n]));
                }
            };
            let mut v = Vec::with_capacity(n);
            let mut d = Vec::with_capacity(n);
            for i in 0..n {
                let (val, gx, gy) = g(x[i], y[i]);
                v.push(val);
                d.push(gx * dx[i] + gy * dy[i]);
            }
            (v, d)
        }
    })
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
            let tan = |c: &str| (c == "a").then(|| t.clone());
            let nosum = |_: &str, _: &Expr| -> Result<Dual> { unreachable!() };
            let (v, d) = e.eval_dual(&&d0, &tan, &nosum, "test").unwrap();
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
}
