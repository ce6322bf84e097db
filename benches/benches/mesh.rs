//! Scenario 6: sink and pingpong between two OS processes on loopback. The second process is
//! `iris-bench-node mesh`, started here and stopped when the bench ends; the floor is plain
//! Tokio TCP to `iris-bench-node tcp`.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use iris_benches::mesh::{MeshPair, TcpPair};
use iris_benches::sizes;

fn mesh(c: &mut Criterion) {
    let node = Path::new(env!("CARGO_BIN_EXE_iris-bench-node"));
    let pair = MeshPair::start(node).expect("second node");
    let tcp = TcpPair::start(node).expect("second process for the TCP floor");
    for (group, n) in [
        ("mesh_sink", sizes::MESH_SINK),
        ("mesh_pingpong", sizes::MESH_PINGPONG),
    ] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Elements(n as u64));
        g.bench_function("iris", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        if group == "mesh_sink" {
                            pair.sink(n)
                        } else {
                            pair.pingpong(n)
                        }
                    })
                    .sum()
            })
        });
        g.bench_function("tokio", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        if group == "mesh_sink" {
                            tcp.sink(n)
                        } else {
                            tcp.pingpong(n)
                        }
                    })
                    .sum()
            })
        });
        g.finish();
    }
    drop(pair);
    drop(tcp);
}

criterion_group!(benches, mesh);
criterion_main!(benches);
