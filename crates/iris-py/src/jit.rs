//! `@iris.offload`: functions compiled by `iris-jit`, called from the interpreter directly
//! (buffer calls and loops with the interpreter released). Python lowers the function's
//! source (see `iris/jit.py`); a call the JIT cannot run exactly runs the original function.

use iris_jit::{
    Arg, CompileOptions, CompiledExpr, DType, Jit, JitError, Reducer, ReturnType, Value, VecOut,
};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyTuple};
use pyo3::{PyTraverseError, PyVisit, ffi};

use crate::errors::{Kind, err};

/// The element type of a buffer format (`struct` syntax, native sizes).
pub(crate) fn dtype_of(format: &str, itemsize: usize) -> Option<DType> {
    let code = format.trim_start_matches(['@', '=', '<']).chars().next()?;
    let signed = |n: usize| match n {
        1 => Some(DType::I8),
        2 => Some(DType::I16),
        4 => Some(DType::I32),
        8 => Some(DType::I64),
        _ => None,
    };
    let unsigned = |n: usize| match n {
        1 => Some(DType::U8),
        2 => Some(DType::U16),
        4 => Some(DType::U32),
        8 => Some(DType::U64),
        _ => None,
    };
    match code {
        'd' if itemsize == 8 => Some(DType::F64),
        'f' if itemsize == 4 => Some(DType::F32),
        '?' if itemsize == 1 => Some(DType::Bool),
        'b' | 'h' | 'i' | 'l' | 'q' | 'n' => signed(itemsize),
        'B' | 'H' | 'I' | 'L' | 'Q' | 'N' | 'c' => unsigned(itemsize),
        _ => None,
    }
}

fn fallback(why: impl Into<String>) -> PyErr {
    err(Kind::JitFallback, why)
}

fn jit_err(e: JitError) -> PyErr {
    match e {
        JitError::IterationCap { .. } => err(Kind::JitLimit, e.to_string()),
        JitError::Compile(_) => err(Kind::JitCompile, e.to_string()),
        other => fallback(other.to_string()),
    }
}

/// An argument held for the duration of a call: a scalar or a contiguous buffer.
enum Held {
    Scalar(Value),
    Buffer(PyUntypedBuffer, DType),
}

/// Why a call did not produce a value.
enum Miss {
    /// Python must run this call (an error Python raises, a big int, an unsupported argument).
    Fallback(String),
    /// A real error (the iteration cap, a failed conversion).
    Raise(PyErr),
}

impl From<PyErr> for Miss {
    fn from(e: PyErr) -> Self {
        Self::Raise(e)
    }
}

fn miss(e: JitError) -> Miss {
    match e {
        JitError::IterationCap { .. } | JitError::Compile(_) => Miss::Raise(jit_err(e)),
        other => Miss::Fallback(other.to_string()),
    }
}

/// A scalar argument (`bool`, an `int` within 64 bits, a `float` or a subclass), exact `float`
/// first: that is the common case and needs no call into the interpreter.
fn scalar(obj: &Bound<'_, PyAny>) -> Result<Option<Value>, Miss> {
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(Some(Value::F64(f.value())));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Some(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(v) => Ok(Some(Value::I64(v))),
            Err(_) => Err(Miss::Fallback("an int beyond 64 bits".into())),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Some(Value::F64(f.value())));
    }
    Ok(None)
}

fn hold(obj: &Bound<'_, PyAny>) -> Result<Held, Miss> {
    if let Some(v) = scalar(obj)? {
        return Ok(Held::Scalar(v));
    }
    let buf =
        PyUntypedBuffer::get(obj).map_err(|_| Miss::Fallback("not a scalar or a buffer".into()))?;
    if !buf.is_c_contiguous() {
        return Err(Miss::Fallback("a non-contiguous buffer".into()));
    }
    match dtype_of(&buf.format().to_string_lossy(), buf.item_size()) {
        Some(d) => Ok(Held::Buffer(buf, d)),
        None => Err(Miss::Fallback("an unsupported buffer format".into())),
    }
}

/// Scalar arguments kept on the stack: calls with more fall back to the general path.
const INLINE_ARGS: usize = 8;

