//! Exit hooks: code that runs once when a given actor exits. Links, monitors, supervisors
//! and remote watchers are built on them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use iris_supervisor::{ExitInfo, ExitReason};

use crate::actor::{Padded, Pid, PidMap, SHARDS, lock, shard_of};
use crate::runtime::Inner;

/// A callback run once with the PID and the exit of the actor it watches.
pub(crate) type ExitHook = Box<dyn FnOnce(Pid, &ExitInfo) + Send>;

type Shard = Mutex<PidMap<Vec<(u64, ExitHook)>>>;

pub(crate) struct ExitHooks {
    shards: Box<[Padded<Shard>]>,
    next: AtomicU64,
}

/// The exit given to hooks registered on an actor that is already gone.
pub(crate) fn noproc() -> ExitInfo {
    ExitInfo::new(ExitReason::Other("noproc".to_owned()))
}

impl ExitHooks {
    pub(crate) fn new() -> ExitHooks {
        ExitHooks {
            shards: (0..SHARDS)
                .map(|_| Padded(Mutex::new(PidMap::default())))
                .collect(),
            next: AtomicU64::new(1),
        }
    }

    fn shard(&self, pid: Pid) -> &Shard {
        &self.shards[shard_of(pid)].0
    }

    /// Registers `hook` on `pid`. If the actor is already gone the hook runs at once (with
    /// its remembered exit, or `noproc`) and `None` is returned.
    pub(crate) fn add(&self, inner: &Inner, pid: Pid, hook: ExitHook) -> Option<u64> {
        let mut shard = lock(self.shard(pid));
        // The actor's `hooked` flag is set before the exit check: `finish` records the exit
        // (under the recent-exit lock) and then reads the flag, so either the check below
        // sees the exit or `finish` sees the flag and takes the hooks.
        let actor = inner.table.get(pid);
        if let Some(a) = &actor {
            a.hooked.store(true, Ordering::SeqCst);
        }
        // Checked under the shard lock: `finish` records the exit before it takes the hooks
        // under this lock, so a hook is either taken by `finish` or sees the exit here.
        let gone = match inner.recent_exit(pid) {
            Some(info) => Some(info),
            None if actor.is_none() => Some(noproc()),
            None => None,
        };
        match gone {
            Some(info) => {
                drop(shard);
                hook(pid, &info);
                None
            }
            None => {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                shard.entry(pid).or_default().push((id, hook));
                Some(id)
            }
        }
    }

    /// Removes a hook that has not run; `true` if it was still registered.
    pub(crate) fn remove(&self, pid: Pid, id: u64) -> bool {
        let mut shard = lock(self.shard(pid));
        let Some(list) = shard.get_mut(&pid) else {
            return false;
        };
        let before = list.len();
        list.retain(|(h, _)| *h != id);
        let removed = list.len() < before;
        if list.is_empty() {
            shard.remove(&pid);
        }
        removed
    }

    /// Takes every hook of an exiting actor.
    pub(crate) fn take(&self, pid: Pid) -> Vec<ExitHook> {
        lock(self.shard(pid))
            .remove(&pid)
            .map(|v| v.into_iter().map(|(_, h)| h).collect())
            .unwrap_or_default()
    }

    /// Registered hooks, for leak checks.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.0).values().map(Vec::len).sum::<usize>())
            .sum()
    }
}
