//! Why an actor ended.

use std::fmt;

/// Why an actor exited.
///
/// Python and Node show these as the strings `"Normal"`, `"Killed"`, `"Panic"`, `"Crash"`,
/// `"Timeout"`, `"Disconnect"`, `"Shutdown"`, or the custom text of [`ExitReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitReason {
    /// The actor finished cleanly: its pull closure returned or its handler asked to stop.
    Normal,
    /// The actor was stopped by `stop(pid)` or killed through a link.
    Killed,
    /// A Rust panic ended the actor; the metadata holds the panic message.
    Panic,
    /// Guest code (a Python exception, a JS throw, a Rust `Err`) ended the actor; the metadata
    /// holds the error.
    Crash,
    /// A virtual actor idled out, or a receive deadline passed.
    Timeout,
    /// The remote node behind a proxy or monitor is gone.
    Disconnect,
    /// The actor was stopped because its parent or supervisor went down.
    Shutdown,
    /// A custom reason.
    Other(String),
}

impl ExitReason {
    /// `true` for the reasons that count as a clean end (`Normal` and `Shutdown`): links do not
    /// propagate them and transient children are not restarted after them.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }

    /// The name the bindings show: `"Normal"`, `"Killed"`, ..., or the custom text.
    pub fn as_str(&self) -> &str {
        match self {
            ExitReason::Normal => "Normal",
            ExitReason::Killed => "Killed",
            ExitReason::Panic => "Panic",
            ExitReason::Crash => "Crash",
            ExitReason::Timeout => "Timeout",
            ExitReason::Disconnect => "Disconnect",
            ExitReason::Shutdown => "Shutdown",
            ExitReason::Other(text) => text,
        }
    }

    /// Parses the names of [`ExitReason::as_str`]; anything else becomes [`ExitReason::Other`].
    pub fn from_name(name: &str) -> ExitReason {
        match name {
            "Normal" => ExitReason::Normal,
            "Killed" => ExitReason::Killed,
            "Panic" => ExitReason::Panic,
            "Crash" => ExitReason::Crash,
            "Timeout" => ExitReason::Timeout,
            "Disconnect" => ExitReason::Disconnect,
            "Shutdown" => ExitReason::Shutdown,
            other => ExitReason::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exit reason with its optional metadata (panic message, exception and traceback, the peer
/// that killed it through a link, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Why the actor ended.
    pub reason: ExitReason,
    /// Extra text about the exit, if any.
    pub metadata: Option<String>,
}

impl ExitInfo {
    /// An exit with no metadata.
    pub fn new(reason: ExitReason) -> ExitInfo {
        ExitInfo {
            reason,
            metadata: None,
        }
    }

    /// An exit with metadata.
    pub fn with_metadata(reason: ExitReason, metadata: impl Into<String>) -> ExitInfo {
        ExitInfo {
            reason,
            metadata: Some(metadata.into()),
        }
    }
}

impl From<ExitReason> for ExitInfo {
    fn from(reason: ExitReason) -> ExitInfo {
        ExitInfo::new(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in [
            ExitReason::Normal,
            ExitReason::Killed,
            ExitReason::Panic,
            ExitReason::Crash,
            ExitReason::Timeout,
            ExitReason::Disconnect,
            ExitReason::Shutdown,
            ExitReason::Other("custom".into()),
        ] {
            assert_eq!(ExitReason::from_name(r.as_str()), r);
        }
        assert!(ExitReason::Normal.is_normal());
        assert!(ExitReason::Shutdown.is_normal());
        assert!(!ExitReason::Crash.is_normal());
    }
}
