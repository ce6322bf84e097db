//! Errors of the runtime.

use std::fmt;

use crate::{Message, Pid};

/// A message could not be delivered; the message is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No live actor has this PID.
    NoProcess(Pid, Message),
    /// The bounded mailbox is full and its policy rejected the message.
    MailboxFull(Pid, Message),
    /// A chain of `Redirect` policies came back to a mailbox it had visited.
    RedirectCycle(Pid, Message),
    /// No actor is registered under this name.
    UnknownName(String, Message),
}

impl SendError {
    /// The message that was not delivered.
    pub fn into_message(self) -> Message {
        match self {
            SendError::NoProcess(_, m)
            | SendError::MailboxFull(_, m)
            | SendError::RedirectCycle(_, m)
            | SendError::UnknownName(_, m) => m,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoProcess(pid, _) => write!(f, "no live actor with pid {pid}"),
            SendError::MailboxFull(pid, _) => write!(f, "mailbox of pid {pid} is full"),
            SendError::RedirectCycle(pid, _) => {
                write!(f, "redirect cycle while delivering to pid {pid}")
            }
            SendError::UnknownName(name, _) => write!(f, "no actor is registered as {name:?}"),
        }
    }
}

impl std::error::Error for SendError {}

/// An operation on an actor failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ActorError {
    /// No live actor has this PID.
    NoProcess(Pid),
    /// The actor is not a push actor, so it has no behaviour to swap.
    NotSwappable(Pid),
    /// A rollback asked for more steps than the behaviour history holds.
    NoSuchVersion {
        /// The actor.
        pid: Pid,
        /// The steps asked for.
        steps: usize,
        /// The steps available.
        available: usize,
    },
    /// The mailbox refused the configuration (zero capacity, policy on an unbounded mailbox).
    Mailbox(Pid, iris_mailbox::MailboxError),
    /// The parent of a child actor is not alive.
    ParentDead(Pid),
    /// The scheduler could not start the actor.
    Sched(iris_sched::SchedError),
    /// The runtime is shutting down.
    ShuttingDown,
    /// A name or path operation failed (taken, empty, invalid path).
    Registry(iris_registry::RegistryError),
    /// A supervision operation was refused.
    Supervision(String),
    /// No path supervisor exists for this path.
    NoSupervisor(String),
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorError::NoProcess(pid) => write!(f, "no live actor with pid {pid}"),
            ActorError::NotSwappable(pid) => {
                write!(
                    f,
                    "pid {pid} is not a push actor; only handlers can be hot-swapped"
                )
            }
            ActorError::NoSuchVersion {
                pid,
                steps,
                available,
            } => write!(
                f,
                "cannot roll pid {pid} back {steps} step(s): {available} available"
            ),
            ActorError::Mailbox(pid, e) => write!(f, "mailbox of pid {pid}: {e}"),
            ActorError::ParentDead(pid) => write!(f, "parent pid {pid} is not alive"),
            ActorError::Sched(e) => write!(f, "{e}"),
            ActorError::ShuttingDown => f.write_str("the runtime is shutting down"),
            ActorError::Registry(e) => write!(f, "{e}"),
            ActorError::Supervision(why) => write!(f, "supervision: {why}"),
            ActorError::NoSupervisor(path) => write!(f, "no path supervisor for {path:?}"),
        }
    }
}

impl std::error::Error for ActorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ActorError::Mailbox(_, e) => Some(e),
            ActorError::Sched(e) => Some(e),
            ActorError::Registry(e) => Some(e),
            _ => None,
        }
    }
}

/// A mesh operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MeshError {
    /// The listening socket could not be bound.
    Bind(std::io::Error),
    /// A socket operation failed.
    Io(std::io::Error),
    /// The peer failed the authenticated handshake (or we failed its).
    Handshake(String),
    /// The cookie could not be loaded.
    Cookie(String),
    /// A connect, handshake, write or reply took longer than the configured timeout.
    Timeout,
    /// The node cannot be reached (it is down or the mesh is closed).
    Unreachable(String),
    /// The peer broke the protocol.
    Protocol(String),
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeshError::Bind(e) => write!(f, "cannot listen: {e}"),
            MeshError::Io(e) => write!(f, "mesh i/o: {e}"),
            MeshError::Handshake(why) => write!(f, "handshake failed: {why}"),
            MeshError::Cookie(why) => write!(f, "cookie: {why}"),
            MeshError::Timeout => f.write_str("mesh operation timed out"),
            MeshError::Unreachable(why) => write!(f, "node unreachable: {why}"),
            MeshError::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl std::error::Error for MeshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MeshError::Bind(e) | MeshError::Io(e) => Some(e),
            _ => None,
        }
    }
}
