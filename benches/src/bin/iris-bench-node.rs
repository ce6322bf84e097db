//! The second process of the benchmarks.
//!
//! - `iris-bench-node mesh`: a mesh node serving `sink` and `pong` (see `iris_benches::mesh`)
//!   until its stdin closes.
//! - `iris-bench-node tcp`: the plain-Tokio TCP floor of the mesh scenarios.
//! - `iris-bench-node rss <system> <n>`: spawns `n` idle actors of `system` in this fresh
//!   process and prints `RSS_PER_ACTOR <bytes>` and `SPAWN_PER_SEC <actors/s>`.

use std::process::ExitCode;

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [mode] if mode == "mesh" => iris_benches::mesh::serve(),
        [mode] if mode == "tcp" => iris_benches::mesh::serve_tcp(),
        [mode, name, n] if mode == "rss" => {
            let n: usize = n.parse().map_err(|e| format!("bad count {n}: {e}"))?;
            let sys = iris_benches::system(name).ok_or_else(|| {
                format!(
                    "unknown system `{name}` (built: {})",
                    iris_benches::SYSTEMS.join(", ")
                )
            })?;
            let (t, grown) = sys.spawn_idle(n);
            println!("RSS_PER_ACTOR {:.1}", grown as f64 / n as f64);
            println!("SPAWN_PER_SEC {:.0}", n as f64 / t.as_secs_f64());
            Ok(())
        }
        _ => Err("usage: iris-bench-node mesh | tcp | rss <system> <n>".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iris-bench-node: {e}");
            ExitCode::FAILURE
        }
    }
}
