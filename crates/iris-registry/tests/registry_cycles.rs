//! Churn and concurrency checks of the registry.

use iris_registry::Registry;
use std::sync::Arc;

#[test]
fn ten_thousand_cycles_leave_nothing() {
    let r = Registry::new();
    for i in 0..10_000u64 {
        r.register(&format!("n{}", i % 7), i).unwrap();
        r.register_path(&format!("/p/{}", i % 5), i).unwrap();
        let removed = r.remove_pid(i);
        assert_eq!((removed.names.len(), removed.paths.len()), (1, 1));
    }
    assert_eq!(r.len(), 0);
}

#[test]
fn one_winner_on_contention() {
    let r = Arc::new(Registry::new());
    let wins: usize = (0..8u64)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || r.register("hot", t).is_ok())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| usize::from(h.join().unwrap()))
        .sum();
    assert_eq!(wins, 1);
    let owner = r.whereis("hot").unwrap();
    assert_eq!(r.names_of(owner), vec!["hot".to_string()]);
}
