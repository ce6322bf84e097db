//! Supervisors as actors: each supervisor is a push actor that receives its children's
//! exits in order and drives the restart state machine of `iris-supervisor`. Because a
//! supervisor has a PID, a parent supervisor can supervise it: trees nest, and a supervisor
//! that gives up (restart intensity exceeded) exits with `Shutdown` for its parent to see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris_supervisor::{
    ChildId, ChildSpec, Decision, ExitInfo, ExitReason, RestartPolicy, Strategy, Supervisor,
    SupervisorSpec,
};

use crate::actor::{Pid, lock};
use crate::behavior::Behavior;
use crate::error::ActorError;
use crate::message::{Message, SystemMessage};
use crate::runtime::{Inner, Runtime, SpawnOptions};

/// Starts a replacement child and returns its PID; called only to *restart* a child.
pub type Factory = Arc<dyn Fn() -> Result<Pid, String> + Send + Sync>;

/// How a supervisor treats one child.
#[derive(Clone, Default)]
pub struct ChildOptions {
    /// Which siblings a failure of this child restarts. Children with different strategies
    /// under one supervisor form separate groups.
    pub strategy: Strategy,
    /// When the child is restarted (only children with a factory can be).
    pub policy: RestartPolicy,
    /// Starts a replacement; without one the child is only watched.
    pub factory: Option<Factory>,
}

impl std::fmt::Debug for ChildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildOptions")
            .field("strategy", &self.strategy)
            .field("policy", &self.policy)
            .field("factory", &self.factory.is_some())
            .finish()
    }
}

struct ChildInfo {
    group: usize,
    factory: Option<Factory>,
    names: Vec<String>,
    paths: Vec<String>,
}

/// The state of one supervisor actor.
struct SupState {
    spec: SupervisorSpec,
    groups: Vec<Supervisor>,
    children: HashMap<ChildId, ChildInfo>,
    by_pid: HashMap<Pid, ChildId>,
    next_child: u64,
}

impl SupState {
    fn group_for(&mut self, strategy: Strategy) -> usize {
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.spec().strategy == strategy)
        {
            return i;
        }
        let spec = SupervisorSpec {
            strategy,
            ..self.spec
        };
        self.groups.push(Supervisor::new(spec));
        self.groups.len() - 1
    }

    fn pids(&self) -> Vec<Pid> {
        self.groups
            .iter()
            .flat_map(Supervisor::child_pids)
            .collect()
    }
}

/// Every supervisor of a runtime, by PID; plus the root and path supervisors.
#[derive(Default)]
pub(crate) struct Supervisors {
    by_pid: Mutex<HashMap<Pid, Arc<Mutex<SupState>>>>,
    root: Mutex<Option<Pid>>,
    paths: Mutex<HashMap<String, Pid>>,
}

static NO_FACTORY: &str = "no factory";

fn shutdown() -> ExitInfo {
    ExitInfo::new(ExitReason::Shutdown)
}

