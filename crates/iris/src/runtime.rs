//! The runtime: spawning, sending, stopping, exits, children, timers, virtual actors and
//! hot swap.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use iris_mailbox::{Mailbox, Offer, OverflowPolicy, RecvError, TryRecvError};
use iris_sched::{
    CatchUnwind, Flow, LoopEnd, RunOutcome, RunQueue, Runnable, Scheduler, Step, TokioScheduler,
    push_loop,
};
use iris_supervisor::{ExitInfo, ExitReason};
use tokio::runtime::RuntimeFlavor;
use tokio::task::AbortHandle;

use crate::actor::{Actor, Kind, Pid, Table, lock, next_pid};
use crate::behavior::{Behavior, Behaviors, IntoFlow};
use crate::error::{ActorError, SendError};
use crate::message::Message;

/// The default reduction budget: messages a push actor handles in a row before it yields.
pub const DEFAULT_BUDGET: usize = 100;

static NEXT_TIMER: AtomicU64 = AtomicU64::new(1);

struct TimerEntry {
    pid: Pid,
    abort: AbortHandle,
}

pub(crate) struct Inner {
    pub(crate) sched: TokioScheduler,
    /// Scheduler loops that run synchronous push actors.
    runq: RunQueue,
    pub(crate) table: Table,
    timers: Mutex<HashMap<u64, TimerEntry>>,
    shutting_down: AtomicBool,
    /// Message logs of observed actors.
    pub(crate) observed: Mutex<HashMap<Pid, crate::observe::Log>>,
    /// Exit reasons of recently exited actors, so `join` right after an exit still answers.
    recent_exits: Box<[crate::actor::Padded<Mutex<RecentExits>>]>,
    /// Code to run when a given actor exits.
    pub(crate) hooks: crate::hooks::ExitHooks,
    /// Names and paths.
    pub(crate) registry: iris_registry::Registry,
    /// Links and monitors.
    pub(crate) links: crate::links::LinkState,
    /// Supervisor actors.
    pub(crate) supervisors: crate::supervision::Supervisors,
    /// The mesh (listener, peers, proxies).
    pub(crate) mesh: Arc<crate::mesh::Mesh>,
}

impl Inner {
    pub(crate) fn recent_exit(&self, pid: Pid) -> Option<ExitInfo> {
        lock(&self.recent_exits[recent_shard(pid)].0).find(pid)
    }
}

/// Shards of the recent-exit memory, so exits on different threads rarely share a lock.
const RECENT_SHARDS: usize = 16;

/// The recent-exit shard of `pid`: by PID block, as the actor table, so the two schedulers
/// retiring actors at once mostly lock different shards.
fn recent_shard(pid: Pid) -> usize {
    crate::actor::shard_of(pid) % RECENT_SHARDS
}

/// How many recent exits `join` remembers.
const RECENT_EXITS: usize = 4096 / RECENT_SHARDS;

/// One shard's recent exits, oldest first. Every exit records here and only `join`, `monitor`
/// and exit hooks of already-gone actors look, so recording is a ring push (no hash map
/// insert and evict per exit) and a look scans at most [`RECENT_EXITS`] entries.
#[derive(Default)]
struct RecentExits {
    ring: std::collections::VecDeque<(Pid, ExitInfo)>,
}

impl RecentExits {
    fn record(&mut self, pid: Pid, info: ExitInfo) {
        if self.ring.len() == RECENT_EXITS {
            self.ring.pop_front();
        }
        self.ring.push_back((pid, info));
    }

    fn find(&self, pid: Pid) -> Option<ExitInfo> {
        // PIDs are never reused: at most one entry matches.
        self.ring
            .iter()
            .rev()
            .find(|(p, _)| *p == pid)
            .map(|(_, info)| info.clone())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.runq.shutdown();
        self.mesh.shutdown();
        // The last handle is gone: nobody can reach these actors any more.
        for actor in self.table.all() {
            actor.mailbox.close();
            if let Kind::Task { abort } = &actor.kind
                && let Some(a) = lock(abort).take()
            {
                a.abort();
            }
        }
        for (_, t) in lock(&self.timers).drain() {
            t.abort.abort();
        }
    }
}

/// Options of a spawned actor.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// Messages handled in a row before yielding (push actors).
    pub budget: usize,
    /// A bounded mailbox of this capacity (`None`: unbounded).
    pub capacity: Option<usize>,
    /// The parent: the actor is shut down when the parent exits.
    pub parent: Option<Pid>,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            budget: DEFAULT_BUDGET,
            capacity: None,
            parent: None,
        }
    }
}

/// The Iris runtime. Cheap to clone; every clone is the same runtime.
///
/// `Runtime::new()` works from any thread: inside a multi-thread Tokio runtime it shares it,
/// elsewhere it starts its own.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("actors", &self.inner.table.len())
            .finish()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

/// The receiving end of an actor's mailbox, handed to `spawn_actor` and `spawn_with_mailbox`
/// closures.
pub struct Receiver {
    actor: Arc<Actor>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("pid", &self.actor.pid)
            .finish()
    }
}

impl Receiver {
    /// The PID of the actor this receiver belongs to.
    pub fn pid(&self) -> Pid {
        self.actor.pid
    }

    /// The next message (system messages first); `None` once the actor is stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.actor.mailbox.recv().await
    }

    /// The next message without waiting.
    pub fn try_recv(&mut self) -> Result<Message, TryRecvError> {
        self.actor.mailbox.try_recv()
    }

    /// Blocks the thread for the next message, up to `timeout` (for pull actors).
    pub fn recv_blocking(&mut self, timeout: Option<Duration>) -> Result<Message, RecvError> {
        self.actor.mailbox.recv_blocking(timeout)
    }

    /// The first message, stashed or new, that `matcher` accepts; the others keep their order.
    pub async fn selective_recv<F>(&mut self, matcher: F) -> Option<Message>
    where
        F: FnMut(&Message) -> bool,
    {
        self.actor.mailbox.selective_recv(matcher).await
    }

    /// Blocking form of [`Receiver::selective_recv`].
    pub fn selective_recv_blocking<F>(
        &mut self,
        matcher: F,
        timeout: Option<Duration>,
    ) -> Result<Message, RecvError>
    where
        F: FnMut(&Message) -> bool,
    {
        self.actor.mailbox.selective_recv_blocking(matcher, timeout)
    }

    /// Queued user messages, the stash included.
    pub fn len(&self) -> usize {
        self.actor.mailbox.len()
    }

    /// `true` when no user message is queued.
    pub fn is_empty(&self) -> bool {
        self.actor.mailbox.is_empty()
    }
}

enum Routed {
    Done(Result<(), SendError>),
    Wait(Arc<Actor>, Message),
}

/// One step of a delivery.
enum Hop {
    Done(Result<(), SendError>),
    Wait(Arc<Actor>, Message),
    Redirect(Pid, Message),
    Spill(Pid, Message, Arc<Actor>),
}

/// A handle to one local actor ([`Runtime::actor_ref`]). Sends behave exactly like
/// [`Runtime::send`] to its PID (overflow policies, redirects, `NoProcess` once it is gone),
/// without looking the PID up each time. Holding one keeps the actor's memory (not the
/// actor) alive.
#[derive(Clone)]
pub struct ActorRef {
    rt: Runtime,
    actor: Arc<Actor>,
}

impl std::fmt::Debug for ActorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorRef")
            .field("pid", &self.actor.pid)
            .finish()
    }
}

impl ActorRef {
    /// The actor's PID.
    pub fn pid(&self) -> Pid {
        self.actor.pid
    }

    /// `true` while the actor is alive.
    pub fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    /// Sends a message, as [`Runtime::send`] does.
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        self.rt.send_to_actor(&self.actor, msg)
    }

    /// Sends user bytes.
    pub fn send_user(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::User(data.into()))
    }

    /// Sends a message, waiting asynchronously for room under `Block`/`Spill`, as
    /// [`Runtime::send_async`] does.
    pub async fn send_async(&self, msg: Message) -> Result<(), SendError> {
        let pid = self.actor.pid;
        let hop = self.rt.hop(pid, &self.actor, msg);
        let routed = self.rt.follow(pid, pid, hop, Vec::new());
        self.rt.finish_send_async(routed).await
    }
}

