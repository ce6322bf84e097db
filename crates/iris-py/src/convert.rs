//! Conversions between Python values and the facade's types: PIDs, payloads, messages,
//! exit information and overflow policies.

use bytes::Bytes;
use iris::{ExitInfo, Message, OverflowPolicy, Pid, SystemMessage};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyMemoryView};

use crate::errors::{Kind, err};

/// A PID argument: any Python `int`. Integers that cannot be PIDs (zero, negative, too
/// large) become 0, which no actor ever has, so they behave like any unknown PID.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PidArg(pub(crate) Pid);

impl<'a, 'py> FromPyObject<'a, 'py> for PidArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if !obj.is_instance_of::<PyInt>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "a PID is an int, not {}",
                obj.get_type().name()?
            )));
        }
        Ok(PidArg(obj.extract::<u64>().unwrap_or(0)))
    }
}

/// A message payload: any bytes-like object (`bytes`, `bytearray`, `memoryview`, any object
/// with the buffer protocol), copied.
#[derive(Debug, Clone)]
pub(crate) struct Payload(pub(crate) Bytes);

/// Every byte value once, so a payload of at most one byte (a tick, a signal, a tag) is a
/// static slice: no allocation to send it, none to free it after the handler ran.
static BYTE_VALUES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// Copies a payload out of Python's buffer (statically for at most one byte).
pub(crate) fn payload_bytes(b: &[u8]) -> Bytes {
    match b {
        [] => Bytes::new(),
        [x] => Bytes::from_static(std::slice::from_ref(&BYTE_VALUES[usize::from(*x)])),
        _ => Bytes::copy_from_slice(b),
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Payload {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Payload(payload_bytes(b.as_bytes())));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Payload(Bytes::from(b.to_vec())));
        }
        // Any other buffer: a memoryview copies it out contiguously, whatever its layout.
        match PyMemoryView::from(&obj) {
            Ok(view) => {
                let data = view.call_method0("tobytes")?;
                let data = data.cast::<PyBytes>()?;
                Ok(Payload(Bytes::copy_from_slice(data.as_bytes())))
            }
            Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "a message is a bytes-like object (bytes, bytearray, memoryview), not {}",
                obj.get_type().name()?
            ))),
        }
    }
}

/// A system message as Python sees it: `type_name` (`"EXIT"`, `"DOWN"`, ...), the actor it is
/// about (`from_pid`), the actor receiving it (`target_pid`), the exit `reason` and `metadata`.
#[pyclass(name = "PySystemMessage", module = "iris", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PySystemMessage {
    /// `"EXIT"`, `"DOWN"`, ...
    #[pyo3(get)]
    type_name: String,
    /// The actor that exited.
    #[pyo3(get)]
    from_pid: Pid,
    /// The actor receiving the message.
    #[pyo3(get)]
    target_pid: Pid,
    /// `"Normal"`, `"Killed"`, `"Panic"`, `"Crash"`, `"Timeout"`, `"Disconnect"`,
    /// `"Shutdown"` or a custom text.
    #[pyo3(get)]
    reason: String,
    /// Extra text (panic message, exception and traceback, ...).
    #[pyo3(get)]
    metadata: Option<String>,
    /// The monitor reference of a `DOWN` message.
    #[pyo3(get)]
    monitor_ref: Option<u64>,
}

#[pymethods]
impl PySystemMessage {
    #[new]
    #[pyo3(signature = (type_name, from_pid, target_pid, reason, metadata=None, monitor_ref=None))]
    fn new(
        type_name: String,
        from_pid: Pid,
        target_pid: Pid,
        reason: String,
        metadata: Option<String>,
        monitor_ref: Option<u64>,
    ) -> Self {
        PySystemMessage {
            type_name,
            from_pid,
            target_pid,
            reason,
            metadata,
            monitor_ref,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "PySystemMessage(type_name={:?}, from_pid={}, target_pid={}, reason={:?}, metadata={})",
            self.type_name,
            self.from_pid,
            self.target_pid,
            self.reason,
            match &self.metadata {
                Some(m) => format!("{m:?}"),
                None => "None".to_owned(),
            }
        )
    }
}

impl PySystemMessage {
    pub(crate) fn from_system(msg: &SystemMessage) -> PySystemMessage {
        let (from, target, info, monitor) = match msg {
            SystemMessage::Exit { from, target, info } => (*from, *target, Some(info), None),
            SystemMessage::Down {
                monitor,
                from,
                target,
                info,
            } => (*from, *target, Some(info), Some(*monitor)),
            _ => (0, 0, None, None),
        };
        PySystemMessage {
            type_name: msg.type_name().to_owned(),
            from_pid: from,
            target_pid: target,
            reason: info
                .map(|i| i.reason.as_str().to_owned())
                .unwrap_or_default(),
            metadata: info.and_then(|i| i.metadata.clone()),
            monitor_ref: monitor,
        }
    }
}

