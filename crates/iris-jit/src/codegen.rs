//! Cranelift code generation for one typed [`Program`].
//!
//! Generated kernels have the signature `fn(args: *const u64, out: *mut u64) -> u32`: scalar
//! parameters take one 64-bit slot each, buffers two (pointer, element count); the result is
//! written to `*out` and the return value is a status code (0 = ok). Fallible operations branch
//! to an error exit at once, so the first error wins, exactly as Python raises the first.

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};

use crate::ast::{CmpOp, Reducer};
use crate::error::{CompileError, status};
use crate::ir::{Bin, Body, CmpKind, Control, K, Loop, LoopSrc, Node, PKind, Program, Un};
use crate::rt::{self, MathFn};
use crate::value::{DType, Ty, Value};

/// Cranelift optimization level of one code variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// No optimization (fastest compile).
    None,
    /// Optimize for speed.
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

impl OptLevel {
    fn flag(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Speed => "speed",
            Self::SpeedAndSize => "speed_and_size",
        }
    }
}

/// A compiled kernel entry point.
pub(crate) type KernelFn = unsafe extern "C" fn(*const u64, *mut u64) -> u32;

/// Owns the executable memory of one kernel; the function pointer never leaves this struct
/// except for the duration of a borrow of it.
pub(crate) struct Kernel {
    f: KernelFn,
    module: Mutex<Option<JITModule>>,
}

impl Kernel {
    /// Calls the kernel. `args` must follow the program's slot layout and `out` must be valid
    /// for one u64 (scalar kernels) or `args[0]` u64s (element-wise kernels).
    pub(crate) fn call(&self, args: &[u64], out: *mut u64) -> u32 {
        // SAFETY: `f` was produced by finalizing `self.module`, which lives as long as `self`;
        // the kernel reads exactly the slots the program's signature describes (the executors
        // build `args` from that same signature, with buffer pointers valid for their lengths)
        // and writes to `out` within the bounds the caller guarantees above.
        unsafe { (self.f)(args.as_ptr(), out) }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .map(Option::take)
            .unwrap_or_else(|p| p.into_inner().take());
        if let Some(m) = module {
            // SAFETY: the only pointer into this memory is `self.f`, which dies with `self`.
            unsafe { m.free_memory() };
        }
    }
}

fn cl_ty(t: Ty) -> ir::Type {
    match t {
        Ty::F64 => types::F64,
        Ty::I64 => types::I64,
        Ty::Bool => types::I8,
    }
}

/// Symbols the generated code may call: only these Rust shims are ever linked.
fn shim_symbols() -> Vec<(&'static str, *const u8)> {
    let mut v: Vec<(&'static str, *const u8)> = [
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tan,
        MathFn::Sinh,
        MathFn::Cosh,
        MathFn::Tanh,
        MathFn::Exp,
        MathFn::Log,
        MathFn::Sqrt,
    ]
    .iter()
    .map(|m| m.shim())
    .collect();
    type Ff = extern "C" fn(f64, f64, *mut u32) -> f64;
    type Ii = extern "C" fn(i64, i64, *mut u32) -> i64;
    v.extend([
        ("iris_jit_f_pow", rt::shim_f_pow as Ff as *const u8),
        ("iris_jit_m_pow", rt::shim_m_pow as Ff as *const u8),
        (
            "iris_jit_f_floordiv",
            rt::shim_f_floordiv as Ff as *const u8,
        ),
        ("iris_jit_f_mod", rt::shim_f_mod as Ff as *const u8),
        (
            "iris_jit_i_floordiv",
            rt::shim_i_floordiv as Ii as *const u8,
        ),
        ("iris_jit_i_mod", rt::shim_i_mod as Ii as *const u8),
        ("iris_jit_i_pow", rt::shim_i_pow as Ii as *const u8),
        (
            "iris_jit_i_truediv",
            rt::shim_i_truediv as extern "C" fn(i64, i64, *mut u32) -> f64 as *const u8,
        ),
        (
            "iris_jit_f_pow_half",
            rt::shim_f_pow_half as extern "C" fn(f64, *mut u32) -> f64 as *const u8,
        ),
        (
            "iris_jit_i_to_f_exact",
            rt::shim_i_to_f_exact as extern "C" fn(i64, *mut u32) -> f64 as *const u8,
        ),
        (
            "iris_jit_f_to_int",
            rt::shim_f_to_int as extern "C" fn(f64, *mut u32) -> i64 as *const u8,
        ),
        (
            "iris_jit_f_round",
            rt::shim_f_round as extern "C" fn(f64, *mut u32) -> i64 as *const u8,
        ),
        (
            "iris_jit_range_sum",
            rt::shim_range_sum as extern "C" fn(i64, i64, i64, i64, *mut u32) -> i64 as *const u8,
        ),
        (
            "iris_jit_cmp_if",
            rt::shim_cmp_if as extern "C" fn(i64, f64) -> i32 as *const u8,
        ),
    ]);
    v
}

fn cg_err(e: impl std::fmt::Display) -> CompileError {
    CompileError::Codegen(e.to_string())
}

fn new_module(opt: OptLevel) -> Result<JITModule, CompileError> {
    let mut flags = settings::builder();
    flags.set("opt_level", opt.flag()).map_err(cg_err)?;
    flags
        .set("use_colocated_libcalls", "false")
        .map_err(cg_err)?;
    // cranelift-jit needs non-PIC code (PLT relocations are unsupported on aarch64)
    flags.set("is_pic", "false").map_err(cg_err)?;
    let isa = cranelift_native::builder()
        .map_err(cg_err)?
        .finish(settings::Flags::new(flags))
        .map_err(cg_err)?;
    // no libcall is ever emitted (floor/ceil/... go through our shims); name them so that a
    // mistake fails to link instead of binding some C symbol
    let mut jb = JITBuilder::with_isa(isa, Box::new(|lc| format!("iris_jit_no_libcall_{lc:?}")));
    for (name, ptr) in shim_symbols() {
        jb.symbol(name, ptr);
    }
    Ok(JITModule::new(jb))
}

/// What a kernel computes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// One evaluation: `args` follows the program's slot layout, `out` receives the result.
    Scalar,
    /// An element-wise loop: `args[0]` is the element count and `args[1 + j]` parameter `j`'s
    /// scalar bits, or (when `dtypes[j]` is a dtype) the address of its buffer; `out` receives
    /// one u64 per element. The loop stops at the first failing element.
    Map(&'a [Option<DType>]),
    /// `sum` of the element-wise values in one pass, arguments as for `Map`; `out` receives the
    /// sum (f64 bits, or an i64 for int and bool elements, overflow checked). Float sums add
    /// left to right unless `fast`, where an `f64x2` body sums in several vector accumulators.
    Sum {
        dtypes: &'a [Option<DType>],
        fast: bool,
    },
}

