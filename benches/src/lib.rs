//! The scenarios of the benchmarks issue, written once per system with the same definitions:
//! Iris, a plain-Tokio floor (tasks and channels) and, with feature `peers`, kameo, ractor and
//! actix. Every figure counts messages *processed*: the clock stops when the last handler ran.
//!
//! - `spawn_idle`: spawn `n` idle actors, until every one is ready to receive.
//! - `fanout`: `n` actors get one message each (spawn excluded).
//! - `sink`: one sender, one actor, `n` fire-and-forget messages.
//! - `pingpong`: `n` request/response round trips between two actors.
//! - `skynet`: `10^depth` actors in a 10-ary tree sum their numbers.
//!
//! The two-process mesh scenarios live in [`mesh`]; `iris-bench-node` is the second process
//! (and measures idle-actor memory in a fresh process, see [`memory`]).

mod done;
pub mod iris_actors;
pub mod memory;
pub mod mesh;
pub mod tokio_tasks;

#[cfg(feature = "peers")]
pub mod actix_actors;
#[cfg(feature = "peers")]
pub mod kameo_actors;
#[cfg(feature = "peers")]
pub mod ractor_actors;

use std::time::Duration;

pub use done::Done;

/// The sizes of the issue; the benches use these, the tests smaller ones.
pub mod sizes {
    /// Idle actors spawned.
    pub const SPAWN: usize = 100_000;
    /// Actors that get one message each.
    pub const FANOUT: usize = 100_000;
    /// Messages to one actor.
    pub const SINK: usize = 1_000_000;
    /// Round trips between two actors.
    pub const PINGPONG: usize = 200_000;
    /// Skynet depth: 10^6 actors.
    pub const SKYNET_DEPTH: u32 = 6;
    /// Messages one way between two processes.
    pub const MESH_SINK: usize = 1_000_000;
    /// Round trips between two processes (fewer: each one crosses loopback twice).
    pub const MESH_PINGPONG: usize = 20_000;
}

/// Skynet's answer for `10^depth` actors: the sum of `0..10^depth`.
pub fn skynet_sum(depth: u32) -> u64 {
    let n = 10u64.pow(depth);
    n * (n - 1) / 2
}

/// One system under test. Each call sets up, measures and tears down one run; only the
/// measured part is in the returned time.
pub trait Scenarios {
    /// Spawns `n` idle actors; the time until all can receive, and the resident-memory
    /// growth in bytes while they are alive.
    fn spawn_idle(&self, n: usize) -> (Duration, usize);
    /// `n` actors get one message each; the time until the last handler ran.
    fn fanout(&self, n: usize) -> Duration;
    /// One sender, one actor, `n` messages; the time until the last one was handled.
    fn sink(&self, n: usize) -> Duration;
    /// `n` round trips between two actors.
    fn pingpong(&self, n: usize) -> Duration;
    /// Skynet over `10^depth` actors; the sum and the time.
    fn skynet(&self, depth: u32) -> (u64, Duration);
}

/// Every system compiled in, by the name the benches and the summary use: Iris first, the
/// Tokio floor, then the peers.
pub const SYSTEMS: &[&str] = &[
    "iris",
    "tokio",
    #[cfg(feature = "peers")]
    "kameo",
    #[cfg(feature = "peers")]
    "ractor",
    #[cfg(feature = "peers")]
    "actix",
];

/// The system called `name` (one of [`SYSTEMS`]), with a fresh runtime.
pub fn system(name: &str) -> Option<Box<dyn Scenarios>> {
    Some(match name {
        "iris" => Box::new(iris_actors::IrisBench::new()),
        "tokio" => Box::new(tokio_tasks::TokioBench::new()),
        #[cfg(feature = "peers")]
        "kameo" => Box::new(kameo_actors::KameoBench::new()),
        #[cfg(feature = "peers")]
        "ractor" => Box::new(ractor_actors::RactorBench::new()),
        #[cfg(feature = "peers")]
        "actix" => Box::new(actix_actors::ActixBench),
        _ => return None,
    })
}

/// Where the benches write their own JSON: `$IRIS_BENCH_OUT`, else `target/bench/`.
pub fn out_dir() -> std::path::PathBuf {
    std::env::var_os("IRIS_BENCH_OUT").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench"),
        std::path::PathBuf::from,
    )
}

/// One row of a suite file in the shape `cargo xtask bench` renders for every suite: the
/// `iris` value, `tokio` as the floor, every other system a peer. `target` is a JSON object
/// (`{"ratio": 2}`, `{"max": 1024}`, ...).
pub fn suite_row(
    scenario: &str,
    unit: &str,
    higher_is_better: bool,
    values: &[(&str, f64)],
    target: &str,
) -> Option<String> {
    let iris = values.iter().find(|(k, _)| *k == "iris")?.1;
    let list = |keep: &dyn Fn(&str) -> bool| {
        values
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| format!("\"{k}\": {v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "{{\"scenario\": \"{scenario}\", \"unit\": \"{unit}\", \"higher_is_better\": {higher_is_better}, \
         \"iris\": {iris:.3}, \"peers\": {{{}}}, \"floor\": {{{}}}, \"target\": {target}}}",
        list(&|k| k != "iris" && k != "tokio"),
        list(&|k| k == "tokio"),
    ))
}

/// Writes `{"suite": "rust", "rows": [...]}` to `file` under [`out_dir`].
pub fn write_suite(file: &str, rows: &[String]) {
    let dir = out_dir();
    let path = dir.join(file);
    let json = format!("{{\"suite\": \"rust\", \"rows\": [{}]}}\n", rows.join(", "));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        eprintln!("writing {}: {e}", path.display());
    }
}

/// A multi-threaded Tokio runtime like the one Iris runs on (one worker per core).
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
