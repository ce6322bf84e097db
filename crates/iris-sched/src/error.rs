//! Errors of the scheduler.

use std::fmt;

/// An error starting the executor or an actor.
#[derive(Debug)]
#[non_exhaustive]
pub enum SchedError {
    /// Building the Tokio runtime failed.
    Runtime(std::io::Error),
    /// The OS refused a thread for a pull actor.
    Thread(std::io::Error),
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedError::Runtime(e) => write!(f, "cannot start the Tokio runtime: {e}"),
            SchedError::Thread(e) => write!(f, "cannot start a pull-actor thread: {e}"),
        }
    }
}

impl std::error::Error for SchedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SchedError::Runtime(e) | SchedError::Thread(e) => Some(e),
        }
    }
}
