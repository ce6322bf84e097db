//! Iris developer tasks, run as `cargo xtask <task>`.
//!
//! - `test-all [--skip-py] [--skip-node] [--only STEP] [--dry-run]`
//! - `demo [--dry-run]`
//! - `bench [--quick] [--filter NAME] [--dry-run]`

mod bench;
mod demo;
mod test_all;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task> [options]

tasks:
  test-all   fmt, clippy, nextest (ci profile), doctests, Python and Node suites
             --skip-py  --skip-node  --only <fmt|clippy|nextest|doc|py|node>  --dry-run
  demo       run the Rust tour, then the Python and Node tours when present   --dry-run
  bench      criterion benches + Python/Node benches; JSON summary in target/bench/
             --quick  --filter NAME  --dry-run
  help       this message";

fn dispatch(args: &[String]) -> util::Result {
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r),
        None => ("help", &[][..]),
    };
    match task {
        "test-all" => test_all::run_all(&test_all::parse(rest)?),
        "demo" => demo::run_demo(rest),
        "bench" => bench::run_bench(&bench::parse(rest)?),
        "help" | "-h" | "--help" => {
            println!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_task_is_an_error() {
        assert!(dispatch(&["frob".to_string()]).is_err());
        assert!(dispatch(&[]).is_ok());
    }
}
