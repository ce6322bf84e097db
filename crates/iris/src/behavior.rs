//! Push-actor behaviours: the handler a message runs through, swappable at run time.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use iris_sched::{Flow, Step};

use crate::{Message, Pid};

/// What a handler's result means for the actor: `()` and [`Flow::Continue`] keep it running,
/// [`Flow::Stop`] ends it normally, an `Err` ends it with `Crash`, [`Flow::Shutdown`] ends it
/// with `Shutdown` (what runs its code is going away).
pub trait IntoFlow {
    /// Converts the handler's result.
    fn into_flow(self) -> Flow;
}

impl IntoFlow for () {
    fn into_flow(self) -> Flow {
        Flow::Continue
    }
}

impl IntoFlow for Flow {
    fn into_flow(self) -> Flow {
        self
    }
}

impl<T: IntoFlow, E: fmt::Display> IntoFlow for Result<T, E> {
    fn into_flow(self) -> Flow {
        match self {
            Ok(v) => v.into_flow(),
            Err(e) => Flow::Crash(e.to_string()),
        }
    }
}

/// Wraps the handling of one batch of messages (see [`Behavior::with_batch_guard`]).
pub type BatchGuard = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// A push actor's behaviour: called once per message, one message at a time.
#[derive(Clone)]
pub struct Behavior {
    handler: Arc<dyn Fn(Message) -> Step + Send + Sync>,
    batch: Option<BatchGuard>,
    /// One guard call may run several batches (see [`Behavior::spanning_batches`]).
    spans: bool,
    /// Told the PID when an actor spawned with this behaviour ends.
    exit_notice: Option<ExitNotice>,
}

/// Told the PID of an actor that ended (see [`Behavior::with_exit_notice`]).
type ExitNotice = Arc<dyn Fn(Pid) + Send + Sync>;

impl fmt::Debug for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Behavior(..)")
    }
}

impl Behavior {
    /// A synchronous handler.
    pub fn from_fn<F, R>(f: F) -> Behavior
    where
        F: Fn(Message) -> R + Send + Sync + 'static,
        R: IntoFlow,
    {
        Behavior::new(Arc::new(move |m| Step::Done(f(m).into_flow())))
    }

    /// An asynchronous handler (`|msg| async move { .. }`).
    pub fn from_async<F, Fut>(f: F) -> Behavior
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        Behavior::new(Arc::new(move |m| {
            let fut = f(m);
            Step::Async(Box::pin(async move { fut.await.into_flow() }))
        }))
    }

    /// A handler that decides message by message whether it finishes at once
    /// ([`Step::Done`]) or must wait ([`Step::Async`]): the actor runs on the scheduler
    /// loops, without a task of its own, until the first message that waits; from then on
    /// it runs as a task. Bindings use it for a handler that waits only now and then.
    ///
    /// ```
    /// use iris::{Behavior, Flow, Message, Runtime, SpawnOptions, Step};
    /// use std::sync::{Mutex, mpsc};
    ///
    /// let rt = Runtime::with_workers(1).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let tx = Mutex::new(tx);
    /// let behavior = Behavior::from_step(move |m| {
    ///     let Message::User(b) = m else { return Step::Done(Flow::Continue) };
    ///     tx.lock().unwrap().send(b.clone()).unwrap();
    ///     if &b[..] == b"wait" {
    ///         // Only this message needs to wait for something.
    ///         return Step::Async(Box::pin(async { Flow::Continue }));
    ///     }
    ///     Step::Done(Flow::Continue)
    /// });
    /// let pid = rt.try_spawn_behavior(behavior, SpawnOptions::default()).unwrap();
    /// for m in ["a", "wait", "b"] {
    ///     rt.send_user(pid, m.as_bytes().to_vec()).unwrap();
    /// }
    /// let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
    /// assert_eq!(got, ["a", "wait", "b"].map(|m| iris::Bytes::from(m)));
    /// ```
    pub fn from_step<F>(f: F) -> Behavior
    where
        F: Fn(Message) -> Step + Send + Sync + 'static,
    {
        Behavior::new(Arc::new(f))
    }

    fn new(handler: Arc<dyn Fn(Message) -> Step + Send + Sync>) -> Behavior {
        Behavior {
            handler,
            batch: None,
            spans: false,
            exit_notice: None,
        }
    }

    /// Runs every batch of messages (up to the reduction budget) inside `guard`, which must
    /// call its argument exactly once. Language bindings use it to take an interpreter lock
    /// once per batch instead of once per message.
    pub fn with_batch_guard(
        mut self,
        guard: impl Fn(&mut dyn FnMut()) + Send + Sync + 'static,
    ) -> Behavior {
        self.batch = Some(Arc::new(guard));
        self
    }

    /// Lets one call of the batch guard (see [`Behavior::with_batch_guard`]) run further
    /// batches, one reduction budget each, while messages wait and no other runnable waits
    /// for the scheduler loop, for up to 200 µs: for a guard that is costly to take (a
    /// binding's interpreter lock), whose handlers are slow next to their senders. Nobody
    /// waits longer for a turn; what the guard does after its batch (a flush) happens less
    /// often. A behaviour without a guard is unchanged.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use iris::{Behavior, Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let (handled, guards) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (h, g) = (handled.clone(), guards.clone());
    /// let behavior = Behavior::from_fn(move |_m| {
    ///     h.fetch_add(1, Ordering::SeqCst);
    /// })
    /// .with_batch_guard(move |batch| {
    ///     g.fetch_add(1, Ordering::SeqCst);
    ///     batch();
    /// })
    /// .spanning_batches();
    /// let opts = SpawnOptions { budget: 10, ..Default::default() };
    /// let pid = rt.try_spawn_behavior(behavior, opts).unwrap();
    /// for _ in 0..100 {
    ///     rt.send_user(pid, "m").unwrap();
    /// }
    /// while handled.load(Ordering::SeqCst) < 100 {
    ///     std::thread::yield_now();
    /// }
    /// assert!(guards.load(Ordering::SeqCst) >= 1);
    /// ```
    pub fn spanning_batches(mut self) -> Behavior {
        self.spans = true;
        self
    }

    /// Tells `notice` the actor's PID when an actor spawned with this behaviour ends, once,
    /// from its exit procedure: after its mailbox closed and before its exit is reported
    /// (links, monitors, `join`). It runs on whatever thread ends the actor and must not
    /// block; a panic in it is caught. Only the behaviour an actor is spawned with is told
    /// (not one installed by a hot swap). Bindings use it to drop what they keep per actor.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use iris::{Behavior, Flow, Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let behavior = Behavior::from_fn(|_m| Flow::Stop)
    ///     .with_exit_notice(move |pid| tx.lock().unwrap().send(pid).unwrap());
    /// let pid = rt.try_spawn_behavior(behavior, SpawnOptions::default()).unwrap();
    /// rt.send_user(pid, "stop").unwrap();
    /// assert_eq!(rx.recv().unwrap(), pid);
    /// ```
    pub fn with_exit_notice(mut self, notice: impl Fn(Pid) + Send + Sync + 'static) -> Behavior {
        self.exit_notice = Some(Arc::new(notice));
        self
    }

    pub(crate) fn call(&self, msg: Message) -> Step {
        (self.handler)(msg)
    }
}

