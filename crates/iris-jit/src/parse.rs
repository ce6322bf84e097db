//! The strict text front end: Python's expression grammar and precedence for the JIT's subset,
//! plus `name = value` statements (separated by `;` or newlines) before a final expression.

use crate::ast::{BinOp, BoolOpKind, CmpOp, Expr, Iter, Reducer, UnaryOp};
use crate::error::CompileError;

/// Deepest nesting the parser accepts; keeps every later recursive pass far from the stack limit.
pub(crate) const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Float(f64),
    Int(i64),
    Name(String),
    Op(&'static str),
    Newline,
    Eof,
}

const OPS: [&str; 24] = [
    "**", "//", "<=", ">=", "==", "!=", ":=", "->", "+", "-", "*", "/", "%", "<", ">", "(", ")",
    ",", ".", "=", ";", "[", "]", ":",
];

fn err(pos: usize, msg: impl Into<String>) -> CompileError {
    CompileError::Syntax {
        pos,
        msg: msg.into(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, CompileError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut paren = 0usize;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\r' {
            i += 1;
        } else if c == b'\\' && b.get(i + 1) == Some(&b'\n') {
            i += 2;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'\n' {
            if paren == 0 {
                out.push((Tok::Newline, i));
            }
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let (tok, n) = lex_number(&b[i..]).map_err(|m| err(i, m))?;
            out.push((tok, i));
            i += n;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_owned()), start));
        } else if let Some(op) = OPS.iter().find(|op| b[i..].starts_with(op.as_bytes())) {
            match *op {
                "(" | "[" => paren += 1,
                ")" | "]" => paren = paren.saturating_sub(1),
                _ => {}
            }
            out.push((Tok::Op(op), i));
            i += op.len();
        } else {
            return Err(err(i, "unexpected character"));
        }
    }
    out.push((Tok::Eof, b.len()));
    Ok(out)
}

/// Digits with Python's underscore rule (only between digits). Returns the digits without `_`.
fn digits(b: &[u8], mut i: usize, out: &mut String) -> Result<usize, &'static str> {
    let start = i;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            out.push(b[i] as char);
            i += 1;
        } else if b[i] == b'_' && i > start && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
        } else {
            break;
        }
    }
    if b.get(i) == Some(&b'_') {
        return Err("invalid underscore in number");
    }
    Ok(i)
}

fn lex_number(b: &[u8]) -> Result<(Tok, usize), &'static str> {
    let mut text = String::new();
    let mut i = digits(b, 0, &mut text)?;
    let int_part = text.clone();
    let mut is_float = false;
    if b.get(i) == Some(&b'.') {
        is_float = true;
        text.push('.');
        i = digits(b, i + 1, &mut text)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if let Some(&s @ (b'+' | b'-')) = b.get(j) {
            exp.push(s as char);
            j += 1;
        }
        let before = exp.len();
        j = digits(b, j, &mut exp)?;
        if exp.len() == before {
            return Err("invalid float exponent");
        }
        is_float = true;
        text.push_str(&exp);
        i = j;
    }
    if b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return Err("invalid number literal");
    }
    if is_float {
        let v: f64 = text.parse().map_err(|_| "invalid float literal")?;
        Ok((Tok::Float(v), i))
    } else {
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.bytes().any(|d| d != b'0') {
            return Err("leading zeros in decimal integer literals are not permitted");
        }
        let v: i64 = int_part
            .parse()
            .map_err(|_| "integer literal does not fit in 64 bits")?;
        Ok((Tok::Int(v), i))
    }
}

const KEYWORDS: [&str; 35] = [
    "and", "or", "not", "if", "else", "for", "in", "True", "False", "None", "is", "lambda",
    "return", "def", "class", "while", "import", "from", "as", "with", "yield", "await", "async",
    "del", "pass", "break", "continue", "global", "nonlocal", "try", "except", "finally", "raise",
    "assert", "elif",
];

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
}