/// The state of one local actor, read without locks or reference counting
/// ([`Runtime::view`]): for a binding's hot path that checks an actor per call. Holding one
/// keeps the actor's memory alive, its behaviours included (not the actor): drop it once
/// the actor ended (see [`Behavior::with_exit_notice`]).
pub struct ActorView {
    actor: Arc<Actor>,
}

impl ActorView {
    /// The actor's PID.
    #[inline]
    pub fn pid(&self) -> Pid {
        self.actor.pid
    }

    /// `true` while the actor is alive (its mailbox open).
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    /// `true` while a push actor is parked: no loop or task runs it and none is about to (a
    /// send then wakes it). A running actor, or one with queued messages, is not parked.
    #[inline]
    pub fn is_parked(&self) -> bool {
        self.actor.dormant.load(Ordering::SeqCst)
    }

    /// `true` while messages wait in the actor's mailbox (not counting a batch it took out
    /// to handle): it is behind its senders. Lock-free.
    #[inline]
    pub fn has_messages(&self) -> bool {
        self.actor.mailbox.has_messages() || self.actor.express.is_full()
    }

    /// The version of a push actor's current behaviour (the initial one is 1); `None` for
    /// other actors.
    #[inline]
    pub fn behavior_version(&self) -> Option<u64> {
        match &self.actor.kind {
            Kind::Push { behaviors, .. } => Some(behaviors.version()),
            _ => None,
        }
    }

    /// Queues a user message for the actor from inside its own handler, without waking it
    /// (it is running: it takes the message before it parks), e.g. to come back to work it
    /// put aside after the messages queued meanwhile. Gives the message back when called
    /// from anywhere else (nothing would wake the actor), when the actor has ended, or when
    /// its bounded mailbox did not take it.
    pub fn queue_own(&self, msg: Message) -> Result<(), Message> {
        if current_pid() != Some(self.actor.pid) {
            return Err(msg);
        }
        match self.actor.mailbox.offer(msg) {
            Offer::Queued | Offer::Evicted(_) => Ok(()),
            Offer::Rejected(m)
            | Offer::Closed(m)
            | Offer::MustWait(m)
            | Offer::Redirect(_, m)
            | Offer::Spill(_, m) => Err(m),
        }
    }
}

