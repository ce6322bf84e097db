//! The run queue under concurrent scheduling: every unit of work runs exactly once, and
//! blocked loops are compensated.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iris_sched::{RunOutcome, RunQueue, Runnable, TokioScheduler};

/// A unit of work counter with the same idle/scheduled protocol actors use.
struct Worker {
    pending: AtomicUsize,
    scheduled: AtomicBool,
    done: Arc<AtomicUsize>,
    queue: std::sync::OnceLock<RunQueue>,
}

impl Worker {
    fn give(self: &Arc<Self>, n: usize) {
        self.pending.fetch_add(n, Ordering::SeqCst);
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            self.queue.get().unwrap().schedule(self.clone());
        }
    }
}

impl Runnable for Worker {
    fn run(self: Arc<Self>) -> RunOutcome {
        // Up to 7 units per run, like a reduction budget.
        for _ in 0..7 {
            if self
                .pending
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1))
                .is_err()
            {
                break;
            }
            self.done.fetch_add(1, Ordering::SeqCst);
        }
        if self.pending.load(Ordering::SeqCst) > 0 {
            return RunOutcome::Yield;
        }
        self.scheduled.store(false, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) > 0 && !self.scheduled.swap(true, Ordering::SeqCst) {
            return RunOutcome::Yield;
        }
        RunOutcome::Idle
    }
}

