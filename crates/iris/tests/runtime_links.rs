//! Links, exit trapping and monitors through the runtime.

mod common;

use common::{user, wait_until};

use std::time::Duration;

use iris::ActorError;
use iris::prelude::*;

fn crasher(rt: &Runtime) -> Pid {
    rt.spawn_fn(|_m| Err::<(), _>("boom"), 10)
}

#[test]
fn abnormal_exit_kills_linked_peer_with_metadata_naming_it() {
    let rt = Runtime::new();
    let a = crasher(&rt);
    let b = rt.spawn_fn(|_m| (), 10);
    rt.link(a, b).unwrap();
    assert_eq!(rt.link_count(), 2);
    rt.send(a, user("x")).unwrap();
    let info = rt.join(b).unwrap();
    assert_eq!(info.reason, ExitReason::Killed);
    assert!(info.metadata.unwrap().contains(&a.to_string()));
    assert_eq!(rt.link_count(), 0);
}

#[test]
fn normal_exit_does_not_kill_linked_peer() {
    let rt = Runtime::new();
    let a = rt.spawn_fn(|_m| Flow::Stop, 10);
    let b = rt.spawn_fn(|_m| (), 10);
    rt.link(a, b).unwrap();
    rt.send(a, user("x")).unwrap();
    rt.join(a);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rt.is_alive(b));
    assert_eq!(rt.link_count(), 0);
}

