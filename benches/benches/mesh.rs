//! Scenario 6: sink and pingpong between two OS processes on loopback. The second process is
//! `iris-bench-node mesh`, started here and stopped when the bench ends.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use iris_benches::{mesh::MeshPair, sizes};

fn mesh(c: &mut Criterion) {
    let pair =
        MeshPair::start(Path::new(env!("CARGO_BIN_EXE_iris-bench-node"))).expect("second node");
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
        g.finish();
    }
    drop(pair);
}

criterion_group!(benches, mesh);
criterion_main!(benches);
