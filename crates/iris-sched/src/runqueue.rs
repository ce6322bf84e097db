//! The run queue: BEAM-style schedulers for synchronous actors.
//!
//! An actor that has messages is *runnable*; it is pushed once onto a shared queue, and a
//! fixed set of scheduler loops (Tokio tasks, one per worker thread) take runnables in
//! batches, let each handle up to its reduction budget, and put it back at the end of the
//! queue if it still has work. A message to an idle actor therefore costs a queue push, not a
//! task spawn or a thread wake-up, and an idle actor costs no task at all.
//!
//! A runnable that the running actor makes runnable (a message to an idle actor) goes to the
//! loop's *next* slot and runs right after it on the same thread, as Tokio's LIFO slot and the
//! BEAM's hand-off do: request/response chains never cross threads. The slot cannot be
//! stolen, so it is bounded ([`LIFO_LIMIT`] hand-offs in a row) and handed back to the queue
//! whenever the loop blocks. The runnable a newer one displaces from the slot stays on the
//! loop too, at the front of its batch, up to [`KEEP_LIMIT`] per batch and while no loop is
//! parked: an actor that wakes many (spawning children) has them run depth first.
//!
//! A loop that must block (a `Block` overflow policy, a guest language's lock) calls
//! [`RunQueue::block_in_place`], which starts a temporary loop so the other runnables keep
//! moving while it waits.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;

/// What a runnable wants after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// It still has work: put it back at the end of the queue.
    Yield,
    /// It has nothing to do (or is gone); whoever gives it work schedules it again.
    Idle,
}

/// Something a scheduler loop can run: an actor with queued messages.
pub trait Runnable: Send + Sync + 'static {
    /// Does a bounded amount of work (one reduction budget).
    fn run(self: Arc<Self>) -> RunOutcome;
}

/// How many runnables a loop takes per lock of the queue.
const BATCH: usize = 64;

/// The longest a busy loop keeps its worker from Tokio's other tasks (timers, I/O,
/// task-based actors) before it yields, whatever its cooperative budget says.
const MAX_UNYIELDED: Duration = Duration::from_micros(500);

/// How many hand-offs through the next slot a loop runs in a row before the runnable in it
/// goes to the back of the shared queue (fairness: the slot jumps the queue).
const LIFO_LIMIT: usize = 64;

/// How many runnables a loop keeps per batch at the front of that batch when a newer one
/// takes the next slot from them, instead of queueing them at the back of the shared queue.
/// An actor that wakes many (a parent spawning its children) then has them run depth first
/// on its own thread, while their data is in its cache: skynet's million actors peaked at
/// 440 MB of RSS breadth first and 130 MB this way, and ran in 0.79-1.01 s instead of
/// 1.25-1.78 s (interleaved runs on a 2-core VM). The runnables of the batch that came
/// from the shared queue wait for at most this many more runs (and [`MAX_UNYIELDED`]);
/// while a loop is parked nothing is kept, and a batch that kept some hands the rest of
/// itself back to the shared queue once a loop parks or it ran for [`MAX_UNYIELDED`] (see
/// [`LoopCtx::end_early`]).
const KEEP_LIMIT: usize = 512;

