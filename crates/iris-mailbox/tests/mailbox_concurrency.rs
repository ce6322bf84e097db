//! Many producers at once: nothing accepted is lost, per-producer order holds.

use std::collections::VecDeque;
use std::sync::Arc;

use iris_mailbox::{Mailbox, Offer, OverflowPolicy};

const PRODUCERS: u64 = 8;

/// Every producer `p` (the high 32 bits) sent `0..expected[p]` in order, and all arrived.
fn check_order(got: &[u64], expected: &[u64]) {
    let mut next = vec![0u64; expected.len()];
    for &m in got {
        let (p, i) = ((m >> 32) as usize, m & 0xffff_ffff);
        assert_eq!(i, next[p], "producer {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, expected, "lost messages");
}

fn check_per_producer_order(got: &[u64], per: u64) {
    check_order(got, &[per; PRODUCERS as usize]);
}

#[test]
fn unbounded_many_threads_lose_nothing() {
    let per = 20_000u64;
    let mb = Arc::new(Mailbox::unbounded());
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mb = mb.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    assert_eq!(mb.offer((p << 32) | i), Offer::Queued);
                }
            })
        })
        .collect();
    let mut got = Vec::with_capacity((per * PRODUCERS) as usize);
    while got.len() < (per * PRODUCERS) as usize {
        if let Ok(m) = mb.recv_blocking(Some(std::time::Duration::from_secs(10))) {
            got.push(m);
        } else {
            panic!("consumer starved with {} received", got.len());
        }
    }
    producers.into_iter().for_each(|t| t.join().unwrap());
    check_per_producer_order(&got, per);
}

#[test]
fn block_under_eight_producers_loses_nothing_and_keeps_order() {
    let per = 5_000u64;
    let mb = Arc::new(Mailbox::bounded(16).unwrap());
    mb.set_policy(OverflowPolicy::Block).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mb = mb.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let m = (p << 32) | i;
                    match mb.offer(m) {
                        Offer::Queued => {}
                        Offer::MustWait(m) => mb.push_wait_blocking(m, None).unwrap(),
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    let mut batch = VecDeque::new();
    while got.len() < (per * PRODUCERS) as usize {
        assert!(mb.capacity().is_some_and(|c| mb.len() <= c));
        assert!(iris_mailbox::block_on(mb.recv_batch(7, &mut batch)));
        got.extend(batch.drain(..));
    }
    producers.into_iter().for_each(|t| t.join().unwrap());
    check_per_producer_order(&got, per);
}

#[test]
fn block_async_producers_on_tokio() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let per = 3_000u64;
    let got = rt.block_on(async {
        let mb = Arc::new(Mailbox::bounded(4).unwrap());
        mb.set_policy(OverflowPolicy::Block).unwrap();
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let mb = mb.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    mb.push_wait((p << 32) | i).await.unwrap();
                }
            }));
        }
        let mut got = Vec::new();
        while got.len() < (per * PRODUCERS) as usize {
            got.push(mb.recv().await.unwrap());
        }
        for t in tasks {
            t.await.unwrap();
        }
        got
    });
    check_per_producer_order(&got, per);
}

#[test]
fn drop_old_under_contention_counts_exactly() {
    let per = 10_000u64;
    let mb = Arc::new(Mailbox::bounded(8).unwrap());
    mb.set_policy(OverflowPolicy::DropOld).unwrap();
    let evicted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (mb, evicted) = (mb.clone(), evicted.clone());
            std::thread::spawn(move || {
                for i in 0..per {
                    match mb.offer((p << 32) | i) {
                        Offer::Queued => {}
                        Offer::Evicted(_) => {
                            evicted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        })
        .collect();
    let mut received = 0u64;
    let done = || producers.iter().all(|t| t.is_finished());
    loop {
        let finished = done();
        while mb.try_recv().is_ok() {
            received += 1;
        }
        if finished {
            break;
        }
        std::thread::yield_now();
    }
    producers.into_iter().for_each(|t| t.join().unwrap());
    while mb.try_recv().is_ok() {
        received += 1;
    }
    let evicted = evicted.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        received + evicted,
        per * PRODUCERS,
        "every message is received or evicted once"
    );
}

/// The unbounded mailbox's consumer buffer under fire: user producers, a system producer, an
/// observer calling `len` and `has_messages` (which take the locks in the consumer's order),
/// and a consumer that alternates at random between single, batch and blocking receives.
#[test]
fn unbounded_buffer_keeps_order_under_mixed_receives() {
    const USERS: u64 = 4;
    let per = 20_000u64;
    let systems = 2_000u64;
    let mb = Arc::new(Mailbox::unbounded());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads: Vec<_> = (0..USERS)
        .map(|p| {
            let mb = mb.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    assert_eq!(mb.offer((p << 32) | i), Offer::Queued);
                }
            })
        })
        .collect();
    threads.push({
        let mb = mb.clone();
        std::thread::spawn(move || {
            for i in 0..systems {
                mb.push_system((USERS << 32) | i).unwrap();
            }
        })
    });
    let observer = {
        let (mb, stop) = (mb.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = mb.len();
                let _ = mb.has_messages();
            }
        })
    };
    let total = (per * USERS + systems) as usize;
    let mut got = Vec::with_capacity(total);
    let mut seed = 0x9E37_79B9u32;
    let mut batch = VecDeque::new();
    while got.len() < total {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        match seed >> 30 {
            0 => got.extend(mb.try_recv().ok()),
            1 => {
                mb.try_recv_batch((seed as usize >> 8) % 64 + 1, &mut batch)
                    .unwrap();
                got.extend(batch.drain(..));
            }
            _ => match mb.recv_blocking(Some(std::time::Duration::from_millis(1))) {
                Ok(m) => got.push(m),
                Err(e) => assert_eq!(e, iris_mailbox::RecvError::Timeout),
            },
        }
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    observer.join().unwrap();
    assert!(mb.is_empty() && !mb.has_messages());
    let mut expected = vec![per; USERS as usize];
    expected.push(systems);
    check_order(&got, &expected);
}

/// `has_messages` takes no lock: while the consumer moves messages from the lane to its buffer
/// and receives all but the last one, an observer on other threads must never see an empty
/// mailbox, and producers keep adding meanwhile.
#[test]
fn has_messages_never_misses_a_queued_message_under_concurrent_receives() {
    for round in 0..200u64 {
        let mb = Arc::new(Mailbox::unbounded());
        for i in 0..200u64 {
            assert_eq!(mb.offer(i), Offer::Queued);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let observers: Vec<_> = (0..2)
            .map(|_| {
                let (mb, stop) = (mb.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        assert!(
                            mb.has_messages(),
                            "a queued message was not seen (round {round})"
                        );
                    }
                })
            })
            .collect();
        let producer = {
            let mb = mb.clone();
            std::thread::spawn(move || {
                for i in 200..400u64 {
                    assert_eq!(mb.offer(i), Offer::Queued);
                    if i % 16 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        // Singles and batches, 150 of the 200 queued before: at least 50 always remain.
        let mut got = Vec::new();
        let mut batch = VecDeque::new();
        while got.len() < 150 {
            if got.len() % 3 == 0 {
                got.push(mb.try_recv().expect("queued"));
            } else {
                mb.try_recv_batch(5, &mut batch).unwrap();
                got.extend(batch.drain(..));
            }
        }
        producer.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Release);
        for o in observers {
            o.join().unwrap();
        }
        got.extend(std::iter::from_fn(|| mb.try_recv().ok()));
        assert_eq!(got, (0..400).collect::<Vec<u64>>());
        assert!(!mb.has_messages());
    }
}