/// The next value of a xorshift sequence: a cheap deterministic shuffle.
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// `n` idle workers on `rq`, counting their units in `done`.
fn workers(n: usize, rq: &RunQueue, done: &Arc<AtomicUsize>) -> Vec<Arc<Worker>> {
    (0..n)
        .map(|_| {
            let w = Arc::new(Worker {
                pending: AtomicUsize::new(0),
                scheduled: AtomicBool::new(false),
                done: done.clone(),
                queue: std::sync::OnceLock::new(),
            });
            w.queue.set(rq.clone()).unwrap();
            w
        })
        .collect()
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn concurrent_scheduling_runs_every_unit_exactly_once() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    let done = Arc::new(AtomicUsize::new(0));
    let workers = Arc::new(workers(500, &rq, &done));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let workers = workers.clone();
            std::thread::spawn(move || {
                // A cheap deterministic shuffle per thread: randomized interleavings.
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..20_000 {
                    x = xorshift(x);
                    workers[(x % 500) as usize].give(1 + (x >> 32) as usize % 3);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_for("all work done", || {
        workers
            .iter()
            .all(|w| w.pending.load(Ordering::SeqCst) == 0)
    });
    wait_for("queue drained", || rq.is_empty());
    let given: usize = done.load(Ordering::SeqCst);
    assert!(given >= 4 * 20_000, "each give() adds at least one unit");
    rq.shutdown();
}

struct Blocker {
    release: Arc<AtomicBool>,
    entered: Arc<AtomicUsize>,
}

impl Runnable for Blocker {
    fn run(self: Arc<Self>) -> RunOutcome {
        let (release, entered) = (self.release.clone(), self.entered.clone());
        RunQueue::block_in_place(move || {
            entered.fetch_add(1, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        RunOutcome::Idle
    }
}

struct Flag(Arc<AtomicBool>);

impl Runnable for Flag {
    fn run(self: Arc<Self>) -> RunOutcome {
        self.0.store(true, Ordering::SeqCst);
        RunOutcome::Idle
    }
}

#[test]
fn blocked_loops_are_compensated() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    // Loops block one after the other; later runnables must still run, on temporary loops.
    let release = Arc::new(AtomicBool::new(false));
    let entered = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        rq.schedule(Arc::new(Blocker {
            release: release.clone(),
            entered: entered.clone(),
        }));
        wait_for("a loop blocks", || entered.load(Ordering::SeqCst) >= 1);
    }
    let ran = Arc::new(AtomicBool::new(false));
    rq.schedule(Arc::new(Flag(ran.clone())));
    wait_for("a runnable ran while loops block", || {
        ran.load(Ordering::SeqCst)
    });
    release.store(true, Ordering::SeqCst);
    wait_for("both blockers ran", || entered.load(Ordering::SeqCst) == 2);
    assert!(!RunQueue::on_loop());
}

/// One hop of a chain: records its thread, then makes the next hop runnable from inside the
/// loop, as an actor that messages an idle actor does.
struct Hop {
    left: usize,
    threads: Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
    queue: RunQueue,
}

impl Runnable for Hop {
    fn run(self: Arc<Self>) -> RunOutcome {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if self.left > 0 {
            self.queue.schedule(Arc::new(Hop {
                left: self.left - 1,
                threads: self.threads.clone(),
                queue: self.queue.clone(),
            }));
        }
        RunOutcome::Idle
    }
}

#[test]
fn a_handoff_chain_stays_on_one_thread() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
    rq.schedule(Arc::new(Hop {
        left: 40,
        threads: threads.clone(),
        queue: rq.clone(),
    }));
    wait_for("chain done", || threads.lock().unwrap().len() == 41);
    let threads = threads.lock().unwrap();
    assert!(
        threads.iter().all(|t| *t == threads[0]),
        "a hop crossed threads: the next slot was not used"
    );
    rq.shutdown();
}

/// Two runnables that hand off to each other forever through the next slot.
struct Volley {
    other: std::sync::OnceLock<std::sync::Weak<Volley>>,
    queue: RunQueue,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Runnable for Volley {
    fn run(self: Arc<Self>) -> RunOutcome {
        self.hits.fetch_add(1, Ordering::SeqCst);
        if !self.stop.load(Ordering::SeqCst)
            && let Some(o) = self.other.get().and_then(std::sync::Weak::upgrade)
        {
            self.queue.schedule(o);
        }
        RunOutcome::Idle
    }
}

#[test]
fn an_endless_handoff_does_not_starve_the_queue() {
    let sched = TokioScheduler::owned(Some(1)).unwrap();
    let rq = RunQueue::start(sched.handle(), 1);
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let mk = || {
        Arc::new(Volley {
            other: std::sync::OnceLock::new(),
            queue: rq.clone(),
            stop: stop.clone(),
            hits: hits.clone(),
        })
    };
    let (a, b) = (mk(), mk());
    a.other.set(Arc::downgrade(&b)).ok();
    b.other.set(Arc::downgrade(&a)).ok();
    rq.schedule(a.clone());
    wait_for("the volley runs", || hits.load(Ordering::SeqCst) > 1000);
    // The only loop is busy with the volley; a runnable from outside must still get a turn.
    let ran = Arc::new(AtomicBool::new(false));
    rq.schedule(Arc::new(Flag(ran.clone())));
    wait_for("the outside runnable ran", || ran.load(Ordering::SeqCst));
    stop.store(true, Ordering::SeqCst);
    rq.shutdown();
}

/// Records the thread it ran on.
struct Where(Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>);

impl Runnable for Where {
    fn run(self: Arc<Self>) -> RunOutcome {
        self.0.lock().unwrap().push(std::thread::current().id());
        RunOutcome::Idle
    }
}

#[test]
fn a_lingering_loop_takes_work_queued_from_outside_itself() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    assert_eq!(rq.linger(), Duration::ZERO);
    // Long enough that the loop that ran a runnable is still polling when the next comes.
    rq.set_linger(Duration::from_secs(30));
    assert_eq!(rq.linger(), Duration::from_secs(30));
    let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 1..=10 {
        // Queued while one loop polls and the other is parked (on a loaded machine either
        // may take a while to get there).
        wait_for("a loop lingers, the other parked", || {
            rq.is_lingering() && rq.parked_loops() == 1
        });
        rq.schedule(Arc::new(Where(threads.clone())));
        wait_for("the runnable ran", || threads.lock().unwrap().len() == i);
    }
    // The other loop, parked, was never woken: the lingering one took every runnable.
    let threads = threads.lock().unwrap();
    assert!(
        threads.iter().all(|t| *t == threads[0]),
        "a parked loop was woken while another lingered: {threads:?}"
    );
    rq.set_linger(Duration::ZERO);
    rq.shutdown();
}

/// Records its thread, then works for a while.
struct Slow(Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>);

impl Runnable for Slow {
    fn run(self: Arc<Self>) -> RunOutcome {
        self.0.lock().unwrap().push(std::thread::current().id());
        std::thread::sleep(Duration::from_millis(1));
        RunOutcome::Idle
    }
}

#[test]
fn a_burst_queued_while_a_loop_lingers_is_shared_with_the_parked_loop() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    rq.set_linger(Duration::from_secs(30));
    let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
    rq.schedule(Arc::new(Where(threads.clone())));
    wait_for("the first runnable ran", || {
        threads.lock().unwrap().len() == 1
    });
    wait_for("a loop lingers, the other parked", || {
        rq.is_lingering() && rq.parked_loops() == 1
    });
    // More than one loop's batch at once: the parked loop must be woken to share them.
    let slow = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..300 {
        rq.schedule(Arc::new(Slow(slow.clone())));
    }
    wait_for("the burst ran", || slow.lock().unwrap().len() == 300);
    let slow = slow.lock().unwrap();
    assert!(
        slow.iter().any(|t| *t != slow[0]),
        "one loop ran the whole burst while the other stayed parked"
    );
    rq.set_linger(Duration::ZERO);
    rq.shutdown();
}

/// Gives random amounts of work from several threads, pausing now and then so loops run
/// dry, linger and park, and checks that exactly the units given were done.
fn every_unit_runs_exactly_once_with(linger: Duration) {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    rq.set_linger(linger);
    let done = Arc::new(AtomicUsize::new(0));
    let workers = Arc::new(workers(64, &rq, &done));
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let workers = workers.clone();
            std::thread::spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (t + 1);
                let mut given = 0;
                for i in 0..3_000 {
                    x = xorshift(x);
                    let n = 1 + (x >> 40) as usize % 4;
                    workers[(x % 64) as usize].give(n);
                    given += n;
                    if i % 97 == 0 {
                        // Across the linger time now and then: the loops give up and park.
                        std::thread::sleep(Duration::from_micros(x % 300));
                    }
                }
                given
            })
        })
        .collect();
    let given: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    wait_for("every unit done", || done.load(Ordering::SeqCst) == given);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(done.load(Ordering::SeqCst), given, "a unit ran twice");
    rq.shutdown();
}

