#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod ast;
mod codegen;
mod error;
mod exec;
mod interp;
mod ir;
mod log;
mod opt;
mod parse;
mod rt;
mod value;

pub use crate::ast::{BinOp, BoolOpKind, CmpOp, Expr, Iter, Reducer, UnaryOp};
pub use crate::codegen::OptLevel;
pub use crate::error::{CompileError, JitError};
pub use crate::exec::{CompileOptions, CompiledExpr, DEFAULT_SUM_WHILE_CAP, Jit, VariantStats};
pub use crate::log::{jit_logging, set_jit_logging};
pub use crate::value::{Arg, DType, ReturnType, Ty, Value, VecOut};
