//! Supervisors through the runtime: strategies, intensity, escalation, factories, paths.

mod common;

use common::{user, wait_until};

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris::prelude::*;
use iris::{ChildOptions, Factory, RestartPolicy, Strategy, SupervisorSpec};

/// A worker that crashes on "crash" and counts its starts in `starts`.
fn worker(rt: &Runtime, starts: &Arc<AtomicUsize>) -> Pid {
    starts.fetch_add(1, Ordering::SeqCst);
    rt.spawn_fn(
        |m| {
            if m == Message::User(Bytes::from_static(b"crash")) {
                Err("crashed on request")
            } else {
                Ok(())
            }
        },
        10,
    )
}

fn factory(rt: &Runtime, starts: &Arc<AtomicUsize>) -> Factory {
    let (rt, starts) = (rt.clone(), starts.clone());
    Arc::new(move || Ok(worker(&rt, &starts)))
}

fn opts(f: Factory, strategy: Strategy) -> ChildOptions {
    ChildOptions {
        strategy,
        policy: RestartPolicy::Permanent,
        factory: Some(f),
    }
}

#[test]
fn one_for_one_restarts_only_the_failed_child_and_factory_runs_only_to_restart() {
    let rt = Runtime::new();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let a = worker(&rt, &starts);
    let b = worker(&rt, &starts);
    rt.supervise(sup, a, opts(factory(&rt, &starts), Strategy::OneForOne))
        .unwrap();
    rt.supervise(sup, b, opts(factory(&rt, &starts), Strategy::OneForOne))
        .unwrap();
    assert_eq!(
        starts.load(Ordering::SeqCst),
        2,
        "no factory call at registration"
    );
    rt.send(a, user("crash")).unwrap();
    wait_until("restart", || {
        let kids = rt.supervisor_children(sup);
        kids.len() == 2 && !kids.contains(&a)
    });
    assert!(rt.is_alive(b), "the sibling was untouched");
    assert_eq!(starts.load(Ordering::SeqCst), 3);
}

#[test]
fn one_for_all_stops_survivors_first_and_never_leaves_duplicates() {
    let rt = Runtime::new();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let kids: Vec<Pid> = (0..4).map(|_| worker(&rt, &starts)).collect();
    for &k in &kids {
        rt.supervise(sup, k, opts(factory(&rt, &starts), Strategy::OneForAll))
            .unwrap();
    }
    rt.send(kids[1], user("crash")).unwrap();
    wait_until("all four replaced", || {
        let now = rt.supervisor_children(sup);
        now.len() == 4 && now.iter().all(|p| !kids.contains(p))
    });
    // Every old pid is dead: no duplicate of any child is alive.
    assert!(kids.iter().all(|&p| !rt.is_alive(p)));
    let now = rt.supervisor_children(sup);
    assert_eq!(now.iter().collect::<HashSet<_>>().len(), 4);
    assert!(now.iter().all(|&p| rt.is_alive(p)));
    assert_eq!(starts.load(Ordering::SeqCst), 8);
}

#[test]
fn rest_for_one_restarts_only_later_siblings() {
    let rt = Runtime::new();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let kids: Vec<Pid> = (0..4).map(|_| worker(&rt, &starts)).collect();
    for &k in &kids {
        rt.supervise(sup, k, opts(factory(&rt, &starts), Strategy::RestForOne))
            .unwrap();
    }
    rt.send(kids[2], user("crash")).unwrap();
    wait_until("2 and 3 replaced", || {
        let now = rt.supervisor_children(sup);
        now.len() == 4 && !now.contains(&kids[2]) && !now.contains(&kids[3])
    });
    let now = rt.supervisor_children(sup);
    assert_eq!(&now[..2], &kids[..2], "earlier siblings kept");
    assert!(rt.is_alive(kids[0]) && rt.is_alive(kids[1]));
    assert!(!rt.is_alive(kids[3]));
}