#[test]
fn lingering_loops_lose_no_work_and_run_none_twice() {
    for linger in [0, 20, 100, 1_000] {
        every_unit_runs_exactly_once_with(Duration::from_micros(linger));
    }
}

/// Runs once: records whether another runnable waited for its loop, then, on its first run,
/// holds until `release` so a second one can be queued behind it.
struct Asker {
    seen: std::sync::Mutex<Vec<bool>>,
    hold: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    ran: AtomicBool,
}

impl Runnable for Asker {
    fn run(self: Arc<Self>) -> RunOutcome {
        let alone = RunQueue::others_waiting();
        if let Some(rx) = self.hold.lock().unwrap().take() {
            self.ran.store(true, Ordering::SeqCst);
            let _ = rx.recv();
        }
        let queued = RunQueue::others_waiting();
        self.seen.lock().unwrap().extend([alone, queued]);
        RunOutcome::Idle
    }
}

#[test]
fn others_waiting_says_whether_another_runnable_waits_for_the_loop() {
    assert!(
        RunQueue::others_waiting(),
        "off a loop there is always someone"
    );
    let sched = TokioScheduler::owned(Some(1)).unwrap();
    let rq = RunQueue::start(sched.handle(), 1);
    let (release, hold) = std::sync::mpsc::channel();
    let first = Arc::new(Asker {
        seen: Default::default(),
        hold: std::sync::Mutex::new(Some(hold)),
        ran: AtomicBool::new(false),
    });
    rq.schedule(first.clone());
    wait_for("the first runnable runs", || {
        first.ran.load(Ordering::SeqCst)
    });
    let second = Arc::new(Asker {
        seen: Default::default(),
        hold: std::sync::Mutex::new(None),
        ran: AtomicBool::new(false),
    });
    rq.schedule(second.clone());
    release.send(()).unwrap();
    wait_for("both ran", || second.seen.lock().unwrap().len() == 2);
    // Alone at first; the second one queued behind it while it ran.
    assert_eq!(*first.seen.lock().unwrap(), [false, true]);
    assert_eq!(*second.seen.lock().unwrap(), [false, false]);
    rq.shutdown();
}

/// A runnable that records its name and thread when it runs, after running `body`.
struct Named {
    name: usize,
    log: Arc<std::sync::Mutex<Vec<(usize, std::thread::ThreadId)>>>,
    body: Box<dyn Fn() + Send + Sync>,
}

impl Runnable for Named {
    fn run(self: Arc<Self>) -> RunOutcome {
        (self.body)();
        self.log
            .lock()
            .unwrap()
            .push((self.name, std::thread::current().id()));
        RunOutcome::Idle
    }
}

type Log = Arc<std::sync::Mutex<Vec<(usize, std::thread::ThreadId)>>>;

fn named(name: usize, log: &Log, body: impl Fn() + Send + Sync + 'static) -> Arc<Named> {
    Arc::new(Named {
        name,
        log: log.clone(),
        body: Box::new(body),
    })
}

/// Queues a runnable that holds a loop until the returned sender sends or is dropped, and
/// returns once it runs (its loop busy, not parked). It logs as `usize::MAX`.
fn hold_a_loop(rq: &RunQueue, log: &Log) -> std::sync::mpsc::Sender<()> {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Mutex::new(hold);
    let running = Arc::new(AtomicBool::new(false));
    let r = running.clone();
    rq.schedule(named(usize::MAX, log, move || {
        r.store(true, Ordering::SeqCst);
        let _ = hold.lock().unwrap().recv();
    }));
    wait_for("the holder runs", || running.load(Ordering::SeqCst));
    release
}

