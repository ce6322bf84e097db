//! Shared scenario code for the Iris benchmarks (`benches/core.rs`), written so each scenario
//! measures messages *processed*, not merely sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iris::{Flow, Message, Pid, Runtime};

fn wait_for(counter: &AtomicUsize, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while counter.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "benchmark stalled");
        std::hint::spin_loop();
        std::thread::yield_now();
    }
}

/// One producer sends `n` messages to one actor; returns the time until the last is handled.
pub fn sink(rt: &Runtime, n: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let pid = rt.spawn_fn(
        move |_m| {
            d.fetch_add(1, Ordering::Release);
        },
        1000,
    );
    let payload = Bytes::from_static(b"0123456789abcdef");
    let start = Instant::now();
    for _ in 0..n {
        rt.send(pid, Message::User(payload.clone())).unwrap();
    }
    wait_for(&done, n);
    let t = start.elapsed();
    rt.stop(pid);
    t
}

/// `n` actors get one message each; returns the time until the last handler ran (spawn
/// excluded).
pub fn fanout(rt: &Runtime, n: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let pids: Vec<Pid> = (0..n)
        .map(|_| {
            let d = done.clone();
            rt.spawn_fn(
                move |_m| {
                    d.fetch_add(1, Ordering::Release);
                    Flow::Stop
                },
                100,
            )
        })
        .collect();
    let payload = Bytes::from_static(b"x");
    let start = Instant::now();
    for &p in &pids {
        rt.send(p, Message::User(payload.clone())).unwrap();
    }
    wait_for(&done, n);
    start.elapsed()
}

/// `n` request/response round trips between two actors.
pub fn pingpong(rt: &Runtime, n: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let rt2 = rt.clone();
    let ponger_slot = Arc::new(std::sync::OnceLock::<Pid>::new());
    let slot = ponger_slot.clone();
    let d = done.clone();
    let pinger = rt.spawn_fn(
        move |m| {
            let k = d.fetch_add(1, Ordering::Release) + 1;
            if k < n {
                let _ = rt2.send(*slot.get().unwrap(), m);
            }
        },
        1000,
    );
    let rt3 = rt.clone();
    let ponger = rt.spawn_fn(
        move |m| {
            let _ = rt3.send(pinger, m);
        },
        1000,
    );
    ponger_slot.set(ponger).unwrap();
    let start = Instant::now();
    rt.send(ponger, Message::User(Bytes::from_static(b"ball")))
        .unwrap();
    wait_for(&done, n);
    let t = start.elapsed();
    rt.stop(pinger);
    rt.stop(ponger);
    t
}

/// Spawns `n` idle push actors; returns the time and the resident-memory growth in bytes.
pub fn spawn_idle(rt: &Runtime, n: usize) -> (Duration, usize, Vec<Pid>) {
    let before = rss_bytes();
    let start = Instant::now();
    let pids: Vec<Pid> = (0..n).map(|_| rt.spawn_fn(|_m| (), 100)).collect();
    let t = start.elapsed();
    // Let the tasks reach their first wait so their futures are fully materialised.
    std::thread::sleep(Duration::from_millis(50));
    let after = rss_bytes();
    (t, after.saturating_sub(before), pids)
}

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Skynet with synchronous push actors (the run-queue path): every node spawns ten children,
/// adds up their answers and reports to its parent. Returns the sum and the time.
pub fn skynet(rt: &Runtime, depth: u32) -> (u64, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let size = 10u64.pow(depth);
    let tx = std::sync::Mutex::new(tx);
    let report = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = m {
                let _ = tx
                    .lock()
                    .unwrap()
                    .send(u64::from_le_bytes(b[..8].try_into().unwrap()));
            }
            Flow::Stop
        },
        10,
    );
    let root = spawn_sync_node(rt, report, 0, size);
    rt.send(root, Message::User(Bytes::new())).unwrap();
    let sum = rx.recv().unwrap();
    (sum, start.elapsed())
}

