//! proptest: random operation sequences against a plain VecDeque model, for bounded
//! mailboxes (capacity and policies) and unbounded ones (whose consumer-side buffer must
//! keep every ordering rule: system first, then the stash, then users in arrival order).

use std::collections::VecDeque;

use iris_mailbox::{Mailbox, Offer, OverflowPolicy, TryRecvError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Offer(u32),
    System(u32),
    Recv,
    Selective(u32),
    SetPolicy(u8),
    /// A batch receive of up to n messages into the spare buffer, as a scheduler does (its
    /// allocation becomes the mailbox's next buffer).
    Batch(usize),
    /// The spare buffer is replaced by an empty one of this capacity.
    Spare(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(|v| Op::Offer(v % 50)),
        1 => any::<u32>().prop_map(|v| Op::System(1000 + v % 50)),
        3 => Just(Op::Recv),
        1 => any::<u32>().prop_map(|v| Op::Selective(v % 50)),
        1 => (0u8..3).prop_map(Op::SetPolicy),
        2 => (1usize..8).prop_map(Op::Batch),
        1 => (0usize..40).prop_map(Op::Spare),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn mailbox_matches_model(cap in prop_oneof![Just(None), (1usize..6).prop_map(Some)], ops in proptest::collection::vec(op(), 1..80)) {
        let mb = match cap {
            Some(cap) => Mailbox::bounded(cap).unwrap(),
            None => Mailbox::unbounded(),
        };
        let cap = cap.unwrap_or(usize::MAX);
        let mut system: VecDeque<u32> = VecDeque::new();
        let mut stash: VecDeque<(u32, bool)> = VecDeque::new();
        let mut user: VecDeque<u32> = VecDeque::new();
        let mut policy = OverflowPolicy::DropNew;
        let mut spare: VecDeque<u32> = VecDeque::new();
        for op in ops {
            match op {
                Op::Offer(v) => {
                    let got = mb.offer(v);
                    let want = if user.len() < cap {
                        user.push_back(v);
                        Offer::Queued
                    } else {
                        match policy {
                            OverflowPolicy::DropNew => Offer::Rejected(v),
                            OverflowPolicy::DropOld => {
                                let old = user.pop_front().unwrap();
                                user.push_back(v);
                                Offer::Evicted(old)
                            }
                            _ => Offer::MustWait(v),
                        }
                    };
                    prop_assert_eq!(got, want);
                }
                Op::System(v) => {
                    mb.push_system(v).unwrap();
                    system.push_back(v);
                }
                Op::Recv => {
                    let want = system
                        .pop_front()
                        .or_else(|| stash.pop_front().map(|s| s.0))
                        .or_else(|| user.pop_front());
                    let got = mb.try_recv();
                    match want {
                        Some(w) => prop_assert_eq!(got, Ok(w)),
                        None => prop_assert_eq!(got, Err(TryRecvError::Empty)),
                    }
                }
                Op::Selective(v) => {
                    let want = if let Some(i) = stash.iter().position(|s| s.0 == v) {
                        stash.remove(i).map(|s| s.0)
                    } else {
                        let mut found = None;
                        while let Some(m) = system.pop_front() {
                            if m == v { found = Some(m); break; }
                            stash.push_back((m, false));
                        }
                        if found.is_none() {
                            while let Some(m) = user.pop_front() {
                                if m == v { found = Some(m); break; }
                                stash.push_back((m, true));
                            }
                        }
                        found
                    };
                    let got = mb.selective_recv_blocking(|m| *m == v, Some(std::time::Duration::ZERO)).ok();
                    prop_assert_eq!(got, want);
                }
                Op::Batch(n) => {
                    let mut want = Vec::new();
                    while want.len() < n {
                        let Some(m) = system
                            .pop_front()
                            .or_else(|| stash.pop_front().map(|s| s.0))
                            .or_else(|| user.pop_front())
                        else {
                            break;
                        };
                        want.push(m);
                    }
                    let mut out = std::mem::take(&mut spare);
                    prop_assert_eq!(mb.try_recv_batch(n, &mut out), Ok(want.len()));
                    prop_assert_eq!(out.iter().copied().collect::<Vec<_>>(), want);
                    out.clear();
                    spare = out;
                }
                Op::Spare(k) => spare = VecDeque::with_capacity(k),
                Op::SetPolicy(p) => {
                    let next = [OverflowPolicy::DropNew, OverflowPolicy::DropOld, OverflowPolicy::Block][p as usize];
                    if cap == usize::MAX {
                        prop_assert!(mb.set_policy(next).is_err());
                    } else {
                        policy = next;
                        mb.set_policy(policy).unwrap();
                    }
                }
            }
            let stash_user = stash.iter().filter(|s| s.1).count();
            prop_assert_eq!(mb.len(), user.len() + stash_user);
            prop_assert_eq!(mb.has_messages(), !(system.is_empty() && stash.is_empty() && user.is_empty()));
        }
        let rest: Vec<u32> = std::iter::from_fn(|| mb.try_recv().ok()).collect();
        let want: Vec<u32> = system.into_iter().chain(stash.into_iter().map(|s| s.0)).chain(user).collect();
        prop_assert_eq!(rest, want);
    }
}
