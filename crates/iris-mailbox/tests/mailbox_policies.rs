//! Lanes, bounds and the five overflow policies.

use std::collections::VecDeque;
use std::time::Duration;

use iris_mailbox::{
    Mailbox, MailboxError, Offer, OverflowPolicy, RecvError, TryRecvError, block_on,
};

#[test]
fn capacity_zero_is_an_error() {
    assert_eq!(
        Mailbox::<u32>::bounded(0).unwrap_err(),
        MailboxError::ZeroCapacity
    );
}

#[test]
fn policy_on_unbounded_is_refused() {
    let mb = Mailbox::<u32>::unbounded();
    assert_eq!(
        mb.set_policy(OverflowPolicy::DropOld),
        Err(MailboxError::Unbounded)
    );
}

#[test]
fn system_lane_overtakes_user_lane() {
    let mb = Mailbox::unbounded();
    assert_eq!(mb.offer(1), Offer::Queued);
    assert_eq!(mb.offer(2), Offer::Queued);
    mb.push_system(100).unwrap();
    assert_eq!(mb.len(), 2, "len counts user messages only");
    assert_eq!(mb.try_recv(), Ok(100));
    assert_eq!(mb.try_recv(), Ok(1));
    assert_eq!(mb.try_recv(), Ok(2));
    assert_eq!(mb.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn drop_new_rejects_and_keeps_the_queue() {
    let mb = Mailbox::bounded(2).unwrap();
    assert_eq!(mb.offer(1), Offer::Queued);
    assert_eq!(mb.offer(2), Offer::Queued);
    assert_eq!(mb.offer(3), Offer::Rejected(3));
    assert_eq!(mb.len(), 2);
    assert_eq!(mb.try_recv(), Ok(1));
    assert_eq!(mb.offer(4), Offer::Queued);
    assert_eq!(mb.try_recv(), Ok(2));
    assert_eq!(mb.try_recv(), Ok(4));
}

#[test]
fn drop_old_loses_exactly_one() {
    let mb = Mailbox::bounded(3).unwrap();
    mb.set_policy(OverflowPolicy::DropOld).unwrap();
    for i in 0..3 {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    assert_eq!(mb.offer(3), Offer::Evicted(0));
    assert_eq!(mb.len(), 3);
    let got: Vec<_> = std::iter::from_fn(|| mb.try_recv().ok()).collect();
    assert_eq!(got, vec![1, 2, 3]);
}

#[test]
fn redirect_and_spill_name_their_target() {
    let mb = Mailbox::bounded(1).unwrap();
    assert_eq!(mb.offer(1), Offer::Queued);
    mb.set_policy(OverflowPolicy::Redirect(7)).unwrap();
    assert_eq!(mb.offer(2), Offer::Redirect(7, 2));
    mb.set_policy(OverflowPolicy::Spill(9)).unwrap();
    assert_eq!(mb.offer(3), Offer::Spill(9, 3));
    mb.set_policy(OverflowPolicy::Block).unwrap();
    assert_eq!(mb.offer(4), Offer::MustWait(4));
    assert_eq!(mb.len(), 1);
}

#[test]
fn block_waits_for_room_asynchronously() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mb = std::sync::Arc::new(Mailbox::bounded(1).unwrap());
        mb.set_policy(OverflowPolicy::Block).unwrap();
        assert_eq!(mb.offer(1), Offer::Queued);
        let mb2 = mb.clone();
        let sender = tokio::spawn(async move { mb2.push_wait(2).await });
        tokio::task::yield_now().await;
        assert!(!sender.is_finished());
        assert_eq!(mb.recv().await, Some(1));
        sender.await.unwrap().unwrap();
        assert_eq!(mb.recv().await, Some(2));
    });
}

#[test]
fn blocking_push_times_out_and_hands_back() {
    let mb = Mailbox::bounded(1).unwrap();
    assert_eq!(mb.offer(1), Offer::Queued);
    assert_eq!(
        mb.push_wait_blocking(2, Some(Duration::from_millis(20))),
        Err(2)
    );
    assert_eq!(mb.len(), 1);
}