/// A compiled `@iris.offload` function. `@offload` returns this object itself (with the
/// original's name, docs and `__wrapped__`), so a call goes from the interpreter straight to
/// native code; calls the JIT cannot run exactly run the original Python function.
#[pyclass(name = "JitFunction", module = "iris.jit", frozen, dict, weakref)]
pub(crate) struct PyJitFunction {
    /// The vectorcall entry (PEP 590): the type's `tp_vectorcall_offset` points here, so the
    /// interpreter calls [`vectorcall`] with its argument array, without building a tuple.
    vectorcall: ffi::vectorcallfunc,
    expr: CompiledExpr,
    /// The Python function that runs a call the JIT cannot (`None`: raise `JitFallback`).
    fallback: Option<Py<PyAny>>,
    /// `Some`: the expression is element-wise and the call reduces its values over buffers.
    reduce: Option<Reducer>,
    /// Release the interpreter during scalar calls (always during buffer calls).
    release: bool,
}

impl PyJitFunction {
    /// The common call: exact `float` (or small `int`) arguments only, the default shape, a
    /// result. `None` leaves the call to the general path (which also handles every error).
    ///
    /// # Safety
    /// The interpreter must be attached and `argv` must hold valid object pointers.
    unsafe fn fast_call(&self, argv: &[*mut ffi::PyObject]) -> Option<*mut ffi::PyObject> {
        if self.reduce.is_some() || self.release || argv.len() > INLINE_ARGS {
            return None;
        }
        let mut floats = [0.0f64; INLINE_ARGS];
        let mut all_floats = true;
        for (slot, &p) in floats.iter_mut().zip(argv) {
            // SAFETY: `p` is a valid object (caller)
            if unsafe { ffi::Py_TYPE(p) } != &raw mut ffi::PyFloat_Type {
                all_floats = false;
                break;
            }
            // SAFETY: `p` is an exact float
            *slot = unsafe { ffi::PyFloat_AS_DOUBLE(p) };
        }
        let r = if all_floats {
            self.expr.call_f64s(&floats[..argv.len()]).ok()?
        } else {
            // SAFETY: forwarded from this function's contract
            unsafe { self.fast_mixed(argv)? }
        };
        // SAFETY: the interpreter is attached (caller); each returns a new reference or NULL
        // with an exception set, which is what a vectorcall returns.
        Some(unsafe {
            match r {
                Value::F64(f) => ffi::PyFloat_FromDouble(f),
                Value::I64(i) => ffi::PyLong_FromLongLong(i),
                Value::Bool(b) => ffi::PyBool_FromLong(i64::from(b) as std::ffi::c_long),
            }
        })
    }

    /// [`Self::fast_call`] with exact floats and ints (within 64 bits) mixed.
    ///
    /// # Safety
    /// As for [`Self::fast_call`].
    unsafe fn fast_mixed(&self, argv: &[*mut ffi::PyObject]) -> Option<Value> {
        let mut vals = [Value::F64(0.0); INLINE_ARGS];
        for (slot, &p) in vals.iter_mut().zip(argv) {
            // SAFETY: `p` is a valid object (caller); reading its type and, for an exact float
            // or int, its value needs nothing more.
            unsafe {
                let tp = ffi::Py_TYPE(p);
                if tp == &raw mut ffi::PyFloat_Type {
                    *slot = Value::F64(ffi::PyFloat_AS_DOUBLE(p));
                } else if tp == &raw mut ffi::PyLong_Type {
                    let mut overflow = 0;
                    let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
                    if overflow != 0 {
                        return None;
                    }
                    *slot = Value::I64(v);
                } else {
                    return None;
                }
            }
        }
        self.expr.call_scalar(&vals[..argv.len()]).ok()
    }

