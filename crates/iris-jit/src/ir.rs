//! The typed IR and the lowering from [`Expr`]: names resolved, Python's numeric promotions made
//! explicit, every operation typed `f64` / `i64` / `bool`.

use crate::ast::{BinOp, BoolOpKind, CmpOp, Expr, Iter, Reducer, UnaryOp};
use crate::error::{CompileError, status};
use crate::rt::MathFn;
use crate::value::{DType, Ty, Value};

/// Deepest AST the lowering accepts (the parser stops earlier; programmatic ASTs may not).
const MAX_LOWER_DEPTH: usize = 256;

/// How one parameter is passed to a specialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PKind {
    Scalar(Ty),
    Buffer(DType),
}

/// Unary operations (including conversions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Un {
    NegF,
    NegI,
    AbsF,
    AbsI,
    /// bool -> bool
    Not,
    /// any -> bool
    Truthy,
    BoolToI,
    BoolToF,
    /// int -> float as Python's `float(int)` (correctly rounded)
    IToF,
    /// int -> float where Python would have kept the int: errors unless exact
    IToFExact,
    FToInt,
    FRound,
    /// `x ** 0.5` (Python's special cases, then `sqrt`); fastmath only
    PowHalf,
    /// `x ** 2.0` as `x * x` (overflow checked)
    Square,
    /// `x ** -1.0` as `1.0 / x` (zero and overflow checked)
    Recip,
    Math(MathFn),
}

/// Typed binary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bin {
    AddF,
    SubF,
    MulF,
    DivF,
    FloorDivF,
    ModF,
    PowF,
    /// `math.pow`
    MPowF,
    AddI,
    SubI,
    MulI,
    FloorDivI,
    ModI,
    PowI,
    /// `int / int`
    TrueDivI,
}

/// Operand types of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CmpKind {
    FF,
    II,
    /// int on the left, float on the right
    IF,
    /// float on the left, int on the right
    FI,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) ty: Ty,
    pub(crate) k: K,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum K {
    Const(Value),
    Param(usize),
    Local(usize),
    Let(usize, Box<Node>, Box<Node>),
    Un(Un, Box<Node>),
    Bin(Bin, Box<Node>, Box<Node>),
    Cmp(CmpOp, CmpKind, Box<Node>, Box<Node>),
    /// both operands already of the node's type
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    /// condition is bool
    Select(Box<Node>, Box<Node>, Box<Node>),
    Loop(Box<Loop>),
    /// Evaluate the operands (for their errors), then fail with the status.
    Fail(Vec<Node>, u32),
    /// Closed form of `sum(...)` over `range(start, stop)` (both i64).
    RangeSum(crate::rt::RangeSum, Box<Node>, Box<Node>),
}

/// What a loop-control intrinsic does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Break,
    Continue,
}

