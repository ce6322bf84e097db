#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod registry;

pub use error::RegistryError;
pub use registry::{MAX_PATH_LEN, Pid, Registry, Removed};