    /// The general call (tuple and keywords), shared by `tp_call` and the vectorcall entry.
    fn call_general<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let why = if kwargs.is_none_or(|k| k.is_empty()) {
            match self.run(py, args) {
                Ok(v) => return Ok(v),
                Err(Miss::Raise(e)) => return Err(e),
                Err(Miss::Fallback(why)) => why,
            }
        } else {
            "keyword arguments".to_owned()
        };
        match &self.fallback {
            Some(f) => f.bind(py).call(args, kwargs),
            None => Err(fallback(why)),
        }
    }

    fn run<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> Result<Bound<'py, PyAny>, Miss> {
        let n = args.len();
        if n <= INLINE_ARGS {
            // the scalar fast path: no allocation before the result
            let mut vals = [Value::F64(0.0); INLINE_ARGS];
            let mut all_scalar = true;
            for (slot, a) in vals.iter_mut().zip(args.iter_borrowed()) {
                match scalar(&a)? {
                    Some(v) => *slot = v,
                    None => {
                        all_scalar = false;
                        break;
                    }
                }
            }
            if all_scalar {
                if self.reduce.is_some() {
                    return Err(Miss::Fallback("a reduction over scalars".into()));
                }
                let expr = &self.expr;
                let vals = &vals[..n];
                let r = if self.release {
                    py.detach(|| expr.call_scalar(vals))
                } else {
                    expr.call_scalar(vals)
                };
                return value_to_py(py, r.map_err(miss)?).map_err(Miss::Raise);
            }
        }
        let held = args
            .iter()
            .map(|a| hold(&a))
            .collect::<Result<Vec<_>, Miss>>()?;
        let views: Vec<Arg<'_>> = held
            .iter()
            .map(|h| match h {
                Held::Scalar(v) => Arg::Scalar(*v),
                Held::Buffer(b, d) => Arg::Buffer {
                    // SAFETY: the buffer is held (alive, its memory pinned by the exporter)
                    // until the call returns, and is C-contiguous with `len_bytes()` bytes;
                    // the JIT only reads it.
                    bytes: unsafe {
                        std::slice::from_raw_parts(b.buf_ptr().cast::<u8>(), b.len_bytes())
                    },
                    dtype: *d,
                },
            })
            .collect();
        let expr = &self.expr;
        if !held.iter().any(|h| matches!(h, Held::Buffer(..))) {
            // scalars beyond the inline count
            if self.reduce.is_some() {
                return Err(Miss::Fallback("a reduction over scalars".into()));
            }
            let vals: Vec<Value> = views
                .iter()
                .filter_map(|a| match a {
                    Arg::Scalar(v) => Some(*v),
                    Arg::Buffer { .. } => None,
                })
                .collect();
            let r = if self.release {
                py.detach(|| expr.call_scalar(&vals))
            } else {
                expr.call_scalar(&vals)
            };
            return value_to_py(py, r.map_err(miss)?).map_err(Miss::Raise);
        }
        if let Some(reducer) = self.reduce {
            // Python reduces the array `expr` built with the buffers' own arithmetic; for f64
            // that is IEEE arithmetic, element by element, exactly what the JIT computes. Other
            // dtypes have their own (numpy's int32 wraps, float32 rounds to float32, bool + bool
            // is `or`): Python runs those.
            if held
                .iter()
                .any(|h| matches!(h, Held::Buffer(_, d) if *d != DType::F64))
            {
                return Err(Miss::Fallback("a reduction over a non-f64 buffer".into()));
            }
            let r = py.detach(|| expr.reduce(reducer, &views));
            return value_to_py(py, r.map_err(miss)?).map_err(Miss::Raise);
        }
        // Buffers used as containers (`sum(v for v in x)`) give a scalar; otherwise the
        // expression maps element-wise.
        let r = py.detach(|| {
            if !expr.iterates_buffers() {
                return expr.call_vector(&views).map(Err);
            }
            match expr.call(&views) {
                Ok(r) => Ok(Ok(r)),
                Err(JitError::IterationCap { cap }) => Err(JitError::IterationCap { cap }),
                Err(_) => expr.call_vector(&views).map(Err),
            }
        });
        match r.map_err(miss)? {
            Ok(scalar) => value_to_py(py, scalar).map_err(Miss::Raise),
            Err(vector) => vec_to_py(py, vector).map_err(Miss::Raise),
        }
    }
}

