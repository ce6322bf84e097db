//! Python handlers as actor behaviours: push handlers (holding the interpreter once per
//! batch, with `release_gil=True` off the Tokio workers) and the `STOP` sentinel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use iris::{Behavior, Flow, Message, Pid};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::convert::message_to_py;
use crate::lane::{LaneUse, drain, is_poke};

/// The type of `iris.STOP`: a push handler returns it to end its actor normally.
#[pyclass(name = "StopSignal", module = "iris", frozen)]
pub(crate) struct StopSignal;

#[pymethods]
impl StopSignal {
    fn __repr__(&self) -> &'static str {
        "iris.STOP"
    }
}

static STOP: PyOnceLock<Py<StopSignal>> = PyOnceLock::new();

/// The `iris.STOP` singleton.
pub(crate) fn stop(py: Python<'_>) -> &Py<StopSignal> {
    STOP.get_or_init(py, || {
        Py::new(py, StopSignal).expect("allocating the STOP sentinel")
    })
}

/// Formats an exception as Python prints it: traceback, then type and message.
pub(crate) fn format_exception(py: Python<'_>, e: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let lines = py.import("traceback")?.call_method1(
            "format_exception",
            (e.get_type(py), e.value(py), e.traceback(py)),
        )?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract()
    })();
    formatted.unwrap_or_else(|_| e.to_string())
}

/// Calls a push handler with one message; its result decides the actor's fate.
pub(crate) fn call_handler(py: Python<'_>, handler: &Py<PyAny>, msg: &Message) -> Flow {
    let arg = match message_to_py(py, msg) {
        Ok(a) => a,
        Err(e) => return Flow::Crash(format_exception(py, &e)),
    };
    match handler.bind(py).call1((arg,)) {
        Ok(ret) if ret.is(stop(py).bind(py)) => Flow::Stop,
        Ok(_) => Flow::Continue,
        Err(e) => Flow::Crash(format_exception(py, &e)),
    }
}

