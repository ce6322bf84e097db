//! Single-thread behaviour of every operation.

use iris_registry::{Registry, RegistryError};

#[test]
fn empty_name_and_taken_path() {
    let r = Registry::new();
    assert_eq!(r.register("", 1), Err(RegistryError::EmptyName));
    r.register_path("/a/b", 1).unwrap();
    assert_eq!(
        r.register_path("/a/b", 2),
        Err(RegistryError::NameTaken {
            name: "/a/b".into(),
            owner: 1
        })
    );
    r.register_path_checked("/a/b", 2, |p| p != 1).unwrap();
    assert_eq!(r.whereis_path("/a/b"), Some(2));
    assert_eq!(r.unregister_path("/a/b"), Some(2));
    assert_eq!(r.unregister_path("/a/b"), None);
    assert!(r.is_empty());
}

#[test]
fn remove_pid_removes_only_its_entries() {
    let r = Registry::new();
    r.register("x", 1).unwrap();
    r.register("y", 1).unwrap();
    r.register("z", 2).unwrap();
    r.register_path("/p/1", 1).unwrap();
    r.register_path("/p/2", 2).unwrap();
    let removed = r.remove_pid(1);
    assert_eq!(removed.names, vec!["x".to_string(), "y".to_string()]);
    assert_eq!(removed.paths, vec!["/p/1".to_string()]);
    assert_eq!(r.whereis("z"), Some(2));
    assert_eq!(r.whereis("x"), None);
    assert_eq!(
        r.list_children("/p").unwrap(),
        vec![("/p/2".to_string(), 2)]
    );
    assert_eq!(r.len(), 2);
    assert_eq!(r.remove_pid(1), Default::default());
}