#[pymethods]
impl PyJitFunction {
    /// Calls the compiled code. A call the JIT cannot run exactly as Python would (an error
    /// Python raises, a big integer, an unsupported argument, keyword arguments) runs the
    /// original function, or raises `JitFallback` when there is none.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call_general(py, args, kwargs)
    }

    /// Binds like a function: as a class attribute, an instance's access gives a method.
    fn __get__<'py>(
        slf: Bound<'py, Self>,
        obj: Option<Bound<'py, PyAny>>,
        _owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match obj {
            Some(o) if !o.is_none() => {
                let py = slf.py();
                py.import("types")?.getattr("MethodType")?.call1((slf, o))
            }
            _ => Ok(slf.into_any()),
        }
    }

    /// Pickles by reference, like the function it replaces (`module.qualname`).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.getattr("__qualname__")
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let name = slf
            .getattr("__qualname__")
            .and_then(|n| n.extract::<String>())
            .unwrap_or_else(|_| "<expression>".to_owned());
        format!(
            "<iris.jit.JitFunction {name}({})>",
            slf.get().expr.params().join(", ")
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(f) = &self.fallback {
            visit.call(f)?;
        }
        Ok(())
    }

    /// The parameters, in order.
    #[getter]
    fn params(&self) -> Vec<String> {
        self.expr.params().to_vec()
    }

    /// Specializations compiled so far (one per call shape).
    #[getter]
    fn specializations(&self) -> usize {
        self.expr.specializations()
    }

    /// Wall time of the initial compilation, in seconds.
    #[getter]
    fn compile_time(&self) -> f64 {
        self.expr.compile_time().as_secs_f64()
    }
}

/// The vectorcall entry of `JitFunction` instances.
///
/// # Safety
/// Called by the interpreter (attached) per PEP 590: `callable` is a `JitFunction`, `args`
/// holds `PyVectorcall_NARGS(nargsf)` positional arguments followed by one value per name in
/// the `kwnames` tuple (or NULL).
unsafe extern "C" fn vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: per the contract above; `callable` stays alive for the call (the caller holds a
    // reference) and is a `JitFunction`, whose Rust value is frozen (shared access only).
    unsafe {
        let n = ffi::PyVectorcall_NARGS(nargsf) as usize;
        let nkw = if kwnames.is_null() {
            0
        } else {
            ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let argv: &[*mut ffi::PyObject] = if n + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args, n + nkw)
        };
        let py = Python::assume_attached();
        let obj = Borrowed::from_ptr(py, callable).cast_unchecked::<PyJitFunction>();
        let this = obj.get();
        let call = || -> PyResult<*mut ffi::PyObject> {
            if nkw == 0
                && let Some(r) = this.fast_call(argv)
            {
                return Ok(r);
            }
            let pos = PyTuple::new(
                py,
                argv[..n].iter().map(|p| Bound::from_borrowed_ptr(py, *p)),
            )?;
            let kwargs = if nkw == 0 {
                None
            } else {
                let d = PyDict::new(py);
                let names = Bound::from_borrowed_ptr(py, kwnames).cast_into_unchecked::<PyTuple>();
                for (name, v) in names.iter().zip(&argv[n..]) {
                    d.set_item(name, Bound::from_borrowed_ptr(py, *v))?;
                }
                Some(d)
            };
            this.call_general(py, &pos, kwargs.as_ref())
                .map(Bound::into_ptr)
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                e.restore(py);
                std::ptr::null_mut()
            }
            Err(_) => {
                err(Kind::Iris, "panic in a JIT call").restore(py);
                std::ptr::null_mut()
            }
        }
    }
}

/// Points the `JitFunction` type's vectorcall offset at the `vectorcall` field (once: the
/// layout is the same for every instance).
fn enable_vectorcall(obj: &Bound<'_, PyJitFunction>) {
    let field = std::ptr::from_ref(&obj.get().vectorcall) as isize;
    let offset = field - obj.as_ptr() as isize;
    let tp = obj.get_type().as_type_ptr();
    // SAFETY: attached; `tp` is our heap type, not subclassable, whose instances all carry the
    // field at `offset` (and a valid entry in it from construction). Setting the offset before
    // the flag means no call ever reads an unset offset.
    unsafe {
        if (*tp).tp_flags & ffi::Py_TPFLAGS_HAVE_VECTORCALL == 0 {
            (*tp).tp_vectorcall_offset = offset as ffi::Py_ssize_t;
            (*tp).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL;
            ffi::PyType_Modified(tp);
        }
        debug_assert_eq!((*tp).tp_vectorcall_offset, offset as ffi::Py_ssize_t);
    }
}

fn value_to_py(py: Python<'_>, v: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match v {
        Value::F64(f) => PyFloat::new(py, f).into_any(),
        Value::I64(i) => i.into_pyobject(py)?.into_any(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
    })
}

