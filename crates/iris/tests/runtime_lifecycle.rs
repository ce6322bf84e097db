//! Spawning, PIDs, exits, children, stop and join through the public API.

mod common;

use common::{user, wait_until};

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iris::prelude::*;
use iris::{ActorError, SendError};

#[test]
fn pids_are_unique_positive_and_below_2_pow_53_across_runtimes() {
    let a = Runtime::new();
    let b = Runtime::new();
    let mut seen = HashSet::new();
    for _ in 0..500 {
        for rt in [&a, &b] {
            let pid = rt.spawn_fn(|_m| (), 10);
            assert!(pid > 0 && pid < (1 << 53));
            assert!(seen.insert(pid), "pid {pid} reused");
            assert!(rt.stop(pid));
        }
    }
}

#[test]
fn a_handler_returning_shutdown_ends_its_actor_with_shutdown_not_normal() {
    // What a binding returns once its interpreter is exiting: the actor must end as the
    // runtime's shutdown would end it, whichever of the two comes first.
    let rt = Runtime::new();
    let sync = rt.spawn_fn(|_m| Flow::Shutdown, 10);
    rt.send(sync, user("x")).unwrap();
    assert_eq!(rt.join(sync).unwrap().reason, ExitReason::Shutdown);

    // An asynchronous handler: the first message hands the actor to its own task, the
    // second ends it from the task's loop.
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let task = rt.spawn_handler_with_budget(
        move |_m| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                if n == 0 {
                    Flow::Continue
                } else {
                    Flow::Shutdown
                }
            }
        },
        10,
    );
    rt.send(task, user("first")).unwrap();
    wait_until("the first message", || seen.load(Ordering::SeqCst) == 1);
    std::thread::sleep(Duration::from_millis(10));
    rt.send(task, user("second")).unwrap();
    assert_eq!(rt.join(task).unwrap().reason, ExitReason::Shutdown);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn exit_reasons_normal_killed_panic_crash() {
    let rt = Runtime::new();
    let normal = rt.spawn_fn(|_m| Flow::Stop, 10);
    rt.send(normal, user("x")).unwrap();
    assert_eq!(rt.join(normal).unwrap().reason, ExitReason::Normal);

    let killed = rt.spawn_fn(|_m| (), 10);
    assert!(rt.stop(killed));
    assert_eq!(rt.join(killed).unwrap().reason, ExitReason::Killed);
    assert!(!rt.stop(killed), "stopping a dead actor reports false");

    let panicky = rt.spawn_fn(|_m| -> () { panic!("kaboom") }, 10);
    rt.send(panicky, user("x")).unwrap();
    let info = rt.join(panicky).unwrap();
    assert_eq!(info.reason, ExitReason::Panic);
    assert_eq!(info.metadata.as_deref(), Some("kaboom"));

    let crashy = rt.spawn_fn(|_m| Err::<(), _>("bad input"), 10);
    rt.send(crashy, user("x")).unwrap();
    let info = rt.join(crashy).unwrap();
    assert_eq!(info.reason, ExitReason::Crash);
    assert_eq!(info.metadata.as_deref(), Some("bad input"));

    let pulled = rt.spawn_with_mailbox(|_rx| {}).unwrap();
    assert_eq!(rt.join(pulled).unwrap().reason, ExitReason::Normal);

    let task = rt.spawn_actor(|_rx| async move { panic!("in task") });
    assert_eq!(rt.join(task).unwrap().reason, ExitReason::Panic);
}