/// A reduction body: an optional binding, an optional control test, then the contributed value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Body {
    pub(crate) bind: Option<(usize, Node)>,
    pub(crate) control: Option<(Control, Node)>,
    pub(crate) value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LoopSrc {
    /// i64 bounds
    Range(Node, Node, Node),
    Container {
        param: usize,
        dtype: DType,
    },
    While {
        init: Node,
        cond: Node,
        step: Node,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loop {
    pub(crate) reducer: Reducer,
    pub(crate) var: usize,
    pub(crate) src: LoopSrc,
    pub(crate) filter: Option<Node>,
    pub(crate) body: Body,
}

/// One specialization's typed program.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Program {
    pub(crate) root: Body,
    pub(crate) slots: Vec<Ty>,
    /// Scalar parameters' types, or the buffer's dtype.
    pub(crate) sig: Vec<PKind>,
}

impl Program {
    pub(crate) fn ty(&self) -> Ty {
        self.root.value.ty
    }

    /// Whether evaluating the program may iterate (a loop node anywhere).
    pub(crate) fn has_loop(&self) -> bool {
        let b = &self.root;
        b.bind.as_ref().is_some_and(|(_, n)| n.has_loop())
            || b.control.as_ref().is_some_and(|(_, n)| n.has_loop())
            || b.value.has_loop()
    }
}

impl Body {
    /// Whether the body has at most `*budget` nodes (counting them off the budget).
    fn fits(&self, budget: &mut usize) -> bool {
        self.bind.as_ref().is_none_or(|(_, n)| n.fits(budget))
            && self.control.as_ref().is_none_or(|(_, n)| n.fits(budget))
            && self.value.fits(budget)
    }
}

impl Program {
    /// Whether the program has at most `nodes` IR nodes (so also no deeper nesting than that).
    pub(crate) fn fits(&self, nodes: usize) -> bool {
        let mut budget = nodes;
        self.root.fits(&mut budget)
    }
}

impl Node {
    fn fits(&self, budget: &mut usize) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match &self.k {
            K::Const(_) | K::Param(_) | K::Local(_) => true,
            K::Un(_, a) => a.fits(budget),
            K::Let(_, a, b)
            | K::Bin(_, a, b)
            | K::Cmp(_, _, a, b)
            | K::And(a, b)
            | K::Or(a, b)
            | K::RangeSum(_, a, b) => a.fits(budget) && b.fits(budget),
            K::Select(c, a, b) => c.fits(budget) && a.fits(budget) && b.fits(budget),
            K::Fail(v, _) => v.iter().all(|n| n.fits(budget)),
            K::Loop(l) => {
                let src = match &l.src {
                    LoopSrc::Range(a, b, c) => a.fits(budget) && b.fits(budget) && c.fits(budget),
                    LoopSrc::Container { .. } => true,
                    LoopSrc::While { init, cond, step } => {
                        init.fits(budget) && cond.fits(budget) && step.fits(budget)
                    }
                };
                src && l.filter.as_ref().is_none_or(|f| f.fits(budget)) && l.body.fits(budget)
            }
        }
    }

    fn has_loop(&self) -> bool {
        match &self.k {
            K::Const(_) | K::Param(_) | K::Local(_) => false,
            K::Loop(_) => true,
            K::Un(_, a) => a.has_loop(),
            K::Let(_, a, b)
            | K::Bin(_, a, b)
            | K::Cmp(_, _, a, b)
            | K::And(a, b)
            | K::Or(a, b)
            | K::RangeSum(_, a, b) => a.has_loop() || b.has_loop(),
            K::Select(c, a, b) => c.has_loop() || a.has_loop() || b.has_loop(),
            K::Fail(v, _) => v.iter().any(Node::has_loop),
        }
    }
}

impl Node {
    pub(crate) fn new(ty: Ty, k: K) -> Self {
        Self { ty, k }
    }

    pub(crate) fn konst(v: Value) -> Self {
        Self::new(v.ty(), K::Const(v))
    }

    fn un(op: Un, ty: Ty, a: Node) -> Self {
        Self::new(ty, K::Un(op, Box::new(a)))
    }

    fn bin(op: Bin, ty: Ty, a: Node, b: Node) -> Self {
        Self::new(ty, K::Bin(op, Box::new(a), Box::new(b)))
    }
}

/// Converts for float arithmetic (Python's implicit `float(int)`).
pub(crate) fn to_f(n: Node) -> Node {
    match n.ty {
        Ty::F64 => n,
        Ty::I64 => Node::un(Un::IToF, Ty::F64, n),
        Ty::Bool => Node::un(Un::BoolToF, Ty::F64, n),
    }
}

pub(crate) fn to_i(n: Node) -> Node {
    match n.ty {
        Ty::Bool => Node::un(Un::BoolToI, Ty::I64, n),
        _ => n,
    }
}

pub(crate) fn truthy(n: Node) -> Node {
    match n.ty {
        Ty::Bool => n,
        _ => Node::un(Un::Truthy, Ty::Bool, n),
    }
}

