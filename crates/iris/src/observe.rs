//! Observed actors: push actors that record every message they receive, for tests and
//! debugging.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::Message;
use crate::actor::{Pid, lock};
use crate::behavior::Behavior;
use crate::error::ActorError;
use crate::runtime::{Runtime, SpawnOptions};

/// How many messages an observed actor keeps (the oldest are dropped beyond this).
pub const OBSERVED_HISTORY: usize = 10_000;

pub(crate) type Log = Arc<Mutex<VecDeque<Message>>>;

impl Runtime {
    /// Spawns an actor that records every message it receives (user and system), bounded to
    /// the last [`OBSERVED_HISTORY`]; read them with [`Runtime::get_messages`].
    pub fn spawn_observed_handler(&self, budget: usize) -> Result<Pid, ActorError> {
        let log: Log = Arc::new(Mutex::new(VecDeque::new()));
        let l = log.clone();
        let behavior = Behavior::from_fn(move |m| {
            let mut log = lock(&l);
            if log.len() == OBSERVED_HISTORY {
                log.pop_front();
            }
            log.push_back(m);
        });
        let opts = SpawnOptions {
            budget,
            ..SpawnOptions::default()
        };
        // The log lives in the behaviour, so nothing goes unrecorded; the map finds it by PID.
        let pid = self.try_spawn_behavior(behavior, opts)?;
        lock(&self.inner.observed).insert(pid, log);
        match self.inner.table.get(pid) {
            Some(actor) => actor.observed.store(true, Ordering::Release),
            // It already exited: drop the log here, its exit could not.
            None => {
                lock(&self.inner.observed).remove(&pid);
            }
        }
        Ok(pid)
    }

    /// Every message an observed actor received so far, oldest first (empty for other
    /// actors).
    pub fn get_messages(&self, pid: Pid) -> Vec<Message> {
        lock(&self.inner.observed)
            .get(&pid)
            .map(|log| lock(log).iter().cloned().collect())
            .unwrap_or_default()
    }
}