/// Runs `f` with the interpreter: in the hold of a batch taken by [`with_interpreter`], or
/// attaching for this call alone. Once the interpreter is exiting the exit hook shuts every
/// runtime down: `f` does not run and the actor ends as that shutdown would (it ended
/// `Normal` when it came first).
fn attached(f: impl FnOnce(Python<'_>) -> Flow) -> Flow {
    if HOLDING.with(std::cell::Cell::get) {
        if crate::exiting::exiting() {
            return Flow::Shutdown;
        }
        // SAFETY: `HOLDING` is set only inside `with_interpreter`'s attach, on this
        // thread, around the batch this call belongs to: the thread is attached (a
        // handler that detached meanwhile re-attached before it returned), and the
        // batch is counted as a call in flight.
        let py = unsafe { Python::assume_attached() };
        return f(py);
    }
    crate::exiting::attach(f).unwrap_or(Flow::Shutdown)
}

/// A push handler's behaviour: one call of `handler` per message; with a lane, a poke
/// drains the lane ([`crate::lane`]).
fn handler_behavior(handler: Py<PyAny>, lane: Option<LaneUse>) -> Behavior {
    Behavior::from_fn(move |msg: Message| {
        attached(|py| match &lane {
            Some(lane) if is_poke(&msg) => drain(py, &handler, lane),
            _ => call_handler(py, &handler, &msg),
        })
    })
}

thread_local! {
    /// `true` while this thread runs a batch inside [`with_interpreter`]'s hold of the
    /// interpreter, counted as a call in flight: each handler call of the batch then needs
    /// neither a count nor an attach of its own.
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets [`HOLDING`] for the life of the value, restoring the previous state when dropped
/// (also on a panic unwinding through the batch).
struct Holding(bool);

impl Holding {
    fn enter() -> Holding {
        Holding(HOLDING.with(|h| h.replace(true)))
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(self.0));
    }
}

/// Runs a batch of handler calls holding the interpreter lock once for the whole batch.
fn with_interpreter(body: &mut dyn FnMut()) {
    // While a selective receive's matcher may wait for the interpreter under a mailbox lock,
    // do not hold the interpreter across the runtime's own work between messages (an exit
    // closing that mailbox): each call takes it on its own. Once the interpreter is exiting,
    // the calls stay out of it (and end the actor).
    if crate::mailbox::MATCHERS.load(Ordering::SeqCst) > 0 {
        return body();
    }
    // Counted from before the thread state is made, which takes the interpreter too.
    let Some(_in_flight) = crate::exiting::enter() else {
        return body();
    };
    keep_thread_state();
    Python::attach(|_py| {
        let _holding = Holding::enter();
        body()
    })
}

/// A push handler that runs on the scheduler's threads, taking the interpreter lock once per
/// batch of messages (up to the reduction budget); `lane`: the actor's lane, if it has one.
pub(crate) fn sync_behavior(handler: Py<PyAny>, lane: Option<LaneUse>) -> Behavior {
    handler_behavior(handler, lane)
        .with_batch_guard(with_interpreter)
        .spanning_batches()
}

thread_local! {
    static KEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Gives this (scheduler) thread a Python thread state that outlives each batch, so taking
/// the interpreter per batch does not create and destroy one every time.
fn keep_thread_state() {
    if KEPT.with(|k| k.replace(true)) {
        return;
    }
    // SAFETY: `PyGILState_Ensure` creates this thread's state and takes the interpreter lock
    // (the interpreter is initialized: this runs from an imported extension); the matching
    // `PyEval_SaveThread` releases the lock at once, keeping the state registered for the
    // thread's life, as the C API allows for threads created outside Python.
    unsafe {
        pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::PyEval_SaveThread();
    }
}

/// `iris.current_pid()`: the PID of the actor whose handler (or pull-actor body) is running
/// on this thread, like Erlang's `self()`; `None` outside any actor.
#[pyfunction]
pub(crate) fn current_pid() -> Option<Pid> {
    iris::current_pid()
}

/// A push handler whose batches run off the Tokio workers (`release_gil=True`): the
/// scheduler thread running a batch hands its worker and its run queue off
/// ([`iris::block_in_place`]) before it takes the interpreter, so a handler that blocks or
/// computes for long holds up no other actor and no Tokio task. Messages are still handled
/// one at a time, in order. `gate` limits how many such batches run at once (the shared
/// pool); a batch waits for a slot before it starts.
pub(crate) fn blocking_behavior(handler: Py<PyAny>, gate: Option<Arc<Semaphore>>) -> Behavior {
    handler_behavior(handler, None).with_batch_guard(move |body| {
        iris::block_in_place(|| {
            let _slot = gate.as_deref().map(Semaphore::acquire);
            with_interpreter(body)
        })
    })
}

/// A counting semaphore for threads: the shared pool's slots.
pub(crate) struct Semaphore {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

/// A slot of a [`Semaphore`], given back when dropped.
pub(crate) struct Slot<'a>(&'a Semaphore);

impl Semaphore {
    pub(crate) fn new(slots: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(slots),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits for a free slot and takes it.
    pub(crate) fn acquire(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

/// How `release_gil=True` actors are placed: up to `max_threads` of them run their batches
/// whenever they have work; past that they share `gil_pool_size` slots, or, when strict,
/// the spawn fails.
pub(crate) struct GilPolicy {
    max_threads: AtomicUsize,
    strict: AtomicBool,
    pool: Mutex<Arc<Semaphore>>,
    dedicated: AtomicUsize,
    /// The slot each live `release_gil` actor has (`None`: dedicated), so a hot swap keeps
    /// the actor's mode.
    actors: Mutex<HashMap<Pid, Option<Arc<Semaphore>>>>,
}

/// Default cap of `release_gil` actors with calls of their own.
pub(crate) const DEFAULT_MAX_THREADS: usize = 256;
/// Default number of shared slots past the cap.
pub(crate) const DEFAULT_GIL_POOL: usize = 8;

/// Where a new `release_gil` actor goes.
pub(crate) enum Placement {
    /// Runs its batches whenever it has work (no slot to wait for).
    Dedicated,
    /// The shared pool.
    Shared(Arc<Semaphore>),
    /// Refused (strict mode, cap reached).
    Refused(usize),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GilPolicy {
    pub(crate) fn new() -> GilPolicy {
        GilPolicy {
            max_threads: AtomicUsize::new(DEFAULT_MAX_THREADS),
            strict: AtomicBool::new(false),
            pool: Mutex::new(Arc::new(Semaphore::new(DEFAULT_GIL_POOL))),
            dedicated: AtomicUsize::new(0),
            actors: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_limits(&self, max_threads: usize, pool: usize) {
        self.max_threads.store(max_threads, Ordering::SeqCst);
        *lock(&self.pool) = Arc::new(Semaphore::new(pool));
    }

    pub(crate) fn set_strict(&self, strict: bool) {
        self.strict.store(strict, Ordering::SeqCst);
    }

    /// Takes a place for a new actor (a dedicated place is counted at once).
    pub(crate) fn place(&self) -> Placement {
        let max = self.max_threads.load(Ordering::SeqCst);
        let took = self
            .dedicated
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if took {
            Placement::Dedicated
        } else if self.strict.load(Ordering::SeqCst) {
            Placement::Refused(max)
        } else {
            Placement::Shared(lock(&self.pool).clone())
        }
    }

    /// Gives back a place taken by [`GilPolicy::place`] for an actor that did not start.
    pub(crate) fn unplace(&self, p: &Placement) {
        if let Placement::Dedicated = p {
            self.dedicated.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn record(&self, pid: Pid, gate: Option<Arc<Semaphore>>) {
        lock(&self.actors).insert(pid, gate);
    }

    /// The actor exited: its place is free again.
    pub(crate) fn release(&self, pid: Pid) {
        if let Some(None) = lock(&self.actors).remove(&pid) {
            self.dedicated.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The gate of a live `release_gil` actor; `None` if it is not one.
    pub(crate) fn mode_of(&self, pid: Pid) -> Option<Option<Arc<Semaphore>>> {
        lock(&self.actors).get(&pid).cloned()
    }

    /// `release_gil` actors with calls of their own right now.
    #[cfg(test)]
    pub(crate) fn dedicated(&self) -> usize {
        self.dedicated.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_caps_dedicated_actors_then_shares_or_refuses() {
        let p = GilPolicy::new();
        p.set_limits(2, 1);
        assert!(matches!(p.place(), Placement::Dedicated));
        p.record(10, None);
        assert!(matches!(p.place(), Placement::Dedicated));
        p.record(11, None);
        assert!(matches!(p.place(), Placement::Shared(_)));
        p.set_strict(true);
        assert!(matches!(p.place(), Placement::Refused(2)));
        p.release(10);
        assert_eq!(p.dedicated(), 1);
        assert!(matches!(p.place(), Placement::Dedicated));
        p.release(99);
        assert_eq!(p.dedicated(), 2);
    }
}
