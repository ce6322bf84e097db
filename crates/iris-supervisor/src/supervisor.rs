//! The restart state machine of one supervisor.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::Pid;
use crate::error::SupervisorError;
use crate::exit::ExitInfo;

/// Identifies a child within its supervisor; stable across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

/// Which children are restarted when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// Every child: the survivors are stopped first.
    OneForAll,
    /// The failed child and those started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// After any exit.
    #[default]
    Permanent,
    /// Only after an abnormal exit (not [`ExitReason::is_normal`](crate::ExitReason::is_normal)).
    Transient,
    /// Never; the child is forgotten when it exits.
    Temporary,
}

/// How a supervisor restarts and how often it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorSpec {
    /// Which children a failure restarts.
    pub strategy: Strategy,
    /// At most this many restarts within [`within`](Self::within); one more escalates.
    pub max_restarts: u32,
    /// The restart-intensity window.
    pub within: Duration,
}

impl Default for SupervisorSpec {
    fn default() -> SupervisorSpec {
        SupervisorSpec {
            strategy: Strategy::OneForOne,
            max_restarts: 3,
            within: Duration::from_secs(5),
        }
    }
}

impl SupervisorSpec {
    /// The default intensity (3 restarts in 5 s) with `strategy`.
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            ..SupervisorSpec::default()
        }
    }
}

/// One supervised child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// Its identity within the supervisor.
    pub id: ChildId,
    /// When it is restarted.
    pub policy: RestartPolicy,
    /// The name or path to re-register a restarted child under, if any.
    pub name: Option<String>,
}

impl ChildSpec {
    /// A child without a registered name.
    pub fn new(id: ChildId, policy: RestartPolicy) -> ChildSpec {
        ChildSpec {
            id,
            policy,
            name: None,
        }
    }

    /// The same child, registered under `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> ChildSpec {
        self.name = Some(name.into());
        self
    }
}

/// What the runtime must do after a child exit, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: not a live child, an expected exit, or a child that is not restarted (it has
    /// been removed).
    Ignore,
    /// Stop `stop_first` (in this order, reverse start order), then start `restart` (in start
    /// order) and report each with [`Supervisor::restarted`]. The exits of the stopped pids are
    /// expected and will be ignored.
    Restart {
        /// Surviving siblings to stop before restarting.
        stop_first: Vec<Pid>,
        /// Children to start again.
        restart: Vec<ChildId>,
    },
    /// Restart intensity exceeded: stop `stop` (reverse start order), then the supervisor
    /// itself exits with `Shutdown`.
    Escalate {
        /// Surviving children to stop.
        stop: Vec<Pid>,
    },
}

#[derive(Debug, Clone)]
struct Child {
    spec: ChildSpec,
    // `None` while the runtime restarts it.
    pid: Option<Pid>,
}

/// The supervision logic of one supervisor: its children in start order, their pids, and
/// the restart history. Deterministic: time comes in as `now`.
#[derive(Debug, Clone)]
pub struct Supervisor {
    spec: SupervisorSpec,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    escalated: bool,
}

impl Supervisor {
    /// A supervisor without children.
    pub fn new(spec: SupervisorSpec) -> Supervisor {
        Supervisor {
            spec,
            children: Vec::new(),
            restarts: VecDeque::new(),
            escalated: false,
        }
    }

    /// Its configuration.
    pub fn spec(&self) -> &SupervisorSpec {
        &self.spec
    }

    /// Adds a child, started last, bound to `pid`.
    pub fn add_child(
        &mut self,
        id: ChildId,
        pid: Pid,
        policy: RestartPolicy,
    ) -> Result<(), SupervisorError> {
        self.add_child_spec(ChildSpec::new(id, policy), pid)
    }

    /// Adds a child from its full spec, started last, bound to `pid`.
    pub fn add_child_spec(&mut self, spec: ChildSpec, pid: Pid) -> Result<(), SupervisorError> {
        if self.position(spec.id).is_some() {
            return Err(SupervisorError::DuplicateChild(spec.id));
        }
        if self.position_of_pid(pid).is_some() {
            return Err(SupervisorError::DuplicatePid(pid));
        }
        self.children.push(Child {
            spec,
            pid: Some(pid),
        });
        Ok(())
    }

    /// Stops supervising a child; returns its spec and current pid (if live). A later exit of
    /// that pid is ignored.
    pub fn remove_child(
        &mut self,
        id: ChildId,
    ) -> Result<(ChildSpec, Option<Pid>), SupervisorError> {
        let i = self.position(id).ok_or(SupervisorError::UnknownChild(id))?;
        let child = self.children.remove(i);
        Ok((child.spec, child.pid))
    }

    /// Live children and their pids, in start order.
    pub fn children(&self) -> Vec<(ChildId, Pid)> {
        self.children
            .iter()
            .filter_map(|c| c.pid.map(|p| (c.spec.id, p)))
            .collect()
    }