#[test]
fn send_to_dead_or_unknown_pid_hands_the_message_back() {
    let rt = Runtime::new();
    let pid = rt.spawn_fn(|_m| (), 10);
    rt.stop(pid);
    match rt.send(pid, user("late")) {
        Err(SendError::NoProcess(p, m)) => {
            assert_eq!(p, pid);
            assert_eq!(m, user("late"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        rt.send(u64::MAX >> 12, user("x")),
        Err(SendError::NoProcess(..))
    ));
    assert_eq!(rt.mailbox_size(pid), None);
}

#[test]
fn a_panicking_handler_among_a_thousand_healthy_ones_ends_only_itself() {
    let rt = Runtime::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let mut pids = Vec::new();
    for _ in 0..1000 {
        let h = handled.clone();
        pids.push(rt.spawn_fn(
            move |_m| {
                h.fetch_add(1, Ordering::Relaxed);
            },
            10,
        ));
    }
    let bad = rt.spawn_fn(|_m| -> () { panic!("one bad apple") }, 10);
    rt.send(bad, user("x")).unwrap();
    for &p in &pids {
        rt.send(p, user("x")).unwrap();
    }
    assert_eq!(rt.join(bad).unwrap().reason, ExitReason::Panic);
    wait_until("all healthy handled", || {
        handled.load(Ordering::Relaxed) == 1000
    });
    assert!(pids.iter().all(|&p| rt.is_alive(p)));
    // They still work afterwards.
    for &p in &pids {
        rt.send(p, user("y")).unwrap();
    }
    wait_until("second round", || handled.load(Ordering::Relaxed) == 2000);
}

#[test]
fn stop_with_ten_thousand_queued_messages_drops_them_and_exits() {
    let rt = Runtime::new();
    let gate = Arc::new(std::sync::Barrier::new(2));
    let handled = Arc::new(AtomicUsize::new(0));
    let (g, h) = (gate.clone(), handled.clone());
    let pid = rt.spawn_with_mailbox(move |mut rx| {
        g.wait();
        while rx.recv_blocking(None).is_ok() {
            h.fetch_add(1, Ordering::Relaxed);
        }
    });
    let pid = pid.unwrap();
    for _ in 0..10_000 {
        rt.send(pid, user("work")).unwrap();
    }
    assert_eq!(rt.mailbox_size(pid), Some(10_000));
    assert!(rt.stop(pid));
    assert!(!rt.is_alive(pid));
    assert!(rt.send(pid, user("after")).is_err());
    gate.wait();
    let info = rt.join(pid).unwrap();
    assert_eq!(info.reason, ExitReason::Killed);
    assert_eq!(
        handled.load(Ordering::Relaxed),
        0,
        "queued messages were dropped"
    );

    // A push actor stops after the message it is handling.
    let started = Arc::new(std::sync::Barrier::new(2));
    let release = Arc::new(std::sync::Barrier::new(2));
    let count = Arc::new(AtomicUsize::new(0));
    let (s, r, c) = (started.clone(), release.clone(), count.clone());
    let pid = rt.spawn_fn(
        move |_m| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                s.wait();
                r.wait();
            }
        },
        1000,
    );
    for _ in 0..10_000 {
        rt.send(pid, user("w")).unwrap();
    }
    started.wait();
    rt.stop(pid);
    release.wait();
    assert_eq!(rt.join(pid).unwrap().reason, ExitReason::Killed);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "only the message in progress ran"
    );
}

