//! The exception hierarchy (`iris.IrisError` and its subclasses) and the mapping of the
//! facade's typed errors onto it.

use iris::{ActorError, RegistryError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The kinds of exception the binding raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `IrisError`: the base class.
    Iris,
    /// `NoProcessError`: no live actor has this PID.
    NoProcess,
    /// `SpawnError`: the actor could not be started.
    Spawn,
    /// `MailboxClosed`: the actor owning the mailbox was stopped.
    MailboxClosed,
    /// `RegistryError`: a name or path operation failed.
    Registry,
    /// `InvalidPathError`: a malformed path (also a `ValueError`).
    InvalidPath,
    /// `ConfigError`: a bad capacity, policy or limit (also a `ValueError`).
    Config,
    /// `MeshError`: a mesh operation failed (bind, connect, handshake, timeout).
    Mesh,
    /// `JitCompileError`: the JIT rejected a function (the caller falls back to Python).
    JitCompile,
    /// `JitLimitError`: a `sum_while`-style loop hit its iteration cap.
    JitLimit,
    /// `JitFallback`: this call must run in Python (an error Python raises, a big int).
    JitFallback,
}

/// `(name, parent, also a ValueError, doc)` for every kind, parents first.
const CLASSES: [(Kind, &str, Option<Kind>, bool, &str); 11] = [
    (
        Kind::Iris,
        "IrisError",
        None,
        false,
        "Base class of every error raised by Iris.",
    ),
    (
        Kind::NoProcess,
        "NoProcessError",
        Some(Kind::Iris),
        false,
        "No live actor has this PID.",
    ),
    (
        Kind::Spawn,
        "SpawnError",
        Some(Kind::Iris),
        false,
        "The actor could not be started (dead parent, shutdown, thread cap).",
    ),
    (
        Kind::MailboxClosed,
        "MailboxClosed",
        Some(Kind::Iris),
        false,
        "The actor owning this mailbox was stopped; raised by recv().",
    ),
    (
        Kind::Registry,
        "RegistryError",
        Some(Kind::Iris),
        false,
        "A name or path could not be registered (taken, empty).",
    ),
    (
        Kind::InvalidPath,
        "InvalidPathError",
        Some(Kind::Registry),
        true,
        "A path is not '/'-separated non-empty segments.",
    ),
    (
        Kind::Config,
        "ConfigError",
        Some(Kind::Iris),
        true,
        "A bad capacity, overflow policy, limit or argument.",
    ),
    (
        Kind::Mesh,
        "MeshError",
        Some(Kind::Iris),
        false,
        "A mesh operation failed (bind, connect, handshake, timeout).",
    ),
    (
        Kind::JitCompile,
        "JitCompileError",
        Some(Kind::Iris),
        false,
        "The JIT rejected a function; @iris.offload runs it in Python instead.",
    ),
    (
        Kind::JitLimit,
        "JitLimitError",
        Some(Kind::Iris),
        false,
        "A sum_while/any_while/all_while loop hit the JIT's iteration cap.",
    ),
    (
        Kind::JitFallback,
        "JitFallback",
        Some(Kind::Iris),
        false,
        "Internal: this call must run in Python (Python would raise, or needs a big int).",
    ),
];

static TYPES: PyOnceLock<Vec<(Kind, Py<PyType>)>> = PyOnceLock::new();

fn types(py: Python<'_>) -> &Vec<(Kind, Py<PyType>)> {
    TYPES.get_or_init(py, || {
        let mut made: Vec<(Kind, Py<PyType>)> = Vec::new();
        let builtins = py
            .import("builtins")
            .expect("builtins is always importable");
        let type_fn = builtins.getattr("type").expect("builtins.type");
        for (kind, name, parent, value_error, doc) in CLASSES {
            let mut bases: Vec<Bound<'_, PyAny>> = Vec::new();
            match parent {
                Some(p) => {
                    let parent = made
                        .iter()
                        .find(|(k, _)| *k == p)
                        .expect("parents come first")
                        .1
                        .bind(py)
                        .clone();
                    bases.push(parent.into_any());
                }
                None => bases.push(py.get_type::<pyo3::exceptions::PyException>().into_any()),
            }
            if value_error {
                bases.push(py.get_type::<pyo3::exceptions::PyValueError>().into_any());
            }
            let ns = PyDict::new(py);
            ns.set_item("__module__", "iris").expect("dict insert");
            ns.set_item("__doc__", doc).expect("dict insert");
            let bases = PyTuple::new(py, bases).expect("tuple of classes");
            let ty = type_fn
                .call1((name, bases, ns))
                .and_then(|t| t.cast_into::<PyType>().map_err(Into::into))
                .expect("creating an exception class");
            made.push((kind, ty.unbind()));
        }
        made
    })
}

/// The class of a kind of exception.
pub(crate) fn class(py: Python<'_>, kind: Kind) -> Bound<'_, PyType> {
    types(py)
        .iter()
        .find(|(k, _)| *k == kind)
        .expect("every kind has a class")
        .1
        .bind(py)
        .clone()
}

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (kind, name, ..) in CLASSES {
        m.add(name, class(py, kind))?;
    }
    Ok(())
}

/// An exception of `kind` with `msg`.
pub(crate) fn err(kind: Kind, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| PyErr::from_type(class(py, kind), msg))
}

/// Which exception a facade error becomes.
pub(crate) fn kind_of(e: &ActorError) -> Kind {
    match e {
        ActorError::NoProcess(_) => Kind::NoProcess,
        ActorError::Mailbox(..) => Kind::Config,
        ActorError::ParentDead(_) | ActorError::Sched(_) | ActorError::ShuttingDown => Kind::Spawn,
        ActorError::Registry(RegistryError::InvalidPath { .. }) => Kind::InvalidPath,
        ActorError::Registry(_) => Kind::Registry,
        _ => Kind::Iris,
    }
}

/// Converts a facade error into the matching exception.
pub(crate) fn actor_err(e: ActorError) -> PyErr {
    err(kind_of(&e), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facade_errors_map_to_their_exception_kind() {
        assert_eq!(kind_of(&ActorError::NoProcess(7)), Kind::NoProcess);
        assert_eq!(kind_of(&ActorError::ParentDead(7)), Kind::Spawn);
        assert_eq!(kind_of(&ActorError::ShuttingDown), Kind::Spawn);
        assert_eq!(kind_of(&ActorError::NotSwappable(7)), Kind::Iris);
        let bad = RegistryError::InvalidPath {
            path: "a//b".into(),
            reason: "empty segment",
        };
        assert_eq!(kind_of(&ActorError::Registry(bad)), Kind::InvalidPath);
        assert_eq!(
            kind_of(&ActorError::Registry(RegistryError::EmptyName)),
            Kind::Registry
        );
    }

    #[test]
    fn every_class_has_its_parent_declared_first() {
        for (i, (_, _, parent, ..)) in CLASSES.iter().enumerate() {
            if let Some(p) = parent {
                assert!(CLASSES[..i].iter().any(|(k, ..)| k == p));
            }
        }
    }
}