#[test]
fn a_crash_loop_stops_at_the_intensity_limit_and_escalates_to_the_parent() {
    let rt = Runtime::new();
    let parent = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    let parent_log = rt.spawn_observed_handler(10).unwrap();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    rt.monitor(parent_log, sup).unwrap();
    rt.supervise(parent, sup, ChildOptions::default()).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let first = worker(&rt, &starts);
    rt.supervise(sup, first, opts(factory(&rt, &starts), Strategy::OneForOne))
        .unwrap();
    // Crash whatever is current, over and over.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rt.is_alive(sup) {
        assert!(Instant::now() < deadline, "never escalated");
        if let Some(&p) = rt.supervisor_children(sup).first() {
            let _ = rt.send(p, user("crash"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(rt.join(sup).unwrap().reason, ExitReason::Shutdown);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        4,
        "1 start + 3 restarts, then give up"
    );
    wait_until("parent saw the supervisor go", || {
        rt.get_messages(parent_log).iter().any(|m| {
            matches!(m.as_system(), Some(SystemMessage::Down { info, .. }) if info.reason == ExitReason::Shutdown)
        })
    });
    assert!(
        rt.supervisor_children(parent).is_empty(),
        "watch-only child left the parent"
    );
    assert_eq!(rt.children_count(), 0);
}

#[test]
fn transient_and_temporary_policies() {
    let rt = Runtime::new();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let transient = rt.spawn_fn(|_m| Flow::Stop, 10);
    rt.supervise(
        sup,
        transient,
        ChildOptions {
            policy: RestartPolicy::Transient,
            ..opts(factory(&rt, &starts), Strategy::OneForOne)
        },
    )
    .unwrap();
    rt.send(transient, user("done")).unwrap();
    rt.join(transient);
    let temporary = worker(&rt, &starts);
    rt.supervise(
        sup,
        temporary,
        ChildOptions {
            policy: RestartPolicy::Temporary,
            ..opts(factory(&rt, &starts), Strategy::OneForOne)
        },
    )
    .unwrap();
    rt.send(temporary, user("crash")).unwrap();
    rt.join(temporary);
    wait_until("both gone from the supervisor", || {
        rt.supervisor_children(sup).is_empty()
    });
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(starts.load(Ordering::SeqCst), 1, "neither was restarted");
}

#[test]
fn restarted_child_is_registered_under_its_name_and_path_again() {
    let rt = Runtime::new();
    let starts = Arc::new(AtomicUsize::new(0));
    let pid = worker(&rt, &starts);
    rt.register("payments", pid).unwrap();
    rt.register_path("/svc/payment/processor", pid).unwrap();
    let sup = rt.create_path_supervisor("/svc/payment").unwrap();
    assert_eq!(rt.create_path_supervisor("/svc/payment").unwrap(), sup);
    rt.path_supervise_with_factory(
        "/svc/payment",
        pid,
        factory(&rt, &starts),
        Strategy::OneForOne,
    )
    .unwrap();
    assert_eq!(rt.path_supervisor_children("/svc/payment"), vec![pid]);
    rt.send(pid, user("crash")).unwrap();
    wait_until("restarted and re-registered", || {
        rt.whereis_path("/svc/payment/processor")
            .is_some_and(|p| p != pid && rt.is_alive(p))
    });
    let new = rt.whereis_path("/svc/payment/processor").unwrap();
    assert_eq!(rt.whereis("payments"), Some(new));
    assert_eq!(rt.path_supervisor_children("/svc/payment"), vec![new]);
    assert!(rt.remove_path_supervisor("/svc/payment"));
    assert!(!rt.remove_path_supervisor("/svc/payment"));
    assert!(
        rt.is_alive(new),
        "removing the supervisor leaves children running"
    );
    assert!(rt.path_supervisor_children("/svc/payment").is_empty());
}

#[test]
fn seed_path_supervisor_example() {
    let rt = Runtime::new();
    let pid = rt.spawn_with_path_observed(10, "/svc/test/one").unwrap();
    rt.create_path_supervisor("/svc/test").unwrap();
    rt.path_supervisor_watch("/svc/test", pid).unwrap();
    assert_eq!(rt.path_supervisor_children("/svc/test"), vec![pid]);
    assert!(rt.remove_path_supervisor("/svc/test"));
    assert!(rt.path_supervisor_watch("/nope", pid).is_err());
}

#[test]
fn watch_and_watch_path_use_the_root_supervisor() {
    let rt = Runtime::new();
    let a = rt.spawn_fn(|_m| (), 10);
    let b = rt.spawn_fn(|_m| (), 10);
    rt.register_path("/system/service/one", a).unwrap();
    rt.register_path("/system/service/two", b).unwrap();
    assert_eq!(rt.watch_path("/system/service").unwrap(), vec![a, b]);
    assert_eq!(rt.children_count(), 2);
    assert_eq!(rt.child_pids(), vec![a, b]);
    rt.stop(a);
    wait_until("a left the root supervisor", || rt.child_pids() == vec![b]);
    let c = rt.spawn_fn(|_m| (), 10);
    rt.watch(c, Strategy::OneForOne).unwrap();
    assert_eq!(rt.children_count(), 2);
    let d = rt.spawn_fn(|_m| (), 10);
    let starts = Arc::new(AtomicUsize::new(0));
    rt.supervise_with_factory(
        d,
        factory(&rt, &starts),
        iris::parse_strategy("restartone").unwrap(),
    )
    .unwrap();
    assert_eq!(rt.children_count(), 3);
    assert!(iris::parse_strategy("restartall").is_some());
    assert!(iris::parse_strategy("restforone").is_some());
    assert!(iris::parse_strategy("bogus").is_none());
}

#[test]
fn ten_thousand_crash_restart_cycles_without_growth() {
    let rt = Runtime::new();
    let spec = SupervisorSpec {
        max_restarts: u32::MAX,
        ..SupervisorSpec::default()
    };
    let sup = rt.spawn_supervisor(spec).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let first = worker(&rt, &starts);
    rt.register_path("/churn/worker", first).unwrap();
    rt.supervise(sup, first, opts(factory(&rt, &starts), Strategy::OneForOne))
        .unwrap();
    let baseline_actors = rt.actor_count();
    let baseline_registry = rt.registry_len();
    let seen = Mutex::new(HashSet::new());
    for cycle in 0..10_000usize {
        let current = loop {
            if let Some(p) = rt.whereis_path("/churn/worker").filter(|&p| rt.is_alive(p)) {
                break p;
            }
            std::thread::yield_now();
        };
        assert!(
            seen.lock().unwrap().insert(current),
            "cycle {cycle}: pid reused"
        );
        rt.send(current, user("crash")).unwrap();
        rt.join(current);
    }
    wait_until("last restart", || {
        rt.whereis_path("/churn/worker")
            .is_some_and(|p| rt.is_alive(p))
    });
    assert_eq!(starts.load(Ordering::SeqCst), 10_001);
    assert_eq!(rt.actor_count(), baseline_actors);
    assert_eq!(rt.registry_len(), baseline_registry);
    assert_eq!(rt.supervisor_children(sup).len(), 1);
    assert!(rt.exit_hook_count() <= 3, "hooks do not pile up");
}