/// Runs `f`, which may block or compute for long, from inside a handler without holding up
/// the other actors: on a scheduler loop a temporary loop takes over the run queue and the
/// Tokio worker is handed off (`tokio::task::block_in_place`) until `f` returns; on another
/// multi-thread Tokio worker the worker is handed off; anywhere else `f` just runs. The
/// calling actor stays the current one ([`current_pid`]) and handles nothing else meanwhile.
/// The runtime blocks this way itself wherever it waits (a `Block` mailbox, `join`). A
/// hand-off costs the calling thread about a microsecond and wakes a thread to take the
/// worker over, so wrap a whole stretch of blocking work (a batch's guard, see
/// [`Behavior::with_batch_guard`]), not each short call.
///
/// ```
/// use std::sync::{Mutex, mpsc};
/// use std::time::Duration;
/// use iris::Runtime;
///
/// let rt = Runtime::with_workers(1).unwrap();
/// let (go, wait) = mpsc::channel::<()>();
/// let wait = Mutex::new(wait);
/// // Blocks until `quick` ran, which needs the only worker.
/// let slow = rt.spawn_fn(
///     move |_m| {
///         iris::block_in_place(|| wait.lock().unwrap().recv_timeout(Duration::from_secs(10)))
///             .expect("quick ran meanwhile");
///     },
///     10,
/// );
/// let (done, finished) = mpsc::channel();
/// let quick = rt.spawn_fn(
///     move |_m| {
///         go.send(()).unwrap();
///         done.send(()).unwrap();
///     },
///     10,
/// );
/// rt.send_user(slow, "wait").unwrap();
/// rt.send_user(quick, "go").unwrap();
/// finished.recv_timeout(Duration::from_secs(5)).unwrap();
/// ```
pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    if RunQueue::on_loop() {
        return RunQueue::block_in_place(f);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Runtime {
    /// A runtime on the caller's multi-thread Tokio runtime, or on its own.
    ///
    /// # Panics
    /// Only if the OS refuses to start Tokio's worker threads; use [`Runtime::try_new`] to get
    /// that as an error.
    pub fn new() -> Runtime {
        Runtime::try_new().expect("cannot start the Iris runtime")
    }

    /// Like [`Runtime::new`], with a typed error.
    pub fn try_new() -> Result<Runtime, ActorError> {
        Ok(Runtime::with_scheduler(
            TokioScheduler::new().map_err(ActorError::Sched)?,
        ))
    }

    /// A runtime on its own Tokio runtime with `workers` threads.
    pub fn with_workers(workers: usize) -> Result<Runtime, ActorError> {
        Ok(Runtime::with_scheduler(
            TokioScheduler::owned(Some(workers)).map_err(ActorError::Sched)?,
        ))
    }

    fn with_scheduler(sched: TokioScheduler) -> Runtime {
        let loops = sched.handle().metrics().num_workers();
        let runq = RunQueue::start(sched.handle(), loops);
        Runtime {
            inner: Arc::new(Inner {
                sched,
                runq,
                table: Table::new(),
                timers: Mutex::new(HashMap::new()),
                shutting_down: AtomicBool::new(false),
                observed: Mutex::new(HashMap::new()),
                recent_exits: (0..RECENT_SHARDS)
                    .map(|_| crate::actor::Padded(Mutex::new(RecentExits::default())))
                    .collect(),
                hooks: crate::hooks::ExitHooks::new(),
                registry: iris_registry::Registry::new(),
                links: crate::links::LinkState::default(),
                supervisors: crate::supervision::Supervisors::default(),
                mesh: Arc::new(crate::mesh::Mesh::new()),
            }),
        }
    }

    /// The Tokio handle actors run on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.inner.sched.handle()
    }

    /// Lets an idle scheduler thread poll for work for up to `linger` before it parks (one
    /// thread at a time; zero, the default, parks at once), so work sent from a thread
    /// outside the runtime usually finds a scheduler awake instead of waking one.
    ///
    /// Worth it where messages keep leaving the runtime and coming back within
    /// microseconds: the Node binding, whose handlers run on the JS thread, sets 50 µs,
    /// which makes a request/response chain between two of its actors several times faster.
    /// The price is up to `linger` of one core each time the run queue runs dry, and Tokio
    /// tasks on that worker wait that long. See [`iris_sched::RunQueue::set_linger`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = iris::Runtime::with_workers(2).unwrap();
    /// rt.set_linger(Duration::from_micros(50));
    /// assert_eq!(rt.linger(), Duration::from_micros(50));
    /// ```
    pub fn set_linger(&self, linger: std::time::Duration) {
        self.inner.runq.set_linger(linger);
    }

    /// The current [`Runtime::set_linger`] setting.
    pub fn linger(&self) -> std::time::Duration {
        self.inner.runq.linger()
    }

    /// Number of live actors (virtual ones included).
    pub fn actor_count(&self) -> usize {
        self.inner.table.len()
    }

    // ----- spawning -------------------------------------------------------------------------

    fn new_actor(
        &self,
        kind: Kind,
        opts: &SpawnOptions,
        is_virtual: bool,
    ) -> Result<Arc<Actor>, ActorError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(ActorError::ShuttingDown);
        }
        let pid = next_pid();
        let mailbox = match opts.capacity {
            None => Mailbox::unbounded_in(pooled()),
            Some(c) => Mailbox::bounded(c).map_err(|e| ActorError::Mailbox(pid, e))?,
        };
        let actor = Arc::new(Actor::new(
            pid,
            mailbox,
            kind,
            opts.parent,
            is_virtual,
            Arc::downgrade(&self.inner),
        ));
        // In the table first, so a parent exiting right now finds the child to shut down.
        self.inner.table.insert(actor.clone());
        if let Some(parent) = opts.parent {
            let attached = match self.inner.table.get(parent) {
                Some(p) => {
                    // Checked under the relations lock: the parent's exit closes its mailbox
                    // before it takes this lock to shut its children down.
                    p.relate(|r| {
                        let alive = p.is_alive();
                        if alive {
                            r.children.push(pid);
                        }
                        alive
                    })
                }
                None => false,
            };
            if !attached {
                self.inner.table.remove(pid);
                return Err(ActorError::ParentDead(parent));
            }
        }
        Ok(actor)
    }

    fn push_kind(behavior: Behavior, budget: usize, idle: Option<Duration>, re: bool) -> Kind {
        Kind::Push {
            behaviors: Behaviors::new(behavior),
            budget: budget.max(1),
            idle,
            reactivate: re,
        }
    }

    /// Spawns a push actor with a [`Behavior`] and options; the general form of the
    /// `spawn_*handler*` calls.
    pub fn try_spawn_behavior(
        &self,
        behavior: Behavior,
        opts: SpawnOptions,
    ) -> Result<Pid, ActorError> {
        let kind = Self::push_kind(behavior, opts.budget, None, false);
        // Dormant until its first message (see `Actor::dormant`).
        Ok(self.new_actor(kind, &opts, false)?.pid)
    }

    fn spawn_or_dead(&self, r: Result<Pid, ActorError>) -> Pid {
        match r {
            Ok(pid) => pid,
            // The seed's Rust API returns a bare PID: a child of a dead parent (or an actor
            // spawned during shutdown) is a PID that is already gone, so sends to it fail and
            // `is_alive` is false. The `try_` forms return the error instead.
            Err(_) => next_pid(),
        }
    }

    /// Spawns a push actor: `handler(msg)` runs once per message, one at a time, in order.
    /// The handler may return `()`, a [`iris_sched::Flow`] or a `Result` (an `Err` ends the
    /// actor with `Crash`).
    pub fn spawn_handler_with_budget<F, Fut>(&self, handler: F, budget: usize) -> Pid
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        let opts = SpawnOptions {
            budget,
            ..SpawnOptions::default()
        };
        self.spawn_or_dead(self.try_spawn_behavior(Behavior::from_async(handler), opts))
    }

    /// Spawns a push actor with a synchronous handler (no future per message).
    pub fn spawn_fn<F, R>(&self, handler: F, budget: usize) -> Pid
    where
        F: Fn(Message) -> R + Send + Sync + 'static,
        R: IntoFlow,
    {
        let opts = SpawnOptions {
            budget,
            ..SpawnOptions::default()
        };
        self.spawn_or_dead(self.try_spawn_behavior(Behavior::from_fn(handler), opts))
    }

    /// Spawns a push actor with a bounded mailbox (`capacity >= 1`; the policy starts as
    /// `DropNew`).
    pub fn spawn_handler_bounded<F, Fut>(
        &self,
        handler: F,
        budget: usize,
        capacity: usize,
    ) -> Result<Pid, ActorError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        let opts = SpawnOptions {
            budget,
            capacity: Some(capacity),
            parent: None,
        };
        self.try_spawn_behavior(Behavior::from_async(handler), opts)
    }

    /// Spawns a child push actor that is shut down (`Shutdown`) when `parent` exits.
    pub fn spawn_child_handler_with_budget<F, Fut>(
        &self,
        parent: Pid,
        handler: F,
        budget: usize,
    ) -> Pid
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        let opts = SpawnOptions {
            budget,
            capacity: None,
            parent: Some(parent),
        };
        self.spawn_or_dead(self.try_spawn_behavior(Behavior::from_async(handler), opts))
    }

    /// Spawns an actor that owns its mailbox: `f(rx)` runs as one task and the actor exits
    /// (`Normal`) when it returns. `stop` cancels it at its next `.await`.
    pub fn spawn_actor<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        self.spawn_or_dead(self.try_spawn_actor(f, SpawnOptions::default()))
    }

    /// Like [`Runtime::spawn_actor`]; the budget is accepted for API symmetry (the closure
    /// drives its own receive loop).
    pub fn spawn_actor_with_budget<F, Fut>(&self, f: F, budget: usize) -> Pid
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        let opts = SpawnOptions {
            budget,
            ..SpawnOptions::default()
        };
        self.spawn_or_dead(self.try_spawn_actor(f, opts))
    }

    /// Like [`Runtime::spawn_actor`] with a bounded mailbox.
    pub fn spawn_actor_bounded<F, Fut>(&self, f: F, capacity: usize) -> Result<Pid, ActorError>
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        let opts = SpawnOptions {
            capacity: Some(capacity),
            ..SpawnOptions::default()
        };
        self.try_spawn_actor(f, opts)
    }

    /// Spawns a child actor that owns its mailbox; it is shut down when `parent` exits.
    pub fn spawn_child<F, Fut>(&self, parent: Pid, f: F) -> Pid
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        self.spawn_or_dead(self.try_spawn_child(parent, f))
    }

    /// Like [`Runtime::spawn_child`], failing with [`ActorError::ParentDead`].
    pub fn try_spawn_child<F, Fut>(&self, parent: Pid, f: F) -> Result<Pid, ActorError>
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        let opts = SpawnOptions {
            parent: Some(parent),
            ..SpawnOptions::default()
        };
        self.try_spawn_actor(f, opts)
    }

    /// Like [`Runtime::spawn_child`] with a budget (see [`Runtime::spawn_actor_with_budget`]).
    pub fn spawn_child_with_budget<F, Fut>(&self, parent: Pid, f: F, budget: usize) -> Pid
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        let opts = SpawnOptions {
            parent: Some(parent),
            budget,
            capacity: None,
        };
        self.spawn_or_dead(self.try_spawn_actor(f, opts))
    }

    /// The general form of [`Runtime::spawn_actor`].
    pub fn try_spawn_actor<F, Fut>(&self, f: F, opts: SpawnOptions) -> Result<Pid, ActorError>
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        let kind = Kind::Task {
            abort: Mutex::new(None),
        };
        let actor = self.new_actor(kind, &opts, false)?;
        let pid = actor.pid;
        let rx = Receiver {
            actor: actor.clone(),
        };
        let weak = Arc::downgrade(&self.inner);
        let guard = FinishGuard {
            rt: weak,
            actor: Some(actor.clone()),
        };
        let handle = self.inner.sched.spawn_task(async move {
            let mut guard = guard;
            let end = CatchUnwind::new(in_actor(pid, f(rx))).await;
            let own = match end {
                Ok(_) => Some(ExitInfo::new(ExitReason::Normal)),
                Err(panic) => Some(ExitInfo::with_metadata(ExitReason::Panic, panic)),
            };
            guard.complete(own);
        });
        if let Kind::Task { abort } = &actor.kind {
            *lock(abort) = Some(handle.abort_handle());
        }
        // A kill that raced the spawn found no abort handle yet: honour it now.
        if !actor.is_alive() {
            handle.abort();
        }
        Ok(pid)
    }

    /// Spawns a pull actor: `f(rx)` runs once on its own OS thread and blocks in
    /// [`Receiver::recv_blocking`]; thousands can block at once. The actor exits when `f`
    /// returns.
    pub fn spawn_with_mailbox<F>(&self, f: F) -> Result<Pid, ActorError>
    where
        F: FnOnce(Receiver) + Send + 'static,
    {
        self.spawn_with_mailbox_opts(f, SpawnOptions::default())
    }

    /// The general form of [`Runtime::spawn_with_mailbox`].
    pub fn spawn_with_mailbox_opts<F>(&self, f: F, opts: SpawnOptions) -> Result<Pid, ActorError>
    where
        F: FnOnce(Receiver) + Send + 'static,
    {
        let actor = self.new_actor(Kind::Pull, &opts, false)?;
        let pid = actor.pid;
        let rx = Receiver {
            actor: actor.clone(),
        };
        let weak = Arc::downgrade(&self.inner);
        let started = self.inner.sched.spawn_pull(
            format!("iris-pull-{pid}"),
            Box::new(move || {
                let _current = AsCurrent::enter(pid);
                let mut guard = FinishGuard {
                    rt: weak,
                    actor: Some(actor),
                };
                let own = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(rx))) {
                    Ok(()) => ExitInfo::new(ExitReason::Normal),
                    Err(p) => ExitInfo::with_metadata(
                        ExitReason::Panic,
                        iris_sched::panic_message(p.as_ref()),
                    ),
                };
                guard.complete(Some(own));
            }),
        );
        if let Err(e) = started {
            if let Some(a) = self.inner.table.remove(pid) {
                a.mailbox.close();
            }
            return Err(ActorError::Sched(e));
        }
        Ok(pid)
    }

    /// Reserves a PID for a virtual actor: it starts on the first message (from any path)
    /// and, with an idle timeout, stops with `Timeout` after that long without a message.
    pub fn spawn_virtual_handler_with_budget<F, Fut>(
        &self,
        handler: F,
        budget: usize,
        idle_timeout: Option<Duration>,
    ) -> Pid
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        self.spawn_or_dead(self.try_spawn_virtual(
            Behavior::from_async(handler),
            budget,
            idle_timeout,
            false,
        ))
    }

    /// The general form of virtual actors. With `reactivate`, an actor that idled out keeps
    /// its PID and the next message starts it again (Orleans-style).
    pub fn try_spawn_virtual(
        &self,
        behavior: Behavior,
        budget: usize,
        idle_timeout: Option<Duration>,
        reactivate: bool,
    ) -> Result<Pid, ActorError> {
        let kind = Self::push_kind(behavior, budget, idle_timeout, reactivate);
        let opts = SpawnOptions {
            budget,
            ..SpawnOptions::default()
        };
        Ok(self.new_actor(kind, &opts, true)?.pid)
    }

    /// `true` for a virtual actor that is reserved but not running.
    pub fn is_dormant(&self, pid: Pid) -> bool {
        self.inner
            .table
            .get(pid)
            .is_some_and(|a| a.is_virtual && a.dormant.load(Ordering::SeqCst) && a.is_alive())
    }

    fn start_push(&self, actor: Arc<Actor>) {
        let weak = Arc::downgrade(&self.inner);
        let pid = actor.pid;
        self.inner
            .sched
            .spawn_task(in_actor(pid, run_push(weak, actor, None)));
    }

    fn activate(&self, actor: &Arc<Actor>) {
        if actor.dormant.load(Ordering::SeqCst)
            && actor
                .dormant
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            match &actor.kind {
                // Actors with an idle timeout need a task to time it; the others go to the
                // scheduler loops.
                Kind::Push { idle: None, .. } => self.inner.runq.schedule(actor.clone()),
                _ => self.start_push(actor.clone()),
            }
        }
    }

    // ----- sending --------------------------------------------------------------------------

    /// Offers `msg` to `actor` (found as `target`): delivered, refused, or where to go next.
    #[inline]
    fn hop(&self, target: Pid, actor: &Arc<Actor>, msg: Message) -> Hop {
        let user = match msg {
            Message::System(_) => {
                return match actor.mailbox.push_system(msg) {
                    Ok(()) => {
                        self.activate(actor);
                        Hop::Done(Ok(()))
                    }
                    Err(closed) => Hop::Done(Err(SendError::NoProcess(target, closed.0))),
                };
            }
            user => user,
        };
        self.deliver_user(target, actor, user)
    }

    /// Delivers a user message to `actor` (found as `target`): handed over directly when the
    /// actor is dormant with an empty mailbox, offered to its mailbox otherwise. The common
    /// case (a running actor) costs two loads before the offer, and no move of the message.
    #[inline(always)]
    fn deliver_user(&self, target: Pid, actor: &Arc<Actor>, msg: Message) -> Hop {
        let msg = if actor.expressable && actor.dormant.load(Ordering::SeqCst) {
            match self.express(actor, msg) {
                Ok(()) => return Hop::Done(Ok(())),
                Err(msg) => msg,
            }
        } else {
            msg
        };
        self.offered(target, actor, actor.mailbox.offer(msg))
    }

    /// Hands a user message straight to a dormant push actor whose mailbox is empty, waking
    /// it (see [`crate::actor::Express`]); gives the message back for the mailbox otherwise.
    /// [`Runtime::deliver_user`] calls it for an expressable actor that looked dormant.
    #[inline(never)]
    fn express(&self, actor: &Arc<Actor>, msg: Message) -> Result<(), Message> {
        // Empty: none of this sender's earlier messages waits to be overtaken (it saw its own
        // pushes), and the actor is not closed; the compare-exchange confirms it is dormant.
        if !actor.mailbox.has_messages()
            && !actor.mailbox.is_closed()
            && actor
                .dormant
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            actor.express.put(msg);
            self.inner.runq.schedule(actor.clone());
            return Ok(());
        }
        Err(msg)
    }

    /// What an offer of a user message to `actor` (found as `target`) means for the delivery.
    #[inline]
    fn offered(&self, target: Pid, actor: &Arc<Actor>, offer: Offer<Message>) -> Hop {
        match offer {
            Offer::Queued | Offer::Evicted(_) => {
                self.activate(actor);
                Hop::Done(Ok(()))
            }
            Offer::Rejected(m) => Hop::Done(Err(SendError::MailboxFull(target, m))),
            Offer::Closed(m) => Hop::Done(Err(SendError::NoProcess(target, m))),
            Offer::MustWait(m) => Hop::Wait(actor.clone(), m),
            Offer::Redirect(next, m) => Hop::Redirect(next, m),
            Offer::Spill(next, m) => Hop::Spill(next, m, actor.clone()),
        }
    }

    fn route(&self, pid: Pid, msg: Message) -> Routed {
        let mut slot = Some(msg);
        // Under the table's read lock: activation may spawn a task, but nothing here takes
        // a table lock (a spill's copy is forwarded after the lock is released).
        let hop = self.inner.table.with(pid, |actor| {
            self.hop(
                pid,
                actor,
                slot.take().expect("message present until delivered"),
            )
        });
        match hop {
            Some(Hop::Done(r)) => Routed::Done(r),
            Some(hop) => self.follow(pid, pid, hop, Vec::new()),
            None => {
                let msg = slot.take().expect("closure did not run");
                Routed::Done(Err(SendError::NoProcess(pid, msg)))
            }
        }
    }

    /// Follows the hop of a message sent to `pid` that `target` answered: redirects (with
    /// cycle detection over `visited`) and spills.
    fn follow(&self, pid: Pid, mut target: Pid, mut hop: Hop, mut visited: Vec<Pid>) -> Routed {
        loop {
            match hop {
                Hop::Done(r) => return Routed::Done(r),
                Hop::Wait(actor, m) => return Routed::Wait(actor, m),
                Hop::Redirect(next, m) => {
                    visited.push(target);
                    if visited.contains(&next) {
                        return Routed::Done(Err(SendError::RedirectCycle(pid, m)));
                    }
                    target = next;
                    let mut slot = Some(m);
                    let found = self.inner.table.with(target, |actor| {
                        self.hop(target, actor, slot.take().expect("message present"))
                    });
                    hop = match found {
                        Some(h) => h,
                        None => {
                            let m = slot.take().expect("closure did not run");
                            return Routed::Done(Err(SendError::NoProcess(target, m)));
                        }
                    };
                }
                Hop::Spill(next, m, actor) => {
                    if next != target {
                        self.forward_detached(next, m.clone());
                    }
                    return Routed::Wait(actor, m);
                }
            }
        }
    }

    /// Finishes a delivery that must wait for room, blocking this thread safely.
    fn finish_send(&self, routed: Routed) -> Result<(), SendError> {
        match routed {
            Routed::Done(r) => r,
            Routed::Wait(actor, m) => {
                let r = block_in_place(|| actor.mailbox.push_wait_blocking(m, None));
                match r {
                    Ok(()) => {
                        self.activate(&actor);
                        Ok(())
                    }
                    Err(m) => Err(SendError::NoProcess(actor.pid, m)),
                }
            }
        }
    }

    /// A handle to the local actor `pid` (`None` if it is not alive): its sends skip the PID
    /// lookup, as a kameo `ActorRef` or an actix `Addr` does.
    pub fn actor_ref(&self, pid: Pid) -> Option<ActorRef> {
        let actor = self.inner.table.get(pid).filter(|a| a.is_alive())?;
        Some(ActorRef {
            rt: self.clone(),
            actor,
        })
    }

    /// Sends a message to the actor `view` shows, as [`Runtime::send`] to its PID does,
    /// without looking the PID up (the view must come from this runtime).
    pub fn send_to(&self, view: &ActorView, msg: Message) -> Result<(), SendError> {
        self.send_to_actor(&view.actor, msg)
    }

    /// A send to an actor in hand (an [`ActorRef`] or [`ActorView`]): no PID lookup.
    #[inline]
    fn send_to_actor(&self, actor: &Arc<Actor>, msg: Message) -> Result<(), SendError> {
        let pid = actor.pid;
        let hop = match msg {
            // Delivered in place (inlined): no route or table lookup carries it around.
            Message::User(_) => self.deliver_user(pid, actor, msg),
            system => self.hop(pid, actor, system),
        };
        match hop {
            // The common case returns at once, without moving the message through `follow`.
            Hop::Done(r) => r,
            hop => self.finish_send(self.follow(pid, pid, hop, Vec::new())),
        }
    }

    /// A view of the local actor `pid` for polling its state ([`ActorView`]); `None` if it
    /// is not alive.
    pub fn view(&self, pid: Pid) -> Option<ActorView> {
        let actor = self.inner.table.get(pid).filter(|a| a.is_alive())?;
        Some(ActorView { actor })
    }

    /// Delivers without making the caller wait: a blocked delivery continues as a task.
    fn forward_detached(&self, pid: Pid, msg: Message) {
        if let Routed::Wait(actor, m) = self.route(pid, msg) {
            let rt = self.clone();
            self.inner.sched.spawn_task(async move {
                if actor.mailbox.push_wait(m).await.is_ok() {
                    rt.activate(&actor);
                }
            });
        }
    }

    /// Sends `msgs` to `pid` in order, as [`Runtime::send`] would one by one, stopping at the
    /// first that is not queued; returns how many were. To an unbounded mailbox the user
    /// messages go under one lock with one wake-up (the senders' cost of a burst is then
    /// mostly copying); a bounded mailbox applies its policy to each.
    ///
    /// ```
    /// use iris::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pid = rt.spawn_observed_handler(10).unwrap();
    /// let burst: Vec<Message> = (0..3u8).map(|i| Message::from(vec![i])).collect();
    /// assert_eq!(rt.send_many(pid, burst), 3);
    /// # while rt.get_messages(pid).len() < 3 { std::thread::yield_now(); }
    /// assert_eq!(rt.get_messages(pid)[2], Message::from(vec![2u8]));
    /// assert_eq!(rt.send_many(u64::MAX >> 20, vec![Message::from("x")]), 0);
    /// ```
    pub fn send_many(&self, pid: Pid, mut msgs: Vec<Message>) -> usize {
        let n = msgs.len();
        if msgs.iter().all(|m| !m.is_system()) {
            let queued = self.inner.table.with(pid, |actor| {
                let queued = actor.mailbox.push_all(&mut msgs);
                if queued {
                    self.activate(actor);
                }
                queued
            });
            if queued == Some(true) {
                return n;
            }
        }
        // A bounded or closed mailbox, no such actor, a system message: one at a time.
        let mut sent = 0;
        for m in msgs {
            if self.send(pid, m).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    }

    /// Sends a message. A full mailbox applies its overflow policy; under `Block` (and
    /// `Spill`) the calling thread waits for room (inside Tokio via `block_in_place`; use
    /// [`Runtime::send_async`] from async code).
    pub fn send(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.finish_send(self.route(pid, msg))
    }

    /// Sends user bytes.
    pub fn send_user(&self, pid: Pid, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(pid, Message::User(data.into()))
    }

    /// Sends a message, waiting asynchronously for room under `Block`/`Spill`.
    pub async fn send_async(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.finish_send_async(self.route(pid, msg)).await
    }

    async fn finish_send_async(&self, routed: Routed) -> Result<(), SendError> {
        match routed {
            Routed::Done(r) => r,
            Routed::Wait(actor, m) => match actor.mailbox.push_wait(m).await {
                Ok(()) => {
                    self.activate(&actor);
                    Ok(())
                }
                Err(closed) => Err(SendError::NoProcess(actor.pid, closed.0)),
            },
        }
    }

    // ----- lifecycle ------------------------------------------------------------------------

    /// `true` while the actor is alive (and not yet stopped).
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.inner.table.get(pid).is_some_and(|a| a.is_alive())
    }

    /// Stops an actor with `Killed` after the message it is handling; queued messages are
    /// dropped. Returns `false` if it was not alive.
    pub fn stop(&self, pid: Pid) -> bool {
        self.kill(pid, ExitInfo::new(ExitReason::Killed))
    }

    /// Ends an actor with the given exit info (after the message it is handling).
    pub fn exit(&self, pid: Pid, info: ExitInfo) -> bool {
        self.kill(pid, info)
    }

    pub(crate) fn kill(&self, pid: Pid, info: ExitInfo) -> bool {
        kill(&self.inner, pid, info)
    }

    /// The exit of an actor that already ended (the last few thousand are remembered).
    pub fn exit_info(&self, pid: Pid) -> Option<ExitInfo> {
        self.inner.recent_exit(pid)
    }

    /// Blocks until the actor has exited and returns why; `None` for a PID that is unknown
    /// (or exited too long ago to be remembered).
    pub fn join(&self, pid: Pid) -> Option<ExitInfo> {
        match self.inner.table.get(pid) {
            Some(actor) => block_in_place(|| actor.exit.wait_blocking(None)),
            None => self.exit_info(pid),
        }
    }

    /// Like [`Runtime::join`] with a timeout; `None` also when it passes.
    pub fn join_timeout(&self, pid: Pid, timeout: Duration) -> Option<ExitInfo> {
        match self.inner.table.get(pid) {
            Some(actor) => block_in_place(|| actor.exit.wait_blocking(Some(timeout))),
            None => self.exit_info(pid),
        }
    }

    /// Waits asynchronously for the actor's exit; `None` for an unknown PID.
    pub async fn wait(&self, pid: Pid) -> Option<ExitInfo> {
        match self.inner.table.get(pid) {
            Some(actor) => Some(actor.exit.wait().await),
            None => self.exit_info(pid),
        }
    }

    /// Queued user messages of an actor (its selective-receive stash included); `None` for
    /// unknown or dead PIDs.
    pub fn mailbox_size(&self, pid: Pid) -> Option<usize> {
        self.inner
            .table
            .get(pid)
            .filter(|a| a.is_alive())
            .map(|a| a.mailbox.len() + usize::from(a.express.is_full()))
    }

    /// Sets the overflow policy of a bounded mailbox.
    pub fn set_overflow_policy(&self, pid: Pid, policy: OverflowPolicy) -> Result<(), ActorError> {
        let actor = self
            .inner
            .table
            .get(pid)
            .filter(|a| a.is_alive())
            .ok_or(ActorError::NoProcess(pid))?;
        actor
            .mailbox
            .set_policy(policy)
            .map_err(|e| ActorError::Mailbox(pid, e))
    }

    /// The PIDs of an actor's live children.
    pub fn children_of(&self, pid: Pid) -> Vec<Pid> {
        self.inner
            .table
            .get(pid)
            .and_then(|a| a.related(|r| r.children.clone()))
            .unwrap_or_default()
    }

    /// Stops every actor with `Shutdown` and cancels every timer; waits up to `timeout` for
    /// the exits to run. New spawns fail from now on. Returns `true` if all exited in time.
    pub fn shutdown_timeout(&self, timeout: Duration) -> bool {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.mesh.shutdown();
        for (_, t) in lock(&self.inner.timers).drain() {
            t.abort.abort();
        }
        let actors = self.inner.table.all();
        for a in &actors {
            self.kill(a.pid, ExitInfo::new(ExitReason::Shutdown));
        }
        let deadline = std::time::Instant::now() + timeout;
        block_in_place(|| {
            actors.iter().all(|a| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                a.exit.wait_blocking(Some(left)).is_some()
            })
        })
    }

    /// [`Runtime::shutdown_timeout`] with five seconds.
    pub fn shutdown(&self) -> bool {
        self.shutdown_timeout(Duration::from_secs(5))
    }

    // ----- hot swap -------------------------------------------------------------------------

    fn behaviors<R>(&self, pid: Pid, f: impl FnOnce(&Behaviors) -> R) -> Result<R, ActorError> {
        let actor = self
            .inner
            .table
            .get(pid)
            .filter(|a| a.is_alive())
            .ok_or(ActorError::NoProcess(pid))?;
        match &actor.kind {
            Kind::Push { behaviors, .. } => Ok(f(behaviors)),
            _ => Err(ActorError::NotSwappable(pid)),
        }
    }

    /// Replaces a push actor's handler atomically: the message in progress finishes on the
    /// old code, every message started afterwards uses the new one. Returns the new version.
    pub fn hot_swap<F, Fut>(&self, pid: Pid, handler: F) -> Result<u64, ActorError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoFlow,
    {
        self.hot_swap_behavior(pid, Behavior::from_async(handler))
    }

    /// [`Runtime::hot_swap`] with a ready-made [`Behavior`].
    pub fn hot_swap_behavior(&self, pid: Pid, behavior: Behavior) -> Result<u64, ActorError> {
        self.behaviors(pid, |b| b.swap(behavior))
    }

    /// The version of the actor's current behaviour (the initial one is 1).
    pub fn behavior_version(&self, pid: Pid) -> Option<u64> {
        self.behaviors(pid, |b| b.version()).ok()
    }

    /// Goes back `steps` behaviours in the bounded history (which includes the initial
    /// behaviour); returns the version now current.
    pub fn rollback_behavior(&self, pid: Pid, steps: usize) -> Result<u64, ActorError> {
        self.behaviors(pid, |b| b.rollback(steps))?
            .map_err(|available| ActorError::NoSuchVersion {
                pid,
                steps,
                available,
            })
    }

    // ----- timers ---------------------------------------------------------------------------

    fn add_timer(&self, pid: Pid, fut: impl FnOnce(u64) -> AbortHandle) -> u64 {
        let id = NEXT_TIMER.fetch_add(1, Ordering::Relaxed);
        let Some(actor) = self.inner.table.get(pid).filter(|a| a.is_alive()) else {
            return id;
        };
        let mut timers = lock(&self.inner.timers);
        let abort = fut(id);
        timers.insert(id, TimerEntry { pid, abort });
        drop(timers);
        actor.relate(|r| r.timers.push(id));
        // The actor may have died between the check and the registration.
        if !actor.is_alive() {
            self.cancel_timer(id);
        }
        id
    }

    /// Sends `payload` to `pid` once after `delay_ms` milliseconds. Returns the timer id.
    pub fn send_after(&self, pid: Pid, delay_ms: u64, payload: impl Into<Bytes>) -> u64 {
        let payload = payload.into();
        let weak = Arc::downgrade(&self.inner);
        self.add_timer(pid, |id| {
            self.inner
                .sched
                .spawn_task(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let fire = lock(&inner.timers).remove(&id).is_some();
                    if fire {
                        let rt = Runtime { inner };
                        let _ = rt.send_async(pid, Message::User(payload)).await;
                    }
                })
                .abort_handle()
        })
    }

    /// Sends `payload` to `pid` every `interval_ms` milliseconds (the first after one
    /// interval) until cancelled or the actor dies. Returns the timer id.
    pub fn send_interval(&self, pid: Pid, interval_ms: u64, payload: impl Into<Bytes>) -> u64 {
        let payload = payload.into();
        let weak = Arc::downgrade(&self.inner);
        let period = Duration::from_millis(interval_ms.max(1));
        self.add_timer(pid, |id| {
            self.inner
                .sched
                .spawn_task(async move {
                    let start = tokio::time::Instant::now() + period;
                    let mut ticks = tokio::time::interval_at(start, period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        let Some(inner) = weak.upgrade() else { return };
                        if !lock(&inner.timers).contains_key(&id) {
                            return;
                        }
                        let rt = Runtime { inner };
                        if let Err(SendError::NoProcess(..)) =
                            rt.send_async(pid, Message::User(payload.clone())).await
                        {
                            lock(&rt.inner.timers).remove(&id);
                            return;
                        }
                    }
                })
                .abort_handle()
        })
    }

    /// Cancels a timer; `true` only if it was still pending.
    pub fn cancel_timer(&self, id: u64) -> bool {
        cancel_timer(&self.inner, id)
    }

    /// Runs `hook` once when `pid` exits (at once, with its exit or `noproc`, if it is
    /// already gone). Returns an id for [`Runtime::remove_exit_hook`], or `None` if it ran.
    pub fn on_exit(
        &self,
        pid: Pid,
        hook: impl FnOnce(Pid, &ExitInfo) + Send + 'static,
    ) -> Option<u64> {
        self.inner.hooks.add(&self.inner, pid, Box::new(hook))
    }

    /// Removes a hook registered by [`Runtime::on_exit`]; `true` if it had not run.
    pub fn remove_exit_hook(&self, pid: Pid, id: u64) -> bool {
        self.inner.hooks.remove(pid, id)
    }

    /// Number of registered exit hooks (links, monitors and supervision use them), for leak
    /// checks.
    pub fn exit_hook_count(&self) -> usize {
        self.inner.hooks.len()
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        lock(&self.inner.timers).len()
    }
}

