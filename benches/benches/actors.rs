//! Scenarios 1–5 of the benchmarks issue for every compiled-in system in one run: Iris, the
//! plain-Tokio floor and (feature `peers`) kameo, ractor and actix. One criterion group per
//! scenario (skynet aside, see `skynet_rows`), one function per system; `cargo xtask bench` reads criterion's estimates and
//! turns them into the summary table. Idle-actor memory is measured with spawn_idle, in a fresh
//! child process per system, and written to `target/bench/rust-memory.json`.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use iris_benches::{SYSTEMS, Scenarios, sizes, skynet_sum, suite_row, system, write_suite};

const NODE: &str = env!("CARGO_BIN_EXE_iris-bench-node");

/// Bytes of RSS per idle actor for every system, each in its own process, as a suite file
/// the xtask summary renders like the Python and Node ones.
fn memory_rows() {
    let mut values = Vec::new();
    for name in SYSTEMS {
        match iris_benches::memory::per_actor_in_child(Path::new(NODE), name, sizes::SPAWN) {
            Ok(b) => {
                println!(
                    "spawn_idle/{name}: {b:.0} bytes of RSS per idle actor ({} actors)",
                    sizes::SPAWN
                );
                values.push((*name, b));
            }
            Err(e) => eprintln!("spawn_idle/{name}: memory not measured: {e}"),
        }
    }
    let row = suite_row(
        "spawn_idle memory",
        "bytes/actor",
        false,
        &values,
        r#"{"max": 1024}"#,
    );
    write_suite("rust-memory.json", &row.into_iter().collect::<Vec<_>>());
}

/// Whether criterion's filter (the first free argument, a regex) may select `id`; a plain
/// substring test, which is what `cargo xtask bench --filter` passes.
fn selected(id: &str) -> bool {
    const VALUED: &[&str] = &[
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
        "--color",
        "--format",
        "--logfile",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return id.contains(&a) || a.contains(id);
        }
    }
    true
}

/// Skynet outside criterion: a run of kameo or ractor takes 5–20 s on two cores, so eleven
/// of them per system (criterion's minimum) would take the full bench past a quarter of an
/// hour. Every system gets the same: one warm-up run, then the median of three (no warm-up and
/// one run with `--quick`). The warm-up is what criterion gives the other scenarios and what
/// `skynet.escript` gives the BEAM: the first run in a process also pays for faulting in the
/// memory of 1M actors, which no later run does.
fn skynet_rows(systems: &[(&str, Box<dyn Scenarios>)]) {
    // Not in criterion's test mode (`cargo test --benches` runs each bench once, no `--bench`).
    if !selected("skynet") || !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = if std::env::args().any(|a| a == "--quick") {
        1
    } else {
        3
    };
    let mut values = Vec::new();
    for (name, s) in systems {
        if runs > 1 {
            let (sum, _) = s.skynet(sizes::SKYNET_DEPTH);
            assert_eq!(sum, skynet_sum(sizes::SKYNET_DEPTH), "{name} warm-up");
        }
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let (sum, t) = s.skynet(sizes::SKYNET_DEPTH);
                assert_eq!(sum, skynet_sum(sizes::SKYNET_DEPTH), "{name}");
                t.as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        println!("skynet/{name}: {median:.0} ms (median of {ms:.0?})");
        values.push((*name, median));
    }
    let target = r#"{"ratio": 2, "against": "beam", "max": 1000}"#;
    let row = suite_row("skynet 1M", "ms", false, &values, target);
    write_suite("rust-skynet.json", &row.into_iter().collect::<Vec<_>>());
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
    skynet_rows(&systems);
}

criterion_group!(benches, actors);
criterion_main!(benches);
