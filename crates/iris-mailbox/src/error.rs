//! Errors of the mailbox.

use std::fmt;

/// An error creating or configuring a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailboxError {
    /// A bounded mailbox needs a capacity of at least one message.
    ZeroCapacity,
    /// Overflow policies apply only to bounded mailboxes; this one is unbounded.
    Unbounded,
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailboxError::ZeroCapacity => f.write_str("mailbox capacity must be at least 1"),
            MailboxError::Unbounded => {
                f.write_str("overflow policies apply only to bounded mailboxes")
            }
        }
    }
}

impl std::error::Error for MailboxError {}

/// The mailbox was closed; the message that could not be queued is handed back.
#[derive(Clone, PartialEq, Eq)]
pub struct Closed<M>(pub M);

impl<M> Closed<M> {
    /// The message that was not queued.
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> fmt::Debug for Closed<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<M> fmt::Display for Closed<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mailbox closed")
    }
}

impl<M> std::error::Error for Closed<M> {}

/// Why a non-blocking receive returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No message is queued right now.
    Empty,
    /// The mailbox is closed.
    Closed,
}

/// Why a blocking receive returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The timeout passed with no (matching) message.
    Timeout,
    /// The mailbox is closed.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("mailbox is empty"),
            TryRecvError::Closed => f.write_str("mailbox closed"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("receive timed out"),
            RecvError::Closed => f.write_str("mailbox closed"),
        }
    }
}

impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvError {}
