#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod actor;
mod behavior;
mod config;
mod error;
mod hooks;
mod links;
mod mesh;
mod message;
mod names;
mod observe;
mod runtime;
mod supervision;

pub use actor::Pid;
pub use behavior::{BatchGuard, Behavior, DEFAULT_HISTORY, IntoFlow};
pub use bytes::Bytes;
pub use config::{parse_overflow_policy, parse_strategy};
pub use error::{ActorError, MeshError, SendError};
pub use iris_mailbox::{OverflowPolicy, RecvError, TryRecvError};
pub use iris_registry::RegistryError;
pub use iris_sched::{Flow, Step};
pub use iris_supervisor::{ExitInfo, ExitReason, RestartPolicy, Strategy, SupervisorSpec};
pub use mesh::MeshConfig;
pub use message::{Message, SystemMessage};
pub use observe::OBSERVED_HISTORY;
pub use runtime::{
    ActorRef, ActorView, DEFAULT_BUDGET, Receiver, Runtime, SpawnOptions, block_in_place,
    current_pid,
};
pub use supervision::{ChildOptions, Factory};

/// The Cranelift expression JIT (`iris-jit`), for offloading numeric code.
pub use iris_jit as jit;

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        ActorRef, Bytes, ExitInfo, ExitReason, Flow, Message, OverflowPolicy, Pid, Runtime,
        SystemMessage,
    };
}
