//! Supervisor decisions under each strategy, driven by a simulated runtime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iris_supervisor::{
    ChildId, Decision, ExitInfo, ExitReason, RestartPolicy, Strategy, Supervisor, SupervisorError,
    SupervisorSpec,
};

fn crash() -> ExitInfo {
    ExitInfo::new(ExitReason::Crash)
}

fn sup(strategy: Strategy, n: u64) -> Supervisor {
    let mut s = Supervisor::new(SupervisorSpec::new(strategy));
    for i in 0..n {
        s.add_child(ChildId(i), 100 + i, RestartPolicy::Permanent)
            .unwrap();
    }
    s
}

/// Applies decisions like a runtime would: stop, feed the stop exits back, start new pids.
struct Runtime {
    next_pid: u64,
    live: HashMap<u64, ChildId>,
}

impl Runtime {
    fn new(s: &Supervisor) -> Runtime {
        Runtime {
            next_pid: 1000,
            live: s.children().into_iter().map(|(id, p)| (p, id)).collect(),
        }
    }

    fn exit(&mut self, s: &mut Supervisor, pid: u64, info: &ExitInfo, now: Instant) -> Decision {
        self.live.remove(&pid);
        let d = s.on_child_exit(pid, info, now);
        match &d {
            Decision::Ignore => {}
            Decision::Restart {
                stop_first,
                restart,
            } => {
                for &p in stop_first {
                    assert!(self.live.remove(&p).is_some(), "stopping a dead pid");
                    let again = s.on_child_exit(p, &ExitInfo::new(ExitReason::Shutdown), now);
                    assert_eq!(again, Decision::Ignore);
                }
                for &id in restart {
                    self.next_pid += 1;
                    s.restarted(id, self.next_pid).unwrap();
                    self.live.insert(self.next_pid, id);
                }
            }
            Decision::Escalate { stop } => {
                for &p in stop {
                    self.live.remove(&p);
                    assert_eq!(
                        s.on_child_exit(p, &ExitInfo::new(ExitReason::Shutdown), now),
                        Decision::Ignore
                    );
                }
            }
        }
        self.check(s);
        d
    }

    fn check(&self, s: &Supervisor) {
        let mut ids: Vec<ChildId> = self.live.values().copied().collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "two live pids for one child");
        let mut from_sup: Vec<(ChildId, u64)> = s.children();
        from_sup.sort();
        let mut from_rt: Vec<(ChildId, u64)> = self.live.iter().map(|(&p, &id)| (id, p)).collect();
        from_rt.sort();
        assert_eq!(from_sup, from_rt);
    }
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let mut s = sup(Strategy::OneForOne, 3);
    let d = s.on_child_exit(101, &crash(), Instant::now());
    assert_eq!(
        d,
        Decision::Restart {
            stop_first: vec![],
            restart: vec![ChildId(1)]
        }
    );
    assert_eq!(s.pending_restarts(), vec![ChildId(1)]);
    s.restarted(ChildId(1), 201).unwrap();
    assert_eq!(s.child_pids(), vec![100, 201, 102]);
}

#[test]
fn one_for_all_stops_survivors_first_and_never_duplicates() {
    let mut s = sup(Strategy::OneForAll, 4);
    let mut rt = Runtime::new(&s);
    let t = Instant::now();
    let d = rt.exit(&mut s, 102, &crash(), t);
    assert_eq!(
        d,
        Decision::Restart {
            stop_first: vec![103, 101, 100],
            restart: (0..4).map(ChildId).collect()
        }
    );
    assert_eq!(s.len(), 4);
    assert_eq!(s.children().len(), 4);
    // Old pids exiting late are ignored.
    assert_eq!(s.on_child_exit(100, &crash(), t), Decision::Ignore);
}

#[test]
fn one_for_all_with_a_pending_child_does_not_restart_it_twice() {
    let mut s = sup(Strategy::OneForAll, 3);
    let t = Instant::now();
    let first = s.on_child_exit(100, &crash(), t);
    assert!(matches!(first, Decision::Restart { .. }));
    s.restarted(ChildId(1), 201).unwrap();
    // Child 0 and 2 are still pending when the new child 1 crashes.
    let second = s.on_child_exit(201, &crash(), t);
    assert_eq!(
        second,
        Decision::Restart {
            stop_first: vec![],
            restart: vec![ChildId(1)]
        }
    );
}

