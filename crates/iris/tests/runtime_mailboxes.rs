//! Bounded mailboxes and overflow policies through the runtime.

mod common;

use common::wait_until;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iris::prelude::*;
use iris::{ActorError, SendError};

fn num(i: u64) -> Message {
    Message::User(Bytes::copy_from_slice(&i.to_be_bytes()))
}

fn as_num(m: &Message) -> u64 {
    u64::from_be_bytes(m.as_user().unwrap()[..8].try_into().unwrap())
}

/// A pull actor that waits for `go` before draining, recording what it receives.
fn gated_recorder(
    rt: &Runtime,
    capacity: usize,
) -> (Pid, Arc<std::sync::Barrier>, Arc<Mutex<Vec<u64>>>) {
    let gate = Arc::new(std::sync::Barrier::new(2));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (g, l) = (gate.clone(), log.clone());
    let pid = rt
        .spawn_with_mailbox_opts(
            move |mut rx| {
                g.wait();
                while let Ok(m) = rx.recv_blocking(None) {
                    l.lock().unwrap().push(as_num(&m));
                }
            },
            iris::SpawnOptions {
                capacity: Some(capacity),
                ..Default::default()
            },
        )
        .unwrap();
    (pid, gate, log)
}

#[test]
fn capacity_zero_is_a_typed_error() {
    let rt = Runtime::new();
    assert!(matches!(
        rt.spawn_handler_bounded(|_m| async {}, 10, 0),
        Err(ActorError::Mailbox(_, _))
    ));
    assert!(matches!(
        rt.spawn_actor_bounded(|_rx| async {}, 0),
        Err(ActorError::Mailbox(_, _))
    ));
    assert_eq!(rt.actor_count(), 0, "nothing half-spawned stays behind");
}

#[test]
fn policy_on_unbounded_or_dead_actor_is_refused() {
    let rt = Runtime::new();
    let pid = rt.spawn_fn(|_m| (), 10);
    assert!(matches!(
        rt.set_overflow_policy(pid, OverflowPolicy::DropOld),
        Err(ActorError::Mailbox(..))
    ));
    rt.stop(pid);
    assert!(matches!(
        rt.set_overflow_policy(pid, OverflowPolicy::DropOld),
        Err(ActorError::NoProcess(_))
    ));
}

#[test]
fn drop_new_rejects_with_mailbox_full() {
    let rt = Runtime::new();
    let (pid, gate, log) = gated_recorder(&rt, 2);
    rt.send(pid, num(1)).unwrap();
    rt.send(pid, num(2)).unwrap();
    assert!(matches!(rt.send(pid, num(3)), Err(SendError::MailboxFull(p, _)) if p == pid));
    assert_eq!(rt.mailbox_size(pid), Some(2));
    gate.wait();
    wait_until("drained", || log.lock().unwrap().len() == 2);
    assert_eq!(*log.lock().unwrap(), vec![1, 2]);
}

#[test]
fn drop_old_loses_exactly_one() {
    let rt = Runtime::new();
    let (pid, gate, log) = gated_recorder(&rt, 3);
    rt.set_overflow_policy(pid, OverflowPolicy::DropOld)
        .unwrap();
    for i in 0..4 {
        rt.send(pid, num(i)).unwrap();
    }
    assert_eq!(rt.mailbox_size(pid), Some(3));
    gate.wait();
    wait_until("drained", || log.lock().unwrap().len() == 3);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(*log.lock().unwrap(), vec![1, 2, 3]);
}

