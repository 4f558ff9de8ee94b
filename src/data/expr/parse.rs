//! Lexer and recursive-descent parser for [`super::Expr`]: text → expression tree.
//!
//! Errors name the 1-based character column of the offending token (for a caret under
//! the source line) and what was expected there.

use crate::error::{Error, Result};

/// Parses a whole expression; everything after a complete expression is an error.
/// Longest expression accepted, in tokens: far beyond any real cut string, and small enough
/// that parsing and evaluating (both recursive) stay well inside a thread's stack.
pub(super) const MAX_TOKENS: usize = 2000;
/// Deepest nesting of parentheses, unary operators and calls.
pub(super) const MAX_DEPTH: usize = 100;

pub(super) fn parse(src: &str) -> Result<Node> {
    let tokens = lex(src)?;
    if tokens.len() > MAX_TOKENS {
        return Err(Error::arg("expr", format!("expression too long: {} tokens (at most {MAX_TOKENS})", tokens.len())));
    }
    let mut p = Parser { src, tokens, pos: 0, depth: 0, sums: 0 };
    let root = p.or()?;
    let (tok, col) = p.peek();
    if *tok != Tok::End {
        return Err(syntax(src, col, "an operator or the end of the expression", tok));
    }
    Ok(root)
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Num(f64),
    Col(String),
    Unary(Un, Box<Node>),
    Binary(Bin, Box<Node>, Box<Node>),
    /// `sum(coll, expr)` or `sum(coll.feature)`: the expression over the objects of a
    /// collection, summed per event; the index numbers the sums of one expression in parse order.
    Sum(usize, String, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Un {
    Neg,
    Not,
    Abs,
    Sqrt,
    Exp,
    Log,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Min,
    Max,
    Pow,
    Atan2,
    Hypot,
    /// `dphi(a, b)`: a − b wrapped into [−π, π).
    DeltaPhi,
}

// === Lexer ===

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    /// A backquoted name: always a column, never a keyword or function.
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Num(v) => write!(f, "number {v}"),
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Quoted(s) => write!(f, "`{s}`"),
            Tok::Op(s) => write!(f, "'{s}'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::End => f.write_str("end of expression"),
        }
    }
}

const OPS: [&str; 16] = ["<=", ">=", "==", "!=", "&&", "||", "<", ">", "+", "-", "*", "/", "!", "=", "&", "|"];

fn syntax(src: &str, col: usize, expected: &str, found: impl std::fmt::Display) -> Error {
    Error::arg("expr", format!("syntax error in '{src}' at column {col}: expected {expected}, found {found}"))
}

/// Splits `src` into tokens, each with its 1-based character column.
fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let (v, next) = lex_number(src, &chars, i)?;
            out.push((Tok::Num(v), col));
            i = next;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            // `coll.feature` (a dot followed by a letter) is one name, for sums over objects.
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|c| c.is_alphabetic() || *c == '_')))
            {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
        } else if c == '`' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&c| c == '`')
                .ok_or_else(|| syntax(src, col, "a closing '`'", "end of expression"))?;
            out.push((Tok::Quoted(chars[start..start + end].iter().collect()), col));
            i = start + end + 1;
        } else if c == '(' || c == ')' || c == ',' {
            out.push((
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                },
                col,
            ));
            i += 1;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|o| rest.starts_with(**o))
                .ok_or_else(|| syntax(src, col, "a number, a name, an operator or a parenthesis", format!("'{c}'")))?;
            match *op {
                "=" => return Err(syntax(src, col, "'==' (comparison)", "'='")),
                "&" => return Err(syntax(src, col, "'&&'", "'&'")),
                "|" => return Err(syntax(src, col, "'||'", "'|'")),
                _ => {}
            }
            out.push((Tok::Op(op), col));
            i += op.len();
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

/// Reads `digits [. digits] [e [+-] digits]` starting at `i`; returns the value and the end.
fn lex_number(src: &str, chars: &[char], mut i: usize) -> Result<(f64, usize)> {
    let start = i;
    let digits = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(&mut i);
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        digits(&mut i);
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        i += 1;
        if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
            i += 1;
        }
        let exp_start = i;
        digits(&mut i);
        if i == exp_start {
            let found = chars.get(i).map_or("end of expression".to_string(), |c| format!("'{c}'"));
            return Err(syntax(src, i + 1, "digits of the exponent", found));
        }
    }
    let text: String = chars[start..i].iter().collect();
    let v = text.parse::<f64>().map_err(|_| syntax(src, start + 1, "a number", format!("'{text}'")))?;
    Ok((v, i))
}

// === Parser (precedence climbing, one method per level) ===

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    sums: usize,
}