/// Vector accumulators of a fast-math `sum` (each two lanes wide): enough independent adds in
/// flight to hide the latency of `addpd`.
const SUM_ACCS: usize = 8;
/// Lanes of `f64x2`.
const LANES: usize = 2;
/// Elements per iteration of an exact float `sum` over a straight-line body.
const EXACT_UNROLL: usize = 4;

/// Compiles `p` with the given optimization level and `*_while` iteration cap, as `shape`.
pub(crate) fn compile(
    p: &Program,
    opt: OptLevel,
    cap: u64,
    shape: Shape<'_>,
) -> Result<Kernel, CompileError> {
    let mut module = new_module(opt)?;
    let fma = module
        .isa()
        .isa_flags()
        .iter()
        .any(|f| f.name == "has_fma" && f.as_bool() == Some(true));
    let tcfg = module.target_config();
    let ptr = tcfg.pointer_type();
    let mut ctx = module.make_context();
    ctx.func.signature.params.push(AbiParam::new(ptr));
    ctx.func.signature.params.push(AbiParam::new(ptr));
    ctx.func.signature.returns.push(AbiParam::new(types::I32));
    let id = module
        .declare_function("iris_jit_kernel", Linkage::Local, &ctx.func.signature)
        .map_err(cg_err)?;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let args_ptr = b.block_params(entry)[0];
        let out_ptr = b.block_params(entry)[1];
        let st_slot =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 4, 2));
        let zero = b.ins().iconst(types::I32, 0);
        b.ins().stack_store(ptr, zero, st_slot, 0);
        let err_block = b.create_block();
        b.append_block_param(err_block, types::I32);
        let vars = p.slots.iter().map(|t| b.declare_var(cl_ty(*t))).collect();
        let mut offs = Vec::with_capacity(p.sig.len());
        let mut off = 0i32;
        for k in &p.sig {
            offs.push(off);
            off += match k {
                PKind::Scalar(_) => 8,
                PKind::Buffer(_) => 16,
            };
        }
        let mut g = Gen {
            b,
            module: &mut module,
            ptr,
            args_ptr,
            st_slot,
            err_block,
            vars,
            offs,
            sig: &p.sig,
            refs: HashMap::new(),
            cap,
            param_vars: None,
            pow_half_inline: rt::pow_half_shortcut() && fma,
        };
        let done = g.b.create_block();
        g.b.append_block_param(done, types::I32);
        let ctl = match shape {
            Shape::Scalar => {
                let ctl = g.body(&p.root)?;
                let v = g.value_bits(ctl.value, p.ty());
                g.b.ins().store(MemFlagsData::trusted(), v, out_ptr, 0);
                let ok = g.b.ins().iconst(types::I32, i64::from(status::OK));
                g.b.ins().jump(done, &[BlockArg::from(ok)]);
                ctl
            }
            Shape::Map(dtypes) => g.map_loop(p, dtypes, out_ptr, done)?,
            Shape::Sum { dtypes, fast } => g.sum_loop(p, dtypes, fast, out_ptr, done)?,
        };
        if let Some((kind, fired)) = ctl.fired {
            g.b.switch_to_block(fired);
            let code = match kind {
                Control::Break => status::BREAK,
                Control::Continue => status::CONTINUE,
            };
            let c = g.b.ins().iconst(types::I32, i64::from(code));
            g.b.ins().jump(done, &[BlockArg::from(c)]);
        }
        g.b.switch_to_block(err_block);
        let code = g.b.block_params(err_block)[0];
        g.b.ins().jump(done, &[BlockArg::from(code)]);
        g.b.switch_to_block(done);
        let r = g.b.block_params(done)[0];
        g.b.ins().return_(&[r]);
        g.b.seal_all_blocks();
        g.b.finalize(tcfg);
    }
    module.define_function(id, &mut ctx).map_err(cg_err)?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(cg_err)?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the finalized entry of a function declared with exactly this signature
    // (two pointers in, i32 out) under the host's default calling convention.
    let f = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
    Ok(Kernel {
        f,
        module: Mutex::new(Some(module)),
    })
}

struct Gen<'a, 'b> {
    b: FunctionBuilder<'b>,
    module: &'a mut JITModule,
    ptr: ir::Type,
    args_ptr: ir::Value,
    st_slot: StackSlot,
    err_block: Block,
    vars: Vec<Variable>,
    offs: Vec<i32>,
    sig: &'a [PKind],
    refs: HashMap<&'static str, ir::FuncRef>,
    cap: u64,
    /// In element-wise mode: the current element of every parameter.
    param_vars: Option<Vec<Variable>>,
    /// `x ** 0.5` may test inline whether `pow` must equal `sqrt` (see `rt::f_pow`).
    pow_half_inline: bool,
}

/// A body's value, plus the block reached when its control intrinsic fires.
struct BodyOut {
    value: ir::Value,
    fired: Option<(Control, Block)>,
}

fn float_cc(op: CmpOp) -> FloatCC {
    match op {
        CmpOp::Lt => FloatCC::LessThan,
        CmpOp::Le => FloatCC::LessThanOrEqual,
        CmpOp::Gt => FloatCC::GreaterThan,
        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
        CmpOp::Eq => FloatCC::Equal,
        CmpOp::Ne => FloatCC::NotEqual,
    }
}

fn int_cc(op: CmpOp) -> IntCC {
    match op {
        CmpOp::Lt => IntCC::SignedLessThan,
        CmpOp::Le => IntCC::SignedLessThanOrEqual,
        CmpOp::Gt => IntCC::SignedGreaterThan,
        CmpOp::Ge => IntCC::SignedGreaterThanOrEqual,
        CmpOp::Eq => IntCC::Equal,
        CmpOp::Ne => IntCC::NotEqual,
    }
}

/// Nodes cheap and infallible enough to evaluate unconditionally (for `select`).
fn is_simple(n: &Node, budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match &n.k {
        K::Const(_) | K::Param(_) | K::Local(_) => true,
        K::Un(op, a) => {
            matches!(
                op,
                Un::NegF | Un::AbsF | Un::Not | Un::Truthy | Un::BoolToI | Un::BoolToF | Un::IToF
            ) && is_simple(a, budget)
        }
        K::Bin(op, a, b) => {
            matches!(op, Bin::AddF | Bin::SubF | Bin::MulF)
                && is_simple(a, budget)
                && is_simple(b, budget)
        }
        K::Cmp(_, kind, a, b) => {
            matches!(kind, CmpKind::FF | CmpKind::II)
                && is_simple(a, budget)
                && is_simple(b, budget)
        }
        _ => false,
    }
}

/// Whether a fast-math `sum` body runs as `f64x2`: float parameters (f64 buffers or float
/// scalars) combined by `+ - * /`, unary `-`, `abs`, `sqrt` and float constants; no control.
fn vector_ok(p: &Program, dtypes: &[Option<DType>]) -> bool {
    let params_ok = p
        .sig
        .iter()
        .enumerate()
        .all(|(j, k)| match dtypes.get(j).copied().flatten() {
            Some(dt) => dt == DType::F64,
            None => *k == PKind::Scalar(Ty::F64),
        });
    let mut budget = 256;
    params_ok
        && p.root.control.is_none()
        && p.root
            .bind
            .as_ref()
            .is_none_or(|(_, n)| vector_node_ok(n, &mut budget))
        && vector_node_ok(&p.root.value, &mut budget)
}