#[test]
fn redirect_sends_overflow_to_the_fallback_and_detects_cycles() {
    let rt = Runtime::new();
    let (primary, gate_p, log_p) = gated_recorder(&rt, 1);
    let (fallback, gate_f, log_f) = gated_recorder(&rt, 10);
    rt.set_overflow_policy(primary, OverflowPolicy::Redirect(fallback))
        .unwrap();
    for i in 0..4 {
        rt.send(primary, num(i)).unwrap();
    }
    gate_p.wait();
    gate_f.wait();
    wait_until("all delivered", || {
        log_p.lock().unwrap().len() + log_f.lock().unwrap().len() == 4
    });
    assert_eq!(*log_p.lock().unwrap(), vec![0]);
    assert_eq!(*log_f.lock().unwrap(), vec![1, 2, 3]);

    // a -> b -> a, both full: rejected as a cycle, never an endless loop.
    let (a, ga, _la) = gated_recorder(&rt, 1);
    let (b, gb, _lb) = gated_recorder(&rt, 1);
    rt.set_overflow_policy(a, OverflowPolicy::Redirect(b))
        .unwrap();
    rt.set_overflow_policy(b, OverflowPolicy::Redirect(a))
        .unwrap();
    rt.send(a, num(1)).unwrap();
    rt.send(b, num(2)).unwrap();
    assert!(matches!(
        rt.send(a, num(3)),
        Err(SendError::RedirectCycle(..))
    ));
    ga.wait();
    gb.wait();
}

#[test]
fn spill_copies_to_the_fallback_and_keeps_the_original() {
    let rt = Runtime::new();
    let (primary, gate_p, log_p) = gated_recorder(&rt, 1);
    let (fallback, gate_f, log_f) = gated_recorder(&rt, 10);
    rt.set_overflow_policy(primary, OverflowPolicy::Spill(fallback))
        .unwrap();
    rt.send(primary, num(1)).unwrap();
    let rt2 = rt.clone();
    let sender = std::thread::spawn(move || rt2.send(primary, num(2)));
    wait_until("copy at fallback", || rt.mailbox_size(fallback) == Some(1));
    assert!(!sender.is_finished(), "the original waits for room");
    gate_p.wait();
    sender.join().unwrap().unwrap();
    gate_f.wait();
    wait_until("delivered", || {
        log_p.lock().unwrap().len() == 2 && log_f.lock().unwrap().len() == 1
    });
    assert_eq!(*log_p.lock().unwrap(), vec![1, 2]);
    assert_eq!(*log_f.lock().unwrap(), vec![2]);
}

