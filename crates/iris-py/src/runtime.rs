//! `iris.Runtime`: the facade's runtime with Python handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use iris::{
    ExitInfo, ExitReason, Factory, MeshError, Message, OverflowPolicy, Pid, SpawnOptions, Strategy,
    parse_strategy,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::convert::{Payload, PidArg, PyExitInfo, message_to_py, payload_bytes, policy_arg};
use crate::errors::{Kind, actor_err, err};
use crate::handler::{GilPolicy, Placement, blocking_behavior, format_exception, sync_behavior};
use crate::lane::{Lanes, bytes_object};
use crate::mailbox::{PyMailbox, timeout_arg, touching_mailboxes, wait_sliced};

/// The Iris runtime: spawn actors with Python handlers, send them bytes, stop and join them.
/// A context manager: leaving the `with` block shuts it down.
#[pyclass(name = "Runtime", module = "iris", frozen)]
pub(crate) struct PyRuntime {
    /// `None` only while being dropped.
    rt: Option<iris::Runtime>,
    /// Its id among the runtimes the interpreter's exit stops ([`crate::exiting`]).
    exit_id: u64,
    /// [`crate::exiting::forks`] when it was made: in a forked child it is the parent's.
    forks: u64,
    gil: Arc<GilPolicy>,
    /// Set once a mailbox of this runtime has a policy under which a sender can wait; from
    /// then on sends release the interpreter.
    may_wait: AtomicBool,
    /// The interpreter lanes of its Python push actors ([`crate::lane`]).
    lanes: Lanes,
}

impl Drop for PyRuntime {
    fn drop(&mut self) {
        crate::exiting::unregister(self.exit_id);
        if self.forks != crate::exiting::forks() {
            // Inherited through fork: its threads are the parent's, and a lock one of them
            // held at the fork stays held here. Nothing of it may run: forget it, as the
            // exit hook's registry did (its lanes' actors with it).
            std::mem::forget(self.rt.take());
            Python::attach(|py| self.lanes.forget_all(py));
            return;
        }
        if let Some(rt) = self.rt.take() {
            // Nobody can reach these actors any more: stop them (pull actors hold the runtime
            // while their threads run). Dropping the last handle stops Tokio, which waits for
            // its threads; some may be waiting for the interpreter, so let go of it meanwhile.
            Python::attach(|py| {
                // The lanes hold their actors: drop them first, with the interpreter (their
                // queued messages are Python objects).
                self.lanes.clear(py);
                py.detach(move || {
                    rt.close_listener();
                    rt.shutdown_timeout(Duration::ZERO);
                    drop(rt);
                })
            });
        }
    }
}

fn callable(handler: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if handler.is_callable() {
        Ok(handler.clone().unbind())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a handler must be callable, not {}",
            handler.get_type().name()?
        )))
    }
}

fn strategy_arg(name: &str) -> PyResult<Strategy> {
    parse_strategy(name).ok_or_else(|| {
        err(
            Kind::Config,
            format!(
                "unknown strategy {name:?}; expected \"restartone\", \"restartall\" or \"restforone\""
            ),
        )
    })
}

fn mesh_err(e: MeshError) -> PyErr {
    err(Kind::Mesh, e.to_string())
}

/// A Python factory for supervisors: called (with the interpreter) only to restart a child;
/// it must return the new PID.
fn py_factory(factory: Py<PyAny>) -> Factory {
    Arc::new(move || {
        crate::exiting::attach(|py| {
            factory
                .bind(py)
                .call0()
                .and_then(|pid| pid.extract::<Pid>())
                .map_err(|e| format_exception(py, &e))
        })
        .unwrap_or_else(|| Err("the interpreter is exiting".to_owned()))
    })
}

fn capacity_arg(capacity: usize) -> PyResult<usize> {
    if capacity == 0 {
        Err(err(Kind::Config, "mailbox capacity must be at least 1"))
    } else {
        Ok(capacity)
    }
}