/// How long a supervisor waits for a child it stopped before starting its replacement.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl Runtime {
    fn supervisor_state(&self, sup: Pid) -> Result<Arc<Mutex<SupState>>, ActorError> {
        lock(&self.inner.supervisors.by_pid)
            .get(&sup)
            .cloned()
            .filter(|_| self.is_alive(sup))
            .ok_or(ActorError::NoProcess(sup))
    }

    /// Starts a supervisor actor with the given restart intensity. Supervise children with
    /// [`Runtime::supervise`]; when it exits, its children are shut down.
    pub fn spawn_supervisor(&self, spec: SupervisorSpec) -> Result<Pid, ActorError> {
        let state = Arc::new(Mutex::new(SupState {
            spec,
            groups: Vec::new(),
            children: HashMap::new(),
            by_pid: HashMap::new(),
            next_child: 0,
        }));
        let weak = Arc::downgrade(&self.inner);
        let st = state.clone();
        let self_pid = Arc::new(AtomicU64::new(0));
        let me = self_pid.clone();
        let behavior = Behavior::from_fn(move |msg| {
            if let Message::System(sys) = msg
                && let SystemMessage::Exit { from, info, .. } = *sys
                && let Some(inner) = weak.upgrade()
            {
                child_exited(&inner, me.load(Ordering::Acquire), &st, from, &info);
            }
        });
        let pid = self.try_spawn_behavior(behavior, SpawnOptions::default())?;
        self_pid.store(pid, Ordering::Release);
        lock(&self.inner.supervisors.by_pid).insert(pid, state);
        // A supervisor takes its children down with it.
        let weak = Arc::downgrade(&self.inner);
        self.on_exit(pid, move |pid, _| {
            let Some(inner) = weak.upgrade() else { return };
            let state = lock(&inner.supervisors.by_pid).remove(&pid);
            if let Some(state) = state {
                let pids = lock(&state).pids();
                for child in pids.into_iter().rev() {
                    crate::runtime::kill(&inner, child, shutdown());
                }
            }
        });
        Ok(pid)
    }

    /// Puts a live actor under a supervisor. Its names and paths are remembered, so a
    /// restarted child is registered under them again. The factory is called only to restart.
    pub fn supervise(&self, sup: Pid, child: Pid, opts: ChildOptions) -> Result<(), ActorError> {
        let state = self.supervisor_state(sup)?;
        if !self.is_alive(child) {
            return Err(ActorError::NoProcess(child));
        }
        let names = self.inner.registry.names_of(child);
        let paths = self
            .inner
            .registry
            .list_children("/")
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, p)| *p == child)
            .map(|(path, _)| path)
            .collect();
        {
            let mut st = lock(&state);
            if st.by_pid.contains_key(&child) {
                return Ok(());
            }
            let policy = if opts.factory.is_some() {
                opts.policy
            } else {
                RestartPolicy::Temporary
            };
            let group = st.group_for(opts.strategy);
            st.next_child += 1;
            let id = ChildId(st.next_child);
            st.groups[group]
                .add_child_spec(ChildSpec::new(id, policy), child)
                .map_err(|e| ActorError::Supervision(e.to_string()))?;
            st.by_pid.insert(child, id);
            st.children.insert(
                id,
                ChildInfo {
                    group,
                    factory: opts.factory,
                    names,
                    paths,
                },
            );
        }
        self.notify_supervisor_on_exit(sup, child);
        Ok(())
    }

    fn notify_supervisor_on_exit(&self, sup: Pid, child: Pid) {
        let weak = Arc::downgrade(&self.inner);
        self.on_exit(child, move |from, info| {
            let Some(inner) = weak.upgrade() else { return };
            let rt = Runtime { inner };
            let exit = SystemMessage::Exit {
                from,
                target: sup,
                info: info.clone(),
            };
            let _ = rt.send(sup, Message::system(exit));
        });
    }

    /// The live children of a supervisor, in start order.
    pub fn supervisor_children(&self, sup: Pid) -> Vec<Pid> {
        self.supervisor_state(sup)
            .map(|s| lock(&s).pids())
            .unwrap_or_default()
    }

    /// Stops supervising every child of `sup` (they keep running) and stops `sup`.
    fn detach_supervisor(&self, sup: Pid) -> bool {
        if let Ok(state) = self.supervisor_state(sup) {
            let mut st = lock(&state);
            st.groups.clear();
            st.by_pid.clear();
            st.children.clear();
        }
        self.stop(sup)
    }

    fn root_supervisor(&self) -> Result<Pid, ActorError> {
        let mut root = lock(&self.inner.supervisors.root);
        if let Some(pid) = *root
            && self.is_alive(pid)
        {
            return Ok(pid);
        }
        let pid = self.spawn_supervisor(SupervisorSpec::default())?;
        *root = Some(pid);
        Ok(pid)
    }

    /// Watches `pid` under the runtime's root supervisor (it is not restarted: there is no
    /// factory; see [`Runtime::supervise_with_factory`]).
    pub fn watch(&self, pid: Pid, strategy: Strategy) -> Result<(), ActorError> {
        let sup = self.root_supervisor()?;
        let opts = ChildOptions {
            strategy,
            ..ChildOptions::default()
        };
        self.supervise(sup, pid, opts)
    }

    /// Supervises `pid` under the root supervisor; `factory` starts its replacement after a
    /// failure (it is never called at registration).
    pub fn supervise_with_factory(
        &self,
        pid: Pid,
        factory: Factory,
        strategy: Strategy,
    ) -> Result<(), ActorError> {
        let sup = self.root_supervisor()?;
        let opts = ChildOptions {
            strategy,
            policy: RestartPolicy::Permanent,
            factory: Some(factory),
        };
        self.supervise(sup, pid, opts)
    }

    /// Live children of the root supervisor.
    pub fn child_pids(&self) -> Vec<Pid> {
        let root = *lock(&self.inner.supervisors.root);
        root.map(|sup| self.supervisor_children(sup))
            .unwrap_or_default()
    }

    /// Number of live children of the root supervisor.
    pub fn children_count(&self) -> usize {
        self.child_pids().len()
    }

    /// Watches the actors registered exactly one level below `prefix` under the root
    /// supervisor; returns their PIDs.
    pub fn watch_path(&self, prefix: &str) -> Result<Vec<Pid>, ActorError> {
        let direct = self.list_children_direct(prefix)?;
        let mut pids = Vec::with_capacity(direct.len());
        for (_, pid) in direct {
            if self.watch(pid, Strategy::OneForOne).is_ok() {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    /// Creates a supervisor scoped to a path prefix; returns its PID (the existing one if
    /// there is a live one).
    pub fn create_path_supervisor(&self, path: &str) -> Result<Pid, ActorError> {
        // Validated like any registry path.
        self.list_children(path)?;
        let mut paths = lock(&self.inner.supervisors.paths);
        if let Some(&pid) = paths.get(path)
            && self.is_alive(pid)
        {
            return Ok(pid);
        }
        let pid = self.spawn_supervisor(SupervisorSpec::default())?;
        paths.insert(path.to_owned(), pid);
        Ok(pid)
    }

    fn path_supervisor(&self, path: &str) -> Result<Pid, ActorError> {
        lock(&self.inner.supervisors.paths)
            .get(path)
            .copied()
            .filter(|&p| self.is_alive(p))
            .ok_or_else(|| ActorError::NoSupervisor(path.to_owned()))
    }

    /// Watches `pid` under the path supervisor of `path`.
    pub fn path_supervisor_watch(&self, path: &str, pid: Pid) -> Result<(), ActorError> {
        let sup = self.path_supervisor(path)?;
        self.supervise(sup, pid, ChildOptions::default())
    }

    /// Supervises `pid` under the path supervisor of `path`, restarting it with `factory`.
    pub fn path_supervise_with_factory(
        &self,
        path: &str,
        pid: Pid,
        factory: Factory,
        strategy: Strategy,
    ) -> Result<(), ActorError> {
        let sup = self.path_supervisor(path)?;
        let opts = ChildOptions {
            strategy,
            policy: RestartPolicy::Permanent,
            factory: Some(factory),
        };
        self.supervise(sup, pid, opts)
    }

    /// Live children of the path supervisor of `path` (empty if there is none).
    pub fn path_supervisor_children(&self, path: &str) -> Vec<Pid> {
        self.path_supervisor(path)
            .map(|sup| self.supervisor_children(sup))
            .unwrap_or_default()
    }

    /// Removes the path supervisor of `path`: its children stay alive, unsupervised.
    /// Returns `false` if there was none.
    pub fn remove_path_supervisor(&self, path: &str) -> bool {
        let sup = lock(&self.inner.supervisors.paths).remove(path);
        sup.is_some_and(|sup| self.detach_supervisor(sup))
    }

    /// The PID of the path supervisor of `path`, if there is a live one.
    pub fn path_supervisor_pid(&self, path: &str) -> Option<Pid> {
        self.path_supervisor(path).ok()
    }

    /// Spawns an observed actor (see [`Runtime::spawn_observed_handler`]) registered under
    /// `path`.
    pub fn spawn_with_path_observed(&self, budget: usize, path: &str) -> Result<Pid, ActorError> {
        let pid = self.spawn_observed_handler(budget)?;
        if let Err(e) = self.register_path(path, pid) {
            self.stop(pid);
            return Err(e);
        }
        Ok(pid)
    }
}

/// Runs in the supervisor actor, one child exit at a time.
fn child_exited(
    inner: &Arc<Inner>,
    sup: Pid,
    state: &Arc<Mutex<SupState>>,
    from: Pid,
    info: &ExitInfo,
) {
    let rt = Runtime {
        inner: inner.clone(),
    };
    let (decision, group) = {
        let mut st = lock(state);
        let Some(&id) = st.by_pid.get(&from) else {
            return;
        };
        st.by_pid.remove(&from);
        let group = st.children[&id].group;
        let decision = st.groups[group].on_child_exit(from, info, Instant::now());
        if matches!(decision, Decision::Ignore) && st.groups[group].child_spec(id).is_none() {
            st.children.remove(&id);
        }
        (decision, group)
    };
    match decision {
        Decision::Ignore => {}
        Decision::Restart {
            stop_first,
            restart,
        } => {
            // The survivors go first and are waited for, so no child ever runs twice.
            {
                let mut st = lock(state);
                for p in &stop_first {
                    st.by_pid.remove(p);
                }
            }
            for &p in &stop_first {
                crate::runtime::kill(inner, p, shutdown());
            }
            for &p in &stop_first {
                rt.join_timeout(p, STOP_WAIT);
            }
            for id in restart {
                restart_child(&rt, sup, state, group, id);
            }
        }
        Decision::Escalate { stop } => {
            for &p in &stop {
                crate::runtime::kill(inner, p, shutdown());
            }
            for &p in &stop {
                rt.join_timeout(p, STOP_WAIT);
            }
            crate::runtime::kill(inner, sup, shutdown());
        }
    }
}

fn restart_child(rt: &Runtime, sup: Pid, state: &Arc<Mutex<SupState>>, group: usize, id: ChildId) {
    let (factory, names, paths) = {
        let st = lock(state);
        let Some(info) = st.children.get(&id) else {
            return;
        };
        (info.factory.clone(), info.names.clone(), info.paths.clone())
    };
    let started = match &factory {
        Some(f) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f()))
            .unwrap_or_else(|p| Err(iris_sched::panic_message(p.as_ref()))),
        None => Err(NO_FACTORY.to_owned()),
    };
    let new_pid = match started {
        Ok(pid) if rt.is_alive(pid) => pid,
        // A child that cannot be started again leaves the supervisor.
        _ => {
            let mut st = lock(state);
            let _ = st.groups[group].remove_child(id);
            st.children.remove(&id);
            return;
        }
    };
    for name in &names {
        let _ = rt.register(name, new_pid);
    }
    for path in &paths {
        let _ = rt.register_path(path, new_pid);
    }
    let recorded = {
        let mut st = lock(state);
        let ok = st.groups[group].restarted(id, new_pid).is_ok();
        if ok {
            st.by_pid.insert(new_pid, id);
        }
        ok
    };
    if recorded {
        rt.notify_supervisor_on_exit(sup, new_pid);
    } else {
        rt.stop(new_pid);
    }
}
