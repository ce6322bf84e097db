//! A flooded push actor must not starve the others; pull actors can number in the thousands.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iris_mailbox::{Mailbox, Offer};
use iris_sched::{Flow, Scheduler, Step, TokioScheduler, push_loop};

#[test]
fn flooded_actor_does_not_starve_a_hundred_idle_ones() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    const FLOOD: usize = 200_000;
    let flood_done = Arc::new(AtomicUsize::new(0));
    let flood = Arc::new(Mailbox::unbounded());
    for i in 0..FLOOD {
        assert_eq!(flood.offer(i), Offer::Queued);
    }
    // One flood task per worker thread, so every worker is busy with a flood.
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (mb, done) = (flood.clone(), flood_done.clone());
        handles.push(sched.spawn_task(async move {
            push_loop(&mb, 50, None, |_m| {
                // A little work per message so the flood takes a while.
                std::hint::black_box((0..200).fold(0u64, |a, b| a ^ b));
                if done.fetch_add(1, Ordering::Relaxed) + 1 == FLOOD {
                    Step::Done(Flow::Stop)
                } else {
                    Step::Done(Flow::Continue)
                }
            })
            .await
        }));
    }
    let seen_at = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..100 {
        let mb = Arc::new(Mailbox::unbounded());
        assert_eq!(mb.offer(0usize), Offer::Queued);
        let (seen_at, done) = (seen_at.clone(), flood_done.clone());
        sched.spawn_task(async move {
            push_loop(&mb, 50, None, |_m| {
                seen_at.lock().unwrap().push(done.load(Ordering::Relaxed));
                Step::Done(Flow::Stop)
            })
            .await
        });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen_at.lock().unwrap().len() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle actors never ran"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = seen_at.lock().unwrap().clone();
    let latest = *seen.iter().max().unwrap();
    assert!(
        latest < FLOOD,
        "an idle actor only ran after the flood ended ({latest} of {FLOOD})"
    );
    flood.close();
}

#[test]
fn five_thousand_pull_threads_block_at_once() {
    let sched = TokioScheduler::owned(Some(2)).unwrap();
    const N: usize = 5_000;
    let blocked = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut mailboxes = Vec::new();
    for i in 0..N {
        let mb = Arc::new(Mailbox::<usize>::unbounded());
        mailboxes.push(mb.clone());
        let (blocked, finished) = (blocked.clone(), finished.clone());
        sched
            .spawn_pull(
                format!("pull-{i}"),
                Box::new(move || {
                    blocked.fetch_add(1, Ordering::SeqCst);
                    if mb.recv_blocking(None) == Ok(i) {
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                }),
            )
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while blocked.load(Ordering::SeqCst) < N {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "all are blocked in recv"
    );
    for (i, mb) in mailboxes.iter().enumerate() {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    while finished.load(Ordering::SeqCst) < N {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn catch_unwind_turns_a_panic_into_a_value() {
    let sched = TokioScheduler::owned(Some(1)).unwrap();
    let r = sched.handle().block_on(iris_sched::CatchUnwind::new(async {
        panic!("boom") as u32
    }));
    assert_eq!(r, Err("boom".to_owned()));
}