/// An element-wise result as an `array.array` (`"d"` or `"q"`), filled from one bytes copy
/// rather than element by element; bools as a list.
fn vec_to_py(py: Python<'_>, v: VecOut) -> PyResult<Bound<'_, PyAny>> {
    fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
        // SAFETY: only instantiated with f64 and i64 (no padding, every byte initialized);
        // the bytes borrow `v`.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }
    let array = py.import("array")?.getattr("array")?;
    let (code, bytes) = match &v {
        VecOut::F64(v) => ("d", bytes_of(v)),
        VecOut::I64(v) => ("q", bytes_of(v)),
        VecOut::Bool(v) => return Ok(pyo3::types::PyList::new(py, v)?.into_any()),
    };
    let out = array.call1((code,))?;
    out.call_method1("frombytes", (pyo3::types::PyBytes::new(py, bytes),))?;
    Ok(out)
}

/// Compiles `src` (the JIT's Python-syntax language) over `params`. Raises
/// `JitCompileError` if the JIT rejects it. With `reduce` (`"sum"`, `"any"`, `"all"`), calls
/// over buffers reduce the element-wise values of `src`; `fallback` is the Python function run
/// when the JIT cannot run a call; `release_gil` releases the interpreter during scalar calls
/// too (default: only for functions that loop).
#[pyfunction]
#[pyo3(signature = (src, params, return_type=None, fastmath=false, quantum=None, *, reduce=None, fallback=None, release_gil=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn jit_compile<'py>(
    py: Python<'py>,
    src: &str,
    params: Vec<String>,
    return_type: Option<&str>,
    fastmath: bool,
    quantum: Option<bool>,
    reduce: Option<&str>,
    fallback: Option<Py<PyAny>>,
    release_gil: Option<bool>,
) -> PyResult<Bound<'py, PyJitFunction>> {
    let ret = match return_type {
        None => None,
        Some("float") => Some(ReturnType::Float),
        Some("int") => Some(ReturnType::Int),
        Some("bool") => Some(ReturnType::Bool),
        Some(other) => {
            return Err(err(
                Kind::Config,
                format!("return_type must be \"float\", \"int\" or \"bool\", not {other:?}"),
            ));
        }
    };
    let reduce = match reduce {
        None => None,
        Some("sum") => Some(Reducer::Sum),
        Some("any") => Some(Reducer::Any),
        Some("all") => Some(Reducer::All),
        Some(other) => {
            return Err(err(
                Kind::Config,
                format!("reduce must be \"sum\", \"any\" or \"all\", not {other:?}"),
            ));
        }
    };
    let mut opts = CompileOptions::default()
        .fastmath(fastmath)
        .return_type(ret);
    if let Some(q) = quantum {
        opts = opts.quantum(q);
    }
    let names: Vec<&str> = params.iter().map(String::as_str).collect();
    let expr = py
        .detach(|| Jit::compile(src, &names, &opts))
        .map_err(jit_err)?;
    let release = release_gil.unwrap_or_else(|| !expr.is_straight_line());
    let f = Bound::new(
        py,
        PyJitFunction {
            vectorcall,
            expr,
            fallback,
            reduce,
            release,
        },
    )?;
    enable_vectorcall(&f);
    Ok(f)
}

/// Turns the JIT's debug log on (`True`), off (`False`) or back to `IRIS_JIT_LOG` (`None`).
#[pyfunction]
#[pyo3(signature = (enabled=None))]
pub(crate) fn set_jit_logging(enabled: Option<bool>) {
    iris_jit::set_jit_logging(enabled);
}

/// Whether the JIT's debug log is on.
#[pyfunction]
pub(crate) fn get_jit_logging() -> bool {
    iris_jit::jit_logging()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_formats_map_to_dtypes() {
        assert_eq!(dtype_of("d", 8), Some(DType::F64));
        assert_eq!(dtype_of("<f", 4), Some(DType::F32));
        assert_eq!(dtype_of("B", 1), Some(DType::U8));
        assert_eq!(dtype_of("l", 8), Some(DType::I64));
        assert_eq!(dtype_of("i", 4), Some(DType::I32));
        assert_eq!(dtype_of("?", 1), Some(DType::Bool));
        assert_eq!(dtype_of("Zd", 16), None);
        assert_eq!(dtype_of("d", 4), None);
    }
}
