//! The reference interpreter over the typed IR: the test oracle for every compiled variant.

use crate::ast::{CmpOp, Reducer};
use crate::error::status;
use crate::ir::{Bin, Body, CmpKind, Control, K, Loop, LoopSrc, Node, Program, Un};
use crate::rt;
use crate::value::{Ty, Value};

/// An argument as the interpreter and the executors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ArgVal<'a> {
    Scalar(Value),
    Buffer(&'a [u8]),
}

type R<T> = Result<T, u32>;

struct Interp<'a> {
    args: &'a [ArgVal<'a>],
    locals: Vec<Value>,
    cap: u64,
    last_control: u32,
}

/// Evaluates `p`. A loop-control intrinsic firing at the top level yields
/// `Err(status::BREAK | status::CONTINUE)`.
pub(crate) fn run(p: &Program, args: &[ArgVal<'_>], cap: u64) -> R<Value> {
    let mut it = Interp {
        args,
        locals: vec![Value::Bool(false); p.slots.len()],
        cap,
        last_control: 0,
    };
    match it.body(&p.root)? {
        Some(v) => Ok(v),
        None => Err(it.last_control),
    }
}

fn f(v: Value) -> f64 {
    match v {
        Value::F64(x) => x,
        other => other.as_f64(),
    }
}

fn i(v: Value) -> i64 {
    match v {
        Value::I64(x) => x,
        Value::Bool(b) => i64::from(b),
        Value::F64(x) => x as i64,
    }
}

fn cmp_result(op: CmpOp, ord: i32) -> bool {
    // ord: -1, 0, 1, or 2 for unordered
    match op {
        CmpOp::Lt => ord == -1,
        CmpOp::Le => ord == -1 || ord == 0,
        CmpOp::Gt => ord == 1,
        CmpOp::Ge => ord == 0 || ord == 1,
        CmpOp::Eq => ord == 0,
        CmpOp::Ne => ord != 0,
    }
}

fn ford(a: f64, b: f64) -> i32 {
    match a.partial_cmp(&b) {
        Some(std::cmp::Ordering::Less) => -1,
        Some(std::cmp::Ordering::Equal) => 0,
        Some(std::cmp::Ordering::Greater) => 1,
        None => 2,
    }
}

/// The mirrored comparison for swapped operands.
pub(crate) fn mirror(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

pub(crate) fn eval_un(op: Un, a: Value) -> R<Value> {
    Ok(match op {
        Un::NegF => Value::F64(-f(a)),
        Un::NegI => Value::I64(rt::i_neg(i(a))?),
        Un::AbsF => Value::F64(f(a).abs()),
        Un::AbsI => Value::I64(rt::i_abs(i(a))?),
        Un::Not => Value::Bool(!a.truthy()),
        Un::Truthy => Value::Bool(a.truthy()),
        Un::BoolToI => Value::I64(i(a)),
        Un::BoolToF | Un::IToF => Value::F64(a.as_f64()),
        Un::IToFExact => Value::F64(rt::i_to_f_exact(i(a))?),
        Un::FToInt => Value::I64(rt::f_to_int(f(a))?),
        Un::FRound => Value::I64(rt::f_round(f(a))?),
        Un::PowHalf => Value::F64(rt::f_pow_half(f(a))?),
        Un::Square => Value::F64(rt::f_square(f(a))?),
        Un::Recip => Value::F64(rt::f_recip(f(a))?),
        Un::Math(m) => Value::F64(m.eval(f(a))?),
    })
}

pub(crate) fn eval_bin(op: Bin, a: Value, b: Value) -> R<Value> {
    Ok(match op {
        Bin::AddF => Value::F64(f(a) + f(b)),
        Bin::SubF => Value::F64(f(a) - f(b)),
        Bin::MulF => Value::F64(f(a) * f(b)),
        Bin::DivF => Value::F64(rt::f_div(f(a), f(b))?),
        Bin::FloorDivF => Value::F64(rt::f_floordiv(f(a), f(b))?),
        Bin::ModF => Value::F64(rt::f_mod(f(a), f(b))?),
        Bin::PowF => Value::F64(rt::f_pow(f(a), f(b))?),
        Bin::MPowF => Value::F64(rt::m_pow(f(a), f(b))?),
        Bin::AddI => Value::I64(rt::i_add(i(a), i(b))?),
        Bin::SubI => Value::I64(rt::i_sub(i(a), i(b))?),
        Bin::MulI => Value::I64(rt::i_mul(i(a), i(b))?),
        Bin::FloorDivI => Value::I64(rt::i_floordiv(i(a), i(b))?),
        Bin::ModI => Value::I64(rt::i_mod(i(a), i(b))?),
        Bin::PowI => Value::I64(rt::i_pow(i(a), i(b))?),
        Bin::TrueDivI => Value::F64(rt::i_truediv(i(a), i(b))?),
    })
}

pub(crate) fn eval_cmp(op: CmpOp, kind: CmpKind, a: Value, b: Value) -> bool {
    let ord = match kind {
        CmpKind::FF => ford(f(a), f(b)),
        CmpKind::II => i(a).cmp(&i(b)) as i32,
        CmpKind::IF => rt::cmp_if(i(a), f(b)),
        CmpKind::FI => return cmp_result(mirror(op), rt::cmp_if(i(b), f(a))),
    };
    cmp_result(op, ord)
}

/// Adds one element to a running reduction; `Some(result)` when it short-circuits.
fn accumulate(r: Reducer, acc: &mut Value, v: Value) -> R<Option<Value>> {
    match r {
        Reducer::Sum => {
            *acc = match *acc {
                Value::F64(s) => Value::F64(s + f(v)),
                other => Value::I64(rt::i_add(i(other), i(v))?),
            };
            Ok(None)
        }
        Reducer::Any => Ok(v.truthy().then_some(Value::Bool(true))),
        Reducer::All => Ok((!v.truthy()).then_some(Value::Bool(false))),
    }
}

pub(crate) fn reduce_init(r: Reducer, ty: Ty) -> Value {
    match (r, ty) {
        (Reducer::Sum, Ty::F64) => Value::F64(0.0),
        (Reducer::Sum, _) => Value::I64(0),
        (Reducer::Any, _) => Value::Bool(false),
        (Reducer::All, _) => Value::Bool(true),
    }
}

impl Interp<'_> {
    /// `Ok(None)`: a control intrinsic fired (which one is in the returned code by `body_ctl`).
    fn body(&mut self, b: &Body) -> R<Option<Value>> {
        match self.body_ctl(b)? {
            Ok(v) => Ok(Some(v)),
            Err(c) => {
                self.last_control = match c {
                    Control::Break => status::BREAK,
                    Control::Continue => status::CONTINUE,
                };
                Ok(None)
            }
        }
    }

    fn body_ctl(&mut self, b: &Body) -> R<Result<Value, Control>> {
        if let Some((s, n)) = &b.bind {
            self.locals[*s] = self.eval(n)?;
        }
        if let Some((ctl, c)) = &b.control
            && self.eval(c)?.truthy()
        {
            return Ok(Err(*ctl));
        }
        Ok(Ok(self.eval(&b.value)?))
    }

    fn eval(&mut self, n: &Node) -> R<Value> {
        Ok(match &n.k {
            K::Const(v) => *v,
            K::Param(p) => match self.args[*p] {
                ArgVal::Scalar(v) => v,
                ArgVal::Buffer(..) => return Err(status::INEXACT),
            },
            K::Local(s) => self.locals[*s],
            K::Let(s, v, b) => {
                self.locals[*s] = self.eval(v)?;
                self.eval(b)?
            }
            K::Un(op, a) => {
                let a = self.eval(a)?;
                eval_un(*op, a)?
            }
            K::Bin(op, a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                eval_bin(*op, a, b)?
            }
            K::Cmp(op, kind, a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                Value::Bool(eval_cmp(*op, *kind, a, b))
            }
            K::And(a, b) => {
                let a = self.eval(a)?;
                if a.truthy() { self.eval(b)? } else { a }
            }
            K::Or(a, b) => {
                let a = self.eval(a)?;
                if a.truthy() { a } else { self.eval(b)? }
            }
            K::Select(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            K::Fail(args, code) => {
                for a in args {
                    self.eval(a)?;
                }
                return Err(*code);
            }
            K::Loop(l) => self.run_loop(l, n.ty)?,
            K::RangeSum(kind, a, b) => {
                let a = i(self.eval(a)?);
                let b = i(self.eval(b)?);
                Value::I64(rt::range_sum(*kind, a, b)?)
            }
        })
    }

    /// One iteration's element: filter, then body. `Ok(None)` ends the loop with `acc`.
    fn step(&mut self, l: &Loop, acc: &mut Value) -> R<Option<Value>> {
        if let Some(c) = &l.filter
            && !self.eval(c)?.truthy()
        {
            return Ok(Some(Value::Bool(false))); // skipped: not a stop
        }
        match self.body_ctl(&l.body)? {
            Err(Control::Break) => Ok(None),
            Err(Control::Continue) => Ok(Some(Value::Bool(false))),
            Ok(v) => match accumulate(l.reducer, acc, v)? {
                Some(done) => {
                    *acc = done;
                    Ok(None)
                }
                None => Ok(Some(Value::Bool(false))),
            },
        }
    }

    fn run_loop(&mut self, l: &Loop, ty: Ty) -> R<Value> {
        let mut acc = reduce_init(l.reducer, ty);
        match &l.src {
            LoopSrc::Range(a, b, c) => {
                let start = i(self.eval(a)?);
                let stop = i(self.eval(b)?);
                let step = i(self.eval(c)?);
                if step == 0 {
                    return Err(status::ZERO_STEP);
                }
                let mut x = start;
                while (step > 0 && x < stop) || (step < 0 && x > stop) {
                    self.locals[l.var] = Value::I64(x);
                    if self.step(l, &mut acc)?.is_none() {
                        break;
                    }
                    match x.checked_add(step) {
                        Some(nx) => x = nx,
                        None => break,
                    }
                }
            }
            LoopSrc::Container { param, dtype } => {
                let ArgVal::Buffer(bytes) = self.args[*param] else {
                    return Err(status::INEXACT);
                };
                let len = bytes.len() / dtype.itemsize();
                for k in 0..len {
                    self.locals[l.var] = dtype.read(bytes, k).ok_or(status::INT_OVERFLOW)?;
                    if self.step(l, &mut acc)?.is_none() {
                        break;
                    }
                }
            }
            LoopSrc::While { init, cond, step } => {
                self.locals[l.var] = self.eval(init)?;
                let mut iters = 0u64;
                while self.eval(cond)?.truthy() {
                    if iters >= self.cap {
                        return Err(status::ITER_CAP);
                    }
                    iters += 1;
                    if self.step(l, &mut acc)?.is_none() {
                        break;
                    }
                    self.locals[l.var] = self.eval(step)?;
                }
            }
        }
        Ok(acc)
    }
}