fn vector_node_ok(n: &Node, budget: &mut u32) -> bool {
    if *budget == 0 || n.ty != Ty::F64 {
        return false;
    }
    *budget -= 1;
    match &n.k {
        K::Const(Value::F64(_)) | K::Param(_) | K::Local(_) => true,
        K::Let(_, v, b) => vector_node_ok(v, budget) && vector_node_ok(b, budget),
        K::Un(Un::NegF | Un::AbsF | Un::Math(MathFn::Sqrt) | Un::PowHalf | Un::Square, a) => {
            vector_node_ok(a, budget)
        }
        K::Bin(Bin::AddF | Bin::SubF | Bin::MulF | Bin::DivF, a, b) => {
            vector_node_ok(a, budget) && vector_node_ok(b, budget)
        }
        _ => false,
    }
}

impl Gen<'_, '_> {
    fn shim(
        &mut self,
        name: &'static str,
        params: &[ir::Type],
        ret: ir::Type,
    ) -> Result<ir::FuncRef, CompileError> {
        if let Some(r) = self.refs.get(name) {
            return Ok(*r);
        }
        let mut sig = self.module.make_signature();
        sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        sig.returns.push(AbiParam::new(ret));
        let id = self
            .module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(cg_err)?;
        let r = self.module.declare_func_in_func(id, self.b.func);
        self.refs.insert(name, r);
        Ok(r)
    }

    /// Calls a shim that reports failure through the status slot, exiting on failure.
    fn call_fallible(
        &mut self,
        name: &'static str,
        args: &[ir::Value],
        arg_tys: &[ir::Type],
        ret: ir::Type,
    ) -> Result<ir::Value, CompileError> {
        let mut tys = arg_tys.to_vec();
        tys.push(self.ptr);
        let f = self.shim(name, &tys, ret)?;
        let st = self.b.ins().stack_addr(self.ptr, self.st_slot, 0);
        let mut a = args.to_vec();
        a.push(st);
        let call = self.b.ins().call(f, &a);
        let r = self.b.inst_results(call)[0];
        let code = self
            .b
            .ins()
            .stack_load(self.ptr, types::I32, self.st_slot, 0);
        self.exit_if_code(code);
        Ok(r)
    }

