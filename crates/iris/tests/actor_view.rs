//! `ActorView` (lock-free state of one actor), `ActorView::queue_own` and
//! `Behavior::with_exit_notice`, through the public API: what bindings build a fast path on.

mod common;

use common::{user, wait_until};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use iris::prelude::*;
use iris::{Behavior, SpawnOptions};

/// A push actor whose handler blocks on `gate` for messages equal to `b"block"`.
fn gated(rt: &Runtime, gate: Arc<Mutex<()>>, seen: Arc<AtomicUsize>) -> Pid {
    let behavior = Behavior::from_fn(move |m: Message| {
        if let Message::User(b) = &m
            && &b[..] == b"block"
        {
            drop(gate.lock().unwrap());
        }
        seen.fetch_add(1, Ordering::SeqCst);
        Flow::Continue
    });
    rt.try_spawn_behavior(behavior, SpawnOptions::default())
        .unwrap()
}

#[test]
fn a_view_follows_its_actor_through_work_swaps_and_its_end() {
    let rt = Runtime::new();
    let gate = Arc::new(Mutex::new(()));
    let seen = Arc::new(AtomicUsize::new(0));
    let pid = gated(&rt, gate.clone(), seen.clone());
    let view = rt.view(pid).expect("a live actor has a view");
    assert_eq!(view.pid(), pid);
    assert!(view.is_alive());
    assert!(view.is_parked(), "a new actor waits for its first message");
    assert_eq!(view.behavior_version(), Some(1));

    let held = gate.lock().unwrap();
    rt.send(pid, user("block")).unwrap();
    wait_until("the actor runs", || !view.is_parked());
    drop(held);
    wait_until("the actor parks again", || {
        seen.load(Ordering::SeqCst) == 1 && view.is_parked()
    });

    rt.hot_swap_behavior(pid, Behavior::from_fn(|_m| Flow::Continue))
        .unwrap();
    assert_eq!(view.behavior_version(), Some(2));

    assert!(rt.stop(pid));
    assert!(!view.is_alive(), "a kill closes the actor at once");
    rt.join(pid);
    assert!(rt.view(pid).is_none());
    // Not a push actor: no behaviour version.
    let pull = rt
        .spawn_with_mailbox(|mut rx| {
            let _ = rx.recv_blocking(None);
        })
        .unwrap();
    assert_eq!(rt.view(pull).unwrap().behavior_version(), None);
    assert!(rt.stop(pull));
}

#[test]
fn queue_own_requeues_from_the_actors_own_handler_only() {
    let rt = Runtime::new();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    let views: Arc<Mutex<Option<iris::ActorView>>> = Arc::default();
    let v = views.clone();
    let behavior = Behavior::from_fn(move |m: Message| {
        let Message::User(b) = m else {
            return Flow::Continue;
        };
        tx.lock().unwrap().send(b.to_vec()).unwrap();
        if &b[..] == b"first" {
            // Put work back behind what is queued meanwhile.
            let requeued = v.lock().unwrap().as_ref().unwrap().queue_own(user("again"));
            assert!(requeued.is_ok());
        }
        Flow::Continue
    });
    let pid = rt
        .try_spawn_behavior(behavior, SpawnOptions::default())
        .unwrap();
    let view = rt.view(pid).unwrap();
    // Outside the actor's handler nothing would wake it: refused, message handed back.
    match view.queue_own(user("outside")) {
        Err(Message::User(b)) => assert_eq!(&b[..], b"outside"),
        other => panic!("expected the message back, got {other:?}"),
    }
    *views.lock().unwrap() = Some(view);
    rt.send(pid, user("first")).unwrap();
    let got: Vec<Vec<u8>> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(got, vec![b"first".to_vec(), b"again".to_vec()]);
    assert!(rt.stop(pid));
}

#[test]
fn the_exit_notice_is_told_once_however_the_actor_ends() {
    let rt = Runtime::new();
    let (tx, rx) = mpsc::channel::<Pid>();
    let notice = |tx: mpsc::Sender<Pid>| {
        let tx = Mutex::new(tx);
        move |pid| tx.lock().unwrap().send(pid).unwrap()
    };
    let spawn = |b: Behavior| {
        rt.try_spawn_behavior(
            b.with_exit_notice(notice(tx.clone())),
            SpawnOptions::default(),
        )
        .unwrap()
    };
    let stopped = spawn(Behavior::from_fn(|_m| Flow::Stop));
    let panicked = spawn(Behavior::from_fn(|_m| -> Flow { panic!("boom") }));
    let killed = spawn(Behavior::from_fn(|_m| Flow::Continue));
    rt.send(stopped, user("x")).unwrap();
    rt.send(panicked, user("x")).unwrap();
    assert!(rt.stop(killed));
    for pid in [stopped, panicked, killed] {
        rt.join(pid);
    }
    let mut told: Vec<Pid> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    told.sort_unstable();
    let mut expected = vec![stopped, panicked, killed];
    expected.sort_unstable();
    assert_eq!(told, expected);
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "told once each"
    );

    // Only the behaviour the actor was spawned with is told, not one swapped in.
    let plain = rt.spawn_fn(|_m| (), 10);
    rt.hot_swap_behavior(
        plain,
        Behavior::from_fn(|_m| Flow::Continue).with_exit_notice(notice(tx.clone())),
    )
    .unwrap();
    assert!(rt.stop(plain));
    rt.join(plain);
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn a_panicking_exit_notice_does_not_stop_the_exit() {
    let rt = Runtime::new();
    let behavior = Behavior::from_fn(|_m| Flow::Stop).with_exit_notice(|_pid| panic!("notice"));
    let pid = rt
        .try_spawn_behavior(behavior, SpawnOptions::default())
        .unwrap();
    rt.send(pid, user("x")).unwrap();
    assert_eq!(rt.join(pid).unwrap().reason, ExitReason::Normal);
    assert!(!rt.is_alive(pid));
}
