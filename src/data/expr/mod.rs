//! Cut and derive expressions over dataset columns, like ROOT cut strings or pandas `query`.
//!
//! An expression is parsed once into a small tree and evaluated **column-wise**: every node
//! produces a whole column (or a scalar) for a block of rows, so an operator is dispatched
//! once per block, never once per event. Blocks of rows are evaluated in parallel with rayon.
//!
//! Grammar (lowest precedence first):
//!
//! | level | syntax |
//! | --- | --- |
//! | or | `a \|\| b`, `a or b` |
//! | and | `a && b`, `a and b` |
//! | comparison | `< <= > >= == !=` (left-associative) |
//! | sum | `a + b`, `a - b` |
//! | product | `a * b`, `a / b` |
//! | unary | `-a`, `!a`, `not a` |
//! | atom | number (`3`, `0.5`, `1e-3`, `.5`), column name, `` `odd name` ``, `f(…)`, `( … )` |
//!
//! Functions: `abs sqrt exp log sin cos tan sinh cosh tanh` (one argument), `min max pow atan2
//! hypot` and `dphi` (two arguments; `dphi(a, b)` is a − b wrapped into [−π, π), for azimuths).
//! Sums over the objects of a collection, per event: `sum(jets.pt)` (HT), or with an object
//! expression `sum(jets, pt * cos(phi))` (Σ px); `sum(jets, 1)` counts the objects. A sum is
//! evaluated on a dataset's rows only (not inside an object expression).
//! Names resolve to features first, then to `label` and `weight` when the dataset has them
//! and no feature of that name shadows them.
//!
//! The same expressions run over the objects of a collection ([`Expr::eval_table`] with a
//! [`Table`] whose rows are objects, see `data::objects`): there an object feature is read per
//! object and an event column is broadcast to the event's objects.
//!
//! Semantics: values are f64; booleans are 1 and 0; a value is *true* when it is non-zero
//! and not NaN. Comparisons are made at f32 precision, the precision the data are stored in,
//! so `x == 0.1` matches a stored `0.1`.
//!
//! ```
//! use nuisance::data::{expr::Expr, Dataset};
//! let x = ndarray::array![[1.0f32, 20.0], [2.0, 5.0], [-0.5, 40.0]];
//! let ds = Dataset::new(vec!["eta".into(), "pt".into()], x, Some(vec![0, 1, 1]), None).unwrap();
//! let e = Expr::parse("abs(eta) < 2.5 && pt > 10 && label == 1").unwrap();
//! assert_eq!(e.eval_mask(&ds).unwrap(), vec![false, false, true]);
//! ```

use rayon::prelude::*;

mod dual;
mod parse;

pub use dual::{Dual, SumOf, TangentOf};

use parse::{Bin, Node, Un};

use super::Dataset;
use crate::error::{Error, Result};

/// Rows per block in the parallel evaluation: large enough to amortise dispatch, small
/// enough for the intermediate columns to stay in cache.
const BLOCK: usize = 4096;

/// A parsed expression; cheap to evaluate repeatedly on different datasets.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    src: String,
    root: Node,
}

impl Expr {
    /// Parses `src`; a syntax error names the 1-based column and what was expected.
    ///
    /// ```
    /// let e = nuisance::data::expr::Expr::parse("met > (1").unwrap_err();
    /// assert!(e.to_string().contains("column 9: expected ')'"));
    /// ```
    pub fn parse(src: &str) -> Result<Expr> {
        let root = parse::parse(src)?;
        Ok(Expr { src: src.to_string(), root })
    }

