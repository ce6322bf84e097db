#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod mailbox;

pub use error::{Closed, MailboxError, RecvError, TryRecvError};
pub use mailbox::{Mailbox, Offer, OverflowPolicy, block_on};
