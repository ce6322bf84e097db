//! `cargo xtask demo`: the Rust tour, then the Python and Node tours when present.

use crate::util::{self, Result, cmd, run};

/// Runs the tours.
pub(crate) fn run_demo(args: &[String]) -> Result {
    let mut dry = false;
    for a in args {
        match a.as_str() {
            "--dry-run" => dry = true,
            other => return Err(format!("unknown demo option `{other}`")),
        }
    }
    let root = util::root();
    if !root.join("crates/iris/examples/tour.rs").exists()
        && !root.join("crates/iris/examples/tour/main.rs").exists()
    {
        return Err("the Rust tour (crates/iris/examples/tour.rs) does not exist yet".into());
    }
    run(
        &mut cmd(
            "cargo",
            &["run", "--release", "-p", "iris", "--example", "tour"],
        ),
        dry,
    )?;
    if util::has_py() {
        util::setup_python(dry)?;
        run(
            &mut cmd(
                &util::venv_python().to_string_lossy(),
                &["crates/iris-py/examples/tour.py"],
            ),
            dry,
        )?;
    }
    if util::has_node() && root.join("crates/iris-node/examples/tour.mjs").exists() {
        util::setup_node(dry)?;
        run(
            &mut cmd("node", &["crates/iris-node/examples/tour.mjs"]),
            dry,
        )?;
    }
    Ok(())
}
