//! Names and paths through the runtime: registration rules, automatic removal at exit,
//! concurrent use.

mod common;

use common::{user, wait_until};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iris::prelude::*;
use iris::{ActorError, RegistryError, SendError};

#[test]
fn register_whereis_send_named_unregister() {
    let rt = Runtime::new();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let pid = rt.spawn_fn(
        move |_m| {
            g.fetch_add(1, Ordering::SeqCst);
        },
        10,
    );
    rt.register("auth_worker", pid).unwrap();
    assert_eq!(rt.whereis("auth_worker"), Some(pid));
    assert_eq!(rt.resolve("auth_worker"), Some(pid));
    rt.send_named("auth_worker", user("login")).unwrap();
    wait_until("delivered by name", || got.load(Ordering::SeqCst) == 1);
    assert!(matches!(
        rt.send_named("nobody", user("x")),
        Err(SendError::UnknownName(n, _)) if n == "nobody"
    ));
    // A live owner keeps its name.
    let other = rt.spawn_fn(|_m| (), 10);
    assert!(matches!(
        rt.register("auth_worker", other),
        Err(ActorError::Registry(RegistryError::NameTaken { owner, .. })) if owner == pid
    ));
    assert!(matches!(
        rt.register("", other),
        Err(ActorError::Registry(RegistryError::EmptyName))
    ));
    assert_eq!(rt.unregister("auth_worker"), Some(pid));
    assert_eq!(rt.whereis("auth_worker"), None);
    rt.register("auth_worker", other).unwrap();
    assert_eq!(rt.whereis("auth_worker"), Some(other));
}

#[test]
fn dead_actors_lose_their_names_and_paths() {
    let rt = Runtime::new();
    let pid = rt.spawn_fn(|_m| Flow::Stop, 10);
    rt.register("short_lived", pid).unwrap();
    rt.register_path("/svc/tmp/one", pid).unwrap();
    rt.send(pid, user("bye")).unwrap();
    rt.join(pid);
    assert_eq!(rt.whereis("short_lived"), None);
    assert_eq!(rt.whereis_path("/svc/tmp/one"), None);
    assert_eq!(rt.registry_len(), 0);
    // Registering a dead PID is refused.
    assert!(matches!(
        rt.register("ghost", pid),
        Err(ActorError::NoProcess(p)) if p == pid
    ));
    // The name is free for a new actor.
    let next = rt.spawn_fn(|_m| (), 10);
    rt.register("short_lived", next).unwrap();
}

#[test]
fn paths_are_validated_listed_sorted_and_direct() {
    let rt = Runtime::new();
    let a = rt.spawn_fn(|_m| (), 10);
    let b = rt.spawn_fn(|_m| (), 10);
    let c = rt.spawn_fn(|_m| (), 10);
    rt.register_path("/system/service/one", a).unwrap();
    rt.register_path("/system/service/two", b).unwrap();
    rt.register_path("/system/other", c).unwrap();
    assert_eq!(rt.whereis_path("/system/service/one"), Some(a));
    assert_eq!(
        rt.list_children("/system/service").unwrap(),
        vec![
            ("/system/service/one".to_owned(), a),
            ("/system/service/two".to_owned(), b)
        ]
    );
    assert_eq!(
        rt.list_children_direct("/system").unwrap(),
        vec![("/system/other".to_owned(), c)]
    );
    assert_eq!(rt.list_children("/system").unwrap().len(), 3);
    assert!(
        rt.list_children("/sys").unwrap().is_empty(),
        "segments, not prefixes"
    );
    for bad in ["", "no/slash", "/trailing/", "//double", "/ /blank"] {
        assert!(
            matches!(
                rt.register_path(bad, a),
                Err(ActorError::Registry(RegistryError::InvalidPath { .. }))
            ),
            "{bad:?} accepted"
        );
    }
    assert!(rt.list_children("bad").is_err());
    assert_eq!(rt.unregister_path("/system/other"), Some(c));
    assert_eq!(rt.whereis_path("/system/other"), None);
}

#[test]
fn concurrent_register_and_whereis_stay_consistent() {
    let rt = Runtime::new();
    let pids: Vec<Pid> = (0..16).map(|_| rt.spawn_fn(|_m| (), 10)).collect();
    let winners = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (rt, pids, winners) = (rt.clone(), pids.clone(), winners.clone());
            std::thread::spawn(move || {
                for round in 0..200 {
                    let name = format!("svc-{round}");
                    if rt.register(&name, pids[t]).is_ok() {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(owner) = rt.whereis(&name) {
                        assert!(pids.contains(&owner));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        winners.load(Ordering::SeqCst),
        200,
        "exactly one winner per name"
    );
    for &p in &pids {
        rt.stop(p);
        rt.join(p);
    }
    assert_eq!(rt.registry_len(), 0, "names of dead actors are gone");
}

#[test]
fn ten_thousand_register_and_exit_cycles_leave_nothing_behind() {
    let rt = Runtime::new();
    for i in 0..10_000 {
        let pid = rt.spawn_fn(|_m| Flow::Stop, 10);
        rt.register(&format!("n{}", i % 7), pid).ok();
        rt.register_path(&format!("/cycle/{}", i % 5), pid).ok();
        rt.stop(pid);
    }
    wait_until("all exited", || rt.actor_count() == 0);
    assert_eq!(rt.registry_len(), 0);
}