struct Shared {
    queue: Mutex<VecDeque<Arc<dyn Runnable>>>,
    notify: Notify,
    idle_loops: AtomicUsize,
    /// Loops currently inside [`RunQueue::block_in_place`].
    blocked: AtomicUsize,
    /// Temporary loops alive; kept at most equal to `blocked`.
    temps: AtomicUsize,
    shutdown: AtomicBool,
    /// How long an idle loop polls the queue before it parks, in nanoseconds (0: parks at
    /// once). See [`RunQueue::set_linger`].
    linger_ns: AtomicU64,
    /// A loop is polling the queue instead of parking: at most one at a time, so lingering
    /// never takes every core from the threads that feed the queue.
    lingering: AtomicBool,
    handle: Handle,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<dyn Runnable>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many runnables are queued, without waiting for the lock (`None`: another thread
    /// holds it right now). A poll never makes a sender wait for the queue.
    fn try_len(&self) -> Option<usize> {
        match self.queue.try_lock() {
            Ok(q) => Some(q.len()),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner().len()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Queues `r` at the back and wakes a parked loop, if any and none lingers (a lingering
    /// loop takes `r` itself; if it is just giving up, it sees `r` before it parks).
    fn push(&self, r: Arc<dyn Runnable>) {
        self.lock().push_back(r);
        if self.idle_loops.load(Ordering::SeqCst) > 0 && !self.lingering.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }
}

/// What a loop is doing on its thread: its queue and the rest of its current batch.
struct LoopCtx {
    shared: Arc<Shared>,
    pending: VecDeque<Arc<dyn Runnable>>,
    /// The next slot: runs after the current runnable, on this thread.
    next: Option<Arc<dyn Runnable>>,
    /// Hand-offs through the next slot in a row.
    lifo_runs: usize,
    /// Runnables this batch kept at the front of `pending` instead of the shared queue.
    kept: usize,
    /// When the batch began.
    started: Instant,
    /// Runnables taken from the batch since it kept one (see [`LoopCtx::end_early`]).
    polls: usize,
    /// The batch ended early ([`LoopCtx::end_early`]).
    ended_early: bool,
}

impl LoopCtx {
    /// Whether a runnable displaced from the next slot stays on this loop, at the front of
    /// its batch (see [`KEEP_LIMIT`]): while no loop is parked, for up to [`KEEP_LIMIT`]
    /// runnables and [`MAX_UNYIELDED`] per batch.
    fn keep(&mut self) -> bool {
        if self.kept >= KEEP_LIMIT || self.shared.idle_loops.load(Ordering::Relaxed) > 0 {
            return false;
        }
        self.kept += 1;
        if self.kept.is_multiple_of(64) && self.started.elapsed() >= MAX_UNYIELDED {
            self.kept = KEEP_LIMIT;
        }
        true
    }

    /// Ends a batch that kept runnables (see [`LoopCtx::keep`]) early: once a loop is parked
    /// (it gets a share), or once the batch ran for [`MAX_UNYIELDED`] (Tokio's other tasks on
    /// this worker get their turn; a batch that kept none is as long as it was before). The
    /// rest of the batch goes to the front of the shared queue, in order, and a parked loop
    /// is woken. `true` when it did: the loop must yield to Tokio, which may also have queued
    /// the woken loop's task behind this one on this worker.
    fn end_early(&mut self) -> bool {
        if self.kept == 0 || self.pending.is_empty() {
            return false;
        }
        self.polls += 1;
        let parked = self.shared.idle_loops.load(Ordering::Relaxed) > 0;
        let share = parked && self.pending.len() >= 2;
        // The clock is read every 16th runnable only.
        let overdue = self.polls.is_multiple_of(16) && self.started.elapsed() >= MAX_UNYIELDED;
        if !(share || overdue) {
            return false;
        }
        {
            let mut queue = self.shared.lock();
            for r in self.pending.drain(..).rev() {
                queue.push_front(r);
            }
        }
        if parked && !self.shared.lingering.load(Ordering::SeqCst) {
            self.shared.notify.notify_one();
        }
        self.ended_early = true;
        true
    }
}

thread_local! {
    /// The loop running on this thread right now, if any.
    static ON_LOOP: RefCell<Option<LoopCtx>> = const { RefCell::new(None) };
}

/// The shared run queue and its scheduler loops. Cloning shares the same queue.
#[derive(Clone)]
pub struct RunQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue")
            .field("queued", &self.len())
            .finish()
    }
}

impl RunQueue {
    /// Starts `loops` scheduler loops on `handle` (use the number of worker threads).
    pub fn start(handle: &Handle, loops: usize) -> RunQueue {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            idle_loops: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            temps: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            linger_ns: AtomicU64::new(0),
            lingering: AtomicBool::new(false),
            handle: handle.clone(),
        });
        for _ in 0..loops.max(1) {
            handle.spawn(scheduler_loop(shared.clone(), false));
        }
        RunQueue { shared }
    }

    /// Makes `r` runnable. Call it once per transition from idle to having work.
    pub fn schedule(&self, r: Arc<dyn Runnable>) {
        // On one of this queue's loops, `r` takes the next slot; what it displaces (made
        // runnable earlier by the same runnable) goes to the front of the loop's batch if the
        // loop keeps it (`LoopCtx::keep`), else to the shared queue.
        let displaced = ON_LOOP.with(|c| match c.borrow_mut().as_mut() {
            Some(ctx) if Arc::ptr_eq(&ctx.shared, &self.shared) => {
                let displaced = ctx.next.replace(r)?;
                if ctx.keep() {
                    ctx.pending.push_front(displaced);
                    None
                } else {
                    Some(displaced)
                }
            }
            _ => Some(r),
        });
        if let Some(r) = displaced {
            self.shared.push(r);
        }
    }

    /// Runnables waiting for a loop.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// `true` when nothing waits for a loop.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` on a thread that is running a scheduler loop right now.
    pub fn on_loop() -> bool {
        ON_LOOP.with(|c| c.borrow().is_some())
    }

