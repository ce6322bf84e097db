#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod exit;
mod link;
mod monitor;
mod supervisor;

/// An actor's process id.
pub type Pid = u64;

pub use error::SupervisorError;
pub use exit::{ExitInfo, ExitReason};
pub use link::{LinkAction, LinkTable};
pub use monitor::{MonitorRef, MonitorTable};
pub use supervisor::{
    ChildId, ChildSpec, Decision, RestartPolicy, Strategy, Supervisor, SupervisorSpec,
};
