//! Links (bidirectional exit signals) and monitors (one-way `DOWN` notifications), over the
//! tables of `iris-supervisor`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iris_supervisor::{ExitInfo, LinkAction, LinkTable, MonitorTable};

use crate::actor::{Actor, Pid};
use crate::error::ActorError;
use crate::message::{Message, SystemMessage};
use crate::runtime::{Inner, Runtime};

/// Link and monitor bookkeeping. Only actors flagged `linked` (links, watchers) or
/// `monitored` (targets) touch it when they exit.
#[derive(Default)]
pub(crate) struct LinkState {
    links: LinkTable,
    monitors: MonitorTable,
}

fn deliver_system(inner: &Arc<Inner>, to: Pid, msg: SystemMessage) {
    let rt = Runtime {
        inner: inner.clone(),
    };
    // A recipient that is gone simply misses the signal.
    let _ = rt.send(to, Message::system(msg));
}

fn deliver_down(inner: &Arc<Inner>, monitor: u64, from: Pid, watcher: Pid, info: &ExitInfo) {
    let down = SystemMessage::Down {
        monitor,
        from,
        target: watcher,
        info: info.clone(),
    };
    deliver_system(inner, watcher, down);
}

/// Exit-time work for links and monitors (called by `finish`).
pub(crate) fn on_exit(inner: &Arc<Inner>, actor: &Actor, info: &ExitInfo) {
    let pid = actor.pid;
    let state = &inner.links;
    if actor.monitored.load(Ordering::SeqCst) {
        for (monitor, watcher) in state.monitors.on_exit(pid) {
            deliver_down(inner, monitor, pid, watcher, info);
        }
    }
    if actor.linked.load(Ordering::SeqCst) {
        for action in state.links.on_exit(pid, info) {
            match action {
                LinkAction::Deliver { to, from, info } => {
                    let exit = SystemMessage::Exit {
                        from,
                        target: to,
                        info,
                    };
                    deliver_system(inner, to, exit);
                }
                LinkAction::Kill { pid, info } => {
                    crate::runtime::kill(inner, pid, info);
                }
            }
        }
        // Monitors this actor held as a watcher die with it.
        state.monitors.remove_watcher(pid);
    }
}

impl Runtime {
    fn live(&self, pid: Pid) -> Result<Arc<Actor>, ActorError> {
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
        let (x, y) = (self.live(a)?, self.live(b)?);
        if a == b {
            return Ok(());
        }
        // Flags first: an exit that starts later sees them; one that started earlier has
        // closed its mailbox, which the re-check below notices.
        x.linked.store(true, Ordering::SeqCst);
        y.linked.store(true, Ordering::SeqCst);
        self.inner.links.links.link(a, b);
        if !x.is_alive() || !y.is_alive() {
            self.inner.links.links.unlink(a, b);
            let dead = if x.is_alive() { b } else { a };
            return Err(ActorError::NoProcess(dead));
        }
        Ok(())
    }

    /// Removes a link; `true` if there was one.
    pub fn unlink(&self, a: Pid, b: Pid) -> bool {
        self.inner.links.links.unlink(a, b)
    }

    /// Makes `pid` receive linked actors' exits as `EXIT` system messages instead of dying.
    pub fn trap_exit(&self, pid: Pid, trap: bool) -> Result<(), ActorError> {
        let actor = self.live(pid)?;
        actor.linked.store(true, Ordering::SeqCst);
        self.inner.links.links.set_trap_exit(pid, trap);
        Ok(())
    }

    /// `true` if `pid` traps exits.
    pub fn traps_exit(&self, pid: Pid) -> bool {
        self.inner.links.links.traps_exit(pid)
    }

    /// Monitors `target` for `watcher`: when `target` exits, `watcher` receives a `DOWN`
    /// system message with the reason (at once, with reason `noproc`, if `target` is already
    /// gone). Returns the monitor reference.
    pub fn monitor(&self, watcher: Pid, target: Pid) -> Result<u64, ActorError> {
        let w = self.live(watcher)?;
        w.linked.store(true, Ordering::SeqCst);
        let target_actor = self.inner.table.get(target);
        if let Some(t) = &target_actor {
            t.monitored.store(true, Ordering::SeqCst);
        }
        let monitors = &self.inner.links.monitors;
        let mref = monitors.monitor(watcher, target);
        // A target that is gone, or whose exit began before the flag was set, may never
        // report through the table: an exit hook answers at once (gone: `noproc` or the
        // remembered exit) or when its exit runs, unless the table already delivered.
        if !target_actor.is_some_and(|t| t.is_alive()) {
            let weak = Arc::downgrade(&self.inner);
            self.on_exit(target, move |from, info| {
                if let Some(inner) = weak.upgrade()
                    && inner.links.monitors.demonitor(mref)
                {
                    deliver_down(&inner, mref, from, watcher, info);
                }
            });
        }
        Ok(mref)
    }

    /// Removes a monitor; `true` if it had not fired yet.
    pub fn demonitor(&self, monitor: u64) -> bool {
        self.inner.links.monitors.demonitor(monitor)
    }

    /// Links and monitors currently registered (for leak checks).
    pub fn link_count(&self) -> usize {
        self.inner.links.links.len() + self.inner.links.monitors.len()
    }
}
