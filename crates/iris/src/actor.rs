//! The actor cell and the PID table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use iris_mailbox::Mailbox;
use iris_supervisor::ExitInfo;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::Message;
use crate::behavior::Behaviors;
use crate::runtime::Inner;

/// A process identifier: positive, unique across every runtime in the process, never reused,
/// and below 2^53 so JavaScript numbers hold it exactly.
pub type Pid = u64;

static NEXT_PID: AtomicU64 = AtomicU64::new(1);

/// PIDs a thread takes from [`NEXT_PID`] at once: threads that spawn concurrently then do
/// not fight over one counter's cache line, and a thread's spawns get neighbouring PIDs.
const PID_BLOCK: u64 = 64;

thread_local! {
    /// This thread's unused PIDs: `next..end`.
    static PIDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// A fresh PID: unique in the process, never 0, never reused.
pub(crate) fn next_pid() -> Pid {
    PIDS.with(|c| {
        let (next, end) = c.get();
        if next < end {
            c.set((next + 1, end));
            return next;
        }
        let start = NEXT_PID.fetch_add(PID_BLOCK, Ordering::Relaxed);
        c.set((start + 1, start + PID_BLOCK));
        start
    })
}

/// Locks a mutex, ignoring poison: the runtime's own critical sections never leave state
/// half-written, and a panicking user handler must not take the runtime down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How an actor runs.
pub(crate) enum Kind {
    /// A handler per message, swappable.
    Push {
        behaviors: Behaviors,
        budget: usize,
        idle: Option<Duration>,
        reactivate: bool,
    },
    /// An async closure that owns its receiver (`spawn_actor`); cancelled on kill.
    Task { abort: Mutex<Option<AbortHandle>> },
    /// A closure on its own OS thread (`spawn_with_mailbox`).
    Pull,
}

/// Completion of an actor's exit, for `join` (blocking) and `wait` (async).
pub(crate) struct ExitLatch {
    done: Mutex<Latch>,
}

/// The exit, once known, and what waiters wait on. The waiters' condition variable and
/// notifier are made by the first `join` or `wait`: every actor has a latch and sets it, few
/// are ever waited on (and std's `Condvar::notify_all` is a system call even with nobody
/// waiting).
#[derive(Default)]
struct Latch {
    info: Option<ExitInfo>,
    waiters: Option<Arc<Waiters>>,
}

#[derive(Default)]
struct Waiters {
    cv: Condvar,
    notify: Notify,
}

impl ExitLatch {
    fn new() -> ExitLatch {
        ExitLatch {
            done: Mutex::new(Latch::default()),
        }
    }

    pub(crate) fn set(&self, info: ExitInfo) {
        let waiters = {
            let mut l = lock(&self.done);
            l.info = Some(info);
            l.waiters.clone()
        };
        if let Some(w) = waiters {
            w.cv.notify_all();
            w.notify.notify_waiters();
        }
    }

    pub(crate) fn get(&self) -> Option<ExitInfo> {
        lock(&self.done).info.clone()
    }

    pub(crate) fn wait_blocking(&self, timeout: Option<Duration>) -> Option<ExitInfo> {
        let mut g = lock(&self.done);
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let w = g.waiters.get_or_insert_with(Default::default).clone();
        while g.info.is_none() {
            match deadline {
                None => g = w.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    g =
                        w.cv.wait_timeout(g, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                }
            }
        }
        g.info.clone()
    }

    pub(crate) async fn wait(&self) -> ExitInfo {
        let w = {
            let mut g = lock(&self.done);
            if let Some(info) = g.info.clone() {
                return info;
            }
            g.waiters.get_or_insert_with(Default::default).clone()
        };
        loop {
            // Enabled before the check: a `set` after the check wakes it.
            let notified = w.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(info) = self.get() {
                return info;
            }
            notified.await;
        }
    }
}

/// The express slot: one user message handed by the send that wins a dormant push actor's
/// activation straight to its next run, instead of through the mailbox's locks and flags
/// (the hand-off of a request/response chain, a first message to a fresh actor).
///
/// Ownership follows the activation, so the slot needs no lock: only the sender whose
/// `dormant` compare-exchange (true → false) succeeded writes it, and only before it
/// schedules the actor; only that scheduled run reads it, before the actor can go dormant
/// again; the scheduling hand-off orders the write before the read, and the run's
/// `dormant` store (SeqCst) orders its take before the next winner's write. The sender uses
/// it only when the mailbox is empty, so none of its own earlier messages can be overtaken.
/// `full` mirrors the slot for readers outside that chain (`mailbox_size`).
#[derive(Default)]
pub(crate) struct Express {
    slot: std::cell::UnsafeCell<Option<Message>>,
    full: AtomicBool,
}

// SAFETY: the slot is written and read only by the owner of the actor's activation, one
// at a time, with the hand-offs described above ordering the accesses; `Message` is `Send`.
unsafe impl Sync for Express {}

impl Express {
    /// Puts the message; the caller won the actor's activation and has not scheduled it yet.
    pub(crate) fn put(&self, msg: Message) {
        debug_assert!(
            !self.full.load(Ordering::Relaxed),
            "express slot already full"
        );
        // SAFETY: the caller owns the activation (see the type's docs): nothing else touches
        // the slot until the actor is scheduled. The slot is empty (`full` is false: the
        // last run took its message), so nothing is overwritten without being dropped.
        unsafe { self.slot.get().write(Some(msg)) };
        self.full.store(true, Ordering::Release);
    }

    /// Takes the message; the caller is the actor's scheduled run.
    pub(crate) fn take(&self) -> Option<Message> {
        if !self.full.load(Ordering::Acquire) {
            return None;
        }
        self.full.store(false, Ordering::Release);
        // SAFETY: the caller is the run that the slot's writer scheduled (see the type's
        // docs); the writer finished before scheduling it.
        unsafe { (*self.slot.get()).take() }
    }

    /// `true` while a message waits in the slot.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }
}

/// One actor.
pub(crate) struct Actor {
    pub(crate) pid: Pid,
    pub(crate) mailbox: Mailbox<Message>,
    pub(crate) kind: Kind,
    pub(crate) parent: Option<Pid>,
    /// Children, timers and a requested exit: boxed on first use (see [`Relations`]).
    pub(crate) relations: Mutex<Option<Box<Relations>>>,
    pub(crate) exit: ExitLatch,
    pub(crate) is_virtual: bool,
    /// `true` for observed actors, whose message log must be dropped with them.
    pub(crate) observed: AtomicBool,
    /// `true` once the actor was given a name or path, which its exit must remove.
    pub(crate) registered: AtomicBool,
    /// `true` once the actor has links or watches others, which its exit must clean up.
    pub(crate) linked: AtomicBool,
    /// `true` once another actor monitors it, which its exit must report.
    pub(crate) monitored: AtomicBool,
    /// For push actors: `true` while no task runs the actor. Push actors start dormant and
    /// get a task on their first message, so idle actors cost no task at all; virtual actors
    /// may also go back to dormant after an idle timeout.
    pub(crate) dormant: AtomicBool,
    /// A user message handed straight to this actor by the send that woke it (see
    /// [`Express`]); only scheduler-run push actors with unbounded mailboxes take one.
    pub(crate) express: Express,
    /// `true` when a send may use `express`: a push actor run by the scheduler loops (no
    /// idle timeout) with an unbounded mailbox.
    pub(crate) expressable: bool,
    /// Set before an exit hook is added for this actor; `finish` looks for hooks only then.
    pub(crate) hooked: AtomicBool,
    /// Set once the exit procedure started, so it runs exactly once.
    pub(crate) finishing: AtomicBool,
    /// The runtime, for the exit procedure of actors run by the scheduler loops.
    pub(crate) rt: Weak<Inner>,
}

impl Actor {
    pub(crate) fn new(
        pid: Pid,
        mailbox: Mailbox<Message>,
        kind: Kind,
        parent: Option<Pid>,
        is_virtual: bool,
        rt: Weak<Inner>,
    ) -> Actor {
        let lazy = matches!(kind, Kind::Push { .. });
        let expressable = matches!(kind, Kind::Push { idle: None, .. }) && !mailbox.is_bounded();
        Actor {
            pid,
            mailbox,
            kind,
            parent,
            relations: Mutex::new(None),
            exit: ExitLatch::new(),
            is_virtual,
            observed: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            linked: AtomicBool::new(false),
            monitored: AtomicBool::new(false),
            dormant: AtomicBool::new(lazy),
            express: Express::default(),
            expressable,
            hooked: AtomicBool::new(false),
            finishing: AtomicBool::new(false),
            rt,
        }
    }

    #[inline]
    pub(crate) fn is_alive(&self) -> bool {
        !self.mailbox.is_closed()
    }

    /// Changes the actor's relations, boxing them on first use.
    pub(crate) fn relate<R>(&self, f: impl FnOnce(&mut Relations) -> R) -> R {
        f(lock(&self.relations).get_or_insert_with(Box::default))
    }

    /// Reads or changes the actor's relations without boxing them (`None`: it never had
    /// any).
    pub(crate) fn related<R>(&self, f: impl FnOnce(&mut Relations) -> R) -> Option<R> {
        lock(&self.relations).as_deref_mut().map(f)
    }
}

/// What most actors never have: children, timers, an exit asked for by someone else. They
/// share one box, made on first use, so an actor without any pays one pointer for the three
/// (a million-actor tree is that many bytes × 1M smaller).
#[derive(Default)]
pub(crate) struct Relations {
    /// Live children (spawned with this actor as parent).
    pub(crate) children: Vec<Pid>,
    /// Pending timers (`send_after`) owned by the actor.
    pub(crate) timers: Vec<u64>,
    /// The reason asked for by `stop`, a link or a parent, used when the actor ends because
    /// its mailbox was closed.
    pub(crate) kill: Option<ExitInfo>,
}

/// A hasher for PIDs in a [`shard_of`] shard that keeps their order: the bucket comes from the
/// PID's place among its shard's PIDs, the tag byte from a multiply. PIDs spawned together are
/// used together (a burst of spawns, their first messages, their exits), and this way they
/// share cache lines; a multiplied hash scattered them over the whole table, and spawning 100k
/// actors ran at half the speed (a folded 128-bit multiply was slower still).
#[derive(Default)]
pub(crate) struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Low bits: the PID's index among its shard's PIDs (whole blocks of PID_BLOCK), so
        // PIDs spawned one after another sit in neighbouring buckets; top seven bits
        // (hashbrown's tag byte): a multiply, so a probe rejects the neighbours unread.
        let tag = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (0x7F << 57);
        let index = n / (PID_BLOCK * SHARDS as u64) * PID_BLOCK + n % PID_BLOCK;
        self.0 = index | tag;
    }
}