#[test]
fn trapping_peer_receives_exit_message_and_survives() {
    let rt = Runtime::new();
    let a = crasher(&rt);
    let b = rt.spawn_observed_handler(10).unwrap();
    rt.trap_exit(b, true).unwrap();
    assert!(rt.traps_exit(b));
    rt.link(a, b).unwrap();
    rt.send(a, user("x")).unwrap();
    wait_until("EXIT delivered", || !rt.get_messages(b).is_empty());
    match rt.get_messages(b)[0].as_system() {
        Some(SystemMessage::Exit { from, target, info }) => {
            assert_eq!((*from, *target), (a, b));
            assert_eq!(info.reason, ExitReason::Crash);
            assert_eq!(info.metadata.as_deref(), Some("boom"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(rt.is_alive(b));
}

#[test]
fn unlink_stops_propagation() {
    let rt = Runtime::new();
    let a = crasher(&rt);
    let b = rt.spawn_fn(|_m| (), 10);
    rt.link(a, b).unwrap();
    assert!(rt.unlink(a, b));
    assert!(!rt.unlink(a, b));
    rt.send(a, user("x")).unwrap();
    rt.join(a);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rt.is_alive(b));
}

#[test]
fn link_to_dead_actor_is_an_error() {
    let rt = Runtime::new();
    let a = rt.spawn_fn(|_m| (), 10);
    let dead = rt.spawn_fn(|_m| (), 10);
    rt.stop(dead);
    rt.join(dead);
    assert!(matches!(rt.link(a, dead), Err(ActorError::NoProcess(p)) if p == dead));
    assert!(rt.trap_exit(dead, true).is_err());
}

#[test]
fn monitor_delivers_down_with_reason_once() {
    let rt = Runtime::new();
    let watcher = rt.spawn_observed_handler(10).unwrap();
    let target = crasher(&rt);
    let mref = rt.monitor(watcher, target).unwrap();
    rt.send(target, user("x")).unwrap();
    wait_until("DOWN", || !rt.get_messages(watcher).is_empty());
    match rt.get_messages(watcher)[0].as_system() {
        Some(
            s @ SystemMessage::Down {
                monitor,
                from,
                target: t,
                info,
            },
        ) => {
            assert_eq!(s.type_name(), "DOWN");
            assert_eq!((*monitor, *from, *t), (mref, target, watcher));
            assert_eq!(info.reason, ExitReason::Crash);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!rt.demonitor(mref), "already fired");
    assert!(rt.is_alive(watcher), "monitors never kill the watcher");
    assert_eq!(rt.link_count(), 0);
}

#[test]
fn monitoring_a_dead_pid_delivers_noproc_at_once() {
    let rt = Runtime::new();
    let watcher = rt.spawn_observed_handler(10).unwrap();
    let dead = rt.spawn_fn(|_m| (), 10);
    rt.stop(dead);
    rt.join(dead);
    let never = u64::MAX >> 20;
    rt.monitor(watcher, never).unwrap();
    wait_until("noproc DOWN", || !rt.get_messages(watcher).is_empty());
    match rt.get_messages(watcher)[0].as_system() {
        Some(SystemMessage::Down { info, .. }) => {
            assert_eq!(info.reason, ExitReason::Other("noproc".into()));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn demonitor_before_exit_means_no_down() {
    let rt = Runtime::new();
    let watcher = rt.spawn_observed_handler(10).unwrap();
    let target = rt.spawn_fn(|_m| (), 10);
    let mref = rt.monitor(watcher, target).unwrap();
    assert!(rt.demonitor(mref));
    rt.stop(target);
    rt.join(target);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rt.get_messages(watcher).is_empty());
    assert_eq!(rt.link_count(), 0);
    assert_eq!(rt.exit_hook_count(), 0);
}

#[test]
fn a_dead_watchers_monitors_are_dropped() {
    let rt = Runtime::new();
    let watcher = rt.spawn_fn(|_m| (), 10);
    let targets: Vec<Pid> = (0..100).map(|_| rt.spawn_fn(|_m| (), 10)).collect();
    for &t in &targets {
        rt.monitor(watcher, t).unwrap();
    }
    assert_eq!(rt.link_count(), 100);
    rt.stop(watcher);
    rt.join(watcher);
    assert_eq!(rt.link_count(), 0);
    assert_eq!(rt.exit_hook_count(), 0);
}

#[test]
fn crash_propagates_along_a_chain_of_links() {
    let rt = Runtime::new();
    let chain: Vec<Pid> = (0..50).map(|_| rt.spawn_fn(|_m| (), 10)).collect();
    for w in chain.windows(2) {
        rt.link(w[0], w[1]).unwrap();
    }
    let head = crasher(&rt);
    rt.link(head, chain[0]).unwrap();
    rt.send(head, user("x")).unwrap();
    wait_until("whole chain dead", || {
        chain.iter().all(|&p| !rt.is_alive(p))
    });
    assert_eq!(rt.join(chain[49]).unwrap().reason, ExitReason::Killed);
    wait_until("links cleaned", || rt.link_count() == 0);
}

#[test]
fn monitors_racing_with_exits_deliver_exactly_one_down_each() {
    let rt = Runtime::new();
    let watcher = rt.spawn_observed_handler(1000).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let mut refs = Vec::new();
                for _ in 0..500 {
                    let target = rt.spawn_fn(|_m| Flow::Stop, 10);
                    rt.send(target, user("bye")).unwrap();
                    refs.push(rt.monitor(watcher, target).unwrap());
                }
                refs
            })
        })
        .collect();
    let mut refs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    refs.sort_unstable();
    wait_until("2000 DOWNs", || rt.get_messages(watcher).len() >= 2000);
    std::thread::sleep(Duration::from_millis(50));
    let mut got: Vec<u64> = rt
        .get_messages(watcher)
        .iter()
        .map(|m| match m.as_system() {
            Some(SystemMessage::Down { monitor, .. }) => *monitor,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, refs, "each monitor reported exactly once");
    assert_eq!(rt.link_count(), 0);
}

#[test]
fn observed_history_is_bounded_to_the_newest_messages() {
    let rt = Runtime::new();
    let obs = rt.spawn_observed_handler(1000).unwrap();
    let n = iris::OBSERVED_HISTORY + 50;
    for i in 0..n {
        rt.send(obs, Message::User(Bytes::from(i.to_string())))
            .unwrap();
    }
    wait_until("all recorded", || {
        rt.get_messages(obs).last() == Some(&Message::User(Bytes::from((n - 1).to_string())))
    });
    let got = rt.get_messages(obs);
    assert_eq!(got.len(), iris::OBSERVED_HISTORY);
    assert_eq!(
        got[0],
        Message::User(Bytes::from("50")),
        "oldest dropped first"
    );
    assert!(rt.get_messages(u64::MAX >> 20).is_empty());
}