/// Default number of behaviours an actor remembers for rollback, its initial one included.
pub const DEFAULT_HISTORY: usize = 16;

struct Versioned {
    version: u64,
    behavior: Behavior,
}

struct History {
    entries: VecDeque<Arc<Versioned>>,
    cursor: usize,
    next_version: u64,
}

/// The current behaviour and a bounded history for rollback. Most actors are never swapped,
/// so the swappable cell and the history are made on the first swap: until then a message
/// calls the initial behaviour directly (stored inline, so a run touches no separate
/// allocation to find it; no `ArcSwap` load per message, none to drop at exit, no history
/// allocated per spawn, and one pointer for all of it in every actor).
pub(crate) struct Behaviors {
    /// Version 1.
    initial: Behavior,
    /// Made by the first swap.
    swapped: OnceLock<Box<Swapped>>,
}

/// A swapped actor's current behaviour and its history.
struct Swapped {
    current: ArcSwap<Versioned>,
    history: Mutex<History>,
}

impl Behaviors {
    pub(crate) fn new(initial: Behavior) -> Behaviors {
        Behaviors {
            initial,
            swapped: OnceLock::new(),
        }
    }

    /// Runs `f` on the current behaviour and its version; the behaviour stays alive for the
    /// call even if it is swapped meanwhile.
    fn with_current<R>(&self, f: impl FnOnce(u64, &Behavior) -> R) -> R {
        match self.swapped.get() {
            Some(s) => {
                let v = s.current.load();
                f(v.version, &v.behavior)
            }
            None => f(1, &self.initial),
        }
    }

    pub(crate) fn call(&self, msg: Message) -> Step {
        self.with_current(|_, b| b.call(msg))
    }

    /// The batch guard of the current behaviour, if it has one, and whether one call of it
    /// may run several batches ([`Behavior::spanning_batches`]).
    pub(crate) fn batch_guard(&self) -> Option<(BatchGuard, bool)> {
        self.with_current(|_, b| b.batch.clone().map(|g| (g, b.spans)))
    }

    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.with_current(|v, _| v)
    }

    /// Tells the initial behaviour's exit notice, if any, that the actor `pid` ended.
    pub(crate) fn notify_exit(&self, pid: Pid) {
        if let Some(notice) = &self.initial.exit_notice {
            // Binding code: a panic in it must not stop the exit procedure.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| notice(pid)));
        }
    }

    /// The swap state, made on first use with the initial behaviour as current and as the
    /// history's first entry.
    fn swapped(&self) -> &Swapped {
        self.swapped.get_or_init(|| {
            let initial = Arc::new(Versioned {
                version: 1,
                behavior: self.initial.clone(),
            });
            Box::new(Swapped {
                current: ArcSwap::new(initial.clone()),
                history: Mutex::new(History {
                    entries: VecDeque::from([initial]),
                    cursor: 0,
                    next_version: 2,
                }),
            })
        })
    }

    fn lock(&self) -> (&Swapped, std::sync::MutexGuard<'_, History>) {
        let s = self.swapped();
        (s, s.history.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Installs a new behaviour; later history entries (undone by a rollback) are discarded.
    pub(crate) fn swap(&self, behavior: Behavior) -> u64 {
        let (s, mut h) = self.lock();
        let version = h.next_version;
        h.next_version += 1;
        let keep = h.cursor + 1;
        h.entries.truncate(keep);
        let entry = Arc::new(Versioned { version, behavior });
        h.entries.push_back(entry.clone());
        while h.entries.len() > DEFAULT_HISTORY {
            h.entries.pop_front();
        }
        h.cursor = h.entries.len() - 1;
        // Under the history lock, so the stores are ordered.
        s.current.store(entry);
        version
    }

    /// Goes back `steps` behaviours; returns the version now current.
    pub(crate) fn rollback(&self, steps: usize) -> Result<u64, usize> {
        let (s, mut h) = self.lock();
        if steps == 0 || steps > h.cursor {
            return Err(h.cursor);
        }
        h.cursor -= steps;
        let entry = h.entries[h.cursor].clone();
        let version = entry.version;
        s.current.store(entry);
        Ok(version)
    }
}