fn cancel_timer(inner: &Inner, id: u64) -> bool {
    let entry = lock(&inner.timers).remove(&id);
    match entry {
        Some(t) => {
            t.abort.abort();
            if let Some(a) = inner.table.get(t.pid) {
                a.related(|r| r.timers.retain(|&x| x != id));
            }
            true
        }
        None => false,
    }
}

pub(crate) fn kill(inner: &Arc<Inner>, pid: Pid, info: ExitInfo) -> bool {
    let Some(actor) = inner.table.get(pid) else {
        return false;
    };
    actor.relate(|r| {
        if r.kill.is_none() {
            r.kill = Some(info);
        }
    });
    let was_alive = actor.is_alive();
    actor.mailbox.close();
    match &actor.kind {
        Kind::Task { abort } => {
            if let Some(a) = lock(abort).as_ref() {
                a.abort();
            }
        }
        // A dormant push actor has no task to notice the close: finish it here.
        Kind::Push { .. }
            if actor
                .dormant
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok() =>
        {
            finish(inner, &actor, None);
        }
        _ => {}
    }
    was_alive
}

/// Runs the exit procedure once the actor's code has ended. `own` is the actor's own reason;
/// `None` means it ended because its mailbox was closed, so the requested kill reason applies.
fn finish(inner: &Arc<Inner>, actor: &Arc<Actor>, own: Option<ExitInfo>) {
    if actor.finishing.swap(true, Ordering::AcqRel) {
        return;
    }
    actor.mailbox.close();
    let pid = actor.pid;
    if let Kind::Push { behaviors, .. } = &actor.kind {
        behaviors.notify_exit(pid);
    }
    // Closed: no timer or child can be added any more. One lock for the requested reason
    // (a kill sets it before it closes the mailbox), the timers and the children.
    let (requested, timers, children) = actor
        .related(|r| {
            (
                r.kill.clone(),
                std::mem::take(&mut r.timers),
                std::mem::take(&mut r.children),
            )
        })
        .unwrap_or_default();
    let info = match own {
        Some(info) => info,
        None => requested.unwrap_or_else(|| ExitInfo::new(ExitReason::Killed)),
    };
    for id in timers {
        cancel_timer(inner, id);
    }
    for child in children {
        kill(inner, child, ExitInfo::new(ExitReason::Shutdown));
    }
    if let Some(parent) = actor.parent
        && let Some(p) = inner.table.get(parent)
    {
        p.related(|r| r.children.retain(|&c| c != pid));
    }
    if actor.observed.load(Ordering::Acquire) {
        lock(&inner.observed).remove(&pid);
    }
    if actor.registered.load(Ordering::SeqCst) {
        inner.registry.remove_pid(pid);
    }
    crate::links::on_exit(inner, actor, &info);
    lock(&inner.recent_exits[recent_shard(pid)].0).record(pid, info.clone());
    // Only an actor that ever had a hook can have one (see `ExitHooks::add`).
    let hooks = if actor.hooked.load(Ordering::SeqCst) {
        inner.hooks.take(pid)
    } else {
        Vec::new()
    };
    inner.table.remove(pid);
    for hook in hooks {
        // A hook is runtime or binding code; a panic in one must not stop the others.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(pid, &info)));
    }
    actor.exit.set(info);
}

