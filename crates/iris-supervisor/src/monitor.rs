//! One-way monitors.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::Pid;

/// Identifies one monitor; unique within its table and never zero.
pub type MonitorRef = u64;

#[derive(Default)]
struct Inner {
    next: MonitorRef,
    by_ref: HashMap<MonitorRef, (Pid, Pid)>,
    by_target: HashMap<Pid, HashSet<MonitorRef>>,
    by_watcher: HashMap<Pid, HashSet<MonitorRef>>,
}

/// Monitors from watchers to targets, indexed both ways so every operation is O(monitors
/// involved).
#[derive(Default)]
pub struct MonitorTable {
    inner: Mutex<Inner>,
}

impl MonitorTable {
    /// An empty table.
    pub fn new() -> MonitorTable {
        MonitorTable::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `watcher` starts monitoring `target`; returns the new monitor's reference.
    pub fn monitor(&self, watcher: Pid, target: Pid) -> MonitorRef {
        let mut inner = self.lock();
        inner.next += 1;
        let r = inner.next;
        inner.by_ref.insert(r, (watcher, target));
        inner.by_target.entry(target).or_default().insert(r);
        inner.by_watcher.entry(watcher).or_default().insert(r);
        r
    }

    /// Removes a monitor; returns whether it existed.
    pub fn demonitor(&self, r: MonitorRef) -> bool {
        let mut inner = self.lock();
        let Some((watcher, target)) = inner.by_ref.remove(&r) else {
            return false;
        };
        drop_index(&mut inner.by_target, target, r);
        drop_index(&mut inner.by_watcher, watcher, r);
        true
    }

    /// `target` exited: removes the monitors on it and returns `(ref, watcher)` for each, in
    /// ref order, so the runtime can send `DOWN` messages.
    pub fn on_exit(&self, target: Pid) -> Vec<(MonitorRef, Pid)> {
        let mut inner = self.lock();
        let refs = inner.by_target.remove(&target).unwrap_or_default();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some((watcher, _)) = inner.by_ref.remove(&r) {
                drop_index(&mut inner.by_watcher, watcher, r);
                out.push((r, watcher));
            }
        }
        out.sort_unstable();
        out
    }

    /// `watcher` is gone: drops every monitor it held; returns how many.
    pub fn remove_watcher(&self, watcher: Pid) -> usize {
        let mut inner = self.lock();
        let refs = inner.by_watcher.remove(&watcher).unwrap_or_default();
        for &r in &refs {
            if let Some((_, target)) = inner.by_ref.remove(&r) {
                drop_index(&mut inner.by_target, target, r);
            }
        }
        refs.len()
    }

    /// The `(watcher, target)` of a live monitor.
    pub fn get(&self, r: MonitorRef) -> Option<(Pid, Pid)> {
        self.lock().by_ref.get(&r).copied()
    }

    /// How many monitors are live.
    pub fn len(&self) -> usize {
        self.lock().by_ref.len()
    }

    /// Whether no monitor is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes of the internal indexes `(refs, targets, watchers)`, for leak tests.
    pub fn index_sizes(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (
            inner.by_ref.len(),
            inner.by_target.len(),
            inner.by_watcher.len(),
        )
    }
}

fn drop_index(index: &mut HashMap<Pid, HashSet<MonitorRef>>, key: Pid, r: MonitorRef) {
    if let Some(set) = index.get_mut(&key) {
        set.remove(&r);
        if set.is_empty() {
            index.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_demonitor_and_exit() {
        let t = MonitorTable::new();
        let a = t.monitor(1, 9);
        let b = t.monitor(2, 9);
        let c = t.monitor(1, 8);
        assert!(a != 0 && a != b && b != c);
        assert!(t.demonitor(b));
        assert!(!t.demonitor(b));
        assert_eq!(t.on_exit(9), vec![(a, 1)]);
        assert_eq!(t.on_exit(9), vec![]);
        assert_eq!(t.remove_watcher(1), 1);
        assert_eq!(t.get(c), None);
        assert_eq!(t.index_sizes(), (0, 0, 0));
    }
}
