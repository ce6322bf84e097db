//! The interpreter lane: user messages sent from Python to a busy Python push actor queue
//! as Python objects behind the interpreter lock instead of going through the core.
//!
//! Both ends of such a send hold the interpreter lock already: the sender is Python code,
//! the handler runs Python code. A lane is a queue that only the lock's holder touches, so
//! a send into it is a push of a reference (no copy of the payload, no atomic operation on
//! a shared line), and the actor takes each message from it just before calling its
//! handler. The core is told once per stretch of work: the first message into an idle lane
//! also queues a *poke* in the actor's mailbox, and the actor, handling the poke, drains
//! the lane (up to its budget, then it pokes itself again behind whatever the mailbox got
//! meanwhile). A message a Python sender gets into the lane so takes the place of that
//! poke, which is behind everything the sender queued before: per-sender order holds. While
//! the lane is idle, a send to an actor with no backlog in its mailbox takes the core's path
//! (handing the message to a parked actor wakes it at once), so request/response hops and
//! fan-outs pay nothing extra; a lane fills only behind a backlog.
//!
//! Lanes are made for push actors run on the scheduler with unbounded mailboxes (bounds
//! and overflow policies are the core's), and only where the interpreter has a lock
//! (free-threaded builds send through the core).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use iris::{ActorView, Behavior, Bytes, Flow, Message, Pid};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{Payload, payload_bytes};
use crate::handler::{format_exception, stop};
use crate::mailbox::{MATCHERS, touching_mailboxes};

/// A value touched only by the holder of the interpreter lock.
///
/// Every access goes through [`GilCell::with`], which takes a [`Python`] token; the closure
/// given to it must run no Python code (not even a reference drop that could run a
/// finalizer), so the lock is held for the whole borrow. The `RefCell` turns a use from
/// inside such a borrow into a refused access rather than undefined behaviour.
struct GilCell<T>(RefCell<T>);

// SAFETY: lanes exist only where the interpreter has a lock ([`Lanes::new`]). Each access
// holds a `Python` token, so it runs while this thread holds that lock, and the closure runs
// no Python code, so the lock is not let go meanwhile: accesses from different threads
// never overlap. The values inside (queues of `Py` references, flags) may move between
// threads.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    fn new(value: T) -> GilCell<T> {
        GilCell(RefCell::new(value))
    }

    /// Runs `f` on the value; `None` if it is borrowed already (a re-entrant use).
    fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut value = self.0.try_borrow_mut().ok()?;
        Some(f(&mut value))
    }
}

/// A payload as the lane keeps it: an immutable `bytes` object, the one given or (for any
/// other bytes-like object) a copy, as the core's path copies it.
pub(crate) fn bytes_object(data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if data.is_exact_instance_of::<PyBytes>() {
        return Ok(data.clone().unbind());
    }
    let payload: Payload = data.extract()?;
    Ok(PyBytes::new(data.py(), &payload.0).into_any().unbind())
}

/// A behaviour's hold on its actor's lane: the lanes of its runtime (weakly: a lane holds
/// a view of its actor, which holds its behaviours).
pub(crate) struct LaneUse {
    shared: Weak<Shared>,
}

/// The payload of a poke. A poke is recognised by its address: user payloads are copies
/// or the converter's own one-byte statics, never this one.
static POKE: [u8; 1] = [b'P'];

fn poke() -> Message {
    Message::User(Bytes::from_static(&POKE))
}

/// Queues the poke of `pid`'s lane in its mailbox (out of the table's borrow: a send may let
/// go of the interpreter, see `touching_mailboxes`); `false` if the actor is gone.
fn wake(py: Python<'_>, rt: &iris::Runtime, pid: Pid) -> bool {
    touching_mailboxes(py, || rt.send(pid, poke()).is_ok())
}

/// `true` for the lane's wake-up message.
pub(crate) fn is_poke(msg: &Message) -> bool {
    matches!(msg, Message::User(b) if b.len() == 1 && std::ptr::eq(b.as_ptr(), POKE.as_ptr()))
}