/// Runs `finish` when an actor's task ends, also when the task is cancelled (kill of a
/// `spawn_actor` actor) or the runtime drops it.
struct FinishGuard {
    rt: Weak<Inner>,
    actor: Option<Arc<Actor>>,
}

impl FinishGuard {
    fn complete(&mut self, own: Option<ExitInfo>) {
        if let Some(actor) = self.actor.take() {
            conclude(&self.rt, &actor, own);
        }
    }
}

/// Ends an actor whose code stopped running, with its own reason (`None`: its mailbox was
/// closed, so the requested kill reason applies).
fn conclude(rt: &Weak<Inner>, actor: &Arc<Actor>, own: Option<ExitInfo>) {
    // A kill requested while the code was running wins over a clean return.
    let own = match (own, actor.related(|r| r.kill.is_some()) == Some(true)) {
        (Some(info), false) => Some(info),
        (Some(info), true) if info.reason != ExitReason::Normal => Some(info),
        _ => None,
    };
    match rt.upgrade() {
        Some(inner) => finish(&inner, actor, own),
        None => {
            actor.mailbox.close();
            actor
                .exit
                .set(own.unwrap_or_else(|| ExitInfo::new(ExitReason::Shutdown)));
        }
    }
}

fn flow_exit(flow: Flow) -> Option<ExitInfo> {
    match flow {
        Flow::Continue => None,
        Flow::Stop => Some(ExitInfo::new(ExitReason::Normal)),
        Flow::Crash(why) => Some(ExitInfo::with_metadata(ExitReason::Crash, why)),
        Flow::Shutdown => Some(ExitInfo::new(ExitReason::Shutdown)),
    }
}