/// On one loop: a parent that wakes `children` runnables while an outsider waits in the
/// same batch; the order the names ran in (the parent is 0, the outsider 1, children 2..).
fn order_after_waking(children: usize) -> Vec<usize> {
    let sched = TokioScheduler::owned(Some(1)).unwrap();
    let rq = RunQueue::start(sched.handle(), 1);
    let log: Log = Default::default();
    let release = hold_a_loop(&rq, &log);
    let (q, l) = (rq.clone(), log.clone());
    rq.schedule(named(0, &log, move || {
        for c in 0..children {
            q.schedule(named(2 + c, &l, || {}));
        }
    }));
    rq.schedule(named(1, &log, || {}));
    release.send(()).unwrap();
    wait_for("all ran", || log.lock().unwrap().len() == children + 3);
    rq.shutdown();
    let names: Vec<usize> = log.lock().unwrap().iter().map(|&(n, _)| n).collect();
    names.into_iter().filter(|&n| n != usize::MAX).collect()
}

#[test]
fn runnables_woken_by_a_runnable_run_depth_first_before_the_rest_of_the_batch() {
    // The last woken takes the next slot; the ones it displaced run newest first, ahead of
    // the outsider queued before them (breadth first, they went behind it).
    assert_eq!(order_after_waking(5), [0, 6, 5, 4, 3, 2, 1]);
}

#[test]
fn a_runnable_waking_thousands_keeps_a_bounded_number_ahead_of_the_batch() {
    let order = order_after_waking(2000);
    let outsider = order.iter().position(|&n| n == 1).unwrap();
    // 512 kept (the documented limit) and the next slot ran before it; the rest queued
    // behind it.
    assert!(
        (100..=600).contains(&outsider),
        "the outsider ran {outsider}th of {}",
        order.len()
    );
    assert_eq!(order.len(), 2002, "every runnable ran once");
}

#[test]
fn runnables_kept_on_a_busy_loop_go_back_to_the_shared_queue_once_another_loop_parks() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    let rq = RunQueue::start(sched.handle(), 2);
    let log: Log = Default::default();
    // One loop is held (busy, not parked) while the other runs a parent waking 100
    // children of 1 ms each: every one is kept on the parent's loop, none is queued.
    let release = hold_a_loop(&rq, &log);
    let woke = Arc::new(AtomicBool::new(false));
    let (q, l, w) = (rq.clone(), log.clone(), woke.clone());
    rq.schedule(named(0, &log, move || {
        for c in 0..100 {
            q.schedule(named(1 + c, &l, || {
                std::thread::sleep(Duration::from_millis(1))
            }));
        }
        w.store(true, Ordering::SeqCst);
    }));
    wait_for("the parent ran", || woke.load(Ordering::SeqCst));
    assert!(rq.is_empty(), "the woken children were queued, not kept");
    // Released, the held loop parks: the rest of the batch goes to the shared queue for it.
    release.send(()).unwrap();
    wait_for("the kept children queued for the parked loop", || {
        !rq.is_empty()
    });
    wait_for("all ran", || log.lock().unwrap().len() == 102);
    let mut names: Vec<usize> = log.lock().unwrap().iter().map(|&(n, _)| n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 102, "every runnable ran once");
    rq.shutdown();
}

#[test]
fn a_batch_that_kept_many_still_yields_to_tokio_timers() {
    let sched = TokioScheduler::owned(Some(1)).unwrap();
    let rq = RunQueue::start(sched.handle(), 1);
    let log: Log = Default::default();
    // How many runnables had run when a 2 ms timer on the same worker fired.
    let fired_at = Arc::new(AtomicUsize::new(usize::MAX));
    let (l, f) = (log.clone(), fired_at.clone());
    sched.handle().spawn(async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        f.store(l.lock().unwrap().len(), Ordering::SeqCst);
    });
    // A parent wakes 400 children of 100 us of work each: all kept on the one loop, 40 ms.
    let (q, l) = (rq.clone(), log.clone());
    rq.schedule(named(0, &log, move || {
        for c in 0..400 {
            q.schedule(named(1 + c, &l, || {
                let until = Instant::now() + Duration::from_micros(100);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }));
        }
    }));
    wait_for("all ran", || log.lock().unwrap().len() == 401);
    wait_for("the timer fired", || {
        fired_at.load(Ordering::SeqCst) != usize::MAX
    });
    let at = fired_at.load(Ordering::SeqCst);
    // The batch hands its rest back after 500 us and the loop yields: the timer fires a few
    // batches in, not after the whole 40 ms.
    assert!(at < 300, "the timer fired after {at} of 401 runnables");
    rq.shutdown();
}
