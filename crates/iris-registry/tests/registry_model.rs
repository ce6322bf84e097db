//! Random operation sequences against a simple model, and a many-thread stress run.

use iris_registry::{Pid, Registry};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Reg(u8, Pid),
    Unreg(u8),
    RegPath(u8, Pid),
    UnregPath(u8),
    Remove(Pid),
}

fn path(i: u8) -> String {
    format!("/a/{}/{}", i % 3, i)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8, 0u64..4).prop_map(|(n, p)| Op::Reg(n, p)),
        (0u8..8).prop_map(Op::Unreg),
        (0u8..8, 0u64..4).prop_map(|(n, p)| Op::RegPath(n, p)),
        (0u8..8).prop_map(Op::UnregPath),
        (0u64..4).prop_map(Op::Remove),
    ]
}

proptest! {
    #[test]
    fn matches_model(ops in proptest::collection::vec(op(), 0..64)) {
        let r = Registry::new();
        let mut names: HashMap<String, Pid> = HashMap::new();
        let mut paths: BTreeMap<String, Pid> = BTreeMap::new();
        for o in ops {
            match o {
                Op::Reg(n, p) => {
                    let k = format!("n{n}");
                    let ok = !names.contains_key(&k);
                    if ok { names.insert(k.clone(), p); }
                    prop_assert_eq!(r.register(&k, p).is_ok(), ok);
                }
                Op::Unreg(n) => {
                    let k = format!("n{n}");
                    prop_assert_eq!(r.unregister(&k), names.remove(&k));
                }
                Op::RegPath(n, p) => {
                    let k = path(n);
                    let ok = !paths.contains_key(&k);
                    if ok { paths.insert(k.clone(), p); }
                    prop_assert_eq!(r.register_path(&k, p).is_ok(), ok);
                }
                Op::UnregPath(n) => {
                    prop_assert_eq!(r.unregister_path(&path(n)), paths.remove(&path(n)));
                }
                Op::Remove(p) => {
                    let got = r.remove_pid(p);
                    let mut want: Vec<String> = names.iter().filter(|e| *e.1 == p).map(|e| e.0.clone()).collect();
                    want.sort();
                    names.retain(|_, v| *v != p);
                    prop_assert_eq!(got.names, want);
                    let wantp: Vec<String> = paths.iter().filter(|e| *e.1 == p).map(|e| e.0.clone()).collect();
                    paths.retain(|_, v| *v != p);
                    prop_assert_eq!(got.paths, wantp);
                }
            }
            prop_assert_eq!(r.len(), names.len() + paths.len());
            let all: Vec<(String, Pid)> = paths.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(r.list_children("/").unwrap(), all);
        }
    }
}

#[test]
fn threads_stay_consistent() {
    let r = Arc::new(Registry::new());
    let hs: Vec<_> = (0..8u64)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..5_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let pid = x % 6;
                    let n = format!("n{}", (x >> 8) % 10);
                    match (x >> 16) % 5 {
                        0 => drop(r.register(&n, pid)),
                        1 => drop(r.unregister(&n)),
                        2 => drop(r.register_path(&format!("/s/{}", (x >> 8) % 10), pid)),
                        3 => drop(r.remove_pid(pid)),
                        _ => drop(r.whereis(&n)),
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let mut count = 0;
    for pid in 0..6 {
        for n in r.names_of(pid) {
            assert_eq!(r.whereis(&n), Some(pid));
            count += 1;
        }
    }
    for (p, pid) in r.list_children("/").unwrap() {
        assert_eq!(r.whereis_path(&p), Some(pid));
        count += 1;
    }
    assert_eq!(r.len(), count);
    for pid in 0..6 {
        r.remove_pid(pid);
    }
    assert!(r.is_empty());
}
