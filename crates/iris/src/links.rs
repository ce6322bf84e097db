//! Links (bidirectional, exit signals) and monitors (one-way `DOWN` notifications).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use iris_supervisor::{ExitInfo, ExitReason};

use crate::actor::{Pid, lock};
use crate::error::ActorError;
use crate::message::{Message, SystemMessage};
use crate::runtime::{Inner, Runtime};

struct Monitor {
    watcher: Pid,
    target: Pid,
    hook: Option<u64>,
}

/// Link and monitor bookkeeping. Only actors flagged `linked` touch it when they exit.
#[derive(Default)]
pub(crate) struct LinkState {
    links: Mutex<HashMap<Pid, Vec<Pid>>>,
    monitors: Mutex<HashMap<u64, Monitor>>,
    by_watcher: Mutex<HashMap<Pid, Vec<u64>>>,
    next_ref: AtomicU64,
}

impl LinkState {
    fn add_link(&self, a: Pid, b: Pid) {
        let mut links = lock(&self.links);
        for (x, y) in [(a, b), (b, a)] {
            let peers = links.entry(x).or_default();
            if !peers.contains(&y) {
                peers.push(y);
            }
        }
    }

    fn remove_link(&self, a: Pid, b: Pid) -> bool {
        let mut links = lock(&self.links);
        let mut removed = false;
        for (x, y) in [(a, b), (b, a)] {
            if let Some(peers) = links.get_mut(&x) {
                let before = peers.len();
                peers.retain(|&p| p != y);
                removed |= peers.len() < before;
                if peers.is_empty() {
                    links.remove(&x);
                }
            }
        }
        removed
    }

    /// Removes every link of an exiting actor and returns its peers.
    fn take_links(&self, pid: Pid) -> Vec<Pid> {
        let mut links = lock(&self.links);
        let peers = links.remove(&pid).unwrap_or_default();
        for p in &peers {
            if let Some(list) = links.get_mut(p) {
                list.retain(|&x| x != pid);
                if list.is_empty() {
                    links.remove(p);
                }
            }
        }
        peers
    }

    /// Links and monitors currently registered (for leak checks).
    pub(crate) fn len(&self) -> usize {
        lock(&self.links).values().map(Vec::len).sum::<usize>() + lock(&self.monitors).len()
    }
}

fn deliver_system(inner: &Arc<Inner>, to: Pid, msg: SystemMessage) {
    let rt = Runtime {
        inner: inner.clone(),
    };
    // A watcher that is gone simply misses the signal.
    let _ = rt.send(to, Message::System(msg));
}

/// Exit-time work for links and monitors held by `pid` (called by `finish` for actors
/// flagged `linked`).
pub(crate) fn on_exit(inner: &Arc<Inner>, pid: Pid, info: &ExitInfo) {
    let state = &inner.links;
    for peer in state.take_links(pid) {
        let Some(actor) = inner.table.get(peer) else {
            continue;
        };
        if actor.traps_exit.load(Ordering::SeqCst) {
            deliver_system(
                inner,
                peer,
                SystemMessage::Exit {
                    from: pid,
                    target: peer,
                    info: info.clone(),
                },
            );
        } else if !info.reason.is_normal() {
            let why = format!("linked to pid {pid}, which exited with {}", info.reason);
            crate::runtime::kill(
                inner,
                peer,
                ExitInfo::with_metadata(ExitReason::Killed, why),
            );
        }
    }
    // Monitors this actor held as a watcher die with it.
    let refs = lock(&state.by_watcher).remove(&pid).unwrap_or_default();
    for r in refs {
        if let Some(m) = lock(&state.monitors).remove(&r)
            && let Some(hook) = m.hook
        {
            inner.hooks.remove(m.target, hook);
        }
    }
}

impl Runtime {
    fn live(&self, pid: Pid) -> Result<Arc<crate::actor::Actor>, ActorError> {
        self.inner
            .table
            .get(pid)
            .filter(|a| a.is_alive())
            .ok_or(ActorError::NoProcess(pid))
    }