impl Parser<'_> {
    fn peek(&self) -> (&Tok, usize) {
        let (t, c) = &self.tokens[self.pos.min(self.tokens.len() - 1)];
        (t, *c)
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        self.pos += 1;
        t
    }

    /// True (and consumed) when the next token is one of `ops` (symbols or keywords).
    fn eat(&mut self, ops: &[&str]) -> Option<&'static str> {
        let found = match self.peek().0 {
            Tok::Op(o) if ops.contains(o) => Some(*o),
            Tok::Ident(w) if w == "or" && ops.contains(&"||") => Some("||"),
            Tok::Ident(w) if w == "and" && ops.contains(&"&&") => Some("&&"),
            Tok::Ident(w) if w == "not" && ops.contains(&"!") => Some("!"),
            _ => None,
        };
        if found.is_some() {
            self.pos += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Node> {
        let mut a = self.and()?;
        while self.eat(&["||"]).is_some() {
            a = Node::Binary(Bin::Or, Box::new(a), Box::new(self.and()?));
        }
        Ok(a)
    }

    fn and(&mut self) -> Result<Node> {
        let mut a = self.cmp()?;
        while self.eat(&["&&"]).is_some() {
            a = Node::Binary(Bin::And, Box::new(a), Box::new(self.cmp()?));
        }
        Ok(a)
    }

    fn cmp(&mut self) -> Result<Node> {
        let mut a = self.sum()?;
        while let Some(op) = self.eat(&["<", "<=", ">", ">=", "==", "!="]) {
            let bin = match op {
                "<" => Bin::Lt,
                "<=" => Bin::Le,
                ">" => Bin::Gt,
                ">=" => Bin::Ge,
                "==" => Bin::Eq,
                _ => Bin::Ne,
            };
            a = Node::Binary(bin, Box::new(a), Box::new(self.sum()?));
        }
        Ok(a)
    }

    fn sum(&mut self) -> Result<Node> {
        let mut a = self.product()?;
        while let Some(op) = self.eat(&["+", "-"]) {
            let bin = if op == "+" { Bin::Add } else { Bin::Sub };
            a = Node::Binary(bin, Box::new(a), Box::new(self.product()?));
        }
        Ok(a)
    }

    fn product(&mut self) -> Result<Node> {
        let mut a = self.unary()?;
        while let Some(op) = self.eat(&["*", "/"]) {
            let bin = if op == "*" { Bin::Mul } else { Bin::Div };
            a = Node::Binary(bin, Box::new(a), Box::new(self.unary()?));
        }
        Ok(a)
    }

    fn unary(&mut self) -> Result<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::arg("expr", format!("expression nested too deeply (at most {MAX_DEPTH} levels)")));
        }
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }

    fn unary_inner(&mut self) -> Result<Node> {
        match self.eat(&["-", "!", "+"]) {
            Some("-") => Ok(Node::Unary(Un::Neg, Box::new(self.unary()?))),
            Some("!") => Ok(Node::Unary(Un::Not, Box::new(self.unary()?))),
            Some(_) => self.unary(),
            None => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Node> {
        let (tok, col) = self.bump();
        match tok {
            Tok::Num(v) => Ok(Node::Num(v)),
            Tok::Quoted(name) => Ok(Node::Col(name)),
            Tok::LParen => {
                let e = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Ident(name) if matches!(name.as_str(), "and" | "or" | "not") => {
                Err(syntax(self.src, col, "a number, a name or '('", format!("keyword '{name}'")))
            }
            Tok::Ident(name) if *self.peek().0 == Tok::LParen => self.call(&name, col),
            Tok::Ident(name) => Ok(Node::Col(name)),
            other => Err(syntax(self.src, col, "a number, a name or '('", other)),
        }
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<()> {
        let (tok, col) = self.peek();
        if *tok != want {
            return Err(syntax(self.src, col, what, tok));
        }
        self.pos += 1;
        Ok(())
    }

    /// A function call `name(args…)`; the name and arity are checked here, at parse time.
    fn call(&mut self, name: &str, col: usize) -> Result<Node> {
        self.pos += 1; // '('
        let mut args = vec![self.or()?];
        while *self.peek().0 == Tok::Comma {
            self.pos += 1;
            args.push(self.or()?);
        }
        self.expect(Tok::RParen, "',' or ')'")?;
        if name == "sum" {
            return self.sum_call(args, col);
        }
        let un = match name {
            "abs" => Some(Un::Abs),
            "sqrt" => Some(Un::Sqrt),
            "exp" => Some(Un::Exp),
            "log" => Some(Un::Log),
            "sin" => Some(Un::Sin),
            "cos" => Some(Un::Cos),
            "tan" => Some(Un::Tan),
            "sinh" => Some(Un::Sinh),
            "cosh" => Some(Un::Cosh),
            "tanh" => Some(Un::Tanh),
            _ => None,
        };
        let bin = match name {
            "min" => Some(Bin::Min),
            "max" => Some(Bin::Max),
            "pow" => Some(Bin::Pow),
            "atan2" => Some(Bin::Atan2),
            "hypot" => Some(Bin::Hypot),
            "dphi" => Some(Bin::DeltaPhi),
            _ => None,
        };
        let arity_err = |k: usize| {
            Error::arg(
                "expr",
                format!("in '{}' at column {col}: {name}() takes {k} argument(s), got {}", self.src, args.len()),
            )
        };
        match (un, bin) {
            (Some(u), _) if args.len() == 1 => Ok(Node::Unary(u, Box::new(args.remove(0)))),
            (Some(_), _) => Err(arity_err(1)),
            (_, Some(b)) if args.len() == 2 => {
                let y = args.remove(1);
                Ok(Node::Binary(b, Box::new(args.remove(0)), Box::new(y)))
            }
            (_, Some(_)) => Err(arity_err(2)),
            (None, None) => Err(Error::arg(
                "expr",
                format!(
                    "in '{}' at column {col}: unknown function '{name}'; available: \
                     abs, sqrt, exp, log, sin, cos, tan, sinh, cosh, tanh, min, max, pow, atan2, hypot, dphi, sum",
                    self.src
                ),
            )),
        }
    }
}

impl Parser<'_> {
    /// `sum(coll.feature)` or `sum(coll, expr)`: a sum over the objects of a collection.
    fn sum_call(&mut self, mut args: Vec<Node>, col: usize) -> Result<Node> {
        let bad = || {
            Error::arg(
                "expr",
                format!(
                    "in '{}' at column {col}: sum() takes a collection's object feature, `sum(jets.pt)`, \
                     or a collection and an object expression, `sum(jets, pt * cos(phi))`",
                    self.src
                ),
            )
        };
        let body = if args.len() == 2 { args.pop() } else { None };
        let (coll, body) = match (args.as_slice(), body) {
            ([Node::Col(c)], None) => match c.split_once('.') {
                Some((coll, feat)) if !coll.is_empty() && !feat.is_empty() => {
                    (coll.to_string(), Node::Col(feat.to_string()))
                }
                _ => return Err(bad()),
            },
            ([Node::Col(c)], Some(body)) if !c.contains('.') => (c.clone(), body),
            _ => return Err(bad()),
        };
        let k = self.sums;
        self.sums += 1;
        Ok(Node::Sum(k, coll, Box::new(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_builds_the_expected_tree() {
        // 1 + 2 * x > 3 || !y  ==  ((1 + (2 * x)) > 3) || (!y)
        let n = |v| Box::new(Node::Num(v));
        let c = |s: &str| Box::new(Node::Col(s.into()));
        let want = Node::Binary(
            Bin::Or,
            Box::new(Node::Binary(
                Bin::Gt,
                Box::new(Node::Binary(Bin::Add, n(1.0), Box::new(Node::Binary(Bin::Mul, n(2.0), c("x"))))),
                n(3.0),
            )),
            Box::new(Node::Unary(Un::Not, c("y"))),
        );
        assert_eq!(parse("1 + 2 * x > 3 || !y").unwrap(), want);
        assert_eq!(parse("1+2*x>3 or not y").unwrap(), want);
        assert_eq!(parse("`1 + 2`").unwrap(), Node::Col("1 + 2".into()));
    }

    #[test]
    fn absurd_nesting_and_length_are_errors_not_crashes() {
        // 500 levels: within the token cap (1001 tokens), beyond the depth cap.
        let deep = format!("{}x{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).unwrap_err().to_string().contains("nested too deeply"));
        let nots = format!("{}x", "!".repeat(500));
        assert!(parse(&nots).unwrap_err().to_string().contains("nested too deeply"));
        let long = vec!["x"; 3000].join(" + ");
        assert!(parse(&long).unwrap_err().to_string().contains("expression too long"));
        // Within the limits everything still parses.
        assert!(parse(&format!("{}x{}", "(".repeat(50), ")".repeat(50))).is_ok());
        assert!(parse(&vec!["x"; 900].join(" + ")).is_ok());
    }

    #[test]
    fn syntax_errors_name_column_and_expectation() {
        let msg = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(msg("a > (b"), "expr: syntax error in 'a > (b' at column 7: expected ')', found end of expression");
        assert_eq!(msg("a = 1"), "expr: syntax error in 'a = 1' at column 3: expected '==' (comparison), found '='");
        assert_eq!(
            msg("a b"),
            "expr: syntax error in 'a b' at column 3: expected an operator or the end of the expression, found 'b'"
        );
        assert_eq!(
            msg("1e+"),
            "expr: syntax error in '1e+' at column 4: expected digits of the exponent, found end of expression"
        );
        assert_eq!(
            msg("a > "),
            "expr: syntax error in 'a > ' at column 5: expected a number, a name or '(', found end of expression"
        );
        assert!(msg("sqrt(a, b)").contains("sqrt() takes 1 argument(s), got 2"));
        assert!(msg("sqr(a)").contains("unknown function 'sqr'"));
        assert!(msg("a # b").contains("column 3"));
    }
}