#[test]
fn close_drops_queue_and_wakes_everyone() {
    let mb = std::sync::Arc::new(Mailbox::bounded(1).unwrap());
    assert_eq!(mb.offer(1), Offer::Queued);
    let mb2 = mb.clone();
    let blocked = std::thread::spawn(move || mb2.push_wait_blocking(2, None));
    std::thread::sleep(Duration::from_millis(20));
    let dropped = mb.close();
    assert_eq!(dropped, vec![1]);
    assert_eq!(blocked.join().unwrap(), Err(2));
    assert_eq!(mb.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(mb.recv_blocking(None), Err(RecvError::Closed));
    assert_eq!(mb.offer(3), Offer::Closed(3));
    assert!(mb.push_system(4).is_err());
    assert_eq!(mb.len(), 0);
}

#[test]
fn blocking_recv_times_out_then_receives() {
    let mb = std::sync::Arc::new(Mailbox::unbounded());
    assert_eq!(
        mb.recv_blocking(Some(Duration::from_millis(10))),
        Err(RecvError::Timeout)
    );
    let mb2 = mb.clone();
    let t = std::thread::spawn(move || mb2.recv_blocking(None));
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(mb.offer(5), Offer::Queued);
    assert_eq!(t.join().unwrap(), Ok(5));
}

#[test]
fn selective_receive_keeps_order_of_the_rest() {
    let mb = Mailbox::unbounded();
    for i in 0..6 {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    assert_eq!(block_on(mb.selective_recv(|m| *m == 4)), Some(4));
    assert_eq!(mb.len(), 5, "stashed messages still count");
    assert_eq!(
        mb.selective_recv_blocking(|m| *m % 2 == 1, None),
        Ok(1),
        "the stash is searched first"
    );
    assert_eq!(
        mb.selective_recv_blocking(|m| *m == 99, Some(Duration::from_millis(5))),
        Err(RecvError::Timeout)
    );
    let rest: Vec<_> = std::iter::from_fn(|| mb.try_recv().ok()).collect();
    assert_eq!(rest, vec![0, 2, 3, 5]);
}

#[test]
fn selective_receive_frees_room_for_blocked_senders() {
    let mb = std::sync::Arc::new(Mailbox::bounded(2).unwrap());
    mb.set_policy(OverflowPolicy::Block).unwrap();
    assert_eq!(mb.offer(1), Offer::Queued);
    assert_eq!(mb.offer(2), Offer::Queued);
    let mb2 = mb.clone();
    let t = std::thread::spawn(move || mb2.push_wait_blocking(3, None));
    // Stashing 1 and 2 empties the lane; the blocked sender gets in and 3 matches.
    assert_eq!(mb.selective_recv_blocking(|m| *m == 3, None), Ok(3));
    t.join().unwrap().unwrap();
    assert_eq!(mb.try_recv(), Ok(1));
    assert_eq!(mb.try_recv(), Ok(2));
}

#[test]
fn batch_receive_takes_system_first_and_respects_max() {
    let mb = Mailbox::unbounded();
    for i in 0..10 {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    mb.push_system(100).unwrap();
    let mut out = std::collections::VecDeque::new();
    assert!(block_on(mb.recv_batch(4, &mut out)));
    assert_eq!(out, [100, 0, 1, 2]);
    out.clear();
    assert!(block_on(mb.recv_batch(100, &mut out)));
    assert_eq!(out, [3, 4, 5, 6, 7, 8, 9]);
    assert!(mb.is_empty());
    mb.close();
    out.clear();
    assert!(!block_on(mb.recv_batch(100, &mut out)));
}

#[test]
fn a_mailbox_made_in_a_recycled_buffer_starts_empty_and_keeps_order() {
    let mut old = std::collections::VecDeque::with_capacity(16);
    old.extend([7u32, 8, 9]);
    let mb = Mailbox::unbounded_in(old);
    assert!(mb.is_empty());
    assert!(!mb.has_messages());
    for i in 0..20 {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    let mut out = std::collections::VecDeque::new();
    assert_eq!(mb.try_recv_batch(100, &mut out), Ok(20));
    assert_eq!(out, (0..20).collect::<std::collections::VecDeque<_>>());
}

#[test]
fn reclaim_takes_nothing_from_an_open_mailbox_and_an_empty_buffer_from_a_closed_one() {
    let mb = Mailbox::unbounded();
    for i in 0..10u32 {
        assert_eq!(mb.offer(i), Offer::Queued);
    }
    assert_eq!(mb.try_recv(), Ok(0));
    // Open: nothing is taken, every message stays.
    assert_eq!(mb.reclaim().capacity(), 0);
    assert_eq!(mb.len(), 9);
    assert_eq!(mb.close().len(), 9);
    let buf = mb.reclaim();
    assert!(buf.is_empty());
    assert!(buf.capacity() >= 9, "the lane's allocation comes back");
    // Still closed: nothing can be queued into the buffer it gave away.
    assert_eq!(mb.offer(1), Offer::Closed(1));
    assert!(mb.is_empty());
    assert_eq!(mb.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn a_big_batch_buffer_does_not_stay_behind_in_a_quiet_mailbox() {
    let mb: Mailbox<u32> = Mailbox::unbounded();
    let _ = mb.offer(1);
    let mut out = VecDeque::with_capacity(4096);
    assert_eq!(mb.try_recv_batch(100, &mut out), Ok(1));
    assert_eq!(out, [1]);
    assert!(mb.close().is_empty());
    assert!(mb.reclaim().capacity() < 4096);
}

#[test]
fn a_busy_lane_and_a_batch_buffer_trade_allocations() {
    let mb: Mailbox<u32> = Mailbox::unbounded();
    for i in 0..1000 {
        let _ = mb.offer(i);
    }
    let mut out = VecDeque::with_capacity(1024);
    assert_eq!(mb.try_recv_batch(1000, &mut out), Ok(1000));
    assert!(out.iter().copied().eq(0..1000));
    // The lane kept the batch buffer's allocation for the next thousand: no regrowth.
    assert!(mb.close().is_empty());
    assert!(mb.reclaim().capacity() >= 1000);
}

#[test]
fn push_all_queues_a_burst_in_order_only_where_no_policy_applies() {
    let mb: Mailbox<u32> = Mailbox::unbounded();
    let _ = mb.offer(0);
    let mut burst: Vec<u32> = (1..=100).collect();
    assert!(mb.push_all(&mut burst));
    assert!(burst.is_empty());
    assert_eq!(mb.len(), 101);
    let mut out = VecDeque::new();
    assert_eq!(mb.try_recv_batch(1000, &mut out), Ok(101));
    assert!(out.iter().copied().eq(0..=100));

    let bounded: Mailbox<u32> = Mailbox::bounded(4).unwrap();
    let mut burst = vec![1, 2];
    assert!(!bounded.push_all(&mut burst));
    assert_eq!(burst, [1, 2], "left for offer to apply the policy");
    assert!(bounded.is_empty());

    mb.close();
    let mut burst = vec![1];
    assert!(!mb.push_all(&mut burst));
    assert_eq!(burst, [1]);
}
