//! `cargo xtask test-all`: fmt, clippy, nextest, doctests, Python and Node suites.

use crate::util::{self, Result, cmd, run};

/// Options for `test-all`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Opts {
    /// Skip the Python suite.
    pub(crate) skip_py: bool,
    /// Skip the Node suite.
    pub(crate) skip_node: bool,
    /// Run only this step.
    pub(crate) only: Option<String>,
    /// Print the commands without running them.
    pub(crate) dry_run: bool,
}

/// The step names, in order.
pub(crate) const STEPS: &[&str] = &["fmt", "clippy", "nextest", "doc", "py", "node"];

/// Parses `test-all` arguments.
pub(crate) fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skip-py" => o.skip_py = true,
            "--skip-node" => o.skip_node = true,
            "--dry-run" => o.dry_run = true,
            "--only" => {
                let s = it.next().ok_or("--only needs a step name")?;
                if !STEPS.contains(&s.as_str()) {
                    return Err(format!("unknown step `{s}`; steps: {}", STEPS.join(", ")));
                }
                o.only = Some(s.clone());
            }
            other => return Err(format!("unknown test-all option `{other}`")),
        }
    }
    Ok(o)
}

fn step_body(name: &str, dry: bool) -> Result {
    match name {
        "fmt" => run(&mut cmd("cargo", &["fmt", "--all", "--", "--check"]), dry),
        "clippy" => run(
            &mut cmd(
                "cargo",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            dry,
        ),
        "nextest" => {
            if !dry && !util::succeeds(&mut cmd("cargo", &["nextest", "--version"])) {
                run(
                    &mut cmd("cargo", &["install", "cargo-nextest", "--locked"]),
                    dry,
                )?;
            }
            run(
                &mut cmd(
                    "cargo",
                    &["nextest", "run", "--workspace", "--profile", "ci"],
                ),
                dry,
            )
        }
        "doc" => run(&mut cmd("cargo", &["test", "--workspace", "--doc"]), dry),
        "py" => {
            util::setup_python(dry)?;
            run(
                &mut cmd(
                    &util::venv_python().to_string_lossy(),
                    &["-m", "pytest", "crates/iris-py/tests", "-q"],
                ),
                dry,
            )
        }
        "node" => {
            util::setup_node(dry)?;
            let dir = util::root().join("crates/iris-node/__test__");
            let files = util::files_with_suffix(&dir, ".test.mjs");
            if files.is_empty() {
                return Err(format!("no *.test.mjs files in {}", dir.display()));
            }
            let mut c = cmd("node", &["--test"]);
            c.args(&files);
            run(&mut c, dry)
        }
        _ => unreachable!("step names are checked by parse"),
    }
}

/// Runs the steps, failing fast, and prints a summary.
pub(crate) fn run_all(o: &Opts) -> Result {
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for &name in STEPS {
        if o.only.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        if name == "py" && (o.skip_py || !util::has_py()) {
            eprintln!("skipping py (skipped or crates/iris-py/pyproject.toml missing)");
            continue;
        }
        if name == "node" && (o.skip_node || !util::has_node()) {
            eprintln!("skipping node (skipped or crates/iris-node/package.json missing)");
            continue;
        }
        let (r, res) = util::step(name, || step_body(name, o.dry_run));
        results.push(r);
        if let Err(e) = res {
            outcome = Err(format!("test-all: step `{name}` failed: {e}"));
            break;
        }
    }
    util::summary(&results);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_flags() {
        let o = parse(&s(&["--skip-py", "--only", "fmt", "--dry-run"])).unwrap();
        assert!(o.skip_py && o.dry_run && !o.skip_node);
        assert_eq!(o.only.as_deref(), Some("fmt"));
    }

    #[test]
    fn rejects_bad_args() {
        assert!(parse(&s(&["--only"])).is_err());
        assert!(parse(&s(&["--only", "nope"])).is_err());
        assert!(parse(&s(&["--frobnicate"])).is_err());
    }
}