/// One actor's lane, kept in the lane table itself (a send finds it with the one lookup).
struct Lane {
    /// The actor; dropped with the lane once the actor ended.
    view: ActorView,
    /// Messages handled per poke (the actor's reduction budget).
    budget: usize,
    queue: VecDeque<Py<PyAny>>,
    /// `true` from the first message into an idle lane until a drain finds it empty: a poke
    /// is queued or being handled, so a send only adds to the queue.
    poked: bool,
    /// `true` while a poke sits in the mailbox (for `mailbox_size`).
    poke_queued: bool,
}

/// A PID hasher for the lane table: the PID itself in the low bits (PIDs spawned together,
/// and so used together, share cache lines), a multiply in the top seven (hashbrown's tag
/// byte, so a probe rejects neighbours unread), as the core's actor table does.
#[derive(Default)]
struct PidHash(u64);

impl Hasher for PidHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n & !(0x7f << 57)) | (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & (0x7f << 57));
    }
}

/// The lanes by PID, and where the last lookup found one (a sender mostly sends to one actor,
/// and the actor drains the same lane).
#[derive(Default)]
struct LaneMap {
    lanes: HashMap<Pid, Lane, BuildHasherDefault<PidHash>>,
    /// The PID and lane of the last lookup that found one. Every insert and removal clears
    /// it (either may move the table's entries), so the pointer is valid while it is set.
    last: Option<(Pid, std::ptr::NonNull<Lane>)>,
}

// SAFETY: `last` points into `lanes` (see there), which is `Send`; sending the map sends the
// lane the pointer designates along with it.
unsafe impl Send for LaneMap {}

impl LaneMap {
    #[inline]
    fn get(&mut self, pid: Pid) -> Option<&mut Lane> {
        match self.last {
            // SAFETY: `last` is cleared whenever the table changes shape, and `&mut self`
            // keeps it from changing while the reference lives.
            Some((p, mut lane)) if p == pid => Some(unsafe { lane.as_mut() }),
            _ => {
                let lane = self.lanes.get_mut(&pid)?;
                self.last = Some((pid, std::ptr::NonNull::from(&mut *lane)));
                Some(lane)
            }
        }
    }

    /// Adds `pid`'s lane; one it replaced (PIDs are not reused) comes back, for the caller to
    /// drop out of the borrow.
    fn insert(&mut self, pid: Pid, lane: Lane) -> Option<Lane> {
        self.last = None;
        self.lanes.insert(pid, lane)
    }

    /// Removes `pid`'s lane; the caller drops it out of the borrow.
    fn remove(&mut self, pid: Pid) -> Option<Lane> {
        self.last = None;
        self.lanes.remove(&pid)
    }
}

/// A runtime's lanes, by PID.
pub(crate) struct Lanes {
    enabled: bool,
    shared: Arc<Shared>,
}

/// What the lanes' actors reach (weakly: the lanes hold the actors).
struct Shared {
    map: GilCell<LaneMap>,
    /// PIDs of actors that ended, whose lanes are still in `map`.
    ended: Mutex<Vec<Pid>>,
    /// `ended` is not empty.
    any_ended: AtomicBool,
    /// A sweep is scheduled as an interpreter pending call.
    sweep_scheduled: AtomicBool,
    /// [`crate::exiting::forks`] when made: a forked child must not drop the lanes (their
    /// actors' locks may be held by threads that stayed in the parent).
    forks: u64,
}

impl Lanes {
    /// Lanes for a new runtime: on unless the interpreter runs without its lock.
    pub(crate) fn new(py: Python<'_>) -> Lanes {
        let gil_enabled = py
            .import("sys")
            .and_then(|sys| match sys.getattr("_is_gil_enabled") {
                Ok(f) => f.call0()?.extract::<bool>(),
                Err(_) => Ok(true),
            })
            .unwrap_or(false);
        Lanes {
            enabled: gil_enabled && std::env::var_os("IRIS_NO_LANES").is_none(),
            shared: Arc::new(Shared {
                map: GilCell::new(LaneMap::default()),
                ended: Mutex::new(Vec::new()),
                any_ended: AtomicBool::new(false),
                sweep_scheduled: AtomicBool::new(false),
                forks: crate::exiting::forks(),
            }),
        }
    }

    /// The hold of a push actor about to be spawned on its lane (opened once it is, with
    /// [`Lanes::open`]); `None` when lanes are off.
    pub(crate) fn prepare(&self) -> Option<LaneUse> {
        self.enabled.then(|| self.hold())
    }