/// Promotes a value that Python would have returned unchanged to the join type of a branch.
fn promote(n: Node, ty: Ty) -> Node {
    match (n.ty, ty) {
        (a, b) if a == b => n,
        (Ty::Bool, Ty::I64) => Node::un(Un::BoolToI, Ty::I64, n),
        (Ty::Bool, Ty::F64) => Node::un(Un::BoolToF, Ty::F64, n),
        (Ty::I64, Ty::F64) => Node::un(Un::IToFExact, Ty::F64, n),
        _ => n, // never narrows: ty is a join
    }
}

fn cmp(op: CmpOp, a: Node, b: Node) -> Node {
    let (a, b) = (to_i(a), to_i(b));
    let kind = match (a.ty, b.ty) {
        (Ty::F64, Ty::F64) => CmpKind::FF,
        (Ty::F64, _) => CmpKind::FI,
        (_, Ty::F64) => CmpKind::IF,
        _ => CmpKind::II,
    };
    Node::new(Ty::Bool, K::Cmp(op, kind, Box::new(a), Box::new(b)))
}

#[derive(Clone)]
enum Binding {
    Param(usize),
    Local(usize, Ty),
}

struct Lower<'a> {
    sig: &'a [PKind],
    env: Vec<(String, Binding)>,
    slots: Vec<Ty>,
}

/// Lowers `e` for one call signature.
pub(crate) fn lower(e: &Expr, params: &[String], sig: &[PKind]) -> Result<Program, CompileError> {
    let mut l = Lower {
        sig,
        env: params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), Binding::Param(i)))
            .collect(),
        slots: Vec::new(),
    };
    let root = l.body(e, 0)?;
    if [&root.value]
        .into_iter()
        .chain(root.bind.as_ref().map(|b| &b.1))
        .chain(root.control.as_ref().map(|c| &c.1))
        .any(|n| too_deep(n, MAX_IR_DEPTH))
    {
        return Err(unsupported("expression nested too deeply"));
    }
    Ok(Program {
        root,
        slots: l.slots,
        sig: sig.to_vec(),
    })
}

/// Deepest typed IR accepted: every later pass (optimizer, interpreter, codegen) recurses.
const MAX_IR_DEPTH: usize = 160;

fn children(n: &Node) -> Vec<&Node> {
    match &n.k {
        K::Const(_) | K::Param(_) | K::Local(_) => vec![],
        K::Un(_, a) => vec![a],
        K::Let(_, a, b) | K::Bin(_, a, b) | K::Cmp(_, _, a, b) | K::And(a, b) | K::Or(a, b) => {
            vec![a, b]
        }
        K::RangeSum(_, a, b) => vec![a, b],
        K::Select(c, a, b) => vec![c, a, b],
        K::Fail(args, _) => args.iter().collect(),
        K::Loop(l) => {
            let mut v: Vec<&Node> = match &l.src {
                LoopSrc::Range(a, b, c) => vec![a, b, c],
                LoopSrc::Container { .. } => vec![],
                LoopSrc::While { init, cond, step } => vec![init, cond, step],
            };
            v.extend(l.filter.iter());
            v.extend(l.body.bind.as_ref().map(|b| &b.1));
            v.extend(l.body.control.as_ref().map(|c| &c.1));
            v.push(&l.body.value);
            v
        }
    }
}

/// Whether the tree under `root` is deeper than `max` (iterative, so it cannot overflow).
fn too_deep(root: &Node, max: usize) -> bool {
    let mut stack = vec![(root, 1usize)];
    while let Some((n, d)) = stack.pop() {
        if d > max {
            return true;
        }
        stack.extend(children(n).into_iter().map(|c| (c, d + 1)));
    }
    false
}