#[test]
fn rest_for_one_restarts_only_later_siblings() {
    let mut s = sup(Strategy::RestForOne, 4);
    let mut rt = Runtime::new(&s);
    let d = rt.exit(&mut s, 101, &crash(), Instant::now());
    assert_eq!(
        d,
        Decision::Restart {
            stop_first: vec![103, 102],
            restart: vec![ChildId(1), ChildId(2), ChildId(3)]
        }
    );
    assert_eq!(s.children()[0], (ChildId(0), 100));
}

#[test]
fn fourth_restart_within_window_escalates() {
    let mut s = sup(Strategy::OneForOne, 2);
    let mut rt = Runtime::new(&s);
    let t = Instant::now();
    for k in 0..3 {
        let pid = s.children()[0].1;
        let d = rt.exit(&mut s, pid, &crash(), t + Duration::from_secs(k));
        assert!(matches!(d, Decision::Restart { .. }));
    }
    let pid = s.children()[0].1;
    let d = rt.exit(&mut s, pid, &crash(), t + Duration::from_secs(4));
    assert_eq!(d, Decision::Escalate { stop: vec![101] });
    assert!(s.is_escalated());
    assert!(s.children().is_empty());
}

#[test]
fn restarts_spaced_beyond_the_window_do_not_escalate() {
    let mut s = sup(Strategy::OneForAll, 2);
    let mut rt = Runtime::new(&s);
    let t = Instant::now();
    for k in 0..20 {
        let pid = s.children()[1].1;
        let d = rt.exit(&mut s, pid, &crash(), t + Duration::from_secs(2 * k));
        assert!(matches!(d, Decision::Restart { .. }), "restart {k}: {d:?}");
    }
}

#[test]
fn policies() {
    let mut s = Supervisor::new(SupervisorSpec::default());
    s.add_child(ChildId(1), 1, RestartPolicy::Permanent)
        .unwrap();
    s.add_child(ChildId(2), 2, RestartPolicy::Transient)
        .unwrap();
    s.add_child(ChildId(3), 3, RestartPolicy::Temporary)
        .unwrap();
    s.add_child(ChildId(4), 4, RestartPolicy::Transient)
        .unwrap();
    let t = Instant::now();
    let normal = ExitInfo::new(ExitReason::Normal);
    assert!(matches!(
        s.on_child_exit(1, &normal, t),
        Decision::Restart { .. }
    ));
    assert_eq!(s.on_child_exit(2, &normal, t), Decision::Ignore);
    assert_eq!(s.on_child_exit(3, &crash(), t), Decision::Ignore);
    assert!(matches!(
        s.on_child_exit(4, &crash(), t),
        Decision::Restart { .. }
    ));
    assert_eq!(s.len(), 2);
    assert!(s.child_spec(ChildId(2)).is_none());
    assert!(s.child_spec(ChildId(3)).is_none());
}

#[test]
fn invalid_operations_are_errors() {
    let mut s = sup(Strategy::OneForOne, 2);
    assert_eq!(
        s.add_child(ChildId(0), 5, RestartPolicy::Permanent),
        Err(SupervisorError::DuplicateChild(ChildId(0)))
    );
    assert_eq!(
        s.add_child(ChildId(9), 100, RestartPolicy::Permanent),
        Err(SupervisorError::DuplicatePid(100))
    );
    assert_eq!(
        s.restarted(ChildId(0), 7),
        Err(SupervisorError::NotRestarting(ChildId(0)))
    );
    assert_eq!(
        s.remove_child(ChildId(9)),
        Err(SupervisorError::UnknownChild(ChildId(9)))
    );
    let (spec, pid) = s.remove_child(ChildId(0)).unwrap();
    assert_eq!((spec.id, pid), (ChildId(0), Some(100)));
    assert_eq!(
        s.on_child_exit(100, &crash(), Instant::now()),
        Decision::Ignore
    );
    assert!(
        !SupervisorError::UnknownChild(ChildId(3))
            .to_string()
            .is_empty()
    );
}