#[test]
fn children_shut_down_recursively_when_the_parent_exits() {
    let rt = Runtime::new();
    let parent = rt.spawn_actor(|mut rx| async move {
        while let Some(m) = rx.recv().await {
            if m == Message::User(Bytes::from("quit")) {
                break;
            }
        }
    });
    let child = rt.spawn_child(parent, |mut rx| async move {
        while rx.recv().await.is_some() {}
    });
    let grandchild = rt.spawn_child_handler_with_budget(child, |_m| async {}, 10);
    let pull_child = rt
        .spawn_with_mailbox_opts(
            |mut rx| while rx.recv_blocking(None).is_ok() {},
            iris::SpawnOptions {
                parent: Some(grandchild),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rt.children_of(parent), vec![child]);
    rt.send(parent, Message::User(Bytes::from("quit"))).unwrap();
    assert_eq!(rt.join(parent).unwrap().reason, ExitReason::Normal);
    assert!(!rt.is_alive(child));
    wait_until("grandchildren gone", || {
        !rt.is_alive(grandchild) && !rt.is_alive(pull_child)
    });
    // Spawning under a dead parent is an error (try_) or a dead PID (seed form).
    assert!(matches!(
        rt.try_spawn_child(parent, |_rx| async {}),
        Err(ActorError::ParentDead(p)) if p == parent
    ));
    let orphan = rt.spawn_child(parent, |_rx| async {});
    assert!(!rt.is_alive(orphan));
}

#[test]
fn child_exit_reason_is_shutdown() {
    let rt = Runtime::new();
    let parent = rt.spawn_fn(|_m| Flow::Stop, 10);
    let child = rt.spawn_child_handler_with_budget(parent, |_m| async {}, 10);
    let rt2 = rt.clone();
    let waiter = std::thread::spawn(move || rt2.join(child));
    std::thread::sleep(Duration::from_millis(20));
    rt.send(parent, user("bye")).unwrap();
    let info = waiter.join().unwrap().unwrap();
    assert_eq!(info.reason, ExitReason::Shutdown);
}

#[test]
fn five_thousand_pull_actors_block_in_recv_at_once() {
    let rt = Runtime::new();
    let waiting = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let mut pids = Vec::new();
    for _ in 0..5_000 {
        let (w, g) = (waiting.clone(), got.clone());
        pids.push(
            rt.spawn_with_mailbox(move |mut rx| {
                w.fetch_add(1, Ordering::SeqCst);
                if rx.recv_blocking(None).is_ok() {
                    g.fetch_add(1, Ordering::SeqCst);
                }
            })
            .unwrap(),
        );
    }
    wait_until("all blocked", || waiting.load(Ordering::SeqCst) == 5_000);
    assert_eq!(got.load(Ordering::SeqCst), 0);
    for &p in &pids {
        rt.send(p, user("go")).unwrap();
    }
    wait_until("all received", || got.load(Ordering::SeqCst) == 5_000);
    for &p in &pids {
        rt.join(p);
    }
    assert_eq!(rt.actor_count(), 0);
}

#[test]
fn shutdown_stops_everything_and_refuses_new_spawns() {
    let rt = Runtime::new();
    let pids: Vec<_> = (0..100).map(|_| rt.spawn_fn(|_m| (), 10)).collect();
    let pull = rt
        .spawn_with_mailbox(|mut rx| while rx.recv_blocking(None).is_ok() {})
        .unwrap();
    assert!(rt.shutdown());
    assert!(pids.iter().all(|&p| !rt.is_alive(p)));
    assert!(!rt.is_alive(pull));
    assert_eq!(rt.actor_count(), 0);
    assert!(matches!(
        rt.spawn_with_mailbox(|_rx| {}),
        Err(ActorError::ShuttingDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_tokio_runtime_with_async_waits() {
    let rt = Runtime::new();
    let pid = rt.spawn_handler_with_budget(
        |m| async move {
            tokio::task::yield_now().await;
            if m == Message::User(Bytes::from("stop")) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
        10,
    );
    rt.send_async(pid, user("a")).await.unwrap();
    rt.send_async(pid, user("stop")).await.unwrap();
    assert_eq!(rt.wait(pid).await.unwrap().reason, ExitReason::Normal);
}

#[tokio::test]
async fn works_inside_a_current_thread_runtime() {
    let rt = Runtime::new();
    let pid = rt.spawn_fn(|_m| Flow::Stop, 10);
    rt.send_async(pid, user("a")).await.unwrap();
    assert_eq!(rt.wait(pid).await.unwrap().reason, ExitReason::Normal);
}

#[test]
fn batch_guard_wraps_each_batch_of_messages() {
    thread_local! {
        static IN_GUARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let rt = Runtime::new();
    let guards = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (g, h) = (guards.clone(), handled.clone());
    let behavior = iris::Behavior::from_fn(move |_m| {
        assert!(IN_GUARD.with(|f| f.get()), "handler ran outside the guard");
        h.fetch_add(1, Ordering::SeqCst);
    })
    .with_batch_guard(move |body| {
        g.fetch_add(1, Ordering::SeqCst);
        IN_GUARD.with(|f| f.set(true));
        body();
        IN_GUARD.with(|f| f.set(false));
    });
    let pid = rt
        .try_spawn_behavior(
            behavior,
            iris::SpawnOptions {
                budget: 100,
                ..Default::default()
            },
        )
        .unwrap();
    for _ in 0..1000 {
        rt.send(pid, user("m")).unwrap();
    }
    wait_until("all handled", || handled.load(Ordering::SeqCst) == 1000);
    assert!(rt.is_alive(pid), "no handler ran outside the guard");
    let n = guards.load(Ordering::SeqCst);
    assert!((10..=1000).contains(&n), "{n} guard calls");
}

/// Spawns a guarded counter whose first message holds its handler until `release` is
/// dropped, queues `n` more behind it, lets it go and returns the guard calls it took.
fn guard_calls_for_a_backlog(spanning: bool, n: usize, budget: usize) -> usize {
    let rt = Runtime::new();
    let guards = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Mutex::new(hold_rx);
    let (g, h) = (guards.clone(), handled.clone());
    let mut behavior = iris::Behavior::from_fn(move |_m| {
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            // Disconnected once the sender is dropped.
            let _ = hold.lock().unwrap().recv();
        }
    })
    .with_batch_guard(move |body| {
        g.fetch_add(1, Ordering::SeqCst);
        body();
    });
    if spanning {
        behavior = behavior.spanning_batches();
    }
    let opts = iris::SpawnOptions {
        budget,
        ..Default::default()
    };
    let pid = rt.try_spawn_behavior(behavior, opts).unwrap();
    rt.send(pid, user("first")).unwrap();
    wait_until("the first message held", || {
        handled.load(Ordering::SeqCst) == 1
    });
    for _ in 0..n {
        rt.send(pid, user("m")).unwrap();
    }
    drop(hold_tx);
    wait_until("all handled", || handled.load(Ordering::SeqCst) == n + 1);
    guards.load(Ordering::SeqCst)
}

#[test]
fn a_spanning_guard_runs_a_backlog_in_few_calls_a_plain_one_in_one_call_per_batch() {
    // Budget 10: a plain guard wraps each batch of at most 10 messages on its own.
    let plain = guard_calls_for_a_backlog(false, 1000, 10);
    assert!(plain >= 100, "{plain} guard calls for 100 batches");
    // Nothing else waits for the loops: one call goes on for up to 200 us at a time.
    let spanning = guard_calls_for_a_backlog(true, 1000, 10);
    assert!(spanning < 50, "{spanning} guard calls for 100 batches");
}

#[test]
fn a_spanning_guard_gives_way_to_another_actor_after_its_batch() {
    let rt = Runtime::with_workers(1).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let busy = iris::Behavior::from_fn(move |_m| {
        let until = std::time::Instant::now() + Duration::from_micros(2);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        h.fetch_add(1, Ordering::SeqCst);
    })
    .with_batch_guard(|body| body())
    .spanning_batches();
    let opts = iris::SpawnOptions {
        budget: 10,
        ..Default::default()
    };
    let busy = rt.try_spawn_behavior(busy, opts).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let other = rt.spawn_fn(
        {
            let handled = handled.clone();
            move |_m| {
                let _ = tx.send(handled.load(Ordering::SeqCst));
            }
        },
        10,
    );
    const N: usize = 50_000;
    for _ in 0..N {
        rt.send(busy, user("m")).unwrap();
    }
    wait_until("the busy actor started", || {
        handled.load(Ordering::SeqCst) > 0
    });
    // Each probe queues the other actor once, between two batches or in the middle of one;
    // it waits for the rest of that batch of 10, not for 200 us of batches (100 messages).
    let mut probes = Vec::new();
    while probes.len() < 5 {
        std::thread::sleep(Duration::from_millis(2));
        let before = handled.load(Ordering::SeqCst);
        rt.send(other, user("me too")).unwrap();
        let queued = handled.load(Ordering::SeqCst);
        let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(seen < N, "the other actor waited for the whole backlog");
        // A probe whose thread lost the core while it queued says nothing.
        if queued - before <= 5 {
            probes.push(seen - queued);
        }
    }
    let worst = probes.iter().max().unwrap();
    assert!(
        *worst <= 30,
        "the other actor waited for up to {worst} messages: {probes:?}"
    );
}

#[test]
fn exit_hooks_run_once_and_late_hooks_see_the_exit() {
    let rt = Runtime::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let pid = rt.spawn_fn(|_m| Flow::Stop, 10);
    let s = seen.clone();
    let id = rt.on_exit(pid, move |p, info| {
        s.lock().unwrap().push((p, info.reason.clone()))
    });
    assert!(id.is_some());
    let removed = rt
        .on_exit(pid, |_, _| panic!("removed hooks never run"))
        .unwrap();
    assert!(rt.remove_exit_hook(pid, removed));
    assert_eq!(rt.exit_hook_count(), 1);
    rt.send(pid, user("bye")).unwrap();
    rt.join(pid);
    assert_eq!(*seen.lock().unwrap(), vec![(pid, ExitReason::Normal)]);
    // Registered after the exit: runs at once with the remembered reason.
    let s = seen.clone();
    assert!(
        rt.on_exit(pid, move |p, i| s
            .lock()
            .unwrap()
            .push((p, i.reason.clone())))
            .is_none()
    );
    assert_eq!(seen.lock().unwrap()[1], (pid, ExitReason::Normal));
    // Never existed: noproc.
    let s = seen.clone();
    rt.on_exit(u64::MAX >> 16, move |p, i| {
        s.lock().unwrap().push((p, i.reason.clone()))
    });
    assert_eq!(
        seen.lock().unwrap()[2].1,
        ExitReason::Other("noproc".into())
    );
    assert_eq!(rt.exit_hook_count(), 0);
}

#[test]
fn exit_hooks_race_with_exits_and_never_leak() {
    let rt = Runtime::new();
    let fired = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (rt, fired) = (rt.clone(), fired.clone());
        threads.push(std::thread::spawn(move || {
            for _ in 0..500 {
                let pid = rt.spawn_fn(|_m| Flow::Stop, 10);
                rt.send(pid, user("x")).unwrap();
                let f = fired.clone();
                rt.on_exit(pid, move |_, _| {
                    f.fetch_add(1, Ordering::SeqCst);
                });
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    wait_until("every hook fired exactly once", || {
        fired.load(Ordering::SeqCst) == 2000
    });
    assert_eq!(rt.exit_hook_count(), 0);
}

#[test]
fn stop_racing_with_the_end_of_a_batch_always_concludes_the_actor() {
    let rt = Runtime::new();
    for _ in 0..2000 {
        let handled = Arc::new(AtomicUsize::new(0));
        let h = handled.clone();
        let pid = rt.spawn_fn(
            move |_m| {
                h.fetch_add(1, Ordering::SeqCst);
            },
            10,
        );
        rt.send(pid, user("x")).unwrap();
        while handled.load(Ordering::SeqCst) == 0 {
            std::hint::spin_loop();
        }
        rt.stop(pid);
        let info = rt.join_timeout(pid, Duration::from_secs(5));
        assert_eq!(info.map(|i| i.reason), Some(ExitReason::Killed));
    }
}

/// Blocking joins and async waits race the exits they wait for (the latch makes its waiters'
/// condition variable and notifier on first use): every waiter sees the actor's own reason,
/// whether it came before, during or after the exit.
#[test]
fn joins_and_async_waits_racing_exits_all_see_the_reason() {
    let rt = Runtime::new();
    let waiters = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20u64 {
        let pids: Vec<Pid> = (0..50)
            .map(|i: usize| {
                rt.spawn_fn(
                    move |_m| {
                        if i.is_multiple_of(2) {
                            Flow::Stop
                        } else {
                            Flow::Crash(format!("crash {i}"))
                        }
                    },
                    10,
                )
            })
            .collect();
        let expect = |i: usize| {
            if i.is_multiple_of(2) {
                ExitReason::Normal
            } else {
                ExitReason::Crash
            }
        };
        let joiners: Vec<_> = (0..4)
            .map(|t| {
                let (rt, pids) = (rt.clone(), pids.clone());
                std::thread::spawn(move || {
                    for (i, &p) in pids.iter().enumerate().skip(t % 2) {
                        let got = rt.join_timeout(p, Duration::from_secs(10)).expect("joined");
                        assert_eq!(got.reason, expect(i), "join of actor {i}");
                    }
                })
            })
            .collect();
        let asyncs: Vec<_> = pids
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let rt = rt.clone();
                waiters.spawn(async move {
                    let got = rt.wait(p).await.expect("waited");
                    assert_eq!(got.reason, expect(i), "wait of actor {i}");
                })
            })
            .collect();
        // The exits come in a different order every round, racing the waiters above.
        let mut order: Vec<usize> = (0..pids.len()).collect();
        order.rotate_left((round as usize * 7) % pids.len());
        for i in order {
            rt.send(pids[i], user("go")).unwrap();
        }
        for j in joiners {
            j.join().unwrap();
        }
        waiters.block_on(async {
            for a in asyncs {
                tokio::time::timeout(Duration::from_secs(10), a)
                    .await
                    .expect("every async wait returns")
                    .unwrap();
            }
        });
    }
}

/// `current_pid` is the running actor's own PID in every kind of actor, and `None` outside.
#[test]
fn current_pid_names_the_running_actor_in_every_kind_of_actor() {
    let rt = Runtime::new();
    assert_eq!(iris::current_pid(), None);
    let (tx, rx) = std::sync::mpsc::channel::<(&'static str, Option<Pid>)>();

    let t = tx.clone();
    let sync = rt.spawn_fn(
        move |_m| {
            t.send(("sync", iris::current_pid())).unwrap();
            Flow::Stop
        },
        10,
    );
    let t = tx.clone();
    let asynchronous = rt.spawn_handler_with_budget(
        move |_m| {
            let t = t.clone();
            async move {
                let before = iris::current_pid();
                tokio::task::yield_now().await;
                // Still itself after the await resumed it, maybe on another thread.
                assert_eq!(before, iris::current_pid());
                t.send(("async", iris::current_pid())).unwrap();
                Flow::Stop
            }
        },
        10,
    );
    let t = tx.clone();
    let task = rt.spawn_actor(move |mut inbox| async move {
        let _ = inbox.recv().await;
        t.send(("task", iris::current_pid())).unwrap();
    });
    let t = tx.clone();
    let pull = rt
        .spawn_with_mailbox(move |mut inbox| {
            let _ = inbox.recv_blocking(None);
            t.send(("pull", iris::current_pid())).unwrap();
        })
        .unwrap();
    for p in [sync, asynchronous, task, pull] {
        rt.send(p, user("go")).unwrap();
    }
    let mut got: Vec<(&str, Option<Pid>)> = (0..4)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("async", Some(asynchronous)),
            ("pull", Some(pull)),
            ("sync", Some(sync)),
            ("task", Some(task)),
        ]
    );
    assert_eq!(iris::current_pid(), None);
}

/// A thousand actors on both scheduler threads, each sending to the next from its handler:
/// every handler sees its own PID, never the sender's or a neighbour's on the same thread.
#[test]
fn current_pid_never_leaks_between_actors_sharing_a_thread() {
    let rt = Runtime::new();
    let n = 1000;
    let wrong = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let slots: Arc<Vec<std::sync::OnceLock<Pid>>> =
        Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect());
    for i in 0..n {
        let (rt2, wrong, seen, mine) = (rt.clone(), wrong.clone(), seen.clone(), slots.clone());
        let pid = rt.spawn_fn(
            move |_m| {
                let slots = &mine;
                let me = slots[i].get().copied();
                if iris::current_pid() != me {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(&next) = slots.get(i + 1).and_then(|s| s.get()) {
                    let _ = rt2.send(next, user("hop"));
                }
                // Sending did not change who runs.
                if iris::current_pid() != me {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
                seen.fetch_add(1, Ordering::SeqCst);
            },
            10,
        );
        slots[i].set(pid).unwrap();
    }
    // Ten waves from ten starting points, so chains overlap on both threads.
    for start in (0..n).step_by(n / 10) {
        rt.send(*slots[start].get().unwrap(), user("hop")).unwrap();
    }
    let expected: usize = (0..n).step_by(n / 10).map(|s| n - s).sum();
    wait_until("every hop handled", || {
        seen.load(Ordering::SeqCst) == expected
    });
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
}

#[test]
fn a_step_behavior_keeps_order_across_messages_that_wait_and_ends_as_its_steps_say() {
    use iris::{Behavior, SpawnOptions, Step};
    use std::sync::Mutex;
    let rt = Runtime::with_workers(2).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    // Every seventh message waits (a timer); the rest finish at once; "stop" ends it.
    let behavior = Behavior::from_step(move |m| {
        let Message::User(b) = m else {
            return Step::Done(Flow::Continue);
        };
        if &b[..] == b"stop" {
            return Step::Done(Flow::Stop);
        }
        let n: usize = std::str::from_utf8(&b).unwrap().parse().unwrap();
        if n % 7 == 3 {
            let s = s.clone();
            return Step::Async(Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                s.lock().unwrap().push(n);
                Flow::Continue
            }));
        }
        s.lock().unwrap().push(n);
        Step::Done(Flow::Continue)
    });
    let pid = rt
        .try_spawn_behavior(behavior, SpawnOptions::default())
        .unwrap();
    for n in 0..200 {
        rt.send_user(pid, n.to_string().into_bytes()).unwrap();
    }
    rt.send(pid, user("stop")).unwrap();
    let exit = rt
        .join_timeout(pid, Duration::from_secs(20))
        .expect("ended");
    assert_eq!(exit.reason, ExitReason::Normal);
    assert_eq!(*seen.lock().unwrap(), (0..200).collect::<Vec<_>>());

    // A step that panics ends its actor with a panic, like any handler.
    let pid = rt
        .try_spawn_behavior(
            Behavior::from_step(|_m| panic!("step failed")),
            SpawnOptions::default(),
        )
        .unwrap();
    rt.send(pid, user("x")).unwrap();
    let exit = rt
        .join_timeout(pid, Duration::from_secs(20))
        .expect("ended");
    assert_eq!(exit.reason, ExitReason::Panic);
}
