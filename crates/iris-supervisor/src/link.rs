//! Bidirectional links and trap-exit flags.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::Pid;
use crate::exit::{ExitInfo, ExitReason};

/// What the runtime must do for one linked peer of an actor that exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Deliver an `EXIT` system message to `to`, which traps exits.
    Deliver {
        /// The peer receiving the message.
        to: Pid,
        /// The actor that exited.
        from: Pid,
        /// Why it exited.
        info: ExitInfo,
    },
    /// Kill `pid` with `info` (reason `Killed`, metadata naming the peer).
    Kill {
        /// The peer to kill.
        pid: Pid,
        /// The exit to kill it with.
        info: ExitInfo,
    },
}

#[derive(Default)]
struct Inner {
    links: HashMap<Pid, HashSet<Pid>>,
    trapping: HashSet<Pid>,
}

/// Symmetric links between actors, plus which actors trap exits.
#[derive(Default)]
pub struct LinkTable {
    inner: Mutex<Inner>,
}

impl LinkTable {
    /// An empty table.
    pub fn new() -> LinkTable {
        LinkTable::default()
    }

    // A panic while holding the lock cannot leave the maps half-updated in a way that matters
    // more than losing the table, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Links `a` and `b` both ways. Linking an actor to itself does nothing.
    pub fn link(&self, a: Pid, b: Pid) {
        if a == b {
            return;
        }
        let mut inner = self.lock();
        inner.links.entry(a).or_default().insert(b);
        inner.links.entry(b).or_default().insert(a);
    }

    /// Removes the link between `a` and `b`; returns whether there was one.
    pub fn unlink(&self, a: Pid, b: Pid) -> bool {
        let mut inner = self.lock();
        let removed = detach(&mut inner.links, a, b);
        detach(&mut inner.links, b, a);
        removed
    }

    /// The peers of `pid`, sorted.
    pub fn links_of(&self, pid: Pid) -> Vec<Pid> {
        let inner = self.lock();
        let mut peers: Vec<Pid> = inner
            .links
            .get(&pid)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        peers.sort_unstable();
        peers
    }

    /// Removes every link of `pid` and its trap-exit flag; returns the former peers, sorted.
    pub fn remove(&self, pid: Pid) -> Vec<Pid> {
        let mut inner = self.lock();
        inner.trapping.remove(&pid);
        remove_links(&mut inner.links, pid)
    }

    /// Sets whether `pid` traps exits (receives `EXIT` messages instead of dying with a peer).
    pub fn set_trap_exit(&self, pid: Pid, trap: bool) {
        let mut inner = self.lock();
        if trap {
            inner.trapping.insert(pid);
        } else {
            inner.trapping.remove(&pid);
        }
    }

    /// Whether `pid` traps exits.
    pub fn traps_exit(&self, pid: Pid) -> bool {
        self.lock().trapping.contains(&pid)
    }

    /// Removes `pid` (its links and trap flag) and says what to do for each former peer, in
    /// pid order: abnormal exits kill the peers that do not trap exits and deliver `EXIT` to
    /// those that do; normal exits only deliver to the trapping ones (Erlang semantics).
    pub fn on_exit(&self, pid: Pid, info: &ExitInfo) -> Vec<LinkAction> {
        let mut inner = self.lock();
        inner.trapping.remove(&pid);
        let peers = remove_links(&mut inner.links, pid);
        peers
            .into_iter()
            .filter_map(|peer| {
                if inner.trapping.contains(&peer) {
                    Some(LinkAction::Deliver {
                        to: peer,
                        from: pid,
                        info: info.clone(),
                    })
                } else if info.reason.is_normal() {
                    None
                } else {
                    Some(LinkAction::Kill {
                        pid: peer,
                        info: ExitInfo::with_metadata(
                            ExitReason::Killed,
                            format!("linked to {pid} which exited: {}", info.reason),
                        ),
                    })
                }
            })
            .collect()
    }

    /// How many actors have at least one link.
    pub fn len(&self) -> usize {
        self.lock().links.len()
    }

    /// Whether no actor has a link.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn detach(links: &mut HashMap<Pid, HashSet<Pid>>, from: Pid, peer: Pid) -> bool {
    let Some(set) = links.get_mut(&from) else {
        return false;
    };
    let removed = set.remove(&peer);
    if set.is_empty() {
        links.remove(&from);
    }
    removed
}

fn remove_links(links: &mut HashMap<Pid, HashSet<Pid>>, pid: Pid) -> Vec<Pid> {
    let mut peers: Vec<Pid> = links.remove(&pid).into_iter().flatten().collect();
    for &peer in &peers {
        detach(links, peer, pid);
    }
    peers.sort_unstable();
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_symmetric_and_removable() {
        let t = LinkTable::new();
        t.link(1, 2);
        t.link(1, 3);
        t.link(1, 1);
        assert_eq!(t.links_of(1), vec![2, 3]);
        assert_eq!(t.links_of(2), vec![1]);
        assert!(t.unlink(2, 1));
        assert!(!t.unlink(2, 1));
        assert_eq!(t.remove(1), vec![3]);
        assert!(t.is_empty());
    }

    #[test]
    fn abnormal_exit_kills_or_delivers() {
        let t = LinkTable::new();
        t.link(1, 2);
        t.link(1, 3);
        t.set_trap_exit(3, true);
        let crash = ExitInfo::new(ExitReason::Crash);
        let actions = t.on_exit(1, &crash);
        assert_eq!(
            actions,
            vec![
                LinkAction::Kill {
                    pid: 2,
                    info: ExitInfo::with_metadata(
                        ExitReason::Killed,
                        "linked to 1 which exited: Crash"
                    )
                },
                LinkAction::Deliver {
                    to: 3,
                    from: 1,
                    info: crash
                },
            ]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn normal_exit_only_delivers_to_trappers() {
        let t = LinkTable::new();
        t.link(1, 2);
        t.link(1, 3);
        t.set_trap_exit(3, true);
        let actions = t.on_exit(1, &ExitInfo::new(ExitReason::Normal));
        assert_eq!(actions.len(), 1);
        assert!(matches!(
            actions[0],
            LinkAction::Deliver { to: 3, from: 1, .. }
        ));
        t.set_trap_exit(3, false);
        assert!(!t.traps_exit(3));
    }
}