#[test]
fn block_under_eight_producers_loses_nothing_and_keeps_order() {
    let rt = Runtime::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt
        .spawn_handler_bounded(
            move |m| {
                let l = l.clone();
                async move {
                    l.lock().unwrap().push(as_num(&m));
                }
            },
            10,
            4,
        )
        .unwrap();
    rt.set_overflow_policy(pid, OverflowPolicy::Block).unwrap();
    const PER: u64 = 2_000;
    let producers: Vec<_> = (0..8u64)
        .map(|p| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    rt.send(pid, num((p << 32) | i)).unwrap();
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    wait_until("all handled", || {
        log.lock().unwrap().len() == (8 * PER) as usize
    });
    let mut next = [0u64; 8];
    for &m in log.lock().unwrap().iter() {
        let (p, i) = ((m >> 32) as usize, m & 0xffff_ffff);
        assert_eq!(i, next[p]);
        next[p] += 1;
    }
}

#[test]
fn block_from_async_senders_waits_without_blocking_workers() {
    let rt = Runtime::with_workers(2).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt
        .spawn_handler_bounded(
            move |m| {
                let l = l.clone();
                async move {
                    l.lock().unwrap().push(as_num(&m));
                }
            },
            10,
            1,
        )
        .unwrap();
    rt.set_overflow_policy(pid, OverflowPolicy::Block).unwrap();
    let rt2 = rt.clone();
    // Many more async senders than worker threads: they must wait asynchronously.
    rt.handle().block_on(async move {
        let mut tasks = Vec::new();
        for p in 0..16u64 {
            let rt = rt2.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    rt.send_async(pid, num((p << 32) | i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    wait_until("all handled", || log.lock().unwrap().len() == 16 * 200);
}

#[test]
fn handlers_blocking_on_a_full_mailbox_do_not_deadlock_the_schedulers() {
    // Two worker threads, eight synchronous actors that each block-send into one slow
    // bounded actor: the schedulers must keep the consumer running while producers wait.
    let rt = Runtime::with_workers(2).unwrap();
    let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g = got.clone();
    let consumer = rt
        .try_spawn_behavior(
            iris::Behavior::from_fn(move |_m| {
                std::thread::sleep(Duration::from_micros(50));
                g.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
            iris::SpawnOptions {
                capacity: Some(1),
                budget: 10,
                parent: None,
            },
        )
        .unwrap();
    rt.set_overflow_policy(consumer, OverflowPolicy::Block)
        .unwrap();
    let producers: Vec<Pid> = (0..8)
        .map(|_| {
            let rt2 = rt.clone();
            rt.spawn_fn(
                move |_m| {
                    for i in 0..50 {
                        rt2.send(consumer, num(i)).unwrap();
                    }
                },
                10,
            )
        })
        .collect();
    for &p in &producers {
        rt.send(p, num(0)).unwrap();
    }
    wait_until("all 400 delivered", || {
        got.load(std::sync::atomic::Ordering::SeqCst) == 400
    });
}

#[test]
fn actor_refs_send_like_the_runtime_under_every_outcome() {
    let rt = Runtime::new();
    assert!(rt.actor_ref(u64::MAX >> 12).is_none(), "unknown PID");
    let (primary, gate_p, log_p) = gated_recorder(&rt, 1);
    let (fallback, gate_f, log_f) = gated_recorder(&rt, 10);
    let to_primary = rt.actor_ref(primary).unwrap();
    assert_eq!(to_primary.pid(), primary);
    to_primary.send(num(0)).unwrap();
    // Full under DropNew: the message comes back.
    match to_primary.send(num(1)) {
        Err(SendError::MailboxFull(pid, m)) => assert_eq!((pid, as_num(&m)), (primary, 1)),
        other => panic!("expected MailboxFull, got {other:?}"),
    }
    // Redirect is followed from the handle too.
    rt.set_overflow_policy(primary, OverflowPolicy::Redirect(fallback))
        .unwrap();
    to_primary.send(num(2)).unwrap();
    to_primary.send(num(3)).unwrap();
    gate_p.wait();
    gate_f.wait();
    wait_until("all delivered", || {
        log_p.lock().unwrap().len() + log_f.lock().unwrap().len() == 3
    });
    assert_eq!(*log_p.lock().unwrap(), vec![0]);
    assert_eq!(*log_f.lock().unwrap(), vec![2, 3]);
    // Once stopped, the handle reports NoProcess, as `send` does.
    assert!(rt.stop(primary));
    rt.join(primary).unwrap();
    assert!(!to_primary.is_alive());
    assert!(matches!(
        to_primary.send(num(4)),
        Err(SendError::NoProcess(p, _)) if p == primary
    ));
    assert!(rt.actor_ref(primary).is_none());
}

#[test]
fn actor_refs_from_many_threads_keep_per_sender_order() {
    const THREADS: u64 = 8;
    const PER: u64 = 5_000;
    let rt = Runtime::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt.spawn_fn(move |m| l.lock().unwrap().push(as_num(&m)), 64);
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let r = rt.actor_ref(pid).unwrap();
            std::thread::spawn(move || {
                for i in 0..PER {
                    r.send(num((t << 32) | i)).unwrap();
                }
            })
        })
        .collect();
    senders.into_iter().for_each(|s| s.join().unwrap());
    wait_until("all handled", || {
        log.lock().unwrap().len() == (THREADS * PER) as usize
    });
    let mut next = [0u64; THREADS as usize];
    for v in log.lock().unwrap().iter() {
        let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert_eq!(i, next[t], "sender {t} out of order");
        next[t] += 1;
    }
}

/// A send that wakes a dormant actor hands it the message directly (the express slot); the
/// sends after it go through the mailbox. Threads and actors (senders on the scheduler
/// loops, whose targets run on the same thread next) send numbered messages to actors that
/// go dormant again and again (random pauses on both sides): every target still sees each
/// sender's messages in order, exactly once.
#[test]
fn per_sender_order_holds_while_targets_keep_going_dormant() {
    const TARGETS: usize = 6;
    const THREADS: u64 = 4;
    const ACTORS: u64 = 4;
    const PER: u64 = 1_500;
    let rt = Runtime::new();
    let logs: Vec<Arc<Mutex<Vec<u64>>>> = (0..TARGETS).map(|_| Arc::default()).collect();
    let targets: Vec<Pid> = logs
        .iter()
        .map(|log| {
            let l = log.clone();
            rt.spawn_fn(
                move |m| {
                    let v = as_num(&m);
                    l.lock().unwrap().push(v);
                    // Now and then slow, so the senders find it busy, then dormant again.
                    if v.is_multiple_of(97) {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                },
                8,
            )
        })
        .collect();
    let targets = Arc::new(targets);
    // Sender ids: threads 0..THREADS, actors THREADS..THREADS+ACTORS.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (rt, targets) = (rt.clone(), targets.clone());
            std::thread::spawn(move || {
                for i in 0..PER {
                    let to = targets[((i * 7 + t) as usize) % TARGETS];
                    rt.send(to, num((t << 32) | i)).unwrap();
                    if (i ^ t) % 61 == 0 {
                        std::thread::sleep(Duration::from_micros(20 + (i % 5) * 30));
                    }
                }
            })
        })
        .collect();
    // Actor senders: each message to itself drives the next send, from a scheduler loop.
    for a in 0..ACTORS {
        let id = THREADS + a;
        let (rt2, targets) = (rt.clone(), targets.clone());
        let me = Arc::new(std::sync::OnceLock::<Pid>::new());
        let me2 = me.clone();
        let i = std::sync::atomic::AtomicU64::new(0);
        let pid = rt.spawn_fn(
            move |_m| {
                let i = i.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i == PER {
                    return Flow::Stop;
                }
                let to = targets[((i * 5 + id) as usize) % TARGETS];
                rt2.send(to, num((id << 32) | i)).unwrap();
                rt2.send(*me2.get().unwrap(), num(0)).unwrap();
                Flow::Continue
            },
            4,
        );
        me.set(pid).unwrap();
        rt.send(pid, num(0)).unwrap();
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    let total = ((THREADS + ACTORS) * PER) as usize;
    wait_until("every message handled", || {
        logs.iter().map(|l| l.lock().unwrap().len()).sum::<usize>() == total
    });
    for (k, log) in logs.iter().enumerate() {
        let mut next = std::collections::HashMap::new();
        for v in log.lock().unwrap().iter() {
            let (s, i) = (v >> 32, v & 0xffff_ffff);
            let last = next.entry(s).or_insert(None::<u64>);
            assert!(
                last.is_none_or(|l| i > l),
                "target {k}: sender {s} sent {i} after {last:?}"
            );
            *last = Some(i);
        }
    }
}

/// On one worker held busy, a message to a dormant actor waits in its express slot and
/// counts in `mailbox_size`; the messages after it queue behind it, and all run in order.
#[test]
fn a_handed_over_message_counts_in_mailbox_size_and_runs_first() {
    let rt = Runtime::with_workers(1).unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let hold_rx = Mutex::new(hold_rx);
    let (busy_tx, busy_rx) = std::sync::mpsc::channel::<()>();
    let blocker = rt.spawn_fn(
        move |_m| {
            busy_tx.send(()).unwrap();
            hold_rx.lock().unwrap().recv().unwrap();
        },
        1,
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let target = rt.spawn_fn(move |m| l.lock().unwrap().push(as_num(&m)), 100);
    rt.send(blocker, num(0)).unwrap();
    busy_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The only worker is busy: the target is woken but cannot run yet.
    rt.send(target, num(1)).unwrap();
    assert_eq!(rt.mailbox_size(target), Some(1));
    for i in 2..=5 {
        rt.send(target, num(i)).unwrap();
    }
    assert_eq!(rt.mailbox_size(target), Some(5));
    hold_tx.send(()).unwrap();
    wait_until("all handled", || log.lock().unwrap().len() == 5);
    assert_eq!(*log.lock().unwrap(), vec![1, 2, 3, 4, 5]);
    assert_eq!(rt.mailbox_size(target), Some(0));
}

/// Stops racing the sends that wake dormant actors: every actor ends with its stop reason,
/// no message is handled twice, and the runtime stays usable.
#[test]
fn stops_racing_wake_up_sends_end_every_actor_cleanly() {
    let rt = Runtime::new();
    for round in 0..50u64 {
        let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pids: Vec<Pid> = (0..40)
            .map(|_| {
                let h = handled.clone();
                rt.spawn_fn(
                    move |_m| {
                        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    },
                    4,
                )
            })
            .collect();
        let p2 = pids.clone();
        let rt2 = rt.clone();
        let stopper = std::thread::spawn(move || {
            for (i, &p) in p2.iter().enumerate() {
                if (i as u64 + round).is_multiple_of(3) {
                    std::thread::yield_now();
                }
                rt2.stop(p);
            }
        });
        for &p in &pids {
            // Refused once the stop won; accepted (and maybe dropped with the mailbox) before.
            let _ = rt.send(p, num(round));
            let _ = rt.send(p, num(round));
        }
        stopper.join().unwrap();
        for &p in &pids {
            let info = rt
                .join_timeout(p, Duration::from_secs(10))
                .expect("every actor exits");
            assert_eq!(info.reason, ExitReason::Killed);
        }
        let seen = handled.load(std::sync::atomic::Ordering::SeqCst);
        assert!(seen <= 80, "at most the messages sent: {seen}");
    }
    // Still usable.
    let (tx, rx) = std::sync::mpsc::channel();
    let p = rt.spawn_fn(move |m| tx.send(as_num(&m)).unwrap(), 10);
    rt.send(p, num(7)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
}

#[test]
fn send_many_keeps_per_sender_order_among_single_sends_from_many_threads() {
    let rt = Runtime::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt.spawn_fn(move |m| l.lock().unwrap().push(as_num(&m)), 7);
    let senders: u64 = 4;
    let per: u64 = 3000;
    std::thread::scope(|s| {
        for t in 0..senders {
            let rt = &rt;
            s.spawn(move || {
                let mut seq = 0;
                // Bursts of random lengths mixed with single sends.
                let mut x = t + 1;
                while seq < per {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let len = (x >> 33) % 40;
                    if len == 0 {
                        rt.send(pid, num(t << 32 | seq)).unwrap();
                        seq += 1;
                    } else {
                        let end = (seq + len).min(per);
                        let burst: Vec<Message> = (seq..end).map(|i| num(t << 32 | i)).collect();
                        assert_eq!(rt.send_many(pid, burst), (end - seq) as usize);
                        seq = end;
                    }
                }
            });
        }
    });
    wait_until("every message", || {
        log.lock().unwrap().len() == (senders * per) as usize
    });
    let log = log.lock().unwrap();
    for t in 0..senders {
        let mine: Vec<u64> = log
            .iter()
            .filter(|v| *v >> 32 == t)
            .map(|v| v & 0xffff_ffff)
            .collect();
        assert!(mine.iter().copied().eq(0..per), "sender {t} out of order");
    }
}

#[test]
fn send_many_applies_a_bounded_mailbox_policy_to_each_message() {
    let rt = Runtime::new();
    let (pid, gate, log) = gated_recorder(&rt, 2);
    // DropNew (the default): two fit, the third stops the burst.
    assert_eq!(rt.send_many(pid, vec![num(1), num(2), num(3), num(4)]), 2);
    gate.wait();
    wait_until("two handled", || log.lock().unwrap().len() == 2);
    assert_eq!(*log.lock().unwrap(), vec![1, 2]);
    // No actor: nothing queued.
    assert_eq!(rt.send_many(u64::MAX >> 20, vec![num(1)]), 0);
    // A burst with a system message goes one at a time; the signal overtakes as ever.
    let watcher = rt.spawn_observed_handler(10).unwrap();
    let down = SystemMessage::Down {
        monitor: 7,
        from: 1,
        target: watcher,
        info: ExitInfo::new(ExitReason::Normal),
    };
    let burst = vec![num(5), Message::system(down.clone()), num(6)];
    assert_eq!(rt.send_many(watcher, burst), 3);
    wait_until("three observed", || rt.get_messages(watcher).len() == 3);
    let got = rt.get_messages(watcher);
    assert!(got.iter().any(|m| m.as_system() == Some(&down)));
    let nums: Vec<u64> = got.iter().filter(|m| !m.is_system()).map(as_num).collect();
    assert_eq!(nums, vec![5, 6]);
}