/// How long one call of a spanning batch guard goes on with further batches (see
/// [`Actor::spanning_batches`]).
const MAX_SPANNING: std::time::Duration = std::time::Duration::from_micros(200);

/// A synchronous push actor on a scheduler loop: one reduction budget of messages per run
/// (several under a spanning batch guard).
impl Runnable for Actor {
    fn run(self: Arc<Self>) -> RunOutcome {
        let Kind::Push {
            behaviors, budget, ..
        } = &self.kind
        else {
            return RunOutcome::Idle;
        };
        let _current = AsCurrent::enter(self.pid);
        if self.mailbox.is_closed() {
            conclude(&self.rt, &self, None);
            return RunOutcome::Idle;
        }
        // A batch guard (a binding's interpreter lock) is only taken when there is work.
        let outcome = match behaviors.batch_guard() {
            None => Some(self.run_batch(behaviors, *budget)),
            Some(_) if !self.express.is_full() && !self.mailbox.has_messages() => {
                Some(BatchEnd::Drained)
            }
            Some((guard, false)) => {
                let mut outcome = None;
                guard(&mut || outcome = Some(self.run_batch(behaviors, *budget)));
                outcome
            }
            Some((guard, true)) => {
                let mut outcome = None;
                guard(&mut || outcome = Some(self.spanning_batches(behaviors, *budget)));
                outcome
            }
        };
        match outcome {
            Some(BatchEnd::Ended) => return RunOutcome::Idle,
            Some(BatchEnd::Drained) => {}
            // The guard did not run the batch: its messages are lost, which ends the actor.
            None => {
                let why = "batch guard did not run the batch";
                conclude(
                    &self.rt,
                    &self,
                    Some(ExitInfo::with_metadata(ExitReason::Crash, why)),
                );
                return RunOutcome::Idle;
            }
        }
        if self.mailbox.has_messages() {
            return RunOutcome::Yield;
        }
        self.dormant.store(true, Ordering::SeqCst);
        // A message (or a stop) that arrived before `dormant` was set saw the actor scheduled
        // and did not schedule (or finish) it: handle it ourselves unless its sender already
        // did. A closed mailbox makes the next run conclude the actor.
        if (self.mailbox.has_messages() || self.mailbox.is_closed())
            && self
                .dormant
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return RunOutcome::Yield;
        }
        RunOutcome::Idle
    }
}

