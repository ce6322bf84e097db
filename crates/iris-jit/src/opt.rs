//! The optimizer: rewrites that provably never change a result (value, type or error).
//!
//! - constant folding (a folded operation that would fail is left in place, so the error still
//!   happens at run time, and only if reached);
//! - integer identities (`x + 0`, `x * 1`, `x // 1`, `x ** 1`, `x ** 2 -> x * x`), double
//!   negation; float identities such as `x * 1.0` are *not* applied: they would drop the
//!   quieting of a signalling NaN, which changes the result's bits;
//! - float power shortcuts (`x ** 2.0 -> x * x`, `x ** -1.0 -> 1.0 / x`, `x ** 0.5 -> sqrt(x)`,
//!   all with CPython's special cases and errors) only with fastmath: CPython computes `x ** y`
//!   with libm's `pow`, and glibc's `pow` is not correctly rounded, so each shortcut differs in
//!   the last bit for some inputs (for example `1.4142164140939713 ** 2`,
//!   `2.0285093053495667e-112 ** 0.5`; about half of the squares that are exact ties);
//! - closed forms of `sum(c | j | j*j for j in range(a, b))`, guarded at run time for empty
//!   ranges and exact about overflow (see [`crate::rt::range_sum`]); the body must be exactly
//!   one of those shapes, with no filter and no loop control; float bounds never get here
//!   (lowering turns them into the `range()` error).
//!
//! `min`/`max` are already selects; codegen emits a branch-free `select` for simple operands.

use crate::ast::Reducer;
use crate::interp::{eval_bin, eval_cmp, eval_un};
use crate::ir::{Bin, Body, K, Loop, LoopSrc, Node, Program, Un};
use crate::rt::RangeSum;
use crate::value::{Ty, Value};

struct Opt {
    fastmath: bool,
    slots: Vec<Ty>,
    /// Let-bound slots whose value folded to a constant (each slot is bound exactly once).
    consts: Vec<Option<Value>>,
}

/// Optimizes `p`; `fastmath` allows rewrites that may change rounding.
pub(crate) fn optimize(p: Program, fastmath: bool) -> Program {
    let mut o = Opt {
        fastmath,
        consts: vec![None; p.slots.len()],
        slots: p.slots,
    };
    let root = o.body(p.root);
    Program {
        root,
        slots: o.slots,
        sig: p.sig,
    }
}

fn konst(n: &Node) -> Option<Value> {
    match n.k {
        K::Const(v) => Some(v),
        _ => None,
    }
}

fn is_int(n: &Node, v: i64) -> bool {
    matches!(n.k, K::Const(Value::I64(x)) if x == v)
}

fn is_float(n: &Node, v: f64) -> bool {
    matches!(n.k, K::Const(Value::F64(x)) if x.to_bits() == v.to_bits())
}

/// Can be evaluated without any error (so dropping it cannot hide one).
fn infallible(n: &Node) -> bool {
    match &n.k {
        K::Const(_) | K::Param(_) | K::Local(_) => true,
        K::Un(op, a) => {
            matches!(
                op,
                Un::NegF | Un::AbsF | Un::Not | Un::Truthy | Un::BoolToI | Un::BoolToF | Un::IToF
            ) && infallible(a)
        }
        K::Bin(op, a, b) => {
            matches!(op, Bin::AddF | Bin::SubF | Bin::MulF) && infallible(a) && infallible(b)
        }
        K::Cmp(_, _, a, b) | K::And(a, b) | K::Or(a, b) => infallible(a) && infallible(b),
        K::Select(c, a, b) => infallible(c) && infallible(a) && infallible(b),
        _ => false,
    }
}

impl Opt {
    fn body(&mut self, b: Body) -> Body {
        Body {
            bind: b.bind.map(|(s, n)| (s, self.node(n))),
            control: b.control.map(|(c, n)| (c, self.node(n))),
            value: self.node(b.value),
        }
    }