/// How an actor exited: `reason` and optional `metadata` (returned by `join` and
/// `exit_info`).
#[pyclass(name = "ExitInfo", module = "iris", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyExitInfo {
    /// `"Normal"`, `"Killed"`, `"Panic"`, `"Crash"`, ... or a custom text.
    #[pyo3(get)]
    reason: String,
    /// Extra text (panic message, exception and traceback, ...).
    #[pyo3(get)]
    metadata: Option<String>,
}

#[pymethods]
impl PyExitInfo {
    fn __repr__(&self) -> String {
        match &self.metadata {
            Some(m) => format!("ExitInfo(reason={:?}, metadata={m:?})", self.reason),
            None => format!("ExitInfo(reason={:?}, metadata=None)", self.reason),
        }
    }
}

impl From<ExitInfo> for PyExitInfo {
    fn from(i: ExitInfo) -> Self {
        PyExitInfo {
            reason: i.reason.as_str().to_owned(),
            metadata: i.metadata,
        }
    }
}

/// A message as a handler sees it: `bytes` for user messages, a [`PySystemMessage`] for
/// system ones.
pub(crate) fn message_to_py<'py>(py: Python<'py>, msg: &Message) -> PyResult<Bound<'py, PyAny>> {
    match msg {
        Message::User(b) => Ok(PyBytes::new(py, b).into_any()),
        Message::System(s) => Ok(Bound::new(py, PySystemMessage::from_system(s))?.into_any()),
    }
}

/// Parses an overflow policy name (`"dropnew"`, `"dropold"`, `"redirect"`, `"spill"`,
/// `"block"`, case-insensitive); `redirect` and `spill` need a target.
pub(crate) fn parse_policy(name: &str, target: Option<Pid>) -> Result<OverflowPolicy, String> {
    iris::parse_overflow_policy(name, target)
}

/// [`parse_policy`] raising `iris.ConfigError` (a `ValueError`).
pub(crate) fn policy_arg(name: &str, target: Option<Pid>) -> PyResult<OverflowPolicy> {
    parse_policy(name, target).map_err(|e| err(Kind::Config, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris::ExitReason;

    #[test]
    fn payloads_keep_their_bytes_small_ones_static() {
        for b in [&b""[..], b"x", b"\0", b"\xff", b"xy", &[7u8; 300][..]] {
            assert_eq!(&payload_bytes(b)[..], b);
        }
        assert_eq!(
            payload_bytes(b"\x80").as_ptr(),
            BYTE_VALUES[0x80..].as_ptr()
        );
    }

    #[test]
    fn policies_parse_with_targets_where_needed() {
        assert_eq!(parse_policy("dropnew", None), Ok(OverflowPolicy::DropNew));
        assert_eq!(parse_policy("DropOld", None), Ok(OverflowPolicy::DropOld));
        assert_eq!(parse_policy("drop_new", None), Ok(OverflowPolicy::DropNew));
        assert_eq!(parse_policy("block", Some(3)), Ok(OverflowPolicy::Block));
        assert_eq!(
            parse_policy("redirect", Some(9)),
            Ok(OverflowPolicy::Redirect(9))
        );
        assert_eq!(parse_policy("spill", Some(9)), Ok(OverflowPolicy::Spill(9)));
        assert!(parse_policy("redirect", None).is_err());
        assert!(parse_policy("spill", None).is_err());
        assert!(parse_policy("drop", None).unwrap_err().contains("unknown"));
    }

    #[test]
    fn system_messages_carry_reason_metadata_and_pids() {
        let exit = SystemMessage::Exit {
            from: 4,
            target: 5,
            info: ExitInfo::with_metadata(ExitReason::Crash, "ValueError: boom"),
        };
        let m = PySystemMessage::from_system(&exit);
        assert_eq!(m.type_name, "EXIT");
        assert_eq!((m.from_pid, m.target_pid), (4, 5));
        assert_eq!(m.reason, "Crash");
        assert_eq!(m.metadata.as_deref(), Some("ValueError: boom"));
        let down = SystemMessage::Down {
            monitor: 11,
            from: 4,
            target: 5,
            info: ExitInfo::new(ExitReason::Other("noproc".into())),
        };
        let m = PySystemMessage::from_system(&down);
        assert_eq!(
            (m.type_name.as_str(), m.reason.as_str()),
            ("DOWN", "noproc")
        );
        assert_eq!(m.monitor_ref, Some(11));
        assert_eq!(m.metadata, None);
    }
}
