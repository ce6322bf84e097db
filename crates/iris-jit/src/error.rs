//! Error types: one enum for compile-time rejection, one for everything a call can report.

use std::fmt;

/// Why an expression was rejected before any code ran.
///
/// Every variant means "this is outside the JIT's language": the caller falls back to Python.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileError {
    /// The source text is not valid for the supported Python subset.
    Syntax {
        /// Byte offset of the problem in the source.
        pos: usize,
        /// What went wrong.
        msg: String,
    },
    /// A name that is neither a parameter, a local, a loop variable nor a known constant.
    UnknownName(String),
    /// A call to a function the JIT does not know.
    UnknownFunction(String),
    /// A known function called with the wrong number of arguments.
    Arity {
        /// The function.
        func: String,
        /// How many arguments it takes.
        expected: &'static str,
        /// How many it was given.
        got: usize,
    },
    /// A construct the JIT does not support (a misplaced loop-control intrinsic, a buffer used
    /// as a scalar, a literal too large for `i64`, nesting too deep, ...).
    Unsupported(String),
    /// Cranelift failed to compile or link the generated code.
    Codegen(String),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { pos, msg } => write!(f, "syntax error at byte {pos}: {msg}"),
            Self::UnknownName(n) => write!(f, "unknown name `{n}`"),
            Self::UnknownFunction(n) => write!(f, "unknown function `{n}`"),
            Self::Arity {
                func,
                expected,
                got,
            } => write!(f, "`{func}` takes {expected} argument(s), got {got}"),
            Self::Unsupported(m) => write!(f, "unsupported: {m}"),
            Self::Codegen(m) => write!(f, "code generation failed: {m}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Everything [`crate::Jit::compile`] and the call methods of [`crate::CompiledExpr`] can report.
///
/// The runtime variants mirror the exception Python would raise; a caller that gets any of them
/// re-runs the call in Python, which raises the real exception (or, for [`JitError::IntOverflow`]
/// and [`JitError::Inexact`], computes the exact big-integer answer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JitError {
    /// The expression could not be compiled.
    Compile(CompileError),
    /// Division or modulo by zero (`ZeroDivisionError`).
    ZeroDivision,
    /// An integer result does not fit in `i64` (Python would return a big int).
    IntOverflow,
    /// A float result overflowed where Python raises `OverflowError` (`math.exp(1000)`,
    /// `int(inf)`, `2.0 ** 5000`).
    FloatOverflow,
    /// A math domain error (`ValueError`: `math.sqrt(-1)`, `math.log(0)`, `int(nan)`), or a
    /// negative float raised to a fractional power (Python returns a complex number).
    MathDomain,
    /// `range()` got a float argument (`TypeError` in Python).
    FloatRange,
    /// `range()` got a zero step (`ValueError` in Python).
    ZeroStep,
    /// A `*_while` loop ran more iterations than the configured cap.
    IterationCap {
        /// The cap that was hit.
        cap: u64,
    },
    /// The exact Python result cannot be represented by this JIT (for example a negative integer
    /// exponent with a non-constant exponent, or true division of integers beyond 2**53).
    Inexact,
    /// A `break_*`/`continue_*` intrinsic fired outside any reduction.
    ControlOutsideLoop,
    /// Wrong number of arguments for the compiled parameters.
    ArgCount {
        /// Number of parameters.
        expected: usize,
        /// Number of arguments given.
        got: usize,
    },
    /// Buffer arguments of one call have different element counts.
    LengthMismatch {
        /// Element count of the first buffer.
        expected: usize,
        /// Element count of the offending buffer.
        got: usize,
    },
    /// A buffer's byte length is not a multiple of its element size.
    BufferSize {
        /// Byte length.
        len: usize,
        /// Element size.
        itemsize: usize,
    },
    /// An argument of a kind this call does not accept (a buffer in `call_scalar`, or a result
    /// that cannot be converted to the requested return type).
    ArgKind(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compile(e) => write!(f, "compile error: {e}"),
            Self::ZeroDivision => f.write_str("division by zero"),
            Self::IntOverflow => f.write_str("integer result does not fit in 64 bits"),
            Self::FloatOverflow => f.write_str("float overflow"),
            Self::MathDomain => f.write_str("math domain error"),
            Self::FloatRange => f.write_str("range() argument is a float"),
            Self::ZeroStep => f.write_str("range() step must not be zero"),
            Self::IterationCap { cap } => write!(f, "while-loop exceeded {cap} iterations"),
            Self::Inexact => f.write_str("exact result not representable; fall back to Python"),
            Self::ControlOutsideLoop => f.write_str("break/continue intrinsic outside a reduction"),
            Self::ArgCount { expected, got } => {
                write!(f, "expected {expected} argument(s), got {got}")
            }
            Self::LengthMismatch { expected, got } => {
                write!(f, "buffer length mismatch: {expected} vs {got}")
            }
            Self::BufferSize { len, itemsize } => {
                write!(f, "buffer of {len} bytes is not a multiple of {itemsize}")
            }
            Self::ArgKind(m) => write!(f, "bad argument: {m}"),
        }
    }
}

impl std::error::Error for JitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Compile(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CompileError> for JitError {
    fn from(e: CompileError) -> Self {
        Self::Compile(e)
    }
}

/// Status codes shared by the interpreter, the runtime shims and generated code.
pub(crate) mod status {
    pub(crate) const OK: u32 = 0;
    pub(crate) const ZERO_DIV: u32 = 1;
    pub(crate) const INT_OVERFLOW: u32 = 2;
    pub(crate) const FLOAT_OVERFLOW: u32 = 3;
    pub(crate) const DOMAIN: u32 = 4;
    pub(crate) const FLOAT_RANGE: u32 = 5;
    pub(crate) const ZERO_STEP: u32 = 6;
    pub(crate) const ITER_CAP: u32 = 7;
    pub(crate) const INEXACT: u32 = 8;
    pub(crate) const BREAK: u32 = 9;
    pub(crate) const CONTINUE: u32 = 10;
}

/// Maps a non-OK status code to its error; `cap` fills [`JitError::IterationCap`].
pub(crate) fn status_error(code: u32, cap: u64) -> JitError {
    use status::*;
    match code {
        ZERO_DIV => JitError::ZeroDivision,
        INT_OVERFLOW => JitError::IntOverflow,
        FLOAT_OVERFLOW => JitError::FloatOverflow,
        DOMAIN => JitError::MathDomain,
        FLOAT_RANGE => JitError::FloatRange,
        ZERO_STEP => JitError::ZeroStep,
        ITER_CAP => JitError::IterationCap { cap },
        BREAK | CONTINUE => JitError::ControlOutsideLoop,
        _ => JitError::Inexact,
    }
}