    /// Links two actors: when one exits abnormally the other is killed (`Killed`, the
    /// metadata names the peer) unless it traps exits, in which case it receives an `EXIT`
    /// system message (also for normal exits).
    pub fn link(&self, a: Pid, b: Pid) -> Result<(), ActorError> {
        if a == b {
            return self.live(a).map(drop);
        }
        let (x, y) = (self.live(a)?, self.live(b)?);
        x.linked.store(true, Ordering::SeqCst);
        y.linked.store(true, Ordering::SeqCst);
        self.inner.links.add_link(a, b);
        // An exit that began before the flags were set could not see this link.
        if !x.is_alive() || !y.is_alive() {
            self.inner.links.remove_link(a, b);
            let dead = if x.is_alive() { b } else { a };
            return Err(ActorError::NoProcess(dead));
        }
        Ok(())
    }

    /// Removes a link; `true` if there was one.
    pub fn unlink(&self, a: Pid, b: Pid) -> bool {
        self.inner.links.remove_link(a, b)
    }

    /// Makes `pid` receive linked actors' exits as `EXIT` system messages instead of dying.
    pub fn trap_exit(&self, pid: Pid, trap: bool) -> Result<(), ActorError> {
        self.live(pid)?.traps_exit.store(trap, Ordering::SeqCst);
        Ok(())
    }

    /// `true` if `pid` traps exits.
    pub fn traps_exit(&self, pid: Pid) -> bool {
        self.inner
            .table
            .get(pid)
            .is_some_and(|a| a.traps_exit.load(Ordering::SeqCst))
    }

    /// Monitors `target` for `watcher`: when `target` exits, `watcher` receives a `DOWN`
    /// system message with the reason (at once, with reason `noproc`, if `target` is already
    /// gone). Returns the monitor reference.
    pub fn monitor(&self, watcher: Pid, target: Pid) -> Result<u64, ActorError> {
        let w = self.live(watcher)?;
        w.linked.store(true, Ordering::SeqCst);
        let state = &self.inner.links;
        let mref = state.next_ref.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&state.monitors).insert(
            mref,
            Monitor {
                watcher,
                target,
                hook: None,
            },
        );
        lock(&state.by_watcher)
            .entry(watcher)
            .or_default()
            .push(mref);
        let weak = Arc::downgrade(&self.inner);
        let hook = self.on_exit(target, move |from, info| {
            let Some(inner) = weak.upgrade() else { return };
            if lock(&inner.links.monitors).remove(&mref).is_none() {
                return; // demonitored meanwhile
            }
            {
                let mut by_watcher = lock(&inner.links.by_watcher);
                if let Some(list) = by_watcher.get_mut(&watcher) {
                    list.retain(|&r| r != mref);
                    if list.is_empty() {
                        by_watcher.remove(&watcher);
                    }
                }
            }
            let down = SystemMessage::Down {
                monitor: mref,
                from,
                target: watcher,
                info: info.clone(),
            };
            deliver_system(&inner, watcher, down);
        });
        if let Some(m) = lock(&state.monitors).get_mut(&mref) {
            m.hook = hook;
        }
        if !w.is_alive() {
            self.demonitor(mref);
            return Err(ActorError::NoProcess(watcher));
        }
        Ok(mref)
    }

    /// Removes a monitor; `true` if it had not fired yet.
    pub fn demonitor(&self, monitor: u64) -> bool {
        let state = &self.inner.links;
        let Some(m) = lock(&state.monitors).remove(&monitor) else {
            return false;
        };
        {
            let mut by_watcher = lock(&state.by_watcher);
            if let Some(list) = by_watcher.get_mut(&m.watcher) {
                list.retain(|&r| r != monitor);
                if list.is_empty() {
                    by_watcher.remove(&m.watcher);
                }
            }
        }
        if let Some(hook) = m.hook {
            self.inner.hooks.remove(m.target, hook);
        }
        true
    }

    /// Links and monitors currently registered (for leak checks).
    pub fn link_count(&self) -> usize {
        self.inner.links.len()
    }
}
