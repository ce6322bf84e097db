//! The executor: a Tokio runtime the scheduler owns or shares, plus OS threads for pull actors.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::SchedError;

/// Stack size of a pull actor's thread: small, so thousands can block at once.
pub const PULL_STACK_SIZE: usize = 256 * 1024;

/// Where actors run.
///
/// The narrow API the rest of Iris uses: spawn a future (push actors, timers, network tasks),
/// spawn an OS thread (pull actors), and find out whether the caller is on a worker thread.
pub trait Scheduler: Send + Sync {
    /// Spawns a future on the executor.
    fn spawn(&self, fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>);
    /// Runs `f` on a dedicated OS thread (a pull actor).
    fn spawn_pull(
        &self,
        name: String,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), SchedError>;
}

/// A Tokio-backed [`Scheduler`]. Cloning is cheap; the last clone of an owned runtime shuts
/// it down in the background (never blocking, so dropping inside async code is safe).
#[derive(Clone)]
pub struct TokioScheduler {
    handle: Handle,
    _owned: Option<Arc<OwnedRuntime>>,
}

struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for TokioScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioScheduler")
            .field("owned", &self._owned.is_some())
            .finish()
    }
}

impl TokioScheduler {
    /// Shares the caller's multi-thread Tokio runtime, or starts an owned one when called
    /// outside Tokio (or inside a current-thread runtime, which cannot host blocking waits).
    pub fn new() -> Result<TokioScheduler, SchedError> {
        if let Ok(handle) = Handle::try_current()
            && handle.runtime_flavor() == RuntimeFlavor::MultiThread
        {
            return Ok(TokioScheduler {
                handle,
                _owned: None,
            });
        }
        TokioScheduler::owned(None)
    }

    /// Starts an owned multi-thread runtime with `workers` threads (default: one per core).
    pub fn owned(workers: Option<usize>) -> Result<TokioScheduler, SchedError> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all().thread_name("iris-worker");
        if let Some(n) = workers {
            b.worker_threads(n.max(1));
        }
        let rt = b.build().map_err(SchedError::Runtime)?;
        Ok(TokioScheduler {
            handle: rt.handle().clone(),
            _owned: Some(Arc::new(OwnedRuntime(Some(rt)))),
        })
    }

    /// The Tokio handle actors run on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns a typed future and returns its join handle.
    pub fn spawn_task<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }
}

impl Scheduler for TokioScheduler {
    fn spawn(&self, fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        self.handle.spawn(fut);
    }

    fn spawn_pull(
        &self,
        name: String,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), SchedError> {
        let handle = self.handle.clone();
        std::thread::Builder::new()
            .name(name)
            .stack_size(PULL_STACK_SIZE)
            .spawn(move || {
                // Pull actors may use Tokio primitives (timers, spawn) from their thread.
                let _guard = handle.enter();
                f();
            })
            .map(drop)
            .map_err(SchedError::Thread)
    }
}
