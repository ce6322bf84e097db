//! The registry: sharded names, an ordered path map and a reverse index.

use crate::RegistryError;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

/// An actor's process id.
pub type Pid = u64;

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

const SHARDS: usize = 32;

/// What [`Registry::remove_pid`] removed, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Names the pid held.
    pub names: Vec<String>,
    /// Paths the pid held.
    pub paths: Vec<String>,
}

#[derive(Default)]
struct Held {
    names: Vec<String>,
    paths: Vec<String>,
}

/// Concurrent registry of actor names and hierarchical paths.
///
/// Lookups take only a read lock on one name shard (or the path map); writers are serialised by
/// one mutex so the maps and the reverse index never disagree once a write returns.
pub struct Registry {
    names: Vec<RwLock<HashMap<String, Pid>>>,
    paths: RwLock<BTreeMap<String, Pid>>,
    // Guarded writes: holding this lock is what makes a write atomic across the three maps.
    reverse: Mutex<HashMap<Pid, Held>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len())
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn validate_path(path: &str) -> Result<(), RegistryError> {
    let bad = |reason| {
        Err(RegistryError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.len() > MAX_PATH_LEN {
        return bad("too long");
    }
    if !path.starts_with('/') {
        return bad("must start with '/'");
    }
    if path == "/" {
        return bad("the root is not a path");
    }
    if path.ends_with('/') {
        return bad("trailing '/'");
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() {
            return bad("empty segment");
        }
        if seg.trim().is_empty() {
            return bad("whitespace-only segment");
        }
    }
    Ok(())
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            names: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            paths: RwLock::new(BTreeMap::new()),
            reverse: Mutex::new(HashMap::new()),
        }
    }

    fn shard(&self, name: &str) -> &RwLock<HashMap<String, Pid>> {
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        &self.names[(h.finish() as usize) % SHARDS]
    }

    fn writer(&self) -> MutexGuard<'_, HashMap<Pid, Held>> {
        self.reverse.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `name` for `pid`; fails if the name is taken (even by `pid`) or empty.
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), RegistryError> {
        self.register_checked(name, pid, |_| true)
    }

    /// Like [`register`](Self::register), but a name whose owner `is_alive` reports dead is
    /// taken over (the dead owner loses it).
    pub fn register_checked(
        &self,
        name: &str,
        pid: Pid,
        is_alive: impl Fn(Pid) -> bool,
    ) -> Result<(), RegistryError> {
        if name.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        let mut rev = self.writer();
        let mut shard = write(self.shard(name));
        if let Some(&owner) = shard.get(name) {
            if is_alive(owner) {
                return Err(RegistryError::NameTaken {
                    name: name.to_string(),
                    owner,
                });
            }
            drop_entry(&mut rev, owner, |h| &mut h.names, name);
        }
        rev.entry(pid).or_default().names.push(name.to_string());
        shard.insert(name.to_string(), pid);
        Ok(())
    }

    /// Removes `name`, returning its owner.
    pub fn unregister(&self, name: &str) -> Option<Pid> {
        let mut rev = self.writer();
        let owner = write(self.shard(name)).remove(name)?;
        drop_entry(&mut rev, owner, |h| &mut h.names, name);
        Some(owner)
    }

    /// The owner of `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        read(self.shard(name)).get(name).copied()
    }

    /// Names held by `pid`, sorted.
    pub fn names_of(&self, pid: Pid) -> Vec<String> {
        let mut v = self
            .writer()
            .get(&pid)
            .map(|h| h.names.clone())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Registers a path such as `/a/b/c`; a taken path fails like a taken name.
    pub fn register_path(&self, path: &str, pid: Pid) -> Result<(), RegistryError> {
        self.register_path_checked(path, pid, |_| true)
    }

    /// Like [`register_path`](Self::register_path), taking over a path whose owner is dead.
    pub fn register_path_checked(
        &self,
        path: &str,
        pid: Pid,
        is_alive: impl Fn(Pid) -> bool,
    ) -> Result<(), RegistryError> {
        validate_path(path)?;
        let mut rev = self.writer();
        let mut paths = write(&self.paths);
        if let Some(&owner) = paths.get(path) {
            if is_alive(owner) {
                return Err(RegistryError::NameTaken {
                    name: path.to_string(),
                    owner,
                });
            }
            drop_entry(&mut rev, owner, |h| &mut h.paths, path);
        }
        rev.entry(pid).or_default().paths.push(path.to_string());
        paths.insert(path.to_string(), pid);
        Ok(())
    }

    /// Removes `path`, returning its owner.
    pub fn unregister_path(&self, path: &str) -> Option<Pid> {
        let mut rev = self.writer();
        let owner = write(&self.paths).remove(path)?;
        drop_entry(&mut rev, owner, |h| &mut h.paths, path);
        Some(owner)
    }

    /// The owner of `path`.
    pub fn whereis_path(&self, path: &str) -> Option<Pid> {
        read(&self.paths).get(path).copied()
    }

    /// All entries strictly below `prefix` (by segment), sorted by path; `/` means all.
    pub fn list_children(&self, prefix: &str) -> Result<Vec<(String, Pid)>, RegistryError> {
        self.children(prefix, false)
    }

    /// Entries exactly one segment below `prefix`, sorted by path.
    pub fn list_children_direct(&self, prefix: &str) -> Result<Vec<(String, Pid)>, RegistryError> {
        self.children(prefix, true)
    }

    fn children(&self, prefix: &str, direct: bool) -> Result<Vec<(String, Pid)>, RegistryError> {
        let base = if prefix == "/" {
            "/".to_string()
        } else {
            validate_path(prefix)?;
            format!("{prefix}/")
        };
        let paths = read(&self.paths);
        Ok(paths
            .range::<str, _>((Bound::Included(base.as_str()), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(&base))
            .filter(|(p, _)| !direct || !p[base.len()..].contains('/'))
            .map(|(p, &pid)| (p.clone(), pid))
            .collect())
    }

    /// Removes every name and path `pid` holds, in time proportional to their number.
    pub fn remove_pid(&self, pid: Pid) -> Removed {
        let mut rev = self.writer();
        let Some(held) = rev.remove(&pid) else {
            return Removed::default();
        };
        for n in &held.names {
            write(self.shard(n)).remove(n);
        }
        if !held.paths.is_empty() {
            let mut paths = write(&self.paths);
            for p in &held.paths {
                paths.remove(p);
            }
        }
        let (mut names, mut paths) = (held.names, held.paths);
        names.sort();
        paths.sort();
        Removed { names, paths }
    }

    /// Number of entries (names plus paths).
    pub fn len(&self) -> usize {
        let _w = self.writer();
        self.names.iter().map(|s| read(s).len()).sum::<usize>() + read(&self.paths).len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn drop_entry(
    rev: &mut HashMap<Pid, Held>,
    owner: Pid,
    list: impl Fn(&mut Held) -> &mut Vec<String>,
    key: &str,
) {
    if let Some(h) = rev.get_mut(&owner) {
        let l = list(h);
        if let Some(i) = l.iter().position(|k| k == key) {
            l.swap_remove(i);
        }
        if h.names.is_empty() && h.paths.is_empty() {
            rev.remove(&owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_paths() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        for p in ["", "a/b", "/", "/a/", "//a", "/a//b", "/a/ /b", &long] {
            assert!(
                matches!(validate_path(p), Err(RegistryError::InvalidPath { .. })),
                "{p:?}"
            );
        }
        validate_path("/a/b c/d").unwrap();
    }

    #[test]
    fn prefix_by_segment_and_direct() {
        let r = Registry::new();
        for (p, pid) in [
            ("/svc/ab", 1),
            ("/svc/a/x/y", 2),
            ("/svc/a/z", 3),
            ("/svc/a", 4),
        ] {
            r.register_path(p, pid).unwrap();
        }
        let all = r.list_children("/svc/a").unwrap();
        assert_eq!(all, vec![("/svc/a/x/y".into(), 2), ("/svc/a/z".into(), 3)]);
        assert_eq!(
            r.list_children_direct("/svc/a").unwrap(),
            vec![("/svc/a/z".into(), 3)]
        );
        assert_eq!(r.list_children("/").unwrap().len(), 4);
        assert!(r.list_children("svc").is_err());
    }

    #[test]
    fn names_and_dead_owner() {
        let r = Registry::new();
        r.register("a", 1).unwrap();
        assert_eq!(
            r.register("a", 2),
            Err(RegistryError::NameTaken {
                name: "a".into(),
                owner: 1
            })
        );
        assert!(r.register_checked("a", 2, |p| p != 1).is_ok());
        assert_eq!(r.whereis("a"), Some(2));
        assert!(r.names_of(1).is_empty());
        assert_eq!(r.unregister("a"), Some(2));
        assert!(r.is_empty());
    }
}
