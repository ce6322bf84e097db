//! The floor: plain Tokio tasks and unbounded mpsc channels, no actor framework at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::memory::rss_bytes;
use crate::{Done, Scenarios};

/// Tasks on a multi-threaded Tokio runtime.
#[derive(Debug)]
pub struct TokioBench {
    rt: tokio::runtime::Runtime,
}

impl TokioBench {
    /// A fresh runtime.
    pub fn new() -> TokioBench {
        TokioBench {
            rt: crate::tokio_runtime(),
        }
    }

    /// `n` tasks, each parked on its own channel; every received message hits `done`.
    fn spawn_receivers(
        &self,
        n: usize,
        started: &Arc<Done>,
        done: &Arc<Done>,
    ) -> Vec<UnboundedSender<Bytes>> {
        (0..n)
            .map(|_| {
                let (tx, mut rx) = unbounded_channel::<Bytes>();
                let (s, d) = (started.clone(), done.clone());
                self.rt.spawn(async move {
                    s.hit();
                    while rx.recv().await.is_some() {
                        d.hit();
                    }
                });
                tx
            })
            .collect()
    }
}

impl Default for TokioBench {
    fn default() -> Self {
        TokioBench::new()
    }
}

impl Scenarios for TokioBench {
    fn spawn_idle(&self, n: usize) -> (Duration, usize) {
        let before = rss_bytes();
        let start = Instant::now();
        let started = Done::new(n);
        let txs = self.spawn_receivers(n, &started, &Done::new(0));
        started.wait();
        let t = start.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        drop(txs);
        (t, grown)
    }

    fn fanout(&self, n: usize) -> Duration {
        let (started, done) = (Done::new(n), Done::new(n));
        let txs = self.spawn_receivers(n, &started, &done);
        started.wait();
        let payload = Bytes::from_static(b"x");
        let start = Instant::now();
        for tx in &txs {
            tx.send(payload.clone()).unwrap();
        }
        done.wait();
        start.elapsed()
    }

    fn sink(&self, n: usize) -> Duration {
        let (started, done) = (Done::new(1), Done::new(n));
        let txs = self.spawn_receivers(1, &started, &done);
        started.wait();
        let payload = Bytes::from_static(b"0123456789abcdef");
        let start = Instant::now();
        for _ in 0..n {
            txs[0].send(payload.clone()).unwrap();
        }
        done.wait();
        start.elapsed()
    }

    fn pingpong(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let (to_pong, mut pong_rx) = unbounded_channel::<Bytes>();
        let (to_ping, mut ping_rx) = unbounded_channel::<Bytes>();
        let d = done.clone();
        let ping_to_pong = to_pong.clone();
        self.rt.spawn(async move {
            while let Some(m) = ping_rx.recv().await {
                if d.hit() {
                    break;
                }
                let _ = ping_to_pong.send(m);
            }
        });
        self.rt.spawn(async move {
            while let Some(m) = pong_rx.recv().await {
                if to_ping.send(m).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        to_pong.send(Bytes::from_static(b"ball")).unwrap();
        done.wait();
        start.elapsed()
    }

    fn skynet(&self, depth: u32) -> (u64, Duration) {
        let done = Done::new(1);
        let start = Instant::now();
        let d = done.clone();
        let (tx, mut rx) = unbounded_channel::<u64>();
        self.rt.spawn(node(tx, 0, 10u64.pow(depth)));
        self.rt.spawn(async move {
            if let Some(v) = rx.recv().await {
                d.finish_with(v);
            }
        });
        done.wait();
        (done.value(), start.elapsed())
    }
}

/// A skynet node as a task: a leaf answers its number, an inner node spawns ten children
/// that answer on its channel.
fn node(
    parent: UnboundedSender<u64>,
    num: u64,
    size: u64,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            let _ = parent.send(num);
            return;
        }
        let (tx, mut rx) = unbounded_channel::<u64>();
        let step = size / 10;
        for i in 0..10 {
            tokio::spawn(node(tx.clone(), num + i * step, step));
        }
        drop(tx);
        let mut sum = 0;
        for _ in 0..10 {
            sum += rx.recv().await.expect("child answers");
        }
        let _ = parent.send(sum);
    })
}
