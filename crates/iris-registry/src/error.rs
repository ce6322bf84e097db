//! Errors of the registry.

use crate::Pid;
use std::fmt;

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name or path is held by a live owner.
    NameTaken {
        /// The name or path asked for.
        name: String,
        /// The pid holding it.
        owner: Pid,
    },
    /// A name was empty.
    EmptyName,
    /// A path (or prefix) was malformed.
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTaken { name, owner } => write!(f, "{name:?} is taken by pid {owner}"),
            Self::EmptyName => f.write_str("empty name"),
            Self::InvalidPath { path, reason } => write!(f, "invalid path {path:?}: {reason}"),
        }
    }
}

impl std::error::Error for RegistryError {}