    fn hold(&self) -> LaneUse {
        LaneUse {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// `behavior` telling these lanes when its actor ends (for the lane's first behaviour).
    pub(crate) fn noticed(&self, behavior: Behavior) -> Behavior {
        let shared = Arc::downgrade(&self.shared);
        behavior.with_exit_notice(move |pid| {
            if let Some(shared) = shared.upgrade() {
                shared.note_ended(&shared, pid);
            }
        })
    }

    /// Opens the lane of the push actor `pid`, just spawned with a [`Lanes::prepare`] hold.
    pub(crate) fn open(&self, py: Python<'_>, rt: &iris::Runtime, pid: Pid, budget: usize) {
        self.shared.sweep(py);
        let Some(view) = rt.view(pid) else {
            return;
        };
        let lane = Lane {
            view,
            budget: budget.max(1),
            queue: VecDeque::new(),
            poked: false,
            poke_queued: false,
        };
        let replaced = self.shared.map.with(py, |m| m.insert(pid, lane));
        drop(replaced);
    }

    /// Drops every lane (the runtime goes).
    pub(crate) fn clear(&self, py: Python<'_>) {
        let all = self.shared.map.with(py, std::mem::take);
        drop(all);
    }

    /// Forgets every lane without dropping it (a runtime inherited through `fork`, whose
    /// actors' locks may be held by threads that are not in this process).
    pub(crate) fn forget_all(&self, py: Python<'_>) {
        std::mem::forget(self.shared.map.with(py, std::mem::take));
    }

    /// Removes the lanes of actors that ended since the last sweep.
    pub(crate) fn sweep(&self, py: Python<'_>) {
        self.shared.sweep(py);
    }

    /// `true` if `pid` has a lane.
    pub(crate) fn has(&self, py: Python<'_>, pid: Pid) -> bool {
        self.enabled
            && self
                .shared
                .map
                .with(py, |m| m.lanes.contains_key(&pid))
                .unwrap_or(false)
    }

    /// A hold on `pid`'s lane for a new behaviour of it (a hot swap); `None` if it has none.
    pub(crate) fn shared(&self, py: Python<'_>, pid: Pid) -> Option<LaneUse> {
        self.has(py, pid).then(|| self.hold())
    }

    /// Removes the lane of an actor that ended.
    fn forget(&self, py: Python<'_>, pid: Pid) {
        let lane = self.shared.map.with(py, |m| m.remove(pid)).flatten();
        drop(lane);
    }

    /// Sends `data` to `pid` through its lane: `Some(sent)` when the lane took the send,
    /// `None` when the core's path must (no lane, the actor ended, or a case the lane leaves
    /// to the core).
    pub(crate) fn send(
        &self,
        py: Python<'_>,
        rt: &iris::Runtime,
        pid: Pid,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<Option<bool>> {
        if !self.enabled {
            return Ok(None);
        }
        self.shared.sweep(py);
        // An immutable `bytes` goes as it is, decided and queued in one look at the table;
        // any other bytes-like object is copied once the lane is known to take it (as the
        // core's path copies it).
        let mut obj = data
            .is_exact_instance_of::<PyBytes>()
            .then(|| data.clone().unbind());
        loop {
            let take = self
                .shared
                .map
                .with(py, |m| {
                    m.get(pid)
                        .map_or(Take::NoLane, |lane| lane.offer(py, rt, &mut obj))
                })
                .unwrap_or(Take::NoLane);
            return Ok(match take {
                Take::NoLane | Take::Core => None,
                Take::Ended => {
                    self.forget(py, pid);
                    None
                }
                Take::Queued => Some(true),
                Take::Sent(sent) => Some(sent),
                Take::Poke => Some(wake(py, rt, pid)),
                Take::Convert => {
                    obj = Some(bytes_object(data)?);
                    continue;
                }
            });
        }
    }

    /// Sends `objs` (`bytes` objects, in order; taken) through `pid`'s lane as one stretch:
    /// `Some(queued)` when the lane took them (all of them, or none if the wake-up found the
    /// actor gone), `None` when the core's path must carry them, as for [`Lanes::send`].
    pub(crate) fn send_objs(
        &self,
        py: Python<'_>,
        rt: &iris::Runtime,
        pid: Pid,
        objs: &mut Vec<Py<PyAny>>,
    ) -> Option<usize> {
        if !self.enabled {
            return None;
        }
        self.shared.sweep(py);
        let n = objs.len();
        let take = self
            .shared
            .map
            .with(py, |m| {
                let Some(lane) = m.get(pid) else {
                    return Take::NoLane;
                };
                if !lane.view.is_alive() {
                    return Take::Ended;
                }
                if lane.idle() {
                    return Take::Core;
                }
                lane.queue.extend(objs.drain(..));
                lane.woken()
            })
            .unwrap_or(Take::NoLane);
        match take {
            Take::Queued => Some(n),
            Take::Poke => Some(if wake(py, rt, pid) { n } else { 0 }),
            Take::Ended => {
                self.forget(py, pid);
                None
            }
            _ => None,
        }
    }

    /// Messages waiting in `pid`'s lane and mailbox (`core`), less the poke the core counts.
    pub(crate) fn adjust_size(&self, py: Python<'_>, pid: Pid, core: usize) -> usize {
        self.shared
            .map
            .with(py, |m| {
                m.lanes.get(&pid).map_or(core, |lane| {
                    core.saturating_sub(usize::from(lane.poke_queued)) + lane.queue.len()
                })
            })
            .unwrap_or(core)
    }
}

impl Shared {
    /// Lists `pid` for the next sweep, and asks the interpreter to run one soon (a sweep
    /// needs its lock, which an exit procedure must not wait for).
    fn note_ended(&self, this: &Arc<Shared>, pid: Pid) {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        self.any_ended.store(true, Ordering::Release);
        if crate::exiting::exiting() || self.sweep_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let arg = Weak::into_raw(Arc::downgrade(this)) as *mut c_void;
        // SAFETY: `Py_AddPendingCall` may be called from any thread without the interpreter
        // lock while the interpreter is initialized (the exit hook marks `exiting` before it
        // is finalized). `arg` is a leaked `Weak<Shared>` that `sweep_pending` takes back.
        if unsafe { pyo3::ffi::Py_AddPendingCall(Some(sweep_pending), arg) } != 0 {
            // The queue is full: take the weak handle back; the next send or spawn sweeps.
            // SAFETY: `arg` came from `Weak::into_raw` just above and was not handed over.
            drop(unsafe { Weak::from_raw(arg as *const Shared) });
            self.sweep_scheduled.store(false, Ordering::Release);
        }
    }

    /// Removes the lanes of actors that ended since the last sweep.
    #[inline]
    fn sweep(&self, py: Python<'_>) {
        if self.any_ended.load(Ordering::Acquire) {
            self.sweep_ended(py);
        }
    }

    #[inline(never)]
    fn sweep_ended(&self, py: Python<'_>) {
        self.any_ended.store(false, Ordering::Release);
        let pids = std::mem::take(&mut *self.ended.lock().unwrap_or_else(|e| e.into_inner()));
        let swept: Option<Vec<Lane>> = self
            .map
            .with(py, |m| pids.iter().filter_map(|p| m.remove(*p)).collect());
        // Dropped here, out of the borrow: the queued messages' finalizers may run Python.
        drop(swept);
    }
}

/// An interpreter pending call (run by the main thread, with the lock): sweeps the lanes of
/// the runtime `arg` (a leaked `Weak<Shared>`) points to, if it still exists.
extern "C" fn sweep_pending(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Weak<Shared>` leaked by `note_ended` for this call alone.
    let shared = unsafe { Weak::from_raw(arg as *const Shared) };
    if let Some(shared) = shared.upgrade()
        && shared.forks == crate::exiting::forks()
    {
        shared.sweep_scheduled.store(false, Ordering::Release);
        // SAFETY: pending calls run with the interpreter lock held.
        let py = unsafe { Python::assume_attached() };
        shared.sweep(py);
    }
    0
}

/// What a lane made of a send.
enum Take {
    /// No lane: the core's path.
    NoLane,
    /// The actor ended: the core's path answers (and the lane goes).
    Ended,
    /// The actor is parked with an empty lane, and the core must carry the message.
    Core,
    /// Queued behind a poke already on its way.
    Queued,
    /// Queued first: a poke must be sent.
    Poke,
    /// Handed to the core here (`true`: queued).
    Sent(bool),
    /// The lane takes it, once copied into a `bytes`.
    Convert,
}

impl Lane {
    /// Queues `obj` (taking it) unless the core's path must carry the send. Runs no Python
    /// code (the caller holds the table's borrow).
    #[inline]
    fn offer(&mut self, py: Python<'_>, rt: &iris::Runtime, obj: &mut Option<Py<PyAny>>) -> Take {
        if !self.view.is_alive() {
            return Take::Ended;
        }
        if self.idle() {
            // No backlog: the core's hand-over (which wakes a parked actor at once) costs no
            // more than a poke would. Made here, while no matcher may make a send let go of
            // the interpreter (see `touching_mailboxes`), without looking the PID up again.
            return match obj {
                Some(b) if MATCHERS.load(Ordering::SeqCst) == 0 => {
                    let data = match b.bind(py).cast::<PyBytes>() {
                        Ok(b) => payload_bytes(b.as_bytes()),
                        Err(_) => return Take::Core,
                    };
                    Take::Sent(rt.send_to(&self.view, Message::User(data)).is_ok())
                }
                _ => Take::Core,
            };
        }
        let Some(obj) = obj.take() else {
            return Take::Convert;
        };
        self.queue.push_back(obj);
        self.woken()
    }

    /// `true` while the lane is idle and the actor has no backlog: a send then goes through
    /// the core (see the module's notes).
    #[inline]
    fn idle(&self) -> bool {
        !self.poked && self.queue.is_empty() && (self.view.is_parked() || !self.view.has_messages())
    }

    /// After messages went into the queue: `Poke` if the lane was idle (now poked).
    #[inline]
    fn woken(&mut self) -> Take {
        if self.poked {
            Take::Queued
        } else {
            self.poked = true;
            self.poke_queued = true;
            Take::Poke
        }
    }
}

/// What a drain step found.
enum Next {
    Msg(Py<PyAny>),
    /// The lane is empty (and no longer poked).
    Empty,
    /// The actor was stopped or killed: the core ends it after this call.
    Ended,
    /// The behaviour was swapped: the next message is the new handler's.
    Swapped,
    /// No lane (gone with the runtime), or the table is busy.
    Gone,
}

/// Handles a poke: calls `handler` on the lane's messages, in order, up to the budget.
pub(crate) fn drain(py: Python<'_>, handler: &Py<PyAny>, hold: &LaneUse) -> Flow {
    let Some(shared) = hold.shared.upgrade() else {
        return Flow::Continue;
    };
    let Some(pid) = iris::current_pid() else {
        return Flow::Continue;
    };
    let Some(Some((budget, version))) = shared.map.with(py, |m| {
        m.get(pid).map(|lane| {
            lane.poke_queued = false;
            (lane.budget, lane.view.behavior_version())
        })
    }) else {
        return Flow::Continue;
    };
    let handler = handler.bind(py);
    let stop = stop(py).bind(py);
    for _ in 0..budget {
        let next = shared
            .map
            .with(py, |m| {
                let Some(lane) = m.get(pid) else {
                    return Next::Gone;
                };
                if !lane.view.is_alive() {
                    return Next::Ended;
                }
                if lane.view.behavior_version() != version {
                    return Next::Swapped;
                }
                match lane.queue.pop_front() {
                    Some(msg) => Next::Msg(msg),
                    None => {
                        lane.poked = false;
                        Next::Empty
                    }
                }
            })
            .unwrap_or(Next::Gone);
        match next {
            Next::Msg(msg) => match handler.call1((msg,)) {
                Ok(ret) if ret.is(stop) => return Flow::Stop,
                Ok(_) => {}
                Err(e) => return Flow::Crash(format_exception(py, &e)),
            },
            Next::Empty | Next::Ended | Next::Gone => return Flow::Continue,
            Next::Swapped => break,
        }
    }
    // The budget is spent or the handler changed: the rest waits behind a new poke, after
    // what the mailbox holds now.
    let _ = shared.map.with(py, |m| {
        if let Some(lane) = m.get(pid) {
            let more = !lane.queue.is_empty();
            lane.poked = more;
            lane.poke_queued = more && lane.view.queue_own(poke()).is_ok();
        }
    });
    Flow::Continue
}
