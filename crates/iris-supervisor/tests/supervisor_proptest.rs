//! Random exit sequences under each strategy: never two live pids for one child, and never
//! more than `max_restarts` restarts within any window.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iris_supervisor::{
    ChildId, Decision, ExitInfo, ExitReason, RestartPolicy, Strategy as SupStrategy, Supervisor,
    SupervisorSpec,
};
use proptest::prelude::*;

const WITHIN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
struct Event {
    child: usize,
    reason: u8,
    advance_ms: u64,
    // Some runtimes restart lazily: the restart may be applied only at the next event.
    defer_restart: bool,
}

fn event() -> impl Strategy<Value = Event> {
    (0usize..6, 0u8..4, 0u64..300, any::<bool>()).prop_map(|(child, reason, advance_ms, defer)| {
        Event {
            child,
            reason,
            advance_ms,
            defer_restart: defer,
        }
    })
}

fn reason(r: u8) -> ExitReason {
    match r {
        0 => ExitReason::Normal,
        1 => ExitReason::Crash,
        2 => ExitReason::Panic,
        _ => ExitReason::Killed,
    }
}

fn run(strategy: SupStrategy, policies: &[RestartPolicy], max_restarts: u32, events: &[Event]) {
    let mut sup = Supervisor::new(SupervisorSpec {
        strategy,
        max_restarts,
        within: WITHIN,
    });
    let mut live: HashMap<u64, ChildId> = HashMap::new();
    let mut next_pid = 1u64;
    for (i, &p) in policies.iter().enumerate() {
        sup.add_child(ChildId(i as u64), next_pid, p).unwrap();
        live.insert(next_pid, ChildId(i as u64));
        next_pid += 1;
    }
    let start = Instant::now();
    let mut now = start;
    let mut restart_times: Vec<Instant> = Vec::new();
    let mut deferred: Vec<ChildId> = Vec::new();
    for ev in events {
        now += Duration::from_millis(ev.advance_ms);
        if sup.is_escalated() {
            break;
        }
        // Deferred restarts stay pending across exits of other children until an event
        // without deferral applies them.
        if !ev.defer_restart {
            for id in deferred.drain(..) {
                sup.restarted(id, next_pid).unwrap();
                live.insert(next_pid, id);
                next_pid += 1;
            }
        }
        let pids = sup.child_pids();
        if pids.is_empty() {
            continue;
        }
        let pid = pids[ev.child % pids.len()];
        live.remove(&pid);
        match sup.on_child_exit(pid, &ExitInfo::new(reason(ev.reason)), now) {
            Decision::Ignore => {}
            Decision::Restart {
                stop_first,
                restart,
            } => {
                restart_times.push(now);
                for p in stop_first {
                    assert!(live.remove(&p).is_some(), "asked to stop a dead pid {p}");
                    assert_eq!(
                        sup.on_child_exit(p, &ExitInfo::new(ExitReason::Shutdown), now),
                        Decision::Ignore
                    );
                }
                for id in restart {
                    assert!(
                        !live.values().any(|&l| l == id),
                        "restart of {id:?} while it is live"
                    );
                    assert!(!deferred.contains(&id), "{id:?} restarted twice");
                    if ev.defer_restart {
                        deferred.push(id);
                    } else {
                        sup.restarted(id, next_pid).unwrap();
                        live.insert(next_pid, id);
                        next_pid += 1;
                    }
                }
            }
            Decision::Escalate { stop } => {
                for p in stop {
                    assert!(live.remove(&p).is_some());
                    assert_eq!(
                        sup.on_child_exit(p, &ExitInfo::new(ExitReason::Shutdown), now),
                        Decision::Ignore
                    );
                }
                assert!(sup.children().is_empty());
            }
        }
        // One live pid per child, and the runtime's view equals the supervisor's.
        let mut ours: Vec<(ChildId, u64)> = live.iter().map(|(&p, &id)| (id, p)).collect();
        ours.sort();
        let mut theirs = sup.children();
        theirs.sort();
        assert_eq!(ours, theirs);
        let mut ids: Vec<ChildId> = ours.iter().map(|&(id, _)| id).collect();
        ids.dedup();
        assert_eq!(ids.len(), ours.len(), "duplicate live child");
    }
    for (i, &t) in restart_times.iter().enumerate() {
        let in_window = restart_times[i..]
            .iter()
            .take_while(|&&u| u.duration_since(t) < WITHIN)
            .count();
        assert!(
            in_window <= max_restarts as usize,
            "{in_window} restarts within {WITHIN:?}"
        );
    }
}

fn policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        3 => Just(RestartPolicy::Permanent),
        1 => Just(RestartPolicy::Transient),
        1 => Just(RestartPolicy::Temporary),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_for_one(policies in prop::collection::vec(policy(), 1..6), max in 0u32..5,
                   events in prop::collection::vec(event(), 0..60)) {
        run(SupStrategy::OneForOne, &policies, max, &events);
    }

    #[test]
    fn one_for_all(policies in prop::collection::vec(policy(), 1..6), max in 0u32..5,
                   events in prop::collection::vec(event(), 0..60)) {
        run(SupStrategy::OneForAll, &policies, max, &events);
    }

    #[test]
    fn rest_for_one(policies in prop::collection::vec(policy(), 1..6), max in 0u32..5,
                    events in prop::collection::vec(event(), 0..60)) {
        run(SupStrategy::RestForOne, &policies, max, &events);
    }
}
