//! Leaving the interpreter cleanly while actors run.
//!
//! Handlers run on the runtime's own threads. Once the interpreter starts finalizing, such a
//! thread that takes the interpreter lock again (a handler coming back from `time.sleep`, the
//! next message of a batch) is ended by CPython from under Rust frames, which aborts the
//! process. So `iris` registers an `atexit` hook that runs before finalization: it marks the
//! interpreter as exiting (from then on no runtime thread calls into Python), shuts down every
//! live runtime, and waits for the Python calls already in flight to return, with the lock
//! released so they can finish.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Set by the `atexit` hook: no runtime thread enters Python any more.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Calls into Python from runtime threads that are running right now.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// The live runtimes, by the id [`register`] gave them.
static RUNTIMES: Mutex<Vec<(u64, iris::Runtime)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Forks this process descends from (since the module was imported).
static FORKS: AtomicU64 = AtomicU64::new(0);

/// How many forks this process descends from: a runtime made at another count belongs to an
/// ancestor, whose threads are not here.
#[inline]
pub(crate) fn forks() -> u64 {
    FORKS.load(Ordering::SeqCst)
}

/// How long the hook waits for the actors' exits and the calls in flight, in all.
const EXIT_WAIT: Duration = Duration::from_secs(5);

fn runtimes() -> std::sync::MutexGuard<'static, Vec<(u64, iris::Runtime)>> {
    RUNTIMES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes a live runtime for the exit hook; returns the id to [`unregister`] it with.
pub(crate) fn register(rt: &iris::Runtime) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    runtimes().push((id, rt.clone()));
    id
}

/// Forgets a runtime being dropped (its handle here would keep Tokio alive).
pub(crate) fn unregister(id: u64) {
    runtimes().retain(|(i, _)| *i != id);
}

/// `true` once the interpreter is exiting.
pub(crate) fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

thread_local! {
    /// Counted calls this thread is inside: a call nested in one (a handler's call within
    /// its batch's hold of the interpreter) needs no count of its own.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A runtime thread's call into Python, counted while it lives ([`enter`]).
pub(crate) struct InFlight {
    counted: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
        if self.counted {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Counts the calling runtime thread as about to enter Python until the guard drops; `None`
/// once the interpreter is exiting (the thread must stay out of Python).
pub(crate) fn enter() -> Option<InFlight> {
    let counted = DEPTH.with(|d| d.replace(d.get() + 1)) == 0;
    // Counted before the check (both sequentially consistent, as the hook sets the flag
    // before it reads the count): either the hook waits for this call, or this call sees
    // the flag and stays out.
    if counted {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    }
    let guard = InFlight { counted };
    (!exiting()).then_some(guard)
}

/// Runs `f` with the interpreter from a runtime thread, counted as a call in flight; `None`,
/// without touching Python, once the interpreter is exiting.
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let _in_flight = enter()?;
    Some(Python::attach(f))
}

/// Registered with `os.register_at_fork(after_in_child=...)` at import: a forked child has
/// none of its parent's runtime threads, so the exit hook must not wait for the inherited
/// runtimes' actors (it waited its whole five seconds before the interpreter could leave).
/// Their handles are forgotten, not dropped: nothing of them may run in the child.
/// The calls in flight were the parent's threads' but this one, which counts itself once
/// if it forked from inside a counted call (a handler).
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::SeqCst);
    std::mem::forget(std::mem::take(&mut *runtimes()));
    let mine = DEPTH.with(|d| usize::from(d.get() > 0));
    IN_FLIGHT.store(mine, Ordering::SeqCst);
}

/// Registered with `atexit` at import: stops every runtime and lets the Python calls in
/// flight return before the interpreter finalizes. Returns `True` if everything stopped in
/// time.
#[pyfunction]
pub(crate) fn _at_exit(py: Python<'_>) -> bool {
    EXITING.store(true, Ordering::SeqCst);
    let live: Vec<iris::Runtime> = runtimes().iter().map(|(_, rt)| rt.clone()).collect();
    py.detach(move || {
        let deadline = Instant::now() + EXIT_WAIT;
        let mut stopped = true;
        for rt in &live {
            rt.close_listener();
            stopped &= rt.shutdown_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        // A call counts itself for the time it checks the flag too; this thread holds none.
        while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        stopped
    })
}