/// Parameters iterated as containers (`for v in x`, `sum(x)`), found without type information.
pub(crate) fn container_params(e: &Expr, params: &[String], out: &mut Vec<bool>) {
    let mut mark = |name: &str| {
        if let Some(i) = params.iter().position(|p| p == name) {
            out[i] = true;
        }
    };
    match e {
        Expr::Generator {
            elt, iter, cond, ..
        } => {
            match iter {
                Iter::Container(name) => mark(name),
                Iter::Range(a, b, c) => {
                    for x in [a, b, c] {
                        container_params(x, params, out);
                    }
                }
            }
            container_params(elt, params, out);
            if let Some(c) = cond {
                container_params(c, params, out);
            }
        }
        Expr::Call { func, args } => {
            if let ("sum" | "any" | "all", [Expr::Var(name)]) = (func.as_str(), args.as_slice()) {
                mark(name);
            }
            for a in args {
                container_params(a, params, out);
            }
        }
        Expr::BinOp(_, a, b) => {
            container_params(a, params, out);
            container_params(b, params, out);
        }
        Expr::UnaryOp(_, a) => container_params(a, params, out),
        Expr::Compare(a, rest) => {
            container_params(a, params, out);
            for (_, x) in rest {
                container_params(x, params, out);
            }
        }
        Expr::BoolOp(_, v) => v.iter().for_each(|x| container_params(x, params, out)),
        Expr::IfExp { cond, body, orelse } => {
            for x in [cond, body, orelse] {
                container_params(x, params, out);
            }
        }
        Expr::Let { value, body, .. } => {
            container_params(value, params, out);
            container_params(body, params, out);
        }
        Expr::Num(_) | Expr::Int(_) | Expr::Bool(_) | Expr::Var(_) => {}
    }
}

fn unsupported(m: impl Into<String>) -> CompileError {
    CompileError::Unsupported(m.into())
}

fn arity(func: &str, expected: &'static str, got: usize) -> CompileError {
    CompileError::Arity {
        func: func.to_owned(),
        expected,
        got,
    }
}

fn control_of(func: &str) -> Option<(Control, bool)> {
    Some(match func {
        "break_if" | "break_when" => (Control::Break, false),
        "break_unless" => (Control::Break, true),
        "continue_if" | "continue_when" => (Control::Continue, false),
        "continue_unless" => (Control::Continue, true),
        _ => return None,
    })
}

