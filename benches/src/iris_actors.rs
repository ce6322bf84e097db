//! The scenarios on Iris: synchronous push actors (`spawn_fn`), which cost no task while idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iris::{ActorRef, Flow, Message, Pid, Runtime};

use crate::memory::rss_bytes;
use crate::{Done, Scenarios};

/// Iris with the default runtime (one scheduler per core).
#[derive(Debug)]
pub struct IrisBench {
    rt: Runtime,
    /// Actors alive before any scenario ran.
    base: usize,
}

impl IrisBench {
    /// A fresh runtime.
    pub fn new() -> IrisBench {
        let rt = Runtime::new();
        let base = rt.actor_count();
        IrisBench { rt, base }
    }

    /// Stops `pids` and waits until their exits are processed, so the next run does not
    /// pay for this one's teardown.
    fn stop_all(&self, pids: &[Pid]) {
        for &p in pids {
            self.rt.stop(p);
        }
        self.settle();
    }

    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.rt.actor_count() > self.base && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Default for IrisBench {
    fn default() -> Self {
        IrisBench::new()
    }
}

fn u64_of(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8-byte answer"))
}

impl Scenarios for IrisBench {
    fn spawn_idle(&self, n: usize) -> (Duration, usize) {
        let before = rss_bytes();
        let start = Instant::now();
        let pids: Vec<Pid> = (0..n).map(|_| self.rt.spawn_fn(|_m| (), 100)).collect();
        let t = start.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        self.stop_all(&pids);
        (t, grown)
    }

    fn fanout(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let pids: Vec<Pid> = (0..n)
            .map(|_| {
                let d = done.clone();
                self.rt.spawn_fn(
                    move |_m| {
                        d.hit();
                    },
                    100,
                )
            })
            .collect();
        // Sent through handles, as the peers' fanouts send through theirs.
        let refs: Vec<ActorRef> = pids
            .iter()
            .map(|&p| self.rt.actor_ref(p).expect("just spawned"))
            .collect();
        let payload = Bytes::from_static(b"x");
        let start = Instant::now();
        for r in &refs {
            r.send(Message::User(payload.clone())).unwrap();
        }
        done.wait();
        let t = start.elapsed();
        drop(refs);
        self.stop_all(&pids);
        t
    }

    fn sink(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let d = done.clone();
        let pid = self.rt.spawn_fn(
            move |_m| {
                d.hit();
            },
            1000,
        );
        let payload = Bytes::from_static(b"0123456789abcdef");
        // The handle a user keeps for a hot target, as the peers' benches use theirs
        // (kameo's ActorRef, ractor's ActorRef, actix's Addr).
        let to = self.rt.actor_ref(pid).expect("just spawned");
        let start = Instant::now();
        for _ in 0..n {
            to.send(Message::User(payload.clone())).unwrap();
        }
        done.wait();
        let t = start.elapsed();
        self.rt.stop(pid);
        t
    }

    fn pingpong(&self, n: usize) -> Duration {
        let done = Done::new(n);
        // Each side replies through a handle to the other, as the peers' actors do.
        let ponger_slot = Arc::new(OnceLock::<ActorRef>::new());
        let (slot, d) = (ponger_slot.clone(), done.clone());
        let pinger = self.rt.spawn_fn(
            move |m| {
                if !d.hit() {
                    let _ = slot.get().expect("ponger set").send(m);
                }
            },
            1000,
        );
        let to_pinger = self.rt.actor_ref(pinger).expect("just spawned");
        let ponger = self.rt.spawn_fn(
            move |m| {
                let _ = to_pinger.send(m);
            },
            1000,
        );
        let to_ponger = self.rt.actor_ref(ponger).expect("just spawned");
        ponger_slot.set(to_ponger).unwrap();
        let start = Instant::now();
        self.rt
            .send(ponger, Message::User(Bytes::from_static(b"ball")))
            .unwrap();
        done.wait();
        let t = start.elapsed();
        self.stop_all(&[pinger, ponger]);
        t
    }

    fn skynet(&self, depth: u32) -> (u64, Duration) {
        let done = Done::new(1);
        let start = Instant::now();
        let d = done.clone();
        let report = self.rt.spawn_fn(
            move |m| {
                if let Message::User(b) = m {
                    d.finish_with(u64_of(&b));
                }
                Flow::Stop
            },
            10,
        );
        let root = spawn_node(&self.rt, report, 0, 10u64.pow(depth));
        self.rt.send(root, Message::User(Bytes::new())).unwrap();
        done.wait();
        let t = start.elapsed();
        self.settle();
        (done.value(), t)
    }
}

/// A skynet node: an empty message starts it (a leaf answers, an inner node spawns its ten
/// children); it adds up the ten answers and reports to `parent`.
fn spawn_node(rt: &Runtime, parent: Pid, num: u64, size: u64) -> Pid {
    let rt2 = rt.clone();
    let answers = AtomicU64::new(0);
    let sum = AtomicU64::new(0);
    rt.spawn_fn(
        move |m| {
            let Message::User(b) = m else {
                return Flow::Continue;
            };
            let reply = |v: u64| {
                let _ = rt2.send(
                    parent,
                    Message::User(Bytes::copy_from_slice(&v.to_le_bytes())),
                );
            };
            if b.is_empty() {
                if size == 1 {
                    reply(num);
                    return Flow::Stop;
                }
                let step = size / 10;
                // Its own PID, as the peers' actors take their own address from the context.
                let me = iris::current_pid().expect("runs as an actor");
                for i in 0..10 {
                    let child = spawn_node(&rt2, me, num + i * step, step);
                    let _ = rt2.send(child, Message::User(Bytes::new()));
                }
                return Flow::Continue;
            }
            let v = u64_of(&b);
            let total = sum.fetch_add(v, Ordering::Relaxed) + v;
            if answers.fetch_add(1, Ordering::Relaxed) + 1 == 10 {
                reply(total);
                return Flow::Stop;
            }
            Flow::Continue
        },
        100,
    )
}