fn spawn_sync_node(rt: &Runtime, parent: Pid, num: u64, size: u64) -> Pid {
    use std::sync::atomic::AtomicU64;
    let rt2 = rt.clone();
    let answers = AtomicU64::new(0);
    let sum = AtomicU64::new(0);
    let me = Arc::new(std::sync::OnceLock::<Pid>::new());
    let me2 = me.clone();
    let pid = rt.spawn_fn(
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
                // "start": a leaf answers at once, an inner node starts its ten children.
                if size == 1 {
                    reply(num);
                    return Flow::Stop;
                }
                let step = size / 10;
                let me = *me2.get().expect("pid set before start");
                for i in 0..10 {
                    let child = spawn_sync_node(&rt2, me, num + i * step, step);
                    let _ = rt2.send(child, Message::User(Bytes::new()));
                }
                return Flow::Continue;
            }
            let total = sum.fetch_add(
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                Ordering::Relaxed,
            ) + u64::from_le_bytes(b[..8].try_into().unwrap());
            if answers.fetch_add(1, Ordering::Relaxed) + 1 == 10 {
                reply(total);
                return Flow::Stop;
            }
            Flow::Continue
        },
        100,
    );
    me.set(pid).expect("set once");
    pid
}

/// Skynet with `spawn_actor` tasks (async closures owning their receivers).
pub fn skynet_async(rt: &Runtime, depth: u32) -> (u64, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let size = 10u64.pow(depth);
    let report = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = m {
                let _ = tx.send(u64::from_le_bytes(b[..8].try_into().unwrap()));
            }
            Flow::Stop
        },
        10,
    );
    spawn_skynet_node(rt, report, 0, size);
    let sum = rx.recv().unwrap();
    (sum, start.elapsed())
}

fn spawn_skynet_node(rt: &Runtime, parent: Pid, num: u64, size: u64) {
    let rt2 = rt.clone();
    rt.spawn_actor(move |mut rx| async move {
        let sum = if size == 1 {
            num
        } else {
            let step = size / 10;
            let me = rx.pid();
            for i in 0..10 {
                spawn_skynet_node(&rt2, me, num + i * step, step);
            }
            let mut sum = 0;
            for _ in 0..10 {
                match rx.recv().await {
                    Some(Message::User(b)) => sum += u64::from_le_bytes(b[..8].try_into().unwrap()),
                    _ => return,
                }
            }
            sum
        };
        let _ = rt2.send(
            parent,
            Message::User(Bytes::copy_from_slice(&sum.to_le_bytes())),
        );
    });
}

/// Two runtimes on loopback: one sender pushes `n` messages through a proxy to an actor on the
/// other node; returns the time until the last one is handled there.
pub fn mesh_sink(n: usize) -> Duration {
    let cfg = iris::MeshConfig {
        cookie: Some(b"bench".to_vec()),
        ..iris::MeshConfig::default()
    };
    let server = Runtime::new();
    server.set_mesh_config(cfg.clone());
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let sink = server.spawn_fn(
        move |_m| {
            d.fetch_add(1, Ordering::Release);
        },
        1000,
    );
    server.register("sink", sink).unwrap();
    let addr = server.listen("127.0.0.1:0").unwrap().to_string();
    let client = Runtime::new();
    client.set_mesh_config(cfg);
    let proxy = client
        .resolve_remote_blocking(&addr, "sink")
        .unwrap()
        .unwrap();
    let payload = Bytes::from_static(b"0123456789abcdef");
    let start = Instant::now();
    for _ in 0..n {
        client.send(proxy, Message::User(payload.clone())).unwrap();
    }
    wait_for(&done, n);
    let t = start.elapsed();
    client.shutdown();
    server.shutdown();
    t
}

/// The floor: one Tokio task draining an unbounded mpsc channel of `n` messages.
pub fn tokio_mpsc_sink(handle: &tokio::runtime::Handle, n: usize) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    handle.spawn(async move {
        while rx.recv().await.is_some() {
            d.fetch_add(1, Ordering::Release);
        }
    });
    let payload = Bytes::from_static(b"0123456789abcdef");
    let start = Instant::now();
    for _ in 0..n {
        tx.send(payload.clone()).unwrap();
    }
    wait_for(&done, n);
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_complete_at_small_sizes() {
        let rt = Runtime::new();
        sink(&rt, 1000);
        fanout(&rt, 1000);
        pingpong(&rt, 1000);
        let (sum, _) = skynet(&rt, 3);
        assert_eq!(sum, (0..1000u64).sum::<u64>());
        let (sum, _) = skynet_async(&rt, 3);
        assert_eq!(sum, (0..1000u64).sum::<u64>());
        mesh_sink(1000);
        let (_, _, pids) = spawn_idle(&rt, 100);
        assert_eq!(pids.len(), 100);
    }
}
