//! Timers, virtual actors, hot swap and fairness through the public API.

mod common;

use common::wait_until;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris::prelude::*;
use iris::{ActorError, Behavior};

fn recorder(rt: &Runtime) -> (Pid, Arc<Mutex<Vec<Bytes>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = m {
                l.lock().unwrap().push(b);
            }
        },
        10,
    );
    (pid, log)
}

#[test]
fn send_after_fires_once_and_cancel_reports_pending() {
    let rt = Runtime::new();
    let (pid, log) = recorder(&rt);
    let t = rt.send_after(pid, 10, Bytes::from("tick"));
    wait_until("timer fired", || log.lock().unwrap().len() == 1);
    assert!(!rt.cancel_timer(t), "already fired");
    let t2 = rt.send_after(pid, 60_000, Bytes::from("never"));
    assert!(rt.cancel_timer(t2));
    assert!(!rt.cancel_timer(t2));
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn send_interval_first_tick_after_one_interval_then_repeats() {
    let rt = Runtime::new();
    let (pid, log) = recorder(&rt);
    let start = Instant::now();
    let t = rt.send_interval(pid, 30, Bytes::from("beat"));
    wait_until("first tick", || !log.lock().unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(30));
    wait_until("three ticks", || log.lock().unwrap().len() >= 3);
    assert!(rt.cancel_timer(t));
    let n = log.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(100));
    assert!(log.lock().unwrap().len() <= n + 1);
}

#[test]
fn timers_die_with_their_actor() {
    let rt = Runtime::new();
    let (pid, _log) = recorder(&rt);
    let once = rt.send_after(pid, 60_000, Bytes::from("x"));
    let every = rt.send_interval(pid, 60_000, Bytes::from("y"));
    assert_eq!(rt.timer_count(), 2);
    rt.stop(pid);
    rt.join(pid);
    assert_eq!(rt.timer_count(), 0);
    assert!(!rt.cancel_timer(once));
    assert!(!rt.cancel_timer(every));
}

#[test]
fn virtual_actor_activates_on_first_message_and_idles_out() {
    let rt = Runtime::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let pid = rt.spawn_virtual_handler_with_budget(
        move |_m| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
            }
        },
        100,
        Some(Duration::from_millis(50)),
    );
    assert!(rt.is_alive(pid));
    assert!(rt.is_dormant(pid));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        rt.is_alive(pid),
        "the idle timeout only counts once activated"
    );
    rt.send(pid, Message::User(Bytes::from("hello"))).unwrap();
    wait_until("handled", || seen.load(Ordering::SeqCst) == 1);
    assert!(!rt.is_dormant(pid));
    assert_eq!(rt.join(pid).unwrap().reason, ExitReason::Timeout);
}

#[test]
fn virtual_actor_activates_from_a_timer() {
    let rt = Runtime::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let pid = rt
        .try_spawn_virtual(
            Behavior::from_fn(move |_m| {
                s.fetch_add(1, Ordering::SeqCst);
            }),
            10,
            None,
            false,
        )
        .unwrap();
    rt.send_after(pid, 5, Bytes::from("wake"));
    wait_until("timer activated it", || seen.load(Ordering::SeqCst) == 1);
}

#[test]
fn stopping_a_never_activated_virtual_actor_frees_it() {
    let rt = Runtime::new();
    let before = rt.actor_count();
    let pid = rt.spawn_virtual_handler_with_budget(|_m| async {}, 10, None);
    assert_eq!(rt.actor_count(), before + 1);
    assert!(rt.stop(pid));
    assert!(!rt.is_alive(pid));
    assert_eq!(rt.actor_count(), before);
    assert!(rt.send(pid, Message::User(Bytes::from("x"))).is_err());
}