/// A map keyed by PID, with [`PidHasher`].
pub(crate) type PidMap<V> = HashMap<Pid, V, BuildHasherDefault<PidHasher>>;

/// Shards of the PID-keyed tables (actors, exit hooks).
pub(crate) const SHARDS: usize = 64;

/// The shard of `pid`: its whole block of [`PID_BLOCK`] PIDs, which one thread spawned, goes
/// to one shard, so two schedulers spawning and retiring actors at once mostly lock
/// different shards (each on cache lines of its own, [`Padded`]).
pub(crate) fn shard_of(pid: Pid) -> usize {
    (pid / PID_BLOCK) as usize % SHARDS
}

/// A value on cache lines of its own (128 bytes: adjacent-line prefetch pairs 64-byte lines),
/// so neighbouring shards locked by different threads do not bounce one line between cores.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// PID → actor, sharded so lookups from many threads rarely meet on a lock.
/// One shard of the actor table.
type TableShard = RwLock<PidMap<Arc<Actor>>>;

pub(crate) struct Table {
    shards: Box<[Padded<TableShard>]>,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table {
            shards: (0..SHARDS)
                .map(|_| Padded(RwLock::new(PidMap::default())))
                .collect(),
        }
    }

    fn shard(&self, pid: Pid) -> &TableShard {
        &self.shards[shard_of(pid)].0
    }

    pub(crate) fn get(&self, pid: Pid) -> Option<Arc<Actor>> {
        self.shard(pid)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned()
    }

    /// Runs `f` on the actor under the shard's read lock, without touching its reference
    /// count (the hot path of every send). `f` must not take a table lock itself.
    pub(crate) fn with<R>(&self, pid: Pid, f: impl FnOnce(&Arc<Actor>) -> R) -> Option<R> {
        let shard = self.shard(pid).read().unwrap_or_else(|e| e.into_inner());
        shard.get(&pid).map(f)
    }

    pub(crate) fn insert(&self, actor: Arc<Actor>) {
        let pid = actor.pid;
        self.shard(pid)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, actor);
    }

    pub(crate) fn remove(&self, pid: Pid) -> Option<Arc<Actor>> {
        self.shard(pid)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
    }

    pub(crate) fn len(&self) -> usize {
        // The shards' sizes: a counter of its own, touched by every spawn and exit on every
        // thread, was a contended line in spawn-heavy loads; this is asked for rarely.
        self.shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Actor>> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(
                s.0.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
        }
        out
    }
}
