//! Compilation entry points, specializations per call shape, the quantum dispatcher and the
//! scalar / element-wise / reduction executors.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::ast::{Expr, Reducer};
use crate::codegen::{self, Kernel, OptLevel, Shape};
use crate::error::{JitError, status, status_error};
use crate::interp::{self, ArgVal};
use crate::ir::{self, PKind, Program};
use crate::log::jit_log;
use crate::opt;
use crate::parse;
use crate::rt;
use crate::value::{Arg, DType, ReturnType, Ty, Value, VecOut};

/// Default iteration cap of `sum_while` / `any_while` / `all_while`.
pub const DEFAULT_SUM_WHILE_CAP: u64 = 100_000_000;

/// Stack size of compiler threads.
const COMPILE_STACK: usize = 64 << 20;

/// IR nodes up to which a program compiles on the calling thread (its recursion then needs
/// far less stack than any thread has).
const SMALL_PROGRAM: usize = 64;

/// Element count from which element-wise calls use all cores.
const PARALLEL_MIN: usize = 1 << 16;

/// Element count from which one-pass sums use all cores: below it a core sums faster than
/// threads start (a sum reads each element once and writes nothing).
const SUM_PARALLEL_MIN: usize = 1 << 18;

/// Options of [`Jit::compile`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompileOptions {
    /// Allow reassociation of float sums in [`CompiledExpr::reduce`] (lanes, multi-core partial
    /// sums), like numba's `fastmath`; results may then differ within rounding. Off by default:
    /// sums add left to right, bit-identical to CPython 3.11's `sum`.
    pub fastmath: bool,
    /// Quantum speculation: compile one variant per Cranelift optimization level, in parallel,
    /// and let a dispatcher pick the fastest by measured latency. Never changes a result.
    /// Defaults to the `IRIS_JIT_QUANTUM=1` environment variable.
    pub quantum: bool,
    /// Iteration cap of the `*_while` reductions ([`JitError::IterationCap`] beyond it).
    pub sum_while_cap: u64,
    /// Cranelift optimization level (of the single variant when `quantum` is off).
    pub opt_level: OptLevel,
    /// Convert results: `Float` applies `float()`, `Int` applies `int()`, `Bool` applies `bool()`.
    pub return_type: Option<ReturnType>,
    /// Run the optimizer (on by default; it never changes a result).
    pub optimize: bool,
    /// Parameter types of the specialization compiled eagerly (default: `float` for scalar
    /// parameters, an `f64` buffer for parameters iterated with `for v in x`). Calls with other
    /// types compile their own specialization on first use.
    pub param_types: Option<Vec<Ty>>,
    /// Worker threads for large element-wise calls (0: all cores).
    pub threads: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            fastmath: false,
            quantum: std::env::var("IRIS_JIT_QUANTUM").is_ok_and(|v| v == "1"),
            sum_while_cap: DEFAULT_SUM_WHILE_CAP,
            opt_level: OptLevel::Speed,
            return_type: None,
            optimize: true,
            param_types: None,
            threads: 0,
        }
    }
}

impl CompileOptions {
    /// Sets [`CompileOptions::fastmath`].
    pub fn fastmath(mut self, on: bool) -> Self {
        self.fastmath = on;
        self
    }

    /// Sets [`CompileOptions::quantum`].
    pub fn quantum(mut self, on: bool) -> Self {
        self.quantum = on;
        self
    }

    /// Sets [`CompileOptions::sum_while_cap`].
    pub fn sum_while_cap(mut self, cap: u64) -> Self {
        self.sum_while_cap = cap;
        self
    }

    /// Sets [`CompileOptions::opt_level`].
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.opt_level = level;
        self
    }

    /// Sets [`CompileOptions::return_type`].
    pub fn return_type(mut self, ty: Option<ReturnType>) -> Self {
        self.return_type = ty;
        self
    }

    /// Sets [`CompileOptions::optimize`].
    pub fn optimize(mut self, on: bool) -> Self {
        self.optimize = on;
        self
    }

    /// Sets [`CompileOptions::param_types`].
    pub fn param_types(mut self, tys: Option<Vec<Ty>>) -> Self {
        self.param_types = tys;
        self
    }

    /// Sets [`CompileOptions::threads`].
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
}

/// The JIT's entry point.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jit;

impl Jit {
    /// Parses `src` (Python syntax for the supported subset), resolves `params` by name and
    /// compiles the default specialization.
    pub fn compile(
        src: &str,
        params: &[&str],
        opts: &CompileOptions,
    ) -> Result<CompiledExpr, JitError> {
        let r = parse::parse(src)
            .map_err(JitError::from)
            .and_then(|e| Self::compile_expr(&e, params, opts));
        if let Err(e) = &r {
            jit_log!("rejected {src:?}: {e}");
        }
        r
    }

