//! The public expression AST: what the text front end produces and what a binding (for example
//! one lowering Python's `ast` module) builds directly.

/// Binary arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (true division)
    Div,
    /// `//` (floor division)
    FloorDiv,
    /// `%` (modulo, sign of the divisor)
    Mod,
    /// `**`
    Pow,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `+x`
    Plus,
    /// `-x`
    Neg,
    /// `not x`
    Not,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// `and` / `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoolOpKind {
    /// `and`: the first falsy operand, else the last.
    And,
    /// `or`: the first truthy operand, else the last.
    Or,
}

/// How a generator's elements are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reducer {
    /// `sum(...)`: starts from integer 0, adds left to right.
    Sum,
    /// `any(...)`: short-circuits on the first truthy element.
    Any,
    /// `all(...)`: short-circuits on the first falsy element.
    All,
}

/// What a generator iterates over.
#[derive(Debug, Clone, PartialEq)]
pub enum Iter {
    /// `range(start, stop, step)`; `range(n)` is `Range(Int(0), n, Int(1))`.
    Range(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A buffer parameter, iterated element by element (`for x_i in x`).
    Container(String),
}

/// An expression of the JIT's language.
///
/// Function calls are by name: `sin`, `math.sin`, `min`, `if_else`, `break_if`, `sum_while`
/// (whose first argument is the loop variable, as a [`Expr::Var`]) and so on; see the README for
/// the full list. Unknown names are rejected when the expression is compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A float literal.
    Num(f64),
    /// An integer literal.
    Int(i64),
    /// `True` / `False`.
    Bool(bool),
    /// A parameter, local, loop variable, or one of `pi`, `e`, `math.pi`, `math.e`.
    Var(String),
    /// `lhs op rhs`.
    BinOp(BinOp, Box<Expr>, Box<Expr>),
    /// `op operand`.
    UnaryOp(UnaryOp, Box<Expr>),
    /// A comparison chain `first op0 e0 op1 e1 ...`.
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `a and b and ...` / `a or b or ...` (at least one operand).
    BoolOp(BoolOpKind, Vec<Expr>),
    /// `body if cond else orelse`.
    IfExp {
        /// The condition.
        cond: Box<Expr>,
        /// Value when the condition is truthy.
        body: Box<Expr>,
        /// Value otherwise.
        orelse: Box<Expr>,
    },
    /// `func(args...)`.
    Call {
        /// Function name, possibly dotted (`math.sqrt`).
        func: String,
        /// Positional arguments.
        args: Vec<Expr>,
    },
    /// `reducer(elt for var in iter if cond)`.
    Generator {
        /// `sum`, `any` or `all`.
        reducer: Reducer,
        /// The element expression (may be a `break_*`/`continue_*` intrinsic call).
        elt: Box<Expr>,
        /// The loop variable.
        var: String,
        /// What is iterated.
        iter: Iter,
        /// The optional `if` filter.
        cond: Option<Box<Expr>>,
    },
    /// `name = value` followed by `body` (a local assignment).
    Let {
        /// The bound name.
        name: String,
        /// Its value.
        value: Box<Expr>,
        /// The expression in which it is visible.
        body: Box<Expr>,
    },
}

impl Expr {
    /// Shorthand for a variable.
    pub fn var(name: &str) -> Self {
        Self::Var(name.to_owned())
    }

    /// Shorthand for a binary operation.
    pub fn bin(op: BinOp, lhs: Self, rhs: Self) -> Self {
        Self::BinOp(op, Box::new(lhs), Box::new(rhs))
    }

    /// Shorthand for a call.
    pub fn call(func: &str, args: Vec<Self>) -> Self {
        Self::Call {
            func: func.to_owned(),
            args,
        }
    }
}