    /// Branches to the error exit when `code` (i32) is nonzero.
    fn exit_if_code(&mut self, code: ir::Value) {
        let cont = self.b.create_block();
        self.b
            .ins()
            .brif(code, self.err_block, &[BlockArg::from(code)], cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// Branches to the error exit with `status` when `cond` (an integer) is nonzero.
    fn fail_if(&mut self, cond: ir::Value, status: u32) {
        let cont = self.b.create_block();
        let fail = self.b.create_block();
        self.b.ins().brif(cond, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        let c = self.b.ins().iconst(types::I32, i64::from(status));
        self.b.ins().jump(self.err_block, &[BlockArg::from(c)]);
        self.b.switch_to_block(cont);
    }

    /// CPython's `OverflowError` for `pow`: an infinite result from a finite operand.
    fn fail_if_overflowed(&mut self, x: ir::Value, r: ir::Value) {
        let inf = self.b.ins().f64const(f64::INFINITY);
        let ar = self.b.ins().fabs(r);
        let ax = self.b.ins().fabs(x);
        let r_inf = self.b.ins().fcmp(FloatCC::Equal, ar, inf);
        let x_fin = self.b.ins().fcmp(FloatCC::LessThan, ax, inf);
        let bad = self.b.ins().band(r_inf, x_fin);
        self.fail_if(bad, status::FLOAT_OVERFLOW);
    }

    fn value_bits(&mut self, v: ir::Value, ty: Ty) -> ir::Value {
        match ty {
            Ty::F64 => v,
            Ty::I64 => v,
            Ty::Bool => self.b.ins().uextend(types::I64, v),
        }
    }

    fn konst(&mut self, v: Value) -> ir::Value {
        match v {
            Value::F64(x) => self.b.ins().f64const(x),
            Value::I64(x) => self.b.ins().iconst(types::I64, x),
            Value::Bool(x) => self.b.ins().iconst(types::I8, i64::from(x)),
        }
    }

    fn truthy(&mut self, v: ir::Value, ty: Ty) -> ir::Value {
        match ty {
            Ty::Bool => v,
            Ty::I64 => self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0),
            Ty::F64 => {
                let z = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
        }
    }

    fn body(&mut self, body: &Body) -> Result<BodyOut, CompileError> {
        if let Some((s, n)) = &body.bind {
            let v = self.expr(n)?;
            self.b.def_var(self.vars[*s], v);
        }
        let fired = if let Some((ctl, c)) = &body.control {
            let c = self.expr(c)?;
            let fired = self.b.create_block();
            let cont = self.b.create_block();
            self.b.ins().brif(c, fired, &[], cont, &[]);
            self.b.switch_to_block(cont);
            Some((*ctl, fired))
        } else {
            None
        };
        let value = self.expr(&body.value)?;
        Ok(BodyOut { value, fired })
    }

    fn expr(&mut self, n: &Node) -> Result<ir::Value, CompileError> {
        Ok(match &n.k {
            K::Const(v) => self.konst(*v),
            K::Param(i) if self.param_vars.is_some() => {
                let vars = self.param_vars.as_ref().map_or(&[][..], |v| &v[..]);
                let var = vars[*i];
                self.b.use_var(var)
            }
            K::Param(i) => {
                let ty = cl_ty(n.ty);
                let v = self.b.ins().load(
                    types::I64,
                    MemFlagsData::trusted(),
                    self.args_ptr,
                    self.offs[*i],
                );
                match n.ty {
                    Ty::I64 => v,
                    Ty::F64 => self.b.ins().bitcast(ty, MemFlagsData::new(), v),
                    Ty::Bool => self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0),
                }
            }
            K::Local(s) => self.b.use_var(self.vars[*s]),
            K::Let(s, v, body) => {
                let v = self.expr(v)?;
                self.b.def_var(self.vars[*s], v);
                self.expr(body)?
            }
            K::Un(op, a) => {
                let aty = a.ty;
                let a = self.expr(a)?;
                self.unary(*op, a, aty)?
            }
            K::Bin(Bin::PowF, a, b)
                if self.pow_half_inline && matches!(b.k, K::Const(Value::F64(h)) if h == 0.5) =>
            {
                let a = self.expr(a)?;
                self.pow_half_exact(a)?
            }
            K::Bin(op, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                self.binary(*op, a, b)?
            }
            K::Cmp(op, kind, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                self.compare(*op, *kind, a, b)?
            }
            K::And(a, b) | K::Or(a, b) => {
                let is_and = matches!(n.k, K::And(..));
                let av = self.expr(a)?;
                let t = self.truthy(av, a.ty);
                let rhs = self.b.create_block();
                let merge = self.b.create_block();
                let ty = cl_ty(n.ty);
                self.b.append_block_param(merge, ty);
                if is_and {
                    self.b.ins().brif(t, rhs, &[], merge, &[BlockArg::from(av)]);
                } else {
                    self.b.ins().brif(t, merge, &[BlockArg::from(av)], rhs, &[]);
                }
                self.b.switch_to_block(rhs);
                let bv = self.expr(b)?;
                self.b.ins().jump(merge, &[BlockArg::from(bv)]);
                self.b.switch_to_block(merge);
                self.b.block_params(merge)[0]
            }
            K::Select(c, a, b) => {
                let cv = self.expr(c)?;
                let mut budget = 16;
                if is_simple(a, &mut budget) && is_simple(b, &mut budget) {
                    let av = self.expr(a)?;
                    let bv = self.expr(b)?;
                    self.b.ins().select(cv, av, bv)
                } else {
                    let then = self.b.create_block();
                    let els = self.b.create_block();
                    let merge = self.b.create_block();
                    self.b.append_block_param(merge, cl_ty(n.ty));
                    self.b.ins().brif(cv, then, &[], els, &[]);
                    self.b.switch_to_block(then);
                    let av = self.expr(a)?;
                    self.b.ins().jump(merge, &[BlockArg::from(av)]);
                    self.b.switch_to_block(els);
                    let bv = self.expr(b)?;
                    self.b.ins().jump(merge, &[BlockArg::from(bv)]);
                    self.b.switch_to_block(merge);
                    self.b.block_params(merge)[0]
                }
            }
            K::Fail(args, code) => {
                for a in args {
                    self.expr(a)?;
                }
                let c = self.b.ins().iconst(types::I32, i64::from(*code));
                self.b.ins().jump(self.err_block, &[BlockArg::from(c)]);
                let dead = self.b.create_block();
                self.b.switch_to_block(dead);
                let zero = match n.ty {
                    Ty::F64 => Value::F64(0.0),
                    Ty::I64 => Value::I64(0),
                    Ty::Bool => Value::Bool(false),
                };
                self.konst(zero)
            }
            K::Loop(l) => self.lower_loop(l, n.ty)?,
            K::RangeSum(kind, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                let (k, c) = match kind {
                    rt::RangeSum::Const(c) => (0, *c),
                    rt::RangeSum::Linear => (1, 0),
                    rt::RangeSum::Square => (2, 0),
                };
                let k = self.b.ins().iconst(types::I64, k);
                let c = self.b.ins().iconst(types::I64, c);
                let i = types::I64;
                self.call_fallible("iris_jit_range_sum", &[k, c, a, b], &[i, i, i, i], i)?
            }
        })
    }

    fn unary(&mut self, op: Un, a: ir::Value, aty: Ty) -> Result<ir::Value, CompileError> {
        let f64t = types::F64;
        Ok(match op {
            Un::NegF => self.b.ins().fneg(a),
            Un::AbsF => self.b.ins().fabs(a),
            Un::NegI | Un::AbsI => {
                let is_min = self.b.ins().icmp_imm_s(IntCC::Equal, a, i64::MIN);
                self.fail_if(is_min, status::INT_OVERFLOW);
                if op == Un::NegI {
                    self.b.ins().ineg(a)
                } else {
                    self.b.ins().iabs(a)
                }
            }
            Un::Not => self.b.ins().bxor_imm_s(a, 1),
            Un::Truthy => self.truthy(a, aty),
            Un::BoolToI => self.b.ins().uextend(types::I64, a),
            Un::BoolToF => {
                let i = self.b.ins().uextend(types::I64, a);
                self.b.ins().fcvt_from_sint(f64t, i)
            }
            Un::IToF => self.b.ins().fcvt_from_sint(f64t, a),
            Un::IToFExact => {
                self.call_fallible("iris_jit_i_to_f_exact", &[a], &[types::I64], f64t)?
            }
            Un::FToInt => self.call_fallible("iris_jit_f_to_int", &[a], &[f64t], types::I64)?,
            Un::FRound => self.call_fallible("iris_jit_f_round", &[a], &[f64t], types::I64)?,
            Un::PowHalf => self.pow_half(a),
            Un::Square => {
                let r = self.b.ins().fmul(a, a);
                self.fail_if_overflowed(a, r);
                r
            }
            Un::Recip => {
                let z = self.b.ins().f64const(0.0);
                let is_zero = self.b.ins().fcmp(FloatCC::Equal, a, z);
                self.fail_if(is_zero, status::ZERO_DIV);
                let one = self.b.ins().f64const(1.0);
                let r = self.b.ins().fdiv(one, a);
                self.fail_if_overflowed(a, r);
                r
            }
            Un::Math(MathFn::Sqrt) => {
                let z = self.b.ins().f64const(0.0);
                let neg = self.b.ins().fcmp(FloatCC::LessThan, a, z);
                self.fail_if(neg, status::DOMAIN);
                self.b.ins().sqrt(a)
            }
            Un::Math(m) => {
                let (name, _) = m.shim();
                self.call_fallible(name, &[a], &[f64t], f64t)?
            }
        })
    }

    /// Python's exact `x ** 0.5` (glibc's `pow`): `sqrt` where `pow` must agree with it, as
    /// `rt::f_pow` decides (an in-range input, not a power of two, the exact root within 0.4
    /// ULP of `sqrt(x)` by the FMA residual), else the `pow` shim.
    fn pow_half_exact(&mut self, x: ir::Value) -> Result<ir::Value, CompileError> {
        let (f, i) = (types::F64, types::I64);
        let lo = self.b.ins().f64const(1e-300);
        let hi = self.b.ins().f64const(1e300);
        let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, lo);
        let le = self.b.ins().fcmp(FloatCC::LessThanOrEqual, x, hi);
        let in_range = self.b.ins().band(ge, le);
        let s = self.b.ins().sqrt(x);
        let sb = self.b.ins().bitcast(i, MemFlagsData::new(), s);
        let mant = self.b.ins().band_imm_s(sb, (1 << 52) - 1);
        let not_pow2 = self.b.ins().icmp_imm_s(IntCC::NotEqual, mant, 0);
        let nx = self.b.ins().fneg(x);
        let r = self.b.ins().fma(s, s, nx);
        let ar = self.b.ins().fabs(r);
        let sb1 = self.b.ins().iadd_imm_s(sb, 1);
        let s1 = self.b.ins().bitcast(f, MemFlagsData::new(), sb1);
        let ulp = self.b.ins().fsub(s1, s);
        let su = self.b.ins().fmul(s, ulp);
        let k = self.b.ins().f64const(0.8);
        let lim = self.b.ins().fmul(su, k);
        let close = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ar, lim);
        let ok = self.b.ins().band(in_range, not_pow2);
        let ok = self.b.ins().band(ok, close);
        let slow = self.b.create_block();
        let merge = self.b.create_block();
        self.b.append_block_param(merge, f);
        self.b
            .ins()
            .brif(ok, merge, &[BlockArg::from(s)], slow, &[]);
        self.b.switch_to_block(slow);
        let half = self.b.ins().f64const(0.5);
        let p = self.call_fallible("iris_jit_f_pow", &[x, half], &[f, f], f)?;
        self.b.ins().jump(merge, &[BlockArg::from(p)]);
        self.b.switch_to_block(merge);
        Ok(self.b.block_params(merge)[0])
    }