    /// The source text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// The column names the expression reads, in order of first use.
    pub fn columns(&self) -> Vec<String> {
        fn walk(n: &Node, out: &mut Vec<String>) {
            match n {
                Node::Num(_) => {}
                Node::Col(c) => {
                    if !out.contains(c) {
                        out.push(c.clone());
                    }
                }
                Node::Unary(_, a) => walk(a, out),
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Sum(..) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// The object features the expression's sums read, as `coll.name` in order of first use
    /// (a name in a sum may also be an event column broadcast to the objects).
    pub fn object_columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, coll, body) in self.sums() {
            for c in (Expr { src: String::new(), root: body.clone() }).columns() {
                let name = format!("{coll}.{c}");
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// The sums over objects, in parse order (their index is their position).
    fn sums(&self) -> Vec<(usize, &str, &Node)> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<(usize, &'a str, &'a Node)>) {
            match n {
                Node::Num(_) | Node::Col(_) => {}
                Node::Unary(_, a) => walk(a, out),
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Sum(k, c, body) => out.push((*k, c.as_str(), body)),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out.sort_by_key(|s| s.0);
        out
    }

    /// Evaluates the expression for every row of `ds` (booleans as 1 and 0).
    pub fn eval(&self, ds: &Dataset) -> Result<Vec<f64>> {
        self.eval_table(&ds, "filter")
    }

    /// Evaluates the expression as a row mask: true where the value is non-zero and not NaN.
    pub fn eval_mask(&self, ds: &Dataset) -> Result<Vec<bool>> {
        Ok(self.eval(ds)?.into_iter().map(truth).collect())
    }

    /// Evaluates the expression for every row of any [`Table`]; an unknown name is an
    /// [`Error::UnknownColumn`] of `op` listing the table's names.
    pub fn eval_table(&self, table: &dyn Table, op: &'static str) -> Result<Vec<f64>> {
        let cols = self
            .columns()
            .into_iter()
            .map(|c| match table.lookup(&c) {
                Some(id) => Ok((c, id)),
                None => Err(Error::UnknownColumn { op, name: c, available: table.available().join(", ") }),
            })
            .collect::<Result<Vec<_>>>()?;
        let sums = self
            .sums()
            .into_iter()
            .map(|(_, coll, body)| {
                let body = Expr { src: self.src.clone(), root: body.clone() };
                table.object_sum(coll, &body, op).unwrap_or_else(|| {
                    Err(Error::arg(op, format!("in '{}': sum({coll}, …) needs the event rows of a dataset with collection '{coll}' (not an object expression)", self.src)))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = vec![0.0; table.rows()];
        out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, chunk)| {
            let start = b * BLOCK;
            let src = Source { table, cols: &cols, sums: &sums, start, len: chunk.len() };
            match eval_node(&self.root, &src) {
                Val::S(v) => chunk.fill(v),
                Val::V(v) => chunk.copy_from_slice(&v),
            }
        });
        Ok(out)
    }
}

/// Named columns an expression can read: `rows()` rows, read block by block.
pub trait Table: Sync {
    /// Number of rows.
    fn rows(&self) -> usize;
    /// The id of the column `name`, or `None` when there is no such column.
    fn lookup(&self, name: &str) -> Option<usize>;
    /// The names an "unknown column" error lists.
    fn available(&self) -> Vec<String>;
    /// Rows `start..start + len` of the column `id` (from [`Table::lookup`]).
    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64>;
    /// Per row, the sum of `expr` over the objects of collection `coll`; `None` when the
    /// table's rows are not events holding collections.
    fn object_sum(&self, _coll: &str, _expr: &Expr, _op: &'static str) -> Option<Result<Vec<f64>>> {
        None
    }
}

/// A dataset's columns: features `0..d`, then the label (`d`) and the weight (`d + 1`).
impl Table for &Dataset {
    fn rows(&self) -> usize {
        self.len()
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        let d = self.n_features();
        if let Some(j) = self.names().iter().position(|n| n == name) {
            Some(j)
        } else if name == "label" && self.label().is_some() {
            Some(d)
        } else if name == "weight" && self.weight().is_some() {
            Some(d + 1)
        } else {
            None
        }
    }

    fn available(&self) -> Vec<String> {
        let mut avail = self.names().to_vec();
        avail.extend(self.label().map(|_| "label".to_string()));
        avail.extend(self.weight().map(|_| "weight".to_string()));
        avail
    }

    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64> {
        let r = start..start + len;
        let d = self.n_features();
        match id {
            j if j < d => self.x().slice(ndarray::s![r, j]).iter().map(|&v| f64::from(v)).collect(),
            j if j == d => self.label().map_or_else(Vec::new, |l| l[r].iter().map(|&v| v as f64).collect()),
            _ => self.weight().map_or_else(Vec::new, |w| w[r].iter().map(|&v| f64::from(v)).collect()),
        }
    }

    fn object_sum(&self, coll: &str, expr: &Expr, op: &'static str) -> Option<Result<Vec<f64>>> {
        Some(self.sum_objects(op, coll, expr))
    }
}

/// One value of a dataset column by [`Table`] id (for broadcasting event columns to objects).
pub(crate) fn dataset_value(ds: &Dataset, id: usize, row: usize) -> f64 {
    let d = ds.n_features();
    match id {
        j if j < d => f64::from(ds.x()[[row, j]]),
        j if j == d => ds.label().map_or(f64::NAN, |l| l[row] as f64),
        _ => ds.weight().map_or(f64::NAN, |w| f64::from(w[row])),
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.src)
    }
}

// === Evaluation ===

/// One block of rows of a table, with the resolved columns.
struct Source<'a> {
    table: &'a dyn Table,
    cols: &'a [(String, usize)],
    /// Each sum over objects, for every row of the table.
    sums: &'a [Vec<f64>],
    start: usize,
    len: usize,
}

impl Source<'_> {
    fn column(&self, name: &str) -> Vec<f64> {
        // Every name was resolved by `Expr::eval_table`, so the lookup cannot miss.
        match self.cols.iter().find(|(c, _)| c == name) {
            Some((_, id)) => self.table.fill(*id, self.start, self.len),
            None => vec![f64::NAN; self.len],
        }
    }
}

/// A node's value on one block: a scalar (constant subtree) or one value per row.
enum Val {
    S(f64),
    V(Vec<f64>),
}

fn truth(v: f64) -> bool {
    v != 0.0 && !v.is_nan()
}

fn b2f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn eval_node(n: &Node, src: &Source<'_>) -> Val {
    match n {
        Node::Num(v) => Val::S(*v),
        Node::Col(c) => Val::V(src.column(c)),
        Node::Sum(k, ..) => Val::V(src.sums[*k][src.start..src.start + src.len].to_vec()),
        Node::Unary(op, a) => {
            let a = eval_node(a, src);
            match op {
                Un::Neg => map1(a, |x| -x),
                Un::Not => map1(a, |x| b2f(!truth(x))),
                Un::Abs => map1(a, f64::abs),
                Un::Sqrt => map1(a, f64::sqrt),
                Un::Exp => map1(a, f64::exp),
                Un::Log => map1(a, f64::ln),
                Un::Sin => map1(a, f64::sin),
                Un::Cos => map1(a, f64::cos),
                Un::Tan => map1(a, f64::tan),
                Un::Sinh => map1(a, f64::sinh),
                Un::Cosh => map1(a, f64::cosh),
                Un::Tanh => map1(a, f64::tanh),
            }
        }
        Node::Binary(op, a, b) => {
            let (a, b) = (eval_node(a, src), eval_node(b, src));
            match op {
                Bin::Add => map2(a, b, |x, y| x + y),
                Bin::Sub => map2(a, b, |x, y| x - y),
                Bin::Mul => map2(a, b, |x, y| x * y),
                Bin::Div => map2(a, b, |x, y| x / y),
                Bin::Lt => map2(a, b, |x, y| b2f((x as f32) < (y as f32))),
                Bin::Le => map2(a, b, |x, y| b2f((x as f32) <= (y as f32))),
                Bin::Gt => map2(a, b, |x, y| b2f((x as f32) > (y as f32))),
                Bin::Ge => map2(a, b, |x, y| b2f((x as f32) >= (y as f32))),
                Bin::Eq => map2(a, b, |x, y| b2f((x as f32) == (y as f32))),
                Bin::Ne => map2(a, b, |x, y| b2f((x as f32) != (y as f32))),
                Bin::And => map2(a, b, |x, y| b2f(truth(x) && truth(y))),
                Bin::Or => map2(a, b, |x, y| b2f(truth(x) || truth(y))),
                Bin::Min => map2(a, b, f64::min),
                Bin::Max => map2(a, b, f64::max),
                Bin::Pow => map2(a, b, f64::powf),
                Bin::Atan2 => map2(a, b, f64::atan2),
                Bin::Hypot => map2(a, b, f64::hypot),
                Bin::DeltaPhi => map2(a, b, wrap_dphi),
            }
        }
    }
}

/// `a − b` wrapped into [−π, π).
fn wrap_dphi(a: f64, b: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let d = a - b;
    d - TAU * ((d + PI) / TAU).floor()
}

/// Applies `f` to every element, in place when the operand is a column.
fn map1(a: Val, f: impl Fn(f64) -> f64) -> Val {
    match a {
        Val::S(x) => Val::S(f(x)),
        Val::V(mut v) => {
            v.iter_mut().for_each(|x| *x = f(*x));
            Val::V(v)
        }
    }
}

/// Applies `f` element-wise, broadcasting scalars, reusing a column buffer.
fn map2(a: Val, b: Val, f: impl Fn(f64, f64) -> f64) -> Val {
    match (a, b) {
        (Val::S(x), Val::S(y)) => Val::S(f(x, y)),
        (Val::V(mut v), Val::S(y)) => {
            v.iter_mut().for_each(|x| *x = f(*x, y));
            Val::V(v)
        }
        (Val::S(x), Val::V(mut v)) => {
            v.iter_mut().for_each(|y| *y = f(x, *y));
            Val::V(v)
        }
        (Val::V(mut v), Val::V(w)) => {
            v.iter_mut().zip(&w).for_each(|(x, y)| *x = f(*x, *y));
            Val::V(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ds() -> Dataset {
        // Columns a, b, `p t` (a name needing backquotes); labels and weights.
        let x = array![[1.0f32, 4.0, 0.1], [-2.0, 9.0, 0.2], [3.0, 16.0, 0.3]];
        Dataset::new(vec!["a".into(), "b".into(), "p t".into()], x, Some(vec![0, 1, 1]), Some(vec![0.5, 1.0, 2.0]))
            .unwrap()
    }

    fn eval(src: &str) -> Vec<f64> {
        Expr::parse(src).unwrap().eval(&ds()).unwrap()
    }

    #[test]
    fn arithmetic_follows_precedence() {
        // a + b*2 = 1+8, -2+18, 3+32 ; -a^... unary minus binds tighter than '*'
        assert_eq!(eval("a + b * 2"), vec![9.0, 16.0, 35.0]);
        assert_eq!(eval("(a + b) * 2"), vec![10.0, 14.0, 38.0]);
        assert_eq!(eval("-a * 2 - 1"), vec![-3.0, 3.0, -7.0]);
        assert_eq!(eval("b / 4 / 2"), vec![0.5, 9.0 / 8.0, 2.0]); // left-associative
        assert_eq!(eval("1e-3 * 2000 + .5"), vec![2.5; 3]);
    }

    #[test]
    fn functions_match_std() {
        assert_eq!(eval("sqrt(b)"), vec![2.0, 3.0, 4.0]);
        assert_eq!(eval("abs(a)"), vec![1.0, 2.0, 3.0]);
        assert_eq!(eval("max(a, 0) + min(a, 0)"), vec![1.0, -2.0, 3.0]);
        assert_eq!(eval("pow(a, 2)"), vec![1.0, 4.0, 9.0]);
        // hypot(3, 4) = 5; atan2(1, 1) = π/4; log(exp(2)) = 2; tanh(0) = 0
        let v = eval("hypot(3, 4) + atan2(1, 1) + log(exp(2)) + tanh(0) + sin(0) + cos(0)");
        assert!((v[0] - (5.0 + std::f64::consts::FRAC_PI_4 + 2.0 + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn hyperbolic_and_tan_match_std() {
        // cosh(1) = 1.5430806, sinh(1) = 1.1752012, tan(1) = 1.5574077 (std f64)
        let v = eval("cosh(1) + 10 * sinh(1) + 100 * tan(1)")[0];
        assert!((v - (1f64.cosh() + 10.0 * 1f64.sinh() + 100.0 * 1f64.tan())).abs() < 1e-12);
    }

    fn with_jets() -> Dataset {
        use crate::data::Collection;
        // event 0: jets pt 10, 20 at phi 0, π/2; event 1: none; event 2: pt 5 at phi π
        let pi = std::f32::consts::PI;
        let c = Collection::new(
            "jets",
            vec![0, 2, 2, 3],
            vec!["pt".into(), "phi".into()],
            vec![vec![10.0, 20.0, 5.0], vec![0.0, pi / 2.0, pi]],
        )
        .unwrap();
        ds().with_collection(c).unwrap()
    }

    #[test]
    fn sums_over_objects_per_event() {
        let d = with_jets();
        let ev = |s: &str| Expr::parse(s).unwrap().eval(&d).unwrap();
        // HT: 10 + 20, 0 (no jets), 5; plus the event column a = 1, -2, 3
        assert_eq!(ev("sum(jets.pt) + a"), vec![31.0, -2.0, 8.0]);
        // Σ px = 10·cos 0 + 20·cos(π/2) = 10; 0; 5·cos π = −5 (f32 π: within 1e-5)
        let px = ev("sum(jets, pt * cos(phi))");
        for (got, want) in px.iter().zip([10.0, 0.0, -5.0]) {
            assert!((got - want).abs() < 1e-5, "{px:?}");
        }
        // counts, and an event column broadcast inside the sum: Σ (pt · b) = b · HT
        assert_eq!(ev("sum(jets, 1)"), vec![2.0, 0.0, 1.0]);
        assert_eq!(ev("sum(jets, pt * b)"), vec![120.0, 0.0, 80.0]);
        let e = Expr::parse("a + sum(jets.pt) + sum(jets, phi * a)").unwrap();
        assert_eq!(e.columns(), vec!["a"]);
        assert_eq!(e.object_columns(), vec!["jets.pt", "jets.phi", "jets.a"]);
    }

    #[test]
    fn bad_sums_are_clear_errors() {
        let d = with_jets();
        let msg = |s: &str| match Expr::parse(s) {
            Err(e) => e.to_string(),
            Ok(e) => e.eval(&d).unwrap_err().to_string(),
        };
        assert!(msg("sum(a)").contains("sum() takes a collection's object feature"), "{}", msg("sum(a)"));
        assert!(msg("sum(jets.pt, 1)").contains("sum() takes"));
        assert_eq!(msg("sum(muons.pt)"), "filter: unknown column 'muons'; available: jets");
        assert!(msg("sum(jets.eta)").contains("unknown column 'eta'"), "{}", msg("sum(jets.eta)"));
        let e = d.eval_objects("derive_objects", "jets", "pt + sum(jets.pt)").unwrap_err().to_string();
        assert!(e.contains("needs the event rows of a dataset"), "{e}");
    }

    #[test]
    fn dphi_wraps_into_minus_pi_pi() {
        use std::f64::consts::PI;
        // 3 − (−3) = 6 → 6 − 2π = −0.28319; −3 − 3 = −6 → −6 + 2π = 0.28319; 1 − 0.5 = 0.5;
        // π − 0 = π → −π (the interval is half-open); 5.5π − 0 → 5.5π − 6π = −π/2.
        let v = eval("dphi(3, -3) + 0 * a");
        assert!((v[0] - (6.0 - 2.0 * PI)).abs() < 1e-12, "{v:?}");
        assert!((eval("dphi(-3, 3)")[0] - (2.0 * PI - 6.0)).abs() < 1e-12);
        assert_eq!(eval("dphi(1, 0.5)"), vec![0.5; 3]);
        assert!((eval("dphi(3.141592653589793, 0)")[0] + PI).abs() < 1e-12);
        assert!((eval("dphi(5.5 * 3.141592653589793, 0)")[0] + PI / 2.0).abs() < 1e-12);
        let e = Expr::parse("dphi(a)").unwrap_err().to_string();
        assert!(e.contains("dphi() takes 2 argument(s), got 1"), "{e}");
    }

    #[test]
    fn logic_and_comparisons_give_masks() {
        let e = Expr::parse("a > 0 && b < 10 || label == 1 and not (weight >= 2)").unwrap();
        // row0: (T && T) || ... = T ; row1: (F) || (T && T) = T ; row2: (T && F) || (T && F) = F
        assert_eq!(e.eval_mask(&ds()).unwrap(), vec![true, true, false]);
        assert_eq!(eval("a != 1"), vec![0.0, 1.0, 1.0]);
        assert_eq!(eval("!(a <= -2)"), vec![1.0, 0.0, 1.0]);
        // 0.2 is stored as f32; the comparison at f32 precision matches it exactly.
        assert_eq!(eval("`p t` == 0.2"), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn nan_is_false_in_masks() {
        // sqrt(-2) = NaN in row 1: not selected; !NaN is true.
        let e = Expr::parse("sqrt(a)").unwrap();
        assert_eq!(e.eval_mask(&ds()).unwrap(), vec![true, false, true]);
        assert_eq!(eval("!sqrt(a)"), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn columns_listed_once_in_order() {
        let e = Expr::parse("b + a * b > `p t` && weight > 0").unwrap();
        assert_eq!(e.columns(), vec!["b", "a", "p t", "weight"]);
    }

    #[test]
    fn feature_shadows_label() {
        let x = array![[7.0f32], [8.0]];
        let d = Dataset::new(vec!["label".into()], x, Some(vec![0, 1]), None).unwrap();
        assert_eq!(Expr::parse("label").unwrap().eval(&d).unwrap(), vec![7.0, 8.0]);
    }

    #[test]
    fn unknown_column_lists_available_with_hint() {
        let e = Expr::parse("bb > 1").unwrap().eval(&ds()).unwrap_err();
        assert_eq!(e.to_string(), "filter: unknown column 'bb'; available: a, b, p t, label, weight");
        assert_eq!(e.hint(), "did you mean 'b'?");
    }

    #[test]
    fn blocks_cover_every_row() {
        // More rows than one block: each row i must get 2·i, whatever block it falls in.
        let n = BLOCK * 2 + 17;
        let x = ndarray::Array2::from_shape_fn((n, 1), |(i, _)| i as f32);
        let d = Dataset::new(vec!["i".into()], x, None, None).unwrap();
        let v = Expr::parse("i * 2").unwrap().eval(&d).unwrap();
        assert!(v.iter().enumerate().all(|(i, &y)| y == 2.0 * i as f64));
        let c = Expr::parse("3").unwrap().eval(&d).unwrap();
        assert_eq!(c.len(), n);
    }
}
