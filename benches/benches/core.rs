//! Core-path benchmarks of Iris: sink, fan-out, ping-pong, spawn and skynet, with a plain Tokio
//! mpsc sink as the floor measured in the same run. Figures are messages *processed*.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iris::Runtime;
use iris_benches as s;

fn core(c: &mut Criterion) {
    let rt = Runtime::new();
    // Memory first, before earlier scenarios leave freed memory for the allocator to reuse.
    let (_, bytes, pids) = s::spawn_idle(&rt, 100_000);
    println!(
        "spawn_idle/iris: {:.0} bytes of RSS per idle push actor (100000 actors)",
        bytes as f64 / 100_000.0
    );
    for p in pids {
        rt.stop(p);
    }
    let mut g = c.benchmark_group("core");
    g.sample_size(10).measurement_time(Duration::from_secs(3));

    const SINK: usize = 1_000_000;
    g.throughput(Throughput::Elements(SINK as u64));
    g.bench_function("sink/iris", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::sink(&rt, SINK)).sum())
    });
    g.bench_function("sink/tokio-mpsc-floor", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| s::tokio_mpsc_sink(rt.handle(), SINK))
                .sum()
        })
    });

    const MESH: usize = 200_000;
    g.throughput(Throughput::Elements(MESH as u64));
    g.bench_function("mesh_sink/iris-loopback", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::mesh_sink(MESH)).sum())
    });

    const FAN: usize = 100_000;
    g.throughput(Throughput::Elements(FAN as u64));
    g.bench_function("fanout/iris", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::fanout(&rt, FAN)).sum())
    });

    const PP: usize = 200_000;
    g.throughput(Throughput::Elements(PP as u64));
    g.bench_function("pingpong/iris", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| s::pingpong(&rt, PP)).sum())
    });

    const SPAWN: usize = 100_000;
    g.throughput(Throughput::Elements(SPAWN as u64));
    g.bench_function("spawn_idle/iris", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (t, _, pids) = s::spawn_idle(&rt, SPAWN);
                    for p in pids {
                        rt.stop(p);
                    }
                    t
                })
                .sum()
        })
    });
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("skynet_1M/iris", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (sum, t) = s::skynet(&rt, 6);
                    assert_eq!(sum, 499_999_500_000);
                    t
                })
                .sum()
        })
    });
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("skynet_100k/iris-async-tasks", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (sum, t) = s::skynet_async(&rt, 5);
                    assert_eq!(sum, 4_999_950_000);
                    t
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