#[test]
fn reactivating_virtual_actor_keeps_its_pid() {
    let rt = Runtime::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let pid = rt
        .try_spawn_virtual(
            Behavior::from_fn(move |_m| {
                s.fetch_add(1, Ordering::SeqCst);
            }),
            10,
            Some(Duration::from_millis(20)),
            true,
        )
        .unwrap();
    for round in 1..=3 {
        rt.send(pid, Message::User(Bytes::from("x"))).unwrap();
        wait_until("handled", || seen.load(Ordering::SeqCst) == round);
        wait_until("dormant again", || rt.is_dormant(pid));
        assert!(rt.is_alive(pid));
    }
    assert!(rt.stop(pid));
    assert!(!rt.is_alive(pid), "a dormant actor is gone at once");
    assert_eq!(rt.join(pid).unwrap().reason, ExitReason::Killed);
}

#[test]
fn hot_swap_versions_and_three_rollbacks() {
    let rt = Runtime::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let make = |tag: &'static str| {
        let l = log.clone();
        Behavior::from_fn(move |_m| l.lock().unwrap().push(tag))
    };
    let pid = rt
        .try_spawn_behavior(make("v1"), iris::SpawnOptions::default())
        .unwrap();
    assert_eq!(rt.behavior_version(pid), Some(1));
    let send_and_wait = |n: usize| {
        rt.send(pid, Message::User(Bytes::from("m"))).unwrap();
        wait_until("handled", || log.lock().unwrap().len() == n);
    };
    send_and_wait(1);
    assert_eq!(rt.hot_swap_behavior(pid, make("v2")).unwrap(), 2);
    send_and_wait(2);
    assert_eq!(rt.hot_swap_behavior(pid, make("v3")).unwrap(), 3);
    assert_eq!(rt.hot_swap_behavior(pid, make("v4")).unwrap(), 4);
    send_and_wait(3);
    assert_eq!(rt.rollback_behavior(pid, 1).unwrap(), 3);
    send_and_wait(4);
    assert_eq!(rt.rollback_behavior(pid, 1).unwrap(), 2);
    send_and_wait(5);
    assert_eq!(rt.rollback_behavior(pid, 1).unwrap(), 1);
    send_and_wait(6);
    assert!(matches!(
        rt.rollback_behavior(pid, 1),
        Err(ActorError::NoSuchVersion { available: 0, .. })
    ));
    assert_eq!(
        *log.lock().unwrap(),
        vec!["v1", "v2", "v4", "v3", "v2", "v1"]
    );
    // Swapping after a rollback continues the numbering.
    assert_eq!(rt.hot_swap_behavior(pid, make("v5")).unwrap(), 5);
    assert_eq!(rt.behavior_version(pid), Some(5));
}

#[test]
fn history_is_bounded_but_rollbacks_stay_safe() {
    let rt = Runtime::new();
    let pid = rt.spawn_fn(|_m| (), 10);
    for _ in 0..100 {
        rt.hot_swap(pid, |_m| async {}).unwrap();
    }
    let steps = iris::DEFAULT_HISTORY - 1;
    assert_eq!(
        rt.rollback_behavior(pid, steps).unwrap(),
        101 - steps as u64
    );
    assert!(rt.rollback_behavior(pid, 1).is_err());
    let task = rt.spawn_actor(|_rx| async { std::future::pending::<()>().await });
    assert!(matches!(
        rt.hot_swap(task, |_m| async {}),
        Err(ActorError::NotSwappable(_))
    ));
    rt.stop(task);
}

#[test]
fn in_flight_message_finishes_on_old_code_new_messages_use_new_code() {
    let rt = Runtime::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(std::sync::Barrier::new(2));
    let release = Arc::new(std::sync::Barrier::new(2));
    let (l, s, r) = (log.clone(), started.clone(), release.clone());
    let pid = rt.spawn_fn(
        move |_m| {
            s.wait();
            r.wait();
            l.lock().unwrap().push("old");
        },
        10,
    );
    rt.send(pid, Message::User(Bytes::from("1"))).unwrap();
    rt.send(pid, Message::User(Bytes::from("2"))).unwrap();
    started.wait();
    let l = log.clone();
    rt.hot_swap_behavior(
        pid,
        Behavior::from_fn(move |_m| l.lock().unwrap().push("new")),
    )
    .unwrap();
    release.wait();
    wait_until("both handled", || log.lock().unwrap().len() == 2);
    assert_eq!(*log.lock().unwrap(), vec!["old", "new"]);
}