impl Lower<'_> {
    fn slot(&mut self, ty: Ty) -> usize {
        self.slots.push(ty);
        self.slots.len() - 1
    }

    fn with_local<T>(
        &mut self,
        name: &str,
        slot: usize,
        f: impl FnOnce(&mut Self) -> Result<T, CompileError>,
    ) -> Result<T, CompileError> {
        let ty = self.slots[slot];
        self.env.push((name.to_owned(), Binding::Local(slot, ty)));
        let r = f(self);
        self.env.pop();
        r
    }

    /// Binds an already-lowered node to a fresh slot; returns (slot, a reader of it).
    fn bind(&mut self, n: &Node) -> (usize, Node) {
        let s = self.slot(n.ty);
        (s, Node::new(n.ty, K::Local(s)))
    }

    /// A reduction body: a loop-control intrinsic, or a plain value.
    fn body(&mut self, e: &Expr, d: usize) -> Result<Body, CompileError> {
        if let Expr::Call { func, args } = e {
            if let Some((ctl, invert)) = control_of(func) {
                let [c, v] = args.as_slice() else {
                    return Err(arity(func, "2", args.len()));
                };
                let mut cond = truthy(self.expr(c, d + 1)?);
                if invert {
                    cond = Node::un(Un::Not, Ty::Bool, cond);
                }
                let value = self.expr(v, d + 1)?;
                return Ok(Body {
                    bind: None,
                    control: Some((ctl, cond)),
                    value,
                });
            }
            if func == "break_on_nan" || func == "continue_on_nan" {
                let [v] = args.as_slice() else {
                    return Err(arity(func, "1", args.len()));
                };
                let v = self.expr(v, d + 1)?;
                let ctl = if func == "break_on_nan" {
                    Control::Break
                } else {
                    Control::Continue
                };
                if v.ty != Ty::F64 {
                    return Ok(Body {
                        bind: None,
                        control: None,
                        value: v,
                    });
                }
                let (s, r) = self.bind(&v);
                return Ok(Body {
                    bind: Some((s, v)),
                    control: Some((ctl, cmp(CmpOp::Ne, r.clone(), r.clone()))),
                    value: r,
                });
            }
        }
        Ok(Body {
            bind: None,
            control: None,
            value: self.expr(e, d)?,
        })
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    }

    fn expr(&mut self, e: &Expr, d: usize) -> Result<Node, CompileError> {
        if d > MAX_LOWER_DEPTH {
            return Err(unsupported("expression nested too deeply"));
        }
        let d = d + 1;
        Ok(match e {
            Expr::Num(v) => Node::konst(Value::F64(*v)),
            Expr::Int(v) => Node::konst(Value::I64(*v)),
            Expr::Bool(b) => Node::konst(Value::Bool(*b)),
            Expr::Var(name) => match self.lookup(name) {
                Some(Binding::Param(i)) => match self.sig[i] {
                    PKind::Scalar(ty) => Node::new(ty, K::Param(i)),
                    PKind::Buffer(_) => {
                        return Err(unsupported(format!(
                            "buffer parameter `{name}` used as a scalar"
                        )));
                    }
                },
                Some(Binding::Local(s, ty)) => Node::new(ty, K::Local(s)),
                None => match name.as_str() {
                    "pi" | "math.pi" => Node::konst(Value::F64(std::f64::consts::PI)),
                    "e" | "math.e" => Node::konst(Value::F64(std::f64::consts::E)),
                    "math.tau" => Node::konst(Value::F64(std::f64::consts::TAU)),
                    "math.inf" => Node::konst(Value::F64(f64::INFINITY)),
                    "math.nan" => Node::konst(Value::F64(f64::NAN)),
                    _ => return Err(CompileError::UnknownName(name.clone())),
                },
            },
            Expr::BinOp(op, a, b) => {
                let a = self.expr(a, d)?;
                let b = self.expr(b, d)?;
                arith(*op, a, b)
            }
            Expr::UnaryOp(op, a) => {
                let a = self.expr(a, d)?;
                match (op, a.ty) {
                    (UnaryOp::Not, _) => Node::un(Un::Not, Ty::Bool, truthy(a)),
                    (UnaryOp::Plus, Ty::F64 | Ty::I64) => a,
                    (UnaryOp::Plus, Ty::Bool) => to_i(a),
                    (UnaryOp::Neg, Ty::F64) => Node::un(Un::NegF, Ty::F64, a),
                    (UnaryOp::Neg, _) => match a.k {
                        K::Const(Value::I64(v)) if v != i64::MIN => Node::konst(Value::I64(-v)),
                        _ => Node::un(Un::NegI, Ty::I64, to_i(a)),
                    },
                }
            }
            Expr::Compare(first, rest) => self.compare(first, rest, d)?,
            Expr::BoolOp(kind, values) => {
                // lowered as a right-nested chain: as deep as it is long
                if d + values.len() > MAX_LOWER_DEPTH {
                    return Err(unsupported("expression nested too deeply"));
                }
                let nodes = values
                    .iter()
                    .map(|v| self.expr(v, d))
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(ty) = nodes.iter().map(|n| n.ty).max() else {
                    return Err(unsupported("empty boolean operation"));
                };
                let mut it = nodes.into_iter().rev().map(|n| promote(n, ty));
                let mut acc = it
                    .next()
                    .ok_or_else(|| unsupported("empty boolean operation"))?;
                for n in it {
                    acc = Node::new(
                        ty,
                        match kind {
                            BoolOpKind::And => K::And(Box::new(n), Box::new(acc)),
                            BoolOpKind::Or => K::Or(Box::new(n), Box::new(acc)),
                        },
                    );
                }
                acc
            }
            Expr::IfExp { cond, body, orelse } => {
                let c = truthy(self.expr(cond, d)?);
                let a = self.expr(body, d)?;
                let b = self.expr(orelse, d)?;
                select(c, a, b)
            }
            Expr::Let { name, value, body } => {
                let v = self.expr(value, d)?;
                let s = self.slot(v.ty);
                let b = self.with_local(name, s, |l| l.expr(body, d))?;
                Node::new(b.ty, K::Let(s, Box::new(v), Box::new(b)))
            }
            Expr::Generator {
                reducer,
                elt,
                var,
                iter,
                cond,
            } => self.generator(*reducer, elt, var, iter, cond.as_deref(), d)?,
            Expr::Call { func, args } => self.call(func, args, d)?,
        })
    }

    fn compare(
        &mut self,
        first: &Expr,
        rest: &[(CmpOp, Expr)],
        d: usize,
    ) -> Result<Node, CompileError> {
        let a = self.expr(first, d)?;
        let Some(((op, b), tail)) = rest.split_first() else {
            return Ok(a);
        };
        let b = self.expr(b, d)?;
        if tail.is_empty() {
            return Ok(cmp(*op, a, b));
        }
        // a op b op2 c ...: each operand evaluated once, left to right, short-circuiting
        let (sa, ra) = self.bind(&a);
        let (sb, rb) = self.bind(&b);
        let b_name = format!("\0cmp{sb}");
        let rest_node = self.with_local(&b_name, sb, |l| {
            l.compare(&Expr::Var(b_name.clone()), tail, d + 1)
        })?;
        let and = Node::new(
            Ty::Bool,
            K::And(Box::new(cmp(*op, ra, rb)), Box::new(rest_node)),
        );
        Ok(Node::new(
            Ty::Bool,
            K::Let(
                sa,
                Box::new(a),
                Box::new(Node::new(Ty::Bool, K::Let(sb, Box::new(b), Box::new(and)))),
            ),
        ))
    }

    fn generator(
        &mut self,
        reducer: Reducer,
        elt: &Expr,
        var: &str,
        iter: &Iter,
        cond: Option<&Expr>,
        d: usize,
    ) -> Result<Node, CompileError> {
        let (src, var_ty, float_bounds) = match iter {
            Iter::Range(a, b, c) => {
                let a = self.expr(a, d)?;
                let b = self.expr(b, d)?;
                let c = self.expr(c, d)?;
                let float = [&a, &b, &c].iter().any(|n| n.ty == Ty::F64);
                (LoopSrc::Range(to_i(a), to_i(b), to_i(c)), Ty::I64, float)
            }
            Iter::Container(name) => match self.lookup(name) {
                Some(Binding::Param(i)) => match self.sig[i] {
                    PKind::Buffer(dtype) => (
                        LoopSrc::Container { param: i, dtype },
                        dtype.elem_ty(),
                        false,
                    ),
                    PKind::Scalar(_) => {
                        return Err(unsupported(format!(
                            "`{name}` is iterated but is not a buffer"
                        )));
                    }
                },
                Some(Binding::Local(..)) => {
                    return Err(unsupported(format!(
                        "`{name}` is iterated but is not a buffer"
                    )));
                }
                None => return Err(CompileError::UnknownName(name.clone())),
            },
        };
        let slot = self.slot(var_ty);
        let (filter, body) = self.with_local(var, slot, |l| {
            let filter = cond.map(|c| l.expr(c, d).map(truthy)).transpose()?;
            let body = l.body(elt, d)?;
            Ok((filter, body))
        })?;
        let lp = self.make_loop(reducer, slot, src, filter, body);
        if float_bounds {
            let LoopSrc::Range(a, b, c) = lp.src else {
                return Err(unsupported("internal: range"));
            };
            return Ok(Node::new(
                lp.ty,
                K::Fail(vec![a, b, c], status::FLOAT_RANGE),
            ));
        }
        Ok(lp.node)
    }

    fn make_loop(
        &mut self,
        reducer: Reducer,
        var: usize,
        src: LoopSrc,
        filter: Option<Node>,
        mut body: Body,
    ) -> LoopNode {
        let ty = match reducer {
            Reducer::Any | Reducer::All => {
                body.value = truthy(body.value);
                Ty::Bool
            }
            Reducer::Sum => {
                if body.value.ty == Ty::F64 {
                    Ty::F64
                } else {
                    body.value = to_i(body.value);
                    Ty::I64
                }
            }
        };
        let lp = Loop {
            reducer,
            var,
            src,
            filter,
            body,
        };
        LoopNode {
            ty,
            src: lp.src.clone(),
            node: Node::new(ty, K::Loop(Box::new(lp))),
        }
    }

    fn while_loop(
        &mut self,
        reducer: Reducer,
        args: &[Expr],
        func: &str,
        d: usize,
    ) -> Result<Node, CompileError> {
        let [Expr::Var(var), init, cond, step, body] = args else {
            return Err(if args.len() == 5 {
                unsupported(format!(
                    "`{func}`'s first argument must be the loop variable's name"
                ))
            } else {
                arity(func, "5", args.len())
            });
        };
        let init = self.expr(init, d)?;
        let mut ty = init.ty;
        // the loop variable's type is the join of init's and step's (bool < int < float)
        loop {
            let slot = self.slot(ty);
            let step_n = self.with_local(var, slot, |l| l.expr(step, d))?;
            if step_n.ty <= ty {
                let (cond_n, body_n) = self.with_local(var, slot, |l| {
                    let c = truthy(l.expr(cond, d)?);
                    let b = l.body(body, d)?;
                    Ok((c, b))
                })?;
                let src = LoopSrc::While {
                    init: promote(init, ty),
                    cond: cond_n,
                    step: promote(step_n, ty),
                };
                return Ok(self.make_loop(reducer, slot, src, None, body_n).node);
            }
            ty = step_n.ty;
        }
    }

    fn call(&mut self, func: &str, args: &[Expr], d: usize) -> Result<Node, CompileError> {
        let n = args.len();
        let one = |l: &mut Self| -> Result<Node, CompileError> {
            match args {
                [a] => l.expr(a, d),
                _ => Err(arity(func, "1", n)),
            }
        };
        if let Some(f) = MathFn::from_name(func) {
            if f == MathFn::Log && n == 2 {
                let x = to_f(self.expr(&args[0], d)?);
                let b = to_f(self.expr(&args[1], d)?);
                return Ok(Node::bin(
                    Bin::DivF,
                    Ty::F64,
                    Node::un(Un::Math(f), Ty::F64, x),
                    Node::un(Un::Math(f), Ty::F64, b),
                ));
            }
            let x = to_f(one(self)?);
            return Ok(Node::un(Un::Math(f), Ty::F64, x));
        }
        Ok(match func {
            "abs" => {
                let x = one(self)?;
                match x.ty {
                    Ty::F64 => Node::un(Un::AbsF, Ty::F64, x),
                    _ => Node::un(Un::AbsI, Ty::I64, to_i(x)),
                }
            }
            "int" => {
                let x = one(self)?;
                match x.ty {
                    Ty::F64 => Node::un(Un::FToInt, Ty::I64, x),
                    _ => to_i(x),
                }
            }
            "float" => to_f(one(self)?),
            "round" => {
                if n == 2 {
                    return Err(unsupported("round() with ndigits"));
                }
                let x = one(self)?;
                match x.ty {
                    Ty::F64 => Node::un(Un::FRound, Ty::I64, x),
                    _ => to_i(x),
                }
            }
            "pow" | "math.pow" => {
                let [a, b] = args else {
                    return Err(arity(func, "2", n));
                };
                let a = self.expr(a, d)?;
                let b = self.expr(b, d)?;
                if func == "pow" {
                    arith(BinOp::Pow, a, b)
                } else {
                    Node::bin(Bin::MPowF, Ty::F64, to_f(a), to_f(b))
                }
            }
            "if_else" => {
                let [c, a, b] = args else {
                    return Err(arity(func, "3", n));
                };
                let c = truthy(self.expr(c, d)?);
                let a = self.expr(a, d)?;
                let b = self.expr(b, d)?;
                select(c, a, b)
            }
            "min" | "max" => {
                if n < 2 {
                    return Err(arity(func, "at least 2", n));
                }
                if d + 2 * n > MAX_LOWER_DEPTH {
                    return Err(unsupported("too many arguments"));
                }
                let op = if func == "min" { CmpOp::Lt } else { CmpOp::Gt };
                let mut acc = self.expr(&args[0], d)?;
                for a in &args[1..] {
                    let next = self.expr(a, d)?;
                    let (sc, rc) = self.bind(&acc);
                    let (sn, rn) = self.bind(&next);
                    let ty = rc.ty.max(rn.ty);
                    // Python keeps the current item unless the next one is strictly better
                    let sel = Node::new(
                        ty,
                        K::Select(
                            Box::new(cmp(op, rn.clone(), rc.clone())),
                            Box::new(promote(rn, ty)),
                            Box::new(promote(rc, ty)),
                        ),
                    );
                    acc = Node::new(
                        ty,
                        K::Let(
                            sc,
                            Box::new(acc),
                            Box::new(Node::new(ty, K::Let(sn, Box::new(next), Box::new(sel)))),
                        ),
                    );
                }
                acc
            }
            "sum" | "any" | "all" => {
                let reducer = match func {
                    "sum" => Reducer::Sum,
                    "any" => Reducer::Any,
                    _ => Reducer::All,
                };
                let [Expr::Var(name)] = args else {
                    return Err(unsupported(format!(
                        "`{func}` needs a generator or a buffer parameter"
                    )));
                };
                let v = format!("\0elem{}", self.slots.len());
                return self.generator(
                    reducer,
                    &Expr::Var(v.clone()),
                    &v,
                    &Iter::Container(name.clone()),
                    None,
                    d,
                );
            }
            "sum_while" => return self.while_loop(Reducer::Sum, args, func, d),
            "any_while" => return self.while_loop(Reducer::Any, args, func, d),
            "all_while" => return self.while_loop(Reducer::All, args, func, d),
            f if control_of(f).is_some() || f == "break_on_nan" || f == "continue_on_nan" => {
                return Err(unsupported(format!(
                    "`{f}` is only allowed as the whole body of a reduction"
                )));
            }
            _ => return Err(CompileError::UnknownFunction(func.to_owned())),
        })
    }
}

