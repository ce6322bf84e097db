//! Names and hierarchical paths of actors (over `iris-registry`); a dead actor's names and
//! paths are removed when it exits.

use std::sync::atomic::Ordering;

use crate::actor::Pid;
use crate::error::{ActorError, SendError};
use crate::message::Message;
use crate::runtime::Runtime;

impl Runtime {
    /// Runs `insert` for a live actor, marking it so its exit cleans the registry up.
    fn registered(
        &self,
        pid: Pid,
        insert: impl FnOnce(&dyn Fn(Pid) -> bool) -> Result<(), iris_registry::RegistryError>,
        undo: impl FnOnce(),
    ) -> Result<(), ActorError> {
        let actor = self
            .inner
            .table
            .get(pid)
            .filter(|a| a.is_alive())
            .ok_or(ActorError::NoProcess(pid))?;
        // Flag first: an exit that starts after this sees it and cleans up; one that started
        // before has closed the mailbox, which the re-check below notices.
        actor.registered.store(true, Ordering::SeqCst);
        let is_alive = |p: Pid| self.is_alive(p);
        insert(&is_alive).map_err(ActorError::Registry)?;
        if !actor.is_alive() {
            undo();
            return Err(ActorError::NoProcess(pid));
        }
        Ok(())
    }

    /// Registers `name` for `pid`. A name held by a live actor is refused
    /// ([`iris_registry::RegistryError::NameTaken`]); a dead owner's name is taken over.
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), ActorError> {
        let reg = &self.inner.registry;
        self.registered(
            pid,
            |alive| reg.register_checked(name, pid, alive),
            || {
                if reg.whereis(name) == Some(pid) {
                    reg.unregister(name);
                }
            },
        )
    }

    /// Removes a name; returns the PID it named.
    pub fn unregister(&self, name: &str) -> Option<Pid> {
        self.inner.registry.unregister(name)
    }

    /// The PID registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.registry.whereis(name)
    }

    /// Same as [`Runtime::whereis`].
    pub fn resolve(&self, name: &str) -> Option<Pid> {
        self.whereis(name)
    }

    /// Sends to the actor registered under `name`.
    pub fn send_named(&self, name: &str, msg: Message) -> Result<(), SendError> {
        match self.whereis(name) {
            Some(pid) => self.send(pid, msg),
            None => Err(SendError::UnknownName(name.to_owned(), msg)),
        }
    }

    /// Registers a hierarchical path such as `/svc/payment/processor` for `pid`. Paths are
    /// `/`-separated non-empty segments; an invalid one is
    /// [`iris_registry::RegistryError::InvalidPath`].
    pub fn register_path(&self, path: &str, pid: Pid) -> Result<(), ActorError> {
        let reg = &self.inner.registry;
        self.registered(
            pid,
            |alive| reg.register_path_checked(path, pid, alive),
            || {
                if reg.whereis_path(path) == Some(pid) {
                    reg.unregister_path(path);
                }
            },
        )
    }

    /// Removes a path; returns the PID it named.
    pub fn unregister_path(&self, path: &str) -> Option<Pid> {
        self.inner.registry.unregister_path(path)
    }

    /// The PID registered under `path`.
    pub fn whereis_path(&self, path: &str) -> Option<Pid> {
        self.inner.registry.whereis_path(path)
    }

    /// Every registration strictly below `prefix`, as `(path, pid)` sorted by path.
    pub fn list_children(&self, prefix: &str) -> Result<Vec<(String, Pid)>, ActorError> {
        self.inner
            .registry
            .list_children(prefix)
            .map_err(ActorError::Registry)
    }

    /// The registrations exactly one segment below `prefix`, sorted by path.
    pub fn list_children_direct(&self, prefix: &str) -> Result<Vec<(String, Pid)>, ActorError> {
        self.inner
            .registry
            .list_children_direct(prefix)
            .map_err(ActorError::Registry)
    }

    /// Names and paths currently registered (for leak checks).
    pub fn registry_len(&self) -> usize {
        self.inner.registry.len()
    }
}