/// Parses `src`: optional `name = expr` statements, then one expression, then end of input.
pub(crate) fn parse(src: &str) -> Result<Expr, CompileError> {
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
        depth: 0,
    };
    p.program()
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].0
    }

    fn pos(&self) -> usize {
        self.toks[self.at].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.at].0.clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let hit = self.is_op(op);
        if hit {
            self.bump();
        }
        hit
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect_op(&mut self, op: &str) -> Result<(), CompileError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(err(self.pos(), format!("expected `{op}`")))
        }
    }

    fn enter(&mut self) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.pos(), "expression nested too deeply"));
        }
        Ok(())
    }

    fn ident(&mut self) -> Result<String, CompileError> {
        match self.peek().clone() {
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => {
                self.bump();
                Ok(n)
            }
            _ => Err(err(self.pos(), "expected a name")),
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Tok::Newline) || self.is_op(";") {
            self.bump();
        }
    }

    fn program(&mut self) -> Result<Expr, CompileError> {
        let mut lets = Vec::new();
        self.skip_separators();
        if self.eat_kw("return") {
            // allow a bare `return expr` body
        }
        loop {
            // `name = expr` statement?
            let is_assign = matches!(self.peek(), Tok::Name(n) if !KEYWORDS.contains(&n.as_str()))
                && matches!(self.toks.get(self.at + 1), Some((Tok::Op("="), _)));
            if !is_assign {
                break;
            }
            let name = self.ident()?;
            self.expect_op("=")?;
            let value = self.test()?;
            if !(matches!(self.peek(), Tok::Newline) || self.is_op(";")) {
                return Err(err(
                    self.pos(),
                    "expected `;` or a newline after an assignment",
                ));
            }
            self.skip_separators();
            self.eat_kw("return");
            lets.push((name, value));
            if lets.len() > MAX_DEPTH {
                return Err(err(self.pos(), "too many assignments"));
            }
        }
        let mut body = self.test()?;
        self.skip_separators();
        if !matches!(self.peek(), Tok::Eof) {
            return Err(err(self.pos(), "unexpected input after the expression"));
        }
        for (name, value) in lets.into_iter().rev() {
            body = Expr::Let {
                name,
                value: Box::new(value),
                body: Box::new(body),
            };
        }
        Ok(body)
    }

    /// `test: or_test ['if' or_test 'else' test]`
    fn test(&mut self) -> Result<Expr, CompileError> {
        self.enter()?;
        let body = self.or_test()?;
        let out = if self.eat_kw("if") {
            let cond = self.or_test()?;
            if !self.eat_kw("else") {
                return Err(err(self.pos(), "expected `else`"));
            }
            let orelse = self.test()?;
            Expr::IfExp {
                cond: Box::new(cond),
                body: Box::new(body),
                orelse: Box::new(orelse),
            }
        } else {
            body
        };
        self.depth -= 1;
        Ok(out)
    }

    fn or_test(&mut self) -> Result<Expr, CompileError> {
        self.bool_chain("or", BoolOpKind::Or)
    }

    fn bool_chain(&mut self, kw: &str, kind: BoolOpKind) -> Result<Expr, CompileError> {
        let first = if kind == BoolOpKind::Or {
            self.bool_chain("and", BoolOpKind::And)?
        } else {
            self.not_test()?
        };
        if !self.is_kw(kw) {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.eat_kw(kw) {
            values.push(if kind == BoolOpKind::Or {
                self.bool_chain("and", BoolOpKind::And)?
            } else {
                self.not_test()?
            });
        }
        Ok(Expr::BoolOp(kind, values))
    }

    fn not_test(&mut self) -> Result<Expr, CompileError> {
        if self.eat_kw("not") {
            self.enter()?;
            let e = self.not_test()?;
            self.depth -= 1;
            return Ok(Expr::UnaryOp(UnaryOp::Not, Box::new(e)));
        }
        self.comparison()
    }

    fn cmp_op(&mut self) -> Result<Option<CmpOp>, CompileError> {
        let op = match self.peek() {
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::Le,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::Ge,
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::Ne,
            Tok::Name(n) if n == "is" => {
                return Err(err(self.pos(), "`is` comparisons are not supported"));
            }
            _ => return Ok(None),
        };
        self.bump();
        Ok(Some(op))
    }

    fn comparison(&mut self) -> Result<Expr, CompileError> {
        let first = self.arith()?;
        let mut rest = Vec::new();
        while let Some(op) = self.cmp_op()? {
            rest.push((op, self.arith()?));
        }
        if self.is_kw("not")
            && matches!(self.toks.get(self.at + 1), Some((Tok::Name(n), _)) if n == "in")
        {
            return Err(err(self.pos(), "`not in` is not supported"));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Compare(Box::new(first), rest)
        })
    }

    fn arith(&mut self) -> Result<Expr, CompileError> {
        let saved = self.depth;
        let mut lhs = self.term()?;
        loop {
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                self.depth = saved;
                return Ok(lhs);
            };
            // a left-deep chain is as deep as it is long
            self.enter()?;
            lhs = Expr::bin(op, lhs, self.term()?);
        }
    }

    fn term(&mut self) -> Result<Expr, CompileError> {
        let saved = self.depth;
        let mut lhs = self.factor()?;
        loop {
            let op = if self.eat_op("*") {
                BinOp::Mul
            } else if self.eat_op("//") {
                BinOp::FloorDiv
            } else if self.eat_op("/") {
                BinOp::Div
            } else if self.eat_op("%") {
                BinOp::Mod
            } else {
                self.depth = saved;
                return Ok(lhs);
            };
            self.enter()?;
            lhs = Expr::bin(op, lhs, self.factor()?);
        }
    }

    /// `factor: ('+'|'-') factor | power` — so `-x**2` is `-(x**2)`.
    fn factor(&mut self) -> Result<Expr, CompileError> {
        let op = if self.eat_op("-") {
            UnaryOp::Neg
        } else if self.eat_op("+") {
            UnaryOp::Plus
        } else {
            return self.power();
        };
        self.enter()?;
        let e = self.factor()?;
        self.depth -= 1;
        Ok(Expr::UnaryOp(op, Box::new(e)))
    }

    /// `power: primary ['**' factor]` (right associative through `factor`).
    fn power(&mut self) -> Result<Expr, CompileError> {
        let base = self.primary()?;
        if self.eat_op("**") {
            self.enter()?;
            let exp = self.factor()?;
            self.depth -= 1;
            return Ok(Expr::bin(BinOp::Pow, base, exp));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, CompileError> {
        let pos = self.pos();
        let atom = match self.bump() {
            Tok::Float(v) => return Ok(Expr::Num(v)),
            Tok::Int(v) => return Ok(Expr::Int(v)),
            Tok::Op("(") => {
                self.enter()?;
                let e = self.test()?;
                let e = if self.is_kw("for") {
                    return Err(err(
                        self.pos(),
                        "a generator must be a call's only argument",
                    ));
                } else {
                    e
                };
                self.expect_op(")")?;
                self.depth -= 1;
                return self.no_trailer(e);
            }
            Tok::Name(n) if n == "True" => return self.no_trailer(Expr::Bool(true)),
            Tok::Name(n) if n == "False" => return self.no_trailer(Expr::Bool(false)),
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => n,
            _ => return Err(err(pos, "expected an expression")),
        };
        let mut name = atom;
        if self.eat_op(".") {
            if name != "math" {
                return Err(err(pos, "attribute access is only supported on `math`"));
            }
            let attr = self.ident()?;
            name = format!("math.{attr}");
            if self.is_op(".") {
                return Err(err(self.pos(), "nested attribute access is not supported"));
            }
        }
        if !self.eat_op("(") {
            return self.no_trailer(Expr::Var(name));
        }
        self.enter()?;
        let call = self.call_args(name)?;
        self.depth -= 1;
        self.no_trailer(call)
    }

    fn no_trailer(&mut self, e: Expr) -> Result<Expr, CompileError> {
        if self.is_op("(") || self.is_op(".") || self.is_op("[") {
            return Err(err(
                self.pos(),
                "calls, attributes and subscripts of this value are not supported",
            ));
        }
        Ok(e)
    }

    fn call_args(&mut self, func: String) -> Result<Expr, CompileError> {
        let mut args = Vec::new();
        if self.eat_op(")") {
            return Ok(Expr::Call { func, args });
        }
        let first = self.test()?;
        if self.eat_kw("for") {
            let gen_ = self.generator(&func, first)?;
            self.expect_op(")")?;
            return Ok(gen_);
        }
        args.push(first);
        while self.eat_op(",") {
            if self.is_op(")") {
                break;
            }
            args.push(self.test()?);
        }
        self.expect_op(")")?;
        Ok(Expr::Call { func, args })
    }

    fn generator(&mut self, func: &str, elt: Expr) -> Result<Expr, CompileError> {
        let pos = self.pos();
        let reducer = match func {
            "sum" => Reducer::Sum,
            "any" => Reducer::Any,
            "all" => Reducer::All,
            _ => {
                return Err(err(
                    pos,
                    format!("generator argument to unsupported function `{func}`"),
                ));
            }
        };
        let var = self.ident()?;
        if !self.eat_kw("in") {
            return Err(err(self.pos(), "expected `in`"));
        }
        let iter_pos = self.pos();
        let iter = match self.or_test()? {
            Expr::Call { func, mut args } if func == "range" => {
                let (start, stop, step) = match args.len() {
                    1 => (Expr::Int(0), args.remove(0), Expr::Int(1)),
                    2 => {
                        let stop = args.remove(1);
                        (args.remove(0), stop, Expr::Int(1))
                    }
                    3 => {
                        let step = args.remove(2);
                        let stop = args.remove(1);
                        (args.remove(0), stop, step)
                    }
                    n => {
                        return Err(CompileError::Arity {
                            func: "range".into(),
                            expected: "1 to 3",
                            got: n,
                        });
                    }
                };
                Iter::Range(Box::new(start), Box::new(stop), Box::new(step))
            }
            Expr::Var(name) => Iter::Container(name),
            _ => {
                return Err(err(
                    iter_pos,
                    "a generator must iterate over range(...) or a parameter",
                ));
            }
        };
        let cond = if self.eat_kw("if") {
            Some(Box::new(self.or_test()?))
        } else {
            None
        };
        if self.is_kw("for") || self.is_kw("if") {
            return Err(err(
                self.pos(),
                "nested comprehension clauses are not supported",
            ));
        }
        Ok(Expr::Generator {
            reducer,
            elt: Box::new(elt),
            var,
            iter,
            cond,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_minus_binds_looser_than_pow() {
        let e = parse("-x**2").unwrap();
        assert_eq!(
            e,
            Expr::UnaryOp(
                UnaryOp::Neg,
                Box::new(Expr::bin(BinOp::Pow, Expr::var("x"), Expr::Int(2)))
            )
        );
        // 2**-1 parses the exponent as a factor
        assert!(parse("2**-1").is_ok());
        // right associativity
        assert_eq!(
            parse("2**3**2").unwrap(),
            Expr::bin(
                BinOp::Pow,
                Expr::Int(2),
                Expr::bin(BinOp::Pow, Expr::Int(3), Expr::Int(2))
            )
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse("1e-3").unwrap(), Expr::Num(1e-3));
        assert_eq!(parse("1_000").unwrap(), Expr::Int(1000));
        assert_eq!(parse(".5").unwrap(), Expr::Num(0.5));
        assert_eq!(parse("1.").unwrap(), Expr::Num(1.0));
        assert_eq!(parse("1_0.2_5e1_0").unwrap(), Expr::Num(10.25e10));
        for bad in [
            "1__0",
            "1_",
            "01",
            "1e",
            "1x",
            "99999999999999999999",
            "1.2.3",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("00").unwrap(), Expr::Int(0));
    }

    #[test]
    fn rejects_trailing_input_and_junk() {
        for bad in [
            "x y",
            "x +",
            "(x",
            "x)",
            "",
            "lambda: 1",
            "x.y",
            "f(x)(y)",
            "x[0]",
            "a is b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generators_and_lets() {
        let e = parse("sum(i*i for i in range(1, n) if i % 2)").unwrap();
        assert!(matches!(
            e,
            Expr::Generator {
                reducer: Reducer::Sum,
                cond: Some(_),
                ..
            }
        ));
        let e = parse("y = x * 2; z = y + 1\nz * y").unwrap();
        assert!(matches!(e, Expr::Let { .. }));
        assert!(parse("any(v > 0 for v in xs)").is_ok());
        assert!(parse("max(i for i in range(3))").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(parse(&src).is_err());
        let src = "-".repeat(10_000) + "1";
        assert!(parse(&src).is_err());
        let src = "not ".repeat(10_000) + "1";
        assert!(parse(&src).is_err());
        let src = "x = 1\n".repeat(100_000) + "x";
        assert!(parse(&src).is_err());
        let src = "1+".repeat(100_000) + "1";
        assert!(parse(&src).is_err());
        let src = "2**".repeat(10_000) + "1";
        assert!(parse(&src).is_err());
    }
}