    /// `true` when a runnable other than the one running now waits for this thread's loop:
    /// the rest of the loop's batch, its next slot, or anything on the shared queue (also
    /// while another thread holds the queue's lock, about to queue something). Off a loop,
    /// always `true`. A runnable whose next round of work is costly to start (a binding that
    /// takes an interpreter lock per round) asks it to know it may go on at once, taking no
    /// turn from anyone.
    pub fn others_waiting() -> bool {
        ON_LOOP.with(|c| {
            let c = c.borrow();
            let Some(ctx) = c.as_ref() else {
                return true;
            };
            if !ctx.pending.is_empty() || ctx.next.is_some() {
                return true;
            }
            // Someone holding the lock is about to queue something.
            ctx.shared.try_len().is_none_or(|n| n > 0)
        })
    }

    /// Runs blocking `f`. On a scheduler loop, a temporary loop takes over the queue while `f`
    /// blocks, and the Tokio worker is handed off (`block_in_place`), so a handler that waits
    /// for another actor cannot deadlock the schedulers. Elsewhere it just runs `f`.
    pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
        // Hand the rest of this loop's batch back to the queue: it must not wait behind us.
        let Some((shared, rest)) = ON_LOOP.with(|c| {
            c.borrow_mut().as_mut().map(|ctx| {
                let mut rest = std::mem::take(&mut ctx.pending);
                rest.extend(ctx.next.take());
                (ctx.shared.clone(), rest)
            })
        }) else {
            return f();
        };
        let queued = {
            let mut q = shared.lock();
            q.extend(rest);
            !q.is_empty()
        };
        if queued {
            shared.notify.notify_waiters();
        }
        let blocked = shared.blocked.fetch_add(1, Ordering::SeqCst) + 1;
        // One temporary loop per blocked loop keeps the number of running loops constant.
        if shared
            .temps
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t < blocked).then_some(t + 1)
            })
            .is_ok()
        {
            shared.handle.spawn(scheduler_loop(shared.clone(), true));
        }
        let r = tokio::task::block_in_place(f);
        shared.blocked.fetch_sub(1, Ordering::SeqCst);
        // Idle temporary loops check whether they are still needed.
        shared.notify.notify_waiters();
        r
    }

    /// Lets a loop whose queue ran dry poll it for up to `linger` before it parks its Tokio
    /// worker (at most one loop lingers at a time; zero, the default, parks at once).
    ///
    /// Work queued from outside the runtime then usually finds a loop awake, so it costs no
    /// wake-up of a parked thread (a futex wake, and on a VM an idle vCPU to rouse, tens of
    /// microseconds). That is what a chain of hops through another thread pays on every
    /// hop: the Node binding's handlers run on the JS thread, so each message of a
    /// request/response chain between two of its actors leaves the runtime and comes back.
    /// The price is up to `linger` of one core's time each time the queue runs dry, and
    /// Tokio tasks on that worker wait that long; leave it off where every hop stays inside
    /// the runtime (a loop runs what its own runnables schedule without parking).
    pub fn set_linger(&self, linger: Duration) {
        let ns = u64::try_from(linger.as_nanos()).unwrap_or(u64::MAX);
        self.shared.linger_ns.store(ns, Ordering::SeqCst);
    }

    /// `true` while a loop polls the queue for work instead of parking (see
    /// [`RunQueue::set_linger`]).
    pub fn is_lingering(&self) -> bool {
        self.shared.lingering.load(Ordering::SeqCst)
    }

    /// Loops parked right now, waiting to be woken for work.
    pub fn parked_loops(&self) -> usize {
        self.shared.idle_loops.load(Ordering::SeqCst)
    }

    /// The current [`RunQueue::set_linger`] setting.
    pub fn linger(&self) -> Duration {
        Duration::from_nanos(self.shared.linger_ns.load(Ordering::SeqCst))
    }

    /// Stops the loops once they finish their current batch; queued runnables are dropped.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.lock().clear();
        self.shared.notify.notify_waiters();
    }
}

struct LoopFlag;

impl LoopFlag {
    fn set(shared: &Arc<Shared>, batch: &mut Vec<Arc<dyn Runnable>>) -> LoopFlag {
        let pending = batch.drain(..).collect();
        ON_LOOP.with(|c| {
            *c.borrow_mut() = Some(LoopCtx {
                shared: shared.clone(),
                pending,
                next: None,
                lifo_runs: 0,
                kept: 0,
                started: Instant::now(),
                polls: 0,
                ended_early: false,
            })
        });
        LoopFlag
    }

    /// `true` when the batch ended early ([`LoopCtx::end_early`]).
    fn ended_early(&self) -> bool {
        ON_LOOP.with(|c| c.borrow().as_ref().is_some_and(|ctx| ctx.ended_early))
    }