    /// Python's `x ** 0.5` inline: `sqrt` plus the IEEE/CPython special cases.
    fn pow_half(&mut self, x: ir::Value) -> ir::Value {
        let z = self.b.ins().f64const(0.0);
        let neg = self.b.ins().fcmp(FloatCC::LessThan, x, z);
        let neg_block = self.b.create_block();
        let pos_block = self.b.create_block();
        let merge = self.b.create_block();
        self.b.append_block_param(merge, types::F64);
        self.b.ins().brif(neg, neg_block, &[], pos_block, &[]);
        self.b.switch_to_block(neg_block);
        let ninf = self.b.ins().f64const(f64::NEG_INFINITY);
        let is_ninf = self.b.ins().fcmp(FloatCC::Equal, x, ninf);
        let not_ninf = self.b.ins().bxor_imm_s(is_ninf, 1);
        self.fail_if(not_ninf, status::DOMAIN);
        let inf = self.b.ins().f64const(f64::INFINITY);
        self.b.ins().jump(merge, &[BlockArg::from(inf)]);
        self.b.switch_to_block(pos_block);
        let s = self.b.ins().sqrt(x);
        // sqrt(-0.0) is -0.0 but (-0.0) ** 0.5 is 0.0; adding +0.0 fixes exactly that case
        let z2 = self.b.ins().f64const(0.0);
        let s = self.b.ins().fadd(s, z2);
        self.b.ins().jump(merge, &[BlockArg::from(s)]);
        self.b.switch_to_block(merge);
        self.b.block_params(merge)[0]
    }

    fn binary(&mut self, op: Bin, a: ir::Value, b: ir::Value) -> Result<ir::Value, CompileError> {
        let (f, i) = (types::F64, types::I64);
        Ok(match op {
            Bin::AddF => self.b.ins().fadd(a, b),
            Bin::SubF => self.b.ins().fsub(a, b),
            Bin::MulF => self.b.ins().fmul(a, b),
            Bin::DivF => {
                let z = self.b.ins().f64const(0.0);
                let is_zero = self.b.ins().fcmp(FloatCC::Equal, b, z);
                self.fail_if(is_zero, status::ZERO_DIV);
                self.b.ins().fdiv(a, b)
            }
            Bin::FloorDivF => self.call_fallible("iris_jit_f_floordiv", &[a, b], &[f, f], f)?,
            Bin::ModF => self.call_fallible("iris_jit_f_mod", &[a, b], &[f, f], f)?,
            Bin::PowF => self.call_fallible("iris_jit_f_pow", &[a, b], &[f, f], f)?,
            Bin::MPowF => self.call_fallible("iris_jit_m_pow", &[a, b], &[f, f], f)?,
            Bin::AddI | Bin::SubI | Bin::MulI => {
                let (r, of) = match op {
                    Bin::AddI => self.b.ins().sadd_overflow(a, b),
                    Bin::SubI => self.b.ins().ssub_overflow(a, b),
                    _ => self.b.ins().smul_overflow(a, b),
                };
                self.fail_if(of, status::INT_OVERFLOW);
                r
            }
            Bin::FloorDivI => self.call_fallible("iris_jit_i_floordiv", &[a, b], &[i, i], i)?,
            Bin::ModI => self.call_fallible("iris_jit_i_mod", &[a, b], &[i, i], i)?,
            Bin::PowI => self.call_fallible("iris_jit_i_pow", &[a, b], &[i, i], i)?,
            Bin::TrueDivI => self.call_fallible("iris_jit_i_truediv", &[a, b], &[i, i], f)?,
        })
    }