    /// Compiles an AST built programmatically (for example lowered from Python's `ast`).
    pub fn compile_expr(
        expr: &Expr,
        params: &[&str],
        opts: &CompileOptions,
    ) -> Result<CompiledExpr, JitError> {
        let params: Vec<String> = params.iter().map(|p| (*p).to_owned()).collect();
        let mut containers = vec![false; params.len()];
        ir::container_params(expr, &params, &mut containers);
        let sig: Vec<PKind> = match &opts.param_types {
            Some(tys) => {
                if tys.len() != params.len() {
                    return Err(JitError::ArgCount {
                        expected: params.len(),
                        got: tys.len(),
                    });
                }
                tys.iter()
                    .zip(&containers)
                    .map(|(t, c)| {
                        if *c {
                            PKind::Buffer(match t {
                                Ty::F64 => DType::F64,
                                Ty::I64 => DType::I64,
                                Ty::Bool => DType::Bool,
                            })
                        } else {
                            PKind::Scalar(*t)
                        }
                    })
                    .collect()
            }
            None => containers
                .iter()
                .map(|c| {
                    if *c {
                        PKind::Buffer(DType::F64)
                    } else {
                        PKind::Scalar(Ty::F64)
                    }
                })
                .collect(),
        };
        let t0 = Instant::now();
        let ce = CompiledExpr {
            expr: expr.clone(),
            params,
            opts: opts.clone(),
            specs: RwLock::new(Vec::new()),
            last: AtomicUsize::new(usize::MAX),
            scalar: OnceLock::new(),
            all_f64: false,
            iterates: containers.iter().any(|c| *c),
            compile_time: Duration::ZERO,
        };
        let spec = ce.specialize(&sig)?;
        if sig.iter().all(|k| matches!(k, PKind::Scalar(_))) {
            let _ = ce.scalar.set(spec.clone());
        }
        let default_ty = spec.prog.ty();
        let compile_time = t0.elapsed();
        jit_log!(
            "compiled {} variant(s) for {:?} in {compile_time:?} (type {default_ty:?})",
            spec.variants.len(),
            ce.params
        );
        let all_f64 = ce
            .scalar
            .get()
            .is_some_and(|s| s.sig.iter().all(|k| *k == PKind::Scalar(Ty::F64)));
        Ok(CompiledExpr {
            compile_time,
            all_f64,
            ..ce
        })
    }
}

/// Per-variant statistics of the quantum dispatcher.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStats {
    /// Cranelift optimization level of the variant.
    pub opt_level: OptLevel,
    /// Measured (exponentially averaged) latency per call in nanoseconds; 0 before sampling.
    pub latency_ns: u64,
    /// Calls that returned an error status.
    pub failures: u64,
    /// Calls routed to the variant.
    pub calls: u64,
}

struct Variant {
    opt_level: OptLevel,
    kernel: Kernel,
    ewma_ns: AtomicU64,
    failures: AtomicU64,
    calls: AtomicU64,
}

/// Calls between re-sampling rounds of the quantum dispatcher.
const RESAMPLE_EVERY: u64 = 256;

/// One compiled specialization (a call shape): the reference program, the optimized one and
/// its code variants.
struct Spec {
    sig: Vec<PKind>,
    /// Element-wise loop kernels: which parameters are buffers of which dtype.
    map: Option<Vec<Option<DType>>>,
    /// With `map`: the kernel sums the element-wise values in one pass.
    sum: bool,
    reference: Program,
    prog: Program,
    variants: Vec<Variant>,
    calls: AtomicU64,
    best: AtomicUsize,
}

impl Spec {
    /// `true` when this specialization's signature is exactly `args`, all scalars.
    fn takes_scalars(&self, args: &[Value]) -> bool {
        self.sig.len() == args.len()
            && self
                .sig
                .iter()
                .zip(args)
                .all(|(k, v)| *k == PKind::Scalar(v.ty()))
    }

    /// Picks a variant: mostly the fastest, round-robin while warming up and periodically.
    #[inline(always)]
    fn pick(&self) -> (usize, bool) {
        let n = self.variants.len();
        if n == 1 {
            return (0, false);
        }
        // A plain load and store, not a locked add: concurrent calls may lose a count, which
        // only shifts when this sampling schedule samples next, and a scalar call saves the
        // locked instruction (about a sixth of its native cost).
        let c = self.calls.load(Ordering::Relaxed);
        self.calls.store(c.wrapping_add(1), Ordering::Relaxed);
        let warm = (n as u64) * 4;
        if c < warm {
            return ((c % n as u64) as usize, true);
        }
        if c % RESAMPLE_EVERY < n as u64 {
            return ((c % RESAMPLE_EVERY) as usize, true);
        }
        (self.best.load(Ordering::Relaxed), false)
    }