    fn node(&mut self, n: Node) -> Node {
        let ty = n.ty;
        let is_and = matches!(n.k, K::And(..));
        match n.k {
            K::Local(s) => match self.consts.get(s).copied().flatten() {
                Some(v) => Node::konst(v),
                None => n,
            },
            K::Const(_) | K::Param(_) => n,
            K::Let(s, v, b) => {
                let v = self.node(*v);
                if let Some(c) = konst(&v) {
                    self.consts[s] = Some(c);
                    return self.node(*b);
                }
                Node::new(ty, K::Let(s, Box::new(v), Box::new(self.node(*b))))
            }
            K::Un(op, a) => {
                let a = self.node(*a);
                self.unary(ty, op, a)
            }
            K::Bin(op, a, b) => {
                let a = self.node(*a);
                let b = self.node(*b);
                self.binary(ty, op, a, b)
            }
            K::Cmp(op, kind, a, b) => {
                let a = self.node(*a);
                let b = self.node(*b);
                if let (Some(x), Some(y)) = (konst(&a), konst(&b)) {
                    return Node::konst(Value::Bool(eval_cmp(op, kind, x, y)));
                }
                Node::new(ty, K::Cmp(op, kind, Box::new(a), Box::new(b)))
            }
            K::And(a, b) | K::Or(a, b) => {
                let a = self.node(*a);
                let b = self.node(*b);
                if let Some(x) = konst(&a) {
                    return if x.truthy() == is_and { b } else { a };
                }
                let k = if is_and {
                    K::And(Box::new(a), Box::new(b))
                } else {
                    K::Or(Box::new(a), Box::new(b))
                };
                Node::new(ty, k)
            }
            K::Select(c, a, b) => {
                let c = self.node(*c);
                let a = self.node(*a);
                let b = self.node(*b);
                if let Some(x) = konst(&c) {
                    return if x.truthy() { a } else { b };
                }
                Node::new(ty, K::Select(Box::new(c), Box::new(a), Box::new(b)))
            }
            K::Fail(args, code) => Node::new(
                ty,
                K::Fail(args.into_iter().map(|a| self.node(a)).collect(), code),
            ),
            K::RangeSum(kind, a, b) => Node::new(
                ty,
                K::RangeSum(kind, Box::new(self.node(*a)), Box::new(self.node(*b))),
            ),
            K::Loop(l) => self.lp(ty, *l),
        }
    }

    fn unary(&mut self, ty: Ty, op: Un, a: Node) -> Node {
        if let Some(x) = konst(&a)
            && let Ok(v) = eval_un(op, x)
        {
            return Node::konst(v);
        }
        match (op, &a.k) {
            (Un::NegF, K::Un(Un::NegF, inner)) => return (**inner).clone(),
            (Un::Not, K::Un(Un::Not, inner)) => return (**inner).clone(),
            _ => {}
        }
        Node::new(ty, K::Un(op, Box::new(a)))
    }

    fn binary(&mut self, ty: Ty, op: Bin, a: Node, b: Node) -> Node {
        if let (Some(x), Some(y)) = (konst(&a), konst(&b))
            && let Ok(v) = eval_bin(op, x, y)
        {
            return Node::konst(v);
        }
        match op {
            Bin::AddI if is_int(&b, 0) => return a,
            Bin::AddI if is_int(&a, 0) => return b,
            Bin::SubI if is_int(&b, 0) => return a,
            Bin::MulI if is_int(&b, 1) => return a,
            Bin::MulI if is_int(&a, 1) => return b,
            Bin::FloorDivI if is_int(&b, 1) => return a,
            Bin::PowI if is_int(&b, 1) => return a,
            Bin::PowI if is_int(&b, 0) && infallible(&a) => return Node::konst(Value::I64(1)),
            Bin::PowI if is_int(&b, 2) => return self.square_int(a),
            Bin::PowF if is_float(&b, 2.0) && self.fastmath => {
                return Node::new(Ty::F64, K::Un(Un::Square, Box::new(a)));
            }
            Bin::PowF if is_float(&b, -1.0) && self.fastmath => {
                return Node::new(Ty::F64, K::Un(Un::Recip, Box::new(a)));
            }
            Bin::PowF if is_float(&b, 0.5) && self.fastmath => {
                return Node::new(Ty::F64, K::Un(Un::PowHalf, Box::new(a)));
            }
            _ => {}
        }
        Node::new(ty, K::Bin(op, Box::new(a), Box::new(b)))
    }

    /// `x ** 2 -> x * x` on ints: same value, same overflow error.
    fn square_int(&mut self, a: Node) -> Node {
        let mul = |r: Node| Node::new(Ty::I64, K::Bin(Bin::MulI, Box::new(r.clone()), Box::new(r)));
        if matches!(a.k, K::Local(_) | K::Param(_)) {
            return mul(a);
        }
        self.slots.push(Ty::I64);
        self.consts.push(None);
        let s = self.slots.len() - 1;
        let r = Node::new(Ty::I64, K::Local(s));
        Node::new(Ty::I64, K::Let(s, Box::new(a), Box::new(mul(r))))
    }

