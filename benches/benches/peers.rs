//! Iris against kameo, ractor and actix on the same scenarios, in the same run (feature
//! `peers`; `cargo xtask bench` enables it). Every figure counts messages *processed*.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iris::Runtime;
use iris_benches as s;

const SINK: usize = 1_000_000;
const FAN: usize = 100_000;

async fn settle(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::Acquire) < n {
        assert!(Instant::now() < deadline, "peer benchmark stalled");
        tokio::task::yield_now().await;
    }
}

// ----- kameo ------------------------------------------------------------------------------

#[derive(kameo::Actor)]
struct KCounter {
    done: Arc<AtomicUsize>,
}

struct Tick;

impl kameo::message::Message<Tick> for KCounter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut kameo::message::Context<Self, ()>) {
        self.done.fetch_add(1, Ordering::Release);
    }
}

async fn kameo_sink(n: usize) -> Duration {
    use kameo::actor::Spawn;
    let done = Arc::new(AtomicUsize::new(0));
    let actor = KCounter::spawn(KCounter { done: done.clone() });
    let start = Instant::now();
    for _ in 0..n {
        actor.tell(Tick).await.unwrap();
    }
    settle(&done, n).await;
    start.elapsed()
}

async fn kameo_fanout(n: usize) -> Duration {
    use kameo::actor::Spawn;
    let done = Arc::new(AtomicUsize::new(0));
    let actors: Vec<_> = (0..n)
        .map(|_| KCounter::spawn(KCounter { done: done.clone() }))
        .collect();
    let start = Instant::now();
    for a in &actors {
        a.tell(Tick).await.unwrap();
    }
    settle(&done, n).await;
    start.elapsed()
}

// ----- ractor -----------------------------------------------------------------------------

struct RCounter;

impl ractor::Actor for RCounter {
    type Msg = ();
    type State = Arc<AtomicUsize>;
    type Arguments = Arc<AtomicUsize>;

    async fn pre_start(
        &self,
        _: ractor::ActorRef<()>,
        done: Arc<AtomicUsize>,
    ) -> Result<Arc<AtomicUsize>, ractor::ActorProcessingErr> {
        Ok(done)
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<()>,
        _: (),
        done: &mut Arc<AtomicUsize>,
    ) -> Result<(), ractor::ActorProcessingErr> {
        done.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

async fn ractor_sink(n: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let (actor, _) = ractor::Actor::spawn(None, RCounter, done.clone())
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..n {
        actor.send_message(()).unwrap();
    }
    settle(&done, n).await;
    let t = start.elapsed();
    actor.stop(None);
    t
}

async fn ractor_fanout(n: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let mut actors = Vec::with_capacity(n);
    for _ in 0..n {
        actors.push(
            ractor::Actor::spawn(None, RCounter, done.clone())
                .await
                .unwrap()
                .0,
        );
    }
    let start = Instant::now();
    for a in &actors {
        a.send_message(()).unwrap();
    }
    settle(&done, n).await;
    let t = start.elapsed();
    for a in actors {
        a.stop(None);
    }
    t
}

// ----- actix ------------------------------------------------------------------------------

struct ACounter {
    done: Arc<AtomicUsize>,
}

impl actix::Actor for ACounter {
    type Context = actix::Context<Self>;
}

struct ATick;

impl actix::Message for ATick {
    type Result = ();
}

impl actix::Handler<ATick> for ACounter {
    type Result = ();
    fn handle(&mut self, _: ATick, _: &mut actix::Context<Self>) {
        self.done.fetch_add(1, Ordering::Release);
    }
}

fn actix_run(f: impl AsyncFnOnce() -> Duration) -> Duration {
    actix_rt::System::new().block_on(f())
}

async fn actix_sink(n: usize) -> Duration {
    use actix::Actor;
    let done = Arc::new(AtomicUsize::new(0));
    let addr = ACounter { done: done.clone() }.start();
    let start = Instant::now();
    for _ in 0..n {
        addr.do_send(ATick);
    }
    settle(&done, n).await;
    start.elapsed()
}

async fn actix_fanout(n: usize) -> Duration {
    use actix::Actor;
    let done = Arc::new(AtomicUsize::new(0));
    let addrs: Vec<_> = (0..n)
        .map(|_| ACounter { done: done.clone() }.start())
        .collect();
    let start = Instant::now();
    for a in &addrs {
        a.do_send(ATick);
    }
    settle(&done, n).await;
    start.elapsed()
}

fn peers(c: &mut Criterion) {
    let rt = Runtime::new();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("peers");
    g.sample_size(10).measurement_time(Duration::from_secs(3));

    g.throughput(Throughput::Elements(SINK as u64));
    g.bench_function("sink/iris", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::sink(&rt, SINK)).sum())
    });
    g.bench_function("sink/kameo", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_rt.block_on(kameo_sink(SINK)))
                .sum()
        })
    });
    g.bench_function("sink/ractor", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_rt.block_on(ractor_sink(SINK)))
                .sum()
        })
    });
    g.bench_function("sink/actix", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| actix_run(async || actix_sink(SINK).await))
                .sum()
        })
    });

    g.throughput(Throughput::Elements(FAN as u64));
    g.bench_function("fanout/iris", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::fanout(&rt, FAN)).sum())
    });
    g.bench_function("fanout/kameo", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_rt.block_on(kameo_fanout(FAN)))
                .sum()
        })
    });
    g.bench_function("fanout/ractor", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_rt.block_on(ractor_fanout(FAN)))
                .sum()
        })
    });
    g.bench_function("fanout/actix", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| actix_run(async || actix_fanout(FAN).await))
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