thread_local! {
    /// The actor whose code runs on this thread (0: none; no actor has PID 0).
    static CURRENT: std::cell::Cell<Pid> = const { std::cell::Cell::new(0) };
}

/// The PID of the actor whose code is running on this thread, as Erlang's `self()`: set
/// while a push handler runs (synchronous or async), in a `spawn_actor` task and on a pull
/// actor's thread; `None` anywhere else.
///
/// ```
/// use iris::{Flow, Message, Runtime};
/// let rt = Runtime::new();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let pid = rt.spawn_fn(move |_m| {
///     tx.send(iris::current_pid()).unwrap();
///     Flow::Stop
/// }, 10);
/// rt.send_user(pid, "who am I?").unwrap();
/// assert_eq!(rx.recv().unwrap(), Some(pid));
/// assert_eq!(iris::current_pid(), None);
/// ```
pub fn current_pid() -> Option<Pid> {
    let pid = CURRENT.with(std::cell::Cell::get);
    (pid != 0).then_some(pid)
}

/// Marks an actor as running on this thread until dropped, then restores the previous one.
struct AsCurrent(Pid);

impl AsCurrent {
    fn enter(pid: Pid) -> AsCurrent {
        AsCurrent(CURRENT.with(|c| c.replace(pid)))
    }
}

impl Drop for AsCurrent {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Runs `fut` as actor `pid`: [`current_pid`] is `pid` during each poll.
async fn in_actor<F: Future>(pid: Pid, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        let _current = AsCurrent::enter(pid);
        fut.as_mut().poll(cx)
    })
    .await
}

thread_local! {
    /// This thread's spare batch buffer. A batch is received into it, and the mailbox keeps
    /// its allocation as the actor's next buffer in exchange for the one holding the batch,
    /// which becomes the spare: a request/response pair runs without touching the allocator.
    static SPARE: std::cell::Cell<std::collections::VecDeque<Message>> =
        const { std::cell::Cell::new(std::collections::VecDeque::new()) };
}

/// The largest spare buffer kept (bytes). A busy actor's lane is swapped for the spare at each
/// batch, so the spare must hold a whole batch: a smaller one made the sender grow the lane
/// again after every swap (reallocating as it went) while the consumer freed the big buffer,
/// the two threads contending for the allocator's lock.
const SPARE_BYTES: usize = 64 * 1024;

/// The largest buffer the pool keeps for new mailboxes (bytes): an idle actor keeps at most
/// this much.
const POOL_BYTES: usize = 1024;

/// How many recycled buffers a thread keeps beside its spare.
const POOL_LEN: usize = 16;

thread_local! {
    /// Empty message buffers of actors that ended on this thread, for the mailboxes of the
    /// actors it spawns next (and the spare batch buffer): a tree of short-lived actors
    /// (skynet) reuses its buffers instead of allocating each lane and freeing it elsewhere.
    static POOL: std::cell::RefCell<Vec<std::collections::VecDeque<Message>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The bytes a buffer's allocation holds.
fn buffer_bytes(buf: &std::collections::VecDeque<Message>) -> usize {
    buf.capacity().saturating_mul(size_of::<Message>())
}

/// Keeps an empty (or emptied) buffer for reuse on this thread, if it is small enough and
/// there is room; otherwise frees it.
fn recycle(mut buf: std::collections::VecDeque<Message>) {
    let bytes = buffer_bytes(&buf);
    if bytes == 0 || bytes > SPARE_BYTES {
        return;
    }
    buf.clear();
    // The newest buffer becomes the spare (at a run's end the spare slot is empty: the run
    // took it); a spare it displaces goes to the pool.
    let old = SPARE.replace(buf);
    if old.capacity() == 0 {
        // Nothing to free: skips the call that drops an empty deque (once per hop).
        std::mem::forget(old);
        return;
    }
    if buffer_bytes(&old) > POOL_BYTES {
        return;
    }
    // `try_with`: a thread being torn down just frees it.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_LEN {
            p.push(old);
        }
    });
}