    #[cold]
    fn record(&self, i: usize, ns: u64, failed: bool) {
        let v = &self.variants[i];
        v.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            v.failures.fetch_add(1, Ordering::Relaxed);
        }
        let old = v.ewma_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            ns.max(1)
        } else {
            (old * 3 + ns.max(1)) / 4
        };
        v.ewma_ns.store(new, Ordering::Relaxed);
        let best = (0..self.variants.len())
            .min_by_key(
                |j| match self.variants[*j].ewma_ns.load(Ordering::Relaxed) {
                    0 => u64::MAX,
                    x => x,
                },
            )
            .unwrap_or(0);
        self.best.store(best, Ordering::Relaxed);
    }

    /// Runs `f` with a chosen variant's kernel, timing it when sampling.
    #[inline(always)]
    fn with_kernel<T>(
        &self,
        f: impl FnOnce(&Kernel) -> Result<T, JitError>,
    ) -> Result<T, JitError> {
        let (i, measure) = self.pick();
        let v = &self.variants[i];
        if !measure {
            return f(&v.kernel);
        }
        let t = Instant::now();
        let r = f(&v.kernel);
        self.record(i, t.elapsed().as_nanos() as u64, r.is_err());
        r
    }
}

/// A compiled expression: its specializations (one per call shape seen), each owning the
/// executable memory of its code variants. Send + Sync; calls may run concurrently.
pub struct CompiledExpr {
    expr: Expr,
    params: Vec<String>,
    opts: CompileOptions,
    specs: RwLock<Vec<Arc<Spec>>>,
    /// The call-shape profile: index of the specialization the last call used.
    last: AtomicUsize,
    /// The default specialization when it takes scalars only: scalar calls of that shape
    /// reach it without a lock.
    scalar: OnceLock<Arc<Spec>>,
    /// Whether that specialization takes floats only (see [`CompiledExpr::call_f64s`]).
    all_f64: bool,
    /// Whether some parameter is iterated as a container (`for v in x`, `sum(x)`).
    iterates: bool,
    compile_time: Duration,
}

impl std::fmt::Debug for CompiledExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledExpr")
            .field("params", &self.params)
            .field("specializations", &self.specializations())
            .finish_non_exhaustive()
    }
}

/// How a buffer is read for an element-wise call.
enum Column<'a> {
    Scalar(u64),
    Buffer(&'a [u8], DType),
}

impl Column<'_> {
    /// The element type of a buffer column (`None` for a broadcast scalar).
    fn dtype(&self) -> Option<DType> {
        match self {
            Column::Scalar(_) => None,
            Column::Buffer(_, dt) => Some(*dt),
        }
    }
}

fn elem_bits(bytes: &[u8], dtype: DType, i: usize) -> Result<u64, JitError> {
    let n = dtype.itemsize();
    let at = i * n;
    Ok(match dtype {
        DType::F64 | DType::I64 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_ne_bytes(a)
        }
        _ => dtype.read(bytes, i).ok_or(JitError::IntOverflow)?.to_bits(),
    })
}

fn buffer_len(bytes: &[u8], dtype: DType) -> Result<usize, JitError> {
    let n = dtype.itemsize();
    if !bytes.len().is_multiple_of(n) {
        return Err(JitError::BufferSize {
            len: bytes.len(),
            itemsize: n,
        });
    }
    Ok(bytes.len() / n)
}

#[inline]
fn convert_return(v: Value, rt_: Option<ReturnType>) -> Result<Value, JitError> {
    Ok(match (rt_, v) {
        (None, v) => v,
        (Some(ReturnType::Float), v) => Value::F64(v.as_f64()),
        (Some(ReturnType::Bool), v) => Value::Bool(v.truthy()),
        (Some(ReturnType::Int), Value::F64(x)) => {
            Value::I64(rt::f_to_int(x).map_err(|c| status_error(c, 0))?)
        }
        (Some(ReturnType::Int), Value::Bool(b)) => Value::I64(i64::from(b)),
        (Some(ReturnType::Int), v) => v,
    })
}

