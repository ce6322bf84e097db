//! The completion signal every scenario waits on: the handler that brings the count to zero
//! wakes the waiter, so no bench thread spins beside the workers it measures.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a scenario may run before the bench fails instead of hanging.
const STALL: Duration = Duration::from_secs(180);

/// Counts down `n` events; the last one wakes a blocking or an async waiter.
#[derive(Debug)]
pub struct Done {
    left: AtomicUsize,
    value: AtomicU64,
    finished: Mutex<bool>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

impl Done {
    /// A signal that fires after `n` calls of [`Done::hit`].
    pub fn new(n: usize) -> std::sync::Arc<Done> {
        std::sync::Arc::new(Done {
            left: AtomicUsize::new(n),
            value: AtomicU64::new(0),
            finished: Mutex::new(n == 0),
            cv: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Counts one event; `true` when it was the last one.
    pub fn hit(&self) -> bool {
        if self.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        *self.finished.lock().unwrap() = true;
        self.cv.notify_all();
        self.notify.notify_one();
        true
    }

    /// Records a result (skynet's sum) and counts one event.
    pub fn finish_with(&self, value: u64) -> bool {
        self.value.fetch_add(value, Ordering::AcqRel);
        self.hit()
    }

    /// The recorded result.
    pub fn value(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Blocks the calling (non-worker) thread until the last event.
    pub fn wait(&self) {
        let deadline = Instant::now() + STALL;
        let mut finished = self.finished.lock().unwrap();
        while !*finished {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "benchmark stalled");
            finished = self.cv.wait_timeout(finished, left).unwrap().0;
        }
    }

    /// Waits without blocking the thread (for single-threaded runtimes such as actix's).
    pub async fn wait_async(&self) {
        loop {
            let notified = self.notify.notified();
            if *self.finished.lock().unwrap() {
                return;
            }
            notified.await;
        }
    }
}
