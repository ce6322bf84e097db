//! `@iris.offload`: functions compiled by `iris-jit`, called with the interpreter released.
//! Python lowers the function's source (see `iris/jit.py`); anything the JIT cannot run
//! exactly raises `JitFallback`, and the wrapper runs the original Python function instead.

use iris_jit::{
    Arg, CompileOptions, CompiledExpr, DType, Jit, JitError, ReturnType, Value, VecOut,
};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyTuple};

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

fn hold(obj: &Bound<'_, PyAny>) -> PyResult<Held> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Held::Scalar(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(v) => Ok(Held::Scalar(Value::I64(v))),
            Err(_) => Err(fallback("an int beyond 64 bits")),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Held::Scalar(Value::F64(f.value())));
    }
    let buf = PyUntypedBuffer::get(obj).map_err(|_| fallback("not a scalar or a buffer"))?;
    if !buf.is_c_contiguous() {
        return Err(fallback("a non-contiguous buffer"));
    }
    match dtype_of(&buf.format().to_string_lossy(), buf.item_size()) {
        Some(d) => Ok(Held::Buffer(buf, d)),
        None => Err(fallback("an unsupported buffer format")),
    }
}

/// A compiled `@iris.offload` function.
#[pyclass(name = "JitFunction", module = "iris.jit", frozen)]
pub(crate) struct PyJitFunction {
    expr: CompiledExpr,
}

#[pymethods]
impl PyJitFunction {
    /// Calls the compiled code. Raises `JitFallback` when Python must run the call instead
    /// (an error Python would raise, a big integer, an unsupported argument).
    #[pyo3(signature = (*args))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let held = args
            .iter()
            .map(|a| hold(&a))
            .collect::<PyResult<Vec<_>>>()?;
        let any_buffer = held.iter().any(|h| matches!(h, Held::Buffer(..)));
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
        if !any_buffer {
            let scalars: Vec<Value> = held
                .iter()
                .filter_map(|h| match h {
                    Held::Scalar(v) => Some(*v),
                    Held::Buffer(..) => None,
                })
                .collect();
            let r = py.detach(|| expr.call_scalar(&scalars)).map_err(jit_err)?;
            return value_to_py(py, r);
        }
        // Buffers used as containers (`sum(v for v in x)`) give a scalar; otherwise the
        // expression maps element-wise.
        let r = py.detach(|| match expr.call(&views) {
            Ok(r) => Ok(Ok(r)),
            Err(JitError::IterationCap { cap }) => Err(JitError::IterationCap { cap }),
            Err(_) => expr.call_vector(&views).map(Err),
        });
        match r.map_err(jit_err)? {
            Ok(scalar) => value_to_py(py, scalar),
            Err(vector) => vec_to_py(py, vector),
        }
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
}

fn value_to_py(py: Python<'_>, v: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match v {
        Value::F64(f) => PyFloat::new(py, f).into_any(),
        Value::I64(i) => i.into_pyobject(py)?.into_any(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
    })
}

fn vec_to_py(py: Python<'_>, v: VecOut) -> PyResult<Bound<'_, PyAny>> {
    let array = py.import("array")?.getattr("array")?;
    match v {
        VecOut::F64(v) => array.call1(("d", v)),
        VecOut::I64(v) => array.call1(("q", v)),
        VecOut::Bool(v) => Ok(pyo3::types::PyList::new(py, v)?.into_any()),
    }
}

/// Compiles `src` (the JIT's Python-syntax language) over `params`. Raises
/// `JitCompileError` if the JIT rejects it.
#[pyfunction]
#[pyo3(signature = (src, params, return_type=None, fastmath=false, quantum=None))]
pub(crate) fn jit_compile(
    py: Python<'_>,
    src: &str,
    params: Vec<String>,
    return_type: Option<&str>,
    fastmath: bool,
    quantum: Option<bool>,
) -> PyResult<PyJitFunction> {
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
    Ok(PyJitFunction { expr })
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