    /// The next runnable: the next slot first (up to [`LIFO_LIMIT`] in a row), then the batch
    /// (`None` also when the batch ended early).
    fn next(&self) -> Option<Arc<dyn Runnable>> {
        let (r, overdue) = ON_LOOP.with(|c| {
            let mut c = c.borrow_mut();
            let ctx = c.as_mut()?;
            let mut overdue = None;
            if let Some(r) = ctx.next.take() {
                if ctx.lifo_runs < LIFO_LIMIT {
                    ctx.lifo_runs += 1;
                    return Some((Some(r), None));
                }
                overdue = Some(r);
            }
            ctx.lifo_runs = 0;
            if ctx.end_early() {
                return Some((None, overdue));
            }
            Some((ctx.pending.pop_front(), overdue))
        })?;
        if let Some(o) = overdue {
            ON_LOOP.with(|c| {
                if let Some(ctx) = c.borrow().as_ref() {
                    ctx.shared.push(o);
                }
            });
        }
        r
    }
}

impl Drop for LoopFlag {
    fn drop(&mut self) {
        ON_LOOP.with(|c| *c.borrow_mut() = None);
    }
}

/// Polls the queue for up to the linger time (see [`RunQueue::set_linger`]) unless another
/// loop lingers already; `true` as soon as it holds work. A lingering loop is not counted
/// idle, so what is queued meanwhile costs its sender no wake-up; once it gives up, the loop
/// parks the usual way, which checks the queue again after registering, so nothing queued
/// in between is missed.
fn linger(shared: &Shared) -> bool {
    let ns = shared.linger_ns.load(Ordering::Relaxed);
    if ns == 0 || shared.lingering.swap(true, Ordering::AcqRel) {
        return false;
    }
    let until = Instant::now().checked_add(Duration::from_nanos(ns));
    let queued = loop {
        // A poll never makes a sender wait for the queue.
        let queued = shared.try_len().unwrap_or(0);
        if queued > 0 {
            break queued;
        }
        if shared.shutdown.load(Ordering::Relaxed) || until.is_some_and(|u| Instant::now() >= u) {
            break 0;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    };
    // A read-modify-write, as the parking path's count of idle loops: a push that saw this
    // loop lingering (and woke no one) queued its runnable before this, so the check of the
    // queue before parking finds it.
    shared.lingering.swap(false, Ordering::SeqCst);
    // The pushes meanwhile woke no one: with more than one runnable waiting, share them.
    if queued > 1 && shared.idle_loops.load(Ordering::SeqCst) > 0 {
        shared.notify.notify_one();
    }
    queued > 0
}

async fn scheduler_loop(shared: Arc<Shared>, temporary: bool) {
    let mut batch: Vec<Arc<dyn Runnable>> = Vec::with_capacity(BATCH);
    let mut last_yield = Instant::now();
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut q = shared.lock();
            let n = q.len().min(BATCH);
            batch.extend(q.drain(..n));
        }
        if batch.is_empty() {
            // A temporary loop that is no longer needed leaves only when there is nothing to
            // do, so a wake-up meant for queued work is never swallowed by a leaving loop.
            if temporary
                && shared
                    .temps
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                        (t > shared.blocked.load(Ordering::SeqCst)).then(|| t - 1)
                    })
                    .is_ok()
            {
                return;
            }
            if !temporary && linger(&shared) {
                continue;
            }
            shared.idle_loops.fetch_add(1, Ordering::SeqCst);
            let notified = shared.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let empty = shared.lock().is_empty();
            if empty && !shared.shutdown.load(Ordering::SeqCst) {
                notified.await;
            }
            shared.idle_loops.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        // Whether a runnable used its whole budget and still has work.
        let mut busy = false;
        {
            // The flag is only set while runnables execute, never across an `.await`.
            let flag = LoopFlag::set(&shared, &mut batch);
            while let Some(r) = flag.next() {
                // A runnable handles its own panics; this only keeps the loop itself alive.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.clone().run()));
                if matches!(ran, Ok(RunOutcome::Yield)) {
                    busy = true;
                    // Back on the shared queue at once: if a later runnable of this batch
                    // blocks, another loop must be able to run this one (`block_in_place`
                    // wakes the idle loops). No wake-up here: this loop takes it again next,
                    // so a busy actor stays on one thread.
                    shared.lock().push_back(r);
                }
            }
            busy |= flag.ended_early();
        }
        // Let timers, I/O and task-based actors on this worker run between batches. With the
        // queue empty the loop parks on `notify` next, which gives them the worker anyway.
        // Otherwise the batch spends one unit of Tokio's cooperative budget, which yields
        // once the budget is used up, and at the latest every `MAX_UNYIELDED`: a yield per
        // batch made Tokio wake the sibling worker each time (a futex wake every 64 hand-offs
        // of a request/response chain, 28% of ping-pong's time).
        if !shared.lock().is_empty() {
            if busy || last_yield.elapsed() >= MAX_UNYIELDED {
                tokio::task::yield_now().await;
                last_yield = Instant::now();
            } else {
                tokio::task::consume_budget().await;
            }
        }
    }
}
