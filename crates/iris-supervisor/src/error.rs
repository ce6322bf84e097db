//! What can go wrong when a caller misuses a supervisor.

use std::error::Error;
use std::fmt;

use crate::supervisor::ChildId;

/// An invalid operation on a [`Supervisor`](crate::Supervisor).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorError {
    /// No child with this id is supervised.
    UnknownChild(ChildId),
    /// A child with this id is already supervised.
    DuplicateChild(ChildId),
    /// The pid is already bound to another child of this supervisor.
    DuplicatePid(u64),
    /// The child is live (or the supervisor escalated), so it cannot take a restarted pid.
    NotRestarting(ChildId),
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::UnknownChild(id) => write!(f, "unknown child {}", id.0),
            SupervisorError::DuplicateChild(id) => write!(f, "duplicate child id {}", id.0),
            SupervisorError::DuplicatePid(pid) => write!(f, "pid {pid} is already a child"),
            SupervisorError::NotRestarting(id) => {
                write!(f, "child {} is not waiting for a restart", id.0)
            }
        }
    }
}

impl Error for SupervisorError {}