    fn lp(&mut self, ty: Ty, l: Loop) -> Node {
        let src = match l.src {
            LoopSrc::Range(a, b, c) => LoopSrc::Range(self.node(a), self.node(b), self.node(c)),
            LoopSrc::While { init, cond, step } => LoopSrc::While {
                init: self.node(init),
                cond: self.node(cond),
                step: self.node(step),
            },
            other => other,
        };
        let l = Loop {
            reducer: l.reducer,
            var: l.var,
            src,
            filter: l.filter.map(|f| self.node(f)),
            body: self.body(l.body),
        };
        if let Some(n) = closed_form(&l) {
            return n;
        }
        Node::new(ty, K::Loop(Box::new(l)))
    }
}

fn closed_form(l: &Loop) -> Option<Node> {
    if l.reducer != Reducer::Sum
        || l.filter.is_some()
        || l.body.bind.is_some()
        || l.body.control.is_some()
    {
        return None;
    }
    let LoopSrc::Range(a, b, step) = &l.src else {
        return None;
    };
    if !is_int(step, 1) || l.body.value.ty != Ty::I64 {
        return None;
    }
    let is_var = |n: &Node| matches!(n.k, K::Local(s) if s == l.var);
    let kind = match &l.body.value.k {
        K::Const(Value::I64(c)) => RangeSum::Const(*c),
        K::Local(_) if is_var(&l.body.value) => RangeSum::Linear,
        K::Bin(Bin::MulI, x, y) if is_var(x) && is_var(y) => RangeSum::Square,
        _ => return None,
    };
    Some(Node::new(
        Ty::I64,
        K::RangeSum(kind, Box::new(a.clone()), Box::new(b.clone())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{PKind, lower};
    use crate::parse::parse;

    fn opt(src: &str, fastmath: bool) -> Program {
        let e = parse(src).unwrap();
        let p = lower(
            &e,
            &["x".into(), "n".into()],
            &[PKind::Scalar(Ty::F64), PKind::Scalar(Ty::I64)],
        )
        .unwrap();
        optimize(p, fastmath)
    }

    #[test]
    fn folds_constants_but_keeps_failures() {
        assert_eq!(
            opt("1 + 2 * 3", false).root.value.k,
            K::Const(Value::I64(7))
        );
        assert_eq!(
            opt("2 ** 0.5", false).root.value.k,
            K::Const(Value::F64(2f64.powf(0.5)))
        );
        assert!(matches!(
            opt("1 // 0", false).root.value.k,
            K::Bin(Bin::FloorDivI, ..)
        ));
        assert_eq!(opt("x if 1 < 2 else n", false).root.value.ty, Ty::F64);
    }

    #[test]
    fn closed_forms_apply_only_to_exact_shapes() {
        let p = opt("sum(i*i for i in range(1, n))", false);
        assert!(matches!(p.root.value.k, K::RangeSum(RangeSum::Square, ..)));
        let p = opt("sum(i ** 2 for i in range(n))", false);
        assert!(matches!(p.root.value.k, K::RangeSum(RangeSum::Square, ..)));
        let p = opt("sum(i*i for i in range(1, n) if i % 2)", false);
        assert!(matches!(p.root.value.k, K::Loop(..)));
        let p = opt("sum(i*n for i in range(1, n))", false);
        assert!(matches!(p.root.value.k, K::Loop(..)));
        let p = opt("sum(i for i in range(0, n, 2))", false);
        assert!(matches!(p.root.value.k, K::Loop(..)));
    }

    #[test]
    fn sqrt_only_with_fastmath() {
        assert!(matches!(
            opt("x ** 0.5", false).root.value.k,
            K::Bin(Bin::PowF, ..)
        ));
        assert!(matches!(
            opt("x ** 0.5", true).root.value.k,
            K::Un(Un::PowHalf, ..)
        ));
        assert!(matches!(
            opt("x ** 2", false).root.value.k,
            K::Bin(Bin::PowF, ..)
        ));
        assert!(matches!(
            opt("x ** 2", true).root.value.k,
            K::Un(Un::Square, ..)
        ));
        assert!(matches!(
            opt("x ** -1", true).root.value.k,
            K::Un(Un::Recip, ..)
        ));
        // integer squares are exact, overflow included
        assert!(matches!(
            opt("n ** 2", false).root.value.k,
            K::Bin(Bin::MulI, ..)
        ));
    }

    #[test]
    fn folds_comparisons() {
        let p = opt("1 < 2 < 3", false);
        assert_eq!(p.root.value.k, K::Const(Value::Bool(true)));
    }
}
