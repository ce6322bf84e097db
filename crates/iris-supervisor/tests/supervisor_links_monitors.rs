//! Link actions, monitor lifecycle and leak checks, and concurrent use of both tables.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use iris_supervisor::{ExitInfo, ExitReason, LinkAction, LinkTable, MonitorTable};

#[test]
fn abnormal_exit_kills_non_trapping_peers_and_notifies_trapping_ones() {
    let links = LinkTable::new();
    links.link(1, 2);
    links.link(3, 1);
    links.set_trap_exit(3, true);
    let info = ExitInfo::with_metadata(ExitReason::Panic, "boom");
    let actions = links.on_exit(1, &info);
    assert_eq!(actions.len(), 2);
    match &actions[0] {
        LinkAction::Kill { pid, info } => {
            assert_eq!(*pid, 2);
            assert_eq!(info.reason, ExitReason::Killed);
            assert_eq!(
                info.metadata.as_deref(),
                Some("linked to 1 which exited: Panic")
            );
        }
        other => panic!("expected a kill, got {other:?}"),
    }
    assert_eq!(
        actions[1],
        LinkAction::Deliver {
            to: 3,
            from: 1,
            info: info.clone()
        }
    );
    assert!(links.links_of(2).is_empty());
    assert!(links.links_of(3).is_empty());
}

#[test]
fn normal_and_shutdown_exits_do_not_kill() {
    for reason in [ExitReason::Normal, ExitReason::Shutdown] {
        let links = LinkTable::new();
        links.link(1, 2);
        links.link(1, 3);
        links.set_trap_exit(2, true);
        let actions = links.on_exit(1, &ExitInfo::new(reason.clone()));
        assert_eq!(
            actions,
            vec![LinkAction::Deliver {
                to: 2,
                from: 1,
                info: ExitInfo::new(reason)
            }]
        );
    }
}

#[test]
fn exit_of_unlinked_pid_does_nothing() {
    let links = LinkTable::new();
    links.link(1, 2);
    assert!(links.unlink(1, 2));
    assert!(
        links
            .on_exit(1, &ExitInfo::new(ExitReason::Crash))
            .is_empty()
    );
    assert!(links.is_empty());
}

#[test]
fn monitor_refs_are_unique_and_nonzero() {
    let m = MonitorTable::new();
    let mut seen = HashSet::new();
    for i in 0..1000 {
        let r = m.monitor(i % 7, i % 11);
        assert_ne!(r, 0);
        assert!(seen.insert(r));
    }
    assert_eq!(m.len(), 1000);
}

#[test]
fn demonitor_and_exit_remove_monitors() {
    let m = MonitorTable::new();
    let a = m.monitor(1, 2);
    let b = m.monitor(3, 2);
    let c = m.monitor(1, 4);
    assert!(m.demonitor(a));
    assert!(!m.demonitor(a));
    assert_eq!(m.on_exit(2), vec![(b, 3)]);
    assert_eq!(m.get(c), Some((1, 4)));
    assert_eq!(m.remove_watcher(1), 1);
    assert!(m.is_empty());
    assert_eq!(m.index_sizes(), (0, 0, 0));
}

#[test]
fn no_growth_after_many_monitor_exit_cycles() {
    let m = MonitorTable::new();
    let links = LinkTable::new();
    for i in 0..10_000u64 {
        let target = i + 1_000_000;
        let r = m.monitor(i % 13, target);
        links.link(i % 13, target);
        assert_eq!(m.on_exit(target), vec![(r, i % 13)]);
        assert_eq!(
            links.on_exit(target, &ExitInfo::new(ExitReason::Normal)),
            vec![]
        );
    }
    assert_eq!(m.len(), 0);
    assert_eq!(m.index_sizes(), (0, 0, 0));
    assert!(links.is_empty());
}

#[test]
fn concurrent_hammering_keeps_tables_consistent() {
    const PIDS: u64 = 64;
    let links = Arc::new(LinkTable::new());
    let monitors = Arc::new(MonitorTable::new());
    let refs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let links = Arc::clone(&links);
            let monitors = Arc::clone(&monitors);
            let refs = Arc::clone(&refs);
            thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut mine = Vec::new();
                for _ in 0..5_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let a = x % PIDS;
                    let b = (x >> 16) % PIDS;
                    match (x >> 32) % 6 {
                        0 | 1 => links.link(a, b),
                        2 => {
                            links.unlink(a, b);
                        }
                        3 => {
                            links.on_exit(a, &ExitInfo::new(ExitReason::Crash));
                            monitors.on_exit(a);
                        }
                        4 => mine.push(monitors.monitor(a, b)),
                        _ => {
                            monitors.remove_watcher(a);
                        }
                    }
                }
                refs.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for a in 0..PIDS {
        for b in links.links_of(a) {
            assert_ne!(a, b);
            assert!(links.links_of(b).contains(&a), "link {a}-{b} not symmetric");
        }
    }
    let refs = refs.lock().unwrap();
    let unique: HashSet<_> = refs.iter().collect();
    assert_eq!(unique.len(), refs.len(), "duplicate monitor refs");
    let live = refs.iter().filter(|&&r| monitors.get(r).is_some()).count();
    assert_eq!(live, monitors.len());
    for a in 0..PIDS {
        monitors.on_exit(a);
        links.remove(a);
    }
    assert_eq!(monitors.index_sizes(), (0, 0, 0));
    assert!(links.is_empty());
}
