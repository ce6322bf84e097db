//! Scenarios 1–5 of the benchmarks issue for every compiled-in system in one run: Iris, the
//! plain-Tokio floor and (feature `peers`) kameo, ractor and actix. One criterion group per
//! scenario, one function per system; `cargo xtask bench` reads criterion's estimates and
//! turns them into the summary table. Idle-actor memory is measured with spawn_idle, in a fresh
//! child process per system, and written to `target/bench/rust-memory.json`.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use iris_benches::{SYSTEMS, Scenarios, sizes, skynet_sum, system};

const NODE: &str = env!("CARGO_BIN_EXE_iris-bench-node");

/// Bytes of RSS per idle actor for every system, each in its own process, as a suite file
/// the xtask summary renders like the Python and Node ones.
fn memory_rows() {
    let mut peers = String::new();
    let mut iris = None;
    let mut floor = None;
    for name in SYSTEMS {
        match iris_benches::memory::per_actor_in_child(Path::new(NODE), name, sizes::SPAWN) {
            Ok(b) => {
                println!(
                    "spawn_idle/{name}: {b:.0} bytes of RSS per idle actor ({} actors)",
                    sizes::SPAWN
                );
                match *name {
                    "iris" => iris = Some(b),
                    "tokio" => floor = Some(b),
                    _ => {
                        let sep = if peers.is_empty() { "" } else { ", " };
                        let _ = write!(peers, "{sep}\"{name}\": {b:.1}");
                    }
                }
            }
            Err(e) => eprintln!("spawn_idle/{name}: memory not measured: {e}"),
        }
    }
    let Some(iris) = iris else { return };
    let floor = floor.map_or(String::new(), |f| {
        format!(", \"floor\": {{\"tokio\": {f:.1}}}")
    });
    let json = format!(
        "{{\"suite\": \"rust\", \"rows\": [{{\"scenario\": \"spawn_idle memory\", \"unit\": \"bytes/actor\", \
         \"higher_is_better\": false, \"iris\": {iris:.1}, \"peers\": {{{peers}}}{floor}, \
         \"target\": {{\"max\": 1024}}}}]}}\n"
    );
    let dir = iris_benches::out_dir();
    let path = dir.join("rust-memory.json");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        eprintln!("writing {}: {e}", path.display());
    }
}

/// Runs `f` once per iteration criterion asks for and sums the measured times.
fn bench(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: impl Fn() -> Duration) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum())
    });
}

fn group<'a>(c: &'a mut Criterion, name: &str, elements: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // Each iteration is a whole scenario (0.05–3 s): ten flat samples keep a full run short.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(elements as u64));
    g
}

fn actors(c: &mut Criterion) {
    let systems: Vec<(&str, Box<dyn Scenarios>)> = SYSTEMS
        .iter()
        .map(|n| (*n, system(n).expect("compiled in")))
        .collect();

    // Memory is measured in child processes, so when does not matter; from inside a bench
    // function it runs only when criterion's filter selects spawn_idle.
    let memory = std::sync::Once::new();
    let mut g = group(c, "spawn_idle", sizes::SPAWN);
    for (name, s) in &systems {
        bench(&mut g, name, || {
            memory.call_once(memory_rows);
            s.spawn_idle(sizes::SPAWN).0
        });
    }
    g.finish();
    let mut g = group(c, "fanout", sizes::FANOUT);
    for (name, s) in &systems {
        bench(&mut g, name, || s.fanout(sizes::FANOUT));
    }
    g.finish();
    let mut g = group(c, "sink", sizes::SINK);
    for (name, s) in &systems {
        bench(&mut g, name, || s.sink(sizes::SINK));
    }
    g.finish();
    let mut g = group(c, "pingpong", sizes::PINGPONG);
    for (name, s) in &systems {
        bench(&mut g, name, || s.pingpong(sizes::PINGPONG));
    }
    g.finish();
    let mut g = group(c, "skynet", 10usize.pow(sizes::SKYNET_DEPTH));
    for (name, s) in &systems {
        bench(&mut g, name, || {
            let (sum, t) = s.skynet(sizes::SKYNET_DEPTH);
            assert_eq!(sum, skynet_sum(sizes::SKYNET_DEPTH), "{name}");
            t
        });
    }
    g.finish();
}

criterion_group!(benches, actors);
criterion_main!(benches);