fn threads(opt: usize) -> usize {
    if opt > 0 {
        opt
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl CompiledExpr {
    /// Parameter names, in call order.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// Wall time of the initial compilation (parse excluded; lowering, optimization and code
    /// generation of every variant of the default specialization included).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Number of specializations (call shapes) compiled so far.
    pub fn specializations(&self) -> usize {
        self.specs.read().map_or(0, |s| s.len())
    }

    /// The result type for the default specialization, after [`CompileOptions::return_type`].
    pub fn return_type(&self) -> Ty {
        let ty = self
            .specs
            .read()
            .ok()
            .and_then(|s| s.first().map(|s| s.prog.ty()))
            .unwrap_or(Ty::F64);
        match self.opts.return_type {
            None => ty,
            Some(ReturnType::Float) => Ty::F64,
            Some(ReturnType::Int) => Ty::I64,
            Some(ReturnType::Bool) => Ty::Bool,
        }
    }

    /// Number of code variants per specialization (more than one with quantum speculation).
    pub fn variants(&self) -> usize {
        self.variant_stats().len()
    }

    /// Dispatcher statistics of the most recently used specialization's variants.
    pub fn variant_stats(&self) -> Vec<VariantStats> {
        let Ok(specs) = self.specs.read() else {
            return Vec::new();
        };
        let i = self.last.load(Ordering::Relaxed);
        let Some(s) = specs.get(i).or_else(|| specs.first()) else {
            return Vec::new();
        };
        s.variants
            .iter()
            .map(|v| VariantStats {
                opt_level: v.opt_level,
                latency_ns: v.ewma_ns.load(Ordering::Relaxed),
                failures: v.failures.load(Ordering::Relaxed),
                calls: v.calls.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Finds or compiles the specialization for `sig`. The profile check is the fast path.
    fn specialize(&self, sig: &[PKind]) -> Result<Arc<Spec>, JitError> {
        self.specialize_as(sig, None, false)
    }

    fn specialize_as(
        &self,
        sig: &[PKind],
        map: Option<&[Option<DType>]>,
        sum: bool,
    ) -> Result<Arc<Spec>, JitError> {
        let hit = |s: &Spec| s.sig == sig && s.map.as_deref() == map && s.sum == sum;
        let specs = self.specs.read().map_err(|_| JitError::Inexact)?;
        let last = self.last.load(Ordering::Relaxed);
        if let Some(s) = specs.get(last)
            && hit(s)
        {
            return Ok(s.clone());
        }
        if let Some(i) = specs.iter().position(|s| hit(s)) {
            self.last.store(i, Ordering::Relaxed);
            return Ok(specs[i].clone());
        }
        drop(specs);
        if !specs_empty(&self.specs) {
            jit_log!("call-shape profile miss for {sig:?}; specializing");
        }
        let spec = Arc::new(self.build(sig, map, sum)?);
        let mut specs = self.specs.write().map_err(|_| JitError::Inexact)?;
        if let Some(i) = specs.iter().position(|s| hit(s)) {
            self.last.store(i, Ordering::Relaxed);
            return Ok(specs[i].clone());
        }
        specs.push(spec.clone());
        self.last.store(specs.len() - 1, Ordering::Relaxed);
        Ok(spec)
    }

    fn build(
        &self,
        sig: &[PKind],
        map: Option<&[Option<DType>]>,
        sum: bool,
    ) -> Result<Spec, JitError> {
        let reference = ir::lower(&self.expr, &self.params, sig)?;
        let prog = if self.opts.optimize {
            opt::optimize(reference.clone(), self.opts.fastmath)
        } else {
            reference.clone()
        };
        let levels: Vec<OptLevel> = if self.opts.quantum {
            vec![OptLevel::None, OptLevel::Speed, OptLevel::SpeedAndSize]
        } else {
            vec![self.opts.opt_level]
        };
        let cap = self.opts.sum_while_cap;
        let fast = self.opts.fastmath;
        let shape = match map {
            None => Shape::Scalar,
            Some(dtypes) if sum => Shape::Sum { dtypes, fast },
            Some(dtypes) => Shape::Map(dtypes),
        };
        // A single variant of a small program compiles right here: a thread start costs tens of
        // microseconds, and more when the machine is busy. Otherwise each variant compiles on
        // its own thread (in parallel), with a stack large enough for Cranelift and the
        // recursive code generator on the deepest accepted expression.
        let inline = levels.len() == 1 && prog.fits(SMALL_PROGRAM);
        let kernels: Vec<Result<Kernel, crate::error::CompileError>> = if inline {
            vec![codegen::compile(&prog, levels[0], cap, shape)]
        } else {
            std::thread::scope(|s| {
                let hs: Vec<_> = levels
                    .iter()
                    .map(|l| {
                        let prog = &prog;
                        let l = *l;
                        std::thread::Builder::new()
                            .name("iris-jit-compile".into())
                            .stack_size(COMPILE_STACK)
                            .spawn_scoped(s, move || codegen::compile(prog, l, cap, shape))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| match h {
                        Ok(h) => h.join().unwrap_or_else(|_| {
                            Err(crate::error::CompileError::Codegen(
                                "compiler thread panicked".into(),
                            ))
                        }),
                        Err(e) => Err(crate::error::CompileError::Codegen(e.to_string())),
                    })
                    .collect()
            })
        };
        let mut variants = Vec::new();
        for (k, l) in kernels.into_iter().zip(levels) {
            variants.push(Variant {
                opt_level: l,
                kernel: k?,
                ewma_ns: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                calls: AtomicU64::new(0),
            });
        }
        Ok(Spec {
            sig: sig.to_vec(),
            map: map.map(<[Option<DType>]>::to_vec),
            sum,
            reference,
            prog,
            variants,
            calls: AtomicU64::new(0),
            best: AtomicUsize::new(0),
        })
    }

    fn check_arity(&self, n: usize) -> Result<(), JitError> {
        if n != self.params.len() {
            return Err(JitError::ArgCount {
                expected: self.params.len(),
                got: n,
            });
        }
        Ok(())
    }

    /// Signature and argument slots for a call where buffers are containers.
    fn container_call(&self, args: &[Arg<'_>]) -> Result<(Vec<PKind>, Vec<u64>), JitError> {
        self.check_arity(args.len())?;
        let mut sig = Vec::with_capacity(args.len());
        let mut slots = Vec::with_capacity(args.len() * 2);
        for a in args {
            match *a {
                Arg::Scalar(v) => {
                    sig.push(PKind::Scalar(v.ty()));
                    slots.push(v.to_bits());
                }
                Arg::Buffer { bytes, dtype } => {
                    let len = buffer_len(bytes, dtype)?;
                    sig.push(PKind::Buffer(dtype));
                    slots.push(bytes.as_ptr() as u64);
                    slots.push(len as u64);
                }
            }
        }
        Ok((sig, slots))
    }

    /// Whether some parameter is iterated as a container (`for v in x`, `sum(x)`): then buffer
    /// arguments go to [`CompiledExpr::call`]; otherwise they are element-wise
    /// ([`CompiledExpr::call_vector`], [`CompiledExpr::reduce`]).
    pub fn iterates_buffers(&self) -> bool {
        self.iterates
    }

    /// Whether calls of the default specialization run in bounded time: no loop (closed forms
    /// of range sums count as bounded). Callers may then skip releasing an interpreter lock.
    pub fn is_straight_line(&self) -> bool {
        self.specs
            .read()
            .ok()
            .and_then(|s| s.first().map(|s| !s.prog.has_loop()))
            .unwrap_or(false)
    }

    /// Calls with scalar arguments.
    pub fn call_scalar(&self, args: &[Value]) -> Result<Value, JitError> {
        const INLINE: usize = 8;
        if args.len() <= INLINE
            && let Some(spec) = self.scalar.get()
            && spec.takes_scalars(args)
        {
            // the default shape: no lock, no reference count, no allocation
            return self.run_scalar(spec, args);
        }
        if args.len() <= INLINE
            && let Ok(specs) = self.specs.read()
            && let Some(spec) = specs.get(self.last.load(Ordering::Relaxed))
            && spec.map.is_none()
            && spec.takes_scalars(args)
        {
            // profile hit: no allocation on this path
            let spec = spec.clone();
            drop(specs);
            return self.run_scalar(&spec, args);
        }
        let args: Vec<Arg<'_>> = args.iter().map(|v| Arg::Scalar(*v)).collect();
        self.call(&args)
    }

    /// Calls with float arguments: the cheapest call when the default specialization takes
    /// floats (the default): the arguments are the kernel's slots as they are. Same results as
    /// [`CompiledExpr::call_scalar`].
    #[inline]
    pub fn call_f64s(&self, args: &[f64]) -> Result<Value, JitError> {
        if self.all_f64
            && let Some(spec) = self.scalar.get()
            && spec.sig.len() == args.len()
        {
            // SAFETY: f64 and u64 have the same size and alignment, and every bit pattern is
            // a valid u64; the kernel reads float slots as their bits.
            let slots =
                unsafe { std::slice::from_raw_parts(args.as_ptr().cast::<u64>(), args.len()) };
            return self.run_slots(spec, slots);
        }
        let vals: Vec<Value> = args.iter().map(|x| Value::F64(*x)).collect();
        self.call_scalar(&vals)
    }

    /// Runs a scalar specialization whose signature matches `args` (at most 8 of them).
    #[inline]
    fn run_scalar(&self, spec: &Spec, args: &[Value]) -> Result<Value, JitError> {
        let mut slots = [0u64; 8];
        for (s, v) in slots.iter_mut().zip(args) {
            *s = v.to_bits();
        }
        self.run_slots(spec, &slots[..args.len()])
    }

    /// Runs a scalar specialization on slots laid out for its signature.
    #[inline(always)]
    fn run_slots(&self, spec: &Spec, slots: &[u64]) -> Result<Value, JitError> {
        let ty = spec.prog.ty();
        let cap = self.opts.sum_while_cap;
        let v = spec.with_kernel(|k| {
            let mut out = 0u64;
            match k.call(slots, &mut out) {
                status::OK => Ok(Value::from_bits(ty, out)),
                code => Err(status_error(code, cap)),
            }
        })?;
        convert_return(v, self.opts.return_type)
    }

    /// Calls once; buffer arguments are containers iterated by the expression's generators
    /// (`sum(v * v for v in x)`), so the result is one scalar.
    pub fn call(&self, args: &[Arg<'_>]) -> Result<Value, JitError> {
        let (sig, slots) = self.container_call(args)?;
        let spec = self.specialize(&sig)?;
        let ty = spec.prog.ty();
        let cap = self.opts.sum_while_cap;
        let v = spec.with_kernel(|k| {
            let mut out = 0u64;
            match k.call(&slots, &mut out) {
                status::OK => Ok(Value::from_bits(ty, out)),
                code => Err(status_error(code, cap)),
            }
        })?;
        convert_return(v, self.opts.return_type)
    }

    /// Runs the reference interpreter (Python semantics, no optimizer, no native code) on the
    /// same arguments as [`CompiledExpr::call`]: the test oracle.
    pub fn interpret(&self, args: &[Arg<'_>]) -> Result<Value, JitError> {
        let (sig, _) = self.container_call(args)?;
        let spec = self.specialize(&sig)?;
        let vals: Vec<ArgVal<'_>> = args
            .iter()
            .map(|a| match *a {
                Arg::Scalar(v) => ArgVal::Scalar(v),
                Arg::Buffer { bytes, .. } => ArgVal::Buffer(bytes),
            })
            .collect();
        let cap = self.opts.sum_while_cap;
        let v = interp::run(&spec.reference, &vals, cap).map_err(|c| status_error(c, cap))?;
        convert_return(v, self.opts.return_type)
    }

    /// Calls with a specific code variant (index below [`CompiledExpr::variants`]), bypassing
    /// the dispatcher; for differential testing.
    pub fn call_variant(&self, variant: usize, args: &[Arg<'_>]) -> Result<Value, JitError> {
        let (sig, slots) = self.container_call(args)?;
        let spec = self.specialize(&sig)?;
        let k = &spec
            .variants
            .get(variant)
            .ok_or_else(|| JitError::ArgKind(format!("no variant {variant}")))?
            .kernel;
        let mut out = 0u64;
        let v = match k.call(&slots, &mut out) {
            status::OK => Value::from_bits(spec.prog.ty(), out),
            code => return Err(status_error(code, self.opts.sum_while_cap)),
        };
        convert_return(v, self.opts.return_type)
    }

    /// Element-wise columns, common length and the element-wise signature.
    fn columns<'a>(
        &self,
        args: &[Arg<'a>],
    ) -> Result<(Vec<Column<'a>>, usize, Vec<PKind>), JitError> {
        self.check_arity(args.len())?;
        let mut n: Option<usize> = None;
        let mut cols = Vec::with_capacity(args.len());
        let mut sig = Vec::with_capacity(args.len());
        for a in args {
            match *a {
                Arg::Scalar(v) => {
                    cols.push(Column::Scalar(v.to_bits()));
                    sig.push(PKind::Scalar(v.ty()));
                }
                Arg::Buffer { bytes, dtype } => {
                    let len = buffer_len(bytes, dtype)?;
                    match n {
                        None => n = Some(len),
                        Some(m) if m != len => {
                            return Err(JitError::LengthMismatch {
                                expected: m,
                                got: len,
                            });
                        }
                        _ => {}
                    }
                    cols.push(Column::Buffer(bytes, dtype));
                    sig.push(PKind::Scalar(dtype.elem_ty()));
                }
            }
        }
        Ok((cols, n.unwrap_or(1), sig))
    }

    /// Element-wise call: buffers are read element by element (scalars broadcast) and the
    /// results form one column. The loop is compiled; large inputs are split across cores.
    pub fn call_vector(&self, args: &[Arg<'_>]) -> Result<VecOut, JitError> {
        let (cols, n, sig) = self.columns(args)?;
        let (bits, ty) = self.map_bits(&cols, n, &sig, true)?;
        let out_ty = match self.opts.return_type {
            None => ty,
            Some(ReturnType::Float) => Ty::F64,
            Some(ReturnType::Int) => Ty::I64,
            Some(ReturnType::Bool) => Ty::Bool,
        };
        let rt_ = self.opts.return_type;
        let conv = |b: u64| -> Result<u64, JitError> {
            Ok(if rt_.is_some() {
                convert_return(Value::from_bits(ty, b), rt_)?.to_bits()
            } else {
                b
            })
        };
        Ok(match out_ty {
            Ty::F64 => VecOut::F64(
                bits.into_iter()
                    .map(|b| conv(b).map(f64::from_bits))
                    .collect::<Result<_, _>>()?,
            ),
            Ty::I64 => VecOut::I64(
                bits.into_iter()
                    .map(|b| conv(b).map(|b| b as i64))
                    .collect::<Result<_, _>>()?,
            ),
            Ty::Bool => VecOut::Bool(
                bits.into_iter()
                    .map(|b| conv(b).map(|b| b & 1 != 0))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Runs the compiled element-wise loop over all `n` elements (in parallel when large and
    /// `parallel`), returning the raw result bits.
    fn map_bits(
        &self,
        cols: &[Column<'_>],
        n: usize,
        sig: &[PKind],
        parallel: bool,
    ) -> Result<(Vec<u64>, Ty), JitError> {
        let dtypes: Vec<Option<DType>> = cols.iter().map(Column::dtype).collect();
        let spec = self.specialize_as(sig, Some(&dtypes), false)?;
        let cap = self.opts.sum_while_cap;
        let mut bits = vec![0u64; n];
        let nthreads = if parallel {
            threads(self.opts.threads)
        } else {
            1
        };
        spec.with_kernel(|k| {
            let run = |start: usize, out: &mut [u64]| -> Result<(), JitError> {
                let mut slots = Vec::with_capacity(cols.len() + 1);
                slots.push(out.len() as u64);
                for c in cols {
                    slots.push(match c {
                        Column::Scalar(b) => *b,
                        // in bounds: start + out.len() <= n elements of this buffer
                        Column::Buffer(bytes, dt) => bytes[start * dt.itemsize()..].as_ptr() as u64,
                    });
                }
                // the map kernel writes exactly `slots[0] == out.len()` u64s
                match k.call(&slots, out.as_mut_ptr()) {
                    status::OK => Ok(()),
                    code => Err(status_error(code, cap)),
                }
            };
            if n < PARALLEL_MIN || nthreads < 2 {
                return run(0, &mut bits);
            }
            let chunk = n.div_ceil(nthreads);
            let results: Vec<Result<(), JitError>> = std::thread::scope(|s| {
                let hs: Vec<_> = bits
                    .chunks_mut(chunk)
                    .enumerate()
                    .map(|(c, out)| {
                        let run = &run;
                        s.spawn(move || run(c * chunk, out))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or(Err(JitError::Inexact)))
                    .collect()
            });
            // the first failing chunk holds the first failing element
            results.into_iter().collect::<Result<(), _>>()
        })?;
        Ok((bits, spec.prog.ty()))
    }

    /// Reduction over an element-wise call: `sum` / `any` / `all` of the expression's value per
    /// element, with Python's semantics (sum starts from int 0, adds left to right; any/all
    /// short-circuit). A `break_*` intrinsic that fires stops the reduction without the current
    /// element; a `continue_*` skips it. With [`CompileOptions::fastmath`], float sums may be
    /// reassociated (four lanes per core, partial sums across cores).
    pub fn reduce(&self, reducer: Reducer, args: &[Arg<'_>]) -> Result<Value, JitError> {
        let (cols, n, sig) = self.columns(args)?;
        let spec = self.specialize(&sig)?;
        let ty = spec.prog.ty();
        let cap = self.opts.sum_while_cap;
        let has_control = spec.prog.root.control.is_some();
        if reducer == Reducer::Sum && !has_control {
            let v = self.sum_mapped(&cols, n, &sig, ty)?;
            return convert_return(v, self.opts.return_type);
        }
        let parallel = reducer == Reducer::Sum
            && !has_control
            && n >= PARALLEL_MIN
            && (ty != Ty::F64 || self.opts.fastmath);
        let nthreads = if parallel {
            threads(self.opts.threads)
        } else {
            1
        };
        let fast = self.opts.fastmath;
        let v = spec.with_kernel(|k| {
            // Returns the chunk's reduction, or None for a decided any/all or a break.
            let run = |start: usize, end: usize| -> Result<(Value, bool), JitError> {
                let mut slots = vec![0u64; cols.len()];
                let mut acc = interp::reduce_init(reducer, ty);
                let mut lanes = [0.0f64; 4];
                let lane_mode = fast && reducer == Reducer::Sum && ty == Ty::F64;
                for i in start..end {
                    for (s, c) in slots.iter_mut().zip(&cols) {
                        *s = match c {
                            Column::Scalar(b) => *b,
                            Column::Buffer(bytes, dt) => elem_bits(bytes, *dt, i)?,
                        };
                    }
                    let mut r = 0u64;
                    match k.call(&slots, &mut r) {
                        status::OK => {}
                        status::BREAK => {
                            return Ok((finish(acc, lanes, lane_mode), true));
                        }
                        status::CONTINUE => continue,
                        code => return Err(status_error(code, cap)),
                    }
                    let v = Value::from_bits(ty, r);
                    match reducer {
                        Reducer::Sum => match ty {
                            Ty::F64 if lane_mode => lanes[i % 4] += f64::from_bits(r),
                            Ty::F64 => {
                                if let Value::F64(a) = acc {
                                    acc = Value::F64(a + f64::from_bits(r));
                                }
                            }
                            _ => {
                                let add = if ty == Ty::Bool {
                                    (r & 1) as i64
                                } else {
                                    r as i64
                                };
                                if let Value::I64(a) = acc {
                                    acc = Value::I64(
                                        rt::i_add(a, add).map_err(|c| status_error(c, cap))?,
                                    );
                                }
                            }
                        },
                        Reducer::Any if v.truthy() => return Ok((Value::Bool(true), true)),
                        Reducer::All if !v.truthy() => return Ok((Value::Bool(false), true)),
                        _ => {}
                    }
                }
                Ok((finish(acc, lanes, lane_mode), false))
            };
            if nthreads < 2 {
                return run(0, n).map(|r| r.0);
            }
            let chunk = n.div_ceil(nthreads);
            let parts: Vec<Result<(Value, bool), JitError>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .step_by(chunk)
                    .map(|st| {
                        let run = &run;
                        s.spawn(move || run(st, (st + chunk).min(n)))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or(Err(JitError::Inexact)))
                    .collect()
            });
            let mut acc = interp::reduce_init(reducer, ty);
            for p in parts {
                let (v, _) = p?;
                acc = add_partial(acc, v, cap)?;
            }
            Ok(acc)
        })?;
        convert_return(v, self.opts.return_type)
    }
}

impl CompiledExpr {
    /// `sum` in one pass of a compiled loop: left to right on one core (bit-identical to CPython)
    /// unless fastmath, where each core sums a range in `f64x2` accumulators and the partial sums
    /// are added in order. Integer sums are exact either way and use all cores.
    fn sum_mapped(
        &self,
        cols: &[Column<'_>],
        n: usize,
        sig: &[PKind],
        ty: Ty,
    ) -> Result<Value, JitError> {
        let cap = self.opts.sum_while_cap;
        let fast = self.opts.fastmath;
        let dtypes: Vec<Option<DType>> = cols.iter().map(Column::dtype).collect();
        let spec = self.specialize_as(sig, Some(&dtypes), true)?;
        let parallel = n >= SUM_PARALLEL_MIN && (ty != Ty::F64 || fast);
        let nthreads = if parallel {
            threads(self.opts.threads)
        } else {
            1
        };
        let v = spec.with_kernel(|k| {
            let sum_range = |lo: usize, hi: usize| -> Result<u64, JitError> {
                let mut slots = Vec::with_capacity(cols.len() + 1);
                slots.push((hi - lo) as u64);
                for c in cols {
                    slots.push(match c {
                        Column::Scalar(b) => *b,
                        // in bounds: every buffer holds `n >= hi` elements
                        Column::Buffer(bytes, dt) => bytes[lo * dt.itemsize()..].as_ptr() as u64,
                    });
                }
                let mut out = 0u64;
                // the sum kernel reads `hi - lo` elements of each buffer and writes one u64
                match k.call(&slots, &mut out) {
                    status::OK => Ok(out),
                    code => Err(status_error(code, cap)),
                }
            };
            let as_value = |bits: u64| match ty {
                Ty::F64 => Value::F64(f64::from_bits(bits)),
                _ => Value::I64(bits as i64),
            };
            if nthreads < 2 {
                return sum_range(0, n).map(as_value);
            }
            let chunk = n.div_ceil(nthreads);
            let parts: Vec<Result<u64, JitError>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .step_by(chunk)
                    .skip(1)
                    .map(|st| {
                        let f = &sum_range;
                        s.spawn(move || f(st, (st + chunk).min(n)))
                    })
                    .collect();
                // the calling thread sums the first range
                let first = sum_range(0, chunk.min(n));
                std::iter::once(first)
                    .chain(
                        hs.into_iter()
                            .map(|h| h.join().unwrap_or(Err(JitError::Inexact))),
                    )
                    .collect()
            });
            let mut acc = interp::reduce_init(Reducer::Sum, ty);
            // in order, so the first failing range reports the first failing element
            for p in parts {
                acc = add_partial(acc, as_value(p?), cap)?;
            }
            Ok(acc)
        })?;
        Ok(v)
    }
}

fn finish(acc: Value, lanes: [f64; 4], lane_mode: bool) -> Value {
    if lane_mode {
        Value::F64((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
    } else {
        acc
    }
}

fn specs_empty(specs: &RwLock<Vec<Arc<Spec>>>) -> bool {
    specs.read().map_or(true, |s| s.is_empty())
}

// Compiled expressions are shared across threads (element-wise calls fan out over cores).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledExpr>();
};

/// Adds one core's partial sum to the running total (in core order), with Python's integer
/// overflow check.
fn add_partial(acc: Value, part: Value, cap: u64) -> Result<Value, JitError> {
    Ok(match (acc, part) {
        (Value::F64(a), Value::F64(b)) => Value::F64(a + b),
        (Value::I64(a), Value::I64(b)) => {
            Value::I64(rt::i_add(a, b).map_err(|c| status_error(c, cap))?)
        }
        (a, _) => a,
    })
}
