//! Values crossing the API: scalars, typed buffers and element types.

use std::fmt;

/// A scalar value with Python's numeric types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A Python `float`.
    F64(f64),
    /// A Python `int` that fits in 64 bits.
    I64(i64),
    /// A Python `bool`.
    Bool(bool),
}

impl Value {
    /// The static type of the value.
    pub fn ty(self) -> Ty {
        match self {
            Self::F64(_) => Ty::F64,
            Self::I64(_) => Ty::I64,
            Self::Bool(_) => Ty::Bool,
        }
    }

    /// The value as a float (`float(v)` in Python).
    pub fn as_f64(self) -> f64 {
        match self {
            Self::F64(v) => v,
            Self::I64(v) => v as f64,
            Self::Bool(b) => f64::from(u8::from(b)),
        }
    }

    /// Python truthiness.
    pub fn truthy(self) -> bool {
        match self {
            Self::F64(v) => v != 0.0,
            Self::I64(v) => v != 0,
            Self::Bool(b) => b,
        }
    }

    /// Identity on bits (so `NaN` equals `NaN` and `0.0` differs from `-0.0`), used by tests.
    pub fn same(self, other: Self) -> bool {
        match (self, other) {
            (Self::F64(a), Self::F64(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        }
    }

    pub(crate) fn to_bits(self) -> u64 {
        match self {
            Self::F64(v) => v.to_bits(),
            Self::I64(v) => v as u64,
            Self::Bool(b) => u64::from(b),
        }
    }

    pub(crate) fn from_bits(ty: Ty, bits: u64) -> Self {
        match ty {
            Ty::F64 => Self::F64(f64::from_bits(bits)),
            Ty::I64 => Self::I64(bits as i64),
            Ty::Bool => Self::Bool(bits & 1 != 0),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F64(v) => write!(f, "{v:?}"),
            Self::I64(v) => write!(f, "{v}"),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
        }
    }
}

/// Scalar types of the typed IR (`bool < int < float` for promotion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ty {
    /// `bool`
    Bool,
    /// `int` (i64)
    I64,
    /// `float` (f64)
    F64,
}

/// What a compiled expression returns, when forced with [`crate::CompileOptions::return_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnType {
    /// Convert the result with `float()`.
    Float,
    /// The result must be an `int` or `bool` (converted with `int()`); a float is an error.
    Int,
    /// The result's truthiness (`bool()`).
    Bool,
}

/// Element type of a contiguous buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `f64` (`'d'`)
    F64,
    /// `f32` (`'f'`)
    F32,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `bool` (one byte, nonzero is true)
    Bool,
}

impl DType {
    /// All element types.
    pub const ALL: [DType; 11] = [
        Self::F64,
        Self::F32,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::U8,
        Self::U16,
        Self::U32,
        Self::U64,
        Self::Bool,
    ];

    /// Size of one element in bytes.
    pub fn itemsize(self) -> usize {
        match self {
            Self::F64 | Self::I64 | Self::U64 => 8,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::I16 | Self::U16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// The scalar type an element is read as.
    pub fn elem_ty(self) -> Ty {
        match self {
            Self::F64 | Self::F32 => Ty::F64,
            Self::Bool => Ty::Bool,
            _ => Ty::I64,
        }
    }

    /// Reads element `i` of `bytes` (unaligned-safe); `None` for a `u64` above `i64::MAX`
    /// (a Python int the JIT cannot represent) or an index out of bounds.
    pub fn read(self, bytes: &[u8], i: usize) -> Option<Value> {
        let n = self.itemsize();
        let b = bytes.get(i.checked_mul(n)?..i * n + n)?;
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(b);
        let a8 = a;
        Some(match self {
            Self::F64 => Value::F64(f64::from_ne_bytes(a8)),
            Self::F32 => Value::F64(f64::from(f32::from_ne_bytes([a[0], a[1], a[2], a[3]]))),
            Self::I8 => Value::I64(i64::from(a[0] as i8)),
            Self::I16 => Value::I64(i64::from(i16::from_ne_bytes([a[0], a[1]]))),
            Self::I32 => Value::I64(i64::from(i32::from_ne_bytes([a[0], a[1], a[2], a[3]]))),
            Self::I64 => Value::I64(i64::from_ne_bytes(a8)),
            Self::U8 => Value::I64(i64::from(a[0])),
            Self::U16 => Value::I64(i64::from(u16::from_ne_bytes([a[0], a[1]]))),
            Self::U32 => Value::I64(i64::from(u32::from_ne_bytes([a[0], a[1], a[2], a[3]]))),
            Self::U64 => Value::I64(i64::try_from(u64::from_ne_bytes(a8)).ok()?),
            Self::Bool => Value::Bool(a[0] != 0),
        })
    }
}

/// One argument of a call: a scalar, or a contiguous typed buffer given as raw bytes (any
/// alignment) in native byte order.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A scalar, broadcast over buffers in element-wise calls.
    Scalar(Value),
    /// A buffer of `bytes.len() / dtype.itemsize()` elements.
    Buffer {
        /// The raw element bytes.
        bytes: &'a [u8],
        /// The element type.
        dtype: DType,
    },
}

impl<'a> Arg<'a> {
    /// A buffer argument over a slice of `f64`.
    pub fn f64s(v: &'a [f64]) -> Self {
        Self::Buffer {
            // SAFETY: any f64 slice is a valid, initialized byte slice of 8x its length.
            bytes: unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v)) },
            dtype: DType::F64,
        }
    }
}

/// The output of an element-wise call: one typed column.
#[derive(Debug, Clone, PartialEq)]
pub enum VecOut {
    /// Float results.
    F64(Vec<f64>),
    /// Integer results.
    I64(Vec<i64>),
    /// Boolean results.
    Bool(Vec<bool>),
}

impl VecOut {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::F64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a [`Value`].
    pub fn get(&self, i: usize) -> Option<Value> {
        match self {
            Self::F64(v) => v.get(i).map(|x| Value::F64(*x)),
            Self::I64(v) => v.get(i).map(|x| Value::I64(*x)),
            Self::Bool(v) => v.get(i).map(|x| Value::Bool(*x)),
        }
    }
}