    /// Live children's pids, in start order.
    pub fn child_pids(&self) -> Vec<Pid> {
        self.children.iter().filter_map(|c| c.pid).collect()
    }

    /// How many children are supervised, live or being restarted.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether no child is supervised.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The spec of a child.
    pub fn child_spec(&self, id: ChildId) -> Option<&ChildSpec> {
        self.position(id).map(|i| &self.children[i].spec)
    }

    /// The children waiting for [`restarted`](Self::restarted), in start order.
    pub fn pending_restarts(&self) -> Vec<ChildId> {
        self.children
            .iter()
            .filter(|c| c.pid.is_none())
            .map(|c| c.spec.id)
            .collect()
    }

    /// Whether the supervisor gave up (an [`Decision::Escalate`] was returned).
    pub fn is_escalated(&self) -> bool {
        self.escalated
    }

    /// Restarts counted in the current window as of the last decision.
    pub fn recent_restarts(&self) -> usize {
        self.restarts.len()
    }

    /// Records the pid of a restarted child. Only children awaiting a restart accept one.
    pub fn restarted(&mut self, id: ChildId, new_pid: Pid) -> Result<(), SupervisorError> {
        let i = self.position(id).ok_or(SupervisorError::UnknownChild(id))?;
        if self.children[i].pid.is_some() || self.escalated {
            return Err(SupervisorError::NotRestarting(id));
        }
        if self.position_of_pid(new_pid).is_some() {
            return Err(SupervisorError::DuplicatePid(new_pid));
        }
        self.children[i].pid = Some(new_pid);
        Ok(())
    }

    /// A process exited; says what the runtime must do about it.
    pub fn on_child_exit(&mut self, pid: Pid, info: &ExitInfo, now: Instant) -> Decision {
        // Children being stopped or restarted are unbound from their old pid, so the exits
        // that stopping them produces (and any late exit of an old pid) land here as unknown.
        if self.escalated {
            return Decision::Ignore;
        }
        let Some(i) = self.position_of_pid(pid) else {
            return Decision::Ignore;
        };
        let restart = match self.children[i].spec.policy {
            RestartPolicy::Permanent => true,
            RestartPolicy::Transient => !info.reason.is_normal(),
            RestartPolicy::Temporary => false,
        };
        if !restart {
            self.children.remove(i);
            return Decision::Ignore;
        }
        self.children[i].pid = None;

        let within = self.spec.within;
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= within {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        if self.restarts.len() >= self.spec.max_restarts as usize {
            self.escalated = true;
            let stop = self.stop_range(0);
            return Decision::Escalate { stop };
        }
        self.restarts.push_back(now);

        let first = match self.spec.strategy {
            Strategy::OneForOne => {
                return Decision::Restart {
                    stop_first: Vec::new(),
                    restart: vec![self.children[i].spec.id],
                };
            }
            Strategy::OneForAll => 0,
            Strategy::RestForOne => i,
        };
        // Children already waiting for an earlier restart stay in that earlier decision, so
        // none is started twice.
        let restart: Vec<ChildId> = self.children[first..]
            .iter()
            .enumerate()
            .filter(|(k, c)| c.pid.is_some() || first + k == i)
            .map(|(_, c)| c.spec.id)
            .collect();
        let stop_first = self.stop_range(first);
        Decision::Restart {
            stop_first,
            restart,
        }
    }

    // Unbinds the live children from index `first` on and returns their pids in reverse start order.
    fn stop_range(&mut self, first: usize) -> Vec<Pid> {
        let mut stop = Vec::new();
        for child in self.children[first..].iter_mut().rev() {
            if let Some(p) = child.pid.take() {
                stop.push(p);
            }
        }
        stop
    }

    fn position(&self, id: ChildId) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    fn position_of_pid(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.pid == Some(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitReason;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_types_are_send_and_sync() {
        assert_send_sync::<Supervisor>();
        assert_send_sync::<crate::LinkTable>();
        assert_send_sync::<crate::MonitorTable>();
    }

    #[test]
    fn restarted_child_keeps_its_name() {
        let mut sup = Supervisor::new(SupervisorSpec::default());
        sup.add_child_spec(
            ChildSpec::new(ChildId(7), RestartPolicy::Permanent).with_name("/svc/a"),
            70,
        )
        .unwrap();
        let now = Instant::now();
        let d = sup.on_child_exit(70, &ExitInfo::new(ExitReason::Killed), now);
        assert_eq!(
            d,
            Decision::Restart {
                stop_first: vec![],
                restart: vec![ChildId(7)]
            }
        );
        assert_eq!(sup.recent_restarts(), 1);
        sup.restarted(ChildId(7), 71).unwrap();
        let spec = sup.child_spec(ChildId(7)).unwrap();
        assert_eq!(spec.name.as_deref(), Some("/svc/a"));
        assert_eq!(sup.children(), vec![(ChildId(7), 71)]);
    }
}
