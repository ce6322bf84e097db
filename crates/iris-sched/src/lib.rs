#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod executor;
mod push;
mod runqueue;
mod unwind;

pub use error::SchedError;
pub use executor::{PULL_STACK_SIZE, Scheduler, TokioScheduler};
pub use push::{Flow, LoopEnd, Reductions, Step, push_loop};
pub use runqueue::{RunOutcome, RunQueue, Runnable};
pub use unwind::{CatchUnwind, panic_message};