/// A recycled buffer of this thread, or a new empty one.
fn pooled() -> std::collections::VecDeque<Message> {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// How a batch on a scheduler loop ended.
enum BatchEnd {
    /// The batch was handled; the actor lives on.
    Drained,
    /// The actor ended, or moved to a task of its own.
    Ended,
}

impl Actor {
    /// Handles one batch of at most `budget` messages, taken with one lock of the mailbox
    /// (the copy is made outside the producers' lock). One batch per run, then the actor goes
    /// to the back of the run queue if more arrived: draining again at once would keep a
    /// fast consumer just ahead of its producer, and every time it caught up the producer
    /// would pay a thread wake-up to reactivate it (the sink ran 40% slower that way).
    fn run_batch(self: &Arc<Self>, behaviors: &Behaviors, budget: usize) -> BatchEnd {
        // The actor ends: the rest of its batch is dropped with its mailbox's messages, and
        // the buffers go back to this thread's pool.
        let end = |batch, own| {
            conclude(&self.rt, self, own);
            recycle(batch);
            recycle(self.mailbox.reclaim());
            BatchEnd::Ended
        };
        // The message handed over by the send that woke the actor comes first (every message
        // in the mailbox was queued after it: its sender saw the mailbox empty). Handled on
        // its own, it needs no batch buffer, and the batch after it can take the lane in one
        // swap. With nothing queued behind it (the hop of a request/response chain) there is
        // no receive from the mailbox at all.
        let mut room = budget;
        if self.express.is_full() && !self.mailbox.is_closed() {
            let Some(msg) = self.express.take() else {
                return BatchEnd::Drained;
            };
            match self.handle(behaviors, msg) {
                Handled::Continue if self.mailbox.is_closed() => {
                    return end(VecDeque::new(), None);
                }
                Handled::Continue => {}
                Handled::Exit(info) => return end(VecDeque::new(), Some(info)),
                Handled::Async(fut) => return self.hand_over(fut, VecDeque::new()),
            }
            room -= 1;
            if room == 0 || !self.mailbox.has_messages() {
                return BatchEnd::Drained;
            }
        }
        let mut batch = SPARE.take();
        match self.mailbox.try_recv_batch(room, &mut batch) {
            Ok(0) => {
                recycle(batch);
                return BatchEnd::Drained;
            }
            Ok(_) => {}
            Err(_closed) => return end(batch, None),
        }
        while let Some(msg) = batch.pop_front() {
            match self.handle(behaviors, msg) {
                Handled::Continue => {}
                Handled::Exit(info) => return end(batch, Some(info)),
                Handled::Async(fut) => return self.hand_over(fut, batch),
            }
            if self.mailbox.is_closed() {
                return end(batch, None);
            }
        }
        recycle(batch);
        BatchEnd::Drained
    }

    /// The batches of one call of a spanning batch guard ([`Behavior::spanning_batches`]):
    /// one, and more while messages wait, no other runnable waits for this loop, the
    /// behaviour was not swapped and [`MAX_SPANNING`] has not passed. Taking the guard (a
    /// binding's interpreter lock) and going round the run queue cost microseconds per
    /// batch: a tenth of the time of a backlog of Python handlers at the default budget. A
    /// guarded handler is slow next to its senders, so going on at once does not keep it
    /// just ahead of them (the reason a plain actor runs one batch per run).
    fn spanning_batches(self: &Arc<Self>, behaviors: &Behaviors, budget: usize) -> BatchEnd {
        let version = behaviors.version();
        let mut started = None;
        loop {
            let end = self.run_batch(behaviors, budget);
            if !matches!(end, BatchEnd::Drained)
                || !self.mailbox.has_messages()
                || self.mailbox.is_closed()
                || RunQueue::others_waiting()
                || behaviors.version() != version
                || started
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    >= MAX_SPANNING
            {
                return end;
            }
        }
    }

    /// Runs the behaviour on one message, catching a panic.
    #[inline(always)]
    fn handle(&self, behaviors: &Behaviors, msg: Message) -> Handled {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| behaviors.call(msg))) {
            Err(p) => {
                let why = iris_sched::panic_message(p.as_ref());
                Handled::Exit(ExitInfo::with_metadata(ExitReason::Panic, why))
            }
            Ok(Step::Done(flow)) => match flow_exit(flow) {
                Some(info) => Handled::Exit(info),
                None => Handled::Continue,
            },
            Ok(Step::Async(fut)) => Handled::Async(fut),
        }
    }

    /// An asynchronous behaviour: from here on the actor runs as its own task, starting with
    /// this message's future and the rest of the batch.
    fn hand_over(
        self: &Arc<Self>,
        fut: std::pin::Pin<Box<dyn Future<Output = Flow> + Send>>,
        rest: VecDeque<Message>,
    ) -> BatchEnd {
        let rt = self.rt.clone();
        if let Some(inner) = rt.upgrade() {
            let task = in_actor(self.pid, run_push(rt, self.clone(), Some((fut, rest))));
            inner.sched.spawn_task(task);
        }
        BatchEnd::Ended
    }
}

/// What one message did to its actor.
enum Handled {
    /// The actor goes on.
    Continue,
    /// The actor ends (stop, crash or panic).
    Exit(ExitInfo),
    /// The behaviour returned a future: the actor moves to a task of its own.
    Async(std::pin::Pin<Box<dyn Future<Output = Flow> + Send>>),
}

type Pending = (
    std::pin::Pin<Box<dyn Future<Output = Flow> + Send>>,
    std::collections::VecDeque<Message>,
);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.complete(None);
    }
}

async fn run_push(rt: Weak<Inner>, actor: Arc<Actor>, pending: Option<Pending>) {
    let Kind::Push {
        behaviors,
        budget,
        idle,
        reactivate,
    } = &actor.kind
    else {
        return;
    };
    let mut guard = FinishGuard {
        rt,
        actor: Some(actor.clone()),
    };
    if let Some((fut, mut batch)) = pending {
        // Finish what the scheduler loop handed over, in order, before new messages.
        let rest = async {
            let mut flow = fut.await;
            while flow == Flow::Continue && !actor.mailbox.is_closed() {
                let Some(msg) = batch.pop_front() else { break };
                flow = match behaviors.call(msg) {
                    Step::Done(flow) => flow,
                    Step::Async(fut) => fut.await,
                };
            }
            flow
        };
        match CatchUnwind::new(rest).await {
            Ok(flow) => {
                if let Some(info) = flow_exit(flow) {
                    guard.complete(Some(info));
                    return;
                }
                if actor.mailbox.is_closed() {
                    guard.complete(None);
                    return;
                }
            }
            Err(panic) => {
                guard.complete(Some(ExitInfo::with_metadata(ExitReason::Panic, panic)));
                return;
            }
        }
    }
    loop {
        let end = CatchUnwind::new(push_loop(&actor.mailbox, *budget, *idle, |m| {
            behaviors.call(m)
        }))
        .await;
        let own = match end {
            Ok(LoopEnd::Closed) => None,
            Ok(LoopEnd::Stopped) => Some(ExitInfo::new(ExitReason::Normal)),
            Ok(LoopEnd::Crashed(why)) => Some(ExitInfo::with_metadata(ExitReason::Crash, why)),
            Ok(LoopEnd::ShutDown) => Some(ExitInfo::new(ExitReason::Shutdown)),
            Err(panic) => Some(ExitInfo::with_metadata(ExitReason::Panic, panic)),
            Ok(LoopEnd::Idle) if *reactivate => {
                actor.dormant.store(true, Ordering::SeqCst);
                // A message (or a stop) that arrived before `dormant` was set found the actor
                // running and did not start (or finish) it: pick it up ourselves unless a
                // sender already did; the loop then sees the closed mailbox.
                if (actor.mailbox.has_messages() || actor.mailbox.is_closed())
                    && actor
                        .dormant
                        .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    continue;
                }
                guard.actor = None;
                return;
            }
            Ok(LoopEnd::Idle) => Some(ExitInfo::new(ExitReason::Timeout)),
        };
        guard.complete(own);
        return;
    }
}