impl PyRuntime {
    fn rt(&self) -> &iris::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime is alive until dropped")
    }

    /// The runtime, for a call that would start or feed actors: an error in a forked child,
    /// where the runtime's threads are not (its actors would never run).
    #[inline]
    fn here(&self) -> PyResult<&iris::Runtime> {
        if self.forks != crate::exiting::forks() {
            return Err(err(
                Kind::Iris,
                "this Runtime was made before os.fork() and its threads stayed in the parent \
                 process; make a new iris.Runtime() in this one",
            ));
        }
        Ok(self.rt())
    }

    fn push(
        &self,
        handler: &Bound<'_, PyAny>,
        opts: SpawnOptions,
        release_gil: bool,
    ) -> PyResult<Pid> {
        let py = handler.py();
        let handler = callable(handler)?;
        self.here()?;
        if !release_gil {
            // Bounded mailboxes keep their policies in the core: no lane.
            let hold = opts
                .capacity
                .is_none()
                .then(|| self.lanes.prepare())
                .flatten();
            let laned = hold.is_some();
            let mut behavior = sync_behavior(handler, hold);
            if laned {
                behavior = self.lanes.noticed(behavior);
            }
            let budget = opts.budget;
            let pid = self
                .rt()
                .try_spawn_behavior(behavior, opts)
                .map_err(actor_err)?;
            if laned {
                self.lanes.open(py, self.rt(), pid, budget);
            }
            return Ok(pid);
        }
        let place = self.gil.place();
        let gate = match &place {
            Placement::Dedicated => None,
            Placement::Shared(g) => Some(g.clone()),
            Placement::Refused(max) => {
                return Err(err(
                    Kind::Spawn,
                    format!(
                        "release_gil thread cap of {max} reached (set_release_gil_strict(True))"
                    ),
                ));
            }
        };
        let behavior = blocking_behavior(handler, gate.clone());
        match self.rt().try_spawn_behavior(behavior, opts) {
            Ok(pid) => {
                self.gil.record(pid, gate);
                let gil = self.gil.clone();
                self.rt().on_exit(pid, move |pid, _| gil.release(pid));
                Ok(pid)
            }
            Err(e) => {
                self.gil.unplace(&place);
                Err(actor_err(e))
            }
        }
    }

    fn pull(&self, handler: &Bound<'_, PyAny>, opts: SpawnOptions) -> PyResult<Pid> {
        let handler = callable(handler)?;
        let rt = self.here()?.clone();
        self.rt()
            .spawn_with_mailbox_opts(
                move |rx| {
                    let pid = rx.pid();
                    let crash = crate::exiting::attach(|py| {
                        let mailbox = match Py::new(py, PyMailbox::new(rx)) {
                            Ok(m) => m,
                            Err(e) => return Some(format_exception(py, &e)),
                        };
                        match handler.bind(py).call1((mailbox,)) {
                            Ok(_) => None,
                            // Stopped while receiving: the stop's reason stands.
                            Err(e)
                                if e.is_instance(
                                    py,
                                    &crate::errors::class(py, Kind::MailboxClosed),
                                ) =>
                            {
                                None
                            }
                            Err(e) => Some(format_exception(py, &e)),
                        }
                    })
                    .flatten();
                    if let Some(why) = crash {
                        rt.exit(pid, ExitInfo::with_metadata(ExitReason::Crash, why));
                    }
                },
                opts,
            )
            .map_err(actor_err)
    }

    /// Runs a send: without the interpreter when it may wait (a `Block` policy) or a
    /// matcher may hold a mailbox lock while it waits for the interpreter.
    fn sending<T: Send>(&self, py: Python<'_>, send: impl Send + FnOnce(&iris::Runtime) -> T) -> T {
        let rt = self.rt();
        if self.may_wait.load(Ordering::SeqCst) {
            py.detach(|| send(rt))
        } else {
            touching_mailboxes(py, || send(rt))
        }
    }

    /// Queues `msgs` for `pid` through the core's batch send; how many were queued.
    fn send_batch(&self, py: Python<'_>, pid: Pid, msgs: Vec<Message>) -> usize {
        self.sending(py, |rt| rt.send_many(pid, msgs))
    }

    fn send_bytes(&self, py: Python<'_>, pid: Pid, data: bytes::Bytes) -> bool {
        self.sending(py, |rt| rt.send(pid, Message::User(data)).is_ok())
    }

    /// [`PyRuntime::send_many`] to an actor with a lane: the payloads as `bytes` objects, in
    /// chunks, each through the lane as one stretch (or the core, as `send` would choose).
    fn send_many_laned(
        &self,
        py: Python<'_>,
        pid: Pid,
        messages: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        send_chunked(
            messages,
            |item| bytes_object(&item),
            |objs| {
                let queued = match self.lanes.send_objs(py, self.rt(), pid, objs) {
                    Some(queued) => queued,
                    None => {
                        let msgs = objs
                            .iter()
                            .map(|o| {
                                let b = o.bind(py).cast::<PyBytes>().map(|b| b.as_bytes());
                                Message::User(payload_bytes(b.unwrap_or_default()))
                            })
                            .collect();
                        self.send_batch(py, pid, msgs)
                    }
                };
                objs.clear();
                queued
            },
        )
    }

    /// Sends a bytes-like object: through the actor's lane when it takes it, else the core.
    #[inline]
    fn send_obj(&self, py: Python<'_>, pid: Pid, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Some(sent) = self.lanes.send(py, self.rt(), pid, data)? {
            return Ok(sent);
        }
        let data: Payload = data.extract()?;
        Ok(self.send_bytes(py, pid, data.0))
    }
}

