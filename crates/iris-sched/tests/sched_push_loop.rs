//! How a push loop ends: each `Flow` a handler returns has its own `LoopEnd`.

use iris_mailbox::{Mailbox, Offer};
use iris_sched::{Flow, LoopEnd, Step, push_loop};

/// Runs a push loop over messages 0..5 whose handler returns `end` on message 2; returns how
/// the loop ended and the messages handled.
fn end_on_the_third(end: Flow) -> (LoopEnd, Vec<usize>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mb = Mailbox::unbounded();
    for i in 0..5usize {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    let mut seen = Vec::new();
    let got = rt.block_on(push_loop(&mb, 2, None, |m| {
        seen.push(m);
        Step::Done(if m == 2 { end.clone() } else { Flow::Continue })
    }));
    (got, seen)
}

#[test]
fn each_flow_ends_the_loop_its_own_way_after_the_message_that_returned_it() {
    assert_eq!(
        end_on_the_third(Flow::Stop),
        (LoopEnd::Stopped, vec![0, 1, 2])
    );
    assert_eq!(
        end_on_the_third(Flow::Crash("boom".into())),
        (LoopEnd::Crashed("boom".into()), vec![0, 1, 2])
    );
    assert_eq!(
        end_on_the_third(Flow::Shutdown),
        (LoopEnd::ShutDown, vec![0, 1, 2])
    );
}

#[test]
fn an_idle_timeout_ends_the_loop_once_the_mailbox_stays_empty() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mb = Mailbox::unbounded();
    assert_eq!(mb.offer(7usize), Offer::Queued);
    let mut seen = Vec::new();
    let got = rt.block_on(push_loop(
        &mb,
        10,
        Some(std::time::Duration::from_millis(20)),
        |m| {
            seen.push(m);
            Step::Done(Flow::Continue)
        },
    ));
    assert_eq!((got, seen), (LoopEnd::Idle, vec![7]));
}