struct LoopNode {
    ty: Ty,
    src: LoopSrc,
    node: Node,
}

fn select(c: Node, a: Node, b: Node) -> Node {
    let ty = a.ty.max(b.ty);
    Node::new(
        ty,
        K::Select(
            Box::new(c),
            Box::new(promote(a, ty)),
            Box::new(promote(b, ty)),
        ),
    )
}

/// Python's binary arithmetic on typed operands.
pub(crate) fn arith(op: BinOp, a: Node, b: Node) -> Node {
    if a.ty == Ty::F64 || b.ty == Ty::F64 {
        let bop = match op {
            BinOp::Add => Bin::AddF,
            BinOp::Sub => Bin::SubF,
            BinOp::Mul => Bin::MulF,
            BinOp::Div => Bin::DivF,
            BinOp::FloorDiv => Bin::FloorDivF,
            BinOp::Mod => Bin::ModF,
            BinOp::Pow => Bin::PowF,
        };
        return Node::bin(bop, Ty::F64, to_f(a), to_f(b));
    }
    let (a, b) = (to_i(a), to_i(b));
    let (bop, ty) = match op {
        BinOp::Add => (Bin::AddI, Ty::I64),
        BinOp::Sub => (Bin::SubI, Ty::I64),
        BinOp::Mul => (Bin::MulI, Ty::I64),
        BinOp::Div => (Bin::TrueDivI, Ty::F64),
        BinOp::FloorDiv => (Bin::FloorDivI, Ty::I64),
        BinOp::Mod => (Bin::ModI, Ty::I64),
        BinOp::Pow => {
            if let K::Const(Value::I64(e)) = b.k
                && e < 0
            {
                // int ** negative int is float ** float in Python
                return Node::bin(Bin::PowF, Ty::F64, to_f(a), to_f(b));
            }
            (Bin::PowI, Ty::I64)
        }
    };
    Node::bin(bop, ty, a, b)
}