/// Feeds the items of `messages`, converted by `convert`, to `flush` in order, in chunks of up
/// to 1024; returns how many `flush` queued, stopping at the first chunk it did not queue
/// whole (before a bad item after it is looked at, as a send per item would). A bad item
/// raises after the items before it went. `flush` empties the chunk.
fn send_chunked<T>(
    messages: &Bound<'_, PyAny>,
    convert: impl Fn(Bound<'_, PyAny>) -> PyResult<T>,
    mut flush: impl FnMut(&mut Vec<T>) -> usize,
) -> PyResult<usize> {
    const CHUNK: usize = 1024;
    let mut sent = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut failed = None;
    for item in items_of(messages)? {
        match item.and_then(&convert) {
            Ok(v) => chunk.push(v),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        if chunk.len() == CHUNK {
            let n = chunk.len();
            let queued = flush(&mut chunk);
            sent += queued;
            if queued < n {
                return Ok(sent);
            }
        }
    }
    if !chunk.is_empty() {
        let n = chunk.len();
        let queued = flush(&mut chunk);
        sent += queued;
        if queued < n {
            return Ok(sent);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

/// The items of `messages`: lists and tuples by index (no iterator object), anything else
/// through `iter()`.
fn items_of<'a, 'py>(
    messages: &'a Bound<'py, PyAny>,
) -> PyResult<Box<dyn Iterator<Item = PyResult<Bound<'py, PyAny>>> + 'a>> {
    Ok(if let Ok(list) = messages.cast::<PyList>() {
        Box::new(list.iter().map(Ok))
    } else if let Ok(tuple) = messages.cast::<PyTuple>() {
        Box::new(tuple.iter().map(Ok))
    } else {
        Box::new(messages.try_iter()?)
    })
}

fn opts(budget: usize, capacity: Option<usize>, parent: Option<Pid>) -> SpawnOptions {
    SpawnOptions {
        budget,
        capacity,
        parent,
    }
}

#[pymethods]
impl PyRuntime {
    /// A runtime on its own Tokio threads (`workers`: how many; default one per core).
    #[new]
    #[pyo3(signature = (workers=None))]
    fn new(py: Python<'_>, workers: Option<usize>) -> PyResult<Self> {
        let rt = match workers {
            Some(0) => return Err(err(Kind::Config, "workers must be at least 1")),
            Some(n) => py.detach(|| iris::Runtime::with_workers(n)),
            None => py.detach(iris::Runtime::try_new),
        }
        .map_err(actor_err)?;
        Ok(PyRuntime {
            exit_id: crate::exiting::register(&rt),
            forks: crate::exiting::forks(),
            rt: Some(rt),
            gil: Arc::new(GilPolicy::new()),
            may_wait: AtomicBool::new(false),
            lanes: Lanes::new(py),
        })
    }

    // ----- spawning ---------------------------------------------------------------------

    /// Spawns a push actor: `handler(msg)` runs once per message, one at a time, in order.
    /// With `release_gil=True` the calls run off the Tokio workers, which are handed off
    /// before each batch (still one at a time, in order).
    #[pyo3(signature = (handler, budget=100, release_gil=false))]
    fn spawn(&self, handler: &Bound<'_, PyAny>, budget: usize, release_gil: bool) -> PyResult<Pid> {
        self.push(handler, opts(budget, None, None), release_gil)
    }

    /// Spawns a push actor with a bounded mailbox of `capacity` messages (policy `dropnew`).
    #[pyo3(signature = (handler, budget, capacity))]
    fn spawn_py_handler_bounded(
        &self,
        handler: &Bound<'_, PyAny>,
        budget: usize,
        capacity: usize,
    ) -> PyResult<Pid> {
        let capacity = capacity_arg(capacity)?;
        self.push(handler, opts(budget, Some(capacity), None), false)
    }

    /// Spawns a pull actor: `handler(mailbox)` runs once on its own thread.
    #[pyo3(signature = (handler, budget=100))]
    fn spawn_with_mailbox(&self, handler: &Bound<'_, PyAny>, budget: usize) -> PyResult<Pid> {
        self.pull(handler, opts(budget, None, None))
    }

    /// Spawns a push actor that is stopped (`Shutdown`) when `parent` exits.
    #[pyo3(signature = (parent, handler, budget=100, release_gil=false))]
    fn spawn_child(
        &self,
        parent: PidArg,
        handler: &Bound<'_, PyAny>,
        budget: usize,
        release_gil: bool,
    ) -> PyResult<Pid> {
        self.push(handler, opts(budget, None, Some(parent.0)), release_gil)
    }

    /// Same as `spawn_child` (the seed's name for the budgeted form).
    #[pyo3(signature = (parent, handler, budget=100))]
    fn spawn_child_with_budget(
        &self,
        parent: PidArg,
        handler: &Bound<'_, PyAny>,
        budget: usize,
    ) -> PyResult<Pid> {
        self.push(handler, opts(budget, None, Some(parent.0)), false)
    }

    /// Spawns a pull actor that is stopped (`Shutdown`) when `parent` exits.
    #[pyo3(signature = (parent, handler, budget=100))]
    fn spawn_child_with_mailbox(
        &self,
        parent: PidArg,
        handler: &Bound<'_, PyAny>,
        budget: usize,
    ) -> PyResult<Pid> {
        self.pull(handler, opts(budget, None, Some(parent.0)))
    }

    /// Spawns `size` long-lived push workers under `parent`; returns their PIDs. Without a
    /// handler the workers accept and drop messages.
    #[pyo3(signature = (parent, size=4, handler=None, budget=100))]
    fn spawn_child_pool(
        &self,
        py: Python<'_>,
        parent: PidArg,
        size: usize,
        handler: Option<&Bound<'_, PyAny>>,
        budget: usize,
    ) -> PyResult<Vec<Pid>> {
        let noop;
        let handler = match handler {
            Some(h) => h,
            None => {
                noop = py.eval(c"lambda msg: None", None, None)?;
                &noop
            }
        };
        let mut pids = Vec::with_capacity(size);
        for _ in 0..size {
            match self.push(handler, opts(budget, None, Some(parent.0)), false) {
                Ok(pid) => pids.push(pid),
                Err(e) => {
                    for pid in pids {
                        self.rt().stop(pid);
                    }
                    return Err(e);
                }
            }
        }
        Ok(pids)
    }

    /// Reserves a PID for a virtual actor that starts on its first message; with
    /// `idle_timeout_ms` it stops (`Timeout`) after that long idle, or, with
    /// `reactivate=True`, goes dormant and restarts on the next message.
    #[pyo3(signature = (handler, budget=100, idle_timeout_ms=None, reactivate=false))]
    fn spawn_virtual(
        &self,
        handler: &Bound<'_, PyAny>,
        budget: usize,
        idle_timeout_ms: Option<u64>,
        reactivate: bool,
    ) -> PyResult<Pid> {
        let handler = callable(handler)?;
        self.here()?
            .try_spawn_virtual(
                sync_behavior(handler, None),
                budget,
                idle_timeout_ms.map(Duration::from_millis),
                reactivate,
            )
            .map_err(actor_err)
    }

    /// Spawns an actor that records every message it receives (see `get_messages`).
    #[pyo3(signature = (budget=100))]
    fn spawn_observed_handler(&self, budget: usize) -> PyResult<Pid> {
        self.here()?
            .spawn_observed_handler(budget)
            .map_err(actor_err)
    }

    /// Spawns an observed actor and registers it under `path`.
    #[pyo3(signature = (budget, path))]
    fn spawn_with_path_observed(&self, py: Python<'_>, budget: usize, path: &str) -> PyResult<Pid> {
        let rt = self.here()?;
        py.detach(|| rt.spawn_with_path_observed(budget, path))
            .map_err(actor_err)
    }

    /// Every message an observed actor received so far, oldest first.
    fn get_messages<'py>(&self, py: Python<'py>, pid: PidArg) -> PyResult<Bound<'py, PyList>> {
        let msgs = self.rt().get_messages(pid.0);
        let items = msgs
            .iter()
            .map(|m| message_to_py(py, m))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    // ----- sending ----------------------------------------------------------------------

    /// Sends bytes; `True` if queued. `False` (never an exception) for unknown or dead PIDs
    /// and for a full mailbox under `dropnew`. Under `block` it waits for room. Raises only
    /// through a runtime a forked child inherited (see `here`).
    fn send(&self, py: Python<'_>, pid: PidArg, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.here()?;
        self.send_obj(py, pid.0, data)
    }

    /// Sends every bytes-like object of `messages` (any iterable) to `pid`, in order, in one
    /// call; returns how many were queued, stopping at the first that is not (dead PID, full
    /// `dropnew` mailbox). A non-bytes item raises `TypeError` after the ones before it went.
    /// The payloads go to the core in chunks of up to 1024 items taken from `messages`
    /// first, each chunk queued under one mailbox lock.
    fn send_many(
        &self,
        py: Python<'_>,
        pid: PidArg,
        messages: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        self.here()?;
        if self.lanes.has(py, pid.0) {
            return self.send_many_laned(py, pid.0, messages);
        }
        send_chunked(
            messages,
            |item| Ok(Message::User(item.extract::<Payload>()?.0)),
            |chunk| self.send_batch(py, pid.0, std::mem::take(chunk)),
        )
    }

    /// Sends bytes to the actor registered under `name`; `False` if there is none.
    fn send_named(&self, py: Python<'_>, name: &str, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        match self.here()?.whereis(name) {
            Some(pid) => self.send_obj(py, pid, data),
            None => {
                data.extract::<Payload>()?;
                Ok(false)
            }
        }
    }

    /// Sends `data` once after `ms` milliseconds; returns the timer id.
    fn send_after(&self, pid: PidArg, ms: u64, data: Payload) -> PyResult<u64> {
        Ok(self.here()?.send_after(pid.0, ms, data.0))
    }

    /// Sends `data` every `ms` milliseconds (the first after one interval); returns the id.
    fn send_interval(&self, pid: PidArg, ms: u64, data: Payload) -> PyResult<u64> {
        Ok(self.here()?.send_interval(pid.0, ms, data.0))
    }

    /// Cancels a timer; `True` only if it was still pending.
    fn cancel_timer(&self, timer_id: u64) -> bool {
        self.rt().cancel_timer(timer_id)
    }

    /// Pending timers.
    fn timer_count(&self) -> usize {
        self.rt().timer_count()
    }

    // ----- lifecycle --------------------------------------------------------------------

    /// Stops an actor (`Killed`) after the message it is handling; `False` if it was not
    /// alive.
    fn stop(&self, py: Python<'_>, pid: PidArg) -> bool {
        touching_mailboxes(py, || self.rt().stop(pid.0))
    }

    /// Waits (interpreter released) until the actor has exited; returns its `ExitInfo`, or
    /// `None` for an unknown PID or when `timeout` seconds pass.
    #[pyo3(signature = (pid, timeout=None))]
    fn join(
        &self,
        py: Python<'_>,
        pid: PidArg,
        timeout: Option<f64>,
    ) -> PyResult<Option<PyExitInfo>> {
        let timeout = timeout_arg(timeout)?;
        let rt = self.here()?;
        let pid = pid.0;
        let mut unknown = false;
        let got = wait_sliced(py, timeout, |t| {
            let started = Instant::now();
            let r = match t {
                Some(t) => rt.join_timeout(pid, t),
                None => rt.join(pid),
            };
            // An unknown PID answers `None` at once; a live one only when the wait passed.
            if r.is_none() && t.is_some_and(|t| started.elapsed() < t) {
                unknown = true;
                return Some(None);
            }
            r.map(Some)
        })?;
        if unknown {
            return Ok(None);
        }
        Ok(got.flatten().map(PyExitInfo::from))
    }

    /// The exit of an actor that already ended (recent ones are remembered); `None` if it is
    /// alive or unknown.
    fn exit_info(&self, pid: PidArg) -> Option<PyExitInfo> {
        self.rt().exit_info(pid.0).map(PyExitInfo::from)
    }

    /// `True` while the actor is alive.
    fn is_alive(&self, pid: PidArg) -> bool {
        self.rt().is_alive(pid.0)
    }

    /// `True` for a virtual actor that is reserved but not running.
    fn is_dormant(&self, pid: PidArg) -> bool {
        self.rt().is_dormant(pid.0)
    }

    /// Queued user messages; `None` for unknown or dead PIDs.
    fn mailbox_size(&self, py: Python<'_>, pid: PidArg) -> Option<usize> {
        let core = touching_mailboxes(py, || self.rt().mailbox_size(pid.0))?;
        Some(self.lanes.adjust_size(py, pid.0, core))
    }

    /// Sets the overflow policy of a bounded mailbox: `"dropnew"`, `"dropold"`, `"redirect"`
    /// (needs `target`), `"spill"` (needs `target`) or `"block"`.
    #[pyo3(signature = (pid, policy, target=None))]
    fn set_overflow_policy(
        &self,
        py: Python<'_>,
        pid: PidArg,
        policy: &str,
        target: Option<PidArg>,
    ) -> PyResult<()> {
        let policy = policy_arg(policy, target.map(|t| t.0))?;
        if !matches!(policy, OverflowPolicy::DropNew | OverflowPolicy::DropOld) {
            self.may_wait.store(true, Ordering::SeqCst);
        }
        touching_mailboxes(py, || self.rt().set_overflow_policy(pid.0, policy)).map_err(actor_err)
    }

    /// The PIDs of an actor's live children.
    fn children_of(&self, pid: PidArg) -> Vec<Pid> {
        self.rt().children_of(pid.0)
    }

    /// Live actors of this runtime.
    fn actor_count(&self) -> usize {
        self.rt().actor_count()
    }

    /// Stops every actor (`Shutdown`) and timer; waits up to `timeout` seconds (default 5)
    /// for the exits. Returns `True` if all exited in time. Spawning fails afterwards.
    #[pyo3(signature = (timeout=None))]
    fn shutdown(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = timeout_arg(timeout)?.unwrap_or(Duration::from_secs(5));
        let rt = self.rt();
        let done = py.detach(|| rt.shutdown_timeout(timeout));
        self.lanes.sweep(py);
        Ok(done)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        py.detach(|| self.rt().close_listener());
        self.shutdown(py, None)?;
        Ok(false)
    }

    // ----- hot swap ---------------------------------------------------------------------

    /// Replaces a push actor's handler atomically; returns the new version. The actor keeps
    /// its `release_gil` mode.
    fn hot_swap(&self, py: Python<'_>, pid: PidArg, handler: &Bound<'_, PyAny>) -> PyResult<u64> {
        let handler = callable(handler)?;
        let behavior = match self.gil.mode_of(pid.0) {
            Some(gate) => blocking_behavior(handler, gate),
            None => sync_behavior(handler, self.lanes.shared(py, pid.0)),
        };
        // Released: the swap may drop old handlers, which must not run Python code under
        // the history lock.
        py.detach(|| self.rt().hot_swap_behavior(pid.0, behavior))
            .map_err(actor_err)
    }

    /// The version of the actor's current handler (the first is 1); `None` if it is not a
    /// live push actor.
    fn behavior_version(&self, pid: PidArg) -> Option<u64> {
        self.rt().behavior_version(pid.0)
    }

    /// Goes back `steps` handlers in the actor's history; returns the version now current.
    #[pyo3(signature = (pid, steps=1))]
    fn rollback_behavior(&self, py: Python<'_>, pid: PidArg, steps: usize) -> PyResult<u64> {
        py.detach(|| self.rt().rollback_behavior(pid.0, steps))
            .map_err(actor_err)
    }

    // ----- names and paths --------------------------------------------------------------

    /// Registers `name` for `pid`; raises `RegistryError` if a live actor holds it.
    fn register(&self, name: &str, pid: PidArg) -> PyResult<()> {
        self.rt().register(name, pid.0).map_err(actor_err)
    }

    /// Removes a name; returns the PID it named.
    fn unregister(&self, name: &str) -> Option<Pid> {
        self.rt().unregister(name)
    }

    /// The PID registered under `name`, or `None`.
    fn whereis(&self, name: &str) -> Option<Pid> {
        self.rt().whereis(name)
    }

    /// Same as `whereis`.
    fn resolve(&self, name: &str) -> Option<Pid> {
        self.rt().resolve(name)
    }

    /// Registers a hierarchical path such as `"/svc/payment/processor"`; a malformed path
    /// raises `InvalidPathError` (a `ValueError`).
    fn register_path(&self, path: &str, pid: PidArg) -> PyResult<()> {
        self.rt().register_path(path, pid.0).map_err(actor_err)
    }

    /// Removes a path; returns the PID it named.
    fn unregister_path(&self, path: &str) -> Option<Pid> {
        self.rt().unregister_path(path)
    }

    /// The PID registered under `path`, or `None`.
    fn whereis_path(&self, path: &str) -> Option<Pid> {
        self.rt().whereis_path(path)
    }

    /// Every registration below `prefix` as `(path, pid)`, sorted by path.
    fn list_children(&self, prefix: &str) -> PyResult<Vec<(String, Pid)>> {
        self.rt().list_children(prefix).map_err(actor_err)
    }

    /// The registrations exactly one level below `prefix`, sorted by path.
    fn list_children_direct(&self, prefix: &str) -> PyResult<Vec<(String, Pid)>> {
        self.rt().list_children_direct(prefix).map_err(actor_err)
    }

    // ----- links and monitors -----------------------------------------------------------

    /// Links two actors: when one exits abnormally the other is killed, unless it traps
    /// exits, in which case it receives an `EXIT` system message.
    fn link(&self, py: Python<'_>, a: PidArg, b: PidArg) -> PyResult<()> {
        py.detach(|| self.rt().link(a.0, b.0)).map_err(actor_err)
    }

    /// Removes a link; `False` if there was none.
    fn unlink(&self, py: Python<'_>, a: PidArg, b: PidArg) -> bool {
        py.detach(|| self.rt().unlink(a.0, b.0))
    }

    /// With `trap=True` the actor receives linked exits as `EXIT` messages instead of dying.
    #[pyo3(signature = (pid, trap=true))]
    fn trap_exit(&self, py: Python<'_>, pid: PidArg, trap: bool) -> PyResult<()> {
        py.detach(|| self.rt().trap_exit(pid.0, trap))
            .map_err(actor_err)
    }

    /// `watcher` receives a `DOWN` system message when `target` exits (at once, with reason
    /// `"noproc"`, if it is already gone). Returns the monitor reference.
    fn monitor(&self, py: Python<'_>, watcher: PidArg, target: PidArg) -> PyResult<u64> {
        py.detach(|| self.rt().monitor(watcher.0, target.0))
            .map_err(actor_err)
    }

    /// Removes a monitor; `False` if it already fired or never existed.
    fn demonitor(&self, py: Python<'_>, monitor_ref: u64) -> bool {
        py.detach(|| self.rt().demonitor(monitor_ref))
    }

    // ----- supervision ------------------------------------------------------------------

    /// Watches `pid` under the runtime's root supervisor (no restarts: no factory).
    /// Strategies: `"restartone"`, `"restartall"`, `"restforone"`.
    #[pyo3(signature = (pid, strategy="restartone"))]
    fn watch(&self, py: Python<'_>, pid: PidArg, strategy: &str) -> PyResult<()> {
        let strategy = strategy_arg(strategy)?;
        py.detach(|| self.rt().watch(pid.0, strategy))
            .map_err(actor_err)
    }

    /// Supervises `pid` under the root supervisor; after a failure `factory()` is called to
    /// start the replacement and must return its PID. It is never called at registration.
    #[pyo3(signature = (pid, factory, strategy="restartone"))]
    fn supervise_with_factory(
        &self,
        py: Python<'_>,
        pid: PidArg,
        factory: &Bound<'_, PyAny>,
        strategy: &str,
    ) -> PyResult<()> {
        let strategy = strategy_arg(strategy)?;
        let factory = py_factory(callable(factory)?);
        py.detach(|| self.rt().supervise_with_factory(pid.0, factory, strategy))
            .map_err(actor_err)
    }

    /// PIDs supervised by the root supervisor.
    fn child_pids(&self, py: Python<'_>) -> Vec<Pid> {
        py.detach(|| self.rt().child_pids())
    }

    /// Number of actors supervised by the root supervisor.
    fn children_count(&self, py: Python<'_>) -> usize {
        py.detach(|| self.rt().children_count())
    }

    /// Watches the actors registered one level below `prefix`; returns their PIDs.
    fn watch_path(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<Pid>> {
        py.detach(|| self.rt().watch_path(prefix))
            .map_err(actor_err)
    }

    /// Creates (or returns) the supervisor scoped to `path`; returns its PID.
    fn create_path_supervisor(&self, py: Python<'_>, path: &str) -> PyResult<Pid> {
        py.detach(|| self.rt().create_path_supervisor(path))
            .map_err(actor_err)
    }

    /// Watches `pid` under the path supervisor of `path`.
    fn path_supervisor_watch(&self, py: Python<'_>, path: &str, pid: PidArg) -> PyResult<()> {
        py.detach(|| self.rt().path_supervisor_watch(path, pid.0))
            .map_err(actor_err)
    }

    /// Supervises `pid` under the path supervisor of `path`, restarting it with `factory`.
    #[pyo3(signature = (path, pid, factory, strategy="restartone"))]
    fn path_supervise_with_factory(
        &self,
        py: Python<'_>,
        path: &str,
        pid: PidArg,
        factory: &Bound<'_, PyAny>,
        strategy: &str,
    ) -> PyResult<()> {
        let strategy = strategy_arg(strategy)?;
        let factory = py_factory(callable(factory)?);
        py.detach(|| {
            self.rt()
                .path_supervise_with_factory(path, pid.0, factory, strategy)
        })
        .map_err(actor_err)
    }

    /// PIDs supervised by the path supervisor of `path` (empty if there is none).
    fn path_supervisor_children(&self, py: Python<'_>, path: &str) -> Vec<Pid> {
        py.detach(|| self.rt().path_supervisor_children(path))
    }

    /// Removes the path supervisor (its children keep running); `False` if there was none.
    fn remove_path_supervisor(&self, py: Python<'_>, path: &str) -> bool {
        py.detach(|| self.rt().remove_path_supervisor(path))
    }

    // ----- mesh -------------------------------------------------------------------------

    /// Accepts mesh connections on `addr` (`"127.0.0.1:0"` picks a port); returns the bound
    /// address. A bind failure raises `MeshError`.
    fn listen(&self, py: Python<'_>, addr: &str) -> PyResult<String> {
        py.detach(|| self.rt().listen(addr))
            .map(|a| a.to_string())
            .map_err(mesh_err)
    }

    /// Stops accepting mesh connections; `False` if not listening.
    fn close_listener(&self, py: Python<'_>) -> bool {
        py.detach(|| self.rt().close_listener())
    }

    /// Resolves `name` on the node at `addr` (interpreter released); returns a local proxy
    /// PID, or `None` if the name is not registered there.
    fn resolve_remote(&self, py: Python<'_>, addr: &str, name: &str) -> PyResult<Option<Pid>> {
        py.detach(|| self.rt().resolve_remote_blocking(addr, name))
            .map_err(mesh_err)
    }

    /// `await rt.resolve_remote_py(addr, name)`: `resolve_remote` without blocking the
    /// event loop.
    fn resolve_remote_py<'py>(
        slf: &Bound<'py, Self>,
        addr: &str,
        name: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        let call = slf.getattr("resolve_remote")?;
        event_loop.call_method1("run_in_executor", (py.None(), call, addr, name))
    }

    /// Sends bytes to `pid` on the node at `addr`; `False` if it cannot be queued.
    fn send_remote(&self, py: Python<'_>, addr: &str, pid: u64, data: Payload) -> bool {
        py.detach(|| self.rt().send_remote(addr, pid, data.0))
    }

    /// Monitors `pid` on the node at `addr`; returns the local proxy PID, which exits
    /// (`Disconnect` when the node goes down) when the remote actor does.
    fn monitor_remote(&self, py: Python<'_>, addr: &str, pid: u64) -> PyResult<Pid> {
        py.detach(|| self.rt().monitor_remote_blocking(addr, pid))
            .map_err(mesh_err)
    }

    /// `True` if the node at `addr` answers a handshake and a ping within `timeout_ms`.
    #[pyo3(signature = (addr, timeout_ms=1000))]
    fn is_node_up(&self, py: Python<'_>, addr: &str, timeout_ms: u64) -> bool {
        py.detach(|| {
            self.rt()
                .is_node_up(addr, Duration::from_millis(timeout_ms))
        })
    }

    // ----- configuration ----------------------------------------------------------------

    /// `release_gil=True` actors: up to `max_threads` run their batches whenever they have
    /// work; past that they share `gil_pool_size` slots, a batch waiting for a free one (or,
    /// when strict, spawning fails).
    fn set_release_gil_limits(&self, max_threads: usize, gil_pool_size: usize) -> PyResult<()> {
        if gil_pool_size == 0 {
            return Err(err(Kind::Config, "gil_pool_size must be at least 1"));
        }
        self.gil.set_limits(max_threads, gil_pool_size);
        Ok(())
    }

    /// When `True`, `spawn(..., release_gil=True)` raises `SpawnError` past the
    /// `max_threads` cap instead of using the shared pool.
    fn set_release_gil_strict(&self, strict: bool) {
        self.gil.set_strict(strict);
    }

    fn __repr__(&self) -> String {
        format!("Runtime(actors={})", self.rt().actor_count())
    }
}

/// Installs the fast `Runtime.send` ([`fast_send`]).
pub(crate) fn install_fast_send(py: Python<'_>) -> PyResult<()> {
    fast_send::install(py)
}

/// `Runtime.send` as the interpreter calls it: a vectorcall method without PyO3's generic
/// argument handling, for the one call a hot Python sender makes per message. Calls with an
/// `int` PID and a `bytes` payload, by position, are handled here; any other call (keywords,
/// other types, a wrong count) goes to the PyO3 method it replaces, which raises as usual.
mod fast_send {
    use std::ffi::c_char;
    use std::sync::OnceLock;

    use pyo3::ffi;
    use pyo3::prelude::*;

    use super::PyRuntime;

    /// The PyO3 method the fast one replaces (it handles every other call).
    static GENERIC: OnceLock<Py<PyAny>> = OnceLock::new();

    /// The method definition (it must outlive the type).
    struct Def(ffi::PyMethodDef);
    // SAFETY: the definition is written once, before it is shared, and only read after.
    unsafe impl Sync for Def {}
    unsafe impl Send for Def {}
    static DEF: OnceLock<Def> = OnceLock::new();

    /// Replaces `Runtime.send` with the fast method; keeps the PyO3 one for other calls.
    pub(super) fn install(py: Python<'_>) -> PyResult<()> {
        let ty = py.get_type::<PyRuntime>();
        let generic = ty.getattr("send")?;
        let doc = format!(
            "send($self, pid, data)\n--\n\n{}\0",
            generic
                .getattr("__doc__")
                .and_then(|d| d.extract::<String>())
                .unwrap_or_default()
                .replace('\0', "")
        );
        let doc: &'static str = Box::leak(doc.into_boxed_str());
        let _ = GENERIC.set(generic.unbind());
        let def = DEF.get_or_init(|| {
            Def(ffi::PyMethodDef {
                ml_name: c"send".as_ptr(),
                ml_meth: ffi::PyMethodDefPointer {
                    PyCFunctionFastWithKeywords: send,
                },
                ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
                ml_doc: doc.as_ptr().cast::<c_char>(),
            })
        });
        // SAFETY: `ty` is the live `Runtime` type object; `def` is 'static and never written
        // again (the interpreter only reads it). A new reference comes back, or null with an
        // exception set.
        let descr = unsafe {
            let raw =
                ffi::PyDescr_NewMethod(ty.as_type_ptr(), std::ptr::from_ref(&def.0).cast_mut());
            Bound::from_owned_ptr_or_err(py, raw)?
        };
        ty.setattr("send", descr)
    }

    /// The fast `send(pid, data)`.
    unsafe extern "C" fn send(
        slf: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject {
        // SAFETY: the interpreter calls a method with its lock held; `slf` is a `Runtime`
        // (the descriptor checks the type) and `args` holds `nargs` borrowed references.
        unsafe {
            let nargs = ffi::PyVectorcall_NARGS(nargsf as usize);
            let py = Python::assume_attached();
            if !kwnames.is_null()
                || nargs != 2
                || ffi::PyLong_CheckExact(*args) == 0
                || ffi::PyBytes_CheckExact(*args.add(1)) == 0
            {
                return generic(py, slf, args, nargs, kwnames);
            }
            let pid = ffi::PyLong_AsUnsignedLongLong(*args);
            // Negative or too big: no such PID (as the generic method reads it).
            let pid = if pid == u64::MAX && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                0
            } else {
                pid
            };
            let rt = Borrowed::from_ptr(py, slf).cast_unchecked::<PyRuntime>();
            let data = Borrowed::from_ptr(py, *args.add(1));
            let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let rt = rt.get();
                rt.here()?;
                rt.send_obj(py, pid, &data)
            }));
            let result = match sent {
                Ok(Ok(sent)) => Ok(sent),
                Ok(Err(e)) => Err(e),
                Err(panic) => Err(pyo3::panic::PanicException::new_err(iris_panic_message(
                    panic.as_ref(),
                ))),
            };
            match result {
                Ok(true) => ffi::Py_NewRef(ffi::Py_True()),
                Ok(false) => ffi::Py_NewRef(ffi::Py_False()),
                Err(e) => {
                    e.restore(py);
                    std::ptr::null_mut()
                }
            }
        }
    }

    /// Hands a call the fast path does not take to the PyO3 method.
    ///
    /// # Safety
    /// As [`send`]'s arguments.
    unsafe fn generic(
        py: Python<'_>,
        slf: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject {
        let Some(generic) = GENERIC.get() else {
            pyo3::exceptions::PyRuntimeError::new_err("Runtime.send is not installed").restore(py);
            return std::ptr::null_mut();
        };
        let kw = if kwnames.is_null() {
            0
        } else {
            // SAFETY: `kwnames` is a tuple of the keyword names.
            unsafe { ffi::PyTuple_GET_SIZE(kwnames) }
        };
        let total = (nargs + kw) as usize;
        let mut all: Vec<*mut ffi::PyObject> = Vec::with_capacity(total + 1);
        all.push(slf);
        // SAFETY: `args` holds `nargs` positional then `kw` keyword values.
        all.extend((0..total).map(|i| unsafe { *args.add(i) }));
        // SAFETY: `all` holds borrowed references that outlive the call; the result is a
        // new reference or null with an exception set, which the caller returns as it is.
        unsafe {
            ffi::PyObject_Vectorcall(
                generic.as_ptr(),
                all.as_ptr(),
                (nargs + 1) as usize,
                kwnames,
            )
        }
    }

    fn iris_panic_message(p: &(dyn std::any::Any + Send)) -> String {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic in Runtime.send".to_owned())
    }
}