    fn compare(
        &mut self,
        op: CmpOp,
        kind: CmpKind,
        a: ir::Value,
        b: ir::Value,
    ) -> Result<ir::Value, CompileError> {
        Ok(match kind {
            CmpKind::FF => self.b.ins().fcmp(float_cc(op), a, b),
            CmpKind::II => self.b.ins().icmp(int_cc(op), a, b),
            CmpKind::IF | CmpKind::FI => {
                let (iv, fv, op) = if kind == CmpKind::IF {
                    (a, b, op)
                } else {
                    (b, a, crate::interp::mirror(op))
                };
                let f = self.shim("iris_jit_cmp_if", &[types::I64, types::F64], types::I32)?;
                let call = self.b.ins().call(f, &[iv, fv]);
                let r = self.b.inst_results(call)[0];
                // r is -1, 0, 1, or 2 (unordered)
                match op {
                    CmpOp::Lt => self.b.ins().icmp_imm_s(IntCC::Equal, r, -1),
                    CmpOp::Gt => self.b.ins().icmp_imm_s(IntCC::Equal, r, 1),
                    CmpOp::Eq => self.b.ins().icmp_imm_s(IntCC::Equal, r, 0),
                    CmpOp::Ne => self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0),
                    CmpOp::Le => {
                        let s = self.b.ins().iadd_imm_s(r, 1);
                        self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, s, 2)
                    }
                    CmpOp::Ge => self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, r, 2),
                }
            }
        })
    }

    fn lower_loop(&mut self, l: &Loop, ty: Ty) -> Result<ir::Value, CompileError> {
        let acc = self.b.declare_var(cl_ty(ty));
        let init = self.konst(crate::interp::reduce_init(l.reducer, ty));
        self.b.def_var(acc, init);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let next = self.b.create_block();
        let exit = self.b.create_block();
        let var = self.vars[l.var];
        match &l.src {
            LoopSrc::Range(a, b, c) => {
                let start = self.expr(a)?;
                let stop = self.expr(b)?;
                let step = self.expr(c)?;
                let zero_step = self.b.ins().icmp_imm_s(IntCC::Equal, step, 0);
                self.fail_if(zero_step, status::ZERO_STEP);
                let x = self.b.declare_var(types::I64);
                self.b.def_var(x, start);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let xv = self.b.use_var(x);
                let pos = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, step, 0);
                let lt = self.b.ins().icmp(IntCC::SignedLessThan, xv, stop);
                let gt = self.b.ins().icmp(IntCC::SignedGreaterThan, xv, stop);
                let go = self.b.ins().select(pos, lt, gt);
                self.b.ins().brif(go, body_block, &[], exit, &[]);
                self.b.switch_to_block(body_block);
                self.b.def_var(var, xv);
                self.loop_body(l, ty, acc, next, exit)?;
                self.b.switch_to_block(next);
                let xv = self.b.use_var(x);
                let (nx, of) = self.b.ins().sadd_overflow(xv, step);
                self.b.def_var(x, nx);
                let cont = self.b.create_block();
                self.b.ins().brif(of, exit, &[], cont, &[]);
                self.b.switch_to_block(cont);
                self.b.ins().jump(header, &[]);
            }
            LoopSrc::Container { param, dtype } => {
                let off = self.offs[*param];
                debug_assert!(matches!(self.sig[*param], PKind::Buffer(_)));
                let base = self
                    .b
                    .ins()
                    .load(self.ptr, MemFlagsData::trusted(), self.args_ptr, off);
                let len =
                    self.b
                        .ins()
                        .load(types::I64, MemFlagsData::trusted(), self.args_ptr, off + 8);
                let idx = self.b.declare_var(types::I64);
                let z = self.b.ins().iconst(types::I64, 0);
                self.b.def_var(idx, z);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let iv = self.b.use_var(idx);
                let go = self.b.ins().icmp(IntCC::UnsignedLessThan, iv, len);
                self.b.ins().brif(go, body_block, &[], exit, &[]);
                self.b.switch_to_block(body_block);
                let byte_off = self.b.ins().imul_imm_s(iv, dtype.itemsize() as i64);
                let byte_off = if self.ptr == types::I64 {
                    byte_off
                } else {
                    self.b.ins().ireduce(self.ptr, byte_off)
                };
                let addr = self.b.ins().iadd(base, byte_off);
                let elem = self.load_elem(*dtype, addr);
                self.b.def_var(var, elem);
                self.loop_body(l, ty, acc, next, exit)?;
                self.b.switch_to_block(next);
                let iv = self.b.use_var(idx);
                let ni = self.b.ins().iadd_imm_s(iv, 1);
                self.b.def_var(idx, ni);
                self.b.ins().jump(header, &[]);
            }
            LoopSrc::While { init, cond, step } => {
                let v0 = self.expr(init)?;
                self.b.def_var(var, v0);
                let iters = self.b.declare_var(types::I64);
                let z = self.b.ins().iconst(types::I64, 0);
                self.b.def_var(iters, z);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let c = self.expr(cond)?;
                let check = self.b.create_block();
                self.b.ins().brif(c, check, &[], exit, &[]);
                self.b.switch_to_block(check);
                let n = self.b.use_var(iters);
                let over =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, n, self.cap as i64);
                self.fail_if(over, status::ITER_CAP);
                let n1 = self.b.ins().iadd_imm_s(n, 1);
                self.b.def_var(iters, n1);
                self.b.ins().jump(body_block, &[]);
                self.b.switch_to_block(body_block);
                self.loop_body(l, ty, acc, next, exit)?;
                self.b.switch_to_block(next);
                let nv = self.expr(step)?;
                self.b.def_var(var, nv);
                self.b.ins().jump(header, &[]);
            }
        }
        self.b.switch_to_block(exit);
        Ok(self.b.use_var(acc))
    }

    /// The element-wise loop around the root body (see [`compile`]).
    fn map_loop(
        &mut self,
        p: &Program,
        dtypes: &[Option<DType>],
        out_ptr: ir::Value,
        done: Block,
    ) -> Result<BodyOut, CompileError> {
        let i64t = types::I64;
        let (vars, n, bases) = self.loop_params(p, dtypes)?;
        let idx = self.b.declare_var(i64t);
        let zero = self.b.ins().iconst(i64t, 0);
        self.b.def_var(idx, zero);
        let (header, exit) = self.element_loop(n, idx, vars, &bases, dtypes);
        let ctl = self.body(&p.root)?;
        let v = self.value_bits(ctl.value, p.ty());
        let iv = self.b.use_var(idx);
        let addr = self.elem_addr(out_ptr, iv, 8);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
        let next = self.b.ins().iadd_imm_s(iv, 1);
        self.b.def_var(idx, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        let ok = self.b.ins().iconst(types::I32, i64::from(status::OK));
        self.b.ins().jump(done, &[BlockArg::from(ok)]);
        Ok(ctl)
    }

    /// Opens the loop `while idx < n` over the arguments: jumps to its header, and at the top
    /// of its body loads element `idx` of every buffer argument into that argument's
    /// variable. Returns the header (to jump back to) and the exit block.
    fn element_loop(
        &mut self,
        n: ir::Value,
        idx: Variable,
        vars: Vec<Variable>,
        bases: &[Option<ir::Value>],
        dtypes: &[Option<DType>],
    ) -> (Block, Block) {
        let header = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let iv = self.b.use_var(idx);
        let go = self.b.ins().icmp(IntCC::UnsignedLessThan, iv, n);
        self.b.ins().brif(go, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        for (j, base) in bases.iter().enumerate() {
            let (Some(base), Some(dt)) = (base, dtypes.get(j).copied().flatten()) else {
                continue;
            };
            let addr = self.elem_addr(*base, iv, dt.itemsize());
            let v = self.load_elem(dt, addr);
            self.b.def_var(vars[j], v);
        }
        self.param_vars = Some(vars);
        (header, exit)
    }

    /// Loads every element-wise parameter: buffers' current elements, scalars once (before the
    /// loop). Returns the parameter variables, the element count and the buffer bases.
    #[allow(clippy::type_complexity)]
    fn loop_params(
        &mut self,
        p: &Program,
        dtypes: &[Option<DType>],
    ) -> Result<(Vec<Variable>, ir::Value, Vec<Option<ir::Value>>), CompileError> {
        let tf = MemFlagsData::trusted();
        let i64t = types::I64;
        let n = self.b.ins().load(i64t, tf, self.args_ptr, 0);
        let mut vars = Vec::with_capacity(p.sig.len());
        let mut bases = Vec::with_capacity(p.sig.len());
        for (j, k) in p.sig.iter().enumerate() {
            let PKind::Scalar(ty) = k else {
                return Err(CompileError::Unsupported(
                    "buffer parameter in an element-wise kernel".into(),
                ));
            };
            let var = self.b.declare_var(cl_ty(*ty));
            let off = 8 * (j as i32 + 1);
            match dtypes.get(j).copied().flatten() {
                Some(_) => bases.push(Some(self.b.ins().load(self.ptr, tf, self.args_ptr, off))),
                None => {
                    let bits = self.b.ins().load(i64t, tf, self.args_ptr, off);
                    let v = match ty {
                        Ty::I64 => bits,
                        Ty::F64 => self.b.ins().bitcast(types::F64, MemFlagsData::new(), bits),
                        Ty::Bool => self.b.ins().icmp_imm_s(IntCC::NotEqual, bits, 0),
                    };
                    self.b.def_var(var, v);
                    bases.push(None);
                }
            }
            vars.push(var);
        }
        Ok((vars, n, bases))
    }

    /// The address of element `iv` (an i64 index) of a buffer.
    fn elem_addr(&mut self, base: ir::Value, iv: ir::Value, itemsize: usize) -> ir::Value {
        let off = self.b.ins().imul_imm_s(iv, itemsize as i64);
        let off = if self.ptr == types::I64 {
            off
        } else {
            self.b.ins().ireduce(self.ptr, off)
        };
        self.b.ins().iadd(base, off)
    }

    /// The one-pass `sum` loop around the root body (see [`Shape::Sum`]).
    fn sum_loop(
        &mut self,
        p: &Program,
        dtypes: &[Option<DType>],
        fast: bool,
        out_ptr: ir::Value,
        done: Block,
    ) -> Result<BodyOut, CompileError> {
        let i64t = types::I64;
        let ty = p.ty();
        let (vars, n, bases) = self.loop_params(p, dtypes)?;
        let idx = self.b.declare_var(i64t);
        let zero = self.b.ins().iconst(i64t, 0);
        self.b.def_var(idx, zero);
        let acc = self
            .b
            .declare_var(if ty == Ty::F64 { types::F64 } else { i64t });
        // CPython's `sum` starts from int 0; 0 + x == 0.0 + x for every float x
        let init = match ty {
            Ty::F64 => self.b.ins().f64const(0.0),
            _ => self.b.ins().iconst(i64t, 0),
        };
        self.b.def_var(acc, init);
        if ty == Ty::F64 && vector_ok(p, dtypes) {
            self.block_sum(p, dtypes, fast, &vars, &bases, n, idx, acc)?;
        }
        let (header, exit) = self.element_loop(n, idx, vars, &bases, dtypes);
        let ctl = self.body(&p.root)?;
        let a = self.b.use_var(acc);
        let s = match ty {
            Ty::F64 => self.b.ins().fadd(a, ctl.value),
            _ => {
                let v = self.value_bits(ctl.value, ty);
                let (s, of) = self.b.ins().sadd_overflow(a, v);
                self.fail_if(of, status::INT_OVERFLOW);
                s
            }
        };
        self.b.def_var(acc, s);
        let iv = self.b.use_var(idx);
        let next = self.b.ins().iadd_imm_s(iv, 1);
        self.b.def_var(idx, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        let total = self.b.use_var(acc);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), total, out_ptr, 0);
        let ok = self.b.ins().iconst(types::I32, i64::from(status::OK));
        self.b.ins().jump(done, &[BlockArg::from(ok)]);
        Ok(ctl)
    }

    /// The straight-line float body over whole blocks of elements, before the scalar loop
    /// takes the rest: leaves `idx` at the first element left and the running sum in `acc`.
    ///
    /// Fast-math: `SUM_ACCS` `f64x2` accumulators, combined pairwise at the end. Exact: the
    /// body unrolled `EXACT_UNROLL` times, each value added to `acc` in element order (the
    /// same additions as the scalar loop, with less loop overhead per element).
    #[allow(clippy::too_many_arguments)]
    fn block_sum(
        &mut self,
        p: &Program,
        dtypes: &[Option<DType>],
        fast: bool,
        vars: &[Variable],
        bases: &[Option<ir::Value>],
        n: ir::Value,
        idx: Variable,
        acc: Variable,
    ) -> Result<(), CompileError> {
        let (vt, lanes, per) = if fast {
            (types::F64X2, LANES, SUM_ACCS)
        } else {
            (types::F64, 1, EXACT_UNROLL)
        };
        let step = (lanes * per) as i64;
        let fl = MemFlagsData::new().with_notrap();
        // broadcast scalars once
        let mut splats = Vec::with_capacity(vars.len());
        for (j, var) in vars.iter().enumerate() {
            splats.push(if bases[j].is_none() {
                let s = self.b.use_var(*var);
                Some(if fast { self.b.ins().splat(vt, s) } else { s })
            } else {
                None
            });
        }
        let zero = self.b.ins().f64const(0.0);
        let vzero = if fast {
            self.b.ins().splat(vt, zero)
        } else {
            zero
        };
        let accs: Vec<Variable> = if fast {
            (0..SUM_ACCS)
                .map(|_| {
                    let v = self.b.declare_var(vt);
                    self.b.def_var(v, vzero);
                    v
                })
                .collect()
        } else {
            vec![acc; EXACT_UNROLL]
        };
        let main = self.b.ins().band_imm_s(n, -step);
        // tested at the bottom: one branch per block of elements
        let body = self.b.create_block();
        let exit = self.b.create_block();
        let iv0 = self.b.use_var(idx);
        let go = self.b.ins().icmp(IntCC::UnsignedLessThan, iv0, main);
        self.b.ins().brif(go, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        let iv = self.b.use_var(idx);
        // one address per buffer and iteration; the block's loads use immediate offsets
        let mut ptrs = Vec::with_capacity(bases.len());
        for (j, base) in bases.iter().enumerate() {
            ptrs.push(match (base, dtypes.get(j).copied().flatten()) {
                (Some(base), Some(dt)) => Some((self.elem_addr(*base, iv, dt.itemsize()), dt)),
                _ => None,
            });
        }
        for (u, a) in accs.iter().enumerate() {
            let mut params = Vec::with_capacity(vars.len());
            for (j, ptr) in ptrs.iter().enumerate() {
                params.push(match ptr {
                    Some((addr, dt)) => {
                        let off = (u * lanes * dt.itemsize()) as i32;
                        self.b.ins().load(vt, fl, *addr, off)
                    }
                    None => splats[j].unwrap_or(vzero),
                });
            }
            let mut locals = HashMap::new();
            if let Some((s, n)) = &p.root.bind {
                let v = self.vexpr(n, &params, &mut locals, vt)?;
                locals.insert(*s, v);
            }
            let v = self.vexpr(&p.root.value, &params, &mut locals, vt)?;
            let av = self.b.use_var(*a);
            let s = self.b.ins().fadd(av, v);
            self.b.def_var(*a, s);
        }
        let next = self.b.ins().iadd_imm_s(iv, step);
        self.b.def_var(idx, next);
        let again = self.b.ins().icmp(IntCC::UnsignedLessThan, next, main);
        self.b.ins().brif(again, body, &[], exit, &[]);
        self.b.switch_to_block(exit);
        if !fast {
            return Ok(());
        }
        // pairwise: (a0 + a1) + (a2 + a3), then the two lanes
        let mut vs: Vec<ir::Value> = accs.iter().map(|a| self.b.use_var(*a)).collect();
        while vs.len() > 1 {
            vs = vs
                .chunks(2)
                .map(|c| match c {
                    [x, y] => self.b.ins().fadd(*x, *y),
                    [x] => *x,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
        }
        let lo = self.b.ins().extractlane(vs[0], 0);
        let hi = self.b.ins().extractlane(vs[0], 1);
        let t = self.b.ins().fadd(lo, hi);
        self.b.def_var(acc, t);
        Ok(())
    }

    /// A straight-line evaluation of a node accepted by [`vector_node_ok`], as `vt` (`f64x2`
    /// or `f64`); an error in any lane exits.
    fn vexpr(
        &mut self,
        n: &Node,
        params: &[ir::Value],
        locals: &mut HashMap<usize, ir::Value>,
        vt: ir::Type,
    ) -> Result<ir::Value, CompileError> {
        let unsupported = || CompileError::Unsupported("vector body".into());
        Ok(match &n.k {
            K::Const(Value::F64(c)) => self.fconst_as(*c, vt),
            K::Param(j) => *params.get(*j).ok_or_else(unsupported)?,
            K::Local(s) => *locals.get(s).ok_or_else(unsupported)?,
            K::Let(s, v, body) => {
                let v = self.vexpr(v, params, locals, vt)?;
                locals.insert(*s, v);
                self.vexpr(body, params, locals, vt)?
            }
            K::Un(op, a) => {
                let a = self.vexpr(a, params, locals, vt)?;
                match op {
                    Un::NegF => self.b.ins().fneg(a),
                    Un::AbsF => self.b.ins().fabs(a),
                    Un::Math(MathFn::Sqrt) => {
                        let z = self.fconst_as(0.0, vt);
                        let neg = self.b.ins().fcmp(FloatCC::LessThan, a, z);
                        let any = self.any_lane(neg, vt);
                        self.fail_if(any, status::DOMAIN);
                        self.b.ins().sqrt(a)
                    }
                    // fastmath's `x ** 0.5`: as `pow_half`, except that `-inf` (whose root
                    // Python gives as `inf`) is an error too, which only sends the call back
                    // to Python
                    Un::PowHalf => {
                        let z = self.fconst_as(0.0, vt);
                        let neg = self.b.ins().fcmp(FloatCC::LessThan, a, z);
                        let any = self.any_lane(neg, vt);
                        self.fail_if(any, status::DOMAIN);
                        let r = self.b.ins().sqrt(a);
                        // sqrt(-0.0) is -0.0 but (-0.0) ** 0.5 is 0.0
                        self.b.ins().fadd(r, z)
                    }
                    Un::Square => {
                        let r = self.b.ins().fmul(a, a);
                        let inf = self.fconst_as(f64::INFINITY, vt);
                        let ar = self.b.ins().fabs(r);
                        let aa = self.b.ins().fabs(a);
                        let r_inf = self.b.ins().fcmp(FloatCC::Equal, ar, inf);
                        let a_fin = self.b.ins().fcmp(FloatCC::LessThan, aa, inf);
                        let bad = self.b.ins().band(r_inf, a_fin);
                        let any = self.any_lane(bad, vt);
                        self.fail_if(any, status::FLOAT_OVERFLOW);
                        r
                    }
                    _ => return Err(unsupported()),
                }
            }
            K::Bin(op, a, b) => {
                let a = self.vexpr(a, params, locals, vt)?;
                let b = self.vexpr(b, params, locals, vt)?;
                match op {
                    Bin::AddF => self.b.ins().fadd(a, b),
                    Bin::SubF => self.b.ins().fsub(a, b),
                    Bin::MulF => self.b.ins().fmul(a, b),
                    Bin::DivF => {
                        let z = self.fconst_as(0.0, vt);
                        let is_zero = self.b.ins().fcmp(FloatCC::Equal, b, z);
                        let any = self.any_lane(is_zero, vt);
                        self.fail_if(any, status::ZERO_DIV);
                        self.b.ins().fdiv(a, b)
                    }
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        })
    }

    /// A float constant as `vt` (`f64`, or splat across `f64x2`).
    fn fconst_as(&mut self, c: f64, vt: ir::Type) -> ir::Value {
        let c = self.b.ins().f64const(c);
        if vt.is_vector() {
            self.b.ins().splat(vt, c)
        } else {
            c
        }
    }

    /// Whether any lane of a comparison holds (the comparison itself for scalars).
    fn any_lane(&mut self, mask: ir::Value, vt: ir::Type) -> ir::Value {
        if vt.is_vector() {
            self.b.ins().vany_true(mask)
        } else {
            mask
        }
    }

    fn load_elem(&mut self, dtype: DType, addr: ir::Value) -> ir::Value {
        // buffers may be unaligned: plain (non-`aligned`) flags; in bounds, so no trap
        let fl = MemFlagsData::new().with_notrap();
        let i = types::I64;
        match dtype {
            DType::F64 => self.b.ins().load(types::F64, fl, addr, 0),
            DType::F32 => {
                let v = self.b.ins().load(types::F32, fl, addr, 0);
                self.b.ins().fpromote(types::F64, v)
            }
            DType::I8 => self.b.ins().sload8(i, fl, addr, 0),
            DType::I16 => self.b.ins().sload16(i, fl, addr, 0),
            DType::I32 => self.b.ins().sload32(fl, addr, 0),
            DType::I64 => self.b.ins().load(i, fl, addr, 0),
            DType::U8 => self.b.ins().uload8(i, fl, addr, 0),
            DType::U16 => self.b.ins().uload16(i, fl, addr, 0),
            DType::U32 => self.b.ins().uload32(fl, addr, 0),
            DType::U64 => {
                let v = self.b.ins().load(i, fl, addr, 0);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, v, 0);
                self.fail_if(neg, status::INT_OVERFLOW);
                v
            }
            DType::Bool => {
                let v = self.b.ins().load(types::I8, fl, addr, 0);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
        }
    }

    /// Filter, body, accumulate; ends in `next` (continue) or `exit` (stop).
    fn loop_body(
        &mut self,
        l: &Loop,
        ty: Ty,
        acc: Variable,
        next: Block,
        exit: Block,
    ) -> Result<(), CompileError> {
        if let Some(f) = &l.filter {
            let c = self.expr(f)?;
            let go = self.b.create_block();
            self.b.ins().brif(c, go, &[], next, &[]);
            self.b.switch_to_block(go);
        }
        let out = self.body(&l.body)?;
        let v = out.value;
        match l.reducer {
            Reducer::Sum => {
                let a = self.b.use_var(acc);
                let s = if ty == Ty::F64 {
                    self.b.ins().fadd(a, v)
                } else {
                    let (s, of) = self.b.ins().sadd_overflow(a, v);
                    self.fail_if(of, status::INT_OVERFLOW);
                    s
                };
                self.b.def_var(acc, s);
                self.b.ins().jump(next, &[]);
            }
            Reducer::Any | Reducer::All => {
                let hit = self.b.create_block();
                let is_any = l.reducer == Reducer::Any;
                if is_any {
                    self.b.ins().brif(v, hit, &[], next, &[]);
                } else {
                    self.b.ins().brif(v, next, &[], hit, &[]);
                }
                self.b.switch_to_block(hit);
                let r = self.b.ins().iconst(types::I8, i64::from(is_any));
                self.b.def_var(acc, r);
                self.b.ins().jump(exit, &[]);
            }
        }
        if let Some((ctl, fired)) = out.fired {
            self.b.switch_to_block(fired);
            let target = match ctl {
                Control::Break => exit,
                Control::Continue => next,
            };
            self.b.ins().jump(target, &[]);
        }
        Ok(())
    }
}