#[test]
fn a_flooded_actor_does_not_starve_a_hundred_others() {
    let rt = Runtime::with_workers(2).unwrap();
    const FLOOD: usize = 100_000;
    let flood_count = Arc::new(AtomicUsize::new(0));
    let fc = flood_count.clone();
    let flood = rt.spawn_fn(
        move |_m| {
            std::hint::black_box((0..100).fold(0u64, |a, b| a ^ b));
            fc.fetch_add(1, Ordering::Relaxed);
        },
        50,
    );
    let seen_at = Arc::new(Mutex::new(Vec::new()));
    let idle: Vec<Pid> = (0..100)
        .map(|_| {
            let (s, fc) = (seen_at.clone(), flood_count.clone());
            rt.spawn_fn(
                move |_m| s.lock().unwrap().push(fc.load(Ordering::Relaxed)),
                50,
            )
        })
        .collect();
    for _ in 0..FLOOD {
        rt.send(flood, Message::User(Bytes::from_static(b"f")))
            .unwrap();
    }
    for &p in &idle {
        rt.send(p, Message::User(Bytes::from_static(b"i"))).unwrap();
    }
    wait_until("idle served", || seen_at.lock().unwrap().len() == 100);
    let latest = *seen_at.lock().unwrap().iter().max().unwrap();
    assert!(latest < FLOOD, "idle actors waited for the whole flood");
    wait_until("flood done", || {
        flood_count.load(Ordering::Relaxed) == FLOOD
    });
}

/// On a single worker, request/response chains that never let the run queue empty (the
/// loop spends its cooperative budget instead of yielding after every batch) still let
/// Tokio's timers and task-based actors run: timers fire and an async actor answers while
/// the chains keep going.
#[test]
fn endless_hand_off_chains_on_one_worker_do_not_starve_timers_or_tasks() {
    let rt = Runtime::with_workers(1).unwrap();
    let hops = Arc::new(AtomicUsize::new(0));
    // Four pairs bouncing a ball forever: hand-offs, overdue pushes, a queue never empty.
    let mut pairs = Vec::new();
    for _ in 0..4 {
        let slot = Arc::new(std::sync::OnceLock::<Pid>::new());
        let (rt2, s2, h2) = (rt.clone(), slot.clone(), hops.clone());
        let a = rt.spawn_fn(
            move |m| {
                h2.fetch_add(1, Ordering::Relaxed);
                let _ = rt2.send(*s2.get().unwrap(), m);
            },
            10,
        );
        let (rt3, h3) = (rt.clone(), hops.clone());
        let b = rt.spawn_fn(
            move |m| {
                h3.fetch_add(1, Ordering::Relaxed);
                let _ = rt3.send(a, m);
            },
            10,
        );
        slot.set(b).unwrap();
        rt.send(a, Message::User(Bytes::from_static(b"ball")))
            .unwrap();
        pairs.push((a, b));
    }
    wait_until("the chains run", || hops.load(Ordering::Relaxed) > 10_000);
    let (rec, log) = recorder(&rt);
    for i in 0..5u64 {
        rt.send_after(rec, 5 + i * 5, format!("t{i}"));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let task = rt.spawn_actor(move |mut inbox| async move {
        while let Some(m) = inbox.recv().await {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tx.send(m).unwrap();
        }
    });
    for _ in 0..3 {
        rt.send(task, Message::User(Bytes::from_static(b"q")))
            .unwrap();
    }
    wait_until("every timer fired", || log.lock().unwrap().len() == 5);
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the async actor answers");
    }
    let before = hops.load(Ordering::Relaxed);
    wait_until("the chains still run", || {
        hops.load(Ordering::Relaxed) > before + 1000
    });
    for (a, b) in pairs {
        rt.stop(a);
        rt.stop(b);
    }
}
