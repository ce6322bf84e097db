//! The `Mailbox` of a pull actor: blocking receives with the interpreter lock released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use iris::{Message, Pid, Receiver, RecvError, TryRecvError};
use pyo3::prelude::*;

use crate::convert::message_to_py;
use crate::errors::{Kind, err};

/// Selective receives whose Python matcher may be running under a mailbox lock right now.
/// While there are any, binding calls that touch a mailbox release the interpreter first,
/// so a matcher waiting for the interpreter never waits on a thread waiting for its lock.
pub(crate) static MATCHERS: AtomicUsize = AtomicUsize::new(0);

/// Runs `f`, releasing the interpreter first when a Python matcher may be holding a mailbox
/// lock (see [`MATCHERS`]); otherwise keeps it, which is cheaper for quick calls.
pub(crate) fn touching_mailboxes<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    if MATCHERS.load(Ordering::SeqCst) > 0 {
        py.detach(f)
    } else {
        f()
    }
}

static MAIN_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Remembers the interpreter's main thread (called at import).
pub(crate) fn note_main_thread(py: Python<'_>) {
    let is_main = (|| -> PyResult<bool> {
        let threading = py.import("threading")?;
        let main = threading.call_method0("main_thread")?;
        let current = threading.call_method0("current_thread")?;
        Ok(main.is(&current))
    })()
    .unwrap_or(false);
    if is_main {
        let _ = MAIN_THREAD.set(std::thread::current().id());
    }
}

/// Only the main thread runs Python signal handlers, so only there do waits need slicing to
/// notice Ctrl-C.
pub(crate) fn on_main_thread() -> bool {
    MAIN_THREAD
        .get()
        .is_none_or(|t| *t == std::thread::current().id())
}

/// How long a wait on the main thread blocks before checking for signals.
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Waits with the interpreter released, in slices on the main thread so Ctrl-C is honoured.
/// `step(slice)` returns `Some` when done; `None` when the slice passed.
pub(crate) fn wait_sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Option<Duration>) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    if !on_main_thread() {
        return Ok(py.detach(|| step(timeout)));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE),
            None => SIGNAL_SLICE,
        };
        if let Some(v) = py.detach(|| step(Some(slice))) {
            return Ok(Some(v));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// Converts a `timeout` in seconds.
pub(crate) fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) if t.is_infinite() && t > 0.0 => Ok(None),
        Some(t) => Err(err(
            Kind::Config,
            format!("timeout must be a non-negative number of seconds, not {t}"),
        )),
    }
}

/// The mailbox a pull actor's handler receives: `recv(timeout=None)` and
/// `selective_recv(matcher, timeout=None)`.
#[pyclass(name = "Mailbox", module = "iris", frozen)]
pub(crate) struct PyMailbox {
    pid: Pid,
    rx: Mutex<Receiver>,
}

impl PyMailbox {
    pub(crate) fn new(rx: Receiver) -> PyMailbox {
        PyMailbox {
            pid: rx.pid(),
            rx: Mutex::new(rx),
        }
    }

    fn rx(&self) -> std::sync::MutexGuard<'_, Receiver> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message that is already queued (or the news that the mailbox is closed), taken
    /// while keeping the interpreter: letting go of it and taking it back per message costs
    /// more than the receive itself, and hands the lock to a busy sender every time. `None`
    /// when the receive has to wait, when another thread is receiving here (its slice ends
    /// soon), or while a matcher may hold a mailbox lock.
    fn try_queued(&self) -> Option<Got> {
        if MATCHERS.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let mut rx = match self.rx.try_lock() {
            Ok(rx) => rx,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        match rx.try_recv() {
            Ok(m) => Some(Got::Msg(m)),
            Err(TryRecvError::Closed) => Some(Got::Closed),
            Err(_) => None,
        }
    }
}

/// What a receive gave: a message, or why there is none.
enum Got {
    Msg(Message),
    Closed,
}

fn got(r: Result<Message, RecvError>) -> Option<Got> {
    match r {
        Ok(m) => Some(Got::Msg(m)),
        Err(RecvError::Closed) => Some(Got::Closed),
        Err(_) => None,
    }
}

fn deliver<'py>(py: Python<'py>, g: Option<Got>) -> PyResult<Option<Bound<'py, PyAny>>> {
    match g {
        None => Ok(None),
        Some(Got::Msg(m)) => message_to_py(py, &m).map(Some),
        Some(Got::Closed) => Err(err(Kind::MailboxClosed, "the actor was stopped")),
    }
}

#[pymethods]
impl PyMailbox {
    /// The PID of the actor that owns this mailbox.
    #[getter]
    fn pid(&self) -> Pid {
        self.pid
    }

    /// The next message (system messages first): `bytes` or a `PySystemMessage`; `None` when
    /// `timeout` seconds pass. Raises `MailboxClosed` once the actor is stopped.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let timeout = timeout_arg(timeout)?;
        if let Some(g) = self.try_queued() {
            return deliver(py, Some(g));
        }
        let g = wait_sliced(py, timeout, |t| got(self.rx().recv_blocking(t)))?;
        deliver(py, g)
    }

    /// The first message, stashed or new, for which `matcher(msg)` is truthy; the others keep
    /// their order for later receives. `None` when `timeout` seconds pass. The matcher may
    /// see a message more than once; an exception in it is raised here (the message stays).
    #[pyo3(signature = (matcher, timeout=None))]
    fn selective_recv<'py>(
        &self,
        py: Python<'py>,
        matcher: Bound<'py, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if !matcher.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "the matcher must be callable",
            ));
        }
        let timeout = timeout_arg(timeout)?;
        let matcher = matcher.unbind();
        let failed: Mutex<Option<PyErr>> = Mutex::new(None);
        let mut accept = |m: &Message| -> bool {
            let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
            if failed.is_some() {
                return false;
            }
            Python::attach(|py| {
                let verdict = message_to_py(py, m)
                    .and_then(|arg| matcher.bind(py).call1((arg,)))
                    .and_then(|r| r.is_truthy());
                match verdict {
                    Ok(v) => v,
                    Err(e) => {
                        *failed = Some(e);
                        false
                    }
                }
            })
        };
        MATCHERS.fetch_add(1, Ordering::SeqCst);
        // After a matcher error, give up within a slice rather than wait out the timeout.
        let deadline = timeout.map(|t| Instant::now() + t);
        let result = (|| loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = Some(left.unwrap_or(SIGNAL_SLICE).min(SIGNAL_SLICE));
            let g = py.detach(|| got(self.rx().selective_recv_blocking(&mut accept, slice)));
            if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
                // A message taken meanwhile cannot go back: it is returned below only if the
                // matcher accepted it, which it did not after the error.
                return Err(e);
            }
            if g.is_some() {
                return Ok(g);
            }
            if on_main_thread() {
                py.check_signals()?;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        })();
        MATCHERS.fetch_sub(1, Ordering::SeqCst);
        deliver(py, result?)
    }

    /// Queued user messages (the selective-receive stash included).
    fn __len__(&self) -> usize {
        self.rx().len()
    }

    fn __repr__(&self) -> String {
        format!("Mailbox(pid={})", self.pid)
    }
}
